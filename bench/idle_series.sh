#!/bin/sh
# bench/idle_series.sh BUILD_DIR BLOCKS [OUT_DIR]: the idle-dispatch p99
# target, measured over a long stretch instead of one run. Each block is
# what bench/run.sh does for that target: 8 short runs of 500 jobs each of
# jobq, beanstalkd -f 0 and the bare-ZeroMQ relay floor, taken in turns.
# The raw samples stay in OUT_DIR/block-N (a temporary directory, removed
# at the end, when OUT_DIR is not given), and bench/pool.py series prints
# each block's p99s and the whole series' pooled ones.
#
# One block takes about 45 s; BLOCKS is 1..100. ROUNDS (1..8) and PER
# (10..500 jobs) shrink a block, for a quick check. Loopback only: each
# beanstalkd on 127.0.0.1 with a private port and data directory, stopped
# by its pid; every tool runs under a 120 s timeout.
set -eu
BUILD=${1:-}
BLOCKS=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-8}
PER=${PER:-500}
case $BLOCKS$ROUNDS$PER in
'' | *[!0-9]*) BLOCKS=0 ;;
esac
if [ -z "$BUILD" ] || [ "$BLOCKS" -lt 1 ] || [ "$BLOCKS" -gt 100 ] ||
    [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 8 ] ||
    [ "$PER" -lt 10 ] || [ "$PER" -gt 500 ]; then
    echo "usage: [ROUNDS=1..8] [PER=10..500] idle_series.sh BUILD_DIR" \
        "BLOCKS(1..100) [OUT_DIR]" >&2
    exit 2
fi
for tool in jobq_latency beanstalk_bench floors; do
    if [ ! -x "$BUILD/bench/$tool" ]; then
        echo "idle_series: $BUILD/bench/$tool is missing: build first" >&2
        exit 1
    fi
done
command -v beanstalkd >/dev/null || {
    echo "idle_series: beanstalkd is missing (Debian: apt-get install" \
        "beanstalkd)" >&2
    exit 1
}
if [ -n "${3:-}" ]; then
    OUT=$3
    mkdir -p "$OUT"
    KEEP=1
else
    OUT=$(mktemp -d /tmp/jobq-idle-series-XXXXXX)
    KEEP=0
fi
BS_DATA="$OUT/bs-data"
. "$HERE/peers/beanstalkd.sh"
cleanup() {
    stop_server
    rm -rf "$BS_DATA"
    [ "$KEEP" = 1 ] || rm -rf "$OUT"
}
trap cleanup EXIT INT TERM

# once RAW CMD...: one run; a run that failed leaves no raw file (its block
# is then shorter, as in run.sh after three tries).
once() {
    once_raw=$1; shift
    "$@" --raw "$once_raw" > /dev/null 2>> "$OUT/errors.txt" ||
        rm -f "$once_raw"
}

bs_once() {  # RAW
    beanstalkd_start -b "$BS_DATA" -f 0
    once "$1" timeout 120 "$BUILD/bench/beanstalk_bench" "$port" \
        --idle "$PER" --mode binlog-f0
    stop_server
}

for b in $(seq 1 "$BLOCKS"); do
    dir="$OUT/block-$b"
    mkdir -p "$dir"
    date -u +%H:%M:%S > "$dir/started"
    for r in $(seq 1 "$ROUNDS"); do
        once "$dir/jobq-$r" timeout 120 "$BUILD/bench/jobq_latency" \
            "$BUILD/apps" --jobs "$PER"
        bs_once "$dir/bsf0-$r"
        once "$dir/floor-$r" timeout 120 "$BUILD/bench/floors" relay \
            --jobs "$PER"
    done
    echo "idle_series: block $b of $BLOCKS done" >&2
done
python3 "$HERE/pool.py" series "$OUT"
