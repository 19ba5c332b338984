/*  jobq_bench: full job cycles through a real broker and workers, measured
    as a user would see them. Starts jobq-broker (bench.h) and one
    jobq-worker process with --concurrency W; P producer threads enqueue
    noop jobs through libjobq until N are in, and it waits until all have
    completed. jobs/s is the whole cycle; the percentiles are the enqueue
    acknowledgement latency, which includes the commit's full sync.

    usage: jobq_bench BIN_DIR [--producers P] [--workers W] [--jobs N]
                              [--batch B] [--prefetch F] [--pipeline K]
                              [--curve 1]
    --batch B enqueues B jobs per request (ENQUEUE_BATCH); --pipeline K
    keeps K single ENQUEUEs in flight per producer (libjobq's pipelined
    enqueue); --prefetch F lets the worker hold F jobs beyond its slots;
    --curve 1 runs the broker with a key file (CURVE on every connection),
    and the mode gets "-curve".
    Bounded: N jobs and 120 s; it stops everything it started. The last
    line is CSV: system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us, */
#include "jobq/jobq_client.h"
#include "bench.h"

#include <czmq.h>
#include <pthread.h>
#include <string.h>

typedef struct {
    const char *clients;        //  endpoint
    const jobq_curve_t *curve;  //  keys, or NULL
    int batch;                  //  jobs per request
    int pipeline;     //  single requests in flight (1 = wait for each)
    int jobs;         //  to enqueue
    int64_t *lat_us;  //  one per job
    int done;         //  acknowledged
    int errors;       //  refused or unanswered
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
    cfg.curve = p->curve;
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

int
main(int argc, char **argv)
{
    int producers = 16, workers = 16, jobs = 20000, batch = 1, prefetch = 0;
    int pipeline = 1, curve = 0, bad = argc < 2 || argc % 2, nbrokers = 1;
    const char *store = NULL;
    for (int i = 2; !bad && i + 1 < argc; i += 2) {
        const char *o = argv[i];
        int v = (int) bench_arg(argv[i + 1], 0, 1000000);
        if (strcmp(o, "--store") == 0)
            store = argv[i + 1];
        else if (strcmp(o, "--brokers") == 0 && v >= 1 && v <= 4)
            nbrokers = v;
        else if (strcmp(o, "--producers") == 0 && v > 0)
            producers = v;
        else if (strcmp(o, "--workers") == 0 && v > 0)
            workers = v;
        else if (strcmp(o, "--jobs") == 0 && v > 0)
            jobs = v;
        else if (strcmp(o, "--batch") == 0 && v > 0 && v <= JOBQ_MAX_BATCH)
            batch = v;
        else if (strcmp(o, "--prefetch") == 0 && v >= 0 &&
                 v < JOBQ_MAX_CAPACITY)
            prefetch = v;
        else if (strcmp(o, "--pipeline") == 0 && v > 0 &&
                 v <= JOBQ_CLIENT_MAX_IN_FLIGHT)
            pipeline = v;
        else if (strcmp(o, "--curve") == 0 && v <= 1)
            curve = v;
        else
            bad = 1;
    }
    if (bad) {
        fprintf(stderr, "usage: jobq_bench BIN_DIR [--producers P] "
                        "[--workers W] [--jobs N] [--batch B] "
                        "[--prefetch F] [--pipeline K] [--curve 1] "
                        "[--store nats://... [--brokers N]]\n");
        return 2;
    }
    if (nbrokers > 1 && (!store || curve)) {
        fprintf(stderr, "jobq_bench: --brokers needs --store nats://...\n");
        return 2;
    }
    bench_curve_t keys;
    if (curve && bench_curve_make(&keys) != 0)
        return 1;
    const char *extra[] = {"--keys", keys.keys, "--cert", keys.broker_cert,
                           NULL};
    //  Buckets of this run's own: runs on one cluster stay apart.
    char store_uri[1024] = "";
    if (store)
        snprintf(store_uri, sizeof store_uri, "%s%sprefix=b%ld", store,
                 strchr(store, '?') ? "&" : "?", (long) getpid());
    const char *extra_store[] = {"--store", store_uri, NULL};
    //  With --brokers N, N brokers on one shared store: producers and the
    //  workers' slots are spread over them.
    bench_broker_t bs[4];
    for (int i = 0; i < nbrokers; i++) {
        if (bench_broker_start_with(&bs[i], argv[1],
                                    curve   ? extra
                                    : store ? extra_store
                                            : NULL) != 0)
            return 1;
    }
    bench_broker_t b = bs[0];
    for (int i = 0; getenv("JOBQ_BENCH_LOG") && i < nbrokers; i++)
        fprintf(stderr, "jobq_bench: broker %d: --broker %s --events %s\n", i,
                bs[i].clients, bs[i].events);
    char wbin[600], conc[16], pre[16];
    snprintf(wbin, sizeof wbin, "%s/jobq-worker", argv[1]);
    snprintf(conc, sizeof conc, "%d",
             workers / nbrokers ? workers / nbrokers : 1);
    snprintf(pre, sizeof pre, "%d", prefetch);
    pid_t wpids[4];
    for (int i = 0; i < nbrokers; i++) {
        char *wargv[] = {wbin,      "--broker",   bs[i].workers,
                         "--types", "noop",       "--concurrency",
                         conc,      "--prefetch", pre,
                         NULL,      NULL,         NULL,
                         NULL,      NULL,         NULL,
                         NULL};
        if (curve) {
            char *more[] = {"--cert",        keys.worker_cert, "--broker-key",
                            keys.broker_pub, "--name",         "w"};
            memcpy(&wargv[9], more, sizeof more);
        }
        wpids[i] = bench_spawn(wargv);
        if (wpids[i] < 0) {
            perror("jobq_bench: fork");
            for (int k = 0; k < nbrokers; k++)
                bench_broker_stop(&bs[k]);
            return 1;
        }
    }
    zsys_init();
    zsys_set_linger(0);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b.clients;
    cfg.timeout_ms = 500;  //  bounded wait for the broker to come up
    cfg.curve = curve ? &keys.client : NULL;
    jobq_client_t *c = jobq_client_new(&cfg);
    for (int i = 0; i < 20 && bench_completed(c) == 0; i++) {
        jobq_bytes_t body = {NULL, 0};
        if (jobq_client_stats(c, &body) == JOBQ_OK) {
            free((void *) body.ptr);
            break;
        }
    }
    zclock_sleep(300);  //  the worker registers
    s_producer_t *p = calloc((size_t) producers, sizeof *p);
    pthread_t *t = calloc((size_t) producers, sizeof *t);
    int64_t start = zclock_usecs();
    for (int i = 0; i < producers; i++) {
        p[i].clients = bs[i % nbrokers].clients;
        p[i].curve = curve ? &keys.client : NULL;
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
    while (bench_completed(c) < (uint64_t) total &&
           zclock_usecs() - start < 120 * 1000000LL)
        zclock_sleep(5);
    int64_t end = zclock_usecs();
    uint64_t completed = bench_completed(c);
    //  A run that did not finish says which jobs it waited for.
    for (int st = JOBQ_PENDING;
         completed < (uint64_t) total && st <= JOBQ_RUNNING; st++) {
        jobq_list_t req = {NULL, NULL, st, 5, NULL};
        jobq_job_info_t *open;
        size_t n;
        char next[JOBQ_ID_LEN + 1];
        if (jobq_client_list(c, &req, &open, &n, next) != JOBQ_OK)
            continue;
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "jobq_bench: open: %s %s attempts=%u worker=%s\n",
                    open[i].id, jobq_status_name(open[i].status),
                    open[i].attempts, open[i].worker ? open[i].worker : "-");
        jobq_job_list_free(&open, n);
    }
    //  JOBQ_BENCH_HOLD_MS=N (by hand): the brokers stay up N ms more, for
    //  a look at them with jobq.
    const char *hold = getenv("JOBQ_BENCH_HOLD_MS");
    if (hold)
        zclock_sleep((int) bench_arg(hold, 0, 3600000));
    int64_t *all = calloc((size_t) total + 1, sizeof(int64_t));
    int k = 0;
    for (int i = 0; i < producers; i++)
        for (int j = 0; j < p[i].done; j++)
            all[k++] = p[i].lat_us[j];
    double rate = (double) completed * 1e6 / (double) (end - start);
    printf("jobq cycle: jobs=%d completed=%llu errors=%d, enqueue alone "
           "%.0f/s (ack latency us)\n",
           total, (unsigned long long) completed, errors,
           total * 1e6 / (double) (enq_end - start));
    char label[128];
    char system[32];
    if (store && nbrokers > 1)
        snprintf(system, sizeof system, "jobq-nats%d", nbrokers);
    else
        snprintf(system, sizeof system, "%s", store ? "jobq-nats" : "jobq");
    snprintf(label, sizeof label, "%s,%s%s,cycle-%dx%d", system,
             pipeline > 1            ? "sync-pipelined"
             : batch > 1 || prefetch ? "sync-batched"
                                     : "sync",
             curve ? "-curve" : "", producers, workers);
    if (k > 0)
        bench_print_row(label, rate, all, k);
    jobq_client_destroy(&c);
    for (int i = 0; i < nbrokers; i++) {
        kill(wpids[i], SIGTERM);
        waitpid(wpids[i], NULL, 0);
    }
    for (int i = 0; i < nbrokers; i++)
        bench_broker_stop(&bs[i]);
    if (curve)
        bench_curve_remove(&keys);
    return completed == (uint64_t) total && k > 0 ? 0 : 1;
}
