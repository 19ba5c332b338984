/*  jobq_http.c: the gateway's HTTP API (jobq_http.h, docs/HTTP.md). */
#include "jobq_http.h"
#include "jobq_coalesce.h"
#include "jobq_json.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static jobq_http_config_t s_cfg;
static pthread_key_t s_client_key;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_client_free(void *c)
{
    jobq_client_t *cl = c;
    jobq_client_destroy(&cl);
}

static void
s_make_key(void)
{
    pthread_key_create(&s_client_key, s_client_free);
}

void
jobq_http_init(const jobq_http_config_t *cfg)
{
    s_cfg = *cfg;
    pthread_once(&s_once, s_make_key);
}

void
jobq_http_thread_done(void)
{
    jobq_client_t *c = pthread_getspecific(s_client_key);
    if (c) {
        pthread_setspecific(s_client_key, NULL);
        jobq_client_destroy(&c);
    }
}

jobq_client_t *
jobq_http_client(void)
{
    jobq_client_t *c = pthread_getspecific(s_client_key);
    if (c)
        return c;
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = s_cfg.broker;
    cfg.events = s_cfg.events;
    cfg.timeout_ms = s_cfg.timeout_ms;
    cfg.retries = 0;  //  the HTTP caller retries, with its own key
    cfg.curve = s_cfg.curve;
    c = jobq_client_new(&cfg);
    if (c)
        pthread_setspecific(s_client_key, c);
    return c;
}

//  --- answers ----------------------------------------------------------------

static void
s_json(jobq_http_response_t *res, int status, json_t *j)
{
    res->status = status;
    res->body = j ? jobq_json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (j && !res->body) {
        res->status = 500;
        res->body = strdup("{\"error\":{\"code\":\"internal\",\"message\":"
                           "\"out of memory\"}}");
    }
}

static void s_error(jobq_http_response_t *res,
                    int status,
                    const char *code,
                    const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

static void
s_error(jobq_http_response_t *res,
        int status,
        const char *code,
        const char *fmt,
        ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e =
        json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    s_json(res, status, e);
    if (status == 503)
        res->retry_after = 1;
}

//  A libjobq failure as HTTP: the status, and JOBQ/1's code; msg says why
//  (NULL or "": the code's own words).
static void
s_failed(jobq_http_response_t *res, int rc, const char *msg)
{
    int status;
    switch (rc) {
    case JOBQ_EINVAL:
    case JOBQ_ETYPE:
        status = 400;
        break;
    case JOBQ_ENOTFOUND:
        status = 404;
        break;
    case JOBQ_EFORBIDDEN:
        status = 403;
        break;
    case JOBQ_ESTATE:
        status = 409;
        break;
    case JOBQ_ETOOBIG:
        status = 413;
        break;
    case JOBQ_ERATE:
    case JOBQ_EQUOTA:
        status = 429;
        break;
    case JOBQ_EUNAVAILABLE:
    case JOBQ_ESTOREFULL:
    case JOBQ_ESTORAGE:
    case JOBQ_ETIMEOUT:
        status = 503;
        break;
    default:
        status = 500;
        break;
    }
    //  JOBQ/1's codes (docs/PROTOCOL.md, section 7).
    const char *code = rc == JOBQ_EINVAL       ? "bad_request"
                       : rc == JOBQ_ETYPE      ? "unknown_type"
                       : rc == JOBQ_ENOTFOUND  ? "unknown_job"
                       : rc == JOBQ_EFORBIDDEN ? "forbidden"
                       : rc == JOBQ_ESTATE     ? "invalid_state"
                       : rc == JOBQ_ETOOBIG    ? "too_large"
                       : rc == JOBQ_ERATE      ? "rate_limited"
                       : rc == JOBQ_EQUOTA     ? "quota_exceeded"
                       : rc == JOBQ_ESTOREFULL ? "storage_full"
                       : rc == JOBQ_ESTORAGE   ? "storage_error"
                       : rc == JOBQ_EUNAVAILABLE || rc == JOBQ_ETIMEOUT
                           ? "unavailable"
                           : "internal";
    s_error(res, status, code, "%s", msg && msg[0] ? msg : jobq_strerror(rc));
}

void
jobq_http_failed(jobq_http_response_t *res, jobq_client_t *c, int rc)
{
    s_failed(res, rc, c ? jobq_client_last_error(c) : "");
}

//  --- the job in JSON --------------------------------------------------------

//  ms since the epoch as ISO 8601 UTC with milliseconds; null for 0.
static json_t *
s_iso(json_int_t ms)
{
    if (ms <= 0)
        return json_null();
    time_t s = (time_t) (ms / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm))
        return json_null();
    char buf[40];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03dZ", (int) (ms % 1000));
    return json_string(buf);
}

//  snake_case to camelCase, with the names the original design uses.
static void
s_camel(const char *k, char *out, size_t cap)
{
    if (strcmp(k, "timeout") == 0) {
        snprintf(out, cap, "timeoutMs");
        return;
    }
    size_t n = 0;
    bool up = false;
    for (; *k && n + 1 < cap; k++) {
        if (*k == '_') {
            up = true;
            continue;
        }
        out[n++] = up ? (char) toupper((unsigned char) *k) : *k;
        up = false;
    }
    out[n] = '\0';
}

static bool
s_is_time(const char *k)
{
    size_t n = strlen(k);
    return (n > 3 && strcmp(k + n - 3, "_at") == 0) ||
           strcmp(k, "lease_until") == 0 || strcmp(k, "until") == 0;
}

json_t *
jobq_http_job(const jobq_job_info_t *info)
{
    return jobq_http_camel(jobq_json_job(info));
}

json_t *
jobq_http_camel(json_t *snake)
{
    json_t *o = json_object();
    if (!snake || !o) {
        json_decref(snake);
        json_decref(o);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(snake, k, v)
    {
        char name[64];
        s_camel(k, name, sizeof name);
        if (strcmp(k, "wait") == 0 && json_is_object(v)) {
            json_t *w = json_object();
            json_object_set(w, "reason", json_object_get(v, "reason"));
            json_object_set_new(
                w, "until",
                s_iso(json_integer_value(json_object_get(v, "until"))));
            json_object_set_new(o, "wait", w);
        } else if (s_is_time(k)) {
            json_object_set_new(o, name, s_iso(json_integer_value(v)));
        } else if (strcmp(k, "errors") == 0 && json_is_array(v)) {
            //  {attempt, error, at}: at in ISO like every time
            json_t *a = json_array();
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                json_t *c = json_deep_copy(e);
                if (json_is_object(c) && json_object_get(c, "at"))
                    json_object_set_new(
                        c, "at",
                        s_iso(json_integer_value(json_object_get(c, "at"))));
                json_array_append_new(a, c);
            }
            json_object_set_new(o, name, a);
        } else {
            json_object_set(o, name, v);
        }
    }
    json_decref(snake);
    return o;
}

//  --- requests ---------------------------------------------------------------

//  The body as one JSON object, or an error answered. NULL then.
static json_t *
s_body(const jobq_http_request_t *req, jobq_http_response_t *res)
{
    const char *ct = req->content_type ? req->content_type : "";
    if (strncmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        s_error(res, 415, "unsupported_media_type",
                "send the body as application/json");
        return NULL;
    }
    json_error_t je;
    json_t *j =
        json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        s_error(res, 400, "bad_request", "body: %s (line %d, column %d)",
                je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        s_error(res, 400, "bad_request", "body: expected a JSON object");
        return NULL;
    }
    return j;
}

//  An integer field of o into *out when present; false (error answered)
//  when it is not an integer within [min, max].
static bool
s_int_field(json_t *o,
            const char *name,
            long long min,
            long long max,
            long long *out,
            const char *prefix,
            jobq_http_response_t *res)
{
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        s_error(res, 400, "bad_request",
                "%s%s: a whole number from %lld to %lld", prefix, name, min,
                max);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

//  One job's fields from o into e (strings point into o; input into w).
static bool
s_enqueue_fields(json_t *o,
                 jobq_enqueue_t *e,
                 jobq_mp_writer_t *w,
                 const char *prefix,
                 jobq_http_response_t *res)
{
    static const char *const known[] = {"type",      "shopId",  "input",
                                        "priority",  "delayMs", "maxAttempts",
                                        "timeoutMs", "key",     NULL};
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok) {
            s_error(res, 400, "bad_request", "%sunknown field '%.64s'", prefix,
                    k);
            return false;
        }
    }
    memset(e, 0, sizeof *e);
    e->type = json_string_value(json_object_get(o, "type"));
    e->shop_id = json_string_value(json_object_get(o, "shopId"));
    if (!e->type || !e->shop_id) {
        s_error(res, 400, "bad_request",
                "%stype and shopId are required strings", prefix);
        return false;
    }
    json_t *key = json_object_get(o, "key");
    if (key && !json_is_null(key) && !json_is_string(key)) {
        s_error(res, 400, "bad_request", "%skey: a string", prefix);
        return false;
    }
    e->key = json_string_value(key);
    long long prio = 0, delay = 0, attempts = 0, timeout = 0;
    if (!s_int_field(o, "priority", -1000, 1000, &prio, prefix, res) ||
        !s_int_field(o, "delayMs", 0, 31536000000ll, &delay, prefix, res) ||
        !s_int_field(o, "maxAttempts", 1, 100, &attempts, prefix, res) ||
        !s_int_field(o, "timeoutMs", 0, 86400000ll * 7, &timeout, prefix, res))
        return false;
    e->priority = (int32_t) prio;
    e->delay_ms = (uint64_t) delay;
    e->max_attempts = (uint32_t) attempts;
    e->timeout_ms = (uint64_t) timeout;
    json_t *input = json_object_get(o, "input");
    if (input && !json_is_null(input)) {
        if (!json_is_object(input)) {
            s_error(res, 400, "bad_request", "%sinput: a JSON object", prefix);
            return false;
        }
        char *text = json_dumps(input, JSON_COMPACT);
        char why[200] = "";
        size_t at = w->len;
        int rc = text ? jobq_json_to_mp(text, w, why, sizeof why) : JOBQ_ENOMEM;
        free(text);
        if (rc != JOBQ_OK) {
            s_error(res, rc == JOBQ_ETOOBIG ? 413 : 400,
                    rc == JOBQ_ETOOBIG ? "too_large" : "bad_request",
                    "%sinput: %s", prefix, why[0] ? why : jobq_strerror(rc));
            return false;
        }
        //  Offsets, for the writer may move while more jobs are added.
        e->input.ptr = (const uint8_t *) (uintptr_t) at;
        e->input.len = w->len - at;
    }
    return true;
}

//  The token of the request being answered (NULL: no tokens asked).
static __thread const jobq_token_t *s_who;

//  A job of shop the token may touch; otherwise a 403 naming it.
static bool
s_shop_allowed(const char *shop, const char *prefix, jobq_http_response_t *res)
{
    if (!s_who || jobq_token_shop(s_who, shop, strlen(shop)))
        return true;
    s_error(res, 403, "forbidden", "%sthis token may not use shop %.128s",
            prefix, shop);
    return false;
}

static void
s_post_job(const jobq_http_request_t *req, jobq_http_response_t *res)
{
    json_t *o = s_body(req, res);
    if (!o)
        return;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, JOBQ_MAX_FRAME_BYTES);
    jobq_enqueue_t e;
    if (s_enqueue_fields(o, &e, &w, "", res) &&
        s_shop_allowed(e.shop_id, "", res)) {
        if (e.input.len)
            e.input.ptr = w.data + (uintptr_t) e.input.ptr;
        if (req->idem_key && !e.key)
            e.key = req->idem_key;
        //  With the other requests of the moment, as one batch.
        char id[JOBQ_ID_LEN + 1], why[256] = "";
        bool created = false;
        int rc = jobq_coalesce_enqueue(&e, 2 * s_cfg.timeout_ms + 1000, id,
                                       &created, why, sizeof why);
        if (rc == JOBQ_OK)
            s_json(res, created ? 201 : 200,
                   json_pack("{s:s,s:b}", "id", id, "created", created));
        else
            s_failed(res, rc, why);
    }
    jobq_mp_writer_fini(&w);
    json_decref(o);
}

static void
s_post_batch(const jobq_http_request_t *req, jobq_http_response_t *res)
{
    json_t *o = s_body(req, res);
    if (!o)
        return;
    json_t *jobs = json_object_get(o, "jobs");
    size_t n = json_array_size(jobs);
    if (!json_is_array(jobs) || n < 1 || n > JOBQ_MAX_BATCH) {
        json_decref(o);
        s_error(res, 400, "bad_request", "jobs: an array of 1 to %d jobs",
                JOBQ_MAX_BATCH);
        return;
    }
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, JOBQ_MAX_FRAME_BYTES);
    jobq_enqueue_t *reqs = calloc(n, sizeof *reqs);
    char(*ids)[JOBQ_ID_LEN + 1] = calloc(n, sizeof *ids);
    bool *created = calloc(n, sizeof *created);
    bool ok = reqs && ids && created;
    for (size_t i = 0; ok && i < n; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "jobs[%zu]: ", i);
        json_t *one = json_array_get(jobs, i);
        if (!json_is_object(one)) {
            s_error(res, 400, "bad_request", "%sa JSON object", prefix);
            ok = false;
        } else {
            ok = s_enqueue_fields(one, &reqs[i], &w, prefix, res) &&
                 s_shop_allowed(reqs[i].shop_id, prefix, res);
        }
    }
    if (ok) {
        for (size_t i = 0; i < n; i++)
            if (reqs[i].input.len)
                reqs[i].input.ptr = w.data + (uintptr_t) reqs[i].input.ptr;
        jobq_client_t *c = jobq_http_client();
        int rc = c ? jobq_client_enqueue_batch(c, reqs, n, ids, created)
                   : JOBQ_EUNAVAILABLE;
        if (rc == JOBQ_OK) {
            json_t *a = json_array(), *b = json_array();
            for (size_t i = 0; i < n; i++) {
                json_array_append_new(a, json_string(ids[i]));
                json_array_append_new(b, json_boolean(created[i]));
            }
            s_json(res, 201, json_pack("{s:o,s:o}", "ids", a, "created", b));
        } else {
            jobq_http_failed(res, c, rc);
        }
    } else if (!reqs || !ids || !created) {
        s_error(res, 500, "internal", "out of memory");
    }
    free(reqs);
    free(ids);
    free(created);
    jobq_mp_writer_fini(&w);
    json_decref(o);
}

//  GET, cancel or retry of one job.
static void
s_one_job(const char *id, int what, jobq_http_response_t *res)
{
    jobq_client_t *c = jobq_http_client();
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    if (c && s_who && !s_who->all_shops) {
        //  Another shop's job is no job at all to this token: looked at
        //  before anything is done to it.
        int src = jobq_client_status(c, id, &info);
        bool mine = src == JOBQ_OK &&
                    jobq_token_shop(s_who, info.shop_id, strlen(info.shop_id));
        jobq_job_info_clear(&info);
        if (src != JOBQ_OK && src != JOBQ_ENOTFOUND) {
            jobq_http_failed(res, c, src);
            return;
        }
        if (!mine) {
            s_error(res, 404, "unknown_job", "no job %s", id);
            return;
        }
    }
    int rc = !c          ? JOBQ_EUNAVAILABLE
             : what == 0 ? jobq_client_status(c, id, &info)
             : what == 1 ? jobq_client_cancel(c, id, &info)
                         : jobq_client_retry(c, id, &info);
    if (rc == JOBQ_OK) {
        json_t *j = jobq_http_job(&info);
        if (j)
            s_json(res, 200, j);
        else
            s_error(res, 500, "internal", "out of memory");
    } else {
        jobq_http_failed(res, c, rc);
    }
    jobq_job_info_clear(&info);
}

//  The value of name in a query string, decoded into out; false if absent.
static bool
s_param(const char *query, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t) (amp - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t n = 0;
            for (size_t i = nl + 1; i < len && n + 1 < cap; i++) {
                char ch = p[i];
                if (ch == '%' && i + 2 < len &&
                    isxdigit((unsigned char) p[i + 1]) &&
                    isxdigit((unsigned char) p[i + 2])) {
                    char hex[3] = {p[i + 1], p[i + 2], 0};
                    ch = (char) strtol(hex, NULL, 16);
                    i += 2;
                } else if (ch == '+') {
                    ch = ' ';
                }
                out[n++] = ch;
            }
            out[n] = '\0';
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

static void
s_list(const jobq_http_request_t *req, jobq_http_response_t *res)
{
    char shop[JOBQ_MAX_SHOP_LEN + 1] = "", type[JOBQ_MAX_TYPE_LEN + 1] = "",
                                  status[32] = "", limit[16] = "",
                                  cursor[JOBQ_ID_LEN + 2] = "";
    s_param(req->query, "shop", shop, sizeof shop);
    s_param(req->query, "type", type, sizeof type);
    s_param(req->query, "status", status, sizeof status);
    s_param(req->query, "cursor", cursor, sizeof cursor);
    jobq_list_t q;
    memset(&q, 0, sizeof q);
    q.shop_id = shop[0] ? shop : NULL;
    q.type = type[0] ? type : NULL;
    q.status = -1;
    q.limit = 50;
    if (status[0]) {
        q.status = jobq_status_parse(status, strlen(status));
        if (q.status < 0) {
            s_error(res, 400, "bad_request",
                    "status: one of pending, running, completed, failed, "
                    "cancelled");
            return;
        }
    }
    if (s_param(req->query, "limit", limit, sizeof limit)) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (!limit[0] || *end || v < 1 || v > JOBQ_MAX_LIST) {
            s_error(res, 400, "bad_request", "limit: 1 to %d", JOBQ_MAX_LIST);
            return;
        }
        q.limit = (uint32_t) v;
    }
    q.cursor = cursor[0] ? cursor : NULL;
    if (s_who && !s_who->all_shops) {
        if (!shop[0] && s_who->nshops == 1)
            q.shop_id = s_who->shops[0];
        else if (!shop[0]) {
            s_error(res, 400, "bad_request",
                    "give shop=: this token has several shops");
            return;
        } else if (!jobq_token_shop(s_who, shop, strlen(shop))) {
            s_json(res, 200, json_pack("{s:[],s:n}", "jobs", "next"));  //  none
            return;
        }
    }
    jobq_client_t *c = jobq_http_client();
    jobq_job_info_t *jobs = NULL;
    size_t n = 0;
    char next[JOBQ_ID_LEN + 1] = "";
    int rc = c ? jobq_client_list(c, &q, &jobs, &n, next) : JOBQ_EUNAVAILABLE;
    if (rc != JOBQ_OK) {
        jobq_http_failed(res, c, rc);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, jobq_http_job(&jobs[i]));
    jobq_job_list_free(&jobs, n);
    s_json(res, 200,
           json_pack("{s:o,s:o}", "jobs", a, "next",
                     next[0] ? json_string(next) : json_null()));
}

//  The broker's STATS as JSON (without rid), or NULL with res answered
//  (the broker's failure, or 502 for a reply that cannot be read).
static json_t *
s_stats_json(jobq_http_response_t *res)
{
    jobq_client_t *c = jobq_http_client();
    jobq_bytes_t body = {NULL, 0};
    int rc = c ? jobq_client_stats(c, &body) : JOBQ_EUNAVAILABLE;
    if (rc != JOBQ_OK) {
        jobq_http_failed(res, c, rc);
        return NULL;
    }
    json_t *st = jobq_json_from_mp(body);
    free((void *) body.ptr);
    if (!json_is_object(st)) {
        json_decref(st);
        s_error(res, 502, "internal",
                "the broker's stats reply is not readable");
        return NULL;
    }
    json_object_del(st, "rid");
    return st;
}

//  GET /v1/workers: the workers part of STATS, each with when it was
//  last heard from.
static void
s_workers(jobq_http_response_t *res)
{
    json_t *st = s_stats_json(res);
    if (!st)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_int_t now = (json_int_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    json_t *ws = json_array();
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(st, "workers"), i, w)
    {
        json_int_t seen = json_integer_value(json_object_get(w, "seen_ms"));
        json_array_append_new(
            ws, json_pack("{s:O,s:O,s:O,s:O,s:I,s:o}", "name",
                          json_object_get(w, "name"), "types",
                          json_object_get(w, "types"), "capacity",
                          json_object_get(w, "capacity"), "active",
                          json_object_get(w, "active"), "seenMs", seen,
                          "lastSeenAt", s_iso(now - seen)));
    }
    s_json(res, 200,
           json_pack("{s:o,s:O,s:O}", "workers", ws, "capacity",
                     json_object_get(st, "capacity"), "busy",
                     json_object_get(st, "busy")));
    json_decref(st);
}

//  GET /v1/stats, or for /readyz only whether the broker answers.
static void
s_stats(jobq_http_response_t *res, bool ready_only)
{
    json_t *st = s_stats_json(res);
    if (!st)
        return;
    if (ready_only) {
        json_decref(st);
        st = json_pack("{s:b}", "ready", 1);
    }
    s_json(res, 200, st);
}

//  --- /metrics ---------------------------------------------------------------

typedef struct {
    char *p;
    size_t len, cap;
    bool failed;
} s_text_t;

static void s_put(s_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
s_put(s_text_t *t, const char *fmt, ...)
{
    for (int round = 0; round < 2 && !t->failed; round++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL,
                          t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->p && t->len + (size_t) n < t->cap) {
            t->len += (size_t) n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t) n;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

//  A label value as Prometheus wants it: \, \" and \n escaped.
static void
s_label(s_text_t *t, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            s_put(t, "\\%c", *v);
        else if (*v == '\n')
            s_put(t, "\\n");
        else
            s_put(t, "%c", *v);
    }
}

//  GET /metrics: the broker's STATS in Prometheus' text format.
static void
s_metrics(jobq_http_response_t *res)
{
    jobq_http_response_t down;  //  the broker's failure: only jobq_up 0
    memset(&down, 0, sizeof down);
    json_t *st = s_stats_json(&down);
    free(down.body);
    s_text_t t = {NULL, 0, 0, false};
    s_put(&t,
          "# HELP jobq_up 1 when the broker answered this scrape.\n"
          "# TYPE jobq_up gauge\njobq_up %d\n",
          st != NULL);
    if (st) {
        s_put(&t, "# HELP jobq_jobs Jobs stored, by type and state.\n"
                  "# TYPE jobq_jobs gauge\n");
        const char *type;
        json_t *row;
        json_object_foreach(json_object_get(st, "counts"), type, row)
        {
            const char *state;
            json_t *n;
            json_object_foreach(row, state, n)
            {
                s_put(&t, "jobq_jobs{type=\"");
                s_label(&t, type);
                s_put(&t, "\",state=\"");
                s_label(&t, state);
                s_put(&t, "\"} %lld\n", (long long) json_integer_value(n));
            }
        }
        s_put(&t, "# HELP jobq_events_total Job events since the broker "
                  "started.\n# TYPE jobq_events_total counter\n");
        const char *name;
        json_t *n;
        json_object_foreach(json_object_get(st, "counters"), name, n)
        {
            s_put(&t, "jobq_events_total{event=\"");
            s_label(&t, name);
            s_put(&t, "\"} %lld\n", (long long) json_integer_value(n));
        }
        s_put(&t, "# HELP jobq_refused_total Messages the broker refused, "
                  "by cause.\n# TYPE jobq_refused_total counter\n");
        json_object_foreach(json_object_get(st, "refused"), name, n)
        {
            s_put(&t, "jobq_refused_total{cause=\"");
            s_label(&t, name);
            s_put(&t, "\"} %lld\n", (long long) json_integer_value(n));
        }
        s_put(&t,
              "# HELP jobq_workers Workers registered (the first 100).\n"
              "# TYPE jobq_workers gauge\njobq_workers %zu\n"
              "# HELP jobq_capacity Attempts the workers take at once.\n"
              "# TYPE jobq_capacity gauge\njobq_capacity %lld\n"
              "# HELP jobq_busy Attempts the workers hold.\n"
              "# TYPE jobq_busy gauge\njobq_busy %lld\n",
              json_array_size(json_object_get(st, "workers")),
              (long long) json_integer_value(json_object_get(st, "capacity")),
              (long long) json_integer_value(json_object_get(st, "busy")));
        s_put(&t, "# HELP jobq_oldest_pending_seconds How long the oldest "
                  "job ready to run has waited, by type.\n"
                  "# TYPE jobq_oldest_pending_seconds gauge\n");
        json_object_foreach(json_object_get(st, "oldest"), name, n)
        {
            s_put(&t, "jobq_oldest_pending_seconds{type=\"");
            s_label(&t, name);
            s_put(&t, "\"} %.3f\n", (double) json_integer_value(n) / 1000);
        }
        //  The broker's buckets are not cumulative; Prometheus' are.
        json_t *h = json_object_get(st, "commit_us");
        json_t *le = json_object_get(h, "le"),
               *cnt = json_object_get(h, "counts");
        if (json_array_size(cnt) == json_array_size(le) + 1) {
            s_put(&t, "# HELP jobq_commit_seconds How long the broker's "
                      "commits that wrote took (fsync included).\n"
                      "# TYPE jobq_commit_seconds histogram\n");
            long long sum = 0;
            for (size_t b = 0; b <= json_array_size(le); b++) {
                sum += json_integer_value(json_array_get(cnt, b));
                if (b < json_array_size(le))
                    s_put(&t, "jobq_commit_seconds_bucket{le=\"%g\"} %lld\n",
                          (double) json_integer_value(json_array_get(le, b)) /
                              1e6,
                          sum);
                else
                    s_put(
                        &t,
                        "jobq_commit_seconds_bucket{le=\"+Inf\"} %lld\n"
                        "jobq_commit_seconds_sum %.6f\n"
                        "jobq_commit_seconds_count %lld\n",
                        sum,
                        (double) json_integer_value(json_object_get(h, "sum")) /
                            1e6,
                        sum);
            }
        }
        json_decref(st);
    }
    if (t.failed) {
        free(t.p);
        s_error(res, 500, "internal", "out of memory");
        return;
    }
    res->status = 200;
    res->body = t.p;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

const char *
jobq_http_cors(const char *origin)
{
    for (int i = 0; origin && i < JOBQ_HTTP_MAX_CORS && s_cfg.cors[i]; i++)
        if (strcmp(s_cfg.cors[i], origin) == 0)
            return s_cfg.cors[i];
    return NULL;
}

static bool
s_method(const jobq_http_request_t *req,
         const char *want,
         jobq_http_response_t *res)
{
    if (strcmp(req->method, want) == 0)
        return true;
    res->allow = want;
    s_error(res, 405, "method_not_allowed", "%s takes %s only", req->path,
            want);
    return false;
}

void
jobq_http_handle(const jobq_http_request_t *req, jobq_http_response_t *res)
{
    memset(res, 0, sizeof *res);
    if (strcmp(req->method, "OPTIONS") == 0) {
        res->status = 204;
        res->preflight = jobq_http_cors(req->origin) != NULL;
        res->allow = "GET, POST, OPTIONS";
        return;
    }
    const char *p = req->path;
    if (strcmp(p, "/healthz") == 0) {
        if (s_method(req, "GET", res))
            s_json(res, 200, json_pack("{s:b}", "ok", 1));
        return;
    }
    s_who = NULL;
    if (s_cfg.tokens) {
        s_who = jobq_tokens_check_request(s_cfg.tokens, req->authorization,
                                          req->cookie);
        if (!s_who) {
            res->challenge = true;
            s_error(res, 401, "unauthorized",
                    "send Authorization: Bearer <token> with a token of the "
                    "gateway's --tokens file");
            return;
        }
        int wait_s = 1;
        if (!jobq_tokens_take(s_cfg.tokens, s_who, s_cfg.token_rate, &wait_s)) {
            res->retry_after = wait_s;
            s_error(res, 429, "rate_limited",
                    "this token made more requests than its rate allows; "
                    "wait %d s",
                    wait_s);
            return;
        }
        bool admin_only = strcmp(p, "/metrics") == 0 ||
                          strcmp(p, "/v1/stats") == 0 ||
                          strcmp(p, "/v1/workers") == 0;
        bool writes = strcmp(req->method, "POST") == 0;
        if ((admin_only && s_who->role != JOBQ_TOKEN_ADMIN) ||
            (writes && s_who->role < JOBQ_TOKEN_WRITE)) {
            s_error(res, 403, "forbidden",
                    "this token's role (%s) may not do this",
                    s_who->role == JOBQ_TOKEN_READ    ? "read"
                    : s_who->role == JOBQ_TOKEN_WRITE ? "write"
                                                      : "admin");
            return;
        }
    }
    if (strcmp(p, "/readyz") == 0) {
        if (s_method(req, "GET", res))
            s_stats(res, true);
        return;
    }
    if (strcmp(p, "/metrics") == 0) {
        if (s_method(req, "GET", res))
            s_metrics(res);
        return;
    }
    if (strcmp(p, "/v1/stats") == 0) {
        if (s_method(req, "GET", res))
            s_stats(res, false);
        return;
    }
    if (strcmp(p, "/v1/workers") == 0) {
        if (s_method(req, "GET", res))
            s_workers(res);
        return;
    }
    if (strcmp(p, "/v1/jobs") == 0) {
        if (strcmp(req->method, "GET") == 0)
            s_list(req, res);
        else if (strcmp(req->method, "POST") == 0)
            s_post_job(req, res);
        else {
            res->allow = "GET, POST";
            s_error(res, 405, "method_not_allowed",
                    "/v1/jobs takes GET and POST");
        }
        return;
    }
    if (strcmp(p, "/v1/jobs/batch") == 0) {
        if (s_method(req, "POST", res))
            s_post_batch(req, res);
        return;
    }
    if (strncmp(p, "/v1/jobs/", 9) == 0) {
        const char *id = p + 9;
        const char *slash = strchr(id, '/');
        size_t idlen = slash ? (size_t) (slash - id) : strlen(id);
        char idbuf[JOBQ_ID_LEN + 1];
        uint64_t v;
        if (idlen != JOBQ_ID_LEN || jobq_id_parse(id, idlen, &v) != JOBQ_OK) {
            s_error(res, 404, "unknown_job",
                    "no job %.40s (an id is 16 lowercase hex digits)", id);
            return;
        }
        memcpy(idbuf, id, idlen);
        idbuf[idlen] = '\0';
        if (!slash) {
            if (s_method(req, "GET", res))
                s_one_job(idbuf, 0, res);
            return;
        }
        if (strcmp(slash, "/cancel") == 0 || strcmp(slash, "/retry") == 0) {
            if (s_method(req, "POST", res))
                s_one_job(idbuf, slash[1] == 'c' ? 1 : 2, res);
            return;
        }
    }
    s_error(res, 404, "not_found", "no such endpoint: %.200s", p);
}
