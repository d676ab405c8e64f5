#!/usr/bin/env python3
"""Writes a wrk Lua script (and its data file, OUT.data) that issues tokens for K identities
sampled from an export file, each request pre-signed (valid within the server's 5-minute skew).

usage: presign_ids.py CONNECTION_STRING EXPORT_OR_SAMPLE.jsonl K OUT.lua
"""
import base64, hashlib, hmac, random, sys, json
from email.utils import formatdate
from urllib.parse import urlparse, quote
conn, idsfile, k, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
parts = dict(p.split("=", 1) for p in conn.strip(";").split(";"))
endpoint, key = parts["endpoint"].rstrip("/"), base64.b64decode(parts["accesskey"])
host = urlparse(endpoint).netloc
ids = [json.loads(l)["id"] for l in open(idsfile) if '"identity"' in l]
random.seed(7); sample = random.sample(ids, min(k, len(ids)))
date = formatdate(usegmt=True); body = b'{"scopes":["chat"]}'
h = base64.b64encode(hashlib.sha256(body).digest()).decode()
with open(out + ".data", "w") as d:
    for uid in sample:
        pq = f"/identities/{quote(uid, safe=':')}/:issueAccessToken?api-version=2023-10-01"
        sts = f"POST\n{pq}\n{date};{host};{h}"
        sig = base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha256).digest()).decode()
        d.write(f"{pq}\t{sig}\n")
with open(out, "w") as f:
    f.write('''local reqs = {}
for line in io.lines("%s") do
  local pq, sig = line:match("([^\t]+)\t(.+)")
  reqs[#reqs+1] = wrk.format("POST", pq, {["Host"]="%s", ["x-ms-date"]="%s", ["x-ms-content-sha256"]="%s", ["Content-Type"]="application/json", ["Authorization"]="HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=" .. sig}, '{"scopes":["chat"]}')
end
local i = 0
request = function() i = i + 1; if i > #reqs then i = 1 end; return reqs[i] end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"rps\\": %%.0f, \\"p50_ms\\": %%.2f, \\"p99_ms\\": %%.2f, \\"non2xx\\": %%d}\\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
''' % (out + ".data", host, date, h))
