#!/bin/sh
# Put a nats-server of 2.11.0 or later at DIR/nats-server for the JetStream
# tests and benchmarks (`make test` calls this with DIR = build/nats).
#
# Debian 12 ships nats-server 2.9.10, which can take two compare-and-set
# writes made on the same revision when both are in flight (fixed in
# 2.11.0; docs/STORAGE.md 10.6). jobq requires 2.11.0 or later, so the tests
# run on what production must run: the newest nats-server of Debian
# unstable, fetched with apt into DIR (the archive's signature is checked
# against the system's keyring as for any apt download) and unpacked there.
# Nothing is installed on the system. The binary is a static Go program
# apart from libc (>= 2.34; Debian 12 has 2.36).
#
# Idempotent: does nothing, and needs no network, when DIR/nats-server is
# there and new enough. JOBQ_NATS_SERVER=/path/to/nats-server uses that
# binary instead (it must be 2.11.0 or later too).
set -eu
DIR=${1:?usage: fetch-nats-server.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
MIN_MINOR=11

# 0 if $1 runs and says v2.N.x with N >= MIN_MINOR (or v3+).
new_enough() {
    v=$("$1" --version 2>/dev/null | sed -n 's/^nats-server: v\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')
    [ -n "$v" ] || return 1
    set -- $v
    [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge $MIN_MINOR ]; }
}

if [ -n "${JOBQ_NATS_SERVER:-}" ]; then
    new_enough "$JOBQ_NATS_SERVER" || {
        echo "jobq: JOBQ_NATS_SERVER=$JOBQ_NATS_SERVER is not nats-server 2.$MIN_MINOR.0 or later" >&2
        exit 1
    }
    ln -sf "$JOBQ_NATS_SERVER" "$DIR/nats-server"
    exit 0
fi
[ -x "$DIR/nats-server" ] && new_enough "$DIR/nats-server" && exit 0
if command -v nats-server > /dev/null && new_enough "$(command -v nats-server)"; then
    ln -sf "$(command -v nats-server)" "$DIR/nats-server"
    exit 0
fi

echo "jobq: fetching nats-server from Debian unstable into $DIR" >&2
A="$DIR/apt"
rm -rf "$A"
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/deb"
echo "deb http://deb.debian.org/debian sid main" > "$A/sources.list"
set -- -q -o "Dir::Etc::SourceList=$A/sources.list" \
    -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$A/lists" \
    -o "Dir::Cache=$A/cache" -o Dir::State::Status=/dev/null \
    -o "APT::Architectures::=$(dpkg --print-architecture)" -o Acquire::Languages=none \
    -o APT::Sandbox::User=root
apt-get "$@" update > "$A/update.log" 2>&1 || {
    cat "$A/update.log" >&2
    echo "jobq: cannot read Debian unstable's package index" >&2
    exit 1
}
(cd "$A/deb" && apt-get "$@" download nats-server) > "$A/download.log" 2>&1 || {
    cat "$A/download.log" >&2
    echo "jobq: cannot download nats-server from Debian unstable" >&2
    exit 1
}
dpkg-deb -x "$A"/deb/nats-server_*.deb "$A/root"
cp "$A/root/usr/sbin/nats-server" "$DIR/nats-server.new"
mv "$DIR/nats-server.new" "$DIR/nats-server"
rm -rf "$A"
new_enough "$DIR/nats-server" || {
    echo "jobq: the nats-server fetched does not run or is older than 2.$MIN_MINOR.0" >&2
    exit 1
}
echo "jobq: $("$DIR/nats-server" --version) in $DIR" >&2
