/*  test_auth.c: a broker with a key file (CURVE, roles, shops), attacked
    the ways an outside audit did: strangers, other shops' keys, a rogue
    worker, a removed key. Real processes on loopback ports. */
#include "jobq_test.h"
#include "jobq/jobq_client.h"
#include "jobq_proto.h"
#include "jobq_wire.h"
#include "jobq_msg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void
s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

//  The keys of the tests: each a name in the key file and a pair on disk.
enum {
    K_ADMIN,
    K_SHOP_A,
    K_SHOP_B,
    K_READER_A,
    K_WATCH_A,
    K_WORKER,
    K_SLOW,
    K_RUNNER,
    K_QUOTA,
    K_QBYTES,
    K_STRANGER,
    K_COUNT
};
static const char *const s_names[K_COUNT] = {
    "ops",  "api-a", "api-b", "read-a", "watch-a", "w1",
    "slow", "w2",    "quota", "qbytes", "stranger"};
static const char *const s_lines[K_COUNT] = {"ops admin *",
                                             "api-a client shop-a",
                                             "api-b client shop-b",
                                             "read-a reader shop-a",
                                             "watch-a watcher shop-a",
                                             "w1 worker,reader *",
                                             "slow client shop-a",
                                             "w2 worker *",
                                             "quota client shop-q,shop-p",
                                             "qbytes client shop-r",
                                             NULL};
static const char *const s_opts[K_COUNT] = {"",
                                            "",
                                            "",
                                            "",
                                            "",
                                            " types=noop,sleep",
                                            " rate=5 burst=5",
                                            "",
                                            " quota-pending=2",
                                            " quota-bytes=3000",
                                            ""};

typedef struct {
    char *dir;
    jobq_test_broker_t b;
    jobq_curve_t keys[K_COUNT];
    char keyfile[600];
    pid_t worker;
} s_fx_t;

static void
s_write_keys(s_fx_t *fx, unsigned skip)
{
    FILE *f = fopen(fx->keyfile, "w");
    assert_non_null(f);
    fprintf(f, "# the test's keys\n");
    for (int k = 0; k < K_COUNT; k++)
        if (s_lines[k] && !(skip & (1u << k)))
            fprintf(f, "%s  %s%s\n", s_lines[k], fx->keys[k].public_key,
                    s_opts[k]);
    fclose(f);
}

static int
s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    fx->dir = jobq_test_tmpdir();
    fx->b.pid = -1;
    fx->worker = -1;
    char path[600], broker_pub[JOBQ_CURVE_Z85_LEN + 1], why[512];
    snprintf(path, sizeof path, "%s/broker", fx->dir);
    assert_int_equal(
        jobq_curve_keygen(path, "broker", broker_pub, why, sizeof why),
        JOBQ_OK);
    for (int k = 0; k < K_COUNT; k++) {
        snprintf(path, sizeof path, "%s/%s", fx->dir, s_names[k]);
        assert_int_equal(
            jobq_curve_keygen(path, s_names[k], NULL, why, sizeof why),
            JOBQ_OK);
        strcat(path, "_secret");
        assert_int_equal(
            jobq_curve_setup(&fx->keys[k], path, broker_pub, why, sizeof why),
            JOBQ_OK);
    }
    snprintf(fx->keyfile, sizeof fx->keyfile, "%s/keys", fx->dir);
    s_write_keys(fx, 0);
    snprintf(path, sizeof path, "%s/broker_secret", fx->dir);
    fx->b.curve = &fx->keys[K_ADMIN];
    const char *extra[] = {"--keys", fx->keyfile, "--cert", path, NULL};
    if (jobq_test_broker_start(&fx->b, fx->dir, extra) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    if (fx->worker > 0)
        jobq_test_stop(fx->worker, SIGKILL, 5000);
    jobq_test_broker_stop(&fx->b, SIGTERM);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

//  A client of broker b with key k (K_COUNT: no keys at all).
static jobq_client_t *
s_client(s_fx_t *fx, int k, int timeout_ms)
{
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = fx->b.clients;
    cfg.events = fx->b.events;
    cfg.timeout_ms = timeout_ms;
    cfg.retries = 0;
    cfg.curve = k < K_COUNT ? &fx->keys[k] : NULL;
    jobq_client_t *c = jobq_client_new(&cfg);
    assert_non_null(c);
    return c;
}

static void
s_enqueue(jobq_client_t *c, const char *shop, const char *key, char *id)
{
    jobq_enqueue_t e = {.type = "noop", .shop_id = shop, .key = key};
    int rc = jobq_client_enqueue(c, &e, id, NULL);
    if (rc != JOBQ_OK)
        fail_msg("enqueue in %s: %s", shop, jobq_client_last_error(c));
}

static void
test_auth_strangers_get_no_answer(void **state)
{
    s_fx_t *fx = *state;
    //  No keys: the broker speaks CURVE only, so a plain client's
    //  handshake fails and its request is never read.
    jobq_client_t *plain = s_client(fx, K_COUNT, 500);
    jobq_bytes_t body = {NULL, 0};
    assert_int_equal(jobq_client_stats(plain, &body), JOBQ_EUNAVAILABLE);
    //  The client says why, from its handshake.
    assert_non_null(strstr(jobq_client_last_error(plain),
                           "does the broker run with keys?"));
    jobq_client_destroy(&plain);
    //  A key pair the file does not hold: refused at the handshake.
    jobq_client_t *c = s_client(fx, K_STRANGER, 500);
    assert_int_equal(jobq_client_stats(c, &body), JOBQ_EUNAVAILABLE);
    assert_non_null(
        strstr(jobq_client_last_error(c), "the broker refused this key"));
    jobq_client_destroy(&c);
    //  The broker said so in its log, with the address.
    bool logged = false;
    for (int i = 0; i < 200 && !logged; i++) {
        FILE *f = fopen(fx->b.log, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f))
            logged |= strstr(line, "unknown key from 127.0.0.1") != NULL;
        if (f)
            fclose(f);
        if (!logged)
            s_sleep_ms(50);
    }
    assert_true(logged);
    //  An admin is served.
    jobq_client_t *admin = s_client(fx, K_ADMIN, 3000);
    assert_int_equal(jobq_client_stats(admin, &body), JOBQ_OK);
    free((void *) body.ptr);
    jobq_client_destroy(&admin);
}

static void
test_auth_a_shop_key_cannot_touch_another_shops_jobs(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_t *a = s_client(fx, K_SHOP_A, 3000);
    jobq_client_t *b = s_client(fx, K_SHOP_B, 3000);
    char ida[JOBQ_ID_LEN + 1], idb[JOBQ_ID_LEN + 1];
    s_enqueue(a, "shop-a", "order-1", ida);
    s_enqueue(b, "shop-b", "order-1", idb);
    //  The same idempotency key in two shops makes two jobs.
    assert_string_not_equal(ida, idb);
    //  B's job answers A exactly as a job that does not exist.
    const char *missing = "0000000000000001";
    jobq_job_info_t info = {0};
    assert_int_equal(jobq_client_status(a, missing, &info), JOBQ_ENOTFOUND);
    assert_non_null(strstr(jobq_client_last_error(a), "no job 0000"));
    assert_int_equal(jobq_client_status(a, idb, &info), JOBQ_ENOTFOUND);
    char expect[64];
    snprintf(expect, sizeof expect, "no job %s", idb);
    assert_non_null(strstr(jobq_client_last_error(a), expect));
    assert_int_equal(jobq_client_cancel(a, idb, NULL), JOBQ_ENOTFOUND);
    assert_int_equal(jobq_client_retry(a, idb, NULL), JOBQ_ENOTFOUND);
    //  Its own job is there.
    assert_int_equal(jobq_client_status(a, ida, &info), JOBQ_OK);
    assert_string_equal(info.shop_id, "shop-a");
    jobq_job_info_clear(&info);
    //  Making a job in B's shop is forbidden.
    jobq_enqueue_t e = {.type = "noop", .shop_id = "shop-b"};
    char id[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue(a, &e, id, NULL), JOBQ_EFORBIDDEN);
    jobq_enqueue_t batch[2] = {{.type = "noop", .shop_id = "shop-a"},
                               {.type = "noop", .shop_id = "shop-b"}};
    char ids[2][JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue_batch(a, batch, 2, ids, NULL),
                     JOBQ_EFORBIDDEN);
    //  LIST shows A's shop only, asked for everything or for B's shop.
    jobq_job_info_t *jobs = NULL;
    size_t n = 0;
    char next[JOBQ_ID_LEN + 1];
    jobq_list_t q = {.limit = 100};
    assert_int_equal(jobq_client_list(a, &q, &jobs, &n, next), JOBQ_OK);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].id, ida);
    jobq_job_list_free(&jobs, n);
    q.shop_id = "shop-b";
    assert_int_equal(jobq_client_list(a, &q, &jobs, &n, next), JOBQ_OK);
    assert_int_equal(n, 0);
    jobq_job_list_free(&jobs, n);
    //  STATS counts its shops only: shop-a's one job, none of shop-b's.
    jobq_bytes_t body = {NULL, 0}, shops, one, totals, v;
    assert_int_equal(jobq_client_stats(a, &body), JOBQ_OK);
    assert_int_equal(jobq_mp_map_find(body, "shops", &shops), JOBQ_OK);
    assert_int_equal(jobq_mp_map_find(shops, "shop-a", &one), JOBQ_OK);
    assert_int_equal(jobq_mp_map_find(one, "pending", &v), JOBQ_OK);
    assert_int_equal(v.len, 1);
    assert_int_equal(v.ptr[0], 1);
    assert_int_equal(jobq_mp_map_find(shops, "shop-b", &one), JOBQ_ENOTFOUND);
    assert_int_equal(jobq_mp_map_find(body, "totals", &totals), JOBQ_OK);
    assert_int_equal(jobq_mp_map_find(totals, "pending", &v), JOBQ_OK);
    assert_int_equal(v.ptr[0], 1);
    free((void *) body.ptr);
    //  B's job is untouched.
    assert_int_equal(jobq_client_status(b, idb, &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_PENDING);
    jobq_job_info_clear(&info);
    //  A reader reads its shop and changes nothing.
    jobq_client_t *r = s_client(fx, K_READER_A, 3000);
    assert_int_equal(jobq_client_status(r, ida, &info), JOBQ_OK);
    jobq_job_info_clear(&info);
    assert_int_equal(jobq_client_status(r, idb, &info), JOBQ_ENOTFOUND);
    assert_int_equal(jobq_client_cancel(r, ida, NULL), JOBQ_EFORBIDDEN);
    e.shop_id = "shop-a";
    assert_int_equal(jobq_client_enqueue(r, &e, id, NULL), JOBQ_EFORBIDDEN);
    jobq_client_destroy(&r);
    jobq_client_destroy(&a);
    jobq_client_destroy(&b);
}

//  Events a SUB with key k receives within ms, subscribed to each topic:
//  counted by shop.
static void
s_events(s_fx_t *fx,
         int k,
         const char *const *topics,
         void (*during)(s_fx_t *fx),
         int *from_a,
         int *from_b)
{
    void *ctx = zmq_ctx_new();
    int err;
    void *sub =
        jobq_wire_connect(ctx, ZMQ_SUB, fx->b.events, NULL, &fx->keys[k], &err);
    assert_non_null(sub);
    for (int i = 0; topics[i]; i++)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topics[i], strlen(topics[i]));
    s_sleep_ms(300);  //  the handshake and the subscriptions
    during(fx);
    *from_a = *from_b = 0;
    int64_t end = jobq_wire_now_ms() + 1500;
    while (jobq_wire_now_ms() < end) {
        zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        jobq_wire_in_t in;
        if (jobq_wire_recv_event(sub, &in) != JOBQ_OK)
            continue;
        if (in.ident_len > 7 && memcmp(in.ident, "shop-a/", 7) == 0)
            (*from_a)++;
        else
            (*from_b)++;
        jobq_wire_in_close(&in);
    }
    zmq_close(sub);
    zmq_ctx_term(ctx);
}

static void
s_make_jobs_in_both(s_fx_t *fx)
{
    jobq_client_t *admin = s_client(fx, K_ADMIN, 3000);
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(admin, "shop-a", NULL, id);
    s_enqueue(admin, "shop-b", NULL, id);
    s_enqueue(admin, "shop-b", NULL, id);
    jobq_client_destroy(&admin);
}

static void
test_auth_a_watcher_sees_only_its_shops_events(void **state)
{
    s_fx_t *fx = *state;
    //  Every way to ask for B's events: all, B's shop, a prefix of it.
    const char *const greedy[] = {"", "shop-b/", "shop", "s", "shop-a/", NULL};
    int a = 0, b = 0;
    s_events(fx, K_WATCH_A, greedy, s_make_jobs_in_both, &a, &b);
    assert_int_equal(a, 1);
    assert_int_equal(b, 0);
    //  The admin sees all three.
    const char *const all[] = {"", NULL};
    s_events(fx, K_ADMIN, all, s_make_jobs_in_both, &a, &b);
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    //  A worker-only key does not watch at all: the events endpoint
    //  refuses it.
    s_events(fx, K_RUNNER, all, s_make_jobs_in_both, &a, &b);
    assert_int_equal(a + b, 0);
}

//  Send READY as routing id name with key k, listing types; the reply's
//  command and, for a DISCONNECT, its reason.
static int
s_ready(s_fx_t *fx, int k, const char *name, const char *type, char *reason)
{
    void *ctx = zmq_ctx_new();
    int err;
    void *d = jobq_wire_connect(ctx, ZMQ_DEALER, fx->b.workers, name,
                                &fx->keys[k], &err);
    assert_non_null(d);
    jobq_msg_t m = {.cmd = JOBQ_CMD_READY};
    m.u.ready.types[0] = (jobq_str_t){type, strlen(type)};
    m.u.ready.ntypes = 1;
    m.u.ready.capacity = 1;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_encode(&m, &w);
    jobq_wire_send(d, NULL, 0, JOBQ_CMD_READY, w.data, w.len);
    jobq_mp_writer_fini(&w);
    int cmd = -1;
    reason[0] = '\0';
    int64_t end = jobq_wire_now_ms() + 2000;
    while (cmd < 0 && jobq_wire_now_ms() < end) {
        zmq_pollitem_t it = {d, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        jobq_wire_in_t in;
        if (jobq_wire_recv(d, false, true, &in) != JOBQ_OK)
            continue;
        jobq_msg_t r;
        jobq_msg_why_t why;
        if (in.err == JOBQ_OK && jobq_msg_decode(in.cmd, in.body, in.body_len,
                                                 &r, &why) == JOBQ_OK) {
            cmd = in.cmd;
            if (cmd == JOBQ_CMD_DISCONNECT)
                snprintf(reason, 200, "%.*s", (int) r.u.disconnect.reason.len,
                         r.u.disconnect.reason.ptr);
        }
        jobq_wire_in_close(&in);
    }
    zmq_close(d);
    zmq_ctx_term(ctx);
    return cmd;
}

static void
test_auth_a_rogue_worker_cannot_take_another_name_or_type(void **state)
{
    s_fx_t *fx = *state;
    char reason[256];
    //  Its own name, or its name and a suffix: registered (heartbeat).
    assert_int_equal(s_ready(fx, K_WORKER, "w1", "noop", reason),
                     JOBQ_CMD_HEARTBEAT);
    assert_int_equal(s_ready(fx, K_WORKER, "w1.host-2", "noop", reason),
                     JOBQ_CMD_HEARTBEAT);
    //  Another key's name, or a name that only starts like its own.
    assert_int_equal(s_ready(fx, K_WORKER, "ops", "noop", reason),
                     JOBQ_CMD_DISCONNECT);
    assert_non_null(strstr(reason, "forbidden: key w1 may register only"));
    assert_int_equal(s_ready(fx, K_WORKER, "w10", "noop", reason),
                     JOBQ_CMD_DISCONNECT);
    //  A type its key does not allow.
    assert_int_equal(s_ready(fx, K_WORKER, "w1", "export_data", reason),
                     JOBQ_CMD_DISCONNECT);
    assert_non_null(strstr(reason, "may not run type export_data"));
    //  A client key on the worker endpoint: refused at the handshake, so
    //  nothing comes back at all.
    assert_int_equal(s_ready(fx, K_SHOP_A, "api-a", "noop", reason), -1);
    //  jobq-worker with a name its key does not own stops and says why.
    char cert[600];
    snprintf(cert, sizeof cert, "%s/w1_secret", fx->dir);
    const char *extra[] = {
        "--cert", cert, "--broker-key", fx->keys[K_WORKER].server_key, "--name",
        "ops",    NULL};
    pid_t w = jobq_test_worker_start(&fx->b, extra);
    assert_true(w > 0);
    assert_int_equal(jobq_test_wait(w, 10000), 1 << 8);  //  exit status 1
    //  One whose key the worker endpoint refuses says so when the broker
    //  stays silent.
    snprintf(cert, sizeof cert, "%s/api-a_secret", fx->dir);
    const char *client_key[] = {
        "--cert", cert, "--broker-key", fx->keys[K_SHOP_A].server_key, "--name",
        "api-a",  NULL};
    char wlog[600];
    snprintf(wlog, sizeof wlog, "%s/worker.log", fx->dir);
    w = jobq_test_worker_start(&fx->b, client_key);
    assert_true(w > 0);
    //  It says so at its first 5 s of silence; under a loaded machine the
    //  handshake's answer may come late enough that it is the second.
    bool said = false;
    for (int i = 0; i < 200 && !said; i++) {
        s_sleep_ms(100);
        FILE *f = fopen(wlog, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f))
            said |= strstr(line, "the broker refused this key") != NULL;
        if (f)
            fclose(f);
    }
    jobq_test_stop(w, SIGKILL, 5000);
    assert_true(said);
}

static void
test_auth_a_worker_with_its_key_runs_jobs(void **state)
{
    s_fx_t *fx = *state;
    char cert[600];
    snprintf(cert, sizeof cert, "%s/w1_secret", fx->dir);
    const char *extra[] = {
        "--cert", cert,   "--broker-key", fx->keys[K_WORKER].server_key,
        "--name", "w1.a", "--types",      "noop,sleep",
        NULL};
    fx->worker = jobq_test_worker_start(&fx->b, extra);
    assert_true(fx->worker > 0);
    jobq_client_t *a = s_client(fx, K_SHOP_A, 3000);
    jobq_enqueue_t e = {.type = "sleep",
                        .shop_id = "shop-a",
                        .input = {(const uint8_t *) "\x81\xa2ms\x64", 5}};
    char id[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue(a, &e, id, NULL), JOBQ_OK);
    //  Watched with the client's own key (events of its shop).
    int rc = jobq_client_watch(a, id, NULL, 10000);
    assert_int_equal(rc, JOBQ_OK);
    jobq_job_info_t info = {0};
    assert_int_equal(jobq_client_status(a, id, &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_COMPLETED);
    jobq_job_info_clear(&info);
    jobq_client_destroy(&a);
}

static void
test_auth_a_removed_key_is_refused_after_sighup(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_t *a = s_client(fx, K_SHOP_A, 1000);
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(a, "shop-a", NULL, id);
    //  Take api-a out, add nothing: a reload.
    s_write_keys(fx, 1u << K_SHOP_A);
    kill(fx->b.pid, SIGHUP);
    jobq_job_info_t info = {0};
    bool refused = false;
    for (int i = 0; i < 50 && !refused; i++) {
        int rc = jobq_client_status(a, id, &info);
        jobq_job_info_clear(&info);
        refused = rc == JOBQ_EFORBIDDEN || rc == JOBQ_EUNAVAILABLE;
        if (!refused)
            s_sleep_ms(100);
    }
    assert_true(refused);
    //  A new connection with it gets nowhere.
    jobq_client_t *again = s_client(fx, K_SHOP_A, 500);
    assert_int_equal(jobq_client_status(again, id, &info), JOBQ_EUNAVAILABLE);
    jobq_client_destroy(&again);
    //  Others keep working (a connection closed with the removed key's
    //  reconnects by itself).
    jobq_client_t *admin = s_client(fx, K_ADMIN, 3000);
    assert_int_equal(jobq_client_status(admin, id, &info), JOBQ_OK);
    jobq_job_info_clear(&info);
    //  Put it back: it works again, from a new connection.
    s_write_keys(fx, 0);
    kill(fx->b.pid, SIGHUP);
    s_sleep_ms(300);
    jobq_client_t *back = s_client(fx, K_SHOP_A, 3000);
    assert_int_equal(jobq_client_status(back, id, &info), JOBQ_OK);
    jobq_job_info_clear(&info);
    //  A broken file keeps the keys before.
    FILE *f = fopen(fx->keyfile, "a");
    fprintf(f, "broken line\n");
    fclose(f);
    kill(fx->b.pid, SIGHUP);
    s_sleep_ms(300);
    assert_int_equal(jobq_client_status(back, id, &info), JOBQ_OK);
    jobq_job_info_clear(&info);
    jobq_client_destroy(&back);
    jobq_client_destroy(&admin);
    jobq_client_destroy(&a);
}

//  A watcher's key narrowed by a reload: what it subscribed to under the
//  old rights stops (its connection is closed; it comes back with the new
//  ones).
static void
test_auth_a_narrowed_key_loses_its_old_subscriptions(void **state)
{
    s_fx_t *fx = *state;
    void *ctx = zmq_ctx_new();
    int err;
    void *sub = jobq_wire_connect(ctx, ZMQ_SUB, fx->b.events, NULL,
                                  &fx->keys[K_WATCH_A], &err);
    assert_non_null(sub);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "shop-a/", 7);
    s_sleep_ms(300);
    jobq_client_t *admin = s_client(fx, K_ADMIN, 3000);
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(admin, "shop-a", NULL, id);
    zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&it, 1, 2000), 1);  //  seen, as allowed
    char buf[4096];
    while (zmq_recv(sub, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        ;
    //  watch-a now watches shop-z only.
    FILE *f = fopen(fx->keyfile, "a");
    fclose(f);
    s_write_keys(fx, 1u << K_WATCH_A);
    f = fopen(fx->keyfile, "a");
    fprintf(f, "watch-a watcher shop-z %s\n", fx->keys[K_WATCH_A].public_key);
    fclose(f);
    kill(fx->b.pid, SIGHUP);
    s_sleep_ms(1000);  //  the reload, and the SUB's reconnection
    s_enqueue(admin, "shop-a", NULL, id);
    int got = 0;
    int64_t end = jobq_wire_now_ms() + 1500;
    while (jobq_wire_now_ms() < end) {
        if (zmq_poll(&it, 1, 100) > 0 &&
            zmq_recv(sub, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
            got++;
    }
    assert_int_equal(got, 0);
    bool said = false;
    f = fopen(fx->b.log, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f))
        said |= strstr(line, "removed or changed keys connected") != NULL;
    if (f)
        fclose(f);
    assert_true(said);
    jobq_client_destroy(&admin);
    zmq_close(sub);
    zmq_ctx_term(ctx);
}

static void
test_auth_a_key_over_its_rate_is_told_so(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_t *c = s_client(fx, K_SLOW, 3000);
    int ok = 0, limited = 0;
    for (int i = 0; i < 20; i++) {
        jobq_job_info_t info = {0};
        int rc = jobq_client_status(c, "0000000000000001", &info);
        if (rc == JOBQ_ENOTFOUND)
            ok++;
        else if (rc == JOBQ_ERATE)
            limited++;
        jobq_job_info_clear(&info);
    }
    //  A burst of 5, then about 5 a second.
    assert_true(ok >= 5 && ok <= 10);
    assert_int_equal(ok + limited, 20);
    //  Other keys are not slowed.
    jobq_client_t *a = s_client(fx, K_SHOP_A, 3000);
    for (int i = 0; i < 20; i++) {
        jobq_job_info_t info = {0};
        assert_int_equal(jobq_client_status(a, "0000000000000001", &info),
                         JOBQ_ENOTFOUND);
    }
    jobq_client_destroy(&a);
    jobq_client_destroy(&c);
}

//  Per-shop quotas: past them quota_exceeded, while other shops, and the
//  same shop once jobs end, go on.
static void
test_auth_a_shop_at_its_quota_is_refused_and_others_go_on(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_t *q = s_client(fx, K_QUOTA, 3000);
    char id1[JOBQ_ID_LEN + 1], id2[JOBQ_ID_LEN + 1], id[JOBQ_ID_LEN + 1];
    s_enqueue(q, "shop-q", "k1", id1);
    s_enqueue(q, "shop-q", NULL, id2);
    jobq_enqueue_t e = {.type = "noop", .shop_id = "shop-q"};
    assert_int_equal(jobq_client_enqueue(q, &e, id, NULL), JOBQ_EQUOTA);
    assert_non_null(strstr(jobq_client_last_error(q),
                           "shop shop-q holds 2 unfinished jobs, and its "
                           "quota is 2"));
    //  A repeat of an idempotency key adds nothing: its job, not a refusal.
    e.key = "k1";
    bool created = true;
    assert_int_equal(jobq_client_enqueue(q, &e, id, &created), JOBQ_OK);
    assert_string_equal(id, id1);
    assert_false(created);
    //  A batch that would pass it is refused whole.
    jobq_enqueue_t batch[2] = {{.type = "noop", .shop_id = "shop-p"},
                               {.type = "noop", .shop_id = "shop-q"}};
    char ids[2][JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue_batch(q, batch, 2, ids, NULL),
                     JOBQ_EQUOTA);
    //  Its other shop, and other keys' shops, go on.
    s_enqueue(q, "shop-p", NULL, id);
    jobq_client_t *a = s_client(fx, K_SHOP_A, 3000);
    s_enqueue(a, "shop-a", NULL, id);
    //  Cancel one: room for one more; RETRY of it is then refused.
    assert_int_equal(jobq_client_cancel(q, id2, NULL), JOBQ_OK);
    e.key = NULL;
    assert_int_equal(jobq_client_enqueue(q, &e, id, NULL), JOBQ_OK);
    assert_int_equal(jobq_client_retry(q, id2, NULL), JOBQ_EQUOTA);
    //  Bytes: a 2,000-byte input fits in 3,000; a second does not.
    jobq_client_t *r = s_client(fx, K_QBYTES, 3000);
    static uint8_t input[2003];
    input[0] = 0x81;
    input[1] = 0xa1;
    input[2] = 'x';
    input[3] = 0xc5;
    input[4] = (uint8_t) ((sizeof input - 6) >> 8);
    input[5] = (uint8_t) ((sizeof input - 6) & 0xff);
    jobq_enqueue_t big = {
        .type = "noop", .shop_id = "shop-r", .input = {input, sizeof input}};
    assert_int_equal(jobq_client_enqueue(r, &big, id, NULL), JOBQ_OK);
    assert_int_equal(jobq_client_enqueue(r, &big, id, NULL), JOBQ_EQUOTA);
    assert_non_null(strstr(jobq_client_last_error(r), "bytes of jobs"));
    jobq_client_destroy(&r);
    jobq_client_destroy(&a);
    jobq_client_destroy(&q);
}

//  With keys, the broker reads every subscription itself (to check it
//  against the key), repeats included: a watcher key that sends a million
//  subscribe frames for its own job costs it under 64 MB, given back when
//  the peer leaves.
static void
test_auth_a_million_subscriptions_from_a_watcher_key(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_t *a = s_client(fx, K_SHOP_A, 3000);
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(a, "shop-a", NULL, id);
    long base = jobq_test_rss_anon_kb(fx->b.pid);
    assert_true(base > 0);
    void *ctx = zmq_ctx_new();
    void *x = zmq_socket(ctx, ZMQ_XSUB);
    int hwm = 1000000, zero = 0;
    zmq_setsockopt(x, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(x, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(x, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(jobq_wire_curve(x, &fx->keys[K_WATCH_A]), JOBQ_OK);
    assert_int_equal(zmq_connect(x, fx->b.events), 0);
    char frame[64];
    int n = snprintf(frame, sizeof frame, "\001shop-a/%s", id), sent;
    long peak = jobq_test_subscription_flood(x, frame, (size_t) n, 1000000,
                                             fx->b.pid, &sent);
    jobq_job_info_t info = {0};
    assert_int_equal(jobq_client_status(a, id, &info), JOBQ_OK);
    jobq_job_info_clear(&info);
    zmq_close(x);
    zmq_ctx_term(ctx);
    long after = jobq_test_rss_settled_kb(fx->b.pid, base, 16 * 1024);
    printf("broker RssAnon: %ld kB before, peak %ld kB, %ld kB after the "
           "peer left (%d frames)\n",
           base, peak, after, sent);
    assert_int_equal(sent, 1000000);
#ifndef __SANITIZE_ADDRESS__
    assert_true(peak - base < 64 * 1024);
    assert_true(after - base < 16 * 1024);
#else
    (void) peak;
    (void) after;
#endif
    jobq_client_destroy(&a);
}

//  A stranger's idle connections reach the broker's limit: new clients are
//  refused (and it is logged), but an admin still gets in, and a worker
//  registers.
static void
test_auth_a_full_endpoint_keeps_room_for_admins_and_workers(void **state)
{
    s_fx_t *fx = *state;
    jobq_test_broker_stop(&fx->b, SIGTERM);
    char cert[600];
    snprintf(cert, sizeof cert, "%s/broker_secret", fx->dir);
    const char *extra[] = {
        "--keys", fx->keyfile, "--cert", cert, "--max-connections", "40", NULL};
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, extra), 0);
    int fds[60];
    int n = jobq_test_idle_connections(fx->b.clients, fds, 60);
    assert_int_equal(n, 60);
    s_sleep_ms(300);
    jobq_client_t *a = s_client(fx, K_SHOP_A, 500);
    jobq_job_info_t info = {0};
    assert_int_equal(jobq_client_status(a, "0000000000000001", &info),
                     JOBQ_EUNAVAILABLE);
    jobq_client_destroy(&a);
    jobq_client_t *admin = s_client(fx, K_ADMIN, 3000);
    assert_int_equal(jobq_client_status(admin, "0000000000000001", &info),
                     JOBQ_ENOTFOUND);
    char reason[256];
    assert_int_equal(s_ready(fx, K_WORKER, "w1", "noop", reason),
                     JOBQ_CMD_HEARTBEAT);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    //  Once they are gone, everyone again.
    s_sleep_ms(500);
    a = s_client(fx, K_SHOP_A, 3000);
    assert_int_equal(jobq_client_status(a, "0000000000000001", &info),
                     JOBQ_ENOTFOUND);
    jobq_client_destroy(&a);
    jobq_client_destroy(&admin);
    FILE *f = fopen(fx->b.log, "r");
    char line[1024];
    bool full = false, room = false;
    while (f && fgets(line, sizeof line, f)) {
        full |= strstr(line, "new ones are refused but for worker and admin "
                             "keys") != NULL;
        room |= strstr(line, "room for connections again") != NULL;
    }
    fclose(f);
    assert_true(full);
    assert_true(room);
}

//  Without keys the broker binds loopback only, and says why otherwise.
static void
test_auth_no_keys_means_loopback_only(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    char data[600], log[600];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(log, sizeof log, "%s/broker.log", dir);
    char bin[1024];
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-broker"));
    char *argv[] = {bin, "--data", data, "--clients", "tcp://0.0.0.0:1", NULL};
    pid_t pid = jobq_test_spawn(argv, log);
    assert_int_equal(jobq_test_wait(pid, 10000), 1 << 8);  //  exit status 1
    FILE *f = fopen(log, "r");
    char line[1024];
    bool said = false;
    while (f && fgets(line, sizeof line, f))
        said |= strstr(line, "refusing to bind tcp://0.0.0.0:1 without keys") !=
                NULL;
    fclose(f);
    assert_true(said);
    jobq_test_rmtree(dir);
    free(dir);
}

#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_auth_strangers_get_no_answer),
        T(test_auth_a_shop_key_cannot_touch_another_shops_jobs),
        T(test_auth_a_watcher_sees_only_its_shops_events),
        T(test_auth_a_rogue_worker_cannot_take_another_name_or_type),
        T(test_auth_a_worker_with_its_key_runs_jobs),
        T(test_auth_a_removed_key_is_refused_after_sighup),
        T(test_auth_a_narrowed_key_loses_its_old_subscriptions),
        T(test_auth_a_key_over_its_rate_is_told_so),
        T(test_auth_a_shop_at_its_quota_is_refused_and_others_go_on),
        T(test_auth_a_million_subscriptions_from_a_watcher_key),
        T(test_auth_a_full_endpoint_keeps_room_for_admins_and_workers),
        cmocka_unit_test(test_auth_no_keys_means_loopback_only),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
