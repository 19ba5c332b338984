#!/bin/sh
# make run: a broker and a worker in the foreground, data under ./var/jobq,
# exports under ./var/exports. Ctrl-C (or SIGTERM) stops both gracefully:
# the broker hands out no more jobs and waits for the running ones, which
# the worker finishes and reports, so no job runs twice. A second Ctrl-C
# stops both at once.
#
# Each program runs in a session of its own (setsid), so the terminal's
# Ctrl-C reaches this script alone, which passes one SIGTERM to each: a
# second signal means "now" to them, and they should get it only when the
# user asks twice.
#
# The environment may move it: JOBQ_BROKER, JOBQ_WORKERS and JOBQ_EVENTS
# (endpoints), JOBQ_HTTP (the gateway's ADDR:PORT, default
# 127.0.0.1:8080), JOBQ_DATA and JOBQ_EXPORTS (directories), JOBQ_FILES
# (the one directory scrape_reviews may read file:// URLs from; default
# examples), JOBQ_CORS (the origins whose pages may call the gateway;
# default the Next.js example's, examples/nextjs).
#
# jobq-gateway (HTTP and JSON, docs/HTTP.md) runs beside them when it can:
# a port already taken stops it alone, with a line saying so.
set -u
BIN=${1:-build/apps}
CLIENTS=${JOBQ_BROKER:-tcp://127.0.0.1:5555}
WORKERS=${JOBQ_WORKERS:-tcp://127.0.0.1:5556}
EVENTS=${JOBQ_EVENTS:-tcp://127.0.0.1:5557}
DATA=${JOBQ_DATA:-var/jobq}
EXPORTS=${JOBQ_EXPORTS:-var/exports}
HTTP=${JOBQ_HTTP:-127.0.0.1:8080}
# Origins whose pages may call the gateway: the Next.js example's.
CORS=${JOBQ_CORS:-http://127.0.0.1:3000,http://localhost:3000}
mkdir -p "$DATA" "$EXPORTS"
setsid "$BIN/jobq-broker" --data "$DATA" --clients "$CLIENTS" \
    --workers "$WORKERS" --events "$EVENTS" &
broker=$!
# The worker reconnects by itself, so it may start at once.
# The sample shop is read from examples/ (README.md); nothing else on disk
# or on the local network is open to scrape_reviews.
FILES=${JOBQ_FILES:-examples}
if [ -d "$FILES" ]; then
    set -- --allow-files "$FILES"
else
    set --
fi
setsid "$BIN/jobq-worker" --broker "$WORKERS" --clients "$CLIENTS" \
    --export-dir "$EXPORTS" --verbose "$@" &
worker=$!
gateway=""
if [ -x "$BIN/jobq-gateway" ]; then
    setsid "$BIN/jobq-gateway" --listen "$HTTP" --broker "$CLIENTS" \
        --events "$EVENTS" --cors "$CORS" &
    gateway=$!
fi
signals=0
stop() {
    signals=$((signals + 1))
    kill -TERM "$worker" "$broker" $gateway 2>/dev/null
    if [ "$signals" -eq 1 ]; then
        echo "jobq: stopping (Ctrl-C again to stop at once)" >&2
    fi
}
# HUP too: in sessions of their own, the programs do not get the
# terminal's hangup.
trap stop INT TERM HUP
cat >&2 <<EOT
jobq: broker pid $broker, worker pid $worker; Ctrl-C stops both
jobq:   clients $CLIENTS   workers $WORKERS   events $EVENTS
jobq: from another terminal, a first job and its progress bar:
jobq:   $BIN/jobq enqueue sleep --shop demo --input '{"ms": 3000, "steps": 10}' --watch
EOT
if [ -n "$gateway" ]; then
    cat >&2 <<EOT
jobq: gateway pid $gateway: the dashboard at http://$HTTP/, the API at
jobq:   http://$HTTP/v1/jobs (docs/HTTP.md), for example
jobq:   curl -s -X POST -H 'Content-Type: application/json' -d '{"type": "sleep", "shopId": "demo"}' http://$HTTP/v1/jobs
EOT
fi
# Wait until both have ended; if one ends on its own, stop the other.
while kill -0 "$broker" 2>/dev/null || kill -0 "$worker" 2>/dev/null; do
    if [ "$signals" -eq 0 ] &&
        { ! kill -0 "$broker" 2>/dev/null || ! kill -0 "$worker" 2>/dev/null; }; then
        echo "jobq: a process exited; stopping the other" >&2
        stop
    fi
    sleep 0.2
done
wait "$broker" 2>/dev/null
b=$?
wait "$worker" 2>/dev/null
w=$?
if [ -n "$gateway" ]; then
    kill -TERM "$gateway" 2>/dev/null
    wait "$gateway" 2>/dev/null
fi
echo "jobq: stopped" >&2
# A program that failed (not one stopped by a signal) fails make run.
[ "$b" -eq 0 ] || [ "$b" -gt 128 ] || exit 1
[ "$w" -eq 0 ] || [ "$w" -gt 128 ] || exit 1
