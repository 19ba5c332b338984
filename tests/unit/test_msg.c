/*  test_msg.c: every command through encode and decode, and every rule
    the decoder enforces, with the field it names. */
#include "jobq_test.h"
#include "jobq_msg.h"

#include <string.h>

static jobq_str_t
S(const char *s)
{
    return (jobq_str_t){s, strlen(s)};
}

static bool
s_eq(jobq_str_t a, const char *b)
{
    return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

//  Encode m, decode it back into *out (w keeps the bytes alive).
static int
s_round(const jobq_msg_t *m,
        jobq_mp_writer_t *w,
        jobq_msg_t *out,
        jobq_msg_why_t *why)
{
    jobq_mp_writer_reset(w);
    jobq_msg_encode(m, w);
    assert_int_equal(jobq_mp_writer_error(w), JOBQ_OK);
    return jobq_msg_decode(m->cmd, w->data, w->len, out, why);
}

static const uint8_t s_input[] = {0x81, 0xa2, 'm', 's', 0xcd, 0x03, 0xe8};

static void
test_msg_every_command_round_trips(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1 << 20);
    jobq_msg_why_t why;
    jobq_msg_t m, d;

    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_ENQUEUE;
    m.rid = 77;
    m.u.enqueue.type = S("scrape_reviews");
    m.u.enqueue.shop = S("Shop:42");
    m.u.enqueue.input = (jobq_bytes_t){s_input, sizeof s_input};
    m.u.enqueue.key = S("order-17");
    m.u.enqueue.priority = -5;
    m.u.enqueue.delay_ms = 1500;
    m.u.enqueue.max_attempts = 7;
    m.u.enqueue.timeout_ms = 60000;
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_int_equal(d.rid, 77);
    assert_true(s_eq(d.u.enqueue.type, "scrape_reviews"));
    assert_true(s_eq(d.u.enqueue.shop, "Shop:42"));
    assert_true(s_eq(d.u.enqueue.key, "order-17"));
    assert_int_equal(d.u.enqueue.input.len, sizeof s_input);
    assert_memory_equal(d.u.enqueue.input.ptr, s_input, sizeof s_input);
    assert_int_equal(d.u.enqueue.priority, -5);
    assert_int_equal(d.u.enqueue.delay_ms, 1500);
    assert_int_equal(d.u.enqueue.max_attempts, 7);
    assert_int_equal(d.u.enqueue.timeout_ms, 60000);

    static const int byid[] = {JOBQ_CMD_STATUS, JOBQ_CMD_CANCEL,
                               JOBQ_CMD_RETRY};
    for (int i = 0; i < 3; i++) {
        memset(&m, 0, sizeof m);
        m.cmd = byid[i];
        m.rid = 5;
        m.u.job.id = 0x01a222eb783e0000ull;
        assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
        assert_true(d.u.job.id == 0x01a222eb783e0000ull);
    }

    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_LIST;
    m.rid = 9;
    m.u.list.shop = S("s1");
    m.u.list.type = S("noop");
    m.u.list.status = JOBQ_RUNNING;
    m.u.list.limit = 20;
    m.u.list.cursor = 12345;
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_true(s_eq(d.u.list.shop, "s1") && s_eq(d.u.list.type, "noop"));
    assert_int_equal(d.u.list.status, JOBQ_RUNNING);
    assert_int_equal(d.u.list.limit, 20);
    assert_int_equal(d.u.list.cursor, 12345);

    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_STATS;
    m.rid = 3;
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_int_equal(d.rid, 3);

    jobq_mp_writer_t hw;
    jobq_mp_writer_init(&hw, 4096);
    uint64_t ids[2] = {11, 22};
    uint32_t atts[2] = {1, 3};
    jobq_msg_write_held(&hw, ids, atts, 2);
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_READY;
    m.u.ready.types[0] = S("noop");
    m.u.ready.types[1] = S("sleep");
    m.u.ready.ntypes = 2;
    m.u.ready.capacity = 8;
    m.u.ready.name = S("w-1");
    m.held = (jobq_bytes_t){hw.data, hw.len};
    m.has_held = true;
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_int_equal(d.u.ready.ntypes, 2);
    assert_true(s_eq(d.u.ready.types[1], "sleep"));
    assert_int_equal(d.u.ready.capacity, 8);
    assert_true(s_eq(d.u.ready.name, "w-1"));
    uint64_t rid_[4];
    uint32_t rat[4];
    assert_int_equal(jobq_msg_read_held(&d, rid_, rat, 4), 2);
    assert_true(rid_[1] == 22 && rat[1] == 3);
    m.cmd = JOBQ_CMD_HEARTBEAT;
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_int_equal(jobq_msg_read_held(&d, rid_, rat, 4), 2);
    jobq_mp_writer_fini(&hw);

    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_PROGRESS;
    m.u.progress.id = 99;
    m.u.progress.attempt = 2;
    m.u.progress.progress = 55;
    m.u.progress.message = S("page 3");
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_true(d.u.progress.id == 99 && d.u.progress.attempt == 2);
    assert_int_equal(d.u.progress.progress, 55);
    assert_true(s_eq(d.u.progress.message, "page 3"));

    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_COMPLETE;
    m.u.complete.id = 99;
    m.u.complete.attempt = 2;
    m.u.complete.output = (jobq_bytes_t){s_input, sizeof s_input};
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_memory_equal(d.u.complete.output.ptr, s_input, sizeof s_input);

    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_FAIL;
    m.u.fail.id = 99;
    m.u.fail.attempt = 2;
    m.u.fail.error = S("HTTP 503");
    m.u.fail.permanent = true;
    m.u.fail.cancelled = true;
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_true(s_eq(d.u.fail.error, "HTTP 503"));
    assert_true(d.u.fail.permanent && d.u.fail.cancelled);

    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_JOB;
    m.u.dispatch.id = 99;
    m.u.dispatch.attempt = 4;
    m.u.dispatch.type = S("noop");
    m.u.dispatch.shop = S("s");
    m.u.dispatch.input = (jobq_bytes_t){s_input, sizeof s_input};
    m.u.dispatch.timeout_ms = 1000;
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_int_equal(d.u.dispatch.attempt, 4);
    assert_true(s_eq(d.u.dispatch.type, "noop"));
    assert_int_equal(d.u.dispatch.timeout_ms, 1000);

    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_CANCEL_JOB;
    m.u.cancel_job.id = 99;
    m.u.cancel_job.attempt = 4;
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_int_equal(d.u.cancel_job.attempt, 4);

    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_DISCONNECT;
    m.u.disconnect.reason = S("unknown worker");
    assert_int_equal(s_round(&m, &w, &d, &why), JOBQ_OK);
    assert_true(s_eq(d.u.disconnect.reason, "unknown worker"));

    jobq_mp_writer_reset(&w);
    jobq_msg_write_error(&w, 41, JOBQ_ESTOREFULL, "full");
    assert_int_equal(jobq_msg_decode(JOBQ_CMD_ERROR, w.data, w.len, &d, &why),
                     JOBQ_OK);
    assert_int_equal(d.rid, 41);
    assert_int_equal(d.u.error.code, JOBQ_ESTOREFULL);
    jobq_mp_writer_fini(&w);
}

//  Decode a body built with f; return the code and why.
typedef void (*s_build_fn)(jobq_mp_writer_t *w);

static int
s_decode(int cmd, s_build_fn f, jobq_msg_t *m, jobq_msg_why_t *why)
{
    static jobq_mp_writer_t w;
    jobq_mp_writer_fini(&w);
    jobq_mp_writer_init(&w, 1 << 20);
    f(&w);
    return jobq_msg_decode(cmd, w.data, w.len, m, why);
}

static void
s_kv_str(jobq_mp_writer_t *w, const char *k, const char *v)
{
    jobq_mp_write_cstr(w, k);
    jobq_mp_write_cstr(w, v);
}

static void
b_minimal(jobq_mp_writer_t *w)
{
    jobq_mp_write_map(w, 3);
    jobq_mp_write_cstr(w, "rid");
    jobq_mp_write_uint(w, 1);
    s_kv_str(w, "type", "noop");
    s_kv_str(w, "shop_id", "s");
}

static void
test_msg_enqueue_defaults_fill_absent_fields(void **state)
{
    (void) state;
    jobq_msg_t m;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, b_minimal, &m, &why), JOBQ_OK);
    assert_int_equal(m.u.enqueue.max_attempts, JOBQ_DEFAULT_ATTEMPTS);
    assert_int_equal(m.u.enqueue.input.len, 1);
    assert_int_equal(m.u.enqueue.input.ptr[0], 0x80);
    assert_int_equal(m.u.enqueue.priority, 0);
    assert_int_equal(m.u.enqueue.key.len, 0);
}

//  Each case: a body with one fault, the code, and a word of the why.
#define B(name, ...)                                                           \
    static void name(jobq_mp_writer_t *w)                                      \
    {                                                                          \
        __VA_ARGS__                                                            \
    }

B(b_no_rid, jobq_mp_write_map(w, 2); s_kv_str(w, "type", "noop");
  s_kv_str(w, "shop_id", "s");)
B(b_no_type, jobq_mp_write_map(w, 2); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  s_kv_str(w, "shop_id", "s");)
B(b_type_int, jobq_mp_write_map(w, 3); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  jobq_mp_write_cstr(w, "type");
  jobq_mp_write_uint(w, 5);
  s_kv_str(w, "shop_id", "s");)
B(b_type_upper, jobq_mp_write_map(w, 3); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  s_kv_str(w, "type", "Noop");
  s_kv_str(w, "shop_id", "s");)
B(b_type_empty, jobq_mp_write_map(w, 3); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  s_kv_str(w, "type", "");
  s_kv_str(w, "shop_id", "s");)
B(b_type_long, jobq_mp_write_map(w, 3); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  s_kv_str(w,
           "type",
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  s_kv_str(w, "shop_id", "s");)
B(b_shop_space, jobq_mp_write_map(w, 3); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  s_kv_str(w, "type", "noop");
  s_kv_str(w, "shop_id", "a shop");)
B(b_input_array, b_minimal(w); w->data[0] = 0x84;
  jobq_mp_write_cstr(w, "input");
  jobq_mp_write_array(w, 0);)
B(b_prio_str, b_minimal(w); w->data[0] = 0x84; s_kv_str(w, "priority", "high");)
B(b_prio_big, b_minimal(w); w->data[0] = 0x84;
  jobq_mp_write_cstr(w, "priority");
  jobq_mp_write_int(w, 1001);)
B(b_delay_big, b_minimal(w); w->data[0] = 0x84; jobq_mp_write_cstr(w, "delay");
  jobq_mp_write_uint(w, JOBQ_MAX_DELAY_MS + 1);)
B(b_attempts_0, b_minimal(w); w->data[0] = 0x84;
  jobq_mp_write_cstr(w, "max_attempts");
  jobq_mp_write_uint(w, 0);)
B(b_attempts_big, b_minimal(w); w->data[0] = 0x84;
  jobq_mp_write_cstr(w, "max_attempts");
  jobq_mp_write_uint(w, JOBQ_MAX_ATTEMPTS + 1);)
B(b_dup_type, b_minimal(w); w->data[0] = 0x84; s_kv_str(w, "type", "noop");)
B(b_input_big, static char big[JOBQ_MAX_INPUT_BYTES]; b_minimal(w);
  w->data[0] = 0x84;
  jobq_mp_write_cstr(w, "input");
  jobq_mp_write_map(w, 1);
  jobq_mp_write_cstr(w, "x");
  jobq_mp_write_str(w, big, sizeof big);)
B(b_not_map, jobq_mp_write_array(w, 1); jobq_mp_write_uint(w, 1);)
B(b_bomb, jobq_mp_write_raw(w, "\x81\xdf\xab\xab\xab\xab", 6);)
B(b_unknown_key, b_minimal(w); w->data[0] = 0x84;
  s_kv_str(w, "from_the_future", "x");)

static void
test_msg_enqueue_rejections_name_the_field(void **state)
{
    (void) state;
    const struct {
        s_build_fn f;      //  body
        int rc;            //  expected code
        const char *says;  //  in why
    } cases[] = {
        {b_no_rid, JOBQ_EINVAL, "rid"},
        {b_no_type, JOBQ_EINVAL, "type"},
        {b_type_int, JOBQ_EINVAL, "'type'"},
        {b_type_upper, JOBQ_EINVAL, "'type'"},
        {b_type_empty, JOBQ_EINVAL, "'type'"},
        {b_type_long, JOBQ_ETOOBIG, "'type'"},
        {b_shop_space, JOBQ_EINVAL, "'shop_id'"},
        {b_input_array, JOBQ_EINVAL, "'input'"},
        {b_prio_str, JOBQ_EINVAL, "'priority'"},
        {b_prio_big, JOBQ_EINVAL, "'priority'"},
        {b_delay_big, JOBQ_EINVAL, "'delay'"},
        {b_attempts_0, JOBQ_EINVAL, "'max_attempts'"},
        {b_attempts_big, JOBQ_EINVAL, "'max_attempts'"},
        {b_dup_type, JOBQ_EINVAL, "twice"},
        {b_input_big, JOBQ_ETOOBIG, "'input'"},
        {b_not_map, JOBQ_EINVAL, "map"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jobq_msg_t m;
        jobq_msg_why_t why;
        int rc = s_decode(JOBQ_CMD_ENQUEUE, cases[i].f, &m, &why);
        if (rc != cases[i].rc || !strstr(why.text, cases[i].says))
            fail_msg("case %zu: rc=%d why=%s", i, rc, why.text);
    }
    jobq_msg_t m;
    jobq_msg_why_t why;
    int rc = s_decode(JOBQ_CMD_ENQUEUE, b_bomb, &m, &why);
    assert_true(rc == JOBQ_EINVAL || rc == JOBQ_ETOOBIG);
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, b_unknown_key, &m, &why),
                     JOBQ_OK);
    //  The rid read before a bad field is reported, for the error reply.
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, b_type_int, &m, &why),
                     JOBQ_EINVAL);
    assert_int_equal(m.rid, 1);
    assert_int_equal(s_decode(0x7f, b_minimal, &m, &why), JOBQ_ECOMMAND);
}

B(b_id15, jobq_mp_write_map(w, 2); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  s_kv_str(w, "id", "0123456789abcde");)
B(b_id_upper, jobq_mp_write_map(w, 2); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  s_kv_str(w, "id", "0123456789ABCDEF");)
B(b_limit0, jobq_mp_write_map(w, 2); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  jobq_mp_write_cstr(w, "limit");
  jobq_mp_write_uint(w, 0);)
B(b_limit_big, jobq_mp_write_map(w, 2); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  jobq_mp_write_cstr(w, "limit");
  jobq_mp_write_uint(w, JOBQ_MAX_LIST + 1);)
B(b_status_bad, jobq_mp_write_map(w, 2); jobq_mp_write_cstr(w, "rid");
  jobq_mp_write_uint(w, 1);
  s_kv_str(w, "status", "done");)
B(b_ready_none, jobq_mp_write_map(w, 2); jobq_mp_write_cstr(w, "types");
  jobq_mp_write_array(w, 0);
  jobq_mp_write_cstr(w, "capacity");
  jobq_mp_write_uint(w, 1);)
B(b_ready_cap0, jobq_mp_write_map(w, 2); jobq_mp_write_cstr(w, "types");
  jobq_mp_write_array(w, 1);
  jobq_mp_write_cstr(w, "noop");
  jobq_mp_write_cstr(w, "capacity");
  jobq_mp_write_uint(w, 0);)
B(b_ready_many, jobq_mp_write_map(w, 2); jobq_mp_write_cstr(w, "types");
  jobq_mp_write_array(w, JOBQ_MAX_WORKER_TYPES + 1);
  for (int i = 0; i <= JOBQ_MAX_WORKER_TYPES; i++)
      jobq_mp_write_cstr(w, "noop");
  jobq_mp_write_cstr(w, "capacity");
  jobq_mp_write_uint(w, 1);)
B(b_held_noattempt, jobq_mp_write_map(w, 1); jobq_mp_write_cstr(w, "jobs");
  jobq_mp_write_array(w, 1);
  jobq_mp_write_map(w, 1);
  s_kv_str(w, "id", "0123456789abcdef");)
B(b_progress_101, jobq_mp_write_map(w, 3);
  s_kv_str(w, "id", "0123456789abcdef");
  jobq_mp_write_cstr(w, "attempt");
  jobq_mp_write_uint(w, 1);
  jobq_mp_write_cstr(w, "progress");
  jobq_mp_write_uint(w, 101);)

static void
test_msg_other_rejections_name_the_field(void **state)
{
    (void) state;
    const struct {
        int cmd;           //  command
        s_build_fn f;      //  body
        const char *says;  //  in why
    } cases[] = {
        {JOBQ_CMD_STATUS, b_id15, "'id'"},
        {JOBQ_CMD_CANCEL, b_id_upper, "'id'"},
        {JOBQ_CMD_LIST, b_limit0, "'limit'"},
        {JOBQ_CMD_LIST, b_limit_big, "'limit'"},
        {JOBQ_CMD_LIST, b_status_bad, "'status'"},
        {JOBQ_CMD_READY, b_ready_none, "'types'"},
        {JOBQ_CMD_READY, b_ready_cap0, "'capacity'"},
        {JOBQ_CMD_READY, b_ready_many, "'types'"},
        {JOBQ_CMD_HEARTBEAT, b_held_noattempt, "'jobs'"},
        {JOBQ_CMD_PROGRESS, b_progress_101, "'progress'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jobq_msg_t m;
        jobq_msg_why_t why;
        int rc = s_decode(cases[i].cmd, cases[i].f, &m, &why);
        if (rc != JOBQ_EINVAL || !strstr(why.text, cases[i].says))
            fail_msg("case %zu: rc=%d why=%s", i, rc, why.text);
    }
}

static void
test_msg_job_map_round_trips_with_and_without_payloads(void **state)
{
    (void) state;
    static const uint8_t errs[] = {0x90};
    jobq_jobdata_t j;
    memset(&j, 0, sizeof j);
    j.id = 0x01a222eb783e0001ull;
    j.type = S("sleep");
    j.shop = S("demo");
    j.message = S("half");
    j.error = S("boom");
    j.key = S("k1");
    j.worker = S("w-1");
    j.input = (jobq_bytes_t){s_input, sizeof s_input};
    j.output = (jobq_bytes_t){s_input, sizeof s_input};
    j.errors = (jobq_bytes_t){errs, 1};
    j.status = JOBQ_FAILED;
    j.progress = 40;
    j.attempts = 3;
    j.max_attempts = 3;
    j.version = 9;
    j.priority = -7;
    j.run_at = 1000;
    j.timeout_ms = 5000;
    j.created_at = 1000;
    j.updated_at = 2000;
    j.started_at = 1500;
    j.completed_at = 2000;
    j.lease_until = 0;
    j.seq = 12345;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1 << 16);
    jobq_msg_write_job(&w, &j, JOBQ_JOBMAP_INPUT | JOBQ_JOBMAP_OUTPUT);
    assert_int_equal(jobq_mp_check(w.data, w.len, &jobq_proto_limits, NULL),
                     JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, w.data, w.len);
    jobq_jobdata_t d;
    assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_OK);
    assert_true(d.id == j.id);
    assert_true(s_eq(d.type, "sleep") && s_eq(d.shop, "demo"));
    assert_true(s_eq(d.message, "half") && s_eq(d.error, "boom"));
    assert_true(s_eq(d.key, "k1") && s_eq(d.worker, "w-1"));
    assert_int_equal(d.status, JOBQ_FAILED);
    assert_int_equal(d.priority, -7);
    assert_int_equal(d.version, 9);
    assert_int_equal(d.seq, 12345);
    assert_int_equal(d.started_at, 1500);
    assert_int_equal(d.lease_until, 0);
    assert_int_equal(d.input.len, sizeof s_input);
    assert_int_equal(d.output.len, sizeof s_input);
    jobq_mp_writer_reset(&w);
    jobq_msg_write_job(&w, &j, 0);
    jobq_mp_reader_init(&r, w.data, w.len);
    assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_OK);
    assert_int_equal(d.input.len, 0);
    assert_int_equal(d.output.len, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_names_ids_topics_and_codes(void **state)
{
    (void) state;
    char hex[JOBQ_ID_LEN + 1];
    uint64_t v;
    jobq_id_format(0x0123456789abcdefull, hex);
    assert_string_equal(hex, "0123456789abcdef");
    assert_int_equal(jobq_id_parse(hex, 16, &v), JOBQ_OK);
    assert_true(v == 0x0123456789abcdefull);
    assert_int_equal(jobq_id_parse("0123456789abcdeg", 16, &v), JOBQ_EINVAL);
    for (int s = 0; s < JOBQ_STATUS_COUNT_; s++) {
        const char *n = jobq_status_name(s);
        assert_int_equal(jobq_status_parse(n, strlen(n)), s);
    }
    assert_int_equal(jobq_status_parse("done", 4), -1);
    char topic[JOBQ_TOPIC_MAX];
    size_t n = jobq_topic_format("demo", 4, 1, topic);
    assert_int_equal(n, 21);
    assert_memory_equal(topic, "demo/0000000000000001", 21);
    static const int errs[] = {
        JOBQ_EINVAL,       JOBQ_ENOTFOUND, JOBQ_ETOOBIG,
        JOBQ_EUNAVAILABLE, JOBQ_ESTATE,    JOBQ_ESTOREFULL,
        JOBQ_ESTORAGE,     JOBQ_EVERSION,  JOBQ_ECOMMAND};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        const char *c = jobq_err_wire_code(errs[i]);
        assert_int_equal(jobq_err_from_wire_code(c, strlen(c)), errs[i]);
    }
    assert_true(jobq_proto_valid_type(S("scrape_reviews.v2-x")));
    assert_false(jobq_proto_valid_type(S("a/b")));
    assert_true(jobq_proto_valid_shop(S("Shop:A_1.b-2")));
    assert_false(jobq_proto_valid_shop(S("shop/1")));
    assert_string_equal(jobq_cmd_name(JOBQ_CMD_CANCEL_JOB), "CANCEL_JOB");
    assert_null(jobq_cmd_name(0x7f));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_every_command_round_trips),
        cmocka_unit_test(test_msg_enqueue_defaults_fill_absent_fields),
        cmocka_unit_test(test_msg_enqueue_rejections_name_the_field),
        cmocka_unit_test(test_msg_other_rejections_name_the_field),
        cmocka_unit_test(
            test_msg_job_map_round_trips_with_and_without_payloads),
        cmocka_unit_test(test_msg_names_ids_topics_and_codes),
    };
    return cmocka_run_group_tests_name("msg", tests, NULL, NULL);
}
