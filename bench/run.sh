#!/bin/sh
# bench/run.sh BUILD_DIR: jobq, beanstalkd and BullMQ on Redis side by side,
# in one run on this machine (bench/README.md); then jobq's Python and
# TypeScript clients beside the C client, and Celery on Redis. Every server
# listens on 127.0.0.1 with a private port and data directory and is
# stopped by its pid; every client runs under a timeout. The CSV and the
# table go to BUILD_DIR/bench-results/, never into the source tree. QUICK=1
# runs fewer jobs, and each cycle cell once, to check the harness still
# works.
set -eu
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
JOBS=40000; SLOW_JOBS=8000; CYCLE_RUNS=3; IDLE=4000; STORED=1000000
BULL_ALWAYS_JOBS=10000; BULL_EVERYSEC_JOBS=20000; BULL_IDLE=1000
WATCH=300
if [ "${QUICK:-0}" = 1 ]; then
    JOBS=8000; SLOW_JOBS=2000; CYCLE_RUNS=1; IDLE=300; STORED=100000
    BULL_ALWAYS_JOBS=2000; BULL_EVERYSEC_JOBS=3000; BULL_IDLE=200
    WATCH=100
fi
SHAPES="1x1 4x4 16x16"
OUT="$BUILD/bench-results"
STAMP=$(date -u +%Y-%m-%dT%H%MZ)
mkdir -p "$OUT"
CSV="$OUT/$STAMP.csv.tmp"
echo "system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb" > "$CSV"
TMP=$(mktemp -d /tmp/jobq-bench-run-XXXXXX)
BS_DATA="$TMP/bs"
BULL_HOME="$BUILD/bench/bullmq"
NODE_HOME="$BUILD/bench/node"
PY=/usr/bin/python3
. "$HERE/peers/beanstalkd.sh"
. "$HERE/peers/bullmq.sh"
. "$HERE/clients/node.sh"
. "$HERE/peers/nats.sh"
cleanup() {
    stop_server
    nats_stop
    bullmq_stop
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

command -v beanstalkd >/dev/null || {
    echo "bench: installing beanstalkd" >&2
    apt-get install -y beanstalkd >/dev/null
}
BULL_OK=1
bullmq_install || { BULL_OK=0; echo "bench: BullMQ left out" >&2; }
# The clients' benchmarks (bench/clients/): Debian's pyzmq and msgpack for
# the Python client, @jobq/client built into BUILD/bench/node, and Celery
# (Debian's, on the redis-server the BullMQ peer installed).
PY_OK=1
"$PY" -c 'import zmq, msgpack' 2>/dev/null || {
    echo "bench: installing python3-zmq python3-msgpack" >&2
    { apt-get install -y python3-zmq python3-msgpack || { apt-get update -qq &&
        apt-get install -y python3-zmq python3-msgpack; }; } >/dev/null 2>&1
} || { PY_OK=0; echo "bench: the Python client left out" >&2; }
NODE_OK=1
node_client_install || { NODE_OK=0; echo "bench: the TypeScript client left out" >&2; }
CELERY_OK=1
"$PY" -c 'import celery, redis' 2>/dev/null || {
    echo "bench: installing python3-celery python3-redis" >&2
    { apt-get install -y python3-celery python3-redis || { apt-get update -qq &&
        apt-get install -y python3-celery python3-redis; }; } >/dev/null 2>&1
} || CELERY_OK=0
command -v redis-server >/dev/null || CELERY_OK=0
[ "$CELERY_OK" = 1 ] || echo "bench: Celery left out" >&2

# median LABEL CMD...: CYCLE_RUNS runs of CMD; the CSV gets the last line of
# the run whose jobs/s is the median, so one run the machine disturbed does
# not decide a ratio, or LABEL with no figures if no run succeeded.
median() {
    med_label=$1; shift
    med_key=${MED_KEY:-4}
    : > "$TMP/runs.txt"
    for med_i in $(seq 1 "$CYCLE_RUNS"); do
        if "$@" > "$TMP/out.txt" 2> "$TMP/err.txt"; then
            tail -1 "$TMP/out.txt" >> "$TMP/runs.txt"
        else
            echo "bench: $med_label run $med_i failed: $(tail -1 "$TMP/err.txt")" >&2
        fi
    done
    med_n=$(wc -l < "$TMP/runs.txt")
    if [ "$med_n" -gt 0 ]; then
        sort -t, -k"$med_key,$med_key" -g "$TMP/runs.txt" |
            sed -n "$(( (med_n + 1) / 2 ))p" >> "$CSV"
    else
        echo "$med_label,,,,," >> "$CSV"
    fi
}

# tries N LABEL CMD...: run CMD until it succeeds, three times at most, for
# every system alike (a server that did not come up, or an idle job not
# seen within 500 ms, fails a run); its last N lines go to the CSV, or
# LABEL with no figures.
tries() {
    tr_n=$1; tr_label=$2; shift 2
    for tr_i in 1 2 3; do
        if "$@" > "$TMP/out.txt" 2> "$TMP/err.txt"; then
            tail -"$tr_n" "$TMP/out.txt" >> "$CSV"
            return 0
        fi
        echo "bench: $tr_label try $tr_i failed: $(tail -1 "$TMP/err.txt")" >&2
    done
    echo "$tr_label,,,,," >> "$CSV"
}

run_jobq() {  # mode jobs batch prefetch pipeline [curve]
    for shape in $SHAPES; do
        median "jobq,$1,cycle-$shape" timeout 180 "$BUILD/bench/jobq_bench" \
            "$BUILD/apps" --producers "${shape%x*}" --workers "${shape#*x}" \
            --jobs "$2" --batch "$3" --prefetch "$4" --pipeline "$5" \
            --curve "${6:-0}"
    done
}

# beanstalkd_once "SERVER_ARGS" ARGS...: one run of beanstalk_bench ARGS
# against a fresh beanstalkd started with SERVER_ARGS (split on spaces).
beanstalkd_once() {
    bo_server=$1; shift
    # shellcheck disable=SC2086
    beanstalkd_start $bo_server
    bo_rc=0
    timeout 180 "$BUILD/bench/beanstalk_bench" "$port" "$@" || bo_rc=$?
    stop_server
    return "$bo_rc"
}

run_beanstalkd() {  # mode jobs pipeline "server-args"
    for shape in $SHAPES; do
        median "beanstalkd,$1,cycle-$shape" beanstalkd_once "$4" \
            --producers "${shape%x*}" --workers "${shape#*x}" --jobs "$2" \
            --mode "$1" --pipeline "$3"
    done
}

# One run of bull_bench.mjs against a fresh redis-server.
bullmq_once() {  # mode sub-mode bull-bench-args...
    bu_mode=$1; bu_sub=$2; shift 2
    port=$(free_port)
    rm -rf "$TMP/rd"
    bullmq_start "$bu_mode" "$TMP/rd" "$port" || return 1
    bu_rc=0
    timeout 180 node "$BULL_HOME/bull_bench.mjs" "$bu_sub" --port "$port" \
        --mode "$bu_mode" "$@" || bu_rc=$?
    bullmq_stop
    return "$bu_rc"
}

run_bullmq() {  # mode jobs
    [ "$BULL_OK" = 1 ] || return 0
    for shape in $SHAPES; do
        median "bullmq,$1,cycle-$shape" bullmq_once "$1" cycle \
            --producers "${shape%x*}" --workers "${shape#*x}" --jobs "$2"
    done
    tries 2 "bullmq,$1,idle-dispatch" bullmq_once "$1" idle --jobs "$BULL_IDLE"
}

# Plain sync waits for a flush per request, like beanstalkd -f 0: as many
# jobs as that (at 1x1 it runs at the flush rate).
run_jobq sync "$SLOW_JOBS" 1 0 1
# The same cycle at 16x16 through jobq-gateway (POST /v1/jobs over
# keep-alive): what HTTP and JSON cost a web app.
median "jobq,http,cycle-16x16" timeout 180 "$BUILD/bench/gateway_bench" \
    "$BUILD/apps" --producers 16 --workers 16 --jobs "$SLOW_JOBS"
# Event streams through jobq-gateway: 1,000 and 10,000 on 100 live jobs
# (a report every 500 ms each, the jobs' starts spread over 500 ms), and
# 10,000 with every job reporting at the same instant; the run of median
# p99 of three.
MED_KEY=6 median "jobq,sse,fanout-1000" timeout 120 "$BUILD/bench/sse_bench" \
    "$BUILD/apps" --streams 1000 --jobs 100 --seconds 15
MED_KEY=6 median "jobq,sse,fanout-10000" timeout 120 "$BUILD/bench/sse_bench" \
    "$BUILD/apps" --streams 10000 --jobs 100 --seconds 15
MED_KEY=6 median "jobq,sse,fanout-10000-together" timeout 120 \
    "$BUILD/bench/sse_bench" "$BUILD/apps" --streams 10000 --jobs 100 \
    --seconds 15 --stagger 0
# Idle dispatch of the two the target compares, jobq and beanstalkd -f 0,
# back to back so that both meet the disk in the same minutes; then the
# other beanstalkd modes, and the disk's own floor.
tries 2 "jobq,sync,idle-dispatch" timeout 120 "$BUILD/bench/jobq_latency" \
    "$BUILD/apps" --jobs "$IDLE"
# The same with a key file: every connection CURVE (encrypted, and each
# message's key looked up), for its cost.
tries 2 "jobq,sync-curve,idle-dispatch" timeout 120 \
    "$BUILD/bench/jobq_latency" "$BUILD/apps" --jobs "$IDLE" --curve
tries 2 "beanstalkd,binlog-f0,idle-dispatch" beanstalkd_once \
    "-b $BS_DATA -f 0" --idle "$IDLE" --mode binlog-f0
tries 2 "beanstalkd,no-binlog,idle-dispatch" beanstalkd_once "" \
    --idle "$IDLE" --mode no-binlog
tries 2 "beanstalkd,binlog-default,idle-dispatch" beanstalkd_once \
    "-b $BS_DATA" --idle "$IDLE" --mode binlog-default
tries 1 "lmdb,commit-floor,enqueue-ack" timeout 120 \
    "$BUILD/bench/commit_floor" "$TMP" --jobs "$IDLE"
run_jobq sync-batched "$JOBS" 64 512 1
run_jobq sync-batched-curve "$JOBS" 64 512 1 1
run_jobq sync-pipelined "$JOBS" 1 512 64
run_beanstalkd no-binlog "$JOBS" 1 ""
run_beanstalkd binlog-default "$JOBS" 1 "-b $BS_DATA"
# The default binlog with 64 puts in flight per producer, each delete sent
# with the next reserve: the client shape of jobq's sync-pipelined.
run_beanstalkd binlog-pipelined "$JOBS" 64 "-b $BS_DATA"
run_beanstalkd binlog-f0 "$SLOW_JOBS" 1 "-b $BS_DATA -f 0"
run_bullmq aof-always "$BULL_ALWAYS_JOBS"
run_bullmq aof-everysec "$BULL_EVERYSEC_JOBS"

# The JetStream backend (docs/STORAGE.md section 10) on a three-node
# cluster on this machine (R3; make test's nats-server, 2.11.0 or later):
# the 16x16 cycle one at a time and batched, idle dispatch, with one broker and with
# two (producers and workers spread over both; idle: enqueued through one,
# run by a worker of the other), and the time to answer again after the
# stream's leader is killed. Beside BullMQ everysec, the closest peer in
# guarantees, run just above.
if sh "$HERE/../scripts/fetch-nats-server.sh" "$BUILD/nats" &&
    nats_start "$TMP/nats"; then
    for nb in 1 2; do
        sys=jobq-nats; [ "$nb" = 1 ] || sys=jobq-nats$nb
        median "$sys,sync,cycle-16x16" timeout 180 "$BUILD/bench/jobq_bench" \
            "$BUILD/apps" --producers 16 --workers 16 --jobs "$SLOW_JOBS" \
            --store "$NATS_URLS" --brokers "$nb"
        median "$sys,sync-batched,cycle-16x16" timeout 180 \
            "$BUILD/bench/jobq_bench" "$BUILD/apps" --producers 16 \
            --workers 16 --jobs "$JOBS" --batch 64 --prefetch 512 \
            --store "$NATS_URLS" --brokers "$nb"
        tries 2 "$sys,sync,idle-dispatch" timeout 120 \
            "$BUILD/bench/jobq_latency" "$BUILD/apps" --jobs "$IDLE" \
            --store "$NATS_URLS" --brokers "$nb"
    done
    tries 1 "jobq-nats,failover,leader-kill" timeout 300 \
        "$BUILD/bench/nats_failover" "$BUILD/apps" "$NATS_DIR" "$NATS_URLS"
    nats_stop
else
    echo "bench: the JetStream rows left out" >&2
fi

# The clients (bench/clients/), each cell against a fresh broker like
# jobq_bench's: at 16x16 with a C jobq-worker, the Python and TypeScript
# clients one request at a time, batched and pipelined; how late each
# client's watch reports an end (C too), the run of median p99 of three;
# each language's worker runtime fed one request at a time and batched;
# Celery on Redis beside them (BullMQ's rows are above).
run_client() {  # system program...
    rc_sys=$1; shift
    median "$rc_sys,sync,cycle-16x16" timeout 180 "$@" --scenario sync \
        --jobs "$SLOW_JOBS"
    median "$rc_sys,sync-batched,cycle-16x16" timeout 180 "$@" \
        --scenario batched --jobs "$JOBS"
    median "$rc_sys,sync-pipelined,cycle-16x16" timeout 180 "$@" \
        --scenario pipelined --jobs "$JOBS"
    median "$rc_sys-worker,sync,cycle-16x16" timeout 180 "$@" \
        --scenario worker --jobs "$SLOW_JOBS"
    median "$rc_sys-worker,sync-batched,cycle-16x16" timeout 180 "$@" \
        --scenario worker-batched --jobs "$JOBS"
    MED_KEY=6 median "$rc_sys,watch,delay" timeout 180 "$@" \
        --scenario watch --jobs "$WATCH"
}
MED_KEY=6 median "jobq,watch,delay" timeout 180 "$BUILD/bench/jobq_watch" \
    "$BUILD/apps" --jobs "$WATCH"
[ "$PY_OK" = 0 ] || PYTHONPATH="$HERE/../clients/python" \
    run_client python "$PY" "$HERE/clients/py_bench.py" "$BUILD/apps"
[ "$NODE_OK" = 0 ] ||
    run_client node node "$NODE_HOME/node_bench.mjs" "$BUILD/apps"
[ "$CELERY_OK" = 0 ] || median "celery,redis,cycle-16x16" timeout 180 \
    "$PY" "$HERE/peers/celery_bench.py" --jobs "$SLOW_JOBS"

# Restart with STORED jobs, and the memory that takes: each server started
# on a full store and timed until it answers. Memory: jobq's anonymous
# resident (LMDB's pages are file-backed), beanstalkd's resident.
now_ns() { date +%s%N; }
# Three different ports: held open together while they are picked.
set -- $(python3 -c 'import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
port=$1; wport=$2; eport=$3
"$BUILD/bench/jobq_fill" fill "$TMP/jq" "$STORED"
t0=$(now_ns)
"$BUILD/apps/jobq-broker" --data "$TMP/jq" --clients "tcp://127.0.0.1:$port" \
    --workers "tcp://127.0.0.1:$wport" \
    --events "tcp://127.0.0.1:$eport" --map-size 4096 --quiet &
BS_PID=$!
if "$BUILD/bench/jobq_fill" wait "tcp://127.0.0.1:$port" >/dev/null; then
    t1=$(now_ns)
    rss=$(awk '/^RssAnon:/ {print $2}' "/proc/$BS_PID/status")
    echo "jobq,sync,restart-${STORED},,$(( (t1 - t0) / 1000 )),,,$rss" >> "$CSV"
fi
stop_server
rm -rf "$TMP/jq"
beanstalkd_start -b "$BS_DATA"
"$BUILD/bench/beanstalk_bench" "$port" --fill "$STORED"
stop_server
t0=$(now_ns)
beanstalkd -l 127.0.0.1 -p "$port" -b "$BS_DATA" &
BS_PID=$!
if "$BUILD/bench/beanstalk_bench" "$port" --wait-ready "$STORED" >/dev/null
then
    t1=$(now_ns)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$BS_PID/status")
    echo "beanstalkd,binlog-default,restart-${STORED},,$(( (t1 - t0) / 1000 )),,,$rss" >> "$CSV"
fi
stop_server
mv "$CSV" "$OUT/$STAMP.csv"

{
    python3 "$HERE/table.py" "$OUT/$STAMP.csv"
    echo "         cycle rows: each the median of $CYCLE_RUNS run(s) of its cell"
} | tee "$OUT/$STAMP.txt"
echo "bench: $OUT/$STAMP.csv and $OUT/$STAMP.txt"
