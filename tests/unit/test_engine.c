/*  test_engine.c: the broker's state machine with a fake clock and no
    sockets: dispatch, fencing, leases, retries, cancel, idempotency,
    failed commits and recovery. */
#define _GNU_SOURCE
#include "jobq_test.h"
#include "jobq_engine.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_OUT 256

typedef struct {
    int kind;            //  jobq_act_kind_t
    int cmd;             //  jobq_cmd_t
    char peer[80];       //  routing id or topic
    uint8_t body[4096];  //  copy of the body
    size_t len;          //  bytes in body
    bool early;          //  may go out before the commit
} s_out_t;

typedef struct {
    char *dir;                 //  temporary directory
    jobq_store_t *store;       //  store
    jobq_engine_t *engine;     //  engine under test
    jobq_engine_config_t cfg;  //  its settings
    uint64_t wall;             //  fake wall clock, ms
    uint64_t mono;             //  fake monotonic clock, ms
    s_out_t out[S_MAX_OUT];    //  actions of the last turn
    int nout;                  //  entries in out
    int commit_rc;             //  result of the last commit
    uint64_t rid;              //  next request id
    jobq_key_t *who;           //  the sender's key, NULL = no keys
} s_fx_t;

//  Open the store and an engine on it; what the engine's recovery said.
static int
s_open_rc(s_fx_t *fx)
{
    fx->store = jobq_store_lmdb_new();
    jobq_store_config_t sc = {fx->dir, 16u << 20, 0, false, 0};
    assert_int_equal(jobq_store_open(fx->store, &sc), JOBQ_OK);
    fx->engine = jobq_engine_new(fx->store, &fx->cfg);
    assert_non_null(fx->engine);
    return jobq_engine_recover(fx->engine, fx->wall, fx->mono);
}

static void
s_open(s_fx_t *fx)
{
    assert_int_equal(s_open_rc(fx), JOBQ_OK);
}

static void
s_close(s_fx_t *fx)
{
    jobq_engine_destroy(&fx->engine);
    jobq_store_destroy(&fx->store);
}

static int
s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    fx->dir = jobq_test_tmpdir();
    jobq_engine_config_defaults(&fx->cfg);
    fx->cfg.lease_ms = 1000;
    fx->cfg.worker_timeout_ms = 3000;
    fx->cfg.heartbeat_ms = 500;
    fx->cfg.retry_base_ms = 100;
    fx->cfg.retry_max_ms = 1000;
    fx->cfg.seed = 42;
    fx->wall = 1700000000000ull;
    fx->mono = 5000;
    fx->rid = 1;
    s_open(fx);
    *state = fx;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    s_close(fx);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static void
s_advance(s_fx_t *fx, uint64_t ms)
{
    fx->wall += ms;
    fx->mono += ms;
}

static void
s_begin(s_fx_t *fx)
{
    assert_int_equal(jobq_engine_begin(fx->engine, fx->wall, fx->mono),
                     JOBQ_OK);
}

//  Tick, commit, and copy the actions out.
static int
s_end(s_fx_t *fx)
{
    jobq_engine_tick(fx->engine);
    fx->commit_rc = jobq_engine_commit(fx->engine);
    fx->nout = 0;
    size_t n = jobq_engine_action_count(fx->engine);
    for (size_t i = 0; i < n && fx->nout < S_MAX_OUT; i++) {
        jobq_action_t a;
        jobq_engine_action(fx->engine, i, &a);
        s_out_t *o = &fx->out[fx->nout++];
        o->kind = a.kind;
        o->cmd = a.cmd;
        o->early = a.early;
        size_t pl =
            a.peer_len < sizeof o->peer - 1 ? a.peer_len : sizeof o->peer - 1;
        memcpy(o->peer, a.peer, pl);
        o->peer[pl] = '\0';
        o->len = a.body_len < sizeof o->body ? a.body_len : sizeof o->body;
        memcpy(o->body, a.body, o->len);
    }
    return fx->commit_rc;
}

//  An empty turn (timers and dispatch only).
static void
s_idle(s_fx_t *fx)
{
    s_begin(fx);
    assert_int_equal(s_end(fx), JOBQ_OK);
}

static jobq_str_t
S(const char *s)
{
    return (jobq_str_t){s, strlen(s)};
}

static void
s_client(s_fx_t *fx, jobq_msg_t *m)
{
    m->rid = fx->rid++;
    jobq_engine_client(fx->engine, (const uint8_t *) "c1", 2, m, fx->who);
}

static void
s_worker(s_fx_t *fx, const char *w, jobq_msg_t *m)
{
    jobq_engine_worker(fx->engine, (const uint8_t *) w, strlen(w), m, fx->who);
}

static void
s_enqueue_msg(jobq_msg_t *m,
              const char *type,
              int32_t prio,
              uint64_t delay,
              uint32_t max_attempts,
              const char *key)
{
    static const uint8_t empty[] = {0x80};
    memset(m, 0, sizeof *m);
    m->cmd = JOBQ_CMD_ENQUEUE;
    m->u.enqueue.type = S(type);
    m->u.enqueue.shop = S("shop-1");
    m->u.enqueue.input = (jobq_bytes_t){empty, 1};
    m->u.enqueue.priority = prio;
    m->u.enqueue.delay_ms = delay;
    m->u.enqueue.max_attempts = max_attempts;
    if (key)
        m->u.enqueue.key = S(key);
}

//  The reply body of the last turn's client action; fails if absent.
static const s_out_t *
s_find(s_fx_t *fx, int kind, int cmd, const char *peer, int nth)
{
    for (int i = 0; i < fx->nout; i++) {
        const s_out_t *o = &fx->out[i];
        if (o->kind == kind && o->cmd == cmd &&
            (!peer || strcmp(o->peer, peer) == 0) && nth-- == 0)
            return o;
    }
    return NULL;
}

static int
s_count(s_fx_t *fx, int kind, int cmd, const char *peer)
{
    int n = 0;
    while (s_find(fx, kind, cmd, peer, n))
        n++;
    return n;
}

//  The ACK to worker w in the last turn for (id, attempt): 1 taken, 0 not
//  taken, -1 none.
static int
s_acked(s_fx_t *fx, const char *w, uint64_t id, uint32_t attempt)
{
    for (int i = 0; i < fx->nout; i++) {
        const s_out_t *o = &fx->out[i];
        if (o->kind != JOBQ_ACT_WORKER || o->cmd != JOBQ_CMD_ACK ||
            strcmp(o->peer, w) != 0)
            continue;
        jobq_msg_t m;
        jobq_msg_why_t why;
        assert_int_equal(
            jobq_msg_decode(JOBQ_CMD_ACK, o->body, o->len, &m, &why), JOBQ_OK);
        if (m.u.ack.id == id && m.u.ack.attempt == attempt)
            return m.u.ack.taken;
    }
    return -1;
}

static uint64_t
s_reply_id(const s_out_t *o)
{
    jobq_bytes_t b = {o->body, o->len}, v;
    assert_int_equal(jobq_mp_map_find(b, "id", &v), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    jobq_str_t s;
    assert_int_equal(jobq_mp_read_str(&r, &s), JOBQ_OK);
    uint64_t id = 0;
    assert_int_equal(jobq_id_parse(s.ptr, s.len, &id), JOBQ_OK);
    return id;
}

//  Enqueue in a turn of its own; returns the id.
static uint64_t
s_enqueue(s_fx_t *fx,
          const char *type,
          int32_t prio,
          uint64_t delay,
          uint32_t max_attempts)
{
    jobq_msg_t m;
    s_enqueue_msg(&m, type, prio, delay, max_attempts, NULL);
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(o);
    return s_reply_id(o);
}

static void
s_ready(s_fx_t *fx, const char *w, const char *type, uint32_t cap)
{
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_READY;
    m.u.ready.types[0] = S(type);
    m.u.ready.ntypes = 1;
    m.u.ready.capacity = cap;
    s_begin(fx);
    s_worker(fx, w, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
}

//  The JOB sent to worker w in the last turn: its id and attempt.
static bool
s_job_for(s_fx_t *fx, const char *w, uint64_t *id, uint32_t *attempt)
{
    const s_out_t *o = s_find(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, w, 0);
    if (!o)
        return false;
    jobq_msg_t m;
    jobq_msg_why_t why;
    assert_int_equal(jobq_msg_decode(JOBQ_CMD_JOB, o->body, o->len, &m, &why),
                     JOBQ_OK);
    *id = m.u.dispatch.id;
    *attempt = m.u.dispatch.attempt;
    return true;
}

//  Read job id straight from the store.
static jobq_jobdata_t
s_get(s_fx_t *fx, uint64_t id)
{
    jobq_jobdata_t j;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    assert_int_equal(jobq_store_get(fx->store, id, &j), JOBQ_OK);
    jobq_store_abort(fx->store);  //  scalars stay valid in the copy
    j.type.ptr = j.shop.ptr = j.message.ptr = j.error.ptr = NULL;
    j.input.ptr = j.output.ptr = j.errors.ptr = NULL;
    return j;
}

static void
s_result(s_fx_t *fx,
         const char *w,
         int cmd,
         uint64_t id,
         uint32_t attempt,
         bool permanent)
{
    static const uint8_t out[] = {0x81, 0xa2, 'o', 'k', 0xc3};
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = cmd;
    if (cmd == JOBQ_CMD_COMPLETE) {
        m.u.complete.id = id;
        m.u.complete.attempt = attempt;
        m.u.complete.output = (jobq_bytes_t){out, sizeof out};
    } else if (cmd == JOBQ_CMD_FAIL) {
        m.u.fail.id = id;
        m.u.fail.attempt = attempt;
        m.u.fail.error = S("boom");
        m.u.fail.permanent = permanent;
    } else {
        m.u.progress.id = id;
        m.u.progress.attempt = attempt;
        m.u.progress.progress = 50;
        m.u.progress.message = S("half");
    }
    s_begin(fx);
    s_worker(fx, w, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
}

//  --- tests
//  -------------------------------------------------------------------

static void
test_engine_enqueue_replies_and_publishes_after_commit(void **state)
{
    s_fx_t *fx = *state;
    uint64_t id = s_enqueue(fx, "noop", 0, 0, 3);
    assert_true(id != 0);
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 1);
    jobq_jobdata_t j = s_get(fx, id);
    assert_int_equal(j.status, JOBQ_PENDING);
    assert_int_equal(j.version, 1);
    assert_int_equal(j.max_attempts, 3);
    //  Ids grow even within one millisecond.
    uint64_t id2 = s_enqueue(fx, "noop", 0, 0, 3);
    assert_true(id2 > id);
}

static void
test_engine_dispatches_only_matching_types_within_capacity(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_enqueue(fx, "sleep", 0, 0, 3);
    uint64_t c = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, a);
    assert_int_equal(attempt, 1);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, "w1"), 1);
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    //  Full: nothing more until it reports.
    s_idle(fx);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, NULL), 0);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, c);
}

static void
test_engine_dispatch_follows_priority_then_age(void **state)
{
    s_fx_t *fx = *state;
    s_enqueue(fx, "noop", 0, 0, 3);
    uint64_t hi = s_enqueue(fx, "noop", 10, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, hi);
}

static void
test_engine_progress_and_complete_are_recorded_once(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    s_result(fx, "w1", JOBQ_CMD_PROGRESS, a, 1, false);
    jobq_jobdata_t j = s_get(fx, a);
    assert_int_equal(j.progress, 50);
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 1);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_COMPLETED);
    assert_int_equal(j.progress, 100);
    assert_true(j.output.len > 0);
    uint32_t version = j.version;
    //  The same completion again changes nothing.
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    assert_int_equal(s_get(fx, a).version, version);
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 0);
}

//  A PROGRESS from w for id at attempt 1, inside an open turn.
static void
s_progress(s_fx_t *fx, const char *w, uint64_t id, unsigned pct)
{
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_PROGRESS;
    m.u.progress.id = id;
    m.u.progress.attempt = 1;
    m.u.progress.progress = pct;
    m.u.progress.message = S("step");
    s_worker(fx, w, &m);
}

//  The job state carried by the nth event of the last turn.
static jobq_jobdata_t
s_event_job(s_fx_t *fx, int nth)
{
    const s_out_t *o = s_find(fx, JOBQ_ACT_PUBLISH, 0, NULL, nth);
    assert_non_null(o);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, o->body, o->len);
    jobq_jobdata_t j;
    assert_int_equal(jobq_msg_read_job(&r, &j), JOBQ_OK);
    return j;
}

//  Reports of one job within one turn are one change: one event carrying
//  the last of them, one version, one seq. The job's end is never folded.
static void
test_engine_progress_in_one_turn_is_one_change(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    uint32_t v0 = s_get(fx, a).version;
    jobq_engine_stats_t st;
    s_begin(fx);
    for (unsigned p = 10; p <= 40; p += 10)
        s_progress(fx, "w1", a, p);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 1);
    jobq_jobdata_t e = s_event_job(fx, 0);
    assert_int_equal(e.progress, 40);
    assert_int_equal(e.version, v0 + 1);
    jobq_jobdata_t j = s_get(fx, a);
    assert_int_equal(j.progress, 40);
    assert_int_equal(j.version, v0 + 1);
    assert_int_equal(j.seq, e.seq);
    jobq_engine_get_stats(fx->engine, &st);
    assert_int_equal(st.progress_merged, 3);
    //  The next turn is a new change; a completion after a report in the
    //  same turn is its own event, right after the report's.
    s_begin(fx);
    s_progress(fx, "w1", a, 60);
    s_progress(fx, "w1", a, 70);
    jobq_msg_t c;
    memset(&c, 0, sizeof c);
    c.cmd = JOBQ_CMD_COMPLETE;
    c.u.complete.id = a;
    c.u.complete.attempt = 1;
    c.u.complete.output = (jobq_bytes_t){(const uint8_t *) "\x80", 1};
    s_worker(fx, "w1", &c);
    s_progress(fx, "w1", a, 80);  //  after the end: stale, not applied
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 2);
    jobq_jobdata_t p = s_event_job(fx, 0), f = s_event_job(fx, 1);
    assert_int_equal(p.progress, 70);
    assert_int_equal(p.version, v0 + 2);
    assert_int_equal(p.seq, e.seq + 1);
    assert_int_equal(f.status, JOBQ_COMPLETED);
    assert_int_equal(f.version, v0 + 3);
    assert_int_equal(f.seq, e.seq + 2);
    j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_COMPLETED);
    assert_int_equal(j.version, v0 + 3);
    jobq_engine_get_stats(fx->engine, &st);
    assert_int_equal(st.progress_merged, 4);
}

//  PROTOCOL 10.1: events never carry a job's output or errors, whatever its
//  state (watchers read them with STATUS), and subscriptions to one job
//  publish it at most once a turn however many arrive.
static void
test_engine_events_stay_small_and_snapshots_come_once_a_turn(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 1);
    s_ready(fx, "w1", "noop", 1);
    s_begin(fx);
    jobq_msg_t c;
    memset(&c, 0, sizeof c);
    c.cmd = JOBQ_CMD_COMPLETE;
    c.u.complete.id = a;
    c.u.complete.attempt = 1;
    c.u.complete.output = (jobq_bytes_t){(const uint8_t *) "\x81\xa1k\x01", 4};
    s_worker(fx, "w1", &c);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_PUBLISH, 0, NULL, 0);
    assert_non_null(o);
    jobq_bytes_t b = {o->body, o->len}, v;
    assert_int_equal(s_event_job(fx, 0).status, JOBQ_COMPLETED);
    assert_int_not_equal(jobq_mp_map_find(b, "output", &v), JOBQ_OK);
    assert_int_not_equal(jobq_mp_map_find(b, "errors", &v), JOBQ_OK);
    assert_int_not_equal(jobq_mp_map_find(b, "input", &v), JOBQ_OK);
    //  A thousand subscriptions in one turn: one snapshot; the next turn,
    //  one more.
    char topic[JOBQ_TOPIC_MAX];
    size_t tlen = jobq_topic_format("shop-1", 6, a, topic);
    for (int turn = 0; turn < 2; turn++) {
        s_begin(fx);
        for (int i = 0; i < 1000; i++)
            jobq_engine_subscribed(fx->engine, (const uint8_t *) topic, tlen);
        assert_int_equal(s_end(fx), JOBQ_OK);
        assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 1);
        o = s_find(fx, JOBQ_ACT_PUBLISH, 0, NULL, 0);
        b = (jobq_bytes_t){o->body, o->len};
        assert_int_not_equal(jobq_mp_map_find(b, "output", &v), JOBQ_OK);
    }
}

//  Once a state was shown (a STATUS reply, a LIST page, a subscription
//  snapshot), a later report in the same turn is a change of its own: the
//  state a watcher holds keeps its own version and seq.
static void
test_engine_progress_after_a_status_is_a_new_change(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    uint32_t v0 = s_get(fx, a).version;
    s_begin(fx);
    s_progress(fx, "w1", a, 10);
    jobq_msg_t m = {.cmd = JOBQ_CMD_STATUS};
    m.u.job.id = a;
    s_client(fx, &m);
    s_progress(fx, "w1", a, 20);
    s_progress(fx, "w1", a, 30);
    char topic[JOBQ_TOPIC_MAX];
    size_t tlen = jobq_topic_format("shop-1", 6, a, topic);
    jobq_engine_subscribed(fx->engine, (const uint8_t *) topic, tlen);
    s_progress(fx, "w1", a, 40);
    assert_int_equal(s_end(fx), JOBQ_OK);
    //  10; 20 and 30 folded; the snapshot; 40.
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 4);
    jobq_jobdata_t e0 = s_event_job(fx, 0), e1 = s_event_job(fx, 1);
    jobq_jobdata_t snap = s_event_job(fx, 2), e3 = s_event_job(fx, 3);
    assert_int_equal(e0.progress, 10);
    assert_int_equal(e0.version, v0 + 1);
    assert_int_equal(e1.progress, 30);
    assert_int_equal(e1.version, v0 + 2);
    assert_int_equal(e1.seq, e0.seq + 1);
    assert_int_equal(snap.progress, 30);
    assert_int_equal(snap.version, v0 + 2);
    assert_int_equal(e3.progress, 40);
    assert_int_equal(e3.version, v0 + 3);
    assert_int_equal(e3.seq, e0.seq + 2);
    const s_out_t *r = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(r);
}

static void
test_engine_lost_worker_requeues_and_stale_attempt_is_fenced(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    //  w1 goes silent: after the worker timeout its job is pending again.
    s_advance(fx, fx->cfg.worker_timeout_ms + 1);
    s_idle(fx);
    jobq_jobdata_t j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_PENDING);
    assert_int_equal(j.attempts, 1);
    //  w2 gets attempt 2 once the backoff has passed.
    s_ready(fx, "w2", "noop", 1);
    s_advance(fx, fx->cfg.retry_max_ms + 1);
    s_idle(fx);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w2", &id, &attempt));
    assert_int_equal(id, a);
    assert_int_equal(attempt, 2);
    //  w1 comes back and reports attempt 1: fenced.
    s_ready(fx, "w1", "noop", 1);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    s_result(fx, "w1", JOBQ_CMD_PROGRESS, a, 1, false);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, "w1"),
                     1);
    assert_int_equal(s_get(fx, a).progress, 0);
    //  w2 completes it: once.
    s_result(fx, "w2", JOBQ_CMD_COMPLETE, a, 2, false);
    j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_COMPLETED);
    assert_int_equal(j.attempts, 2);
}

static void
test_engine_same_worker_stale_attempt_is_fenced(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    s_advance(fx, fx->cfg.worker_timeout_ms + 1);
    s_idle(fx);
    s_ready(fx, "w1", "noop", 1);
    s_advance(fx, fx->cfg.retry_max_ms + 1);
    s_idle(fx);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(attempt, 2);
    //  A result of attempt 1 that was queued while w1 was cut off arrives
    //  late: it must not complete attempt 2.
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    s_result(fx, "w1", JOBQ_CMD_FAIL, a, 1, false);
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 2, false);
    assert_int_equal(s_get(fx, a).status, JOBQ_COMPLETED);
}

static void
s_heartbeat_holding(s_fx_t *fx,
                    const char *w,
                    const uint64_t *ids,
                    const uint32_t *attempts,
                    uint32_t n)
{
    jobq_mp_writer_t hw;
    jobq_mp_writer_init(&hw, 4096);
    jobq_msg_write_held(&hw, ids, attempts, n);
    jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
    hb.held = (jobq_bytes_t){hw.data, hw.len};
    hb.has_held = true;
    s_begin(fx);
    s_worker(fx, w, &hb);
    assert_int_equal(s_end(fx), JOBQ_OK);
    jobq_mp_writer_fini(&hw);
}

static void
test_engine_job_the_worker_does_not_hold_goes_back_to_pending(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    uint32_t one = 1;
    s_ready(fx, "w1", "noop", 2);
    //  Right after dispatch the JOB may still be on its way: no verdict.
    s_heartbeat_holding(fx, "w1", NULL, NULL, 0);
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    //  Later, a worker that lists it keeps it...
    s_advance(fx, 3 * fx->cfg.heartbeat_ms + 1);
    s_heartbeat_holding(fx, "w1", &a, &one, 1);
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    //  ...and one that does not list it loses it at once.
    s_heartbeat_holding(fx, "w1", NULL, NULL, 0);
    jobq_jobdata_t j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_PENDING);
    assert_int_equal(j.attempts, 1);
}

static void s_cancel(s_fx_t *fx, uint64_t id, int want_rc);

//  A result is acknowledged only by a turn that committed: when the
//  commit fails nothing is said, the worker sends it again, and then it
//  is taken and acknowledged; a stale one is acknowledged as not taken.
static void
test_engine_results_are_acknowledged_after_their_commit(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    jobq_store_fail_next_commit(fx->store, JOBQ_ESTORAGE);
    s_begin(fx);
    jobq_msg_t m = {.cmd = JOBQ_CMD_COMPLETE};
    m.u.complete.id = a;
    m.u.complete.attempt = 1;
    s_worker(fx, "w1", &m);
    assert_int_equal(s_end(fx), JOBQ_ESTORAGE);
    assert_int_equal(s_acked(fx, "w1", a, 1), -1);
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    assert_int_equal(s_acked(fx, "w1", a, 1), 1);
    assert_int_equal(s_get(fx, a).status, JOBQ_COMPLETED);
    //  A FAIL of an attempt that never existed: acknowledged, not taken.
    s_result(fx, "w1", JOBQ_CMD_FAIL, a, 7, false);
    assert_int_equal(s_acked(fx, "w1", a, 7), 0);
    assert_int_equal(s_get(fx, a).status, JOBQ_COMPLETED);
}

//  Every PROGRESS of an attempt that is no longer current (here: its job
//  was cancelled) is answered with CANCEL_JOB, so a worker that missed the
//  first one stops. After a restart, an attempt the worker lists but the
//  broker holds no lease for is cancelled at its READY, and a PROGRESS from
//  a worker the broker does not know yet gets CANCEL_JOB and DISCONNECT.
static void
test_engine_attempts_that_are_not_current_are_told_to_stop(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    uint64_t b = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    s_ready(fx, "w2", "noop", 1);
    s_cancel(fx, a, JOBQ_OK);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, "w1"),
                     1);
    for (int i = 0; i < 2; i++) {
        s_result(fx, "w1", JOBQ_CMD_PROGRESS, a, 1, false);
        assert_int_equal(
            s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, "w1"), 1);
    }
    assert_int_equal(s_get(fx, a).status, JOBQ_CANCELLED);
    //  The broker restarts; w1 still runs the cancelled attempt and lists
    //  it: there is no lease for it, so it is told to stop.
    s_close(fx);
    s_open(fx);
    jobq_mp_writer_t hw;
    jobq_mp_writer_init(&hw, 4096);
    uint32_t one = 1;
    jobq_msg_write_held(&hw, &a, &one, 1);
    jobq_msg_t r;
    memset(&r, 0, sizeof r);
    r.cmd = JOBQ_CMD_READY;
    r.u.ready.types[0] = S("noop");
    r.u.ready.ntypes = 1;
    r.u.ready.capacity = 1;
    r.held = (jobq_bytes_t){hw.data, hw.len};
    r.has_held = true;
    s_begin(fx);
    s_worker(fx, "w1", &r);
    assert_int_equal(s_end(fx), JOBQ_OK);
    jobq_mp_writer_fini(&hw);
    const s_out_t *c =
        s_find(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, "w1", 0);
    assert_non_null(c);
    jobq_msg_t d;
    jobq_msg_why_t why;
    assert_int_equal(
        jobq_msg_decode(JOBQ_CMD_CANCEL_JOB, c->body, c->len, &d, &why),
        JOBQ_OK);
    assert_true(d.u.cancel_job.id == a);
    //  w2, not registered yet, reports an attempt it does not hold.
    s_result(fx, "w2", JOBQ_CMD_PROGRESS, b, 9, false);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, "w2"),
                     1);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_DISCONNECT, "w2"),
                     1);
}

static void
test_engine_heartbeats_keep_a_long_job_leased(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
    for (int i = 0; i < 10; i++) {
        s_advance(fx, 800);
        s_begin(fx);
        s_worker(fx, "w1", &hb);
        assert_int_equal(s_end(fx), JOBQ_OK);
    }
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    assert_int_equal(s_get(fx, a).attempts, 1);
}

static void
test_engine_failures_retry_with_backoff_then_fail(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 2);
    s_ready(fx, "w1", "noop", 1);
    s_result(fx, "w1", JOBQ_CMD_FAIL, a, 1, false);
    jobq_jobdata_t j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_PENDING);
    //  Equal jitter: between half and all of the base delay.
    assert_true(j.run_at >= fx->wall + fx->cfg.retry_base_ms / 2);
    assert_true(j.run_at <= fx->wall + fx->cfg.retry_base_ms);
    //  Not before run_at.
    s_idle(fx);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, NULL), 0);
    s_advance(fx, fx->cfg.retry_base_ms + 1);
    s_idle(fx);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(attempt, 2);
    s_result(fx, "w1", JOBQ_CMD_FAIL, a, 2, false);
    j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_FAILED);
    assert_int_equal(j.attempts, 2);
    assert_true(j.completed_at != 0);
    //  Both attempts' errors are kept.
    jobq_jobdata_t full;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    assert_int_equal(jobq_store_get(fx->store, a, &full), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, full.errors.ptr, full.errors.len);
    uint32_t n;
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
    assert_int_equal(n, 2);
    jobq_store_abort(fx->store);
}

static void
test_engine_permanent_failure_is_not_retried(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 5);
    s_ready(fx, "w1", "noop", 1);
    s_result(fx, "w1", JOBQ_CMD_FAIL, a, 1, true);
    assert_int_equal(s_get(fx, a).status, JOBQ_FAILED);
}

//  PROTOCOL 9.2: a READY with an echo gets a HEARTBEAT with that echo back,
//  after the turn's commit; a draining READY (capacity 0) gets no JOB after
//  it, so a stopping worker that has its echo knows no JOB is on its way.
static void
test_engine_ready_echo_comes_back_and_no_job_follows_a_drain(void **state)
{
    s_fx_t *fx = *state;
    s_enqueue(fx, "noop", 0, 0, 1);
    s_ready(fx, "w1", "noop", 1);
    uint64_t id;
    uint32_t attempt;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    jobq_msg_t r;
    memset(&r, 0, sizeof r);
    r.cmd = JOBQ_CMD_READY;
    r.u.ready.types[0] = S("noop");
    r.u.ready.ntypes = 1;
    r.u.ready.capacity = 0;
    r.echo = 9;
    r.has_echo = true;
    jobq_msg_t e;
    s_enqueue_msg(&e, "noop", 0, 0, 1, NULL);
    s_begin(fx);
    s_worker(fx, "w1", &r);
    s_client(fx, &e);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, "w1"), 0);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_HEARTBEAT, "w1"), 1);
    const s_out_t *o = s_find(fx, JOBQ_ACT_WORKER, JOBQ_CMD_HEARTBEAT, "w1", 0);
    jobq_msg_t hb;
    jobq_msg_why_t why;
    assert_int_equal(
        jobq_msg_decode(JOBQ_CMD_HEARTBEAT, o->body, o->len, &hb, &why),
        JOBQ_OK);
    assert_true(hb.has_echo && hb.echo == 9);
    //  Its lease is kept while it drains.
    assert_int_equal(s_get(fx, id).status, JOBQ_RUNNING);
}

//  PROTOCOL 9.6: a FAIL with an empty error gets the broker's text, the same
//  in the job's `error` and in its `errors`, so that `error` is nil only
//  when nothing failed.
static void
test_engine_fail_without_a_message_gets_one(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 1);
    s_ready(fx, "w1", "noop", 1);
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_FAIL;
    m.u.fail.id = a;
    m.u.fail.attempt = 1;
    s_begin(fx);
    s_worker(fx, "w1", &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    jobq_jobdata_t j;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    assert_int_equal(jobq_store_get(fx->store, a, &j), JOBQ_OK);
    assert_int_equal(j.status, JOBQ_FAILED);
    const char *text = "failed with no message";
    assert_int_equal(j.error.len, strlen(text));
    assert_memory_equal(j.error.ptr, text, j.error.len);
    jobq_bytes_t e;
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, j.errors.ptr, j.errors.len);
    uint32_t n;
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
    assert_int_equal(n, 1);
    jobq_bytes_t entry = {r.p, (size_t) (r.end - r.p)};
    assert_int_equal(jobq_mp_map_find(entry, "error", &e), JOBQ_OK);
    jobq_mp_reader_init(&r, e.ptr, e.len);
    jobq_str_t s;
    assert_int_equal(jobq_mp_read_str(&r, &s), JOBQ_OK);
    assert_int_equal(s.len, strlen(text));
    assert_memory_equal(s.ptr, text, s.len);
    jobq_store_abort(fx->store);
}

static void
test_engine_retry_command_restarts_a_failed_job(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 1);
    s_ready(fx, "w1", "noop", 1);
    s_result(fx, "w1", JOBQ_CMD_FAIL, a, 1, false);
    assert_int_equal(s_get(fx, a).status, JOBQ_FAILED);
    jobq_msg_t m = {.cmd = JOBQ_CMD_RETRY};
    m.u.job.id = a;
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, a);
    //  Attempt numbers go on; the job has a fresh run of one attempt.
    assert_int_equal(attempt, 2);
    assert_int_equal(s_get(fx, a).max_attempts, 2);
    //  A running job cannot be retried.
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_non_null(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0));
}

static void
test_engine_cancel_pending_and_running(void **state)
{
    s_fx_t *fx = *state;
    uint64_t p = s_enqueue(fx, "other", 0, 0, 3);
    jobq_msg_t m = {.cmd = JOBQ_CMD_CANCEL};
    m.u.job.id = p;
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_get(fx, p).status, JOBQ_CANCELLED);
    //  Cancelling again is an error.
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_non_null(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0));

    uint64_t r = s_enqueue(fx, "noop", 0, 0, 3);
    uint64_t next = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    m.u.job.id = r;
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_get(fx, r).status, JOBQ_CANCELLED);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, "w1"),
                     1);
    //  The slot stays taken until the worker says it stopped.
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, "w1"), 0);
    s_result(fx, "w1", JOBQ_CMD_FAIL, r, 1, false);
    assert_int_equal(s_get(fx, r).status, JOBQ_CANCELLED);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, next);
}

static void
test_engine_idempotency_key_returns_the_same_job_within_window(void **state)
{
    s_fx_t *fx = *state;
    jobq_msg_t m;
    s_enqueue_msg(&m, "noop", 0, 0, 3, "order-17");
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    uint64_t first =
        s_reply_id(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0));
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(
        s_reply_id(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0)),
        first);
    //  Two in one turn: still one job.
    s_begin(fx);
    s_client(fx, &m);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(
        s_reply_id(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 1)),
        first);
    s_advance(fx, fx->cfg.idem_window_ms + 1);
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_true(s_reply_id(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1",
                                  0)) != first);
}

static void
test_engine_failed_commit_turns_replies_into_errors(void **state)
{
    s_fx_t *fx = *state;
    jobq_msg_t m;
    s_enqueue_msg(&m, "noop", 0, 0, 3, NULL);
    s_begin(fx);
    s_client(fx, &m);
    jobq_store_fail_next_commit(fx->store, JOBQ_ESTORAGE);
    assert_int_equal(s_end(fx), JOBQ_ESTORAGE);
    assert_null(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, NULL, 0));
    assert_non_null(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0));
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 0);
    //  Nothing was stored, and the next turn works.
    uint64_t id = s_enqueue(fx, "noop", 0, 0, 3);
    jobq_msg_t st = {.cmd = JOBQ_CMD_LIST};
    st.u.list.status = -1;
    st.u.list.limit = 10;
    s_begin(fx);
    s_client(fx, &st);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    jobq_bytes_t b = {o->body, o->len}, v;
    assert_int_equal(jobq_mp_map_find(b, "jobs", &v), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    uint32_t n;
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
    assert_int_equal(n, 1);
    assert_true(id != 0);
}

static void
test_engine_failed_commit_undoes_a_dispatch(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_READY;
    m.u.ready.types[0] = S("noop");
    m.u.ready.ntypes = 1;
    m.u.ready.capacity = 1;
    s_begin(fx);
    s_worker(fx, "w1", &m);
    jobq_store_fail_next_commit(fx->store, JOBQ_ESTORAGE);
    assert_int_equal(s_end(fx), JOBQ_ESTORAGE);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, NULL), 0);
    assert_int_equal(s_get(fx, a).status, JOBQ_PENDING);
    //  Next turn the job goes out: the slot was given back.
    s_idle(fx);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, a);
    assert_int_equal(attempt, 1);
}

static void
test_engine_delayed_job_waits_for_run_at(void **state)
{
    s_fx_t *fx = *state;
    s_ready(fx, "w1", "noop", 1);
    uint64_t a = s_enqueue(fx, "noop", 0, 5000, 3);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, NULL), 0);
    assert_true(jobq_engine_next_wakeup(fx->engine) <= fx->mono + 5000);
    jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
    for (int i = 0; i < 4; i++) {
        s_advance(fx, 1000);
        s_begin(fx);
        s_worker(fx, "w1", &hb);
        assert_int_equal(s_end(fx), JOBQ_OK);
        assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, NULL), 0);
    }
    s_advance(fx, 1001);
    s_begin(fx);
    s_worker(fx, "w1", &hb);
    assert_int_equal(s_end(fx), JOBQ_OK);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, a);
}

static void
test_engine_timeout_ends_the_attempt(void **state)
{
    s_fx_t *fx = *state;
    jobq_msg_t m;
    s_enqueue_msg(&m, "noop", 0, 0, 1, NULL);
    m.u.enqueue.timeout_ms = 2000;
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    uint64_t a =
        s_reply_id(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0));
    s_ready(fx, "w1", "noop", 1);
    jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
    s_advance(fx, 900);
    s_begin(fx);
    s_worker(fx, "w1", &hb);
    assert_int_equal(s_end(fx), JOBQ_OK);
    s_advance(fx, 900);
    s_begin(fx);
    s_worker(fx, "w1", &hb);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    s_advance(fx, 300);
    s_begin(fx);
    s_worker(fx, "w1", &hb);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_get(fx, a).status, JOBQ_FAILED);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, "w1"),
                     1);
}

static void
test_engine_restart_keeps_leases_for_a_returning_worker(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    uint64_t b = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    //  The broker restarts (the store is reopened, memory is new).
    s_close(fx);
    s_advance(fx, 100);
    s_open(fx);
    //  The worker's result (kept while the broker was down) arrives
    //  before it re-registers: the lease, recovered from the record, is
    //  its by name, so the result is taken and acknowledged, and the
    //  worker is asked to register.
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    assert_non_null(s_find(fx, JOBQ_ACT_WORKER, JOBQ_CMD_DISCONNECT, "w1", 0));
    assert_int_equal(s_acked(fx, "w1", a, 1), 1);
    assert_int_equal(s_get(fx, a).status, JOBQ_COMPLETED);
    //  Back, it gets the next job at once: its slot is free.
    s_ready(fx, "w1", "noop", 1);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, b);
    //  The same result again (its ACK was lost): answered, not taken twice.
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    assert_int_equal(s_acked(fx, "w1", a, 1), 0);
    assert_int_equal(s_get(fx, a).version, 3);  //  pending, running, done
}

static void
test_engine_restart_requeues_jobs_of_a_worker_that_never_returns(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    s_close(fx);
    s_advance(fx, 100);
    s_open(fx);
    s_advance(fx, fx->cfg.lease_ms + 1);
    s_idle(fx);
    jobq_jobdata_t j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_PENDING);
    assert_int_equal(j.attempts, 1);
}

static void
test_engine_unknown_job_and_bad_request_get_errors(void **state)
{
    s_fx_t *fx = *state;
    jobq_msg_t m = {.cmd = JOBQ_CMD_STATUS};
    m.u.job.id = 12345;
    s_begin(fx);
    s_client(fx, &m);
    jobq_engine_reject(fx->engine, JOBQ_ACT_CLIENT, JOBQ_REFUSED_BAD_REQUEST,
                       (const uint8_t *) "c2", 2, 7, JOBQ_EINVAL,
                       "field 'type': expected a string");
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0);
    assert_non_null(o);
    jobq_msg_t e;
    jobq_msg_why_t why;
    assert_int_equal(jobq_msg_decode(JOBQ_CMD_ERROR, o->body, o->len, &e, &why),
                     JOBQ_OK);
    assert_int_equal(e.u.error.code, JOBQ_ENOTFOUND);
    o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c2", 0);
    assert_non_null(o);
    assert_int_equal(jobq_msg_decode(JOBQ_CMD_ERROR, o->body, o->len, &e, &why),
                     JOBQ_OK);
    assert_int_equal(e.rid, 7);
    assert_int_equal(e.u.error.code, JOBQ_EINVAL);
}

//  The error code of the ERROR the last turn sent to client c1.
static int
s_error_code(s_fx_t *fx)
{
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0);
    if (!o)
        return JOBQ_OK;
    jobq_msg_t e;
    jobq_msg_why_t why;
    assert_int_equal(jobq_msg_decode(JOBQ_CMD_ERROR, o->body, o->len, &e, &why),
                     JOBQ_OK);
    return e.u.error.code;
}

//  Keyed requests (docs/PROTOCOL.md section 13): roles, shops, and another
//  shop's job read as no job at all.
static void
test_engine_keys_bound_roles_and_shops(void **state)
{
    s_fx_t *fx = *state;
    static const char file[] =
        "api client shop-1 0000000000000000000000000000000000000000\n"
        "other client shop-2 1111111111111111111111111111111111111111\n"
        "rd reader shop-1 2222222222222222222222222222222222222222\n"
        "w worker * 3333333333333333333333333333333333333333 types=a\n";
    jobq_keys_t *keys;
    char why[200];
    assert_int_equal(
        jobq_keys_parse(file, sizeof file - 1, &keys, why, sizeof why),
        JOBQ_OK);
    jobq_key_t *api =
        jobq_keys_find(keys, "0000000000000000000000000000000000000000", 40);
    jobq_key_t *other =
        jobq_keys_find(keys, "1111111111111111111111111111111111111111", 40);
    jobq_key_t *rd =
        jobq_keys_find(keys, "2222222222222222222222222222222222222222", 40);
    jobq_key_t *wk =
        jobq_keys_find(keys, "3333333333333333333333333333333333333333", 40);
    assert_non_null(api);
    jobq_msg_t m;
    s_enqueue_msg(&m, "a", 0, 0, 3, "k1");
    fx->who = api;
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    uint64_t id =
        s_reply_id(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0));
    //  Another shop's key: the job does not exist for it.
    fx->who = other;
    jobq_msg_t st = {.cmd = JOBQ_CMD_STATUS};
    st.u.job.id = id;
    int cmds[] = {JOBQ_CMD_STATUS, JOBQ_CMD_CANCEL, JOBQ_CMD_RETRY};
    for (int i = 0; i < 3; i++) {
        st.cmd = cmds[i];
        s_begin(fx);
        s_client(fx, &st);
        assert_int_equal(s_end(fx), JOBQ_OK);
        assert_int_equal(s_error_code(fx), JOBQ_ENOTFOUND);
    }
    //  Its key in shop-1: forbidden; the same key in its own shop: a job
    //  of its own.
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_error_code(fx), JOBQ_EFORBIDDEN);
    m.u.enqueue.shop = S("shop-2");
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_true(
        s_reply_id(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0)) != id);
    //  A reader reads, and may not cancel.
    fx->who = rd;
    st.cmd = JOBQ_CMD_STATUS;
    s_begin(fx);
    s_client(fx, &st);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_error_code(fx), JOBQ_OK);
    st.cmd = JOBQ_CMD_CANCEL;
    s_begin(fx);
    s_client(fx, &st);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_error_code(fx), JOBQ_EFORBIDDEN);
    //  A worker key may not send client commands.
    fx->who = wk;
    st.cmd = JOBQ_CMD_STATUS;
    s_begin(fx);
    s_client(fx, &st);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_error_code(fx), JOBQ_EFORBIDDEN);
    fx->who = NULL;
    jobq_keys_destroy(&keys);
}

//  LIST for a key of several shops: pages of its shops' jobs only, newest
//  first, and cursors that are ids of its own jobs, never another shop's
//  (which would tell when that shop made one).
static void
test_engine_keys_list_of_several_shops_looks_at_nothing_else(void **state)
{
    s_fx_t *fx = *state;
    static const char file[] =
        "two client s-a,s-b 0000000000000000000000000000000000000000\n";
    jobq_keys_t *keys;
    char why[200];
    assert_int_equal(
        jobq_keys_parse(file, sizeof file - 1, &keys, why, sizeof why),
        JOBQ_OK);
    //  Jobs in s-a, s-b and s-c, interleaved: 30 of them, 20 ours.
    static const char *const shops[3] = {"s-a", "s-c", "s-b"};
    uint64_t ours[30];
    size_t nours = 0;
    for (int i = 0; i < 30; i++) {
        jobq_msg_t m;
        s_enqueue_msg(&m, "noop", 0, 0, 3, NULL);
        m.u.enqueue.shop = S(shops[i % 3]);
        s_begin(fx);
        s_client(fx, &m);
        assert_int_equal(s_end(fx), JOBQ_OK);
        uint64_t id =
            s_reply_id(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0));
        if (i % 3 != 1)
            ours[nours++] = id;
    }
    fx->who = jobq_keys_at(keys, 0);
    uint64_t cursor = 0;
    size_t seen = 0;
    int pages = 0;
    do {
        jobq_msg_t lm = {.cmd = JOBQ_CMD_LIST};
        lm.u.list.status = -1;
        lm.u.list.limit = 7;
        lm.u.list.cursor = cursor;
        s_begin(fx);
        s_client(fx, &lm);
        assert_int_equal(s_end(fx), JOBQ_OK);
        const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
        assert_non_null(o);
        jobq_bytes_t b = {o->body, o->len}, v, item, idv;
        assert_int_equal(jobq_mp_map_find(b, "jobs", &v), JOBQ_OK);
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, v.ptr, v.len);
        uint32_t n;
        assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
        for (uint32_t k = 0; k < n; k++) {
            assert_int_equal(jobq_mp_skip(&r, &item), JOBQ_OK);
            assert_int_equal(jobq_mp_map_find(item, "id", &idv), JOBQ_OK);
            jobq_mp_reader_t ir;
            jobq_mp_reader_init(&ir, idv.ptr, idv.len);
            jobq_str_t s;
            uint64_t id;
            assert_int_equal(jobq_mp_read_str(&ir, &s), JOBQ_OK);
            assert_int_equal(jobq_id_parse(s.ptr, s.len, &id), JOBQ_OK);
            //  Newest first: ours counted down from the last.
            assert_true(seen < nours);
            assert_int_equal(id, ours[nours - 1 - seen]);
            seen++;
        }
        pages++;
        assert_int_equal(jobq_mp_map_find(b, "next", &v), JOBQ_OK);
        jobq_mp_reader_init(&r, v.ptr, v.len);
        cursor = 0;
        if (!jobq_mp_read_nil(&r)) {
            jobq_str_t next;
            assert_int_equal(jobq_mp_read_str(&r, &next), JOBQ_OK);
            assert_int_equal(jobq_id_parse(next.ptr, next.len, &cursor),
                             JOBQ_OK);
            bool own = false;
            for (size_t k = 0; k < nours; k++)
                own |= ours[k] + 1 == cursor;
            assert_true(own);
        }
    } while (cursor && pages < 10);
    assert_int_equal(seen, nours);
    fx->who = NULL;
    jobq_keys_destroy(&keys);
}

//  docs/PROTOCOL.md 3.3 and 8.7: every refused message is counted by cause,
//  and STATS shows every cause, zeros included, in a fixed order; the
//  last reason of each cause is kept for the broker's log.
static void
test_engine_refused_messages_are_counted_by_cause_in_stats(void **state)
{
    s_fx_t *fx = *state;
    s_close(fx);
    fx->cfg.max_workers = 1;
    s_open(fx);
    s_begin(fx);
    for (int i = 0; i < 3; i++)
        jobq_engine_reject(fx->engine, JOBQ_ACT_CLIENT,
                           JOBQ_REFUSED_BAD_REQUEST, (const uint8_t *) "c2", 2,
                           7, JOBQ_EINVAL, "field 'id': expected a job id");
    jobq_engine_reject(fx->engine, JOBQ_ACT_WORKER, JOBQ_REFUSED_TOO_LARGE,
                       (const uint8_t *) "w1", 2, 0, JOBQ_ETOOBIG,
                       "body: string too long");
    //  No routing id: counted, not answered.
    jobq_engine_reject(fx->engine, JOBQ_ACT_CLIENT, JOBQ_REFUSED_ENVELOPE, NULL,
                       0, 0, JOBQ_EINVAL, "bad routing id");
    jobq_engine_reject(fx->engine, JOBQ_ACT_CLIENT, JOBQ_REFUSED_VERSION,
                       (const uint8_t *) "c2", 2, 0, JOBQ_EVERSION,
                       "unsupported protocol version");
    //  A worker the broker does not know; a routing id with no name.
    jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
    s_worker(fx, "w9", &hb);
    jobq_msg_t r = {.cmd = JOBQ_CMD_READY};
    r.u.ready.types[0] = S("noop");
    r.u.ready.ntypes = 1;
    r.u.ready.capacity = 1;
    uint8_t unnamed[40];
    memset(unnamed, 0x01, sizeof unnamed);
    jobq_engine_worker(fx->engine, unnamed, sizeof unnamed, &r, NULL);
    //  One worker may register; the second is one too many.
    s_worker(fx, "w1", &r);
    s_worker(fx, "w2", &r);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_count(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c2"), 4);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_DISCONNECT, NULL),
                     4);
    const char *last =
        jobq_engine_refused_last(fx->engine, JOBQ_REFUSED_BAD_REQUEST);
    assert_non_null(strstr(last, "field 'id'"));
    assert_non_null(strstr(last, "from c2"));
    assert_non_null(strstr(
        jobq_engine_refused_last(fx->engine, JOBQ_REFUSED_UNKNOWN_WORKER),
        "HEARTBEAT before READY (from w9)"));

    jobq_msg_t sm = {.cmd = JOBQ_CMD_STATS};
    s_begin(fx);
    s_client(fx, &sm);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(o);
    jobq_bytes_t b = {o->body, o->len}, refused;
    assert_int_equal(jobq_mp_map_find(b, "refused", &refused), JOBQ_OK);
    static const struct {
        const char *cause;  //  key
        uint64_t n;         //  expected count
    } want[] = {
        {"envelope", 1},       {"version", 1},     {"unknown_command", 0},
        {"wrong_socket", 0},   {"bad_request", 3}, {"too_large", 1},
        {"unknown_worker", 1}, {"worker_name", 1}, {"too_many_workers", 1},
        {"forbidden", 0},      {"rate_limited", 0}};
    jobq_mp_reader_t rd;
    jobq_mp_reader_init(&rd, refused.ptr, refused.len);
    uint32_t n;
    assert_int_equal(jobq_mp_read_map(&rd, &n), JOBQ_OK);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t k;
        uint64_t v;
        assert_int_equal(jobq_mp_read_str(&rd, &k), JOBQ_OK);
        assert_int_equal(jobq_mp_read_uint(&rd, &v), JOBQ_OK);
        if (k.len != strlen(want[i].cause) ||
            memcmp(k.ptr, want[i].cause, k.len) != 0 || v != want[i].n)
            fail_msg("entry %u: %.*s = %llu, want %s = %llu", i, (int) k.len,
                     k.ptr, (unsigned long long) v, want[i].cause,
                     (unsigned long long) want[i].n);
    }
    jobq_engine_stats_t st;
    jobq_engine_get_stats(fx->engine, &st);
    assert_int_equal(st.refused[JOBQ_REFUSED_BAD_REQUEST], 3);
}

//  docs/PROTOCOL.md 8.7: STATS tells how long each type's oldest ready job
//  has waited (delayed ones do not count), when each worker was last
//  heard from, and how long commits took.
static void
test_engine_stats_tell_waits_silences_and_commit_times(void **state)
{
    s_fx_t *fx = *state;
    jobq_msg_t m;
    s_begin(fx);
    s_enqueue_msg(&m, "noop", 0, 0, 3, NULL);
    s_client(fx, &m);
    s_enqueue_msg(&m, "late", 0, 60000, 3, NULL);  //  delayed only
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    s_advance(fx, 2500);
    s_begin(fx);
    s_enqueue_msg(&m, "noop", 9, 0, 3, NULL);  //  younger, runs first
    s_client(fx, &m);
    jobq_msg_t r = {.cmd = JOBQ_CMD_READY};
    r.u.ready.types[0] = S("other");
    r.u.ready.ntypes = 1;
    r.u.ready.capacity = 2;
    s_worker(fx, "w1", &r);
    assert_int_equal(s_end(fx), JOBQ_OK);
    jobq_engine_note_commit(fx->engine, 90);       //  first bucket
    jobq_engine_note_commit(fx->engine, 3000);     //  <= 5000
    jobq_engine_note_commit(fx->engine, 5000000);  //  past the last
    s_advance(fx, 700);
    jobq_msg_t sm = {.cmd = JOBQ_CMD_STATS};
    s_begin(fx);
    s_client(fx, &sm);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(o);
    jobq_bytes_t b = {o->body, o->len}, v;
    assert_int_equal(jobq_mp_map_find(b, "oldest", &v), JOBQ_OK);
    jobq_mp_reader_t rd;
    jobq_mp_reader_init(&rd, v.ptr, v.len);
    uint32_t n;
    jobq_str_t k;
    uint64_t u;
    assert_int_equal(jobq_mp_read_map(&rd, &n), JOBQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(jobq_mp_read_str(&rd, &k), JOBQ_OK);
    assert_int_equal(k.len, 4);
    assert_memory_equal(k.ptr, "noop", 4);
    assert_int_equal(jobq_mp_read_uint(&rd, &u), JOBQ_OK);
    assert_int_equal(u, 3200);
    //  The worker: heard 700 ms ago.
    assert_int_equal(jobq_mp_map_find(b, "workers", &v), JOBQ_OK);
    jobq_mp_reader_init(&rd, v.ptr, v.len);
    assert_int_equal(jobq_mp_read_array(&rd, &n), JOBQ_OK);
    assert_int_equal(n, 1);
    jobq_bytes_t wk = {rd.p, (size_t) (rd.end - rd.p)}, seen;
    assert_int_equal(jobq_mp_map_find(wk, "seen_ms", &seen), JOBQ_OK);
    jobq_mp_reader_init(&rd, seen.ptr, seen.len);
    assert_int_equal(jobq_mp_read_uint(&rd, &u), JOBQ_OK);
    assert_int_equal(u, 700);
    //  The histogram: 13 bounds, 14 counts, and the sum.
    assert_int_equal(jobq_mp_map_find(b, "commit_us", &v), JOBQ_OK);
    jobq_bytes_t counts, sum;
    assert_int_equal(jobq_mp_map_find(v, "counts", &counts), JOBQ_OK);
    assert_int_equal(jobq_mp_map_find(v, "sum", &sum), JOBQ_OK);
    jobq_mp_reader_init(&rd, counts.ptr, counts.len);
    assert_int_equal(jobq_mp_read_array(&rd, &n), JOBQ_OK);
    assert_int_equal(n, JOBQ_COMMIT_BUCKETS + 1);
    uint64_t want[JOBQ_COMMIT_BUCKETS + 1] = {0};
    want[0] = 1;
    want[5] = 1;
    want[JOBQ_COMMIT_BUCKETS] = 1;
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(jobq_mp_read_uint(&rd, &u), JOBQ_OK);
        //  The test's own commits are not timed: only these three count.
        assert_int_equal(u, want[i]);
    }
    jobq_mp_reader_init(&rd, sum.ptr, sum.len);
    assert_int_equal(jobq_mp_read_uint(&rd, &u), JOBQ_OK);
    assert_int_equal(u, 90 + 3000 + 5000000);
}

static void
test_engine_draining_refuses_new_jobs(void **state)
{
    s_fx_t *fx = *state;
    jobq_engine_drain(fx->engine);
    jobq_msg_t m;
    s_enqueue_msg(&m, "noop", 0, 0, 3, NULL);
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_non_null(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0));
}


static void
s_cancel(s_fx_t *fx, uint64_t id, int want_rc)
{
    jobq_msg_t m = {.cmd = JOBQ_CMD_CANCEL};
    m.u.job.id = id;
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), want_rc);
}

static void
s_retry(s_fx_t *fx, uint64_t id)
{
    jobq_msg_t m = {.cmd = JOBQ_CMD_RETRY};
    m.u.job.id = id;
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_non_null(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0));
}

//  Cancelled while running, retried before the worker stopped, and run
//  again on the same worker: the new run is attempt 2, the stopping
//  attempt 1 cannot touch it, and there is one lease, not two.
static void
test_engine_retry_while_the_cancelled_attempt_stops(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 1);
    s_ready(fx, "w1", "noop", 2);
    s_cancel(fx, a, JOBQ_OK);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, "w1"),
                     1);
    s_retry(fx, a);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, a);
    assert_int_equal(attempt, 2);
    //  Attempt 1 says it stopped, and reports progress late: fenced.
    s_result(fx, "w1", JOBQ_CMD_FAIL, a, 1, false);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    jobq_jobdata_t j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_RUNNING);
    assert_int_equal(j.attempts, 2);
    //  One more job fits: w1 holds one lease now, not two.
    uint64_t b = s_enqueue(fx, "noop", 0, 0, 1);
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, b);
    //  Attempt 2 fails: its run had one attempt, so it fails for good.
    s_result(fx, "w1", JOBQ_CMD_FAIL, a, 2, false);
    j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_FAILED);
    assert_int_equal(j.attempts, 2);
}

//  A cancel of a running job whose turn fails to commit sends no
//  CANCEL_JOB, and the attempt goes on as if nothing happened.
static void
test_engine_failed_commit_of_a_cancel_keeps_the_job_running(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    jobq_msg_t m = {.cmd = JOBQ_CMD_CANCEL};
    m.u.job.id = a;
    s_begin(fx);
    s_client(fx, &m);
    jobq_store_fail_next_commit(fx->store, JOBQ_ESTORAGE);
    assert_int_equal(s_end(fx), JOBQ_ESTORAGE);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, NULL),
                     0);
    assert_non_null(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0));
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    //  Progress is still taken, and the result completes the job.
    s_result(fx, "w1", JOBQ_CMD_PROGRESS, a, 1, false);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, NULL),
                     0);
    assert_int_equal(s_get(fx, a).progress, 50);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    assert_int_equal(s_get(fx, a).status, JOBQ_COMPLETED);
}

//  The errors of every attempt are kept, but no more than the newest
//  JOBQ_MAX_ATTEMPTS: RETRY can add attempts without end.
static void
test_engine_kept_errors_are_bounded(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 1);
    s_ready(fx, "w1", "noop", 1);
    uint32_t last = 0;
    for (uint32_t k = 1; k <= JOBQ_MAX_ATTEMPTS + 5; k++) {
        uint64_t id = 0;
        uint32_t attempt = 0;
        assert_true(s_job_for(fx, "w1", &id, &attempt));
        assert_int_equal(attempt, k);
        s_result(fx, "w1", JOBQ_CMD_FAIL, a, k, false);
        s_retry(fx, a);
        last = attempt;
    }
    jobq_jobdata_t j;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    assert_int_equal(jobq_store_get(fx->store, a, &j), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, j.errors.ptr, j.errors.len);
    uint32_t n;
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
    assert_int_equal(n, JOBQ_MAX_ATTEMPTS);
    //  The oldest were dropped: the first kept is attempt 6.
    jobq_bytes_t first, v;
    assert_int_equal(jobq_mp_skip(&r, &first), JOBQ_OK);
    assert_int_equal(jobq_mp_map_find(first, "attempt", &v), JOBQ_OK);
    jobq_mp_reader_init(&r, v.ptr, v.len);
    uint64_t att;
    assert_int_equal(jobq_mp_read_uint(&r, &att), JOBQ_OK);
    assert_int_equal(att, last - JOBQ_MAX_ATTEMPTS + 1);
    jobq_store_abort(fx->store);
}

//  A write transaction on database name of the store's environment, with
//  LMDB itself: the store must be closed (one environment per process).
//  s_raw_done commits it and closes the environment.
static MDB_env *
s_raw_begin(s_fx_t *fx, const char *name, MDB_txn **txn, MDB_dbi *dbi)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, fx->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, txn), 0);
    assert_int_equal(mdb_dbi_open(*txn, name, 0, dbi), 0);
    return env;
}

static void
s_raw_done(MDB_env *env, MDB_txn *txn)
{
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

//  Damage the stored record of job id (close the store, flip a byte of it
//  with LMDB itself, open again).
static void
s_damage(s_fx_t *fx, uint64_t id)
{
    s_close(fx);
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_env *env = s_raw_begin(fx, "jobs", &txn, &dbi);
    uint8_t k[8];
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t) (id >> (56 - 8 * i));
    MDB_val key = {8, k}, val;
    assert_int_equal(mdb_get(txn, dbi, &key, &val), 0);
    uint8_t *copy = malloc(val.mv_size);
    memcpy(copy, val.mv_data, val.mv_size);
    copy[val.mv_size / 2] ^= 0x40;
    MDB_val nv = {val.mv_size, copy};
    assert_int_equal(mdb_put(txn, dbi, &key, &nv, 0), 0);
    s_raw_done(env, txn);
    free(copy);
    s_open(fx);
}

//  A queued job whose record cannot be read is taken out of its queue,
//  and the jobs behind it, ready or delayed, still run.
static void
test_engine_unreadable_queued_job_does_not_block_the_queue(void **state)
{
    s_fx_t *fx = *state;
    uint64_t bad = s_enqueue(fx, "noop", 5, 0, 3);
    uint64_t good = s_enqueue(fx, "noop", 0, 0, 3);
    uint64_t dbad = s_enqueue(fx, "noop", 0, 1000, 3);
    uint64_t dgood = s_enqueue(fx, "noop", 0, 2000, 3);
    s_damage(fx, bad);
    s_damage(fx, dbad);
    s_ready(fx, "w1", "noop", 4);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, good);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, "w1"), 1);
    s_advance(fx, 2500);
    s_idle(fx);
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, dgood);
    jobq_engine_stats_t st;
    jobq_engine_get_stats(fx->engine, &st);
    assert_int_equal(st.unreadable, 2);
    //  STATUS of the damaged job says why.
    jobq_msg_t m = {.cmd = JOBQ_CMD_STATUS};
    m.u.job.id = bad;
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0);
    assert_non_null(o);
    jobq_bytes_t b = {o->body, o->len}, v;
    assert_int_equal(jobq_mp_map_find(b, "code", &v), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    jobq_str_t code;
    assert_int_equal(jobq_mp_read_str(&r, &code), JOBQ_OK);
    assert_true(code.len == 8 && memcmp(code.ptr, "internal", 8) == 0);
}

typedef struct {
    uint64_t id[1024];  //  ids seen
    size_t n;           //  entries used
} s_ids_t;

static int
s_collect(void *arg, const jobq_jobdata_t *j)
{
    s_ids_t *ids = arg;
    if (ids->n < sizeof ids->id / sizeof ids->id[0])
        ids->id[ids->n++] = j->id;
    return 0;
}

//  A LIST page never outgrows one frame: large jobs make a shorter page,
//  and its cursor starts the next page with the first job left out.
static void
test_engine_list_page_fits_in_a_frame(void **state)
{
    s_fx_t *fx = *state;
    enum { N = 600 };
    static char big[JOBQ_MAX_ERROR_LEN];
    memset(big, 'e', sizeof big);
    jobq_msg_t m;
    s_begin(fx);
    for (int i = 0; i < N; i++) {
        s_enqueue_msg(&m, "noop", 0, 0, 1, NULL);
        s_client(fx, &m);
    }
    assert_int_equal(s_end(fx), JOBQ_OK);
    jobq_msg_t rd;
    memset(&rd, 0, sizeof rd);
    rd.cmd = JOBQ_CMD_READY;
    rd.u.ready.types[0] = S("noop");
    rd.u.ready.ntypes = 1;
    rd.u.ready.capacity = JOBQ_MAX_CAPACITY;
    s_begin(fx);
    s_worker(fx, "w1", &rd);
    assert_int_equal(s_end(fx), JOBQ_OK);
    while (s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, "w1") > 0)
        s_idle(fx);
    //  Every job fails for good with the longest error there is.
    s_ids_t ids = {.n = 0};
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    assert_int_equal(
        jobq_store_scan_status(fx->store, JOBQ_RUNNING, s_collect, &ids),
        JOBQ_OK);
    jobq_store_abort(fx->store);
    assert_int_equal(ids.n, N);
    s_begin(fx);
    for (int i = 0; i < N; i++) {
        jobq_msg_t f;
        memset(&f, 0, sizeof f);
        f.cmd = JOBQ_CMD_FAIL;
        f.u.fail.id = ids.id[i];
        f.u.fail.attempt = 1;
        f.u.fail.error = (jobq_str_t){big, sizeof big};
        f.u.fail.permanent = true;
        s_worker(fx, "w1", &f);
    }
    assert_int_equal(s_end(fx), JOBQ_OK);
    //  Page through them all.
    uint64_t cursor = 0, seen = 0;
    int pages = 0;
    do {
        jobq_msg_t lm = {.cmd = JOBQ_CMD_LIST};
        lm.u.list.status = JOBQ_FAILED;
        lm.u.list.limit = JOBQ_MAX_LIST;
        lm.u.list.cursor = cursor;
        s_begin(fx);
        s_client(fx, &lm);
        assert_int_equal(s_end(fx), JOBQ_OK);
        jobq_action_t act;
        assert_int_equal(jobq_engine_action_count(fx->engine), 1);
        jobq_engine_action(fx->engine, 0, &act);
        assert_int_equal(act.cmd, JOBQ_CMD_REPLY);
        assert_true(act.body_len <= JOBQ_MAX_FRAME_BYTES);
        jobq_msg_t rep;
        jobq_msg_why_t why;
        assert_int_equal(
            jobq_msg_decode(JOBQ_CMD_REPLY, act.body, act.body_len, &rep, &why),
            JOBQ_OK);
        jobq_bytes_t b = {act.body, act.body_len}, v;
        assert_int_equal(jobq_mp_map_find(b, "jobs", &v), JOBQ_OK);
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, v.ptr, v.len);
        uint32_t n;
        assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
        assert_true(n > 0 && n < N);
        seen += n;
        pages++;
        assert_int_equal(jobq_mp_map_find(b, "next", &v), JOBQ_OK);
        jobq_mp_reader_init(&r, v.ptr, v.len);
        jobq_str_t next;
        cursor = 0;
        if (!jobq_mp_read_nil(&r)) {
            assert_int_equal(jobq_mp_read_str(&r, &next), JOBQ_OK);
            assert_int_equal(jobq_id_parse(next.ptr, next.len, &cursor),
                             JOBQ_OK);
        }
    } while (cursor && pages < 10);
    assert_int_equal(seen, N);
    assert_true(pages >= 2);
}

//  One LIST page for type: its job count into *n, and its `next` cursor
//  (0 for nil).
static uint64_t
s_list_type(s_fx_t *fx, const char *type, uint64_t cursor, uint32_t *n)
{
    jobq_msg_t lm = {.cmd = JOBQ_CMD_LIST};
    lm.u.list.status = -1;
    lm.u.list.type = S(type);
    lm.u.list.limit = 10;
    lm.u.list.cursor = cursor;
    s_begin(fx);
    s_client(fx, &lm);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(o);
    jobq_bytes_t b = {o->body, o->len}, v;
    assert_int_equal(jobq_mp_map_find(b, "jobs", &v), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    assert_int_equal(jobq_mp_read_array(&r, n), JOBQ_OK);
    assert_int_equal(jobq_mp_map_find(b, "next", &v), JOBQ_OK);
    jobq_mp_reader_init(&r, v.ptr, v.len);
    if (jobq_mp_read_nil(&r))
        return 0;
    jobq_str_t next;
    uint64_t id = 0;
    assert_int_equal(jobq_mp_read_str(&r, &next), JOBQ_OK);
    assert_int_equal(jobq_id_parse(next.ptr, next.len, &id), JOBQ_OK);
    return id;
}

//  PROTOCOL 8.6: a type-only LIST walks every job, so past the examine
//  bound it returns an empty page with a cursor, and the next page has the
//  match.
static void
test_engine_type_only_list_can_return_an_empty_page_with_a_cursor(void **state)
{
    s_fx_t *fx = *state;
    s_close(fx);
    fx->cfg.list_examine = 5;
    s_open(fx);
    s_enqueue(fx, "report", 0, 0, 1);
    for (int i = 0; i < 8; i++)
        s_enqueue(fx, "noop", 0, 0, 1);
    uint32_t n;
    uint64_t next = s_list_type(fx, "report", 0, &n);
    assert_int_equal(n, 0);
    assert_true(next != 0);
    next = s_list_type(fx, "report", next, &n);
    assert_int_equal(n, 1);
    assert_int_equal(next, 0);
}

//  A printable routing id that looks like a hex name and the binary id it
//  spells are two workers, not one.
static void
test_engine_worker_names_never_collide(void **state)
{
    s_fx_t *fx = *state;
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_READY;
    m.u.ready.types[0] = S("noop");
    m.u.ready.ntypes = 1;
    m.u.ready.capacity = 1;
    static const uint8_t bin[] = {0x01, 0x02};
    s_begin(fx);
    jobq_engine_worker(fx->engine, (const uint8_t *) "0x0102", 6, &m, NULL);
    jobq_engine_worker(fx->engine, bin, sizeof bin, &m, NULL);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(jobq_engine_worker_count(fx->engine), 2);
    //  Each gets its own job.
    s_enqueue(fx, "noop", 0, 0, 3);
    s_enqueue(fx, "noop", 0, 0, 3);
    s_idle(fx);
    jobq_engine_stats_t st;
    jobq_engine_get_stats(fx->engine, &st);
    assert_int_equal(st.dispatched, 2);
}

//  An ENQUEUE_BATCH body of n noop jobs; job i gets key keys[i] if given.
static void
s_batch_msg(jobq_msg_t *m,
            jobq_mp_writer_t *w,
            uint32_t n,
            const char *const *keys)
{
    static const uint8_t empty[] = {0x80};
    jobq_mp_writer_reset(w);
    jobq_mp_write_array(w, n);
    for (uint32_t i = 0; i < n; i++) {
        jobq_msg_t one;
        memset(&one, 0, sizeof one);
        one.u.enqueue.type = S("noop");
        one.u.enqueue.shop = S("shop-1");
        one.u.enqueue.input = (jobq_bytes_t){empty, 1};
        one.u.enqueue.max_attempts = 3;
        if (keys && keys[i])
            one.u.enqueue.key = S(keys[i]);
        jobq_msg_write_batch_entry(w, &one);
    }
    //  Decode the encoded request, as the broker would.
    jobq_msg_t req;
    memset(&req, 0, sizeof req);
    req.cmd = JOBQ_CMD_ENQUEUE_BATCH;
    req.rid = 77;
    req.u.batch.jobs = (jobq_bytes_t){w->data, w->len};
    req.u.batch.count = n;
    static jobq_mp_writer_t body;
    static bool init;
    if (!init) {
        jobq_mp_writer_init(&body, JOBQ_MAX_FRAME_BYTES);
        init = true;
    }
    jobq_mp_writer_reset(&body);
    jobq_msg_encode(&req, &body);
    jobq_msg_why_t why;
    int rc =
        jobq_msg_decode(JOBQ_CMD_ENQUEUE_BATCH, body.data, body.len, m, &why);
    if (rc != JOBQ_OK)
        fail_msg("batch decode: %s", why.text);
}

//  A batch is one commit: all its jobs, their ids in order, a repeated key
//  naming the first job; and after a failed commit, none of them.
static void
test_engine_batch_enqueue_is_all_or_nothing(void **state)
{
    s_fx_t *fx = *state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, JOBQ_MAX_FRAME_BYTES);
    const char *keys[] = {NULL, "k-1", NULL, "k-1"};
    jobq_msg_t m;
    s_batch_msg(&m, &w, 4, keys);
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(o);
    jobq_bytes_t b = {o->body, o->len}, v;
    assert_int_equal(jobq_mp_map_find(b, "ids", &v), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    uint32_t n;
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
    assert_int_equal(n, 4);
    uint64_t ids[4];
    for (int i = 0; i < 4; i++) {
        jobq_str_t s;
        assert_int_equal(jobq_mp_read_str(&r, &s), JOBQ_OK);
        assert_int_equal(jobq_id_parse(s.ptr, s.len, &ids[i]), JOBQ_OK);
    }
    assert_true(ids[0] < ids[1] && ids[1] < ids[2]);
    assert_true(ids[3] == ids[1]);  //  the same key, the same job
    assert_int_equal(jobq_mp_map_find(b, "created", &v), JOBQ_OK);
    jobq_mp_reader_init(&r, v.ptr, v.len);
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
    bool created[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(jobq_mp_read_bool(&r, &created[i]), JOBQ_OK);
    assert_true(created[0] && created[1] && created[2] && !created[3]);
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s_get(fx, ids[i]).status, JOBQ_PENDING);

    //  A batch whose commit fails: an ERROR, no events, no jobs.
    s_batch_msg(&m, &w, 5, NULL);
    s_begin(fx);
    s_client(fx, &m);
    jobq_store_fail_next_commit(fx->store, JOBQ_ESTORAGE);
    assert_int_equal(s_end(fx), JOBQ_ESTORAGE);
    assert_non_null(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0));
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 0);
    jobq_engine_stats_t st;
    jobq_engine_get_stats(fx->engine, &st);
    jobq_msg_t lm = {.cmd = JOBQ_CMD_LIST};
    lm.u.list.status = -1;
    lm.u.list.limit = 100;
    s_begin(fx);
    s_client(fx, &lm);
    assert_int_equal(s_end(fx), JOBQ_OK);
    o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    b = (jobq_bytes_t){o->body, o->len};
    assert_int_equal(jobq_mp_map_find(b, "jobs", &v), JOBQ_OK);
    jobq_mp_reader_init(&r, v.ptr, v.len);
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
    assert_int_equal(n, 3);
    jobq_mp_writer_fini(&w);
}

//  A job the worker hands back unstarted (released) is pending again at
//  once, and that attempt does not count: with max_attempts 1 it still
//  runs. A worker that says capacity 0 (draining) gets no jobs.
static void
test_engine_released_attempt_does_not_count(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 1);
    s_ready(fx, "w1", "noop", 1);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    jobq_msg_t f;
    memset(&f, 0, sizeof f);
    f.cmd = JOBQ_CMD_FAIL;
    f.u.fail.id = a;
    f.u.fail.attempt = 1;
    f.u.fail.error = S("worker shutting down");
    f.u.fail.released = true;
    jobq_msg_t drain;
    memset(&drain, 0, sizeof drain);
    drain.cmd = JOBQ_CMD_READY;
    drain.u.ready.types[0] = S("noop");
    drain.u.ready.ntypes = 1;
    drain.u.ready.capacity = 0;
    s_begin(fx);
    s_worker(fx, "w1", &drain);
    s_worker(fx, "w1", &f);
    assert_int_equal(s_end(fx), JOBQ_OK);
    jobq_jobdata_t j = s_get(fx, a);
    assert_int_equal(j.status, JOBQ_PENDING);
    assert_int_equal(j.attempts, 1);
    assert_int_equal(j.max_attempts, 2);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, NULL), 0);
    //  Another worker runs it as attempt 2, its only counted attempt.
    s_ready(fx, "w2", "noop", 1);
    assert_true(s_job_for(fx, "w2", &id, &attempt));
    assert_int_equal(id, a);
    assert_int_equal(attempt, 2);
    s_result(fx, "w2", JOBQ_CMD_FAIL, a, 2, false);
    assert_int_equal(s_get(fx, a).status, JOBQ_FAILED);
}

//  Enqueue with key in shop, in a turn of its own: the id; *created.
static uint64_t
s_enqueue_shop_key(s_fx_t *fx, const char *shop, const char *key, bool *created)
{
    jobq_msg_t m;
    s_enqueue_msg(&m, "noop", 0, 0, 3, key);
    m.u.enqueue.shop = S(shop);
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(o);
    jobq_bytes_t b = {o->body, o->len}, v;
    assert_int_equal(jobq_mp_map_find(b, "created", &v), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    assert_int_equal(jobq_mp_read_bool(&r, created), JOBQ_OK);
    return s_reply_id(o);
}

//  The same in shop-1.
static uint64_t
s_enqueue_key(s_fx_t *fx, const char *key, bool *created)
{
    return s_enqueue_shop_key(fx, "shop-1", key, created);
}

//  Idempotency keys are per shop: the same key in another shop makes a job
//  of its own (an outside audit saw shop B's key return shop A's job, and
//  B's job never made). A key stored before keys were per shop still
//  answers for its own shop, and only for it.
static void
test_engine_idempotency_keys_are_per_shop(void **state)
{
    s_fx_t *fx = *state;
    bool created;
    uint64_t a = s_enqueue_shop_key(fx, "shop-a", "order-7", &created);
    assert_true(created);
    uint64_t b = s_enqueue_shop_key(fx, "shop-b", "order-7", &created);
    assert_true(created);
    assert_true(a != b);
    assert_int_equal(s_enqueue_shop_key(fx, "shop-a", "order-7", &created), a);
    assert_false(created);
    assert_int_equal(s_enqueue_shop_key(fx, "shop-b", "order-7", &created), b);
    assert_false(created);
    //  A key as an older broker stored it: the key alone, naming a job of
    //  shop-a.
    uint64_t old = s_enqueue_shop_key(fx, "shop-a", "seed", &created);
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    assert_int_equal(
        jobq_store_idem_put(fx->store, S("legacy-1"), old, fx->wall), JOBQ_OK);
    assert_int_equal(jobq_store_commit(fx->store), JOBQ_OK);
    assert_int_equal(s_enqueue_shop_key(fx, "shop-a", "legacy-1", &created),
                     old);
    assert_false(created);
    assert_true(s_enqueue_shop_key(fx, "shop-b", "legacy-1", &created) != old);
    assert_true(created);
    //  A key with a zero byte cannot reach another shop's stored form.
    jobq_msg_t m;
    s_enqueue_msg(&m, "noop", 0, 0, 3, NULL);
    m.u.enqueue.shop = S("shop-b");
    m.u.enqueue.key = (jobq_str_t){"shop-a\0order-7", 14};
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(o);
    assert_true(s_reply_id(o) != a);
}

//  Heartbeats of w1 for that many seconds, one turn a second.
static void
s_heartbeats(s_fx_t *fx, int seconds)
{
    jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
    for (int i = 0; i < seconds; i++) {
        s_advance(fx, 1000);
        s_begin(fx);
        s_worker(fx, "w1", &hb);
        assert_int_equal(s_end(fx), JOBQ_OK);
    }
}

//  PROTOCOL 6, Retention: a deleted job takes its idempotency key with it,
//  so the key makes a new job instead of naming an id STATUS calls unknown;
//  a key taken again by a newer job after its window keeps that job.
static void
test_engine_retention_deletes_the_jobs_idempotency_key(void **state)
{
    s_fx_t *fx = *state;
    s_close(fx);
    fx->cfg.retain_ms = 4000;
    fx->cfg.idem_window_ms = 6000;
    s_open(fx);
    bool created;
    uint64_t a = s_enqueue_key(fx, "order-1", &created);
    assert_true(created);
    uint64_t b = s_enqueue_key(fx, "order-2", &created);
    assert_true(created);
    s_ready(fx, "w1", "noop", 2);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, a, 1, false);
    //  a is deleted 4 s after it ended, while its key is in its window.
    s_heartbeats(fx, 5);
    jobq_engine_stats_t st;
    jobq_engine_get_stats(fx->engine, &st);
    assert_int_equal(st.removed, 1);
    uint64_t a2 = s_enqueue_key(fx, "order-1", &created);
    assert_true(created);
    assert_true(a2 != a);
    //  order-2 passes its window while b still runs, and is taken again.
    s_heartbeats(fx, 2);
    uint64_t b2 = s_enqueue_key(fx, "order-2", &created);
    assert_true(created);
    assert_true(b2 != b);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, b, 1, false);
    //  b is deleted; order-2 still names b2, 5 s old.
    s_heartbeats(fx, 5);
    jobq_engine_get_stats(fx->engine, &st);
    assert_int_equal(st.removed, 2);
    assert_int_equal(s_enqueue_key(fx, "order-2", &created), b2);
    assert_false(created);
}

//  Ended jobs are deleted retain_ms after they end, with their indexes and
//  counts; pending and running jobs stay whatever their age.
static void
test_engine_ended_jobs_are_deleted_after_retention(void **state)
{
    s_fx_t *fx = *state;
    s_close(fx);
    fx->cfg.retain_ms = 10000;
    s_open(fx);
    uint64_t done = s_enqueue(fx, "noop", 0, 0, 3);
    uint64_t waiting = s_enqueue(fx, "other", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, done, 1, false);
    jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
    for (int i = 0; i < 9; i++) {
        s_advance(fx, 1000);
        s_begin(fx);
        s_worker(fx, "w1", &hb);
        assert_int_equal(s_end(fx), JOBQ_OK);
    }
    assert_int_equal(s_get(fx, done).status, JOBQ_COMPLETED);
    for (int i = 0; i < 3; i++) {
        s_advance(fx, 1000);
        s_begin(fx);
        s_worker(fx, "w1", &hb);
        assert_int_equal(s_end(fx), JOBQ_OK);
    }
    jobq_msg_t m = {.cmd = JOBQ_CMD_STATUS};
    m.u.job.id = done;
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_non_null(s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0));
    assert_int_equal(s_get(fx, waiting).status, JOBQ_PENDING);
    jobq_engine_stats_t st;
    jobq_engine_get_stats(fx->engine, &st);
    assert_int_equal(st.removed, 1);
    //  No index or count still names it.
    jobq_msg_t lm = {.cmd = JOBQ_CMD_LIST};
    lm.u.list.status = -1;
    lm.u.list.limit = 100;
    lm.u.list.shop = S("shop-1");
    s_begin(fx);
    s_client(fx, &lm);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    jobq_bytes_t b = {o->body, o->len}, v;
    assert_int_equal(jobq_mp_map_find(b, "jobs", &v), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    uint32_t n;
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
    assert_int_equal(n, 1);
    jobq_msg_t sm = {.cmd = JOBQ_CMD_STATS};
    s_begin(fx);
    s_client(fx, &sm);
    assert_int_equal(s_end(fx), JOBQ_OK);
    o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    b = (jobq_bytes_t){o->body, o->len};
    jobq_bytes_t totals;
    assert_int_equal(jobq_mp_map_find(b, "totals", &totals), JOBQ_OK);
    assert_int_equal(jobq_mp_map_find(totals, "completed", &v), JOBQ_OK);
    jobq_mp_reader_init(&r, v.ptr, v.len);
    uint64_t completed = 99;
    assert_int_equal(jobq_mp_read_uint(&r, &completed), JOBQ_OK);
    assert_int_equal(completed, 0);
}

//  The early flag of the JOB to w among the actions of the open turn.
static int
s_early_job(s_fx_t *fx, const char *w, uint64_t *id)
{
    size_t n = jobq_engine_action_count(fx->engine);
    for (size_t i = 0; i < n; i++) {
        jobq_action_t a;
        jobq_engine_action(fx->engine, i, &a);
        if (a.kind == JOBQ_ACT_WORKER && a.cmd == JOBQ_CMD_JOB &&
            a.peer_len == strlen(w) && memcmp(a.peer, w, a.peer_len) == 0) {
            jobq_msg_t m;
            jobq_msg_why_t why;
            assert_int_equal(
                jobq_msg_decode(JOBQ_CMD_JOB, a.body, a.body_len, &m, &why),
                JOBQ_OK);
            *id = m.u.dispatch.id;
            return a.early;
        }
    }
    return -1;  //  no JOB for w
}

static void
test_engine_new_job_goes_out_early_and_a_lost_turn_cancels_it(void **state)
{
    s_fx_t *fx = *state;
    //  Made before any worker: its JOB waits for the commit.
    uint64_t old = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, old);
    for (int i = 0; i < fx->nout; i++)
        assert_false(fx->out[i].early);
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, old, 1, false);
    //  Made in the same turn as its dispatch: early.
    jobq_msg_t m;
    s_enqueue_msg(&m, "noop", 0, 0, 3, NULL);
    s_begin(fx);
    s_client(fx, &m);
    jobq_engine_tick(fx->engine);
    uint64_t lost = 0;
    assert_int_equal(s_early_job(fx, "w1", &lost), 1);
    //  The turn is lost: the worker is told to stop, the client gets an
    //  error, and the id is never handed out again.
    jobq_store_fail_next_commit(fx->store, JOBQ_ESTORAGE);
    fx->commit_rc = jobq_engine_commit(fx->engine);
    assert_int_equal(fx->commit_rc, JOBQ_ESTORAGE);
    size_t n = jobq_engine_action_count(fx->engine);
    bool cancelled = false, erred = false;
    for (size_t i = 0; i < n; i++) {
        jobq_action_t a;
        jobq_engine_action(fx->engine, i, &a);
        assert_false(a.early);
        assert_true(a.cmd != JOBQ_CMD_JOB && a.cmd != JOBQ_CMD_REPLY);
        if (a.cmd == JOBQ_CMD_CANCEL_JOB) {
            jobq_msg_t c;
            jobq_msg_why_t why;
            assert_int_equal(jobq_msg_decode(JOBQ_CMD_CANCEL_JOB, a.body,
                                             a.body_len, &c, &why),
                             JOBQ_OK);
            assert_int_equal(c.u.cancel_job.id, lost);
            assert_int_equal(c.u.cancel_job.attempt, 1);
            cancelled = true;
        }
        erred |= a.cmd == JOBQ_CMD_ERROR;
    }
    assert_true(cancelled && erred);
    //  The worker's report about it finds no job; the next job is new.
    s_result(fx, "w1", JOBQ_CMD_COMPLETE, lost, 1, false);
    jobq_jobdata_t j;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    assert_int_equal(jobq_store_get(fx->store, lost, &j), JOBQ_ENOTFOUND);
    jobq_store_abort(fx->store);
    uint64_t next = s_enqueue(fx, "noop", 0, 0, 3);
    assert_true(next > lost);
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, next);
    assert_int_equal(attempt, 1);
}

//  A turn whose store failed may hold cut-short bodies: none of its JOBs
//  goes out before the commit, so when that commit fails no worker holds
//  a job that was never stored, and none needs a CANCEL_JOB.
static void
test_engine_a_store_error_holds_every_job_back(void **state)
{
    s_fx_t *fx = *state;
    s_ready(fx, "w1", "noop", 2);
    jobq_msg_t a, b;
    s_enqueue_msg(&a, "noop", 0, 0, 3, NULL);
    s_enqueue_msg(&b, "noop", 0, 0, 3, NULL);
    s_begin(fx);
    s_client(fx, &a);
    jobq_engine_tick(fx->engine);
    uint64_t first = 0;
    assert_int_equal(s_early_job(fx, "w1", &first), 1);
    jobq_store_fail_next_put(fx->store, JOBQ_ESTORAGE);
    s_client(fx, &b);
    jobq_engine_tick(fx->engine);
    uint64_t id = 0;
    assert_int_equal(s_early_job(fx, "w1", &id), 0);
    assert_int_equal(id, first);
    assert_int_equal(s_end(fx), JOBQ_ESTORAGE);
    int errors = 0;
    for (int i = 0; i < fx->nout; i++) {
        assert_false(fx->out[i].early);
        assert_true(fx->out[i].cmd != JOBQ_CMD_JOB &&
                    fx->out[i].cmd != JOBQ_CMD_CANCEL_JOB &&
                    fx->out[i].cmd != JOBQ_CMD_REPLY);
        errors += fx->out[i].cmd == JOBQ_CMD_ERROR;
    }
    assert_int_equal(errors, 2);
    //  Nothing of that turn was stored; the worker's slots are free again.
    jobq_jobdata_t j;
    assert_int_equal(jobq_store_begin(fx->store), JOBQ_OK);
    assert_int_equal(jobq_store_get(fx->store, first, &j), JOBQ_ENOTFOUND);
    jobq_store_abort(fx->store);
    uint64_t next = s_enqueue(fx, "noop", 0, 0, 3);
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, next);
}

//  A CANCEL and a PROGRESS of the same attempt in one turn whose commit
//  fails: the worker is told nothing, since the job is still running as
//  far as the store knows; the next report of it goes on as current.
static void
test_engine_a_lost_cancel_tells_the_worker_nothing(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_ready(fx, "w1", "noop", 1);
    jobq_msg_t c = {.cmd = JOBQ_CMD_CANCEL};
    c.u.job.id = a;
    s_begin(fx);
    s_client(fx, &c);
    s_progress(fx, "w1", a, 30);
    jobq_store_fail_next_commit(fx->store, JOBQ_ESTORAGE);
    assert_int_equal(s_end(fx), JOBQ_ESTORAGE);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, NULL),
                     0);
    assert_int_equal(s_get(fx, a).status, JOBQ_RUNNING);
    s_begin(fx);
    s_progress(fx, "w1", a, 40);
    assert_int_equal(s_end(fx), JOBQ_OK);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_CANCEL_JOB, NULL),
                     0);
    assert_int_equal(s_get(fx, a).progress, 40);
}

static void
test_engine_ids_restart_above_the_committed_ceiling(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    //  A crash, and a wall clock that went back ten seconds meanwhile: a
    //  JOB sent early with an id up to the ceiling may be out there.
    s_close(fx);
    fx->wall -= 10000;
    s_open(fx);
    uint64_t b = s_enqueue(fx, "noop", 0, 0, 3);
    assert_true(b > a + ((uint64_t) 300000 << 16));
    //  The job made before the worker came goes out after the commit; a
    //  new one in a later turn goes out early again.
    s_ready(fx, "w1", "noop", 3);
    assert_int_equal(s_count(fx, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, "w1"), 2);
    for (int i = 0; i < fx->nout; i++)
        assert_false(fx->out[i].early);
    jobq_msg_t m;
    s_enqueue_msg(&m, "noop", 0, 0, 3, NULL);
    s_begin(fx);
    s_client(fx, &m);
    jobq_engine_tick(fx->engine);
    uint64_t c = 0;
    assert_int_equal(s_early_job(fx, "w1", &c), 1);
    assert_true(c > b);
    assert_int_equal(jobq_engine_commit(fx->engine), JOBQ_OK);
}

//  Write name = the len bytes of v into the store's meta database (the
//  store is closed).
static void
s_put_meta(s_fx_t *fx, const char *name, const void *v, size_t len)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_env *env = s_raw_begin(fx, "meta", &txn, &dbi);
    MDB_val key = {strlen(name), (void *) name}, val = {len, (void *) v};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    s_raw_done(env, txn);
}

//  An id ceiling that cannot be read stops recovery: without it an id that
//  went out in a lost turn could be handed out twice. The store stays
//  usable, and a readable ceiling lets the broker start again.
static void
test_engine_unreadable_id_ceiling_stops_recovery(void **state)
{
    s_fx_t *fx = *state;
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    s_close(fx);
    s_put_meta(fx, "id_ceiling", "bad", 3);
    assert_int_equal(s_open_rc(fx), JOBQ_ECORRUPT);
    s_close(fx);
    //  Mended (eight bytes, far above a's id): ids start above it.
    uint64_t ceiling = a + ((uint64_t) 1 << 40);
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t) (ceiling >> (56 - 8 * i));
    s_put_meta(fx, "id_ceiling", be, sizeof be);
    s_open(fx);
    assert_true(s_enqueue(fx, "noop", 0, 0, 3) > ceiling);
}

//  STATUS of id in a turn of its own: the job map of the reply, its
//  strings borrowing from fx->out (valid until the next turn).
static jobq_jobdata_t
s_status(s_fx_t *fx, uint64_t id)
{
    jobq_msg_t m = {.cmd = JOBQ_CMD_STATUS};
    m.u.job.id = id;
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(o);
    jobq_bytes_t v;
    assert_int_equal(
        jobq_mp_map_find((jobq_bytes_t){o->body, o->len}, "job", &v), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    jobq_jobdata_t j;
    assert_int_equal(jobq_msg_read_job(&r, &j), JOBQ_OK);
    return j;
}

//  The bool (or the length of the array) at key in the last reply, -1 if
//  the key is absent.
static int
s_reply_flag(s_fx_t *fx, const char *key)
{
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(o);
    jobq_bytes_t v;
    if (jobq_mp_map_find((jobq_bytes_t){o->body, o->len}, key, &v) != JOBQ_OK)
        return -1;
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    bool b;
    uint32_t n;
    if (jobq_mp_read_bool(&r, &b) == JOBQ_OK)
        return b;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
    return (int) n;
}

//  Every job that is not running says why: no worker for its type, its
//  delay, its retry (with no stale progress), and, after a restart, a
//  worker that is not back. The ENQUEUE reply says when no worker runs
//  the type, and STATS counts the workers per type.
static void
test_engine_a_job_says_why_it_waits(void **state)
{
    s_fx_t *fx = *state;
    uint64_t mail = s_enqueue(fx, "mail", 0, 0, 3);
    assert_int_equal(s_reply_flag(fx, "unserved"), 1);
    jobq_jobdata_t j = s_status(fx, mail);
    assert_int_equal(j.wait, JOBQ_WAIT_NO_WORKER);
    assert_int_equal(j.wait_until, 0);
    //  The event of the new job says it as well.
    s_ready(fx, "w1", "noop", 1);
    uint64_t a = s_enqueue(fx, "noop", 0, 0, 3);
    assert_int_equal(s_reply_flag(fx, "unserved"), -1);
    uint64_t id = 0;
    uint32_t attempt = 0;
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(s_status(fx, a).wait, JOBQ_WAIT_NONE);  //  running
    //  w1 is busy: the next one is queued behind it.
    uint64_t b = s_enqueue(fx, "noop", 0, 0, 3);
    assert_int_equal(s_status(fx, b).wait, JOBQ_WAIT_QUEUED);
    uint64_t d = s_enqueue(fx, "noop", 0, 5000, 3);
    j = s_status(fx, d);
    assert_int_equal(j.wait, JOBQ_WAIT_DELAYED);
    assert_int_equal(j.wait_until, fx->wall + 5000);

    //  A failed attempt: pending for its retry, with the error and the
    //  time, and without the last attempt's progress.
    s_result(fx, "w1", JOBQ_CMD_PROGRESS, a, 1, false);
    s_result(fx, "w1", JOBQ_CMD_FAIL, a, 1, false);
    //  The event of the failure says it too; w1's free slot takes b.
    bool seen = false;
    for (int i = 0; i < fx->nout; i++) {
        const s_out_t *ev = &fx->out[i];
        jobq_mp_reader_t er;
        jobq_jobdata_t ej;
        jobq_mp_reader_init(&er, ev->body, ev->len);
        if (ev->kind == JOBQ_ACT_PUBLISH &&
            jobq_msg_read_job(&er, &ej) == JOBQ_OK && ej.id == a &&
            ej.status == JOBQ_PENDING) {
            assert_int_equal(ej.wait, JOBQ_WAIT_RETRY);
            seen = true;
        }
    }
    assert_true(seen);
    assert_true(s_job_for(fx, "w1", &id, &attempt));
    assert_int_equal(id, b);
    j = s_status(fx, a);
    assert_int_equal(j.status, JOBQ_PENDING);
    assert_int_equal(j.wait, JOBQ_WAIT_RETRY);
    assert_int_equal(j.wait_until, j.run_at);
    assert_true(j.run_at > fx->wall);
    assert_int_equal(j.progress, 0);
    assert_int_equal(j.message.len, 0);
    assert_int_equal(j.error.len, 4);  //  "boom"

    //  STATS: one worker runs noop, none runs mail.
    jobq_msg_t st = {.cmd = JOBQ_CMD_STATS};
    s_begin(fx);
    s_client(fx, &st);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, "c1", 0);
    assert_non_null(o);
    jobq_bytes_t served, v;
    assert_int_equal(
        jobq_mp_map_find((jobq_bytes_t){o->body, o->len}, "served", &served),
        JOBQ_OK);
    assert_int_equal(jobq_mp_map_find(served, "noop", &v), JOBQ_OK);
    assert_int_equal(v.ptr[0], 1);
    assert_int_not_equal(jobq_mp_map_find(served, "mail", &v), JOBQ_OK);

    //  A restart while w1 runs b: running, but its worker is not back;
    //  given up when the recovered lease runs out.
    uint64_t running = b;
    s_close(fx);
    s_open(fx);
    j = s_status(fx, running);
    assert_int_equal(j.status, JOBQ_RUNNING);
    assert_int_equal(j.wait, JOBQ_WAIT_WORKER_LOST);
    assert_int_equal(j.wait_until, fx->wall + fx->cfg.lease_ms);
    //  Back, it is not waiting any more.
    s_ready(fx, "w1", "noop", 1);
    assert_int_equal(s_status(fx, running).wait, JOBQ_WAIT_NONE);
    //  Nobody runs mail after the restart either: still said.
    assert_int_equal(s_status(fx, mail).wait, JOBQ_WAIT_NO_WORKER);
}

//  --types: a type outside the list is refused with unknown_type, also
//  inside a batch, where nothing of the batch is made.
static void
test_engine_types_flag_refuses_other_types(void **state)
{
    s_fx_t *fx = *state;
    s_close(fx);
    fx->cfg.types = "mail,report";
    s_open(fx);
    jobq_msg_t m;
    s_enqueue_msg(&m, "noop", 0, 0, 3, NULL);
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    const s_out_t *o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0);
    assert_non_null(o);
    jobq_msg_t e;
    jobq_msg_why_t why;
    assert_int_equal(jobq_msg_decode(JOBQ_CMD_ERROR, o->body, o->len, &e, &why),
                     JOBQ_OK);
    assert_int_equal(e.u.error.code, JOBQ_ETYPE);
    assert_non_null(
        memmem(e.u.error.message.ptr, e.u.error.message.len, "'noop'", 6));
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 0);
    //  A listed type goes in.
    s_enqueue(fx, "report", 0, 0, 3);
    //  A batch (of noop jobs): refused whole, naming the entry.
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, JOBQ_MAX_FRAME_BYTES);
    s_batch_msg(&m, &w, 3, NULL);
    s_begin(fx);
    s_client(fx, &m);
    assert_int_equal(s_end(fx), JOBQ_OK);
    o = s_find(fx, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, "c1", 0);
    assert_non_null(o);
    assert_int_equal(jobq_msg_decode(JOBQ_CMD_ERROR, o->body, o->len, &e, &why),
                     JOBQ_OK);
    assert_int_equal(e.u.error.code, JOBQ_ETYPE);
    assert_non_null(
        memmem(e.u.error.message.ptr, e.u.error.message.len, "jobs[0]", 7));
    assert_int_equal(s_count(fx, JOBQ_ACT_PUBLISH, 0, NULL), 0);
    jobq_mp_writer_fini(&w);
    fx->cfg.types = NULL;
}

#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_engine_enqueue_replies_and_publishes_after_commit),
        T(test_engine_stats_tell_waits_silences_and_commit_times),
        T(test_engine_dispatches_only_matching_types_within_capacity),
        T(test_engine_dispatch_follows_priority_then_age),
        T(test_engine_progress_and_complete_are_recorded_once),
        T(test_engine_lost_worker_requeues_and_stale_attempt_is_fenced),
        T(test_engine_same_worker_stale_attempt_is_fenced),
        T(test_engine_results_are_acknowledged_after_their_commit),
        T(test_engine_attempts_that_are_not_current_are_told_to_stop),
        T(test_engine_heartbeats_keep_a_long_job_leased),
        T(test_engine_job_the_worker_does_not_hold_goes_back_to_pending),
        T(test_engine_failures_retry_with_backoff_then_fail),
        T(test_engine_permanent_failure_is_not_retried),
        T(test_engine_fail_without_a_message_gets_one),
        T(test_engine_ready_echo_comes_back_and_no_job_follows_a_drain),
        T(test_engine_retry_command_restarts_a_failed_job),
        T(test_engine_cancel_pending_and_running),
        T(test_engine_idempotency_key_returns_the_same_job_within_window),
        T(test_engine_failed_commit_turns_replies_into_errors),
        T(test_engine_failed_commit_undoes_a_dispatch),
        T(test_engine_delayed_job_waits_for_run_at),
        T(test_engine_timeout_ends_the_attempt),
        T(test_engine_restart_keeps_leases_for_a_returning_worker),
        T(test_engine_restart_requeues_jobs_of_a_worker_that_never_returns),
        T(test_engine_keys_bound_roles_and_shops),
        T(test_engine_keys_list_of_several_shops_looks_at_nothing_else),
        T(test_engine_unknown_job_and_bad_request_get_errors),
        T(test_engine_refused_messages_are_counted_by_cause_in_stats),
        T(test_engine_draining_refuses_new_jobs),
        T(test_engine_retry_while_the_cancelled_attempt_stops),
        T(test_engine_failed_commit_of_a_cancel_keeps_the_job_running),
        T(test_engine_kept_errors_are_bounded),
        T(test_engine_unreadable_queued_job_does_not_block_the_queue),
        T(test_engine_list_page_fits_in_a_frame),
        T(test_engine_type_only_list_can_return_an_empty_page_with_a_cursor),
        T(test_engine_worker_names_never_collide),
        T(test_engine_batch_enqueue_is_all_or_nothing),
        T(test_engine_released_attempt_does_not_count),
        T(test_engine_ended_jobs_are_deleted_after_retention),
        T(test_engine_retention_deletes_the_jobs_idempotency_key),
        T(test_engine_idempotency_keys_are_per_shop),
        T(test_engine_new_job_goes_out_early_and_a_lost_turn_cancels_it),
        T(test_engine_a_store_error_holds_every_job_back),
        T(test_engine_a_lost_cancel_tells_the_worker_nothing),
        T(test_engine_progress_in_one_turn_is_one_change),
        T(test_engine_events_stay_small_and_snapshots_come_once_a_turn),
        T(test_engine_progress_after_a_status_is_a_new_change),
        T(test_engine_ids_restart_above_the_committed_ceiling),
        T(test_engine_unreadable_id_ceiling_stops_recovery),
        T(test_engine_a_job_says_why_it_waits),
        T(test_engine_types_flag_refuses_other_types),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
