#!/bin/sh
# bench/trace_idle.sh BUILD_DIR [jobq|floor] [JOBS]: run one idle-dispatch
# measurement (jobq_latency, or the bare-ZeroMQ relay floor) under a
# scheduler trace and print, per hop of the path a job takes, where the
# time went (bench/hops.py). JOBS defaults to 2000, within 10..20000.
#
# Needs perf (Debian: linux-perf; run as root, this installs it when it is
# missing) and the right to trace the whole machine. Loopback only,
# bounded by the tools it runs; the trace stays in a temporary directory,
# removed at the end unless KEEP=1.
set -eu
BUILD=${1:-build}
WHAT=${2:-jobq}
JOBS=${3:-2000}
HERE=$(cd "$(dirname "$0")" && pwd)
case $JOBS in
'' | *[!0-9]*) JOBS=0 ;;
esac
case $WHAT in
jobq) set -- "$BUILD/bench/jobq_latency" "$BUILD/apps" --jobs "$JOBS" ;;
floor) set -- "$BUILD/bench/floors" relay --jobs "$JOBS" ;;
*) JOBS=0 ;;
esac
if [ "$JOBS" -lt 10 ] || [ "$JOBS" -gt 20000 ]; then
    echo "usage: trace_idle.sh BUILD_DIR [jobq|floor] [JOBS 10..20000]" >&2
    exit 2
fi
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
if [ "${KEEP:-0}" = 1 ]; then
    trap 'echo "trace_idle: kept in $DIR" >&2' EXIT
else
    trap 'rm -rf "$DIR"' EXIT
fi
trap 'exit 130' INT TERM
# A run that missed a sample exits 1 but its samples are written: keep
# them, the slow ones are what a trace is for.
rc=0
perf record -q -k mono -a -o "$DIR/perf.data" \
    -e sched:sched_switch -e sched:sched_waking -- \
    "$@" --raw "$DIR/raw" >"$DIR/out" 2>&1 || rc=$?
if [ ! -s "$DIR/raw" ]; then
    echo "trace_idle: the traced run failed (exit $rc):" >&2
    tail -n 5 "$DIR/out" >&2
    exit 1
fi
[ "$rc" = 0 ] || echo "trace_idle: the run exited $rc (a sample missed?)" >&2
tail -n 1 "$DIR/out"
perf script -i "$DIR/perf.data" -F comm,pid,tid,cpu,time,event,trace \
    >"$DIR/trace" 2>"$DIR/script.err" || {
    echo "trace_idle: perf script failed:" >&2
    tail -n 5 "$DIR/script.err" >&2
    exit 1
}
python3 "$HERE/hops.py" "$DIR/trace" "$DIR/raw"
