/*  jobq_latency: idle dispatch latency through a real broker and worker.

    Starts jobq-broker (fresh data directory, free loopback ports, full
    sync) and, in a forked child, a worker built on libjobq with one slot,
    already waiting, whose processor `stamp` notes the monotonic time it
    was entered in memory shared with this process. Then, N times with a
    2 ms pause: enqueue one job and time (a) its acknowledgement, the
    ENQUEUE round trip, which includes the commit's full sync, and (b) the
    moment the worker's processor started it: the idle dispatch latency,
    enqueue to worker start. Both run from just before the request is sent.

    usage: jobq_latency BIN_DIR [--jobs N] [--raw FILE]
    (bounded: N jobs, 60 s). --raw also writes the samples, unsorted, to
    FILE (bench/bench.h).
    The last two lines printed are CSV (system,mode,scenario,jobs_per_s,
    p50_us,p99_us,p999_us,rss_kb). */
#include "jobq/jobq_client.h"
#include "jobq/jobq_worker.h"
#include "bench.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_WARMUP     50   //  jobs before the samples
#define S_WARM_TRIES 100  //  attempts at them, each its own index

//  --- the worker child -------------------------------------------------------

typedef struct {
    volatile int64_t *stamps;  //  shared: when job i started, 0 = not yet
    int64_t n;                 //  slots in stamps
} s_stamps_t;

static volatile sig_atomic_t s_stop;

static void
s_on_term(int sig)
{
    (void) sig;
    s_stop = 1;
}

static int
s_stamp(jobq_job_t *job, void *state)
{
    int64_t t = bench_now_us();
    s_stamps_t *st = state;
    int64_t i;
    if (jobq_job_input_int(job, "i", &i) == JOBQ_OK && i >= 0 && i < st->n)
        st->stamps[i] = t;
    return JOBQ_OK;
}

static void
s_worker_main(const char *ep, s_stamps_t *st)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    zsys_init();
    zsys_handler_set(NULL);  //  czmq's own handler would take SIGTERM
    signal(SIGTERM, s_on_term);
    jobq_registry_t *reg = jobq_registry_new();
    if (!reg || jobq_registry_add(reg, "stamp", s_stamp, st) != JOBQ_OK)
        _exit(1);
    jobq_worker_config_t cfg;
    jobq_worker_config_defaults(&cfg);
    cfg.broker = ep;
    cfg.concurrency = 1;
    cfg.grace_ms = 100;
    jobq_worker_t *w = jobq_worker_new(&cfg, reg);
    int rc = w ? jobq_worker_run(w, &s_stop) : JOBQ_ENOMEM;
    jobq_worker_destroy(&w);
    jobq_registry_destroy(&reg);
    _exit(rc == JOBQ_OK ? 0 : 1);
}

//  --- the measuring side -----------------------------------------------------

//  Three free loopback ports, held open together so they differ.
static int
s_free_ports(int ports[3])
{
    int fds[3];
    for (int i = 0; i < 3; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *) &a, len) < 0 ||
            getsockname(fds[i], (struct sockaddr *) &a, &len) < 0)
            return -1;
        ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    return 0;
}

//  Enqueue stamp job i; *sent gets the moment it was sent, *ack the round
//  trip. Then wait (at most 500 ms) for the worker to start it; returns
//  the start, or -1.
static int64_t
s_one(jobq_client_t *c,
      volatile int64_t *stamps,
      int64_t i,
      int64_t *ack,
      int64_t *sent)
{
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 64);
    jobq_mp_write_map(&w, 1);
    jobq_mp_write_cstr(&w, "i");
    jobq_mp_write_int(&w, i);
    jobq_enqueue_t req = {"stamp", "lat", {w.data, w.len}, 0, 0, 1, 0, NULL};
    char id[JOBQ_ID_LEN + 1];
    int64_t t0 = *sent = bench_now_us();
    int rc = jobq_client_enqueue(c, &req, id, NULL);
    *ack = bench_now_us() - t0;
    jobq_mp_writer_fini(&w);
    if (rc != JOBQ_OK)
        return -1;
    while (stamps[i] == 0 && bench_now_us() - t0 < 500000) {
        struct timespec pause = {0, 20000};
        nanosleep(&pause, NULL);
    }
    return stamps[i] ? stamps[i] - t0 : -1;
}

int
main(int argc, char **argv)
{
    int jobs = 2000;
    const char *raw = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--jobs") == 0)
            jobs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--raw") == 0)
            raw = argv[i + 1];
        else
            jobs = 0;
    }
    if (argc < 2 || argc % 2 || jobs < 10 || jobs > 100000) {
        fprintf(stderr, "usage: jobq_latency BIN_DIR [--jobs 10..100000] "
                        "[--raw FILE]\n");
        return 2;
    }
    //  One allocation: acknowledgements, starts and send times, jobs each.
    int64_t *acks = calloc(3 * (size_t) jobs, sizeof *acks);
    if (!acks) {
        fprintf(stderr, "jobq_latency: out of memory\n");
        return 1;
    }
    int64_t *runs = acks + jobs, *sent = runs + jobs;
    int64_t slots = jobs + S_WARM_TRIES;
    s_stamps_t st = {mmap(NULL, (size_t) slots * sizeof(int64_t),
                          PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                          -1, 0),
                     slots};
    char dir[] = "/tmp/jobq-lat-XXXXXX";
    int ports[3];
    if (st.stamps == MAP_FAILED || !mkdtemp(dir) || s_free_ports(ports) < 0) {
        fprintf(stderr, "jobq_latency: cannot set up: %s\n", strerror(errno));
        free(acks);
        return 1;
    }
    char data[600], cl[64], wk[64], ev[64], bbin[600];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cl, sizeof cl, "tcp://127.0.0.1:%d", ports[0]);
    snprintf(wk, sizeof wk, "tcp://127.0.0.1:%d", ports[1]);
    snprintf(ev, sizeof ev, "tcp://127.0.0.1:%d", ports[2]);
    snprintf(bbin, sizeof bbin, "%s/jobq-broker", argv[1]);
    //  Both children are made before this process touches ZeroMQ.
    pid_t broker = fork();
    if (broker == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  //  dies with this process
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        char *bargv[] = {bbin, "--data",   data, "--clients", cl,  "--workers",
                         wk,   "--events", ev,   "--quiet",   NULL};
        execv(bbin, bargv);
        _exit(127);
    }
    pid_t worker = broker < 0 ? -1 : fork();
    if (worker < 0) {
        fprintf(stderr, "jobq_latency: fork: %s\n", strerror(errno));
        if (broker > 0)
            kill(broker, SIGKILL);
        free(acks);
        return 1;
    }
    if (worker == 0)
        s_worker_main(wk, &st);
    zsys_init();
    zsys_set_linger(0);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = cl;
    cfg.events = ev;
    cfg.timeout_ms = 500;
    jobq_client_t *c = jobq_client_new(&cfg);
    //  Warm up: broker up, worker registered, connections made (10 s at
    //  most), then S_WARMUP jobs more.
    int64_t ack, t, t0;
    int warm = 0;
    //  A fresh index per attempt: a late start cannot spoil a retry.
    for (int i = 0; i < S_WARM_TRIES && warm < S_WARMUP; i++) {
        if (s_one(c, st.stamps, jobs + i, &ack, &t0) >= 0)
            warm++;
        else
            zclock_sleep(100);
    }
    int done = 0, missed = 0;
    int64_t give_up = bench_now_us() + 60 * 1000000LL;
    while (warm == S_WARMUP && done + missed < jobs && missed < 10 &&
           bench_now_us() < give_up) {
        zclock_sleep(2);
        t = s_one(c, st.stamps, done + missed, &ack, &t0);
        if (t < 0) {
            missed++;  //  not started within 500 ms: counted, not a sample
            continue;
        }
        acks[done] = ack;
        sent[done] = t0;
        runs[done++] = t;
    }
    char procs[96];
    snprintf(procs, sizeof procs, "producer=%d broker=%d worker=%d",
             (int) getpid(), (int) broker, (int) worker);
    if (done == 0) {
        fprintf(stderr, "jobq_latency: no job was seen dispatched\n");
        done = 1;
        acks[0] = runs[0] = -1;
    } else if (raw &&
               bench_raw_write(raw, procs, acks, runs, sent, done) != 0) {
        missed++;  //  the run is not whole
    }
    qsort(acks, (size_t) done, sizeof *acks, bench_cmp_i64);
    qsort(runs, (size_t) done, sizeof *runs, bench_cmp_i64);
    printf("jobq idle: jobs=%d missed=%d  enqueue ack us p50=%lld p99=%lld "
           "p999=%lld  enqueue->worker start us p50=%lld p99=%lld "
           "p999=%lld\n",
           done, missed, (long long) acks[done / 2],
           (long long) acks[done * 99 / 100],
           (long long) acks[done * 999 / 1000], (long long) runs[done / 2],
           (long long) runs[done * 99 / 100],
           (long long) runs[done * 999 / 1000]);
    bench_print_row("jobq,sync,enqueue-ack", 0, acks, done);
    bench_print_row("jobq,sync,idle-dispatch", 0, runs, done);
    jobq_client_destroy(&c);
    kill(worker, SIGTERM);
    waitpid(worker, NULL, 0);
    kill(broker, SIGTERM);
    waitpid(broker, NULL, 0);
    free(acks);
    bench_remove_lmdb(data);
    if (rmdir(dir) != 0)
        fprintf(stderr, "jobq_latency: could not remove %s\n", dir);
    return done == jobs && missed == 0 ? 0 : 1;
}
