#!/usr/bin/env bash
# Runs the README's samples against real callsign servers and checks what each prints, so the
# README cannot drift from what works.
#
# Usage: samples/run.sh /path/to/callsign-binary [SAMPLE...]
#
# README.md is the source: a sample is the fenced code block that follows a marker line
# `<!-- sample: NAME -->`. Every NAME in the table below must be marked exactly once in the README
# and every marker must name a sample of the table, so a sample can be neither dropped from the
# README nor added without being run.
#
#   NAME         runs as                                     against
#   python-http  conformance/python/.venv/bin/python FILE    serve --dev (http)
#   python-tls   the same, with the export lines serve printed serve --tls (its own data dir, key)
#   js-http      node FILE.mjs (conformance/js/node_modules) serve --dev (http)
#   js-tls       the same, with the export lines serve printed serve --tls
#   cli          bash FILE, with the binary's directory first in PATH (a bare `callsign`)
#                                                            serve --dev (http)
#   rust         crates/callsign-identity/examples/quickstart.rs, which the block must equal
#                byte for byte (built here with cargo, debug profile) serve --dev (http)
#
# The samples are written for `callsign serve --dev` on its default address: 127.0.0.1:8080 in a
# sample becomes the address of the server started here (a free port, since other test runs may
# hold 8080). The TLS samples run with the environment that the `export` lines serve --tls prints
# give (CALLSIGN_CONNECTION_STRING, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS), as the README says to
# paste them; the Rust one gets CALLSIGN_CONNECTION_STRING, the connection string serve printed. A sample passes when it exits 0 within 120 s and its
# stdout has a line matching each of its expected patterns; otherwise this script names it, shows
# its output and exits 1.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 /path/to/callsign-binary [SAMPLE...]" >&2
  exit 2
fi
if [[ ! -x "$1" ]]; then
  echo "error: $1 is not an executable file" >&2
  exit 2
fi
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
readme="$root/README.md"
example="$root/crates/callsign-identity/examples/quickstart.rs"

all=(python-http python-tls js-http js-tls cli rust)
if (($#)); then selected=("$@"); else selected=("${all[@]}"); fi

# Expected output, as extended regular expressions that must each match a line of stdout. A
# user id and a token expiry (a date) for the SDK samples; the CLI prints JSON when piped.
expect() {
  case "$1" in
    python-http | python-tls | js-http | js-tls | rust) echo '^8:acs:[^ ]+ [0-9]{4}-[0-9]{2}-[0-9]{2}' ;;
    cli)
      echo '"id": *"8:acs:[^"]+"'
      echo '"token": *"eyJ[^"]+"'
      echo '"expiresOn": *"[0-9]{4}-[0-9]{2}-[0-9]{2}T'
      ;;
    *) return 1 ;;
  esac
}

work="$(mktemp -d -t callsign-samples-XXXXXX)"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# --- extract: one file per marked block, named after the marker -----------------------------------
# awk writes NAME<TAB>LINE for each marker to the index and the block's lines to $work/NAME.block;
# a marker not followed (after blank lines) by a fence, or a fence left open, is an error.
if ! awk -v dir="$work" '
  function fail(msg) { print "error: README.md line " NR ": " msg > "/dev/stderr"; bad = 1; exit 1 }
  state == "block" {
    if ($0 ~ /^```[ \t]*$/) { state = ""; close(out); next }
    print > out; next
  }
  state == "marker" {
    if ($0 ~ /^[ \t]*$/) next
    if ($0 !~ /^```/) fail("<!-- sample: " name " --> is not followed by a fenced code block")
    state = "block"; out = dir "/" name ".block"; printf "" > out; next
  }
  match($0, /^<!-- sample: [a-z0-9-]+ -->$/) {
    name = $0; sub(/^<!-- sample: /, "", name); sub(/ -->$/, "", name)
    if (name in seen) fail("sample " name " is marked twice (also line " seen[name] ")")
    seen[name] = NR; print name "\t" NR > (dir "/index"); state = "marker"; next
  }
  END { if (!bad && state != "") { print "error: README.md: sample " name " has no closing fence" > "/dev/stderr"; exit 1 } }
' "$readme"; then
  exit 1
fi
touch "$work/index"
status=0
while IFS=$'\t' read -r name line; do
  if ! expect "$name" >/dev/null; then
    echo "error: README.md line $line marks an unknown sample '$name' (known: ${all[*]}; samples/run.sh runs them)" >&2
    status=1
  fi
done <"$work/index"
for name in "${all[@]}"; do
  if [[ ! -f "$work/$name.block" ]]; then
    echo "error: README.md has no <!-- sample: $name --> block (samples/run.sh expects it)" >&2
    status=1
  fi
done
((status == 0)) || exit 1
readme_line() { awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$work/index"; }

# --- servers ---------------------------------------------------------------------------------------
# start_server NAME ARGS...: runs `callsign serve ARGS` on a free port and waits (up to 30 s) for
# the lines it prints, in one write, once listening (the export lines last); sets <NAME>_addr and
# <NAME>_cs, and writes $work/NAME.env.
start_server() {
  local name=$1 out="$work/$1.stdout" err="$work/$1.stderr" pid deadline
  shift
  : >"$out" # exists before the loop below reads it (the server opens it only once forked)
  RUST_LOG=warn "$bin" serve --addr 127.0.0.1:0 "$@" >"$out" 2>"$err" &
  pid=$!
  pids+=("$pid")
  deadline=$((SECONDS + 30))
  until grep -q '^export CALLSIGN_CONNECTION_STRING=' "$out"; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
      echo "error: callsign serve $* did not start (or printed no export CALLSIGN_CONNECTION_STRING" >&2
      echo "       line); its stdout, then stderr:" >&2
      cat "$out" >&2
      tail -n 20 "$err" >&2
      exit 1
    fi
    sleep 0.1
  done
  printf -v "${name}_cs" '%s' "$(sed -n 's/^connection string: //p' "$out")"
  printf -v "${name}_addr" '%s' "$(sed -n 's|^endpoint: https\{0,1\}://\([^/]*\)/.*|\1|p' "$out")"
  # The `export NAME='value'` lines it prints to paste into another shell, as NAME=value lines.
  sed -n "s/^export \([A-Z_]*\)='\(.*\)'\$/\1=\2/p" "$out" >"$work/$name.env"
}

needs() { local s; for s in "${selected[@]}"; do [[ "$s" == "$1"* ]] && return 0; done; return 1; }

# The official SDKs the conformance suites use, same pins (quick when already installed).
if needs python || needs js; then "$root/conformance/setup.sh"; fi
venv="$root/conformance/python/.venv"
# Node resolves an ES module's imports from node_modules beside it or above it.
ln -s "$root/conformance/js/node_modules" "$work/node_modules"

# The Rust sample is an example program; the README block must be that file, exactly.
if needs rust; then
  if ! diff -u --label "README.md (sample: rust, line $(readme_line rust))" "$work/rust.block" \
    --label "${example#"$root/"}" "$example" >"$work/rust.diff"; then
    echo "error: sample rust: the README block differs from ${example#"$root/"} (keep them identical):" >&2
    cat "$work/rust.diff" >&2
    exit 1
  fi
  # --workspace --examples: the feature set `cargo test --workspace` builds (dev-dependencies
  # included), so after test.sh's test step this only links the example.
  echo "== samples: building the Rust example (cargo build --workspace --examples)"
  started=$SECONDS
  (cd "$root" && cargo build --workspace --examples --locked --quiet)
  echo "   built in $((SECONDS - started)) s"
  target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
fi

# Set by start_server (printf -v).
dev_addr="" dev_cs=""
if needs python-http || needs js-http || needs cli || needs rust; then start_server dev --dev; fi
if needs python-tls || needs js-tls; then start_server tls --tls --data "$work/tls-data"; fi

# --- run -------------------------------------------------------------------------------------------
failed=()
for name in "${selected[@]}"; do
  if ! expect "$name" >/dev/null; then
    echo "error: unknown sample '$name' (known: ${all[*]})" >&2
    exit 2
  fi
  # Written for serve --dev on 127.0.0.1:8080: point it at the server started above.
  case "$name" in
    *-http | cli | rust) sed "s/127\.0\.0\.1:8080/${dev_addr}/g" "$work/$name.block" >"$work/$name.src" ;;
    *) cp "$work/$name.block" "$work/$name.src" ;;
  esac
  src="$work/$name.src"
  env_args=()
  case "$name" in
    python-http) cmd=("$venv/bin/python" "$src") ;;
    python-tls)
      # As the README says: in a shell where the export lines serve --tls printed were pasted.
      cmd=("$venv/bin/python" "$src")
      mapfile -t env_args <"$work/tls.env"
      ;;
    js-http) cp "$src" "$work/$name.mjs" && cmd=(node "$work/$name.mjs") ;;
    js-tls)
      cp "$src" "$work/$name.mjs" && cmd=(node "$work/$name.mjs")
      mapfile -t env_args <"$work/tls.env"
      ;;
    cli)
      # As a reader would paste it into a shell, which stops at the first failing command here.
      cmd=(bash -euo pipefail "$src")
      env_args=("PATH=$(dirname "$bin"):$PATH")
      ;;
    rust)
      cmd=("$target_dir/debug/examples/quickstart")
      env_args=("CALLSIGN_CONNECTION_STRING=$dev_cs")
      ;;
  esac
  started=$SECONDS
  rc=0
  # stdin from /dev/null: a sample must not wait for input. The samples run in $work (a temporary
  # directory), never beside the repository's files. CALLSIGN_CONNECTION_STRING is unset unless
  # the sample is given one, so that no sample passes by a value from the caller's environment.
  (cd "$work" && env -u CALLSIGN_CONNECTION_STRING "${env_args[@]}" timeout 120 "${cmd[@]}") \
    </dev/null >"$work/$name.out" 2>"$work/$name.err" || rc=$?
  problem=""
  if ((rc != 0)); then
    problem="exited with status $rc"
  else
    while IFS= read -r pattern; do
      if ! grep -Eq -- "$pattern" "$work/$name.out"; then
        problem="printed no line matching /$pattern/"
        break
      fi
    done < <(expect "$name")
  fi
  if [[ -z "$problem" ]]; then
    echo "== sample $name: ok ($((SECONDS - started)) s): $(head -c 160 "$work/$name.out" | head -n 1)"
  else
    echo "error: sample $name (README.md line $(readme_line "$name")) $problem; its stdout, then stderr:" >&2
    tail -n 20 "$work/$name.out" | sed 's/^/  | /' >&2
    tail -n 20 "$work/$name.err" | sed 's/^/  ! /' >&2
    failed+=("$name")
  fi
done

if ((${#failed[@]})); then
  echo "error: README samples failed: ${failed[*]}" >&2
  exit 1
fi
echo "== samples: all ${#selected[@]} README samples passed"
