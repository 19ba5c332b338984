#!/bin/sh
# Start a broker and a worker in the foreground; Ctrl-C (or SIGTERM) stops
# both cleanly. Data lives under ./var/jobq, exports under ./var/exports.
set -u
BIN=${1:-build/apps}
mkdir -p var/jobq var/exports
"$BIN/jobq-broker" --data var/jobq &
broker=$!
# The worker reconnects by itself, so it may start at once.
"$BIN/jobq-worker" --export-dir var/exports --verbose &
worker=$!
stop() {
    code=${1:-0}
    trap - INT TERM
    kill -TERM "$worker" 2>/dev/null
    wait "$worker" 2>/dev/null
    kill -TERM "$broker" 2>/dev/null
    wait "$broker" 2>/dev/null
    echo "jobq: stopped"
    exit "$code"
}
trap stop INT TERM
echo "jobq: broker pid $broker, worker pid $worker; Ctrl-C stops both"
# If either dies on its own, stop the other too.
while kill -0 "$broker" 2>/dev/null && kill -0 "$worker" 2>/dev/null; do
    sleep 1
done
echo "jobq: a process exited; stopping" >&2
stop 1
