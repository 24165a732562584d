#!/bin/sh
# spec/support/netns.sh: runs a command in the private network (and mount) namespace that
# `unshare -rnm` made for it (spec/netns_spec.lua): brings its loopback up and, with --dns,
# points the resolver at spec/support/slowdns.py on 127.0.0.1:53 (a bind mount over
# /etc/resolv.conf, seen by this namespace only). Nothing leaves the namespace: it has no
# interface but its own loopback.
#   unshare -rnm sh spec/support/netns.sh [--dns] COMMAND...
set -eu
ip link set lo up
dns=
if [ "${1:-}" = --dns ]; then
  shift
  dir=$(mktemp -d)
  printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$dir/resolv.conf"
  mount --bind "$dir/resolv.conf" /etc/resolv.conf
  python3 "$(dirname "$0")/slowdns.py" "$dir/ready" "${SLOWDNS_DELAY:-0.5}" &
  dns=$!
  i=0
  while [ ! -e "$dir/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
fi
status=0
"$@" || status=$?
if [ -n "$dns" ]; then
  kill "$dns" 2>/dev/null || true
  wait "$dns" 2>/dev/null || true
  rm -rf "$dir"
fi
exit $status
