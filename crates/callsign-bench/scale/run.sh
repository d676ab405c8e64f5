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
# wrk prints latencies as 812.00us, 5.41ms or 1.02s
R=$(awk 'function ms(s,  v, u) { v = s + 0; u = s; gsub(/[0-9.]/, "", u)
      return (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }
  /^Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
  /Non-2xx/ { bad = $5 }
  END { printf "rps=%d p50_ms=%.2f p99_ms=%.2f non2xx=%d", rps, p50, p99, bad }' "$T/wrk")
RSS=$(awk '/VmRSS/{print $2}' "/proc/$PID/status")
echo "$(basename "$D") k=$K load=$(cut -d' ' -f1 /proc/loadavg) rss_kb=$RSS $R"
kill $PID; wait $PID 2>/dev/null || true
