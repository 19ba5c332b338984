/*  jobq_worker.c: the worker runtime: one DEALER to the broker, N slots.

    The runtime thread never runs a processor: it hands JOB and CANCEL_JOB
    from the broker to the slot pool (jobq_pool.h), sends PROGRESS and
    results from the pool to the broker, sends heartbeats, and reconnects
    when the broker falls silent.

    A result (COMPLETE or FAIL) is kept, encoded, until the broker's ACK
    says the turn that took it is on disk: it is sent again after every
    reconnect or DISCONNECT, and when an ACK is late, so a job finished
    while the broker was down or restarting is not run again.

    With a list of brokers (brokers that share a store), the worker talks
    to one at a time: its leases live in that broker. Each reconnect after
    broker_timeout_ms of silence goes to the next broker of the list
    (round-robin), with READY and every result kept, as after any
    reconnect. The new broker answers a result of a lease it does not hold
    with ACK taken=false (the worker forgets it), and a held job that is
    not its lease with CANCEL_JOB: such a job runs again later under a new
    attempt, fenced by its number.
*/
#include "jobq/jobq_worker.h"
#include "jobq_pool.h"
#include "jobq_wire.h"
#include "jobq_msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  Results read from the pool per loop turn (bounded work per turn).
#define S_RESULTS_PER_TURN 64
//  Room for a whole list of endpoints, commas included.
#define S_LIST_MAX (JOBQ_WIRE_MAX_ENDPOINTS * (JOBQ_WIRE_ENDPOINT_MAX + 1))

//  A result sent and not yet acknowledged.
typedef struct {
    uint64_t id;       //  job id
    uint32_t attempt;  //  its attempt
    int cmd;           //  JOBQ_CMD_COMPLETE or JOBQ_CMD_FAIL
    uint8_t *body;     //  encoded body, owned
    size_t len;        //  bytes
    uint64_t sent_at;  //  monotonic ms of the last send
} s_result_t;

struct jobq_worker {
    jobq_worker_config_t cfg;             //  copy; strings below
    jobq_wire_eps_t brokers;              //  worker endpoints
    size_t cur;                           //  the one connected to now
    int brokers_err;                      //  JOBQ_OK or why brokers is bad
    char brokers_why[128];                //  and what is wrong with it
    char clients[S_LIST_MAX];             //  client endpoint(s)
    char name[JOBQ_WORKER_NAME_MAX + 1];  //  routing id
    char export_dir[512];                 //  for processors
    jobq_curve_t curve;                   //  keys, if cfg.curve
    bool refused;   //  DISCONNECT "forbidden: ...": the run ends
    void *monitor;  //  PAIR: the dealer's handshake events
    int handshake;  //  jobq_wire_handshake_read's state
    const char *types[JOBQ_MAX_WORKER_TYPES];  //  declared types (borrowed)
    uint32_t ntypes;                           //  entries in types
    jobq_registry_t *registry;                 //  borrowed
    jobq_pool_args_t pool_args;                //  shared with slot threads
    jobq_pool_t *pool;                         //  the slots
    //  Every job whose lease is ours and that has not ended: queued,
    //  running, or finished with its result not yet read from the pool. At
    //  most concurrency + prefetch.
    uint64_t held_ids[JOBQ_MAX_CAPACITY];
    uint32_t held_attempts[JOBQ_MAX_CAPACITY];
    uint32_t nheld;
    //  Results waiting for their ACK. nheld + nresults stays at most
    //  JOBQ_MAX_CAPACITY: a JOB beyond that is handed back.
    s_result_t pending[JOBQ_MAX_CAPACITY];
    uint32_t nresults;
    //  Both lists, as the broker gets them in READY and HEARTBEAT.
    uint64_t list_ids[JOBQ_MAX_CAPACITY];
    uint32_t list_attempts[JOBQ_MAX_CAPACITY];
    bool draining;            //  told the broker: no jobs
    uint64_t echo;            //  the echo of our last draining READY
    bool echoed;              //  and the broker sent it back: no JOB is
                              //  still on its way to us
    void *ctx;                //  ZeroMQ context, given or own
    bool own_ctx;             //  made here: end it on destroy
    void *dealer;             //  to the broker
    uint64_t last_heard;      //  monotonic ms
    uint64_t next_heartbeat;  //  monotonic ms
    jobq_mp_writer_t w;       //  encoding buffer
    jobq_mp_writer_t hw;      //  the held-jobs list
    jobq_pool_result_t results[S_RESULTS_PER_TURN];  //  read from the pool
};

void
jobq_worker_config_defaults(jobq_worker_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->broker = "tcp://127.0.0.1:5556";
    cfg->clients = "tcp://127.0.0.1:5555";
    cfg->export_dir = "./var/exports";
    cfg->concurrency = 4;
    cfg->heartbeat_ms = 1000;
    cfg->broker_timeout_ms = 5000;
    cfg->grace_ms = 10000;
}

static void
s_strcopy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

jobq_worker_t *
jobq_worker_new(const jobq_worker_config_t *cfg, jobq_registry_t *registry)
{
    jobq_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    self->registry = registry;
    //  Checked here, said at jobq_worker_run.
    self->brokers_err =
        jobq_wire_endpoints(cfg->broker, &self->brokers, self->brokers_why,
                            sizeof self->brokers_why);
    s_strcopy(self->clients, sizeof self->clients, cfg->clients);
    s_strcopy(self->export_dir, sizeof self->export_dir, cfg->export_dir);
    if (cfg->name) {
        s_strcopy(self->name, sizeof self->name, cfg->name);
    } else {
        char host[32] = "host";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        for (char *p = host; *p; p++)
            if (*p <= 0x20 || *p >= 0x7f)
                *p = '_';
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(self->name, sizeof self->name, "w-%.24s-%d-%04x", host,
                 (int) getpid(), (unsigned) ((ts.tv_nsec / 1000) & 0xffff));
    }
    if (cfg->curve) {
        self->curve = *cfg->curve;
        self->cfg.curve = &self->curve;
    }
    self->ctx = cfg->zmq_ctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        self->own_ctx = true;
        if (!self->ctx) {
            free(self);
            return NULL;
        }
    }
    jobq_mp_writer_init(&self->w, JOBQ_MAX_FRAME_BYTES);
    jobq_mp_writer_init(&self->hw, JOBQ_MAX_FRAME_BYTES);
    self->pool_args.registry = registry;
    self->pool_args.clients = self->clients;
    self->pool_args.export_dir = self->export_dir;
    self->pool_args.log = cfg->log;
    self->pool_args.zmq_ctx = self->ctx;
    self->pool_args.curve = self->cfg.curve;
    return self;
}

void
jobq_worker_destroy(jobq_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_worker_t *self = *self_p;
    for (uint32_t i = 0; i < self->nresults; i++)
        free(self->pending[i].body);
    jobq_wire_close(&self->dealer);
    jobq_mp_writer_fini(&self->w);
    jobq_mp_writer_fini(&self->hw);
    jobq_pool_destroy(&self->pool);
    if (self->own_ctx)
        zmq_ctx_term(self->ctx);
    free(self);
    *self_p = NULL;
}

static int
s_send(jobq_worker_t *self, const jobq_msg_t *m)
{
    jobq_mp_writer_reset(&self->w);
    jobq_msg_encode(m, &self->w);
    if (jobq_mp_writer_error(&self->w))
        return jobq_mp_writer_error(&self->w);
    return jobq_wire_send(self->dealer, NULL, 0, m->cmd, self->w.data,
                          self->w.len);
}

//  Tell m which attempts we hold, so the broker can settle its leases: the
//  ones queued or running, and the ones whose result waits for its ACK.
static void
s_held(jobq_worker_t *self, jobq_msg_t *m)
{
    uint32_t n = self->nheld;
    memcpy(self->list_ids, self->held_ids, n * sizeof self->list_ids[0]);
    memcpy(self->list_attempts, self->held_attempts,
           n * sizeof self->list_attempts[0]);
    for (uint32_t i = 0; i < self->nresults && n < JOBQ_MAX_CAPACITY; i++) {
        self->list_ids[n] = self->pending[i].id;
        self->list_attempts[n++] = self->pending[i].attempt;
    }
    jobq_mp_writer_reset(&self->hw);
    jobq_msg_write_held(&self->hw, self->list_ids, self->list_attempts, n);
    m->held.ptr = self->hw.data;
    m->held.len = self->hw.len;
    m->has_held = jobq_mp_writer_error(&self->hw) == JOBQ_OK;
}

static void
s_hold(jobq_worker_t *self, uint64_t id, uint32_t attempt)
{
    self->held_ids[self->nheld] = id;
    self->held_attempts[self->nheld++] = attempt;
}

static void
s_unhold(jobq_worker_t *self, uint64_t id, uint32_t attempt)
{
    for (uint32_t i = 0; i < self->nheld; i++) {
        if (self->held_ids[i] == id && self->held_attempts[i] == attempt) {
            self->nheld--;
            self->held_ids[i] = self->held_ids[self->nheld];
            self->held_attempts[i] = self->held_attempts[self->nheld];
            return;
        }
    }
}

//  Keep result m (just encoded in self->w) until its ACK, and send it.
static void
s_result(jobq_worker_t *self,
         const jobq_msg_t *m,
         uint64_t id,
         uint32_t attempt)
{
    jobq_mp_writer_reset(&self->w);
    jobq_msg_encode(m, &self->w);
    if (jobq_mp_writer_error(&self->w))
        return;  //  bodies come from checked parts: cannot happen
    uint8_t *body = malloc(self->w.len);
    if (body && self->nresults < JOBQ_MAX_CAPACITY) {
        memcpy(body, self->w.data, self->w.len);
        self->pending[self->nresults++] =
            (s_result_t){id,   attempt,     m->cmd,
                         body, self->w.len, (uint64_t) jobq_wire_now_ms()};
    } else {
        //  Out of memory: sent once, as before results were kept; a lost
        //  one costs a rerun, never a loss.
        free(body);
    }
    jobq_wire_send(self->dealer, NULL, 0, m->cmd, self->w.data, self->w.len);
}

//  Send again every result not acknowledged since before cutoff (monotonic
//  ms; UINT64_MAX: all of them).
static void
s_resend(jobq_worker_t *self, uint64_t cutoff)
{
    uint64_t now = (uint64_t) jobq_wire_now_ms();
    for (uint32_t i = 0; i < self->nresults; i++) {
        s_result_t *r = &self->pending[i];
        if (cutoff != UINT64_MAX && r->sent_at > cutoff)
            continue;
        if (jobq_wire_send(self->dealer, NULL, 0, r->cmd, r->body, r->len) ==
            JOBQ_OK)
            r->sent_at = now;
    }
}

//  The broker took (or refused) the result of (id, attempt): forget it.
static void
s_acked(jobq_worker_t *self, uint64_t id, uint32_t attempt, bool taken)
{
    for (uint32_t i = 0; i < self->nresults; i++) {
        s_result_t *r = &self->pending[i];
        if (r->id != id || r->attempt != attempt)
            continue;
        if (!taken && self->cfg.log && self->cfg.log->level >= JOBQ_LOG_INFO) {
            char hex[JOBQ_ID_LEN + 1];
            jobq_id_format(id, hex);
            jobq_log_write(self->cfg.log, JOBQ_LOG_INFO,
                           "job %s attempt %u: result not taken (the attempt "
                           "had ended, or its result was recorded before)",
                           hex, attempt);
        }
        free(r->body);
        *r = self->pending[--self->nresults];
        return;
    }
}

static void
s_ready(jobq_worker_t *self)
{
    jobq_msg_t m = {.cmd = JOBQ_CMD_READY};
    s_held(self, &m);
    for (uint32_t i = 0; i < self->ntypes; i++) {
        m.u.ready.types[i].ptr = self->types[i];
        m.u.ready.types[i].len = strlen(self->types[i]);
    }
    m.u.ready.ntypes = self->ntypes;
    //  Capacity 0 while draining: the broker keeps our leases but sends
    //  no more jobs.
    m.u.ready.capacity =
        self->draining ? 0 : self->cfg.concurrency + self->cfg.prefetch;
    //  And an echo, which the broker sends back after every JOB it sent
    //  us before this READY: until then a JOB may be on its way.
    if (self->draining) {
        m.echo = ++self->echo;
        m.has_echo = true;
        self->echoed = false;
    }
    m.u.ready.name.ptr = self->name;
    m.u.ready.name.len = strlen(self->name);
    s_send(self, &m);
}

//  Connect to the current broker of the list, register, and send every
//  result kept.
static int
s_connect(jobq_worker_t *self)
{
    jobq_wire_close(&self->monitor);
    jobq_wire_close(&self->dealer);
    int err = JOBQ_OK;
    self->dealer =
        jobq_wire_connect(self->ctx, ZMQ_DEALER, self->brokers.ep[self->cur],
                          self->name, self->cfg.curve, &err);
    if (!self->dealer)
        return err;
    self->monitor = jobq_wire_handshake_monitor(self->ctx, self->dealer);
    self->last_heard = (uint64_t) jobq_wire_now_ms();
    s_ready(self);
    s_resend(self, UINT64_MAX);
    return JOBQ_OK;
}

//  Report job id at attempt as failed, not by its processor: released
//  (never started: back to pending at once, the attempt does not count)
//  or cancelled before it started.
static void
s_fail_unstarted(jobq_worker_t *self,
                 uint64_t id,
                 uint32_t attempt,
                 const char *why,
                 bool released)
{
    jobq_msg_t f = {.cmd = JOBQ_CMD_FAIL};
    f.u.fail.id = id;
    f.u.fail.attempt = attempt;
    f.u.fail.error.ptr = why;
    f.u.fail.error.len = strlen(why);
    f.u.fail.released = released;
    f.u.fail.cancelled = !released;
    s_result(self, &f, id, attempt);
}

//  Hand every job that has not started back (the worker is stopping).
static void
s_release_queued(jobq_worker_t *self)
{
    uint64_t ids[JOBQ_MAX_CAPACITY];
    uint32_t attempts[JOBQ_MAX_CAPACITY];
    size_t n =
        jobq_pool_take_queued(self->pool, ids, attempts, JOBQ_MAX_CAPACITY);
    for (size_t i = 0; i < n; i++) {
        s_fail_unstarted(self, ids[i], attempts[i], "worker shutting down",
                         true);
        s_unhold(self, ids[i], attempts[i]);
    }
}

static void
s_from_broker(jobq_worker_t *self, bool stopping)
{
    jobq_wire_in_t in;
    if (jobq_wire_recv(self->dealer, false, true, &in) != JOBQ_OK)
        return;
    jobq_msg_t m;
    jobq_msg_why_t why;
    if (in.err != JOBQ_OK ||
        jobq_msg_decode(in.cmd, in.body, in.body_len, &m, &why) != JOBQ_OK) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_WARN, "bad message from broker: %s",
                 in.err ? in.why : why.text);
        jobq_wire_in_close(&in);
        return;
    }
    self->last_heard = (uint64_t) jobq_wire_now_ms();
    switch (m.cmd) {
    case JOBQ_CMD_JOB: {
        uint64_t id = m.u.dispatch.id;
        uint32_t attempt = m.u.dispatch.attempt;
        if (stopping)
            s_fail_unstarted(self, id, attempt, "worker shutting down", true);
        else if (self->nheld >= self->cfg.concurrency + self->cfg.prefetch ||
                 self->nheld + self->nresults >= JOBQ_MAX_CAPACITY ||
                 jobq_pool_submit(self->pool, &m, in.body, in.body_len) !=
                     JOBQ_OK)
            s_fail_unstarted(self, id, attempt, "worker has no free slot",
                             true);
        else
            s_hold(self, id, attempt);
        break;
    }
    case JOBQ_CMD_CANCEL_JOB: {
        uint64_t id = m.u.cancel_job.id;
        uint32_t attempt = m.u.cancel_job.attempt;
        if (jobq_pool_cancel(self->pool, id, attempt) == JOBQ_POOL_UNQUEUED) {
            s_fail_unstarted(self, id, attempt, "cancelled", false);
            s_unhold(self, id, attempt);
        }
        break;
    }
    case JOBQ_CMD_DISCONNECT:
        if (m.u.disconnect.reason.len >= 10 &&
            memcmp(m.u.disconnect.reason.ptr, "forbidden:", 10) == 0) {
            if (self->refused)
                break;
            //  Our key may not do this (docs/PROTOCOL.md section 13):
            //  asking again would be refused again, so stop and say why.
            JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR,
                     "the broker refuses this worker: %.*s",
                     (int) m.u.disconnect.reason.len,
                     m.u.disconnect.reason.ptr);
            self->refused = true;
            break;
        }
        //  The broker does not know us (it restarted, or dropped us after
        //  silence): register again. Running jobs go on; their leases are
        //  still ours if we are back in time, and results it has not
        //  acknowledged go again.
        s_ready(self);
        s_resend(self, UINT64_MAX);
        break;
    case JOBQ_CMD_ACK:
        s_acked(self, m.u.ack.id, m.u.ack.attempt, m.u.ack.taken);
        break;
    case JOBQ_CMD_HEARTBEAT:  //  last_heard is enough, but for an echo
        if (m.has_echo && self->draining && m.echo == self->echo)
            self->echoed = true;
        break;
    default:
        break;
    }
    jobq_wire_in_close(&in);
}

//  Send one report of the pool to the broker; frees its data.
static void
s_from_pool(jobq_worker_t *self, jobq_pool_result_t *res)
{
    jobq_msg_t r;
    memset(&r, 0, sizeof r);
    if (res->kind == JOBQ_POOL_PROGRESS) {
        r.cmd = JOBQ_CMD_PROGRESS;
        r.u.progress.id = res->id;
        r.u.progress.attempt = res->attempt;
        r.u.progress.progress = res->percent;
        r.u.progress.message.ptr = res->data ? (const char *) res->data : "";
        r.u.progress.message.len = res->len;
    } else if (res->ok) {
        r.cmd = JOBQ_CMD_COMPLETE;
        r.u.complete.id = res->id;
        r.u.complete.attempt = res->attempt;
        r.u.complete.output.ptr = res->data;
        r.u.complete.output.len = res->len;
    } else {
        r.cmd = JOBQ_CMD_FAIL;
        r.u.fail.id = res->id;
        r.u.fail.attempt = res->attempt;
        r.u.fail.error.ptr = res->data ? (const char *) res->data : "";
        r.u.fail.error.len =
            res->len > JOBQ_MAX_ERROR_LEN ? JOBQ_MAX_ERROR_LEN : res->len;
        r.u.fail.permanent = res->permanent;
        r.u.fail.cancelled = res->cancelled;
    }
    if (res->kind == JOBQ_POOL_DONE)
        s_result(self, &r, res->id, res->attempt);
    else
        s_send(self, &r);
    if (res->kind == JOBQ_POOL_DONE) {
        s_unhold(self, res->id, res->attempt);
        if (self->cfg.log && self->cfg.log->level >= JOBQ_LOG_INFO) {
            char hex[JOBQ_ID_LEN + 1];
            jobq_id_format(res->id, hex);
            jobq_log_write(self->cfg.log, JOBQ_LOG_INFO, "job %s attempt %u %s",
                           hex, res->attempt, res->ok ? "completed" : "failed");
        }
    }
    free(res->data);
    res->data = NULL;
}

static int
s_types(jobq_worker_t *self)
{
    self->ntypes = 0;
    if (self->cfg.types) {
        for (const char *const *t = self->cfg.types; *t; t++) {
            if (self->ntypes == JOBQ_MAX_WORKER_TYPES ||
                jobq_registry_find(self->registry, *t, strlen(*t), NULL,
                                   NULL) != JOBQ_OK)
                return JOBQ_EINVAL;
            self->types[self->ntypes++] = *t;
        }
    } else {
        size_t n = jobq_registry_count(self->registry);
        for (size_t i = 0; i < n && i < JOBQ_MAX_WORKER_TYPES; i++)
            self->types[self->ntypes++] = jobq_registry_type(self->registry, i);
    }
    return self->ntypes ? JOBQ_OK : JOBQ_EINVAL;
}

int
jobq_worker_run(jobq_worker_t *self, volatile sig_atomic_t *stop)
{
    uint32_t n = self->cfg.concurrency;
    if (n < 1 || n > JOBQ_MAX_CAPACITY ||
        self->cfg.prefetch > JOBQ_MAX_CAPACITY - n || s_types(self) != JOBQ_OK)
        return JOBQ_EINVAL;
    self->nheld = 0;
    if (self->brokers_err != JOBQ_OK) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR, "broker endpoints: %s",
                 self->brokers_why);
        return self->brokers_err;
    }
    //  The endpoints after the first are connected only when the worker
    //  moves to them: check now that ZeroMQ can parse them.
    char why[128];
    int crc = jobq_wire_endpoints_check(self->ctx, &self->brokers, 1,
                                        self->cfg.curve, why, sizeof why);
    if (crc != JOBQ_OK) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR, "broker endpoints: %s", why);
        return crc;
    }
    self->cur = 0;
    self->pool = jobq_pool_new(n, n + self->cfg.prefetch, &self->pool_args);
    if (!self->pool)
        return JOBQ_ENOMEM;
    int rc = s_connect(self);
    bool stopping = false, hard = false, cancelled_all = false;
    uint64_t stop_deadline = 0, ack_deadline = 0;
    //  A result without its ACK for this long is sent again.
    uint64_t resend_ms = self->cfg.broker_timeout_ms / 2;
    while (rc == JOBQ_OK) {
        uint64_t now = (uint64_t) jobq_wire_now_ms();
        if (!stopping && stop && *stop) {
            stopping = true;
            stop_deadline = now + self->cfg.grace_ms;
            //  No new jobs, and the ones waiting go back to the broker.
            self->draining = true;
            s_ready(self);
            s_release_queued(self);
        }
        if (stopping && !hard && *stop < 0) {
            //  Asked twice: no grace for running jobs, little for ACKs.
            hard = true;
            stop_deadline = now;
            if (ack_deadline > now + 1000)
                ack_deadline = now + 1000;
        }
        if (stopping) {
            if (self->nheld > 0 && !cancelled_all && now >= stop_deadline) {
                //  Grace is over: ask the running jobs to stop, and give
                //  them a last moment to report, so the broker can retry
                //  them at once.
                jobq_pool_cancel_running(self->pool);
                cancelled_all = true;
                stop_deadline = now + 1000;
            }
            bool ended =
                self->nheld == 0 || (cancelled_all && now >= stop_deadline);
            //  Nothing held, nothing to be acknowledged, and no JOB on its
            //  way (or no time left to wait for one).
            if (ended && self->nresults == 0 && (self->echoed || hard))
                break;
            if (ended && !ack_deadline)
                ack_deadline =
                    now + (hard ? 1000 : self->cfg.broker_timeout_ms);
            if (ended && now >= ack_deadline) {
                if (self->nresults == 0)
                    JOBQ_LOG(self->cfg.log, JOBQ_LOG_WARN,
                             "stopping without word from the broker: a job "
                             "it sent last may wait for its lease to end");
                else
                    JOBQ_LOG(self->cfg.log, JOBQ_LOG_WARN,
                             "stopping with %u %s the broker has not "
                             "acknowledged: %s again",
                             self->nresults,
                             self->nresults == 1 ? "result" : "results",
                             self->nresults == 1 ? "its job will run"
                                                 : "their jobs will run");
                break;
            }
        }
        if (self->nresults && now >= resend_ms)
            s_resend(self, now - resend_ms);
        if (now >= self->next_heartbeat) {
            jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
            s_held(self, &hb);
            s_send(self, &hb);
            self->next_heartbeat = now + self->cfg.heartbeat_ms;
        }
        if (now > self->last_heard + self->cfg.broker_timeout_ms) {
            jobq_wire_handshake_read(self->monitor, &self->handshake);
            const char *hint = jobq_wire_handshake_hint(
                self->handshake, self->cfg.curve != NULL);
            if (self->brokers.n == 1) {
                JOBQ_LOG(self->cfg.log, JOBQ_LOG_WARN,
                         "broker silent for %llu ms, reconnecting%s",
                         (unsigned long long) self->cfg.broker_timeout_ms,
                         hint);
            } else {
                //  The next broker of the list; the one left behind comes
                //  round again if the others are silent too.
                const char *was = self->brokers.ep[self->cur];
                self->cur = (self->cur + 1) % self->brokers.n;
                JOBQ_LOG(self->cfg.log, JOBQ_LOG_WARN,
                         "broker %s silent for %llu ms, moving to %s%s", was,
                         (unsigned long long) self->cfg.broker_timeout_ms,
                         self->brokers.ep[self->cur], hint);
                //  What the monitor heard was the old broker's.
                self->handshake = 0;
            }
            rc = s_connect(self);
            if (rc != JOBQ_OK)
                break;
        }
        zmq_pollitem_t items[2] = {
            {self->dealer, 0, ZMQ_POLLIN, 0},
            {NULL, jobq_pool_fd(self->pool), ZMQ_POLLIN, 0}};
        long timeout = (long) (self->next_heartbeat - now);
        if (timeout > 200)
            timeout = 200;  //  so a stop request is seen promptly
        if (zmq_poll(items, 2, timeout) < 0 && errno != EINTR)
            break;
        //  Bounded work per turn: at most 64 broker messages and 64
        //  results from the slots.
        for (int k = 0; k < 64 && (items[0].revents & ZMQ_POLLIN); k++) {
            s_from_broker(self, stopping);
            int ev = 0;
            size_t evlen = sizeof ev;
            if (zmq_getsockopt(self->dealer, ZMQ_EVENTS, &ev, &evlen) != 0 ||
                !(ev & ZMQ_POLLIN))
                break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            size_t got = jobq_pool_results(self->pool, self->results,
                                           S_RESULTS_PER_TURN);
            for (size_t i = 0; i < got; i++)
                s_from_pool(self, &self->results[i]);
        }
        if (self->refused)
            rc = JOBQ_EFORBIDDEN;
    }
    //  Results already queued to the broker get a moment to leave.
    if (self->dealer) {
        int linger = 1000;
        zmq_setsockopt(self->dealer, ZMQ_LINGER, &linger, sizeof linger);
    }
    jobq_pool_destroy(&self->pool);
    jobq_wire_close(&self->monitor);
    jobq_wire_close(&self->dealer);
    return rc;
}
