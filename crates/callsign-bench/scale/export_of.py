#!/usr/bin/env python3
"""Writes an export file (docs/export.md) of N identities of a new resource, for
`callsign import FILE --data DIR`: the fastest way to a data dir of millions of identities.

usage: export_of.py N > FILE
"""
import sys, uuid, json
n=int(sys.argv[1]); res=str(uuid.uuid4())
out=sys.stdout
out.write(json.dumps({"type":"resource","format":1,"resourceId":res,"exportedAt":"2026-12-05T00:00:00Z"})+"\n")
for i in range(n):
    out.write('{"type":"identity","id":"8:acs:%s_%s","createdAtUs":1764900000000000}\n' % (res, uuid.uuid4()))
