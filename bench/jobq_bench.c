/*  jobq_bench: full job cycles through a real broker and workers, measured
    as a user would see them. Starts jobq-broker (fresh data directory,
    free loopback ports, durable by default) and one jobq-worker process
    with --concurrency W, then P producer threads each enqueue noop jobs
    through libjobq until N jobs are in, and waits until all have completed.
    Prints jobs/s for the whole cycle and the enqueue acknowledgement
    latency (p50/p99/p999, which includes the fsync of the commit).

    usage: jobq_bench BIN_DIR [--producers P] [--workers W] [--jobs N]
    Bounded: at most N jobs and 120 s; it stops everything it started. */
#include "jobq/jobq_client.h"

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

typedef struct {
    const char *clients;  //  endpoint
    int jobs;             //  to enqueue
    int64_t *lat_us;      //  one per job
    int done;             //  acknowledged
    int errors;           //  refused or unanswered
} s_producer_t;

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
    char id[JOBQ_ID_LEN + 1];
    for (int i = 0; i < p->jobs; i++) {
        int64_t t0 = zclock_usecs();
        if (jobq_client_enqueue(c, &req, id, NULL) == JOBQ_OK)
            p->lat_us[p->done++] = zclock_usecs() - t0;
        else
            p->errors++;
    }
    jobq_client_destroy(&c);
    return NULL;
}

static int
s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static int
s_port(void)
{
    zsock_t *s = zsock_new(ZMQ_ROUTER);
    int port = zsock_bind(s, "tcp://127.0.0.1:*");
    zsock_destroy(&s);
    return port;
}

static pid_t
s_spawn(char **argv)
{
    pid_t pid = fork();
    if (pid == 0) {
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
    int producers = 16, workers = 16, jobs = 20000;
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = (int) strtol(argv[i + 1], NULL, 10);
        if (v < 1 || v > 1000000) {
            fprintf(stderr, "jobq_bench: bad value '%s'\n", argv[i + 1]);
            return 2;
        }
        if (strcmp(argv[i], "--producers") == 0)
            producers = v;
        else if (strcmp(argv[i], "--workers") == 0)
            workers = v;
        else if (strcmp(argv[i], "--jobs") == 0)
            jobs = v;
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
    snprintf(cl, sizeof cl, "tcp://127.0.0.1:%d", s_port());
    snprintf(wk, sizeof wk, "tcp://127.0.0.1:%d", s_port());
    snprintf(ev, sizeof ev, "tcp://127.0.0.1:%d", s_port());
    snprintf(bbin, sizeof bbin, "%s/jobq-broker", argv[1]);
    snprintf(wbin, sizeof wbin, "%s/jobq-worker", argv[1]);
    snprintf(conc, sizeof conc, "%d", workers);
    char *bargv[] = {bbin, "--data",   data, "--clients", cl,  "--workers",
                     wk,   "--events", ev,   "--quiet",   NULL};
    char *wargv[] = {wbin,   "--broker",      wk,   "--types",
                     "noop", "--concurrency", conc, NULL};
    pid_t broker = s_spawn(bargv), worker = s_spawn(wargv);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = cl;
    jobq_client_t *c = jobq_client_new(&cfg);
    for (int i = 0; i < 100 && s_completed(c) == 0; i++) {
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
    qsort(all, (size_t) k, sizeof *all, s_cmp);
    printf("jobq full cycle: producers=%d worker_slots=%d jobs=%d "
           "completed=%llu errors=%d  %.0f jobs/s (enqueue alone %.0f/s)  "
           "ack latency us p50=%lld p99=%lld p999=%lld\n",
           producers, workers, total, (unsigned long long) completed, errors,
           (double) completed * 1e6 / (double) (end - start),
           total * 1e6 / (double) (enq_end - start),
           k ? (long long) all[k / 2] : 0,
           k ? (long long) all[k * 99 / 100] : 0,
           k ? (long long) all[k * 999 / 1000] : 0);
    jobq_client_destroy(&c);
    kill(worker, SIGTERM);
    waitpid(worker, NULL, 0);
    kill(broker, SIGTERM);
    waitpid(broker, NULL, 0);
    char rm[700];
    snprintf(rm, sizeof rm, "%s/data/data.mdb", dir);
    unlink(rm);
    snprintf(rm, sizeof rm, "%s/data/lock.mdb", dir);
    unlink(rm);
    snprintf(rm, sizeof rm, "%s/data", dir);
    rmdir(rm);
    rmdir(dir);
    return completed == (uint64_t) total ? 0 : 1;
}
