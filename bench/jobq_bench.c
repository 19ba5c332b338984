/*  jobq_bench: full job cycles through a real broker and workers, measured
    as a user would see them. Starts jobq-broker (fresh data directory,
    free loopback ports, durable by default) and one jobq-worker process
    with --concurrency W, then P producer threads each enqueue noop jobs
    through libjobq until N jobs are in, and waits until all have completed.
    Prints jobs/s for the whole cycle and the enqueue acknowledgement
    latency (p50/p99/p999, which includes the fsync of the commit).

    usage: jobq_bench BIN_DIR [--producers P] [--workers W] [--jobs N]
                              [--batch B] [--prefetch F] [--pipeline K]
    --batch B enqueues B jobs per request (ENQUEUE_BATCH); --pipeline K
    keeps K single ENQUEUEs in flight per producer (libjobq's pipelined
    enqueue); --prefetch F lets the worker hold F jobs beyond its slots. The
   last line printed is CSV:
   system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb. Bounded: at
   most N jobs and 120 s; it stops everything it started. */
#include "jobq/jobq_client.h"
#include "bench.h"

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

typedef struct {
    const char *clients;  //  endpoint
    int batch;            //  jobs per request
    int pipeline;         //  single requests in flight (1 = wait for each)
    int jobs;             //  to enqueue
    int64_t *lat_us;      //  one per job
    int done;             //  acknowledged
    int errors;           //  refused or unanswered
} s_producer_t;

//  Keep up to p->pipeline single ENQUEUEs of req in flight until p->jobs
//  are answered or give_up (monotonic us) passes. Tickets are consecutive
//  request ids, so t0[ticket - first] is each one's send time.
static void
s_produce_pipelined(s_producer_t *p,
                    jobq_client_t *c,
                    const jobq_enqueue_t *req,
                    int64_t give_up)
{
    int64_t *t0 = calloc((size_t) p->jobs + 1, sizeof *t0);
    uint64_t first = 0, ticket = 0;
    int sent = 0, answered = 0;
    char id[JOBQ_ID_LEN + 1];
    while (answered < sent || (sent < p->jobs && zclock_usecs() < give_up)) {
        while (sent < p->jobs && (int) jobq_client_in_flight(c) < p->pipeline &&
               zclock_usecs() < give_up) {
            int64_t now = zclock_usecs();
            if (jobq_client_enqueue_send(c, req, &ticket) != JOBQ_OK) {
                p->errors++;
                break;
            }
            if (sent == 0)
                first = ticket;
            t0[ticket - first] = now;
            sent++;
        }
        if (jobq_client_in_flight(c) == 0)
            break;
        int rc = jobq_client_enqueue_recv(c, &ticket, id, NULL);
        if (rc == JOBQ_EUNAVAILABLE) {
            p->errors += sent - answered;
            break;
        }
        answered++;
        if (rc == JOBQ_OK)
            p->lat_us[p->done++] = zclock_usecs() - t0[ticket - first];
        else
            p->errors++;
    }
    free(t0);
}

static void *
s_produce(void *arg)
{
    s_producer_t *p = arg;
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = p->clients;
    cfg.retries = 0;  //  no made-up keys: measure the plain path
    jobq_client_t *c = jobq_client_new(&cfg);
    static const uint8_t input[] = {0x81, 0xa1, 'n', 0x01};
    jobq_enqueue_t req = {"noop", "bench", {input, sizeof input}, 0, 0, 3,
                          0,      NULL};
    jobq_enqueue_t *reqs = calloc((size_t) p->batch, sizeof *reqs);
    char(*ids)[JOBQ_ID_LEN + 1] = calloc((size_t) p->batch, sizeof *ids);
    for (int i = 0; i < p->batch; i++)
        reqs[i] = req;
    int64_t give_up = zclock_usecs() + 120 * 1000000LL;
    if (p->pipeline > 1)
        s_produce_pipelined(p, c, &req, give_up);
    else
        for (int i = 0; i < p->jobs && zclock_usecs() < give_up;
             i += p->batch) {
            int n = p->jobs - i < p->batch ? p->jobs - i : p->batch;
            int64_t t0 = zclock_usecs();
            int rc = n == 1 ? jobq_client_enqueue(c, &req, ids[0], NULL)
                            : jobq_client_enqueue_batch(c, reqs, (size_t) n,
                                                        ids, NULL);
            if (rc == JOBQ_OK)
                for (int k = 0; k < n; k++)
                    p->lat_us[p->done++] = zclock_usecs() - t0;
            else
                p->errors += n;
        }
    free(reqs);
    free(ids);
    jobq_client_destroy(&c);
    return NULL;
}

//  Three free loopback ports: all bound at once so that no two are the same
//  (an ephemeral port closed at once would be handed out again).
static void
s_ports(int out[3])
{
    zsock_t *s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = zsock_new(ZMQ_ROUTER);
        out[i] = zsock_bind(s[i], "tcp://127.0.0.1:*");
    }
    for (int i = 0; i < 3; i++)
        zsock_destroy(&s[i]);
}

//  Start argv; the child dies with this process, however it ends.
static pid_t
s_spawn(char **argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static uint64_t
s_completed(jobq_client_t *c)
{
    jobq_bytes_t body = {NULL, 0}, totals, v;
    uint64_t n = 0;
    if (jobq_client_stats(c, &body) == JOBQ_OK &&
        jobq_mp_map_find(body, "totals", &totals) == JOBQ_OK &&
        jobq_mp_map_find(totals, "completed", &v) == JOBQ_OK) {
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, v.ptr, v.len);
        jobq_mp_read_uint(&r, &n);
    }
    free((void *) body.ptr);
    return n;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: jobq_bench BIN_DIR [--producers P] "
                        "[--workers W] [--jobs N]\n");
        return 2;
    }
    int producers = 16, workers = 16, jobs = 20000, batch = 1, prefetch = 0;
    int pipeline = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = (int) strtol(argv[i + 1], NULL, 10);
        if (v < (strcmp(argv[i], "--prefetch") == 0 ? 0 : 1) || v > 1000000) {
            fprintf(stderr, "jobq_bench: bad value '%s'\n", argv[i + 1]);
            return 2;
        }
        if (strcmp(argv[i], "--producers") == 0)
            producers = v;
        else if (strcmp(argv[i], "--workers") == 0)
            workers = v;
        else if (strcmp(argv[i], "--jobs") == 0)
            jobs = v;
        else if (strcmp(argv[i], "--batch") == 0 && v <= JOBQ_MAX_BATCH)
            batch = v;
        else if (strcmp(argv[i], "--prefetch") == 0 && v < JOBQ_MAX_CAPACITY)
            prefetch = v;
        else if (strcmp(argv[i], "--pipeline") == 0 &&
                 v <= JOBQ_CLIENT_MAX_IN_FLIGHT)
            pipeline = v;
        else {
            fprintf(stderr, "jobq_bench: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    zsys_init();
    zsys_set_linger(0);
    char dir[] = "/tmp/jobq-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char data[600], cl[64], wk[64], ev[64], bbin[600], wbin[600], conc[16];
    snprintf(data, sizeof data, "%s/data", dir);
    int ports[3];
    s_ports(ports);
    snprintf(cl, sizeof cl, "tcp://127.0.0.1:%d", ports[0]);
    snprintf(wk, sizeof wk, "tcp://127.0.0.1:%d", ports[1]);
    snprintf(ev, sizeof ev, "tcp://127.0.0.1:%d", ports[2]);
    snprintf(bbin, sizeof bbin, "%s/jobq-broker", argv[1]);
    snprintf(wbin, sizeof wbin, "%s/jobq-worker", argv[1]);
    snprintf(conc, sizeof conc, "%d", workers);
    char pre[16];
    snprintf(pre, sizeof pre, "%d", prefetch);
    char *bargv[] = {bbin, "--data",   data, "--clients", cl,  "--workers",
                     wk,   "--events", ev,   "--quiet",   NULL};
    char *wargv[] = {
        wbin, "--broker",   wk,  "--types", "noop", "--concurrency",
        conc, "--prefetch", pre, NULL};
    pid_t broker = s_spawn(bargv), worker = s_spawn(wargv);
    if (broker < 0 || worker < 0) {
        fprintf(stderr, "jobq_bench: fork: %s\n", strerror(errno));
        if (broker > 0)
            kill(broker, SIGKILL);
        if (worker > 0)
            kill(worker, SIGKILL);
        return 1;
    }
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = cl;
    cfg.timeout_ms = 500;  //  bounded wait for the broker to come up
    jobq_client_t *c = jobq_client_new(&cfg);
    for (int i = 0; i < 20 && s_completed(c) == 0; i++) {
        jobq_bytes_t b = {NULL, 0};
        if (jobq_client_stats(c, &b) == JOBQ_OK) {
            free((void *) b.ptr);
            break;
        }
    }
    zclock_sleep(300);  //  the worker registers
    s_producer_t *p = calloc((size_t) producers, sizeof *p);
    pthread_t *t = calloc((size_t) producers, sizeof *t);
    int64_t start = zclock_usecs();
    for (int i = 0; i < producers; i++) {
        p[i].clients = cl;
        p[i].batch = batch;
        p[i].pipeline = pipeline;
        p[i].jobs = jobs / producers;
        p[i].lat_us = calloc((size_t) p[i].jobs + 1, sizeof(int64_t));
        pthread_create(&t[i], NULL, s_produce, &p[i]);
    }
    int total = 0, errors = 0;
    for (int i = 0; i < producers; i++) {
        pthread_join(t[i], NULL);
        total += p[i].done;
        errors += p[i].errors;
    }
    int64_t enq_end = zclock_usecs();
    while (s_completed(c) < (uint64_t) total &&
           zclock_usecs() - start < 120 * 1000000LL)
        zclock_sleep(5);
    int64_t end = zclock_usecs();
    uint64_t completed = s_completed(c);
    int64_t *all = calloc((size_t) total + 1, sizeof(int64_t));
    int k = 0;
    for (int i = 0; i < producers; i++)
        for (int j = 0; j < p[i].done; j++)
            all[k++] = p[i].lat_us[j];
    qsort(all, (size_t) k, sizeof *all, bench_cmp_i64);
    printf("jobq full cycle: producers=%d worker_slots=%d jobs=%d "
           "completed=%llu errors=%d  %.0f jobs/s (enqueue alone %.0f/s)  "
           "ack latency us p50=%lld p99=%lld p999=%lld\n",
           producers, workers, total, (unsigned long long) completed, errors,
           (double) completed * 1e6 / (double) (end - start),
           total * 1e6 / (double) (enq_end - start),
           k ? (long long) all[k / 2] : 0,
           k ? (long long) all[k * 99 / 100] : 0,
           k ? (long long) all[k * 999 / 1000] : 0);
    printf(
        "jobq,%s,cycle-%dx%d,%.0f,%lld,%lld,%lld,\n",
        pipeline > 1            ? "sync-pipelined"
        : batch > 1 || prefetch ? "sync-batched"
                                : "sync",
        producers, workers, (double) completed * 1e6 / (double) (end - start),
        k ? (long long) all[k / 2] : 0, k ? (long long) all[k * 99 / 100] : 0,
        k ? (long long) all[k * 999 / 1000] : 0);
    jobq_client_destroy(&c);
    kill(worker, SIGTERM);
    waitpid(worker, NULL, 0);
    kill(broker, SIGTERM);
    waitpid(broker, NULL, 0);
    bench_remove_lmdb(data);
    rmdir(dir);
    return completed == (uint64_t) total ? 0 : 1;
}
