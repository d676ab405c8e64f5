#!/usr/bin/env bash
# Conformance suites: drive a callsign server with the official ACS Identity clients.
# Usage: conformance/run.sh /path/to/callsign-binary
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 /path/to/callsign-binary" >&2
  exit 2
fi
if [[ ! -x "$1" ]]; then
  echo "error: $1 is not an executable file" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CALLSIGN_BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
export CALLSIGN_BIN

status=0

# The pinned SDKs: the Python venv and node_modules (quick when already installed).
"$here/setup.sh"
venv="$here/python/.venv"

echo "== python: azure-communication-identity (pytest)"
(cd "$here/python" && "$venv/bin/python" -m pytest -q -p no:cacheprovider) || status=1

echo "== python, cluster: a data dir moved into PostgreSQL (callsign export | callsign import), then"
echo "   two nodes on that database (creates on node A, the rest on B)"
# shellcheck source=pg-cluster.sh
source "$here/pg-cluster.sh"
pg_cluster_start
trap pg_cluster_stop EXIT
CALLSIGN_MASTER_KEY="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export CALLSIGN_MASTER_KEY
# The data dir an earlier release wrote (crates/callsign-server/tests/fixtures), with its keys.
moved="$(mktemp -d -t callsign-moved-XXXXXX)"
cp -r "$here/../crates/callsign-server/tests/fixtures/legacy-035d746/datadir" "$moved/data"
chmod 600 "$moved/data/access-keys.json" "$moved"/data/signing/*.key.pem
"$CALLSIGN_BIN" export --data "$moved/data" --include-keys >"$moved/export.jsonl" 2>/dev/null
"$CALLSIGN_BIN" import "$moved/export.jsonl" --database-url "$PG_CLUSTER_URL"
rm -rf "$moved"
(cd "$here/python" && CALLSIGN_CONFORMANCE_DATABASE_URL="$PG_CLUSTER_URL" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider) || status=1
pg_cluster_stop
trap - EXIT

echo "== python, dev: serve --dev (in memory, the well-known key, over http and --tls)"
(cd "$here/python" && CALLSIGN_CONFORMANCE_DEV=1 \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider) || status=1

echo "== js: @azure/communication-identity (node --test)"
(cd "$here/js" && node --test --test-reporter=spec test/) || status=1

exit "$status"
