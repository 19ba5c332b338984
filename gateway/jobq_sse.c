/*  jobq_sse.c: Server-Sent Events for one job's changes (jobq_sse.h). */
#include "jobq_sse.h"
#include "jobq_json.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_SILENCE_MS    5000  //  a job not heard of this long is read again
#define S_POLL_MS       100   //  the hub looks at new streams this often
#define S_SIGNATURE     "JOBQ\x01"  //  JOBQ/1 (docs/PROTOCOL.md 3.2)
#define S_SIGNATURE_LEN 5
#define S_BUF_MIN       1024  //  a stream's buffer starts at this

typedef struct s_stream s_stream_t;

//  One job the hub follows.
typedef struct s_topic {
    char id[JOBQ_ID_LEN + 1];
    char topic[JOBQ_MAX_SHOP_LEN + JOBQ_ID_LEN + 2];  //  "<shop>/<id>"
    uint32_t version;                                 //  of the last state seen
    char *last;        //  that state as an SSE event, or NULL
    bool final;        //  it has ended
    int64_t heard_ms;  //  when the hub last learned of it
    bool reading;      //  a STATUS of it is under way
    bool read_again;   //  and another is wanted after it (it may be older
                       //  than an end seen meanwhile)
    s_stream_t *streams;
    struct s_topic *next;
} s_topic_t;

//  A stream. Until the hub takes it, only the request's thread touches it;
//  then only the hub, which writes to its socket itself (a stream of an
//  ended job never reaches the hub: libmicrohttpd sends it whole).
struct s_stream {
    char *buf;  //  owed to the reader: [off, len) of cap bytes
    size_t cap, len, off;
    uint32_t version;  //  the last version sent (or resumed from)
    uint64_t seq;      //  a shop's stream: the last seq sent
    bool of_shop;      //  a shop's stream (all shops with shop "")
    bool final;        //  end once buf is written
    bool gone;         //  ended: the sweep lets go of it
    bool want_out;     //  waiting for the socket to take more
    bool live;         //  the hub has it (its fd is in the hub's epoll)
    int fd;            //  the connection's descriptor, or -1
    struct MHD_Connection *conn;  //  the hub's: suspended until s is freed
    char id[JOBQ_ID_LEN + 1];
    char shop[JOBQ_MAX_SHOP_LEN + 1];
    s_stream_t *next;  //  in its topic, or in the queue of new ones
};

static struct {
    jobq_http_config_t cfg;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    pthread_mutex_t mu;  //  guards fresh and count
    s_stream_t *fresh;   //  new streams, for the hub to take
    int count;           //  streams open
    s_topic_t *topics;   //  the hub's own
    s_stream_t *shops;   //  the streams of a shop (or of all), the hub's
    int ep;              //  epoll of the streams' sockets
    bool ended;          //  a stream ended since the last sweep
} s_hub = {.mu = PTHREAD_MUTEX_INITIALIZER, .ep = -1};

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_stream_free(s_stream_t *s)
{
    if (s->live && s->fd >= 0)  //  out of the epoll before the fd closes
        epoll_ctl(s_hub.ep, EPOLL_CTL_DEL, s->fd, NULL);
    if (s->conn)  //  libmicrohttpd closes it
        MHD_resume_connection(s->conn);
    free(s->buf);
    free(s);
    pthread_mutex_lock(&s_hub.mu);
    s_hub.count--;
    pthread_mutex_unlock(&s_hub.mu);
}

//  The stream is over (its reader left, read everything, or fell behind):
//  stop writing to the connection. The sweep frees s and gives the
//  connection back to libmicrohttpd, which closes it (after the turn's
//  writes: a resume costs libmicrohttpd's threads more than a send).
static void
s_end(s_stream_t *s)
{
    if (s->gone)
        return;
    s->gone = true;
    if (!s->live)  //  not the hub's yet: its opener refuses it
        return;
    s_hub.ended = true;
    if (s->fd >= 0) {  //  libmicrohttpd's: it closes it
        epoll_ctl(s_hub.ep, EPOLL_CTL_DEL, s->fd, NULL);
        shutdown(s->fd, SHUT_WR);  //  the end, after what was written
        s->fd = -1;
    }
}

//  Write what s owes, as much as its socket takes now; wait for room
//  (EPOLLOUT) for the rest. A stream that owes nothing and is final ends.
static void
s_flush(s_stream_t *s)
{
    if (s->gone || !s->live)
        return;
    while (s->fd >= 0 && s->off < s->len) {
        ssize_t n = send(s->fd, s->buf + s->off, s->len - s->off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            s->off += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        s_end(s);  //  the reader is gone
        return;
    }
    if (s->fd < 0)
        return;
    if (s->off == s->len) {
        s->off = s->len = 0;
        if (s->cap > 4 * S_BUF_MIN) {  //  a burst is over: give it back
            free(s->buf);
            s->buf = NULL;
            s->cap = 0;
        }
        if (s->final) {
            s_end(s);
            return;
        }
    }
    bool want = s->off < s->len;
    if (want != s->want_out) {
        struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLIN |
                                           (want ? EPOLLOUT : 0),
                                 .data.ptr = s};
        epoll_ctl(s_hub.ep, EPOLL_CTL_MOD, s->fd, &ev);
        s->want_out = want;
    }
}

//  Owe text to s (an event, or a comment), and write it if the hub has s.
//  A reader that still owes something and would owe more than
//  JOBQ_SSE_BUFFER is dropped: it never holds up the hub or anyone else.
//  One event alone may be bigger (a job's JSON with a large input or
//  output, bounded by the protocol's limits): a reader that keeps up gets
//  it.
static void
s_append(s_stream_t *s, const char *text, bool final)
{
    size_t n = strlen(text);
    if (s->gone || s->final)
        return;
    if (s->off) {  //  move what is owed to the front
        memmove(s->buf, s->buf + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
    }
    if (s->len > 0 && s->len + n > JOBQ_SSE_BUFFER) {
        s_end(s);
        return;
    }
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : S_BUF_MIN;
        while (cap < s->len + n)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b) {
            s_end(s);
            return;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->final = final;
    s_flush(s);
}

//  A job's state (camelCase JSON) as an SSE event: its version as the id.
static char *
s_event_text(json_t *job, uint32_t version)
{
    char *data = jobq_json_dumps(job, JSON_COMPACT);
    if (!data)
        return NULL;
    size_t n = strlen(data) + 64;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "id: %u\nevent: job\ndata: %s\n\n", version, data);
    free(data);
    return t;
}

static bool
s_final_status(const char *status)
{
    return status &&
           (strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
            strcmp(status, "cancelled") == 0);
}

//  --- the hub ----------------------------------------------------------------

//  A newer state of topic t: kept, and owed to each stream behind it.
static void
s_deliver(s_topic_t *t, json_t *job)
{
    uint32_t v = (uint32_t) json_integer_value(json_object_get(job, "version"));
    bool final =
        s_final_status(json_string_value(json_object_get(job, "status")));
    t->heard_ms = s_now_ms();
    if (v <= t->version && t->last)
        return;
    char *text = s_event_text(job, v);
    if (!text)
        return;
    free(t->last);
    t->last = text;
    t->version = v;
    t->final = final;
    for (s_stream_t *s = t->streams; s; s = s->next)
        if (v > s->version) {
            s->version = v;
            s_append(s, text, final);
        }
}

//  A change to the streams of its shop and of all shops: each gets it
//  once, by seq (a repeat, such as a subscription's snapshot, is not sent
//  again).
static void
s_to_shops(const char *shop, size_t len, json_t *job)
{
    uint64_t seq = (uint64_t) json_integer_value(json_object_get(job, "seq"));
    char *text = NULL;
    for (s_stream_t *s = s_hub.shops; s; s = s->next) {
        if (s->shop[0] &&
            !(strlen(s->shop) == len && memcmp(s->shop, shop, len) == 0))
            continue;
        if (seq <= s->seq)
            continue;
        s->seq = seq;
        if (!text) {
            char *data = jobq_json_dumps(job, JSON_COMPACT);
            size_t n = data ? strlen(data) + 64 : 0;
            text = data ? malloc(n) : NULL;
            if (text)
                snprintf(text, n, "id: %llu\nevent: job\ndata: %s\n\n",
                         (unsigned long long) seq, data);
            free(data);
            if (!text)
                return;
        }
        s_append(s, text, false);
    }
    free(text);
}

//  STATUS reads for the hub, by S_READERS threads of their own: a job's
//  last event needs its output and errors, which events do not carry, and
//  many jobs may end at once; the hub never waits for the broker.
#define S_READERS 16

typedef struct s_read_job {
    char id[JOBQ_ID_LEN + 1];
    json_t *job;  //  the answer, or NULL (read again after a silence)
    struct s_read_job *next;
} s_read_job_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    s_read_job_t *todo, *done;
    int wake[2];  //  a pipe: done has answers for the hub
    pthread_t threads[S_READERS];
    int nthreads;
    bool stop;
} s_rd = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .cv = PTHREAD_COND_INITIALIZER,
          .wake = {-1, -1}};

static void *
s_reader_main(void *arg)
{
    (void) arg;
    pthread_mutex_lock(&s_rd.mu);
    while (!s_rd.stop) {
        s_read_job_t *r = s_rd.todo;
        if (!r) {
            pthread_cond_wait(&s_rd.cv, &s_rd.mu);
            continue;
        }
        s_rd.todo = r->next;
        pthread_mutex_unlock(&s_rd.mu);
        jobq_client_t *c = jobq_http_client();
        jobq_job_info_t info;
        memset(&info, 0, sizeof info);
        r->job = c && jobq_client_status(c, r->id, &info) == JOBQ_OK
                     ? jobq_http_job(&info)
                     : NULL;
        jobq_job_info_clear(&info);
        pthread_mutex_lock(&s_rd.mu);
        r->next = s_rd.done;
        s_rd.done = r;
        ssize_t w = write(s_rd.wake[1], "x", 1);  //  full: a wake is owed
        (void) w;
    }
    pthread_mutex_unlock(&s_rd.mu);
    jobq_http_thread_done();
    return NULL;
}

//  Ask for job t's state with STATUS (output and errors included); the
//  hub delivers it when it comes (s_take_reads). One at a time per job.
static void
s_reread(s_topic_t *t)
{
    t->heard_ms = s_now_ms();  //  and again after the next silence
    if (t->reading) {
        t->read_again = true;
        return;
    }
    s_read_job_t *r = calloc(1, sizeof *r);
    if (!r)
        return;
    snprintf(r->id, sizeof r->id, "%s", t->id);
    t->reading = true;
    pthread_mutex_lock(&s_rd.mu);
    r->next = s_rd.todo;
    s_rd.todo = r;
    pthread_cond_signal(&s_rd.cv);
    pthread_mutex_unlock(&s_rd.mu);
}

static s_topic_t *s_topic_find(const char *id);

//  The answers that came: each delivered to its job's streams, if any
//  are left.
static void
s_take_reads(void)
{
    char junk[256];
    while (read(s_rd.wake[0], junk, sizeof junk) > 0) {
    }
    pthread_mutex_lock(&s_rd.mu);
    s_read_job_t *done = s_rd.done;
    s_rd.done = NULL;
    pthread_mutex_unlock(&s_rd.mu);
    while (done) {
        s_read_job_t *r = done;
        done = r->next;
        s_topic_t *t = s_topic_find(r->id);
        if (t) {
            t->reading = false;
            if (r->job)
                s_deliver(t, r->job);
            if (t->read_again && !t->final) {
                t->read_again = false;
                s_reread(t);
            }
        }
        json_decref(r->job);
        free(r);
    }
}

static s_topic_t *
s_topic_find(const char *id)
{
    for (s_topic_t *t = s_hub.topics; t; t = t->next)
        if (strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

//  Take the new streams: each joins its job's topic (subscribing when it
//  is the first), and gets the last state seen when newer than its own;
//  then the hub writes what each owes (its headers first).
static void
s_take_fresh(void *sub)
{
    pthread_mutex_lock(&s_hub.mu);
    s_stream_t *fresh = s_hub.fresh;
    s_hub.fresh = NULL;
    pthread_mutex_unlock(&s_hub.mu);
    while (fresh) {
        s_stream_t *s = fresh;
        fresh = s->next;
        struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLIN, .data.ptr = s};
        if (epoll_ctl(s_hub.ep, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
            //  Not watched, so not kept: the reader tries again.
            shutdown(s->fd, SHUT_WR);
            s->fd = -1;
            s_stream_free(s);
            continue;
        }
        s->live = true;
        if (s->of_shop) {
            //  One subscription per shop stream ("<shop>/" or ""); ZeroMQ
            //  counts repeats, and the sweep takes each back.
            char topic[JOBQ_MAX_SHOP_LEN + 2];
            int tl = snprintf(topic, sizeof topic, "%s%s", s->shop,
                              s->shop[0] ? "/" : "");
            zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, (size_t) tl);
            s->next = s_hub.shops;
            s_hub.shops = s;
            s_flush(s);
            continue;
        }
        s_topic_t *t = s_topic_find(s->id);
        if (!t && (t = calloc(1, sizeof *t)) != NULL) {
            snprintf(t->id, sizeof t->id, "%s", s->id);
            snprintf(t->topic, sizeof t->topic, "%s/%s", s->shop, s->id);
            t->heard_ms = s_now_ms();
            t->next = s_hub.topics;
            s_hub.topics = t;
            zmq_setsockopt(sub, ZMQ_SUBSCRIBE, t->topic, strlen(t->topic));
        }
        if (!t) {  //  out of memory: end it, the reader comes back
            s_end(s);
            s_stream_free(s);
            continue;
        }
        s->next = t->streams;
        t->streams = s;
        if (t->last && t->version > s->version) {
            s->version = t->version;
            s_append(s, t->last, t->final);
        } else {
            s_flush(s);
        }
    }
}

//  What the streams' sockets said: room to write, or the reader left
//  (anything a reader sends after its request is read and dropped).
static void
s_poll_sockets(void)
{
    struct epoll_event evs[256];
    for (int round = 0; round < 16; round++) {
        int n = epoll_wait(s_hub.ep, evs, 256, 0);
        for (int i = 0; i < n; i++) {
            s_stream_t *s = evs[i].data.ptr;
            if (s->gone)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                char junk[512];
                ssize_t r = recv(s->fd, junk, sizeof junk, MSG_DONTWAIT);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR) ||
                    (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
                    s_end(s);
                    continue;
                }
            }
            if (evs[i].events & EPOLLOUT)
                s_flush(s);
        }
        if (n < 256)
            return;
    }
}

//  Let go of streams that ended, and of topics with none.
static void
s_sweep(void *sub)
{
    if (!s_hub.ended)
        return;
    s_hub.ended = false;
    for (s_stream_t **sp = &s_hub.shops; *sp;) {
        s_stream_t *s = *sp;
        if (!s->gone) {
            sp = &s->next;
            continue;
        }
        char topic[JOBQ_MAX_SHOP_LEN + 2];
        int tl = snprintf(topic, sizeof topic, "%s%s", s->shop,
                          s->shop[0] ? "/" : "");
        zmq_setsockopt(sub, ZMQ_UNSUBSCRIBE, topic, (size_t) tl);
        *sp = s->next;
        s_stream_free(s);
    }
    for (s_topic_t **tp = &s_hub.topics; *tp;) {
        s_topic_t *t = *tp;
        for (s_stream_t **sp = &t->streams; *sp;) {
            s_stream_t *s = *sp;
            if (s->gone) {
                *sp = s->next;
                s_stream_free(s);
            } else {
                sp = &s->next;
            }
        }
        if (!t->streams) {
            zmq_setsockopt(sub, ZMQ_UNSUBSCRIBE, t->topic, strlen(t->topic));
            *tp = t->next;
            free(t->last);
            free(t);
        } else {
            tp = &t->next;
        }
    }
}

//  One event from the broker: [topic][signature][body].
static void
s_read_event(void *sub)
{
    zmq_msg_t f[3];
    int n = 0;
    bool more = true;
    while (more && n < 3) {
        zmq_msg_init(&f[n]);
        if (zmq_msg_recv(&f[n], sub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f[n]);
            break;
        }
        more = zmq_msg_more(&f[n]);
        n++;
    }
    while (more) {  //  more frames than an event has: skip them
        zmq_msg_t x;
        zmq_msg_init(&x);
        if (zmq_msg_recv(&x, sub, 0) < 0)
            more = false;
        else
            more = zmq_msg_more(&x);
        zmq_msg_close(&x);
    }
    if (n == 3 && zmq_msg_size(&f[0]) > JOBQ_ID_LEN &&
        zmq_msg_size(&f[1]) == S_SIGNATURE_LEN &&
        memcmp(zmq_msg_data(&f[1]), S_SIGNATURE, S_SIGNATURE_LEN) == 0) {
        char id[JOBQ_ID_LEN + 1];
        memcpy(id,
               (const char *) zmq_msg_data(&f[0]) + zmq_msg_size(&f[0]) -
                   JOBQ_ID_LEN,
               JOBQ_ID_LEN);
        id[JOBQ_ID_LEN] = '\0';
        s_topic_t *t = s_topic_find(id);
        json_t *snake = t || s_hub.shops
                            ? jobq_json_from_mp((jobq_bytes_t){
                                  zmq_msg_data(&f[2]), zmq_msg_size(&f[2])})
                            : NULL;
        json_t *job = snake ? jobq_http_camel(snake) : NULL;
        if (job && s_hub.shops) {
            size_t tl = zmq_msg_size(&f[0]) - JOBQ_ID_LEN - 1;
            s_to_shops((const char *) zmq_msg_data(&f[0]), tl, job);
        }
        if (job && t) {
            uint32_t v =
                (uint32_t) json_integer_value(json_object_get(job, "version"));
            //  An ended job's last event comes with its output and
            //  errors, which events do not carry: read it whole.
            if (v > t->version && s_final_status(json_string_value(
                                      json_object_get(job, "status"))))
                s_reread(t);
            else
                s_deliver(t, job);
        }
        json_decref(job);
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

static void *
s_hub_main(void *arg)
{
    (void) arg;
    void *ctx = zmq_ctx_new();
    void *sub = ctx ? zmq_socket(ctx, ZMQ_SUB) : NULL;
    int zero = 0, hwm = 100000, max = 2 << 20;
    if (sub) {
        zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
        int64_t m = max;
        zmq_setsockopt(sub, ZMQ_MAXMSGSIZE, &m, sizeof m);
        if (s_hub.cfg.curve) {
            const jobq_curve_t *k = s_hub.cfg.curve;
            zmq_setsockopt(sub, ZMQ_CURVE_SERVERKEY, k->server_key, 41);
            zmq_setsockopt(sub, ZMQ_CURVE_PUBLICKEY, k->public_key, 41);
            zmq_setsockopt(sub, ZMQ_CURVE_SECRETKEY, k->secret_key, 41);
        }
        zmq_connect(sub, s_hub.cfg.events);
    }
    int64_t next_keepalive = s_now_ms() + JOBQ_SSE_KEEPALIVE_S * 1000;
    while (!atomic_load(&s_hub.stop)) {
        s_take_fresh(sub);
        zmq_pollitem_t it[3] = {{sub, 0, ZMQ_POLLIN, 0},
                                {NULL, s_hub.ep, ZMQ_POLLIN, 0},
                                {NULL, s_rd.wake[0], ZMQ_POLLIN, 0}};
        int np = sub ? zmq_poll(it, 3, S_POLL_MS) : 0;
        if (np > 0 && (it[0].revents & ZMQ_POLLIN)) {
            //  A few at a time: STATUS answers and sockets wait less.
            for (int i = 0; i < 64; i++) {
                s_read_event(sub);
                int ev = 0;
                size_t el = sizeof ev;
                if (zmq_getsockopt(sub, ZMQ_EVENTS, &ev, &el) != 0 ||
                    !(ev & ZMQ_POLLIN))
                    break;
            }
        } else if (!sub) {
            struct timespec ts = {0, S_POLL_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (np > 0 && (it[1].revents & ZMQ_POLLIN))
            s_poll_sockets();
        if (np > 0 && (it[2].revents & ZMQ_POLLIN))
            s_take_reads();
        int64_t now = s_now_ms();
        for (s_topic_t *t = s_hub.topics; t; t = t->next)
            if (!t->final && now - t->heard_ms > S_SILENCE_MS)
                s_reread(t);
        if (now >= next_keepalive) {
            next_keepalive = now + JOBQ_SSE_KEEPALIVE_S * 1000;
            for (s_topic_t *t = s_hub.topics; t; t = t->next)
                for (s_stream_t *s = t->streams; s; s = s->next)
                    s_append(s, ": keep-alive\n\n", false);
            for (s_stream_t *s = s_hub.shops; s; s = s->next)
                s_append(s, ": keep-alive\n\n", false);
        }
        s_sweep(sub);
    }
    //  Stopping: every stream ends after what its socket takes now.
    s_take_fresh(sub);
    for (s_topic_t *t = s_hub.topics; t; t = t->next)
        for (s_stream_t *s = t->streams; s; s = s->next) {
            s_flush(s);
            s_end(s);
        }
    for (s_stream_t *s = s_hub.shops; s; s = s->next) {
        s_flush(s);
        s_end(s);
    }
    s_sweep(sub);
    jobq_http_thread_done();
    if (sub)
        zmq_close(sub);
    if (ctx)
        zmq_ctx_term(ctx);
    return NULL;
}

int
jobq_sse_start(const jobq_http_config_t *cfg)
{
    s_hub.cfg = *cfg;
    atomic_store(&s_hub.stop, false);
    s_hub.ep = epoll_create1(EPOLL_CLOEXEC);
    if (s_hub.ep < 0)
        return JOBQ_ENOMEM;
    if (pipe(s_rd.wake) != 0) {
        close(s_hub.ep);
        s_hub.ep = -1;
        return JOBQ_ENOMEM;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(s_rd.wake[i], F_SETFL, O_NONBLOCK);
        fcntl(s_rd.wake[i], F_SETFD, FD_CLOEXEC);
    }
    s_rd.stop = false;
    for (s_rd.nthreads = 0; s_rd.nthreads < S_READERS; s_rd.nthreads++)
        if (pthread_create(&s_rd.threads[s_rd.nthreads], NULL, s_reader_main,
                           NULL) != 0)
            break;
    if (s_rd.nthreads == 0) {  //  no final state could be read
        close(s_rd.wake[0]);
        close(s_rd.wake[1]);
        close(s_hub.ep);
        s_hub.ep = -1;
        return JOBQ_ENOMEM;
    }
    if (pthread_create(&s_hub.thread, NULL, s_hub_main, NULL) != 0) {
        pthread_mutex_lock(&s_rd.mu);
        s_rd.stop = true;
        pthread_cond_broadcast(&s_rd.cv);
        pthread_mutex_unlock(&s_rd.mu);
        for (int i = 0; i < s_rd.nthreads; i++)
            pthread_join(s_rd.threads[i], NULL);
        close(s_rd.wake[0]);
        close(s_rd.wake[1]);
        close(s_hub.ep);
        s_hub.ep = -1;
        return JOBQ_ENOMEM;
    }
    s_hub.running = true;
    return JOBQ_OK;
}

void
jobq_sse_stop(void)
{
    if (s_hub.ep < 0)
        return;
    atomic_store(&s_hub.stop, true);
    pthread_mutex_lock(&s_hub.mu);
    s_hub.running = false;  //  no new stream from now on
    pthread_mutex_unlock(&s_hub.mu);
    pthread_join(s_hub.thread, NULL);
    //  Streams queued after the hub's last look: ended unwritten.
    pthread_mutex_lock(&s_hub.mu);
    s_stream_t *fresh = s_hub.fresh;
    s_hub.fresh = NULL;
    pthread_mutex_unlock(&s_hub.mu);
    while (fresh) {
        s_stream_t *s = fresh;
        fresh = s->next;
        s_stream_free(s);
    }
    close(s_hub.ep);
    s_hub.ep = -1;
    pthread_mutex_lock(&s_rd.mu);
    s_rd.stop = true;
    pthread_cond_broadcast(&s_rd.cv);
    pthread_mutex_unlock(&s_rd.mu);
    for (int i = 0; i < s_rd.nthreads; i++)
        pthread_join(s_rd.threads[i], NULL);
    s_rd.nthreads = 0;
    for (s_read_job_t *lists[2] = {s_rd.todo, s_rd.done}, **l = lists;
         l < lists + 2; l++)
        while (*l) {
            s_read_job_t *r = *l;
            *l = r->next;
            json_decref(r->job);
            free(r);
        }
    s_rd.todo = s_rd.done = NULL;
    close(s_rd.wake[0]);
    close(s_rd.wake[1]);
    s_rd.wake[0] = s_rd.wake[1] = -1;
    //  Streams of ended jobs, sent whole by libmicrohttpd (a second).
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&s_hub.mu);
        int n = s_hub.count;
        pthread_mutex_unlock(&s_hub.mu);
        if (n == 0)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

//  --- a stream's start, in the request's thread -----------------------------

//  A stream of an ended job, sent whole by libmicrohttpd from its buffer.
static ssize_t
s_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    s_stream_t *s = cls;
    if (s->off == s->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    return (ssize_t) n;
}

static void
s_free(void *cls)
{
    s_stream_free(cls);
}

//  A new stream, counted; NULL with *err (503) when there are too many or
//  memory ran out.
static s_stream_t *
s_stream_new(jobq_http_response_t *err)
{
    pthread_mutex_lock(&s_hub.mu);
    bool room = s_hub.running && s_hub.count < JOBQ_SSE_MAX_STREAMS;
    if (room)
        s_hub.count++;
    pthread_mutex_unlock(&s_hub.mu);
    s_stream_t *s = room ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        if (room) {
            pthread_mutex_lock(&s_hub.mu);
            s_hub.count--;
            pthread_mutex_unlock(&s_hub.mu);
        }
        err->status = 503;
        err->retry_after = 1;
        err->body = strdup("{\"error\":{\"code\":\"unavailable\",\"message\":"
                           "\"too many event streams\"}}");
        return NULL;
    }
    s->fd = -1;
    return s;
}

static const char s_oom[] =
    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

//  Answer conn with s's stream. An ended job's (final) goes out whole
//  through libmicrohttpd. A live one is the hub's from now on: the hub
//  writes the headers and every event to the connection's socket itself
//  (one send per event, no wake-up of libmicrohttpd's threads), while
//  libmicrohttpd keeps the connection suspended; *taken says so, and the
//  caller refuses the request when libmicrohttpd calls again, which
//  closes the connection. MHD_YES, or MHD_NO with *err (s freed).
static enum MHD_Result
s_stream_respond(struct MHD_Connection *conn,
                 s_stream_t *s,
                 bool final,
                 bool *taken,
                 jobq_http_response_t *err)
{
    *taken = false;
    const char *cors = jobq_http_cors(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"));
    if (final) {
        struct MHD_Response *r = MHD_create_response_from_callback(
            MHD_SIZE_UNKNOWN, 4096, s_read, s, s_free);
        if (!r) {
            s_stream_free(s);
            err->status = 500;
            err->body = strdup(s_oom);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-store");
        if (cors) {
            MHD_add_response_header(r, "Access-Control-Allow-Origin", cors);
            MHD_add_response_header(r, "Vary", "Origin");
        }
        enum MHD_Result q = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return q;
    }
    //  The headers go in front of what the stream owes already.
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\n"
                      "Content-Type: text/event-stream\r\n"
                      "Cache-Control: no-store\r\n"
                      "X-Accel-Buffering: no\r\n"
                      "Connection: close\r\n");
    if (cors)
        hl += snprintf(head + hl, sizeof head - (size_t) hl,
                       "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n",
                       cors);
    hl += snprintf(head + hl, sizeof head - (size_t) hl, "\r\n");
    //  libmicrohttpd's own descriptor: it leaves a suspended connection's
    //  socket alone, and closes it once the hub resumes the connection.
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    size_t need = s->len + (size_t) hl;
    char *b = need > s->cap
                  ? realloc(s->buf, need < S_BUF_MIN ? S_BUF_MIN : need)
                  : s->buf;
    if (!ci || !b || s->gone) {  //  gone: no memory for its first event
        if (b)
            s->buf = b;
        s_stream_free(s);
        err->status = 500;
        err->body = strdup(s_oom);
        return MHD_NO;
    }
    if (need > s->cap)
        s->cap = need < S_BUF_MIN ? S_BUF_MIN : need;
    s->buf = b;
    memmove(s->buf + hl, s->buf, s->len);
    memcpy(s->buf, head, (size_t) hl);
    s->len += (size_t) hl;
    int fd = ci->connect_fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    //  Each event goes out as it is written: no Nagle wait for the
    //  reader's delayed ACK (40 ms), and no cork libmicrohttpd may have
    //  left on.
    int one = 1, zero = 0, sndbuf = JOBQ_SSE_SOCKET_BUFFER;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
    //  What the kernel holds for a reader is bounded too (Linux doubles
    //  it): a reader that stops reading is dropped after that and
    //  JOBQ_SSE_BUFFER.
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    s->fd = fd;
    //  Handed over only while the hub runs: one stopping has taken its
    //  last look at the queue, and a connection left suspended would stop
    //  libmicrohttpd's shutdown.
    pthread_mutex_lock(&s_hub.mu);
    if (!s_hub.running) {
        pthread_mutex_unlock(&s_hub.mu);
        s->fd = -1;
        s_stream_free(s);
        err->status = 503;
        err->retry_after = 1;
        err->body = strdup("{\"error\":{\"code\":\"unavailable\",\"message\":"
                           "\"the gateway is stopping\"}}");
        return MHD_NO;
    }
    s->conn = conn;  //  resumed when s is freed
    MHD_suspend_connection(conn);
    *taken = true;
    s->next = s_hub.fresh;
    s_hub.fresh = s;
    pthread_mutex_unlock(&s_hub.mu);
    return MHD_YES;
}

enum MHD_Result
jobq_sse_open(struct MHD_Connection *conn,
              const char *id,
              const char *last_event_id,
              const jobq_token_t *who,
              bool *taken,
              jobq_http_response_t *err)
{
    *taken = false;
    memset(err, 0, sizeof *err);
    jobq_client_t *c = jobq_http_client();
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    int rc = c ? jobq_client_status(c, id, &info) : JOBQ_EUNAVAILABLE;
    if (rc == JOBQ_OK && who &&
        !jobq_token_shop(who, info.shop_id, strlen(info.shop_id))) {
        jobq_job_info_clear(&info);
        err->status = 404;
        char msg[160];
        snprintf(msg, sizeof msg,
                 "{\"error\":{\"code\":\"unknown_job\",\"message\":"
                 "\"no job %s\"}}",
                 id);
        err->body = strdup(msg);
        return MHD_NO;
    }
    if (rc != JOBQ_OK) {
        jobq_http_failed(err, c, rc);
        return MHD_NO;
    }
    s_stream_t *s = s_stream_new(err);
    if (!s) {
        jobq_job_info_clear(&info);
        return MHD_NO;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->shop, sizeof s->shop, "%s", info.shop_id);
    //  Resume: nothing at or below the version the reader has.
    if (last_event_id) {
        char *end;
        unsigned long v = strtoul(last_event_id, &end, 10);
        if (*last_event_id && !*end && v <= UINT32_MAX)
            s->version = (uint32_t) v;
    }
    bool final = info.status == JOBQ_COMPLETED || info.status == JOBQ_FAILED ||
                 info.status == JOBQ_CANCELLED;
    if (info.version > s->version) {
        json_t *j = jobq_http_job(&info);
        char *text = j ? s_event_text(j, info.version) : NULL;
        json_decref(j);
        if (text) {
            s->version = info.version;
            s_append(s, text, final);
            free(text);
        }
    }
    s->final = final;
    jobq_job_info_clear(&info);
    return s_stream_respond(conn, s, final, taken, err);
}

enum MHD_Result
jobq_sse_open_shop(struct MHD_Connection *conn,
                   const char *shop,
                   const char *last_event_id,
                   bool *taken,
                   jobq_http_response_t *err)
{
    *taken = false;
    memset(err, 0, sizeof *err);
    s_stream_t *s = s_stream_new(err);
    if (!s)
        return MHD_NO;
    s->of_shop = true;
    snprintf(s->shop, sizeof s->shop, "%s", shop);
    if (last_event_id) {
        char *end;
        unsigned long long v = strtoull(last_event_id, &end, 10);
        if (*last_event_id && !*end)
            s->seq = v;
    }
    //  A comment first, so that the reader knows the stream is open.
    s_append(s, ": open\n\n", false);
    return s_stream_respond(conn, s, false, taken, err);
}
