# bench/peers/nats.sh: a private three-node NATS JetStream cluster on
# 127.0.0.1 for the JetStream backend's rows, sourced by bench/run.sh
# (POSIX sh). The nats-server is the one scripts/fetch-nats-server.sh puts
# in the build directory (2.11.0 or later, as production needs); see
# bench/README.md for what its figures can and cannot say.
#
# nats_start DIR: runs $NATS_SERVER (default $BUILD/nats/nats-server, BUILD
# defaulting to build); configs DIR/nN.conf, stores DIR/nN, pids
# DIR/nN.pid; NATS_URLS gets the client URLs. nats_stop stops the three.

NATS_DIR=
NATS_URLS=

nats_start() {
    NATS_DIR=$1
    na_server=${NATS_SERVER:-${BUILD:-build}/nats/nats-server}
    rm -rf "$NATS_DIR"; mkdir -p "$NATS_DIR"
    [ -x "$na_server" ] || {
        echo "bench: no nats-server at $na_server:" \
            "sh scripts/fetch-nats-server.sh ${BUILD:-build}/nats" >&2
        return 1
    }
    # Six distinct ports free now (all six held open while they are read).
    # shellcheck disable=SC2046
    set -- $(python3 -c 'import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
    na_c1=$1; na_c2=$2; na_c3=$3; na_r1=$4; na_r2=$5; na_r3=$6
    NATS_URLS="nats://127.0.0.1:$na_c1,nats://127.0.0.1:$na_c2,nats://127.0.0.1:$na_c3"
    for na_i in 1 2 3; do
        eval "na_c=\$na_c$na_i; na_r=\$na_r$na_i"
        cat > "$NATS_DIR/n$na_i.conf" <<CONF
server_name: n$na_i
listen: 127.0.0.1:$na_c
max_payload: 4MB
jetstream { store_dir: "$NATS_DIR/n$na_i" }
cluster {
    name: jobq-bench
    listen: 127.0.0.1:$na_r
    routes: [ nats-route://127.0.0.1:$na_r1, nats-route://127.0.0.1:$na_r2, nats-route://127.0.0.1:$na_r3 ]
}
CONF
        "$na_server" -c "$NATS_DIR/n$na_i.conf" > "$NATS_DIR/n$na_i.log" 2>&1 &
        echo $! > "$NATS_DIR/n$na_i.pid"
    done
    # JetStream is ready once a meta leader is elected: a broker can then
    # make its buckets (it retries nothing, so wait here).
    for na_t in $(seq 1 100); do
        grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" \
            "$NATS_DIR"/n*.log 2>/dev/null && { sleep 1; return 0; }
        sleep 0.1
    done
    echo "bench: the NATS cluster did not elect a leader" >&2
    return 1
}

nats_stop() {
    [ -n "$NATS_DIR" ] || return 0
    for na_i in 1 2 3; do
        [ -f "$NATS_DIR/n$na_i.pid" ] && kill "$(cat "$NATS_DIR/n$na_i.pid")" 2>/dev/null
    done
    sleep 0.5
    for na_i in 1 2 3; do
        [ -f "$NATS_DIR/n$na_i.pid" ] && kill -9 "$(cat "$NATS_DIR/n$na_i.pid")" 2>/dev/null
    done
    NATS_DIR=
    return 0
}
