#!/bin/sh
# Sets everything up and runs the main demo: examples/echo_server.lua serving concurrent
# clients in one thread, checked by examples/echo_client.lua from a second process.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
dir=$(./scripts/build.sh | tail -n 1)
. ./scripts/env.sh "$dir"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
out=$(mktemp)
lua5.4 examples/echo_server.lua 0 > "$out" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$out"' EXIT
port=""
for _ in $(seq 50); do
  port=$(sed -n 's/.*on port //p' "$out")
  [ -n "$port" ] && break
  sleep 0.1
done
echo "echo_server.lua is listening on port $port (pid $server)"
lua5.4 examples/echo_client.lua 127.0.0.1 "$port" 2000
