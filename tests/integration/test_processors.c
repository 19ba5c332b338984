/*  test_processors.c: scrape_reviews, export_data and generate_report run
    by a real worker against a real broker, scraping a small shop served by
    an HTTP server on 127.0.0.1 inside this test process.

    The server (one thread, poll, HTTP/1.1 with Connection: close) serves
    tests/fixtures/shop, writing "{{origin}}" in a page as its own
    http://127.0.0.1:PORT, and has routes that misbehave on purpose:

      /shop/NAME       the fixture (text/html, or application/json)
      /flaky/NAME      429 with Retry-After: 1 the first time, then NAME
      /down/ANY        503, always
      /hang/ANY        reads the request and never answers
      /redirect/NAME   302 to /shop/NAME
      /loop/ANY        302 to itself
      /many/N          one page of N distinct JSON-LD reviews of 8000 bytes
      /away/NAME       302 to the canary's /shop/NAME
      /nextaway        a page of one review whose rel="next" is the canary

    The canary is a socket listening on 127.0.0.2, where the worker is not
    allowed to go (it runs with --allow-private 127.0.0.1): a connection
    that reaches it is a scrape that was turned inward.

    Nothing here talks to anything but 127.0.0.1 and local files.
*/
#define _GNU_SOURCE  //  realpath
#include "jobq_test.h"
#include "jobq/jobq_client.h"
#include "jobq_json.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

//  --- the HTTP server
//  ---------------------------------------------------------

#define S_MAX_CONNS 32
#define S_REQ_MAX   8192

typedef struct {
    int fd;               //  -1 when free
    char req[S_REQ_MAX];  //  request so far
    size_t len;           //  bytes in req
    bool hanging;         //  answered with silence
} s_conn_t;

typedef struct {
    int fd;                   //  listening socket
    int port;                 //  its port
    pthread_t thread;         //  the server loop
    atomic_bool stop;         //  set to end the loop
    atomic_int flaky_hits;    //  requests under /flaky/
    atomic_int down_hits;     //  requests under /down/
    atomic_int hang_hits;     //  requests under /hang/
    atomic_int page_hits[8];  //  requests for each of s_pages
    char flaky_done[16][64];  //  /flaky/ paths answered 429 already
    int nflaky;               //  entries in flaky_done (server thread only)
    int canary_port;          //  port of the canary on 127.0.0.2
    s_conn_t conns[S_MAX_CONNS];
} s_http_t;

//  Fixture pages whose hits are counted.
static const char *const s_pages[] = {"jsonld-1.html", "jsonld-2.html",
                                      "microdata-1.html", "broken.html",
                                      "empty.html"};

static void
s_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t) w;
    }
}

static void
s_respond(int fd,
          const char *status,
          const char *extra,
          const char *ctype,
          const char *body,
          size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\n%sContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, extra, ctype, len);
    s_send_all(fd, head, (size_t) n);
    s_send_all(fd, body, len);
}

//  Serve fixture name, with {{origin}} replaced.
static void
s_serve_fixture(s_http_t *h, int fd, const char *name)
{
    char path[1024];
    bool safe = !strstr(name, "..") && !strchr(name, '/') && name[0];
    snprintf(path, sizeof path, "%s/shop/%s", JOBQ_FIXTURES_DIR, name);
    FILE *f = safe ? fopen(path, "rb") : NULL;
    if (!f) {
        s_respond(fd, "404 Not Found", "", "text/plain", "no\n", 3);
        return;
    }
    for (size_t i = 0; i < sizeof s_pages / sizeof s_pages[0]; i++)
        if (strcmp(name, s_pages[i]) == 0)
            atomic_fetch_add(&h->page_hits[i], 1);
    static char raw[64 << 10], out[80 << 10];
    size_t n = fread(raw, 1, sizeof raw - 1, f);
    fclose(f);
    raw[n] = '\0';
    char origin[64];
    snprintf(origin, sizeof origin, "http://127.0.0.1:%d", h->port);
    size_t o = 0;
    for (const char *p = raw; *p && o + 64 < sizeof out;) {
        if (strncmp(p, "{{origin}}", 10) == 0) {
            o += (size_t) snprintf(out + o, sizeof out - o, "%s", origin);
            p += 10;
        } else {
            out[o++] = *p++;
        }
    }
    const char *ctype =
        strstr(name, ".json") ? "application/json" : "text/html; charset=utf-8";
    s_respond(fd, "200 OK", "", ctype, out, o);
}

//  A page of n reviews (at most 1000), each with a body of 8000 bytes.
static void
s_serve_many(int fd, int n)
{
    n = n < 0 ? 0 : n > 1000 ? 1000 : n;
    size_t cap = (size_t) n * 8200 + 512, o = 0;
    char *page = malloc(cap);
    assert_non_null(page);
    o += (size_t) snprintf(page, cap,
                           "<html><head><script type=\"application/ld+json\">"
                           "{\"@type\": \"Product\", \"review\": [");
    for (int i = 0; i < n; i++) {
        o += (size_t) snprintf(page + o, cap - o,
                               "%s{\"@type\": \"Review\", \"author\": "
                               "\"reviewer %d\", \"reviewBody\": \"",
                               i ? "," : "", i);
        memset(page + o, 'a' + i % 26, 8000);
        o += 8000;
        o += (size_t) snprintf(page + o, cap - o, "\"}");
    }
    o += (size_t) snprintf(page + o, cap - o, "]}</script></head></html>");
    s_respond(fd, "200 OK", "", "text/html", page, o);
    free(page);
}

//  Answer the complete request in c (or decide not to).
static void
s_handle(s_http_t *h, s_conn_t *c)
{
    char method[8], target[512];
    if (sscanf(c->req, "%7s %511s", method, target) != 2) {
        s_respond(c->fd, "400 Bad Request", "", "text/plain", "bad\n", 4);
        return;
    }
    if (strncmp(target, "/shop/", 6) == 0) {
        s_serve_fixture(h, c->fd, target + 6);
    } else if (strncmp(target, "/flaky/", 7) == 0) {
        atomic_fetch_add(&h->flaky_hits, 1);
        bool seen = false;
        for (int i = 0; i < h->nflaky; i++)
            seen |= strcmp(h->flaky_done[i], target) == 0;
        if (!seen && h->nflaky < 16) {
            snprintf(h->flaky_done[h->nflaky++], 64, "%.60s", target);
            s_respond(c->fd, "429 Too Many Requests", "Retry-After: 1\r\n",
                      "text/plain", "slow down\n", 10);
        } else {
            s_serve_fixture(h, c->fd, target + 7);
        }
    } else if (strncmp(target, "/down/", 6) == 0) {
        atomic_fetch_add(&h->down_hits, 1);
        s_respond(c->fd, "503 Service Unavailable", "", "text/plain", "down\n",
                  5);
    } else if (strncmp(target, "/hang/", 6) == 0) {
        atomic_fetch_add(&h->hang_hits, 1);
        c->hanging = true;
        return;  //  keep the connection open and say nothing
    } else if (strncmp(target, "/many/", 6) == 0) {
        s_serve_many(c->fd, (int) strtol(target + 6, NULL, 10));
    } else if (strncmp(target, "/loop/", 6) == 0) {
        char loc[600];
        snprintf(loc, sizeof loc, "Location: %.500s\r\n", target);
        s_respond(c->fd, "302 Found", loc, "text/plain", "", 0);
    } else if (strncmp(target, "/away/", 6) == 0) {
        char loc[600];
        snprintf(loc, sizeof loc,
                 "Location: http://127.0.0.2:%d/shop/%.400s\r\n",
                 h->canary_port, target + 6);
        s_respond(c->fd, "302 Found", loc, "text/plain", "", 0);
    } else if (strcmp(target, "/nextaway") == 0) {
        char page[1024];
        int n = snprintf(
            page, sizeof page,
            "<html><head><link rel=\"next\" "
            "href=\"http://127.0.0.2:%d/shop/jsonld-2.html\">"
            "<script type=\"application/ld+json\">{\"@type\": \"Product\", "
            "\"review\": [{\"@type\": \"Review\", \"author\": \"Zed\", "
            "\"reviewBody\": \"Fine.\"}]}</script></head></html>",
            h->canary_port);
        s_respond(c->fd, "200 OK", "", "text/html", page, (size_t) n);
    } else if (strncmp(target, "/redirect/", 10) == 0) {
        char loc[600];
        snprintf(loc, sizeof loc, "Location: /shop/%.500s\r\n", target + 10);
        s_respond(c->fd, "302 Found", loc, "text/plain", "", 0);
    } else {
        s_respond(c->fd, "404 Not Found", "", "text/plain", "no\n", 3);
    }
}

static void
s_close(s_conn_t *c)
{
    close(c->fd);
    c->fd = -1;
    c->len = 0;
    c->hanging = false;
}

static void *
s_http_loop(void *arg)
{
    s_http_t *h = arg;
    while (!atomic_load(&h->stop)) {
        struct pollfd pf[S_MAX_CONNS + 1];
        int idx[S_MAX_CONNS + 1], n = 0;
        pf[n] = (struct pollfd){h->fd, POLLIN, 0};
        idx[n++] = -1;
        for (int i = 0; i < S_MAX_CONNS; i++)
            if (h->conns[i].fd >= 0) {
                pf[n] = (struct pollfd){h->conns[i].fd, POLLIN, 0};
                idx[n++] = i;
            }
        if (poll(pf, (nfds_t) n, 50) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!pf[k].revents)
                continue;
            if (idx[k] < 0) {
                int fd = accept(h->fd, NULL, NULL);
                int slot = -1;
                for (int i = 0; fd >= 0 && i < S_MAX_CONNS && slot < 0; i++)
                    if (h->conns[i].fd < 0)
                        slot = i;
                if (slot >= 0)
                    h->conns[slot].fd = fd;
                else if (fd >= 0)
                    close(fd);
                continue;
            }
            s_conn_t *c = &h->conns[idx[k]];
            ssize_t r = recv(c->fd, c->req + c->len, S_REQ_MAX - 1 - c->len, 0);
            if (r <= 0) {
                s_close(c);
                continue;
            }
            if (c->hanging)
                continue;  //  swallow whatever comes
            c->len += (size_t) r;
            c->req[c->len] = '\0';
            if (strstr(c->req, "\r\n\r\n") || c->len >= S_REQ_MAX - 1) {
                s_handle(h, c);
                if (!c->hanging)
                    s_close(c);
            }
        }
    }
    for (int i = 0; i < S_MAX_CONNS; i++)
        if (h->conns[i].fd >= 0)
            s_close(&h->conns[i]);
    return NULL;
}

static s_http_t *
s_http_start(void)
{
    s_http_t *h = calloc(1, sizeof *h);
    assert_non_null(h);
    for (int i = 0; i < S_MAX_CONNS; i++)
        h->conns[i].fd = -1;
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(h->fd >= 0);
    int one = 1;
    setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(h->fd, (struct sockaddr *) &a, sizeof a), 0);
    assert_int_equal(listen(h->fd, 16), 0);
    assert_int_equal(getsockname(h->fd, (struct sockaddr *) &a, &len), 0);
    h->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&h->thread, NULL, s_http_loop, h), 0);
    return h;
}

static void
s_http_stop(s_http_t *h)
{
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL);
    close(h->fd);
    free(h);
}

//  A socket listening on 127.0.0.2 (non-blocking, never accepted by
//  itself); its port into *port.
static int
s_canary(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000002);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

//  Connections that reached the canary since the last call.
static int
s_canary_hits(int fd)
{
    int n = 0;
    for (int c; (c = accept(fd, NULL, NULL)) >= 0; n++)
        close(c);
    return n;
}

//  --- the broker, the worker, and jobs
//  ----------------------------------------

typedef struct {
    char *dir;                    //  temporary directory
    char exports[600];            //  the worker's --export-dir
    jobq_test_broker_t b;         //  broker process
    pid_t worker;                 //  worker process
    jobq_client_t *c;             //  client
    s_http_t *http;               //  the shop
    int canary;                   //  listening on 127.0.0.2, never accepted
    char chain[JOBQ_ID_LEN + 1];  //  the scrape of the whole fixture chain
    char empty[JOBQ_ID_LEN + 1];  //  the scrape of empty.html
} s_fx_t;

static int
s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    fx->dir = jobq_test_tmpdir();
    fx->b.pid = -1;
    fx->worker = -1;
    snprintf(fx->exports, sizeof fx->exports, "%s/exports", fx->dir);
    fx->http = s_http_start();
    fx->canary = s_canary(&fx->http->canary_port);
    if (jobq_test_broker_start(&fx->b, fx->dir, NULL) != 0)
        return -1;
    char files[600];
    snprintf(files, sizeof files, "%s/examples", JOBQ_SOURCE_DIR);
    const char *extra[] = {"--concurrency",
                           "2",
                           "--name",
                           "w-proc",
                           "--export-dir",
                           fx->exports,
                           "--allow-private",
                           "127.0.0.1",
                           "--allow-files",
                           files,
                           NULL};
    fx->worker = jobq_test_worker_start(&fx->b, extra);
    if (fx->worker <= 0)
        return -1;
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = fx->b.clients;
    cfg.events = fx->b.events;
    fx->c = jobq_client_new(&cfg);
    *state = fx;
    return fx->c ? 0 : -1;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_destroy(&fx->c);
    if (fx->worker > 0)
        jobq_test_stop(fx->worker, SIGTERM, 10000);
    jobq_test_broker_stop(&fx->b, SIGTERM);
    s_http_stop(fx->http);
    close(fx->canary);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

typedef struct {
    s_fx_t *fx;             //  fixture
    const char *id;         //  job
    jobq_job_info_t *info;  //  its last state
} s_end_wait_t;

static bool
s_ended(void *arg)
{
    s_end_wait_t *w = arg;
    jobq_job_info_clear(w->info);
    return jobq_client_status(w->fx->c, w->id, w->info) == JOBQ_OK &&
           jobq_status_is_final(w->info->status);
}

//  The shop of the jobs s_run enqueues.
static const char *s_shop = "shop-test";

//  Enqueue type with the JSON input, wait for its end, return its state in
//  *info (clear it after) and its id in id.
static void
s_run(s_fx_t *fx,
      const char *type,
      const char *json,
      uint32_t max_attempts,
      char id[JOBQ_ID_LEN + 1],
      jobq_job_info_t *info)
{
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, JOBQ_MAX_INPUT_BYTES);
    char err[128];
    assert_int_equal(jobq_json_to_mp(json, &w, err, sizeof err), JOBQ_OK);
    jobq_enqueue_t req = {type, s_shop, {w.data, w.len}, 0, 0, max_attempts,
                          0,    NULL};
    assert_int_equal(jobq_client_enqueue(fx->c, &req, id, NULL), JOBQ_OK);
    jobq_mp_writer_fini(&w);
    memset(info, 0, sizeof *info);
    s_end_wait_t wait = {fx, id, info};
    assert_true(jobq_test_wait_until(s_ended, &wait, 30000));
}

//  Run a job that must complete; its output as JSON (caller decrefs).
static json_t *
s_complete(s_fx_t *fx, const char *type, const char *json, char *id_out)
{
    char id[JOBQ_ID_LEN + 1];
    jobq_job_info_t info;
    s_run(fx, type, json, 1, id, &info);
    if (info.status != JOBQ_COMPLETED)
        fail_msg("%s %s ended %s: %s", type, json,
                 jobq_status_name(info.status),
                 info.error ? info.error : "(no error)");
    json_t *out = jobq_json_from_mp(info.output);
    assert_non_null(out);
    jobq_job_info_clear(&info);
    if (id_out)
        memcpy(id_out, id, sizeof id);
    return out;
}

//  Run a job that must fail; its error (static buffer) and attempts.
static const char *
s_fails(s_fx_t *fx, const char *type, const char *json, uint32_t *attempts)
{
    static char error[1024];
    char id[JOBQ_ID_LEN + 1];
    jobq_job_info_t info;
    s_run(fx, type, json, 3, id, &info);
    assert_int_equal(info.status, JOBQ_FAILED);
    snprintf(error, sizeof error, "%s", info.error ? info.error : "");
    if (attempts)
        *attempts = info.attempts;
    jobq_job_info_clear(&info);
    return error;
}

static const char *
s_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static double
s_num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void
s_url(s_fx_t *fx, char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", fx->http->port, path);
}

//  The scrape of the whole chain (jsonld-1 -> jsonld-2 -> microdata-1 ->
//  broken -> back to jsonld-1), made once and shared by the tests.
static json_t *
s_chain(s_fx_t *fx)
{
    char url[128], input[256];
    s_url(fx, url, sizeof url, "/shop/jsonld-1.html");
    snprintf(input, sizeof input, "{\"url\": \"%s\", \"max_pages\": 10}", url);
    return s_complete(fx, "scrape_reviews", input, fx->chain);
}

static void
s_chain_id(s_fx_t *fx)
{
    if (!fx->chain[0])
        json_decref(s_chain(fx));
}

//  The scrape of empty.html, a page without reviews, made once and shared.
static void
s_empty_id(s_fx_t *fx)
{
    if (!fx->empty[0]) {
        char url[128], in[256];
        s_url(fx, url, sizeof url, "/shop/empty.html");
        snprintf(in, sizeof in, "{\"url\": \"%s\"}", url);
        json_decref(s_complete(fx, "scrape_reviews", in, fx->empty));
    }
}

//  --- scrape_reviews
//  ------------------------------------------------------------

static void
s_review_is(json_t *r,
            const char *author,
            double rating,
            double best,
            const char *date,
            const char *title,
            const char *body)
{
    assert_string_equal(s_str(r, "author"), author);
    assert_true(s_num(r, "rating") == rating);
    assert_true(s_num(r, "best_rating") == best);
    assert_string_equal(s_str(r, "date"), date);
    assert_string_equal(s_str(r, "title"), title);
    assert_string_equal(s_str(r, "body"), body);
}

static void
test_processors_scrape_follows_next_links_until_the_loop(void **state)
{
    s_fx_t *fx = *state;
    json_t *out = s_chain(fx);
    assert_int_equal(s_num(out, "pages_fetched"), 4);
    json_t *pages = json_object_get(out, "pages");
    assert_int_equal(json_array_size(pages), 4);
    static const char *const order[] = {
        "/shop/jsonld-1.html", "/shop/jsonld-2.html", "/shop/microdata-1.html",
        "/shop/broken.html"};
    for (size_t i = 0; i < 4; i++) {
        char url[128];
        s_url(fx, url, sizeof url, order[i]);
        assert_string_equal(json_string_value(json_array_get(pages, i)), url);
    }
    //  The broken page links back to the first: fetched once only.
    assert_non_null(strstr(s_str(out, "stopped"), "already fetched"));
    assert_int_equal(atomic_load(&fx->http->page_hits[0]), 1);
    assert_true(json_is_false(json_object_get(out, "truncated")));
    //  Ten distinct reviews: Eve's appears twice on page 2 but counts once.
    assert_int_equal(s_num(out, "review_count"), 10);
    json_t *rv = json_object_get(out, "reviews");
    assert_int_equal(json_array_size(rv), 10);
    s_review_is(json_array_get(rv, 0), "Alice Martin", 5, 5, "2024-01-15",
                "Great kettle", "Boils fast, quiet, and looks good.");
    s_review_is(json_array_get(rv, 1), "Bob \"The Builder\" Jones", 4, 5,
                "2024-01-28", "Solid",
                "He said \"buy it\", so I did.\nSecond line here.");
    s_review_is(json_array_get(rv, 3), "Dmitri K.", 8, 10, "2024-02-20",
                "Good value", "Eight out of ten.");
    s_review_is(json_array_get(rv, 4), "Eve", 3, 5, "2024-03-01", "Average",
                "Does the job.");
    //  Microdata: nested Person, nested Rating with meta, <time>, <br>.
    s_review_is(json_array_get(rv, 5), "Frank", 1, 5, "2024-03-10", "Terrible",
                "Stopped working after two days.");
    s_review_is(json_array_get(rv, 6), "Grace", 5, 5, "2024-03-18", "Love it",
                "Perfect\nfor tea.");
    s_review_is(json_array_get(rv, 7), "Heidi", 3, 5, "2024-04-02", "OK",
                "Fine, but loud.");
    //  Broken markup.
    s_review_is(json_array_get(rv, 8), "Ivan", 4, 5, "2024-04-15", "Works",
                "Unclosed tags & stray ones everywhere");
    s_review_is(json_array_get(rv, 9), "Judy", 2, 5, "2024-05-01", "Meh",
                "Too small.");
    //  The first aggregate published (JSON-LD, page 1).
    json_t *agg = json_object_get(out, "aggregate_rating");
    assert_true(s_num(agg, "rating_value") == 4.1);
    assert_int_equal(s_num(agg, "review_count"), 11);
    assert_true(s_num(agg, "best_rating") == 5);
    json_decref(out);
}

static void
test_processors_scrape_stops_at_max_pages_and_max_reviews(void **state)
{
    s_fx_t *fx = *state;
    char url[128], input[256];
    s_url(fx, url, sizeof url, "/shop/jsonld-1.html");
    snprintf(input, sizeof input, "{\"url\": \"%s\", \"max_pages\": 2}", url);
    json_t *out = s_complete(fx, "scrape_reviews", input, NULL);
    assert_int_equal(s_num(out, "pages_fetched"), 2);
    assert_int_equal(s_num(out, "review_count"), 5);
    assert_string_equal(s_str(out, "stopped"), "max_pages (2) reached");
    json_decref(out);
    snprintf(input, sizeof input, "{\"url\": \"%s\", \"max_reviews\": 4}", url);
    out = s_complete(fx, "scrape_reviews", input, NULL);
    assert_int_equal(s_num(out, "pages_fetched"), 2);
    assert_int_equal(s_num(out, "review_count"), 4);
    assert_true(json_is_true(json_object_get(out, "truncated")));
    assert_string_equal(s_str(out, "stopped"), "max_reviews (4) reached");
    json_decref(out);
}

static void
test_processors_scrape_page_without_reviews_completes_with_none(void **state)
{
    s_fx_t *fx = *state;
    char url[128], input[256];
    //  Through a redirect: the page is recorded under its final URL.
    s_url(fx, url, sizeof url, "/redirect/empty.html");
    snprintf(input, sizeof input, "{\"url\": \"%s\"}", url);
    json_t *out = s_complete(fx, "scrape_reviews", input, fx->empty);
    assert_int_equal(s_num(out, "review_count"), 0);
    assert_int_equal(json_array_size(json_object_get(out, "reviews")), 0);
    assert_string_equal(s_str(out, "stopped"), "no next page");
    assert_null(json_object_get(out, "aggregate_rating"));
    s_url(fx, url, sizeof url, "/shop/empty.html");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(out, "pages"), 0)),
        url);
    json_decref(out);
}

static void
test_processors_scrape_retries_429_after_retry_after(void **state)
{
    s_fx_t *fx = *state;
    char url[128], input[256];
    s_url(fx, url, sizeof url, "/flaky/jsonld-2.html");
    snprintf(input, sizeof input, "{\"url\": \"%s\", \"max_pages\": 1}", url);
    int64_t t0 = zclock_mono();
    json_t *out = s_complete(fx, "scrape_reviews", input, NULL);
    //  It waited the second the server asked for, then got the page.
    assert_true(zclock_mono() - t0 >= 900);
    assert_int_equal(atomic_load(&fx->http->flaky_hits), 2);
    assert_int_equal(s_num(out, "review_count"), 2);
    json_decref(out);
}

static void
test_processors_scrape_gives_up_on_503_after_its_retries(void **state)
{
    s_fx_t *fx = *state;
    char url[128], input[256];
    s_url(fx, url, sizeof url, "/down/shop.html");
    snprintf(input, sizeof input, "{\"url\": \"%s\", \"retries\": 1}", url);
    char id[JOBQ_ID_LEN + 1];
    jobq_job_info_t info;
    s_run(fx, "scrape_reviews", input, 1, id, &info);
    assert_int_equal(info.status, JOBQ_FAILED);
    assert_non_null(strstr(info.error, "HTTP 503"));
    assert_non_null(strstr(info.error, "after 2 tries"));
    assert_int_equal(atomic_load(&fx->http->down_hits), 2);
    jobq_job_info_clear(&info);
}

static void
test_processors_scrape_times_out_on_a_silent_server(void **state)
{
    s_fx_t *fx = *state;
    char url[128], input[256];
    s_url(fx, url, sizeof url, "/hang/shop.html");
    snprintf(input, sizeof input, "{\"url\": \"%s\", \"timeout_ms\": 500}",
             url);
    char id[JOBQ_ID_LEN + 1];
    jobq_job_info_t info;
    int hits = atomic_load(&fx->http->hang_hits);
    int64_t t0 = zclock_mono();
    s_run(fx, "scrape_reviews", input, 1, id, &info);
    assert_true(zclock_mono() - t0 < 5000);
    assert_int_equal(info.status, JOBQ_FAILED);
    assert_non_null(strstr(info.error, "timed out"));
    //  A timeout is not retried within the job.
    assert_int_equal(atomic_load(&fx->http->hang_hits) - hits, 1);
    jobq_job_info_clear(&info);
}

static void
test_processors_scrape_output_stays_within_the_protocol_limit(void **state)
{
    s_fx_t *fx = *state;
    char url[128], input[256];
    //  200 reviews of 8000 bytes do not fit in 1 MiB of output.
    s_url(fx, url, sizeof url, "/many/200");
    snprintf(input, sizeof input, "{\"url\": \"%s\"}", url);
    char id[JOBQ_ID_LEN + 1];
    jobq_job_info_t info;
    s_run(fx, "scrape_reviews", input, 1, id, &info);
    assert_int_equal(info.status, JOBQ_COMPLETED);
    assert_true(info.output.len <= JOBQ_MAX_OUTPUT_BYTES);
    json_t *out = jobq_json_from_mp(info.output);
    jobq_job_info_clear(&info);
    int n = (int) s_num(out, "review_count");
    assert_true(n > 100 && n < 200);
    assert_int_equal(json_array_size(json_object_get(out, "reviews")), n);
    assert_true(json_is_true(json_object_get(out, "truncated")));
    assert_string_equal(s_str(out, "stopped"), "output limit reached");
    json_decref(out);
}

typedef struct {
    s_fx_t *fx;        //  fixture
    const char *id;    //  job
    const char *says;  //  in its progress message
} s_running_t;

static bool
s_is_running(void *arg)
{
    s_running_t *r = arg;
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    bool yes = jobq_client_status(r->fx->c, r->id, &info) == JOBQ_OK &&
               info.status == JOBQ_RUNNING && info.message &&
               strstr(info.message, r->says);
    jobq_job_info_clear(&info);
    return yes;
}

static void
test_processors_scrape_stops_at_once_when_cancelled(void **state)
{
    s_fx_t *fx = *state;
    //  Both slots busy: one waiting in a transfer that never ends, one in
    //  the delay between pages.
    char hang[128], page[128], in1[256], in2[256];
    s_url(fx, hang, sizeof hang, "/hang/slow.html");
    s_url(fx, page, sizeof page, "/shop/jsonld-1.html");
    snprintf(in1, sizeof in1, "{\"url\": \"%s\", \"timeout_ms\": 60000}", hang);
    snprintf(in2, sizeof in2, "{\"url\": \"%s\", \"delay_ms\": 60000}", page);
    const char *inputs[2] = {in1, in2};
    char ids[2][JOBQ_ID_LEN + 1];
    for (int i = 0; i < 2; i++) {
        jobq_mp_writer_t w;
        jobq_mp_writer_init(&w, 4096);
        char err[64];
        assert_int_equal(jobq_json_to_mp(inputs[i], &w, err, sizeof err),
                         JOBQ_OK);
        jobq_enqueue_t req = {
            "scrape_reviews", "shop-test", {w.data, w.len}, 0, 0, 1, 0, NULL};
        assert_int_equal(jobq_client_enqueue(fx->c, &req, ids[i], NULL),
                         JOBQ_OK);
        jobq_mp_writer_fini(&w);
        //  The first is fetching; the second has its first page and waits.
        s_running_t r = {fx, ids[i], i == 0 ? "fetching" : "so far"};
        assert_true(jobq_test_wait_until(s_is_running, &r, 10000));
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(jobq_client_cancel(fx->c, ids[i], NULL), JOBQ_OK);
    //  A slot is free again at once: a quick job runs.
    int64_t t0 = zclock_mono();
    json_t *out = s_complete(fx, "noop", "{\"x\": 1}", NULL);
    assert_true(zclock_mono() - t0 < 5000);
    json_decref(out);
}

static void
test_processors_scrape_refuses_bad_input_and_bad_pages_for_good(void **state)
{
    s_fx_t *fx = *state;
    char url[128], json_url[128], big[256], input[256], loop[256];
    s_url(fx, url, sizeof url, "/shop/jsonld-1.html");
    s_url(fx, json_url, sizeof json_url, "/shop/data.json");
    snprintf(big, sizeof big, "{\"url\": \"%s\", \"max_page_bytes\": 1024}",
             url);
    s_url(fx, url, sizeof url, "/loop/x");
    snprintf(loop, sizeof loop, "{\"url\": \"%s\"}", url);
    const struct {
        const char *input;  //  job input
        const char *error;  //  part of the error
    } cases[] = {
        {"{}", "input 'url': required"},
        {"{\"url\": 42}", "input 'url'"},
        {"{\"url\": \"ftp://127.0.0.1/x\"}", "scheme 'ftp' is not allowed"},
        {"{\"url\": \"not a url\"}", "input 'url'"},
        {"{\"url\": \"http://127.0.0.1/\", \"max_pages\": 0}",
         "input 'max_pages'"},
        {"{\"url\": \"http://127.0.0.1/\", \"max_pages\": 101}",
         "input 'max_pages'"},
        {"{\"url\": \"http://127.0.0.1/\", \"delay_ms\": -1}",
         "input 'delay_ms'"},
        {"{\"url\": \"http://127.0.0.1/\", \"user_agent\": \"a\\r\\nX: y\"}",
         "input 'user_agent'"},
        {big, "larger than 1024 bytes"},
        {loop, "Maximum (5) redirects followed"},
        {NULL, "is not HTML (Content-Type: application/json)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *in = cases[i].input;
        if (!in) {
            snprintf(input, sizeof input, "{\"url\": \"%s\"}", json_url);
            in = input;
        }
        uint32_t attempts = 0;
        const char *err = s_fails(fx, "scrape_reviews", in, &attempts);
        if (!strstr(err, cases[i].error))
            fail_msg("%s: error '%s' lacks '%s'", in, err, cases[i].error);
        //  Permanent: three attempts allowed, one made.
        assert_int_equal(attempts, 1);
    }
}

static void
test_processors_scrape_reads_the_example_shop_from_files(void **state)
{
    s_fx_t *fx = *state;
    char input[1024];
    snprintf(input, sizeof input,
             "{\"url\": \"file://%s/examples/shop/index.html\"}",
             JOBQ_SOURCE_DIR);
    json_t *out = s_complete(fx, "scrape_reviews", input, NULL);
    assert_int_equal(s_num(out, "pages_fetched"), 3);
    assert_int_equal(s_num(out, "review_count"), 11);
    assert_string_equal(s_str(out, "stopped"), "no next page");
    json_decref(out);
}

//  The words of a refusal after the URL it names.
static const char *
s_refusal(const char *error)
{
    const char *w = strstr(error, ": not an address this worker may reach");
    if (!strstr(error, "refused to fetch") || !w)
        fail_msg("not a refusal: '%s'", error);
    return w;
}

//  docs/PROCESSORS.md, scrape_reviews: an address the worker may not reach
//  is refused in every spelling the resolver takes, before any connection,
//  for good (one attempt), and with the same words whether a server
//  listens there or not.
static void
test_processors_scrape_refuses_inward_addresses_in_every_spelling(void **state)
{
    s_fx_t *fx = *state;
    int p = fx->http->canary_port;
    //  Each URL is http://HOST:PORT/.
    static const char *const spellings[] = {
        "127.0.0.2",
        "2130706434",          //  decimal
        "0177.0.0.2",          //  octal
        "0x7f000002",          //  hex
        "127.2",               //  short
        "[::ffff:127.0.0.2]",  //  IPv4-mapped IPv6
        "[::ffff:7f00:2]",     //  the same, in hex
        "0.0.0.0",             //  unspecified: this host
        "[::]",
        "127.0.0.3",  //  nothing listens there
        "[::1]"};
    char first[400] = "";
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        char url[128], input[256];
        snprintf(url, sizeof url, "http://%s:%d/shop/jsonld-1.html",
                 spellings[i], p);
        snprintf(input, sizeof input, "{\"url\": \"%s\"}", url);
        uint32_t attempts = 0;
        const char *words =
            s_refusal(s_fails(fx, "scrape_reviews", input, &attempts));
        assert_int_equal(attempts, 1);
        if (!first[0])
            snprintf(first, sizeof first, "%s", words);
        assert_string_equal(words, first);
    }
    assert_int_equal(s_canary_hits(fx->canary), 0);
}

//  A redirect and a rel="next" link are checked like the first URL.
static void
test_processors_scrape_refuses_redirects_and_next_links_inward(void **state)
{
    s_fx_t *fx = *state;
    char url[128], input[256];
    s_url(fx, url, sizeof url, "/away/jsonld-1.html");
    snprintf(input, sizeof input, "{\"url\": \"%s\"}", url);
    uint32_t attempts = 0;
    s_refusal(s_fails(fx, "scrape_reviews", input, &attempts));
    assert_int_equal(attempts, 1);
    //  The next link: page 1 is kept, the scrape stops at the refusal.
    s_url(fx, url, sizeof url, "/nextaway");
    snprintf(input, sizeof input, "{\"url\": \"%s\", \"max_pages\": 5}", url);
    json_t *out = s_complete(fx, "scrape_reviews", input, NULL);
    assert_int_equal(s_num(out, "pages_fetched"), 1);
    assert_int_equal(s_num(out, "review_count"), 1);
    s_refusal(s_str(out, "stopped"));
    json_decref(out);
    assert_int_equal(s_canary_hits(fx->canary), 0);
}

//  file:// only inside --allow-files (the examples here): a file outside,
//  existing or not, is refused alike.
static void
test_processors_scrape_reads_no_file_outside_its_directory(void **state)
{
    s_fx_t *fx = *state;
    char a[1024], b[1024];
    snprintf(a, sizeof a, "{\"url\": \"file://%s/README.md\"}",
             JOBQ_SOURCE_DIR);
    snprintf(b, sizeof b,
             "{\"url\": \"file://%s/examples/../no-such-file.html\"}",
             JOBQ_SOURCE_DIR);
    char wa[400];
    snprintf(wa, sizeof wa, "%s",
             s_refusal(s_fails(fx, "scrape_reviews", a, NULL)));
    assert_string_equal(s_refusal(s_fails(fx, "scrape_reviews", b, NULL)), wa);
    assert_string_equal(
        s_refusal(s_fails(fx, "scrape_reviews",
                          "{\"url\": \"file:///etc/passwd\"}", NULL)),
        wa);
}

//  The last message of a job that must end in status.
static char *
s_message(s_fx_t *fx, const char *type, const char *json, int status)
{
    char id[JOBQ_ID_LEN + 1];
    jobq_job_info_t info;
    s_run(fx, type, json, 1, id, &info);
    assert_int_equal(info.status, status);
    const char *text = status == JOBQ_FAILED ? info.error : info.message;
    char *copy = strdup(text ? text : "");
    jobq_job_info_clear(&info);
    return copy;
}

static void
test_processors_messages_say_one_review_not_one_reviews(void **state)
{
    s_fx_t *fx = *state;
    char url[128], input[256], id[JOBQ_ID_LEN + 1];
    s_url(fx, url, sizeof url, "/many/1");
    snprintf(input, sizeof input, "{\"url\": \"%s\"}", url);
    json_decref(s_complete(fx, "scrape_reviews", input, id));
    jobq_job_info_t info;
    assert_int_equal(jobq_client_status(fx->c, id, &info), JOBQ_OK);
    assert_string_equal(info.message, "1 review from 1 page");
    jobq_job_info_clear(&info);
    snprintf(input, sizeof input, "{\"source_job\": \"%s\"}", id);
    char *msg = s_message(fx, "export_data", input, JOBQ_COMPLETED);
    if (strncmp(msg, "wrote 1 row to ", 15) != 0)
        fail_msg("export: '%s'", msg);
    free(msg);
    snprintf(input, sizeof input, "{\"source_jobs\": [\"%s\"]}", id);
    msg = s_message(fx, "generate_report", input, JOBQ_COMPLETED);
    if (strncmp(msg, "1 review, report in ", 20) != 0)
        fail_msg("report: '%s'", msg);
    free(msg);
    //  One try, no retry.
    s_url(fx, url, sizeof url, "/down/once.html");
    snprintf(input, sizeof input, "{\"url\": \"%s\", \"retries\": 0}", url);
    msg = s_message(fx, "scrape_reviews", input, JOBQ_FAILED);
    if (!strstr(msg, "HTTP 503") || !strstr(msg, " after 1 try"))
        fail_msg("503: '%s'", msg);
    free(msg);
}

//  --- export_data
//  ----------------------------------------------------------------

static char *
s_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

//  Split RFC 4180 CSV: records and the fields of each; *nrec records.
typedef struct {
    char *f[16];  //  fields, owned
    int n;        //  fields
} s_csv_rec_t;

static s_csv_rec_t *
s_csv_parse(const char *s, size_t len, int *nrec)
{
    s_csv_rec_t *recs = calloc(64, sizeof *recs);
    int r = 0;
    size_t i = 0;
    while (i < len && r < 64) {
        s_csv_rec_t *rec = &recs[r++];
        for (;;) {
            char *field = calloc(1, len + 1);
            size_t k = 0;
            if (s[i] == '"') {
                i++;
                while (i < len) {
                    if (s[i] == '"' && i + 1 < len && s[i + 1] == '"') {
                        field[k++] = '"';
                        i += 2;
                    } else if (s[i] == '"') {
                        i++;
                        break;
                    } else {
                        field[k++] = s[i++];
                    }
                }
            } else {
                while (i < len && s[i] != ',' && s[i] != '\r')
                    field[k++] = s[i++];
            }
            if (rec->n < 16)
                rec->f[rec->n++] = field;
            else
                free(field);
            if (i < len && s[i] == ',') {
                i++;
                continue;
            }
            //  Every record ends with CRLF.
            assert_true(i + 1 < len && s[i] == '\r' && s[i + 1] == '\n');
            i += 2;
            break;
        }
    }
    *nrec = r;
    return recs;
}

static void
s_csv_free(s_csv_rec_t *recs, int n)
{
    for (int r = 0; r < n; r++)
        for (int i = 0; i < recs[r].n; i++)
            free(recs[r].f[i]);
    free(recs);
}

static void
test_processors_export_csv_quotes_fields_and_counts_rows(void **state)
{
    s_fx_t *fx = *state;
    s_chain_id(fx);
    char input[256];
    snprintf(input, sizeof input,
             "{\"source_job\": \"%s\", \"format\": \"csv\", "
             "\"filename\": \"kettle.csv\"}",
             fx->chain);
    json_t *out = s_complete(fx, "export_data", input, NULL);
    char path[700];
    snprintf(path, sizeof path, "%s/shop-test/kettle.csv", fx->exports);
    assert_non_null(
        strstr(s_str(out, "path"), "/exports/shop-test/kettle.csv"));
    assert_string_equal(s_str(out, "format"), "csv");
    assert_int_equal(s_num(out, "rows"), 10);
    size_t len;
    char *csv = s_read_file(path, &len);
    assert_int_equal(s_num(out, "bytes"), len);
    assert_non_null(
        strstr(csv, "author,rating,best_rating,date,title,body\r\n"));
    //  Quotes doubled, and the field quoted for its comma, quote or newline.
    assert_non_null(strstr(csv, "\r\n\"Bob \"\"The Builder\"\" Jones\",4,5,"
                                "2024-01-28,Solid,\"He said \"\"buy it\"\", so "
                                "I did.\nSecond line here.\"\r\n"));
    assert_non_null(strstr(csv, ",\"Boils fast, quiet, and looks good.\"\r\n"));
    int n;
    s_csv_rec_t *recs = s_csv_parse(csv, len, &n);
    assert_int_equal(n, 11);  //  header and ten rows
    for (int r = 0; r < n; r++)
        assert_int_equal(recs[r].n, 6);
    assert_string_equal(recs[2].f[0], "Bob \"The Builder\" Jones");
    assert_string_equal(recs[2].f[5],
                        "He said \"buy it\", so I did.\nSecond line here.");
    assert_string_equal(recs[4].f[1], "8");
    assert_string_equal(recs[4].f[2], "10");
    assert_string_equal(recs[10].f[0], "Judy");
    s_csv_free(recs, n);
    free(csv);
    json_decref(out);
    //  No temporary file left behind.
    struct stat st;
    char tmpl[700];
    snprintf(tmpl, sizeof tmpl, "%s/shop-test/.kettle.csv", fx->exports);
    assert_true(stat(tmpl, &st) != 0);
}

//  An outside audit: one shop overwrote another's export by choosing the
//  same file name, and any job could export any shop's scrape by its id.
//  Files go under exports/SHOP/, and another shop's source job reads as a
//  job that does not exist, word for word.
static void
test_processors_shops_keep_to_their_own_files_and_jobs(void **state)
{
    s_fx_t *fx = *state;
    s_chain_id(fx);  //  shop-test's scrape: ten reviews
    char input[512];
    snprintf(input, sizeof input,
             "{\"source_job\": \"%s\", \"filename\": \"same.csv\"}", fx->chain);
    json_t *out = s_complete(fx, "export_data", input, NULL);
    assert_int_equal(s_num(out, "rows"), 10);
    json_decref(out);
    //  Another shop: shop-test's job is unknown to it, as a made-up id is.
    s_shop = "shop-other";
    char *theirs = strdup(s_fails(fx, "export_data", input, NULL));
    char *made_up = strdup(s_fails(
        fx, "export_data",
        "{\"source_job\": \"0000000000000001\", \"filename\": \"x.csv\"}",
        NULL));
    char *a = strstr(theirs, fx->chain),
         *b = strstr(made_up, "0000000000000001");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a - theirs, b - made_up);
    assert_string_equal(a + JOBQ_ID_LEN, b + JOBQ_ID_LEN);
    free(theirs);
    free(made_up);
    //  Its own scrape (the example shop, eleven reviews), the same file
    //  name: a file of its own.
    char scrape[JOBQ_ID_LEN + 1];
    snprintf(input, sizeof input,
             "{\"url\": \"file://%s/examples/shop/index.html\"}",
             JOBQ_SOURCE_DIR);
    json_decref(s_complete(fx, "scrape_reviews", input, scrape));
    snprintf(input, sizeof input,
             "{\"source_job\": \"%s\", \"filename\": \"same.csv\"}", scrape);
    out = s_complete(fx, "export_data", input, NULL);
    assert_int_equal(s_num(out, "rows"), 11);
    json_decref(out);
    //  A shop named ".." writes inside the export directory too.
    s_shop = "..";
    snprintf(input, sizeof input,
             "{\"url\": \"file://%s/examples/shop/index.html\"}",
             JOBQ_SOURCE_DIR);
    json_decref(s_complete(fx, "scrape_reviews", input, scrape));
    snprintf(input, sizeof input,
             "{\"source_job\": \"%s\", \"filename\": \"dots.csv\"}", scrape);
    out = s_complete(fx, "export_data", input, NULL);
    char want[700];
    snprintf(want, sizeof want, "%s/%%2e./dots.csv", fx->exports);
    char real[PATH_MAX];
    assert_non_null(realpath(want, real));
    assert_string_equal(s_str(out, "path"), real);
    json_decref(out);
    s_shop = "shop-test";
    char path[700];
    size_t len;
    snprintf(path, sizeof path, "%s/shop-test/same.csv", fx->exports);
    char *csv = s_read_file(path, &len);
    assert_non_null(strstr(csv, "Alice Martin"));
    free(csv);
    snprintf(path, sizeof path, "%s/shop-other/same.csv", fx->exports);
    csv = s_read_file(path, &len);
    assert_null(strstr(csv, "Alice Martin"));
    free(csv);
}

static void
test_processors_export_ndjson_and_json_with_chosen_fields(void **state)
{
    s_fx_t *fx = *state;
    s_chain_id(fx);
    char input[256];
    snprintf(input, sizeof input,
             "{\"source_job\": \"%s\", \"format\": \"ndjson\"}", fx->chain);
    json_t *out = s_complete(fx, "export_data", input, NULL);
    assert_int_equal(s_num(out, "rows"), 10);
    size_t len;
    char *text = s_read_file(s_str(out, "path"), &len);
    //  Named after the export job by default.
    assert_non_null(strstr(s_str(out, "path"), "/export-"));
    int lines = 0;
    for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        json_error_t e;
        json_t *o = json_loadb(line, (size_t) (nl - line), 0, &e);
        assert_non_null(o);
        assert_int_equal(json_object_size(o), 6);
        json_decref(o);
        lines++;
    }
    assert_int_equal(lines, 10);
    free(text);
    json_decref(out);

    snprintf(input, sizeof input,
             "{\"source_job\": \"%s\", \"format\": \"json\", "
             "\"fields\": [\"title\", \"rating\"], \"filename\": \"k.json\"}",
             fx->chain);
    out = s_complete(fx, "export_data", input, NULL);
    text = s_read_file(s_str(out, "path"), &len);
    json_error_t e;
    json_t *all = json_loadb(text, len, 0, &e);
    assert_non_null(all);
    assert_int_equal(json_array_size(all), 10);
    json_t *first = json_array_get(all, 0);
    assert_int_equal(json_object_size(first), 2);
    assert_string_equal(s_str(first, "title"), "Great kettle");
    assert_true(s_num(first, "rating") == 5);
    json_decref(all);
    free(text);
    json_decref(out);
}

static void
test_processors_export_refuses_filenames_that_escape(void **state)
{
    s_fx_t *fx = *state;
    s_chain_id(fx);
    //  NUL bytes cannot come through JSON input: test_outfile has them.
    char longname[160];
    memset(longname, 'a', sizeof longname);
    snprintf(longname + 129, sizeof longname - 129, ".csv");
    const char *const names[] = {
        "../escape.csv", "/tmp/jobq-escape.csv", "",      "a/b.csv", "..",
        ".hidden",       "sub/../x.csv",         longname};
    char input[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(input, sizeof input,
                 "{\"source_job\": \"%s\", \"filename\": \"%s\"}", fx->chain,
                 names[i]);
        uint32_t attempts;
        const char *err = s_fails(fx, "export_data", input, &attempts);
        if (!strstr(err, "input 'filename'"))
            fail_msg("%s: %s", names[i], err);
        assert_int_equal(attempts, 1);
    }
    char escaped[700];
    snprintf(escaped, sizeof escaped, "%s/escape.csv", fx->dir);
    struct stat st;
    assert_true(stat(escaped, &st) != 0);
    //  Other bad input, and sources that are not there or not done.
    snprintf(input, sizeof input,
             "{\"source_job\": \"%s\", \"format\": "
             "\"xml\"}",
             fx->chain);
    assert_non_null(
        strstr(s_fails(fx, "export_data", input, NULL), "input 'format'"));
    assert_non_null(
        strstr(s_fails(fx, "export_data", "{}", NULL), "input 'source_job'"));
    assert_non_null(
        strstr(s_fails(fx, "export_data", "{\"source_job\": \"xyz\"}", NULL),
               "not a job id"));
    uint32_t attempts;
    assert_non_null(
        strstr(s_fails(fx, "export_data",
                       "{\"source_job\": \"00000000000000ff\"}", &attempts),
               "not found"));
    assert_int_equal(attempts, 1);
    char failed[JOBQ_ID_LEN + 1];
    jobq_job_info_t info;
    s_run(fx, "fail", "{\"permanent\": true}", 1, failed, &info);
    jobq_job_info_clear(&info);
    snprintf(input, sizeof input, "{\"source_job\": \"%s\"}", failed);
    assert_non_null(strstr(s_fails(fx, "export_data", input, &attempts),
                           "ended failed, not completed"));
    assert_int_equal(attempts, 1);
    snprintf(input, sizeof input,
             "{\"source_job\": \"%s\", \"list\": \"pages\"}", fx->chain);
    assert_non_null(
        strstr(s_fails(fx, "export_data", input, NULL), "is not a map"));
}

//  Export the records of source, which has none, as fmt into name; the
//  file's text in a fresh string (free it), its output in *out (decref it).
static char *
s_export_none(s_fx_t *fx,
              const char *source,
              const char *fmt,
              const char *name,
              json_t **out)
{
    char input[256];
    snprintf(input, sizeof input,
             "{\"source_job\": \"%s\", \"format\": \"%s\", "
             "\"filename\": \"%s\"}",
             source, fmt, name);
    *out = s_complete(fx, "export_data", input, NULL);
    size_t len;
    char *text = s_read_file(s_str(*out, "path"), &len);
    assert_int_equal(s_num(*out, "bytes"), len);
    assert_int_equal(s_num(*out, "rows"), 0);
    return text;
}

static void
test_processors_export_of_no_reviews_still_has_the_csv_header(void **state)
{
    s_fx_t *fx = *state;
    s_empty_id(fx);
    //  No record names the columns, but a scrape's reviews have known ones.
    json_t *out;
    char *text = s_export_none(fx, fx->empty, "csv", "none.csv", &out);
    assert_string_equal(text, "author,rating,best_rating,date,title,body\r\n");
    json_t *cols = json_object_get(out, "columns");
    assert_int_equal(json_array_size(cols), 6);
    assert_string_equal(json_string_value(json_array_get(cols, 0)), "author");
    assert_string_equal(json_string_value(json_array_get(cols, 5)), "body");
    free(text);
    json_decref(out);
    //  JSON: an empty array; NDJSON: no line at all.
    text = s_export_none(fx, fx->empty, "json", "none.json", &out);
    assert_string_equal(text, "[]\n");
    free(text);
    json_decref(out);
    text = s_export_none(fx, fx->empty, "ndjson", "none.ndjson", &out);
    assert_string_equal(text, "");
    free(text);
    json_decref(out);
}

//  --- generate_report
//  --------------------------------------------------------------

static void
test_processors_report_figures_match_the_fixtures(void **state)
{
    s_fx_t *fx = *state;
    s_chain_id(fx);
    s_empty_id(fx);
    char input[512];
    snprintf(input, sizeof input,
             "{\"source_jobs\": [\"%s\", \"%s\"], \"title\": \"Kettle <report> "
             "& co\", \"filename\": \"kettle.html\"}",
             fx->chain, fx->empty);
    json_t *out = s_complete(fx, "generate_report", input, NULL);
    assert_int_equal(s_num(out, "review_count"), 10);
    assert_int_equal(s_num(out, "rated_count"), 10);
    //  5 4 2 4 3 1 5 3 4 2 (8 of 10 is 4): 33 / 10.
    assert_true(fabs(s_num(out, "average_rating") - 3.3) < 1e-9);
    json_t *dist = json_object_get(out, "distribution");
    static const int want[5] = {1, 2, 2, 3, 2};
    for (int i = 0; i < 5; i++) {
        char k[2] = {(char) ('1' + i), 0};
        assert_int_equal(s_num(dist, k), want[i]);
    }
    json_t *months = json_object_get(out, "months");
    assert_int_equal(json_object_size(months), 5);
    assert_int_equal(s_num(months, "2024-01"), 2);
    assert_int_equal(s_num(months, "2024-02"), 2);
    assert_int_equal(s_num(months, "2024-03"), 3);
    assert_int_equal(s_num(months, "2024-04"), 2);
    assert_int_equal(s_num(months, "2024-05"), 1);
    assert_int_equal(s_num(out, "undated"), 0);
    assert_string_equal(s_str(json_object_get(out, "best"), "author"),
                        "Alice Martin");
    assert_string_equal(s_str(json_object_get(out, "worst"), "author"),
                        "Frank");
    size_t len;
    char *html = s_read_file(s_str(out, "path"), &len);
    assert_int_equal(s_num(out, "bytes"), len);
    assert_non_null(strstr(html, "<title>Kettle &lt;report&gt; &amp; co"));
    assert_non_null(strstr(html, "<svg"));
    assert_non_null(strstr(html, "<title>2024-03: 3</title>"));
    assert_non_null(strstr(html, "<title>4 stars: 3</title>"));
    assert_non_null(strstr(html, "<b>3.30</b>"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "href="));
    free(html);
    json_decref(out);
    //  Bad input.
    assert_non_null(strstr(s_fails(fx, "generate_report", "{}", NULL),
                           "input 'source_jobs'"));
    snprintf(input, sizeof input, "{\"source_jobs\": [\"%s\", \"%s\"]}",
             fx->chain, fx->chain);
    assert_non_null(
        strstr(s_fails(fx, "generate_report", input, NULL), "appears twice"));
    snprintf(input, sizeof input,
             "{\"source_jobs\": \"%s\", \"filename\": \"../r.html\"}",
             fx->chain);
    assert_non_null(strstr(s_fails(fx, "generate_report", input, NULL),
                           "input 'filename'"));
}

#define T(f) cmocka_unit_test(f)

int
main(void)
{
    //  Never through a proxy: everything here is on 127.0.0.1.
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    signal(SIGPIPE, SIG_IGN);
    zsys_init();
    zsys_set_linger(0);
    const struct CMUnitTest tests[] = {
        T(test_processors_scrape_follows_next_links_until_the_loop),
        T(test_processors_scrape_stops_at_max_pages_and_max_reviews),
        T(test_processors_scrape_page_without_reviews_completes_with_none),
        T(test_processors_scrape_retries_429_after_retry_after),
        T(test_processors_scrape_gives_up_on_503_after_its_retries),
        T(test_processors_scrape_times_out_on_a_silent_server),
        T(test_processors_scrape_output_stays_within_the_protocol_limit),
        T(test_processors_scrape_stops_at_once_when_cancelled),
        T(test_processors_scrape_refuses_bad_input_and_bad_pages_for_good),
        T(test_processors_scrape_reads_the_example_shop_from_files),
        T(test_processors_scrape_refuses_inward_addresses_in_every_spelling),
        T(test_processors_scrape_refuses_redirects_and_next_links_inward),
        T(test_processors_scrape_reads_no_file_outside_its_directory),
        T(test_processors_messages_say_one_review_not_one_reviews),
        T(test_processors_export_csv_quotes_fields_and_counts_rows),
        T(test_processors_shops_keep_to_their_own_files_and_jobs),
        T(test_processors_export_ndjson_and_json_with_chosen_fields),
        T(test_processors_export_refuses_filenames_that_escape),
        T(test_processors_export_of_no_reviews_still_has_the_csv_header),
        T(test_processors_report_figures_match_the_fixtures),
    };
    return cmocka_run_group_tests_name("processors", tests, s_setup,
                                       s_teardown);
}
