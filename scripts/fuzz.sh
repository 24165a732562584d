#!/bin/sh
# Builds the libFuzzer targets of fuzz/ with clang into build-fuzz/ and runs them.
#
#   scripts/fuzz.sh [target [seconds]]   one target (pattern, mime, url, ...) or all of them, for
#                                        `seconds` each (default 300): the long runs
#   scripts/fuzz.sh --ci                 every target for a short time, about a minute in all;
#                                        exits non-zero on any finding
#
# Each target reads its seeds from fuzz/corpus/<name>/ (committed, never written to) and keeps
# what it discovers in build-fuzz/corpus/<name>/, so later runs start from there. A finding (a
# crash, a sanitizer report, a broken invariant, a timeout) is written to
# build-fuzz/findings/<name>/; replay it with `build-fuzz/fuzz/<name>_fuzz FILE`. The log of the
# last run of each target is build-fuzz/logs/<name>.log, and a summary line per target is
# printed at the end: executions, executions per second, coverage (cov: edges of the C++ code,
# ft: features, which include the url target's Lua line pairs).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
dir=build-fuzz
CI_BUDGET=60   # seconds for all targets together in --ci mode

ci=0
only=""
seconds=300
if [ "${1:-}" = "--ci" ]; then
  ci=1
elif [ -n "${1:-}" ]; then
  only=$1
  seconds=${2:-300}
fi

cmake -S . -B "$dir" -DUVSOCKET_FUZZ=ON -DUVSOCKET_TESTS=OFF -DUVSOCKET_BENCH=OFF \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >/dev/null
cmake --build "$dir" --target fuzzers -j "$(nproc)" >/dev/null

targets=""
for src in fuzz/*_fuzz.cpp; do
  name=$(basename "$src" _fuzz.cpp)
  if [ -z "$only" ] || [ "$only" = "$name" ]; then targets="$targets $name"; fi
done
if [ -z "$targets" ]; then
  echo "fuzz.sh: no target named '$only' (fuzz/${only}_fuzz.cpp)" >&2
  exit 2
fi
if [ "$ci" = 1 ]; then
  count=$(echo $targets | wc -w)
  seconds=$((CI_BUDGET / count))
  if [ "$seconds" -lt 5 ]; then seconds=5; fi
fi

status=0
summary=""
for name in $targets; do
  corpus=$dir/corpus/$name
  findings=$dir/findings/$name
  log=$dir/logs/$name.log
  mkdir -p "$corpus" "$findings" "$(dirname "$log")" "fuzz/corpus/$name"
  echo "== fuzz $name for ${seconds}s"
  rc=0
  # -timeout: an input that takes 10 s is a hang (an endless loop is a finding too).
  "$dir/fuzz/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$root/$findings/" \
    "$corpus" "fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
  line="$name: ${execs:-?} executions, ${speed:-?}/s, ${cov:-no coverage line}"
  if [ "$rc" != 0 ]; then
    status=1
    line="$line: FINDING (exit $rc), see $log and $findings/"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|invariant broken|property broken)' "$log" | head -n 5 >&2 \
      || true
  fi
  summary="$summary$line
"
done
printf '%s' "$summary"
exit $status
