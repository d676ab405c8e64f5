#!/usr/bin/env python3
"""Writes a wrk Lua script of pre-signed requests for a callsign server (valid within its 5-minute
date skew): `issue` creates N users and cycles through an issue-token request for each,
`healthz` repeats `GET /healthz`.

usage: presign.py CONNECTION_STRING N OUT.lua issue|healthz
"""
import base64, hashlib, hmac, json, sys, urllib.request
from email.utils import formatdate
from urllib.parse import urlparse, quote

conn, n, out, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
parts = dict(p.split("=", 1) for p in conn.strip(";").split(";"))
endpoint, key = parts["endpoint"].rstrip("/"), base64.b64decode(parts["accesskey"])
host = urlparse(endpoint).netloc
V = "2023-10-01"

def sign(method, pq, body):
    date = formatdate(usegmt=True)
    h = base64.b64encode(hashlib.sha256(body).digest()).decode()
    sts = f"{method}\n{pq}\n{date};{host};{h}"
    sig = base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha256).digest()).decode()
    return {"x-ms-date": date, "x-ms-content-sha256": h, "Content-Type": "application/json",
            "Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}"}

def call(method, pq, body):
    req = urllib.request.Request(endpoint + pq, data=body, method=method, headers=sign(method, pq, body))
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")

reqs = []
if kind == "healthz":
    reqs.append(("GET", "/healthz", {"Host": host}, b""))
else:
    for _ in range(n):
        uid = call("POST", f"/identities?api-version={V}", b"{}")["identity"]["id"]
        pq = f"/identities/{quote(uid, safe=':')}/:issueAccessToken?api-version={V}"
        body = b'{"scopes":["chat"]}'
        reqs.append(("POST", pq, dict(sign("POST", pq, body), Host=host), body))

def lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

with open(out, "w") as f:
    f.write("local reqs = {}\n")
    for m, pq, hdrs, body in reqs:
        hs = ", ".join(f"[{lua_str(k)}] = {lua_str(v)}" for k, v in hdrs.items())
        f.write(f"reqs[#reqs+1] = wrk.format({lua_str(m)}, {lua_str(pq)}, {{{hs}}}, {lua_str(body.decode())})\n")
    f.write("""local i = 0
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"rps\\": %.0f, \\"p50_ms\\": %.2f, \\"p99_ms\\": %.2f, \\"p999_ms\\": %.2f, \\"non2xx\\": %d, \\"errors\\": %d}\\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
""")
