/*  test_store.c: the LMDB store: jobs, indexes, counters, and that all of
    it survives closing and reopening; damaged files (a zeroed page, a
    truncated file, flipped bits) give errors, never a crash, and --verify
    and --repair find and mend them; one process to a directory. */
#define _GNU_SOURCE  //  memmem
#include "jobq_test.h"
#include "jobq_repair.h"
#include "jobq_record.h"
#include "jobq_store.h"

#include <lmdb.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *dir;            //  temporary directory
    jobq_store_t *store;  //  open store
} s_fx_t;

static jobq_store_t *
s_open(const char *dir)
{
    jobq_store_t *s = jobq_store_lmdb_new();
    assert_non_null(s);
    jobq_store_config_t cfg = {dir, 8u << 20, 0, false, 0};
    assert_int_equal(jobq_store_open(s, &cfg), JOBQ_OK);
    return s;
}

static int
s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    fx->dir = jobq_test_tmpdir();
    fx->store = s_open(fx->dir);
    *state = fx;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    jobq_store_destroy(&fx->store);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static jobq_str_t
S(const char *s)
{
    return (jobq_str_t){s, strlen(s)};
}

static jobq_jobdata_t
s_job(uint64_t id, const char *type, const char *shop, int32_t prio)
{
    static const uint8_t input[] = {0x81, 0xa1, 'x', 0x01};
    jobq_jobdata_t j;
    memset(&j, 0, sizeof j);
    j.id = id;
    j.type = S(type);
    j.shop = S(shop);
    j.input = (jobq_bytes_t){input, sizeof input};
    j.status = JOBQ_PENDING;
    j.queue = JOBQ_QUEUE_READY;
    j.priority = prio;
    j.max_attempts = 3;
    j.version = 1;
    j.created_at = 1000 + id;
    return j;
}

static void
s_put_new(jobq_store_t *s, jobq_jobdata_t j)
{
    assert_int_equal(jobq_store_put(s, NULL, &j), JOBQ_OK);
}

static void
test_store_put_then_get_returns_the_job(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    s_put_new(fx->store, s_job(7, "noop", "shop-a", 0));
    jobq_jobdata_t j;
    assert_int_equal(jobq_store_get(fx->store, 7, &j), JOBQ_OK);
    assert_int_equal(j.id, 7);
    assert_memory_equal(j.type.ptr, "noop", 4);
    assert_memory_equal(j.shop.ptr, "shop-a", 6);
    assert_int_equal(j.input.len, 4);
    assert_int_equal(jobq_store_get(fx->store, 8, &j), JOBQ_ENOTFOUND);
    assert_int_equal(jobq_store_commit(fx->store), JOBQ_OK);
}

static void
test_store_ready_order_is_priority_then_age(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    s_put_new(fx->store, s_job(1, "noop", "s", 0));
    s_put_new(fx->store, s_job(2, "noop", "s", 5));
    s_put_new(fx->store, s_job(3, "noop", "s", 5));
    s_put_new(fx->store, s_job(4, "noop", "s", -3));
    s_put_new(fx->store, s_job(5, "noopx", "s", 100));
    uint64_t id;
    int32_t prio;
    assert_int_equal(jobq_store_ready_first(fx->store, S("noop"), &id, &prio),
                     JOBQ_OK);
    assert_int_equal(id, 2);
    assert_int_equal(prio, 5);
    //  Taking job 2 off the ready index leaves 3 (same priority, younger).
    jobq_jobdata_t old, n;
    assert_int_equal(jobq_store_get(fx->store, 2, &old), JOBQ_OK);
    n = old;
    n.status = JOBQ_RUNNING;
    n.queue = JOBQ_QUEUE_NONE;
    assert_int_equal(jobq_store_put(fx->store, &old, &n), JOBQ_OK);
    assert_int_equal(jobq_store_ready_first(fx->store, S("noop"), &id, &prio),
                     JOBQ_OK);
    assert_int_equal(id, 3);
    assert_int_equal(jobq_store_ready_first(fx->store, S("other"), &id, &prio),
                     JOBQ_ENOTFOUND);
    jobq_store_abort(fx->store);
}

//  STATS `oldest`: the oldest ready job of a type, whatever its priority,
//  found in a bounded number of priority levels.
static void
test_store_ready_oldest_looks_across_priorities(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    uint64_t id = 0;
    assert_int_equal(jobq_store_ready_oldest(fx->store, S("noop"), 16, &id),
                     JOBQ_ENOTFOUND);
    s_put_new(fx->store, s_job(9, "noop", "s", 7));
    s_put_new(fx->store, s_job(4, "noop", "s", -2));  //  the oldest
    s_put_new(fx->store, s_job(6, "noop", "s", 0));
    s_put_new(fx->store, s_job(5, "noop", "s", 7));
    s_put_new(fx->store, s_job(1, "noopx", "s", 0));  //  another type
    assert_int_equal(jobq_store_ready_oldest(fx->store, S("noop"), 16, &id),
                     JOBQ_OK);
    assert_int_equal(id, 4);
    //  Two levels (7 and 0) looked at: 5 is their oldest.
    assert_int_equal(jobq_store_ready_oldest(fx->store, S("noop"), 2, &id),
                     JOBQ_OK);
    assert_int_equal(id, 5);
    assert_int_equal(jobq_store_ready_oldest(fx->store, S("noopx"), 16, &id),
                     JOBQ_OK);
    assert_int_equal(id, 1);
    assert_int_equal(jobq_store_ready_oldest(fx->store, S("noo"), 16, &id),
                     JOBQ_ENOTFOUND);
    jobq_store_abort(fx->store);
}

//  The newest ready job of one type and priority below an id: what a
//  broker of a shared store takes from the far end of another's queue.
static void
test_store_ready_before_is_the_newest_of_a_level_below_an_id(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    uint64_t id = 0;
    assert_int_equal(
        jobq_store_ready_before(fx->store, S("noop"), 0, UINT64_MAX, &id),
        JOBQ_ENOTFOUND);
    s_put_new(fx->store, s_job(10, "noop", "s", 5));
    s_put_new(fx->store, s_job(20, "noop", "s", 0));
    s_put_new(fx->store, s_job(30, "noop", "s", 0));
    s_put_new(fx->store, s_job(40, "noop", "s", 0));
    s_put_new(fx->store, s_job(50, "noop", "s", -1));
    s_put_new(fx->store, s_job(60, "noopx", "s", 0));
    assert_int_equal(
        jobq_store_ready_before(fx->store, S("noop"), 0, UINT64_MAX, &id),
        JOBQ_OK);
    assert_int_equal(id, 40);
    assert_int_equal(jobq_store_ready_before(fx->store, S("noop"), 0, 40, &id),
                     JOBQ_OK);
    assert_int_equal(id, 30);
    assert_int_equal(jobq_store_ready_before(fx->store, S("noop"), 0, 35, &id),
                     JOBQ_OK);
    assert_int_equal(id, 30);
    //  Nothing of the level below 20; other levels and types are not it.
    assert_int_equal(jobq_store_ready_before(fx->store, S("noop"), 0, 20, &id),
                     JOBQ_ENOTFOUND);
    assert_int_equal(
        jobq_store_ready_before(fx->store, S("noop"), 5, UINT64_MAX, &id),
        JOBQ_OK);
    assert_int_equal(id, 10);
    assert_int_equal(
        jobq_store_ready_before(fx->store, S("noop"), -1, UINT64_MAX, &id),
        JOBQ_OK);
    assert_int_equal(id, 50);
    assert_int_equal(
        jobq_store_ready_before(fx->store, S("noop"), 3, UINT64_MAX, &id),
        JOBQ_ENOTFOUND);
    assert_int_equal(
        jobq_store_ready_before(fx->store, S("noopx"), 0, UINT64_MAX, &id),
        JOBQ_OK);
    assert_int_equal(id, 60);
    jobq_store_abort(fx->store);
}

static void
test_store_delayed_first_is_earliest_run_at(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    jobq_jobdata_t a = s_job(1, "noop", "s", 0), b = s_job(2, "noop", "s", 0);
    a.queue = b.queue = JOBQ_QUEUE_DELAYED;
    a.run_at = 5000;
    b.run_at = 3000;
    s_put_new(fx->store, a);
    s_put_new(fx->store, b);
    uint64_t run_at, id;
    assert_int_equal(jobq_store_delayed_first(fx->store, &run_at, &id),
                     JOBQ_OK);
    assert_int_equal(id, 2);
    assert_int_equal(run_at, 3000);
    uint64_t rid;
    int32_t prio;
    assert_int_equal(jobq_store_ready_first(fx->store, S("noop"), &rid, &prio),
                     JOBQ_ENOTFOUND);
    jobq_store_abort(fx->store);
}

typedef struct {
    uint64_t ids[64];  //  visited ids in order
    int n;             //  visited count
} s_seen_t;

static int
s_collect(void *arg, const jobq_jobdata_t *j)
{
    s_seen_t *s = arg;
    if (s->n < 64)
        s->ids[s->n++] = j->id;
    return 0;
}

static void
test_store_query_filters_and_pages_newest_first(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    for (uint64_t i = 1; i <= 10; i++)
        s_put_new(fx->store, s_job(i, i % 2 ? "odd" : "even",
                                   i <= 5 ? "shop-a" : "shop-b", 0));
    s_seen_t seen = {{0}, 0};
    uint64_t next;
    jobq_store_query_t q = {S("shop-a"), {NULL, 0}, -1, 0, 3, 1000};
    assert_int_equal(jobq_store_query(fx->store, &q, s_collect, &seen, &next),
                     JOBQ_OK);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.ids[0], 5);
    assert_int_equal(seen.ids[2], 3);
    assert_true(next != 0);
    q.before = next;
    seen.n = 0;
    assert_int_equal(jobq_store_query(fx->store, &q, s_collect, &seen, &next),
                     JOBQ_OK);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.ids[0], 2);
    assert_int_equal(seen.ids[1], 1);
    assert_int_equal(next, 0);
    //  Type filter without shop walks all jobs.
    jobq_store_query_t t = {{NULL, 0}, S("even"), -1, 0, 100, 1000};
    seen.n = 0;
    assert_int_equal(jobq_store_query(fx->store, &t, s_collect, &seen, &next),
                     JOBQ_OK);
    assert_int_equal(seen.n, 5);
    assert_int_equal(seen.ids[0], 10);
    //  Status filter uses its index.
    jobq_store_query_t st = {{NULL, 0}, {NULL, 0}, JOBQ_PENDING, 0, 100, 1000};
    seen.n = 0;
    assert_int_equal(jobq_store_query(fx->store, &st, s_collect, &seen, &next),
                     JOBQ_OK);
    assert_int_equal(seen.n, 10);
    st.status = JOBQ_COMPLETED;
    seen.n = 0;
    assert_int_equal(jobq_store_query(fx->store, &st, s_collect, &seen, &next),
                     JOBQ_OK);
    assert_int_equal(seen.n, 0);
    //  The examine bound stops a scan and hands back a cursor.
    jobq_store_query_t few = {{NULL, 0}, S("nomatch"), -1, 0, 100, 4};
    seen.n = 0;
    assert_int_equal(jobq_store_query(fx->store, &few, s_collect, &seen, &next),
                     JOBQ_OK);
    assert_int_equal(seen.n, 0);
    assert_int_equal(next, 7);
    jobq_store_abort(fx->store);
}

typedef struct {
    uint64_t pending;    //  count of noop pending
    uint64_t completed;  //  count of noop completed
} s_counts_t;

static void
s_count(void *arg, jobq_str_t type, int status, uint64_t count)
{
    s_counts_t *c = arg;
    if (type.len != 4 || memcmp(type.ptr, "noop", 4))
        return;
    if (status == JOBQ_PENDING)
        c->pending = count;
    if (status == JOBQ_COMPLETED)
        c->completed = count;
}

static void
test_store_reopen_keeps_jobs_indexes_counts_and_meta(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    for (uint64_t i = 1; i <= 3; i++)
        s_put_new(fx->store, s_job(i, "noop", "shop-a", 0));
    jobq_jobdata_t old, n;
    assert_int_equal(jobq_store_get(fx->store, 1, &old), JOBQ_OK);
    n = old;
    n.status = JOBQ_COMPLETED;
    n.queue = JOBQ_QUEUE_NONE;
    assert_int_equal(jobq_store_put(fx->store, &old, &n), JOBQ_OK);
    assert_int_equal(jobq_store_idem_put(fx->store, S("key-1"), 2, 99),
                     JOBQ_OK);
    assert_int_equal(jobq_store_meta_put(fx->store, "seq", 42), JOBQ_OK);
    assert_int_equal(jobq_store_commit(fx->store), JOBQ_OK);
    //  An aborted turn leaves nothing behind.
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    s_put_new(fx->store, s_job(9, "noop", "shop-a", 0));
    jobq_store_abort(fx->store);

    jobq_store_destroy(&fx->store);
    fx->store = s_open(fx->dir);
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    jobq_jobdata_t j;
    assert_int_equal(jobq_store_get(fx->store, 1, &j), JOBQ_OK);
    assert_int_equal(j.status, JOBQ_COMPLETED);
    assert_int_equal(jobq_store_get(fx->store, 9, &j), JOBQ_ENOTFOUND);
    uint64_t id, created, v;
    int32_t prio;
    assert_int_equal(jobq_store_ready_first(fx->store, S("noop"), &id, &prio),
                     JOBQ_OK);
    assert_int_equal(id, 2);
    assert_int_equal(jobq_store_idem_get(fx->store, S("key-1"), &id, &created),
                     JOBQ_OK);
    assert_int_equal(id, 2);
    assert_int_equal(created, 99);
    assert_int_equal(jobq_store_meta_get(fx->store, "seq", &v), JOBQ_OK);
    assert_int_equal(v, 42);
    assert_int_equal(jobq_store_meta_get(fx->store, "nope", &v),
                     JOBQ_ENOTFOUND);
    s_counts_t c = {0, 0};
    assert_int_equal(jobq_store_counts(fx->store, s_count, &c), JOBQ_OK);
    assert_int_equal(c.pending, 2);
    assert_int_equal(c.completed, 1);
    jobq_store_abort(fx->store);
}

//  Many updates whose strings borrow from the pages the updates move: the
//  counters must still add up (they once went to garbage type names).
static void
test_store_counts_stay_exact_over_many_updates(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    for (uint64_t i = 1; i <= 3000; i++)
        s_put_new(fx->store, s_job(i, "noop", "shop-a", 0));
    assert_int_equal(jobq_store_commit(fx->store), JOBQ_OK);
    for (int turn = 0; turn < 3; turn++) {
        assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
        for (uint64_t i = 1; i <= 3000; i++) {
            jobq_jobdata_t old, n;
            assert_int_equal(jobq_store_get(fx->store, i, &old), JOBQ_OK);
            n = old;
            n.status = turn == 0 ? JOBQ_RUNNING
                                 : (i % 2 ? JOBQ_COMPLETED : JOBQ_PENDING);
            n.queue =
                n.status == JOBQ_PENDING ? JOBQ_QUEUE_READY : JOBQ_QUEUE_NONE;
            if (n.status == old.status)
                continue;
            //  Records grow and shrink, so the page contents move.
            static const char msg[] = "a progress message that makes the "
                                      "record longer than it was before";
            n.message.ptr = msg;
            n.message.len = (size_t) (turn * 31 + (int) (i % 7)) % sizeof msg;
            assert_int_equal(jobq_store_put(fx->store, &old, &n), JOBQ_OK);
        }
        assert_int_equal(jobq_store_commit(fx->store), JOBQ_OK);
    }
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    s_counts_t c = {0, 0};
    assert_int_equal(jobq_store_counts(fx->store, s_count, &c), JOBQ_OK);
    assert_int_equal(c.pending, 1500);
    assert_int_equal(c.completed, 1500);
    jobq_store_abort(fx->store);
}

//  The sum of the record sizes of shop's jobs, read back one by one.
static uint64_t
s_shop_bytes(jobq_store_t *s, const char *shop, uint64_t first, uint64_t last)
{
    uint64_t sum = 0;
    for (uint64_t i = first; i <= last; i++) {
        jobq_jobdata_t j;
        if (jobq_store_get(s, i, &j) == JOBQ_OK && j.shop.len == strlen(shop) &&
            memcmp(j.shop.ptr, shop, j.shop.len) == 0)
            sum += jobq_record_size(&j);
    }
    return sum;
}

//  docs/STORAGE.md 3.6.1: each shop's jobs by status and their bytes, kept
//  in step through puts (status changes, records that grow) and removes,
//  and built once for a store that was made without them.
static void
test_store_shop_counts_follow_puts_and_removes(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    //  More shops than the deltas kept in memory (64) in one transaction.
    for (uint64_t i = 1; i <= 200; i++) {
        char shop[16];
        snprintf(shop, sizeof shop, "s%llu", (unsigned long long) (i % 100));
        jobq_jobdata_t j = s_job(i, "noop", i <= 100 ? "a" : shop, 0);
        j.shop = S(i <= 100 ? "a" : strdup(shop));
        s_put_new(fx->store, j);
        if (i > 100)
            free((void *) j.shop.ptr);
    }
    assert_int_equal(jobq_store_commit(fx->store), JOBQ_OK);
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    for (uint64_t i = 1; i <= 30; i++) {
        jobq_jobdata_t old, n;
        assert_int_equal(jobq_store_get(fx->store, i, &old), JOBQ_OK);
        n = old;
        n.status = i <= 10 ? JOBQ_RUNNING : JOBQ_COMPLETED;
        n.queue = JOBQ_QUEUE_NONE;
        static const uint8_t out[40] = {0xc4, 38};
        if (i > 10)
            n.output = (jobq_bytes_t){out, sizeof out};
        assert_int_equal(jobq_store_put(fx->store, &old, &n), JOBQ_OK);
    }
    jobq_jobdata_t gone;
    assert_int_equal(jobq_store_get(fx->store, 100, &gone), JOBQ_OK);
    assert_int_equal(jobq_store_remove(fx->store, &gone), JOBQ_OK);
    uint64_t c[JOBQ_STORE_SHOP_FIELDS];
    assert_int_equal(jobq_store_shop_counts(fx->store, S("a"), c), JOBQ_OK);
    assert_int_equal(c[JOBQ_PENDING], 69);
    assert_int_equal(c[JOBQ_RUNNING], 10);
    assert_int_equal(c[JOBQ_COMPLETED], 20);
    assert_int_equal(c[JOBQ_STATUS_COUNT_],
                     s_shop_bytes(fx->store, "a", 1, 200));
    uint64_t bytes_a = c[JOBQ_STATUS_COUNT_];
    assert_int_equal(jobq_store_shop_counts(fx->store, S("s7"), c), JOBQ_OK);
    assert_int_equal(c[JOBQ_PENDING], 1);
    assert_int_equal(jobq_store_shop_counts(fx->store, S("none"), c), JOBQ_OK);
    assert_int_equal(c[JOBQ_PENDING] + c[JOBQ_STATUS_COUNT_], 0);
    assert_int_equal(jobq_store_commit(fx->store), JOBQ_OK);
    //  A store from before the shops database: the marker and the
    //  entries taken away, as it was; the next open builds them.
    jobq_store_destroy(&fx->store);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, shops;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    assert_int_equal(mdb_env_open(env, fx->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_dbi_open(txn, "shops", 0, &shops), 0);
    MDB_val k = {5, "shops"};
    assert_int_equal(mdb_del(txn, meta, &k, NULL), 0);
    assert_int_equal(mdb_drop(txn, shops, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    fx->store = s_open(fx->dir);
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    assert_int_equal(jobq_store_shop_counts(fx->store, S("a"), c), JOBQ_OK);
    assert_int_equal(c[JOBQ_PENDING], 69);
    assert_int_equal(c[JOBQ_RUNNING], 10);
    assert_int_equal(c[JOBQ_COMPLETED], 20);
    assert_int_equal(c[JOBQ_STATUS_COUNT_], bytes_a);
    jobq_store_abort(fx->store);
}

static void
test_store_expired_idempotency_keys_are_forgotten_oldest_first(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    assert_int_equal(jobq_store_idem_put(fx->store, S("a"), 1, 10), JOBQ_OK);
    assert_int_equal(jobq_store_idem_put(fx->store, S("b"), 2, 20), JOBQ_OK);
    assert_int_equal(jobq_store_idem_put(fx->store, S("c"), 3, 30), JOBQ_OK);
    //  "a" is taken again later: its new life must survive the sweep.
    assert_int_equal(jobq_store_idem_put(fx->store, S("a"), 4, 40), JOBQ_OK);
    uint32_t removed;
    assert_int_equal(jobq_store_idem_expire(fx->store, 35, 2, &removed),
                     JOBQ_OK);
    assert_int_equal(removed, 2);  //  bounded
    uint64_t id, created;
    assert_int_equal(jobq_store_idem_get(fx->store, S("b"), &id, &created),
                     JOBQ_ENOTFOUND);
    assert_int_equal(jobq_store_idem_get(fx->store, S("c"), &id, &created),
                     JOBQ_OK);
    assert_int_equal(jobq_store_idem_expire(fx->store, 35, 100, &removed),
                     JOBQ_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(jobq_store_idem_get(fx->store, S("c"), &id, &created),
                     JOBQ_ENOTFOUND);
    assert_int_equal(jobq_store_idem_get(fx->store, S("a"), &id, &created),
                     JOBQ_OK);
    assert_int_equal(id, 4);
    assert_int_equal(jobq_store_idem_expire(fx->store, 35, 100, &removed),
                     JOBQ_OK);
    assert_int_equal(removed, 0);
    jobq_store_abort(fx->store);
}

static void
test_store_failed_commit_persists_nothing(void **state)
{
    s_fx_t *fx = *state;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    s_put_new(fx->store, s_job(1, "noop", "s", 0));
    jobq_store_fail_next_commit(fx->store, JOBQ_ESTORAGE);
    assert_int_equal(jobq_store_commit(fx->store), JOBQ_ESTORAGE);
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    jobq_jobdata_t j;
    assert_int_equal(jobq_store_get(fx->store, 1, &j), JOBQ_ENOTFOUND);
    jobq_store_abort(fx->store);
}

static void
test_store_map_full_is_reported_and_growth_recovers(void **state)
{
    s_fx_t *fx = *state;
    jobq_store_destroy(&fx->store);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    fx->dir = jobq_test_tmpdir();
    fx->store = jobq_store_lmdb_new();
    jobq_store_config_t cfg = {fx->dir, 1u << 20, 4u << 20, false, 0};
    assert_int_equal(jobq_store_open(fx->store, &cfg), JOBQ_OK);
    static uint8_t big[16384];
    memset(big, 0xa5, sizeof big);
    big[0] = 0x81;  //  content does not matter to the store
    int rc = JOBQ_OK;
    uint64_t id = 1;
    //  Fill until the 1 MiB map is full (a put or the commit says so).
    for (int turn = 0; turn < 200 && rc == JOBQ_OK; turn++) {
        assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
        for (int k = 0; k < 8 && rc == JOBQ_OK; k++) {
            jobq_jobdata_t j = s_job(id++, "noop", "s", 0);
            j.input = (jobq_bytes_t){big, sizeof big};
            rc = jobq_store_put(fx->store, NULL, &j);
        }
        if (rc == JOBQ_OK)
            rc = jobq_store_commit(fx->store);
        else
            jobq_store_abort(fx->store);
    }
    assert_int_equal(rc, JOBQ_ESTOREFULL);
    //  Reads still work; growth makes room again.
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    jobq_jobdata_t j;
    assert_int_equal(jobq_store_get(fx->store, 1, &j), JOBQ_OK);
    jobq_store_abort(fx->store);
    assert_int_equal(jobq_store_grow(fx->store), JOBQ_OK);
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    jobq_jobdata_t more = s_job(id++, "noop", "s", 0);
    more.input = (jobq_bytes_t){big, sizeof big};
    assert_int_equal(jobq_store_put(fx->store, NULL, &more), JOBQ_OK);
    assert_int_equal(jobq_store_commit(fx->store), JOBQ_OK);
}

//  --- damage
//  ----------------------------------------------------------------------

//  A store in dir holding n pending jobs (enough for several leaf pages),
//  closed.
static void
s_fill(const char *dir, int n)
{
    jobq_store_t *s = s_open(dir);
    assert_int_equal(jobq_store_begin(s), JOBQ_OK);
    for (int i = 1; i <= n; i++) {
        char shop[16];
        snprintf(shop, sizeof shop, "shop-%d", i % 7);
        s_put_new(s, s_job((uint64_t) i << 16, "noop", shop, i % 5));
    }
    assert_int_equal(jobq_store_meta_put(s, "last_id", (uint64_t) n << 16),
                     JOBQ_OK);
    assert_int_equal(jobq_store_commit(s), JOBQ_OK);
    jobq_store_destroy(&s);
}

static int
s_visit_count(void *arg, const jobq_jobdata_t *j)
{
    (void) j;
    (*(int *) arg)++;
    return 0;
}

//  LIST every job of the store in dir: JOBQ_OK with *n jobs, or the error.
static int
s_list_all(const char *dir, int *n)
{
    jobq_store_t *s = jobq_store_lmdb_new();
    jobq_store_config_t cfg = {dir, 8u << 20, 0, false, 0};
    int rc = jobq_store_open(s, &cfg);
    *n = 0;
    if (rc == JOBQ_OK && (rc = jobq_store_begin(s)) == JOBQ_OK) {
        jobq_store_query_t q = {
            .status = -1, .limit = 100000, .max_examine = 100000};
        uint64_t next = 0;
        rc = jobq_store_query(s, &q, s_visit_count, n, &next);
        //  The turn's commit after damage: refused as damage, never as an
        //  I/O error (which would count towards stopping the broker).
        int crc = jobq_store_commit(s);
        assert_true(crc == JOBQ_OK || crc == JOBQ_ECORRUPT);
        assert_true(rc == JOBQ_OK || crc == JOBQ_ECORRUPT ||
                    rc == JOBQ_ECORRUPT);
    }
    jobq_store_destroy(&s);
    return rc;
}

static void
s_copy(const char *from, const char *to)
{
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/data.mdb", from);
    snprintf(b, sizeof b, "%s/data.mdb", to);
    mkdir(to, 0700);
    FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, got, out), got);
    fclose(in);
    fclose(out);
}

static off_t
s_size(const char *dir)
{
    char p[700];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_size;
}

//  Zero page pgno of dir/data.mdb.
static void
s_zero_page(const char *dir, long pgno)
{
    char p[700], zero[4096] = {0};
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, zero, sizeof zero, pgno * 4096), 4096);
    close(fd);
}

//  Every page of a store zeroed in turn: opening it and listing every job
//  gives the jobs or an error, never an assertion or a fault that ends the
//  process; and some pages, those of the jobs, give JOBQ_ECORRUPT.
static void
test_store_any_zeroed_page_is_an_error_never_a_crash(void **state)
{
    s_fx_t *fx = *state;
    jobq_store_destroy(&fx->store);
    assert_int_equal(jobq_store_lmdb_catch_faults(), JOBQ_OK);
    char src[600], dst[600];
    snprintf(src, sizeof src, "%s/src", fx->dir);
    snprintf(dst, sizeof dst, "%s/dst", fx->dir);
    s_fill(src, 300);
    long pages = (long) (s_size(src) / 4096);
    assert_true(pages > 8);
    int damaged = 0;
    for (long p = 2; p < pages; p++) {
        s_copy(src, dst);
        s_zero_page(dst, p);
        int n = 0;
        int rc = s_list_all(dst, &n);
        if (rc != JOBQ_OK && rc != JOBQ_ECORRUPT)
            fail_msg("page %ld zeroed: %s", p, jobq_strerror(rc));
        damaged += rc == JOBQ_ECORRUPT;
        jobq_test_rmtree(dst);
    }
    assert_true(damaged > 0);
    fx->store = s_open(fx->dir);
}

//  A file cut short: refused at open with the words "truncated", not SIGBUS.
static void
test_store_truncated_file_is_refused_at_open(void **state)
{
    s_fx_t *fx = *state;
    jobq_store_destroy(&fx->store);
    char dir[600], p[640];
    snprintf(dir, sizeof dir, "%s/cut", fx->dir);
    s_fill(dir, 300);
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    assert_int_equal(truncate(p, s_size(dir) / 2), 0);
    jobq_store_t *s = jobq_store_lmdb_new();
    jobq_store_config_t cfg = {dir, 8u << 20, 0, false, 0};
    assert_int_equal(jobq_store_open(s, &cfg), JOBQ_ECORRUPT);
    assert_non_null(strstr(jobq_store_why(s), "truncated"));
    jobq_store_destroy(&s);
    fx->store = s_open(fx->dir);
}

//  A directory whose parents are missing is made; a second store on a
//  directory in use is refused.
static void
test_store_directory_is_made_and_held_by_one_process(void **state)
{
    s_fx_t *fx = *state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/a/b/c", fx->dir);
    jobq_store_t *s = s_open(dir);
    jobq_store_t *t = jobq_store_lmdb_new();
    jobq_store_config_t cfg = {dir, 8u << 20, 0, false, 0};
    assert_int_equal(jobq_store_open(t, &cfg), JOBQ_EUNAVAILABLE);
    assert_non_null(strstr(jobq_store_why(t), "in use"));
    jobq_store_destroy(&t);
    jobq_store_destroy(&s);
    t = s_open(dir);  //  free again once the first is closed
    jobq_store_destroy(&t);
}

//  --verify finds a zeroed page and flipped bits; --repair keeps the sound
//  records, quarantines the bad ones, and leaves a store that verifies
//  sound and lists every job it keeps.
static void
test_store_verify_and_repair_mend_a_damaged_store(void **state)
{
    s_fx_t *fx = *state;
    char dir[600], aside[700];
    snprintf(dir, sizeof dir, "%s/v", fx->dir);
    s_fill(dir, 300);
    FILE *out = tmpfile();
    jobq_repair_report_t r;
    assert_int_equal(jobq_verify(dir, out, &r), JOBQ_OK);
    assert_int_equal(r.jobs, 300);
    //  Flip a byte inside one record, and zero a page further on.
    char p[640];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    long pages = (long) (s_size(dir) / 4096);
    uint8_t page[4096];
    bool flipped = false;
    for (long pg = 2; pg < pages && !flipped; pg++) {
        assert_int_equal(pread(fd, page, 4096, pg * 4096), 4096);
        //  A leaf page of jobs: records hold the shop name "shop-".
        uint8_t *at = memmem(page, 4096, "shop-3", 6);
        if (at && (page[10] & 0x02)) {
            at[5] ^= 0x01;
            assert_int_equal(pwrite(fd, page, 4096, pg * 4096), 4096);
            flipped = true;
        }
    }
    close(fd);
    assert_true(flipped);
    int n = 0;
    assert_int_equal(s_list_all(dir, &n), JOBQ_ECORRUPT);
    assert_int_equal(jobq_verify(dir, out, &r), JOBQ_ECORRUPT);
    assert_true(r.bad_records >= 1);
    assert_int_equal(jobq_repair(dir, out, &r), JOBQ_OK);
    uint64_t kept = r.jobs;
    assert_true(kept >= 290 && kept < 300);
    assert_int_equal(jobq_verify(dir, out, &r), JOBQ_OK);
    assert_int_equal(r.jobs, kept);
    assert_true(r.quarantined >= 1);
    assert_int_equal(s_list_all(dir, &n), JOBQ_OK);
    assert_int_equal(n, (int) kept);
    //  The damaged file was kept aside.
    rewind(out);
    char line[512];
    bool said = false;
    while (fgets(line, sizeof line, out))
        said |= sscanf(line, "the damaged file is kept in %600s", aside) == 1;
    assert_true(said);
    fclose(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_store_ready_before_is_the_newest_of_a_level_below_an_id,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_any_zeroed_page_is_an_error_never_a_crash, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_truncated_file_is_refused_at_open, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_directory_is_made_and_held_by_one_process, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_verify_and_repair_mend_a_damaged_store, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(test_store_put_then_get_returns_the_job,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_ready_oldest_looks_across_priorities, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_ready_order_is_priority_then_age, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_delayed_first_is_earliest_run_at, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_query_filters_and_pages_newest_first, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_reopen_keeps_jobs_indexes_counts_and_meta, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_shop_counts_follow_puts_and_removes, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_counts_stay_exact_over_many_updates, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_expired_idempotency_keys_are_forgotten_oldest_first,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_failed_commit_persists_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_map_full_is_reported_and_growth_recovers, s_setup,
            s_teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
