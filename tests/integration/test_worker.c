/*  test_worker.c: the worker runtime against a scripted broker. A ROUTER on
    inproc plays the broker's side of the protocol one message at a time,
    so that the runtime's answer to each thing a broker may send can be
    checked, including what a real broker never sends: READY with the
    capacity asked for; a JOB beyond that capacity handed back unstarted;
    a queued job cancelled; a message that is not the protocol ignored;
    DISCONNECT answered with a new READY that lists the jobs held; a
    running job cancelled; and, on stop, capacity 0 with an echo, every
    held job handed back, and no return before the ACKs and the echo are
    in. Real threads and sockets, one process. */
#include "jobq_test.h"

#include <czmq.h>
#include "jobq_msg.h"
#include "jobq_wire.h"
#include "jobq/jobq_worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_WAIT_MS 5000  //  for any one message from the worker

static atomic_int s_running;  //  processors inside s_block now

//  Runs until cancelled (a minute at most).
static int
s_block(jobq_job_t *job, void *state)
{
    (void) state;
    atomic_fetch_add(&s_running, 1);
    int rc = jobq_job_sleep(job, 60000);
    atomic_fetch_sub(&s_running, 1);
    return rc == JOBQ_ECANCELLED ? jobq_job_fail(job, false, "stopped") : rc;
}

typedef struct {
    jobq_worker_t *worker;
    volatile sig_atomic_t stop;
    int rc;
    atomic_bool done;  //  jobq_worker_run returned
} s_run_t;

static void *
s_run_main(void *arg)
{
    s_run_t *r = arg;
    r->rc = jobq_worker_run(r->worker, &r->stop);
    atomic_store(&r->done, true);
    return NULL;
}

//  The worker's next message other than HEARTBEAT, decoded into *m (which
//  points into *in: close it after). Fails the test after S_WAIT_MS.
static void
s_next(zsock_t *router, jobq_wire_in_t *in, jobq_msg_t *m)
{
    zpoller_t *p = zpoller_new(router, NULL);
    assert_non_null(p);
    while (true) {
        assert_non_null(zpoller_wait(p, S_WAIT_MS));
        assert_int_equal(jobq_wire_recv(zsock_resolve(router), true, true, in),
                         JOBQ_OK);
        assert_int_equal(in->err, JOBQ_OK);
        jobq_msg_why_t why;
        int rc = jobq_msg_decode(in->cmd, in->body, in->body_len, m, &why);
        if (rc != JOBQ_OK)
            fail_msg("worker sent a bad message: %s", why.text);
        if (m->cmd != JOBQ_CMD_HEARTBEAT)
            break;
        jobq_wire_in_close(in);
    }
    zpoller_destroy(&p);
}

static void
s_send(zsock_t *router, const char *ident, const jobq_msg_t *m)
{
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, JOBQ_MAX_FRAME_BYTES);
    jobq_msg_encode(m, &w);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    assert_int_equal(jobq_wire_send(zsock_resolve(router), ident, strlen(ident),
                                    m->cmd, w.data, w.len),
                     JOBQ_OK);
    jobq_mp_writer_fini(&w);
}

static void
s_job(zsock_t *router, const char *ident, uint64_t id)
{
    static const uint8_t empty_map[] = {0x80};
    jobq_msg_t m = {.cmd = JOBQ_CMD_JOB};
    m.u.dispatch.id = id;
    m.u.dispatch.attempt = 1;
    m.u.dispatch.type = (jobq_str_t){"block", 5};
    m.u.dispatch.shop = (jobq_str_t){"s", 1};
    m.u.dispatch.input = (jobq_bytes_t){empty_map, sizeof empty_map};
    s_send(router, ident, &m);
}

//  The broker took the result of (id, attempt 1).
static void
s_ack(zsock_t *router, const char *ident, uint64_t id)
{
    jobq_msg_t m = {.cmd = JOBQ_CMD_ACK};
    m.u.ack.id = id;
    m.u.ack.attempt = 1;
    m.u.ack.taken = true;
    s_send(router, ident, &m);
}

static void
s_cancel(zsock_t *router, const char *ident, uint64_t id)
{
    jobq_msg_t m = {.cmd = JOBQ_CMD_CANCEL_JOB};
    m.u.cancel_job.id = id;
    m.u.cancel_job.attempt = 1;
    s_send(router, ident, &m);
}

//  The next message is a FAIL of job id; returns it in *m (close *in).
static void
s_expect_fail(zsock_t *router, jobq_wire_in_t *in, jobq_msg_t *m, uint64_t id)
{
    s_next(router, in, m);
    assert_int_equal(m->cmd, JOBQ_CMD_FAIL);
    assert_int_equal(m->u.fail.id, id);
    assert_int_equal(m->u.fail.attempt, 1);
}

//  How many {id, attempt} entries the held list of a READY has.
static size_t
s_held_count(const jobq_msg_t *m)
{
    assert_true(m->has_held);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, m->held.ptr, m->held.len);
    uint32_t n = 0;
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
    return n;
}

static bool
s_one_running(void *arg)
{
    (void) arg;
    return atomic_load(&s_running) == 1;
}

static void
test_worker_answers_a_scripted_broker(void **state)
{
    (void) state;
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    assert_non_null(router);
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://test-worker-%d", (int) getpid());
    assert_int_equal(zsock_bind(router, "%s", ep), 0);

    jobq_registry_t *reg = jobq_registry_new();
    assert_int_equal(jobq_registry_add(reg, "block", s_block, NULL), JOBQ_OK);
    jobq_worker_config_t cfg;
    jobq_worker_config_defaults(&cfg);
    cfg.broker = ep;
    //  inproc:// reaches only sockets of the same context: czmq's here.
    cfg.zmq_ctx = zsys_init();
    cfg.name = "tw-1";
    cfg.concurrency = 1;
    cfg.prefetch = 1;
    cfg.heartbeat_ms = 60000;
    cfg.broker_timeout_ms = 60000;
    cfg.grace_ms = 0;
    s_run_t run = {.worker = jobq_worker_new(&cfg, reg)};
    assert_non_null(run.worker);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, s_run_main, &run), 0);

    jobq_wire_in_t in;
    jobq_msg_t m;
    //  READY: its types, and room for concurrency + prefetch jobs.
    s_next(router, &in, &m);
    assert_int_equal(m.cmd, JOBQ_CMD_READY);
    assert_int_equal(m.u.ready.capacity, 2);
    assert_int_equal(m.u.ready.ntypes, 1);
    assert_memory_equal(m.u.ready.types[0].ptr, "block", 5);
    assert_int_equal(in.ident_len, 4);
    assert_memory_equal(in.ident, "tw-1", 4);
    assert_int_equal(s_held_count(&m), 0);
    jobq_wire_in_close(&in);

    //  Two JOBs fill it (one runs, one waits); a third is handed back
    //  unstarted: released, so the attempt does not count. That result is
    //  not acknowledged yet: the worker keeps it.
    s_job(router, "tw-1", 1);
    assert_true(jobq_test_wait_until(s_one_running, NULL, S_WAIT_MS));
    s_job(router, "tw-1", 2);
    s_job(router, "tw-1", 3);
    s_expect_fail(router, &in, &m, 3);
    assert_true(m.u.fail.released);
    assert_false(m.u.fail.cancelled);
    assert_non_null(strstr(m.u.fail.error.ptr, "no free slot"));
    jobq_wire_in_close(&in);

    //  Cancel the queued one: it never started, and says so.
    s_cancel(router, "tw-1", 2);
    s_expect_fail(router, &in, &m, 2);
    assert_true(m.u.fail.cancelled);
    assert_false(m.u.fail.released);
    jobq_wire_in_close(&in);
    s_ack(router, "tw-1", 2);

    //  Not the protocol: a wrong signature, then a JOB whose body is not
    //  msgpack. Both are dropped and the worker goes on.
    assert_int_equal(zmq_send(zsock_resolve(router), "tw-1", 4, ZMQ_SNDMORE),
                     4);
    assert_int_equal(zmq_send(zsock_resolve(router), "XX", 2, ZMQ_SNDMORE), 2);
    assert_int_equal(zmq_send(zsock_resolve(router), "\x21", 1, ZMQ_SNDMORE),
                     1);
    assert_int_equal(zmq_send(zsock_resolve(router), "\x80", 1, 0), 1);
    static const uint8_t junk[] = {0xc1, 0xc1, 0xc1};
    assert_int_equal(jobq_wire_send(zsock_resolve(router), "tw-1", 4,
                                    JOBQ_CMD_JOB, junk, sizeof junk),
                     JOBQ_OK);

    //  DISCONNECT (a restarted broker): register again, listing the
    //  running job and the result not acknowledged, then send that result
    //  again; the acknowledged one is gone.
    jobq_msg_t d = {.cmd = JOBQ_CMD_DISCONNECT};
    d.u.disconnect.reason = (jobq_str_t){"unknown worker", 14};
    s_send(router, "tw-1", &d);
    s_next(router, &in, &m);
    assert_int_equal(m.cmd, JOBQ_CMD_READY);
    assert_int_equal(m.u.ready.capacity, 2);
    assert_int_equal(s_held_count(&m), 2);
    jobq_wire_in_close(&in);
    s_expect_fail(router, &in, &m, 3);
    assert_true(m.u.fail.released);
    jobq_wire_in_close(&in);
    s_ack(router, "tw-1", 3);

    //  Cancel the running one: its processor stops and reports.
    s_cancel(router, "tw-1", 1);
    s_expect_fail(router, &in, &m, 1);
    assert_true(m.u.fail.cancelled);
    assert_false(m.u.fail.released);
    assert_memory_equal(m.u.fail.error.ptr, "stopped", 7);
    jobq_wire_in_close(&in);
    assert_int_equal(atomic_load(&s_running), 0);
    s_ack(router, "tw-1", 1);

    //  Stop with a job running: capacity 0 first, with an echo, then the
    //  job, cancelled once grace (0 ms) is over, reports; the runtime waits
    //  for that result's ACK and for its echo (docs/PROTOCOL.md 9.2), and
    //  returns once it has both.
    s_job(router, "tw-1", 4);
    assert_true(jobq_test_wait_until(s_one_running, NULL, S_WAIT_MS));
    run.stop = 1;
    s_next(router, &in, &m);
    assert_int_equal(m.cmd, JOBQ_CMD_READY);
    assert_int_equal(m.u.ready.capacity, 0);
    assert_true(m.has_echo);
    uint64_t echo = m.echo;
    jobq_wire_in_close(&in);
    s_expect_fail(router, &in, &m, 4);
    assert_true(m.u.fail.cancelled);
    jobq_wire_in_close(&in);
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_false(atomic_load(&run.done));
    s_ack(router, "tw-1", 4);
    nanosleep(&pause, NULL);
    assert_false(atomic_load(&run.done));
    //  Another echo is not ours; then ours.
    jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
    hb.echo = echo + 1;
    hb.has_echo = true;
    s_send(router, "tw-1", &hb);
    nanosleep(&pause, NULL);
    assert_false(atomic_load(&run.done));
    hb.echo = echo;
    s_send(router, "tw-1", &hb);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(run.rc, JOBQ_OK);

    jobq_worker_destroy(&run.worker);
    jobq_registry_destroy(&reg);
    zsock_destroy(&router);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_answers_a_scripted_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
