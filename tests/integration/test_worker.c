/*  test_worker.c: the worker runtime against a scripted broker. A ROUTER on
    inproc plays the broker's side of the protocol one message at a time,
    so that the runtime's answer to each thing a broker may send can be
    checked, including what a real broker never sends: READY with the
    capacity asked for; a JOB beyond that capacity handed back unstarted;
    a queued job cancelled; a message that is not the protocol ignored;
    DISCONNECT answered with a new READY that lists the jobs held; a
    running job cancelled; and, on stop, capacity 0 with an echo, every
    held job handed back, and no return before the ACKs and the echo are
    in. Real threads and sockets, one process.
    With a list of brokers: two scripted brokers, the worker moving from a
    silent one to the next with READY and its results, and back; and two
    real broker processes, one killed under the worker. */
#include "jobq_test.h"

#include <czmq.h>
#include "jobq_msg.h"
#include "jobq_wire.h"
#include "jobq/jobq_worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

//  The broker took (or, taken false, found stale) the result of (id,
//  attempt 1).
static void
s_ack_taken(zsock_t *router, const char *ident, uint64_t id, bool taken)
{
    jobq_msg_t m = {.cmd = JOBQ_CMD_ACK};
    m.u.ack.id = id;
    m.u.ack.attempt = 1;
    m.u.ack.taken = taken;
    s_send(router, ident, &m);
}

static void
s_ack(zsock_t *router, const char *ident, uint64_t id)
{
    s_ack_taken(router, ident, id, true);
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

//  For ms, everything the worker sends is a HEARTBEAT listing no job: no
//  result is sent again, nothing loops. At least one comes.
static void
s_expect_quiet(zsock_t *router, int ms)
{
    int64_t end = zclock_mono() + ms;
    int heartbeats = 0;
    zpoller_t *p = zpoller_new(router, NULL);
    assert_non_null(p);
    for (int64_t left; (left = end - zclock_mono()) > 0;) {
        if (!zpoller_wait(p, (int) left))
            continue;
        jobq_wire_in_t in;
        jobq_msg_t m;
        jobq_msg_why_t why;
        assert_int_equal(jobq_wire_recv(zsock_resolve(router), true, true, &in),
                         JOBQ_OK);
        assert_int_equal(
            jobq_msg_decode(in.cmd, in.body, in.body_len, &m, &why), JOBQ_OK);
        assert_int_equal(m.cmd, JOBQ_CMD_HEARTBEAT);
        assert_int_equal(s_held_count(&m), 0);
        heartbeats++;
        jobq_wire_in_close(&in);
    }
    zpoller_destroy(&p);
    assert_true(heartbeats > 0);
}

static void
test_worker_moves_to_the_next_broker_of_its_list(void **state)
{
    (void) state;
    zsock_t *ra = zsock_new(ZMQ_ROUTER), *rb = zsock_new(ZMQ_ROUTER);
    assert_non_null(ra);
    assert_non_null(rb);
    char ea[64], eb[64], list[140];
    snprintf(ea, sizeof ea, "inproc://test-worker-a-%d", (int) getpid());
    snprintf(eb, sizeof eb, "inproc://test-worker-b-%d", (int) getpid());
    snprintf(list, sizeof list, "%s,%s", ea, eb);
    assert_int_equal(zsock_bind(ra, "%s", ea), 0);
    assert_int_equal(zsock_bind(rb, "%s", eb), 0);

    jobq_registry_t *reg = jobq_registry_new();
    assert_int_equal(jobq_registry_add(reg, "block", s_block, NULL), JOBQ_OK);
    jobq_worker_config_t cfg;
    jobq_worker_config_defaults(&cfg);
    cfg.broker = list;
    cfg.zmq_ctx = zsys_init();
    cfg.name = "tw-2";
    cfg.concurrency = 1;
    cfg.prefetch = 1;
    cfg.heartbeat_ms = 100;
    cfg.broker_timeout_ms = 1500;
    cfg.grace_ms = 0;
    s_run_t run = {.worker = jobq_worker_new(&cfg, reg)};
    assert_non_null(run.worker);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, s_run_main, &run), 0);

    //  Broker A, first in the list: READY; a job runs, another is
    //  cancelled before it starts, and A never acknowledges that result.
    jobq_wire_in_t in;
    jobq_msg_t m;
    s_next(ra, &in, &m);
    assert_int_equal(m.cmd, JOBQ_CMD_READY);
    assert_int_equal(s_held_count(&m), 0);
    jobq_wire_in_close(&in);
    s_job(ra, "tw-2", 1);
    assert_true(jobq_test_wait_until(s_one_running, NULL, S_WAIT_MS));
    s_job(ra, "tw-2", 2);
    s_cancel(ra, "tw-2", 2);
    s_expect_fail(ra, &in, &m, 2);
    assert_true(m.u.fail.cancelled);
    jobq_wire_in_close(&in);
    int64_t silent_since = zclock_mono();

    //  A falls silent: after broker_timeout_ms the worker registers with
    //  B, listing the running job and the result A did not acknowledge,
    //  and sends B that result.
    s_next(rb, &in, &m);
    int64_t moved_after = zclock_mono() - silent_since;
    assert_true(moved_after >= 1400 && moved_after < 4000);
    assert_int_equal(m.cmd, JOBQ_CMD_READY);
    assert_int_equal(m.u.ready.capacity, 2);
    assert_int_equal(s_held_count(&m), 2);
    assert_int_equal(in.ident_len, 4);
    assert_memory_equal(in.ident, "tw-2", 4);
    jobq_wire_in_close(&in);
    s_expect_fail(rb, &in, &m, 2);
    assert_true(m.u.fail.cancelled);
    jobq_wire_in_close(&in);
    //  B holds no lease for either, as a real broker would answer: the
    //  result is stale (taken=false), the running job is not its lease.
    s_ack_taken(rb, "tw-2", 2, false);
    s_cancel(rb, "tw-2", 1);
    s_expect_fail(rb, &in, &m, 1);
    assert_true(m.u.fail.cancelled);
    jobq_wire_in_close(&in);
    s_ack_taken(rb, "tw-2", 1, false);
    //  Both forgotten: the heartbeats list nothing and nothing is resent
    //  (resend_ms is half the broker timeout).
    s_expect_quiet(rb, 1000);
    assert_int_equal(atomic_load(&s_running), 0);

    //  B falls silent in turn: round-robin, back to A. (A still has the
    //  copies of result 2 the worker sent again while it waited for A's
    //  ACK, before it moved.)
    s_next(ra, &in, &m);
    while (m.cmd == JOBQ_CMD_FAIL && m.u.fail.id == 2) {
        jobq_wire_in_close(&in);
        s_next(ra, &in, &m);
    }
    assert_int_equal(m.cmd, JOBQ_CMD_READY);
    assert_int_equal(s_held_count(&m), 0);
    jobq_wire_in_close(&in);

    //  Stop: A gets the draining READY, and its echo ends the run.
    run.stop = 1;
    s_next(ra, &in, &m);
    assert_int_equal(m.cmd, JOBQ_CMD_READY);
    assert_int_equal(m.u.ready.capacity, 0);
    assert_true(m.has_echo);
    jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
    hb.echo = m.echo;
    hb.has_echo = true;
    jobq_wire_in_close(&in);
    s_send(ra, "tw-2", &hb);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(run.rc, JOBQ_OK);

    jobq_worker_destroy(&run.worker);
    jobq_registry_destroy(&reg);
    zsock_destroy(&ra);
    zsock_destroy(&rb);
}

//  Completes at once with {}.
static int
s_quick(jobq_job_t *job, void *state)
{
    (void) job;
    (void) state;
    return JOBQ_OK;
}

typedef struct {
    jobq_client_t *c;
    const char *id;
} s_job_ref_t;

static bool
s_completed(void *arg)
{
    s_job_ref_t *r = arg;
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    bool done = jobq_client_status(r->c, r->id, &info) == JOBQ_OK &&
                info.status == JOBQ_COMPLETED;
    jobq_job_info_clear(&info);
    return done;
}

//  Enqueue a "quick" job through c and wait up to ms for it to complete.
static bool
s_runs(jobq_client_t *c, int ms)
{
    static const uint8_t empty[] = {0x80};
    jobq_enqueue_t req = {"quick", "shop-w", {empty, 1}, 0, 0, 1, 0, NULL};
    char id[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue(c, &req, id, NULL), JOBQ_OK);
    s_job_ref_t r = {c, id};
    return jobq_test_wait_until(s_completed, &r, ms);
}

static jobq_client_t *
s_client_of(const jobq_test_broker_t *b)
{
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b->clients;
    cfg.timeout_ms = 1000;
    jobq_client_t *c = jobq_client_new(&cfg);
    assert_non_null(c);
    return c;
}

typedef struct {
    char *dir;
    jobq_test_broker_t a, b;
    s_run_t run;
    pthread_t th;
    bool started;
    jobq_registry_t *reg;
} s_real_t;

static int
s_real_teardown(void **state)
{
    s_real_t *fx = *state;
    if (fx->started) {
        fx->run.stop = -1;  //  at once
        pthread_join(fx->th, NULL);
    }
    jobq_worker_destroy(&fx->run.worker);
    jobq_registry_destroy(&fx->reg);
    jobq_test_broker_stop(&fx->a, SIGKILL);
    jobq_test_broker_stop(&fx->b, SIGKILL);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static int
s_real_setup(void **state)
{
    s_real_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->a.pid = fx->b.pid = -1;
    *state = fx;
    fx->dir = jobq_test_tmpdir();
    return fx->dir ? 0 : -1;
}

static void
test_worker_fails_over_between_real_brokers(void **state)
{
    s_real_t *fx = *state;
    char da[600], db[600];
    snprintf(da, sizeof da, "%s/a", fx->dir);
    snprintf(db, sizeof db, "%s/b", fx->dir);
    assert_int_equal(mkdir(da, 0700), 0);
    assert_int_equal(mkdir(db, 0700), 0);
    //  Heartbeats every 200 ms, so a worker may call 1 s of silence dead.
    const char *const extra[] = {"--heartbeat-ms", "200", NULL};
    assert_int_equal(jobq_test_broker_start(&fx->a, da, extra), 0);
    assert_int_equal(jobq_test_broker_start(&fx->b, db, extra), 0);

    fx->reg = jobq_registry_new();
    assert_int_equal(jobq_registry_add(fx->reg, "quick", s_quick, NULL),
                     JOBQ_OK);
    char brokers[140], clients[140];
    snprintf(brokers, sizeof brokers, "%s,%s", fx->a.workers, fx->b.workers);
    snprintf(clients, sizeof clients, "%s,%s", fx->a.clients, fx->b.clients);
    jobq_worker_config_t cfg;
    jobq_worker_config_defaults(&cfg);
    cfg.broker = brokers;
    cfg.clients = clients;
    cfg.name = "tw-3";
    cfg.concurrency = 2;
    cfg.heartbeat_ms = 200;
    cfg.broker_timeout_ms = 1000;
    cfg.grace_ms = 0;
    fx->run.worker = jobq_worker_new(&cfg, fx->reg);
    assert_non_null(fx->run.worker);
    assert_int_equal(pthread_create(&fx->th, NULL, s_run_main, &fx->run), 0);
    fx->started = true;

    //  The worker serves A, the first of its list.
    jobq_client_t *ca = s_client_of(&fx->a);
    assert_true(s_runs(ca, 5000));
    jobq_client_destroy(&ca);

    //  A dies: within broker_timeout_ms and a bit the worker serves B.
    jobq_test_broker_stop(&fx->a, SIGKILL);
    int64_t t0 = zclock_mono();
    jobq_client_t *cb = s_client_of(&fx->b);
    assert_true(s_runs(cb, 1000 + 4000));
    assert_true(zclock_mono() - t0 < 5000);
    jobq_client_destroy(&cb);

    //  A clean stop through B (its echo): the run ends with JOBQ_OK.
    fx->run.stop = 1;
    assert_int_equal(pthread_join(fx->th, NULL), 0);
    fx->started = false;
    assert_int_equal(fx->run.rc, JOBQ_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_answers_a_scripted_broker),
        cmocka_unit_test(test_worker_moves_to_the_next_broker_of_its_list),
        cmocka_unit_test_setup_teardown(
            test_worker_fails_over_between_real_brokers, s_real_setup,
            s_real_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
