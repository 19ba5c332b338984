#!/bin/sh
# Install the Debian 12 packages jobq builds and tests with, if any is
# missing. Idempotent: does nothing (and needs no network) when all are there.
# The JetStream tests need nats-server 2.11.0 or later, newer than Debian
# 12's: scripts/fetch-nats-server.sh puts one in the build directory.
set -eu
PKGS="build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev \
liblmdb-dev libcurl4-openssl-dev libcmocka-dev libjansson-dev libxml2-dev \
zlib1g-dev clang-format libmicrohttpd-dev chromium python3 python3-zmq \
python3-msgpack libnats-dev"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "jobq: installing missing packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
