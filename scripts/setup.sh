#!/bin/sh
# Installs the Debian 12 packages uvsocket needs to build and test (run as root, or with sudo
# available). Safe to run more than once.
set -eu
PKGS="build-essential cmake pkg-config lua5.4 liblua5.4-dev libuv1-dev catch2 lua-busted
      clang libclang-rt-14-dev clang-format
      iproute2 procps psmisc valgrind
      luarocks libssl-dev openssl lua-sec lua-socket lua-copas pandoc lua-check wrk
      nginx python3-pyftpdlib python3-aiosmtpd python3-websockets"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  # The tests start their own servers (nginx among them) on free loopback ports: keep the
  # packages from starting system services while they install.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  if [ -n "$policy" ]; then $SUDO rm -f "$policy"; fi
fi
