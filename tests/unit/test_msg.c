/*  test_msg.c: every command through encode and decode, every rule the
    decoder enforces (with the field it names), the job map, and the small
    protocol helpers: ids, state names, wire error codes, topics. */
#include "jobq_test.h"
#include "jobq_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --- helpers ---------------------------------------------------------------

static jobq_str_t
S(const char *s)
{
    return (jobq_str_t){s, strlen(s)};
}

static bool
s_eq(jobq_str_t a, const char *b)
{
    return a.len == strlen(b) && (a.len == 0 || memcmp(a.ptr, b, a.len) == 0);
}

static bool
s_beq(jobq_bytes_t a, const void *b, size_t n)
{
    return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

//  Encode m, then decode the bytes back into *out; w keeps them alive.
static int
s_round(const jobq_msg_t *m, jobq_mp_writer_t *w, jobq_msg_t *out)
{
    jobq_msg_why_t why;
    jobq_mp_writer_reset(w);
    jobq_msg_encode(m, w);
    assert_int_equal(jobq_mp_writer_error(w), JOBQ_OK);
    int rc = jobq_msg_decode(m->cmd, w->data, w->len, out, &why);
    if (rc != JOBQ_OK)
        fail_msg("%s: decode rc=%d why=%s", jobq_cmd_name(m->cmd), rc,
                 why.text);
    assert_int_equal(out->cmd, m->cmd);
    return rc;
}

//  {"ms": 1000, "tags": ["a", "b"], "deep": {"x": nil}}
static const uint8_t s_input[] = {
    0x83, 0xa2, 'm',  's', 0xcd, 0x03, 0xe8, 0xa4, 't', 'a',  'g',  's', 0x92,
    0xa1, 'a',  0xa1, 'b', 0xa4, 'd',  'e',  'e',  'p', 0x81, 0xa1, 'x', 0xc0};

//  {"rows": 42}
static const uint8_t s_output[] = {0x81, 0xa4, 'r', 'o', 'w', 's', 0x2a};

//  --- a body builder for hand-made bodies -----------------------------------

enum {
    K_END = 0,  //  ends a field list
    K_STR,      //  s
    K_UINT,     //  u
    K_INT,      //  i
    K_NIL,
    K_MAP0,    //  {}
    K_ARR0,    //  []
    K_RAW,     //  u bytes at s, already encoded
    K_STRN,    //  a string of u bytes 'a'
    K_BIGMAP,  //  a map {"x": "aaa..."} of exactly u encoded bytes
    K_TYPES,   //  an array of u strings "noop"
    K_HELD     //  a held-jobs array of u valid entries
};

typedef struct {
    int kind;         //  K_*
    const char *key;  //  map key
    const char *s;    //  K_STR value, K_RAW bytes
    uint64_t u;       //  K_UINT value, lengths and counts
    int64_t i;        //  K_INT value
} s_kv_t;

static s_kv_t
s_kv(int kind, const char *key, const char *s, uint64_t u, int64_t i)
{
    return (s_kv_t){kind, key, s, u, i};
}

static s_kv_t
s_kstr(const char *k, const char *v)
{
    return s_kv(K_STR, k, v, 0, 0);
}

static s_kv_t
s_kuint(const char *k, uint64_t v)
{
    return s_kv(K_UINT, k, NULL, v, 0);
}

static s_kv_t
s_kint(const char *k, int64_t v)
{
    return s_kv(K_INT, k, NULL, 0, v);
}

static s_kv_t
s_knil(const char *k)
{
    return s_kv(K_NIL, k, NULL, 0, 0);
}

static s_kv_t
s_kmap0(const char *k)
{
    return s_kv(K_MAP0, k, NULL, 0, 0);
}

static s_kv_t
s_karr0(const char *k)
{
    return s_kv(K_ARR0, k, NULL, 0, 0);
}

//  n bytes at b, already encoded.
static s_kv_t
s_kraw(const char *k, const char *b, size_t n)
{
    return s_kv(K_RAW, k, b, n, 0);
}

//  A string of n bytes 'a'.
static s_kv_t
s_kstrn(const char *k, size_t n)
{
    return s_kv(K_STRN, k, NULL, n, 0);
}

//  A map of exactly n encoded bytes.
static s_kv_t
s_kbigmap(const char *k, size_t n)
{
    return s_kv(K_BIGMAP, k, NULL, n, 0);
}

//  An array of n type names.
static s_kv_t
s_ktypes(const char *k, size_t n)
{
    return s_kv(K_TYPES, k, NULL, n, 0);
}

//  A held-jobs array of n entries.
static s_kv_t
s_kheld(const char *k, size_t n)
{
    return s_kv(K_HELD, k, NULL, n, 0);
}

//  Ends a field list.
static s_kv_t
s_kend(void)
{
    return s_kv(K_END, NULL, NULL, 0, 0);
}

//  A field list at block scope, ended for s_build().
#define S_FIELDS(...)   ((const s_kv_t[]){__VA_ARGS__, s_kend()})
#define ID_OK           "0123456789abcdef"
#define ENQ_BASE_NO_RID s_kstr("type", "noop"), s_kstr("shop_id", "s")
#define ENQ_BASE        s_kuint("rid", 1), ENQ_BASE_NO_RID

//  A map {"x": str} of exactly n encoded bytes.
static void
s_write_bigmap(jobq_mp_writer_t *w, size_t n)
{
    size_t body = n - 3;  //  after the fixmap byte and the key "x"
    size_t len = body - 5 > 65535 ? body - 5
                 : body - 3 > 255 ? body - 3
                 : body - 2 > 31  ? body - 2
                                  : body - 1;
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, 'a', len);
    size_t before = w->len;
    jobq_mp_write_map(w, 1);
    jobq_mp_write_cstr(w, "x");
    jobq_mp_write_str(w, s, len);
    free(s);
    assert_int_equal(w->len - before, n);
}

static void
s_write_value(jobq_mp_writer_t *w, const s_kv_t *f)
{
    switch (f->kind) {
    case K_STR:
        jobq_mp_write_cstr(w, f->s);
        break;
    case K_UINT:
        jobq_mp_write_uint(w, f->u);
        break;
    case K_INT:
        jobq_mp_write_int(w, f->i);
        break;
    case K_NIL:
        jobq_mp_write_nil(w);
        break;
    case K_MAP0:
        jobq_mp_write_map(w, 0);
        break;
    case K_ARR0:
        jobq_mp_write_array(w, 0);
        break;
    case K_RAW:
        jobq_mp_write_raw(w, f->s, f->u);
        break;
    case K_STRN: {
        char *s = malloc(f->u + 1);
        assert_non_null(s);
        memset(s, 'a', f->u);
        jobq_mp_write_str(w, s, f->u);
        free(s);
        break;
    }
    case K_BIGMAP:
        s_write_bigmap(w, f->u);
        break;
    case K_TYPES:
        jobq_mp_write_array(w, (uint32_t) f->u);
        for (uint64_t i = 0; i < f->u; i++)
            jobq_mp_write_cstr(w, "noop");
        break;
    case K_HELD: {
        uint64_t *ids = calloc(f->u + 1, sizeof *ids);
        uint32_t *ats = calloc(f->u + 1, sizeof *ats);
        assert_true(ids && ats);
        for (uint64_t i = 0; i < f->u; i++) {
            ids[i] = i + 1;
            ats[i] = 1;
        }
        jobq_msg_write_held(w, ids, ats, (uint32_t) f->u);
        free(ids);
        free(ats);
        break;
    }
    default:
        fail_msg("bad field kind %d", f->kind);
    }
}

//  Write the fields up to K_END as one map.
static void
s_build(jobq_mp_writer_t *w, const s_kv_t *f)
{
    uint32_t n = 0;
    while (f[n].kind != K_END)
        n++;
    jobq_mp_write_map(w, n);
    for (uint32_t i = 0; i < n; i++) {
        jobq_mp_write_cstr(w, f[i].key);
        s_write_value(w, &f[i]);
    }
    assert_int_equal(jobq_mp_writer_error(w), JOBQ_OK);
}

//  Build the fields into w and decode them as cmd.
static int
s_decode(int cmd,
         const s_kv_t *f,
         jobq_mp_writer_t *w,
         jobq_msg_t *m,
         jobq_msg_why_t *why)
{
    jobq_mp_writer_reset(w);
    s_build(w, f);
    return jobq_msg_decode(cmd, w->data, w->len, m, why);
}

//  The command codes the decoder knows.
static const int s_all_cmds[] = {
    JOBQ_CMD_ENQUEUE,    JOBQ_CMD_STATUS,     JOBQ_CMD_LIST,
    JOBQ_CMD_CANCEL,     JOBQ_CMD_STATS,      JOBQ_CMD_RETRY,
    JOBQ_CMD_READY,      JOBQ_CMD_HEARTBEAT,  JOBQ_CMD_PROGRESS,
    JOBQ_CMD_COMPLETE,   JOBQ_CMD_FAIL,       JOBQ_CMD_JOB,
    JOBQ_CMD_CANCEL_JOB, JOBQ_CMD_DISCONNECT, JOBQ_CMD_ACK,
    JOBQ_CMD_REPLY,      JOBQ_CMD_ERROR};

#define S_NCMDS (sizeof s_all_cmds / sizeof s_all_cmds[0])

//  --- round trips, client commands ------------------------------------------

static void
test_msg_enqueue_round_trips_every_field(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 20);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_ENQUEUE;
    m.rid = UINT64_MAX;
    m.u.enqueue.type = S("scrape_reviews.v2");
    m.u.enqueue.shop = S("Shop:42_a.b-c");
    m.u.enqueue.input = (jobq_bytes_t){s_input, sizeof s_input};
    m.u.enqueue.key = S("order-17");
    m.u.enqueue.priority = -1000;
    m.u.enqueue.delay_ms = JOBQ_MAX_DELAY_MS;
    m.u.enqueue.max_attempts = JOBQ_MAX_ATTEMPTS;
    m.u.enqueue.timeout_ms = JOBQ_MAX_TIMEOUT_MS;
    s_round(&m, &w, &d);
    assert_true(d.rid == UINT64_MAX);
    assert_true(s_eq(d.u.enqueue.type, "scrape_reviews.v2"));
    assert_true(s_eq(d.u.enqueue.shop, "Shop:42_a.b-c"));
    assert_true(s_eq(d.u.enqueue.key, "order-17"));
    assert_true(s_beq(d.u.enqueue.input, s_input, sizeof s_input));
    assert_int_equal(d.u.enqueue.priority, -1000);
    assert_true(d.u.enqueue.delay_ms == JOBQ_MAX_DELAY_MS);
    assert_int_equal(d.u.enqueue.max_attempts, JOBQ_MAX_ATTEMPTS);
    assert_true(d.u.enqueue.timeout_ms == JOBQ_MAX_TIMEOUT_MS);
    //  The other end of each range.
    m.u.enqueue.priority = 1000;
    m.u.enqueue.delay_ms = 0;
    m.u.enqueue.max_attempts = 1;
    m.u.enqueue.timeout_ms = 0;
    s_round(&m, &w, &d);
    assert_int_equal(d.u.enqueue.priority, 1000);
    assert_int_equal(d.u.enqueue.delay_ms, 0);
    assert_int_equal(d.u.enqueue.max_attempts, 1);
    assert_int_equal(d.u.enqueue.timeout_ms, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_enqueue_without_key_or_input_round_trips(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 20);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_ENQUEUE;
    m.rid = 9;
    m.u.enqueue.type = S("noop");
    m.u.enqueue.shop = S("s");
    m.u.enqueue.max_attempts = 3;
    s_round(&m, &w, &d);
    jobq_bytes_t body = {w.data, w.len}, v;
    assert_int_equal(jobq_mp_map_find(body, "key", &v), JOBQ_ENOTFOUND);
    assert_int_equal(d.rid, 9);
    assert_int_equal(d.u.enqueue.key.len, 0);
    assert_true(s_beq(d.u.enqueue.input, "\x80", 1));
    assert_true(s_eq(d.u.enqueue.type, "noop"));
    assert_true(s_eq(d.u.enqueue.shop, "s"));
    jobq_mp_writer_fini(&w);
}

static void
test_msg_enqueue_defaults_fill_absent_optional_fields(void **state)
{
    (void) state;
    const s_kv_t *f = S_FIELDS(ENQ_BASE);
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, f, &w, &m, &why), JOBQ_OK);
    assert_int_equal(m.rid, 1);
    assert_true(s_eq(m.u.enqueue.type, "noop"));
    assert_true(s_eq(m.u.enqueue.shop, "s"));
    assert_int_equal(m.u.enqueue.max_attempts, JOBQ_DEFAULT_ATTEMPTS);
    assert_true(s_beq(m.u.enqueue.input, "\x80", 1));  //  {}
    assert_int_equal(m.u.enqueue.priority, 0);
    assert_int_equal(m.u.enqueue.delay_ms, 0);
    assert_int_equal(m.u.enqueue.timeout_ms, 0);
    assert_int_equal(m.u.enqueue.key.len, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_enqueue_accepts_fields_in_any_order(void **state)
{
    (void) state;
    const s_kv_t *f = S_FIELDS(
        s_kint("priority", -3), s_kstr("key", "k"), s_kstr("shop_id", "s"),
        s_kuint("max_attempts", 9), s_kstr("type", "noop"), s_kuint("rid", 5),
        s_kraw("input", "\x81\xa1x\x01", 4));
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, f, &w, &m, &why), JOBQ_OK);
    assert_int_equal(m.rid, 5);
    assert_int_equal(m.u.enqueue.priority, -3);
    assert_int_equal(m.u.enqueue.max_attempts, 9);
    assert_true(s_eq(m.u.enqueue.key, "k"));
    assert_true(s_beq(m.u.enqueue.input, "\x81\xa1x\x01", 4));
    jobq_mp_writer_fini(&w);
}

//  docs/PROTOCOL.md section 5: "Integers may be sent in any msgpack integer
//  encoding".
static void
test_msg_decode_accepts_integers_in_any_encoding(void **state)
{
    (void) state;
    const s_kv_t *f =
        S_FIELDS(s_kraw("rid", "\xd3\0\0\0\0\0\0\0\x07", 9), ENQ_BASE_NO_RID,
                 s_kraw("priority", "\xcd\x00\x05", 3),
                 s_kraw("max_attempts", "\xd0\x02", 2),
                 s_kraw("delay", "\xd1\x00\x10", 3),
                 s_kraw("timeout", "\xcf\0\0\0\0\0\0\x01\x00", 9));
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, f, &w, &m, &why), JOBQ_OK);
    assert_int_equal(m.rid, 7);
    assert_int_equal(m.u.enqueue.priority, 5);
    assert_int_equal(m.u.enqueue.max_attempts, 2);
    assert_int_equal(m.u.enqueue.delay_ms, 16);
    assert_int_equal(m.u.enqueue.timeout_ms, 256);
    jobq_mp_writer_fini(&w);
}

//  An input of `levels` nested maps {"a": {"a": ... 1}} in b; its length.
static size_t
s_nested_input(char *b, int levels)
{
    size_t n = 0;
    for (int i = 0; i < levels; i++) {
        b[n++] = (char) 0x81;
        b[n++] = (char) 0xa1;
        b[n++] = 'a';
    }
    b[n++] = 0x01;
    return n;
}

//  docs/PROTOCOL.md section 5: an input map may nest JOBQ_MAX_MAP_DEPTH
//  containers, itself counting 1, so that a reply's job map, two levels
//  down, still fits in the body's JOBQ_MAX_DEPTH.
static void
test_msg_enqueue_accepts_input_nested_to_the_depth_limit(void **state)
{
    (void) state;
    char deep[64], deeper[64];
    size_t n = s_nested_input(deep, JOBQ_MAX_MAP_DEPTH);
    size_t n2 = s_nested_input(deeper, JOBQ_MAX_MAP_DEPTH + 1);
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m;
    jobq_msg_why_t why, why2;
    int rc =
        s_decode(JOBQ_CMD_ENQUEUE, S_FIELDS(ENQ_BASE, s_kraw("input", deep, n)),
                 &w, &m, &why);
    size_t got = m.u.enqueue.input.len;
    int rc2 = s_decode(JOBQ_CMD_ENQUEUE,
                       S_FIELDS(ENQ_BASE, s_kraw("input", deeper, n2)), &w, &m,
                       &why2);
    jobq_mp_writer_fini(&w);
    if (rc != JOBQ_OK)
        fail_msg("%d nested maps in input: rc=%d why=%s", JOBQ_MAX_MAP_DEPTH,
                 rc, why.text);
    assert_int_equal(got, n);
    assert_int_equal(rc2, JOBQ_ETOOBIG);
}

//  docs/PROTOCOL.md 5.1: an input or output map nests at most
//  JOBQ_MAX_MAP_DEPTH containers, itself counting 1, so 13 levels below
//  it: one more is the field's too_large, two more (17 containers in the
//  body) the body's. In ENQUEUE_BATCH an input sits at depth 4, so the
//  body's 16 leave it 13 counting itself.
static void
test_msg_input_and_output_nest_14_containers_counting_the_map(void **state)
{
    (void) state;
    char b[64];
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m;
    jobq_msg_why_t why;
    static const struct {
        int levels;        //  nested maps, the input or output counting 1
        int rc;            //  expected
        const char *says;  //  in the reason
    } enq[] = {{14, JOBQ_OK, ""},
               {15, JOBQ_ETOOBIG, "field 'input': nested deeper than 14"},
               {16, JOBQ_ETOOBIG, "body: nested too deep"}};
    for (size_t i = 0; i < sizeof enq / sizeof enq[0]; i++) {
        size_t n = s_nested_input(b, enq[i].levels);
        int rc =
            s_decode(JOBQ_CMD_ENQUEUE,
                     S_FIELDS(ENQ_BASE, s_kraw("input", b, n)), &w, &m, &why);
        if (rc != enq[i].rc || !strstr(why.text, enq[i].says))
            fail_msg("input of %d: rc=%d why=%s", enq[i].levels, rc, why.text);
        rc = s_decode(JOBQ_CMD_COMPLETE,
                      S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                               s_kraw("output", b, n)),
                      &w, &m, &why);
        if (rc != enq[i].rc || (enq[i].rc == JOBQ_ETOOBIG && enq[i].levels == 15
                                    ? !strstr(why.text, "field 'output'")
                                    : !strstr(why.text, enq[i].says)))
            fail_msg("output of %d: rc=%d why=%s", enq[i].levels, rc, why.text);
    }
    //  [{type: noop, shop_id: s, input: ...}]
    for (int levels = 13; levels <= 14; levels++) {
        char jobs[128];
        static const char head[] = "\x91\x83\xa4type\xa4noop\xa7shop_id\xa1s"
                                   "\xa5input";
        memcpy(jobs, head, sizeof head - 1);
        size_t n =
            sizeof head - 1 + s_nested_input(jobs + sizeof head - 1, levels);
        int rc = s_decode(JOBQ_CMD_ENQUEUE_BATCH,
                          S_FIELDS(s_kuint("rid", 1), s_kraw("jobs", jobs, n)),
                          &w, &m, &why);
        int want = levels == 13 ? JOBQ_OK : JOBQ_ETOOBIG;
        if (rc != want || (want && !strstr(why.text, "body: nested too deep")))
            fail_msg("batch input of %d: rc=%d why=%s", levels, rc, why.text);
    }
    jobq_mp_writer_fini(&w);
}

//  docs/PROTOCOL.md 5.1: the body is checked value by value in byte order
//  and the first fault decides. Within one value a declared length or count
//  is held against its limits before the bytes left, so one that is both
//  over a limit and cut short is too_large; a header cut short, or a count
//  within the limits but above the bytes left, is bad_request; the body's
//  running element total is counted last.
static void
test_msg_a_length_over_a_limit_and_cut_short_is_too_large(void **state)
{
    (void) state;
    static const struct {
        const char *b;     //  body
        size_t n;          //  bytes
        int rc;            //  expected
        const char *says;  //  in the reason
    } cases[] = {
        //  str 32 of 1 MiB + 1, bin 32 and ext 32 of 2 MiB, 4 bytes given
        {"\x81\xa1x\xdb\x00\x10\x00\x01"
         "abcd",
         12, JOBQ_ETOOBIG, "string"},
        {"\x81\xa1x\xc6\x00\x20\x00\x00"
         "abcd",
         12, JOBQ_ETOOBIG, "string"},
        {"\x81\xa1x\xc9\x00\x20\x00\x00\x01"
         "abc",
         13, JOBQ_ETOOBIG, "string"},
        //  str 32 of 100 bytes, 4 given: within the limit, so truncated
        {"\x81\xa1x\xdb\x00\x00\x00\x64"
         "abcd",
         12, JOBQ_EINVAL, "truncated"},
        //  array 32 and map 32 of 65,537 entries, 3 bytes given
        {"\x81\xa1x\xdd\x00\x01\x00\x01\x01\x02\x03", 11, JOBQ_ETOOBIG,
         "container"},
        {"\x81\xa1x\xdf\x00\x01\x00\x01\x01\x02\x03", 11, JOBQ_ETOOBIG,
         "container"},
        //  array 32 of 65,536 entries, 3 given: truncated
        {"\x81\xa1x\xdd\x00\x01\x00\x00\x01\x02\x03", 11, JOBQ_EINVAL,
         "truncated"},
        //  a str 32 header cut short: its length cannot be read
        {"\x81\xa1x\xdb\x00\x10", 6, JOBQ_EINVAL, "truncated"},
        //  the first fault in byte order decides
        {"\x82\xa1x\xc1\xa1y\xdb\x00\x20\x00\x00", 11, JOBQ_EINVAL, "0xc1"},
        {"\x82\xa1x\xdb\x00\x20\x00\x00", 8, JOBQ_ETOOBIG, "string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jobq_msg_t m;
        jobq_msg_why_t why;
        int rc = jobq_msg_decode(JOBQ_CMD_STATS, (const uint8_t *) cases[i].b,
                                 cases[i].n, &m, &why);
        if (rc != cases[i].rc || !strstr(why.text, cases[i].says) ||
            !strstr(why.text, "body: "))
            fail_msg("case %zu: rc=%d (want %d) why=%s", i, rc, cases[i].rc,
                     why.text);
    }
    //  A 17th container cut short: the depth is checked first.
    uint8_t deep[64];
    size_t n = 0;
    for (int i = 0; i < 16; i++)
        deep[n++] = 0x91;
    deep[n++] = 0xdd;
    memcpy(deep + n, "\x00\x00\x00\x05", 4);
    n += 4;
    deep[0] = 0x81;  //  the body: {"x": [[...]]}
    memmove(deep + 3, deep + 1, n - 1);
    deep[1] = 0xa1;
    deep[2] = 'x';
    n += 2;
    jobq_msg_t m;
    jobq_msg_why_t why;
    int rc = jobq_msg_decode(JOBQ_CMD_STATS, deep, n, &m, &why);
    if (rc != JOBQ_ETOOBIG || !strstr(why.text, "nested too deep"))
        fail_msg("deep: rc=%d why=%s", rc, why.text);
    //  Past the element total and cut short: truncated, counted first.
    //  {"a".."d": arrays of nils, 262,144 entries with the map's own 5,
    //  "e": an array of 8 with no bytes}: it would pass the total, but its
    //  count is a lie.
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 2u << 20);
    jobq_mp_write_map(&w, 5);
    for (int k = 0; k < 4; k++) {
        char key[2] = {(char) ('a' + k), 0};
        uint32_t items = k < 3 ? JOBQ_MAX_CONTAINER
                               : JOBQ_MAX_ELEMENTS - 5 - 3 * JOBQ_MAX_CONTAINER;
        jobq_mp_write_cstr(&w, key);
        jobq_mp_write_array(&w, items);
        for (uint32_t e = 0; e < items; e++)
            jobq_mp_write_nil(&w);
    }
    jobq_mp_write_cstr(&w, "e");
    jobq_mp_write_raw(&w, "\x98", 1);
    rc = jobq_msg_decode(JOBQ_CMD_STATS, w.data, w.len, &m, &why);
    if (rc != JOBQ_EINVAL || !strstr(why.text, "truncated"))
        fail_msg("total: rc=%d why=%s", rc, why.text);
    //  The same array with its 8 items: now the total is the fault.
    jobq_mp_write_raw(&w, "\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0", 8);
    rc = jobq_msg_decode(JOBQ_CMD_STATS, w.data, w.len, &m, &why);
    if (rc != JOBQ_ETOOBIG || !strstr(why.text, "too many elements"))
        fail_msg("total: rc=%d why=%s", rc, why.text);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_enqueue_accepts_input_of_exactly_the_limit(void **state)
{
    (void) state;
    const s_kv_t *f =
        S_FIELDS(ENQ_BASE, s_kbigmap("input", JOBQ_MAX_INPUT_BYTES));
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 2u << 20);
    jobq_msg_t m;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, f, &w, &m, &why), JOBQ_OK);
    assert_int_equal(m.u.enqueue.input.len, JOBQ_MAX_INPUT_BYTES);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_job_reference_commands_round_trip(void **state)
{
    (void) state;
    static const int cmds[] = {JOBQ_CMD_STATUS, JOBQ_CMD_CANCEL,
                               JOBQ_CMD_RETRY};
    static const uint64_t ids[] = {0, 1, 0x01a222eb783e0000ull, UINT64_MAX};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    for (size_t c = 0; c < 3; c++) {
        for (size_t i = 0; i < 4; i++) {
            jobq_msg_t m, d;
            memset(&m, 0, sizeof m);
            m.cmd = cmds[c];
            m.rid = 1000 + i;
            m.u.job.id = ids[i];
            s_round(&m, &w, &d);
            assert_int_equal(d.rid, 1000 + i);
            assert_true(d.u.job.id == ids[i]);
        }
    }
    jobq_mp_writer_fini(&w);
}

static void
test_msg_list_round_trips_filters_and_cursor(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    for (int st = 0; st < JOBQ_STATUS_COUNT_; st++) {
        jobq_msg_t m, d;
        memset(&m, 0, sizeof m);
        m.cmd = JOBQ_CMD_LIST;
        m.rid = 9;
        m.u.list.shop = S("Shop:1");
        m.u.list.type = S("noop");
        m.u.list.status = st;
        m.u.list.limit = JOBQ_MAX_LIST;
        m.u.list.cursor = 0x01a222eb783e0005ull;
        s_round(&m, &w, &d);
        assert_int_equal(d.rid, 9);
        assert_true(s_eq(d.u.list.shop, "Shop:1"));
        assert_true(s_eq(d.u.list.type, "noop"));
        assert_int_equal(d.u.list.status, st);
        assert_int_equal(d.u.list.limit, JOBQ_MAX_LIST);
        assert_true(d.u.list.cursor == 0x01a222eb783e0005ull);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_msg_list_without_filters_round_trips_as_any(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_LIST;
    m.rid = 2;
    m.u.list.status = -1;
    m.u.list.limit = 1;
    s_round(&m, &w, &d);
    assert_int_equal(d.u.list.shop.len, 0);
    assert_int_equal(d.u.list.type.len, 0);
    assert_int_equal(d.u.list.status, -1);
    assert_int_equal(d.u.list.limit, 1);
    assert_int_equal(d.u.list.cursor, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_list_defaults_fill_absent_fields(void **state)
{
    (void) state;
    const s_kv_t *f = S_FIELDS(s_kuint("rid", 4), s_knil("cursor"));
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_LIST, f, &w, &m, &why), JOBQ_OK);
    assert_int_equal(m.rid, 4);
    assert_int_equal(m.u.list.status, -1);
    assert_int_equal(m.u.list.limit, JOBQ_DEFAULT_LIST);
    assert_int_equal(m.u.list.cursor, 0);
    assert_int_equal(m.u.list.shop.len, 0);
    assert_int_equal(m.u.list.type.len, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_stats_round_trips(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_STATS;
    m.rid = 65536;
    s_round(&m, &w, &d);
    assert_int_equal(d.rid, 65536);
    assert_false(d.has_held);
    jobq_mp_writer_fini(&w);
}

//  --- round trips, worker commands ------------------------------------------

static void
test_msg_ready_round_trips_several_types_name_and_held_jobs(void **state)
{
    (void) state;
    jobq_mp_writer_t w, hw;
    jobq_mp_writer_init(&w, 1u << 16);
    jobq_mp_writer_init(&hw, 4096);
    uint64_t ids[3] = {11, 22, UINT64_MAX};
    uint32_t atts[3] = {1, 3, UINT32_MAX};
    jobq_msg_write_held(&hw, ids, atts, 3);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_READY;
    m.u.ready.types[0] = S("noop");
    m.u.ready.types[1] = S("sleep");
    m.u.ready.types[2] = S("scrape_reviews.v2");
    m.u.ready.ntypes = 3;
    m.u.ready.capacity = JOBQ_MAX_CAPACITY;
    m.u.ready.name = S("w-1@host");
    m.held = (jobq_bytes_t){hw.data, hw.len};
    m.has_held = true;
    s_round(&m, &w, &d);
    assert_int_equal(d.u.ready.ntypes, 3);
    assert_true(s_eq(d.u.ready.types[0], "noop"));
    assert_true(s_eq(d.u.ready.types[1], "sleep"));
    assert_true(s_eq(d.u.ready.types[2], "scrape_reviews.v2"));
    assert_int_equal(d.u.ready.capacity, JOBQ_MAX_CAPACITY);
    assert_true(s_eq(d.u.ready.name, "w-1@host"));
    assert_true(d.has_held);
    assert_true(s_beq(d.held, hw.data, hw.len));
    uint64_t rids[4];
    uint32_t rats[4];
    assert_int_equal(jobq_msg_read_held(&d, rids, rats, 4), 3);
    for (int i = 0; i < 3; i++) {
        assert_true(rids[i] == ids[i]);
        assert_int_equal(rats[i], atts[i]);
    }
    //  read_held stops at max.
    assert_int_equal(jobq_msg_read_held(&d, rids, rats, 2), 2);
    jobq_mp_writer_fini(&hw);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_ready_with_the_most_types_and_no_name_round_trips(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 16);
    char names[JOBQ_MAX_WORKER_TYPES][8];
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_READY;
    for (int i = 0; i < JOBQ_MAX_WORKER_TYPES; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        m.u.ready.types[i] = S(names[i]);
    }
    m.u.ready.ntypes = JOBQ_MAX_WORKER_TYPES;
    m.u.ready.capacity = 1;
    s_round(&m, &w, &d);
    assert_int_equal(d.u.ready.ntypes, JOBQ_MAX_WORKER_TYPES);
    for (int i = 0; i < JOBQ_MAX_WORKER_TYPES; i++)
        assert_true(s_eq(d.u.ready.types[i], names[i]));
    assert_int_equal(d.u.ready.capacity, 1);
    assert_int_equal(d.u.ready.name.len, 0);
    assert_false(d.has_held);
    uint64_t id;
    uint32_t at;
    assert_int_equal(jobq_msg_read_held(&d, &id, &at, 1), 0);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_heartbeat_round_trips_with_and_without_held_jobs(void **state)
{
    (void) state;
    jobq_mp_writer_t w, hw;
    jobq_mp_writer_init(&w, 4096);
    jobq_mp_writer_init(&hw, 4096);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_HEARTBEAT;
    s_round(&m, &w, &d);
    assert_int_equal(w.len, 1);  //  {}
    assert_false(d.has_held);
    //  An empty list is a list: "I hold nothing".
    jobq_msg_write_held(&hw, NULL, NULL, 0);
    m.held = (jobq_bytes_t){hw.data, hw.len};
    m.has_held = true;
    s_round(&m, &w, &d);
    assert_true(d.has_held);
    uint64_t ids[2];
    uint32_t ats[2];
    assert_int_equal(jobq_msg_read_held(&d, ids, ats, 2), 0);
    jobq_mp_writer_reset(&hw);
    uint64_t in_ids[2] = {0x01a222eb783e0001ull, 7};
    uint32_t in_ats[2] = {2, 1};
    jobq_msg_write_held(&hw, in_ids, in_ats, 2);
    m.held = (jobq_bytes_t){hw.data, hw.len};
    s_round(&m, &w, &d);
    assert_int_equal(jobq_msg_read_held(&d, ids, ats, 2), 2);
    assert_true(ids[0] == in_ids[0] && ids[1] == 7);
    assert_true(ats[0] == 2 && ats[1] == 1);
    jobq_mp_writer_fini(&hw);
    jobq_mp_writer_fini(&w);
}

//  PROTOCOL 9.2, 9.11: READY may carry an echo, which the broker's
//  HEARTBEAT sends back; both round-trip, and a message without it says so.
static void
test_msg_ready_and_heartbeat_carry_an_echo(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_READY;
    m.u.ready.types[0] = (jobq_str_t){"noop", 4};
    m.u.ready.ntypes = 1;
    m.echo = UINT64_MAX;
    m.has_echo = true;
    s_round(&m, &w, &d);
    assert_true(d.has_echo);
    assert_true(d.echo == UINT64_MAX);
    assert_int_equal(d.u.ready.capacity, 0);
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_HEARTBEAT;
    m.echo = 7;
    m.has_echo = true;
    s_round(&m, &w, &d);
    assert_true(d.has_echo && d.echo == 7);
    m.has_echo = false;
    s_round(&m, &w, &d);
    assert_false(d.has_echo);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_progress_round_trips(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    static const uint32_t pcts[] = {0, 55, 100};
    for (size_t i = 0; i < 3; i++) {
        jobq_msg_t m, d;
        memset(&m, 0, sizeof m);
        m.cmd = JOBQ_CMD_PROGRESS;
        m.u.progress.id = 0x01a222eb783e0063ull;
        m.u.progress.attempt = 2;
        m.u.progress.progress = pcts[i];
        m.u.progress.message = S(i == 1 ? "page 3" : "");
        s_round(&m, &w, &d);
        assert_true(d.u.progress.id == 0x01a222eb783e0063ull);
        assert_int_equal(d.u.progress.attempt, 2);
        assert_int_equal(d.u.progress.progress, pcts[i]);
        assert_true(s_eq(d.u.progress.message, i == 1 ? "page 3" : ""));
    }
    jobq_mp_writer_fini(&w);
}

//  docs/PROTOCOL.md 9.4: message is optional; absent clears it.
static void
test_msg_progress_without_message_decodes_with_an_empty_one(void **state)
{
    (void) state;
    const s_kv_t *f = S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 0),
                               s_kuint("progress", 100));
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_PROGRESS, f, &w, &m, &why), JOBQ_OK);
    assert_true(m.u.progress.id == 0x0123456789abcdefull);
    assert_int_equal(m.u.progress.attempt, 0);
    assert_int_equal(m.u.progress.progress, 100);
    assert_int_equal(m.u.progress.message.len, 0);
    jobq_mp_writer_fini(&w);
}

//  docs/PROTOCOL.md 8.2: the idempotency key is 1 to 255 bytes, any bytes.
static void
test_msg_enqueue_key_of_any_bytes_round_trips(void **state)
{
    (void) state;
    static const char key[] = {'\0', (char) 0xff, ' ', '/', 'B', (char) 0xc1};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_ENQUEUE;
    m.rid = 1;
    m.u.enqueue.type = S("noop");
    m.u.enqueue.shop = S("s");
    m.u.enqueue.max_attempts = 1;
    m.u.enqueue.key = (jobq_str_t){key, sizeof key};
    s_round(&m, &w, &d);
    assert_int_equal(d.u.enqueue.key.len, sizeof key);
    assert_memory_equal(d.u.enqueue.key.ptr, key, sizeof key);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_complete_round_trips_and_defaults_output(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m, d;
    jobq_msg_why_t why;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_COMPLETE;
    m.u.complete.id = 99;
    m.u.complete.attempt = UINT32_MAX;
    m.u.complete.output = (jobq_bytes_t){s_output, sizeof s_output};
    s_round(&m, &w, &d);
    assert_true(d.u.complete.id == 99);
    assert_int_equal(d.u.complete.attempt, UINT32_MAX);
    assert_true(s_beq(d.u.complete.output, s_output, sizeof s_output));
    //  No output: {}.
    const s_kv_t *f = S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1));
    assert_int_equal(s_decode(JOBQ_CMD_COMPLETE, f, &w, &d, &why), JOBQ_OK);
    assert_true(s_beq(d.u.complete.output, "\x80", 1));
    jobq_mp_writer_fini(&w);
}

static void
test_msg_fail_round_trips_permanent_and_cancelled(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 8192);
    for (int flags = 0; flags < 4; flags++) {
        jobq_msg_t m, d;
        memset(&m, 0, sizeof m);
        m.cmd = JOBQ_CMD_FAIL;
        m.u.fail.id = 0x01a222eb783e0063ull;
        m.u.fail.attempt = 3;
        m.u.fail.error = S("HTTP 503: \"upstream\"\n\ttrace");
        m.u.fail.permanent = (flags & 1) != 0;
        m.u.fail.cancelled = (flags & 2) != 0;
        s_round(&m, &w, &d);
        assert_true(d.u.fail.id == 0x01a222eb783e0063ull);
        assert_int_equal(d.u.fail.attempt, 3);
        assert_true(s_eq(d.u.fail.error, "HTTP 503: \"upstream\"\n\ttrace"));
        assert_int_equal(d.u.fail.permanent, (flags & 1) != 0);
        assert_int_equal(d.u.fail.cancelled, (flags & 2) != 0);
    }
    //  permanent and cancelled default to false.
    const s_kv_t *f = S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                               s_kstr("error", "x"));
    jobq_msg_t d;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_FAIL, f, &w, &d, &why), JOBQ_OK);
    assert_false(d.u.fail.permanent);
    assert_false(d.u.fail.cancelled);
    jobq_mp_writer_fini(&w);
}

//  --- round trips, broker commands ------------------------------------------

static void
test_msg_job_dispatch_round_trips_every_field(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_JOB;
    m.u.dispatch.id = 0x01a222eb783e0099ull;
    m.u.dispatch.attempt = 4;
    m.u.dispatch.type = S("scrape_reviews");
    m.u.dispatch.shop = S("Shop:42");
    m.u.dispatch.input = (jobq_bytes_t){s_input, sizeof s_input};
    m.u.dispatch.timeout_ms = JOBQ_MAX_TIMEOUT_MS;
    s_round(&m, &w, &d);
    assert_true(d.u.dispatch.id == 0x01a222eb783e0099ull);
    assert_int_equal(d.u.dispatch.attempt, 4);
    assert_true(s_eq(d.u.dispatch.type, "scrape_reviews"));
    assert_true(s_eq(d.u.dispatch.shop, "Shop:42"));
    assert_true(s_beq(d.u.dispatch.input, s_input, sizeof s_input));
    assert_true(d.u.dispatch.timeout_ms == JOBQ_MAX_TIMEOUT_MS);
    //  An empty input goes out as {}.
    m.u.dispatch.input = (jobq_bytes_t){NULL, 0};
    m.u.dispatch.timeout_ms = 0;
    s_round(&m, &w, &d);
    assert_true(s_beq(d.u.dispatch.input, "\x80", 1));
    assert_int_equal(d.u.dispatch.timeout_ms, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_cancel_job_round_trips(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_CANCEL_JOB;
    m.u.cancel_job.id = 0xfedcba9876543210ull;
    m.u.cancel_job.attempt = 4;
    s_round(&m, &w, &d);
    assert_true(d.u.cancel_job.id == 0xfedcba9876543210ull);
    assert_int_equal(d.u.cancel_job.attempt, 4);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_ack_round_trips(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m, d;
    for (int taken = 0; taken < 2; taken++) {
        memset(&m, 0, sizeof m);
        m.cmd = JOBQ_CMD_ACK;
        m.u.ack.id = 0x0123456789abcdefull;
        m.u.ack.attempt = UINT32_MAX;
        m.u.ack.taken = taken;
        s_round(&m, &w, &d);
        assert_true(d.u.ack.id == 0x0123456789abcdefull);
        assert_int_equal(d.u.ack.attempt, UINT32_MAX);
        assert_int_equal(d.u.ack.taken, taken);
    }
    //  taken may be left out (false); id and attempt may not.
    jobq_msg_why_t why;
    static const uint8_t no_taken[] = {
        0x82, 0xa2, 'i', 'd', 0xb0, '0', '1', '2', '3', '4',
        '5',  '6',  '7', '8', '9',  'a', 'b', 'c', 'd', 'e',
        'f',  0xa7, 'a', 't', 't',  'e', 'm', 'p', 't', 0x01};
    assert_int_equal(
        jobq_msg_decode(JOBQ_CMD_ACK, no_taken, sizeof no_taken, &d, &why),
        JOBQ_OK);
    assert_false(d.u.ack.taken);
    uint8_t id_only[21];
    memcpy(id_only, no_taken, sizeof id_only);
    id_only[0] = 0x81;  //  {id} alone
    assert_int_equal(
        jobq_msg_decode(JOBQ_CMD_ACK, id_only, sizeof id_only, &d, &why),
        JOBQ_EINVAL);
    assert_non_null(strstr(why.text, "attempt"));
    jobq_mp_writer_fini(&w);
}

static void
test_msg_disconnect_round_trips(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m, d;
    memset(&m, 0, sizeof m);
    m.cmd = JOBQ_CMD_DISCONNECT;
    m.u.disconnect.reason = S("bad_request: field 'id'");
    s_round(&m, &w, &d);
    assert_true(s_eq(d.u.disconnect.reason, "bad_request: field 'id'"));
    jobq_mp_writer_fini(&w);
}

static void
test_msg_error_round_trips_every_code_through_its_wire_name(void **state)
{
    (void) state;
    static const int errs[] = {JOBQ_EINVAL,       JOBQ_ENOTFOUND, JOBQ_ETOOBIG,
                               JOBQ_EUNAVAILABLE, JOBQ_EINTERNAL, JOBQ_ESTATE,
                               JOBQ_ESTOREFULL,   JOBQ_ESTORAGE,  JOBQ_EVERSION,
                               JOBQ_ECOMMAND,     JOBQ_ESTALE};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        jobq_msg_t d;
        jobq_msg_why_t why;
        jobq_mp_writer_reset(&w);
        jobq_msg_write_error(&w, 1000 + i, errs[i], "field 'type': invalid");
        assert_int_equal(
            jobq_msg_decode(JOBQ_CMD_ERROR, w.data, w.len, &d, &why), JOBQ_OK);
        assert_int_equal(d.rid, 1000 + i);
        assert_int_equal(d.u.error.code, errs[i]);
        assert_true(s_eq(d.u.error.message, "field 'type': invalid"));
    }
    //  Without a message the error's own description is sent.
    jobq_msg_t d;
    jobq_msg_why_t why;
    jobq_mp_writer_reset(&w);
    jobq_msg_write_error(&w, 0, JOBQ_ESTOREFULL, NULL);
    assert_int_equal(jobq_msg_decode(JOBQ_CMD_ERROR, w.data, w.len, &d, &why),
                     JOBQ_OK);
    assert_int_equal(d.rid, 0);
    assert_true(s_eq(d.u.error.message, jobq_strerror(JOBQ_ESTOREFULL)));
    //  An unknown code from a newer peer reads as internal.
    const s_kv_t *f =
        S_FIELDS(s_kuint("rid", 3), s_kstr("code", "from_the_future"),
                 s_kstr("message", "?"));
    assert_int_equal(s_decode(JOBQ_CMD_ERROR, f, &w, &d, &why), JOBQ_OK);
    assert_int_equal(d.u.error.code, JOBQ_EINTERNAL);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_reply_begin_writes_rid_first_and_decodes(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_reply_begin(&w, 77, 2);
    jobq_mp_write_cstr(&w, "id");
    jobq_mp_write_cstr(&w, ID_OK);
    jobq_mp_write_cstr(&w, "created");
    jobq_mp_write_bool(&w, true);
    assert_memory_equal(w.data, "\x83\xa3rid\x4d", 6);
    jobq_msg_t d;
    jobq_msg_why_t why;
    assert_int_equal(jobq_msg_decode(JOBQ_CMD_REPLY, w.data, w.len, &d, &why),
                     JOBQ_OK);
    assert_int_equal(d.rid, 77);
    assert_ptr_equal(d.u.reply.body.ptr, w.data);
    assert_int_equal(d.u.reply.body.len, w.len);
    jobq_bytes_t v;
    assert_int_equal(jobq_mp_map_find(d.u.reply.body, "created", &v), JOBQ_OK);
    assert_true(s_beq(v, "\xc3", 1));
    jobq_mp_writer_fini(&w);
}

//  --- what every command shares --------------------------------------------

//  A valid encoded body for each command code (w keeps it).
static void
s_valid_body(int cmd, jobq_mp_writer_t *w)
{
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = cmd;
    m.rid = 42;
    switch (cmd) {
    case JOBQ_CMD_ENQUEUE:
        m.u.enqueue.type = S("noop");
        m.u.enqueue.shop = S("s");
        m.u.enqueue.max_attempts = 1;
        break;
    case JOBQ_CMD_LIST:
        m.u.list.limit = 5;
        m.u.list.status = -1;
        break;
    case JOBQ_CMD_READY:
        m.u.ready.types[0] = S("noop");
        m.u.ready.ntypes = 1;
        m.u.ready.capacity = 1;
        break;
    case JOBQ_CMD_FAIL:
        m.u.fail.error = S("x");
        break;
    case JOBQ_CMD_JOB:
        m.u.dispatch.type = S("noop");
        m.u.dispatch.shop = S("s");
        break;
    default:
        break;
    }
    jobq_mp_writer_reset(w);
    if (cmd == JOBQ_CMD_ERROR)
        jobq_msg_write_error(w, 42, JOBQ_EINVAL, "x");
    else if (cmd == JOBQ_CMD_REPLY)
        jobq_msg_reply_begin(w, 42, 0);
    else
        jobq_msg_encode(&m, w);
    assert_int_equal(jobq_mp_writer_error(w), JOBQ_OK);
}

static void
test_msg_every_command_ignores_unknown_keys(void **state)
{
    (void) state;
    //  "zz_future": {"nested": [1, {}, "x"]}
    static const uint8_t extra[] = {0xa9, 'z', 'z',  '_',  'f',  'u',  't', 'u',
                                    'r',  'e', 0x81, 0xa6, 'n',  'e',  's', 't',
                                    'e',  'd', 0x93, 0x01, 0x80, 0xa1, 'x'};
    jobq_mp_writer_t w, x;
    jobq_mp_writer_init(&w, 4096);
    jobq_mp_writer_init(&x, 4096);
    for (size_t c = 0; c < S_NCMDS; c++) {
        s_valid_body(s_all_cmds[c], &w);
        assert_true(w.data[0] >= 0x80 && w.data[0] < 0x8f);  //  a fixmap
        //  The same map with the unknown key first, then last.
        for (int at_end = 0; at_end < 2; at_end++) {
            jobq_mp_writer_reset(&x);
            jobq_mp_write_map(&x, (uint32_t) (w.data[0] & 0x0f) + 1);
            if (!at_end)
                jobq_mp_write_raw(&x, extra, sizeof extra);
            jobq_mp_write_raw(&x, w.data + 1, w.len - 1);
            if (at_end)
                jobq_mp_write_raw(&x, extra, sizeof extra);
            jobq_msg_t d;
            jobq_msg_why_t why;
            int rc = jobq_msg_decode(s_all_cmds[c], x.data, x.len, &d, &why);
            if (rc != JOBQ_OK)
                fail_msg("%s: rc=%d why=%s", jobq_cmd_name(s_all_cmds[c]), rc,
                         why.text);
        }
    }
    jobq_mp_writer_fini(&x);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_every_command_rejects_a_body_that_is_not_a_map(void **state)
{
    (void) state;
    static const struct {
        const char *b;  //  body
        size_t n;       //  bytes
    } bodies[] = {{"\x91\x01", 2}, {"\x01", 1},         {"\xa3rid", 4},
                  {"\xc0", 1},     {"\xc4\x01\x80", 3}, {"\x90", 1}};
    for (size_t c = 0; c < S_NCMDS; c++) {
        for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
            jobq_msg_t d;
            jobq_msg_why_t why;
            int rc =
                jobq_msg_decode(s_all_cmds[c], (const uint8_t *) bodies[i].b,
                                bodies[i].n, &d, &why);
            if (rc != JOBQ_EINVAL || !strstr(why.text, "map"))
                fail_msg("%s body %zu: rc=%d why=%s",
                         jobq_cmd_name(s_all_cmds[c]), i, rc, why.text);
        }
    }
}

static void
test_msg_every_command_rejects_malformed_and_bomb_bodies(void **state)
{
    (void) state;
    static const struct {
        const char *b;  //  body
        size_t n;       //  bytes
    } bodies[] = {
        {"", 0},
        {"\x81\xdf\xab\xab\xab\xab", 6},
        {"\x81\xa1x\xdf\xab\xab\xab\xab", 8},
        {"\xdd\xff\xff\xff\xff", 5},
        {"\xdf\xff\xff\xff\xff", 5},
        {"\x81\xa1x\xdb\xff\xff\xff\xff", 8},
        {"\x81\xa1x\xc6\xff\xff\xff\xff", 8},
        {"\x81\xa1x\xc9\xff\xff\xff\xff\x01", 9},
        {"\x81\xa1x\xc1", 4},
        {"\x81\xa3rid\x01\x00", 7},  //  trailing byte
        {"\x82\xa3rid\x01", 6},      //  truncated
        {"\x81\x01\x01", 3},         //  int key
    };
    for (size_t c = 0; c < S_NCMDS; c++) {
        for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
            jobq_msg_t d;
            jobq_msg_why_t why;
            uint8_t *b = malloc(bodies[i].n + 1);
            assert_non_null(b);
            memcpy(b, bodies[i].b, bodies[i].n);
            int rc = jobq_msg_decode(s_all_cmds[c], b, bodies[i].n, &d, &why);
            if ((rc != JOBQ_EINVAL && rc != JOBQ_ETOOBIG) ||
                why.text[0] == '\0')
                fail_msg("%s body %zu: rc=%d why=%s",
                         jobq_cmd_name(s_all_cmds[c]), i, rc, why.text);
            free(b);
        }
    }
    //  32 nested array32(0x10000000) headers as a field value.
    uint8_t nest[3 + 160];
    memcpy(nest, "\x81\xa1x", 3);
    for (int i = 0; i < 32; i++)
        memcpy(nest + 3 + 5 * i, "\xdd\x10\x00\x00\x00", 5);
    jobq_msg_t d;
    jobq_msg_why_t why;
    int rc = jobq_msg_decode(JOBQ_CMD_ENQUEUE, nest, sizeof nest, &d, &why);
    assert_true(rc == JOBQ_EINVAL || rc == JOBQ_ETOOBIG);
}

static void
test_msg_decode_rejects_an_unknown_command_code(void **state)
{
    (void) state;
    static const int codes[] = {0x00, 0x08, 0x10, 0x16, 0x20, 0x25,
                                0x40, 0x43, 0x7f, 0xff, -1,   0x101};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    s_valid_body(JOBQ_CMD_STATS, &w);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        jobq_msg_t d;
        jobq_msg_why_t why;
        int rc = jobq_msg_decode(codes[i], w.data, w.len, &d, &why);
        if (rc != JOBQ_ECOMMAND || !strstr(why.text, "command"))
            fail_msg("code 0x%x: rc=%d why=%s", codes[i], rc, why.text);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_msg_decode_reports_the_rid_read_before_a_bad_field(void **state)
{
    (void) state;
    const s_kv_t *enq = S_FIELDS(s_kuint("rid", 4242), s_kuint("type", 5),
                                 s_kstr("shop_id", "s"));
    const s_kv_t *status = S_FIELDS(s_kuint("rid", 77), s_kstr("id", "nope"));
    const s_kv_t *list =
        S_FIELDS(s_kuint("rid", UINT64_MAX), s_kuint("limit", 0));
    const s_kv_t *missing = S_FIELDS(s_kuint("rid", 8));
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t d;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, enq, &w, &d, &why),
                     JOBQ_EINVAL);
    assert_int_equal(d.rid, 4242);
    assert_int_equal(s_decode(JOBQ_CMD_STATUS, status, &w, &d, &why),
                     JOBQ_EINVAL);
    assert_int_equal(d.rid, 77);
    assert_int_equal(s_decode(JOBQ_CMD_LIST, list, &w, &d, &why), JOBQ_EINVAL);
    assert_true(d.rid == UINT64_MAX);
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, missing, &w, &d, &why),
                     JOBQ_EINVAL);
    assert_int_equal(d.rid, 8);
    jobq_mp_writer_fini(&w);
}

//  docs/PROTOCOL.md 8.1: an error carries the request's rid whenever the
//  top-level entries up to rid can be read, whatever and wherever the
//  fault: a body that breaks section 5.1 after rid, a bad field before it,
//  an unknown command. Only a body whose bytes up to rid cannot be read
//  (or whose rid is not a uint) gets 0.
static void
test_msg_decode_finds_the_rid_of_a_body_it_refuses(void **state)
{
    (void) state;
    char deep[64];
    size_t n = s_nested_input(deep, 16);
    static const struct {
        int cmd;           //  decoded as
        const char *b;     //  body
        size_t n;          //  bytes
        int rc;            //  expected
        uint64_t rid;      //  expected
        const char *says;  //  in the reason
    } raw[] = {
        //  {rid: 4242, type: "noop", x: 0xc1}
        {JOBQ_CMD_ENQUEUE, "\x83\xa3rid\xcd\x10\x92\xa4type\xa4noop\xa1x\xc1",
         21, JOBQ_EINVAL, 4242, "body: reserved"},
        //  {rid: 7, ...} declaring three entries, holding one
        {JOBQ_CMD_STATS, "\x83\xa3rid\x07", 6, JOBQ_EINVAL, 7,
         "body: truncated"},
        //  {rid: 7, x: str 32 of 2 MiB, cut short}
        {JOBQ_CMD_STATS, "\x82\xa3rid\x07\xa1x\xdb\x00\x20\x00\x00", 13,
         JOBQ_ETOOBIG, 7, "body: string too long"},
        //  {x: str 32 of 2 MiB, cut short, rid: 7}: rid cannot be reached
        {JOBQ_CMD_STATS, "\x82\xa1x\xdb\x00\x20\x00\x00\xa3rid\x07", 13,
         JOBQ_ETOOBIG, 0, "body: string too long"},
        //  {1: 1, rid: 7}: a key that is not a string comes first
        {JOBQ_CMD_STATS, "\x82\x01\x01\xa3rid\x07", 8, JOBQ_EINVAL, 0,
         "body: map key"},
        //  {x: 0xc1, rid: 7}: the value before rid cannot be read
        {JOBQ_CMD_STATS, "\x82\xa1x\xc1\xa3rid\x07", 9, JOBQ_EINVAL, 0,
         "body: reserved"},
        //  {rid: "7", x: 0xc1}: rid is not a uint
        {JOBQ_CMD_STATS,
         "\x82\xa3rid\xa1"
         "7"
         "\xa1x\xc1",
         10, JOBQ_EINVAL, 0, "body: reserved"},
        //  [rid, 7]: not a map
        {JOBQ_CMD_STATS, "\x92\xa3rid\x07", 6, JOBQ_EINVAL, 0,
         "expected a map"},
        //  {rid: 9} as an unknown command
        {0x7f, "\x81\xa3rid\x09", 6, JOBQ_ECOMMAND, 9, "unknown command"},
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        jobq_msg_t d;
        jobq_msg_why_t why;
        int rc = jobq_msg_decode(raw[i].cmd, (const uint8_t *) raw[i].b,
                                 raw[i].n, &d, &why);
        if (rc != raw[i].rc || d.rid != raw[i].rid ||
            !strstr(why.text, raw[i].says))
            fail_msg("case %zu: rc=%d rid=%llu why=%s", i, rc,
                     (unsigned long long) d.rid, why.text);
    }
    //  Built bodies: a bad field before rid; 17 containers after rid.
    const s_kv_t *late = S_FIELDS(s_kuint("type", 5), s_kuint("rid", 4242),
                                  s_kstr("shop_id", "s"));
    const s_kv_t *deep_input = S_FIELDS(s_kuint("rid", 4242), ENQ_BASE_NO_RID,
                                        s_kraw("input", deep, n));
    const s_kv_t *deep_first = S_FIELDS(s_kraw("input", deep, n),
                                        s_kuint("rid", 4242), ENQ_BASE_NO_RID);
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t d;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, late, &w, &d, &why),
                     JOBQ_EINVAL);
    assert_int_equal(d.rid, 4242);
    assert_non_null(strstr(why.text, "'type'"));
    //  17 containers: the body and 16 nested maps in input.
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, deep_input, &w, &d, &why),
                     JOBQ_ETOOBIG);
    assert_int_equal(d.rid, 4242);
    //  The too-deep input comes first: it is whole, so rid is found.
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, deep_first, &w, &d, &why),
                     JOBQ_ETOOBIG);
    assert_int_equal(d.rid, 4242);
    jobq_mp_writer_fini(&w);
}

//  --- rejections: one fault per body, with the field the reason names ------

//  Decode the fields f as cmd: expect code rc and a reason containing says.
static void
s_bad(const char *name, int cmd, int rc, const char *says, const s_kv_t *f)
{
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4u << 20);
    jobq_msg_t m;
    jobq_msg_why_t why;
    int got = s_decode(cmd, f, &w, &m, &why);
    if (got != rc || !strstr(why.text, says))
        fail_msg("%s: rc=%d (want %d) why=\"%s\" (want \"%s\")", name, got, rc,
                 why.text, says);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_enqueue_batch_checks_every_job(void **state)
{
    (void) state;
    //  [{type: noop, shop_id: s}, {shop_id: s}]
    static const char one_bad[] = "\x92"
                                  "\x82\xa4type\xa4noop\xa7shop_id\xa1s"
                                  "\x81\xa7shop_id\xa1s";
    s_bad("second job lacks type", JOBQ_CMD_ENQUEUE_BATCH, JOBQ_EINVAL,
          "jobs[1]: needs fields: type",
          S_FIELDS(s_kuint("rid", 1),
                   s_kraw("jobs", one_bad, sizeof one_bad - 1)));
    //  [{type: "No!", shop_id: s}]
    static const char bad_type[] = "\x91\x82\xa4type\xa3No!\xa7shop_id\xa1s";
    s_bad("bad type", JOBQ_CMD_ENQUEUE_BATCH, JOBQ_EINVAL,
          "jobs[0]: field 'type'",
          S_FIELDS(s_kuint("rid", 1),
                   s_kraw("jobs", bad_type, sizeof bad_type - 1)));
    s_bad("no jobs", JOBQ_CMD_ENQUEUE_BATCH, JOBQ_EINVAL, "'jobs'",
          S_FIELDS(s_kuint("rid", 1), s_kraw("jobs", "\x90", 1)));
    s_bad("jobs not an array", JOBQ_CMD_ENQUEUE_BATCH, JOBQ_EINVAL, "'jobs'",
          S_FIELDS(s_kuint("rid", 1), s_kraw("jobs", "\x80", 1)));
    s_bad("no jobs field", JOBQ_CMD_ENQUEUE_BATCH, JOBQ_EINVAL, "jobs",
          S_FIELDS(s_kuint("rid", 1)));
    //  1001 jobs (each the one-byte nil): too many, before any is read.
    static char many[3 + JOBQ_MAX_BATCH + 1];
    many[0] = (char) 0xdc;
    many[1] = (char) ((JOBQ_MAX_BATCH + 1) >> 8);
    many[2] = (char) ((JOBQ_MAX_BATCH + 1) & 0xff);
    memset(many + 3, 0xc0, JOBQ_MAX_BATCH + 1);
    s_bad("too many jobs", JOBQ_CMD_ENQUEUE_BATCH, JOBQ_ETOOBIG, "'jobs'",
          S_FIELDS(s_kuint("rid", 1), s_kraw("jobs", many, sizeof many)));

    //  A good batch reads back entry by entry, defaults filled in.
    static const char two[] = "\x92"
                              "\x82\xa4type\xa4noop\xa7shop_id\xa1s"
                              "\x83\xa4type\xa5sleep\xa7shop_id\xa1t"
                              "\xa8priority\x05";
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m, e;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE_BATCH,
                              S_FIELDS(s_kuint("rid", 9),
                                       s_kraw("jobs", two, sizeof two - 1)),
                              &w, &m, &why),
                     JOBQ_OK);
    assert_int_equal(m.u.batch.count, 2);
    jobq_mp_reader_t r;
    jobq_msg_batch_begin(&m, &r);
    assert_int_equal(jobq_msg_batch_next(&r, &m, &e), JOBQ_OK);
    assert_int_equal(e.rid, 9);
    assert_int_equal(e.u.enqueue.max_attempts, JOBQ_DEFAULT_ATTEMPTS);
    assert_int_equal(e.u.enqueue.input.len, 1);
    assert_int_equal(jobq_msg_batch_next(&r, &m, &e), JOBQ_OK);
    assert_int_equal(e.u.enqueue.type.len, 5);
    assert_int_equal(e.u.enqueue.priority, 5);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_enqueue_rejects_missing_required_fields(void **state)
{
    (void) state;
    s_bad("no rid", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "rid",
          S_FIELDS(s_kstr("type", "noop"), s_kstr("shop_id", "s")));
    s_bad("no type", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "type",
          S_FIELDS(s_kuint("rid", 1), s_kstr("shop_id", "s")));
    s_bad("no shop_id", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "shop_id",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", "noop")));
    s_bad("empty body", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "rid",
          S_FIELDS(s_kend()));
}

static void
test_msg_enqueue_rejects_wrong_types(void **state)
{
    (void) state;
    s_bad("type as int", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'type'",
          S_FIELDS(s_kuint("rid", 1), s_kuint("type", 5),
                   s_kstr("shop_id", "s")));
    s_bad("shop_id as int", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'shop_id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", "noop"),
                   s_kuint("shop_id", 5)));
    s_bad("input as array", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'input'",
          S_FIELDS(ENQ_BASE, s_karr0("input")));
    s_bad("input as string", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'input'",
          S_FIELDS(ENQ_BASE, s_kstr("input", "{}")));
    s_bad("input as nil", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'input'",
          S_FIELDS(ENQ_BASE, s_knil("input")));
    s_bad("priority as string", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'priority'",
          S_FIELDS(ENQ_BASE, s_kstr("priority", "high")));
    s_bad(
        "priority as double", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'priority'",
        S_FIELDS(ENQ_BASE, s_kraw("priority", "\xcb\x3f\xf8\0\0\0\0\0\0", 9)));
    s_bad("delay as string", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'delay'",
          S_FIELDS(ENQ_BASE, s_kstr("delay", "10")));
    s_bad("key as int", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'key'",
          S_FIELDS(ENQ_BASE, s_kuint("key", 17)));
    s_bad("rid as string", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'rid'",
          S_FIELDS(s_kstr("rid", "1"), s_kstr("type", "noop"),
                   s_kstr("shop_id", "s")));
    s_bad("rid negative", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'rid'",
          S_FIELDS(s_kint("rid", -1), s_kstr("type", "noop"),
                   s_kstr("shop_id", "s")));
}

static void
test_msg_enqueue_rejects_a_bad_type_or_shop_id(void **state)
{
    (void) state;
    s_bad("type too long", JOBQ_CMD_ENQUEUE, JOBQ_ETOOBIG, "'type'",
          S_FIELDS(s_kuint("rid", 1), s_kstrn("type", 65),
                   s_kstr("shop_id", "s")));
    s_bad("type uppercase", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'type'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", "Noop"),
                   s_kstr("shop_id", "s")));
    s_bad("type with a space", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'type'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", "no op"),
                   s_kstr("shop_id", "s")));
    s_bad("type empty", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'type'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", ""),
                   s_kstr("shop_id", "s")));
    s_bad("type with a slash", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'type'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", "a/b"),
                   s_kstr("shop_id", "s")));
    s_bad("type with a NUL", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'type'",
          S_FIELDS(s_kuint("rid", 1), s_kraw("type", "\xa3n\0p", 4),
                   s_kstr("shop_id", "s")));
    s_bad("shop_id with a space", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'shop_id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", "noop"),
                   s_kstr("shop_id", "a shop")));
    s_bad("shop_id with a slash", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'shop_id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", "noop"),
                   s_kstr("shop_id", "shop/1")));
    s_bad("shop_id empty", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'shop_id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", "noop"),
                   s_kstr("shop_id", "")));
    s_bad("shop_id too long", JOBQ_CMD_ENQUEUE, JOBQ_ETOOBIG, "'shop_id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", "noop"),
                   s_kstrn("shop_id", 129)));
    //  The longest allowed ones pass.
    const s_kv_t *ok =
        S_FIELDS(s_kuint("rid", 1), s_kstrn("type", JOBQ_MAX_TYPE_LEN),
                 s_kstrn("shop_id", JOBQ_MAX_SHOP_LEN),
                 s_kstrn("key", JOBQ_MAX_KEY_LEN));
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_ENQUEUE, ok, &w, &m, &why), JOBQ_OK);
    assert_int_equal(m.u.enqueue.type.len, JOBQ_MAX_TYPE_LEN);
    assert_int_equal(m.u.enqueue.shop.len, JOBQ_MAX_SHOP_LEN);
    assert_int_equal(m.u.enqueue.key.len, JOBQ_MAX_KEY_LEN);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_enqueue_rejects_values_out_of_range(void **state)
{
    (void) state;
    s_bad("priority 1001", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'priority'",
          S_FIELDS(ENQ_BASE, s_kint("priority", 1001)));
    s_bad("priority -1001", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'priority'",
          S_FIELDS(ENQ_BASE, s_kint("priority", -1001)));
    s_bad("priority 2^32", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'priority'",
          S_FIELDS(ENQ_BASE, s_kuint("priority", 1ull << 32)));
    s_bad("delay above a year", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'delay'",
          S_FIELDS(ENQ_BASE, s_kuint("delay", JOBQ_MAX_DELAY_MS + 1)));
    s_bad("delay negative", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'delay'",
          S_FIELDS(ENQ_BASE, s_kint("delay", -1)));
    s_bad("max_attempts 0", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'max_attempts'",
          S_FIELDS(ENQ_BASE, s_kuint("max_attempts", 0)));
    s_bad("max_attempts 101", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'max_attempts'",
          S_FIELDS(ENQ_BASE, s_kuint("max_attempts", JOBQ_MAX_ATTEMPTS + 1)));
    s_bad("max_attempts 2^32 + 1", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL,
          "'max_attempts'",
          S_FIELDS(ENQ_BASE, s_kuint("max_attempts", (1ull << 32) + 1)));
    s_bad("timeout above a week", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'timeout'",
          S_FIELDS(ENQ_BASE, s_kuint("timeout", JOBQ_MAX_TIMEOUT_MS + 1)));
    s_bad("key empty", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'key'",
          S_FIELDS(ENQ_BASE, s_kstr("key", "")));
    s_bad("key too long", JOBQ_CMD_ENQUEUE, JOBQ_ETOOBIG, "'key'",
          S_FIELDS(ENQ_BASE, s_kstrn("key", JOBQ_MAX_KEY_LEN + 1)));
    s_bad("input above the limit", JOBQ_CMD_ENQUEUE, JOBQ_ETOOBIG, "'input'",
          S_FIELDS(ENQ_BASE, s_kbigmap("input", JOBQ_MAX_INPUT_BYTES + 1)));
}

static void
test_msg_enqueue_rejects_a_key_given_twice(void **state)
{
    (void) state;
    s_bad("type twice", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'type' given twice",
          S_FIELDS(ENQ_BASE, s_kstr("type", "noop")));
    s_bad("rid twice", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'rid' given twice",
          S_FIELDS(ENQ_BASE, s_kuint("rid", 1)));
    s_bad("shop_id twice with another value", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL,
          "'shop_id' given twice", S_FIELDS(ENQ_BASE, s_kstr("shop_id", "t")));
    s_bad("input twice", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'input' given twice",
          S_FIELDS(ENQ_BASE, s_kmap0("input"), s_kmap0("input")));
    s_bad("key twice", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'key' given twice",
          S_FIELDS(ENQ_BASE, s_kstr("key", "a"), s_kstr("key", "a")));
    s_bad("priority twice", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL,
          "'priority' given twice",
          S_FIELDS(ENQ_BASE, s_kint("priority", 1), s_kint("priority", 2)));
    s_bad(
        "id twice", JOBQ_CMD_STATUS, JOBQ_EINVAL, "'id' given twice",
        S_FIELDS(s_kuint("rid", 1), s_kstr("id", ID_OK), s_kstr("id", ID_OK)));
    s_bad("attempt twice", JOBQ_CMD_COMPLETE, JOBQ_EINVAL,
          "'attempt' given twice",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kuint("attempt", 2)));
    s_bad("capacity twice", JOBQ_CMD_READY, JOBQ_EINVAL,
          "'capacity' given twice",
          S_FIELDS(s_ktypes("types", 1), s_kuint("capacity", 1),
                   s_kuint("capacity", 1)));
}

static void
test_msg_job_reference_rejects_a_bad_or_missing_id(void **state)
{
    (void) state;
    s_bad("no id", JOBQ_CMD_STATUS, JOBQ_EINVAL, "id",
          S_FIELDS(s_kuint("rid", 1)));
    s_bad("no rid", JOBQ_CMD_STATUS, JOBQ_EINVAL, "rid",
          S_FIELDS(s_kstr("id", ID_OK)));
    s_bad("15 hex digits", JOBQ_CMD_STATUS, JOBQ_EINVAL, "'id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("id", "0123456789abcde")));
    s_bad("17 hex digits", JOBQ_CMD_STATUS, JOBQ_EINVAL, "'id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("id", "0123456789abcdef0")));
    s_bad("uppercase hex", JOBQ_CMD_CANCEL, JOBQ_EINVAL, "'id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("id", "0123456789ABCDEF")));
    s_bad("non-hex", JOBQ_CMD_RETRY, JOBQ_EINVAL, "'id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("id", "0123456789abcdeg")));
    s_bad("spaces", JOBQ_CMD_STATUS, JOBQ_EINVAL, "'id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("id", " 123456789abcdef")));
    s_bad("empty", JOBQ_CMD_STATUS, JOBQ_EINVAL, "'id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("id", "")));
    s_bad("id as an integer", JOBQ_CMD_STATUS, JOBQ_EINVAL, "'id'",
          S_FIELDS(s_kuint("rid", 1), s_kuint("id", 12345)));
    s_bad("no id on CANCEL", JOBQ_CMD_CANCEL, JOBQ_EINVAL, "id",
          S_FIELDS(s_kuint("rid", 1)));
    s_bad("no id on RETRY", JOBQ_CMD_RETRY, JOBQ_EINVAL, "id",
          S_FIELDS(s_kuint("rid", 1)));
}

static void
test_msg_list_and_stats_reject_bad_fields(void **state)
{
    (void) state;
    s_bad("limit 0", JOBQ_CMD_LIST, JOBQ_EINVAL, "'limit'",
          S_FIELDS(s_kuint("rid", 1), s_kuint("limit", 0)));
    s_bad("limit above the page", JOBQ_CMD_LIST, JOBQ_EINVAL, "'limit'",
          S_FIELDS(s_kuint("rid", 1), s_kuint("limit", JOBQ_MAX_LIST + 1)));
    s_bad("limit negative", JOBQ_CMD_LIST, JOBQ_EINVAL, "'limit'",
          S_FIELDS(s_kuint("rid", 1), s_kint("limit", -5)));
    s_bad("unknown status", JOBQ_CMD_LIST, JOBQ_EINVAL, "'status'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("status", "done")));
    s_bad("status in capitals", JOBQ_CMD_LIST, JOBQ_EINVAL, "'status'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("status", "PENDING")));
    s_bad("status as its number", JOBQ_CMD_LIST, JOBQ_EINVAL, "'status'",
          S_FIELDS(s_kuint("rid", 1), s_kuint("status", 1)));
    s_bad("status longer than 16 bytes", JOBQ_CMD_LIST, JOBQ_ETOOBIG,
          "'status'", S_FIELDS(s_kuint("rid", 1), s_kstrn("status", 17)));
    s_bad("bad cursor", JOBQ_CMD_LIST, JOBQ_EINVAL, "'cursor'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("cursor", "next")));
    s_bad("bad shop filter", JOBQ_CMD_LIST, JOBQ_EINVAL, "'shop_id'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("shop_id", "a/b")));
    s_bad("bad type filter", JOBQ_CMD_LIST, JOBQ_EINVAL, "'type'",
          S_FIELDS(s_kuint("rid", 1), s_kstr("type", "A")));
    s_bad("LIST without rid", JOBQ_CMD_LIST, JOBQ_EINVAL, "rid",
          S_FIELDS(s_kend()));
    s_bad("STATS without rid", JOBQ_CMD_STATS, JOBQ_EINVAL, "rid",
          S_FIELDS(s_kend()));
    const s_kv_t *ok =
        S_FIELDS(s_kuint("rid", 1), s_kuint("limit", JOBQ_MAX_LIST),
                 s_kstr("status", "cancelled"));
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m;
    jobq_msg_why_t why;
    assert_int_equal(s_decode(JOBQ_CMD_LIST, ok, &w, &m, &why), JOBQ_OK);
    assert_int_equal(m.u.list.status, JOBQ_CANCELLED);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_ready_and_heartbeat_reject_bad_fields(void **state)
{
    (void) state;
    s_bad("no types", JOBQ_CMD_READY, JOBQ_EINVAL, "'types'",
          S_FIELDS(s_karr0("types"), s_kuint("capacity", 1)));
    s_bad("too many types", JOBQ_CMD_READY, JOBQ_EINVAL, "'types'",
          S_FIELDS(s_ktypes("types", JOBQ_MAX_WORKER_TYPES + 1),
                   s_kuint("capacity", 1)));
    s_bad("types not an array", JOBQ_CMD_READY, JOBQ_EINVAL, "'types'",
          S_FIELDS(s_kstr("types", "noop"), s_kuint("capacity", 1)));
    s_bad(
        "an invalid type name", JOBQ_CMD_READY, JOBQ_EINVAL, "'types'",
        S_FIELDS(s_kraw("types", "\x92\xa1x\xa1X", 5), s_kuint("capacity", 1)));
    s_bad("a type that is not a string", JOBQ_CMD_READY, JOBQ_EINVAL, "'types'",
          S_FIELDS(s_kraw("types", "\x91\x01", 2), s_kuint("capacity", 1)));
    s_bad("a type longer than 64 bytes", JOBQ_CMD_READY, JOBQ_ETOOBIG,
          "'types'",
          S_FIELDS(s_kraw("types",
                          "\x92\xa4noop\xd9\x41"
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                          "aaaaaaaaaaaaaaa",
                          2 + 4 + 2 + 65),
                   s_kuint("capacity", 1)));
    s_bad("capacity above the limit", JOBQ_CMD_READY, JOBQ_EINVAL, "'capacity'",
          S_FIELDS(s_ktypes("types", 1),
                   s_kuint("capacity", JOBQ_MAX_CAPACITY + 1)));
    s_bad("no capacity", JOBQ_CMD_READY, JOBQ_EINVAL, "capacity",
          S_FIELDS(s_ktypes("types", 1)));
    s_bad("no types field", JOBQ_CMD_READY, JOBQ_EINVAL, "types",
          S_FIELDS(s_kuint("capacity", 1)));
    s_bad("name too long", JOBQ_CMD_READY, JOBQ_ETOOBIG, "'name'",
          S_FIELDS(s_ktypes("types", 1), s_kuint("capacity", 1),
                   s_kstrn("name", JOBQ_WORKER_NAME_MAX + 1)));
    s_bad("held entry without attempt", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL,
          "'jobs'", S_FIELDS(s_kraw("jobs", "\x91\x81\xa2id\xb0" ID_OK, 22)));
    s_bad("held entry without id", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL, "'jobs'",
          S_FIELDS(s_kraw("jobs", "\x91\x81\xa7\x61ttempt\x01", 11)));
    s_bad(
        "held entry with a bad id", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL, "jobs.id",
        S_FIELDS(s_kraw("jobs", "\x91\x82\xa2id\xa1x\xa7\x61ttempt\x01", 16)));
    s_bad("held entry not a map", JOBQ_CMD_READY, JOBQ_EINVAL, "'jobs'",
          S_FIELDS(s_ktypes("types", 1), s_kuint("capacity", 1),
                   s_kraw("jobs", "\x91\x01", 2)));
    s_bad("held jobs not an array", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL, "'jobs'",
          S_FIELDS(s_kmap0("jobs")));
    s_bad("more held jobs than any capacity", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL,
          "'jobs'", S_FIELDS(s_kheld("jobs", JOBQ_MAX_CAPACITY + 1)));
    s_bad("a negative echo", JOBQ_CMD_READY, JOBQ_EINVAL, "'echo'",
          S_FIELDS(s_ktypes("types", 1), s_kuint("capacity", 0),
                   s_kint("echo", -1)));
    s_bad("an echo that is not a number", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL,
          "'echo'", S_FIELDS(s_kstr("echo", "7")));
    s_bad("echo twice", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL, "'echo'",
          S_FIELDS(s_kuint("echo", 1), s_kuint("echo", 2)));
}

static void
test_msg_worker_results_reject_bad_fields(void **state)
{
    (void) state;
    s_bad("progress 101", JOBQ_CMD_PROGRESS, JOBQ_EINVAL, "'progress'",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kuint("progress", 101)));
    s_bad("progress negative", JOBQ_CMD_PROGRESS, JOBQ_EINVAL, "'progress'",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kint("progress", -1)));
    s_bad("no progress", JOBQ_CMD_PROGRESS, JOBQ_EINVAL, "progress",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1)));
    s_bad("message too long", JOBQ_CMD_PROGRESS, JOBQ_ETOOBIG, "'message'",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kuint("progress", 1),
                   s_kstrn("message", JOBQ_MAX_MESSAGE_LEN + 1)));
    s_bad("attempt negative", JOBQ_CMD_PROGRESS, JOBQ_EINVAL, "'attempt'",
          S_FIELDS(s_kstr("id", ID_OK), s_kint("attempt", -1),
                   s_kuint("progress", 1)));
    s_bad("attempt above 32 bits", JOBQ_CMD_COMPLETE, JOBQ_EINVAL, "'attempt'",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1ull << 32)));
    s_bad("no attempt", JOBQ_CMD_COMPLETE, JOBQ_EINVAL, "attempt",
          S_FIELDS(s_kstr("id", ID_OK)));
    s_bad("bad id", JOBQ_CMD_COMPLETE, JOBQ_EINVAL, "'id'",
          S_FIELDS(s_kstr("id", "0123"), s_kuint("attempt", 1)));
    s_bad("output as array", JOBQ_CMD_COMPLETE, JOBQ_EINVAL, "'output'",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_karr0("output")));
    s_bad("output above the limit", JOBQ_CMD_COMPLETE, JOBQ_ETOOBIG, "'output'",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kbigmap("output", JOBQ_MAX_OUTPUT_BYTES + 1)));
    s_bad("no error", JOBQ_CMD_FAIL, JOBQ_EINVAL, "error",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1)));
    s_bad("error too long", JOBQ_CMD_FAIL, JOBQ_ETOOBIG, "'error'",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kstrn("error", JOBQ_MAX_ERROR_LEN + 1)));
    s_bad("permanent as a string", JOBQ_CMD_FAIL, JOBQ_EINVAL, "'permanent'",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kstr("error", "x"), s_kstr("permanent", "yes")));
    s_bad("cancelled as an integer", JOBQ_CMD_FAIL, JOBQ_EINVAL, "'cancelled'",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kstr("error", "x"), s_kuint("cancelled", 1)));
}

static void
test_msg_broker_messages_reject_bad_fields(void **state)
{
    (void) state;
    s_bad("JOB without input", JOBQ_CMD_JOB, JOBQ_EINVAL, "input",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kstr("type", "noop"), s_kstr("shop_id", "s")));
    s_bad("JOB without type", JOBQ_CMD_JOB, JOBQ_EINVAL, "type",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kstr("shop_id", "s"), s_kmap0("input")));
    s_bad("JOB with input as array", JOBQ_CMD_JOB, JOBQ_EINVAL, "'input'",
          S_FIELDS(s_kstr("id", ID_OK), s_kuint("attempt", 1),
                   s_kstr("type", "noop"), s_kstr("shop_id", "s"),
                   s_karr0("input")));
    s_bad("CANCEL_JOB without attempt", JOBQ_CMD_CANCEL_JOB, JOBQ_EINVAL,
          "attempt", S_FIELDS(s_kstr("id", ID_OK)));
    s_bad("DISCONNECT with a reason that is not a string", JOBQ_CMD_DISCONNECT,
          JOBQ_EINVAL, "'reason'", S_FIELDS(s_kuint("reason", 1)));
    s_bad("ERROR with a code that is not a string", JOBQ_CMD_ERROR, JOBQ_EINVAL,
          "'code'",
          S_FIELDS(s_kuint("rid", 1), s_kuint("code", 2),
                   s_kstr("message", "x")));
    s_bad("ERROR without message", JOBQ_CMD_ERROR, JOBQ_EINVAL, "message",
          S_FIELDS(s_kuint("rid", 1), s_kstr("code", "bad_request")));
    s_bad("REPLY without rid", JOBQ_CMD_REPLY, JOBQ_EINVAL, "rid",
          S_FIELDS(s_kmap0("x")));
}

#define PROG_BASE s_kstr("id", ID_OK), s_kuint("attempt", 1)
//  A raw field whose bytes are a string literal.
#define S_RAW(k, lit) s_kraw(k, lit, sizeof(lit) - 1)

//  docs/PROTOCOL.md 5.2: "A nil value is not accepted in place of an
//  omitted optional field, except where a field's type says 'or nil'".
static void
test_msg_nil_is_refused_in_place_of_every_optional_field(void **state)
{
    (void) state;
    static const struct {
        int cmd;            //  command
        const char *field;  //  the optional field sent as nil
    } opts[] = {
        {JOBQ_CMD_ENQUEUE, "input"},   {JOBQ_CMD_ENQUEUE, "priority"},
        {JOBQ_CMD_ENQUEUE, "delay"},   {JOBQ_CMD_ENQUEUE, "max_attempts"},
        {JOBQ_CMD_ENQUEUE, "timeout"}, {JOBQ_CMD_ENQUEUE, "key"},
        {JOBQ_CMD_LIST, "shop_id"},    {JOBQ_CMD_LIST, "type"},
        {JOBQ_CMD_LIST, "status"},     {JOBQ_CMD_LIST, "limit"},
        {JOBQ_CMD_READY, "name"},      {JOBQ_CMD_READY, "jobs"},
        {JOBQ_CMD_HEARTBEAT, "jobs"},  {JOBQ_CMD_PROGRESS, "message"},
        {JOBQ_CMD_COMPLETE, "output"}, {JOBQ_CMD_FAIL, "permanent"},
        {JOBQ_CMD_FAIL, "cancelled"},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        char says[40];
        snprintf(says, sizeof says, "'%s'", opts[i].field);
        //  The fields live as long as the block they are written in, so
        //  each case decodes its own.
        const char *k = opts[i].field;
        int cmd = opts[i].cmd;
        switch (cmd) {
        case JOBQ_CMD_ENQUEUE:
            s_bad(k, cmd, JOBQ_EINVAL, says, S_FIELDS(ENQ_BASE, s_knil(k)));
            break;
        case JOBQ_CMD_LIST:
            s_bad(k, cmd, JOBQ_EINVAL, says,
                  S_FIELDS(s_kuint("rid", 1), s_knil(k)));
            break;
        case JOBQ_CMD_READY:
            s_bad(k, cmd, JOBQ_EINVAL, says,
                  S_FIELDS(s_ktypes("types", 1), s_kuint("capacity", 1),
                           s_knil(k)));
            break;
        case JOBQ_CMD_HEARTBEAT:
            s_bad(k, cmd, JOBQ_EINVAL, says, S_FIELDS(s_knil(k)));
            break;
        case JOBQ_CMD_PROGRESS:
            s_bad(k, cmd, JOBQ_EINVAL, says,
                  S_FIELDS(PROG_BASE, s_kuint("progress", 1), s_knil(k)));
            break;
        case JOBQ_CMD_COMPLETE:
            s_bad(k, cmd, JOBQ_EINVAL, says, S_FIELDS(PROG_BASE, s_knil(k)));
            break;
        default:
            s_bad(k, cmd, JOBQ_EINVAL, says,
                  S_FIELDS(PROG_BASE, s_kstr("error", "x"), s_knil(k)));
            break;
        }
    }
}

//  docs/PROTOCOL.md 5.2: "Floats are not integers", not even 1.0.
static void
test_msg_a_float_is_refused_for_every_integer_field(void **state)
{
    (void) state;
    static const char f64[] = "\xcb\x3f\xf0\0\0\0\0\0\0";  //  1.0
    static const char f32[] = "\xca\x3f\x80\0\0";          //  1.0
    s_bad("rid", JOBQ_CMD_STATS, JOBQ_EINVAL, "'rid'",
          S_FIELDS(s_kraw("rid", f64, 9)));
    s_bad("priority", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'priority'",
          S_FIELDS(ENQ_BASE, s_kraw("priority", f32, 5)));
    s_bad("delay", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'delay'",
          S_FIELDS(ENQ_BASE, s_kraw("delay", f64, 9)));
    s_bad("max_attempts", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'max_attempts'",
          S_FIELDS(ENQ_BASE, s_kraw("max_attempts", f32, 5)));
    s_bad("timeout", JOBQ_CMD_ENQUEUE, JOBQ_EINVAL, "'timeout'",
          S_FIELDS(ENQ_BASE, s_kraw("timeout", f64, 9)));
    s_bad("limit", JOBQ_CMD_LIST, JOBQ_EINVAL, "'limit'",
          S_FIELDS(s_kuint("rid", 1), s_kraw("limit", f64, 9)));
    s_bad("capacity", JOBQ_CMD_READY, JOBQ_EINVAL, "'capacity'",
          S_FIELDS(s_ktypes("types", 1), s_kraw("capacity", f64, 9)));
    s_bad("attempt", JOBQ_CMD_CANCEL_JOB, JOBQ_EINVAL, "'attempt'",
          S_FIELDS(s_kstr("id", ID_OK), s_kraw("attempt", f32, 5)));
    s_bad("progress", JOBQ_CMD_PROGRESS, JOBQ_EINVAL, "'progress'",
          S_FIELDS(PROG_BASE, s_kraw("progress", f64, 9)));
    s_bad("permanent as 1", JOBQ_CMD_FAIL, JOBQ_EINVAL, "'permanent'",
          S_FIELDS(PROG_BASE, s_kstr("error", "x"), s_kuint("permanent", 1)));
}

//  docs/PROTOCOL.md 9.3: each entry is {id, attempt}, each key exactly once;
//  unknown keys inside it are ignored (5.2), and attempt is 0 .. 2^32-1.
static void
test_msg_held_entries_ignore_unknown_keys_and_refuse_repeated_ones(void **state)
{
    (void) state;
    //  [{"attempt": 0, "zz": [1, {}], "id": ID_OK}]
    static const char extra[] = "\x91\x83\xa7"
                                "attempt\x00\xa2zz\x92\x01\x80\xa2id\xb0" ID_OK;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_t m;
    jobq_msg_why_t why;
    const s_kv_t *ok = S_FIELDS(S_RAW("jobs", extra));
    assert_int_equal(s_decode(JOBQ_CMD_HEARTBEAT, ok, &w, &m, &why), JOBQ_OK);
    assert_true(m.has_held);
    uint64_t id = 0;
    uint32_t at = 7;
    assert_int_equal(jobq_msg_read_held(&m, &id, &at, 1), 1);
    assert_true(id == 0x0123456789abcdefull);
    assert_int_equal(at, 0);
    //  The largest attempt is accepted.
    const s_kv_t *max =
        S_FIELDS(S_RAW("jobs", "\x91\x82\xa2id\xb0" ID_OK
                               "\xa7\x61ttempt\xce\xff\xff\xff\xff"));
    assert_int_equal(s_decode(JOBQ_CMD_HEARTBEAT, max, &w, &m, &why), JOBQ_OK);
    assert_int_equal(jobq_msg_read_held(&m, &id, &at, 1), 1);
    assert_int_equal(at, UINT32_MAX);
    jobq_mp_writer_fini(&w);
    s_bad("id twice in an entry", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL, "'jobs'",
          S_FIELDS(S_RAW("jobs", "\x91\x83\xa2id\xb0" ID_OK "\xa7\x61ttempt\x01"
                                 "\xa2id\xb0" ID_OK)));
    s_bad("attempt twice in an entry", JOBQ_CMD_READY, JOBQ_EINVAL, "'jobs'",
          S_FIELDS(s_ktypes("types", 1), s_kuint("capacity", 1),
                   S_RAW("jobs", "\x91\x83\xa7\x61ttempt\x01\xa2id\xb0" ID_OK
                                 "\xa7\x61ttempt\x02")));
    s_bad("attempt above 2^32-1", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL,
          "jobs.attempt",
          S_FIELDS(S_RAW("jobs", "\x91\x82\xa2id\xb0" ID_OK
                                 "\xa7\x61ttempt\xcf\0\0\0\x01\0\0\0\0")));
    s_bad("attempt negative", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL, "jobs.attempt",
          S_FIELDS(
              S_RAW("jobs", "\x91\x82\xa2id\xb0" ID_OK "\xa7\x61ttempt\xff")));
    s_bad("id as an integer", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL, "jobs.id",
          S_FIELDS(S_RAW("jobs", "\x91\x82\xa2id\x05\xa7\x61ttempt\x01")));
    s_bad("a non-string key in an entry", JOBQ_CMD_HEARTBEAT, JOBQ_EINVAL,
          "body",
          S_FIELDS(S_RAW("jobs", "\x91\x83\xa2id\xb0" ID_OK "\xa7\x61ttempt\x01"
                                 "\x01\x01")));
}

//  --- the job map
//  -------------------------------------------------------------

static const uint8_t s_errors[] = {0x91, 0x82, 0xa7, 'a',  't', 't', 'e', 'm',
                                   'p',  't',  0x01, 0xa5, 'e', 'r', 'r', 'o',
                                   'r',  0xa4, 'b',  'o',  'o', 'm'};

static jobq_jobdata_t
s_full_job(void)
{
    jobq_jobdata_t j;
    memset(&j, 0, sizeof j);
    j.id = 0x01a222eb783e0001ull;
    j.type = S("sleep");
    j.shop = S("Demo:1");
    j.message = S("half way");
    j.error = S("boom");
    j.key = S("k1");
    j.worker = S("w-1");
    j.input = (jobq_bytes_t){s_input, sizeof s_input};
    j.output = (jobq_bytes_t){s_output, sizeof s_output};
    j.errors = (jobq_bytes_t){s_errors, sizeof s_errors};
    j.status = JOBQ_FAILED;
    j.progress = 40;
    j.attempts = 3;
    j.max_attempts = 5;
    j.version = 9;
    j.priority = -7;
    j.run_at = 1795881600000ull;
    j.timeout_ms = 5000;
    j.created_at = 1795881600001ull;
    j.updated_at = 1795881600002ull;
    j.started_at = 1795881600003ull;
    j.completed_at = 1795881600004ull;
    j.lease_until = 1795881600005ull;
    j.seq = UINT64_MAX;
    return j;
}

//  Every field but the payloads (and queue, which is never on the wire).
static void
s_assert_same_job(const jobq_jobdata_t *d, const jobq_jobdata_t *j)
{
    assert_true(d->id == j->id);
    assert_true(d->type.len == j->type.len &&
                memcmp(d->type.ptr, j->type.ptr, j->type.len) == 0);
    assert_true(d->shop.len == j->shop.len &&
                memcmp(d->shop.ptr, j->shop.ptr, j->shop.len) == 0);
    assert_int_equal(d->message.len, j->message.len);
    assert_int_equal(d->error.len, j->error.len);
    assert_int_equal(d->key.len, j->key.len);
    assert_int_equal(d->worker.len, j->worker.len);
    if (j->message.len)
        assert_memory_equal(d->message.ptr, j->message.ptr, j->message.len);
    if (j->error.len)
        assert_memory_equal(d->error.ptr, j->error.ptr, j->error.len);
    if (j->key.len)
        assert_memory_equal(d->key.ptr, j->key.ptr, j->key.len);
    if (j->worker.len)
        assert_memory_equal(d->worker.ptr, j->worker.ptr, j->worker.len);
    assert_int_equal(d->status, j->status);
    assert_int_equal(d->progress, j->progress);
    assert_int_equal(d->attempts, j->attempts);
    assert_int_equal(d->max_attempts, j->max_attempts);
    assert_int_equal(d->version, j->version);
    assert_int_equal(d->priority, j->priority);
    assert_true(d->run_at == j->run_at);
    assert_true(d->timeout_ms == j->timeout_ms);
    assert_true(d->created_at == j->created_at);
    assert_true(d->updated_at == j->updated_at);
    assert_true(d->started_at == j->started_at);
    assert_true(d->completed_at == j->completed_at);
    assert_true(d->lease_until == j->lease_until);
    assert_true(d->seq == j->seq);
}

static void
test_msg_job_map_round_trips_every_field_with_payloads(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full_job(), d;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 16);
    jobq_msg_write_job(&w, &j, JOBQ_JOBMAP_INPUT | JOBQ_JOBMAP_OUTPUT);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    assert_int_equal(jobq_mp_check(w.data, w.len, &jobq_proto_limits, NULL),
                     JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, w.data, w.len);
    assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_OK);
    assert_ptr_equal(r.p, r.end);
    s_assert_same_job(&d, &j);
    assert_true(s_beq(d.input, s_input, sizeof s_input));
    assert_true(s_beq(d.output, s_output, sizeof s_output));
    assert_true(s_beq(d.errors, s_errors, sizeof s_errors));
    jobq_mp_writer_fini(&w);
}

static void
test_msg_job_map_without_flags_leaves_payloads_out(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full_job(), d;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 16);
    jobq_msg_write_job(&w, &j, 0);
    jobq_bytes_t map = {w.data, w.len}, v;
    assert_int_equal(jobq_mp_map_find(map, "input", &v), JOBQ_ENOTFOUND);
    assert_int_equal(jobq_mp_map_find(map, "output", &v), JOBQ_ENOTFOUND);
    assert_int_equal(jobq_mp_map_find(map, "errors", &v), JOBQ_ENOTFOUND);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, w.data, w.len);
    assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_OK);
    s_assert_same_job(&d, &j);
    assert_int_equal(d.input.len, 0);
    assert_int_equal(d.output.len, 0);
    assert_int_equal(d.errors.len, 0);
    //  Input only.
    jobq_mp_writer_reset(&w);
    jobq_msg_write_job(&w, &j, JOBQ_JOBMAP_INPUT);
    jobq_mp_reader_init(&r, w.data, w.len);
    assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_OK);
    assert_true(s_beq(d.input, s_input, sizeof s_input));
    assert_int_equal(d.output.len, 0);
    assert_int_equal(d.errors.len, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_job_map_writes_empty_optionals_as_nil_and_reads_them_back(void **state)
{
    (void) state;
    jobq_jobdata_t j, d;
    memset(&j, 0, sizeof j);
    j.id = 5;
    j.type = S("noop");
    j.shop = S("s");
    j.status = JOBQ_PENDING;
    j.max_attempts = 3;
    j.version = 1;
    j.created_at = 1000;
    j.updated_at = 1000;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_msg_write_job(&w, &j, JOBQ_JOBMAP_INPUT | JOBQ_JOBMAP_OUTPUT);
    jobq_bytes_t map = {w.data, w.len}, v;
    static const char *const nils[] = {"message",     "error",        "key",
                                       "worker",      "started_at",   "run_at",
                                       "lease_until", "completed_at", "output"};
    for (size_t i = 0; i < sizeof nils / sizeof nils[0]; i++) {
        assert_int_equal(jobq_mp_map_find(map, nils[i], &v), JOBQ_OK);
        if (!s_beq(v, "\xc0", 1))
            fail_msg("'%s' is not nil", nils[i]);
    }
    assert_int_equal(jobq_mp_map_find(map, "input", &v), JOBQ_OK);
    assert_true(s_beq(v, "\x80", 1));  //  {}
    assert_int_equal(jobq_mp_map_find(map, "errors", &v), JOBQ_OK);
    assert_true(s_beq(v, "\x90", 1));  //  []
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, w.data, w.len);
    assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_OK);
    s_assert_same_job(&d, &j);
    assert_int_equal(d.output.len, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_msg_job_map_keys_follow_the_documented_order(void **state)
{
    (void) state;
    //  docs/PROTOCOL.md section 6.
    static const char *const order[] = {
        "id",         "type",         "status",   "shop_id",      "progress",
        "message",    "error",        "attempts", "max_attempts", "priority",
        "run_at",     "timeout",      "key",      "created_at",   "updated_at",
        "started_at", "completed_at", "worker",   "lease_until",  "version",
        "seq",        "input",        "output",   "errors"};
    jobq_jobdata_t j = s_full_job();
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 16);
    jobq_msg_write_job(&w, &j, JOBQ_JOBMAP_INPUT | JOBQ_JOBMAP_OUTPUT);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, w.data, w.len);
    uint32_t n;
    assert_int_equal(jobq_mp_read_map(&r, &n), JOBQ_OK);
    assert_int_equal(n, sizeof order / sizeof order[0]);
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t k;
        assert_int_equal(jobq_mp_read_str(&r, &k), JOBQ_OK);
        if (!s_eq(k, order[i]))
            fail_msg("key %u is '%.*s', expected '%s'", i, (int) k.len, k.ptr,
                     order[i]);
        assert_int_equal(jobq_mp_skip(&r, NULL), JOBQ_OK);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_msg_job_map_carries_every_status_by_name(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 16);
    for (int st = 0; st < JOBQ_STATUS_COUNT_; st++) {
        jobq_jobdata_t j = s_full_job(), d;
        j.status = st;
        jobq_mp_writer_reset(&w);
        jobq_msg_write_job(&w, &j, 0);
        jobq_bytes_t map = {w.data, w.len}, v;
        assert_int_equal(jobq_mp_map_find(map, "status", &v), JOBQ_OK);
        jobq_mp_reader_t r;
        jobq_str_t s;
        jobq_mp_reader_init(&r, v.ptr, v.len);
        assert_int_equal(jobq_mp_read_str(&r, &s), JOBQ_OK);
        assert_true(s_eq(s, jobq_status_name(st)));
        jobq_mp_reader_init(&r, w.data, w.len);
        assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_OK);
        assert_int_equal(d.status, st);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_msg_read_job_ignores_unknown_keys_and_refuses_non_maps(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_mp_write_map(&w, 3);
    jobq_mp_write_cstr(&w, "from_the_future");
    jobq_mp_write_array(&w, 2);
    jobq_mp_write_uint(&w, 1);
    jobq_mp_write_map(&w, 0);
    jobq_mp_write_cstr(&w, "id");
    jobq_mp_write_cstr(&w, ID_OK);
    jobq_mp_write_cstr(&w, "priority");
    jobq_mp_write_int(&w, -1000);
    jobq_mp_reader_t r;
    jobq_jobdata_t d;
    jobq_mp_reader_init(&r, w.data, w.len);
    assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_OK);
    assert_true(d.id == 0x0123456789abcdefull);
    assert_int_equal(d.priority, -1000);
    assert_int_equal(d.type.len, 0);
    static const uint8_t arr[] = {0x90};
    static const uint8_t bad_id[] = {0x81, 0xa2, 'i', 'd', 0xa1, 'x'};
    static const uint8_t bad_num[] = {0x81, 0xa3, 's', 'e', 'q', 0xa1, 'x'};
    jobq_mp_reader_init(&r, arr, sizeof arr);
    assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_EPROTO);
    jobq_mp_reader_init(&r, bad_id, sizeof bad_id);
    assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_EPROTO);
    jobq_mp_reader_init(&r, bad_num, sizeof bad_num);
    assert_int_equal(jobq_msg_read_job(&r, &d), JOBQ_EPROTO);
    jobq_mp_writer_fini(&w);
}

//  --- ids, names, codes, topics
//  -------------------------------------------------

static void
test_proto_id_format_and_parse_round_trip(void **state)
{
    (void) state;
    static const struct {
        uint64_t id;      //  value
        const char *hex;  //  its text
    } ids[] = {{0, "0000000000000000"},
               {1, "0000000000000001"},
               {0x0123456789abcdefull, "0123456789abcdef"},
               {0x01a222eb783e0000ull, "01a222eb783e0000"},
               {UINT64_MAX, "ffffffffffffffff"}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char hex[JOBQ_ID_LEN + 1];
        uint64_t v = 7;
        jobq_id_format(ids[i].id, hex);
        assert_string_equal(hex, ids[i].hex);
        assert_int_equal(jobq_id_parse(hex, JOBQ_ID_LEN, &v), JOBQ_OK);
        assert_true(v == ids[i].id);
    }
}

static void
test_proto_id_parse_rejects_anything_but_sixteen_lowercase_hex(void **state)
{
    (void) state;
    static const char *const bad[] = {"0123456789abcde",  "0123456789abcdef0",
                                      "0123456789ABCDEF", "0123456789abcdeg",
                                      " 123456789abcdef", "0x23456789abcdef",
                                      "-123456789abcdef", "",
                                      "0123456789abcdeF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 7;
        if (jobq_id_parse(bad[i], strlen(bad[i]), &v) != JOBQ_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(v, 7);
    }
    uint64_t v;
    assert_int_equal(jobq_id_parse("0123456789ab\0def", 16, &v), JOBQ_EINVAL);
    assert_int_equal(jobq_id_parse(NULL, 16, &v), JOBQ_EINVAL);
    //  Only len bytes count.
    assert_int_equal(jobq_id_parse("0123456789abcdefXYZ", 16, &v), JOBQ_OK);
    assert_true(v == 0x0123456789abcdefull);
}

static void
test_proto_status_names_round_trip(void **state)
{
    (void) state;
    static const char *const names[] = {"pending", "running", "completed",
                                        "failed", "cancelled"};
    assert_int_equal(JOBQ_STATUS_COUNT_, 5);
    for (int s = 0; s < JOBQ_STATUS_COUNT_; s++) {
        assert_string_equal(jobq_status_name(s), names[s]);
        assert_int_equal(jobq_status_parse(names[s], strlen(names[s])), s);
    }
    assert_string_equal(jobq_status_name(-1), "unknown");
    assert_string_equal(jobq_status_name(JOBQ_STATUS_COUNT_), "unknown");
    assert_int_equal(jobq_status_parse("unknown", 7), -1);
    assert_int_equal(jobq_status_parse("done", 4), -1);
    assert_int_equal(jobq_status_parse("Pending", 7), -1);
    assert_int_equal(jobq_status_parse("pend", 4), -1);
    assert_int_equal(jobq_status_parse("pendingx", 8), -1);
    assert_int_equal(jobq_status_parse("", 0), -1);
    assert_int_equal(jobq_status_parse("runningX", 7), JOBQ_RUNNING);
}

static void
test_proto_error_wire_codes_match_the_protocol_table(void **state)
{
    (void) state;
    //  docs/PROTOCOL.md section 7.
    static const struct {
        int err;           //  jobq_err_t
        const char *code;  //  wire code
    } codes[] = {{JOBQ_EINVAL, "bad_request"},
                 {JOBQ_ETOOBIG, "too_large"},
                 {JOBQ_ECOMMAND, "unknown_command"},
                 {JOBQ_EVERSION, "unsupported_version"},
                 {JOBQ_ENOTFOUND, "unknown_job"},
                 {JOBQ_ESTATE, "invalid_state"},
                 {JOBQ_EUNAVAILABLE, "unavailable"},
                 {JOBQ_ESTOREFULL, "storage_full"},
                 {JOBQ_ESTORAGE, "storage_error"},
                 {JOBQ_ESTALE, "stale_attempt"},
                 {JOBQ_EINTERNAL, "internal"}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_string_equal(jobq_err_wire_code(codes[i].err), codes[i].code);
        assert_int_equal(
            jobq_err_from_wire_code(codes[i].code, strlen(codes[i].code)),
            codes[i].err);
    }
    //  Anything else is internal, both ways.
    assert_string_equal(jobq_err_wire_code(JOBQ_ENOMEM), "internal");
    assert_string_equal(jobq_err_wire_code(JOBQ_ETIMEOUT), "internal");
    assert_string_equal(jobq_err_wire_code(12345), "internal");
    assert_int_equal(jobq_err_from_wire_code("bad", 3), JOBQ_EINTERNAL);
    assert_int_equal(jobq_err_from_wire_code("bad_request_", 12),
                     JOBQ_EINTERNAL);
    assert_int_equal(jobq_err_from_wire_code("", 0), JOBQ_EINTERNAL);
    assert_int_equal(jobq_err_from_wire_code("too_largeXX", 9), JOBQ_ETOOBIG);
}

static void
test_proto_topic_is_shop_slash_id(void **state)
{
    (void) state;
    char topic[JOBQ_TOPIC_MAX];
    size_t n = jobq_topic_format("demo", 4, 1, topic);
    assert_int_equal(n, 21);
    assert_string_equal(topic, "demo/0000000000000001");
    //  The longest shop fills the buffer exactly, NUL included.
    char shop[JOBQ_MAX_SHOP_LEN];
    memset(shop, 'S', sizeof shop);
    n = jobq_topic_format(shop, sizeof shop, UINT64_MAX, topic);
    assert_int_equal(n, JOBQ_TOPIC_MAX - 1);
    assert_int_equal(topic[JOBQ_MAX_SHOP_LEN], '/');
    assert_string_equal(topic + JOBQ_MAX_SHOP_LEN + 1, "ffffffffffffffff");
}

static void
test_proto_valid_type_allows_only_its_charset_and_length(void **state)
{
    (void) state;
    char longest[JOBQ_MAX_TYPE_LEN + 1];
    memset(longest, 'z', sizeof longest);
    assert_true(jobq_proto_valid_type(S("scrape_reviews.v2-x")));
    assert_true(jobq_proto_valid_type(S("0")));
    assert_true(
        jobq_proto_valid_type((jobq_str_t){longest, JOBQ_MAX_TYPE_LEN}));
    assert_false(
        jobq_proto_valid_type((jobq_str_t){longest, JOBQ_MAX_TYPE_LEN + 1}));
    static const char *const bad[] = {"",         "Noop", "no op", "a/b", "a:b",
                                      "\xc3\xa9", "a\tb", "a*",    "a+b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (jobq_proto_valid_type(S(bad[i])))
            fail_msg("type '%s' was accepted", bad[i]);
    assert_false(jobq_proto_valid_type((jobq_str_t){"a\0b", 3}));
}

static void
test_proto_valid_shop_allows_only_its_charset_and_length(void **state)
{
    (void) state;
    char longest[JOBQ_MAX_SHOP_LEN + 1];
    memset(longest, 'Z', sizeof longest);
    assert_true(jobq_proto_valid_shop(S("Shop:A_1.b-2")));
    assert_true(
        jobq_proto_valid_shop((jobq_str_t){longest, JOBQ_MAX_SHOP_LEN}));
    assert_false(
        jobq_proto_valid_shop((jobq_str_t){longest, JOBQ_MAX_SHOP_LEN + 1}));
    static const char *const bad[] = {"",    "shop/1", "a shop",
                                      "a@b", "a#b",    "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (jobq_proto_valid_shop(S(bad[i])))
            fail_msg("shop '%s' was accepted", bad[i]);
    assert_false(jobq_proto_valid_shop((jobq_str_t){"a\0b", 3}));
}

static void
test_proto_every_command_has_its_name(void **state)
{
    (void) state;
    static const struct {
        int cmd;           //  code
        const char *name;  //  name
    } names[] = {{JOBQ_CMD_ENQUEUE, "ENQUEUE"},
                 {JOBQ_CMD_STATUS, "STATUS"},
                 {JOBQ_CMD_LIST, "LIST"},
                 {JOBQ_CMD_CANCEL, "CANCEL"},
                 {JOBQ_CMD_STATS, "STATS"},
                 {JOBQ_CMD_RETRY, "RETRY"},
                 {JOBQ_CMD_READY, "READY"},
                 {JOBQ_CMD_HEARTBEAT, "HEARTBEAT"},
                 {JOBQ_CMD_PROGRESS, "PROGRESS"},
                 {JOBQ_CMD_COMPLETE, "COMPLETE"},
                 {JOBQ_CMD_FAIL, "FAIL"},
                 {JOBQ_CMD_JOB, "JOB"},
                 {JOBQ_CMD_CANCEL_JOB, "CANCEL_JOB"},
                 {JOBQ_CMD_DISCONNECT, "DISCONNECT"},
                 {JOBQ_CMD_ACK, "ACK"},
                 {JOBQ_CMD_REPLY, "REPLY"},
                 {JOBQ_CMD_ERROR, "ERROR"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_string_equal(jobq_cmd_name(names[i].cmd), names[i].name);
    assert_null(jobq_cmd_name(0));
    assert_null(jobq_cmd_name(0x7f));
    assert_null(jobq_cmd_name(-1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        //  round trips, client commands
        cmocka_unit_test(test_msg_enqueue_round_trips_every_field),
        cmocka_unit_test(test_msg_enqueue_without_key_or_input_round_trips),
        cmocka_unit_test(test_msg_enqueue_defaults_fill_absent_optional_fields),
        cmocka_unit_test(test_msg_enqueue_accepts_fields_in_any_order),
        cmocka_unit_test(test_msg_decode_accepts_integers_in_any_encoding),
        cmocka_unit_test(test_msg_enqueue_accepts_input_of_exactly_the_limit),
        cmocka_unit_test(
            test_msg_enqueue_accepts_input_nested_to_the_depth_limit),
        cmocka_unit_test(
            test_msg_input_and_output_nest_14_containers_counting_the_map),
        cmocka_unit_test(
            test_msg_a_length_over_a_limit_and_cut_short_is_too_large),
        cmocka_unit_test(test_msg_job_reference_commands_round_trip),
        cmocka_unit_test(test_msg_list_round_trips_filters_and_cursor),
        cmocka_unit_test(test_msg_list_without_filters_round_trips_as_any),
        cmocka_unit_test(test_msg_list_defaults_fill_absent_fields),
        cmocka_unit_test(test_msg_stats_round_trips),
        //  round trips, worker commands
        cmocka_unit_test(
            test_msg_ready_round_trips_several_types_name_and_held_jobs),
        cmocka_unit_test(
            test_msg_ready_with_the_most_types_and_no_name_round_trips),
        cmocka_unit_test(
            test_msg_heartbeat_round_trips_with_and_without_held_jobs),
        cmocka_unit_test(test_msg_ready_and_heartbeat_carry_an_echo),
        cmocka_unit_test(test_msg_progress_round_trips),
        cmocka_unit_test(
            test_msg_progress_without_message_decodes_with_an_empty_one),
        cmocka_unit_test(test_msg_enqueue_key_of_any_bytes_round_trips),
        cmocka_unit_test(test_msg_complete_round_trips_and_defaults_output),
        cmocka_unit_test(test_msg_fail_round_trips_permanent_and_cancelled),
        //  round trips, broker commands
        cmocka_unit_test(test_msg_job_dispatch_round_trips_every_field),
        cmocka_unit_test(test_msg_cancel_job_round_trips),
        cmocka_unit_test(test_msg_ack_round_trips),
        cmocka_unit_test(test_msg_disconnect_round_trips),
        cmocka_unit_test(
            test_msg_error_round_trips_every_code_through_its_wire_name),
        cmocka_unit_test(test_msg_reply_begin_writes_rid_first_and_decodes),
        //  what every command shares
        cmocka_unit_test(test_msg_every_command_ignores_unknown_keys),
        cmocka_unit_test(
            test_msg_every_command_rejects_a_body_that_is_not_a_map),
        cmocka_unit_test(
            test_msg_every_command_rejects_malformed_and_bomb_bodies),
        cmocka_unit_test(test_msg_decode_rejects_an_unknown_command_code),
        cmocka_unit_test(
            test_msg_decode_reports_the_rid_read_before_a_bad_field),
        cmocka_unit_test(test_msg_decode_finds_the_rid_of_a_body_it_refuses),
        //  rejections
        cmocka_unit_test(test_msg_enqueue_rejects_missing_required_fields),
        cmocka_unit_test(test_msg_enqueue_batch_checks_every_job),
        cmocka_unit_test(test_msg_enqueue_rejects_wrong_types),
        cmocka_unit_test(test_msg_enqueue_rejects_a_bad_type_or_shop_id),
        cmocka_unit_test(test_msg_enqueue_rejects_values_out_of_range),
        cmocka_unit_test(test_msg_enqueue_rejects_a_key_given_twice),
        cmocka_unit_test(test_msg_job_reference_rejects_a_bad_or_missing_id),
        cmocka_unit_test(test_msg_list_and_stats_reject_bad_fields),
        cmocka_unit_test(test_msg_ready_and_heartbeat_reject_bad_fields),
        cmocka_unit_test(test_msg_worker_results_reject_bad_fields),
        cmocka_unit_test(test_msg_broker_messages_reject_bad_fields),
        cmocka_unit_test(
            test_msg_nil_is_refused_in_place_of_every_optional_field),
        cmocka_unit_test(test_msg_a_float_is_refused_for_every_integer_field),
        cmocka_unit_test(
            test_msg_held_entries_ignore_unknown_keys_and_refuse_repeated_ones),
        //  the job map
        cmocka_unit_test(
            test_msg_job_map_round_trips_every_field_with_payloads),
        cmocka_unit_test(test_msg_job_map_without_flags_leaves_payloads_out),
        cmocka_unit_test(
            test_msg_job_map_writes_empty_optionals_as_nil_and_reads_them_back),
        cmocka_unit_test(test_msg_job_map_keys_follow_the_documented_order),
        cmocka_unit_test(test_msg_job_map_carries_every_status_by_name),
        cmocka_unit_test(
            test_msg_read_job_ignores_unknown_keys_and_refuses_non_maps),
        //  ids, names, codes, topics
        cmocka_unit_test(test_proto_id_format_and_parse_round_trip),
        cmocka_unit_test(
            test_proto_id_parse_rejects_anything_but_sixteen_lowercase_hex),
        cmocka_unit_test(test_proto_status_names_round_trip),
        cmocka_unit_test(test_proto_error_wire_codes_match_the_protocol_table),
        cmocka_unit_test(test_proto_topic_is_shop_slash_id),
        cmocka_unit_test(
            test_proto_valid_type_allows_only_its_charset_and_length),
        cmocka_unit_test(
            test_proto_valid_shop_allows_only_its_charset_and_length),
        cmocka_unit_test(test_proto_every_command_has_its_name),
    };
    return cmocka_run_group_tests_name("msg", tests, NULL, NULL);
}
