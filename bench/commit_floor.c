/*  commit_floor DIR [--jobs N]: what one durable LMDB commit costs on
    this disk with nothing of jobq in it, the least an acknowledgement that
    waits for a full-sync commit can take here. One 200-byte record per
    commit, back to back, with the broker's flags (MDB_NOTLS, full sync:
    the pages, then the meta page, each flushed), in a new environment
    under DIR, removed afterwards; 50 commits first that are not samples.
    Bounded: N in 10..100000 (default 2000), 60 s. The last line is CSV:
    lmdb,commit-floor,enqueue-ack,commits_per_s,p50_us,p99_us,p999_us, */
#include "bench.h"

#include <lmdb.h>

#include <errno.h>
#include <string.h>

#define S_WARMUP     50        //  commits before the samples
#define S_LIMIT_US   60000000  //  the whole run
#define S_RECORD_LEN 200       //  bytes per committed record

//  Time jobs + S_WARMUP commits in env (opened). 0, or 1.
static int
s_run(MDB_env *env, int jobs)
{
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc && (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0)
        mdb_txn_abort(txn);
    else if (!rc)
        rc = mdb_txn_commit(txn);
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
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
            break;
        if ((rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND)) != 0) {
            mdb_txn_abort(txn);
            break;
        }
        if ((rc = mdb_txn_commit(txn)) != 0)
            break;
        if (i == S_WARMUP - 1)
            start = bench_now_us();
        if (i >= S_WARMUP)
            lat[done++] = bench_now_us() - t0;
    }
    if (rc)
        fprintf(stderr, "commit_floor: LMDB: %s\n", mdb_strerror(rc));
    int64_t took = bench_now_us() - start;
    if (done > 0)
        bench_print_row("lmdb,commit-floor,enqueue-ack",
                        took > 0 ? done * 1e6 / (double) took : 0, lat, done);
    free(lat);
    return done == jobs ? 0 : 1;
}

int
main(int argc, char **argv)
{
    int jobs = argc == 4 && strcmp(argv[2], "--jobs") == 0
                   ? (int) bench_arg(argv[3], 10, 100000)
               : argc == 2 ? 2000
                           : -1;
    if (jobs < 0) {
        fprintf(stderr, "usage: commit_floor DIR [--jobs 10..100000]\n");
        return 2;
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s/lmdb-floor-XXXXXX", argv[1]);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "commit_floor: cannot make a directory in %s: %s\n",
                argv[1], strerror(errno));
        return 1;
    }
    MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (!rc)
        rc = mdb_env_set_mapsize(env, (size_t) 256 << 20);
    if (!rc)
        rc = mdb_env_open(env, dir, MDB_NOTLS, 0600);
    if (rc)
        fprintf(stderr, "commit_floor: LMDB in %s: %s\n", dir,
                mdb_strerror(rc));
    else
        rc = s_run(env, jobs);
    mdb_env_close(env);
    bench_remove_lmdb(dir);
    return rc ? 1 : 0;
}
