/*  jobq_broker.c: the imperative shell around the engine. */
#include "jobq_broker.h"
#include "jobq_auth.h"
#include "jobq_clock.h"
#include "jobq_wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

//  Subscriptions read before an idle turn gives memory back to the system.
#define S_TRIM_AFTER 100000

//  A disk that failed this many commits in a row is not trusted: the broker
//  stops (exit 1) and leaves recovery to a restart, rather than go on.
#define S_MAX_FAILED_COMMITS 5

struct jobq_broker {
    uint64_t unavailable;         //  turns the shared store did not take
    uint64_t unavailable_logged;  //  mono ms of the last line about them
    uint64_t backoff_until;       //  mono ms: no turn before (after one)
    jobq_broker_config_t cfg;     //  copy
    jobq_store_t *store;          //  owned
    jobq_engine_t *engine;        //  owned
    zsock_t *clients;             //  ROUTER
    zsock_t *workers;             //  ROUTER
    zsock_t *events;              //  XPUB (a PUB that also hears subscriptions)
    char *ep[3];                  //  bound endpoints, owned
    const jobq_clock_t *clock;    //  real
    bool store_full;              //  new jobs refused for lack of space
    uint32_t failed_commits;      //  consecutive commit failures
    uint64_t subs_read;           //  subscriptions read since the last trim
    //  Connections an endpoint could not accept (out of file descriptors),
    //  from a ZeroMQ monitor of each bound socket.
    zsock_t *monitor[3];        //  PAIR, or NULL
    uint64_t accept_failed[3];  //  since start
    uint64_t accept_logged[3];  //  of those, already logged
    uint64_t accept_quiet[3];   //  no line before, mono ms
    int accept_errno[3];        //  the last failure's errno
    //  Connections each endpoint holds, from the monitors: fd_ep[fd] is
    //  1 + the endpoint of an open connection's descriptor, 0 otherwise.
    uint8_t *fd_ep;         //  nfd entries
    size_t nfd;             //  the descriptor limit at start
    uint32_t conns[3];      //  open connections per endpoint
    uint64_t hs_failed[3];  //  failed handshakes not yet disconnected
    uint32_t max_conns;     //  in all, before only the reserve is left
    bool full_logged;       //  "reserve only" was logged
    jobq_auth_t *auth;      //  keys and the ZAP handler; NULL = no keys
    char public_key[JOBQ_CURVE_Z85_LEN + 1];  //  the broker's, with keys
    char secret_key[JOBQ_CURVE_Z85_LEN + 1];
    //  A peer's message on the XPUB that is not a subscription leaves
    //  libzmq's queue of subscriptions and its queue of their connections
    //  out of step (it queues no connection for it): until both are
    //  empty again, a subscription read could be applied to the wrong
    //  connection, so none is.
    bool xpub_desync;
    uint64_t refused_logged[JOBQ_REFUSED_COUNT_];  //  counts already logged
    uint64_t refused_quiet[JOBQ_REFUSED_COUNT_];   //  no line before, mono ms
};

void
jobq_broker_config_defaults(jobq_broker_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->data_dir = "./var/jobq";
    cfg->clients_ep = "tcp://127.0.0.1:5555";
    cfg->workers_ep = "tcp://127.0.0.1:5556";
    cfg->events_ep = "tcp://127.0.0.1:5557";
    cfg->map_size = 1ull << 30;
    cfg->map_max = 64ull << 30;
    cfg->max_msgs_per_turn = 1024;
    cfg->max_turn_bytes = 64u << 20;
    cfg->drain_ms = 200;
    cfg->refused_log_ms = 10000;
    cfg->grace_ms = 15000;
    cfg->event_hwm = 10000;
    jobq_engine_config_defaults(&cfg->engine);
}

jobq_broker_t *
jobq_broker_new(const jobq_broker_config_t *cfg)
{
    jobq_broker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    self->clock = jobq_clock_real();
    self->store = cfg->nats_urls
                      ? jobq_store_nats_new(cfg->nats_urls, cfg->nats_creds)
                      : jobq_store_lmdb_new();
    if (!self->store) {
        free(self);
        return NULL;
    }
    self->engine = jobq_engine_new(self->store, &cfg->engine);
    if (!self->engine) {
        jobq_store_destroy(&self->store);
        free(self);
        return NULL;
    }
    return self;
}

void
jobq_broker_destroy(jobq_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_broker_t *self = *self_p;
    for (int i = 0; i < 3; i++)
        zsock_destroy(&self->monitor[i]);
    zsock_destroy(&self->clients);
    zsock_destroy(&self->workers);
    zsock_destroy(&self->events);
    for (int i = 0; i < 3; i++)
        free(self->ep[i]);
    jobq_auth_destroy(&self->auth);
    free(self->fd_ep);
    memset(self->secret_key, 0, sizeof self->secret_key);
    jobq_engine_destroy(&self->engine);
    jobq_store_destroy(&self->store);
    free(self);
    *self_p = NULL;
}

static zsock_t *
s_bind(jobq_broker_t *self, int type, const char *ep, int which)
{
    zsock_t *s = zsock_new(type);
    if (!s)
        return NULL;
    jobq_wire_setup(zsock_resolve(s), 100);
    if (type == ZMQ_XPUB) {
        //  Not verbose: libzmq passes a topic's subscription up only when
        //  no subscriber held it yet. With repeats passed up, a peer that
        //  resends one subscription a million times makes libzmq queue a
        //  million frames for the broker to read, in memory of its own.
        //  With keys, manual: the broker applies a subscription itself,
        //  after checking it against the subscriber's key (libzmq then
        //  passes every one up, and the broker reads them as they come).
        zsock_set_sndhwm(s, (int) self->cfg.event_hwm);
        if (self->cfg.keys_file)
            zsock_set_xpub_manual(s, 1);
    }
    static const char *const domains[3] = {JOBQ_AUTH_CLIENTS, JOBQ_AUTH_WORKERS,
                                           JOBQ_AUTH_EVENTS};
    if (self->cfg.keys_file) {
        //  The ZAP domain names the endpoint to the handler.
        zsock_set_zap_domain(s, domains[which]);
        zsock_set_curve_server(s, 1);
        zsock_set_curve_secretkey(s, self->secret_key);
        //  A peer that connects and says nothing holds a descriptor until
        //  its handshake times out.
        zsock_set_handshake_ivl(s, 5000);
    }
    if (zsock_bind(s, "%s", ep) < 0) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR, "cannot bind %s: %s", ep,
                 zmq_strerror(zmq_errno()));
        zsock_destroy(&s);
        return NULL;
    }
    self->ep[which] = zsock_last_endpoint(s);
    //  Told when a connection cannot be accepted: nothing else says so.
    char mep[64];
    snprintf(mep, sizeof mep, "inproc://jobq-broker-monitor-%p-%d",
             (void *) self, which);
    if (zmq_socket_monitor(zsock_resolve(s), mep,
                           ZMQ_EVENT_ACCEPT_FAILED | ZMQ_EVENT_ACCEPTED |
                               ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0) {
        self->monitor[which] = zsock_new(ZMQ_PAIR);
        //  libzmq sends monitor events with a blocking send from its I/O
        //  thread: room for a burst of connections, and the broker polls
        //  it, so that a burst never holds the I/O thread up.
        if (self->monitor[which])
            zsock_set_rcvhwm(self->monitor[which], 100000);
        if (self->monitor[which] &&
            zsock_connect(self->monitor[which], "%s", mep) != 0)
            zsock_destroy(&self->monitor[which]);
    }
    return s;
}

//  Read what the monitors saw (at most 1,024 events each), and log failed
//  accepts: at most one line per endpoint every refused_log_ms, with how
//  many failed since the last line. all: log what is left now.
static void
s_read_monitors(jobq_broker_t *self, bool all)
{
    for (int w = 0; w < 3; w++) {
        for (int i = 0; self->monitor[w] && i < 1024; i++) {
            zmq_msg_t ev, addr;
            zmq_msg_init(&ev);
            zmq_msg_init(&addr);
            void *m = zsock_resolve(self->monitor[w]);
            if (zmq_msg_recv(&ev, m, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&ev);
                zmq_msg_close(&addr);
                break;
            }
            if (zmq_msg_more(&ev))
                zmq_msg_recv(&addr, m, 0);
            if (zmq_msg_size(&ev) == 6) {
                uint16_t event;
                uint32_t value;
                memcpy(&event, zmq_msg_data(&ev), 2);
                memcpy(&value, (uint8_t *) zmq_msg_data(&ev) + 2, 4);
                if (event == ZMQ_EVENT_ACCEPT_FAILED) {
                    self->accept_failed[w]++;
                    self->accept_errno[w] = (int) value;
                } else if (event == ZMQ_EVENT_ACCEPTED && value < self->nfd) {
                    if (self->fd_ep[value] &&
                        self->conns[self->fd_ep[value] - 1])
                        self->conns[self->fd_ep[value] - 1]--;
                    self->fd_ep[value] = (uint8_t) (w + 1);
                    self->conns[w]++;
                } else if (event == ZMQ_EVENT_DISCONNECTED) {
                    if (value < self->nfd && self->fd_ep[value] == w + 1) {
                        self->fd_ep[value] = 0;
                        if (self->conns[w])
                            self->conns[w]--;
                    }
                    //  A connection that failed its handshake (a stranger)
                    //  said so first: it had no routing id to pass on.
                    if (self->hs_failed[w])
                        self->hs_failed[w]--;
                    else if (w == JOBQ_BROKER_EP_WORKERS && self->cfg.keys_file)
                        jobq_engine_workers_unheard(self->engine);
                } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                           event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                           event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
                    self->hs_failed[w]++;
                }
            }
            zmq_msg_close(&ev);
            zmq_msg_close(&addr);
        }
        uint64_t n = self->accept_failed[w] - self->accept_logged[w];
        uint64_t now = jobq_clock_mono_ms(self->clock);
        if (n == 0 || (!all && now < self->accept_quiet[w]))
            continue;
        struct rlimit r = {0, 0};
        getrlimit(RLIMIT_NOFILE, &r);
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_WARN,
                 "could not accept %llu connection%s on %s: %s (file "
                 "descriptor limit %llu); they wait in the listen queue or "
                 "are refused",
                 (unsigned long long) n, n == 1 ? "" : "s", self->ep[w],
                 zmq_strerror(self->accept_errno[w]),
                 (unsigned long long) r.rlim_cur);
        self->accept_logged[w] = self->accept_failed[w];
        self->accept_quiet[w] = now + self->cfg.refused_log_ms + 1;
    }
}

//  True when endpoint ep is reachable from this host only: ipc://,
//  inproc://, or tcp:// on a loopback address.
static bool
s_local_only(const char *ep)
{
    if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0)
        return true;
    if (strncmp(ep, "tcp://", 6) != 0)
        return false;
    const char *host = ep + 6;
    const char *colon = strrchr(host, ':');
    if (!colon)
        return false;
    char h[128];
    size_t n = (size_t) (colon - host);
    if (n >= sizeof h)
        return false;
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0)
        return true;
    struct in_addr a4;
    return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

//  Keys, or the loopback rule; the ZAP handler; the table of open
//  connections. Before any endpoint is bound.
static int
s_prepare_auth(jobq_broker_t *self)
{
    const jobq_broker_config_t *c = &self->cfg;
    char why[512];
    if (c->keys_file) {
        if (!c->cert_file) {
            JOBQ_LOG(c->log, JOBQ_LOG_ERROR,
                     "--keys needs the broker's own secret certificate "
                     "(--cert FILE_secret; jobq keygen makes one)");
            return JOBQ_EINVAL;
        }
        if (jobq_curve_read(c->cert_file, self->public_key, self->secret_key,
                            why, sizeof why) != JOBQ_OK) {
            JOBQ_LOG(c->log, JOBQ_LOG_ERROR, "--cert: %s", why);
            return JOBQ_EINVAL;
        }
    } else if (!c->insecure) {
        const char *eps[3] = {c->clients_ep, c->workers_ep, c->events_ep};
        for (int i = 0; i < 3; i++) {
            if (s_local_only(eps[i]))
                continue;
            JOBQ_LOG(c->log, JOBQ_LOG_ERROR,
                     "refusing to bind %s without keys: anyone who reaches "
                     "it could read, make and cancel every shop's jobs and "
                     "take them as a worker. Give --keys FILE and --cert "
                     "CERT (docs/PROTOCOL.md section 13), bind to 127.0.0.1, "
                     "or add --insecure on a network you trust",
                     eps[i]);
            return JOBQ_EINVAL;
        }
    }
    if (c->keys_file) {
        self->auth =
            jobq_auth_new(zsys_init(), c->keys_file, c->log, why, sizeof why);
        if (!self->auth) {
            JOBQ_LOG(c->log, JOBQ_LOG_ERROR, "%s", why);
            return JOBQ_EINVAL;
        }
    }
    struct rlimit r = {1024, 1024};
    getrlimit(RLIMIT_NOFILE, &r);
    self->nfd = r.rlim_cur > (1u << 20) ? (1u << 20) : (size_t) r.rlim_cur;
    self->fd_ep = calloc(self->nfd ? self->nfd : 1, 1);
    if (!self->fd_ep)
        return JOBQ_ENOMEM;
    self->max_conns = c->max_conns      ? c->max_conns
                      : self->nfd > 128 ? (uint32_t) ((self->nfd - 64) * 9 / 10)
                                        : 16;
    if (c->keys_file)
        JOBQ_LOG(c->log, JOBQ_LOG_NOTICE,
                 "CURVE on every endpoint, %zu key%s from %s; the broker's "
                 "public key is %s",
                 jobq_auth_count(self->auth),
                 jobq_auth_count(self->auth) == 1 ? "" : "s", c->keys_file,
                 self->public_key);
    else if (c->insecure)
        JOBQ_LOG(c->log, JOBQ_LOG_WARN,
                 "--insecure: no keys; whoever reaches an endpoint may do "
                 "everything");
    return JOBQ_OK;
}

int
jobq_broker_start(jobq_broker_t *self)
{
    //  The program owns its signals: without this, czmq would install its
    //  own SIGINT and SIGTERM handlers with the first socket.
    zsys_handler_set(NULL);
    jobq_store_config_t sc = {self->cfg.data_dir, self->cfg.map_size,
                              self->cfg.map_max, false,
                              self->cfg.engine.idem_window_ms};
    int rc = jobq_store_open(self->store, &sc);
    if (rc != JOBQ_OK) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR,
                 "cannot open the store in %s: %s",
                 self->cfg.nats_urls ? self->cfg.nats_urls : self->cfg.data_dir,
                 jobq_store_why(self->store)[0] ? jobq_store_why(self->store)
                                                : jobq_strerror(rc));
        return rc;
    }
    rc = jobq_engine_recover(self->engine, jobq_clock_wall_ms(self->clock),
                             jobq_clock_mono_ms(self->clock));
    if (rc != JOBQ_OK) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR, "recovery failed: %s%s%s%s",
                 jobq_strerror(rc), jobq_store_why(self->store)[0] ? " (" : "",
                 jobq_store_why(self->store),
                 jobq_store_why(self->store)[0] ? ")" : "");
        if (rc == JOBQ_ECORRUPT)
            JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR,
                     "jobq-broker --verify %s says what is damaged, and "
                     "--repair salvages the rest",
                     self->cfg.data_dir);
        return rc;
    }
    rc = s_prepare_auth(self);
    if (rc != JOBQ_OK)
        return rc;
    self->clients =
        s_bind(self, ZMQ_ROUTER, self->cfg.clients_ep, JOBQ_BROKER_EP_CLIENTS);
    self->workers =
        s_bind(self, ZMQ_ROUTER, self->cfg.workers_ep, JOBQ_BROKER_EP_WORKERS);
    self->events =
        s_bind(self, ZMQ_XPUB, self->cfg.events_ep, JOBQ_BROKER_EP_EVENTS);
    if (!self->clients || !self->workers || !self->events)
        return JOBQ_EUNAVAILABLE;
    JOBQ_LOG(self->cfg.log, JOBQ_LOG_NOTICE,
             "serving clients=%s workers=%s events=%s %s=%s", self->ep[0],
             self->ep[1], self->ep[2], self->cfg.nats_urls ? "store" : "data",
             self->cfg.nats_urls ? self->cfg.nats_urls : self->cfg.data_dir);
    if (self->cfg.nats_urls)
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_NOTICE,
                 "shared store: this broker has slot %d%s",
                 jobq_store_slot(self->store),
                 jobq_store_leader(self->store) ? " (leader)" : "");
    return JOBQ_OK;
}

const char *
jobq_broker_endpoint(const jobq_broker_t *self, int which)
{
    return (which >= 0 && which < 3) ? self->ep[which] : NULL;
}

//  Read and handle one message from a ROUTER. Returns false when none was
//  waiting.
static bool
s_read_router(jobq_broker_t *self, zsock_t *sock, int kind)
{
    jobq_wire_in_t in;
    if (jobq_wire_recv(zsock_resolve(sock), true, true, &in) != JOBQ_OK)
        return false;
    if (in.err != JOBQ_OK) {
        bool version = in.err == JOBQ_EVERSION;
        //  Without a routing id there is no one to answer: only counted.
        jobq_engine_reject(
            self->engine, kind,
            version ? JOBQ_REFUSED_VERSION : JOBQ_REFUSED_ENVELOPE, in.ident,
            in.ident_len, 0, version ? JOBQ_EVERSION : JOBQ_EINVAL, in.why);
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_INFO, "dropped message: %s", in.why);
        jobq_wire_in_close(&in);
        return true;
    }
    jobq_msg_t m;
    jobq_msg_why_t why;
    int rc = jobq_msg_decode(in.cmd, in.body, in.body_len, &m, &why);
    bool for_kind =
        kind == JOBQ_ACT_CLIENT
            ? (in.cmd >= JOBQ_CMD_ENQUEUE && in.cmd <= JOBQ_CMD_ENQUEUE_BATCH)
            : (in.cmd >= JOBQ_CMD_READY && in.cmd <= JOBQ_CMD_FAIL);
    int cause = rc == JOBQ_ECOMMAND  ? JOBQ_REFUSED_UNKNOWN_COMMAND
                : rc == JOBQ_ETOOBIG ? JOBQ_REFUSED_TOO_LARGE
                                     : JOBQ_REFUSED_BAD_REQUEST;
    if (rc == JOBQ_OK && !for_kind) {
        rc = JOBQ_ECOMMAND;
        cause = JOBQ_REFUSED_WRONG_SOCKET;
        snprintf(why.text, sizeof why.text, "command %s is not accepted here",
                 jobq_cmd_name(in.cmd));
    }
    jobq_key_t *who = NULL;
    if (rc == JOBQ_OK && self->cfg.keys_file) {
        //  Looked up for every message: a key removed by a reload is
        //  refused from its next one, a changed key acts as changed.
        who = jobq_auth_who(self->auth, jobq_wire_in_user(&in));
        if (!who) {
            rc = JOBQ_EFORBIDDEN;
            cause = JOBQ_REFUSED_FORBIDDEN;
            snprintf(why.text, sizeof why.text,
                     "this key is no longer in the key file");
        } else if (kind == JOBQ_ACT_CLIENT &&
                   !jobq_key_take(who, jobq_clock_mono_ms(self->clock))) {
            rc = JOBQ_ERATE;
            cause = JOBQ_REFUSED_RATE_LIMITED;
            snprintf(why.text, sizeof why.text,
                     "key %s is over its rate of %.0f requests a second",
                     who->name, who->rate);
        }
    }
    if (rc != JOBQ_OK) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_INFO, "bad %s message: %s",
                 kind == JOBQ_ACT_CLIENT ? "client" : "worker", why.text);
        jobq_engine_reject(self->engine, kind, cause, in.ident, in.ident_len,
                           m.rid, rc, why.text);
    } else if (kind == JOBQ_ACT_CLIENT) {
        jobq_engine_client(self->engine, in.ident, in.ident_len, &m, who);
    } else {
        jobq_engine_worker(self->engine, in.ident, in.ident_len, &m, who);
    }
    jobq_wire_in_close(&in);
    return true;
}

//  A subscription arrived on the XPUB: [1][topic] to subscribe.
static bool
s_read_subscription(jobq_broker_t *self)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, zsock_resolve(self->events), ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        self->xpub_desync = false;  //  both of libzmq's queues are empty
        return false;
    }
    const uint8_t *d = zmq_msg_data(&msg);
    size_t n = zmq_msg_size(&msg);
    if (!self->cfg.keys_file) {
        if (n > 1 && d[0] == 1)
            jobq_engine_subscribed(self->engine, d + 1, n - 1);
        zmq_msg_close(&msg);
        return true;
    }
    //  Manual: apply what the subscriber's key allows (the option acts on
    //  the pipe the last message came from), and nothing else. A refused
    //  subscription is only counted: SUB sockets hear no answer.
    void *xpub = zsock_resolve(self->events);
    bool sub_or_cancel = n >= 1 && (d[0] == 0 || d[0] == 1);
    if (!sub_or_cancel || zmq_msg_more(&msg) || self->xpub_desync) {
        //  Not a subscription (or a part after one, which libzmq queues
        //  the same way), or read while the queues are out of step:
        //  nothing is applied until they are empty.
        bool was = self->xpub_desync;
        self->xpub_desync = true;
        if (!was || sub_or_cancel) {
            jobq_engine_reject(self->engine, JOBQ_ACT_CLIENT,
                               JOBQ_REFUSED_FORBIDDEN, NULL, 0, 0,
                               JOBQ_EFORBIDDEN,
                               was ? "a subscription dropped after a "
                                     "message on the event socket"
                                   : "a message on the event socket that "
                                     "is not a subscription");
        }
        zmq_msg_close(&msg);
        return true;
    }
    if (n >= 1 && d[0] == 0) {
        zmq_setsockopt(xpub, ZMQ_UNSUBSCRIBE, d + 1, n - 1);
    } else if (n >= 1 && d[0] == 1) {
        jobq_key_t *who =
            jobq_auth_who(self->auth, zmq_msg_gets(&msg, "User-Id"));
        if (who &&
            jobq_key_can(who, JOBQ_ROLE_CLIENT | JOBQ_ROLE_READER |
                                  JOBQ_ROLE_WATCHER) &&
            jobq_key_topic(who, d + 1, n - 1)) {
            zmq_setsockopt(xpub, ZMQ_SUBSCRIBE, d + 1, n - 1);
            if (n > 1)
                jobq_engine_subscribed(self->engine, d + 1, n - 1);
        } else {
            char why[200];
            snprintf(why, sizeof why, "subscription to '%.*s' beyond key %s",
                     (int) (n - 1 > 80 ? 80 : n - 1), (const char *) d + 1,
                     who ? who->name : "(removed)");
            jobq_engine_reject(self->engine, JOBQ_ACT_CLIENT,
                               JOBQ_REFUSED_FORBIDDEN, NULL, 0, 0,
                               JOBQ_EFORBIDDEN, why);
        }
    }
    zmq_msg_close(&msg);
    return true;
}

//  Send the turn's actions: before the commit (early) only the JOBs the
//  engine marked early, after it every other one.
static size_t
s_send_actions(jobq_broker_t *self, bool early)
{
    size_t n = jobq_engine_action_count(self->engine), sent = 0;
    for (size_t i = 0; i < n; i++) {
        jobq_action_t a;
        jobq_engine_action(self->engine, i, &a);
        if (a.early != early)
            continue;
        sent++;
        int rc;
        if (a.kind == JOBQ_ACT_PUBLISH) {
            jobq_wire_publish(zsock_resolve(self->events),
                              (const char *) a.peer, a.peer_len, a.body,
                              a.body_len);
            continue;
        }
        zsock_t *s = a.kind == JOBQ_ACT_CLIENT ? self->clients : self->workers;
        rc = jobq_wire_send(zsock_resolve(s), a.peer, a.peer_len, a.cmd, a.body,
                            a.body_len);
        if (rc != JOBQ_OK && a.kind == JOBQ_ACT_WORKER) {
            //  With ROUTER_MANDATORY a gone worker is reported here; a
            //  worker at its high-water mark is not keeping up: both lose
            //  their leases next turn rather than wait for silence.
            jobq_engine_undeliverable(self->engine, i);
        }
    }
    return sent;
}

//  Refused messages (docs/PROTOCOL.md 3.3): one line per cause at most
//  every refused_log_ms, saying how many since its last line, so that a
//  peer sending garbage in a loop cannot flood the log. The first of a
//  cause is logged at once; the rest wait out the interval (turns run at
//  least once a second, so the line comes at most a second late). all:
//  log what is left whatever the interval (at stop).
static void
s_log_refused(jobq_broker_t *self, bool all)
{
    jobq_engine_stats_t st;
    jobq_engine_get_stats(self->engine, &st);
    uint64_t now = jobq_clock_mono_ms(self->clock);
    for (int c = 0; c < JOBQ_REFUSED_COUNT_; c++) {
        uint64_t n = st.refused[c] - self->refused_logged[c];
        if (n == 0 || (!all && now < self->refused_quiet[c]))
            continue;
        //  A worker not registered is asked to send READY: normal after a
        //  broker restart, so not a warning.
        JOBQ_LOG(
            self->cfg.log,
            c == JOBQ_REFUSED_UNKNOWN_WORKER ? JOBQ_LOG_NOTICE : JOBQ_LOG_WARN,
            "refused %llu message%s (%s) since %s; the last: %s",
            (unsigned long long) n, n == 1 ? "" : "s", jobq_refused_name(c),
            self->refused_quiet[c] ? "the last line about it" : "start",
            jobq_engine_refused_last(self->engine, c));
        self->refused_logged[c] = st.refused[c];
        self->refused_quiet[c] = now + self->cfg.refused_log_ms + 1;
    }
}

//  Test builds: die at a named point, the Nth time it is reached.
static void
s_fault(jobq_broker_t *self, const char *point, bool reached)
{
#ifdef JOBQ_FAULTS
    if (!reached || !self->cfg.crash_at ||
        strcmp(self->cfg.crash_at, point) != 0)
        return;
    if (self->cfg.crash_after > 1) {
        self->cfg.crash_after--;
        return;
    }
    JOBQ_LOG(self->cfg.log, JOBQ_LOG_NOTICE, "fault point %s: crashing", point);
    if (strcmp(point, JOBQ_CRASH_AFTER_EARLY_JOB_BEFORE_COMMIT) == 0)
        zclock_sleep(100);  //  let ZeroMQ deliver the early JOB first
    raise(SIGKILL);
#else
    (void) self;
    (void) point;
    (void) reached;
#endif
}

//  Before a turn: grow the map at 80% use when allowed; when it cannot
//  grow and less than an eighth is left, refuse new jobs so that progress,
//  completions and reads keep the room they need.
static void
s_check_space(jobq_broker_t *self)
{
    uint64_t used, size, max;
    jobq_store_usage(self->store, &used, &size, &max);
    if (used > size / 5 * 4 && max > size &&
        jobq_store_grow(self->store) == JOBQ_OK) {
        jobq_store_usage(self->store, &used, &size, &max);
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_NOTICE,
                 "storage map grown to %llu MiB",
                 (unsigned long long) (size >> 20));
    }
    bool full = used > size - size / 8;
    if (full != self->store_full) {
        JOBQ_LOG(self->cfg.log, full ? JOBQ_LOG_WARN : JOBQ_LOG_NOTICE,
                 full ? "storage nearly full (%llu of %llu KiB): refusing "
                        "new jobs"
                      : "storage has room again (%llu of %llu KiB)",
                 (unsigned long long) (used >> 10),
                 (unsigned long long) (size >> 10));
        self->store_full = full;
        jobq_engine_set_store_full(self->engine, full);
    }
}

#define S_PHASE_MSGS 1  //  read and handle messages
#define S_PHASE_TICK 2  //  timers and dispatch

//  One turn: phase says what it does. On a shared store the messages and
//  the dispatch take a turn each: a dispatch that meets another broker's
//  write fails its own turn, not the replies of the messages.
static int
s_turn(jobq_broker_t *self, int phase)
{
    s_check_space(self);
    uint64_t wall = jobq_clock_wall_ms(self->clock);
    uint64_t mono = jobq_clock_mono_ms(self->clock);
    int rc = jobq_engine_begin(self->engine, wall, mono);
    if (rc != JOBQ_OK) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR, "cannot begin turn: %s",
                 jobq_strerror(rc));
        return rc;
    }
    jobq_engine_stats_t before;
    jobq_engine_get_stats(self->engine, &before);
    uint32_t budget = self->cfg.max_msgs_per_turn;
    //  Subscriptions cost little (a repeat of one this turn costs a table
    //  look-up), and libzmq queues what the broker has not read yet in
    //  memory of its own with no bound: read up to eight per pass.
    const uint32_t subs_max = 8 * budget;
    uint32_t subs = subs_max;
    bool more = true;
    //  Round-robin over the three sockets, one message each per pass, until
    //  all are empty, the budget is spent or the replies are large.
    while ((phase & S_PHASE_MSGS) && more && budget > 0 &&
           jobq_engine_turn_bytes(self->engine) < self->cfg.max_turn_bytes) {
        more = false;
        if (s_read_router(self, self->workers, JOBQ_ACT_WORKER))
            more = true, budget--;
        if (budget && s_read_router(self, self->clients, JOBQ_ACT_CLIENT))
            more = true, budget--;
        for (int i = 0; i < 8 && subs && s_read_subscription(self); i++)
            more = true, subs--;
    }
    //  A flood of subscriptions leaves libzmq's queue of them freed but
    //  kept by malloc; once it is over, hand the memory back.
    self->subs_read += subs_max - subs;
    if (subs == subs_max && self->subs_read >= S_TRIM_AFTER) {
        malloc_trim(0);
        self->subs_read = 0;
    }
    if (phase & S_PHASE_TICK)
        jobq_engine_tick(self->engine);
    jobq_engine_stats_t after;
    jobq_engine_get_stats(self->engine, &after);
    if (after.damaged > before.damaged)
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR,
                 "stored data is damaged (%s): %llu %s refused with "
                 "'internal'; jobq-broker --verify %s says what is damaged, "
                 "and --repair salvages the rest",
                 jobq_store_why(self->store),
                 (unsigned long long) (after.damaged - before.damaged),
                 after.damaged - before.damaged == 1 ? "request" : "requests",
                 self->cfg.data_dir);
    if (after.unreadable > before.unreadable)
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR,
                 "%llu queued %s unreadable in storage: taken out of "
                 "the queue (STATUS shows the error)",
                 (unsigned long long) (after.unreadable - before.unreadable),
                 after.unreadable - before.unreadable == 1 ? "job" : "jobs");
    s_fault(self, JOBQ_CRASH_BEFORE_COMPLETION_COMMIT,
            after.completed > before.completed);
    //  New jobs start on their workers while the disk flushes.
    size_t early = s_send_actions(self, true);
    s_fault(self, JOBQ_CRASH_AFTER_EARLY_JOB_BEFORE_COMMIT, early > 0);
    int64_t t0 = zclock_usecs();
    rc = jobq_engine_commit(self->engine);
    if (rc == JOBQ_OK && jobq_store_wrote(self->store))
        jobq_engine_note_commit(self->engine, (uint64_t) (zclock_usecs() - t0));
    if (rc == JOBQ_OK) {
        s_fault(self, JOBQ_CRASH_AFTER_COMMIT_BEFORE_REPLY,
                after.enqueued > before.enqueued);
        s_fault(self, JOBQ_CRASH_AFTER_LEASE_BEFORE_SEND,
                after.dispatched > before.dispatched);
    }
    if (rc == JOBQ_ECORRUPT) {
        //  Damaged data met by a request: that turn is refused, the broker
        //  goes on (and the failure does not count towards stopping). One
        //  line per turn: the one above if a request already said it.
        if (after.damaged == before.damaged)
            JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR,
                     "stored data is damaged (%s): the requests of this turn "
                     "were refused; jobq-broker --verify %s says what is "
                     "damaged, and --repair salvages the rest",
                     jobq_store_why(self->store), self->cfg.data_dir);
    } else if (rc == JOBQ_EUNAVAILABLE || rc == JOBQ_ESTALE) {
        //  A shared store out of reach, or a job another broker changed
        //  at the same moment: one line a second at most; out of reach, a
        //  pause of 50 ms before the next turn writes, rather than a spin.
        uint64_t now = jobq_clock_mono_ms(self->clock);
        self->unavailable++;
        if (now >= self->unavailable_logged + 1000) {
            JOBQ_LOG(self->cfg.log, JOBQ_LOG_WARN,
                     "%llu %s not taken by the shared store (the last: %s); "
                     "their replies became errors",
                     (unsigned long long) self->unavailable,
                     self->unavailable == 1 ? "turn" : "turns",
                     jobq_store_why(self->store));
            self->unavailable = 0;
            self->unavailable_logged = now;
        }
        if (rc == JOBQ_EUNAVAILABLE)
            self->backoff_until = now + 50;
    } else if (rc != JOBQ_OK) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR,
                 "commit failed: %s (%s); its replies became errors",
                 jobq_strerror(rc), jobq_store_why(self->store));
        if (rc == JOBQ_ESTOREFULL && jobq_store_grow(self->store) == JOBQ_OK)
            JOBQ_LOG(self->cfg.log, JOBQ_LOG_NOTICE, "storage map grown");
        //  A shared store that is out of reach, or a write that met
        //  another broker's, is no reason to stop: the cluster comes back.
        if (rc != JOBQ_ESTOREFULL && rc != JOBQ_EUNAVAILABLE)
            self->failed_commits++;
    } else if (jobq_store_wrote(self->store)) {
        //  Only a commit that wrote something proves the disk works again.
        self->failed_commits = 0;
    }
    s_send_actions(self, false);
    s_log_refused(self, false);
    if (self->failed_commits >= S_MAX_FAILED_COMMITS)
        return JOBQ_ESTORAGE;
    return (phase & S_PHASE_MSGS) && budget < self->cfg.max_msgs_per_turn
               ? 1
               : JOBQ_OK;
}

//  Answer the handshakes waiting (at most 1,024 a turn). Past max_conns
//  connections in all (every open one counts, those still in their
//  handshake too), the rest of the descriptors are a reserve: only worker
//  and admin keys get in, so that a flood of strangers or of client keys
//  leaves the jobs running and an operator a way in.
static void
s_serve_auth(jobq_broker_t *self)
{
    if (!self->auth)
        return;
    uint64_t total =
        (uint64_t) self->conns[0] + self->conns[1] + self->conns[2];
    bool full = total >= self->max_conns;
    if (full != self->full_logged) {
        self->full_logged = full;
        if (full)
            JOBQ_LOG(self->cfg.log, JOBQ_LOG_WARN,
                     "%llu connections open (clients %u, workers %u, events "
                     "%u), the limit: new ones are refused but for worker "
                     "and admin keys until some close",
                     (unsigned long long) total, self->conns[0], self->conns[1],
                     self->conns[2]);
        else
            JOBQ_LOG(self->cfg.log, JOBQ_LOG_NOTICE,
                     "room for connections again (%llu open)",
                     (unsigned long long) total);
    }
    bool reserve[3] = {full, full, full};
    jobq_auth_serve(self->auth, reserve, 1024);
    jobq_auth_log(self->auth, jobq_clock_mono_ms(self->clock),
                  self->cfg.refused_log_ms, false);
}

//  The numeric address of a connected descriptor's peer, as ZAP names it
//  ("" for a local socket).
static void
s_peer_address(int fd, char *out, size_t len)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    out[0] = '\0';
    if (getpeername(fd, (struct sockaddr *) &sa, &sl) != 0 ||
        (sa.ss_family != AF_INET && sa.ss_family != AF_INET6))
        return;
    if (getnameinfo((struct sockaddr *) &sa, sl, out, (socklen_t) len, NULL, 0,
                    NI_NUMERICHOST) != 0)
        out[0] = '\0';
}

//  SIGHUP: read the key file again. Added keys get in from now on; removed
//  ones are refused at their next handshake and their next message; their
//  open connections are closed, and those of changed keys (what they
//  hold open was let in under their old rights: subscriptions above all).
//  ZeroMQ does not say which connection a key came on, only from which address,
//  so every connection from an address a removed key used is closed: the others
//  reconnect at once, and are let in again.
static void
s_reload(jobq_broker_t *self)
{
    if (!self->cfg.keys_file) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_NOTICE,
                 "hangup: no key file to read again (the broker runs "
                 "without --keys)");
        return;
    }
    size_t removed = 0;
    char why[512];
    if (jobq_auth_reload(self->auth, &removed, why, sizeof why) != JOBQ_OK) {
        JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR,
                 "key file not reloaded, the keys before stay: %s", why);
        return;
    }
    size_t closed = 0;
    for (size_t fd = 0; fd < self->nfd; fd++) {
        if (!self->fd_ep[fd])
            continue;
        char address[64];
        s_peer_address((int) fd, address, sizeof address);
        if (jobq_auth_removed_from(self->auth, address) &&
            shutdown((int) fd, SHUT_RDWR) == 0)
            closed++;
    }
    JOBQ_LOG(self->cfg.log, JOBQ_LOG_NOTICE,
             "key file reloaded: %zu key%s, %zu removed; closed %zu "
             "connection%s from where removed or changed keys connected",
             jobq_auth_count(self->auth),
             jobq_auth_count(self->auth) == 1 ? "" : "s", removed, closed,
             closed == 1 ? "" : "s");
}

int
jobq_broker_run(jobq_broker_t *self, volatile sig_atomic_t *stop)
{
    zmq_pollitem_t items[8] = {
        {zsock_resolve(self->workers), 0, ZMQ_POLLIN, 0},
        {zsock_resolve(self->clients), 0, ZMQ_POLLIN, 0},
        {zsock_resolve(self->events), 0, ZMQ_POLLIN, 0},
        {NULL, 0, ZMQ_POLLIN, 0},
        {NULL, 0, ZMQ_POLLIN, 0},
        {NULL, 0, ZMQ_POLLIN, 0},
        {NULL, 0, ZMQ_POLLIN, 0},
        {NULL, 0, ZMQ_POLLIN, 0},
    };
    int nitems = 3;
    for (int i = 0; i < 3; i++)
        if (self->monitor[i])
            items[nitems++].socket = zsock_resolve(self->monitor[i]);
    if (self->auth)
        items[nitems++].socket = jobq_auth_socket(self->auth);
    bool shared = jobq_store_shared(self->store);
    if (shared)
        items[nitems++].fd = jobq_store_fd(self->store);
    bool draining = false;
    uint64_t quiet_until = 0, quiet_end = 0, grace_end = 0;
    while (true) {
        if (!draining && stop && *stop) {
            //  Refuse new work and hand out no more jobs; keep taking
            //  results, progress and reads until the running jobs have
            //  reported (their results committed and acknowledged) and
            //  nothing has come for drain_ms, or the grace runs out.
            draining = true;
            jobq_engine_drain(self->engine);
            uint64_t t = jobq_clock_mono_ms(self->clock);
            quiet_until = t + self->cfg.drain_ms;
            quiet_end = t + 10 * self->cfg.drain_ms;
            grace_end = t + self->cfg.grace_ms;
            size_t running = jobq_engine_lease_count(self->engine);
            JOBQ_LOG(self->cfg.log, JOBQ_LOG_NOTICE,
                     "stopping: waiting up to %llu ms for %zu running %s"
                     " (signal again to stop now)",
                     (unsigned long long) self->cfg.grace_ms, running,
                     running == 1 ? "job" : "jobs");
        }
        if (draining) {
            uint64_t t = jobq_clock_mono_ms(self->clock);
            size_t running = jobq_engine_lease_count(self->engine);
            //  Requests still coming (refused, or reads) do not hold the
            //  stop up for more than 10 x drain_ms once no job runs.
            if (running == 0 && (t >= quiet_until || t >= quiet_end))
                break;
            if (t >= grace_end || *stop < 0) {
                JOBQ_LOG(self->cfg.log, JOBQ_LOG_WARN,
                         "stopping with %zu %s still running: their "
                         "workers keep their results and hand them in when "
                         "the broker is back (within the lease)",
                         running, running == 1 ? "job" : "jobs");
                break;
            }
        }
        uint64_t now = jobq_clock_mono_ms(self->clock);
        uint64_t wake = jobq_engine_next_wakeup(self->engine);
        if (wake < self->backoff_until)
            wake = self->backoff_until;
        long timeout = wake <= now ? 0 : (long) (wake - now);
        if (timeout > 1000)
            timeout = 1000;
        if (draining && timeout > 20)
            timeout = 20;
        int n = zmq_poll(items, nitems, timeout);
        if (n < 0 && errno != EINTR)
            break;
        s_read_monitors(self, false);
        if (self->cfg.reload && *self->cfg.reload) {
            *self->cfg.reload = 0;
            s_reload(self);
        }
        s_serve_auth(self);
        if (shared)
            jobq_store_drain_fd(self->store);
        int trc = shared ? s_turn(self, S_PHASE_MSGS)
                         : s_turn(self, S_PHASE_MSGS | S_PHASE_TICK);
        if (shared && trc != JOBQ_ESTORAGE) {
            int t2 = s_turn(self, S_PHASE_TICK);
            if (t2 == JOBQ_ESTORAGE)
                trc = t2;
        }
        if (trc == JOBQ_ESTORAGE) {
            JOBQ_LOG(self->cfg.log, JOBQ_LOG_ERROR,
                     "%d commits failed in a row: stopping",
                     S_MAX_FAILED_COMMITS);
            return JOBQ_ESTORAGE;
        }
        if (trc == 1 && draining)
            quiet_until = jobq_clock_mono_ms(self->clock) + self->cfg.drain_ms;
    }
    s_log_refused(self, true);
    s_read_monitors(self, true);
    if (self->auth)
        jobq_auth_log(self->auth, jobq_clock_mono_ms(self->clock), 0, true);
    JOBQ_LOG(self->cfg.log, JOBQ_LOG_NOTICE, "stopped");
    return JOBQ_OK;
}
