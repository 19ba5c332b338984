/*  raw.h: the samples of one idle run, as measured and unsorted, for
    bench/run.sh to pool several short runs of each system, taken in turns,
    into one set (bench/pool.py) before it reads percentiles off it. */
#ifndef JOBQ_BENCH_RAW_H_INCLUDED
#define JOBQ_BENCH_RAW_H_INCLUDED

#include <stdint.h>
#include <stdio.h>

//  Write n lines "ack_us dispatch_us" to path. 0, or -1 (and a message).
static inline int
bench_raw_write(const char *path, const int64_t *ack, const int64_t *lat, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    for (int i = 0; i < n; i++)
        fprintf(f, "%lld %lld\n", (long long) ack[i], (long long) lat[i]);
    if (fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

#endif
