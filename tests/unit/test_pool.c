/*  test_pool.c: the worker's slot pool: jobs run on its threads and every
    one is reported once; cancelling a queued job removes it and cancelling
    a running one wakes its processor; a full queue refuses; a processor
    that floods results waits for the runtime instead of growing memory;
    ending the pool stops a sleeping processor; unread progress is folded. Real
   threads, no sockets. */
#include "jobq_test.h"
#include "jobq_pool.h"
#include "jobq_msg.h"

#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_int s_started;   //  processors entered
static atomic_int s_finished;  //  chatty processors done reporting

static int
s_noop(jobq_job_t *job, void *state)
{
    (void) state;
    atomic_fetch_add(&s_started, 1);
    jobq_mp_writer_t *out = jobq_job_output(job);
    jobq_mp_write_map(out, 3);
    jobq_mp_write_cstr(out, "attempt");
    jobq_mp_write_uint(out, jobq_job_attempt(job));
    jobq_mp_write_cstr(out, "type");
    jobq_mp_write_cstr(out, jobq_job_type(job));
    jobq_mp_write_cstr(out, "shop");
    jobq_mp_write_cstr(out, jobq_job_shop(job));
    return JOBQ_OK;
}

//  Sleeps up to a minute: only a cancel ends it early.
static int
s_sleepy(jobq_job_t *job, void *state)
{
    (void) state;
    atomic_fetch_add(&s_started, 1);
    int rc = jobq_job_sleep(job, 60000);
    return rc == JOBQ_ECANCELLED ? jobq_job_fail(job, false, "stopped") : rc;
}

//  Reports 1..100 percent, each a new message.
static int
s_chatty(jobq_job_t *job, void *state)
{
    (void) state;
    atomic_fetch_add(&s_started, 1);
    for (unsigned i = 1; i <= 100; i++)
        jobq_job_progress(job, i, "step %u", i);
    atomic_fetch_add(&s_finished, 1);
    return jobq_job_fail(job, true, "done talking");
}

typedef struct {
    jobq_registry_t *reg;
    jobq_pool_args_t args;
    jobq_mp_writer_t w;
} s_fix_t;

static int
s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof *f);
    f->reg = jobq_registry_new();
    jobq_registry_add(f->reg, "noop", s_noop, NULL);
    jobq_registry_add(f->reg, "sleepy", s_sleepy, NULL);
    jobq_registry_add(f->reg, "chatty", s_chatty, NULL);
    f->args.registry = f->reg;
    f->args.clients = "tcp://127.0.0.1:1";
    f->args.export_dir = "/nonexistent";
    jobq_mp_writer_init(&f->w, JOBQ_MAX_FRAME_BYTES);
    atomic_store(&s_started, 0);
    atomic_store(&s_finished, 0);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fix_t *f = *state;
    jobq_mp_writer_fini(&f->w);
    jobq_registry_destroy(&f->reg);
    free(f);
    return 0;
}

static int
s_submit(s_fix_t *f, jobq_pool_t *p, uint64_t id, const char *type)
{
    static const uint8_t input[] = {0x80};
    jobq_msg_t m = {.cmd = JOBQ_CMD_JOB};
    m.u.dispatch.id = id;
    m.u.dispatch.attempt = 1;
    m.u.dispatch.type = (jobq_str_t){type, strlen(type)};
    m.u.dispatch.shop = (jobq_str_t){"shop", 4};
    m.u.dispatch.input = (jobq_bytes_t){input, sizeof input};
    jobq_mp_writer_reset(&f->w);
    jobq_msg_encode(&m, &f->w);
    //  as the runtime does: the pool gets the views into the body
    jobq_msg_t d;
    jobq_msg_why_t why;
    assert_int_equal(
        jobq_msg_decode(JOBQ_CMD_JOB, f->w.data, f->w.len, &d, &why), JOBQ_OK);
    return jobq_pool_submit(p, &d, f->w.data, f->w.len);
}

//  Wait up to 10 ms for the pool's eventfd, then read at most cap results.
static size_t
s_read(jobq_pool_t *p, jobq_pool_result_t *r, size_t cap)
{
    struct pollfd pfd = {jobq_pool_fd(p), POLLIN, 0};
    poll(&pfd, 1, 10);
    return jobq_pool_results(p, r, cap);
}

//  Wait up to 5 s for want DONE results, counted in done[id] (ids below
//  64); progress reports are dropped. Returns how many DONE arrived.
static int
s_collect(jobq_pool_t *p, int want, int done[64])
{
    int got = 0;
    for (int turns = 0; got < want && turns < 500; turns++) {
        jobq_pool_result_t r[8];
        size_t n = s_read(p, r, 8);
        for (size_t i = 0; i < n; i++) {
            if (r[i].kind == JOBQ_POOL_DONE) {
                if (r[i].id < 64)
                    done[r[i].id]++;
                got++;
            }
            free(r[i].data);
        }
    }
    return got;
}

static void
test_pool_runs_every_job_once(void **state)
{
    s_fix_t *f = *state;
    jobq_pool_t *p = jobq_pool_new(4, 40, &f->args);
    assert_non_null(p);
    for (uint64_t id = 1; id <= 40; id++)
        assert_int_equal(s_submit(f, p, id, "noop"), JOBQ_OK);
    int done[64] = {0};
    int got = s_collect(p, 40, done);
    assert_int_equal(got, 40);
    for (int id = 1; id <= 40; id++)
        assert_int_equal(done[id], 1);
    //  Nothing more is readable once all was read.
    struct pollfd pfd = {jobq_pool_fd(p), POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 50), 0);
    jobq_pool_destroy(&p);
    assert_null(p);
}

//  Whether the output map out holds key with the string value want.
static bool
s_output_has(const jobq_pool_result_t *out, const char *key, const char *want)
{
    jobq_bytes_t v;
    if (jobq_mp_map_find((jobq_bytes_t){out->data, out->len}, key, &v) !=
        JOBQ_OK)
        return false;
    jobq_mp_reader_t rd;
    jobq_str_t got;
    jobq_mp_reader_init(&rd, v.ptr, v.len);
    return jobq_mp_read_str(&rd, &got) == JOBQ_OK && got.len == strlen(want) &&
           memcmp(got.ptr, want, got.len) == 0;
}

static void
test_pool_output_and_errors_are_reported(void **state)
{
    s_fix_t *f = *state;
    jobq_pool_t *p = jobq_pool_new(1, 4, &f->args);
    assert_int_equal(s_submit(f, p, 1, "noop"), JOBQ_OK);
    assert_int_equal(s_submit(f, p, 2, "nosuch"), JOBQ_OK);
    assert_int_equal(s_submit(f, p, 3, "noop"), JOBQ_OK);
    //  Only a JOB is queued.
    jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
    assert_int_equal(jobq_pool_submit(p, &hb, f->w.data, f->w.len),
                     JOBQ_EINVAL);
    //  ...and only with views into the body it came with.
    jobq_msg_t elsewhere = {.cmd = JOBQ_CMD_JOB};
    elsewhere.u.dispatch.id = 4;
    elsewhere.u.dispatch.attempt = 1;
    elsewhere.u.dispatch.type = (jobq_str_t){"noop", 4};
    assert_int_equal(jobq_pool_submit(p, &elsewhere, f->w.data, f->w.len),
                     JOBQ_EINVAL);
    jobq_pool_result_t r[4];
    size_t n = 0;
    for (int i = 0; i < 500 && n < 3; i++)
        n += s_read(p, r + n, 4 - n);
    assert_int_equal(n, 3);
    //  One slot: in the order queued. The processor reads the type and
    //  shop the runtime decoded, from the pool's copy of the body.
    assert_int_equal(r[0].id, 1);
    assert_true(r[0].ok);
    jobq_bytes_t v;
    assert_int_equal(
        jobq_mp_map_find((jobq_bytes_t){r[0].data, r[0].len}, "attempt", &v),
        JOBQ_OK);
    assert_true(s_output_has(&r[0], "type", "noop"));
    assert_true(s_output_has(&r[0], "shop", "shop"));
    assert_int_equal(r[1].id, 2);
    assert_false(r[1].ok);
    assert_true(r[1].permanent);
    assert_non_null(strstr((const char *) r[1].data, "no processor"));
    //  The slot's job handle is reused: nothing of job 2 is left in job 3.
    assert_int_equal(r[2].id, 3);
    assert_true(r[2].ok);
    assert_false(r[2].permanent);
    assert_true(s_output_has(&r[2], "type", "noop"));
    for (size_t i = 0; i < n; i++)
        free(r[i].data);
    jobq_pool_destroy(&p);
}

static bool
s_two_started(void *arg)
{
    (void) arg;
    return atomic_load(&s_started) >= 2;
}

static bool
s_one_started(void *arg)
{
    (void) arg;
    return atomic_load(&s_started) >= 1;
}

static void
test_pool_cancel_queued_and_running(void **state)
{
    s_fix_t *f = *state;
    jobq_pool_t *p = jobq_pool_new(2, 3, &f->args);
    assert_int_equal(s_submit(f, p, 1, "sleepy"), JOBQ_OK);
    assert_int_equal(s_submit(f, p, 2, "sleepy"), JOBQ_OK);
    assert_true(jobq_test_wait_until(s_two_started, NULL, 5000));
    assert_int_equal(s_submit(f, p, 3, "noop"), JOBQ_OK);
    assert_int_equal(s_submit(f, p, 4, "noop"), JOBQ_OK);
    assert_int_equal(s_submit(f, p, 5, "noop"), JOBQ_OK);
    //  Both slots sleep: 3 jobs wait, the queue is full.
    assert_int_equal(s_submit(f, p, 6, "noop"), JOBQ_ETOOBIG);
    //  A queued job leaves at once and is never run.
    assert_int_equal(jobq_pool_cancel(p, 4, 1), JOBQ_POOL_UNQUEUED);
    assert_int_equal(jobq_pool_cancel(p, 4, 1), JOBQ_POOL_NOT_HELD);
    //  The wrong attempt of a running job is not it.
    assert_int_equal(jobq_pool_cancel(p, 1, 2), JOBQ_POOL_NOT_HELD);
    //  A running one is woken from its sleep and reports cancelled.
    assert_int_equal(jobq_pool_cancel(p, 1, 1), JOBQ_POOL_SIGNALLED);
    int done[64] = {0};
    //  1 ends; its slot then runs 3 and 5.
    assert_int_equal(s_collect(p, 3, done), 3);
    assert_int_equal(done[1], 1);
    assert_int_equal(done[3], 1);
    assert_int_equal(done[5], 1);
    assert_int_equal(done[4], 0);
    assert_int_equal(done[2], 0);
    //  Stopping the pool stops job 2's minute-long sleep.
    jobq_pool_destroy(&p);
    assert_null(p);
}

static void
test_pool_take_queued_and_cancel_running(void **state)
{
    s_fix_t *f = *state;
    jobq_pool_t *p = jobq_pool_new(1, 4, &f->args);
    assert_int_equal(s_submit(f, p, 1, "sleepy"), JOBQ_OK);
    assert_true(jobq_test_wait_until(s_one_started, NULL, 5000));
    assert_int_equal(s_submit(f, p, 2, "noop"), JOBQ_OK);
    assert_int_equal(s_submit(f, p, 3, "noop"), JOBQ_OK);
    assert_int_equal(s_submit(f, p, 4, "noop"), JOBQ_OK);
    uint64_t ids[4];
    uint32_t attempts[4];
    //  Room for one: the oldest goes, the two behind it move up, in order.
    assert_int_equal(jobq_pool_take_queued(p, ids, attempts, 1), 1);
    assert_int_equal(ids[0], 2);
    assert_int_equal(jobq_pool_take_queued(p, ids, attempts, 4), 2);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 4);
    assert_int_equal(attempts[0], 1);
    assert_int_equal(jobq_pool_take_queued(p, ids, attempts, 4), 0);
    jobq_pool_cancel_running(p);
    int done[64] = {0};
    assert_int_equal(s_collect(p, 1, done), 1);
    assert_int_equal(done[1], 1);
    jobq_pool_destroy(&p);
}

static bool
s_chatty_done(void *arg)
{
    (void) arg;
    return atomic_load(&s_finished) >= 1;
}

static void
test_pool_unread_progress_is_folded(void **state)
{
    s_fix_t *f = *state;
    jobq_pool_t *p = jobq_pool_new(1, 1, &f->args);
    assert_int_equal(s_submit(f, p, 7, "chatty"), JOBQ_OK);
    //  Nothing is read while the processor reports 100 times: each report
    //  replaces the unread one, and the DONE follows the last.
    assert_true(jobq_test_wait_until(s_chatty_done, NULL, 5000));
    int progress = 0, last = 0;
    bool ended = false;
    for (int turns = 0; !ended && turns < 500; turns++) {
        jobq_pool_result_t r[16];
        size_t n = s_read(p, r, 16);
        for (size_t i = 0; i < n; i++) {
            if (r[i].kind == JOBQ_POOL_PROGRESS) {
                progress++;
                last = r[i].percent;
                assert_string_equal((const char *) r[i].data, "step 100");
            } else {
                ended = true;
                assert_false(r[i].ok);
                assert_int_equal(progress, 1);
            }
            free(r[i].data);
        }
    }
    assert_true(ended);
    assert_int_equal(last, 100);
    jobq_pool_destroy(&p);
}

static bool
s_many_started(void *arg)
{
    return atomic_load(&s_started) > *(int *) arg;
}

static void
test_pool_results_wait_for_room(void **state)
{
    s_fix_t *f = *state;
    //  One slot reports into room for 4 * 1 + 64 results. With nobody
    //  reading, it stops after 68 results, inside the 69th job's report;
    //  once read, every result arrives, in order.
    jobq_pool_t *p = jobq_pool_new(1, 100, &f->args);
    for (uint64_t id = 1; id <= 100; id++)
        assert_int_equal(s_submit(f, p, id, "noop"), JOBQ_OK);
    int at = 68;
    assert_true(jobq_test_wait_until(s_many_started, &at, 5000));
    at = 69;
    assert_false(jobq_test_wait_until(s_many_started, &at, 200));
    uint64_t next = 1;
    for (int turns = 0; next <= 100 && turns < 500; turns++) {
        jobq_pool_result_t r[16];
        size_t n = s_read(p, r, 16);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(r[i].id, next++);
            assert_true(r[i].ok);
            free(r[i].data);
        }
    }
    assert_int_equal(next, 101);
    jobq_pool_destroy(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pool_runs_every_job_once, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(
            test_pool_output_and_errors_are_reported, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_pool_cancel_queued_and_running,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_pool_take_queued_and_cancel_running, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_pool_unread_progress_is_folded,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_pool_results_wait_for_room,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
