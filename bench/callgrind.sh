#!/bin/sh
# bench/callgrind.sh: user-space instructions per request of the uvsocket echo server, counted
# by callgrind (instruction counts repeat from run to run whatever else the machine does, unlike
# times). docs/performance.md quotes its figures for changes on the hot path.
#
#   bench/callgrind.sh [--build DIR] [--conns N] [--seconds S] [--server FILE] [--wrk] [--keep]
#
# --wrk drives an HTTP server with wrk (keep-alive GET /) instead of the echo load generator,
# e.g. `bench/callgrind.sh --wrk --conns 10 --server bench/servers/uvsocket/http_server.lua`.
#
# One server process runs under callgrind. A first load run warms it up (pool, collector,
# caches); then two measured runs of S and 2S seconds, each preceded by zeroing the counters and
# followed by a dump. The per-request figure is the difference of the two dumps divided by the
# difference of their request counts, so the fixed cost of a run (accepting the connections,
# spawning their tasks) cancels out. Prints one key=value line.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
conns=100
secs=4
server="$root/bench/servers/uvsocket/echo.lua"
keep=0
wrk=0
resume=0
while [ $# -gt 0 ]; do
  case "$1" in
    --resume) resume=1 ;;
    --build) build=$2; shift ;;
    --conns) conns=$2; shift ;;
    --seconds) secs=$2; shift ;;
    --server) server=$2; shift ;;
    --keep) keep=1 ;;
    --wrk) wrk=1 ;;
    *) echo "usage: $0 [--build DIR] [--conns N] [--seconds S] [--server FILE] [--wrk] [--keep]" >&2
       exit 2 ;;
  esac
  shift
done
if [ "$resume" = 1 ]; then
  stage="$build/stage"
  export LUA_PATH="$stage/share/lua/5.4/?.lua;$stage/share/lua/5.4/?/init.lua;;"
  export LUA_CPATH="$stage/lib/lua/5.4/?.so;;"
  tmp=$(mktemp -d)
  count() {  # tasks yields -> "resumes instructions"
    out=$(valgrind --tool=callgrind --callgrind-out-file="$tmp/r.cg" "${LUA:-lua5.4}" \
      "$root/bench/servers/uvsocket/resume.lua" "$1" "$2" 2>/dev/null)
    echo "${out#resumes=} $(sed -n 's/^summary: *\([0-9]*\).*/\1/p;s/^totals: *\([0-9]*\).*/\1/p' \
      "$tmp/r.cg" | head -n 1)"
  }
  set -- $(count 100 1000)
  r1=$1 i1=$2
  set -- $(count 100 10000)
  r2=$1 i2=$2
  rm -rf "$tmp"
  echo "resumes_a=$r1 instructions_a=$i1 resumes_b=$r2 instructions_b=$i2" \
    "instructions_per_resume=$(( (i2 - i1) / (r2 - r1) ))"
  exit 0
fi
loadgen="$build/bench/loadgen"
[ -x "$loadgen" ] || loadgen="$root/build/bench/loadgen"
stage="$build/stage"
tmp=$(mktemp -d)
port=$((20000 + $$ % 20000))
export LUA_PATH="$stage/share/lua/5.4/?.lua;$stage/share/lua/5.4/?/init.lua;;"
export LUA_CPATH="$stage/lib/lua/5.4/?.so;;"
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.%p" "${LUA:-lua5.4}" "$server" "$port" \
  2>"$tmp/valgrind.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; if [ "$keep" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi' EXIT
# load SECONDS: one run of the client; prints "requests=N".
load() {
  if [ "$wrk" = 1 ]; then
    wrk -t1 -c "$conns" -d "${1}s" "http://127.0.0.1:$port/" 2>/dev/null |
      sed -n 's/^ *\([0-9]*\) requests in.*/ requests=\1 /p'
  else
    "$loadgen" -m echo -p "$port" -c "$conns" -d "$1" -w 0 -C 60 2>/dev/null
  fi
}
i=0
until if [ "$wrk" = 1 ]; then wrk -t1 -c1 -d1s "http://127.0.0.1:$port/" 2>/dev/null |
        grep -q "requests in"; else
        "$loadgen" -m echo -p "$port" -c 1 -d 0.2 -w 0 >/dev/null 2>&1; fi; do
  i=$((i + 1))
  [ $i -lt 100 ] || { echo "callgrind.sh: the server did not start" >&2; exit 1; }
  sleep 0.2
done

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
total_ir() { sed -n 's/^summary: *\([0-9]*\).*/\1/p;s/^totals: *\([0-9]*\).*/\1/p' "$1" | head -n 1; }

run() {  # run SECONDS -> "requests instructions"
  callgrind_control -z "$pid" >/dev/null 2>&1
  out=$(load "$1")
  rm -f "$tmp"/cg."$pid".*
  callgrind_control -d "$pid" >/dev/null 2>&1
  f=$(ls "$tmp"/cg."$pid".* | tail -n 1)
  req=$(echo "$out" | field requests)
  echo "$((req + conns)) $(total_ir "$f")"
}

load "$secs" >/dev/null 2>&1
set -- $(run "$secs")
r1=$1 i1=$2
set -- $(run $((secs * 2)))
r2=$1 i2=$2
per=$(( (i2 - i1) / (r2 - r1) ))
echo "server=$(basename "$server") conns=$conns requests_a=$r1 instructions_a=$i1 requests_b=$r2 instructions_b=$i2 instructions_per_request=$per"
