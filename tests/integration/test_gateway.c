/*  test_gateway.c: jobq-gateway between a real broker and worker and
    libcurl, on loopback ports: every endpoint and every error it answers.
*/
#include "jobq_test.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *dir;
    jobq_test_broker_t b;
    pid_t worker;
    pid_t gateway;
    char base[64];  //  http://127.0.0.1:PORT
} s_fx_t;

typedef struct {
    char *data;
    size_t len;
} s_buf_t;

static size_t
s_collect(char *p, size_t size, size_t n, void *arg)
{
    s_buf_t *b = arg;
    size_t add = size * n;
    char *d = realloc(b->data, b->len + add + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, add);
    b->data = d;
    b->len += add;
    d[b->len] = '\0';
    return add;
}

//  One request. *body_out (JSON, or NULL) and the response headers in
//  *head (free both). Returns the status, 0 when none came.
static long
s_http(const char *method,
       const char *url,
       const char *const *headers,
       const char *body,
       size_t body_len,
       json_t **body_out,
       char **head)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    for (int i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    s_buf_t rb = {NULL, 0}, hb = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rb);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) body_len);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (body_out) {
        json_error_t je;
        *body_out = rb.data ? json_loads(rb.data, 0, &je) : NULL;
    }
    free(rb.data);
    if (head)
        *head = hb.data;
    else
        free(hb.data);
    return status;
}

static long
s_call(s_fx_t *fx,
       const char *method,
       const char *path,
       const char *json,
       json_t **out)
{
    char url[600];
    snprintf(url, sizeof url, "%s%s", fx->base, path);
    const char *const h[] = {"Content-Type: application/json", NULL};
    return s_http(method, url, json ? h : NULL, json, json ? strlen(json) : 0,
                  out, NULL);
}

static const char *
s_code(json_t *j)
{
    return json_string_value(
        json_object_get(json_object_get(j, "error"), "code"));
}

static bool
s_gateway_up(void *arg)
{
    s_fx_t *fx = arg;
    return s_call(fx, "GET", "/healthz", NULL, NULL) == 200;
}

static int
s_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_fx_t *fx = calloc(1, sizeof *fx);
    fx->dir = jobq_test_tmpdir();
    fx->b.pid = -1;
    if (jobq_test_broker_start(&fx->b, fx->dir, NULL) != 0)
        return -1;
    const char *wargs[] = {"--types", "sleep,noop,fail", NULL};
    fx->worker = jobq_test_worker_start(&fx->b, wargs);
    int port = jobq_test_free_port();
    snprintf(fx->base, sizeof fx->base, "http://127.0.0.1:%d", port);
    char listen[64], bin[1024], log[600];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-gateway"));
    snprintf(log, sizeof log, "%s/gateway.log", fx->dir);
    char *argv[] = {bin,
                    "--listen",
                    listen,
                    "--broker",
                    fx->b.clients,
                    "--events",
                    fx->b.events,
                    "--cors",
                    "http://app.example",
                    "--timeout-ms",
                    "1000",
                    NULL};
    fx->gateway = jobq_test_spawn(argv, log);
    *state = fx;
    if (fx->gateway < 0 || !jobq_test_wait_until(s_gateway_up, fx, 10000)) {
        jobq_test_log_tail(log);
        return -1;
    }
    return 0;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    if (fx->gateway > 0)
        jobq_test_stop(fx->gateway, SIGTERM, 5000);
    if (fx->worker > 0)
        jobq_test_stop(fx->worker, SIGTERM, 5000);
    jobq_test_broker_stop(&fx->b, SIGTERM);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    curl_global_cleanup();
    return 0;
}

//  GET the job until its status is want (10 s at most); the job, or NULL.
static json_t *
s_wait_status(s_fx_t *fx, const char *id, const char *want)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    for (int i = 0; i < 200; i++) {
        json_t *j = NULL;
        if (s_call(fx, "GET", path, NULL, &j) == 200 &&
            strcmp(json_string_value(json_object_get(j, "status")), want) == 0)
            return j;
        json_decref(j);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void
test_gateway_enqueue_read_and_list(void **state)
{
    s_fx_t *fx = *state;
    json_t *j = NULL;
    assert_int_equal(s_call(fx, "POST", "/v1/jobs",
                            "{\"type\":\"sleep\",\"shopId\":\"shop-1\","
                            "\"input\":{\"ms\":100},\"priority\":3}",
                            &j),
                     201);
    char id[32];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    assert_int_equal(strlen(id), 16);
    assert_true(json_is_true(json_object_get(j, "created")));
    json_decref(j);
    json_t *job = s_wait_status(fx, id, "completed");
    assert_non_null(job);
    //  The original design's names, and ISO 8601 times.
    assert_string_equal(json_string_value(json_object_get(job, "shopId")),
                        "shop-1");
    assert_int_equal(json_integer_value(json_object_get(job, "progress")), 100);
    assert_int_equal(json_integer_value(json_object_get(job, "maxAttempts")),
                     3);
    assert_int_equal(json_integer_value(json_object_get(job, "priority")), 3);
    const char *done = json_string_value(json_object_get(job, "completedAt"));
    assert_non_null(done);
    assert_int_equal(strlen(done), 24);  //  2026-12-07T19:20:42.052Z
    assert_int_equal(done[10], 'T');
    assert_int_equal(done[23], 'Z');
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(job, "output"), "slept_ms")),
                     100);
    json_decref(job);
    //  Idempotency-Key: the same job again, 200 and not created.
    const char *const h[] = {"Content-Type: application/json",
                             "Idempotency-Key: order-7", NULL};
    char url[600];
    snprintf(url, sizeof url, "%s/v1/jobs", fx->base);
    const char *b = "{\"type\":\"noop\",\"shopId\":\"shop-2\"}";
    json_t *a1 = NULL, *a2 = NULL;
    assert_int_equal(s_http("POST", url, h, b, strlen(b), &a1, NULL), 201);
    assert_int_equal(s_http("POST", url, h, b, strlen(b), &a2, NULL), 200);
    assert_string_equal(json_string_value(json_object_get(a1, "id")),
                        json_string_value(json_object_get(a2, "id")));
    assert_true(json_is_false(json_object_get(a2, "created")));
    json_decref(a1);
    json_decref(a2);
    //  A batch.
    assert_int_equal(
        s_call(
            fx, "POST", "/v1/jobs/batch",
            "{\"jobs\":[{\"type\":\"noop\",\"shopId\":\"shop-2\"},"
            "{\"type\":\"noop\",\"shopId\":\"shop-2\",\"input\":{\"a\":1}}]}",
            &j),
        201);
    assert_int_equal(json_array_size(json_object_get(j, "ids")), 2);
    json_decref(j);
    //  LIST: shop-2's three, a page of two then one.
    assert_int_equal(
        s_call(fx, "GET", "/v1/jobs?shop=shop-2&limit=2", NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 2);
    const char *next = json_string_value(json_object_get(j, "next"));
    assert_non_null(next);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs?shop=shop-2&limit=2&cursor=%s", next);
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", path, NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 1);
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", "/v1/stats", NULL, &j), 200);
    assert_non_null(json_object_get(j, "totals"));
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", "/v1/workers", NULL, &j), 200);
    json_t *w0 = json_array_get(json_object_get(j, "workers"), 0);
    assert_non_null(w0);
    assert_non_null(json_object_get(w0, "types"));
    //  Heard from within the last heartbeats, and when that was.
    assert_true(json_integer_value(json_object_get(w0, "seenMs")) < 3000);
    assert_int_equal(
        strlen(json_string_value(json_object_get(w0, "lastSeenAt"))), 24);
    assert_int_equal(json_integer_value(json_object_get(j, "capacity")), 4);
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", "/readyz", NULL, NULL), 200);
    //  /metrics: Prometheus text, from the broker's STATS.
    char *head = NULL;
    snprintf(url, sizeof url, "%s/metrics", fx->base);
    CURL *c = curl_easy_init();
    s_buf_t mb = {NULL, 0}, hb = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &mb);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    head = hb.data;
    assert_int_equal(status, 200);
    assert_non_null(strstr(head, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(mb.data, "\njobq_up 1\n"));
    assert_non_null(strstr(mb.data, "jobq_jobs{type=\"sleep\",state="
                                    "\"completed\"} 1\n"));
    assert_non_null(
        strstr(mb.data, "jobq_events_total{event=\"enqueued\"} 4\n"));
    assert_non_null(strstr(mb.data, "# TYPE jobq_events_total counter\n"));
    //  The commit histogram is cumulative and ends in +Inf = count.
    assert_non_null(strstr(mb.data, "# TYPE jobq_commit_seconds histogram\n"));
    const char *inf =
        strstr(mb.data, "jobq_commit_seconds_bucket{le=\"+Inf\"} ");
    const char *cnt = strstr(mb.data, "jobq_commit_seconds_count ");
    assert_non_null(inf);
    assert_non_null(cnt);
    long ninf = atol(inf + strlen("jobq_commit_seconds_bucket{le=\"+Inf\"} "));
    assert_true(ninf >= 4);  //  at least the four enqueues' commits
    assert_int_equal(ninf, atol(cnt + strlen("jobq_commit_seconds_count ")));
    assert_non_null(
        strstr(mb.data, "# TYPE jobq_oldest_pending_seconds gauge\n"));
    free(mb.data);
    //  The gateway's log says it serves, and nothing of libmicrohttpd's
    //  own (its option warnings, an 'internal error' per ended stream).
    char logpath[600], text[4096] = "";
    snprintf(logpath, sizeof logpath, "%s/gateway.log", fx->dir);
    FILE *lf = fopen(logpath, "r");
    assert_non_null(lf);
    size_t got = fread(text, 1, sizeof text - 1, lf);
    text[got] = '\0';
    fclose(lf);
    assert_non_null(strstr(text, "serving http://"));
    assert_null(strstr(text, "MHD_OPTION"));
    assert_null(strstr(text, "internal error"));
    free(head);
}

typedef struct {
    s_fx_t *fx;
    int n;  //  this thread's index
    char ids[25][32];
    long status[25];
} s_poster_t;

//  25 POSTs: every fifth a type the broker refuses (a space in it), and
//  job 3 of every thread with the key "same".
static void *
s_post_many(void *arg)
{
    s_poster_t *p = arg;
    for (int i = 0; i < 25; i++) {
        char body[200];
        snprintf(body, sizeof body,
                 "{\"type\":\"%s\",\"shopId\":\"s\",\"delayMs\":600000"
                 "%s}",
                 i % 5 == 4 ? "bad type" : "noop",
                 i == 3 ? ",\"key\":\"same\"" : "");
        json_t *j = NULL;
        p->status[i] = s_call(p->fx, "POST", "/v1/jobs", body, &j);
        const char *id = json_string_value(json_object_get(j, "id"));
        snprintf(p->ids[i], sizeof p->ids[i], "%s", id ? id : "");
        if (i % 5 == 4 &&
            !(p->status[i] == 400 && strcmp(s_code(j), "bad_request") == 0 &&
              strstr(json_string_value(json_object_get(
                         json_object_get(j, "error"), "message")),
                     "type")))
            p->status[i] = -1;  //  not its own error
        json_decref(j);
    }
    return NULL;
}

//  POSTs that arrive together go to the broker as one batch; each still
//  gets its own answer: its own id, its own refusal (a bad entry does not
//  sink the others), one job for one key.
static void
test_gateway_concurrent_posts_each_get_their_answer(void **state)
{
    s_fx_t *fx = *state;
    enum { N = 16 };
    s_poster_t p[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].fx = fx;
        p[i].n = i;
        pthread_create(&t[i], NULL, s_post_many, &p[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    int created = 0, same_created = 0;
    char same[32] = "";
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 25; k++) {
            if (k % 5 == 4) {
                assert_int_equal(p[i].status[k], 400);
                continue;
            }
            if (k == 3) {  //  one job for the key, the rest see it
                assert_true(p[i].status[k] == 201 || p[i].status[k] == 200);
                same_created += p[i].status[k] == 201;
                if (!same[0])
                    snprintf(same, sizeof same, "%s", p[i].ids[k]);
                assert_string_equal(p[i].ids[k], same);
                continue;
            }
            assert_int_equal(p[i].status[k], 201);
            created++;
            //  Distinct from every other.
            for (int a = 0; a <= i; a++)
                for (int b = 0; b < (a == i ? k : 25); b++)
                    if (b % 5 != 4 && b != 3)
                        assert_string_not_equal(p[a].ids[b], p[i].ids[k]);
        }
    assert_int_equal(same_created, 1);
    assert_int_equal(created, N * 19);
}

static void
test_gateway_cancel_retry_and_conflicts(void **state)
{
    s_fx_t *fx = *state;
    json_t *j = NULL;
    assert_int_equal(s_call(fx, "POST", "/v1/jobs",
                            "{\"type\":\"noop\",\"shopId\":\"s\","
                            "\"delayMs\":600000}",
                            &j),
                     201);
    char path[64], id[32];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    assert_int_equal(s_call(fx, "POST", path, NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")),
                        "cancelled");
    json_decref(j);
    assert_int_equal(s_call(fx, "POST", path, NULL, &j), 409);
    assert_string_equal(s_code(j), "invalid_state");
    json_decref(j);
    snprintf(path, sizeof path, "/v1/jobs/%s/retry", id);
    assert_int_equal(s_call(fx, "POST", path, NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")),
                        "pending");
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", path, NULL, &j), 405);
    json_decref(j);
}

static void
test_gateway_bad_requests_get_clear_errors(void **state)
{
    s_fx_t *fx = *state;
    json_t *j = NULL;
    char url[600];
    //  Not JSON by its type: 415.
    snprintf(url, sizeof url, "%s/v1/jobs", fx->base);
    const char *const plain[] = {"Content-Type: text/plain", NULL};
    assert_int_equal(s_http("POST", url, plain, "{}", 2, &j, NULL), 415);
    assert_string_equal(s_code(j), "unsupported_media_type");
    json_decref(j);
    static const struct {
        const char *body;
        const char *code;
    } bad[] = {
        {"{\"type\":", "bad_request"},
        {"[1]", "bad_request"},
        {"{\"type\":\"noop\"}", "bad_request"},
        {"{\"type\":\"noop\",\"shopId\":\"s\",\"colour\":1}", "bad_request"},
        {"{\"type\":\"Noop\",\"shopId\":\"s\"}", "bad_request"},
        {"{\"type\":\"noop\",\"shopId\":\"s\",\"priority\":5000}",
         "bad_request"},
        {"{\"type\":\"noop\",\"shopId\":\"s\",\"input\":[1]}", "bad_request"},
        {"{\"type\":\"noop\",\"type\":\"x\",\"shopId\":\"s\"}", "bad_request"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(s_call(fx, "POST", "/v1/jobs", bad[i].body, &j), 400);
        assert_string_equal(s_code(j), bad[i].code);
        json_decref(j);
    }
    //  Too large: 413, and the gateway goes on.
    size_t big = (4u << 20) + 100;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    const char *const js[] = {"Content-Type: application/json", NULL};
    assert_int_equal(s_http("POST", url, js, huge, big, &j, NULL), 413);
    assert_string_equal(s_code(j), "too_large");
    json_decref(j);
    free(huge);
    //  Unknown job, malformed id, unknown path: 404; wrong method: 405.
    assert_int_equal(s_call(fx, "GET", "/v1/jobs/0000000000000001", NULL, &j),
                     404);
    assert_string_equal(s_code(j), "unknown_job");
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", "/v1/jobs/zz", NULL, &j), 404);
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", "/v2/anything", NULL, &j), 404);
    json_decref(j);
    char *head = NULL;
    assert_int_equal(s_http("DELETE", url, NULL, NULL, 0, &j, &head), 405);
    assert_non_null(strstr(head, "Allow: GET, POST"));
    free(head);
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", "/v1/jobs?status=sleeping", NULL, &j),
                     400);
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", "/v1/jobs?limit=0", NULL, &j), 400);
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", "/healthz", NULL, NULL), 200);
}

static void
test_gateway_cors_only_for_listed_origins(void **state)
{
    s_fx_t *fx = *state;
    char url[600], *head = NULL;
    snprintf(url, sizeof url, "%s/v1/jobs", fx->base);
    const char *const ok[] = {"Origin: http://app.example", NULL};
    assert_int_equal(s_http("OPTIONS", url, ok, NULL, 0, NULL, &head), 204);
    assert_non_null(
        strstr(head, "Access-Control-Allow-Origin: http://app.example"));
    assert_non_null(strstr(head, "Access-Control-Allow-Methods"));
    free(head);
    const char *const other[] = {"Origin: http://evil.example", NULL};
    assert_int_equal(s_http("GET", url, other, NULL, 0, NULL, &head), 200);
    assert_null(strstr(head, "Access-Control-Allow-Origin"));
    free(head);
    //  An event stream (an ended job's, which closes at once) and a
    //  stream's refusal carry it too: a browser app may watch.
    json_t *j = NULL;
    assert_int_equal(s_call(fx, "POST", "/v1/jobs",
                            "{\"type\":\"noop\",\"shopId\":\"s\"}", &j),
                     201);
    char id[32];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    json_decref(s_wait_status(fx, id, "completed"));
    snprintf(url, sizeof url, "%s/v1/jobs/%s/events", fx->base, id);
    assert_int_equal(s_http("GET", url, ok, NULL, 0, NULL, &head), 200);
    assert_non_null(
        strstr(head, "Access-Control-Allow-Origin: http://app.example"));
    assert_non_null(strstr(head, "text/event-stream"));
    free(head);
    snprintf(url, sizeof url, "%s/v1/jobs/00000000000000ff/events", fx->base);
    assert_int_equal(s_http("GET", url, ok, NULL, 0, NULL, &head), 404);
    assert_non_null(
        strstr(head, "Access-Control-Allow-Origin: http://app.example"));
    free(head);
}

static void
test_gateway_broker_down_is_503_and_then_served_again(void **state)
{
    s_fx_t *fx = *state;
    jobq_test_broker_stop(&fx->b, SIGKILL);
    char url[600], *head = NULL;
    json_t *j = NULL;
    snprintf(url, sizeof url, "%s/readyz", fx->base);
    assert_int_equal(s_http("GET", url, NULL, NULL, 0, &j, &head), 503);
    assert_non_null(strstr(head, "Retry-After: 1"));
    assert_string_equal(s_code(j), "unavailable");
    free(head);
    json_decref(j);
    assert_int_equal(s_call(fx, "POST", "/v1/jobs",
                            "{\"type\":\"noop\",\"shopId\":\"s\"}", &j),
                     503);
    json_decref(j);
    assert_int_equal(s_call(fx, "GET", "/healthz", NULL, NULL), 200);
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, NULL), 0);
    long status = 0;
    for (int i = 0; i < 50 && status != 200; i++)
        status = s_call(fx, "GET", "/readyz", NULL, NULL);
    assert_int_equal(status, 200);
}

//  A whole event stream of job id (it ends after the job does), with
//  Last-Event-ID last (or NULL). The SSE text, owned; NULL on no answer.
static char *
s_stream(s_fx_t *fx, const char *id, const char *last)
{
    char url[600], h[64];
    snprintf(url, sizeof url, "%s/v1/jobs/%s/events", fx->base, id);
    snprintf(h, sizeof h, "Last-Event-ID: %s", last ? last : "");
    CURL *c = curl_easy_init();
    struct curl_slist *hl = last ? curl_slist_append(NULL, h) : NULL;
    s_buf_t b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        free(b.data);
        return NULL;
    }
    return b.data ? b.data : strdup("");
}

//  The versions (id: lines) of an SSE text, in order, into v; how many.
static int
s_versions(const char *text, long *v, int max)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, "id: ")) && n < max; p++)
        if (p == text || p[-1] == '\n')
            v[n++] = strtol(p + 4, NULL, 10);
    return n;
}

//  The JSON of the last data: line.
static json_t *
s_last_data(const char *text)
{
    const char *last = NULL;
    for (const char *p = text; (p = strstr(p, "\ndata: ")); p++)
        last = p + 7;
    if (!last)
        return NULL;
    json_error_t je;
    return json_loadb(last, strcspn(last, "\n"), 0, &je);
}

static void
test_gateway_a_job_stream_sees_each_change_then_the_end(void **state)
{
    s_fx_t *fx = *state;
    json_t *j = NULL;
    assert_int_equal(s_call(fx, "POST", "/v1/jobs",
                            "{\"type\":\"sleep\",\"shopId\":\"s\","
                            "\"input\":{\"ms\":1200,\"steps\":4}}",
                            &j),
                     201);
    char id[32];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    char *text = s_stream(fx, id, NULL);
    assert_non_null(text);
    long v[64];
    int n = s_versions(text, v, 64);
    assert_true(n >= 3);
    for (int i = 1; i < n; i++)
        assert_true(v[i] > v[i - 1]);  //  in order, no repeat
    json_t *end = s_last_data(text);
    assert_non_null(end);
    assert_string_equal(json_string_value(json_object_get(end, "status")),
                        "completed");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(end, "output"), "steps")),
                     4);
    long final = v[n - 1];
    json_decref(end);
    free(text);
    //  Opened after the end: the end at once.
    text = s_stream(fx, id, NULL);
    assert_int_equal(s_versions(text, v, 64), 1);
    assert_int_equal(v[0], final);
    free(text);
    //  Resumed at the end: nothing more; resumed before it: the end.
    char last[32];
    snprintf(last, sizeof last, "%ld", final);
    text = s_stream(fx, id, last);
    assert_int_equal(s_versions(text, v, 64), 0);
    free(text);
    snprintf(last, sizeof last, "%ld", final - 1);
    text = s_stream(fx, id, last);
    assert_int_equal(s_versions(text, v, 64), 1);
    assert_int_equal(v[0], final);
    free(text);
    //  No such job: 404.
    assert_int_equal(
        s_call(fx, "GET", "/v1/jobs/0000000000000001/events", NULL, &j), 404);
    json_decref(j);
}

typedef struct {
    s_fx_t *fx;
    const char *id;
    char *text;
} s_watch_t;

//  What a stream of path sent within ms (it is cut then). Owned text.
static char *
s_stream_for(s_fx_t *fx, const char *path, long ms)
{
    char url[600];
    snprintf(url, sizeof url, "%s%s", fx->base, path);
    CURL *c = curl_easy_init();
    s_buf_t b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    return b.data ? b.data : strdup("");
}

static void *
s_watch_shop(void *arg)
{
    s_watch_t *w = arg;
    w->text = s_stream_for(w->fx, w->id, 3000);
    return NULL;
}

//  A job whose JSON is bigger than a stream's buffer (a 200 kB input) is
//  streamed whole: live (pending, then cancelled) and once it has ended.
static void
test_gateway_a_big_job_streams_whole(void **state)
{
    s_fx_t *fx = *state;
    size_t big = 200 * 1000;
    char *body = malloc(big + 200);
    int n = snprintf(body, 200,
                     "{\"type\":\"noop\",\"shopId\":\"s\",\"delayMs\":"
                     "600000,\"input\":{\"blob\":\"");
    memset(body + n, 'x', big);
    strcpy(body + n + big, "\"}}");
    json_t *j = NULL;
    assert_int_equal(s_call(fx, "POST", "/v1/jobs", body, &j), 201);
    free(body);
    char id[32], path[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
    //  Live: the first event, with the input, then nothing (it waits).
    char *text = s_stream_for(fx, path, 1500);
    json_t *first = s_last_data(text);
    assert_non_null(first);
    assert_int_equal(strlen(json_string_value(json_object_get(
                         json_object_get(first, "input"), "blob"))),
                     big);
    json_decref(first);
    free(text);
    assert_int_equal(s_call(fx, "GET", "/healthz", NULL, NULL), 200);
    //  Ended: its final state at once, whole.
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    assert_int_equal(s_call(fx, "POST", path, NULL, NULL), 200);
    text = s_stream(fx, id, NULL);
    assert_non_null(text);
    json_t *end = s_last_data(text);
    assert_non_null(end);
    assert_string_equal(json_string_value(json_object_get(end, "status")),
                        "cancelled");
    assert_int_equal(strlen(json_string_value(json_object_get(
                         json_object_get(end, "input"), "blob"))),
                     big);
    json_decref(end);
    free(text);
}

//  A job that ends while its stream opens (between the stream's STATUS
//  and its subscription, or as the hub takes it): the stream still ends
//  with the job's final state. noop jobs end within a millisecond or two
//  of being made, so each of these streams races its job's end.
static void
test_gateway_a_stream_opened_as_its_job_ends_still_ends(void **state)
{
    s_fx_t *fx = *state;
    for (int i = 0; i < 40; i++) {
        json_t *j = NULL;
        assert_int_equal(s_call(fx, "POST", "/v1/jobs",
                                "{\"type\":\"noop\",\"shopId\":\"s\"}", &j),
                         201);
        char id[32];
        snprintf(id, sizeof id, "%s",
                 json_string_value(json_object_get(j, "id")));
        json_decref(j);
        char *text = s_stream(fx, id, NULL);
        assert_non_null(text);
        json_t *end = s_last_data(text);
        assert_non_null(end);
        assert_string_equal(json_string_value(json_object_get(end, "status")),
                            "completed");
        assert_non_null(json_object_get(end, "output"));
        json_decref(end);
        free(text);
    }
}

//  A reader that stops reading is dropped once it owes more than the
//  gateway keeps for it (its buffer and the socket's, both bounded): it
//  never gets the end, while a reader of the same job that reads gets
//  every event to the end, and the gateway goes on answering.
static void
test_gateway_a_slow_reader_is_dropped_and_others_go_on(void **state)
{
    s_fx_t *fx = *state;
    json_t *j = NULL;
    assert_int_equal(s_call(fx, "POST", "/v1/jobs",
                            "{\"type\":\"sleep\",\"shopId\":\"s\","
                            "\"input\":{\"ms\":6000,\"steps\":3000}}",
                            &j),
                     201);
    char id[32];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    //  The slow one: a small receive buffer, and it never reads.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t) atoi(strrchr(fx->base, ':') + 1));
    assert_int_equal(connect(fd, (struct sockaddr *) &a, sizeof a), 0);
    char req[200];
    int rl = snprintf(req, sizeof req,
                      "GET /v1/jobs/%s/events HTTP/1.1\r\nHost: x\r\n\r\n", id);
    assert_int_equal(write(fd, req, (size_t) rl), rl);
    //  The reader that reads: every change, in order, to the end.
    char *text = s_stream(fx, id, NULL);
    assert_non_null(text);
    long v[4096];
    int n = s_versions(text, v, 4096);
    assert_true(n > 100);
    for (int i = 1; i < n; i++)
        assert_true(v[i] > v[i - 1]);
    json_t *end = s_last_data(text);
    assert_string_equal(json_string_value(json_object_get(end, "status")),
                        "completed");
    json_decref(end);
    free(text);
    assert_int_equal(s_call(fx, "GET", "/healthz", NULL, NULL), 200);
    //  The slow one was closed without the end: read what it was sent.
    size_t got = 0;
    bool eof = false, saw_end = false;
    char buf[65536], tail[64] = "";
    for (int i = 0; i < 400 && !eof; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(fd, buf, sizeof buf - 1);
        if (r <= 0) {
            eof = true;
            break;
        }
        buf[r] = '\0';
        got += (size_t) r;
        //  "completed" across two reads: keep the end of the last one.
        char both[64 + sizeof buf];
        snprintf(both, sizeof both, "%s%s", tail, buf);
        if (strstr(both, "\"status\":\"completed\""))
            saw_end = true;
        size_t keep = (size_t) r > 40 ? 40 : (size_t) r;
        memcpy(tail, buf + r - keep, keep);
        tail[keep] = '\0';
    }
    close(fd);
    assert_true(eof);
    assert_false(saw_end);
    assert_true(got > 4096);  //  it was sent events before it was dropped
}

//  A shop's stream: its jobs' changes, none of another shop's, in seq
//  order.
static void
test_gateway_a_shop_stream_sees_that_shops_jobs(void **state)
{
    s_fx_t *fx = *state;
    s_watch_t w = {fx, "/v1/events?shop=feed", NULL};
    pthread_t t;
    pthread_create(&t, NULL, s_watch_shop, &w);
    struct timespec ts = {0, 500 * 1000000L};
    nanosleep(&ts, NULL);
    json_t *j = NULL;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s_call(fx, "POST", "/v1/jobs",
                                "{\"type\":\"noop\",\"shopId\":\"feed\"}", &j),
                         201);
        json_decref(j);
    }
    assert_int_equal(s_call(fx, "POST", "/v1/jobs",
                            "{\"type\":\"noop\",\"shopId\":\"other\"}", &j),
                     201);
    json_decref(j);
    pthread_join(t, NULL);
    assert_non_null(w.text);
    long v[64];
    int n = s_versions(w.text, v, 64);
    assert_true(n >= 4);  //  two jobs: made, running, completed each
    for (int i = 1; i < n; i++)
        assert_true(v[i] > v[i - 1]);
    assert_null(strstr(w.text, "\"shopId\":\"other\""));
    int completed = 0;
    for (const char *p = w.text; (p = strstr(p, "\"status\":\"completed\""));
         p++)
        completed++;
    assert_int_equal(completed, 2);
    free(w.text);
    assert_int_equal(s_call(fx, "GET", "/v1/events?shop=bad/shop", NULL, &j),
                     400);
    json_decref(j);
}

static void *
s_watch(void *arg)
{
    s_watch_t *w = arg;
    w->text = s_stream(w->fx, w->id, NULL);
    return NULL;
}

//  Several watchers of one job, the broker killed and started again under
//  them: every one still sees the end.
static void
test_gateway_streams_outlive_a_broker_restart(void **state)
{
    s_fx_t *fx = *state;
    json_t *j = NULL;
    assert_int_equal(s_call(fx, "POST", "/v1/jobs",
                            "{\"type\":\"sleep\",\"shopId\":\"s\","
                            "\"input\":{\"ms\":3000,\"steps\":3}}",
                            &j),
                     201);
    char id[32];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    enum { N = 5 };
    s_watch_t w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (s_watch_t){fx, id, NULL};
        pthread_create(&t[i], NULL, s_watch, &w[i]);
    }
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    jobq_test_broker_stop(&fx->b, SIGKILL);
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, NULL), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_non_null(w[i].text);
        json_t *end = s_last_data(w[i].text);
        assert_non_null(end);
        assert_string_equal(json_string_value(json_object_get(end, "status")),
                            "completed");
        json_decref(end);
        free(w[i].text);
    }
}

//  A gateway with a --tokens file, on its own port: returns its base URL's
//  port and the pid in *pid.
static int
s_gateway_with_tokens(s_fx_t *fx, pid_t *pid)
{
    char path[600];
    snprintf(path, sizeof path, "%s/tokens", fx->dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "# the test's tokens\n"
               "read-a-0123456789abcdef read a\n"
               "write-a-0123456789abcdef write a\n"
               "write-ab-0123456789abcdef write a,b\n"
               "admin-0123456789abcdef admin *\n"
               "slow-a-0123456789abcdef read a rate=2\n");
    fclose(f);
    int port = jobq_test_free_port();
    char listen[64], bin[1024], log[600];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-gateway"));
    snprintf(log, sizeof log, "%s/gateway-tokens.log", fx->dir);
    char *argv[] = {bin,           "--listen", listen,       "--broker",
                    fx->b.clients, "--events", fx->b.events, "--tokens",
                    path,          NULL};
    *pid = jobq_test_spawn(argv, log);
    return port;
}

//  One request with a token (NULL: none); the status.
static long
s_as(int port,
     const char *token,
     const char *method,
     const char *path,
     const char *json,
     json_t **out)
{
    char url[600], auth[200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    const char *h[3] = {NULL, NULL, NULL};
    int n = 0;
    if (token)
        h[n++] = auth;
    if (json)
        h[n++] = "Content-Type: application/json";
    return s_http(method, url, h, json, json ? strlen(json) : 0, out, NULL);
}

static void
test_gateway_tokens_bound_roles_and_shops(void **state)
{
    s_fx_t *fx = *state;
    pid_t pid;
    int port = s_gateway_with_tokens(fx, &pid);
    assert_true(pid > 0);
    long st = 0;
    for (int i = 0; i < 100 && st != 200; i++) {
        st = s_as(port, NULL, "GET", "/healthz", NULL, NULL);
        if (st != 200) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(st, 200);  //  no token needed to say it runs
    json_t *j = NULL;
    const char *ra = "read-a-0123456789abcdef",
               *wa = "write-a-0123456789abcdef",
               *wab = "write-ab-0123456789abcdef",
               *adm = "admin-0123456789abcdef";
    //  No token, a wrong one: 401.
    assert_int_equal(s_as(port, NULL, "GET", "/v1/jobs?shop=a", NULL, &j), 401);
    assert_string_equal(s_code(j), "unauthorized");
    json_decref(j);
    assert_int_equal(
        s_as(port, "nope-0123456789abcdef", "GET", "/readyz", NULL, NULL), 401);
    //  Write in its shop; not in another; read may not write.
    const char *in_a = "{\"type\":\"noop\",\"shopId\":\"a\","
                       "\"delayMs\":600000}";
    assert_int_equal(s_as(port, wa, "POST", "/v1/jobs", in_a, &j), 201);
    char ida[32];
    snprintf(ida, sizeof ida, "%s",
             json_string_value(json_object_get(j, "id")));
    json_decref(j);
    assert_int_equal(s_as(port, wa, "POST", "/v1/jobs",
                          "{\"type\":\"noop\",\"shopId\":\"b\"}", &j),
                     403);
    json_decref(j);
    assert_int_equal(s_as(port, ra, "POST", "/v1/jobs", in_a, &j), 403);
    json_decref(j);
    assert_int_equal(s_as(port, wab, "POST", "/v1/jobs",
                          "{\"type\":\"noop\",\"shopId\":\"b\","
                          "\"delayMs\":600000}",
                          &j),
                     201);
    char idb[32];
    snprintf(idb, sizeof idb, "%s",
             json_string_value(json_object_get(j, "id")));
    json_decref(j);
    //  Shop a's tokens: b's job is no job, read, cancelled or streamed.
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", idb);
    assert_int_equal(s_as(port, ra, "GET", path, NULL, &j), 404);
    assert_string_equal(s_code(j), "unknown_job");
    json_decref(j);
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", idb);
    assert_int_equal(s_as(port, wa, "POST", path, NULL, &j), 404);
    json_decref(j);
    snprintf(path, sizeof path, "/v1/jobs/%s/events", idb);
    assert_int_equal(s_as(port, ra, "GET", path, NULL, &j), 404);
    json_decref(j);
    snprintf(path, sizeof path, "/v1/jobs/%s", idb);
    assert_int_equal(s_as(port, adm, "GET", path, NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")),
                        "pending");  //  not cancelled
    json_decref(j);
    snprintf(path, sizeof path, "/v1/jobs/%s", ida);
    assert_int_equal(s_as(port, ra, "GET", path, NULL, &j), 200);
    json_decref(j);
    //  LIST: a's only; b's shop is empty for a; several shops need shop=.
    assert_int_equal(s_as(port, ra, "GET", "/v1/jobs", NULL, &j), 200);
    json_t *jobs = json_object_get(j, "jobs");
    for (size_t i = 0; i < json_array_size(jobs); i++)
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(jobs, i), "shopId")),
                            "a");
    assert_true(json_array_size(jobs) >= 1);
    json_decref(j);
    assert_int_equal(s_as(port, ra, "GET", "/v1/jobs?shop=b", NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 0);
    json_decref(j);
    assert_int_equal(s_as(port, wab, "GET", "/v1/jobs", NULL, &j), 400);
    json_decref(j);
    //  Stats and metrics: admin only.
    assert_int_equal(s_as(port, wa, "GET", "/v1/stats", NULL, &j), 403);
    json_decref(j);
    assert_int_equal(s_as(port, adm, "GET", "/v1/stats", NULL, &j), 200);
    json_decref(j);
    assert_int_equal(s_as(port, adm, "GET", "/metrics", NULL, NULL), 200);
    //  rate=2: two at once, then 429 with Retry-After; others go on.
    const char *slow = "slow-a-0123456789abcdef";
    long got[4];
    for (int i = 0; i < 4; i++)
        got[i] = s_as(port, slow, "GET", "/v1/jobs?shop=a", NULL, NULL);
    assert_int_equal(got[0], 200);
    assert_int_equal(got[3], 429);
    char url[200], auth[100], *head = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/jobs?shop=a", port);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", slow);
    const char *const h[] = {auth, NULL};
    assert_int_equal(s_http("GET", url, h, NULL, 0, &j, &head), 429);
    assert_string_equal(s_code(j), "rate_limited");
    assert_non_null(strstr(head, "Retry-After: 1"));
    json_decref(j);
    free(head);
    snprintf(path, sizeof path, "/v1/jobs/%s/events", ida);
    assert_int_equal(s_as(port, slow, "GET", path, NULL, NULL), 429);
    assert_int_equal(s_as(port, ra, "GET", "/v1/jobs?shop=a", NULL, NULL), 200);
    jobq_test_stop(pid, SIGTERM, 5000);
}

//  The dashboard's files: served with their types and a policy that lets
//  only them run; its script never writes markup (every string a job
//  carries goes in as text). test_browser runs the page in Chromium.
static void
test_gateway_dashboard_files_are_served_safely(void **state)
{
    s_fx_t *fx = *state;
    static const struct {
        const char *path, *type, *must;
    } files[] = {{"/", "Content-Type: text/html", "/app.js"},
                 {"/app.js", "Content-Type: text/javascript", "EventSource"},
                 {"/app.css", "Content-Type: text/css", ".bar"}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char url[600];
        snprintf(url, sizeof url, "%s%s", fx->base, files[i].path);
        CURL *c = curl_easy_init();
        s_buf_t b = {NULL, 0}, h = {NULL, 0};
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_collect);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        assert_int_equal(status, 200);
        assert_non_null(strstr(h.data, files[i].type));
        assert_non_null(strstr(h.data,
                               "Content-Security-Policy: default-src 'self'; "
                               "frame-ancestors 'none'"));
        assert_non_null(strstr(h.data, "X-Content-Type-Options: nosniff"));
        assert_non_null(strstr(b.data, files[i].must));
        //  No markup from data: the script uses textContent only.
        assert_null(strstr(b.data, "innerHTML"));
        assert_null(strstr(b.data, "insertAdjacentHTML"));
        assert_null(strstr(b.data, "document.write"));
        free(b.data);
        free(h.data);
    }
}

//  jobq-gateway with args exits 2 saying words (a line of its stderr).
static void
s_refused(char *const *args, const char *words)
{
    char *dir = jobq_test_tmpdir();
    char bin[1024], log[600];
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-gateway"));
    snprintf(log, sizeof log, "%s/gateway.log", dir);
    char *argv[8] = {bin};
    for (int i = 0; args[i] && i < 6; i++)
        argv[i + 1] = args[i];
    pid_t pid = jobq_test_spawn(argv, log);
    assert_int_equal(jobq_test_wait(pid, 10000), 2 << 8);  //  exit status 2
    FILE *f = fopen(log, "r");
    char line[1024];
    bool said = false;
    while (f && fgets(line, sizeof line, f))
        said |= strstr(line, words) != NULL;
    if (f)
        fclose(f);
    if (!said)
        fail_msg("jobq-gateway did not say '%s'", words);
    jobq_test_rmtree(dir);
    free(dir);
}

static void
test_gateway_refuses_to_listen_beyond_loopback(void **state)
{
    (void) state;
    char *args[] = {"--listen", "0.0.0.0:1", NULL};
    s_refused(args, "refusing to listen on 0.0.0.0:1");
}

//  A tokens file with a bad line: the gateway does not start, and names
//  the line and what is wrong with it.
static void
test_gateway_a_bad_tokens_file_is_refused_with_its_line(void **state)
{
    s_fx_t *fx = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/bad-tokens", fx->dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "# fine so far\nadmin-0123456789abcdef admin *\n"
               "short read a\n");
    fclose(f);
    char *args[] = {"--tokens", path, NULL};
    s_refused(args, "line 3: a token is 16 to 128 of");
    f = fopen(path, "w");
    fprintf(f, "read-a-0123456789abcdef read *,x\n");
    fclose(f);
    s_refused(args, "line 1: bad shop id '*'");
    f = fopen(path, "w");
    fprintf(f, "read-a-0123456789abcdef read a rate=fast\n");
    fclose(f);
    s_refused(args, "line 1: rate=N: N from 0 (no limit) to 1000000");
    char *rate[] = {"--token-rate", "-1", NULL};
    s_refused(rate, "--token-rate");
    char *missing[] = {"--tokens", "/nonexistent/tokens", NULL};
    s_refused(missing, "/nonexistent/tokens: cannot read it");
}

#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_gateway_enqueue_read_and_list),
        T(test_gateway_cancel_retry_and_conflicts),
        T(test_gateway_concurrent_posts_each_get_their_answer),
        T(test_gateway_bad_requests_get_clear_errors),
        T(test_gateway_cors_only_for_listed_origins),
        T(test_gateway_broker_down_is_503_and_then_served_again),
        T(test_gateway_a_job_stream_sees_each_change_then_the_end),
        T(test_gateway_streams_outlive_a_broker_restart),
        T(test_gateway_a_slow_reader_is_dropped_and_others_go_on),
        T(test_gateway_a_stream_opened_as_its_job_ends_still_ends),
        T(test_gateway_a_big_job_streams_whole),
        T(test_gateway_tokens_bound_roles_and_shops),
        T(test_gateway_a_shop_stream_sees_that_shops_jobs),
        T(test_gateway_dashboard_files_are_served_safely),
        cmocka_unit_test(test_gateway_refuses_to_listen_beyond_loopback),
        T(test_gateway_a_bad_tokens_file_is_refused_with_its_line),
    };
    return cmocka_run_group_tests_name("gateway", tests, NULL, NULL);
}
