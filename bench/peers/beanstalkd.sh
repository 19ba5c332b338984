# bench/peers/beanstalkd.sh: starting and stopping a private beanstalkd,
# sourced by bench/run.sh (POSIX sh).
#
# BS_DATA is the directory beanstalkd_start empties for each server (pass
# "-b $BS_DATA" to give it a binlog there); BS_PID names the running
# server, or is empty.

BS_PID=

# A TCP port on 127.0.0.1 that is free now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# beanstalkd_start ARGS...: a fresh BS_DATA, then beanstalkd ARGS on
# 127.0.0.1 and a free port, left in $port; its pid in BS_PID.
beanstalkd_start() {
    port=$(free_port)
    rm -rf "$BS_DATA"; mkdir -p "$BS_DATA"
    beanstalkd -l 127.0.0.1 -p "$port" "$@" &
    BS_PID=$!
    sleep 0.3
}

# Stop the server BS_PID names (any server the caller put there), if any.
stop_server() {
    [ -n "$BS_PID" ] || return 0
    kill "$BS_PID" 2>/dev/null || true
    wait "$BS_PID" 2>/dev/null || true
    BS_PID=
}
