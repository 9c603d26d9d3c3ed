#!/usr/bin/env bash
# Builds the libFuzzer harnesses (the `fuzz` CMake preset: Clang, ASan + UBSan) and runs each for
# a bounded time, two at a time (one per core), starting from the seed corpus in
# tests/fuzz/corpus/<name>/. New inputs go to the build tree; the seeds are never modified. A
# property failure stops that fuzzer, saves the input as crash-* in the build tree and makes the
# script fail: add that input to the seed corpus once fixed, so it stays a regression test.
# Usage: scripts/fuzz.sh [SECONDS_EACH]   (default 60)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
out=${KYSERA_FUZZ_DIR:-"$root/build/fuzz"}

bash "$root/scripts/install-deps.sh" full
cmake --preset fuzz -S "$root" -B "$out" >/dev/null
cmake --build "$out" -j "$(nproc)"

run_one() {  # name
  local name=$1 work="$out/fuzz-work/$1"
  rm -rf "$work" && mkdir -p "$work/corpus"
  cp "$root/tests/fuzz/corpus/$name/"* "$work/corpus/"
  if (cd "$work" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
        "$out/tests/fuzz/fuzz-$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 corpus >"$work/log" 2>&1); then
    echo "fuzz: $name: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$') inputs in ${seconds}s, no failure"
  else
    echo "fuzz: $name FAILED (log: $work/log)" >&2
    tail -n 30 "$work/log" >&2
    return 1
  fi
}

names=()
for bin in "$out"/tests/fuzz/fuzz-*; do
  [ -x "$bin" ] || continue
  names+=("${bin##*/fuzz-}")
done
[ ${#names[@]} -gt 0 ] || { echo "fuzz: no harness was built" >&2; exit 1; }
status=0
pids=()
for name in "${names[@]}"; do
  run_one "$name" & pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
