#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the Rust unit and integration tests, a short
# run of the fuzz targets, the conformance suites that drive a real callsign server with the
# official ACS SDKs (Python, JS), the README's samples, and the container image, built from the
# release binary and smoke-tested.
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo fmt --check"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo build"
cargo build --workspace --locked

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null \
  && [[ -z "${CALLSIGN_PG_BIN:-}" ]]; then
  echo "error: the PostgreSQL tests need initdb and pg_ctl: apt-get install -y postgresql" >&2
  echo "       (or set CALLSIGN_PG_BIN to their directory); .ci/run installs them" >&2
  exit 1
fi

if ! command -v podman >/dev/null; then
  echo "error: the container image step needs podman (and runc where crun cannot run" >&2
  echo "       containers): apt-get install -y --no-install-recommends podman runc; .ci/run" >&2
  echo "       installs them" >&2
  exit 1
fi

echo "== Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
cargo test --workspace --locked --doc

echo "== fuzzing: every fuzz target for a short while (fuzz/README.md; 60 s in all)"
CALLSIGN_FUZZ_PROFILE=${CALLSIGN_FUZZ_PROFILE:-ci} fuzz/run.sh "${CALLSIGN_FUZZ_SECONDS:-60}"

echo "== benchmark harness: a smoke run (checks it works; no timing assertions)"
target/debug/callsign-bench --server-bin target/debug/callsign --duration 0.5 --connections 4 \
  --users 8 --openssl-seconds 1 --crypto-seconds 0.1 --label smoke

echo "== conformance: the official SDKs against callsign"
conformance/run.sh target/debug/callsign

echo "== README samples: each marked block of README.md run against a real server (samples/run.sh)"
samples/run.sh target/debug/callsign

# One release build, shared by the steps below (and any later one that needs a release binary).
echo "== cargo build --release -p callsign"
cargo build --release -p callsign --locked

echo "== container image: build it from target/release/callsign and smoke-test it"
container/build.sh --smoke-test target/release/callsign
