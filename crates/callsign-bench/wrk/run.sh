#!/bin/bash
# One wrk run against a pinned callsign server: the server on core 0 (a fresh data dir), wrk on
# core 1, 16 connections, pre-signed requests (presign.py; valid within the 5-minute date skew).
# Prints one JSON line: req/s, p50/p99/p99.9, non-2xx, the load average before and after, and
# the server's CPU time (all threads, user + system) per request.
#
#   usage: run.sh CALLSIGN_BIN ALG(rs256|es256|eddsa) SCENARIO(issue|healthz) SECONDS [CONNECTIONS]
#   RT=1 runs server and wrk at SCHED_FIFO priority 1 (chrt), so that other work on a shared
#   machine does not decide the server's share of its core (needs root; the kernel's RT
#   throttling still idles the core 50 ms a second, so read p50 there, not p99).
set -e
HERE=$(dirname "$0")
BIN=$1; ALG=$2; SC=$3; SECS=$4; CONNS=${5:-16}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
RUST_LOG=warn ${RT:+chrt -f 1} taskset -c 0 "$BIN" serve --addr 127.0.0.1:0 --data "$D/data" \
  --signing-alg "$ALG" > "$D/out" 2> "$D/err" &
PID=$!
for _ in $(seq 100); do grep -q "connection string" "$D/out" 2>/dev/null && break; sleep 0.1; done
CS=$(sed -n 's/^connection string: //p' "$D/out")
EP=$(echo "$CS" | sed 's/endpoint=\([^;]*\);.*/\1/')
python3 "$HERE/presign.py" "$CS" 256 "$D/req.lua" "$SC"
cpu() { awk '{print $14+$15}' "/proc/$PID/stat"; }
LOAD=$(cut -d' ' -f1 /proc/loadavg)
C0=$(cpu)
R=$(${RT:+chrt -f 1} taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$D/req.lua" "$EP" | sed -n 's/^JSON //p')
C1=$(cpu)
LOAD2=$(cut -d' ' -f1 /proc/loadavg)
kill $PID; wait $PID 2>/dev/null || true
CPU_US=$(python3 -c "import json; r=json.loads('$R'); print(round(($C1-$C0)*1e6/$(getconf CLK_TCK)/(r['rps']*$SECS),1))")
echo "{\"alg\": \"$ALG\", \"scenario\": \"$SC\", \"rt\": ${RT:-0}, \"load_before\": $LOAD, \"load_after\": $LOAD2, \"cpu_us_per_req\": $CPU_US, \"result\": $R}"
