#!/usr/bin/env bash
# The web console's browser tests (console.test.js): Debian's headless Chromium, driven by
# playwright-core (conformance/console/package-lock.json; it downloads no browser), against one
# `callsign serve --tls`, with the official Python SDK of the conformance venv on the other side.
# Usage: conformance/console/run.sh /path/to/callsign-binary
# CALLSIGN_CONSOLE_SCREENSHOTS=DIR keeps the screenshots (docs/console/ holds the README's).
set -euo pipefail
if [[ $# -ne 1 || ! -x "$1" ]]; then
  echo "usage: $0 /path/to/callsign-binary" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CALLSIGN_BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
export CALLSIGN_BIN
# The pinned SDKs and playwright-core (quick when already installed).
"$here/../setup.sh"
cd "$here"
exec node --test --test-reporter=spec console.test.js
