#!/bin/sh
# Configures and builds uvsocket into build/ (or build-asan/ with --sanitize).
set -eu
cd "$(dirname "$0")/.."
dir=build
opts=""
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  opts="-DUVSOCKET_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"
fi
cmake -S . -B "$dir" $opts >/dev/null
cmake --build "$dir" -j "$(nproc)"
echo "$dir"
