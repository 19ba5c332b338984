/*  jobq_client.c: synchronous requests over one DEALER, and watch.

    With a list of brokers, the DEALER is connected to one of them at a
    time, and a try that gets no reply within the timeout moves it to the
    next one (disconnect, connect) before the next try. Why not connect it
    to every broker at once and let ZeroMQ round-robin the requests:
    - a DEALER queues a request for a peer whose connection is not up (or
      not up yet), so with a dead broker in the list a share of all
      requests would wait there for a connection that never comes, each
      costing a full timeout; ZMQ_IMMEDIATE helps only for a refused
      connection, not for a host that went away without a reset (the peer
      stays "connected" until TCP gives up), nor for a broker that is
      hung: it keeps its share of requests for good;
    - one at a time, a broker that failed a try is left after that one
      timeout and the client stays with the next, for every later call:
      the cost of a dead broker is paid once, not on every Nth request;
    - disconnecting drops what was queued for the old broker (a request
      that did reach it and is answered late is told apart by its request
      id and skipped), and the try that follows sends the same bytes (same
      request id, same idempotency key), so a request that the dead broker
      had committed is answered with the same job by the next one, which
      shares its store.
    Spreading load over brokers is left to the clients: give each its list
    in another order. The SUB of a watch is another matter: events are
    one-way, so it listens to every broker of its list at once.
*/
#include "jobq/jobq_client.h"
#include "jobq_msg.h"
#include "jobq_wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define S_SNAPSHOT_MS 1000  //  watch: take a fresh snapshot after silence
//  With an interrupt flag, waits look at it at least this often: a signal
//  that lands just before a wait begins is seen within this time.
#define S_FLAG_POLL_MS 200

struct jobq_client {
    jobq_client_config_t cfg;  //  copy; endpoints below
    jobq_wire_eps_t brokers;   //  client endpoints
    size_t cur;                //  the one the dealer is connected to
    jobq_wire_eps_t events;    //  event endpoints, when events_err is 0
    int events_err;            //  JOBQ_OK or why the events list is bad
    char events_why[128];      //  and what is wrong with it
    void *ctx;                 //  ZeroMQ context, given or own
    bool own_ctx;              //  made by the client: end it on destroy
    void *dealer;              //  requests
    uint64_t next_rid;         //  request ids
    uint64_t nonce;            //  random, names this client in made-up keys
    jobq_mp_writer_t w;        //  request encoding
    jobq_mp_writer_t bw;       //  the jobs of a batch
    zmq_msg_t reply;           //  body of the last reply (kept for views)
    bool have_reply;           //  reply holds a message
    char last_error[512];      //  message of the last failure
    uint64_t *in_flight;       //  rids of pipelined requests, unanswered
    size_t n_in_flight;        //  entries in in_flight
    bool unserved;             //  the last enqueue's type had no worker
    jobq_curve_t curve;        //  keys, when cfg.curve was given
    void *monitor;             //  PAIR: the dealer's handshake events
    int handshake;             //  0 none yet, 1 succeeded, -1 refused by
                               //  the broker (ZAP), -2 failed otherwise
};

//  A request that gets no answer may be one whose handshake failed (a key
//  the broker refuses, a wrong broker key, no key for a broker with keys):
//  say which, from the dealer's monitor.
static const char *
s_handshake_hint(jobq_client_t *self)
{
    jobq_wire_handshake_read(self->monitor, &self->handshake);
    return jobq_wire_handshake_hint(self->handshake, self->cfg.curve != NULL);
}

void
jobq_client_config_defaults(jobq_client_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->broker = "tcp://127.0.0.1:5555";
    cfg->events = "tcp://127.0.0.1:5557";
    cfg->timeout_ms = 3000;
    cfg->retries = 1;
    cfg->zmq_ctx = NULL;
    cfg->interrupt = NULL;
}

jobq_client_t *
jobq_client_new(const jobq_client_config_t *cfg)
{
    jobq_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    jobq_client_config_t d;
    jobq_client_config_defaults(&d);
    self->cfg = cfg ? *cfg : d;
    char why[128];
    if (jobq_wire_endpoints(self->cfg.broker ? self->cfg.broker : d.broker,
                            &self->brokers, why, sizeof why) != JOBQ_OK) {
        free(self);
        return NULL;
    }
    self->events_err = jobq_wire_endpoints(
        self->cfg.events ? self->cfg.events : d.events, &self->events,
        self->events_why, sizeof self->events_why);
    if (self->cfg.timeout_ms <= 0)
        self->cfg.timeout_ms = d.timeout_ms;
    if (self->cfg.retries < 0)
        self->cfg.retries = 0;
    self->ctx = self->cfg.zmq_ctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        self->own_ctx = true;
    }
    if (self->cfg.curve) {
        self->curve = *self->cfg.curve;
        self->cfg.curve = &self->curve;
    }
    int err = JOBQ_OK;
    //  The endpoints after the first are connected only when the client
    //  moves to them: check now that ZeroMQ can parse them.
    if (self->ctx &&
        jobq_wire_endpoints_check(self->ctx, &self->brokers, 1, self->cfg.curve,
                                  why, sizeof why) == JOBQ_OK)
        self->dealer =
            jobq_wire_connect(self->ctx, ZMQ_DEALER, self->brokers.ep[0], NULL,
                              self->cfg.curve, &err);
    if (!self->dealer) {
        if (self->own_ctx && self->ctx)
            zmq_ctx_term(self->ctx);
        free(self);
        return NULL;
    }
    self->monitor = jobq_wire_handshake_monitor(self->ctx, self->dealer);
    //  Request ids start at a random point so a reply meant for an earlier
    //  client process that used the same routing id is not taken as ours.
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t us =
        (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000;
    self->next_rid = (us << 16) | 1;
    if (getrandom(&self->nonce, sizeof self->nonce, 0) !=
        (ssize_t) sizeof self->nonce)
        self->nonce = us ^ ((uint64_t) getpid() << 40);
    jobq_mp_writer_init(&self->w, JOBQ_MAX_FRAME_BYTES);
    jobq_mp_writer_init(&self->bw, JOBQ_MAX_FRAME_BYTES);
    zmq_msg_init(&self->reply);
    return self;
}

void
jobq_client_destroy(jobq_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_client_t *self = *self_p;
    jobq_wire_close(&self->dealer);
    jobq_wire_close(&self->monitor);
    if (self->own_ctx)
        zmq_ctx_term(self->ctx);
    jobq_mp_writer_fini(&self->w);
    jobq_mp_writer_fini(&self->bw);
    zmq_msg_close(&self->reply);
    free(self->in_flight);
    free(self);
    *self_p = NULL;
}

int
jobq_endpoints_check(const char *list, char *why, size_t cap)
{
    _Static_assert(JOBQ_MAX_ENDPOINTS == JOBQ_WIRE_MAX_ENDPOINTS,
                   "one limit for endpoint lists");
    char buf[128];
    jobq_wire_eps_t *eps = malloc(sizeof *eps);
    if (!eps)
        return JOBQ_ENOMEM;
    int rc = jobq_wire_endpoints(list, eps, buf, sizeof buf);
    free(eps);
    if (rc != JOBQ_OK && why && cap)
        snprintf(why, cap, "%s", buf);
    return rc;
}

const char *
jobq_client_last_error(const jobq_client_t *self)
{
    return self->last_error;
}

static int s_error(jobq_client_t *self, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_error(jobq_client_t *self, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->last_error, sizeof self->last_error, fmt, ap);
    va_end(ap);
    return rc;
}

//  Take rid out of the requests in flight; false if it was not there.
static bool
s_answered(jobq_client_t *self, uint64_t rid)
{
    for (size_t i = 0; i < self->n_in_flight; i++) {
        if (self->in_flight[i] == rid) {
            self->in_flight[i] = self->in_flight[--self->n_in_flight];
            return true;
        }
    }
    return false;
}

//  How long the next wait may block, in ms, given what is left: at most
//  S_FLAG_POLL_MS when the caller gave an interrupt flag.
static long
s_slice(const jobq_client_t *self, int64_t left)
{
    if (self->cfg.interrupt && left > S_FLAG_POLL_MS)
        return S_FLAG_POLL_MS;
    return (long) left;
}

//  The broker this client talks to now.
static const char *
s_broker(const jobq_client_t *self)
{
    return self->brokers.ep[self->cur];
}

//  For messages: "the broker at EP", or with a list "the brokers at EP1,
//  EP2, ..." (cut to fit a message).
static const char *
s_brokers_text(const jobq_client_t *self, char *buf, size_t cap)
{
    if (self->brokers.n == 1) {
        snprintf(buf, cap, "the broker at %s", s_broker(self));
        return buf;
    }
    size_t len = (size_t) snprintf(buf, cap, "the brokers at");
    for (size_t i = 0; i < self->brokers.n && len < cap; i++)
        len += (size_t) snprintf(buf + len, cap - len, "%s %s", i ? "," : "",
                                 self->brokers.ep[i]);
    return buf;
}

//  The try on the current broker got no reply: move the dealer to the next
//  one of the list (nothing to do with one). What was queued for the old
//  one is dropped with its connection.
static void
s_next_broker(jobq_client_t *self)
{
    if (self->brokers.n < 2)
        return;
    zmq_disconnect(self->dealer, s_broker(self));
    //  Checked at jobq_client_new, so a connect fails only for want of
    //  memory: then try the one after.
    for (size_t k = 0; k < self->brokers.n; k++) {
        self->cur = (self->cur + 1) % self->brokers.n;
        if (zmq_connect(self->dealer, s_broker(self)) == 0)
            return;
    }
}

//  True (and the last error set) when the caller asked the waits to end.
static bool
s_interrupted(jobq_client_t *self)
{
    if (!self->cfg.interrupt || !*self->cfg.interrupt)
        return false;
    s_error(self, JOBQ_EINTR, "interrupted");
    return true;
}

//  Wait until deadline (monotonic ms) for the answer to request rid, or,
//  when rid is 0, to any pipelined request in flight (which it then takes
//  out of the set). On JOBQ_OK, *r is the decoded answer and the caller
//  closes *in; JOBQ_ETIMEOUT if none came, JOBQ_EINTR if a signal or the
//  interrupt flag ended the wait. Stale or foreign messages are skipped.
static int
s_wait_answer(jobq_client_t *self,
              uint64_t rid,
              int64_t deadline,
              jobq_wire_in_t *in,
              jobq_msg_t *r)
{
    while (true) {
        if (s_interrupted(self))
            return JOBQ_EINTR;
        int64_t left = deadline - jobq_wire_now_ms();
        if (left <= 0)
            return JOBQ_ETIMEOUT;
        zmq_pollitem_t item = {self->dealer, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, s_slice(self, left));
        if (n < 0 && errno == EINTR)
            return s_error(self, JOBQ_EINTR, "interrupted");
        if (n <= 0)
            continue;
        int rc = jobq_wire_recv(self->dealer, false, true, in);
        if (rc == JOBQ_EINTR)
            return s_error(self, JOBQ_EINTR, "interrupted");
        if (rc != JOBQ_OK)
            continue;
        jobq_msg_why_t why;
        if (in->err == JOBQ_OK &&
            jobq_msg_decode(in->cmd, in->body, in->body_len, r, &why) ==
                JOBQ_OK &&
            (rid ? r->rid == rid : s_answered(self, r->rid)))
            return JOBQ_OK;
        jobq_wire_in_close(in);
    }
}

//  Send the encoded request in self->w, waiting up to the timeout for room
//  (a DEALER with no connection yet has none). JOBQ_OK, JOBQ_ETIMEOUT,
//  JOBQ_EINTR or JOBQ_EUNAVAILABLE.
static int
s_send_request(jobq_client_t *self, int cmd)
{
    int64_t deadline = jobq_wire_now_ms() + self->cfg.timeout_ms;
    while (true) {
        if (s_interrupted(self))
            return JOBQ_EINTR;
        int rc = jobq_wire_send(self->dealer, NULL, 0, cmd, self->w.data,
                                self->w.len);
        if (rc != JOBQ_ETIMEOUT)
            return rc;
        int64_t left = deadline - jobq_wire_now_ms();
        if (left <= 0)
            return JOBQ_ETIMEOUT;
        zmq_pollitem_t item = {self->dealer, 0, ZMQ_POLLOUT, 0};
        if (zmq_poll(&item, 1, s_slice(self, left)) < 0 && errno == EINTR)
            return s_error(self, JOBQ_EINTR, "interrupted");
    }
}

//  Give m the next request id and encode it into self->w.
static int
s_encode(jobq_client_t *self, jobq_msg_t *m)
{
    m->rid = self->next_rid++;
    jobq_mp_writer_reset(&self->w);
    jobq_msg_encode(m, &self->w);
    if (jobq_mp_writer_error(&self->w))
        return s_error(self, jobq_mp_writer_error(&self->w),
                       "request too large (limit %u bytes)",
                       JOBQ_MAX_FRAME_BYTES);
    return JOBQ_OK;
}

//  Send m (with a fresh rid) and wait for its reply, resending the same
//  bytes after each timeout. On JOBQ_OK, *body is the REPLY body (valid
//  until the next request). A broker ERROR is returned as its code.
static int
s_request(jobq_client_t *self, jobq_msg_t *m, jobq_bytes_t *body)
{
    if (self->n_in_flight)
        return s_error(self, JOBQ_ESTATE,
                       "%zu pipelined requests wait for answers: receive "
                       "them first",
                       self->n_in_flight);
    int rc = s_encode(self, m);
    if (rc != JOBQ_OK)
        return rc;
    self->last_error[0] = '\0';
    for (int attempt = 0; attempt <= self->cfg.retries; attempt++) {
        if (s_interrupted(self))
            return JOBQ_EINTR;
        rc = s_send_request(self, m->cmd);
        if (rc == JOBQ_EINTR)
            return rc;
        if (rc != JOBQ_OK) {
            s_next_broker(self);
            continue;
        }
        jobq_wire_in_t in;
        jobq_msg_t r;
        rc = s_wait_answer(self, m->rid,
                           jobq_wire_now_ms() + self->cfg.timeout_ms, &in, &r);
        if (rc == JOBQ_EINTR)
            return rc;
        if (rc != JOBQ_OK) {
            //  The same bytes go to the next broker of the list, if any.
            s_next_broker(self);
            continue;
        }
        if (r.cmd == JOBQ_CMD_ERROR) {
            s_error(self, r.u.error.code, "%.*s", (int) r.u.error.message.len,
                    r.u.error.message.ptr);
            jobq_wire_in_close(&in);
            return r.u.error.code;
        }
        //  Keep the body frame alive for the caller's views.
        zmq_msg_close(&self->reply);
        zmq_msg_init(&self->reply);
        zmq_msg_move(&self->reply, &in.frames[2]);
        jobq_wire_in_close(&in);
        body->ptr = zmq_msg_data(&self->reply);
        body->len = zmq_msg_size(&self->reply);
        return JOBQ_OK;
    }
    char where[384];
    return s_error(
        self, JOBQ_EUNAVAILABLE, "no reply from %s within %d ms (%d tries)%s",
        s_brokers_text(self, where, sizeof where), self->cfg.timeout_ms,
        self->cfg.retries + 1, s_handshake_hint(self));
}

//  --- job info
//  ----------------------------------------------------------------

static char *
s_dup(jobq_str_t s)
{
    if (!s.len)
        return NULL;
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

static jobq_bytes_t
s_dup_bytes(jobq_bytes_t b)
{
    jobq_bytes_t out = {NULL, 0};
    if (!b.len)
        return out;
    uint8_t *p = malloc(b.len);
    if (p) {
        memcpy(p, b.ptr, b.len);
        out.ptr = p;
        out.len = b.len;
    }
    return out;
}

static void
s_fixed(char *dst, size_t cap, jobq_str_t s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static void
s_info(jobq_job_info_t *info, const jobq_jobdata_t *j)
{
    memset(info, 0, sizeof *info);
    jobq_id_format(j->id, info->id);
    s_fixed(info->type, sizeof info->type, j->type);
    s_fixed(info->shop_id, sizeof info->shop_id, j->shop);
    info->status = j->status;
    info->progress = j->progress;
    info->message = s_dup(j->message);
    info->error = s_dup(j->error);
    info->key = s_dup(j->key);
    info->worker = s_dup(j->worker);
    info->attempts = j->attempts;
    info->max_attempts = j->max_attempts;
    info->priority = j->priority;
    info->run_at = j->run_at;
    info->timeout_ms = j->timeout_ms;
    info->created_at = j->created_at;
    info->updated_at = j->updated_at;
    info->started_at = j->started_at;
    info->completed_at = j->completed_at;
    info->lease_until = j->lease_until;
    info->version = j->version;
    info->seq = j->seq;
    info->input = s_dup_bytes(j->input);
    info->output = s_dup_bytes(j->output);
    info->errors = s_dup_bytes(j->errors);
    info->wait = j->wait;
    info->wait_until = j->wait_until;
}

void
jobq_job_info_clear(jobq_job_info_t *info)
{
    if (!info)
        return;
    free(info->message);
    free(info->error);
    free(info->key);
    free(info->worker);
    free((void *) info->input.ptr);
    free((void *) info->output.ptr);
    free((void *) info->errors.ptr);
    memset(info, 0, sizeof *info);
}

//  Find key in the reply map body and position r on its value.
static int
s_reply_field(jobq_client_t *self,
              jobq_bytes_t body,
              const char *key,
              jobq_mp_reader_t *r)
{
    jobq_bytes_t v;
    if (jobq_mp_map_find(body, key, &v) != JOBQ_OK)
        return s_error(self, JOBQ_EPROTO, "reply lacks '%s'", key);
    jobq_mp_reader_init(r, v.ptr, v.len);
    return JOBQ_OK;
}

static int
s_job_reply(jobq_client_t *self, jobq_msg_t *m, jobq_job_info_t *info)
{
    jobq_bytes_t body;
    int rc = s_request(self, m, &body);
    if (rc != JOBQ_OK)
        return rc;
    jobq_mp_reader_t r;
    jobq_jobdata_t j;
    if ((rc = s_reply_field(self, body, "job", &r)) != JOBQ_OK)
        return rc;
    if (jobq_msg_read_job(&r, &j) != JOBQ_OK)
        return s_error(self, JOBQ_EPROTO, "malformed job in reply");
    if (info)
        s_info(info, &j);
    return JOBQ_OK;
}

static int
s_parse_id(jobq_client_t *self, const char *id, uint64_t *out)
{
    if (!id || jobq_id_parse(id, strlen(id), out) != JOBQ_OK)
        return s_error(self, JOBQ_EINVAL,
                       "'%s' is not a job id (%d hex digits)", id ? id : "",
                       JOBQ_ID_LEN);
    return JOBQ_OK;
}

//  --- requests ---------------------------------------------------------------

#define S_AUTO_KEY_LEN 48  //  room for a made-up idempotency key

//  The ENQUEUE fields of req into m; key_buf (if not NULL) holds a made-up
//  key when retries are on and req has none (a resent request must not
//  make a second job). n tells apart the jobs of one batch.
static int
s_fill_enqueue(jobq_client_t *self,
               const jobq_enqueue_t *req,
               jobq_msg_t *m,
               char key_buf[S_AUTO_KEY_LEN],
               size_t n)
{
    static const uint8_t empty[] = {0x80};
    if (!req->type || !req->shop_id)
        return s_error(self, JOBQ_EINVAL, "type and shop_id are required");
    m->u.enqueue.type = (jobq_str_t){req->type, strlen(req->type)};
    m->u.enqueue.shop = (jobq_str_t){req->shop_id, strlen(req->shop_id)};
    m->u.enqueue.input = req->input.len ? req->input : (jobq_bytes_t){empty, 1};
    m->u.enqueue.priority = req->priority;
    m->u.enqueue.delay_ms = req->delay_ms;
    m->u.enqueue.max_attempts =
        req->max_attempts ? req->max_attempts : JOBQ_DEFAULT_ATTEMPTS;
    m->u.enqueue.timeout_ms = req->timeout_ms;
    m->u.enqueue.key.len = 0;
    if (req->key) {
        m->u.enqueue.key = (jobq_str_t){req->key, strlen(req->key)};
    } else if (self->cfg.retries > 0 && key_buf) {
        snprintf(key_buf, S_AUTO_KEY_LEN, "auto-%016llx-%llx-%zx",
                 (unsigned long long) self->nonce,
                 (unsigned long long) self->next_rid, n);
        m->u.enqueue.key = (jobq_str_t){key_buf, strlen(key_buf)};
    }
    return JOBQ_OK;
}

//  An enqueue reply's optional `unserved`: true (ENQUEUE) or a non-empty
//  array of types (ENQUEUE_BATCH).
static void
s_note_unserved(jobq_client_t *self, jobq_bytes_t body)
{
    jobq_bytes_t v;
    jobq_mp_reader_t r;
    bool b = false;
    uint32_t n = 0;
    self->unserved = false;
    if (jobq_mp_map_find(body, "unserved", &v) != JOBQ_OK)
        return;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    if (jobq_mp_read_bool(&r, &b) == JOBQ_OK) {
        self->unserved = b;
        return;
    }
    jobq_mp_reader_init(&r, v.ptr, v.len);
    if (jobq_mp_read_array(&r, &n) == JOBQ_OK)
        self->unserved = n > 0;
}

//  The id and created flag of an ENQUEUE reply body.
static int
s_enqueue_answer(jobq_client_t *self,
                 jobq_bytes_t body,
                 char id[JOBQ_ID_LEN + 1],
                 bool *created)
{
    jobq_mp_reader_t r;
    jobq_str_t s;
    int rc = s_reply_field(self, body, "id", &r);
    if (rc != JOBQ_OK)
        return rc;
    if (jobq_mp_read_str(&r, &s) != JOBQ_OK || s.len != JOBQ_ID_LEN)
        return s_error(self, JOBQ_EPROTO, "malformed id in reply");
    memcpy(id, s.ptr, JOBQ_ID_LEN);
    id[JOBQ_ID_LEN] = '\0';
    if (created) {
        *created = true;
        if (s_reply_field(self, body, "created", &r) == JOBQ_OK)
            jobq_mp_read_bool(&r, created);
    }
    s_note_unserved(self, body);
    return JOBQ_OK;
}

bool
jobq_client_unserved(const jobq_client_t *self)
{
    return self->unserved;
}

int
jobq_client_enqueue(jobq_client_t *self,
                    const jobq_enqueue_t *req,
                    char id[JOBQ_ID_LEN + 1],
                    bool *created)
{
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_ENQUEUE;
    char auto_key[S_AUTO_KEY_LEN];
    int rc = s_fill_enqueue(self, req, &m, auto_key, 0);
    if (rc != JOBQ_OK)
        return rc;
    jobq_bytes_t body;
    if ((rc = s_request(self, &m, &body)) != JOBQ_OK)
        return rc;
    return s_enqueue_answer(self, body, id, created);
}

//  --- pipelined enqueue ------------------------------------------------------

int
jobq_client_enqueue_send(jobq_client_t *self,
                         const jobq_enqueue_t *req,
                         uint64_t *ticket)
{
    if (self->n_in_flight == JOBQ_CLIENT_MAX_IN_FLIGHT)
        return s_error(self, JOBQ_ETOOBIG,
                       "%d requests in flight already: receive answers first",
                       JOBQ_CLIENT_MAX_IN_FLIGHT);
    if (!self->in_flight) {
        self->in_flight =
            malloc(JOBQ_CLIENT_MAX_IN_FLIGHT * sizeof *self->in_flight);
        if (!self->in_flight)
            return s_error(self, JOBQ_ENOMEM, "out of memory");
    }
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_ENQUEUE;
    //  No made-up key: a pipelined request is never resent by us.
    int rc = s_fill_enqueue(self, req, &m, NULL, 0);
    if (rc != JOBQ_OK)
        return rc;
    rc = s_encode(self, &m);
    if (rc != JOBQ_OK)
        return rc;
    rc = s_send_request(self, m.cmd);
    if (rc == JOBQ_EINTR)
        return rc;
    if (rc != JOBQ_OK) {
        const char *ep = s_broker(self);
        //  Requests in flight stay with this broker: move on only when
        //  there are none (their answers would be lost).
        if (self->n_in_flight == 0)
            s_next_broker(self);
        return s_error(self, JOBQ_EUNAVAILABLE,
                       "could not queue the request for %s within %d ms", ep,
                       self->cfg.timeout_ms);
    }
    self->in_flight[self->n_in_flight++] = m.rid;
    *ticket = m.rid;
    self->last_error[0] = '\0';
    return JOBQ_OK;
}

int
jobq_client_enqueue_recv(jobq_client_t *self,
                         uint64_t *ticket,
                         char id[JOBQ_ID_LEN + 1],
                         bool *created)
{
    *ticket = 0;
    if (self->n_in_flight == 0)
        return s_error(self, JOBQ_ESTATE, "no request in flight");
    jobq_wire_in_t in;
    jobq_msg_t r;
    int wrc = s_wait_answer(self, 0, jobq_wire_now_ms() + self->cfg.timeout_ms,
                            &in, &r);
    if (wrc == JOBQ_EINTR)
        return wrc;
    if (wrc == JOBQ_OK) {
        *ticket = r.rid;
        int rc;
        if (r.cmd == JOBQ_CMD_ERROR) {
            rc = s_error(self, r.u.error.code, "%.*s",
                         (int) r.u.error.message.len, r.u.error.message.ptr);
        } else {
            self->last_error[0] = '\0';
            rc = s_enqueue_answer(self, (jobq_bytes_t){in.body, in.body_len},
                                  id, created);
        }
        jobq_wire_in_close(&in);
        return rc;
    }
    size_t lost = self->n_in_flight;
    self->n_in_flight = 0;
    //  Every request in flight is given up: the caller sends them again
    //  (with their keys), to the next broker of the list if there is one.
    const char *ep = s_broker(self);
    s_next_broker(self);
    return s_error(self, JOBQ_EUNAVAILABLE,
                   "no answer from the broker at %s within %d ms: %zu "
                   "requests in flight given up%s",
                   ep, self->cfg.timeout_ms, lost, s_handshake_hint(self));
}

size_t
jobq_client_in_flight(const jobq_client_t *self)
{
    return self->n_in_flight;
}

int
jobq_client_enqueue_batch(jobq_client_t *self,
                          const jobq_enqueue_t *reqs,
                          size_t n,
                          char (*ids)[JOBQ_ID_LEN + 1],
                          bool *created)
{
    if (n == 0 || n > JOBQ_MAX_BATCH)
        return s_error(self, JOBQ_EINVAL, "a batch holds 1 to %d jobs",
                       JOBQ_MAX_BATCH);
    jobq_mp_writer_reset(&self->bw);
    jobq_mp_write_array(&self->bw, (uint32_t) n);
    for (size_t i = 0; i < n; i++) {
        jobq_msg_t one;
        memset(&one, 0, sizeof one);
        char auto_key[S_AUTO_KEY_LEN];
        int rc = s_fill_enqueue(self, &reqs[i], &one, auto_key, i);
        if (rc != JOBQ_OK)
            return s_error(self, rc, "job %zu: %s", i, self->last_error);
        jobq_msg_write_batch_entry(&self->bw, &one);
    }
    if (jobq_mp_writer_error(&self->bw))
        return s_error(self, JOBQ_ETOOBIG,
                       "batch too large (limit %u bytes in all)",
                       JOBQ_MAX_FRAME_BYTES);
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_ENQUEUE_BATCH;
    m.u.batch.jobs = (jobq_bytes_t){self->bw.data, self->bw.len};
    m.u.batch.count = (uint32_t) n;
    jobq_bytes_t body;
    int rc = s_request(self, &m, &body);
    if (rc != JOBQ_OK)
        return rc;
    jobq_mp_reader_t r, rc_r;
    uint32_t count;
    if ((rc = s_reply_field(self, body, "ids", &r)) != JOBQ_OK)
        return rc;
    if (jobq_mp_read_array(&r, &count) != JOBQ_OK || count != n)
        return s_error(self, JOBQ_EPROTO, "reply lists %u ids for %zu jobs",
                       count, n);
    bool have_created =
        s_reply_field(self, body, "created", &rc_r) == JOBQ_OK &&
        jobq_mp_read_array(&rc_r, &count) == JOBQ_OK && count == n;
    s_note_unserved(self, body);
    for (size_t i = 0; i < n; i++) {
        jobq_str_t s;
        if (jobq_mp_read_str(&r, &s) != JOBQ_OK || s.len != JOBQ_ID_LEN)
            return s_error(self, JOBQ_EPROTO, "malformed id in reply");
        memcpy(ids[i], s.ptr, JOBQ_ID_LEN);
        ids[i][JOBQ_ID_LEN] = '\0';
        if (created) {
            created[i] = true;
            if (have_created)
                jobq_mp_read_bool(&rc_r, &created[i]);
        }
    }
    return JOBQ_OK;
}

static int
s_by_id(jobq_client_t *self, int cmd, const char *id, jobq_job_info_t *info)
{
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = cmd;
    int rc = s_parse_id(self, id, &m.u.job.id);
    if (rc != JOBQ_OK)
        return rc;
    return s_job_reply(self, &m, info);
}

int
jobq_client_status(jobq_client_t *self, const char *id, jobq_job_info_t *info)
{
    return s_by_id(self, JOBQ_CMD_STATUS, id, info);
}

int
jobq_client_cancel(jobq_client_t *self, const char *id, jobq_job_info_t *info)
{
    return s_by_id(self, JOBQ_CMD_CANCEL, id, info);
}

int
jobq_client_retry(jobq_client_t *self, const char *id, jobq_job_info_t *info)
{
    return s_by_id(self, JOBQ_CMD_RETRY, id, info);
}

int
jobq_client_list(jobq_client_t *self,
                 const jobq_list_t *req,
                 jobq_job_info_t **jobs,
                 size_t *count,
                 char next[JOBQ_ID_LEN + 1])
{
    *jobs = NULL;
    *count = 0;
    next[0] = '\0';
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_LIST;
    m.u.list.status = req->status;
    m.u.list.limit = req->limit ? req->limit : JOBQ_DEFAULT_LIST;
    if (m.u.list.limit > JOBQ_MAX_LIST)
        return s_error(self, JOBQ_EINVAL, "limit above %d", JOBQ_MAX_LIST);
    if (req->shop_id)
        m.u.list.shop = (jobq_str_t){req->shop_id, strlen(req->shop_id)};
    if (req->type)
        m.u.list.type = (jobq_str_t){req->type, strlen(req->type)};
    int rc;
    if (req->cursor && req->cursor[0] &&
        (rc = s_parse_id(self, req->cursor, &m.u.list.cursor)) != JOBQ_OK)
        return rc;
    jobq_bytes_t body;
    if ((rc = s_request(self, &m, &body)) != JOBQ_OK)
        return rc;
    jobq_mp_reader_t r;
    uint32_t n;
    if ((rc = s_reply_field(self, body, "jobs", &r)) != JOBQ_OK)
        return rc;
    if (jobq_mp_read_array(&r, &n) != JOBQ_OK || n > JOBQ_MAX_LIST)
        return s_error(self, JOBQ_EPROTO, "malformed job list");
    jobq_job_info_t *out = calloc(n ? n : 1, sizeof *out);
    if (!out)
        return s_error(self, JOBQ_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        jobq_jobdata_t j;
        if (jobq_msg_read_job(&r, &j) != JOBQ_OK) {
            jobq_job_list_free(&out, i);
            return s_error(self, JOBQ_EPROTO, "malformed job in list");
        }
        s_info(&out[i], &j);
    }
    jobq_mp_reader_t nr;
    jobq_str_t s;
    if (s_reply_field(self, body, "next", &nr) == JOBQ_OK &&
        jobq_mp_read_str(&nr, &s) == JOBQ_OK && s.len == JOBQ_ID_LEN) {
        memcpy(next, s.ptr, JOBQ_ID_LEN);
        next[JOBQ_ID_LEN] = '\0';
    }
    *jobs = out;
    *count = n;
    return JOBQ_OK;
}

void
jobq_job_list_free(jobq_job_info_t **jobs, size_t count)
{
    if (!jobs || !*jobs)
        return;
    for (size_t i = 0; i < count; i++)
        jobq_job_info_clear(&(*jobs)[i]);
    free(*jobs);
    *jobs = NULL;
}

int
jobq_client_stats(jobq_client_t *self, jobq_bytes_t *out)
{
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_STATS;
    jobq_bytes_t body;
    int rc = s_request(self, &m, &body);
    if (rc != JOBQ_OK)
        return rc;
    *out = s_dup_bytes(body);
    return out->ptr ? JOBQ_OK : s_error(self, JOBQ_ENOMEM, "out of memory");
}

//  --- watch ------------------------------------------------------------------

typedef struct {
    const jobq_watch_t *cb;  //  user callbacks
    uint32_t version;        //  last version applied
    int result;              //  final result, or 1 while running
    int wait;                //  its wait, as last applied
    uint64_t wait_until;     //  and when that wait ends
} s_watch_t;

//  Apply a job state if newer than what was applied. Returns true when the
//  job has ended.
static bool
s_apply(s_watch_t *w, const jobq_job_info_t *job)
{
    //  The same version again is news only if why it waits changed (a
    //  worker for its type came or went): the job itself did not change.
    bool news = job->version > w->version ||
                (job->version == w->version && w->result == 1 &&
                 (job->wait != w->wait || job->wait_until != w->wait_until));
    if (!news)
        return w->result != 1;
    w->version = job->version;
    w->wait = job->wait;
    w->wait_until = job->wait_until;
    const jobq_watch_t *cb = w->cb;
    switch (job->status) {
    case JOBQ_COMPLETED:
        if (cb && cb->on_complete)
            cb->on_complete(cb->arg, job);
        w->result = JOBQ_OK;
        return true;
    case JOBQ_FAILED:
    case JOBQ_CANCELLED:
        if (cb && cb->on_error)
            cb->on_error(cb->arg, job);
        w->result = job->status == JOBQ_FAILED ? JOBQ_EFAILED : JOBQ_ECANCELLED;
        return true;
    default:
        if (cb && cb->on_progress)
            cb->on_progress(cb->arg, job);
        return false;
    }
}

static int
s_snapshot(jobq_client_t *self, const char *id, s_watch_t *w, bool *done)
{
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    int rc = jobq_client_status(self, id, &info);
    if (rc == JOBQ_OK)
        *done = s_apply(w, &info);
    jobq_job_info_clear(&info);
    return rc;
}

//  Apply one event body of the watched job. A gap in versions means events
//  were missed (a slow subscriber past the high-water mark): the state
//  applied is whole, but a snapshot makes sure of it. JOBQ_OK, or the
//  snapshot's error.
static int
s_event(jobq_client_t *self,
        const char *id,
        s_watch_t *w,
        const uint8_t *body,
        size_t len,
        bool *ended)
{
    jobq_mp_reader_t r;
    jobq_jobdata_t j;
    jobq_mp_reader_init(&r, body, len);
    if (jobq_mp_check(body, len, &jobq_proto_limits, NULL) != JOBQ_OK ||
        jobq_msg_read_job(&r, &j) != JOBQ_OK)
        return JOBQ_OK;  //  not ours to judge: the snapshots still come
    //  An ending is read with STATUS, which has the output and errors that
    //  events leave out. If the broker does not answer, the watch asks
    //  again after its silence.
    if (jobq_status_is_final(j.status) && j.version > w->version)
        return s_snapshot(self, id, w, ended);
    jobq_job_info_t info;
    s_info(&info, &j);
    bool gap = w->version && j.version > w->version + 1;
    *ended = s_apply(w, &info);
    jobq_job_info_clear(&info);
    if (gap && !*ended)
        return s_snapshot(self, id, w, ended);
    return JOBQ_OK;
}

int
jobq_client_watch(jobq_client_t *self,
                  const char *id,
                  const jobq_watch_t *cb,
                  int timeout_ms)
{
    s_watch_t w = {cb, 0, 1, JOBQ_WAIT_NONE, 0};
    jobq_job_info_t first;
    memset(&first, 0, sizeof first);
    //  1. A snapshot: learn the shop (for the topic), and report a job that
    //  has already ended at once.
    int rc = jobq_client_status(self, id, &first);
    if (rc != JOBQ_OK)
        return rc;
    char topic[JOBQ_TOPIC_MAX];
    size_t tlen =
        jobq_topic_format(first.shop_id, strlen(first.shop_id), 0, topic);
    memcpy(topic + tlen - JOBQ_ID_LEN, first.id, JOBQ_ID_LEN);
    bool done = s_apply(&w, &first);
    jobq_job_info_clear(&first);
    if (done)
        return w.result;
    //  2. Subscribe. The broker answers a subscription to one job's topic
    //  with that job's state, so the stream starts where the snapshot was;
    //  anything older than the snapshot is dropped by version.
    int err = JOBQ_OK;
    void *sub = jobq_wire_socket(self->ctx, ZMQ_SUB, &err);
    if (!sub)
        return s_error(self, err, "out of memory");
    int hwm = 100000;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (self->cfg.curve && jobq_wire_curve(sub, self->cfg.curve) != JOBQ_OK) {
        jobq_wire_close(&sub);
        return s_error(self, JOBQ_EINVAL, "bad CURVE keys");
    }
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic));
    if (self->events_err != JOBQ_OK) {
        jobq_wire_close(&sub);
        return s_error(self, JOBQ_EINVAL, "bad event endpoints: %s",
                       self->events_why);
    }
    //  Every broker of the list publishes every job's events: listen to
    //  all of them. An event that comes twice (or late, from a broker that
    //  saw the change after another) has a version already applied and is
    //  skipped by s_apply.
    for (size_t i = 0; i < self->events.n; i++) {
        if (zmq_connect(sub, self->events.ep[i]) != 0) {
            jobq_wire_close(&sub);
            return s_error(self, JOBQ_EINVAL, "bad event endpoint %s",
                           self->events.ep[i]);
        }
    }
    int64_t now = jobq_wire_now_ms();
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : now + timeout_ms;
    int64_t quiet_since = now;
    rc = JOBQ_ETIMEOUT;
    while ((now = jobq_wire_now_ms()) < deadline) {
        if (s_interrupted(self)) {
            rc = JOBQ_EINTR;
            break;
        }
        int64_t wait = S_SNAPSHOT_MS - (now - quiet_since);
        if (wait > deadline - now)
            wait = deadline - now;
        if (wait < 0)
            wait = 0;
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, s_slice(self, wait));
        if (n < 0 && errno == EINTR) {
            rc = s_error(self, JOBQ_EINTR, "interrupted");
            break;
        }
        bool ended = false;
        int src = JOBQ_OK;
        if (n > 0) {
            jobq_wire_in_t in;
            if (jobq_wire_recv_event(sub, &in) == JOBQ_OK) {
                if (in.err == JOBQ_OK) {
                    src = s_event(self, id, &w, in.body, in.body_len, &ended);
                    quiet_since = jobq_wire_now_ms();
                }
                jobq_wire_in_close(&in);
            }
        } else if (n == 0 &&
                   jobq_wire_now_ms() - quiet_since >= S_SNAPSHOT_MS) {
            //  Silence: ask. Costs one request per second per watcher, and
            //  bounds how late an ending can be noticed whatever happens
            //  to the event stream. A broker that does not answer (it is
            //  restarting) does not end the watch: timeout_ms bounds it.
            quiet_since = jobq_wire_now_ms();
            src = s_snapshot(self, id, &w, &ended);
        }
        if (src != JOBQ_OK && src != JOBQ_EUNAVAILABLE) {
            rc = src;
            break;
        }
        if (ended) {
            rc = w.result;
            break;
        }
    }
    jobq_wire_close(&sub);
    if (rc == JOBQ_ETIMEOUT)
        s_error(self, rc, "job %s did not end within %d ms", id, timeout_ms);
    return rc;
}
