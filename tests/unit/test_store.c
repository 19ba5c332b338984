/*  test_store.c: the LMDB store: jobs, indexes, counters, and that all of
    it survives closing and reopening. */
#include "jobq_test.h"
#include "jobq_store.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *dir;            //  temporary directory
    jobq_store_t *store;  //  open store
} s_fx_t;

static jobq_store_t *
s_open(const char *dir)
{
    jobq_store_t *s = jobq_store_lmdb_new();
    assert_non_null(s);
    jobq_store_config_t cfg = {dir, 8u << 20, 0};
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
    jobq_store_config_t cfg = {fx->dir, 1u << 20, 4u << 20};
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_put_then_get_returns_the_job,
                                        s_setup, s_teardown),
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
