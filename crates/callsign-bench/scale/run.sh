#!/bin/bash
# One scale run: `callsign serve` on DATADIR pinned to core 0 (ES256, the default log level), wrk
# on core 1, 16 connections, issuing tokens for the first K identities of IDSFILE (an export
# file, or lines of one), each request pre-signed by `callsign-bench presign --ids-from`. Prints
# the run's rate, p50/p99, non-2xx count, load average and the server's RSS.
#
#   usage: run.sh DATADIR IDSFILE K [SECONDS]   (binaries: BIN, default target/release)
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../../../target/release}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
D=$1; IDS=$2; K=$3; SECS=${4:-5}
URL=http://127.0.0.1:18090
taskset -c 0 "$BIN/callsign" serve --addr 127.0.0.1:18090 --data "$D" --signing-alg es256 \
  > "$T/out" 2> "$T/err" &
PID=$!
for _ in $(seq 300); do grep -q "connection string" "$T/out" 2>/dev/null && break; sleep 0.1; done
CS=$(sed -n 's/^connection string: //p' "$T/out")
"$BIN/callsign-bench" presign --connection-string "$CS" --scenario issue-token --users "$K" \
  --ids-from "$IDS" > "$T/requests" 2>/dev/null
taskset -c 1 wrk -t1 -c16 -d"${SECS}s" --latency -s "$HERE/../wrk/presigned.lua" "$URL" \
  -- "$T/requests" > "$T/wrk"
read -r RPS P50 P99 NON2XX _ < <(awk -f "$HERE/../wrk/summary.awk" "$T/wrk")
R="rps=$RPS p50_ms=$P50 p99_ms=$P99 non2xx=$NON2XX"
RSS=$(awk '/VmRSS/{print $2}' "/proc/$PID/status")
echo "$(basename "$D") k=$K load=$(cut -d' ' -f1 /proc/loadavg) rss_kb=$RSS $R"
kill $PID; wait $PID 2>/dev/null || true
