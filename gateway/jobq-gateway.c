/*  jobq-gateway: jobq over HTTP and JSON (docs/HTTP.md), on libmicrohttpd.

    A client of the broker like any other: libjobq's client API, never the
    store. A pool of 32 threads serves requests; each has its own broker client
    and waits for the broker's answer, so 32 requests are in flight.
*/
#include "jobq_app.h"
#include "jobq_coalesce.h"
#include "jobq_http.h"
#include "jobq_sse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define S_PROG      "jobq-gateway"
#define S_THREADS   32     //  request threads (each waits on the broker)
#define S_MAX_CONNS 12000  //  connections at once (event streams count)
#define S_IDLE_S    60     //  an idle connection is closed after this

static void
s_usage(FILE *out)
{
    fprintf(out,
            "usage: jobq-gateway [options]\n"
            "\n"
            "jobq over HTTP and JSON (docs/HTTP.md).\n"
            "\n"
            "  --listen ADDR:PORT  where to listen (default 127.0.0.1:8080);\n"
            "                      beyond loopback only with --tokens\n"
            "  --tokens FILE       bearer tokens: TOKEN ROLE SHOPS [rate=N]\n"
            "                      per line; ROLE read, write or admin\n"
            "                      (docs/HTTP.md)\n"
            "  --token-rate N      requests a second a token may make, N at\n"
            "                      once (default 1000; 0: no limit); a\n"
            "                      token's rate=N overrides it\n"
            "  --broker EP         broker client endpoint\n"
            "                      (default tcp://127.0.0.1:5555)\n"
            "  --events EP         broker event endpoint\n"
            "                      (default tcp://127.0.0.1:5557)\n"
            "  --cors A,B,...      origins a browser app may call from\n"
            "  --cert FILE_secret  the gateway's certificate, for a broker\n"
            "                      with keys (or JOBQ_CERT)\n"
            "  --broker-key KEY    the broker's public key (or\n"
            "                      JOBQ_BROKER_KEY)\n"
            "  --timeout-ms N      wait for the broker up to N ms per request\n"
            "                      (default 3000)\n"
            "  --help, --version\n");
}

//  --tokens, or NULL, and --token-rate.
static jobq_tokens_t *s_tokens;
static int64_t s_token_rate = 1000;

//  The dashboard (gateway/dashboard/, compiled in by CMake).
extern const unsigned char jobq_dash_index_html[], jobq_dash_app_css[],
    jobq_dash_app_js[];
extern const size_t jobq_dash_index_html_len, jobq_dash_app_css_len,
    jobq_dash_app_js_len;

static void
s_header(struct MHD_Response *r, const char *name, const char *value);

//  Answer a GET of one of the dashboard's files; false if url is none.
//  They hold no data, so no token is asked for them; what they fetch
//  does.
static bool
s_dashboard(struct MHD_Connection *conn, const char *url, enum MHD_Result *rc)
{
    const unsigned char *data;
    size_t len;
    const char *type;
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) {
        data = jobq_dash_index_html;
        len = jobq_dash_index_html_len;
        type = "text/html; charset=utf-8";
    } else if (strcmp(url, "/app.css") == 0) {
        data = jobq_dash_app_css;
        len = jobq_dash_app_css_len;
        type = "text/css; charset=utf-8";
    } else if (strcmp(url, "/app.js") == 0) {
        data = jobq_dash_app_js;
        len = jobq_dash_app_js_len;
        type = "text/javascript; charset=utf-8";
    } else {
        return false;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *) data, MHD_RESPMEM_PERSISTENT);
    if (!r) {
        *rc = MHD_NO;
        return true;
    }
    s_header(r, "Content-Type", type);
    //  Only its own files run, and nothing frames it.
    s_header(r, "Content-Security-Policy",
             "default-src 'self'; frame-ancestors 'none'; base-uri 'none'");
    s_header(r, "X-Content-Type-Options", "nosniff");
    s_header(r, "Cache-Control", "no-cache");
    *rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return true;
}

//  The token of an event stream's request into *who (NULL without
//  --tokens), taken from its Authorization header or jobq_token cookie.
//  False, with res a 401, when tokens are asked for and it has none. res
//  is cleared either way.
static bool
s_stream_token(struct MHD_Connection *conn,
               const jobq_token_t **who,
               jobq_http_response_t *res)
{
    memset(res, 0, sizeof *res);
    *who = NULL;
    if (!s_tokens)
        return true;
    *who = jobq_tokens_check_request(
        s_tokens,
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Cookie"));
    int wait_s = 1;
    if (*who && !jobq_tokens_take(s_tokens, *who, s_token_rate, &wait_s)) {
        res->status = 429;
        res->retry_after = wait_s;
        res->body = strdup("{\"error\":{\"code\":\"rate_limited\","
                           "\"message\":\"this token made more requests than "
                           "its rate allows\"}}");
        return false;
    }
    if (*who)
        return true;
    res->status = 401;
    res->challenge = true;
    res->body = strdup("{\"error\":{\"code\":\"unauthorized\",\"message\":"
                       "\"send Authorization: Bearer <token>\"}}");
    return false;
}

//  A shop id: 1 to 128 of [A-Za-z0-9_.:-] (docs/PROTOCOL.md 5.3).
static bool
s_shop_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > JOBQ_MAX_SHOP_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("_.:-", s[i])))
            return false;
    return true;
}

//  --- one request ------------------------------------------------------------

typedef struct {
    char *body;    //  the upload so far
    size_t len;    //  bytes in body
    bool too_big;  //  past JOBQ_HTTP_MAX_BODY: the rest is dropped
    bool taken;    //  an event stream the hub writes: over when called
} s_upload_t;

static void
s_header(struct MHD_Response *r, const char *name, const char *value)
{
    if (value && *value)
        MHD_add_response_header(r, name, value);
}

static enum MHD_Result
s_answer(struct MHD_Connection *conn, const jobq_http_response_t *res)
{
    const char *body = res->body ? res->body : "";
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (res->body)
        s_header(r, "Content-Type",
                 res->content_type ? res->content_type : "application/json");
    s_header(r, "Allow", res->allow);
    if (res->challenge)
        s_header(r, "WWW-Authenticate", "Bearer realm=\"jobq\"");
    if (res->retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", res->retry_after);
        s_header(r, "Retry-After", ra);
    }
    //  Every answer, streams' refusals and 413s too, from the request's
    //  Origin.
    const char *cors = jobq_http_cors(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"));
    if (cors) {
        s_header(r, "Access-Control-Allow-Origin", cors);
        s_header(r, "Vary", "Origin");
        if (res->preflight) {
            s_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            s_header(r, "Access-Control-Allow-Headers",
                     "Content-Type, Authorization, Idempotency-Key, "
                     "Last-Event-ID");
            s_header(r, "Access-Control-Max-Age", "600");
        }
    }
    s_header(r, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned) res->status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result
s_request(void *cls,
          struct MHD_Connection *conn,
          const char *url,
          const char *method,
          const char *version,
          const char *upload,
          size_t *upload_size,
          void **con_cls)
{
    (void) cls;
    (void) version;
    s_upload_t *u = *con_cls;
    if (!u) {  //  headers only, so far
        u = calloc(1, sizeof *u);
        if (!u)
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (u->taken)  //  its event stream ended: close the connection
        return MHD_NO;
    if (*upload_size) {
        if (!u->too_big && u->len + *upload_size <= JOBQ_HTTP_MAX_BODY) {
            char *b = realloc(u->body, u->len + *upload_size + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + u->len, upload, *upload_size);
            u->body = b;
            u->len += *upload_size;
            u->body[u->len] = '\0';
        } else {
            u->too_big = true;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    jobq_http_response_t res;
    enum MHD_Result drc;
    if (!u->too_big && strcmp(method, "GET") == 0 &&
        s_dashboard(conn, url, &drc))
        return drc;
    //  A shop's event stream (or every shop's): answered by the hub.
    if (!u->too_big && strcmp(method, "GET") == 0 &&
        strcmp(url, "/v1/events") == 0) {
        const jobq_token_t *who = NULL;
        const char *shop =
            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "shop");
        if (!s_stream_token(conn, &who, &res)) {
            //  res holds the 401
        } else if (who && !who->all_shops && !shop && who->nshops == 1) {
            shop = who->shops[0];
        } else if (who && !who->all_shops && !shop) {
            res.status = 400;
            res.body = strdup("{\"error\":{\"code\":\"bad_request\","
                              "\"message\":\"give shop=: this token has "
                              "several shops\"}}");
        } else if (who && shop && !jobq_token_shop(who, shop, strlen(shop))) {
            res.status = 403;
            res.body = strdup("{\"error\":{\"code\":\"forbidden\","
                              "\"message\":\"this token may not watch "
                              "that shop\"}}");
        } else if (shop && !s_shop_ok(shop)) {
            res.status = 400;
            res.body = strdup("{\"error\":{\"code\":\"bad_request\","
                              "\"message\":\"shop: use 1-128 of "
                              "[A-Za-z0-9_.:-]\"}}");
        }
        if (!res.status &&
            jobq_sse_open_shop(conn, shop ? shop : "",
                               MHD_lookup_connection_value(
                                   conn, MHD_HEADER_KIND, "Last-Event-ID"),
                               &u->taken, &res) == MHD_YES)
            return MHD_YES;
        enum MHD_Result rc = s_answer(conn, &res);
        free(res.body);
        return rc;
    }
    //  A job's event stream: answered by the hub from now on.
    size_t ul = strlen(url);
    if (!u->too_big && strcmp(method, "GET") == 0 && ul == 9 + 16 + 7 &&
        strncmp(url, "/v1/jobs/", 9) == 0 && strcmp(url + 25, "/events") == 0) {
        char id[JOBQ_ID_LEN + 1];
        memcpy(id, url + 9, JOBQ_ID_LEN);
        id[JOBQ_ID_LEN] = '\0';
        uint64_t v;
        const jobq_token_t *who = NULL;
        if (!s_stream_token(conn, &who, &res)) {
            enum MHD_Result rc = s_answer(conn, &res);
            free(res.body);
            return rc;
        }
        if (jobq_id_parse(id, JOBQ_ID_LEN, &v) == JOBQ_OK) {
            if (jobq_sse_open(conn, id,
                              MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                          "Last-Event-ID"),
                              who, &u->taken, &res) == MHD_YES)
                return MHD_YES;
            enum MHD_Result rc = s_answer(conn, &res);
            free(res.body);
            return rc;
        }
    }
    if (u->too_big) {
        memset(&res, 0, sizeof res);
        res.status = 413;
        char msg[160];
        snprintf(msg, sizeof msg,
                 "{\"error\":{\"code\":\"too_large\",\"message\":\"a body "
                 "takes at most %u bytes\"}}",
                 JOBQ_HTTP_MAX_BODY);
        res.body = strdup(msg);
    } else {
        //  The path and its query: libmicrohttpd gives the path alone; the
        //  query is rebuilt from its arguments below.
        char query[2048] = "";
        static const char *const names[] = {"shop",  "type",   "status",
                                            "limit", "cursor", NULL};
        size_t ql = 0;
        for (int i = 0; names[i]; i++) {
            const char *v = MHD_lookup_connection_value(
                conn, MHD_GET_ARGUMENT_KIND, names[i]);
            if (!v)
                continue;
            //  Kept encoded-safe: values are re-escaped where needed.
            int n = snprintf(query + ql, sizeof query - ql,
                             "%s%s=", ql ? "&" : "", names[i]);
            if (n < 0 || (size_t) n >= sizeof query - ql)
                break;
            ql += (size_t) n;
            for (const char *p = v; *p && ql + 4 < sizeof query; p++) {
                unsigned char ch = (unsigned char) *p;
                if (ch == '&' || ch == '%' || ch == '+' || ch == '=' ||
                    ch < 0x21 || ch > 0x7e)
                    ql += (size_t) snprintf(query + ql, sizeof query - ql,
                                            "%%%02X", ch);
                else
                    query[ql++] = (char) ch;
            }
            query[ql] = '\0';
        }
        jobq_http_request_t req = {
            .method = method,
            .path = url,
            .query = query,
            .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                        "Content-Type"),
            .idem_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    "Idempotency-Key"),
            .origin =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"),
            .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         "Authorization"),
            .cookie =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Cookie"),
            .body = u->body ? u->body : "",
            .body_len = u->len,
        };
        jobq_http_handle(&req, &res);
    }
    enum MHD_Result rc = s_answer(conn, &res);
    free(res.body);
    return rc;
}

//  libmicrohttpd's error lines, but the one it writes each time an event
//  stream ends: the hub resumes the stream's connection and the request
//  handler refuses it so that libmicrohttpd closes it, which it calls an
//  internal error of the application.
static void
s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    if (strncmp(line, "Application reported internal error", 35) == 0)
        return;
    fprintf(stderr, "%s: %s%s", S_PROG, line,
            line[0] && line[strlen(line) - 1] == '\n' ? "" : "\n");
}

static void
s_completed(void *cls,
            struct MHD_Connection *conn,
            void **con_cls,
            enum MHD_RequestTerminationCode why)
{
    (void) cls;
    (void) conn;
    (void) why;
    s_upload_t *u = *con_cls;
    if (u) {
        free(u->body);
        free(u);
        *con_cls = NULL;
    }
}

//  --- the program ------------------------------------------------------------

//  ADDR:PORT (ADDR an IPv4 address or localhost) into sa; false if not.
static bool
s_listen_addr(const char *s, struct sockaddr_in *sa)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return false;
    char host[64];
    size_t hl = (size_t) (colon - s);
    if (hl == 0 || hl >= sizeof host)
        return false;
    memcpy(host, s, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return false;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t) port);
    if (strcmp(host, "localhost") == 0)
        return inet_pton(AF_INET, "127.0.0.1", &sa->sin_addr) == 1;
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

int
main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:8080", *cert = NULL, *bkey = NULL,
               *tokens = NULL;
    char *cors = NULL;
    jobq_http_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.broker = "tcp://127.0.0.1:5555";
    cfg.events = "tcp://127.0.0.1:5557";
    cfg.timeout_ms = 3000;
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},
        {"broker", required_argument, 0, 'b'},
        {"events", required_argument, 0, 'e'},
        {"cors", required_argument, 0, 'c'},
        {"cert", required_argument, 0, 'k'},
        {"broker-key", required_argument, 0, 'K'},
        {"timeout-ms", required_argument, 0, 't'},
        {"tokens", required_argument, 0, 'T'},
        {"token-rate", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c;
    uint64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen_at = optarg;
            break;
        case 'b':
            cfg.broker = optarg;
            break;
        case 'e':
            cfg.events = optarg;
            break;
        case 'c':
            cors = optarg;
            break;
        case 'k':
            cert = optarg;
            break;
        case 'T':
            tokens = optarg;
            break;
        case 'K':
            bkey = optarg;
            break;
        case 'r':
            if (!jobq_app_number(S_PROG, "--token-rate", optarg, 0, 1000000,
                                 &v))
                return 2;
            s_token_rate = (int64_t) v;
            break;
        case 't':
            if (!jobq_app_number(S_PROG, "--timeout-ms", optarg, 1, 600000, &v))
                return 2;
            cfg.timeout_ms = (int) v;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        case 'V':
            printf("jobq-gateway %s\n", JOBQ_VERSION_STRING);
            return 0;
        default:
            return jobq_app_bad_option(S_PROG, argv, s_usage);
        }
    }
    if (jobq_app_no_operands(S_PROG, argc, argv))
        return 2;
    struct sockaddr_in sa;
    if (!s_listen_addr(listen_at, &sa)) {
        fprintf(stderr,
                "%s: --listen: expected ADDR:PORT with an IPv4 address, "
                "like 127.0.0.1:8080, not '%s'\n",
                S_PROG, listen_at);
        return 2;
    }
    if (tokens) {
        char twhy[600];
        s_tokens = jobq_tokens_load(tokens, twhy, sizeof twhy);
        if (!s_tokens) {
            fprintf(stderr, "%s: --tokens %s\n", S_PROG, twhy);
            return 2;
        }
        cfg.tokens = s_tokens;
        cfg.token_rate = s_token_rate;
    }
    if (!tokens && (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr,
                "%s: refusing to listen on %s without --tokens: anyone who "
                "reaches it could read and change every shop's jobs. Give "
                "--tokens FILE (docs/HTTP.md), or listen on 127.0.0.1\n",
                S_PROG, listen_at);
        return 2;
    }
    int n = 0;
    for (char *p = cors ? strtok(cors, ",") : NULL; p; p = strtok(NULL, ",")) {
        if (n == JOBQ_HTTP_MAX_CORS - 1) {
            fprintf(stderr, "%s: --cors: at most %d origins\n", S_PROG,
                    JOBQ_HTTP_MAX_CORS - 1);
            return 2;
        }
        cfg.cors[n++] = p;
    }
    static jobq_curve_t curve;
    char why[512];
    int crc = jobq_curve_setup(&curve, cert, bkey, why, sizeof why);
    if (crc != JOBQ_OK && crc != JOBQ_ENOTFOUND) {
        fprintf(stderr, "%s: %s\n", S_PROG, why);
        return 2;
    }
    cfg.curve = crc == JOBQ_OK ? &curve : NULL;
    jobq_http_init(&cfg);
    static volatile sig_atomic_t stop = 0;
    jobq_app_signals(&stop);
    //  Each event stream holds a descriptor: take the hard limit.
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (jobq_coalesce_start(jobq_http_client, jobq_http_thread_done) !=
        JOBQ_OK) {
        fprintf(stderr, "%s: cannot start the enqueue thread\n", S_PROG);
        return 1;
    }
    if (jobq_sse_start(&cfg) != JOBQ_OK) {
        fprintf(stderr, "%s: cannot start the event hub\n", S_PROG);
        return 1;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
            MHD_ALLOW_SUSPEND_RESUME,
        0, NULL, NULL, s_request, NULL,
        //  The logger first: libmicrohttpd applies options in order.
        MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *) &sa, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned) S_THREADS, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned) S_MAX_CONNS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned) S_IDLE_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t) 64 * 1024, MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "%s: cannot listen on %s: %s\n", S_PROG, listen_at,
                strerror(errno));
        jobq_sse_stop();
        return 1;
    }
    fprintf(stderr, "%s: serving http://%s/ (broker %s)\n", S_PROG, listen_at,
            cfg.broker);
    while (!stop) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "%s: stopping\n", S_PROG);
    jobq_sse_stop();  //  streams end cleanly, none stays suspended
    MHD_stop_daemon(d);
    jobq_coalesce_stop();  //  after the requests that wait for it
    return 0;
}
