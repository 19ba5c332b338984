#!/bin/sh
# bench/trace_idle.sh BUILD_DIR [jobq|floor] [JOBS]: run one idle-dispatch
# measurement (jobq_latency, or the bare-ZeroMQ relay floor) under a
# scheduler trace and print where each sample's time went, hop by hop
# (bench/hops.py). JOBS defaults to 2000, within 10..100000.
#
# Needs perf (Debian: linux-perf, installed here when missing and run as
# root) and the right to trace the whole machine. Loopback only, bounded
# like the tools it runs; the trace is kept in a temporary directory,
# removed at the end unless KEEP=1.
set -eu
BUILD=${1:-build}
WHAT=${2:-jobq}
JOBS=${3:-2000}
HERE=$(cd "$(dirname "$0")" && pwd)
case $WHAT in
jobq) set -- "$BUILD/bench/jobq_latency" "$BUILD/apps" --jobs "$JOBS" ;;
floor) set -- "$BUILD/bench/floors" relay --jobs "$JOBS" ;;
*)
    echo "usage: trace_idle.sh BUILD_DIR [jobq|floor] [JOBS]" >&2
    exit 2
    ;;
esac
if [ ! -x "$1" ]; then
    echo "trace_idle: $1 is missing: build first (make build)" >&2
    exit 1
fi
if ! command -v perf >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "trace_idle: installing linux-perf" >&2
        apt-get install -y linux-perf >/dev/null
    else
        echo "trace_idle: perf is missing (Debian: apt-get install linux-perf)" >&2
        exit 1
    fi
fi
DIR=$(mktemp -d /tmp/jobq-trace-XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR"' EXIT INT TERM
timeout 180 perf record -q -k mono -a -o "$DIR/perf.data" \
    -e sched:sched_switch -e sched:sched_wakeup -- \
    "$@" --raw "$DIR/raw" >"$DIR/out" 2>&1 || {
    echo "trace_idle: the traced run failed:" >&2
    tail -5 "$DIR/out" >&2
    exit 1
}
tail -1 "$DIR/out"
perf script -i "$DIR/perf.data" -F comm,pid,tid,cpu,time,event,trace \
    >"$DIR/trace" 2>/dev/null
python3 "$HERE/hops.py" "$DIR/trace" "$DIR/raw"
[ "${KEEP:-0}" = 1 ] && echo "trace_idle: kept in $DIR" >&2
exit 0
