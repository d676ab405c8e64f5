#!/usr/bin/env bash
# The harness against wrk on the same pinned server (BENCHMARKS.md, "The harness against wrk"):
# one `callsign serve` on core 0, then, alternately on core 1, callsign-bench and wrk, for
# `GET /healthz` and for issue-token, RUNS times, 16 connections, DURATION seconds each. Prints
# one line per measurement: run, tool, scenario, req/s, p99 ms, failed requests, the client's CPU
# time per request (user + system, µs; /usr/bin/time), the share of core 0 the server got and the
# share of core 0 left idle (/proc; idle time there means the client, not the server's core, was
# the limit), and the 1-minute load average.
#
#   cargo build --release -p callsign -p callsign-bench
#   crates/callsign-bench/wrk/compare.sh            # ES256; SIGNING_ALG=rs256 for RS256

set -euo pipefail
cd "$(dirname "$0")/../../.."
RUNS=${RUNS:-3} DURATION=${DURATION:-5} CONNECTIONS=${CONNECTIONS:-16}
SIGNING_ALG=${SIGNING_ALG:-es256} PORT=${PORT:-18080} USERS=${USERS:-256}
bin=target/release
data=$(mktemp -d) requests=$(mktemp) cpu=$(mktemp)
taskset -c 0 "$bin/callsign" serve --addr "127.0.0.1:$PORT" --data "$data" \
  --signing-alg "$SIGNING_ALG" >"$data.out" 2>/dev/null &
server=$!
trap 'kill $server; wait $server 2>/dev/null; rm -rf "$data" "$data.out" "$requests" "$cpu"' EXIT
until grep -q '^connection string: ' "$data.out" 2>/dev/null; do sleep 0.2; done
connection=$(sed -n 's/^connection string: //p' "$data.out")
url="http://127.0.0.1:$PORT"
load() { cut -d' ' -f1 /proc/loadavg; }
# clock ticks: the server's CPU time, core 0's idle time, core 0's total
ticks() {
  echo "$(awk '{print $14 + $15}' "/proc/$server/stat")" \
    "$(awk '$1 == "cpu0" {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)"
}
shares() { # ticks before, ticks after: "server% idle%" of core 0
  read -r s0 i0 t0 <<<"$1"
  read -r s1 i1 t1 <<<"$2"
  awk -v s=$((s1 - s0)) -v i=$((i1 - i0)) -v t=$((t1 - t0)) \
    'BEGIN { printf "%d%% %d%%", 100 * s / t, 100 * i / t }'
}
measure() { # tool scenario command...
  local before after result
  before=$(ticks)
  result=$("${@:3}")
  after=$(ticks)
  echo "$run $1 $2 $result $(shares "$before" "$after") $(load)"
}
timed() { /usr/bin/time -o "$cpu" -f '%U %S' taskset -c 1 "$@"; }
# µs of client CPU per request: the figure that says whether the client or the server is the bound
per_request() { awk -v n="$1" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$cpu"; }

harness() { # scenario
  local line
  line=$(timed "$bin/callsign-bench" --connection-string "$connection" \
    --scenarios "$1" --duration "$DURATION" --connections "$CONNECTIONS" --users "$USERS" \
    --openssl-seconds 0 --crypto-seconds 0)
  read -r rps p99 errors requests < <(python3 -c 'import json, sys
r = json.loads(sys.argv[1]); print(round(r["rps"]), r["p99_ms"], r["errors"], r["requests"])' "$line")
  echo "$rps $p99 $errors $(per_request "$requests")"
}

wrk_run() { # path [script args...]
  local out
  out=$(timed wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
  local rps p99 bad
  read -r rps _ p99 bad requests < <(awk -f crates/callsign-bench/wrk/summary.awk <<<"$out")
  echo "$rps $p99 $bad $(per_request "$requests")"
}

echo "run tool scenario req/s p99_ms errors client_cpu_us_per_request server_core0 idle_core0 load1"
for run in $(seq "$RUNS"); do
  measure callsign-bench healthz harness healthz
  measure wrk healthz wrk_run "$url/healthz"
  measure callsign-bench issue_token harness issue-token
  "$bin/callsign-bench" presign --connection-string "$connection" --scenario issue-token \
    --users "$USERS" >"$requests" 2>/dev/null
  measure wrk issue_token wrk_run -s crates/callsign-bench/wrk/presigned.lua "$url" -- "$requests"
done
