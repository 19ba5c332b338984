/*  bench.h: what the bench programs share: their clock, the order their
    samples sort in, and the raw samples of an idle run, as measured and
    unsorted, for bench/run.sh to pool several short runs of each system,
    taken in turns, into one set (bench/pool.py) before it reads
    percentiles off it, and for bench/hops.py to split each sample into
    the hops it took. */
#ifndef JOBQ_BENCH_H_INCLUDED
#define JOBQ_BENCH_H_INCLUDED

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

//  CLOCK_MONOTONIC in microseconds: system-wide, so one process can time
//  what another stamped.
static inline int64_t
bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  qsort order for int64_t samples, smallest first.
static inline int
bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

//  Sort the n (> 0) samples and print them as the CSV row bench/run.sh
//  collects: "label,rate,p50,p99,p999," (rate left empty when 0).
static inline void
bench_print_row(const char *label, double rate, int64_t *v, int n)
{
    qsort(v, (size_t) n, sizeof *v, bench_cmp_i64);
    printf("%s,", label);
    if (rate > 0)
        printf("%.0f", rate);
    printf(",%lld,%lld,%lld,\n", (long long) v[n / 2],
           (long long) v[n * 99 / 100], (long long) v[n * 999 / 1000]);
}

//  Write an idle run's samples to path, in the order they were taken: a
//  first line "# " procs naming the run's processes (producer=PID
//  broker=PID worker=PID, what bench/hops.py needs to find their threads
//  in a trace; NULL leaves it out), then one line per sample,
//  "ack_us dispatch_us sent_us": the two latencies and the moment the
//  request was sent (bench_now_us), all on CLOCK_MONOTONIC, which
//  `perf record -k mono` also uses. 0, or -1 (and a message).
static inline int
bench_raw_write(const char *path,
                const char *procs,
                const int64_t *ack,
                const int64_t *lat,
                const int64_t *sent,
                int n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    if (procs)
        fprintf(f, "# %s\n", procs);
    for (int i = 0; i < n; i++)
        fprintf(f, "%lld %lld %lld\n", (long long) ack[i], (long long) lat[i],
                (long long) sent[i]);
    if (fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

//  Remove an LMDB environment directory: its two files, then itself.
static inline void
bench_remove_lmdb(const char *dir)
{
    char file[700];
    snprintf(file, sizeof file, "%s/data.mdb", dir);
    unlink(file);
    snprintf(file, sizeof file, "%s/lock.mdb", dir);
    unlink(file);
    rmdir(dir);
}

#endif
