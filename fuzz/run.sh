#!/usr/bin/env bash
# Usage: fuzz/run.sh SECONDS [TARGET...]
#
# Builds the fuzz targets (libFuzzer, from the libfuzzer-sys crate, with rustc's SanitizerCoverage
# instrumentation: stable toolchain, no cargo-fuzz, no nightly) and runs each target, or the
# ones named, for an equal share of SECONDS in all. Each starts from its committed seeds in
# fuzz/corpus/TARGET (which hold every past crash too, so they are replayed first); what it
# discovers goes to a scratch corpus, or to CALLSIGN_FUZZ_CORPUS/TARGET when that is set.
#
# CALLSIGN_FUZZ_PROFILE=ci builds with the `ci` profile of fuzz/Cargo.toml (opt-level 1, no debug
# info): about a third less build time, for short runs where the build is most of the cost.
#
# Prints one line of figures per target and exits 1 if any target crashed, failed a property
# (a panic) or timed out; the input is kept in fuzz/artifacts/TARGET/ and the log's tail shown.
set -euo pipefail
cd "$(dirname "$0")"

total=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
all=(authorization raw_id_common raw_id_server identifier_model json_bodies jwt_introspect
  jwt_bearer jwks connection_string config_toml)
if (($#)); then targets=("$@"); else targets=("${all[@]}"); fi

host=$(rustc -vV | sed -n 's/^host: //p')
# What cargo-fuzz passes with `--sanitizer none`: 8-bit edge counters, the PC table and comparison
# tracing, for libFuzzer. --target keeps the flags off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
export CARGO_TARGET_DIR="$PWD/target"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
started=$SECONDS
echo "== fuzz: building ${#targets[@]} target(s)"
profile=${CALLSIGN_FUZZ_PROFILE:-release}
cargo build --profile "$profile" --locked --target "$host" "${bins[@]}"
echo "   built in $((SECONDS - started)) s"

tmp_base=${TMPDIR:-/tmp}
[[ -d /dev/shm && -w /dev/shm ]] && tmp_base=/dev/shm
scratch=$(mktemp -d "$tmp_base/callsign-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export CALLSIGN_FUZZ_TMP="$scratch"

# Each target gets an equal share of what is left, so the run keeps to SECONDS in all (libFuzzer
# stops at the first whole second past -max_total_time, hence the 1 s taken off).
run_start=$SECONDS
left=${#targets[@]}
failed=0
passed=0
printf '%-18s %10s %8s %7s %7s %7s %s\n' target runs secs exec/s cov ft crashes
for t in "${targets[@]}"; do
  corpus="$scratch/corpus/$t"
  [[ -n "${CALLSIGN_FUZZ_CORPUS:-}" ]] && corpus="$CALLSIGN_FUZZ_CORPUS/$t"
  mkdir -p "$corpus" "corpus/$t" "artifacts/$t"
  log="$scratch/$t.log"
  status=0
  per=$(((total - (SECONDS - run_start)) / left - 1))
  ((per >= 1)) || per=1
  left=$((left - 1))
  "target/$host/$profile/$t" -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" "$corpus" "corpus/$t" 2>"$log" \
    || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if ((status == 0)); then
    passed=$((passed + 1))
    printf '%-18s %10s %8s %7s %7s %7s %s\n' "$t" "${runs:-?}" "${secs:-?}" "${rate:-?}" \
      "${cov:-?}" "${ft:-?}" 0
  else
    failed=$((failed + 1))
    printf '%-18s %10s %8s %7s %7s %7s %s\n' "$t" "${runs:-?}" "${secs:-?}" "${rate:-?}" \
      "${cov:-?}" "${ft:-?}" "1 (exit $status)"
    echo "---- $t: last lines of its log"
    tail -40 "$log"
    echo "---- input kept in fuzz/artifacts/$t/; replay: fuzz/target/$host/$profile/$t FILE"
  fi
done
echo "   ran in $((SECONDS - run_start)) s"
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
