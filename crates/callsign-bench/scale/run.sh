#!/bin/bash
# One scale run: `callsign serve` on DATADIR pinned to core 0 (ES256), wrk on core 1, 16
# connections, issuing tokens for K identities sampled from IDSFILE (an export file, or lines of
# one). Prints the run's rate, p50/p99, non-2xx count, load average and the server's RSS.
#
#   usage: run.sh DATADIR IDSFILE K [SECONDS]      (CALLSIGN: the binary, default target/release)
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
CALLSIGN=${CALLSIGN:-$HERE/../../../target/release/callsign}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
D=$1; IDS=$2; K=$3; SECS=${4:-5}
RUST_LOG=warn taskset -c 0 $CALLSIGN serve --addr 127.0.0.1:18090 --data $D --signing-alg es256 > $T/out 2>$T/err &
PID=$!
for _ in $(seq 300); do grep -q "connection string" $T/out 2>/dev/null && break; sleep 0.1; done
CS=$(sed -n 's/^connection string: //p' $T/out)
python3 $HERE/presign_ids.py "$CS" $IDS $K $T/req.lua
R=$(taskset -c 1 wrk -t1 -c16 -d${SECS}s -s $T/req.lua http://127.0.0.1:18090 | sed -n 's/^JSON //p')
RSS=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
echo "$(basename $D) k=$K load=$(cut -d' ' -f1 /proc/loadavg) rss_kb=$RSS $R"
kill $PID; wait $PID 2>/dev/null || true
