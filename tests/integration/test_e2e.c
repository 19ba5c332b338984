/*  test_e2e.c: a real broker and a real worker (separate processes) on
    loopback ports, in a temporary directory, driven through libjobq and
    through raw sockets for the malformed cases. */
#include "jobq_test.h"
#include "jobq/jobq_client.h"
#include "jobq_proto.h"
#include "jobq_sched.h"

#include <czmq.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char *dir;              //  temporary directory
    jobq_test_broker_t b;   //  broker process
    pid_t worker;           //  worker process, -1 if none
    jobq_test_broker_t b2;  //  a second broker, if a test starts one
    jobq_client_t *c;       //  client
} s_fx_t;

static jobq_client_t *
s_client(const jobq_test_broker_t *b)
{
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b->clients;
    cfg.events = b->events;
    cfg.timeout_ms = 3000;
    jobq_client_t *c = jobq_client_new(&cfg);
    assert_non_null(c);
    return c;
}

static int
s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    fx->dir = jobq_test_tmpdir();
    fx->b.pid = -1;
    if (jobq_test_broker_start(&fx->b, fx->dir, NULL) != 0)
        return -1;
    fx->c = s_client(&fx->b);
    fx->worker = -1;
    *state = fx;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_destroy(&fx->c);
    if (fx->worker > 0)
        jobq_test_stop(fx->worker, SIGKILL, 5000);
    jobq_test_broker_stop(&fx->b, SIGTERM);
    jobq_test_broker_stop(&fx->b2, SIGKILL);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static void
s_start_worker(s_fx_t *fx, const char *types, const char *concurrency)
{
    const char *extra[] = {"--types",   types,    "--concurrency",
                           concurrency, "--name", "w-test",
                           NULL};
    fx->worker = jobq_test_worker_start(&fx->b, extra);
    assert_true(fx->worker > 0);
}

//  Encode a JSON-free input map by hand: {"ms": ms, "steps": steps}.
static jobq_bytes_t
s_sleep_input(jobq_mp_writer_t *w, int64_t ms, int64_t steps)
{
    jobq_mp_writer_init(w, 1024);
    jobq_mp_write_map(w, 2);
    jobq_mp_write_cstr(w, "ms");
    jobq_mp_write_int(w, ms);
    jobq_mp_write_cstr(w, "steps");
    jobq_mp_write_int(w, steps);
    return (jobq_bytes_t){w->data, w->len};
}

static void
s_enqueue(s_fx_t *fx,
          const char *type,
          const char *shop,
          jobq_bytes_t input,
          uint32_t max_attempts,
          char id[JOBQ_ID_LEN + 1])
{
    jobq_enqueue_t req = {type, shop, input, 0, 0, max_attempts, 0, NULL};
    bool created = false;
    assert_int_equal(jobq_client_enqueue(fx->c, &req, id, &created), JOBQ_OK);
    assert_true(created);
}

typedef struct {
    int progress[128];      //  progress values seen, in order
    uint32_t version[128];  //  versions seen, in order
    int n;                  //  updates seen
    int completes;          //  on_complete calls
    int errors;             //  on_error calls
    char error[256];        //  last error text
} s_seen_t;

static void
s_on_progress(void *arg, const jobq_job_info_t *job)
{
    s_seen_t *s = arg;
    if (s->n < 128) {
        s->progress[s->n] = (int) job->progress;
        s->version[s->n++] = job->version;
    }
}

static void
s_on_complete(void *arg, const jobq_job_info_t *job)
{
    s_seen_t *s = arg;
    s->completes++;
    if (s->n < 128) {
        s->progress[s->n] = (int) job->progress;
        s->version[s->n++] = job->version;
    }
}

static void
s_on_error(void *arg, const jobq_job_info_t *job)
{
    s_seen_t *s = arg;
    s->errors++;
    snprintf(s->error, sizeof s->error, "%s", job->error ? job->error : "");
}

static int
s_watch(s_fx_t *fx, const char *id, s_seen_t *seen, int timeout_ms)
{
    memset(seen, 0, sizeof *seen);
    jobq_watch_t cb = {s_on_progress, s_on_complete, s_on_error, seen};
    return jobq_client_watch(fx->c, id, &cb, timeout_ms);
}

typedef struct {
    s_fx_t *fx;      //  fixture
    const char *id;  //  job
    int status;      //  wanted
} s_status_wait_t;

static bool
s_has_status(void *arg)
{
    s_status_wait_t *w = arg;
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    bool ok = jobq_client_status(w->fx->c, w->id, &info) == JOBQ_OK &&
              info.status == w->status;
    jobq_job_info_clear(&info);
    return ok;
}

static void
s_wait_status(s_fx_t *fx, const char *id, int status, int timeout_ms)
{
    s_status_wait_t w = {fx, id, status};
    assert_true(jobq_test_wait_until(s_has_status, &w, timeout_ms));
}

//  How many jobs one LIST page shows for shop in status (-1 = any).
static size_t
s_listed(s_fx_t *fx, const char *shop, int status)
{
    jobq_list_t q = {shop, NULL, status, 1000, NULL};
    jobq_job_info_t *jobs = NULL;
    size_t count = 0;
    char next[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_list(fx->c, &q, &jobs, &count, next), JOBQ_OK);
    jobq_job_list_free(&jobs, count);
    return count;
}

//  --- tests
//  -------------------------------------------------------------------

static void
test_e2e_watch_sees_every_progress_step_in_order(void **state)
{
    s_fx_t *fx = *state;
    s_start_worker(fx, "sleep,noop,fail", "2");
    jobq_mp_writer_t w;
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(fx, "sleep", "shop-1", s_sleep_input(&w, 1200, 6), 1, id);
    jobq_mp_writer_fini(&w);
    s_seen_t seen;
    assert_int_equal(s_watch(fx, id, &seen, 20000), JOBQ_OK);
    assert_int_equal(seen.completes, 1);
    assert_int_equal(seen.errors, 0);
    //  Versions strictly increase: nothing twice, nothing out of order.
    for (int i = 1; i < seen.n; i++)
        assert_true(seen.version[i] > seen.version[i - 1]);
    //  Every step's report was seen, in order: 16, 33, 50, 66, 83, 100.
    static const int steps[] = {16, 33, 50, 66, 83, 100};
    int k = 0;
    for (int i = 0; i < seen.n && k < 6; i++)
        if (seen.progress[i] == steps[k])
            k++;
    assert_int_equal(k, 6);
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(jobq_client_status(fx->c, id, &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_COMPLETED);
    assert_true(info.output.len > 0);
    assert_int_equal(info.attempts, 1);
    jobq_job_info_clear(&info);
}

static void
test_e2e_watch_after_the_end_reports_it_at_once(void **state)
{
    s_fx_t *fx = *state;
    s_start_worker(fx, "sleep,noop,fail", "2");
    char id[JOBQ_ID_LEN + 1], bad[JOBQ_ID_LEN + 1];
    jobq_bytes_t none = {NULL, 0};
    s_enqueue(fx, "noop", "shop-1", none, 1, id);
    s_wait_status(fx, id, JOBQ_COMPLETED, 10000);
    s_seen_t seen;
    int64_t t0 = zclock_mono();
    assert_int_equal(s_watch(fx, id, &seen, 5000), JOBQ_OK);
    assert_int_equal(seen.completes, 1);
    assert_true(zclock_mono() - t0 < 2000);
    //  A failed job's end, after the fact, with its message.
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 256);
    jobq_mp_write_map(&w, 1);
    jobq_mp_write_cstr(&w, "message");
    jobq_mp_write_cstr(&w, "disk on fire");
    s_enqueue(fx, "fail", "shop-1", (jobq_bytes_t){w.data, w.len}, 1, bad);
    jobq_mp_writer_fini(&w);
    assert_int_equal(s_watch(fx, bad, &seen, 10000), JOBQ_EFAILED);
    assert_int_equal(seen.errors, 1);
    assert_string_equal(seen.error, "disk on fire");
    //  Unknown job.
    assert_int_equal(s_watch(fx, "0000000000000001", &seen, 1000),
                     JOBQ_ENOTFOUND);
}

static void
test_e2e_failing_job_is_retried_until_it_succeeds(void **state)
{
    s_fx_t *fx = *state;
    //  Broker started with the default 1 s retry base: keep it short here.
    jobq_test_broker_stop(&fx->b, SIGTERM);
    const char *extra[] = {"--retry-base-ms", "50", NULL};
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, extra), 0);
    s_start_worker(fx, "fail", "1");
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 256);
    jobq_mp_write_map(&w, 1);
    jobq_mp_write_cstr(&w, "times");
    jobq_mp_write_int(&w, 2);
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(fx, "fail", "shop-1", (jobq_bytes_t){w.data, w.len}, 5, id);
    jobq_mp_writer_fini(&w);
    s_seen_t seen;
    assert_int_equal(s_watch(fx, id, &seen, 20000), JOBQ_OK);
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(jobq_client_status(fx->c, id, &info), JOBQ_OK);
    assert_int_equal(info.attempts, 3);
    jobq_job_info_clear(&info);
}

static void
test_e2e_cancel_pending_and_running_jobs(void **state)
{
    s_fx_t *fx = *state;
    s_start_worker(fx, "sleep", "1");
    char pend[JOBQ_ID_LEN + 1], run[JOBQ_ID_LEN + 1], after[JOBQ_ID_LEN + 1];
    jobq_bytes_t none = {NULL, 0};
    //  No worker runs noop here: it stays pending.
    s_enqueue(fx, "noop", "shop-1", none, 1, pend);
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(jobq_client_cancel(fx->c, pend, &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_CANCELLED);
    jobq_job_info_clear(&info);
    assert_int_equal(jobq_client_cancel(fx->c, pend, NULL), JOBQ_ESTATE);

    jobq_mp_writer_t w;
    s_enqueue(fx, "sleep", "shop-1", s_sleep_input(&w, 60000, 600), 1, run);
    jobq_mp_writer_fini(&w);
    s_wait_status(fx, run, JOBQ_RUNNING, 10000);
    assert_int_equal(jobq_client_cancel(fx->c, run, &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_CANCELLED);
    jobq_job_info_clear(&info);
    s_seen_t seen;
    assert_int_equal(s_watch(fx, run, &seen, 1000), JOBQ_ECANCELLED);
    //  The worker stopped it: its only slot takes the next job at once.
    s_enqueue(fx, "sleep", "shop-1", s_sleep_input(&w, 10, 1), 1, after);
    jobq_mp_writer_fini(&w);
    assert_int_equal(s_watch(fx, after, &seen, 10000), JOBQ_OK);
}

static void
test_e2e_list_filters_and_pages(void **state)
{
    s_fx_t *fx = *state;
    char ids[9][JOBQ_ID_LEN + 1];
    jobq_bytes_t none = {NULL, 0};
    for (int i = 0; i < 9; i++)
        s_enqueue(fx, i % 3 ? "idle" : "other", i < 5 ? "shop-a" : "shop-b",
                  none, 1, ids[i]);
    //  shop-a, two per page: 4, 3 | 2, 1 | 0.
    jobq_list_t req = {"shop-a", NULL, -1, 2, NULL};
    char next[JOBQ_ID_LEN + 1] = "";
    int got = 0, pages = 0;
    do {
        jobq_job_info_t *jobs;
        size_t n;
        req.cursor = next[0] ? next : NULL;
        char cur[JOBQ_ID_LEN + 1];
        memcpy(cur, next, sizeof cur);
        req.cursor = cur[0] ? cur : NULL;
        assert_int_equal(jobq_client_list(fx->c, &req, &jobs, &n, next),
                         JOBQ_OK);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(jobs[i].id, ids[4 - got]);
            assert_string_equal(jobs[i].shop_id, "shop-a");
            got++;
        }
        jobq_job_list_free(&jobs, n);
        pages++;
    } while (next[0] && pages < 10);
    assert_int_equal(got, 5);
    //  Type and status filters.
    jobq_list_t t = {NULL, "other", JOBQ_PENDING, 100, NULL};
    jobq_job_info_t *jobs;
    size_t n;
    assert_int_equal(jobq_client_list(fx->c, &t, &jobs, &n, next), JOBQ_OK);
    assert_int_equal(n, 3);
    assert_string_equal(jobs[0].id, ids[6]);
    jobq_job_list_free(&jobs, n);
    jobq_list_t none_match = {"shop-b", "idle", JOBQ_COMPLETED, 10, NULL};
    assert_int_equal(jobq_client_list(fx->c, &none_match, &jobs, &n, next),
                     JOBQ_OK);
    assert_int_equal(n, 0);
    assert_string_equal(next, "");
    jobq_job_list_free(&jobs, n);
    //  Bad filters are refused by the broker.
    jobq_list_t bad = {"bad shop!", NULL, -1, 10, NULL};
    assert_int_equal(jobq_client_list(fx->c, &bad, &jobs, &n, next),
                     JOBQ_EINVAL);
}

static void
test_e2e_broker_sigkill_keeps_pending_and_completed_jobs(void **state)
{
    s_fx_t *fx = *state;
    s_start_worker(fx, "noop", "1");
    char done[JOBQ_ID_LEN + 1], pend[3][JOBQ_ID_LEN + 1];
    jobq_bytes_t none = {NULL, 0};
    s_enqueue(fx, "noop", "shop-1", none, 1, done);
    s_wait_status(fx, done, JOBQ_COMPLETED, 10000);
    jobq_mp_writer_t w;
    for (int i = 0; i < 3; i++) {
        s_enqueue(fx, "sleep", "shop-1", s_sleep_input(&w, 10, 1), 1, pend[i]);
        jobq_mp_writer_fini(&w);
    }
    jobq_test_stop(fx->worker, SIGKILL, 5000);
    fx->worker = -1;
    //  kill -9 the broker right after its acknowledgements.
    jobq_test_broker_stop(&fx->b, SIGKILL);
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, NULL), 0);
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(jobq_client_status(fx->c, done, &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_COMPLETED);
    assert_true(info.output.len > 0);
    jobq_job_info_clear(&info);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jobq_client_status(fx->c, pend[i], &info), JOBQ_OK);
        assert_int_equal(info.status, JOBQ_PENDING);
        jobq_job_info_clear(&info);
    }
    //  And they run once a worker comes.
    s_start_worker(fx, "sleep", "2");
    s_seen_t seen;
    for (int i = 0; i < 3; i++)
        assert_int_equal(s_watch(fx, pend[i], &seen, 10000), JOBQ_OK);
    //  New ids keep growing past the old ones.
    char later[JOBQ_ID_LEN + 1];
    s_enqueue(fx, "noop", "shop-1", none, 1, later);
    assert_true(strcmp(later, pend[2]) > 0);
}

//  Send raw frames on a DEALER and read one reply: its command and, for
//  ERROR, its code and (if rid is not NULL) its rid.
static int
s_raw_rid(zsock_t *d, zmsg_t *m, int *code, uint64_t *rid)
{
    zmsg_send(&m, d);
    zsock_set_rcvtimeo(d, 3000);
    zmsg_t *r = zmsg_recv(d);
    if (!r)
        return -1;
    int cmd = -1;
    *code = 0;
    if (zmsg_size(r) == 3) {
        zframe_t *sig = zmsg_first(r), *c = zmsg_next(r), *b = zmsg_next(r);
        assert_int_equal(zframe_size(sig), JOBQ_SIGNATURE_LEN);
        cmd = zframe_data(c)[0];
        jobq_bytes_t body = {zframe_data(b), zframe_size(b)}, v;
        if (cmd == JOBQ_CMD_ERROR &&
            jobq_mp_map_find(body, "code", &v) == JOBQ_OK) {
            jobq_mp_reader_t rd;
            jobq_str_t s;
            jobq_mp_reader_init(&rd, v.ptr, v.len);
            assert_int_equal(jobq_mp_read_str(&rd, &s), JOBQ_OK);
            *code = jobq_err_from_wire_code(s.ptr, s.len);
        }
        if (rid && jobq_mp_map_find(body, "rid", &v) == JOBQ_OK) {
            jobq_mp_reader_t rd;
            jobq_mp_reader_init(&rd, v.ptr, v.len);
            assert_int_equal(jobq_mp_read_uint(&rd, rid), JOBQ_OK);
        }
    }
    zmsg_destroy(&r);
    return cmd;
}

static int
s_raw(zsock_t *d, zmsg_t *m, int *code)
{
    return s_raw_rid(d, m, code, NULL);
}

static zmsg_t *
s_frames(const void *sig, size_t slen, int cmd, const void *body, size_t blen)
{
    zmsg_t *m = zmsg_new();
    uint8_t c = (uint8_t) cmd;
    zmsg_addmem(m, sig, slen);
    zmsg_addmem(m, &c, 1);
    zmsg_addmem(m, body, blen);
    return m;
}

static void
test_e2e_malformed_messages_get_errors_and_the_broker_goes_on(void **state)
{
    s_fx_t *fx = *state;
    zsock_t *d = zsock_new_dealer(fx->b.clients);
    assert_non_null(d);
    int code;
    const char *sig = JOBQ_SIGNATURE;
    static const uint8_t stats[] = {0x81, 0xa3, 'r', 'i', 'd', 0x01};
    //  Two frames instead of three.
    zmsg_t *m = zmsg_new();
    zmsg_addmem(m, sig, JOBQ_SIGNATURE_LEN);
    zmsg_addmem(m, "\x05", 1);
    assert_int_equal(s_raw(d, m, &code), JOBQ_CMD_ERROR);
    assert_int_equal(code, JOBQ_EINVAL);
    //  Many frames.
    m = zmsg_new();
    for (int i = 0; i < 1000; i++)
        zmsg_addmem(m, "x", 1);
    assert_int_equal(s_raw(d, m, &code), JOBQ_CMD_ERROR);
    assert_int_equal(code, JOBQ_EINVAL);
    //  Not our protocol; another version of it.
    assert_int_equal(
        s_raw(d, s_frames("HTTP/", 5, 5, stats, sizeof stats), &code),
        JOBQ_CMD_ERROR);
    assert_int_equal(code, JOBQ_EINVAL);
    assert_int_equal(
        s_raw(d, s_frames("JOBQ\x02", 5, 5, stats, sizeof stats), &code),
        JOBQ_CMD_ERROR);
    assert_int_equal(code, JOBQ_EVERSION);
    //  Unknown command; a worker command on the client socket.
    assert_int_equal(
        s_raw(d, s_frames(sig, 5, 0x7f, stats, sizeof stats), &code),
        JOBQ_CMD_ERROR);
    assert_int_equal(code, JOBQ_ECOMMAND);
    assert_int_equal(
        s_raw(d, s_frames(sig, 5, JOBQ_CMD_HEARTBEAT, stats, sizeof stats),
              &code),
        JOBQ_CMD_ERROR);
    assert_int_equal(code, JOBQ_ECOMMAND);
    //  msgpack allocation bombs, truncation, a body that is not a map.
    static const uint8_t bomb1[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t bomb2[] = {0x81, 0xdf, 0xab, 0xab, 0xab, 0xab};
    static const uint8_t trunc[] = {0x82, 0xa3, 'r', 'i'};
    static const uint8_t notmap[] = {0x93, 0x01, 0x02, 0x03};
    uint8_t nest[160];
    for (int i = 0; i < 32; i++)
        memcpy(nest + 5 * i, "\xdd\x10\x00\x00\x00", 5);
    const struct {
        const uint8_t *b;  //  body
        size_t n;          //  bytes
    } bodies[] = {{bomb1, sizeof bomb1},
                  {bomb2, sizeof bomb2},
                  {trunc, sizeof trunc},
                  {notmap, sizeof notmap},
                  {nest, sizeof nest}};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        int cmd = s_raw(
            d, s_frames(sig, 5, JOBQ_CMD_ENQUEUE, bodies[i].b, bodies[i].n),
            &code);
        assert_int_equal(cmd, JOBQ_CMD_ERROR);
        assert_true(code == JOBQ_EINVAL || code == JOBQ_ETOOBIG);
    }
    //  ENQUEUE without a type; with a type of the wrong kind.
    static const uint8_t notype[] = {0x82, 0xa3, 'r',  'i', 'd', 0x09,
                                     0xa7, 's',  'h',  'o', 'p', '_',
                                     'i',  'd',  0xa1, 'x'};
    assert_int_equal(
        s_raw(d, s_frames(sig, 5, JOBQ_CMD_ENQUEUE, notype, sizeof notype),
              &code),
        JOBQ_CMD_ERROR);
    assert_int_equal(code, JOBQ_EINVAL);
    //  The same socket and a new client are still served.
    assert_int_equal(
        s_raw(d, s_frames(sig, 5, JOBQ_CMD_STATS, stats, sizeof stats), &code),
        JOBQ_CMD_REPLY);
    char id[JOBQ_ID_LEN + 1];
    jobq_bytes_t none = {NULL, 0};
    s_enqueue(fx, "noop", "shop-1", none, 1, id);
    //  Garbage on the worker socket: the broker tells the sender to go.
    zsock_t *wd = zsock_new_dealer(fx->b.workers);
    assert_int_equal(
        s_raw(wd, s_frames(sig, 5, JOBQ_CMD_READY, bomb1, sizeof bomb1), &code),
        JOBQ_CMD_DISCONNECT);
    zsock_destroy(&wd);
    zsock_destroy(&d);
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(jobq_client_status(fx->c, id, &info), JOBQ_OK);
    jobq_job_info_clear(&info);
}

//  docs/PROTOCOL.md 8.1: an ERROR carries the request's rid when the body
//  breaks section 5.1 or a field rule after a whole rid, so a client
//  waiting on that rid gets its answer; an envelope fault gets rid 0.
static void
test_e2e_an_error_carries_the_rid_read_before_a_bad_body(void **state)
{
    s_fx_t *fx = *state;
    zsock_t *d = zsock_new_dealer(fx->b.clients);
    assert_non_null(d);
    const char *sig = JOBQ_SIGNATURE;
    //  {rid: 77, type: "noop", shop_id: "s", x: 0xc1}
    static const uint8_t reserved[] = {
        0x84, 0xa3, 'r', 'i', 'd',  0x4d, 0xa4, 't', 'y', 'p',
        'e',  0xa4, 'n', 'o', 'o',  'p',  0xa7, 's', 'h', 'o',
        'p',  '_',  'i', 'd', 0xa1, 's',  0xa1, 'x', 0xc1};
    //  {rid: 78, x: a str 32 of 2 MiB, cut short}
    static const uint8_t huge[] = {0x82, 0xa3, 'r',  'i',  'd',  0x4e, 0xa1,
                                   'x',  0xdb, 0x00, 0x20, 0x00, 0x00};
    //  {type: 5, rid: 79}: a bad field before rid
    static const uint8_t late[] = {0x82, 0xa4, 't', 'y', 'p', 'e',
                                   0x05, 0xa3, 'r', 'i', 'd', 0x4f};
    static const struct {
        const uint8_t *b;  //  body
        size_t n;          //  bytes
        int code;          //  expected
        uint64_t rid;      //  expected
    } cases[] = {{reserved, sizeof reserved, JOBQ_EINVAL, 77},
                 {huge, sizeof huge, JOBQ_ETOOBIG, 78},
                 {late, sizeof late, JOBQ_EINVAL, 79}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code = 0;
        uint64_t rid = 12345;
        int cmd = s_raw_rid(
            d, s_frames(sig, 5, JOBQ_CMD_ENQUEUE, cases[i].b, cases[i].n),
            &code, &rid);
        if (cmd != JOBQ_CMD_ERROR || code != cases[i].code ||
            rid != cases[i].rid)
            fail_msg("case %zu: cmd=%d code=%d rid=%llu", i, cmd, code,
                     (unsigned long long) rid);
    }
    //  An envelope fault: the body is not looked at.
    zmsg_t *m =
        s_frames("JOBQ\x02", 5, JOBQ_CMD_ENQUEUE, reserved, sizeof reserved);
    int code = 0;
    uint64_t rid = 12345;
    assert_int_equal(s_raw_rid(d, m, &code, &rid), JOBQ_CMD_ERROR);
    assert_int_equal(code, JOBQ_EVERSION);
    assert_int_equal(rid, 0);
    zsock_destroy(&d);
}

//  The count of cause in the "refused" map of a STATS reply, asked on d;
//  -1 if the reply has none.
static int64_t
s_refused(zsock_t *d, const char *cause)
{
    static const uint8_t stats[] = {0x81, 0xa3, 'r', 'i', 'd', 0x63};
    zmsg_t *m =
        s_frames(JOBQ_SIGNATURE, 5, JOBQ_CMD_STATS, stats, sizeof stats);
    zmsg_send(&m, d);
    zsock_set_rcvtimeo(d, 3000);
    zmsg_t *r = zmsg_recv(d);
    assert_non_null(r);
    assert_int_equal(zmsg_size(r), 3);
    zframe_t *b = zmsg_last(r);
    jobq_bytes_t body = {zframe_data(b), zframe_size(b)}, map, v;
    int64_t n = -1;
    uint64_t u = 0;
    if (jobq_mp_map_find(body, "refused", &map) == JOBQ_OK &&
        jobq_mp_map_find(map, cause, &v) == JOBQ_OK) {
        jobq_mp_reader_t rd;
        jobq_mp_reader_init(&rd, v.ptr, v.len);
        assert_int_equal(jobq_mp_read_uint(&rd, &u), JOBQ_OK);
        n = (int64_t) u;
    }
    zmsg_destroy(&r);
    return n;
}

//  Lines of the file at path that hold both a and b.
static int
s_log_lines(const char *path, const char *a, const char *b)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, a) && strstr(line, b);
    fclose(f);
    return n;
}

typedef struct {
    const char *path;  //  log file
    const char *a;     //  both in one line
    const char *b;
} s_log_wait_t;

static bool
s_logged(void *arg)
{
    s_log_wait_t *w = arg;
    return s_log_lines(w->path, w->a, w->b) > 0;
}

//  docs/PROTOCOL.md 3.3 and 8.7: every refused message is counted by cause
//  in STATS, and logged at the default level one line per cause per
//  interval with how many, never one line per message.
static void
test_e2e_refused_messages_are_counted_and_logged_once_per_interval(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_destroy(&fx->c);
    jobq_test_broker_stop(&fx->b, SIGTERM);
    const char *extra[] = {"--refused-log-ms", "1500", NULL};
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, extra), 0);
    fx->c = s_client(&fx->b);
    zsock_t *d = zsock_new_dealer(fx->b.clients);
    assert_non_null(d);
    //  Five ENQUEUEs with a type of the wrong kind: bad_request.
    static const uint8_t bad[] = {0x83, 0xa3, 'r', 'i',  'd',  0x01, 0xa4, 't',
                                  'y',  'p',  'e', 0x05, 0xa7, 's',  'h',  'o',
                                  'p',  '_',  'i', 'd',  0xa1, 's'};
    int code;
    for (int i = 0; i < 5; i++)
        assert_int_equal(s_raw(d,
                               s_frames(JOBQ_SIGNATURE, 5, JOBQ_CMD_ENQUEUE,
                                        bad, sizeof bad),
                               &code),
                         JOBQ_CMD_ERROR);
    //  Two HEARTBEATs from a worker that never sent READY.
    zsock_t *wd = zsock_new(ZMQ_DEALER);
    assert_non_null(wd);
    zsock_set_identity(wd, "w-ghost");
    assert_int_equal(zsock_connect(wd, "%s", fx->b.workers), 0);
    static const uint8_t empty[] = {0x80};
    for (int i = 0; i < 2; i++)
        assert_int_equal(s_raw(wd,
                               s_frames(JOBQ_SIGNATURE, 5, JOBQ_CMD_HEARTBEAT,
                                        empty, sizeof empty),
                               &code),
                         JOBQ_CMD_DISCONNECT);
    assert_int_equal(s_refused(d, "bad_request"), 5);
    assert_int_equal(s_refused(d, "unknown_worker"), 2);
    assert_int_equal(s_refused(d, "too_large"), 0);
    //  The first of each cause is logged at once, the rest wait.
    s_log_wait_t first = {fx->b.log, "refused 1 message (bad_request)",
                          "field 'type'"};
    assert_true(jobq_test_wait_until(s_logged, &first, 2000));
    assert_int_equal(s_log_lines(fx->b.log, "refused", "(bad_request)"), 1);
    assert_int_equal(s_log_lines(fx->b.log, "refused", "(unknown_worker)"), 1);
    //  After the interval, one line with the other four.
    s_log_wait_t rest = {fx->b.log, "refused 4 messages (bad_request)",
                         "since the last line about it"};
    assert_true(jobq_test_wait_until(s_logged, &rest, 5000));
    assert_int_equal(s_log_lines(fx->b.log, "refused", "(bad_request)"), 2);
    s_log_wait_t ghost = {fx->b.log,
                          "refused 1 message (unknown_worker) since the last "
                          "line about it",
                          "HEARTBEAT before READY (from w-ghost)"};
    assert_true(jobq_test_wait_until(s_logged, &ghost, 5000));
    assert_int_equal(s_log_lines(fx->b.log, "refused", "(unknown_worker)"), 2);
    zsock_destroy(&wd);
    zsock_destroy(&d);
}

//  The seq of an event message, or 0.
static uint64_t
s_event_seq(zmsg_t *m)
{
    zframe_t *body = zmsg_last(m);
    jobq_bytes_t b = {zframe_data(body), zframe_size(body)}, v;
    uint64_t seq = 0;
    if (jobq_mp_map_find(b, "seq", &v) == JOBQ_OK) {
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, v.ptr, v.len);
        jobq_mp_read_uint(&r, &seq);
    }
    return seq;
}

static void
test_e2e_slow_subscriber_sees_a_gap_and_never_blocks_the_broker(void **state)
{
    s_fx_t *fx = *state;
    jobq_test_broker_stop(&fx->b, SIGTERM);
    //  Over ipc, kernel buffers are small enough to fill in a test.
    snprintf(fx->b.events, sizeof fx->b.events, "ipc://%s/events", fx->dir);
    jobq_client_destroy(&fx->c);
    const char *extra[] = {"--event-hwm", "50", NULL};
    assert_int_equal(jobq_test_broker_start(&fx->b, fx->dir, extra), 0);
    fx->c = s_client(&fx->b);
    zsock_t *sub = zsock_new(ZMQ_SUB);
    zsock_set_rcvhwm(sub, 10);
    zsock_set_rcvbuf(sub, 4096);
    zsock_set_subscribe(sub, "");
    assert_int_equal(zsock_connect(sub, "%s", fx->b.events), 0);
    zclock_sleep(200);  //  let the subscription reach the broker
    //  The subscriber reads nothing while 3000 jobs are enqueued: every
    //  enqueue is still answered (the broker never waits for it).
    char id[JOBQ_ID_LEN + 1];
    jobq_bytes_t none = {NULL, 0};
    int64_t t0 = zclock_mono();
    for (int i = 0; i < 3000; i++)
        s_enqueue(fx, "idle", "shop-1", none, 1, id);
    assert_true(zclock_mono() - t0 < 60000);
    //  Now it reads: sequence numbers jump, which tells it to resnapshot.
    zsock_set_rcvtimeo(sub, 500);
    uint64_t last = 0, gaps = 0, got = 0;
    zmsg_t *m;
    for (int round = 0; round < 2; round++) {
        while ((m = zmsg_recv(sub))) {
            uint64_t seq = s_event_seq(m);
            if (last && seq != last + 1)
                gaps++;
            last = seq;
            got++;
            zmsg_destroy(&m);
        }
        //  The next event after the drops shows the jump.
        if (round == 0)
            s_enqueue(fx, "idle", "shop-1", none, 1, id);
    }
    zsock_destroy(&sub);
    assert_true(got > 0);
    assert_true(got < 3000);
    assert_true(gaps > 0);
    //  A watcher still learns the latest state through its snapshot.
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(jobq_client_status(fx->c, id, &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_PENDING);
    jobq_job_info_clear(&info);
}

//  True once the broker answers a STATS.
static bool
s_answers(void *arg)
{
    jobq_bytes_t body = {NULL, 0};
    bool ok = jobq_client_stats(arg, &body) == JOBQ_OK;
    free((void *) body.ptr);
    return ok;
}

//  The amplification an outside audit used: a peer that never reads sends
//  one subscription frame after another for a finished job with a large
//  output. Each used to publish the whole job again, output included, and
//  the broker queued them for that peer (2.0 GB in 9 s). Now events carry
//  no output and a job is published at most once a turn for
//  subscriptions: a million frames cost the broker under 64 MB, and it
//  gives them back when the peer leaves.
static void
test_e2e_a_million_subscriptions_cannot_swell_the_broker(void **state)
{
    s_fx_t *fx = *state;
    s_start_worker(fx, "noop", "1");
    //  noop echoes its input: 250 kB of output.
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 300000);
    static char blob[250000];
    memset(blob, 'x', sizeof blob);
    jobq_mp_write_map(&w, 1);
    jobq_mp_write_cstr(&w, "blob");
    jobq_mp_write_str(&w, blob, sizeof blob);
    char id[JOBQ_ID_LEN + 1];
    s_enqueue(fx, "noop", "shop-1", (jobq_bytes_t){w.data, w.len}, 1, id);
    jobq_mp_writer_fini(&w);
    s_wait_status(fx, id, JOBQ_COMPLETED, 10000);
    long base = jobq_test_rss_anon_kb(fx->b.pid);
    assert_true(base > 0);
    //  An XSUB forwards every subscription frame, repeats included.
    void *ctx = zmq_ctx_new();
    void *x = zmq_socket(ctx, ZMQ_XSUB);
    int hwm = 1000000, zero = 0;
    zmq_setsockopt(x, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(x, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(x, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(x, fx->b.events), 0);
    char frame[64];
    int n = snprintf(frame, sizeof frame, "\001shop-1/%s", id), sent;
    long peak = jobq_test_subscription_flood(x, frame, (size_t) n, 1000000,
                                             fx->b.pid, &sent);
    assert_int_equal(sent, 1000000);
    //  The broker still answers while the peer sits on its events.
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(jobq_client_status(fx->c, id, &info), JOBQ_OK);
    jobq_job_info_clear(&info);
    zmq_close(x);
    zmq_ctx_term(ctx);
    long after = jobq_test_rss_settled_kb(fx->b.pid, base, 16 * 1024);
    printf("broker RssAnon: %ld kB before, peak %ld kB, %ld kB after the "
           "peer left\n",
           base, peak, after);
#ifndef __SANITIZE_ADDRESS__
    assert_true(peak - base < 64 * 1024);
    assert_true(after - base < 16 * 1024);
#else
    //  AddressSanitizer keeps freed memory in quarantine (256 MB), so the
    //  broker's memory says nothing here; the plain build checks it.
    (void) peak;
    (void) after;
#endif
}

//  An outside audit filled the broker's 1,024 file descriptors with idle
//  connections from one stranger: new clients got no answer, a new worker
//  could not register, and nothing was logged. The broker now takes the
//  hard limit at start and says so: with 10,000 idle connections open (or
//  what the limits here allow), a new client and a new worker still work.
static void
test_e2e_idle_connections_leave_clients_and_workers_working(void **state)
{
    s_fx_t *fx = *state;
    struct rlimit r;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &r), 0);
    int n = r.rlim_max > 12000 ? 10000 : (int) r.rlim_max - 2000;
    if (n < 2000)
        skip();
    //  The broker starts with the usual soft limit of 1,024.
    jobq_client_destroy(&fx->c);
    jobq_test_broker_stop(&fx->b, SIGTERM);
    rlim_t soft = r.rlim_cur;
    r.rlim_cur = 1024;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &r), 0);
    int rc = jobq_test_broker_start(&fx->b, fx->dir, NULL);
    r.rlim_cur = r.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &r), 0);
    assert_int_equal(rc, 0);
    fx->c = s_client(&fx->b);
    assert_int_equal(
        s_log_lines(fx->b.log, "file descriptors:", "raised from 1024"), 1);
    int *fds = calloc((size_t) n, sizeof *fds);
    assert_non_null(fds);
    int opened = jobq_test_idle_connections(fx->b.clients, fds, n);
    assert_int_equal(opened, n);
    zclock_sleep(500);
    //  A new client is answered, a new worker registers and runs a job.
    jobq_bytes_t body = {NULL, 0};
    assert_int_equal(jobq_client_stats(fx->c, &body), JOBQ_OK);
    free((void *) body.ptr);
    s_start_worker(fx, "noop", "1");
    char id[JOBQ_ID_LEN + 1];
    jobq_bytes_t none = {NULL, 0};
    s_enqueue(fx, "noop", "shop-1", none, 1, id);
    s_wait_status(fx, id, JOBQ_COMPLETED, 10000);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    r.rlim_cur = soft;
    setrlimit(RLIMIT_NOFILE, &r);
}

//  When the descriptors do run out, the log says so, once per interval
//  with a count, and the broker serves again once the connections close.
static void
test_e2e_a_full_descriptor_table_is_logged_and_outlived(void **state)
{
    s_fx_t *fx = *state;
    if (access("/usr/bin/prlimit", X_OK) != 0)
        skip();
    jobq_client_destroy(&fx->c);
    jobq_test_broker_stop(&fx->b, SIGTERM);
    char bin[1024];
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq-broker"));
    char data[600];
    snprintf(data, sizeof data, "%s/data", fx->dir);
    char *argv[] = {"/usr/bin/prlimit",
                    "--nofile=64:64",
                    bin,
                    "--data",
                    data,
                    "--clients",
                    fx->b.clients,
                    "--workers",
                    fx->b.workers,
                    "--events",
                    fx->b.events,
                    NULL};
    fx->b.pid = jobq_test_spawn(argv, fx->b.log);
    assert_true(fx->b.pid > 0);
    fx->c = s_client(&fx->b);
    jobq_bytes_t body = {NULL, 0};
    assert_true(jobq_test_wait_until(s_answers, fx->c, 10000));
    int fds[200];
    int opened = jobq_test_idle_connections(fx->b.clients, fds, 200);
    s_log_wait_t w = {fx->b.log, "could not accept", "Too many open files"};
    assert_true(jobq_test_wait_until(s_logged, &w, 10000));
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    assert_true(jobq_test_wait_until(s_answers, fx->c, 20000));
    (void) body;
}

static void
test_e2e_unreachable_broker_fails_within_bounded_time(void **state)
{
    s_fx_t *fx = *state;
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", jobq_test_free_port());
    cfg.broker = ep;
    cfg.timeout_ms = 300;
    cfg.retries = 1;
    jobq_client_t *c = jobq_client_new(&cfg);
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    int64_t t0 = zclock_mono();
    assert_int_equal(jobq_client_status(c, "0000000000000001", &info),
                     JOBQ_EUNAVAILABLE);
    assert_true(zclock_mono() - t0 < 3000);
    assert_non_null(strstr(jobq_client_last_error(c), ep));
    //  Pipelined: the sends are queued, no answer comes, and the wait for
    //  one gives every request in flight up within the timeout.
    static const uint8_t empty[] = {0x80};
    jobq_enqueue_t req = {"noop", "shop-u", {empty, 1}, 0, 0, 1, 0, NULL};
    uint64_t ticket = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(jobq_client_enqueue_send(c, &req, &ticket), JOBQ_OK);
    assert_int_equal(jobq_client_in_flight(c), 3);
    t0 = zclock_mono();
    char id[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue_recv(c, &ticket, id, NULL),
                     JOBQ_EUNAVAILABLE);
    assert_true(zclock_mono() - t0 < 3000);
    assert_int_equal(ticket, 0);
    assert_int_equal(jobq_client_in_flight(c), 0);
    assert_non_null(strstr(jobq_client_last_error(c), "3 requests"));
    //  The window is bounded: one more than it holds is refused, and the
    //  requests already in flight stay.
    for (int i = 0; i < JOBQ_CLIENT_MAX_IN_FLIGHT; i++)
        assert_int_equal(jobq_client_enqueue_send(c, &req, &ticket), JOBQ_OK);
    assert_int_equal(jobq_client_enqueue_send(c, &req, &ticket), JOBQ_ETOOBIG);
    assert_int_equal(jobq_client_in_flight(c), JOBQ_CLIENT_MAX_IN_FLIGHT);
    assert_int_equal(jobq_client_enqueue_recv(c, &ticket, id, NULL),
                     JOBQ_EUNAVAILABLE);
    assert_int_equal(jobq_client_in_flight(c), 0);
    jobq_client_destroy(&c);
    (void) fx;
}

//  A client with a list of brokers: a dead one first costs one timeout
//  and the client stays with the live one; a broker killed under it is
//  left for the next; a watch listens to every event endpoint of its list;
//  malformed lists are refused.
static void
test_e2e_client_fails_over_to_the_next_broker(void **state)
{
    s_fx_t *fx = *state;
    char dir2[600];
    snprintf(dir2, sizeof dir2, "%s/b2", fx->dir);
    assert_int_equal(mkdir(dir2, 0700), 0);
    jobq_test_broker_t *b2 = &fx->b2;
    assert_int_equal(jobq_test_broker_start(b2, dir2, NULL), 0);
    char dead[64], dead_events[64];
    snprintf(dead, sizeof dead, "tcp://127.0.0.1:%d", jobq_test_free_port());
    snprintf(dead_events, sizeof dead_events, "tcp://127.0.0.1:%d",
             jobq_test_free_port());
    static const uint8_t empty[] = {0x80};
    jobq_enqueue_t req = {"noop", "shop-f", {empty, 1}, 0, 0, 1, 0, NULL};
    char id[JOBQ_ID_LEN + 1];
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);

    //  1. Nobody listens at the first endpoint: the first try times out,
    //  the second goes to the live broker; later calls go there at once.
    char list[200], events[200];
    snprintf(list, sizeof list, "%s, %s", dead, fx->b.clients);
    snprintf(events, sizeof events, "%s,%s", dead_events, fx->b.events);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = list;
    cfg.events = events;
    cfg.timeout_ms = 800;
    cfg.retries = 1;
    jobq_client_t *c = jobq_client_new(&cfg);
    assert_non_null(c);
    int64_t t0 = zclock_mono();
    assert_int_equal(jobq_client_enqueue(c, &req, id, NULL), JOBQ_OK);
    int64_t took = zclock_mono() - t0;
    assert_true(took >= 700 && took < 2500);
    t0 = zclock_mono();
    assert_int_equal(jobq_client_status(c, id, &info), JOBQ_OK);
    assert_true(zclock_mono() - t0 < 700);
    jobq_job_info_clear(&info);
    //  A watch hears the live broker's events (the dead event endpoint
    //  is just quiet) and sees the job end.
    s_start_worker(fx, "sleep", "1");
    jobq_mp_writer_t w;
    req.type = "sleep";
    req.input = s_sleep_input(&w, 100, 2);
    assert_int_equal(jobq_client_enqueue(c, &req, id, NULL), JOBQ_OK);
    jobq_mp_writer_fini(&w);
    req.type = "noop";
    req.input = (jobq_bytes_t){empty, 1};
    s_seen_t seen;
    memset(&seen, 0, sizeof seen);
    jobq_watch_t cb = {s_on_progress, s_on_complete, s_on_error, &seen};
    assert_int_equal(jobq_client_watch(c, id, &cb, 10000), JOBQ_OK);
    assert_int_equal(seen.completes, 1);
    for (int i = 1; i < seen.n; i++)
        assert_true(seen.version[i] > seen.version[i - 1]);
    jobq_client_destroy(&c);

    //  2. Two live brokers; the first is killed. An enqueue with a key is
    //  then answered by the second within a timeout and a bit.
    snprintf(list, sizeof list, "%s,%s", b2->clients, fx->b.clients);
    c = jobq_client_new(&cfg);
    assert_non_null(c);
    assert_int_equal(jobq_client_enqueue(c, &req, id, NULL), JOBQ_OK);
    jobq_client_t *c2 = s_client(b2);
    assert_int_equal(jobq_client_status(c2, id, &info), JOBQ_OK);
    jobq_job_info_clear(&info);
    jobq_client_destroy(&c2);
    jobq_test_broker_stop(b2, SIGKILL);
    req.key = "failover-key-1";
    bool created = false;
    t0 = zclock_mono();
    assert_int_equal(jobq_client_enqueue(c, &req, id, &created), JOBQ_OK);
    assert_true(zclock_mono() - t0 < 2500);
    assert_true(created);
    //  It is the live broker's job, and the same key gives the same job.
    assert_int_equal(jobq_client_status(fx->c, id, &info), JOBQ_OK);
    jobq_job_info_clear(&info);
    char again[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue(c, &req, again, &created), JOBQ_OK);
    assert_false(created);
    assert_string_equal(again, id);
    jobq_client_destroy(&c);

    //  3. Both dead: the error names the list.
    snprintf(list, sizeof list, "%s,%s", dead, b2->clients);
    cfg.timeout_ms = 300;
    c = jobq_client_new(&cfg);
    assert_non_null(c);
    t0 = zclock_mono();
    assert_int_equal(jobq_client_status(c, id, &info), JOBQ_EUNAVAILABLE);
    assert_true(zclock_mono() - t0 < 2000);
    assert_non_null(strstr(jobq_client_last_error(c), dead));
    assert_non_null(strstr(jobq_client_last_error(c), b2->clients));
    jobq_client_destroy(&c);

    //  4. Malformed lists.
    char why[128];
    cfg.broker = "tcp://127.0.0.1:1,,tcp://127.0.0.1:2";
    assert_null(jobq_client_new(&cfg));
    assert_int_equal(jobq_endpoints_check(cfg.broker, why, sizeof why),
                     JOBQ_EINVAL);
    assert_non_null(strstr(why, "empty item"));
    assert_int_equal(
        jobq_endpoints_check("tcp://127.0.0.1:1,", why, sizeof why),
        JOBQ_EINVAL);
    assert_int_equal(jobq_endpoints_check("", why, sizeof why), JOBQ_EINVAL);
    char many[1024] = "";
    for (int i = 0; i <= JOBQ_MAX_ENDPOINTS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "%stcp://127.0.0.1:%d", i ? "," : "", 7000 + i);
    cfg.broker = many;
    assert_null(jobq_client_new(&cfg));
    assert_int_equal(jobq_endpoints_check(many, why, sizeof why), JOBQ_EINVAL);
    assert_non_null(strstr(why, "more than 16"));
    *strrchr(many, ',') = '\0';  //  16 is the limit, not over it
    assert_int_equal(jobq_endpoints_check(many, why, sizeof why), JOBQ_OK);
    //  One that ZeroMQ cannot parse, second in the list.
    cfg.broker = "tcp://127.0.0.1:1,nonsense://x";
    assert_null(jobq_client_new(&cfg));
}

//  Many single ENQUEUEs in flight on one client: each is answered once,
//  under its own ticket, a refused one too; other calls wait their turn.
static void
test_e2e_pipelined_enqueue_answers_each_request_once(void **state)
{
    s_fx_t *fx = *state;
    enum { N = 300, BAD = 150 };
    static const uint8_t empty[] = {0x80};
    uint64_t tickets[N];
    for (int i = 0; i < N; i++) {
        jobq_enqueue_t req = {i == BAD ? "Bad Type" : "noop",
                              "shop-p",
                              {empty, 1},
                              0,
                              0,
                              1,
                              0,
                              NULL};
        assert_int_equal(jobq_client_enqueue_send(fx->c, &req, &tickets[i]),
                         JOBQ_OK);
    }
    assert_int_equal(jobq_client_in_flight(fx->c), N);
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(jobq_client_status(fx->c, "0000000000000001", &info),
                     JOBQ_ESTATE);
    bool seen[N] = {false};
    char last[JOBQ_ID_LEN + 1] = "";
    int ok = 0;
    for (int n = 0; n < N; n++) {
        uint64_t t = 0;
        char id[JOBQ_ID_LEN + 1];
        bool created = false;
        int rc = jobq_client_enqueue_recv(fx->c, &t, id, &created);
        int k = 0;
        while (k < N && tickets[k] != t)
            k++;
        assert_true(k < N);
        assert_false(seen[k]);
        seen[k] = true;
        if (k == BAD) {
            assert_int_equal(rc, JOBQ_EINVAL);
            continue;
        }
        assert_int_equal(rc, JOBQ_OK);
        assert_true(created);
        assert_true(strcmp(last, id) != 0);
        memcpy(last, id, sizeof last);
        ok++;
    }
    assert_int_equal(ok, N - 1);
    assert_int_equal(jobq_client_in_flight(fx->c), 0);
    uint64_t t = 0;
    char id[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue_recv(fx->c, &t, id, NULL),
                     JOBQ_ESTATE);
    //  Every accepted one is stored, and the client works as before.
    assert_int_equal(s_listed(fx, "shop-p", -1), N - 1);
}

//  A batch of jobs through the client, run by a worker with one slot and a
//  prefetch queue. A held job that is cancelled leaves the worker's queue
//  and frees its place for the next job; on SIGTERM the worker hands back
//  the jobs it holds but never started, and those attempts do not count.
static void
test_e2e_batch_enqueue_and_prefetching_worker(void **state)
{
    s_fx_t *fx = *state;
    enum { N = 40 };
    jobq_mp_writer_t w;
    jobq_bytes_t input = s_sleep_input(&w, 1500, 1);
    jobq_enqueue_t reqs[N];
    for (int i = 0; i < N; i++)
        reqs[i] = (jobq_enqueue_t){"sleep", "shop-b", input, 0, 0, 1, 0, NULL};
    char ids[N][JOBQ_ID_LEN + 1];
    bool created[N];
    assert_int_equal(jobq_client_enqueue_batch(fx->c, reqs, N, ids, created),
                     JOBQ_OK);
    for (int i = 0; i < N; i++) {
        assert_true(created[i]);
        if (i)
            assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    }
    //  A bad job anywhere refuses the whole batch, naming it.
    reqs[7].type = "Bad Type";
    char more[N][JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue_batch(fx->c, reqs, N, more, NULL),
                     JOBQ_EINVAL);
    assert_non_null(strstr(jobq_client_last_error(fx->c), "jobs[7]"));
    assert_int_equal(s_listed(fx, "shop-b", -1), N);

    const char *extra[] = {"--types",    "sleep",  "--concurrency",
                           "1",          "--name", "w-pref",
                           "--prefetch", "8",      NULL};
    fx->worker = jobq_test_worker_start(&fx->b, extra);
    assert_true(fx->worker > 0);
    s_wait_status(fx, ids[0], JOBQ_RUNNING, 10000);
    //  One runs, eight more are held by the worker: nine running.
    assert_int_equal(s_listed(fx, "shop-b", JOBQ_RUNNING), 9);
    //  ids[1..8] wait in the worker. Cancel one: the worker drops it and
    //  reports, and only then does the broker send the next job, ids[9].
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    assert_int_equal(jobq_client_cancel(fx->c, ids[4], &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_CANCELLED);
    jobq_job_info_clear(&info);
    s_wait_status(fx, ids[9], JOBQ_RUNNING, 10000);
    assert_int_equal(jobq_client_status(fx->c, ids[0], &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_RUNNING);  //  still: 1.5 s
    jobq_job_info_clear(&info);
    assert_int_equal(jobq_test_stop(fx->worker, SIGTERM, 10000), 0);
    fx->worker = -1;
    //  The started job finished; the held ones are pending again, and their
    //  one allowed attempt is still to come.
    assert_int_equal(jobq_client_status(fx->c, ids[0], &info), JOBQ_OK);
    assert_int_equal(info.status, JOBQ_COMPLETED);
    jobq_job_info_clear(&info);
    int pending = 0;
    for (int i = 1; i < N; i++) {
        assert_int_equal(jobq_client_status(fx->c, ids[i], &info), JOBQ_OK);
        assert_true(info.status == (i == 4 ? JOBQ_CANCELLED : JOBQ_PENDING));
        if (info.attempts == 1 && i != 4) {
            assert_int_equal(info.max_attempts, 2);
            pending++;
        }
        jobq_job_info_clear(&info);
    }
    assert_int_equal(pending, 8);
    jobq_mp_writer_fini(&w);
}

//  The broker starts ZeroMQ's I/O thread with a 0.1 ms scheduler slice,
//  so that a JOB or a reply goes out as soon as it is handed over, and
//  keeps the default slice for its own thread. Only kernels that keep a
//  slice asked for (6.12 on) can show it; the test skips on others.
static void
test_e2e_broker_io_thread_asks_for_a_short_slice(void **state)
{
    s_fx_t *fx = *state;
    uint64_t probe = 0;
    int rc = jobq_sched_set_slice(300000);
    if (rc == 0)
        rc = jobq_sched_slice(0, &probe);
    assert_int_equal(jobq_sched_set_slice(0), 0);  //  this thread as it was
    if (rc != 0 || probe != 300000)
        skip();
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int) fx->b.pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int io = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[384], comm[32] = "";
        snprintf(path, sizeof path, "%s/%s/comm", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;  //  gone meanwhile
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
        pid_t tid = (pid_t) atoi(e->d_name);
        uint64_t ns = 0;
        assert_int_equal(jobq_sched_slice(tid, &ns), 0);
        if (tid == fx->b.pid)
            assert_int_not_equal(ns, 100000);  //  the broker's own: default
        else if (strncmp(comm, "ZMQbg/IO/", 9) == 0) {
            assert_int_equal(ns, 100000);
            io++;
        }
    }
    closedir(d);
    assert_int_equal(io, 1);
}

static bool
s_has_zmq_thread(void *arg)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", *(pid_t *) arg);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char path[384], comm[32] = "";
        snprintf(path, sizeof path, "%s/%s/comm", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        found = fgets(comm, sizeof comm, f) && strncmp(comm, "ZMQbg/", 6) == 0;
        fclose(f);
    }
    closedir(d);
    return found;
}

//  A worker program built on libjobq alone (chaos_worker) installs its own
//  SIGTERM handler and passes its flag to jobq_worker_run: once libjobq
//  has opened its sockets, that handler must still be the one SIGTERM
//  reaches, and the worker stops cleanly.
static void
test_e2e_a_worker_program_keeps_its_own_signal_handlers(void **state)
{
    s_fx_t *fx = *state;
    char bin[512];
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("chaos_worker"));
    char *argv[] = {bin, fx->b.workers, "w-signals", NULL};
    pid_t w = jobq_test_spawn(argv, NULL);
    assert_true(w > 0);
    assert_true(jobq_test_wait_until(s_has_zmq_thread, &w, 10000));
    assert_int_equal(kill(w, SIGTERM), 0);
    int status = jobq_test_wait(w, 5000);
    assert_int_not_equal(status, -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int
main(void)
{
    zsys_init();
    zsys_set_linger(0);
    const struct CMUnitTest tests[] = {
        T(test_e2e_watch_sees_every_progress_step_in_order),
        T(test_e2e_watch_after_the_end_reports_it_at_once),
        T(test_e2e_failing_job_is_retried_until_it_succeeds),
        T(test_e2e_cancel_pending_and_running_jobs),
        T(test_e2e_list_filters_and_pages),
        T(test_e2e_broker_sigkill_keeps_pending_and_completed_jobs),
        T(test_e2e_malformed_messages_get_errors_and_the_broker_goes_on),
        T(test_e2e_an_error_carries_the_rid_read_before_a_bad_body),
        T(test_e2e_refused_messages_are_counted_and_logged_once_per_interval),
        T(test_e2e_a_million_subscriptions_cannot_swell_the_broker),
        T(test_e2e_idle_connections_leave_clients_and_workers_working),
        T(test_e2e_a_full_descriptor_table_is_logged_and_outlived),
        T(test_e2e_slow_subscriber_sees_a_gap_and_never_blocks_the_broker),
        T(test_e2e_unreachable_broker_fails_within_bounded_time),
        T(test_e2e_client_fails_over_to_the_next_broker),
        T(test_e2e_batch_enqueue_and_prefetching_worker),
        T(test_e2e_pipelined_enqueue_answers_each_request_once),
        T(test_e2e_broker_io_thread_asks_for_a_short_slice),
        T(test_e2e_a_worker_program_keeps_its_own_signal_handlers),
    };
    return cmocka_run_group_tests_name("e2e", tests, NULL, NULL);
}
