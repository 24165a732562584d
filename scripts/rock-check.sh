#!/bin/sh
# Checks the rock as a user gets it: clones this repository's committed HEAD into a scratch
# directory, builds and installs it there with `luarocks make` into a scratch tree, checks that
# `require "socket"` loads uvsocket from that tree, and runs every program in examples/ against
# the installed tree alone (not the build directory), with the arguments and expected output of
# spec/examples_spec.lua. Exits non-zero on any failure.
#
#   scripts/rock-check.sh [scratch-dir]   (default: a new temporary directory, removed after)
#
# Uncommitted changes are not part of the check: commit first.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${1:-}" ]; then
  scratch=$1
  mkdir -p "$scratch"
else
  scratch=$(mktemp -d /tmp/uvsocket-rock.XXXXXX)
  trap 'rm -rf "$scratch"' EXIT
fi
src=$scratch/src
tree=$scratch/tree
lua=lua5.4
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

rm -rf "$src" "$tree"
git clone -q "$repo" "$src"
cd "$src"
echo "== luarocks make into $tree"
if ! luarocks --lua-version 5.4 make --tree "$tree" rockspecs/uvsocket-scm-1.rockspec \
    >"$scratch/make.log" 2>&1; then
  cat "$scratch/make.log"
  echo "rock-check: luarocks make failed"
  exit 1
fi
grep "is now installed" "$scratch/make.log"
eval "$(luarocks --lua-version 5.4 path --tree "$tree")"

status=0
fail() { echo "FAIL: $*"; status=1; }

echo "== modules load from the tree"
version=$($lua -e 'print(require"socket"._VERSION)') || version=""
case $version in
  uvsocket\ *) echo "socket._VERSION: $version" ;;
  *) fail "require\"socket\"._VERSION is '$version', not uvsocket's" ;;
esac
for m in socket socket.core mime mime.core ltn12 socket.http socket.http.pool socket.async copas; do
  where=$($lua -e "print(package.searchpath('$m', package.path) or
    package.searchpath('$m', package.cpath))")
  case $where in
    "$tree"/*) ;;
    *) fail "$m resolves to '$where', outside $tree" ;;
  esac
done

# example NAME EXPECTED [ARGS...]: runs examples/NAME with ARGS; it must exit 0 and print a line
# matching the extended regular expression EXPECTED.
covered=" "
example() {
  name=$1 expected=$2
  shift 2
  covered="$covered$name "
  out=$scratch/$name.out
  if timeout 60 $lua "examples/$name" "$@" >"$out" 2>&1 && grep -Eq "$expected" "$out"; then
    echo "ok: $name $*"
  elif cat "$out" && echo "once more (as test-all.sh does for a failed test): $name $*" &&
      timeout 60 $lua "examples/$name" "$@" >"$out" 2>&1 && grep -Eq "$expected" "$out"; then
    echo "ok on the second run: $name $*"
  else
    cat "$out"
    fail "examples/$name $*"
  fi
}

# client_of SERVER CLIENT PORTLINE EXPECTED [SERVER_ARGS -- CLIENT_ARGS]: starts SERVER in the
# background, reads its port from the text after PORTLINE in its output, then runs CLIENT with
# the given arguments, the port substituted for PORT.
client_of() {
  server=$1 client=$2 portline=$3 expected=$4
  shift 4
  sargs=""
  while [ "$1" != "--" ]; do sargs="$sargs $1"; shift; done
  shift
  log=$scratch/$server.log
  # shellcheck disable=SC2086  # the server arguments are single words
  $lua "examples/$server" $sargs >"$log" 2>&1 &
  pid=$!
  port=""
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    port=$(sed -n "s/.*$portline//p" "$log" 2>/dev/null)
    [ -n "$port" ] && break
    sleep 0.2
  done
  if [ -z "$port" ]; then
    cat "$log"
    fail "examples/$server printed no port"
  else
    cargs=""
    for a in "$@"; do
      if [ "$a" = PORT ]; then a=$port; fi
      cargs="$cargs $a"
    done
    # shellcheck disable=SC2086
    example "$client" "$expected" $cargs
  fi
  covered="$covered$server "
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

echo "== examples against the installed tree"
example echo_server.lua "2000/2000 clients echoed" --check 2000
client_of echo_server.lua echo_client.lua "on port " "500/500 clients echoed" \
  0 -- 127.0.0.1 PORT 500
client_of daytime_server.lua daytime_client.lua "udp port " "[0-9]{2}:[0-9]{2}:[0-9]{2}" \
  0 1 -- localhost PORT
example unix_echo.lua "50/50 clients echoed"
example chat_server.lua "20/20 clients heard every other client" --check 20
example port_scanner.lua "scanned [0-9]+ ports" --check
example graceful_shutdown.lua "quick request: done 2, slow request: interrupted" --check
example http_download.lua "downloaded 8388608 bytes from http://127\.0\.0\.1:[0-9]+/file\.bin"
example send_mail.lua "message accepted by 127\.0\.0\.1:[0-9]+"
example ftp_transfer.lua "all transfers identical"
example json_api_server.lua "5 requests over 1 connection: 1 connection open" --check
example websocket_chat.lua "20/20 clients heard every other client" --check 20
example crawler.lua "crawled 60 pages \(0 failed\) in [0-9.]+ s with 4 at a time: 4 connections" --check
example fanout_fetch.lua "21 requests in [01]\.[0-9]+ s" --check
example tls_echo_server.lua "100/100 TLS clients echoed" --check 100
example https_download.lua "status 200, 8388608 bytes, certificate verified" --check
example worker_server.lua "stopped: true" --check

for f in examples/*.lua; do
  name=${f#examples/}
  case $covered in
    *" $name "*) ;;
    *) fail "examples/$name is not run by scripts/rock-check.sh" ;;
  esac
done

if [ $status -eq 0 ]; then echo "rock-check: all passed"; else echo "rock-check: FAILED"; fi
exit $status
