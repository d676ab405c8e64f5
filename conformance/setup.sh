#!/usr/bin/env bash
# Installs the official SDKs the conformance suites and the README samples drive, at the versions
# pinned here: azure-communication-identity into conformance/python/.venv (requirements.txt) and
# @azure/communication-identity into conformance/js/node_modules (package-lock.json); and
# playwright-core, for the console's browser tests, into conformance/console/node_modules. Idempotent
# and quick once done (pip finds the pins satisfied; npm ci runs only when package-lock.json
# changed), so conformance/run.sh, samples/run.sh and test.sh's up-front check all call it.
# Each failure is one message naming the registry (PyPI or npm) and what to check.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log="$(mktemp -t callsign-setup-XXXXXX.log)"
trap 'rm -f "$log"' EXIT

venv="$here/python/.venv"
if [[ ! -x "$venv/bin/python" ]] && ! python3 -m venv "$venv" >"$log" 2>&1; then
  rm -rf "$venv" # a half-made venv (no pip) would be taken for a good one next time
  echo "error: python3 -m venv failed (Debian: apt-get install -y python3-venv):" >&2
  tail -n 5 "$log" >&2
  exit 1
fi
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$here/python/requirements.txt" >"$log" 2>&1; then
  echo "error: could not install conformance/python/requirements.txt from PyPI (or the configured" >&2
  echo "       index): the first run needs access to it; pip said:" >&2
  tail -n 5 "$log" >&2
  exit 1
fi

# npm ci deletes and reinstalls node_modules; a stamp of the lock file it installed skips that
# when nothing changed. js/: the JS SDK; console/: playwright-core for the console's browser
# tests (it drives Debian's chromium and downloads no browser).
for dir in js console; do
  stamp="$here/$dir/node_modules/.callsign-package-lock.sha256"
  want="$(sha256sum "$here/$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    if ! (cd "$here/$dir" && npm ci --no-audit --no-fund) >"$log" 2>&1; then
      echo "error: could not install conformance/$dir/package-lock.json from the npm registry (or" >&2
      echo "       the configured one): the first run needs access to it; npm said:" >&2
      tail -n 5 "$log" >&2
      exit 1
    fi
    echo "$want" >"$stamp"
  fi
done
