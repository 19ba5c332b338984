/*  jobq_latency BIN_DIR [--jobs N] [--curve]: idle dispatch through a real
   broker (bench.h) and a worker built on libjobq with one slot, in a forked
    child, already waiting; its processor `stamp` notes when it was entered
    in memory shared with this process. N times, 2 ms apart: enqueue one
    job and time its acknowledgement (which includes the commit's full
    sync) and the moment the processor started it, both from just before
    the request is sent. Bounded: N jobs, 60 s. The last two lines are CSV
    (system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb).
    --curve: the broker has a key file, and every connection is CURVE;
    the mode is then sync-curve. */
#include "jobq/jobq_client.h"
#include "jobq/jobq_worker.h"
#include "bench.h"

#include <czmq.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

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
s_worker_main(const char *ep, s_stamps_t *st, const jobq_curve_t *curve)
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
    cfg.curve = curve;
    cfg.name = curve ? "w" : NULL;
    jobq_worker_t *w = jobq_worker_new(&cfg, reg);
    int rc = w ? jobq_worker_run(w, &s_stop) : JOBQ_ENOMEM;
    jobq_worker_destroy(&w);
    jobq_registry_destroy(&reg);
    _exit(rc == JOBQ_OK ? 0 : 1);
}

//  --- the measuring side -----------------------------------------------------

//  Enqueue stamp job i; *ack gets the round trip. Then wait (at most
//  500 ms) for the worker to start it; returns the start, or -1.
static int64_t
s_one(jobq_client_t *c, volatile int64_t *stamps, int64_t i, int64_t *ack)
{
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 64);
    jobq_mp_write_map(&w, 1);
    jobq_mp_write_cstr(&w, "i");
    jobq_mp_write_int(&w, i);
    jobq_enqueue_t req = {"stamp", "lat", {w.data, w.len}, 0, 0, 1, 0, NULL};
    char id[JOBQ_ID_LEN + 1];
    int64_t t0 = bench_now_us();
    int rc = jobq_client_enqueue(c, &req, id, NULL);
    *ack = bench_now_us() - t0;
    jobq_mp_writer_fini(&w);
    if (rc != JOBQ_OK)
        return -1;
    while (stamps[i] == 0 && bench_now_us() - t0 < 500000)
        bench_sleep_us(20);
    return stamps[i] ? stamps[i] - t0 : -1;
}

int
main(int argc, char **argv)
{
    int jobs = 2000, curve = 0, nbrokers = 1;
    const char *store = NULL;
    for (int i = 2; i < argc && jobs > 0; i++) {
        if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
            jobs = (int) bench_arg(argv[++i], 10, 100000);
        else if (strcmp(argv[i], "--curve") == 0)
            curve = 1;
        else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            store = argv[++i];
        else if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
            nbrokers = (int) bench_arg(argv[++i], 1, 2);
        else
            jobs = -1;
    }
    if (argc < 2 || jobs < 0 || nbrokers < 1 ||
        (nbrokers > 1 && (!store || curve))) {
        fprintf(stderr, "usage: jobq_latency BIN_DIR [--jobs 10..100000] "
                        "[--curve] [--store nats://... [--brokers 2]]\n"
                        "  (--brokers 2: enqueue through one broker, the "
                        "worker on the other)\n");
        return 2;
    }
    //  Buckets of this run's own: runs on one cluster stay apart.
    char store_uri[1024] = "";
    if (store)
        snprintf(store_uri, sizeof store_uri, "%s%sprefix=b%ld", store,
                 strchr(store, '?') ? "&" : "?", (long) getpid());
    const char *extra_store[] = {"--store", store_uri, NULL};
    bench_curve_t keys;
    if (curve && bench_curve_make(&keys) != 0)
        return 1;
    const char *extra[] = {"--keys", keys.keys, "--cert", keys.broker_cert,
                           NULL};
    //  One allocation: acknowledgements and starts, jobs each.
    int64_t *acks = calloc(2 * (size_t) jobs, sizeof *acks);
    int64_t *runs = acks + jobs;
    int64_t slots = jobs + S_WARM_TRIES;
    s_stamps_t st = {mmap(NULL, (size_t) slots * sizeof(int64_t),
                          PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                          -1, 0),
                     slots};
    //  Both children are made before this process touches ZeroMQ.
    bench_broker_t b, b2;
    const char *const *bx = curve ? extra : store ? extra_store : NULL;
    if (!acks || st.stamps == MAP_FAILED ||
        bench_broker_start_with(&b, argv[1], bx) != 0) {
        free(acks);
        return 1;
    }
    if (nbrokers > 1 && bench_broker_start_with(&b2, argv[1], bx) != 0) {
        bench_broker_stop(&b);
        free(acks);
        return 1;
    }
    pid_t worker = fork();
    if (worker < 0) {
        perror("jobq_latency: fork");
        bench_broker_stop(&b);
        free(acks);
        return 1;
    }
    if (worker == 0)
        s_worker_main(nbrokers > 1 ? b2.workers : b.workers, &st,
                      curve ? &keys.worker : NULL);
    zsys_init();
    zsys_set_linger(0);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b.clients;
    cfg.events = b.events;
    cfg.timeout_ms = 500;
    cfg.curve = curve ? &keys.client : NULL;
    jobq_client_t *c = jobq_client_new(&cfg);
    //  Warm up: broker up, worker registered, connections made (10 s at
    //  most), then S_WARMUP jobs more.
    int64_t ack, t;
    int warm = 0;
    //  A fresh index per attempt: a late start cannot spoil a retry.
    for (int i = 0; i < S_WARM_TRIES && warm < S_WARMUP; i++) {
        if (s_one(c, st.stamps, jobs + i, &ack) >= 0)
            warm++;
        else
            zclock_sleep(100);
    }
    int done = 0, missed = 0;
    int64_t give_up = bench_now_us() + 60 * 1000000LL;
    while (warm == S_WARMUP && done + missed < jobs && missed < 10 &&
           bench_now_us() < give_up) {
        zclock_sleep(2);
        t = s_one(c, st.stamps, done + missed, &ack);
        if (t < 0) {
            missed++;  //  not started within 500 ms: counted, not a sample
            continue;
        }
        acks[done] = ack;
        runs[done++] = t;
    }
    if (done == 0) {
        fprintf(stderr, "jobq_latency: no job was seen dispatched\n");
        done = 1;
        acks[0] = runs[0] = -1;
    }
    printf("jobq idle: jobs=%d missed=%d (us: enqueue ack, then enqueue to "
           "worker start)\n",
           done, missed);
    char label[64];
    const char *sys = !store         ? "jobq"
                      : nbrokers > 1 ? "jobq-nats2"
                                     : "jobq-nats";
    snprintf(label, sizeof label, "%s,%s,enqueue-ack", sys,
             curve ? "sync-curve" : "sync");
    bench_print_row(label, 0, acks, done);
    snprintf(label, sizeof label, "%s,%s,idle-dispatch", sys,
             curve ? "sync-curve" : "sync");
    bench_print_row(label, 0, runs, done);
    jobq_client_destroy(&c);
    kill(worker, SIGTERM);
    waitpid(worker, NULL, 0);
    bench_broker_stop(&b);
    if (nbrokers > 1)
        bench_broker_stop(&b2);
    if (curve)
        bench_curve_remove(&keys);
    free(acks);
    return done == jobs && missed == 0 ? 0 : 1;
}
