/*  jobq_fill: a store of N pending jobs, written through the broker's own
    store layer (the records and indexes jobq-broker itself writes), for the
    restart and memory scenarios; and a wait for a broker to answer.

    usage: jobq_fill fill DIR N     N noop jobs with 300-byte inputs, ready
           jobq_fill wait EP        until the broker at EP answers STATS
                                    (bounded: 120 s); prints the ms it took
*/
#include "jobq/jobq_client.h"
#include "jobq_store.h"
#include "bench.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BATCH 10000  //  jobs per write transaction

static int
s_fill(const char *dir, long n)
{
    jobq_store_t *st = jobq_store_lmdb_new();
    jobq_store_config_t cfg = {dir, 4ull << 30, 0, false, 0};
    if (!st || jobq_store_open(st, &cfg) != JOBQ_OK) {
        fprintf(stderr, "jobq_fill: cannot open a store in %s\n", dir);
        return 1;
    }
    //  {"data": <290 bytes>}: a 300-byte input, as in perf.md's runs.
    uint8_t input[300];
    input[0] = 0x81;
    input[1] = 0xa4;
    memcpy(input + 2, "data", 4);
    input[6] = 0xd9;
    input[7] = (uint8_t) (sizeof input - 8);
    memset(input + 8, 'x', sizeof input - 8);
    uint64_t now = (uint64_t) zclock_time();
    uint64_t base = now << 16;
    for (long i = 0; i < n;) {
        if (jobq_store_begin(st) != JOBQ_OK)
            return 1;
        for (long k = 0; k < S_BATCH && i < n; k++, i++) {
            jobq_jobdata_t j;
            memset(&j, 0, sizeof j);
            j.id = base + (uint64_t) i;
            j.type = (jobq_str_t){"noop", 4};
            j.shop = (jobq_str_t){"bench", 5};
            j.input = (jobq_bytes_t){input, sizeof input};
            j.status = JOBQ_PENDING;
            j.queue = JOBQ_QUEUE_READY;
            j.max_attempts = j.budget = JOBQ_DEFAULT_ATTEMPTS;
            j.version = 1;
            j.seq = (uint64_t) i + 1;
            j.created_at = j.updated_at = j.run_at = now;
            if (jobq_store_put(st, NULL, &j) != JOBQ_OK) {
                fprintf(stderr, "jobq_fill: put failed at job %ld\n", i);
                jobq_store_abort(st);
                return 1;
            }
        }
        if (jobq_store_meta_put(st, "seq", (uint64_t) i) != JOBQ_OK ||
            jobq_store_meta_put(st, "last_id", base + (uint64_t) i) !=
                JOBQ_OK ||
            jobq_store_commit(st) != JOBQ_OK) {
            fprintf(stderr, "jobq_fill: commit failed\n");
            return 1;
        }
    }
    jobq_store_destroy(&st);
    return 0;
}

static int
s_wait(const char *ep)
{
    zsys_init();
    zsys_set_linger(0);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = ep;
    cfg.timeout_ms = 20;
    cfg.retries = 0;
    //  A fresh client per try: one whose connect was refused would wait
    //  for ZeroMQ's reconnect interval (100 ms) and blur the figure.
    int64_t t0 = zclock_mono();
    while (zclock_mono() - t0 < 120000) {
        jobq_client_t *c = jobq_client_new(&cfg);
        jobq_bytes_t b = {NULL, 0};
        int rc = c ? jobq_client_stats(c, &b) : JOBQ_ENOMEM;
        jobq_client_destroy(&c);
        if (rc == JOBQ_OK) {
            free((void *) b.ptr);
            printf("%lld\n", (long long) (zclock_mono() - t0));
            return 0;
        }
    }
    return 1;
}

int
main(int argc, char **argv)
{
    long n = argc == 4 ? bench_arg(argv[3], 1, 100000000) : -1;
    if (n > 0 && strcmp(argv[1], "fill") == 0)
        return s_fill(argv[2], n);
    if (argc == 3 && strcmp(argv[1], "wait") == 0)
        return s_wait(argv[2]);
    fprintf(stderr, "usage: jobq_fill fill DIR N | jobq_fill wait EP\n");
    return 2;
}
