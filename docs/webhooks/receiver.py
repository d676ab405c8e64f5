#!/usr/bin/env python3
"""A receiver for callsign's webhooks, standard library only.

It checks every delivery's signature before trusting its body, skips an event id it has
already handled (deliveries come at least once), and appends each new event to a JSON Lines
file. Run it with the webhook's secret in the environment:

    CALLSIGN_WEBHOOK_SECRET='the secret from [[webhooks]]' \\
        python3 receiver.py --port 9000 --out events.jsonl

It prints "listening on PORT" once it accepts deliveries (with --port 0, the port it got).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock

# How far a delivery's timestamp may be from this machine's clock, in seconds.
TOLERANCE = 300


def verify(secret: bytes, timestamp: str, signature: str, body: bytes, now: float) -> bool:
    """True when the timestamp is recent and one v1= value of the signature header is the
    HMAC-SHA256, keyed with the secret, of the timestamp header, a ".", and the body as received."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > TOLERANCE:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).digest()
    for part in signature.split(","):
        part = part.strip()
        if not part.startswith("v1="):
            continue
        try:
            given = base64.b64decode(part[3:], validate=True)
        except ValueError:
            continue
        if hmac.compare_digest(given, expected):
            return True
    return False


def serve(port: int, out: str, secret: bytes) -> None:
    seen = set()
    if os.path.exists(out):
        with open(out) as lines:
            seen = {str(json.loads(line)["id"]) for line in lines if line.strip()}
    lock = Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok = verify(
                secret,
                self.headers.get("callsign-webhook-timestamp", ""),
                self.headers.get("callsign-webhook-signature", ""),
                body,
                time.time(),
            )
            if not ok:
                self.send_response(400)
                self.end_headers()
                return
            event_id = self.headers.get("callsign-webhook-id", "")
            with lock:
                if event_id not in seen:
                    event = json.loads(body)
                    with open(out, "a") as lines:
                        lines.write(json.dumps(event) + "\n")
                    seen.add(event_id)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--out", default="events.jsonl")
    args = parser.parse_args()
    secret = os.environ.get("CALLSIGN_WEBHOOK_SECRET")
    if not secret:
        sys.exit("set CALLSIGN_WEBHOOK_SECRET to the webhook's secret")
    serve(args.port, args.out, secret.encode())


if __name__ == "__main__":
    main()
