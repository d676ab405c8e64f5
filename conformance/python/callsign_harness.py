"""Start and stop a callsign server for the conformance suite.

Contract (see conformance/README.md):
  $CALLSIGN_BIN serve --addr 127.0.0.1:0 --data <dir> [--tls]
  env CALLSIGN_ACCESS_KEY=<base64 key>, RUST_LOG=warn
  stdout, once listening:
    endpoint: http(s)://127.0.0.1:<port>/
    connection string: endpoint=...;accesskey=<key>
    ca certificate: /abs/path/ca.pem        (only with --tls)

Cluster mode: with CALLSIGN_CONFORMANCE_DATABASE_URL=postgres://... two nodes are started on that
database (`serve --database-url`, CALLSIGN_MASTER_KEY as given or random, no access-key seed: the
database is authoritative, so the key is read from the connection string). The suite talks to node
B, except that every create goes to node A (like a load balancer routing by request), so every
other operation of the suite acts on identities created by the other node.
"""

import base64
import os
import queue
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import List, Optional

STARTUP_TIMEOUT_S = 60.0


@dataclass
class CallsignServer:
    transport: str  # "http" or "tls"
    endpoint: str  # as printed, e.g. "http://127.0.0.1:1234/"
    connection_string: str
    access_key: str
    ca_path: Optional[str]
    data_dir: str
    stderr_path: str
    process: subprocess.Popen
    stdout_lines: List[str] = field(default_factory=list)
    # Cluster mode: the node that receives creates (see sdk_transport()).
    create_node: Optional["CallsignServer"] = None

    @property
    def endpoint_no_slash(self) -> str:
        return self.endpoint.rstrip("/")

    def stderr_tail(self, n: int = 40) -> str:
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def sdk_transport(self):
        """The azure-core transport for clients of this server: in cluster mode it sends creates
        (POST .../identities) to node A with node B's Host header, as an L7 load balancer would."""
        if self.create_node is None:
            return None
        from azure.core.pipeline.transport import RequestsTransport

        node_a = urllib.parse.urlsplit(self.create_node.endpoint).netloc

        class RouteCreatesToNodeA(RequestsTransport):
            def send(self, request, **kwargs):
                url = urllib.parse.urlsplit(request.url)
                if request.method == "POST" and url.path.rstrip("/").endswith("/identities"):
                    request.headers["Host"] = url.netloc
                    request.url = urllib.parse.urlunsplit(url._replace(netloc=node_a))
                return super().send(request, **kwargs)

        return RouteCreatesToNodeA(connection_verify=self.ca_path or True)

    def stop(self) -> None:
        if self.create_node is not None:
            self.create_node.stop()
        proc = self.process
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def callsign_bin() -> str:
    path = os.environ.get("CALLSIGN_BIN")
    if not path:
        raise RuntimeError("CALLSIGN_BIN is not set (use conformance/run.sh /path/to/callsign)")
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"CALLSIGN_BIN={path} is not an executable file")
    return path


def random_access_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _reader(stream, q: "queue.Queue[Optional[str]]", sink: List[str]) -> None:
    # Keep draining stdout for the server's whole life so it never blocks on a full pipe.
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        sink.append(line)
        q.put(line)
    q.put(None)


DATABASE_URL = os.environ.get("CALLSIGN_CONFORMANCE_DATABASE_URL")
# Dev mode: `serve --dev` (in memory, the well-known key hard-coded here as a test suite would).
DEV = os.environ.get("CALLSIGN_CONFORMANCE_DEV") == "1"
WELL_KNOWN_KEY = (
    "QBuLZH+Q1IfqHJvQiK57dWHoL4aWPLNRIH2UdY2a/Cl5wKmZcBq5zTarIMGw4CdvE+qCIBVL2U1Id9TtzwsDww=="
)
# The shortest token lifetime the server accepts: ACS's hour, or a minute under --dev.
MIN_MINUTES = 1 if DEV else 60
MASTER_KEY = os.environ.get("CALLSIGN_MASTER_KEY") or random_access_key()


def start_server(tls: bool, extra_args: List[str] = ()) -> CallsignServer:
    workdir = tempfile.mkdtemp(prefix="callsign-conformance-")
    data_dir = os.path.join(workdir, "data")
    os.mkdir(data_dir)
    if not DATABASE_URL:
        return _launch(tls, workdir, "stderr.log", list(extra_args))
    # Both nodes share the data dir, so they serve the same development TLS certificate.
    cluster = ["--database-url", DATABASE_URL] + list(extra_args)
    node_a = _launch(tls, workdir, "node-a.log", cluster)
    node_b = _launch(tls, workdir, "node-b.log", cluster)
    node_b.create_node = node_a
    return node_b


def _launch(tls: bool, workdir: str, stderr_name: str, extra: List[str]) -> CallsignServer:
    binary = callsign_bin()
    key = random_access_key()
    data_dir = os.path.join(workdir, "data")
    stderr_path = os.path.join(workdir, stderr_name)
    args = [binary, "serve", "--addr", "127.0.0.1:0", "--data", data_dir] + extra
    if DEV:
        args = [binary, "serve", "--dev", "--addr", "127.0.0.1:0"] + extra
        key = WELL_KNOWN_KEY
    if tls:
        args.append("--tls")
    env = dict(os.environ)
    env["CALLSIGN_ACCESS_KEY"] = key
    env["RUST_LOG"] = "warn"
    if DEV:
        env.pop("CALLSIGN_ACCESS_KEY")
        env.pop("CALLSIGN_DATA", None)
    if DATABASE_URL:
        env.pop("CALLSIGN_ACCESS_KEY")
        env["CALLSIGN_MASTER_KEY"] = MASTER_KEY
    stderr_file = open(stderr_path, "wb")
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=stderr_file, stdin=subprocess.DEVNULL, env=env
    )
    stderr_file.close()
    lines: List[str] = []
    q: "queue.Queue[Optional[str]]" = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q, lines), daemon=True).start()

    def fail(msg: str) -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        try:
            with open(stderr_path, "r", errors="replace") as f:
                tail = "".join(f.readlines()[-40:])
        except OSError:
            tail = ""
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(
            f"{msg}\ncommand: {' '.join(args)}\nstdout so far: {lines!r}\nstderr tail:\n{tail}"
        )

    endpoint = conn = ca = None
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while endpoint is None or conn is None or (tls and ca is None):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            fail("callsign did not print its endpoint/connection string within 60 s")
        try:
            line = q.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            fail(f"callsign exited (code {proc.wait()}) before printing its endpoint")
        if line.startswith("endpoint: "):
            endpoint = line[len("endpoint: "):].strip()
        elif line.startswith("connection string: "):
            conn = line[len("connection string: "):].strip()
        elif line.startswith("ca certificate: "):
            ca = line[len("ca certificate: "):].strip()

    if DATABASE_URL:
        key = conn.split("accesskey=", 1)[1]
    if DEV and conn.split("accesskey=", 1)[1] != WELL_KNOWN_KEY:
        fail("serve --dev did not serve the well-known development key")
    server = CallsignServer(
        transport="tls" if tls else "http",
        endpoint=endpoint,
        connection_string=conn,
        access_key=key,
        ca_path=ca,
        data_dir=workdir,
        stderr_path=stderr_path,
        process=proc,
        stdout_lines=lines,
    )

    # Wait for /healthz (it should already answer once the lines are printed).
    ctx = ssl.create_default_context(cafile=ca) if tls else None
    url = endpoint.rstrip("/") + "/healthz"
    last_err: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"callsign exited (code {proc.returncode}) while waiting for /healthz")
        try:
            with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
                if resp.status == 200:
                    return server
                last_err = f"status {resp.status}"
        except (urllib.error.URLError, OSError) as err:
            last_err = err
        time.sleep(0.2)
    fail(f"GET {url} did not return 200 within 60 s (last: {last_err})")
    raise AssertionError("unreachable")
