#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the Rust unit and integration tests, a short
# run of the fuzz targets, the conformance suites that drive a real callsign server with the
# official ACS SDKs (Python, JS), the web console in headless Chromium, the README's samples, and the container image, built from the
# release binary and smoke-tested.
set -euo pipefail
cd "$(dirname "$0")"
if [[ $# -gt 1 || ( $# -eq 1 && "$1" != --prerequisites ) ]]; then
  echo "usage: $0 [--prerequisites]" >&2
  exit 2
fi

# --- prerequisites (README.md, "Running the tests"), all checked before anything is built, so a
# missing one costs seconds rather than a build: one message for each that is missing, naming
# the Debian package (.ci/run installs them on a fresh machine), then exit 1.
missing=0
lacks() {
  echo "error: $*" >&2
  missing=$((missing + 1))
}
# major.minor of "X.Y[.Z]" as a comparable number.
version_number() { awk -F. '{ print $1 * 1000 + $2 }' <<<"$1"; }

rust_version=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
  lacks "Rust (cargo, rustc) is not installed: https://rustup.rs, then" \
    "rustup component add clippy rustfmt"
else
  have=$(rustc --version | awk '{ print $2 }')
  if (($(version_number "$have") < $(version_number "$rust_version"))); then
    lacks "Rust $rust_version or newer is needed (Cargo.toml rust-version), rustc is $have:" \
      "rustup update stable"
  fi
  cargo fmt --version >/dev/null 2>&1 || lacks "rustfmt is not installed: rustup component add rustfmt"
  cargo clippy --version >/dev/null 2>&1 || lacks "clippy is not installed: rustup component add clippy"
fi
# cc links every Rust binary; c++ builds libFuzzer for the fuzz targets (fuzz/README.md).
if ! command -v cc >/dev/null || ! command -v c++ >/dev/null; then
  lacks "a C and C++ compiler (cc, c++; linking, and libFuzzer for the fuzz targets):" \
    "apt-get install -y g++"
fi
# The SDK conformance suites and README samples run in a venv (conformance/setup.sh).
if ! command -v python3 >/dev/null; then
  lacks "Python 3 is not installed (the Python SDK suites): apt-get install -y python3 python3-venv"
elif ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  lacks "Python's venv module (with ensurepip) is not installed: apt-get install -y python3-venv"
fi
# The @azure packages of conformance/js/package-lock.json declare engines node >= 20.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  lacks "Node.js 20 or newer with npm is not installed (the JS SDK suites): apt-get install -y" \
    "nodejs npm on Debian 13; Debian 12's is 18, take NodeSource's nodejs 20 there"
elif (($(version_number "$(node --version | tr -d v)") < 20000)); then
  lacks "Node.js 20 or newer is needed (the @azure packages' engines), node is $(node --version):" \
    "Debian 13's nodejs, or NodeSource's on Debian 12"
fi
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null \
  && [[ -z "${CALLSIGN_PG_BIN:-}" ]]; then
  lacks "the PostgreSQL tests need initdb and pg_ctl (they start throwaway clusters):" \
    "apt-get install -y postgresql, or set CALLSIGN_PG_BIN to their directory"
fi
# As root the PostgreSQL tests run initdb and the server as `postgres` (initdb refuses root).
if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
  lacks "running as root, the PostgreSQL tests need a postgres user: apt-get install -y" \
    "postgresql creates it, or useradd --system --no-create-home postgres"
fi
# The container step chroots into the image and runs it with podman, as root; crun refuses
# hybrid cgroup v1/v2 hosts, where build.sh falls back to runc.
if [[ "$(id -u)" != 0 ]]; then
  lacks "the container image step runs as root (chroot into the image, podman): run ./test.sh" \
    "as root, as CI does"
fi
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  lacks "the container image step needs podman and runc:" \
    "apt-get install -y --no-install-recommends podman runc"
fi
# The console's browser tests (conformance/console) drive Debian's Chromium headless.
if ! command -v chromium >/dev/null; then
  lacks "Chromium is not installed (the web console's browser tests): apt-get install -y" \
    "chromium chromium-driver"
fi
if ((missing)); then
  echo "error: $missing prerequisite(s) of ./test.sh missing (README.md, \"Running the tests\"); .ci/run" >&2
  echo "       installs them on a fresh Debian machine" >&2
  exit 1
fi

# Registry access, also up front: the crates of both lock files (downloaded once; instant and
# offline when they are), then the pinned Python and JS SDKs (conformance/setup.sh, the same).
echo "== prerequisites: crates, the Python and JS SDKs"
if ! cargo fetch --locked --quiet || ! cargo fetch --locked --quiet --manifest-path fuzz/Cargo.toml; then
  echo "error: could not download the crates of Cargo.lock and fuzz/Cargo.lock from crates.io (or" >&2
  echo "       the configured registry): the first run needs access to it" >&2
  exit 1
fi
conformance/setup.sh
# `./test.sh --prerequisites` stops here: the checks alone (seconds).
[[ "${1:-}" != --prerequisites ]] || exit 0
# ... and that check's own test: with some prerequisites hidden, it names each one (about 2 s).
.ci/prerequisites-test.sh

echo "== cargo fmt --check"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# ... and with the span export, the callsign crate's `otlp` feature, which the default build
# leaves out (docs/tracing.md).
cargo clippy --workspace --all-targets --locked --features callsign/otlp -- -D warnings

echo "== cargo build"
cargo build --workspace --locked

echo "== Rust tests"
# The span export (the `otlp` feature, docs/tracing.md) has one test file of its own, run again
# with the feature: the workspace's features plus that one, so that only the new crates and the
# crates the feature touches are built again, not a second workspace.
otlp=(--workspace --locked --no-fail-fast --features callsign/otlp --test otlp)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo nextest run "${otlp[@]}"
else
  cargo test --workspace --locked --no-fail-fast
  cargo test "${otlp[@]}"
fi
cargo test --workspace --locked --doc

echo "== fuzzing: every fuzz target for a short while (fuzz/README.md; 60 s in all)"
CALLSIGN_FUZZ_PROFILE=${CALLSIGN_FUZZ_PROFILE:-ci} fuzz/run.sh "${CALLSIGN_FUZZ_SECONDS:-60}"

echo "== benchmark harness: a smoke run (checks it works; no timing assertions)"
target/debug/callsign-bench --server-bin target/debug/callsign --duration 0.5 --connections 4 \
  --users 8 --openssl-seconds 1 --crypto-seconds 0.1 --label smoke
# ... and its several-processes path (children merged into one line per scenario)
target/debug/callsign-bench --server-bin target/debug/callsign --duration 0.3 --connections 4 \
  --processes 2 --users 8 --openssl-seconds 0 --crypto-seconds 0 --label smoke \
  --scenarios healthz,issue-token,issue-token-half-load,mixed

echo "== conformance: the official SDKs against callsign"
conformance/run.sh target/debug/callsign

echo "== console: the web console in headless Chromium, with the Python SDK (conformance/console)"
conformance/console/run.sh target/debug/callsign

echo "== README samples: each marked block of README.md run against a real server (samples/run.sh)"
samples/run.sh target/debug/callsign

# One release build, shared by the steps below (and any later one that needs a release binary).
echo "== cargo build --release -p callsign"
cargo build --release -p callsign --locked

# The README's install command, checked to be there and to work: into a throwaway root, reusing
# the release build above (seconds; same profile and features).
echo "== cargo install --path crates/callsign --locked (README, Quick start)"
if ! grep -qxF 'cargo install --path crates/callsign --locked' README.md; then
  echo "error: README.md no longer says cargo install --path crates/callsign --locked; update test.sh" >&2
  exit 1
fi
install_root=$(mktemp -d -t callsign-install-XXXXXX)
cargo install --path crates/callsign --locked --quiet --root "$install_root" --target-dir target
"$install_root/bin/callsign" --version
rm -rf "$install_root"

echo "== container image: build it from target/release/callsign and smoke-test it"
container/build.sh --smoke-test target/release/callsign
