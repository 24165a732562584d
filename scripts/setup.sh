#!/bin/sh
# Installs the Debian 12 packages uvsocket needs to build and test (run as root, or with sudo
# available). Safe to run more than once.
set -eu
PKGS="build-essential cmake pkg-config lua5.4 liblua5.4-dev libuv1-dev catch2 lua-busted
      iproute2 procps psmisc
      nginx python3-pyftpdlib python3-aiosmtpd"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
