#!/bin/sh
# Sets everything up and runs every test: the Catch2 unit tests and the busted specs, in a
# normal build and again in an AddressSanitizer + UndefinedBehaviorSanitizer build.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
status=0
for variant in "" --sanitize; do
  dir=$(./scripts/build.sh $variant | tail -n 1)
  echo "== ctest in $dir"
  (cd "$dir" && ctest --output-on-failure -j 2) || status=1
done
exit $status
