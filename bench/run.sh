#!/bin/sh
# bench/run.sh BUILD_DIR: jobq, beanstalkd and BullMQ on Redis side by side,
# in one run on this machine, every server on 127.0.0.1 with a private port
# and a temporary data directory, each stopped by its pid.
#
# jobq runs durable (full sync) in three ways: plain (one job per request
# and one request at a time, no prefetch), batched (64 jobs per
# ENQUEUE_BATCH, --prefetch 512) and pipelined (one job per request, 64
# requests in flight per producer, --prefetch 512).
# beanstalkd runs with no binlog, its default binlog (-b, fsync at most every
# 50 ms; also with 64 puts in flight per producer) and -b -f 0 (fsync every
# write). BullMQ runs on redis-server with
# appendfsync always and everysec. Prints one table with ratios and the
# targets of issue 5 (kept in bench/results/latest.txt), with two floors
# measured in the same run (bench/floors.c): bare ZeroMQ on jobq's idle
# dispatch path, and one durable LMDB commit; and what this machine's
# wakeups across CPUs and its hypervisor's steal cost during the run. The
# idle-dispatch figures of jobq, beanstalkd -f 0 and the ZeroMQ floor pool
# eight short runs of each, taken in turns (bench/pool.py). Each cycle row
# is the median of three runs of that cell (by jobs/s; the row is that run
# whole), each against a fresh server, so one run the machine disturbed
# does not decide a ratio. Writes bench/results/latest.csv and latest.svg.
# QUICK=1 runs fewer jobs, and each cycle cell once.
set -eu
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
JOBS=${JOBS_PER_RUN:-40000}
SLOW_JOBS=${SLOW_JOBS_PER_RUN:-8000}
CYCLE_RUNS=3
BULL_ALWAYS_JOBS=${BULL_ALWAYS_JOBS:-10000}
BULL_EVERYSEC_JOBS=${BULL_EVERYSEC_JOBS:-20000}
IDLE=${IDLE_JOBS:-4000}
IDLE_ROUNDS=8
BULL_IDLE=${BULL_IDLE_JOBS:-1000}
STORED=${STORED_JOBS:-1000000}
if [ "${QUICK:-0}" = 1 ]; then
    JOBS=8000; SLOW_JOBS=2000; IDLE=300; IDLE_ROUNDS=4; STORED=100000
    CYCLE_RUNS=1
    BULL_ALWAYS_JOBS=2000; BULL_EVERYSEC_JOBS=3000; BULL_IDLE=200
fi
SHAPES="1x1 4x4 16x16"
OUT="$HERE/results"
mkdir -p "$OUT"
CSV="$OUT/latest.csv.tmp"
echo "system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb" > "$CSV"
# The hypervisor's share of this VM's CPU time (steal), over the whole run:
# "steal total" in ticks from /proc/stat.
cpu_ticks() { awk '/^cpu / {print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
TICKS0=$(cpu_ticks)
TMP=$(mktemp -d /tmp/jobq-bench-run-XXXXXX)
BS_DATA="$TMP/bs"
. "$HERE/peers/beanstalkd.sh"
. "$HERE/peers/bullmq.sh"
cleanup() {
    stop_server
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

# record N LABEL CMD...: run CMD (bounded by the caller's timeout); on
# success its last N lines go to the CSV, otherwise LABEL with no figures.
# (sh has no locals: its variables are prefixed rec_.)
record() {
    rec_n=$1; rec_label=$2; shift 2
    if "$@" > "$TMP/out.txt" 2> "$TMP/err.txt"; then
        tail -"$rec_n" "$TMP/out.txt" >> "$CSV"
    else
        echo "bench: $rec_label failed: $(tail -1 "$TMP/err.txt")" >&2
        echo "$rec_label,,,,," >> "$CSV"
    fi
}

# median LABEL CMD...: CYCLE_RUNS runs of CMD (each bounded by its own
# timeout); the CSV gets the last line of the run whose jobs/s is the
# median (of two, the lower), or LABEL with no figures if none succeeded.
median() {
    med_label=$1; shift
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
        sort -t, -k4,4 -g "$TMP/runs.txt" |
            sed -n "$(( (med_n + 1) / 2 ))p" >> "$CSV"
    else
        echo "$med_label,,,,," >> "$CSV"
    fi
}

run_jobq() {  # mode jobs batch prefetch pipeline
    for shape in $SHAPES; do
        p=${shape%x*}; w=${shape#*x}
        median "jobq,$1,cycle-$shape" timeout 180 "$BUILD/bench/jobq_bench" \
            "$BUILD/apps" --producers "$p" --workers "$w" --jobs "$2" \
            --batch "$3" --prefetch "$4" --pipeline "$5"
    done
}

# One cycle run against a fresh beanstalkd.
beanstalkd_cycle_once() {  # mode jobs pipeline producers workers bs-args...
    bc_mode=$1; bc_n=$2; bc_pipe=$3; bc_p=$4; bc_w=$5; shift 5
    beanstalkd_start "$@"
    bc_rc=0
    timeout 180 "$BUILD/bench/beanstalk_bench" "$port" --producers "$bc_p" \
        --workers "$bc_w" --jobs "$bc_n" --mode "$bc_mode" \
        --pipeline "$bc_pipe" || bc_rc=$?
    stop_server
    return "$bc_rc"
}

run_beanstalkd() {  # mode jobs pipeline beanstalkd-args...
    mode=$1; n=$2; pipe=$3; shift 3
    for shape in $SHAPES; do
        median "beanstalkd,$mode,cycle-$shape" beanstalkd_cycle_once \
            "$mode" "$n" "$pipe" "${shape%x*}" "${shape#*x}" "$@"
    done
}

# retry3 LABEL CMD...: run CMD (output in $TMP/out.txt) until it succeeds,
# three times at most, for every system alike: a server or worker that did
# not come up, or a job not seen within 500 ms, fails a run. False if no
# run succeeded.
retry3() {
    r3_label=$1; shift
    for r3_try in 1 2 3; do
        "$@" > "$TMP/out.txt" 2> "$TMP/err.txt" && return 0
        echo "bench: $r3_label try $r3_try failed: $(tail -1 "$TMP/err.txt")" >&2
    done
    return 1
}

# Idle dispatch against a fresh beanstalkd: a consumer already waiting when
# the job is put; its raw samples go to RAW (/dev/null when not wanted).
beanstalkd_idle_once() {  # mode jobs raw beanstalkd-args...
    bi_mode=$1; bi_jobs=$2; bi_raw=$3; shift 3
    beanstalkd_start "$@"
    bi_rc=0
    timeout 120 "$BUILD/bench/beanstalk_bench" "$port" --idle "$bi_jobs" \
        --mode "$bi_mode" --raw "$bi_raw" || bi_rc=$?
    stop_server
    return "$bi_rc"
}

beanstalkd_idle() {  # mode beanstalkd-args...
    bd_mode=$1; shift
    if retry3 "beanstalkd $bd_mode idle" \
        beanstalkd_idle_once "$bd_mode" "$IDLE" /dev/null "$@"; then
        tail -2 "$TMP/out.txt" >> "$CSV"
    else
        echo "beanstalkd,$bd_mode,idle-dispatch,,,,," >> "$CSV"
    fi
}

# pool SYSTEM MODE PREFIX LINES: the rows of the raw samples $TMP/PREFIX-*
# taken together (bench/pool.py), its last LINES of them.
pool() {
    if ls "$TMP/$3"-* > /dev/null 2>&1; then
        python3 "$HERE/pool.py" "$1" "$2" "$TMP/$3"-* | tail -"$4" >> "$CSV"
    else
        echo "$1,$2,idle-dispatch,,,,," >> "$CSV"
    fi
}

# One cycle run against a fresh redis-server.
bullmq_cycle_once() {  # mode jobs producers workers
    port=$(free_port)
    rm -rf "$TMP/rd"
    bullmq_start "$1" "$TMP/rd" "$port" || return 1
    bu_rc=0
    timeout 180 node "$BULL_HOME/bull_bench.mjs" cycle --port "$port" \
        --mode "$1" --producers "$3" --workers "$4" --jobs "$2" || bu_rc=$?
    bullmq_stop
    return "$bu_rc"
}

run_bullmq() {  # mode jobs
    [ "$BULL_OK" = 1 ] || return 0
    for shape in $SHAPES; do
        median "bullmq,$1,cycle-$shape" bullmq_cycle_once "$1" "$2" \
            "${shape%x*}" "${shape#*x}"
    done
    port=$(free_port)
    rm -rf "$TMP/rd"
    if bullmq_start "$1" "$TMP/rd" "$port"; then
        record 2 "bullmq,$1,idle-dispatch" timeout 120 node \
            "$BULL_HOME/bull_bench.mjs" idle --port "$port" --mode "$1" \
            --jobs "$BULL_IDLE"
    fi
    bullmq_stop
}

# Plain sync waits for a flush per request, like beanstalkd -f 0: as many
# jobs as that (at 1x1 it runs at the flush rate, and a slow disk would
# otherwise take it past jobq_bench's 120 s limit).
run_jobq sync "$SLOW_JOBS" 1 0 1
# Idle dispatch and enqueue acknowledgement of the two the target compares,
# jobq and beanstalkd -f 0, and the ZeroMQ floor under jobq's path: in
# IDLE_ROUNDS short runs taken in turns, whose samples are then pooled, so
# that all three meet the same machine (its disk's flush time drifts over
# minutes, and a p99 follows it).
# How dear a wakeup on another CPU is on this machine right now: every
# latency below pays it at each hop (bench/floors.c, pingpong).
record 2 "tcp,pingpong,round-trip" timeout 120 "$BUILD/bench/floors" \
    pingpong --jobs 2000
per=$((IDLE / IDLE_ROUNDS))
for round in $(seq 1 "$IDLE_ROUNDS"); do
    retry3 "jobq idle" timeout 120 "$BUILD/bench/jobq_latency" \
        "$BUILD/apps" --jobs "$per" --raw "$TMP/raw-jobq-$round" ||
        rm -f "$TMP/raw-jobq-$round"
    retry3 "beanstalkd binlog-f0 idle" beanstalkd_idle_once binlog-f0 \
        "$per" "$TMP/raw-bsf0-$round" -b "$BS_DATA" -f 0 ||
        rm -f "$TMP/raw-bsf0-$round"
    retry3 "zeromq relay floor" timeout 120 "$BUILD/bench/floors" relay \
        --jobs "$per" --raw "$TMP/raw-floor-$round" ||
        rm -f "$TMP/raw-floor-$round"
done
pool jobq sync raw-jobq 2
pool beanstalkd binlog-f0 raw-bsf0 2
pool zeromq relay-floor raw-floor 1
# How much the p99 target's ratio moves when those runs are drawn again.
IDLE_RATIO=
if ls "$TMP"/raw-jobq-* "$TMP"/raw-bsf0-* > /dev/null 2>&1; then
    IDLE_RATIO=$(python3 "$HERE/pool.py" ratio jobq "beanstalkd -f 0" \
        "$TMP"/raw-jobq-* -- "$TMP"/raw-bsf0-*) || IDLE_RATIO=
fi
# The other beanstalkd modes, and one small record per durable LMDB commit.
beanstalkd_idle no-binlog
beanstalkd_idle binlog-default -b "$BS_DATA"
mkdir -p "$TMP/floor"
record 1 "lmdb,commit-floor,enqueue-ack" timeout 120 \
    "$BUILD/bench/floors" commit "$TMP/floor" --jobs "$IDLE"
rm -rf "$TMP/floor"
run_jobq sync-batched "$JOBS" 64 512 1
run_jobq sync-pipelined "$JOBS" 1 512 64
run_beanstalkd no-binlog "$JOBS" 1
run_beanstalkd binlog-default "$JOBS" 1 -b "$BS_DATA"
# The default binlog again, driven as hard as its protocol allows: 64 puts
# in flight per producer, each delete sent with the next reserve; the
# client shape of jobq's sync-pipelined.
run_beanstalkd binlog-pipelined "$JOBS" 64 -b "$BS_DATA"
run_beanstalkd binlog-f0 "$SLOW_JOBS" 1 -b "$BS_DATA" -f 0
run_bullmq aof-always "$BULL_ALWAYS_JOBS"
run_bullmq aof-everysec "$BULL_EVERYSEC_JOBS"
# Restart with STORED jobs, and the memory that takes: jobq's store filled
# through its own store layer, beanstalkd's binlog by pipelined puts; then
# each server is started on it and timed until it answers (beanstalkd: until
# `stats` counts every job ready). Memory: jobq's anonymous resident
# (RssAnon; LMDB's pages are file-backed), beanstalkd's resident (VmRSS).
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
mv "$CSV" "$OUT/latest.csv"

{
    python3 "$HERE/table.py" "$OUT/latest.csv"
    if [ -n "$IDLE_RATIO" ]; then
        echo "$IDLE_RATIO" | sed 's/^/         /'
    fi
    echo "         cycle rows: each the median of $CYCLE_RUNS run(s) of its cell"
    echo "$TICKS0 $(cpu_ticks)" | awk '$4 > $2 {
        printf "         machine: the hypervisor took %.1f%% of this VM'"'"'s CPU time over the run (steal)\n",
            100 * ($3 - $1) / ($4 - $2) }'
} | tee "$OUT/latest.txt"
python3 "$HERE/chart.py" "$OUT/latest.csv" "$OUT/latest.svg" &&
    echo "chart: $OUT/latest.svg"
