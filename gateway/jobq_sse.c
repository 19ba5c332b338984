/*  jobq_sse.c: Server-Sent Events for one job's changes (jobq_sse.h). */
#include "jobq_sse.h"
#include "jobq_json.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_SILENCE_MS    5000  //  a job not heard of this long is read again
#define S_POLL_MS       100   //  the hub looks at new streams this often
#define S_SIGNATURE     "JOBQ\x01"  //  JOBQ/1 (docs/PROTOCOL.md 3.2)
#define S_SIGNATURE_LEN 5

typedef struct s_stream s_stream_t;

//  One job the hub follows.
typedef struct s_topic {
    char id[JOBQ_ID_LEN + 1];
    char topic[JOBQ_MAX_SHOP_LEN + JOBQ_ID_LEN + 2];  //  "<shop>/<id>"
    uint32_t version;                                 //  of the last state seen
    char *last;        //  that state as an SSE event, or NULL
    bool final;        //  it has ended
    int64_t heard_ms;  //  when the hub last learned of it
    s_stream_t *streams;
    struct s_topic *next;
} s_topic_t;

struct s_stream {
    pthread_mutex_t mu;
    char buf[JOBQ_SSE_BUFFER];  //  owed to the reader
    size_t len, off;
    uint32_t version;  //  the last version sent (or resumed from)
    uint64_t seq;      //  a shop's stream: the last seq sent
    bool of_shop;      //  a shop's stream (all shops with shop "")
    bool final;        //  end once buf is read
    bool overflow;     //  a slow reader: end now
    bool suspended;    //  its connection waits for the hub
    bool gone;         //  the connection closed (MHD freed its side)
    struct MHD_Connection *conn;
    char id[JOBQ_ID_LEN + 1];
    char shop[JOBQ_MAX_SHOP_LEN + 1];
    int refs;          //  MHD's side and the hub's, under mu
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
} s_hub = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Drop one reference to s; the last frees it.
static void
s_unref(s_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
    pthread_mutex_lock(&s_hub.mu);
    s_hub.count--;
    pthread_mutex_unlock(&s_hub.mu);
}

//  Wake s's connection if it sleeps. Under s->mu.
static void
s_wake(s_stream_t *s)
{
    if (s->suspended && !s->gone) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

//  Owe text to s (an event, or a comment). A reader that owes more than
//  the buffer is dropped: it never holds up the hub or anyone else.
static void
s_append(s_stream_t *s, const char *text, bool final)
{
    pthread_mutex_lock(&s->mu);
    size_t n = strlen(text);
    if (s->gone || s->overflow || s->final) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (s->off) {  //  move what is owed to the front
        memmove(s->buf, s->buf + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
    }
    if (s->len + n > sizeof s->buf) {
        s->overflow = true;
    } else {
        memcpy(s->buf + s->len, text, n);
        s->len += n;
        s->final = final;
    }
    s_wake(s);
    pthread_mutex_unlock(&s->mu);
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
    for (s_stream_t *s = t->streams; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        bool newer = v > s->version;
        if (newer)
            s->version = v;
        pthread_mutex_unlock(&s->mu);
        if (newer)
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
        pthread_mutex_lock(&s->mu);
        bool newer = seq > s->seq;
        if (newer)
            s->seq = seq;
        pthread_mutex_unlock(&s->mu);
        if (!newer)
            continue;
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

//  Read job id with STATUS (output and errors included) and deliver it.
static void
s_reread(jobq_client_t *c, s_topic_t *t)
{
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    if (c && jobq_client_status(c, t->id, &info) == JOBQ_OK) {
        json_t *j = jobq_http_job(&info);
        if (j)
            s_deliver(t, j);
        json_decref(j);
    } else {
        t->heard_ms = s_now_ms();  //  try again after the next silence
    }
    jobq_job_info_clear(&info);
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
//  is the first), and gets the last state seen when newer than its own.
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
        if (s->of_shop) {
            //  One subscription per shop stream ("<shop>/" or ""); ZeroMQ
            //  counts repeats, and the sweep takes each back.
            char topic[JOBQ_MAX_SHOP_LEN + 2];
            int tl = snprintf(topic, sizeof topic, "%s%s", s->shop,
                              s->shop[0] ? "/" : "");
            zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, (size_t) tl);
            s->next = s_hub.shops;
            s_hub.shops = s;
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
        if (!t) {
            s_append(s, "", true);
            s_unref(s);
            continue;
        }
        s->next = t->streams;
        t->streams = s;
        pthread_mutex_lock(&s->mu);
        bool newer = t->last && t->version > s->version;
        if (newer)
            s->version = t->version;
        pthread_mutex_unlock(&s->mu);
        if (newer)
            s_append(s, t->last, t->final);
    }
}

//  Let go of streams whose connection closed, and of topics with none.
static void
s_sweep(void *sub)
{
    for (s_stream_t **sp = &s_hub.shops; *sp;) {
        s_stream_t *s = *sp;
        pthread_mutex_lock(&s->mu);
        bool gone = s->gone;
        pthread_mutex_unlock(&s->mu);
        if (!gone) {
            sp = &s->next;
            continue;
        }
        char topic[JOBQ_MAX_SHOP_LEN + 2];
        int tl = snprintf(topic, sizeof topic, "%s%s", s->shop,
                          s->shop[0] ? "/" : "");
        zmq_setsockopt(sub, ZMQ_UNSUBSCRIBE, topic, (size_t) tl);
        *sp = s->next;
        s_unref(s);
    }
    for (s_topic_t **tp = &s_hub.topics; *tp;) {
        s_topic_t *t = *tp;
        for (s_stream_t **sp = &t->streams; *sp;) {
            s_stream_t *s = *sp;
            pthread_mutex_lock(&s->mu);
            bool gone = s->gone;
            pthread_mutex_unlock(&s->mu);
            if (gone) {
                *sp = s->next;
                s_unref(s);
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
s_read_event(void *sub, jobq_client_t *c)
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
                s_reread(c, t);
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
    jobq_client_t *c = jobq_http_client();
    int64_t next_keepalive = s_now_ms() + JOBQ_SSE_KEEPALIVE_S * 1000;
    while (!atomic_load(&s_hub.stop)) {
        s_take_fresh(sub);
        zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
        if (sub && zmq_poll(&it, 1, S_POLL_MS) > 0) {
            for (int i = 0; i < 1024 && (it.revents & ZMQ_POLLIN); i++) {
                s_read_event(sub, c);
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
        int64_t now = s_now_ms();
        for (s_topic_t *t = s_hub.topics; t; t = t->next)
            if (!t->final && now - t->heard_ms > S_SILENCE_MS)
                s_reread(c, t);
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
    //  Stopping: every stream ends after what it is owed.
    s_take_fresh(sub);
    for (s_topic_t *t = s_hub.topics; t; t = t->next)
        for (s_stream_t *s = t->streams; s; s = s->next) {
            pthread_mutex_lock(&s->mu);
            s->final = true;
            s_wake(s);
            pthread_mutex_unlock(&s->mu);
        }
    for (s_stream_t *s = s_hub.shops; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        s->final = true;
        s_wake(s);
        pthread_mutex_unlock(&s->mu);
    }
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
    if (pthread_create(&s_hub.thread, NULL, s_hub_main, NULL) != 0)
        return JOBQ_ENOMEM;
    s_hub.running = true;
    return JOBQ_OK;
}

void
jobq_sse_stop(void)
{
    if (!s_hub.running)
        return;
    atomic_store(&s_hub.stop, true);
    pthread_join(s_hub.thread, NULL);
    s_hub.running = false;
    //  Let the woken streams write their ends (at most a second).
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

//  --- a stream's side in libmicrohttpd ----------------------------------

static ssize_t
s_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    s_stream_t *s = cls;
    pthread_mutex_lock(&s->mu);
    ssize_t rc;
    if (s->len > s->off && !s->overflow) {
        size_t n = s->len - s->off < max ? s->len - s->off : max;
        memcpy(buf, s->buf + s->off, n);
        s->off += n;
        if (s->off == s->len)
            s->off = s->len = 0;
        rc = (ssize_t) n;
    } else if (s->final || s->overflow) {
        rc = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void
s_free(void *cls)
{
    s_stream_t *s = cls;
    pthread_mutex_lock(&s->mu);
    s->gone = true;
    pthread_mutex_unlock(&s->mu);
    s_unref(s);
}

//  A new stream on conn, counted; NULL with *err (503) when there are
//  too many or memory ran out.
static s_stream_t *
s_stream_new(struct MHD_Connection *conn, jobq_http_response_t *err)
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
    pthread_mutex_init(&s->mu, NULL);
    s->conn = conn;
    s->refs = 2;  //  libmicrohttpd's side and the hub's
    return s;
}

//  Answer conn with s's stream; the hub takes s unless it is already
//  over (final). MHD_YES, or MHD_NO with *err (s is then freed).
static enum MHD_Result
s_stream_respond(struct MHD_Connection *conn,
                 s_stream_t *s,
                 bool final,
                 jobq_http_response_t *err)
{
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 4096, s_read, s, s_free);
    if (!r) {
        s->refs = 1;
        s_unref(s);
        err->status = 500;
        err->body = strdup("{\"error\":{\"code\":\"internal\",\"message\":"
                           "\"out of memory\"}}");
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    jobq_http_response_t cors;
    jobq_http_cors(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"),
                   &cors);
    if (cors.cors_origin[0]) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin",
                                cors.cors_origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
    if (final) {
        s->refs = 1;  //  the hub never sees it
    } else {
        pthread_mutex_lock(&s_hub.mu);
        s->next = s_hub.fresh;
        s_hub.fresh = s;
        pthread_mutex_unlock(&s_hub.mu);
    }
    enum MHD_Result q = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return q;
}

enum MHD_Result
jobq_sse_open(struct MHD_Connection *conn,
              const char *id,
              const char *last_event_id,
              const jobq_token_t *who,
              jobq_http_response_t *err)
{
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
    s_stream_t *s = s_stream_new(conn, err);
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
    return s_stream_respond(conn, s, final, err);
}

enum MHD_Result
jobq_sse_open_shop(struct MHD_Connection *conn,
                   const char *shop,
                   const char *last_event_id,
                   jobq_http_response_t *err)
{
    memset(err, 0, sizeof *err);
    s_stream_t *s = s_stream_new(conn, err);
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
    return s_stream_respond(conn, s, false, err);
}
