/*  jobq_engine.c: the job state machine.

    Lifetimes inside a handler: a job read from the store borrows from the
    transaction until the next put. Every handler therefore reads, builds
    the new state, encodes all replies and events (copies into the turn's
    arena), and puts last.
*/
#include "jobq_engine.h"
#include "jobq_leases.h"

#include <assert.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ARENA_MAX ((size_t) 1 << 30)  //  hard stop; the shell caps lower
//  Ids are wall ms << 16. The committed id ceiling runs this far (ten
//  minutes of ids) ahead of the ids handed out, and is moved on when half
//  of that is left: one small write per five minutes at most.
#define S_ID_RESERVE ((uint64_t) 600000 << 16)
//  Distinct types an ENQUEUE_BATCH reply names as unserved, at most.
#define S_UNSERVED_MAX 64
//  Jobs one turn's subscriptions may publish, 2^13: above the messages a
//  turn reads (1,024 by default), so only a crowded neighbourhood drops one.
#define S_SNAP_SLOTS 8192
//  Served types a STATS reply lists, at most.
#define S_SERVED_SHOWN 4096
//  STATS `oldest`: the types with pending jobs looked at, at most, and the
//  priority levels of each.
#define S_OLDEST_TYPES  256
#define S_OLDEST_LEVELS 16

typedef struct {
    uint8_t ident[255];                   //  routing id
    size_t ident_len;                     //  bytes in ident
    char name[JOBQ_WORKER_NAME_MAX + 1];  //  printable form of ident
    char label[65];                       //  name the worker gave itself
    char types[JOBQ_MAX_WORKER_TYPES][JOBQ_MAX_TYPE_LEN + 1];  //  it runs
    uint32_t ntypes;         //  entries in types
    uint32_t capacity;       //  concurrent jobs it accepts
    uint32_t active;         //  leases it holds
    uint64_t last_seen;      //  monotonic ms of its last message
    uint64_t starved_epoch;  //  ready_epoch when nothing matched
    uint32_t lists_seen;     //  job lists received from it
    bool gone;               //  unreachable; drop next tick
    bool unheard;            //  a worker connection closed since it was
                             //  last heard: no JOB until it is again
} s_worker_t;

typedef struct {
    int kind;          //  jobq_act_kind_t
    int cmd;           //  jobq_cmd_t
    size_t peer_off;   //  in the arena
    size_t peer_len;   //  bytes
    size_t body_off;   //  in the arena
    size_t body_len;   //  bytes
    uint64_t rid;      //  client request id, for the failure rewrite
    uint64_t job;      //  for JOB: the job dispatched
    uint32_t attempt;  //  for JOB: its attempt
    bool durable;      //  depends on the commit
    bool early;        //  a JOB that may go out before the commit
    bool hold;         //  a JOB kept after the commit until the shared
                       //  store confirms the claim (s_held_t)
} s_action_t;

//  Shared store: a committed JOB not sent yet. JetStream before 2.11 can
//  take two claims of one job made on the same revision; the store says
//  which came first when the write comes back through its watch, and only
//  that broker sends the JOB (docs/STORAGE.md 10.4).
typedef struct {
    uint64_t id;       //  job
    uint32_t attempt;  //  its attempt
    uint64_t until;    //  monotonic ms: given up (and the lease dropped)
    uint8_t *msg;      //  peer (peer_len bytes), then the encoded body
    size_t peer_len;
    size_t body_len;
} s_held_t;

#define S_HELD_MS 5000  //  a claim not confirmed by then is dropped

struct jobq_engine {
    jobq_store_t *store;       //  borrowed
    jobq_engine_config_t cfg;  //  copy
    jobq_leases_t *leases;     //  running attempts
    zhashx_t *workers;         //  name -> s_worker_t (owned)
    zhashx_t *served;          //  type -> connected workers running it
    char (*oldest_types)[JOBQ_MAX_TYPE_LEN + 1];  //  STATS' scratch
    uint64_t *oldest_age;                         //  (S_OLDEST_TYPES each)
    zhashx_t *allowed;      //  types ENQUEUE may use; NULL = any
    uint64_t wall;          //  this turn's wall time, ms
    uint64_t mono;          //  this turn's monotonic time, ms
    uint64_t seq;           //  last event sequence number
    uint64_t last_id;       //  last job id handed out
    uint64_t seq_at_begin;  //  for rollback
    //  Jobs whose state a subscription published this turn: the next
    //  subscription to one of them in the same turn publishes nothing.
    uint64_t snap_ids[S_SNAP_SLOTS];
    uint32_t snap_turn[S_SNAP_SLOTS];  //  the turn that wrote the slot
    uint32_t turn;                     //  turns begun, from 1
    uint64_t last_id_at_begin;         //  ids above were made this turn
    uint64_t id_ceiling;               //  committed; no id above went out early
    uint64_t ready_epoch;              //  bumped whenever a job becomes ready
    uint64_t next_heartbeat;  //  monotonic ms of the next heartbeat round
    uint64_t next_promote;    //  monotonic ms the next delayed job is due
    uint64_t next_check;      //  monotonic ms of the next liveness scan
    uint64_t next_sweep;      //  monotonic ms of the next retention sweep
    uint64_t rng;             //  xorshift state for jitter
    int broken;               //  first store error of the turn
    bool in_turn;             //  between begin and commit
    bool draining;            //  refusing new work
    bool store_full;          //  refusing new work for lack of space
    bool need_dispatch;       //  something may be dispatchable
    bool shared;              //  other brokers share the store
    int slot;                 //  shared: ours, in the ids' low 6 bits
    uint64_t next_take;       //  shared: monotonic ms another broker's job
                              //  may be taken (s_claimable); 0 = none
    uint64_t last_begin;      //  shared: mono of the last turn's begin
    uint32_t taken_others;    //  shared: other brokers' jobs taken this turn
    s_held_t *held;           //  shared: JOBs waiting for their claim
    size_t nheld, cheld;
    jobq_lease_t *released;  //  shared: leases this turn let go
    size_t nreleased, creleased;
    jobq_mp_writer_t arena;                //  peers and bodies of this turn
    jobq_mp_writer_t scratch;              //  for building pieces (LIST items)
    uint64_t held_ids[JOBQ_MAX_CAPACITY];  //  a worker's list, ids
    uint32_t held_attempts[JOBQ_MAX_CAPACITY];    //  and attempts
    s_action_t *actions;                          //  this turn's actions
    size_t nactions;                              //  used
    size_t cap_actions;                           //  allocated
    jobq_engine_stats_t stats;                    //  counters
    char refused_last[JOBQ_REFUSED_COUNT_][256];  //  per cause, for the log
};

void
jobq_engine_config_defaults(jobq_engine_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->lease_ms = 15000;
    cfg->heartbeat_ms = 1000;
    cfg->worker_timeout_ms = 5000;
    cfg->idem_window_ms = 24ull * 3600 * 1000;
    cfg->retry_base_ms = 1000;
    cfg->retry_max_ms = 300000;
    cfg->max_workers = 1024;
    cfg->dispatch_per_turn = 4096;
    cfg->promote_per_turn = 4096;
    cfg->list_examine = 10000;
    cfg->retain_ms = 7ull * 24 * 3600 * 1000;
    cfg->seed = 0x9e3779b97f4a7c15ULL;
}

static void
s_worker_free(void **item)
{
    free(*item);
    *item = NULL;
}

jobq_engine_t *
jobq_engine_new(jobq_store_t *store, const jobq_engine_config_t *cfg)
{
    jobq_engine_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->cfg = *cfg;
    self->rng = cfg->seed ? cfg->seed : 1;
    self->shared = jobq_store_shared(store);
    self->leases = jobq_leases_new();
    self->workers = zhashx_new();
    self->served = zhashx_new();
    self->oldest_types = calloc(S_OLDEST_TYPES, sizeof *self->oldest_types);
    self->oldest_age = calloc(S_OLDEST_TYPES, sizeof *self->oldest_age);
    if (!self->leases || !self->workers || !self->served ||
        !self->oldest_types || !self->oldest_age) {
        jobq_engine_destroy(&self);
        return NULL;
    }
    //  Counts are kept as the item pointers themselves: no destructor.
    zhashx_set_destructor(self->served, NULL);
    zhashx_set_duplicator(self->served, NULL);
    if (cfg->types && cfg->types[0]) {
        self->allowed = zhashx_new();
        if (!self->allowed) {
            jobq_engine_destroy(&self);
            return NULL;
        }
        zhashx_set_destructor(self->allowed, NULL);
        zhashx_set_duplicator(self->allowed, NULL);
        for (const char *p = cfg->types; *p;) {
            size_t len = strcspn(p, ",");
            char t[JOBQ_MAX_TYPE_LEN + 1];
            if (len >= 1 && len <= JOBQ_MAX_TYPE_LEN) {
                memcpy(t, p, len);
                t[len] = '\0';
                zhashx_update(self->allowed, t, (void *) 1);
            }
            p += len + (p[len] == ',');
        }
    }
    zhashx_set_destructor(self->workers, s_worker_free);
    jobq_mp_writer_init(&self->arena, S_ARENA_MAX);
    jobq_mp_writer_init(&self->scratch, S_ARENA_MAX);
    self->next_promote = 0;
    return self;
}

void
jobq_engine_destroy(jobq_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_engine_t *self = *self_p;
    jobq_leases_destroy(&self->leases);
    free(self->released);
    for (size_t i = 0; i < self->nheld; i++)
        free(self->held[i].msg);
    free(self->held);
    zhashx_destroy(&self->workers);
    zhashx_destroy(&self->served);
    free(self->oldest_types);
    free(self->oldest_age);
    zhashx_destroy(&self->allowed);
    jobq_mp_writer_fini(&self->arena);
    jobq_mp_writer_fini(&self->scratch);
    free(self->actions);
    free(self);
    *self_p = NULL;
}

//  --- actions ----------------------------------------------------------------

static s_action_t *
s_action(
    jobq_engine_t *self, int kind, int cmd, const void *peer, size_t peer_len)
{
    if (self->nactions == self->cap_actions) {
        size_t cap = self->cap_actions ? self->cap_actions * 2 : 256;
        s_action_t *a = realloc(self->actions, cap * sizeof *a);
        if (!a)
            return NULL;
        self->actions = a;
        self->cap_actions = cap;
    }
    s_action_t *a = &self->actions[self->nactions++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->cmd = cmd;
    a->durable = true;
    a->peer_off = self->arena.len;
    a->peer_len = peer_len;
    jobq_mp_write_raw(&self->arena, peer, peer_len);
    a->body_off = self->arena.len;
    return a;
}

//  Close the body of the last action: everything written since it began.
static void
s_action_end(jobq_engine_t *self, s_action_t *a)
{
    if (!a)
        return;
    a->body_len = self->arena.len - a->body_off;
}

static jobq_mp_writer_t *
s_w(jobq_engine_t *self)
{
    return &self->arena;
}

static void
s_reply_error(jobq_engine_t *self,
              const uint8_t *peer,
              size_t peer_len,
              uint64_t rid,
              int err,
              const char *why,
              bool durable)
{
    s_action_t *a =
        s_action(self, JOBQ_ACT_CLIENT, JOBQ_CMD_ERROR, peer, peer_len);
    if (!a)
        return;
    a->rid = rid;
    a->durable = durable;
    jobq_msg_write_error(s_w(self), rid, err, why);
    s_action_end(self, a);
}

//  Start a REPLY to peer for request rid, with nfields fields after rid;
//  write them, then close with s_action_end. NULL if out of memory.
static s_action_t *
s_reply_begin(jobq_engine_t *self,
              const uint8_t *peer,
              size_t peer_len,
              uint64_t rid,
              uint32_t nfields)
{
    s_action_t *a =
        s_action(self, JOBQ_ACT_CLIENT, JOBQ_CMD_REPLY, peer, peer_len);
    if (a) {
        a->rid = rid;
        jobq_msg_reply_begin(s_w(self), rid, nfields);
    }
    return a;
}

//  The ENQUEUE reply: {rid, id, created}, and `unserved: true` when no
//  connected worker runs the job's type.
static void
s_reply_enqueued(jobq_engine_t *self,
                 const uint8_t *peer,
                 size_t peer_len,
                 uint64_t rid,
                 uint64_t id,
                 bool created,
                 bool unserved)
{
    s_action_t *a = s_reply_begin(self, peer, peer_len, rid, unserved ? 3 : 2);
    if (!a)
        return;
    char hex[JOBQ_ID_LEN + 1];
    jobq_id_format(id, hex);
    jobq_mp_write_cstr(s_w(self), "id");
    jobq_mp_write_cstr(s_w(self), hex);
    jobq_mp_write_cstr(s_w(self), "created");
    jobq_mp_write_bool(s_w(self), created);
    if (unserved) {
        jobq_mp_write_cstr(s_w(self), "unserved");
        jobq_mp_write_bool(s_w(self), true);
    }
    s_action_end(self, a);
}

//  A message to the worker at routing id peer. A durable one (JOB, ACK, and
//  a CANCEL_JOB that ends an attempt) goes out only if the turn commits;
//  the others go out anyway.
static s_action_t *
s_to_peer(jobq_engine_t *self,
          const uint8_t *peer,
          size_t peer_len,
          const jobq_msg_t *m,
          bool durable)
{
    s_action_t *a = s_action(self, JOBQ_ACT_WORKER, m->cmd, peer, peer_len);
    if (!a)
        return NULL;
    jobq_msg_encode(m, s_w(self));
    s_action_end(self, a);
    if (m->cmd == JOBQ_CMD_JOB) {
        a->job = m->u.dispatch.id;
        a->attempt = m->u.dispatch.attempt;
    }
    a->durable = durable;
    return a;
}

//  A message to registered worker w (see s_to_peer).
static s_action_t *
s_to_worker(jobq_engine_t *self,
            const s_worker_t *w,
            const jobq_msg_t *m,
            bool durable)
{
    return s_to_peer(self, w->ident, w->ident_len, m, durable);
}

//  --- who runs what, and why a job waits ----------------------------------

//  Connected workers that run type.
static uint32_t
s_served(const jobq_engine_t *self, jobq_str_t type)
{
    char t[JOBQ_MAX_TYPE_LEN + 1];
    if (type.len > JOBQ_MAX_TYPE_LEN)
        return 0;
    memcpy(t, type.ptr, type.len);
    t[type.len] = '\0';
    return (uint32_t) (uintptr_t) zhashx_lookup(self->served, t);
}

//  Count w's types in (+1) or out (-1) of the served table.
static void
s_serve(jobq_engine_t *self, const s_worker_t *w, int delta)
{
    for (uint32_t i = 0; i < w->ntypes; i++) {
        uintptr_t n = (uintptr_t) zhashx_lookup(self->served, w->types[i]);
        n = delta > 0 ? n + 1 : n > 0 ? n - 1 : 0;
        if (n)
            zhashx_update(self->served, w->types[i], (void *) n);
        else
            zhashx_delete(self->served, w->types[i]);
    }
}

//  Monotonic ms t as wall-clock ms.
static uint64_t
s_mono_to_wall(const jobq_engine_t *self, uint64_t t)
{
    return t > self->mono ? self->wall + (t - self->mono) : self->wall;
}

//  Why j, not ended, is not running now: a job map's wait (PROTOCOL.md,
//  section 6). Costs a lookup or two; nothing is read from the store.
static void
s_wait_of(const jobq_engine_t *self, jobq_jobdata_t *j)
{
    j->wait = JOBQ_WAIT_NONE;
    j->wait_until = 0;
    if (j->status == JOBQ_PENDING) {
        if (j->run_at > self->wall) {
            j->wait = j->attempts ? JOBQ_WAIT_RETRY : JOBQ_WAIT_DELAYED;
            j->wait_until = j->run_at;
        } else {
            j->wait = s_served(self, j->type) ? JOBQ_WAIT_QUEUED
                                              : JOBQ_WAIT_NO_WORKER;
        }
    } else if (j->status == JOBQ_RUNNING) {
        jobq_lease_t *l = jobq_leases_get(self->leases, j->id);
        if (!l || l->ended)
            return;
        const s_worker_t *w = l->worker;
        uint64_t until = l->lease_deadline;
        if (w) {
            //  Silent for two heartbeats: the worker may be gone.
            if (self->mono <= w->last_seen + 2 * self->cfg.heartbeat_ms)
                return;
            uint64_t gone = w->last_seen + self->cfg.worker_timeout_ms;
            uint64_t lease = w->last_seen + self->cfg.lease_ms;
            until = gone < lease ? gone : lease;
        }
        j->wait = JOBQ_WAIT_WORKER_LOST;
        j->wait_until = s_mono_to_wall(self, until);
    }
}

//  Write the job map of j, with its wait.
static void
s_write_job(const jobq_engine_t *self,
            jobq_mp_writer_t *w,
            const jobq_jobdata_t *j,
            int flags)
{
    jobq_jobdata_t k = *j;
    s_wait_of(self, &k);
    jobq_msg_write_job(w, &k, flags);
}

//  Publish the state of j on its topic: the job map without input, output
//  and errors, so an event stays a few kB at most (message 1 kB, error
//  4 kB) and a subscriber that never reads costs at most --event-hwm of
//  them. Watchers fetch the output with STATUS.
static void
s_event(jobq_engine_t *self, const jobq_jobdata_t *j)
{
    char topic[JOBQ_TOPIC_MAX];
    size_t tlen = jobq_topic_format(j->shop.ptr, j->shop.len, j->id, topic);
    s_action_t *a = s_action(self, JOBQ_ACT_PUBLISH, 0, topic, tlen);
    if (!a)
        return;
    s_write_job(self, s_w(self), j, 0);
    s_action_end(self, a);
}

//  Record a change to n: a new version and sequence number, then the event.
static void
s_changed(jobq_engine_t *self, jobq_jobdata_t *n)
{
    n->version++;
    n->seq = ++self->seq;
    n->updated_at = self->wall;
    //  On a shared store every broker publishes every change as the
    //  store brings it in (jobq_engine_begin), this one's own included.
    if (!self->shared)
        s_event(self, n);
}

static void
s_put(jobq_engine_t *self, const jobq_jobdata_t *old, const jobq_jobdata_t *n)
{
    if (self->broken)
        return;
    int rc = jobq_store_put(self->store, old, n);
    if (rc != JOBQ_OK)
        self->broken = rc;
    if (n->queue == JOBQ_QUEUE_READY &&
        (!old || old->queue != JOBQ_QUEUE_READY)) {
        self->ready_epoch++;
        self->need_dispatch = true;
    }
}

//  --- workers ---------------------------------------------------------------

//  The printable name of a routing id: itself when it is 1..64 printable
//  bytes, else "0x" and hex when that fits; "" when it cannot be named.
//  Only hex names start with "0x", so no two routing ids share a name.
static void
s_peer_name(const uint8_t *id, size_t len, char *out)
{
    bool printable = len >= 1 && len <= JOBQ_WORKER_NAME_MAX &&
                     !(len >= 2 && id[0] == '0' && id[1] == 'x');
    for (size_t i = 0; printable && i < len; i++)
        printable = id[i] > 0x20 && id[i] < 0x7f;
    if (printable) {
        memcpy(out, id, len);
        out[len] = '\0';
    } else if (len >= 1 && 2 + 2 * len <= JOBQ_WORKER_NAME_MAX) {
        static const char hex[] = "0123456789abcdef";
        out[0] = '0', out[1] = 'x';
        for (size_t i = 0; i < len; i++) {
            out[2 + 2 * i] = hex[id[i] >> 4];
            out[3 + 2 * i] = hex[id[i] & 0xf];
        }
        out[2 + 2 * len] = '\0';
    } else {
        out[0] = '\0';
    }
}

static bool
s_str_eq(jobq_str_t a, const char *b)
{
    return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static s_worker_t *
s_worker_find(jobq_engine_t *self, const uint8_t *peer, size_t len)
{
    char name[JOBQ_WORKER_NAME_MAX + 1];
    s_peer_name(peer, len, name);
    return name[0] ? zhashx_lookup(self->workers, name) : NULL;
}

//  --- retries ---------------------------------------------------------------

static uint64_t
s_rand(jobq_engine_t *self)
{
    uint64_t x = self->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->rng = x;
    return x;
}

//  Delay before attempt `attempts + 1`: base * 2^(attempts - 1), capped,
//  with "equal jitter" (half fixed, half random) so retries spread out.
static uint64_t
s_backoff(jobq_engine_t *self, uint32_t attempts)
{
    uint64_t d = self->cfg.retry_base_ms;
    for (uint32_t i = 1; i < attempts && d < self->cfg.retry_max_ms; i++)
        d *= 2;
    if (d > self->cfg.retry_max_ms)
        d = self->cfg.retry_max_ms;
    uint64_t half = d / 2;
    return half + (half ? s_rand(self) % (half + 1) : 0);
}

//  Append {attempt, error, at} to the errors array of n; the new array is
//  written to the scratch buffer, which n->errors then points into.
static void
s_add_error(jobq_engine_t *self, jobq_jobdata_t *n, jobq_str_t error)
{
    jobq_mp_writer_t *w = &self->scratch;
    jobq_mp_writer_reset(w);
    uint32_t count = 0;
    jobq_mp_reader_t r;
    jobq_bytes_t rest = {NULL, 0};
    if (n->errors.len) {
        jobq_mp_reader_init(&r, n->errors.ptr, n->errors.len);
        if (jobq_mp_read_array(&r, &count) == JOBQ_OK) {
            rest.ptr = r.p;
            rest.len = (size_t) (r.end - r.p);
        } else {
            count = 0;
        }
    }
    //  Keep the newest JOBQ_MAX_ATTEMPTS entries: RETRY can add attempts
    //  without end, and the record and its replies must stay bounded.
    uint32_t drop = 0;
    while (count - drop >= JOBQ_MAX_ATTEMPTS) {
        jobq_bytes_t skipped;
        if (jobq_mp_skip(&r, &skipped) != JOBQ_OK)
            break;
        drop++;
    }
    if (drop) {
        rest.ptr = r.p;
        rest.len = (size_t) (r.end - r.p);
    }
    jobq_mp_write_array(w, count - drop + 1);
    jobq_mp_write_raw(w, rest.ptr, rest.len);
    jobq_mp_write_map(w, 3);
    jobq_mp_write_cstr(w, "attempt");
    jobq_mp_write_uint(w, n->attempts);
    jobq_mp_write_cstr(w, "error");
    jobq_mp_write_str(w, error.ptr, error.len);
    jobq_mp_write_cstr(w, "at");
    jobq_mp_write_uint(w, self->wall);
    if (jobq_mp_writer_error(w) == JOBQ_OK) {
        n->errors.ptr = w->data;
        n->errors.len = w->len;
    }
}

//  The error of a FAIL that gave none.
#define S_NO_MESSAGE "failed with no message"

//  An attempt of running job j ended in failure (error, timeout, lost
//  worker). Retry with backoff while attempts remain, else fail for good.
//  Caller removes or ends the lease.
static void
s_attempt_failed(jobq_engine_t *self,
                 const jobq_jobdata_t *j,
                 jobq_str_t error,
                 bool permanent)
{
    jobq_jobdata_t n = *j;
    if (error.len > JOBQ_MAX_ERROR_LEN)
        error.len = JOBQ_MAX_ERROR_LEN;
    //  A job map's `error` is nil only when nothing failed: a FAIL with an
    //  empty text gets one, the same in `error` and in `errors`.
    if (!error.len)
        error = (jobq_str_t){S_NO_MESSAGE, sizeof S_NO_MESSAGE - 1};
    s_add_error(self, &n, error);
    n.error = error;
    n.worker.len = 0;
    n.lease_until = 0;
    if (!permanent && n.attempts < n.max_attempts) {
        //  Attempts of this run: a RETRY starts the backoff again.
        uint32_t budget = n.budget ? n.budget : n.max_attempts;
        uint32_t run = budget > n.max_attempts - n.attempts
                           ? budget - (n.max_attempts - n.attempts)
                           : 1;
        uint64_t delay = s_backoff(self, run);
        //  The last attempt's progress would be stale: the error and the
        //  retry time (the job map's wait) say what is going on.
        n.status = JOBQ_PENDING;
        n.progress = 0;
        n.message.len = 0;
        n.run_at = self->wall + delay;
        n.queue = delay ? JOBQ_QUEUE_DELAYED : JOBQ_QUEUE_READY;
        if (self->next_promote > self->mono + delay)
            self->next_promote = self->mono + delay;
        self->stats.retried++;
    } else {
        n.status = JOBQ_FAILED;
        n.queue = JOBQ_QUEUE_NONE;
        n.completed_at = self->wall;
        self->stats.failed++;
    }
    s_changed(self, &n);
    s_put(self, j, &n);
}

//  --- client requests ------------------------------------------------------

//  New work is refused while draining or while the store is full.
static bool
s_refuse_new(jobq_engine_t *self,
             const uint8_t *peer,
             size_t peer_len,
             uint64_t rid)
{
    if (self->draining)
        s_reply_error(self, peer, peer_len, rid, JOBQ_EUNAVAILABLE,
                      "broker is shutting down", false);
    else if (self->store_full)
        s_reply_error(self, peer, peer_len, rid, JOBQ_ESTOREFULL,
                      "storage full; retry later", false);
    return self->draining || self->store_full;
}

//  With --types, a type outside the list is refused (entry: its index in
//  a batch, or -1).
static bool
s_refuse_type(jobq_engine_t *self,
              const uint8_t *peer,
              size_t peer_len,
              uint64_t rid,
              jobq_str_t type,
              long entry)
{
    char t[JOBQ_MAX_TYPE_LEN + 1];
    if (!self->allowed || type.len > JOBQ_MAX_TYPE_LEN)
        return false;
    memcpy(t, type.ptr, type.len);
    t[type.len] = '\0';
    if (zhashx_lookup(self->allowed, t))
        return false;
    char why[JOBQ_MAX_TYPE_LEN + 300], at[32] = "";
    if (entry >= 0)
        snprintf(at, sizeof at, "jobs[%ld]: ", entry);
    snprintf(why, sizeof why,
             "%sunknown job type '%s': this broker runs only %s", at, t,
             self->cfg.types);
    s_reply_error(self, peer, peer_len, rid, JOBQ_ETYPE, why, false);
    return true;
}

//  Ids grow with the clock (ms << 16). On a shared store the low 6 bits
//  are the broker's slot, so that brokers never make the same id.
//  On a shared store, a key whose job is missing this long after it was
//  written belongs to a turn that failed (its commit waits 5 s at most).
#define S_ORPHAN_KEY_MS 7000

static uint64_t
s_next_id(jobq_engine_t *self)
{
    uint64_t id = self->wall << 16;
    if (id <= self->last_id)
        id = self->last_id + 1;
    if (self->shared) {
        uint64_t s = (uint64_t) self->slot & 63;
        uint64_t c = (id & ~63ull) | s;
        id = c < id ? c + 64 : c;
    }
    self->last_id = id;
    return id;
}

//  The job's current state leaves the engine other than as its own
//  progress event (a reply, a LIST page, a snapshot): a later report in
//  this turn must make a new change, or two states would share one
//  version and seq (see s_progress).
static void
s_shown(jobq_engine_t *self, uint64_t id)
{
    jobq_lease_t *l = jobq_leases_get(self->leases, id);
    if (l)
        l->progress_seq = 0;
}

static void
s_reply_job(jobq_engine_t *self,
            const uint8_t *peer,
            size_t peer_len,
            uint64_t rid,
            const jobq_jobdata_t *j)
{
    s_shown(self, j->id);
    s_action_t *a = s_reply_begin(self, peer, peer_len, rid, 1);
    if (!a)
        return;
    jobq_mp_write_cstr(s_w(self), "job");
    s_write_job(self, s_w(self), j, JOBQ_JOBMAP_INPUT | JOBQ_JOBMAP_OUTPUT);
    s_action_end(self, a);
}

//  True if idempotency key (its stored form) names a job within the window:
//  its id into *id. A key stored before keys were per shop (the key alone)
//  counts only for a job of the same shop.
static bool
s_idem_find(jobq_engine_t *self,
            jobq_str_t stored,
            jobq_str_t shop,
            jobq_str_t key,
            uint64_t *id)
{
    uint64_t known = 0, at = 0;
    bool legacy = false;
    if (jobq_store_idem_get(self->store, stored, &known, &at) != JOBQ_OK) {
        //  A key with a zero byte could spell another shop's stored form.
        if (memchr(key.ptr, 0, key.len) ||
            jobq_store_idem_get(self->store, key, &known, &at) != JOBQ_OK)
            return false;
        legacy = true;
    }
    if (!(self->wall < at || self->wall - at < self->cfg.idem_window_ms))
        return false;
    //  On a shared store a turn can fail after its keys were written and
    //  before its jobs were (docs/STORAGE.md 10.4): a key whose job does
    //  not exist is free once the turn that wrote it is surely over; until
    //  then this turn fails (unavailable) and the client tries again.
    jobq_jobdata_t j;
    if (self->shared &&
        jobq_store_get(self->store, known, &j) == JOBQ_ENOTFOUND) {
        if (self->wall < at + S_ORPHAN_KEY_MS && !self->broken)
            self->broken = JOBQ_EUNAVAILABLE;
        return false;
    }
    if (legacy) {
        if (jobq_store_get(self->store, known, &j) != JOBQ_OK ||
            j.shop.len != shop.len || memcmp(j.shop.ptr, shop.ptr, shop.len))
            return false;
    }
    *id = known;
    return true;
}

//  Create the job m asks for, or find the one its key made: *id, and
//  *created false for a known key.
static void
s_enqueue_one(jobq_engine_t *self,
              const jobq_msg_t *m,
              uint64_t *id,
              bool *created)
{
    uint8_t ik[JOBQ_IDEM_KEY_MAX];
    jobq_str_t key = {(const char *) ik, 0};
    if (m->u.enqueue.key.len) {
        key.len = jobq_store_idem_key(ik, m->u.enqueue.shop, m->u.enqueue.key);
        if (s_idem_find(self, key, m->u.enqueue.shop, m->u.enqueue.key, id)) {
            *created = false;
            return;
        }
    }
    jobq_jobdata_t n;
    memset(&n, 0, sizeof n);
    n.id = s_next_id(self);
    n.type = m->u.enqueue.type;
    n.shop = m->u.enqueue.shop;
    n.key = m->u.enqueue.key;
    n.input = m->u.enqueue.input;
    n.status = JOBQ_PENDING;
    n.max_attempts = m->u.enqueue.max_attempts;
    n.budget = m->u.enqueue.max_attempts;
    n.priority = m->u.enqueue.priority;
    n.timeout_ms = m->u.enqueue.timeout_ms;
    n.created_at = self->wall;
    n.run_at = self->wall + m->u.enqueue.delay_ms;
    n.queue = m->u.enqueue.delay_ms ? JOBQ_QUEUE_DELAYED : JOBQ_QUEUE_READY;
    if (m->u.enqueue.delay_ms &&
        self->next_promote > self->mono + m->u.enqueue.delay_ms)
        self->next_promote = self->mono + m->u.enqueue.delay_ms;
    s_changed(self, &n);
    if (key.len && !self->broken) {
        int rc = jobq_store_idem_put(self->store, key, n.id, self->wall);
        if (rc != JOBQ_OK)
            self->broken = rc;
    }
    s_put(self, NULL, &n);
    self->stats.enqueued++;
    *id = n.id;
    *created = true;
}

//  True when the ENQUEUE (or batch entry) one names a job its idempotency
//  key already made: it adds nothing, so no quota refuses it.
static bool
s_is_repeat(jobq_engine_t *self, const jobq_msg_t *one)
{
    if (!one->u.enqueue.key.len)
        return false;
    uint8_t ik[JOBQ_IDEM_KEY_MAX];
    jobq_str_t key = {(const char *) ik, 0};
    key.len = jobq_store_idem_key(ik, one->u.enqueue.shop, one->u.enqueue.key);
    uint64_t id;
    return s_idem_find(self, key, one->u.enqueue.shop, one->u.enqueue.key, &id);
}

//  True when a quota applies to requests of key who.
static bool
s_quotas(const jobq_engine_t *self, const jobq_key_t *who)
{
    return self->cfg.quota_pending || self->cfg.quota_bytes ||
           (who && (who->quota_pending || who->quota_bytes));
}

//  Refuse with quota_exceeded when shop, given jobs more unfinished jobs
//  and about bytes more bytes, would pass its quota: the key's
//  (quota-pending=, quota-bytes=) or else the broker's. prefix names a
//  batch entry. True when refused.
static bool
s_refuse_quota(jobq_engine_t *self,
               const jobq_key_t *who,
               const uint8_t *peer,
               size_t peer_len,
               uint64_t rid,
               jobq_str_t shop,
               uint64_t jobs,
               uint64_t bytes,
               const char *prefix)
{
    uint64_t qp = who && who->quota_pending ? who->quota_pending
                                            : self->cfg.quota_pending;
    uint64_t qb =
        who && who->quota_bytes ? who->quota_bytes : self->cfg.quota_bytes;
    if (!qp && !qb)
        return false;
    uint64_t c[JOBQ_STORE_SHOP_FIELDS];
    if (jobq_store_shop_counts(self->store, shop, c) != JOBQ_OK)
        return false;  //  the turn's commit meets the store's trouble
    uint64_t unfinished = c[JOBQ_PENDING] + c[JOBQ_RUNNING];
    char why[300];
    if (qp && unfinished + jobs > qp)
        snprintf(why, sizeof why,
                 "%sshop %.*s holds %llu unfinished jobs, and its quota is "
                 "%llu",
                 prefix, (int) shop.len, shop.ptr,
                 (unsigned long long) unfinished, (unsigned long long) qp);
    else if (qb && c[JOBQ_STATUS_COUNT_] + bytes > qb)
        snprintf(why, sizeof why,
                 "%sshop %.*s holds %llu bytes of jobs, and its quota is "
                 "%llu",
                 prefix, (int) shop.len, shop.ptr,
                 (unsigned long long) c[JOBQ_STATUS_COUNT_],
                 (unsigned long long) qb);
    else
        return false;
    s_reply_error(self, peer, peer_len, rid, JOBQ_EQUOTA, why, false);
    return true;
}

//  The bytes a new job's record takes, near enough for a quota: its input
//  and strings, and the fixed fields.
static uint64_t
s_new_bytes(const jobq_msg_t *one)
{
    return 128 + one->u.enqueue.input.len + one->u.enqueue.type.len +
           one->u.enqueue.shop.len + one->u.enqueue.key.len;
}

static void
s_enqueue(jobq_engine_t *self,
          const uint8_t *peer,
          size_t peer_len,
          const jobq_msg_t *m,
          const jobq_key_t *who)
{
    if (s_refuse_new(self, peer, peer_len, m->rid) ||
        s_refuse_type(self, peer, peer_len, m->rid, m->u.enqueue.type, -1))
        return;
    if (!s_is_repeat(self, m) &&
        s_refuse_quota(self, who, peer, peer_len, m->rid, m->u.enqueue.shop, 1,
                       s_new_bytes(m), ""))
        return;
    uint64_t id;
    bool created;
    s_enqueue_one(self, m, &id, &created);
    s_reply_enqueued(self, peer, peer_len, m->rid, id, created,
                     s_served(self, m->u.enqueue.type) == 0);
}

//  All the jobs of one ENQUEUE_BATCH, in one turn and so in one commit:
//  the reply lists their ids (and whether each was new) in order.
//  A batch's new jobs (a repeat of an idempotency key adds none), summed
//  per shop in one pass, each shop then checked once against its quota:
//  all or nothing, like the types. True when refused.
static bool
s_refuse_batch_quota(jobq_engine_t *self,
                     const jobq_key_t *who,
                     const uint8_t *peer,
                     size_t peer_len,
                     const jobq_msg_t *m)
{
    enum { SLOTS = 2048 };  //  a power of two, over twice JOBQ_MAX_BATCH
    typedef struct {
        jobq_str_t shop;  //  borrowed from the message
        uint64_t jobs, bytes;
        uint32_t first;  //  the entry that named it first
    } s_sum_t;
    static s_sum_t sums[SLOTS];
    static uint16_t used[JOBQ_MAX_BATCH];
    uint32_t nused = 0;
    jobq_mp_reader_t r;
    jobq_msg_batch_begin(m, &r);
    for (uint32_t i = 0; i < m->u.batch.count; i++) {
        jobq_msg_t one;
        if (jobq_msg_batch_next(&r, m, &one) != JOBQ_OK ||
            s_is_repeat(self, &one))
            continue;
        jobq_str_t shop = one.u.enqueue.shop;
        uint64_t h = 1469598103934665603ull;  //  FNV-1a
        for (size_t k = 0; k < shop.len; k++)
            h = (h ^ (uint8_t) shop.ptr[k]) * 1099511628211ull;
        size_t slot = (size_t) h & (SLOTS - 1);
        while (sums[slot].shop.ptr &&
               !(sums[slot].shop.len == shop.len &&
                 memcmp(sums[slot].shop.ptr, shop.ptr, shop.len) == 0))
            slot = (slot + 1) & (SLOTS - 1);
        if (!sums[slot].shop.ptr) {
            sums[slot] = (s_sum_t){shop, 0, 0, i};
            used[nused++] = (uint16_t) slot;
        }
        sums[slot].jobs++;
        sums[slot].bytes += s_new_bytes(&one);
    }
    bool refused = false;
    for (uint32_t u = 0; u < nused && !refused; u++) {
        s_sum_t *s = &sums[used[u]];
        char prefix[32];
        snprintf(prefix, sizeof prefix, "jobs[%u]: ", s->first);
        refused = s_refuse_quota(self, who, peer, peer_len, m->rid, s->shop,
                                 s->jobs, s->bytes, prefix);
    }
    for (uint32_t u = 0; u < nused; u++)
        sums[used[u]].shop.ptr = NULL;
    return refused;
}

static void
s_enqueue_batch(jobq_engine_t *self,
                const uint8_t *peer,
                size_t peer_len,
                const jobq_msg_t *m,
                const jobq_key_t *who)
{
    if (s_refuse_new(self, peer, peer_len, m->rid))
        return;
    jobq_mp_reader_t r;
    if (s_quotas(self, who) &&
        s_refuse_batch_quota(self, who, peer, peer_len, m))
        return;
    if (self->allowed) {
        //  All or nothing: every type is checked before any job is made.
        jobq_msg_batch_begin(m, &r);
        for (uint32_t i = 0; i < m->u.batch.count; i++) {
            jobq_msg_t one;
            if (jobq_msg_batch_next(&r, m, &one) == JOBQ_OK &&
                s_refuse_type(self, peer, peer_len, m->rid, one.u.enqueue.type,
                              (long) i))
                return;
        }
    }
    uint64_t ids[JOBQ_MAX_BATCH];
    bool created[JOBQ_MAX_BATCH];
    jobq_str_t unserved[S_UNSERVED_MAX];
    uint32_t n = 0, nunserved = 0;
    jobq_msg_batch_begin(m, &r);
    for (; n < m->u.batch.count; n++) {
        jobq_msg_t one;
        if (jobq_msg_batch_next(&r, m, &one) != JOBQ_OK)
            break;  //  decode checked every entry: cannot happen
        s_enqueue_one(self, &one, &ids[n], &created[n]);
        jobq_str_t t = one.u.enqueue.type;
        if (nunserved < S_UNSERVED_MAX && s_served(self, t) == 0) {
            uint32_t k = 0;
            while (k < nunserved &&
                   !(unserved[k].len == t.len &&
                     memcmp(unserved[k].ptr, t.ptr, t.len) == 0))
                k++;
            if (k == nunserved)
                unserved[nunserved++] = t;
        }
    }
    if (n != m->u.batch.count) {
        s_reply_error(self, peer, peer_len, m->rid, JOBQ_EINTERNAL,
                      "batch could not be read again", true);
        self->broken = self->broken ? self->broken : JOBQ_EINTERNAL;
        return;
    }
    s_action_t *a =
        s_reply_begin(self, peer, peer_len, m->rid, nunserved ? 3 : 2);
    if (!a)
        return;
    jobq_mp_writer_t *w = s_w(self);
    jobq_mp_write_cstr(w, "ids");
    jobq_mp_write_array(w, n);
    for (uint32_t i = 0; i < n; i++) {
        char hex[JOBQ_ID_LEN + 1];
        jobq_id_format(ids[i], hex);
        jobq_mp_write_str(w, hex, JOBQ_ID_LEN);
    }
    jobq_mp_write_cstr(w, "created");
    jobq_mp_write_array(w, n);
    for (uint32_t i = 0; i < n; i++)
        jobq_mp_write_bool(w, created[i]);
    if (nunserved) {
        jobq_mp_write_cstr(w, "unserved");
        jobq_mp_write_array(w, nunserved);
        for (uint32_t i = 0; i < nunserved; i++)
            jobq_mp_write_str(w, unserved[i].ptr, unserved[i].len);
    }
    s_action_end(self, a);
}

//  Read job id for a request of key who (NULL: no keys). A job of a shop
//  outside the key's is answered exactly as a missing one: a scoped key
//  cannot learn that another shop's job exists.
static bool
s_get_job(jobq_engine_t *self,
          const jobq_key_t *who,
          const uint8_t *peer,
          size_t peer_len,
          uint64_t rid,
          uint64_t id,
          jobq_jobdata_t *j)
{
    int rc = jobq_store_get(self->store, id, j);
    if (rc == JOBQ_OK && who && !jobq_key_shop(who, j->shop))
        rc = JOBQ_ENOTFOUND;
    if ((rc == JOBQ_ECORRUPT || rc == JOBQ_EVERSION) && who &&
        !who->all_shops) {
        //  Whose it is cannot be read: to a key of some shops it is no job
        //  (the damage is still counted and logged).
        self->stats.damaged++;
        rc = JOBQ_ENOTFOUND;
    }
    if (rc == JOBQ_OK)
        return true;
    char hex[JOBQ_ID_LEN + 1], why[64];
    jobq_id_format(id, hex);
    if (rc == JOBQ_ENOTFOUND)
        snprintf(why, sizeof why, "no job %s", hex);
    else
        snprintf(why, sizeof why, "job %s: %s", hex, jobq_strerror(rc));
    if (rc == JOBQ_ECORRUPT || rc == JOBQ_EVERSION)
        self->stats.damaged++;
    s_reply_error(self, peer, peer_len, rid, rc, why, false);
    return false;
}

static void
s_cancel(jobq_engine_t *self,
         const uint8_t *peer,
         size_t peer_len,
         const jobq_msg_t *m,
         const jobq_key_t *who)
{
    jobq_jobdata_t j;
    if (!s_get_job(self, who, peer, peer_len, m->rid, m->u.job.id, &j))
        return;
    if (jobq_status_is_final(j.status)) {
        char why[80];
        snprintf(why, sizeof why, "job already %s", jobq_status_name(j.status));
        s_reply_error(self, peer, peer_len, m->rid, JOBQ_ESTATE, why, false);
        return;
    }
    jobq_jobdata_t n = j;
    if (j.status == JOBQ_RUNNING) {
        //  The worker is told to stop; its slot stays taken until it says
        //  it stopped or its lease runs out.
        jobq_lease_t *l = jobq_leases_get(self->leases, j.id);
        if (l && l->worker) {
            jobq_msg_t c = {.cmd = JOBQ_CMD_CANCEL_JOB};
            c.u.cancel_job.id = j.id;
            c.u.cancel_job.attempt = l->attempt;
            s_to_worker(self, l->worker, &c, true);
        }
        if (l)
            l->ended = 1;
    }
    n.status = JOBQ_CANCELLED;
    self->stats.cancelled++;
    n.queue = JOBQ_QUEUE_NONE;
    n.completed_at = self->wall;
    n.worker.len = 0;
    n.lease_until = 0;
    n.error.ptr = "cancelled";
    n.error.len = strlen(n.error.ptr);
    s_changed(self, &n);
    s_reply_job(self, peer, peer_len, m->rid, &n);
    s_put(self, &j, &n);
}

static void
s_retry(jobq_engine_t *self,
        const uint8_t *peer,
        size_t peer_len,
        const jobq_msg_t *m,
        const jobq_key_t *who)
{
    if (s_refuse_new(self, peer, peer_len, m->rid))
        return;
    jobq_jobdata_t j;
    if (!s_get_job(self, who, peer, peer_len, m->rid, m->u.job.id, &j))
        return;
    if (j.status != JOBQ_FAILED && j.status != JOBQ_CANCELLED) {
        char why[80];
        snprintf(why, sizeof why,
                 "job is %s; only failed or cancelled "
                 "jobs can be retried",
                 jobq_status_name(j.status));
        s_reply_error(self, peer, peer_len, m->rid, JOBQ_ESTATE, why, false);
        return;
    }
    if (s_quotas(self, who)) {
        //  Reading the counts may write (pending deltas), which moves what
        //  j borrows: check with a copy, then read the job again.
        char shop[JOBQ_MAX_SHOP_LEN];
        size_t len = j.shop.len < sizeof shop ? j.shop.len : sizeof shop;
        memcpy(shop, j.shop.ptr, len);
        if (s_refuse_quota(self, who, peer, peer_len, m->rid,
                           (jobq_str_t){shop, len}, 1, 0, "") ||
            !s_get_job(self, who, peer, peer_len, m->rid, m->u.job.id, &j))
            return;
    }
    //  Attempt numbers never go back: they fence the leases, and a worker
    //  may still be stopping an attempt of this job. The job gets a fresh
    //  run of `budget` attempts, numbered on from the last one.
    uint32_t budget = j.budget ? j.budget : j.max_attempts;
    if (j.attempts > UINT32_MAX - budget) {
        s_reply_error(self, peer, peer_len, m->rid, JOBQ_ESTATE,
                      "job has used up its attempt numbers", false);
        return;
    }
    jobq_jobdata_t n = j;
    n.status = JOBQ_PENDING;
    n.queue = JOBQ_QUEUE_READY;
    n.run_at = self->wall;
    n.max_attempts = j.attempts + budget;
    n.budget = budget;
    n.progress = 0;
    n.completed_at = 0;
    n.output.len = 0;
    n.message.len = 0;
    s_changed(self, &n);
    s_reply_job(self, peer, peer_len, m->rid, &n);
    s_put(self, &j, &n);
}

typedef struct {
    jobq_engine_t *engine;  //  the engine listing
    jobq_mp_writer_t *w;    //  where items go
    uint32_t n;             //  items written
} s_list_t;

static int s_list_visit(void *arg, const jobq_jobdata_t *j);

//  The ids a walk of one shop found, for a LIST of several shops.
typedef struct {
    uint64_t *ids;  //  room for cap
    size_t n, cap;
} s_ids_t;

static int
s_ids_visit(void *arg, const jobq_jobdata_t *j)
{
    s_ids_t *s = arg;
    if (s->n == s->cap)
        return 1;
    s->ids[s->n++] = j->id;
    return 0;
}

static int
s_id_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? 1 : x > y ? -1 : 0;
}

//  LIST for a key of several shops and no shop asked for: each of its
//  shops' index walked (sharing the examine budget), the ids merged
//  newest first. Only the key's shops are ever looked at, so neither the
//  page nor its cursor tells anything of other shops. Writes the page to
//  l; JOBQ_OK or a store error.
static int
s_list_shops(jobq_engine_t *self,
             const jobq_key_t *who,
             jobq_store_query_t q,
             s_list_t *l,
             uint64_t *next)
{
    uint32_t per = q.max_examine / (uint32_t) who->nshops;
    q.max_examine = per ? per : 1;
    size_t cap = (size_t) q.limit * who->nshops;
    if (cap > self->cfg.list_examine + who->nshops)
        cap = self->cfg.list_examine + who->nshops;
    s_ids_t s = {malloc(cap * sizeof(uint64_t)), 0, cap};
    if (!s.ids)
        return JOBQ_ENOMEM;
    uint64_t frontier = 0;  //  ids at or below it may be missing
    for (size_t i = 0; i < who->nshops; i++) {
        q.shop = (jobq_str_t){who->shops[i], strlen(who->shops[i])};
        uint64_t shop_next = 0;
        int rc = jobq_store_query(self->store, &q, s_ids_visit, &s, &shop_next);
        if (rc != JOBQ_OK) {
            free(s.ids);
            return rc;
        }
        if (shop_next && shop_next - 1 > frontier)
            frontier = shop_next - 1;
    }
    qsort(s.ids, s.n, sizeof *s.ids, s_id_desc);
    size_t safe = 0;  //  ids above the frontier: every one was found
    while (safe < s.n && s.ids[safe] > frontier)
        safe++;
    size_t k = 0;
    *next = 0;
    for (; k < safe && l->n < q.limit; k++) {
        jobq_jobdata_t j;
        int rc = jobq_store_get(self->store, s.ids[k], &j);
        if (rc != JOBQ_OK) {
            free(s.ids);
            return rc == JOBQ_ENOTFOUND ? JOBQ_ECORRUPT : rc;
        }
        if (s_list_visit(l, &j))
            break;  //  the page is full in bytes
    }
    if (k < safe)
        *next = s.ids[k] + 1;  //  the next page starts with it
    else if (frontier)
        *next = frontier + 1;
    free(s.ids);
    return JOBQ_OK;
}

//  Room for the jobs of one LIST reply: a frame, less the reply's own
//  fields and headroom.
#define S_LIST_BYTES (JOBQ_MAX_FRAME_BYTES - 4096)

static int
s_list_visit(void *arg, const jobq_jobdata_t *j)
{
    s_list_t *l = arg;
    size_t before = l->w->len;
    s_shown(l->engine, j->id);
    s_write_job(l->engine, l->w, j, 0);
    if (l->w->len > S_LIST_BYTES && l->n > 0) {
        l->w->len = before;  //  a full page: this job starts the next one
        return 1;
    }
    l->n++;
    return 0;
}

static void
s_list(jobq_engine_t *self,
       const uint8_t *peer,
       size_t peer_len,
       const jobq_msg_t *m,
       const jobq_key_t *who)
{
    jobq_store_query_t q = {
        .shop = m->u.list.shop,
        .type = m->u.list.type,
        .status = m->u.list.status,
        .before = m->u.list.cursor,
        .limit = m->u.list.limit,
        .max_examine = self->cfg.list_examine,
    };
    bool several = false;
    if (who && !who->all_shops) {
        //  A key of one shop walks that shop's index, of several each of
        //  theirs. Another shop's list is empty.
        if (!q.shop.len && who->nshops == 1)
            q.shop = (jobq_str_t){who->shops[0], strlen(who->shops[0])};
        several = !q.shop.len;
        if (q.shop.len && !jobq_key_shop(who, q.shop))
            q.limit = 0;
    }
    jobq_mp_writer_reset(&self->scratch);
    s_list_t l = {self, &self->scratch, 0};
    uint64_t next = 0;
    int rc = !q.limit ? JOBQ_OK
             : several
                 ? s_list_shops(self, who, q, &l, &next)
                 : jobq_store_query(self->store, &q, s_list_visit, &l, &next);
    if (rc != JOBQ_OK || jobq_mp_writer_error(&self->scratch)) {
        char why[300];
        bool damaged = rc == JOBQ_ECORRUPT;
        snprintf(why, sizeof why, "list failed: %s%s%s%s",
                 jobq_strerror(rc ? rc : jobq_mp_writer_error(&self->scratch)),
                 damaged ? " (" : "",
                 damaged ? jobq_store_why(self->store) : "",
                 damaged ? ")" : "");
        if (damaged)
            self->stats.damaged++;
        s_reply_error(self, peer, peer_len, m->rid,
                      rc ? rc : jobq_mp_writer_error(&self->scratch), why,
                      false);
        return;
    }
    s_action_t *a = s_reply_begin(self, peer, peer_len, m->rid, 2);
    if (!a)
        return;
    jobq_mp_writer_t *w = s_w(self);
    jobq_mp_write_cstr(w, "jobs");
    jobq_mp_write_array(w, l.n);
    jobq_mp_write_raw(w, self->scratch.data, self->scratch.len);
    jobq_mp_write_cstr(w, "next");
    if (next) {
        char hex[JOBQ_ID_LEN + 1];
        jobq_id_format(next, hex);
        jobq_mp_write_cstr(w, hex);
    } else {
        jobq_mp_write_nil(w);
    }
    s_action_end(self, a);
}

const uint32_t jobq_engine_commit_le[JOBQ_COMMIT_BUCKETS] = {
    100,   250,   500,    1000,   2500,   5000,   10000,
    25000, 50000, 100000, 250000, 500000, 1000000};

void
jobq_engine_note_commit(jobq_engine_t *self, uint64_t us)
{
    size_t i = 0;
    while (i < JOBQ_COMMIT_BUCKETS && us > jobq_engine_commit_le[i])
        i++;
    self->stats.commit_us[i]++;
    self->stats.commit_sum_us += us;
}

typedef struct {
    jobq_mp_writer_t *w;                     //  where entries go
    char (*pending)[JOBQ_MAX_TYPE_LEN + 1];  //  types with pending jobs
    uint32_t npending;                       //  of S_OLDEST_TYPES
    uint64_t *age;                           //  s_stats_oldest's
    uint32_t ntypes;                         //  distinct types written
    uint64_t totals[JOBQ_STATUS_COUNT_];     //  per status
    char last[JOBQ_MAX_TYPE_LEN + 1];        //  type of the open group
    uint64_t group[JOBQ_STATUS_COUNT_];      //  counts of the open group
    bool open;                               //  a group is pending
} s_stats_t;

static void
s_stats_flush(s_stats_t *s)
{
    if (!s->open)
        return;
    uint32_t n = 0;
    for (int i = 0; i < JOBQ_STATUS_COUNT_; i++)
        n += s->group[i] != 0;
    jobq_mp_write_cstr(s->w, s->last);
    jobq_mp_write_map(s->w, n);
    for (int i = 0; i < JOBQ_STATUS_COUNT_; i++) {
        if (!s->group[i])
            continue;
        jobq_mp_write_cstr(s->w, jobq_status_name(i));
        jobq_mp_write_uint(s->w, s->group[i]);
    }
    s->ntypes++;
    s->open = false;
}

//  Counters arrive sorted by (type, status): group them by type.
static void
s_stats_visit(void *arg, jobq_str_t type, int status, uint64_t count)
{
    s_stats_t *s = arg;
    if (status < 0 || status >= JOBQ_STATUS_COUNT_ ||
        type.len > JOBQ_MAX_TYPE_LEN)
        return;
    if (!s->open || !s_str_eq(type, s->last)) {
        s_stats_flush(s);
        memcpy(s->last, type.ptr, type.len);
        s->last[type.len] = '\0';
        memset(s->group, 0, sizeof s->group);
        s->open = true;
    }
    s->group[status] += count;
    s->totals[status] += count;
    if (status == JOBQ_PENDING && count && s->pending &&
        s->npending < S_OLDEST_TYPES &&
        (s->npending == 0 || strcmp(s->pending[s->npending - 1], s->last) != 0))
        memcpy(s->pending[s->npending++], s->last, type.len + 1);
}

//  STATS `oldest`: for each type with pending jobs, how long (ms) its
//  first-made ready job has been due, in s->age (UINT64_MAX: only delayed
//  ones).
static int
s_stats_oldest(jobq_engine_t *self, s_stats_t *s)
{
    for (uint32_t i = 0; i < s->npending; i++) {
        jobq_str_t type = {s->pending[i], strlen(s->pending[i])};
        uint64_t id = 0;
        int rc =
            jobq_store_ready_oldest(self->store, type, S_OLDEST_LEVELS, &id);
        s->age[i] = UINT64_MAX;
        if (rc == JOBQ_ENOTFOUND)
            continue;
        if (rc != JOBQ_OK)
            return rc;
        jobq_jobdata_t j;
        if (jobq_store_get(self->store, id, &j) != JOBQ_OK)
            continue;  //  an unreadable record: that type's age is left out
        //  Waiting since it was made, or since it became due (a delay, a
        //  retry's backoff), whichever came later. Not from the id: ids
        //  run ahead of the clock after a restart.
        uint64_t since = j.run_at > j.created_at ? j.run_at : j.created_at;
        s->age[i] = self->wall > since ? self->wall - since : 0;
    }
    return JOBQ_OK;
}

static int
s_stats_shops(jobq_engine_t *self, const jobq_key_t *who, s_stats_t *s)
{
    jobq_mp_writer_t *w = s->w;
    uint32_t n = 0;
    for (size_t i = 0; i < who->nshops; i++) {
        uint64_t c[JOBQ_STORE_SHOP_FIELDS];
        jobq_str_t shop = {who->shops[i], strlen(who->shops[i])};
        int rc = jobq_store_shop_counts(self->store, shop, c);
        if (rc != JOBQ_OK)
            return rc;
        jobq_mp_write_str(w, shop.ptr, shop.len);
        jobq_mp_write_map(w, JOBQ_STATUS_COUNT_ + 1);
        for (int st = 0; st < JOBQ_STATUS_COUNT_; st++) {
            jobq_mp_write_cstr(w, jobq_status_name(st));
            jobq_mp_write_uint(w, c[st]);
            s->totals[st] += c[st];
        }
        jobq_mp_write_cstr(w, "bytes");
        jobq_mp_write_uint(w, c[JOBQ_STATUS_COUNT_]);
        n++;
    }
    s->ntypes = n;  //  entries written: shops here
    return JOBQ_OK;
}

static void
s_stats(jobq_engine_t *self,
        const uint8_t *peer,
        size_t peer_len,
        const jobq_msg_t *m,
        const jobq_key_t *who)
{
    s_stats_t s;
    memset(&s, 0, sizeof s);
    jobq_mp_writer_reset(&self->scratch);
    s.w = &self->scratch;
    bool scoped = who && !who->all_shops;
    if (!scoped) {
        s.pending = self->oldest_types;
        s.age = self->oldest_age;
    }
    int rc = scoped ? s_stats_shops(self, who, &s)
                    : jobq_store_counts(self->store, s_stats_visit, &s);
    s_stats_flush(&s);
    if (rc == JOBQ_OK && !scoped)
        rc = s_stats_oldest(self, &s);
    if (rc != JOBQ_OK) {
        if (rc == JOBQ_ECORRUPT)
            self->stats.damaged++;
        s_reply_error(self, peer, peer_len, m->rid, rc, "stats failed", false);
        return;
    }
    //  A key of some shops sees its shops only: not the workers, their
    //  load or the refusals, which tell of every shop's jobs.
    s_action_t *a =
        s_reply_begin(self, peer, peer_len, m->rid, scoped ? 3 : 10);
    if (!a)
        return;
    jobq_mp_writer_t *w = s_w(self);
    jobq_mp_write_cstr(w, "counts");
    if (scoped) {
        jobq_mp_write_map(w, 0);
        jobq_mp_write_cstr(w, "shops");
    }
    jobq_mp_write_map(w, s.ntypes);
    jobq_mp_write_raw(w, self->scratch.data, self->scratch.len);
    jobq_mp_write_cstr(w, "totals");
    jobq_mp_write_map(w, JOBQ_STATUS_COUNT_);
    for (int i = 0; i < JOBQ_STATUS_COUNT_; i++) {
        jobq_mp_write_cstr(w, jobq_status_name(i));
        jobq_mp_write_uint(w, s.totals[i]);
    }
    if (scoped) {
        s_action_end(self, a);
        return;
    }
    uint64_t capacity = 0, busy = 0;
    uint32_t listed = 0, nworkers = (uint32_t) zhashx_size(self->workers);
    uint32_t shown = nworkers < 100 ? nworkers : 100;
    jobq_mp_write_cstr(w, "workers");
    jobq_mp_write_array(w, shown);
    for (s_worker_t *wk = zhashx_first(self->workers); wk;
         wk = zhashx_next(self->workers)) {
        capacity += wk->capacity;
        busy += wk->active;
        if (listed++ >= shown)
            continue;
        jobq_mp_write_map(w, 5);
        jobq_mp_write_cstr(w, "name");
        jobq_mp_write_cstr(w, wk->label[0] ? wk->label : wk->name);
        jobq_mp_write_cstr(w, "seen_ms");
        jobq_mp_write_uint(
            w, self->mono > wk->last_seen ? self->mono - wk->last_seen : 0);
        jobq_mp_write_cstr(w, "types");
        jobq_mp_write_array(w, wk->ntypes);
        for (uint32_t t = 0; t < wk->ntypes; t++)
            jobq_mp_write_cstr(w, wk->types[t]);
        jobq_mp_write_cstr(w, "capacity");
        jobq_mp_write_uint(w, wk->capacity);
        jobq_mp_write_cstr(w, "active");
        jobq_mp_write_uint(w, wk->active);
    }
    jobq_mp_write_cstr(w, "capacity");
    jobq_mp_write_uint(w, capacity);
    jobq_mp_write_cstr(w, "busy");
    jobq_mp_write_uint(w, busy);
    //  The types connected workers run, with how many run each; the first
    //  S_SERVED_SHOWN, so that the reply stays far below a frame.
    size_t nserved = zhashx_size(self->served);
    uint32_t nshown =
        nserved < S_SERVED_SHOWN ? (uint32_t) nserved : S_SERVED_SHOWN;
    jobq_mp_write_cstr(w, "served");
    jobq_mp_write_map(w, nshown);
    uint32_t k = 0;
    for (void *n = zhashx_first(self->served); n && k < nshown;
         n = zhashx_next(self->served), k++) {
        jobq_mp_write_cstr(w, zhashx_cursor(self->served));
        jobq_mp_write_uint(w, (uintptr_t) n);
    }
    //  Messages refused since start, every cause, in the enum's order.
    jobq_mp_write_cstr(w, "refused");
    jobq_mp_write_map(w, JOBQ_REFUSED_COUNT_);
    for (int c = 0; c < JOBQ_REFUSED_COUNT_; c++) {
        jobq_mp_write_cstr(w, jobq_refused_name(c));
        jobq_mp_write_uint(w, self->stats.refused[c]);
    }
    //  What happened since the broker started (for /metrics counters).
    const struct {
        const char *name;
        uint64_t n;
    } counters[] = {{"enqueued", self->stats.enqueued},
                    {"dispatched", self->stats.dispatched},
                    {"completed", self->stats.completed},
                    {"failed", self->stats.failed},
                    {"retried", self->stats.retried},
                    {"cancelled", self->stats.cancelled},
                    {"lost", self->stats.lost}};
    jobq_mp_write_cstr(w, "counters");
    jobq_mp_write_map(w, sizeof counters / sizeof counters[0]);
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        jobq_mp_write_cstr(w, counters[c].name);
        jobq_mp_write_uint(w, counters[c].n);
    }
    jobq_mp_write_cstr(w, "commit_us");
    jobq_mp_write_map(w, 3);
    jobq_mp_write_cstr(w, "le");
    jobq_mp_write_array(w, JOBQ_COMMIT_BUCKETS);
    for (int i = 0; i < JOBQ_COMMIT_BUCKETS; i++)
        jobq_mp_write_uint(w, jobq_engine_commit_le[i]);
    jobq_mp_write_cstr(w, "counts");
    jobq_mp_write_array(w, JOBQ_COMMIT_BUCKETS + 1);
    for (int i = 0; i <= JOBQ_COMMIT_BUCKETS; i++)
        jobq_mp_write_uint(w, self->stats.commit_us[i]);
    jobq_mp_write_cstr(w, "sum");
    jobq_mp_write_uint(w, self->stats.commit_sum_us);
    uint32_t nold = 0;
    for (uint32_t i = 0; i < s.npending; i++)
        nold += s.age[i] != UINT64_MAX;
    jobq_mp_write_cstr(w, "oldest");
    jobq_mp_write_map(w, nold);
    for (uint32_t i = 0; i < s.npending; i++) {
        if (s.age[i] == UINT64_MAX)
            continue;
        jobq_mp_write_cstr(w, s.pending[i]);
        jobq_mp_write_uint(w, s.age[i]);
    }
    s_action_end(self, a);
}

//  A keyed request beyond its key's roles, or naming a shop outside them
//  on ENQUEUE: refused with forbidden. True when it may go on.
static bool
s_client_allowed(jobq_engine_t *self,
                 const uint8_t *peer,
                 size_t peer_len,
                 const jobq_msg_t *m,
                 const jobq_key_t *who)
{
    bool writes = m->cmd == JOBQ_CMD_ENQUEUE ||
                  m->cmd == JOBQ_CMD_ENQUEUE_BATCH ||
                  m->cmd == JOBQ_CMD_CANCEL || m->cmd == JOBQ_CMD_RETRY;
    unsigned need =
        writes ? JOBQ_ROLE_CLIENT : (JOBQ_ROLE_CLIENT | JOBQ_ROLE_READER);
    const char *cmd = jobq_cmd_name(m->cmd) ? jobq_cmd_name(m->cmd) : "this";
    char why[256];
    why[0] = '\0';
    if (!jobq_key_can(who, need)) {
        snprintf(why, sizeof why, "key %s may not send %s", who->name, cmd);
    } else if (m->cmd == JOBQ_CMD_ENQUEUE &&
               !jobq_key_shop(who, m->u.enqueue.shop)) {
        snprintf(why, sizeof why, "key %s may not use shop %.*s", who->name,
                 (int) m->u.enqueue.shop.len, m->u.enqueue.shop.ptr);
    } else if (m->cmd == JOBQ_CMD_ENQUEUE_BATCH && !who->all_shops) {
        jobq_mp_reader_t r;
        jobq_msg_batch_begin(m, &r);
        for (uint32_t i = 0; i < m->u.batch.count && !why[0]; i++) {
            jobq_msg_t one;
            if (jobq_msg_batch_next(&r, m, &one) == JOBQ_OK &&
                !jobq_key_shop(who, one.u.enqueue.shop))
                snprintf(why, sizeof why,
                         "jobs[%u]: key %s may not use shop "
                         "%.*s",
                         i, who->name, (int) one.u.enqueue.shop.len,
                         one.u.enqueue.shop.ptr);
        }
    }
    if (!why[0])
        return true;
    jobq_engine_reject(self, JOBQ_ACT_CLIENT, JOBQ_REFUSED_FORBIDDEN, peer,
                       peer_len, m->rid, JOBQ_EFORBIDDEN, why);
    return false;
}

void
jobq_engine_client(jobq_engine_t *self,
                   const uint8_t *peer,
                   size_t peer_len,
                   const jobq_msg_t *m,
                   const jobq_key_t *who)
{
    assert(self->in_turn);
    if (who && !s_client_allowed(self, peer, peer_len, m, who))
        return;
    switch (m->cmd) {
    case JOBQ_CMD_ENQUEUE:
        s_enqueue(self, peer, peer_len, m, who);
        break;
    case JOBQ_CMD_ENQUEUE_BATCH:
        s_enqueue_batch(self, peer, peer_len, m, who);
        break;
    case JOBQ_CMD_STATUS: {
        jobq_jobdata_t j;
        if (s_get_job(self, who, peer, peer_len, m->rid, m->u.job.id, &j))
            s_reply_job(self, peer, peer_len, m->rid, &j);
        break;
    }
    case JOBQ_CMD_LIST:
        s_list(self, peer, peer_len, m, who);
        break;
    case JOBQ_CMD_CANCEL:
        s_cancel(self, peer, peer_len, m, who);
        break;
    case JOBQ_CMD_RETRY:
        s_retry(self, peer, peer_len, m, who);
        break;
    case JOBQ_CMD_STATS:
        s_stats(self, peer, peer_len, m, who);
        break;
    default:
        jobq_engine_reject(self, JOBQ_ACT_CLIENT, JOBQ_REFUSED_WRONG_SOCKET,
                           peer, peer_len, m->rid, JOBQ_ECOMMAND,
                           "not a client command");
        break;
    }
}

//  --- worker messages
//  ---------------------------------------------------------

//  Count a refused message by cause and keep its reason for the log.
static void
s_refused(jobq_engine_t *self,
          int cause,
          const uint8_t *peer,
          size_t peer_len,
          const char *why)
{
    assert(cause >= 0 && cause < JOBQ_REFUSED_COUNT_);
    self->stats.refused[cause]++;
    char name[JOBQ_WORKER_NAME_MAX + 1];
    s_peer_name(peer, peer_len, name);
    snprintf(self->refused_last[cause], sizeof self->refused_last[cause],
             "%s (from %s)", why, name[0] ? name : "a routing id with no name");
}

static void
s_disconnect(jobq_engine_t *self,
             const uint8_t *peer,
             size_t peer_len,
             const char *reason)
{
    s_action_t *a =
        s_action(self, JOBQ_ACT_WORKER, JOBQ_CMD_DISCONNECT, peer, peer_len);
    if (!a)
        return;
    a->durable = false;
    jobq_msg_t d = {.cmd = JOBQ_CMD_DISCONNECT};
    d.u.disconnect.reason.ptr = reason;
    d.u.disconnect.reason.len = strlen(reason);
    jobq_msg_encode(&d, s_w(self));
    s_action_end(self, a);
}

static void
s_ready(jobq_engine_t *self,
        const uint8_t *peer,
        size_t peer_len,
        const jobq_msg_t *m)
{
    char name[JOBQ_WORKER_NAME_MAX + 1];
    s_peer_name(peer, peer_len, name);
    if (!name[0]) {
        static const char why[] = "routing id must be 1-64 printable bytes";
        s_refused(self, JOBQ_REFUSED_WORKER_NAME, peer, peer_len, why);
        s_disconnect(self, peer, peer_len, why);
        return;
    }
    s_worker_t *w = zhashx_lookup(self->workers, name);
    if (!w) {
        if (zhashx_size(self->workers) >= self->cfg.max_workers) {
            s_refused(self, JOBQ_REFUSED_TOO_MANY_WORKERS, peer, peer_len,
                      "too many workers");
            s_disconnect(self, peer, peer_len, "too many workers");
            return;
        }
        w = calloc(1, sizeof *w);
        if (!w)
            return;
        memcpy(w->ident, peer, peer_len);
        w->ident_len = peer_len;
        memcpy(w->name, name, strlen(name) + 1);
        zhashx_insert(self->workers, name, w);
        //  A worker back after a broker restart or a reconnect gets its
        //  running attempts back.
        size_t pos = 0;
        for (jobq_lease_t *l; (l = jobq_leases_next(self->leases, &pos));) {
            if (!l->worker && strcmp(l->worker_name, name) == 0) {
                l->worker = w;
                w->active++;
            }
        }
    } else {
        s_serve(self, w, -1);  //  a READY again may change the types
    }
    w->ntypes = m->u.ready.ntypes;
    for (uint32_t i = 0; i < w->ntypes; i++) {
        memcpy(w->types[i], m->u.ready.types[i].ptr, m->u.ready.types[i].len);
        w->types[i][m->u.ready.types[i].len] = '\0';
    }
    s_serve(self, w, +1);
    w->capacity = m->u.ready.capacity;
    size_t ll = m->u.ready.name.len < 64 ? m->u.ready.name.len : 64;
    memcpy(w->label, m->u.ready.name.ptr ? m->u.ready.name.ptr : "", ll);
    w->label[ll] = '\0';
    w->last_seen = self->mono;
    w->gone = false;
    w->unheard = false;
    w->starved_epoch = 0;
    self->need_dispatch = true;
}

//  Who sent a worker message: a registered worker, or a name the broker
//  does not know (it restarted, or dropped the worker) whose leases may
//  still be held.
typedef struct {
    s_worker_t *w;                        //  registered worker, or NULL
    const uint8_t *peer;                  //  routing id
    size_t peer_len;                      //  bytes
    char name[JOBQ_WORKER_NAME_MAX + 1];  //  printable name of peer
} s_sender_t;

//  The lease for (id, attempt) if the sender holds it (by name), else
//  NULL. A registered sender adopts a lease recovered before its READY.
static jobq_lease_t *
s_fenced(jobq_engine_t *self,
         const s_sender_t *s,
         uint64_t id,
         uint32_t attempt)
{
    jobq_lease_t *l = jobq_leases_get(self->leases, id);
    if (!l || l->attempt != attempt || strcmp(l->worker_name, s->name) != 0)
        return NULL;
    if (!l->worker && s->w) {
        l->worker = s->w;
        s->w->active++;
    }
    return l;
}

static void s_drop_lease(jobq_engine_t *self, jobq_lease_t *l);

static void
s_release(jobq_engine_t *self, jobq_lease_t *l)
{
    //  On a shared store a rollback cannot find the leases again by
    //  scanning the running jobs (other brokers' are there too): keep
    //  what the turn lets go.
    if (self->shared && self->in_turn) {
        if (self->nreleased == self->creleased) {
            size_t cap = self->creleased ? self->creleased * 2 : 64;
            jobq_lease_t *r = realloc(self->released, cap * sizeof *r);
            if (r) {
                self->released = r;
                self->creleased = cap;
            }
        }
        if (self->nreleased < self->creleased)
            self->released[self->nreleased++] = *l;
    }
    s_drop_lease(self, l);
}

//  Tell the sender to stop attempt (id, attempt): durable when this turn
//  ends the attempt (a timeout), so that a turn that fails to commit sends
//  nothing.
static void
s_tell_drop(jobq_engine_t *self,
            const uint8_t *peer,
            size_t peer_len,
            uint64_t id,
            uint32_t attempt,
            bool durable)
{
    jobq_msg_t c = {.cmd = JOBQ_CMD_CANCEL_JOB};
    c.u.cancel_job.id = id;
    c.u.cancel_job.attempt = attempt;
    s_to_peer(self, peer, peer_len, &c, durable);
    if (!durable)
        self->stats.stale++;
}

//  Answer a COMPLETE or FAIL: the worker keeps its result until this
//  arrives, and sends it again after a reconnect. Durable, so that the
//  worker forgets the result only once the turn that took it (or found it
//  stale) is on disk.
static void
s_ack(jobq_engine_t *self,
      const s_sender_t *s,
      uint64_t id,
      uint32_t attempt,
      bool taken)
{
    jobq_msg_t a = {.cmd = JOBQ_CMD_ACK};
    a.u.ack.id = id;
    a.u.ack.attempt = attempt;
    a.u.ack.taken = taken;
    s_to_peer(self, s->peer, s->peer_len, &a, true);
}

//  The running job of lease l, if the store still has it running under
//  that attempt.
static bool
s_lease_job(jobq_engine_t *self, const jobq_lease_t *l, jobq_jobdata_t *j)
{
    if (jobq_store_get(self->store, l->id, j) != JOBQ_OK)
        return false;
    return j->status == JOBQ_RUNNING && j->attempts == l->attempt && !l->ended;
}

static void
s_progress(jobq_engine_t *self, const s_sender_t *s, const jobq_msg_t *m)
{
    jobq_lease_t *l =
        s_fenced(self, s, m->u.progress.id, m->u.progress.attempt);
    jobq_jobdata_t j;
    if (!l || !s_lease_job(self, l, &j)) {
        //  Not current: every such report is answered, so that a worker
        //  that missed a CANCEL_JOB (or a broker restart) stops. An attempt
        //  ended in this turn (CANCEL, timeout) is told only once the turn
        //  commits: a failed commit brings its lease back.
        s_tell_drop(self, s->peer, s->peer_len, m->u.progress.id,
                    m->u.progress.attempt, l && l->ended);
        return;
    }
    l->lease_deadline = self->mono + self->cfg.lease_ms;
    jobq_jobdata_t n = j;
    n.progress = m->u.progress.progress;
    n.message = m->u.progress.message;
    n.lease_until = self->wall + self->cfg.lease_ms;
    //  Reports of one job that reach one turn are one change: if the job's
    //  last change is a progress change of this turn, this one takes its
    //  place (same version and seq), and so does its event, which has not
    //  left yet. A processor that reports a thousand times a second costs
    //  watchers one event per turn, and the end of a job is never merged.
    if (l->progress_seq > self->seq_at_begin && j.seq == l->progress_seq &&
        l->progress_action < self->nactions &&
        self->actions[l->progress_action].kind == JOBQ_ACT_PUBLISH) {
        n.updated_at = self->wall;
        s_put(self, &j, &n);
        s_action_t *a = &self->actions[l->progress_action];
        a->body_off = self->arena.len;
        s_write_job(self, s_w(self), &n, 0);
        s_action_end(self, a);
        self->stats.progress_merged++;
        return;
    }
    size_t before = self->nactions;
    s_changed(self, &n);
    s_put(self, &j, &n);
    bool evented = self->nactions == before + 1;
    l->progress_seq = evented ? n.seq : 0;
    l->progress_action = before;
}

static void
s_complete(jobq_engine_t *self, const s_sender_t *s, const jobq_msg_t *m)
{
    jobq_lease_t *l =
        s_fenced(self, s, m->u.complete.id, m->u.complete.attempt);
    bool taken = false;
    jobq_jobdata_t j;
    if (!l) {
        self->stats.stale++;
    } else {
        if (s_lease_job(self, l, &j)) {
            jobq_jobdata_t n = j;
            n.status = JOBQ_COMPLETED;
            n.queue = JOBQ_QUEUE_NONE;
            n.progress = 100;
            n.output = m->u.complete.output;
            n.completed_at = self->wall;
            n.worker.len = 0;
            n.lease_until = 0;
            n.error.len = 0;
            s_changed(self, &n);
            s_put(self, &j, &n);
            self->stats.completed++;
            taken = true;
        }
        s_release(self, l);
    }
    s_ack(self, s, m->u.complete.id, m->u.complete.attempt, taken);
}

static void
s_fail(jobq_engine_t *self, const s_sender_t *s, const jobq_msg_t *m)
{
    jobq_lease_t *l = s_fenced(self, s, m->u.fail.id, m->u.fail.attempt);
    bool taken = false;
    jobq_jobdata_t j;
    if (!l) {
        self->stats.stale++;
    } else {
        if (s_lease_job(self, l, &j)) {
            taken = true;
            if (m->u.fail.released && j.max_attempts < UINT32_MAX) {
                //  The worker never started it (it was shutting down, or
                //  its queue was full): back to pending at once, and the
                //  attempt it was given does not count against the job.
                jobq_jobdata_t n = j;
                n.status = JOBQ_PENDING;
                n.queue = JOBQ_QUEUE_READY;
                n.run_at = self->wall;
                n.max_attempts = j.max_attempts + 1;
                n.worker.len = 0;
                n.lease_until = 0;
                n.progress = 0;
                n.message.len = 0;
                s_changed(self, &n);
                s_put(self, &j, &n);
                self->stats.released++;
            } else {
                s_attempt_failed(self, &j, m->u.fail.error,
                                 m->u.fail.permanent);
            }
        }
        s_release(self, l);
    }
    s_ack(self, s, m->u.fail.id, m->u.fail.attempt, taken);
}

static void s_lose(jobq_engine_t *self, jobq_lease_t *l, const char *why);

//  The worker listed the attempts it holds (running, queued, or finished
//  with a result it has not had acknowledged). Two ways they can disagree
//  with the leases:
//  - a lease the worker is said to hold but does not list (the JOB was
//    lost in a reconnect or a broker crash): the attempt is over now, not
//    when a lease that the worker's heartbeats keep alive would never end.
//    Leases younger than three heartbeats are left alone: their JOB may
//    still be on its way;
//  - an attempt it lists that is not current (cancelled or timed out while
//    the worker could not hear, or lost with its lease): it is told to
//    stop, so that it does not run on unseen.
static void
s_reconcile(jobq_engine_t *self, s_worker_t *w, const jobq_msg_t *m)
{
    if (!m->has_held)
        return;
    uint32_t n = jobq_msg_read_held(m, self->held_ids, self->held_attempts,
                                    JOBQ_MAX_CAPACITY);
    //  The scan costs O(leases + n): do it when the counts disagree, and
    //  on every tenth list of a worker (READY or HEARTBEAT) otherwise, in
    //  case they agree by chance.
    if (n == w->active && ++w->lists_seen % 10 != 0)
        return;
    size_t pos = 0;
    for (jobq_lease_t *l; (l = jobq_leases_next(self->leases, &pos));) {
        if (strcmp(l->worker_name, w->name) != 0)
            continue;
        if (l->held || (l->granted &&
                        l->granted + 3 * self->cfg.heartbeat_ms > self->mono))
            continue;
        bool held = false;
        for (uint32_t i = 0; i < n && !held; i++)
            held = self->held_ids[i] == l->id &&
                   self->held_attempts[i] == l->attempt;
        if (!held)
            s_lose(self, l, "worker does not hold the job");
    }
    for (uint32_t i = 0; i < n; i++) {
        jobq_lease_t *l = jobq_leases_get(self->leases, self->held_ids[i]);
        bool current = l && l->attempt == self->held_attempts[i] && !l->ended &&
                       strcmp(l->worker_name, w->name) == 0;
        if (!current)
            s_tell_drop(self, w->ident, w->ident_len, self->held_ids[i],
                        self->held_attempts[i], l && l->ended);
    }
}

//  A keyed worker message beyond its key: not a worker key, a routing id
//  the key does not own (so no key can take over another's worker name,
//  its leases or its results), or a READY with a type the key may not
//  run. Refused with DISCONNECT; true when it may go on.
static bool
s_worker_allowed(jobq_engine_t *self,
                 const uint8_t *peer,
                 size_t peer_len,
                 const jobq_msg_t *m,
                 const jobq_key_t *who)
{
    char why[256];
    why[0] = '\0';
    if (!jobq_key_can(who, JOBQ_ROLE_WORKER)) {
        snprintf(why, sizeof why, "key %s may not run jobs", who->name);
    } else if (!jobq_key_worker_name(who, peer, peer_len)) {
        snprintf(why, sizeof why,
                 "key %s may register only as %s or %s.<suffix>", who->name,
                 who->name, who->name);
    } else if (m->cmd == JOBQ_CMD_READY) {
        for (uint32_t i = 0; i < m->u.ready.ntypes && !why[0]; i++) {
            jobq_str_t t = m->u.ready.types[i];
            if (!jobq_key_type(who, t))
                snprintf(why, sizeof why, "key %s may not run type %.*s",
                         who->name, (int) t.len, t.ptr);
        }
    }
    if (!why[0])
        return true;
    jobq_engine_reject(self, JOBQ_ACT_WORKER, JOBQ_REFUSED_FORBIDDEN, peer,
                       peer_len, 0, JOBQ_EFORBIDDEN, why);
    return false;
}

void
jobq_engine_worker(jobq_engine_t *self,
                   const uint8_t *peer,
                   size_t peer_len,
                   const jobq_msg_t *m,
                   const jobq_key_t *who)
{
    assert(self->in_turn);
    if (who && !s_worker_allowed(self, peer, peer_len, m, who))
        return;
    if (m->cmd == JOBQ_CMD_READY) {
        s_ready(self, peer, peer_len, m);
        s_worker_t *rw = s_worker_find(self, peer, peer_len);
        if (rw)
            s_reconcile(self, rw, m);
        if (rw && m->has_echo) {
            //  Actions leave in order, after the commit: the echo follows
            //  every JOB this worker was sent before. A worker that stops
            //  waits for it, and then knows that no JOB is on its way.
            jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
            hb.echo = m->echo;
            hb.has_echo = true;
            s_to_peer(self, peer, peer_len, &hb, true);
        }
        return;
    }
    s_sender_t s = {s_worker_find(self, peer, peer_len), peer, peer_len, ""};
    s_peer_name(peer, peer_len, s.name);
    if (s.w) {
        s.w->last_seen = self->mono;  //  extends every lease it holds
        if (s.w->unheard) {
            s.w->unheard = false;
            self->need_dispatch = true;
        }
    }
    //  An unknown sender (the broker restarted, or dropped it) is asked to
    //  register again; its leases survive if it does in time, and its
    //  results and progress for attempts whose lease is still held under
    //  its name are taken at once, so a result sent across a restart is
    //  not lost.
    bool named = s.name[0] != '\0';
    switch (m->cmd) {
    case JOBQ_CMD_HEARTBEAT:
        if (s.w)
            s_reconcile(self, s.w, m);
        break;
    case JOBQ_CMD_PROGRESS:
        if (named)
            s_progress(self, &s, m);
        break;
    case JOBQ_CMD_COMPLETE:
        if (named)
            s_complete(self, &s, m);
        break;
    case JOBQ_CMD_FAIL:
        if (named)
            s_fail(self, &s, m);
        break;
    default:
        s_refused(self, JOBQ_REFUSED_WRONG_SOCKET, peer, peer_len,
                  "not a worker command");
        break;
    }
    if (!s.w) {
        char why[64];
        snprintf(why, sizeof why, "%s before READY",
                 jobq_cmd_name(m->cmd) ? jobq_cmd_name(m->cmd) : "a message");
        s_refused(self, JOBQ_REFUSED_UNKNOWN_WORKER, peer, peer_len, why);
        s_disconnect(self, peer, peer_len, "unknown worker: send READY");
    }
}

void
jobq_engine_reject(jobq_engine_t *self,
                   int kind,
                   int cause,
                   const uint8_t *peer,
                   size_t peer_len,
                   uint64_t rid,
                   int err,
                   const char *why)
{
    s_refused(self, cause, peer, peer_len, why);
    if (!peer_len)
        return;
    if (kind == JOBQ_ACT_CLIENT) {
        s_reply_error(self, peer, peer_len, rid, err, why, false);
    } else {
        char reason[200];
        snprintf(reason, sizeof reason, "%s: %s", jobq_err_wire_code(err), why);
        s_disconnect(self, peer, peer_len, reason);
    }
}

const char *
jobq_engine_refused_last(const jobq_engine_t *self, int cause)
{
    return cause >= 0 && cause < JOBQ_REFUSED_COUNT_ ? self->refused_last[cause]
                                                     : "";
}

const char *
jobq_refused_name(int cause)
{
    static const char *const names[JOBQ_REFUSED_COUNT_] = {
        "envelope",         "version",   "unknown_command", "wrong_socket",
        "bad_request",      "too_large", "unknown_worker",  "worker_name",
        "too_many_workers", "forbidden", "rate_limited"};
    return cause >= 0 && cause < JOBQ_REFUSED_COUNT_ ? names[cause] : NULL;
}

//  True the first time in this turn that a subscription names job id, or
//  when the table has no room near id (then nothing is published: a
//  watcher asks with STATUS after a second of silence). Repeated
//  subscriptions to one job cost one snapshot a turn, whoever sends them.
static bool
s_first_snapshot(jobq_engine_t *self, uint64_t id)
{
    size_t h = (size_t) ((id * 0x9e3779b97f4a7c15ull) >> 51);
    for (size_t i = 0; i < 16; i++) {
        size_t k = (h + i) & (S_SNAP_SLOTS - 1);
        if (self->snap_turn[k] != self->turn) {
            self->snap_turn[k] = self->turn;
            self->snap_ids[k] = id;
            return true;
        }
        if (self->snap_ids[k] == id)
            return false;
    }
    return false;
}

void
jobq_engine_subscribed(jobq_engine_t *self, const uint8_t *topic, size_t len)
{
    if (len < JOBQ_ID_LEN + 2 || topic[len - JOBQ_ID_LEN - 1] != '/')
        return;
    uint64_t id;
    if (jobq_id_parse((const char *) topic + len - JOBQ_ID_LEN, JOBQ_ID_LEN,
                      &id) != JOBQ_OK ||
        !s_first_snapshot(self, id))
        return;
    jobq_jobdata_t j;
    if (jobq_store_get(self->store, id, &j) != JOBQ_OK)
        return;
    size_t shop_len = len - JOBQ_ID_LEN - 1;
    if (j.shop.len != shop_len || memcmp(j.shop.ptr, topic, shop_len) != 0)
        return;
    //  Durable like every event: if the turn fails to commit, the state it
    //  read may be rolled back, and the watcher asks again after silence.
    s_shown(self, id);
    s_event(self, &j);
}

//  --- timers and dispatch ----------------------------------------------------

//  A queued job whose record cannot be read (corrupt, a newer version, or
//  gone): take it out of the queue so the jobs behind it still run. The
//  record stays, for STATUS to report and an operator to inspect.
static void
s_unreadable(jobq_engine_t *self, const jobq_jobdata_t *k, int why)
{
    (void) why;
    self->stats.unreadable++;
    int rc = jobq_store_unqueue(self->store, k);
    if (rc != JOBQ_OK && !self->broken)
        self->broken = rc;
}

//  Attempt of lease l is over without word from its worker.
static void
s_lose(jobq_engine_t *self, jobq_lease_t *l, const char *why)
{
    jobq_jobdata_t j;
    if (s_lease_job(self, l, &j)) {
        jobq_str_t e = {why, strlen(why)};
        s_attempt_failed(self, &j, e, false);
        self->stats.lost++;
    }
    s_release(self, l);
}

static void
s_drop_worker(jobq_engine_t *self, s_worker_t *w, const char *why)
{
    size_t pos = 0;
    for (jobq_lease_t *l; (l = jobq_leases_next(self->leases, &pos));)
        if (l->worker == w)
            s_lose(self, l, why);
    s_serve(self, w, -1);
    zhashx_delete(self->workers, w->name);
}

//  A lease lives while its worker is heard from: any message of the worker
//  renews all it holds, so a heartbeat costs O(1), not O(leases).
static bool
s_lease_expired(const jobq_engine_t *self, const jobq_lease_t *l)
{
    uint64_t until = l->lease_deadline;
    const s_worker_t *w = l->worker;
    if (w && w->last_seen + self->cfg.lease_ms > until)
        until = w->last_seen + self->cfg.lease_ms;
    return self->mono > until;
}

#define S_CHECK_MS 100  //  liveness scans at most this often

static void
s_liveness(jobq_engine_t *self)
{
    //  Workers silent too long, or unreachable, are gone.
    s_worker_t *gone = NULL;
    do {
        gone = NULL;
        for (s_worker_t *w = zhashx_first(self->workers); w;
             w = zhashx_next(self->workers)) {
            if (w->gone ||
                self->mono > w->last_seen + self->cfg.worker_timeout_ms) {
                gone = w;
                break;
            }
        }
        if (gone)
            s_drop_worker(self, gone,
                          gone->gone ? "worker unreachable"
                                     : "worker lost (no heartbeat)");
    } while (gone);

    //  Leases and timeouts. The table holds only running attempts, which
    //  the workers' capacity bounds.
    size_t pos = 0;
    for (jobq_lease_t *l; (l = jobq_leases_next(self->leases, &pos));) {
        if (s_lease_expired(self, l)) {
            s_lose(self, l, "lease expired (worker lost)");
        } else if (l->timeout_deadline && !l->ended &&
                   self->mono > l->timeout_deadline) {
            jobq_jobdata_t j;
            if (s_lease_job(self, l, &j)) {
                char why[80];
                snprintf(why, sizeof why, "timed out after %llu ms",
                         (unsigned long long) j.timeout_ms);
                jobq_str_t e = {why, strlen(why)};
                const s_worker_t *lw = l->worker;
                if (lw)
                    s_tell_drop(self, lw->ident, lw->ident_len, l->id,
                                l->attempt, true);
                l->ended = 1;
                s_attempt_failed(self, &j, e, false);
            }
        }
    }
}

#define S_SWEEP_KEYS 256   //  expired idempotency keys forgotten per turn
#define S_SWEEP_MS   1000  //  ended jobs are looked for this often
#define S_SWEEP_JOBS 256   //  ended jobs deleted per sweep and state
#define S_SWEEP_SEEN 1024  //  records a sweep looks at per state

typedef struct {
    uint64_t before;             //  ended before this wall ms
    uint64_t ids[S_SWEEP_JOBS];  //  found
    uint32_t n;                  //  entries in ids
    uint32_t seen;               //  records looked at
} s_sweep_t;

static int
s_sweep_visit(void *arg, const jobq_jobdata_t *j)
{
    s_sweep_t *s = arg;
    if (j->completed_at && j->completed_at < s->before)
        s->ids[s->n++] = j->id;
    return ++s->seen == S_SWEEP_SEEN || s->n == S_SWEEP_JOBS;
}

//  Delete jobs that ended more than retain_ms ago, oldest ids first, a
//  bounded number per sweep: the store does not grow without end.
static void
s_sweep_ended(jobq_engine_t *self)
{
    if (!self->cfg.retain_ms || self->wall <= self->cfg.retain_ms)
        return;
    static const int ended[] = {JOBQ_COMPLETED, JOBQ_FAILED, JOBQ_CANCELLED};
    for (size_t k = 0; k < 3 && !self->broken; k++) {
        s_sweep_t s = {.before = self->wall - self->cfg.retain_ms};
        //  A record that cannot be read ends the scan early; the next
        //  sweep tries again, and nothing else depends on it.
        jobq_store_scan_status(self->store, ended[k], s_sweep_visit, &s);
        for (uint32_t i = 0; i < s.n && !self->broken; i++) {
            jobq_jobdata_t j;
            if (jobq_store_get(self->store, s.ids[i], &j) != JOBQ_OK)
                continue;
            int rc = jobq_store_remove(self->store, &j);
            if (rc != JOBQ_OK)
                self->broken = rc;
            else
                self->stats.removed++;
        }
    }
}

static void s_held_expire(jobq_engine_t *self);

//  Shared store: write again, before half of it has passed, the end of
//  the lease of each job this broker runs: that is how the others know it
//  is alive. A bounded number per scan.
static void
s_renew(jobq_engine_t *self)
{
    size_t pos = 0, n = 0;
    for (jobq_lease_t *l; (l = jobq_leases_next(self->leases, &pos)) &&
                          n < 256 && !self->broken;) {
        if (l->ended || l->held || self->mono < l->renew_at)
            continue;
        jobq_jobdata_t j;
        if (!s_lease_job(self, l, &j))
            continue;
        if (j.lease_until > self->wall + self->cfg.lease_ms / 2) {
            l->renew_at = self->mono + (j.lease_until - self->wall) -
                          self->cfg.lease_ms / 2;
            continue;
        }
        jobq_jobdata_t k = j;
        k.lease_until = self->wall + self->cfg.lease_ms;
        //  Looked at again in a second: by then the view shows the new
        //  end (and the next is set from it), or the write failed and it
        //  is tried again.
        l->renew_at = self->mono + 1000;
        s_put(self, &j, &k);
        n++;
    }
}

typedef struct {
    jobq_engine_t *self;
    uint64_t ids[64];
    uint32_t n, seen;
} s_reap_t;

static int
s_reap_visit(void *arg, const jobq_jobdata_t *j)
{
    s_reap_t *r = arg;
    //  A second of slack for the clocks of two machines.
    if (j->lease_until && j->lease_until + 1000 < r->self->wall &&
        !jobq_leases_get(r->self->leases, j->id))
        r->ids[r->n++] = j->id;
    return ++r->seen == 4096 || r->n == 64;
}

//  Shared store, leader: a running job whose lease nobody renewed (its
//  broker died) is an attempt lost; it runs again as its retries allow.
static void
s_reap(jobq_engine_t *self)
{
    s_reap_t r = {.self = self};
    jobq_store_scan_status(self->store, JOBQ_RUNNING, s_reap_visit, &r);
    for (uint32_t i = 0; i < r.n && !self->broken; i++) {
        jobq_jobdata_t j;
        if (jobq_store_get(self->store, r.ids[i], &j) != JOBQ_OK ||
            j.status != JOBQ_RUNNING)
            continue;
        const char *why = "lease expired (its broker was lost)";
        s_attempt_failed(self, &j, (jobq_str_t){why, strlen(why)}, false);
        self->stats.lost++;
    }
}

static void
s_timers(jobq_engine_t *self)
{
    //  Idempotency keys past the window, a bounded number per turn.
    if (!self->broken && self->wall > self->cfg.idem_window_ms) {
        uint32_t removed = 0;
        int rc = jobq_store_idem_expire(self->store,
                                        self->wall - self->cfg.idem_window_ms,
                                        S_SWEEP_KEYS, &removed);
        if (rc != JOBQ_OK)
            self->broken = rc;
    }

    if (self->mono >= self->next_check) {
        self->next_check = self->mono + S_CHECK_MS;
        s_liveness(self);
        if (self->shared) {
            s_renew(self);
            s_held_expire(self);
        }
    }
    //  On a shared store the leader alone does the work of all brokers:
    //  two doing it would write the same jobs at once.
    bool lead = !self->shared || jobq_store_leader(self->store);
    if (self->mono >= self->next_sweep) {
        self->next_sweep = self->mono + S_SWEEP_MS;
        if (lead)
            s_sweep_ended(self);
        if (lead && self->shared)
            s_reap(self);
    }
    if (!lead && self->mono >= self->next_promote)
        self->next_promote = self->mono + S_SWEEP_MS;

    //  Delayed jobs that are due, oldest first, bounded per turn.
    if (lead && self->mono >= self->next_promote) {
        uint32_t moved = 0;
        uint64_t run_at, id;
        self->next_promote = UINT64_MAX;
        while (!self->broken &&
               jobq_store_delayed_first(self->store, &run_at, &id) == JOBQ_OK) {
            if (run_at > self->wall) {
                self->next_promote = self->mono + (run_at - self->wall);
                break;
            }
            if (moved++ == self->cfg.promote_per_turn) {
                self->next_promote = self->mono;
                break;
            }
            jobq_jobdata_t j;
            int rc = jobq_store_get(self->store, id, &j);
            if (rc != JOBQ_OK) {
                jobq_jobdata_t k = {.id = id, .run_at = run_at};
                k.queue = JOBQ_QUEUE_DELAYED;
                s_unreadable(self, &k, rc);
                continue;
            }
            jobq_jobdata_t n = j;
            n.queue = JOBQ_QUEUE_READY;
            s_put(self, &j, &n);  //  no event: still pending
        }
    }

    //  Heartbeats to every worker, once per interval.
    if (self->mono >= self->next_heartbeat) {
        self->next_heartbeat = self->mono + self->cfg.heartbeat_ms;
        jobq_msg_t hb = {.cmd = JOBQ_CMD_HEARTBEAT};
        for (s_worker_t *w = zhashx_first(self->workers); w;
             w = zhashx_next(self->workers))
            s_to_worker(self, w, &hb, false);
    }
}

#define S_TAKE_MS                                                              \
    5                   //  shared: a job made by another broker waits this
                        //  long per rank before this one takes it
#define S_TAKE_SCAN 16  //  shared: ready jobs looked at per type
#define S_TAKE_OTHERS                                                          \
    64  //  shared: other brokers' jobs taken per turn, at most

//  Shared store: may this broker take job id now? Its own (made here: the
//  id's low bits are its slot) at once; another broker's once it has been
//  ready S_TAKE_MS times this broker's rank after its maker (its place after
//  the maker among the live brokers, 4 at most), so that two brokers rarely
//  reach for one job at the same moment (docs/STORAGE.md 10.4). Else
//  *until gets when.
static bool
s_claimable(jobq_engine_t *self, uint64_t id, uint64_t *until)
{
    int maker = (int) (id & 63);
    if (maker == self->slot)
        return true;
    jobq_jobdata_t j;
    if (jobq_store_get(self->store, id, &j) != JOBQ_OK)
        return true;  //  the usual path takes it out of the queue
    uint64_t since = j.run_at > j.created_at ? j.run_at : j.created_at;
    int r = jobq_store_rank(self->store, maker);
    uint64_t rank = r > 0 ? (uint64_t) r : 0;
    uint64_t at = since + S_TAKE_MS * (rank < 4 ? rank : 4);
    if (self->wall >= at)
        return true;
    if (at < *until)
        *until = at;
    return false;
}

//  Shared store: of type t's ready jobs, whose first is *id at *prio, the
//  one this broker takes, or false. Its own jobs of the first level first,
//  from the front of the queue (where their maker takes them). Else
//  another broker's, from the far end: the newest old enough to take (its
//  maker works from the front, so the two rarely reach for one job; each
//  such meeting fails one write), S_TAKE_OTHERS a turn at most.
static bool
s_shared_pick(jobq_engine_t *self,
              jobq_str_t t,
              uint64_t *id,
              int32_t *prio,
              uint64_t *until)
{
    int32_t level = *prio;
    uint64_t first = *id, at = *id;
    int32_t p = level;
    for (int n = 0; n < S_TAKE_SCAN && p == level; n++) {
        if ((int) (at & 63) == self->slot) {
            *id = at;
            return true;
        }
        if (jobq_store_ready_after(self->store, t, p, at, &at, &p) != JOBQ_OK)
            break;
    }
    if (self->taken_others >= S_TAKE_OTHERS) {
        self->next_take = self->mono;  //  the next turn takes more
        return false;
    }
    //  The oldest of the level not old enough: none is.
    if (!s_claimable(self, first, until))
        return false;
    //  Ids begin with their ms: those below cut were made S_TAKE_MS ago.
    uint64_t cut = self->wall > S_TAKE_MS ? (self->wall - S_TAKE_MS) << 16 : 0;
    uint64_t back = cut;
    for (int n = 0; n < S_TAKE_SCAN; n++) {
        if (jobq_store_ready_before(self->store, t, level, back, &back) !=
            JOBQ_OK)
            break;
        uint64_t ignored = UINT64_MAX;
        if (s_claimable(self, back, &ignored)) {
            first = back;
            break;
        }
    }
    self->taken_others++;
    *id = first;
    return true;
}

//  Hand w its best job: the highest priority, then oldest, of its types.
static bool
s_dispatch_one(jobq_engine_t *self, s_worker_t *w)
{
    uint64_t best_id = 0;
    int32_t best_prio = 0;
    uint32_t best_type = 0;
    uint64_t until = UINT64_MAX;
    for (uint32_t i = 0; i < w->ntypes; i++) {
        jobq_str_t t = {w->types[i], strlen(w->types[i])};
        uint64_t id;
        int32_t prio;
        if (jobq_store_ready_first(self->store, t, &id, &prio) != JOBQ_OK)
            continue;
        if (self->shared && !s_shared_pick(self, t, &id, &prio, &until))
            continue;
        if (!best_id || prio > best_prio ||
            (prio == best_prio && id < best_id)) {
            best_id = id;
            best_prio = prio;
            best_type = i;
        }
    }
    if (until != UINT64_MAX && until > self->wall) {
        uint64_t at = self->mono + (until - self->wall);
        if (!self->next_take || at < self->next_take)
            self->next_take = at;
    }
    if (!best_id)
        return false;
    jobq_jobdata_t j;
    int rc = jobq_store_get(self->store, best_id, &j);
    if (rc != JOBQ_OK) {
        jobq_jobdata_t k = {.id = best_id, .priority = best_prio};
        k.queue = JOBQ_QUEUE_READY;
        k.type.ptr = w->types[best_type];
        k.type.len = strlen(w->types[best_type]);
        s_unreadable(self, &k, rc);
        return !self->broken;  //  try the next one
    }
    //  An earlier attempt may still hold a lease: cancelled, then retried
    //  before its worker said it stopped. One lease per job: that attempt
    //  is over, and its late words are fenced off by the attempt number.
    jobq_lease_t *old = jobq_leases_get(self->leases, j.id);
    if (old)
        s_release(self, old);
    jobq_lease_t *l = jobq_leases_add(self->leases, j.id);
    if (!l)
        return false;
    jobq_jobdata_t n = j;
    n.status = JOBQ_RUNNING;
    n.queue = JOBQ_QUEUE_NONE;
    n.attempts = j.attempts + 1;
    n.progress = 0;
    n.message.len = 0;
    if (!n.started_at)
        n.started_at = self->wall;
    n.worker.ptr = w->name;
    n.worker.len = strlen(w->name);
    n.lease_until = self->wall + self->cfg.lease_ms;
    l->attempt = n.attempts;
    l->worker = w;
    memcpy(l->worker_name, w->name, strlen(w->name) + 1);
    l->lease_deadline = self->mono + self->cfg.lease_ms;
    l->timeout_deadline = n.timeout_ms ? self->mono + n.timeout_ms : 0;
    l->granted = self->mono;
    w->active++;
    jobq_msg_t jm = {.cmd = JOBQ_CMD_JOB};
    jm.u.dispatch.id = n.id;
    jm.u.dispatch.attempt = n.attempts;
    jm.u.dispatch.type = n.type;
    jm.u.dispatch.shop = n.shop;
    jm.u.dispatch.input = n.input;
    jm.u.dispatch.timeout_ms = n.timeout_ms;
    s_action_t *a = s_to_worker(self, w, &jm, true);
    //  A job made in this turn, under an id ceiling already on disk, may
    //  start before the commit: if the turn is lost, so is the job, its id
    //  is never handed out again, and the worker's reports about it are
    //  refused (docs/STORAGE.md, section 8).
    if (a && !self->shared && n.id > self->last_id_at_begin &&
        n.id <= self->id_ceiling)
        a->early = true;
    if (a && self->shared) {
        a->hold = true;
        l->held = 1;
    }
    s_changed(self, &n);
    s_put(self, &j, &n);
    self->stats.dispatched++;
    return true;
}

static void
s_dispatch(jobq_engine_t *self)
{
    if (!self->need_dispatch || self->draining)
        return;
    self->need_dispatch = false;
    uint32_t budget = self->cfg.dispatch_per_turn;
    bool progress = true;
    //  Round-robin: one job per worker per pass, so load spreads.
    while (progress && budget > 0 && !self->broken) {
        progress = false;
        for (s_worker_t *w = zhashx_first(self->workers); w && budget > 0;
             w = zhashx_next(self->workers)) {
            if (w->gone || w->unheard || w->active >= w->capacity ||
                w->starved_epoch == self->ready_epoch + 1)
                continue;
            if (s_dispatch_one(self, w)) {
                budget--;
                progress = true;
            } else {
                //  Nothing for it until another job becomes ready.
                w->starved_epoch = self->ready_epoch + 1;
            }
        }
    }
    if (budget == 0)
        self->need_dispatch = true;
}

void
jobq_engine_tick(jobq_engine_t *self)
{
    assert(self->in_turn);
    //  Jobs of other brokers that this one may take now: wake the workers
    //  that found nothing.
    if (self->next_take && self->mono >= self->next_take) {
        self->next_take = 0;
        self->ready_epoch++;
        self->need_dispatch = true;
    }
    s_timers(self);
    s_dispatch(self);
}

//  --- turns -----------------------------------------------------------------

static int
s_recover_visit(void *arg, const jobq_jobdata_t *j)
{
    jobq_engine_t *self = arg;
    jobq_lease_t *l = jobq_leases_get(self->leases, j->id);
    if (l)
        return 0;
    l = jobq_leases_add(self->leases, j->id);
    if (!l)
        return 1;
    l->attempt = j->attempts;
    size_t n = j->worker.len < JOBQ_WORKER_NAME_MAX ? j->worker.len
                                                    : JOBQ_WORKER_NAME_MAX;
    memcpy(l->worker_name, j->worker.ptr, n);
    l->worker_name[n] = '\0';
    l->worker = zhashx_lookup(self->workers, l->worker_name);
    if (l->worker)
        ((s_worker_t *) l->worker)->active++;
    l->lease_deadline = self->mono + self->cfg.lease_ms;
    l->timeout_deadline = j->timeout_ms ? self->mono + j->timeout_ms : 0;
    return 0;
}

int
jobq_engine_recover(jobq_engine_t *self, uint64_t wall, uint64_t mono)
{
    self->wall = wall;
    self->mono = mono;
    int rc = jobq_store_begin(self->store);
    if (rc != JOBQ_OK)
        return rc;
    uint64_t v;
    if (jobq_store_meta_get(self->store, "seq", &v) == JOBQ_OK)
        self->seq = v;
    if (jobq_store_meta_get(self->store, "last_id", &v) == JOBQ_OK)
        self->last_id = v;
    //  Ids up to the ceiling may have gone out in a turn that was lost in
    //  a crash (a JOB sent before its commit): start above them all.
    rc = jobq_store_meta_get(self->store, "id_ceiling", &v);
    if (rc == JOBQ_OK) {
        self->id_ceiling = v;
        if (v > self->last_id)
            self->last_id = v;
    } else if (rc != JOBQ_ENOTFOUND) {
        //  Without it an id that went out early could be handed out again.
        jobq_store_abort(self->store);
        return rc;
    }
    //  A broker on a shared store holds no lease when it starts: those of
    //  a broker that died run out, and the leader retries their jobs.
    rc = self->shared ? JOBQ_OK
                      : jobq_store_scan_status(self->store, JOBQ_RUNNING,
                                               s_recover_visit, self);
    jobq_store_abort(self->store);
    self->next_promote = 0;
    self->need_dispatch = true;
    return rc;
}

//  Keep JOB action a until the shared store confirms its claim (S_HELD_MS
//  at most): false when out of memory.
static bool
s_hold_one(jobq_engine_t *self, const s_action_t *a)
{
    if (self->nheld == self->cheld) {
        size_t cap = self->cheld ? self->cheld * 2 : 64;
        s_held_t *h = realloc(self->held, cap * sizeof *h);
        if (h) {
            self->held = h;
            self->cheld = cap;
        }
    }
    uint8_t *msg = malloc(a->peer_len + a->body_len);
    if (self->nheld == self->cheld || !msg) {
        free(msg);
        return false;
    }
    memcpy(msg, self->arena.data + a->peer_off, a->peer_len);
    memcpy(msg + a->peer_len, self->arena.data + a->body_off, a->body_len);
    self->held[self->nheld++] =
        (s_held_t){a->job, a->attempt,  self->mono + S_HELD_MS,
                   msg,    a->peer_len, a->body_len};
    return true;
}

//  After a commit on a shared store: the JOBs of the turn wait for their
//  claims to be confirmed; they leave the turn's actions.
static void
s_hold_jobs(jobq_engine_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->nactions; i++) {
        s_action_t a = self->actions[i];
        if (a.hold && !s_hold_one(self, &a)) {
            //  Out of memory: send it now, as a store without this
            //  check would.
            a.hold = false;
        }
        if (!a.hold)
            self->actions[kept++] = a;
    }
    self->nactions = kept;
}

//  After a commit that failed on a shared store: the claims the store
//  took all the same are held as after a commit (their JOBs wait for the
//  claim's confirmation); the rest of the turn is rolled back.
static void
s_hold_taken(jobq_engine_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->nactions; i++) {
        s_action_t a = self->actions[i];
        if (!(a.hold && jobq_store_taken(self->store, a.job) &&
              s_hold_one(self, &a)))
            self->actions[kept++] = a;
    }
    self->nactions = kept;
}

//  Let go of lease l: its worker's slot is free again. Not kept for a
//  rollback (s_release keeps it); alone, for a lease whose worker never
//  got the job (the claim's answer does not come again).
static void
s_drop_lease(jobq_engine_t *self, jobq_lease_t *l)
{
    s_worker_t *w = l->worker;
    if (w && w->active > 0) {
        w->active--;
        self->need_dispatch = true;
    }
    jobq_leases_remove(self->leases, l->id);
}

//  The store says whether this broker's write of job id took it: send the
//  held JOB, or drop it with its lease (another broker's worker runs it).
static void
s_claimed(jobq_engine_t *self, uint64_t id, bool ok)
{
    for (size_t i = 0; i < self->nheld; i++) {
        s_held_t h = self->held[i];
        if (h.id != id)
            continue;
        self->held[i] = self->held[--self->nheld];
        jobq_lease_t *l = jobq_leases_get(self->leases, id);
        bool live = l && l->attempt == h.attempt && l->held;
        if (ok && live) {
            l->held = 0;
            s_action_t *a = s_action(self, JOBQ_ACT_WORKER, JOBQ_CMD_JOB, h.msg,
                                     h.peer_len);
            if (a) {
                jobq_mp_write_raw(s_w(self), h.msg + h.peer_len, h.body_len);
                s_action_end(self, a);
                a->job = h.id;
                a->attempt = h.attempt;
                a->durable = false;
            }
        } else if (live) {
            self->stats.stale++;
            s_drop_lease(self, l);
        }
        free(h.msg);
        return;
    }
}

//  Claims never answered (a watch that stopped): dropped, with their
//  leases; the job's record names this broker's worker, so the leader
//  takes the attempt as lost once its lease_until has passed.
static void
s_held_expire(jobq_engine_t *self)
{
    for (size_t i = 0; i < self->nheld;) {
        if (self->held[i].until > self->mono) {
            i++;
            continue;
        }
        s_held_t h = self->held[i];
        self->held[i] = self->held[--self->nheld];
        jobq_lease_t *l = jobq_leases_get(self->leases, h.id);
        if (l && l->attempt == h.attempt && l->held)
            s_drop_lease(self, l);
        free(h.msg);
    }
}

//  Shared store: the job of lease l no longer runs that attempt (another
//  broker, or a write of a failed turn the store took, ended it): its
//  worker is told to stop, and its late words are stale.
static void
s_lease_lost(jobq_engine_t *self, jobq_lease_t *l)
{
    const s_worker_t *w = l->worker;
    if (w) {
        jobq_msg_t m = {.cmd = JOBQ_CMD_CANCEL_JOB};
        m.u.cancel_job.id = l->id;
        m.u.cancel_job.attempt = l->attempt;
        s_to_peer(self, w->ident, w->ident_len, &m, false);
    }
    l->ended = 1;
}

//  A change a shared store brought in (this broker's own, or another's):
//  publish it, with the store's revision as its seq, whatever becomes of
//  this turn (it is durable already). A change by another broker to a job
//  this one runs ends the attempt here: it was cancelled there, or taken
//  as lost; the worker is told to stop.
static void
s_store_change(void *arg, const jobq_store_change_t *c)
{
    jobq_engine_t *self = arg;
    const jobq_jobdata_t *j = c->job;
    if (!j)
        return;
    size_t before = self->nactions;
    s_event(self, j);
    if (self->nactions > before)
        self->actions[before].durable = false;
    if (j->queue == JOBQ_QUEUE_READY) {
        self->ready_epoch++;
        self->need_dispatch = true;
    } else if (j->queue == JOBQ_QUEUE_DELAYED) {
        self->next_promote = 0;
    }
    if (c->own) {
        if (c->claim)
            s_claimed(self, c->id, c->claim > 0);
        return;
    }
    jobq_lease_t *l = jobq_leases_get(self->leases, c->id);
    if (l && !l->ended &&
        !(j->status == JOBQ_RUNNING && j->attempts == l->attempt))
        s_lease_lost(self, l);
}

int
jobq_engine_begin(jobq_engine_t *self, uint64_t wall, uint64_t mono)
{
    assert(!self->in_turn);
    self->wall = wall;
    self->mono = mono;
    self->nactions = 0;
    jobq_mp_writer_reset(&self->arena);
    self->broken = 0;
    self->seq_at_begin = self->seq;
    if (++self->turn == 0) {  //  wrapped: forget every slot
        memset(self->snap_turn, 0, sizeof self->snap_turn);
        self->turn = 1;
    }
    //  On a shared store a commit can wait on the cluster (2 s at most):
    //  time the broker spent not listening does not count against its
    //  workers' silence or their leases.
    if (self->shared && self->last_begin &&
        mono > self->last_begin + 2 * self->cfg.heartbeat_ms) {
        uint64_t stall = mono - self->last_begin - self->cfg.heartbeat_ms;
        for (s_worker_t *w = zhashx_first(self->workers); w;
             w = zhashx_next(self->workers))
            w->last_seen =
                w->last_seen + stall < mono ? w->last_seen + stall : mono;
        size_t pos = 0;
        for (jobq_lease_t *l; (l = jobq_leases_next(self->leases, &pos));)
            l->lease_deadline += stall;
    }
    self->last_begin = mono;
    self->taken_others = 0;
    if (self->shared)
        self->slot = jobq_store_slot(self->store);
    //  On a shared store other brokers make ids too (or an import brought
    //  some in): stay above every one seen.
    uint64_t top;
    if (self->shared &&
        jobq_store_meta_get(self->store, "last_id", &top) == JOBQ_OK &&
        top > self->last_id)
        self->last_id = top;
    self->last_id_at_begin = self->last_id;
    self->nreleased = 0;
    int rc = jobq_store_begin(self->store);
    if (rc == JOBQ_OK) {
        self->in_turn = true;
        jobq_store_changes(self->store, s_store_change, self);
    }
    return rc;
}

//  After a failed commit: the store is as it was before the turn. Put the
//  memory back: counters, dispatches, and any running job whose lease the
//  turn released.
static void
s_rollback(jobq_engine_t *self)
{
    //  Ids are not taken back: a JOB sent early may carry one.
    self->seq = self->seq_at_begin;
    for (size_t i = 0; i < self->nactions; i++) {
        s_action_t *a = &self->actions[i];
        //  The turn's own claims; not the JOBs of claims a shared store
        //  confirmed (kept whatever becomes of this turn).
        if (a->cmd == JOBQ_CMD_JOB && a->kind == JOBQ_ACT_WORKER &&
            a->durable) {
            jobq_lease_t *l = jobq_leases_get(self->leases, a->job);
            if (l)
                s_release(self, l);
        }
    }
    if (self->shared) {
        for (size_t i = 0; i < self->nreleased; i++) {
            jobq_lease_t *r = &self->released[i];
            if (jobq_leases_get(self->leases, r->id))
                continue;
            jobq_lease_t *l = jobq_leases_add(self->leases, r->id);
            if (!l)
                break;
            *l = *r;
            l->worker = zhashx_lookup(self->workers, l->worker_name);
            if (l->worker)
                ((s_worker_t *) l->worker)->active++;
        }
        self->nreleased = 0;
    }
    if (jobq_store_begin(self->store) == JOBQ_OK) {
        if (!self->shared)
            jobq_store_scan_status(self->store, JOBQ_RUNNING, s_recover_visit,
                                   self);
        //  A lease the turn ended (cancel, timeout) whose end was not saved
        //  is live again; its CANCEL_JOB, durable, was never sent. On a
        //  shared store, one whose end was saved all the same (the store
        //  took that write of the turn) is over.
        size_t pos = 0;
        for (jobq_lease_t *l; (l = jobq_leases_next(self->leases, &pos));) {
            jobq_jobdata_t j;
            bool runs = jobq_store_get(self->store, l->id, &j) == JOBQ_OK &&
                        j.status == JOBQ_RUNNING && j.attempts == l->attempt;
            if (l->ended && runs)
                l->ended = 0;
            else if (self->shared && !l->ended && !l->held && !runs)
                s_lease_lost(self, l);
        }
        jobq_store_abort(self->store);
    }
    self->need_dispatch = true;
    self->next_promote = 0;
}

//  Early JOBs go out only from a turn that can commit: in one that cannot,
//  a body may be cut short.
static bool
s_early_ok(const jobq_engine_t *self)
{
    return !self->broken && !jobq_mp_writer_error(&self->arena);
}

int
jobq_engine_commit(jobq_engine_t *self)
{
    assert(self->in_turn);
    self->in_turn = false;
    bool early_sent = s_early_ok(self);
    int rc = self->broken;
    if (!rc && self->seq != self->seq_at_begin)
        rc = jobq_store_meta_put(self->store, "seq", self->seq);
    if (!rc && self->last_id != self->last_id_at_begin)
        rc = jobq_store_meta_put(self->store, "last_id", self->last_id);
    uint64_t base =
        self->wall << 16 > self->last_id ? self->wall << 16 : self->last_id;
    uint64_t ceiling = self->id_ceiling;
    if (base <= UINT64_MAX - S_ID_RESERVE &&
        base + S_ID_RESERVE / 2 > ceiling) {
        ceiling = base + S_ID_RESERVE;
        if (!rc)
            rc = jobq_store_meta_put(self->store, "id_ceiling", ceiling);
    }
    if (!rc && jobq_mp_writer_error(&self->arena))
        rc = jobq_mp_writer_error(&self->arena);
    if (rc) {
        jobq_store_abort(self->store);
    } else {
        rc = jobq_store_commit(self->store);
    }
    if (rc == JOBQ_OK) {
        self->id_ceiling = ceiling;
        if (self->shared)
            s_hold_jobs(self);
        return JOBQ_OK;
    }
    self->stats.commits_failed++;
    if (self->shared)
        s_hold_taken(self);
    s_rollback(self);
    //  Replies become errors; nothing else that depended on the commit
    //  goes out. Bodies of the rewritten errors go at the arena's end.
    size_t kept = 0, n = self->nactions;
    const char *why = rc == JOBQ_ESTOREFULL ? "storage full; retry later"
                      : rc == JOBQ_ECORRUPT
                          ? "stored data is damaged; nothing was saved "
                            "(the broker's log says where)"
                      : rc == JOBQ_EUNAVAILABLE || rc == JOBQ_ESTALE
                          ? "the shared store did not take this turn (a job "
                            "changed through another broker at the same "
                            "moment, or the cluster did not answer); part "
                            "of it may be saved: retry, with an "
                            "idempotency key"
                          : "storage error; nothing was saved";
    if (jobq_mp_writer_error(&self->arena)) {
        //  Out of arena: keep nothing but what can be rewritten.
        self->arena.err = JOBQ_OK;
    }
    for (size_t i = 0; i < n; i++) {
        s_action_t a = self->actions[i];
        if (!a.durable) {
            self->actions[kept++] = a;
        } else if (a.early && early_sent) {
            //  The JOB went out already and its job is gone with the turn:
            //  tell the worker to stop it.
            jobq_msg_t c = {.cmd = JOBQ_CMD_CANCEL_JOB};
            c.u.cancel_job.id = a.job;
            c.u.cancel_job.attempt = a.attempt;
            a.body_off = self->arena.len;
            jobq_msg_encode(&c, &self->arena);
            a.body_len = self->arena.len - a.body_off;
            a.cmd = JOBQ_CMD_CANCEL_JOB;
            a.durable = false;
            a.early = false;
            self->actions[kept++] = a;
        } else if (a.kind == JOBQ_ACT_CLIENT) {
            a.body_off = self->arena.len;
            //  A write that met another broker's is, to the client, the
            //  store being unavailable for a moment: it tries again.
            jobq_msg_write_error(&self->arena, a.rid,
                                 rc == JOBQ_ESTALE ? JOBQ_EUNAVAILABLE : rc,
                                 why);
            a.body_len = self->arena.len - a.body_off;
            a.cmd = JOBQ_CMD_ERROR;
            a.durable = false;
            self->actions[kept++] = a;
        }
    }
    self->nactions = kept;
    return rc;
}

size_t
jobq_engine_action_count(const jobq_engine_t *self)
{
    return self->nactions;
}

void
jobq_engine_action(const jobq_engine_t *self, size_t i, jobq_action_t *out)
{
    assert(i < self->nactions);
    const s_action_t *a = &self->actions[i];
    out->kind = a->kind;
    out->cmd = a->cmd;
    out->peer = self->arena.data + a->peer_off;
    out->peer_len = a->peer_len;
    out->body = self->arena.data + a->body_off;
    out->body_len = a->body_len;
    out->early = a->early && s_early_ok(self);
}

void
jobq_engine_undeliverable(jobq_engine_t *self, size_t i)
{
    const s_action_t *a = &self->actions[i];
    if (a->kind != JOBQ_ACT_WORKER)
        return;
    s_worker_t *w =
        s_worker_find(self, self->arena.data + a->peer_off, a->peer_len);
    if (w)
        w->gone = true;
}

size_t
jobq_engine_turn_bytes(const jobq_engine_t *self)
{
    return self->arena.len;
}

uint64_t
jobq_engine_next_wakeup(const jobq_engine_t *self)
{
    uint64_t t = self->next_heartbeat;
    if (self->next_promote < t)
        t = self->next_promote;
    if (jobq_leases_count(self->leases) && self->next_check < t)
        t = self->next_check;
    if (self->next_take && self->next_take < t)
        t = self->next_take;
    if (self->need_dispatch)
        t = self->mono;
    return t;
}

void
jobq_engine_set_store_full(jobq_engine_t *self, bool full)
{
    self->store_full = full;
}

void
jobq_engine_drain(jobq_engine_t *self)
{
    self->draining = true;
}

void
jobq_engine_get_stats(const jobq_engine_t *self, jobq_engine_stats_t *out)
{
    *out = self->stats;
}

void
jobq_engine_workers_unheard(jobq_engine_t *self)
{
    for (s_worker_t *w = zhashx_first(self->workers); w;
         w = zhashx_next(self->workers))
        w->unheard = true;
}

size_t
jobq_engine_worker_count(const jobq_engine_t *self)
{
    return zhashx_size(self->workers);
}

size_t
jobq_engine_lease_count(const jobq_engine_t *self)
{
    return jobq_leases_count(self->leases);
}
