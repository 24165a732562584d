#!/bin/sh
# Sets everything up and runs every test: the Catch2 unit tests and the busted specs, in a
# normal build and again in an AddressSanitizer + UndefinedBehaviorSanitizer build (leak
# detection on); valgrind's memcheck over a subset of the specs, and every spec file but two again
# with the collector at its most eager (scripts/memcheck.sh); then a short run of every fuzz target
# (docs/reliability.md), and the rock as a user installs it (luarocks make into a scratch tree,
# every example run against it).
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
status=0
echo "== C and C++ formatting (scripts/format.sh --check)"
./scripts/format.sh --check || status=1
for variant in "" --sanitize; do
  dir=$(./scripts/build.sh $variant | tail -n 1)
  echo "== ctest in $dir"
  # A failed test is run once more (--repeat until-pass:2): a few specs assert timings that a
  # loaded machine can miss. The log keeps both runs: a test that needed the second is a flake
  # to fix (docs/reliability.md, "Known flakes"), never a pass to forget.
  (cd "$dir" && ctest --output-on-failure -j 2 --repeat until-pass:2) || status=1
done
echo "== valgrind memcheck over a subset, then the specs under GC stress (scripts/memcheck.sh)"
./scripts/memcheck.sh || status=1
echo "== fuzzers, about a minute (scripts/fuzz.sh --ci)"
./scripts/fuzz.sh --ci || status=1
echo "== luarocks make into a scratch tree, examples against it (scripts/rock-check.sh)"
./scripts/rock-check.sh || status=1
exit $status
