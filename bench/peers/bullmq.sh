# bench/peers/bullmq.sh: BullMQ on Redis as a benchmark peer. POSIX sh
# functions, sourced by bench/run.sh, which sets HERE to the bench/
# directory and BULL_HOME to where the Node client is installed and run (in
# the build directory, so that nothing is written into the source tree).
#
#   bullmq_install               redis-server (apt); bull_bench.mjs and its
#                                pinned bullmq (npm ci) into BULL_HOME
#   bullmq_start MODE DIR PORT   redis-server on 127.0.0.1:PORT only, data in
#                                DIR, MODE aof-always | aof-everysec; its pid
#                                in BULL_PID; returns once it answers
#   bullmq_stop                  stops that redis-server by its pid, and waits

BULL_SRC=${HERE:-bench}/peers/bullmq
BULL_HOME=${BULL_HOME:-build/bench/bullmq}
BULL_PID=

bullmq_install() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "bench: installing redis-server" >&2
        { apt-get install -y redis-server || { apt-get update -qq &&
            apt-get install -y redis-server; }; } >/dev/null 2>&1 || return 1
        # Where the package started its own service (systemd hosts), stop
        # it: the benchmark runs its own redis-server, and nothing of ours
        # is to listen on any address but 127.0.0.1.
        if command -v systemctl >/dev/null 2>&1 &&
            systemctl is-active --quiet redis-server 2>/dev/null; then
            systemctl stop redis-server >/dev/null 2>&1 || true
            systemctl disable redis-server >/dev/null 2>&1 || true
        fi
    fi
    mkdir -p "$BULL_HOME"
    # A changed lockfile means a fresh install.
    cmp -s "$BULL_SRC/package-lock.json" "$BULL_HOME/package-lock.json" ||
        rm -rf "$BULL_HOME/node_modules"
    cp "$BULL_SRC/package.json" "$BULL_SRC/package-lock.json" \
        "$BULL_SRC/bull_bench.mjs" "$BULL_HOME/"
    if [ ! -d "$BULL_HOME/node_modules/bullmq" ]; then
        echo "bench: npm ci in $BULL_HOME" >&2
        (cd "$BULL_HOME" &&
            npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || {
            echo "bench: npm ci failed in $BULL_HOME" >&2
            return 1
        }
    fi
}

bullmq_start() {  # MODE DIR PORT
    case $1 in
        aof-always)   _bull_aof="--appendonly yes --appendfsync always" ;;
        aof-everysec) _bull_aof="--appendonly yes --appendfsync everysec" ;;
        *) echo "bullmq_start: unknown mode '$1'" >&2; return 1 ;;
    esac
    mkdir -p "$2"
    # shellcheck disable=SC2086
    redis-server --bind 127.0.0.1 --port "$3" --protected-mode yes \
        --unixsocket '' --dir "$2" --save '' --daemonize no \
        --logfile "$2/redis.log" $_bull_aof &
    BULL_PID=$!
    _bull_try=0
    # At most 10 s (100 x 0.1 s) until the server on that port answers and
    # is this one (its process_id is BULL_PID, not some earlier server's).
    until redis-cli -h 127.0.0.1 -p "$3" info server 2>/dev/null |
        tr -d '\r' | grep -qx "process_id:$BULL_PID"; do
        _bull_try=$((_bull_try + 1))
        if [ "$_bull_try" -ge 100 ] || ! kill -0 "$BULL_PID" 2>/dev/null; then
            echo "bullmq_start: redis-server did not answer on 127.0.0.1:$3" >&2
            bullmq_stop
            return 1
        fi
        sleep 0.1
    done
}

bullmq_stop() {
    [ -n "${BULL_PID:-}" ] || return 0
    kill "$BULL_PID" 2>/dev/null || true
    # SIGTERM makes Redis flush its AOF and exit; at most 10 s, then KILL.
    _bull_try=0
    while kill -0 "$BULL_PID" 2>/dev/null && [ "$_bull_try" -lt 100 ]; do
        _bull_try=$((_bull_try + 1))
        sleep 0.1
    done
    kill -9 "$BULL_PID" 2>/dev/null || true
    wait "$BULL_PID" 2>/dev/null || true
    BULL_PID=
}
