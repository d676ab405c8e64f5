# Reads the output of `wrk --latency` and prints one line: req/s, p50 ms, p99 ms, non-2xx
# answers, requests. wrk prints latencies as 812.00us, 5.41ms or 1.02s.
#
#   wrk ... --latency URL | awk -f crates/callsign-bench/wrk/summary.awk

function ms(latency,  value, unit) {
  value = latency + 0
  unit = latency
  gsub(/[0-9.]/, "", unit)
  return (unit == "us") ? value / 1000 : (unit == "s") ? value * 1000 : value
}
/^Requests\/sec/ { rps = $2 }
$1 == "50%" { p50 = ms($2) }
$1 == "99%" { p99 = ms($2) }
/Non-2xx/ { non2xx = $5 }
/requests in/ { requests = $1 }
END { printf "%d %.3f %.3f %d %d\n", rps, p50, p99, non2xx, requests }
