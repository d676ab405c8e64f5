#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<target>/seed-*: a few well-formed and a few broken
inputs per target, in each target's input format (see the target's doc comment). Crash inputs
are kept beside them as crash-* files and are not touched here. Run from anywhere:
`python3 fuzz/seeds.py`."""

import base64
import hashlib
import hmac
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
RID = "6a1bd6b0-3bcd-4c63-9b84-cd0f4a34d3f8"
GUID = "207ffef6-9444-41fb-92ab-20eacaae2768"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP = "1fd5118e-2576-4263-8130-9503064c837a"
OID = "0b5f3bb4-8b0a-4a50-8d4e-3a0c2e1f9d21"
DATE = "Thu, 01 Jan 2026 00:00:00 GMT"  # the targets' clock
PRIMARY = bytes([1] * 32)


def fields(*parts):
    return b"\0".join(p.encode() if isinstance(p, str) else p for p in parts)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def content_hash(body):
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def signature(key, method, path, host, body, date=DATE):
    sts = f"{method.upper()}\n{path}\n{date};{host};{content_hash(body)}"
    return base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha256).digest()).decode()


def authorization(sig, names="x-ms-date;host;x-ms-content-sha256"):
    return f"HMAC-SHA256 SignedHeaders={names}&Signature={sig}"


def seeds():
    path = "/identities?api-version=2023-10-01"
    host = "callsign.fuzz"
    body = b"{}"
    good = signature(PRIMARY, "POST", path, host, body)
    yield "authorization", [
        # raw: correct, then broken in several ways
        fields("0", "POST", path, host, body, authorization(good), DATE, content_hash(body)),
        fields("2", "POST", path, host + ":8080", body, authorization(good, "date;host;x-ms-content-sha256"),
               DATE, content_hash(body)),
        fields("0", "GET", "/x", host, b"", authorization("AAAA"), DATE, content_hash(b"")),
        fields("0", "POST", path, host, body, "Bearer abc", DATE, content_hash(body)),
        fields("0", "POST", path, host, body, "HMAC-SHA256 Signature=x&SignedHeaders=date", "Mon, 99 Foo",
               "x"),
        # signed: primary, date header, secondary, stranger; clock offsets; each kind of tamper
        fields("1", "POST", path, host, body, b"", b""),
        fields("3", "post", path, "h:443", body, b"\x2c\x01", b""),
        fields("5", "DELETE", "/identities/8%3Aacs%3Ax?api-version=2023-10-01", host, b"", b"\xd4\xfe", b""),
        fields("9", "POST", path, host, body, b"", b""),
        fields("1", "POST", path, host, body, b"", b"0\x50\x01"),
        fields("1", "POST", path, host, body, b"", b"1\x05"),
        fields("1", "POST", path, host, body, b"", b"2\x01\x20"),
        fields("1", "POST", path, host, body, b"", b"3\x01\x20"),
        fields("1", "POST", path, host, body, b"", b"3\x01\x02"),
        fields("1", "POST", path, "h:8080", body, b"", b"4\x01"),
        fields("1", "POST", path, "h:8080", body, b"", b"4\x04"),
        fields("1", "POST", path, host, body, b"", b"5\x07\x01"),
        fields("1", "POST", path, host, body, b"\x01\x10", b""),
    ]

    ids = [
        f"8:acs:{RID}_{GUID}", f"8:acs:{RID}_{TENANT}_{GUID}", f"8:dod-acs:{RID}_{GUID}",
        f"8:gcch-acs:{RID}_x_y", "8:spool:abc", "4:+14255550123", "4:anonymous", "4:+14255550123_asserted",
        "4:", f"8:orgid:{GUID}", f"8:teamsvisitor:{GUID}", f"8:dod:{GUID}", f"8:gcch:{GUID}",
        f"28:orgid:{APP}", f"28:dod:{APP}", f"28:gcch:{APP}", "28:gcch-global:x", "8:acs:", "a:b:c:d",
        "", "unknown",
    ]
    yield "raw_id_common", [i.encode() for i in ids]

    yield "raw_id_server", [s.encode() for s in [
        f"8:acs:{RID}_{GUID}", f"8:acs:{RID.upper()}_{GUID.upper()}", f"8:acs:{RID.replace('-', '')}_{GUID}",
        f"8:acs:{{{RID}}}_{GUID}", f"8:acs:urn:uuid:{RID}_{GUID}", f"8:acs:00000000-0000-0000-0000-000000000000_{GUID}",
        f"8:gcch-acs:{RID}_{GUID}", f"8:acs:{RID}_{GUID}_x", f"8:acs:{RID}_xyz", "8:acs:nope_x", "4:+1555",
        "8%3Aacs%3Ax", RID, "",
    ]]

    models = [
        {"kind": "communicationUser", "rawId": ids[0], "communicationUser": {"id": ids[0]}},
        {"communicationUser": {"id": ids[0]}},
        {"kind": "phoneNumber", "rawId": "4:+14255550123", "phoneNumber": {"value": "+14255550123"}},
        {"phoneNumber": {"value": "anonymous", "isAnonymous": True, "assertedId": "x"}},
        {"kind": "microsoftTeamsUser", "rawId": f"8:gcch:{GUID}",
         "microsoftTeamsUser": {"userId": GUID, "isAnonymous": False, "cloud": "gcch"}},
        {"microsoftTeamsUser": {"userId": GUID, "cloud": "dod"}},
        {"kind": "microsoftTeamsApp", "rawId": f"28:orgid:{APP}", "microsoftTeamsApp": {"appId": APP}},
        {"kind": "teamsExtensionUser", "rawId": ids[1],
         "teamsExtensionUser": {"userId": GUID, "tenantId": TENANT, "resourceId": RID, "cloud": "public"}},
        {"kind": "somethingNew", "rawId": "99:x"},
        {"rawId": "4:+1"},
        {"communicationUser": {"id": "x"}, "phoneNumber": {"value": "+1"}},
        {},
    ]
    yield "identifier_model", [json.dumps(m).encode() for m in models]

    teams_user = json.dumps({"iss": "$ISS", "tid": "$TID", "aud": "$AUD_TEAMS", "exp": "$EXP", "oid": GUID,
                             "appid": APP, "scp": "Teams.ManageCalls"}).replace('"$EXP"', "$EXP")
    teams_ext = json.dumps({"iss": "$ISS", "tid": "$TID", "aud": "$AUD_TEAMS", "exp": "$EXP", "oid": OID,
                            "appid": APP, "scp": "TeamsExtension.ManageCalls"}).replace('"$EXP"', "$EXP")
    entra = json.dumps({"iss": "$ISS", "tid": "$TID", "aud": "$AUD_ENTRA", "exp": "$EXP", "oid": OID,
                        "appid": APP, "scp": "Chat VoIP", "groups": [GUID]}).replace('"$EXP"', "$EXP")
    manage = json.dumps({"iss": "$ISS", "tid": "$TID", "aud": ["x", "$AUD_MANAGEMENT"], "exp": "$EXP",
                         "nbf": "$NOW", "oid": "$OID", "roles": ["Identity.Manage"]}
                        ).replace('"$EXP"', "$EXP").replace('"$NOW"', "$NOW")
    v23, v25, pre = "api-version=2023-10-01", "api-version=2025-06-30", "api-version=2025-03-02-preview"
    yield "json_bodies", [
        fields("POST", f"/identities?{v23}", "", '{"createTokenWithScopes":["chat","voip"]}'),
        fields("POST", f"/identities?{pre}", "",
               '{"customId":"alice","createTokenWithScopes":["chat.join","voip.join"],"expiresInMinutes":60}'),
        fields("POST", "/identities?api-version=2021-03-07", "", ""),
        fields("POST", "/identities?api-version=2022-10-01", "", '{"createTokenWithScopes":null,"expiresInMinutes":1.5}'),
        fields("GET", f"/identities/$ID?{pre}", "", ""),
        fields("DELETE", f"/identities/8%3Aacs%3A{RID}_{GUID}?{v23}", "", ""),
        fields("POST", f"/identities/$ID/:issueAccessToken?{v23}", "", '{"scopes":["chat"],"expiresInMinutes":1440}'),
        fields("POST", f"/identities/$ID/:revokeAccessTokens?{v23}", "", ""),
        fields("POST", f"/teamsUser/:exchangeAccessToken?{v23}", f"jwt {teams_user}",
               json.dumps({"token": "$JWT", "appId": APP, "userId": GUID})),
        fields("PUT", f"/access/teamsExtension/tenants/{TENANT}/assignments/{OID}?{v25}", "",
               json.dumps({"principalType": "user", "clientIds": [APP]})),
        fields("GET", f"/access/teamsExtension/tenants/{TENANT}/assignments/{OID}?{v25}", "", ""),
        fields("POST", f"/access/teamsExtension/:exchangeAccessToken?{v25}", f"bearer {teams_ext}", "{}"),
        fields("PUT", f"/access/entra/assignments/{OID}?{pre}", "",
               json.dumps({"tenantId": TENANT, "principalType": "user", "clientIds": [APP]})),
        fields("PATCH", f"/access/entra/assignments?{pre}", "",
               json.dumps({TENANT: {"tenantId": TENANT, "principalType": "tenant", "clientIds": [APP]}, GUID: None})),
        fields("GET", f"/access/entra/assignments?{pre}&maxpagesize=1&skipToken={GUID}", "", ""),
        fields("POST", f"/access/entra/:exchangeAccessToken?{pre}", f"bearer {entra}", ""),
        fields("POST", "/callsign/tokens/:introspect", "", '{"token":"$TOKEN"}'),
        fields("POST", f"/identities?{v23}", f"bearer {manage}", "{}"),
        fields("POST", f"/identities?{v23}", "raw HMAC-SHA256 SignedHeaders=a&Signature=b", "{}"),
        fields("POST", f"/identities?{v23}", "none", "[1,2"),
    ]

    acs_claims = ('{"skypeid":"acs:%s_%s","scp":1792,"csi":"1767225600","exp":$EXP,"rgn":"amer",'
                  '"acsScope":"chat,voip","resourceId":"$RID","iat":$NOW,"jti":"j","iatMicros":1}' % (RID, GUID))
    header = '{"alg":"$ALG","kid":"$KID","typ":"JWT"}'
    payload = b64url(json.dumps({"skypeid": "acs:x", "exp": 2000000000, "iat": 1}).encode())
    yield "jwt_introspect", [
        fields("1", "0", header, acs_claims, b""),
        fields("1", "1", header, acs_claims, b""),
        fields("1", "2", header, acs_claims, b""),
        fields("1", "3", header, acs_claims, b""),
        fields("1", "0", header, acs_claims, b"\x80\x01"),
        fields("1", "0", '{"alg":"ES256","kid":"$KID"}', acs_claims, b""),
        fields("1", "0", header, acs_claims.replace("$EXP", "$NOW"), b""),
        fields("0", f"{b64url(b'{}')}.{payload}.c2ln"),
        fields("0", b64url(b'{"alg":"RS256","kid":"K"}') + f".{payload}.AAAA"),
        fields("0", "a.b.c"),
    ]

    bearer_claims = json.dumps({"iss": "$ISS", "tid": "$TID", "aud": "$AUD", "exp": "$EXP", "nbf": "$NOW",
                                "oid": OID, "roles": ["Identity.Manage"], "scp": "Teams.ManageCalls"}
                               ).replace('"$EXP"', "$EXP").replace('"$NOW"', "$NOW")
    bheader = '{"alg":"RS256","kid":"$KID"}'
    yield "jwt_bearer", [
        fields("1", "0", "0", bheader, bearer_claims, b""),
        fields("1", "1", "0", bheader, bearer_claims.replace("$ISS", "$ISS2"), b""),
        fields("1", "2", "0", bheader, bearer_claims.replace('"$AUD"', '["$AUD/","x"]'), b""),
        fields("1", "0", "1", bheader, bearer_claims, b""),
        fields("1", "0", "0", bheader, bearer_claims, b"\x40\x02"),
        fields("1", "0", "0", '{"alg":"HS256","kid":"$KID"}', bearer_claims, b""),
        fields("1", "0", "0", bheader, bearer_claims.replace('"$TID"', '"other"'), b""),
        fields("0", "0", b64url(b'{"alg":"RS256"}') + f".{payload}.AAAA"),
        fields("0", "1", "x.y"),
    ]

    jwk = {"kty": "RSA", "kid": "k1", "use": "sig", "e": "AQAB",
           "n": b64url(bytes([0xC0]) + bytes(255))}
    yield "jwks", [
        fields(json.dumps({"keys": [jwk]}), "message", base64.b64decode("AAAA") * 64),
        fields(json.dumps({"keys": [dict(jwk, n="AQAB", e="AQAB"), {"kty": "EC", "kid": "e"},
                                    dict(jwk, use="enc"), dict(jwk, kid=None)]}), "m", "s"),
        fields(json.dumps({"keys": [dict(jwk, n="", e="")]}), "", ""),
        fields("{}", "", ""),
    ]

    yield "connection_string", [s.encode() for s in [
        "endpoint=https://contoso.communication.azure.com/;accesskey=c2VjcmV0IQ==",
        " AccessKey = c2VjcmV0IQ== ; Endpoint = http://127.0.0.1:8080/ ;",
        "endpoint=https://h/;accesskey=c2VjcmV0IQ==;endpoint=https://h/",
        "endpoint=ftp://h/;accesskey=AAAA", "endpoint=https://h/;accesskey=",
        "endpoint=https://h/;accesskey=not+base64/at+all!!", "endpoint=not a url;accesskey=AAAA",
        "endpoint=https:///;accesskey=AAAA", "garbage;x", "",
    ]]

    yield "config_toml", [s.encode() for s in [
        'addr = "0.0.0.0:8443"\nmax_clock_skew_seconds = 120\n\n[[trusted_issuers]]\n'
        'issuer = "https://login.microsoftonline.com/t/v2.0"\njwks_uri = "https://login.microsoftonline.com/t/keys"\n'
        'tenant_id = "t"\n\n[[trusted_issuers]]\nissuer = "https://sts.windows.net/t/"\njwks_file = "keys.json"\n\n'
        '[management]\nallowed_object_ids = ["o1", "o2"]\nrequired_role = "Identity.Manage"\n',
        'data = "/var/lib/callsign"\ntls = true\ntls_cert = "c.pem"\ntls_key = "k.pem"\nmax_body_bytes = 65536\n',
        '[[trusted_issuers]]\nissuer = "i"\njwks_file = "/abs/keys.json"\n',
        'adress = "127.0.0.1:1"\n', "[management]\nallowed_object_id = [\"o\"]\n", "addr = 5\n", "",
    ]]


def main():
    for target, inputs in seeds():
        folder = os.path.join(HERE, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.startswith("seed-"):
                os.remove(os.path.join(folder, name))
        for i, data in enumerate(inputs):
            with open(os.path.join(folder, f"seed-{i:02}"), "wb") as out:
                out.write(data)


if __name__ == "__main__":
    main()
