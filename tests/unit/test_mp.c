/*  test_mp.c: the bounded msgpack validator, reader and writer. Every rule
    of the validator is driven with the bytes that break it, including the
    allocation bombs that make msgpack-c ask for gigabytes. */
#include "jobq_test.h"
#include "jobq_proto.h"

#include <stdlib.h>
#include <string.h>

static int
s_check(const void *b, size_t n)
{
    const char *why = NULL;
    int rc = jobq_mp_check(b, n, &jobq_proto_limits, &why);
    if (rc != JOBQ_OK)
        assert_non_null(why);
    return rc;
}

#define S_REJECTED(rc) ((rc) == JOBQ_EINVAL || (rc) == JOBQ_ETOOBIG)

static void
test_mp_check_accepts_a_valid_request(void **state)
{
    (void) state;
    static const uint8_t ok[] = {0x82, 0xa3, 'r',  'i',  'd', 0x01,
                                 0xa1, 'x',  0x92, 0xc3, 0xc0};
    assert_int_equal(s_check(ok, sizeof ok), JOBQ_OK);
}

static void
test_mp_check_rejects_every_truncation(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_mp_write_map(&w, 3);
    jobq_mp_write_cstr(&w, "a");
    jobq_mp_write_uint(&w, 1u << 20);
    jobq_mp_write_cstr(&w, "long string value of forty bytes or so..");
    jobq_mp_write_array(&w, 2);
    jobq_mp_write_double(&w, 1.5);
    jobq_mp_write_int(&w, -70000);
    jobq_mp_write_cstr(&w, "b");
    jobq_mp_write_bin(&w, "\x01\x02\x03", 3);
    assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
    for (size_t n = 0; n < w.len; n++)
        assert_true(S_REJECTED(s_check(w.data, n)));
    jobq_mp_writer_fini(&w);
}

static void
test_mp_check_rejects_reserved_byte_and_trailing_bytes(void **state)
{
    (void) state;
    static const uint8_t reserved[] = {0x81, 0xa1, 'a', 0xc1};
    static const uint8_t trailing[] = {0x80, 0x01};
    assert_int_equal(s_check(reserved, sizeof reserved), JOBQ_EINVAL);
    assert_int_equal(s_check(trailing, sizeof trailing), JOBQ_EINVAL);
}

static void
test_mp_check_rejects_non_string_map_keys(void **state)
{
    (void) state;
    static const uint8_t intkey[] = {0x81, 0x01, 0x02};
    static const uint8_t nested[] = {0x81, 0xa1, 'a', 0x81, 0x90, 0x01};
    assert_int_equal(s_check(intkey, sizeof intkey), JOBQ_EINVAL);
    assert_int_equal(s_check(nested, sizeof nested), JOBQ_EINVAL);
}

static void
test_mp_check_limits_depth(void **state)
{
    (void) state;
    uint8_t b[40];
    //  16 nested arrays: the deepest allowed.
    memset(b, 0x91, 15);
    b[15] = 0x90;
    assert_int_equal(s_check(b, 16), JOBQ_OK);
    memset(b, 0x91, 16);
    b[16] = 0x90;
    assert_int_equal(s_check(b, 17), JOBQ_ETOOBIG);
    memset(b, 0x91, 33);
    b[33] = 0x90;
    assert_int_equal(s_check(b, 34), JOBQ_ETOOBIG);
}

static void
test_mp_check_rejects_allocation_bombs(void **state)
{
    (void) state;
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t inner[] = {0x81, 0xdf, 0xab, 0xab, 0xab, 0xab};
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t bin32[] = {0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t ext32[] = {0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01};
    uint8_t nest[160];
    for (int i = 0; i < 32; i++)
        memcpy(nest + 5 * i, "\xdd\x10\x00\x00\x00", 5);
    const struct {
        const uint8_t *b;  //  bytes
        size_t n;          //  length
    } bombs[] = {{array32, sizeof array32}, {map32, sizeof map32},
                 {inner, sizeof inner},     {str32, sizeof str32},
                 {bin32, sizeof bin32},     {ext32, sizeof ext32},
                 {nest, sizeof nest}};
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++)
        assert_true(S_REJECTED(s_check(bombs[i].b, bombs[i].n)));
}

static void
test_mp_check_rejects_a_count_above_the_bytes_left(void **state)
{
    (void) state;
    //  array16 of 100 entries, well under the container limit, 3 present.
    static const uint8_t lie[] = {0xdc, 0x00, 0x64, 0x01, 0x02, 0x03};
    assert_int_equal(s_check(lie, sizeof lie), JOBQ_EINVAL);
}

static void
test_mp_check_limits_containers_elements_and_strings(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 8u << 20);
    jobq_mp_write_array(&w, JOBQ_MAX_CONTAINER + 1);
    for (uint32_t i = 0; i <= JOBQ_MAX_CONTAINER; i++)
        jobq_mp_write_nil(&w);
    assert_int_equal(s_check(w.data, w.len), JOBQ_ETOOBIG);
    //  Five arrays of 60,000: each fine, the total too many.
    jobq_mp_writer_reset(&w);
    jobq_mp_write_array(&w, 5);
    for (int a = 0; a < 5; a++) {
        jobq_mp_write_array(&w, 60000);
        for (int i = 0; i < 60000; i++)
            jobq_mp_write_nil(&w);
    }
    assert_int_equal(s_check(w.data, w.len), JOBQ_ETOOBIG);
    jobq_mp_writer_reset(&w);
    size_t big = JOBQ_MAX_OUTPUT_BYTES + 1;
    char *s = calloc(1, big);
    jobq_mp_write_str(&w, s, big);
    assert_int_equal(s_check(w.data, w.len), JOBQ_ETOOBIG);
    free(s);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_writer_uses_the_smallest_encoding(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1 << 20);
    const struct {
        int64_t v;          //  value
        const char *bytes;  //  expected encoding
        size_t n;           //  its length
    } ints[] = {{0, "\x00", 1},
                {127, "\x7f", 1},
                {128, "\xcc\x80", 2},
                {256, "\xcd\x01\x00", 3},
                {65536, "\xce\x00\x01\x00\x00", 5},
                {-1, "\xff", 1},
                {-32, "\xe0", 1},
                {-33, "\xd0\xdf", 2},
                {-129, "\xd1\xff\x7f", 3},
                {-32769, "\xd2\xff\xff\x7f\xff", 5}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        jobq_mp_writer_reset(&w);
        jobq_mp_write_int(&w, ints[i].v);
        assert_int_equal(w.len, ints[i].n);
        assert_memory_equal(w.data, ints[i].bytes, ints[i].n);
    }
    jobq_mp_writer_reset(&w);
    jobq_mp_write_cstr(&w, "abc");
    assert_memory_equal(w.data,
                        "\xa3"
                        "abc",
                        4);
    jobq_mp_writer_reset(&w);
    jobq_mp_write_map(&w, 16);
    assert_memory_equal(w.data, "\xde\x00\x10", 3);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_integers_round_trip_at_every_width(void **state)
{
    (void) state;
    static const uint64_t us[] = {
        0,     127,   128,           255,           256,
        65535, 65536, 4294967295ull, 4294967296ull, UINT64_MAX};
    static const int64_t is[] = {
        -1,       -32, -33, -128, -129, -32768, -32769, (int64_t) INT32_MIN - 1,
        INT64_MIN};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1 << 20);
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++)
        jobq_mp_write_uint(&w, us[i]);
    for (size_t i = 0; i < sizeof is / sizeof is[0]; i++)
        jobq_mp_write_int(&w, is[i]);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, w.data, w.len);
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        uint64_t v;
        assert_int_equal(jobq_mp_read_uint(&r, &v), JOBQ_OK);
        assert_true(v == us[i]);
    }
    for (size_t i = 0; i < sizeof is / sizeof is[0]; i++) {
        uint64_t u;
        int64_t v;
        assert_int_equal(jobq_mp_read_uint(&r, &u), JOBQ_EPROTO);
        assert_int_equal(jobq_mp_read_int(&r, &v), JOBQ_OK);
        assert_true(v == is[i]);
    }
    //  A uint above INT64_MAX is not an int64.
    jobq_mp_writer_reset(&w);
    jobq_mp_write_uint(&w, UINT64_MAX);
    jobq_mp_reader_init(&r, w.data, w.len);
    int64_t v;
    assert_int_equal(jobq_mp_read_int(&r, &v), JOBQ_EPROTO);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_strings_and_containers_round_trip(void **state)
{
    (void) state;
    static const size_t lens[] = {0, 31, 32, 255, 256, 65535, 65536};
    char *buf = malloc(65536);
    memset(buf, 'q', 65536);
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1 << 20);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        jobq_mp_write_str(&w, buf, lens[i]);
    jobq_mp_write_array(&w, 16);
    for (int i = 0; i < 16; i++)
        jobq_mp_write_bool(&w, i % 2);
    jobq_mp_write_map(&w, 1);
    jobq_mp_write_cstr(&w, "k");
    jobq_mp_write_double(&w, 2.25);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, w.data, w.len);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        jobq_str_t s;
        assert_int_equal(jobq_mp_read_str(&r, &s), JOBQ_OK);
        assert_int_equal(s.len, lens[i]);
    }
    uint32_t n;
    const uint8_t *before = r.p;
    jobq_bytes_t span;
    assert_int_equal(jobq_mp_skip(&r, &span), JOBQ_OK);
    assert_ptr_equal(span.ptr, before);
    assert_int_equal(span.len, 3 + 16);  //  array16 header + 16 bools
    jobq_mp_reader_t m = r;
    assert_int_equal(jobq_mp_read_map(&m, &n), JOBQ_OK);
    assert_int_equal(n, 1);
    jobq_bytes_t map = {r.p, (size_t) (r.end - r.p)}, val;
    assert_int_equal(jobq_mp_map_find(map, "k", &val), JOBQ_OK);
    jobq_mp_reader_t vr;
    jobq_mp_reader_init(&vr, val.ptr, val.len);
    double d;
    assert_int_equal(jobq_mp_read_double(&vr, &d), JOBQ_OK);
    assert_true(d == 2.25);
    assert_int_equal(jobq_mp_map_find(map, "nope", &val), JOBQ_ENOTFOUND);
    jobq_bytes_t notmap = {span.ptr, span.len};
    assert_int_equal(jobq_mp_map_find(notmap, "k", &val), JOBQ_EPROTO);
    free(buf);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_writer_cap_is_enforced_and_sticky(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 8);
    jobq_mp_write_cstr(&w, "1234567");
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    jobq_mp_write_uint(&w, 1000);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_ETOOBIG);
    jobq_mp_write_nil(&w);  //  would fit, but the error sticks
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_ETOOBIG);
    assert_int_equal(w.len, 8);
    jobq_mp_writer_fini(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mp_check_accepts_a_valid_request),
        cmocka_unit_test(test_mp_check_rejects_every_truncation),
        cmocka_unit_test(
            test_mp_check_rejects_reserved_byte_and_trailing_bytes),
        cmocka_unit_test(test_mp_check_rejects_non_string_map_keys),
        cmocka_unit_test(test_mp_check_limits_depth),
        cmocka_unit_test(test_mp_check_rejects_allocation_bombs),
        cmocka_unit_test(test_mp_check_rejects_a_count_above_the_bytes_left),
        cmocka_unit_test(test_mp_check_limits_containers_elements_and_strings),
        cmocka_unit_test(test_mp_writer_uses_the_smallest_encoding),
        cmocka_unit_test(test_mp_integers_round_trip_at_every_width),
        cmocka_unit_test(test_mp_strings_and_containers_round_trip),
        cmocka_unit_test(test_mp_writer_cap_is_enforced_and_sticky),
    };
    return cmocka_run_group_tests_name("mp", tests, NULL, NULL);
}
