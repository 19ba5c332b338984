/*  floors: what the transport and the disk cost on their own, measured in
    the same run as jobq and its peers, so that each latency target can be
    read against the least any design on this stack could take.

    floors relay [--jobs N] [--raw FILE]
        The idle dispatch path of jobq with nothing in it: three processes
        over loopback TCP with plain libzmq, a client DEALER, a relay with
        two ROUTERs, a worker DEALER that has said it is ready. N times,
        with the same 2 ms pause, warm-up and clock as jobq_latency: the
        client sends a message, the relay forwards it to the worker and
        answers the client, and the worker notes the monotonic time it
        received it in shared memory. Prints the client-send to
        worker-receive latency as
        zeromq,relay-floor,idle-dispatch,,p50,p99,p999,
        and with --raw the samples, unsorted, to FILE (bench/bench.h; the
        first column is the relay's answer).

    floors commit DIR [--jobs N] [--dbs K]
        One small record per durable LMDB commit (the broker's flags:
        MDB_NOTLS, full sync), back to back, in a new environment in a
        directory of its own under DIR, removed afterwards. Prints the
        commit latency and rate as
        lmdb,commit-floor,enqueue-ack,commits_per_s,p50,p99,p999,
        With --dbs K (2..16) each commit puts one record into each of K
        named databases instead, as a broker turn touches several (the job
        and its indexes), and the row is lmdb,commit-K-dbs,enqueue-ack:
        what every further database a commit dirties costs.

    floors pingpong [--jobs N]
        What a wakeup across CPUs costs on this machine, the hop every
        system in the run pays between its processes and threads: two
        processes over loopback TCP (TCP_NODELAY), N back-to-back round
        trips of 300 bytes, first with the scheduler free to place them,
        then with both pinned to one CPU. Prints the round trip as
        tcp,pingpong-any-cpu,round-trip,,p50,p99,p999,
        tcp,pingpong-one-cpu,round-trip,,p50,p99,p999,
        A machine whose first row is far above its second wakes halted
        CPUs slowly (a VM whose host is busy, or whose guest does not poll
        before it halts), and every multi-hop path is slower there.

    All are bounded: N in 10..100000 (default 2000), 60 s at most each. */
#include "bench.h"

#include <lmdb.h>
#include <zmq.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_WARMUP     50        //  samples taken and thrown away first
#define S_WARM_TRIES 100       //  attempts at them, each its own index
#define S_PAUSE_US   2000      //  between relay samples, as jobq_latency
#define S_LIMIT_US   60000000  //  the whole run
#define S_WAIT_US    500000    //  one sample, at most
#define S_RECORD_LEN 200       //  bytes per committed record
#define S_MAX_DBS    16        //  databases a commit may write, at most
#define S_PING_LEN   300       //  bytes each way per round trip

static void
s_pause_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

//  --- relay -----------------------------------------------------------------

//  Shared between the three processes.
typedef struct {
    char client_ep[64];  //  written by the relay once bound
    char worker_ep[64];
    volatile int bound;         //  1 when both are set, -1 when binding failed
    volatile int64_t stamps[];  //  when the worker received sample i
} s_shared_t;

static void
s_relay_main(s_shared_t *sh)
{
    void *ctx = zmq_ctx_new();
    void *front = zmq_socket(ctx, ZMQ_ROUTER);
    void *back = zmq_socket(ctx, ZMQ_ROUTER);
    size_t len = sizeof sh->client_ep;
    if (zmq_bind(front, "tcp://127.0.0.1:*") < 0 ||
        zmq_getsockopt(front, ZMQ_LAST_ENDPOINT, sh->client_ep, &len) < 0 ||
        zmq_bind(back, "tcp://127.0.0.1:*") < 0 ||
        (len = sizeof sh->worker_ep,
         zmq_getsockopt(back, ZMQ_LAST_ENDPOINT, sh->worker_ep, &len) < 0)) {
        sh->bound = -1;
        _exit(1);
    }
    __sync_synchronize();
    sh->bound = 1;
    uint8_t worker[256], peer[256], body[64];
    int worker_len = -1;
    zmq_pollitem_t items[2] = {{front, 0, ZMQ_POLLIN, 0},
                               {back, 0, ZMQ_POLLIN, 0}};
    while (zmq_poll(items, 2, -1) >= 0) {
        if (items[1].revents & ZMQ_POLLIN) {  //  the worker says ready
            int n = zmq_recv(back, worker, sizeof worker, 0);
            if (zmq_recv(back, body, sizeof body, 0) >= 0 && n > 0)
                worker_len = n;
        }
        if (items[0].revents & ZMQ_POLLIN) {  //  forward, then answer
            int n = zmq_recv(front, peer, sizeof peer, 0);
            int m = zmq_recv(front, body, sizeof body, 0);
            if (n <= 0 || m <= 0 || worker_len < 0)
                continue;
            zmq_send(back, worker, (size_t) worker_len, ZMQ_SNDMORE);
            zmq_send(back, body, (size_t) m, 0);
            zmq_send(front, peer, (size_t) n, ZMQ_SNDMORE);
            zmq_send(front, "ok", 2, 0);
        }
    }
    _exit(0);
}

static void
s_worker_main(s_shared_t *sh, int64_t slots)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (zmq_connect(s, sh->worker_ep) < 0 || zmq_send(s, "ready", 5, 0) < 0)
        _exit(1);
    int64_t i;
    while (zmq_recv(s, &i, sizeof i, 0) >= 0) {
        int64_t t = bench_now_us();
        if (i >= 0 && i < slots)
            sh->stamps[i] = t;
    }
    _exit(0);
}

//  One sample: send i (at *sent), take the answer (its round trip to
//  *ack), wait for the worker's stamp. Returns the latency, or -1 when a
//  step took longer than S_WAIT_US.
static int64_t
s_relay_one(void *s, s_shared_t *sh, int64_t i, int64_t *ack, int64_t *sent)
{
    char ok[8];
    int64_t t0 = *sent = bench_now_us();
    if (zmq_send(s, &i, sizeof i, 0) < 0 || zmq_recv(s, ok, sizeof ok, 0) < 0)
        return -1;
    *ack = bench_now_us() - t0;
    while (sh->stamps[i] == 0 && bench_now_us() - t0 < S_WAIT_US)
        s_pause_us(20);
    return sh->stamps[i] ? sh->stamps[i] - t0 : -1;
}

static int
s_relay(int jobs, const char *raw)
{
    int64_t slots = jobs + S_WARM_TRIES;
    size_t size = sizeof(s_shared_t) + (size_t) slots * sizeof(int64_t);
    s_shared_t *sh = mmap(NULL, size, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        fprintf(stderr, "floors: mmap: %s\n", strerror(errno));
        return 1;
    }
    //  Both children are made before this process touches ZeroMQ.
    pid_t relay = fork();
    if (relay < 0) {
        fprintf(stderr, "floors: fork: %s\n", strerror(errno));
        return 1;
    }
    if (relay == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        s_relay_main(sh);
    }
    int64_t give_up = bench_now_us() + 5000000;
    while (sh->bound == 0 && bench_now_us() < give_up)
        s_pause_us(1000);
    if (sh->bound != 1) {
        fprintf(stderr, "floors: the relay could not bind\n");
        kill(relay, SIGKILL);
        waitpid(relay, NULL, 0);
        return 1;
    }
    pid_t worker = fork();
    if (worker < 0) {
        fprintf(stderr, "floors: fork: %s\n", strerror(errno));
        kill(relay, SIGKILL);
        waitpid(relay, NULL, 0);
        return 1;
    }
    if (worker == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        s_worker_main(sh, slots);
    }
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int timeout = S_WAIT_US / 1000, linger = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    int64_t *lat = calloc((size_t) jobs, sizeof *lat);
    int64_t *ack = calloc((size_t) jobs, sizeof *ack), a;
    int64_t *sent = calloc((size_t) jobs, sizeof *sent), t0;
    int done = 0, missed = 0, warm = 0;
    int64_t end = bench_now_us() + S_LIMIT_US;
    if (lat && ack && sent && zmq_connect(s, sh->client_ep) == 0) {
        //  Warm-up: until the worker is known to the relay, then S_WARMUP.
        //  A fresh index per attempt: a late stamp cannot spoil a retry.
        for (int i = 0; i < S_WARM_TRIES && warm < S_WARMUP; i++) {
            if (s_relay_one(s, sh, jobs + i, &a, &t0) >= 0)
                warm++;
            else
                s_pause_us(100000);
        }
        while (warm == S_WARMUP && done + missed < jobs && missed < 10 &&
               bench_now_us() < end) {
            s_pause_us(S_PAUSE_US);
            int64_t t = s_relay_one(s, sh, done + missed, &a, &t0);
            if (t < 0)
                missed++;
            else
                ack[done] = a, sent[done] = t0, lat[done++] = t;
        }
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    kill(worker, SIGKILL);
    kill(relay, SIGKILL);
    waitpid(worker, NULL, 0);
    waitpid(relay, NULL, 0);
    int rc = done == jobs && missed == 0 ? 0 : 1;
    if (done > 0) {
        fprintf(stderr, "floors relay: %d samples, %d missed\n", done, missed);
        char procs[96];
        snprintf(procs, sizeof procs, "producer=%d broker=%d worker=%d",
                 (int) getpid(), (int) relay, (int) worker);
        if (raw && bench_raw_write(raw, procs, ack, lat, sent, done) != 0)
            rc = 1;
        bench_print_row("zeromq,relay-floor,idle-dispatch", 0, lat, done);
    } else {
        fprintf(stderr, "floors relay: no sample\n");
        rc = 1;
    }
    free(lat);
    free(ack);
    free(sent);
    munmap(sh, size);
    return rc;
}

//  --- commit ----------------------------------------------------------------

//  Time jobs + S_WARMUP commits in env (opened) on its main database.
static int
s_commit_run(MDB_env *env, int jobs, int dbs)
{
    MDB_txn *txn = NULL;
    MDB_dbi dbi[S_MAX_DBS];
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    for (int d = 0; !rc && d < dbs; d++) {
        char name[16];
        snprintf(name, sizeof name, "db%d", d);
        rc = mdb_dbi_open(txn, dbs > 1 ? name : NULL, dbs > 1 ? MDB_CREATE : 0,
                          &dbi[d]);
    }
    if (txn) {
        if (!rc)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    int64_t *lat = rc ? NULL : calloc((size_t) jobs, sizeof *lat);
    uint8_t record[S_RECORD_LEN];
    memset(record, 0x5a, sizeof record);
    int done = 0;
    int64_t start = bench_now_us(), end = start + S_LIMIT_US;
    for (int i = 0; lat && i < jobs + S_WARMUP && bench_now_us() < end; i++) {
        uint8_t key[8];
        for (int b = 0; b < 8; b++)  //  big-endian, so each put appends
            key[b] = (uint8_t) ((uint64_t) i >> (56 - 8 * b));
        MDB_val k = {sizeof key, key}, v = {sizeof record, record};
        int64_t t0 = bench_now_us();
        rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (!rc) {
            for (int d = 0; !rc && d < dbs; d++)
                rc = mdb_put(txn, dbi[d], &k, &v, MDB_APPEND);
            if (!rc)
                rc = mdb_txn_commit(txn);
            else
                mdb_txn_abort(txn);
        }
        if (rc)
            break;
        if (i == S_WARMUP - 1)
            start = bench_now_us();
        if (i >= S_WARMUP)
            lat[done++] = bench_now_us() - t0;
    }
    if (rc)
        fprintf(stderr, "floors: LMDB: %s\n", mdb_strerror(rc));
    int64_t took = bench_now_us() - start;
    char label[64] = "lmdb,commit-floor,enqueue-ack";
    if (dbs > 1)
        snprintf(label, sizeof label, "lmdb,commit-%d-dbs,enqueue-ack", dbs);
    if (done > 0)
        bench_print_row(label, took > 0 ? done * 1e6 / (double) took : 0, lat,
                        done);
    free(lat);
    return done == jobs ? 0 : 1;
}

//  A new environment in a directory of its own under dir, removed after.
static int
s_commit(const char *dir, int jobs, int dbs)
{
    char env_dir[600];
    snprintf(env_dir, sizeof env_dir, "%s/lmdb-floor-XXXXXX", dir);
    if (!mkdtemp(env_dir)) {
        fprintf(stderr, "floors: cannot make a directory in %s: %s\n", dir,
                strerror(errno));
        return 1;
    }
    MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (!rc)
        rc = mdb_env_set_mapsize(env, (size_t) 256 << 20);
    if (!rc)
        rc = mdb_env_set_maxdbs(env, S_MAX_DBS);
    if (!rc)
        rc = mdb_env_open(env, env_dir, MDB_NOTLS, 0600);
    if (rc)
        fprintf(stderr, "floors: LMDB in %s: %s\n", env_dir, mdb_strerror(rc));
    else
        rc = s_commit_run(env, jobs, dbs);
    mdb_env_close(env);
    bench_remove_lmdb(env_dir);
    return rc ? 1 : 0;
}

//  --- pingpong --------------------------------------------------------------

//  All len bytes of buf written to fd (out), or read from it: false on
//  error, EOF or the socket's time limit.
static bool
s_io_all(int fd, uint8_t *buf, size_t len, bool out)
{
    while (len > 0) {
        ssize_t n = out ? write(fd, buf, len) : read(fd, buf, len);
        if (n <= 0)
            return false;
        buf += n, len -= (size_t) n;
    }
    return true;
}

//  A socket with TCP_NODELAY and a receive limit of S_WAIT_US.
static void
s_ping_opts(int fd)
{
    int one = 1;
    struct timeval tv = {0, S_WAIT_US};
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

//  The echo process: takes one connection on lst, answers every message.
static void
s_echo_main(int lst)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = accept(lst, NULL, NULL);
    if (fd < 0)
        _exit(1);
    s_ping_opts(fd);
    uint8_t buf[S_PING_LEN];
    while (s_io_all(fd, buf, sizeof buf, false) &&
           s_io_all(fd, buf, sizeof buf, true))
        ;
    _exit(0);
}

//  One run of jobs round trips (after S_WARMUP), printed under label; the
//  echo process inherits this one's CPU affinity. 0, or 1.
static int
s_ping_run(int jobs, const char *label)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    int lst = socket(AF_INET, SOCK_STREAM, 0);
    if (lst < 0 || bind(lst, (struct sockaddr *) &addr, sizeof addr) < 0 ||
        listen(lst, 1) < 0 ||
        getsockname(lst, (struct sockaddr *) &addr, &alen) < 0) {
        fprintf(stderr, "floors: loopback listener: %s\n", strerror(errno));
        if (lst >= 0)
            close(lst);
        return 1;
    }
    pid_t echo = fork();
    if (echo == 0)
        s_echo_main(lst);
    close(lst);
    if (echo < 0) {
        fprintf(stderr, "floors: fork: %s\n", strerror(errno));
        return 1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int64_t *lat = calloc((size_t) jobs, sizeof *lat);
    int done = 0;
    if (fd >= 0 && lat &&
        connect(fd, (struct sockaddr *) &addr, sizeof addr) == 0) {
        s_ping_opts(fd);
        uint8_t buf[S_PING_LEN];
        memset(buf, 0x5a, sizeof buf);
        int64_t end = bench_now_us() + S_LIMIT_US;
        for (int i = 0; i < jobs + S_WARMUP && bench_now_us() < end; i++) {
            int64_t t0 = bench_now_us();
            if (!s_io_all(fd, buf, sizeof buf, true) ||
                !s_io_all(fd, buf, sizeof buf, false))
                break;
            if (i >= S_WARMUP)
                lat[done++] = bench_now_us() - t0;
        }
    } else {
        fprintf(stderr, "floors: connect to the echo: %s\n", strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    kill(echo, SIGKILL);
    waitpid(echo, NULL, 0);
    if (done > 0)
        bench_print_row(label, 0, lat, done);
    else
        fprintf(stderr, "floors pingpong: no sample\n");
    free(lat);
    return done == jobs ? 0 : 1;
}

//  Free, then both on the first CPU this process may use.
static int
s_pingpong(int jobs)
{
    cpu_set_t was, one;
    if (sched_getaffinity(0, sizeof was, &was) < 0) {
        fprintf(stderr, "floors: sched_getaffinity: %s\n", strerror(errno));
        return 1;
    }
    int rc = s_ping_run(jobs, "tcp,pingpong-any-cpu,round-trip");
    int cpu = 0;
    while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &was))
        cpu++;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) < 0) {
        fprintf(stderr, "floors: sched_setaffinity: %s\n", strerror(errno));
        return 1;
    }
    rc |= s_ping_run(jobs, "tcp,pingpong-one-cpu,round-trip");
    sched_setaffinity(0, sizeof was, &was);
    return rc;
}

int
main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    bool commit = strcmp(mode, "commit") == 0;
    int first = commit ? 3 : 2;  //  where the options begin
    int jobs = 2000, dbs = 1;
    const char *raw = NULL;
    for (int i = first; i < argc; i += 2) {
        if (i + 1 < argc && strcmp(argv[i], "--jobs") == 0)
            jobs = atoi(argv[i + 1]);
        else if (i + 1 < argc && commit && strcmp(argv[i], "--dbs") == 0)
            dbs = atoi(argv[i + 1]);
        else if (i + 1 < argc && !commit && strcmp(argv[i], "--raw") == 0)
            raw = argv[i + 1];
        else
            jobs = 0;
    }
    bool ping = strcmp(mode, "pingpong") == 0;
    if ((!commit && !ping && strcmp(mode, "relay") != 0) || argc < first ||
        jobs < 10 || jobs > 100000 || dbs < 1 || dbs > S_MAX_DBS ||
        (ping && raw)) {
        fprintf(stderr, "usage: floors relay [--jobs 10..100000] [--raw FILE]\n"
                        "       floors commit DIR [--jobs 10..100000] "
                        "[--dbs 1..16]\n"
                        "       floors pingpong [--jobs 10..100000]\n");
        return 2;
    }
    if (ping)
        return s_pingpong(jobs);
    return commit ? s_commit(argv[2], jobs, dbs) : s_relay(jobs, raw);
}
