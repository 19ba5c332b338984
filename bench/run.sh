#!/bin/sh
# bench/run.sh BUILD_DIR: the full job cycle of jobq and beanstalkd side by
# side, in one run on this machine, every server on 127.0.0.1 with a private
# port and a temporary data directory, each stopped by its pid.
#
# jobq runs durable (full sync) in two ways: plain (one job per request, no
# prefetch) and batched (64 jobs per ENQUEUE_BATCH, --prefetch 64).
# beanstalkd runs with no binlog, its default binlog (-b, fsync at most every
# 50 ms) and -b -f 0 (fsync every write). Prints one table with ratios and
# writes bench/results/latest.csv. QUICK=1 runs fewer jobs.
set -eu
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
JOBS=${JOBS_PER_RUN:-40000}
SLOW_JOBS=${SLOW_JOBS_PER_RUN:-8000}
IDLE=${IDLE_JOBS:-2000}
STORED=${STORED_JOBS:-1000000}
if [ "${QUICK:-0}" = 1 ]; then
    JOBS=8000; SLOW_JOBS=2000; IDLE=300; STORED=100000
fi
SHAPES="1x1 4x4 16x16"
OUT="$HERE/results"
mkdir -p "$OUT"
CSV="$OUT/latest.csv.tmp"
echo "system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb" > "$CSV"
TMP=$(mktemp -d /tmp/jobq-bench-run-XXXXXX)
BS_PID=
cleanup() {
    [ -n "$BS_PID" ] && kill "$BS_PID" 2>/dev/null && wait "$BS_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

command -v beanstalkd >/dev/null || {
    echo "bench: installing beanstalkd" >&2
    apt-get install -y beanstalkd >/dev/null
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

run_jobq() {  # mode batch prefetch
    for shape in $SHAPES; do
        p=${shape%x*}; w=${shape#*x}
        timeout 180 "$BUILD/bench/jobq_bench" "$BUILD/apps" --producers "$p" \
            --workers "$w" --jobs "$JOBS" --batch "$2" --prefetch "$3" |
            tail -1 >> "$CSV" || echo "jobq,$1,cycle-$shape,,,,," >> "$CSV"
    done
}

run_beanstalkd() {  # mode jobs beanstalkd-args...
    mode=$1; n=$2; shift 2
    for shape in $SHAPES; do
        p=${shape%x*}; w=${shape#*x}
        port=$(free_port)
        rm -rf "$TMP/bs"; mkdir -p "$TMP/bs"
        # shellcheck disable=SC2068
        beanstalkd -l 127.0.0.1 -p "$port" $@ &
        BS_PID=$!
        sleep 0.3
        timeout 180 "$BUILD/bench/beanstalk_bench" "$port" --producers "$p" \
            --workers "$w" --jobs "$n" --mode "$mode" |
            tail -1 >> "$CSV" || echo "beanstalkd,$mode,cycle-$shape,,,,," >> "$CSV"
        kill "$BS_PID"; wait "$BS_PID" 2>/dev/null || true
        BS_PID=
    done
    # Idle dispatch: a consumer already waiting when the job is put.
    port=$(free_port)
    rm -rf "$TMP/bs"; mkdir -p "$TMP/bs"
    # shellcheck disable=SC2068
    beanstalkd -l 127.0.0.1 -p "$port" $@ &
    BS_PID=$!
    sleep 0.3
    timeout 120 "$BUILD/bench/beanstalk_bench" "$port" --idle "$IDLE" \
        --mode "$mode" | tail -1 >> "$CSV" || true
    kill "$BS_PID"; wait "$BS_PID" 2>/dev/null || true
    BS_PID=
}

run_jobq sync 1 0
# A run whose broker or worker did not come up (it prints "no job was seen
# dispatched") is tried again, at most three times.
for try in 1 2 3; do
    if timeout 120 "$BUILD/bench/jobq_latency" "$BUILD/apps" --jobs "$IDLE" \
        > "$TMP/lat.txt"; then
        tail -2 "$TMP/lat.txt" >> "$CSV"
        break
    fi
    echo "bench: jobq_latency try $try failed: $(head -1 "$TMP/lat.txt")" >&2
done
run_jobq sync-batched 64 64
run_beanstalkd no-binlog "$JOBS"
run_beanstalkd binlog-default "$JOBS" -b "$TMP/bs"
run_beanstalkd binlog-f0 "$SLOW_JOBS" -b "$TMP/bs" -f 0
# Restart with STORED jobs, and the memory that takes: jobq's store filled
# through its own store layer, beanstalkd's binlog by pipelined puts; then
# each server is started on it and timed until it answers (beanstalkd: until
# `stats` counts every job ready). Memory: jobq's anonymous resident
# (RssAnon; LMDB's pages are file-backed), beanstalkd's resident (VmRSS).
now_ns() { date +%s%N; }
port=$(free_port)
"$BUILD/bench/jobq_fill" fill "$TMP/jq" "$STORED"
t0=$(now_ns)
"$BUILD/apps/jobq-broker" --data "$TMP/jq" --clients "tcp://127.0.0.1:$port" \
    --workers "tcp://127.0.0.1:$(free_port)" \
    --events "tcp://127.0.0.1:$(free_port)" --map-size 4096 --quiet &
BS_PID=$!
if "$BUILD/bench/jobq_fill" wait "tcp://127.0.0.1:$port" >/dev/null; then
    t1=$(now_ns)
    rss=$(awk '/^RssAnon:/ {print $2}' "/proc/$BS_PID/status")
    echo "jobq,sync,restart-${STORED},,$(( (t1 - t0) / 1000 )),,,$rss" >> "$CSV"
fi
kill "$BS_PID"; wait "$BS_PID" 2>/dev/null || true
BS_PID=
port=$(free_port)
rm -rf "$TMP/bs"; mkdir -p "$TMP/bs"
beanstalkd -l 127.0.0.1 -p "$port" -b "$TMP/bs" &
BS_PID=$!
sleep 0.3
"$BUILD/bench/beanstalk_bench" "$port" --fill "$STORED"
kill "$BS_PID"; wait "$BS_PID" 2>/dev/null || true
t0=$(now_ns)
beanstalkd -l 127.0.0.1 -p "$port" -b "$TMP/bs" &
BS_PID=$!
if "$BUILD/bench/beanstalk_bench" "$port" --wait-ready "$STORED" >/dev/null
then
    t1=$(now_ns)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$BS_PID/status")
    echo "beanstalkd,binlog-default,restart-${STORED},,$(( (t1 - t0) / 1000 )),,,$rss" >> "$CSV"
fi
kill "$BS_PID"; wait "$BS_PID" 2>/dev/null || true
BS_PID=
mv "$CSV" "$OUT/latest.csv"

# The table: every row with its ratio to jobq (plain and batched) of the
# same shape.
python3 - "$OUT/latest.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rate = {(r["system"], r["mode"], r["scenario"]): float(r["jobs_per_s"] or 0)
        for r in rows}
print("%-11s %-15s %-14s %10s %9s %9s %11s %11s" % (
    "system", "mode", "scenario", "jobs/s", "p50 us", "p99 us",
    "jobq/this", "batched/this"))
lat = {(r["system"], r["mode"], r["scenario"]): r for r in rows}
for r in rows:
    if r["scenario"].startswith("restart"):
        print("%-11s %-15s %-14s   restart %6.0f ms   resident %8s kB" % (
            r["system"], r["mode"], r["scenario"], float(r["p50_us"]) / 1000,
            r["rss_kb"]))
        continue
    if not r["scenario"].startswith("cycle"):
        j = lat.get(("jobq", "sync", r["scenario"]))
        ratio = ("p50 %.2fx p99 %.2fx" % (float(j["p50_us"]) / float(r["p50_us"]),
                 float(j["p99_us"]) / float(r["p99_us"]))
                 if j and r["p50_us"] and r["p99_us"] else "-")
        print("%-11s %-15s %-14s %10s %9s %9s   jobq latency / this: %s" % (
            r["system"], r["mode"], r["scenario"], "", r["p50_us"],
            r["p99_us"], ratio))
        continue
    v = float(r["jobs_per_s"] or 0)
    j = rate.get(("jobq", "sync", r["scenario"]), 0)
    b = rate.get(("jobq", "sync-batched", r["scenario"]), 0)
    print("%-11s %-15s %-14s %10.0f %9s %9s %11s %11s" % (
        r["system"], r["mode"], r["scenario"], v, r["p50_us"], r["p99_us"],
        "%.2fx" % (j / v) if v else "-", "%.2fx" % (b / v) if v else "-"))
PY
