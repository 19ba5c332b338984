/*  jobq_worker.c: the worker runtime: one DEALER to the broker, N slots.

    The runtime thread never runs a processor: it relays JOB and CANCEL_JOB
    from the broker to slots, PROGRESS and results from slots to the broker,
    sends heartbeats, and reconnects when the broker falls silent.
*/
#include "jobq/jobq_worker.h"
#include "jobq_slot.h"
#include "jobq_wire.h"
#include "jobq_msg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

//  A JOB held for a free slot (prefetch): its decoded body is re-read
//  from this copy when it starts.
typedef struct {
    uint64_t id;       //  job id
    uint32_t attempt;  //  its attempt
    uint8_t *body;     //  the JOB body, owned
    size_t len;        //  bytes in body
} s_queued_t;

typedef struct {
    zactor_t *actor;   //  the slot thread
    uint64_t job;      //  running job id, 0 when idle
    uint32_t attempt;  //  its attempt
    uint64_t started;  //  monotonic ms
} s_slot_t;

struct jobq_worker {
    jobq_worker_config_t cfg;                  //  copy; strings below
    char broker[256];                          //  worker endpoint
    char clients[256];                         //  client endpoint
    char name[JOBQ_WORKER_NAME_MAX + 1];       //  routing id
    char export_dir[512];                      //  for processors
    const char *types[JOBQ_MAX_WORKER_TYPES];  //  declared types (borrowed)
    uint32_t ntypes;                           //  entries in types
    jobq_registry_t *registry;                 //  borrowed
    jobq_slot_args_t slot_args;                //  shared with slot threads
    s_slot_t *slots;                           //  concurrency entries
    s_queued_t *queue;                         //  prefetch ring, cfg.prefetch
    uint32_t qhead;                            //  oldest queued entry
    uint32_t qcount;                           //  entries queued
    bool draining;                             //  told the broker: no jobs
    zsock_t *dealer;                           //  to the broker
    uint64_t last_heard;                       //  monotonic ms
    uint64_t next_heartbeat;                   //  monotonic ms
    jobq_mp_writer_t w;                        //  encoding buffer
    jobq_mp_writer_t hw;                       //  the held-jobs list
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
    s_strcopy(self->broker, sizeof self->broker, cfg->broker);
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
        snprintf(self->name, sizeof self->name, "w-%.24s-%d-%04x", host,
                 (int) getpid(), (unsigned) (zclock_usecs() & 0xffff));
    }
    jobq_mp_writer_init(&self->w, JOBQ_MAX_FRAME_BYTES);
    jobq_mp_writer_init(&self->hw, JOBQ_MAX_FRAME_BYTES);
    self->slot_args.registry = registry;
    self->slot_args.clients = self->clients;
    self->slot_args.export_dir = self->export_dir;
    return self;
}

void
jobq_worker_destroy(jobq_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_worker_t *self = *self_p;
    zsock_destroy(&self->dealer);
    jobq_mp_writer_fini(&self->w);
    jobq_mp_writer_fini(&self->hw);
    free(self->queue);
    free(self->slots);
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

//  Tell m which jobs the slots run, so the broker can settle its leases.
static void
s_held(jobq_worker_t *self, jobq_msg_t *m)
{
    uint64_t ids[JOBQ_MAX_CAPACITY];
    uint32_t attempts[JOBQ_MAX_CAPACITY], n = 0;
    for (uint32_t i = 0; self->slots && i < self->cfg.concurrency; i++) {
        if (self->slots[i].job) {
            ids[n] = self->slots[i].job;
            attempts[n++] = self->slots[i].attempt;
        }
    }
    //  Queued jobs are held too: their leases are ours.
    for (uint32_t i = 0; i < self->qcount && n < JOBQ_MAX_CAPACITY; i++) {
        const s_queued_t *q =
            &self->queue[(self->qhead + i) % self->cfg.prefetch];
        ids[n] = q->id;
        attempts[n++] = q->attempt;
    }
    jobq_mp_writer_reset(&self->hw);
    jobq_msg_write_held(&self->hw, ids, attempts, n);
    m->held.ptr = self->hw.data;
    m->held.len = self->hw.len;
    m->has_held = jobq_mp_writer_error(&self->hw) == JOBQ_OK;
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
    m.u.ready.name.ptr = self->name;
    m.u.ready.name.len = strlen(self->name);
    s_send(self, &m);
}

static int
s_connect(jobq_worker_t *self)
{
    zsock_destroy(&self->dealer);
    self->dealer = zsock_new(ZMQ_DEALER);
    if (!self->dealer)
        return JOBQ_ENOMEM;
    jobq_wire_setup(self->dealer, 0);
    zsock_set_identity(self->dealer, self->name);
    if (zsock_connect(self->dealer, "%s", self->broker) < 0)
        return JOBQ_EINVAL;
    self->last_heard = (uint64_t) zclock_mono();
    s_ready(self);
    return JOBQ_OK;
}

static s_slot_t *
s_slot_of(jobq_worker_t *self, uint64_t id)
{
    for (uint32_t i = 0; i < self->cfg.concurrency; i++)
        if (self->slots[i].job == id)
            return &self->slots[i];
    return NULL;
}

//  Hand a job we never started back to the broker: it goes back to
//  pending at once, and the attempt does not count against it.
static void
s_release(jobq_worker_t *self, uint64_t id, uint32_t attempt, const char *why)
{
    jobq_msg_t f = {.cmd = JOBQ_CMD_FAIL};
    f.u.fail.id = id;
    f.u.fail.attempt = attempt;
    f.u.fail.error.ptr = why;
    f.u.fail.error.len = strlen(why);
    f.u.fail.released = true;
    s_send(self, &f);
}

//  Start the JOB m on slot.
static void
s_start(jobq_worker_t *self, s_slot_t *slot, const jobq_msg_t *m)
{
    slot->job = m->u.dispatch.id;
    slot->attempt = m->u.dispatch.attempt;
    slot->started = (uint64_t) zclock_mono();
    jobq_slot_send_job(zactor_sock(slot->actor), m->u.dispatch.id,
                       m->u.dispatch.attempt, m->u.dispatch.type,
                       m->u.dispatch.shop, m->u.dispatch.input,
                       m->u.dispatch.timeout_ms);
    if (self->cfg.verbose) {
        char hex[JOBQ_ID_LEN + 1];
        jobq_id_format(m->u.dispatch.id, hex);
        fprintf(stderr, "jobq-worker: job %s %.*s attempt %u started\n", hex,
                (int) m->u.dispatch.type.len, m->u.dispatch.type.ptr,
                m->u.dispatch.attempt);
    }
}

//  Keep a copy of the JOB m (body of len bytes) until a slot frees up.
static bool
s_enqueue_local(jobq_worker_t *self,
                const jobq_msg_t *m,
                const uint8_t *body,
                size_t len)
{
    if (self->qcount >= self->cfg.prefetch)
        return false;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return false;
    memcpy(copy, body, len);
    s_queued_t *q =
        &self->queue[(self->qhead + self->qcount) % self->cfg.prefetch];
    q->id = m->u.dispatch.id;
    q->attempt = m->u.dispatch.attempt;
    q->body = copy;
    q->len = len;
    self->qcount++;
    return true;
}

//  Start the oldest queued job on slot, if there is one.
static void
s_start_queued(jobq_worker_t *self, s_slot_t *slot)
{
    while (self->qcount > 0) {
        s_queued_t q = self->queue[self->qhead];
        self->qhead = (self->qhead + 1) % self->cfg.prefetch;
        self->qcount--;
        jobq_msg_t m;
        jobq_msg_why_t why;
        bool ok =
            jobq_msg_decode(JOBQ_CMD_JOB, q.body, q.len, &m, &why) == JOBQ_OK;
        if (ok)
            s_start(self, slot, &m);
        free(q.body);
        if (ok)
            return;
    }
}

//  Drop queued job id (cancelled before it started). True if it was there.
static bool
s_unqueue(jobq_worker_t *self, uint64_t id, uint32_t attempt)
{
    for (uint32_t i = 0; i < self->qcount; i++) {
        uint32_t at = (self->qhead + i) % self->cfg.prefetch;
        if (self->queue[at].id != id || self->queue[at].attempt != attempt)
            continue;
        free(self->queue[at].body);
        //  Close the gap: move the later entries one place up.
        for (uint32_t k = i; k + 1 < self->qcount; k++)
            self->queue[(self->qhead + k) % self->cfg.prefetch] =
                self->queue[(self->qhead + k + 1) % self->cfg.prefetch];
        self->qcount--;
        return true;
    }
    return false;
}

//  Hand every queued job back (the worker is stopping).
static void
s_release_queued(jobq_worker_t *self)
{
    while (self->qcount > 0) {
        s_queued_t *q = &self->queue[self->qhead];
        s_release(self, q->id, q->attempt, "worker shutting down");
        free(q->body);
        self->qhead = (self->qhead + 1) % self->cfg.prefetch;
        self->qcount--;
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
        if (self->cfg.verbose)
            fprintf(stderr, "jobq-worker: bad message from broker: %s\n",
                    in.err ? in.why : why.text);
        jobq_wire_in_close(&in);
        return;
    }
    self->last_heard = (uint64_t) zclock_mono();
    switch (m.cmd) {
    case JOBQ_CMD_JOB: {
        s_slot_t *slot = s_slot_of(self, 0);
        if (stopping)
            s_release(self, m.u.dispatch.id, m.u.dispatch.attempt,
                      "worker shutting down");
        else if (slot && self->qcount == 0)
            s_start(self, slot, &m);
        else if (!s_enqueue_local(self, &m, in.body, in.body_len))
            s_release(self, m.u.dispatch.id, m.u.dispatch.attempt,
                      "worker has no free slot");
        break;
    }
    case JOBQ_CMD_CANCEL_JOB: {
        s_slot_t *slot = s_slot_of(self, m.u.cancel_job.id);
        if (slot && slot->attempt == m.u.cancel_job.attempt)
            jobq_slot_send_cancel(zactor_sock(slot->actor), slot->job);
        else if (s_unqueue(self, m.u.cancel_job.id, m.u.cancel_job.attempt)) {
            jobq_msg_t f = {.cmd = JOBQ_CMD_FAIL};
            f.u.fail.id = m.u.cancel_job.id;
            f.u.fail.attempt = m.u.cancel_job.attempt;
            f.u.fail.error.ptr = "cancelled";
            f.u.fail.error.len = strlen("cancelled");
            f.u.fail.cancelled = true;
            s_send(self, &f);
        }
        break;
    }
    case JOBQ_CMD_DISCONNECT:
        //  The broker does not know us (it restarted, or dropped us after
        //  silence): register again. Running jobs go on; their leases are
        //  still ours if we are back in time.
        s_ready(self);
        break;
    default:  //  HEARTBEAT: last_heard is enough
        break;
    }
    jobq_wire_in_close(&in);
}

static void
s_from_slot(jobq_worker_t *self, s_slot_t *slot)
{
    zmsg_t *m = zmsg_recv(zactor_sock(slot->actor));
    if (!m)
        return;
    char *cmd = zmsg_popstr(m);
    zframe_t *fid = zmsg_pop(m), *fat = zmsg_pop(m);
    uint64_t id = jobq_slot_u64(fid);
    uint32_t attempt = jobq_slot_u32(fat);
    if (cmd && strcmp(cmd, "PROGRESS") == 0) {
        zframe_t *fp = zmsg_pop(m), *fmsg = zmsg_pop(m);
        jobq_msg_t p = {.cmd = JOBQ_CMD_PROGRESS};
        p.u.progress.id = id;
        p.u.progress.attempt = attempt;
        p.u.progress.progress =
            fp && zframe_size(fp) == 1 ? zframe_data(fp)[0] : 0;
        p.u.progress.message.ptr = fmsg ? (const char *) zframe_data(fmsg) : "";
        p.u.progress.message.len = fmsg ? zframe_size(fmsg) : 0;
        s_send(self, &p);
        zframe_destroy(&fp);
        zframe_destroy(&fmsg);
    } else if (cmd && strcmp(cmd, "DONE") == 0) {
        zframe_t *fok = zmsg_pop(m), *fpay = zmsg_pop(m);
        zframe_t *fperm = zmsg_pop(m), *fcan = zmsg_pop(m);
        bool ok = fok && zframe_data(fok)[0];
        jobq_msg_t r;
        memset(&r, 0, sizeof r);
        if (ok) {
            r.cmd = JOBQ_CMD_COMPLETE;
            r.u.complete.id = id;
            r.u.complete.attempt = attempt;
            r.u.complete.output.ptr = zframe_data(fpay);
            r.u.complete.output.len = zframe_size(fpay);
        } else {
            r.cmd = JOBQ_CMD_FAIL;
            r.u.fail.id = id;
            r.u.fail.attempt = attempt;
            r.u.fail.error.ptr = (const char *) zframe_data(fpay);
            r.u.fail.error.len = zframe_size(fpay);
            if (r.u.fail.error.len > JOBQ_MAX_ERROR_LEN)
                r.u.fail.error.len = JOBQ_MAX_ERROR_LEN;
            r.u.fail.permanent = fperm && zframe_data(fperm)[0];
            r.u.fail.cancelled = fcan && zframe_data(fcan)[0];
        }
        s_send(self, &r);
        if (self->cfg.verbose) {
            char hex[JOBQ_ID_LEN + 1];
            jobq_id_format(id, hex);
            fprintf(stderr, "jobq-worker: job %s attempt %u %s\n", hex, attempt,
                    ok ? "completed" : "failed");
        }
        slot->job = 0;
        slot->attempt = 0;
        s_start_queued(self, slot);
        zframe_destroy(&fok);
        zframe_destroy(&fpay);
        zframe_destroy(&fperm);
        zframe_destroy(&fcan);
    }
    zstr_free(&cmd);
    zframe_destroy(&fid);
    zframe_destroy(&fat);
    zmsg_destroy(&m);
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
    self->slots = calloc(n, sizeof *self->slots);
    self->queue = calloc(self->cfg.prefetch ? self->cfg.prefetch : 1,
                         sizeof *self->queue);
    zmq_pollitem_t *items = calloc(n + 1, sizeof *items);
    if (!self->slots || !self->queue || !items) {
        free(items);
        return JOBQ_ENOMEM;
    }
    int rc = JOBQ_OK;
    uint32_t started = 0;
    for (; started < n; started++) {
        self->slots[started].actor =
            zactor_new(jobq_slot_actor, &self->slot_args);
        if (!self->slots[started].actor) {
            rc = JOBQ_ENOMEM;
            break;
        }
    }
    if (rc == JOBQ_OK)
        rc = s_connect(self);
    bool stopping = false;
    uint64_t stop_deadline = 0;
    bool cancelled_all = false;
    while (rc == JOBQ_OK) {
        uint64_t now = (uint64_t) zclock_mono();
        uint32_t busy = 0;
        for (uint32_t i = 0; i < n; i++)
            busy += self->slots[i].job != 0;
        if (!stopping && stop && *stop) {
            stopping = true;
            stop_deadline = now + self->cfg.grace_ms;
            //  No new jobs, and the ones waiting go back to the broker.
            self->draining = true;
            s_ready(self);
            s_release_queued(self);
        }
        if (stopping && busy == 0)
            break;
        if (stopping && now >= stop_deadline && !cancelled_all) {
            //  Grace is over: ask the running jobs to stop, and give them a
            //  last moment to report, so the broker can retry them at once.
            for (uint32_t i = 0; i < n; i++)
                if (self->slots[i].job)
                    jobq_slot_send_cancel(zactor_sock(self->slots[i].actor),
                                          self->slots[i].job);
            cancelled_all = true;
            stop_deadline = now + 1000;
        } else if (stopping && cancelled_all && now >= stop_deadline) {
            break;
        }
        if (now >= self->next_heartbeat) {
            jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
            s_held(self, &hb);
            s_send(self, &hb);
            self->next_heartbeat = now + self->cfg.heartbeat_ms;
        }
        if (now > self->last_heard + self->cfg.broker_timeout_ms) {
            if (self->cfg.verbose)
                fprintf(stderr, "jobq-worker: broker silent, reconnecting\n");
            rc = s_connect(self);
            if (rc != JOBQ_OK)
                break;
        }
        items[0] =
            (zmq_pollitem_t){zsock_resolve(self->dealer), 0, ZMQ_POLLIN, 0};
        for (uint32_t i = 0; i < n; i++)
            items[i + 1] = (zmq_pollitem_t){
                zsock_resolve(zactor_sock(self->slots[i].actor)), 0, ZMQ_POLLIN,
                0};
        long timeout = (long) (self->next_heartbeat - now);
        if (timeout > 200)
            timeout = 200;  //  so a stop request is seen promptly
        if (zmq_poll(items, (int) n + 1, timeout) < 0 && errno != EINTR)
            break;
        //  Bounded work per turn: at most 64 broker messages and one
        //  message per slot.
        for (int k = 0; k < 64 && (items[0].revents & ZMQ_POLLIN); k++) {
            s_from_broker(self, stopping);
            int ev = zsock_events(self->dealer);
            if (!(ev & ZMQ_POLLIN))
                break;
        }
        for (uint32_t i = 0; i < n; i++)
            if (items[i + 1].revents & ZMQ_POLLIN)
                s_from_slot(self, &self->slots[i]);
    }
    //  Results already queued to the broker get a moment to leave.
    if (self->dealer)
        zsock_set_linger(self->dealer, 1000);
    for (uint32_t i = 0; i < started; i++)
        zactor_destroy(&self->slots[i].actor);
    while (self->qcount > 0) {
        free(self->queue[self->qhead].body);
        self->qhead = (self->qhead + 1) % self->cfg.prefetch;
        self->qcount--;
    }
    zsock_destroy(&self->dealer);
    free(items);
    return rc;
}
