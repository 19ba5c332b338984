/*  test_mp.c: the bounded msgpack validator, reader and writer.

    Every rule of jobq_mp_check() is driven with the bytes that break it,
    including the allocation bombs measured in the reliability notes,
    section 4 (msgpack-c allocates from the declared count before it reads
    a single element), and every writer form is checked against
    hand-computed bytes and read back. */
#include "jobq_test.h"
#include "jobq_proto.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --- helpers ---------------------------------------------------------------

//  Check b[0..n) against the protocol limits. A rejection must say why.
static int
s_check_with(const void *b, size_t n, const jobq_mp_limits_t *lim)
{
    const char *why = NULL;
    int rc = jobq_mp_check(b, n, lim, &why);
    if (rc != JOBQ_OK && why == NULL)
        fail_msg("rejected (rc=%d) without a why", rc);
    return rc;
}

static int
s_check(const void *b, size_t n)
{
    return s_check_with(b, n, &jobq_proto_limits);
}

//  True for the two codes a hostile body may get.
static bool
s_rejected(int rc)
{
    return rc == JOBQ_EINVAL || rc == JOBQ_ETOOBIG;
}

//  A heap copy of exactly n bytes, so that AddressSanitizer sees any read
//  past the end of the input.
static uint8_t *
s_dup(const void *b, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n)
        memcpy(p, b, n);
    return p;
}

//  n nested arrays: n - 1 headers of one item, the innermost holding
//  `inner` values of 0x01 (0 = the innermost is empty).
static size_t
s_nested_arrays(uint8_t *b, size_t n, size_t inner)
{
    size_t len = 0;
    for (size_t i = 0; i + 1 < n; i++)
        b[len++] = 0x91;
    b[len++] = (uint8_t) (0x90 | inner);
    for (size_t i = 0; i < inner; i++)
        b[len++] = 0x01;
    return len;
}

//  n nested maps {"a": {"a": ... {"a": 1}}}.
static size_t
s_nested_maps(uint8_t *b, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        b[len++] = 0x81;
        b[len++] = 0xa1;
        b[len++] = 'a';
    }
    b[len++] = 0x01;
    return len;
}

//  A message with every kind of value, in most of their widths.
static void
s_write_everything(jobq_mp_writer_t *w)
{
    static const uint8_t fixext4[] = {0xd6, 0x05, 1, 2, 3, 4};
    static const uint8_t ext8[] = {0xc7, 0x03, 0x07, 'x', 'y', 'z'};
    static const uint8_t float32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00};
    char s40[41];
    memset(s40, 's', 40);
    s40[40] = '\0';
    jobq_mp_write_map(w, 12);
    jobq_mp_write_cstr(w, "nil");
    jobq_mp_write_nil(w);
    jobq_mp_write_cstr(w, "bools");
    jobq_mp_write_array(w, 2);
    jobq_mp_write_bool(w, true);
    jobq_mp_write_bool(w, false);
    jobq_mp_write_cstr(w, "uints");
    jobq_mp_write_array(w, 5);
    jobq_mp_write_uint(w, 7);
    jobq_mp_write_uint(w, 200);
    jobq_mp_write_uint(w, 60000);
    jobq_mp_write_uint(w, 1u << 20);
    jobq_mp_write_uint(w, 1ull << 40);
    jobq_mp_write_cstr(w, "ints");
    jobq_mp_write_array(w, 5);
    jobq_mp_write_int(w, -3);
    jobq_mp_write_int(w, -100);
    jobq_mp_write_int(w, -30000);
    jobq_mp_write_int(w, -70000);
    jobq_mp_write_int(w, INT64_MIN);
    jobq_mp_write_cstr(w, "double");
    jobq_mp_write_double(w, 1.5);
    jobq_mp_write_cstr(w, "float");
    jobq_mp_write_raw(w, float32, sizeof float32);
    jobq_mp_write_cstr(w, s40);  //  a str8 key
    jobq_mp_write_cstr(w, s40);
    jobq_mp_write_cstr(w, "bin");
    jobq_mp_write_bin(w, "\x00\x01\x02", 3);
    jobq_mp_write_cstr(w, "fixext");
    jobq_mp_write_raw(w, fixext4, sizeof fixext4);
    jobq_mp_write_cstr(w, "ext");
    jobq_mp_write_raw(w, ext8, sizeof ext8);
    jobq_mp_write_cstr(w, "nested");
    jobq_mp_write_map(w, 1);
    jobq_mp_write_cstr(w, "deeper");
    jobq_mp_write_array(w, 1);
    jobq_mp_write_map(w, 0);
    jobq_mp_write_cstr(w, "empty");
    jobq_mp_write_array(w, 0);
    assert_int_equal(jobq_mp_writer_error(w), JOBQ_OK);
}

//  A deterministic generator for the random inputs (xorshift64).
static uint64_t
s_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

//  --- the validator: what it accepts ---------------------------------------

static void
test_mp_check_accepts_a_message_with_every_kind_of_value(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    s_write_everything(&w);
    assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_check_accepts_a_single_scalar(void **state)
{
    (void) state;
    static const uint8_t nil[] = {0xc0};
    static const uint8_t empty_map[] = {0x80};
    static const uint8_t empty_str[] = {0xa0};
    static const uint8_t u64[] = {0xcf, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(s_check(nil, sizeof nil), JOBQ_OK);
    assert_int_equal(s_check(empty_map, sizeof empty_map), JOBQ_OK);
    assert_int_equal(s_check(empty_str, sizeof empty_str), JOBQ_OK);
    assert_int_equal(s_check(u64, sizeof u64), JOBQ_OK);
}

static void
test_mp_check_tolerates_a_null_why(void **state)
{
    (void) state;
    static const uint8_t bad[] = {0xc1};
    static const uint8_t ok[] = {0x80};
    assert_int_equal(jobq_mp_check(bad, 1, &jobq_proto_limits, NULL),
                     JOBQ_EINVAL);
    assert_int_equal(jobq_mp_check(ok, 1, &jobq_proto_limits, NULL), JOBQ_OK);
}

//  --- the validator: malformed input ----------------------------------------

static void
test_mp_check_rejects_empty_input(void **state)
{
    (void) state;
    static const uint8_t any[] = {0x80};
    const char *why = NULL;
    assert_int_equal(jobq_mp_check(any, 0, &jobq_proto_limits, &why),
                     JOBQ_EINVAL);
    assert_non_null(why);
}

static void
test_mp_check_rejects_every_truncation_of_a_valid_message(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    s_write_everything(&w);
    assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
    for (size_t n = 0; n < w.len; n++) {
        uint8_t *cut = s_dup(w.data, n);
        int rc = s_check(cut, n);
        if (!s_rejected(rc))
            fail_msg("prefix of %zu of %zu bytes: rc=%d", n, w.len, rc);
        free(cut);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_mp_check_rejects_every_truncation_of_each_scalar_form(void **state)
{
    (void) state;
    static const struct {
        uint8_t b[12];  //  one complete value
        size_t n;       //  its length
    } forms[] = {
        {{0xcc, 0x80}, 2},
        {{0xcd, 0x01, 0x00}, 3},
        {{0xce, 0, 1, 0, 0}, 5},
        {{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, 9},
        {{0xd0, 0xdf}, 2},
        {{0xd1, 0xff, 0x7f}, 3},
        {{0xd2, 0xff, 0xff, 0x7f, 0xff}, 5},
        {{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9},
        {{0xca, 0x3f, 0xc0, 0, 0}, 5},
        {{0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, 9},
        {{0xd9, 0x02, 'a', 'b'}, 4},
        {{0xda, 0x00, 0x02, 'a', 'b'}, 5},
        {{0xdb, 0, 0, 0, 0x02, 'a', 'b'}, 7},
        {{0xc4, 0x02, 1, 2}, 4},
        {{0xc5, 0x00, 0x02, 1, 2}, 5},
        {{0xc6, 0, 0, 0, 0x02, 1, 2}, 7},
        {{0xd4, 0x01, 0xaa}, 3},
        {{0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, 10},
        {{0xc7, 0x01, 0x05, 0xaa}, 4},
        {{0xc8, 0x00, 0x01, 0x05, 0xaa}, 5},
        {{0xc9, 0, 0, 0, 0x01, 0x05, 0xaa}, 7},
        {{0xdc, 0x00, 0x01, 0xc0}, 4},
        {{0xdd, 0, 0, 0, 0x01, 0xc0}, 6},
        {{0xde, 0x00, 0x01, 0xa0, 0xc0}, 5},
        {{0xdf, 0, 0, 0, 0x01, 0xa0, 0xc0}, 7},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        assert_int_equal(s_check(forms[i].b, forms[i].n), JOBQ_OK);
        for (size_t n = 0; n < forms[i].n; n++) {
            uint8_t *cut = s_dup(forms[i].b, n);
            if (!s_rejected(s_check(cut, n)))
                fail_msg("form 0x%02x cut to %zu bytes was accepted",
                         forms[i].b[0], n);
            free(cut);
        }
    }
}

static void
test_mp_check_rejects_the_reserved_byte_0xc1_anywhere(void **state)
{
    (void) state;
    static const uint8_t top[] = {0xc1};
    static const uint8_t item[] = {0x92, 0x01, 0xc1};
    static const uint8_t value[] = {0x81, 0xa1, 'a', 0xc1};
    static const uint8_t key[] = {0x81, 0xc1, 0x01};
    assert_int_equal(s_check(top, sizeof top), JOBQ_EINVAL);
    assert_int_equal(s_check(item, sizeof item), JOBQ_EINVAL);
    assert_int_equal(s_check(value, sizeof value), JOBQ_EINVAL);
    assert_int_equal(s_check(key, sizeof key), JOBQ_EINVAL);
}

static void
test_mp_check_rejects_trailing_bytes(void **state)
{
    (void) state;
    static const uint8_t map[] = {0x80, 0x01};
    static const uint8_t two_nils[] = {0xc0, 0xc0};
    //  msgpack-c reports SUCCESS with off=1 for these (reliability notes 4.1).
    static const uint8_t measured[] = {0x01, 0xff, 0xff};
    static const uint8_t after_map[] = {0x81, 0xa1, 'a', 0x01, 0x00};
    assert_int_equal(s_check(map, sizeof map), JOBQ_EINVAL);
    assert_int_equal(s_check(two_nils, sizeof two_nils), JOBQ_EINVAL);
    assert_int_equal(s_check(measured, sizeof measured), JOBQ_EINVAL);
    assert_int_equal(s_check(after_map, sizeof after_map), JOBQ_EINVAL);
}

static void
test_mp_check_rejects_an_int_map_key(void **state)
{
    (void) state;
    static const uint8_t intkey[] = {0x81, 0x01, 0x02};
    static const uint8_t second[] = {0x82, 0xa1, 'a',  0x01,
                                     0xcd, 0x01, 0x00, 0x02};
    static const uint8_t nilkey[] = {0x81, 0xc0, 0x02};
    static const uint8_t binkey[] = {0x81, 0xc4, 0x01, 'a', 0x02};
    assert_int_equal(s_check(intkey, sizeof intkey), JOBQ_EINVAL);
    assert_int_equal(s_check(second, sizeof second), JOBQ_EINVAL);
    assert_int_equal(s_check(nilkey, sizeof nilkey), JOBQ_EINVAL);
    assert_int_equal(s_check(binkey, sizeof binkey), JOBQ_EINVAL);
}

static void
test_mp_check_rejects_a_container_as_map_key_at_any_depth(void **state)
{
    (void) state;
    //  {{"a": 1}: 1}
    static const uint8_t mapkey[] = {0x81, 0x81, 0xa1, 'a', 0x01, 0x01};
    //  {"a": {[]: 1}}
    static const uint8_t nested[] = {0x81, 0xa1, 'a', 0x81, 0x90, 0x01};
    //  [[{"a": {"b": {2: 3}}}]]
    static const uint8_t deep[] = {0x91, 0x91, 0x81, 0xa1, 'a', 0x81,
                                   0xa1, 'b',  0x81, 0x02, 0x03};
    assert_int_equal(s_check(mapkey, sizeof mapkey), JOBQ_EINVAL);
    assert_int_equal(s_check(nested, sizeof nested), JOBQ_EINVAL);
    assert_int_equal(s_check(deep, sizeof deep), JOBQ_EINVAL);
}

//  --- the validator: limits -------------------------------------------------

//  docs/PROTOCOL.md section 5: "nesting deeper than 16 containers (the
//  outermost map counts 1)" is refused, so 16 is allowed, whatever the
//  innermost container holds.
static void
test_mp_check_accepts_sixteen_nested_arrays(void **state)
{
    (void) state;
    uint8_t b[64];
    assert_int_equal(JOBQ_MAX_DEPTH, 16);
    assert_int_equal(s_check(b, s_nested_arrays(b, 16, 0)), JOBQ_OK);
    assert_int_equal(s_check(b, s_nested_arrays(b, 16, 1)), JOBQ_OK);
    assert_int_equal(s_check(b, s_nested_arrays(b, 16, 3)), JOBQ_OK);
}

static void
test_mp_check_accepts_sixteen_nested_maps(void **state)
{
    (void) state;
    uint8_t b[128];
    assert_int_equal(s_check(b, s_nested_maps(b, 16)), JOBQ_OK);
}

static void
test_mp_check_rejects_seventeen_nested_containers(void **state)
{
    (void) state;
    uint8_t b[64];
    assert_int_equal(s_check(b, s_nested_arrays(b, 17, 0)), JOBQ_ETOOBIG);
    assert_int_equal(s_check(b, s_nested_arrays(b, 17, 1)), JOBQ_ETOOBIG);
    assert_int_equal(s_check(b, s_nested_maps(b, 17)), JOBQ_ETOOBIG);
}

static void
test_mp_check_rejects_thirty_three_nested_arrays(void **state)
{
    (void) state;
    //  33 is where msgpack-c itself gives up with NOMEM (reliability
    //  notes 4.1).
    uint8_t b[64];
    assert_int_equal(s_check(b, s_nested_arrays(b, 33, 0)), JOBQ_ETOOBIG);
    assert_int_equal(s_check(b, s_nested_arrays(b, 33, 1)), JOBQ_ETOOBIG);
}

static void
test_mp_check_depth_limit_counts_the_outermost_container_as_one(void **state)
{
    (void) state;
    jobq_mp_limits_t lim = jobq_proto_limits;
    uint8_t b[64];
    lim.max_depth = 1;
    static const uint8_t flat[] = {0x81, 0xa1, 'a', 0x01};
    assert_int_equal(s_check_with(flat, sizeof flat, &lim), JOBQ_OK);
    assert_int_equal(s_check_with(b, s_nested_arrays(b, 2, 0), &lim),
                     JOBQ_ETOOBIG);
    lim.max_depth = 2;
    assert_int_equal(s_check_with(b, s_nested_arrays(b, 2, 1), &lim), JOBQ_OK);
    assert_int_equal(s_check_with(b, s_nested_arrays(b, 3, 0), &lim),
                     JOBQ_ETOOBIG);
}

static void
test_mp_check_depth_counts_siblings_once(void **state)
{
    (void) state;
    //  Many containers side by side at depth 2 are not nesting.
    uint8_t b[64];
    size_t n = 0;
    b[n++] = 0x9f;  //  array of 15
    for (int i = 0; i < 15; i++)
        b[n++] = 0x90;
    jobq_mp_limits_t lim = jobq_proto_limits;
    lim.max_depth = 2;
    assert_int_equal(s_check_with(b, n, &lim), JOBQ_OK);
}

static void
test_mp_check_limits_entries_in_one_array(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 20);
    jobq_mp_write_array(&w, JOBQ_MAX_CONTAINER);
    for (uint32_t i = 0; i < JOBQ_MAX_CONTAINER; i++)
        jobq_mp_write_nil(&w);
    assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
    jobq_mp_writer_reset(&w);
    jobq_mp_write_array(&w, JOBQ_MAX_CONTAINER + 1);
    for (uint32_t i = 0; i <= JOBQ_MAX_CONTAINER; i++)
        jobq_mp_write_nil(&w);
    assert_int_equal(s_check(w.data, w.len), JOBQ_ETOOBIG);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_check_limits_entries_in_one_map(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 20);
    jobq_mp_write_map(&w, JOBQ_MAX_CONTAINER);
    for (uint32_t i = 0; i < JOBQ_MAX_CONTAINER; i++) {
        jobq_mp_write_str(&w, "", 0);
        jobq_mp_write_nil(&w);
    }
    assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
    jobq_mp_writer_reset(&w);
    jobq_mp_write_map(&w, JOBQ_MAX_CONTAINER + 1);
    for (uint32_t i = 0; i <= JOBQ_MAX_CONTAINER; i++) {
        jobq_mp_write_str(&w, "", 0);
        jobq_mp_write_nil(&w);
    }
    assert_int_equal(s_check(w.data, w.len), JOBQ_ETOOBIG);
    jobq_mp_writer_fini(&w);
}

//  Four arrays of `each` nils inside an array of four: 4 + 4 * each entries.
static void
s_write_four_arrays(jobq_mp_writer_t *w, uint32_t each)
{
    jobq_mp_write_array(w, 4);
    for (int a = 0; a < 4; a++) {
        jobq_mp_write_array(w, each);
        for (uint32_t i = 0; i < each; i++)
            jobq_mp_write_nil(w);
    }
}

static void
test_mp_check_limits_entries_in_the_whole_message(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4u << 20);
    //  4 + 4 * 65535 = 262144: exactly the limit.
    s_write_four_arrays(&w, (JOBQ_MAX_ELEMENTS - 4) / 4);
    assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
    //  4 + 4 * 65536: each array within its own limit, the sum above.
    jobq_mp_writer_reset(&w);
    s_write_four_arrays(&w, JOBQ_MAX_CONTAINER);
    assert_int_equal(s_check(w.data, w.len), JOBQ_ETOOBIG);
    jobq_mp_writer_fini(&w);
}

//  docs/PROTOCOL.md 5.1: "a map entry, key and value, counts once".
static void
test_mp_check_counts_a_map_entry_once_toward_the_total(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4u << 20);
    //  4 + 4 * 65535 = 262144 entries (524,288 values): exactly the limit.
    for (uint32_t each = (JOBQ_MAX_ELEMENTS - 4) / 4;
         each <= (JOBQ_MAX_ELEMENTS - 4) / 4 + 1; each++) {
        jobq_mp_writer_reset(&w);
        jobq_mp_write_array(&w, 4);
        for (int a = 0; a < 4; a++) {
            jobq_mp_write_map(&w, each);
            for (uint32_t i = 0; i < each; i++) {
                jobq_mp_write_str(&w, "", 0);
                jobq_mp_write_nil(&w);
            }
        }
        assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
        int want = each * 4 + 4 <= JOBQ_MAX_ELEMENTS ? JOBQ_OK : JOBQ_ETOOBIG;
        if (s_check(w.data, w.len) != want)
            fail_msg("4 maps of %u entries: expected %d", each, want);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_mp_check_rejects_a_string_longer_than_max_str(void **state)
{
    (void) state;
    jobq_mp_limits_t lim = jobq_proto_limits;
    lim.max_str = 8;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 64);
    jobq_mp_write_str(&w, "12345678", 8);
    assert_int_equal(s_check_with(w.data, w.len, &lim), JOBQ_OK);
    jobq_mp_writer_reset(&w);
    jobq_mp_write_str(&w, "123456789", 9);
    assert_int_equal(s_check_with(w.data, w.len, &lim), JOBQ_ETOOBIG);
    //  A long map key counts too.
    jobq_mp_writer_reset(&w);
    jobq_mp_write_map(&w, 1);
    jobq_mp_write_str(&w, "123456789", 9);
    jobq_mp_write_nil(&w);
    assert_int_equal(s_check_with(w.data, w.len, &lim), JOBQ_ETOOBIG);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_check_rejects_bin_and_ext_longer_than_max_str(void **state)
{
    (void) state;
    jobq_mp_limits_t lim = jobq_proto_limits;
    lim.max_str = 8;
    static const uint8_t bin8[] = {0xc4, 0x08, 1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t bin9[] = {0xc4, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const uint8_t ext9[] = {0xc7, 0x09, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(s_check_with(bin8, sizeof bin8, &lim), JOBQ_OK);
    assert_int_equal(s_check_with(bin9, sizeof bin9, &lim), JOBQ_ETOOBIG);
    assert_int_equal(s_check_with(ext9, sizeof ext9, &lim), JOBQ_ETOOBIG);
}

//  An ext's length counts its data, not its type byte, as for str and bin
//  (docs/PROTOCOL.md section 5: "a str, bin or ext longer than 1 MiB").
static void
test_mp_check_accepts_an_ext_of_exactly_max_str_bytes(void **state)
{
    (void) state;
    jobq_mp_limits_t lim = jobq_proto_limits;
    lim.max_str = 8;
    static const uint8_t ext8[] = {0xc7, 0x08, 0x01, 1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t fixext8[] = {0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(s_check_with(ext8, sizeof ext8, &lim), JOBQ_OK);
    assert_int_equal(s_check_with(fixext8, sizeof fixext8, &lim), JOBQ_OK);
}

static void
test_mp_check_rejects_a_string_above_the_protocol_limit(void **state)
{
    (void) state;
    size_t big = JOBQ_MAX_OUTPUT_BYTES;  //  the protocol's max_str
    assert_int_equal(jobq_proto_limits.max_str, big);
    char *s = calloc(1, big + 1);
    assert_non_null(s);
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 2u << 20);
    jobq_mp_write_str(&w, s, big);
    assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
    jobq_mp_writer_reset(&w);
    jobq_mp_write_str(&w, s, big + 1);
    assert_int_equal(s_check(w.data, w.len), JOBQ_ETOOBIG);
    jobq_mp_writer_reset(&w);
    jobq_mp_write_bin(&w, s, big + 1);
    assert_int_equal(s_check(w.data, w.len), JOBQ_ETOOBIG);
    free(s);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_check_rejects_allocation_bombs(void **state)
{
    (void) state;
    //  array32 and map32 of 4G entries (msgpack-c: ~96 GB).
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    //  Found by libFuzzer: a map whose key is map32(0xabababab).
    static const uint8_t fuzzed[] = {0x81, 0xdf, 0xab, 0xab, 0xab, 0xab};
    //  The same count as a value, where a key check cannot catch it.
    static const uint8_t as_value[] = {0x81, 0xa1, 'a',  0xdf,
                                       0xab, 0xab, 0xab, 0xab};
    //  Below the container limit in count of bytes, not of entries.
    static const uint8_t array32_ff[] = {0xdd, 0xff, 0x00, 0x00, 0x00};
    //  str32, bin32, ext32 with huge lengths and no body.
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t bin32_half[] = {0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t ext32_half[] = {0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01};
    //  32 nested array32(0x10000000) headers: 160 bytes, VmPeak 262 GB.
    uint8_t nest[160];
    for (int i = 0; i < 32; i++)
        memcpy(nest + 5 * i, "\xdd\x10\x00\x00\x00", 5);
    //  The same with small counts that each fit the container limit.
    uint8_t nest16[32 * 3];
    for (int i = 0; i < 32; i++)
        memcpy(nest16 + 3 * i, "\xdc\xff\xff", 3);
    const struct {
        const char *name;  //  for the failure message
        const uint8_t *b;  //  bytes
        size_t n;          //  length
    } bombs[] = {
        {"dd ff ff ff ff", array32, sizeof array32},
        {"df ff ff ff ff", map32, sizeof map32},
        {"81 df ab ab ab ab", fuzzed, sizeof fuzzed},
        {"81 a1 61 df ab ab ab ab", as_value, sizeof as_value},
        {"dd ff 00 00 00", array32_ff, sizeof array32_ff},
        {"db ff ff ff ff", str32, sizeof str32},
        {"c6 ff ff ff ff", bin32, sizeof bin32},
        {"c6 7f ff ff ff 00", bin32_half, sizeof bin32_half},
        {"c9 ff ff ff ff 01", ext32, sizeof ext32},
        {"c9 7f ff ff ff 01", ext32_half, sizeof ext32_half},
        {"32 x dd 10 00 00 00", nest, sizeof nest},
        {"32 x dc ff ff", nest16, sizeof nest16},
    };
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        const char *why = NULL;
        uint8_t *b = s_dup(bombs[i].b, bombs[i].n);
        int rc = jobq_mp_check(b, bombs[i].n, &jobq_proto_limits, &why);
        if (!s_rejected(rc) || why == NULL)
            fail_msg("bomb %s: rc=%d why=%s", bombs[i].name, rc,
                     why ? why : "(null)");
        free(b);
    }
}

static void
test_mp_check_rejects_a_count_above_the_bytes_left_below_the_limit(void **state)
{
    (void) state;
    //  array16 of 100 entries, far under the container limit, 3 present.
    static const uint8_t array[] = {0xdc, 0x00, 0x64, 0x01, 0x02, 0x03};
    //  map16 of 10 entries, 2 present.
    static const uint8_t map[] = {0xde, 0x00, 0x0a, 0xa0, 0x01, 0xa0, 0x02};
    //  fixarray of 3 with 2 present.
    static const uint8_t fix[] = {0x93, 0x01, 0x02};
    //  A fixmap of 2 entries has 4 values; 3 bytes are left.
    static const uint8_t pairs[] = {0x82, 0xa0, 0x01, 0xa0};
    assert_int_equal(s_check(array, sizeof array), JOBQ_EINVAL);
    assert_int_equal(s_check(map, sizeof map), JOBQ_EINVAL);
    assert_int_equal(s_check(fix, sizeof fix), JOBQ_EINVAL);
    assert_int_equal(s_check(pairs, sizeof pairs), JOBQ_EINVAL);
    //  Exactly as many one-byte values as declared is fine.
    static const uint8_t exact[] = {0xdc, 0x00, 0x03, 0x01, 0x02, 0x03};
    assert_int_equal(s_check(exact, sizeof exact), JOBQ_OK);
}

static void
test_mp_check_rejects_a_length_above_the_bytes_left(void **state)
{
    (void) state;
    static const uint8_t fixstr[] = {0xa5, 'a', 'b'};
    static const uint8_t str8[] = {0xd9, 0x10, 'a', 'b', 'c'};
    static const uint8_t bin8[] = {0xc4, 0x04, 1, 2, 3};
    static const uint8_t fixext[] = {0xd5, 0x01, 0xaa};
    assert_int_equal(s_check(fixstr, sizeof fixstr), JOBQ_EINVAL);
    assert_int_equal(s_check(str8, sizeof str8), JOBQ_EINVAL);
    assert_int_equal(s_check(bin8, sizeof bin8), JOBQ_EINVAL);
    assert_int_equal(s_check(fixext, sizeof fixext), JOBQ_EINVAL);
}

static void
test_mp_check_never_reads_past_random_input(void **state)
{
    (void) state;
    //  Bytes a fuzzer would favour: headers of every kind and small values.
    static const uint8_t alphabet[] = {
        0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x8f, 0x90, 0x91, 0x92, 0x9f,
        0xa0, 0xa1, 0xa3, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6,
        0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3,
        0xd4, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    size_t accepted = 0;
    for (int round = 0; round < 200000; round++) {
        size_t n = (size_t) (s_rand(&seed) % 24);
        uint8_t tmp[24];
        for (size_t i = 0; i < n; i++) {
            uint64_t r = s_rand(&seed);
            tmp[i] = (r & 1) ? alphabet[(r >> 8) % sizeof alphabet]
                             : (uint8_t) (r >> 16);
        }
        uint8_t *b = s_dup(tmp, n);
        int rc = s_check(b, n);
        if (rc == JOBQ_OK) {
            //  What the check accepts is exactly one value, end to end.
            accepted++;
            jobq_mp_reader_t r;
            jobq_bytes_t span;
            jobq_mp_reader_init(&r, b, n);
            assert_int_not_equal(jobq_mp_peek(&r), JOBQ_MP_NONE);
            assert_int_equal(jobq_mp_skip(&r, &span), JOBQ_OK);
            assert_int_equal(span.len, n);
            assert_ptr_equal(r.p, b + n);
        } else {
            assert_true(s_rejected(rc));
        }
        free(b);
    }
    assert_true(accepted > 1000);  //  the generator reaches valid input
}

//  --- the writer's bytes ----------------------------------------------------

static void
test_mp_writer_produces_the_hand_computed_bytes(void **state)
{
    (void) state;
    enum { U, I, S, MAP, ARR, BIN, BOOL, NIL, DBL, CSTR_NULL };
    static const struct {
        int kind;           //  what to write
        uint64_t u;         //  U, MAP, ARR; S and BIN: length; BOOL
        int64_t i;          //  I
        double d;           //  DBL
        const char *bytes;  //  expected output (prefix for long values)
        size_t n;           //  bytes compared
        size_t total;       //  expected length
    } cases[] = {
        {U, 0, 0, 0, "\x00", 1, 1},
        {U, 127, 0, 0, "\x7f", 1, 1},
        {U, 128, 0, 0, "\xcc\x80", 2, 2},
        {U, 255, 0, 0, "\xcc\xff", 2, 2},
        {U, 256, 0, 0, "\xcd\x01\x00", 3, 3},
        {U, 65535, 0, 0, "\xcd\xff\xff", 3, 3},
        {U, 65536, 0, 0, "\xce\x00\x01\x00\x00", 5, 5},
        {U, 4294967295u, 0, 0, "\xce\xff\xff\xff\xff", 5, 5},
        {U, 4294967296u, 0, 0, "\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 9, 9},
        {U, UINT64_MAX, 0, 0, "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, 9},
        {I, 0, 5, 0, "\x05", 1, 1},
        {I, 0, 200, 0, "\xcc\xc8", 2, 2},
        {I, 0, -1, 0, "\xff", 1, 1},
        {I, 0, -32, 0, "\xe0", 1, 1},
        {I, 0, -33, 0, "\xd0\xdf", 2, 2},
        {I, 0, -128, 0, "\xd0\x80", 2, 2},
        {I, 0, -129, 0, "\xd1\xff\x7f", 3, 3},
        {I, 0, -32768, 0, "\xd1\x80\x00", 3, 3},
        {I, 0, -32769, 0, "\xd2\xff\xff\x7f\xff", 5, 5},
        {I, 0, INT32_MIN, 0, "\xd2\x80\x00\x00\x00", 5, 5},
        {I, 0, (int64_t) INT32_MIN - 1, 0,
         "\xd3\xff\xff\xff\xff\x7f\xff\xff\xff", 9, 9},
        {I, 0, INT64_MIN, 0, "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, 9},
        {S, 3, 0, 0, "\xa3xxx", 4, 4},
        {S, 0, 0, 0, "\xa0", 1, 1},
        {S, 31, 0, 0, "\xbfx", 2, 32},
        {S, 32, 0, 0, "\xd9\x20x", 3, 34},
        {S, 255, 0, 0, "\xd9\xffx", 3, 257},
        {S, 256, 0, 0, "\xda\x01\x00x", 4, 259},
        {S, 65535, 0, 0, "\xda\xff\xffx", 4, 65538},
        {S, 65536, 0, 0, "\xdb\x00\x01\x00\x00x", 6, 65541},
        {BIN, 0, 0, 0, "\xc4\x00", 2, 2},
        {BIN, 3, 0, 0, "\xc4\x03xxx", 5, 5},
        {BIN, 256, 0, 0, "\xc5\x01\x00x", 4, 259},
        {BIN, 65536, 0, 0, "\xc6\x00\x01\x00\x00x", 6, 65541},
        {MAP, 0, 0, 0, "\x80", 1, 1},
        {MAP, 15, 0, 0, "\x8f", 1, 1},
        {MAP, 16, 0, 0, "\xde\x00\x10", 3, 3},
        {MAP, 65535, 0, 0, "\xde\xff\xff", 3, 3},
        {MAP, 65536, 0, 0, "\xdf\x00\x01\x00\x00", 5, 5},
        {ARR, 15, 0, 0, "\x9f", 1, 1},
        {ARR, 16, 0, 0, "\xdc\x00\x10", 3, 3},
        {ARR, 65536, 0, 0, "\xdd\x00\x01\x00\x00", 5, 5},
        {BOOL, 1, 0, 0, "\xc3", 1, 1},
        {BOOL, 0, 0, 0, "\xc2", 1, 1},
        {NIL, 0, 0, 0, "\xc0", 1, 1},
        {CSTR_NULL, 0, 0, 0, "\xc0", 1, 1},
        {DBL, 0, 0, 1.5, "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 9, 9},
        {DBL, 0, 0, -2.0, "\xcb\xc0\x00\x00\x00\x00\x00\x00\x00", 9, 9},
    };
    char *xs = malloc(65536);
    assert_non_null(xs);
    memset(xs, 'x', 65536);
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 20);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        jobq_mp_writer_reset(&w);
        switch (cases[c].kind) {
        case U:
            jobq_mp_write_uint(&w, cases[c].u);
            break;
        case I:
            jobq_mp_write_int(&w, cases[c].i);
            break;
        case S:
            jobq_mp_write_str(&w, xs, cases[c].u);
            break;
        case BIN:
            jobq_mp_write_bin(&w, xs, cases[c].u);
            break;
        case MAP:
            jobq_mp_write_map(&w, (uint32_t) cases[c].u);
            break;
        case ARR:
            jobq_mp_write_array(&w, (uint32_t) cases[c].u);
            break;
        case BOOL:
            jobq_mp_write_bool(&w, cases[c].u != 0);
            break;
        case NIL:
            jobq_mp_write_nil(&w);
            break;
        case CSTR_NULL:
            jobq_mp_write_cstr(&w, NULL);
            break;
        default:
            jobq_mp_write_double(&w, cases[c].d);
            break;
        }
        assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
        if (w.len != cases[c].total ||
            memcmp(w.data, cases[c].bytes, cases[c].n) != 0)
            fail_msg("case %zu: %zu bytes, first 0x%02x", c, w.len,
                     w.len ? w.data[0] : 0);
    }
    free(xs);
    jobq_mp_writer_fini(&w);
}

//  --- round trips
//  -------------------------------------------------------------

static void
test_mp_uint_round_trips_at_every_width_boundary(void **state)
{
    (void) state;
    static const struct {
        uint64_t v;  //  value
        size_t n;    //  encoded bytes
    } us[] = {{0, 1},           {127, 1},       {128, 2},   {255, 2},
              {256, 3},         {65535, 3},     {65536, 5}, {4294967295u, 5},
              {4294967296u, 9}, {UINT64_MAX, 9}};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 256);
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        jobq_mp_writer_reset(&w);
        jobq_mp_write_uint(&w, us[i].v);
        assert_int_equal(w.len, us[i].n);
        assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, w.data, w.len);
        assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_UINT);
        uint64_t v = 0;
        assert_int_equal(jobq_mp_read_uint(&r, &v), JOBQ_OK);
        assert_int_equal(v, us[i].v);
        assert_ptr_equal(r.p, r.end);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_mp_negative_int_round_trips_at_every_width_boundary(void **state)
{
    (void) state;
    static const struct {
        int64_t v;  //  value
        size_t n;   //  encoded bytes
    } is[] = {{-1, 1},       {-32, 1},       {-33, 2},
              {-128, 2},     {-129, 3},      {-32768, 3},
              {-32769, 5},   {INT32_MIN, 5}, {(int64_t) INT32_MIN - 1, 9},
              {INT64_MIN, 9}};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 256);
    for (size_t i = 0; i < sizeof is / sizeof is[0]; i++) {
        jobq_mp_writer_reset(&w);
        jobq_mp_write_int(&w, is[i].v);
        assert_int_equal(w.len, is[i].n);
        assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, w.data, w.len);
        assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_INT);
        int64_t v = 0;
        assert_int_equal(jobq_mp_read_int(&r, &v), JOBQ_OK);
        if (v != is[i].v)
            fail_msg("wrote %lld, read %lld", (long long) is[i].v,
                     (long long) v);
        assert_ptr_equal(r.p, r.end);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_mp_read_int_accepts_non_negative_values_of_any_encoding(void **state)
{
    (void) state;
    //  A sender may pack 5 as int8 and INT64_MAX as uint64 (PROTOCOL 5).
    static const uint8_t int8[] = {0xd0, 0x05};
    static const uint8_t int64[] = {0xd3, 0, 0, 0, 0, 0, 0, 0, 0x2a};
    static const uint8_t max[] = {0xcf, 0x7f, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff};
    jobq_mp_reader_t r;
    int64_t i;
    uint64_t u;
    jobq_mp_reader_init(&r, int8, sizeof int8);
    assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_UINT);
    assert_int_equal(jobq_mp_read_uint(&r, &u), JOBQ_OK);
    assert_int_equal(u, 5);
    jobq_mp_reader_init(&r, int64, sizeof int64);
    assert_int_equal(jobq_mp_read_int(&r, &i), JOBQ_OK);
    assert_int_equal(i, 42);
    jobq_mp_reader_init(&r, max, sizeof max);
    assert_int_equal(jobq_mp_read_int(&r, &i), JOBQ_OK);
    assert_true(i == INT64_MAX);
}

static void
test_mp_read_uint_refuses_a_negative_and_keeps_the_cursor(void **state)
{
    (void) state;
    static const int64_t negs[] = {-1, -33, -129, -32769, INT64_MIN};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 64);
    for (size_t i = 0; i < sizeof negs / sizeof negs[0]; i++) {
        jobq_mp_writer_reset(&w);
        jobq_mp_write_int(&w, negs[i]);
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, w.data, w.len);
        uint64_t u = 77;
        assert_int_equal(jobq_mp_read_uint(&r, &u), JOBQ_EPROTO);
        assert_ptr_equal(r.p, w.data);
        assert_int_equal(u, 77);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_mp_read_int_refuses_a_uint_above_int64_max(void **state)
{
    (void) state;
    static const uint64_t bigs[] = {(uint64_t) INT64_MAX + 1, UINT64_MAX};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 64);
    for (size_t i = 0; i < sizeof bigs / sizeof bigs[0]; i++) {
        jobq_mp_writer_reset(&w);
        jobq_mp_write_uint(&w, bigs[i]);
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, w.data, w.len);
        int64_t v = 77;
        assert_int_equal(jobq_mp_read_int(&r, &v), JOBQ_EPROTO);
        assert_ptr_equal(r.p, w.data);
        assert_int_equal(v, 77);
        //  It still reads as what it is.
        uint64_t u;
        assert_int_equal(jobq_mp_read_uint(&r, &u), JOBQ_OK);
        assert_int_equal(u, bigs[i]);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_mp_strings_round_trip_at_every_length_boundary(void **state)
{
    (void) state;
    static const struct {
        size_t len;  //  string bytes
        size_t hdr;  //  header bytes
    } ls[] = {{0, 1},   {31, 1},    {32, 2},   {255, 2},
              {256, 3}, {65535, 3}, {65536, 5}};
    char *buf = malloc(65536);
    assert_non_null(buf);
    for (size_t i = 0; i < 65536; i++)
        buf[i] = (char) (i * 7 + 1);  //  every byte value, NUL included
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 20);
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) {
        jobq_mp_writer_reset(&w);
        jobq_mp_write_str(&w, buf, ls[i].len);
        assert_int_equal(w.len, ls[i].hdr + ls[i].len);
        assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, w.data, w.len);
        assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_STR);
        jobq_str_t s;
        assert_int_equal(jobq_mp_read_str(&r, &s), JOBQ_OK);
        assert_int_equal(s.len, ls[i].len);
        assert_ptr_equal(s.ptr, (const char *) w.data + ls[i].hdr);
        if (ls[i].len)
            assert_memory_equal(s.ptr, buf, ls[i].len);
        assert_ptr_equal(r.p, r.end);
    }
    free(buf);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_arrays_round_trip_with_15_16_and_65536_entries(void **state)
{
    (void) state;
    static const uint32_t counts[] = {0, 15, 16, 65535, 65536};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 20);
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        jobq_mp_writer_reset(&w);
        jobq_mp_write_array(&w, counts[c]);
        for (uint32_t i = 0; i < counts[c]; i++)
            jobq_mp_write_uint(&w, i);
        assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, w.data, w.len);
        assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_ARRAY);
        uint32_t n;
        assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_OK);
        assert_int_equal(n, counts[c]);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t v;
            assert_int_equal(jobq_mp_read_uint(&r, &v), JOBQ_OK);
            if (v != i)
                fail_msg("item %u read as %llu", i, (unsigned long long) v);
        }
        assert_ptr_equal(r.p, r.end);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_mp_maps_round_trip_with_15_16_and_65536_entries(void **state)
{
    (void) state;
    static const uint32_t counts[] = {0, 15, 16, 65535, 65536};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 2u << 20);
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        jobq_mp_writer_reset(&w);
        jobq_mp_write_map(&w, counts[c]);
        for (uint32_t i = 0; i < counts[c]; i++) {
            char k[16];
            int kl = snprintf(k, sizeof k, "k%u", i);
            jobq_mp_write_str(&w, k, (size_t) kl);
            jobq_mp_write_int(&w, -(int64_t) i);
        }
        assert_int_equal(s_check(w.data, w.len), JOBQ_OK);
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, w.data, w.len);
        assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_MAP);
        uint32_t n;
        assert_int_equal(jobq_mp_read_map(&r, &n), JOBQ_OK);
        assert_int_equal(n, counts[c]);
        for (uint32_t i = 0; i < n; i++) {
            char k[16];
            int kl = snprintf(k, sizeof k, "k%u", i);
            jobq_str_t s;
            int64_t v;
            assert_int_equal(jobq_mp_read_str(&r, &s), JOBQ_OK);
            assert_int_equal(s.len, (size_t) kl);
            assert_memory_equal(s.ptr, k, s.len);
            assert_int_equal(jobq_mp_read_int(&r, &v), JOBQ_OK);
            assert_true(v == -(int64_t) i);
        }
        assert_ptr_equal(r.p, r.end);
    }
    jobq_mp_writer_fini(&w);
}

static void
test_mp_bool_nil_double_and_bin_round_trip(void **state)
{
    (void) state;
    static const uint8_t bin[] = {0x00, 0xff, 0xc1, 0x80};
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 256);
    jobq_mp_write_bool(&w, true);
    jobq_mp_write_bool(&w, false);
    jobq_mp_write_nil(&w);
    jobq_mp_write_double(&w, -0.125);
    jobq_mp_write_double(&w, 1e300);
    jobq_mp_write_bin(&w, bin, sizeof bin);
    jobq_mp_write_bin(&w, NULL, 0);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, w.data, w.len);
    bool b = false;
    double d = 0;
    jobq_bytes_t span;
    assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_BOOL);
    assert_int_equal(jobq_mp_read_bool(&r, &b), JOBQ_OK);
    assert_true(b);
    assert_int_equal(jobq_mp_read_bool(&r, &b), JOBQ_OK);
    assert_false(b);
    assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_NIL);
    assert_true(jobq_mp_read_nil(&r));
    assert_false(jobq_mp_read_nil(&r));  //  a double is next, not nil
    assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_FLOAT);
    assert_int_equal(jobq_mp_read_double(&r, &d), JOBQ_OK);
    assert_true(d == -0.125);
    assert_int_equal(jobq_mp_read_double(&r, &d), JOBQ_OK);
    assert_true(d == 1e300);
    //  bin has no reader of its own: skip gives its bytes.
    assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_BIN);
    assert_int_equal(jobq_mp_skip(&r, &span), JOBQ_OK);
    assert_int_equal(span.len, 2 + sizeof bin);
    assert_memory_equal(span.ptr, "\xc4\x04", 2);
    assert_memory_equal(span.ptr + 2, bin, sizeof bin);
    assert_int_equal(jobq_mp_skip(&r, &span), JOBQ_OK);
    assert_int_equal(span.len, 2);
    assert_ptr_equal(r.p, r.end);
    assert_int_equal(jobq_mp_peek(&r), JOBQ_MP_NONE);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_read_double_accepts_float32_and_integers(void **state)
{
    (void) state;
    static const uint8_t f32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00};  //  1.5
    static const uint8_t neg[] = {0xd0, 0x9c};                    //  -100
    static const uint8_t pos[] = {0x07};
    jobq_mp_reader_t r;
    double d;
    jobq_mp_reader_init(&r, f32, sizeof f32);
    assert_int_equal(jobq_mp_read_double(&r, &d), JOBQ_OK);
    assert_true(d == 1.5);
    jobq_mp_reader_init(&r, neg, sizeof neg);
    assert_int_equal(jobq_mp_read_double(&r, &d), JOBQ_OK);
    assert_true(d == -100.0);
    jobq_mp_reader_init(&r, pos, sizeof pos);
    assert_int_equal(jobq_mp_read_double(&r, &d), JOBQ_OK);
    assert_true(d == 7.0);
}

static void
test_mp_numbers_are_formatted_in_their_shortest_exact_form(void **state)
{
    (void) state;
    static const struct {
        double v;          //  value
        const char *text;  //  its shortest exact form
    } doubles[] = {
        {3.9, "3.9"},
        {4.0, "4"},
        {-0.5, "-0.5"},
        {0.0, "0"},
        {-0.0, "-0"},
        {0.1 + 0.2, "0.30000000000000004"},  //  17 digits
        {1.0 / 3.0, "0.3333333333333333"},   //  16 digits
        {123456789012345.0, "123456789012345"},
        {1e100, "1e+100"},
        {1e-7, "1e-07"},
        {18446744073709551616.0, "1.8446744073709552e+19"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {-DBL_MIN, "-2.2250738585072014e-308"},
        {4.9406564584124654e-324, "4.94065645841247e-324"},  //  15 suffice
        {INFINITY, "inf"},
        {-INFINITY, "-inf"},
    };
    char buf[JOBQ_MP_NUMBER_LEN];
    for (size_t i = 0; i < sizeof doubles / sizeof doubles[0]; i++) {
        const char *text = jobq_mp_format_double(doubles[i].v, buf);
        assert_ptr_equal(text, buf);
        if (strcmp(text, doubles[i].text) != 0)
            fail_msg("double %d: '%s', not '%s'", (int) i, text,
                     doubles[i].text);
        assert_true(strtod(text, NULL) == doubles[i].v);
    }
    assert_string_equal(jobq_mp_format_double(NAN, buf), "nan");
    static const struct {
        float v;           //  value
        const char *text;  //  its shortest exact form
    } floats[] = {
        {3.9f, "3.9"},
        {0.1f, "0.1"},
        {1.5f, "1.5"},
        {16777216.0f, "16777216"},
        {1.0f / 3.0f, "0.33333334"},     //  8 digits
        {0x1.40016ep+3f, "10.0001745"},  //  9 digits
        {FLT_MAX, "3.4028235e+38"},
        {FLT_TRUE_MIN, "1.4013e-45"},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        const char *text = jobq_mp_format_float(floats[i].v, buf);
        if (strcmp(text, floats[i].text) != 0)
            fail_msg("float %d: '%s', not '%s'", (int) i, text, floats[i].text);
        assert_true(strtof(text, NULL) == floats[i].v);
    }
}

static void
test_mp_reads_refuse_the_wrong_kind_and_keep_the_cursor(void **state)
{
    (void) state;
    static const uint8_t one[] = {0x01};
    static const uint8_t str[] = {0xa1, 'a'};
    static const uint8_t arr[] = {0x91, 0x01};
    static const uint8_t nil[] = {0xc0};
    static const uint8_t cut_str[] = {0xa5, 'a', 'b'};
    static const uint8_t cut_u16[] = {0xcd, 0x01};
    static const uint8_t cut_f64[] = {0xcb, 0x3f, 0xf8};
    jobq_mp_reader_t r;
    jobq_str_t s;
    uint32_t n;
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    jobq_mp_reader_init(&r, one, sizeof one);
    assert_int_equal(jobq_mp_read_str(&r, &s), JOBQ_EPROTO);
    assert_int_equal(jobq_mp_read_map(&r, &n), JOBQ_EPROTO);
    assert_int_equal(jobq_mp_read_array(&r, &n), JOBQ_EPROTO);
    assert_int_equal(jobq_mp_read_bool(&r, &b), JOBQ_EPROTO);
    assert_ptr_equal(r.p, one);
    jobq_mp_reader_init(&r, str, sizeof str);
    assert_int_equal(jobq_mp_read_uint(&r, &u), JOBQ_EPROTO);
    assert_int_equal(jobq_mp_read_int(&r, &i), JOBQ_EPROTO);
    assert_int_equal(jobq_mp_read_double(&r, &d), JOBQ_EPROTO);
    assert_ptr_equal(r.p, str);
    jobq_mp_reader_init(&r, arr, sizeof arr);
    assert_int_equal(jobq_mp_read_map(&r, &n), JOBQ_EPROTO);
    assert_ptr_equal(r.p, arr);
    jobq_mp_reader_init(&r, nil, sizeof nil);
    assert_int_equal(jobq_mp_read_bool(&r, &b), JOBQ_EPROTO);
    assert_ptr_equal(r.p, nil);
    jobq_mp_reader_init(&r, cut_str, sizeof cut_str);
    assert_int_equal(jobq_mp_read_str(&r, &s), JOBQ_EPROTO);
    assert_ptr_equal(r.p, cut_str);
    jobq_mp_reader_init(&r, cut_u16, sizeof cut_u16);
    assert_int_equal(jobq_mp_read_uint(&r, &u), JOBQ_EPROTO);
    assert_ptr_equal(r.p, cut_u16);
    jobq_mp_reader_init(&r, cut_f64, sizeof cut_f64);
    assert_int_equal(jobq_mp_read_double(&r, &d), JOBQ_EPROTO);
    assert_ptr_equal(r.p, cut_f64);
    //  At the end of the buffer every read fails.
    jobq_mp_reader_init(&r, one, 0);
    assert_int_equal(jobq_mp_read_uint(&r, &u), JOBQ_EPROTO);
    assert_int_equal(jobq_mp_read_str(&r, &s), JOBQ_EPROTO);
    assert_int_equal(jobq_mp_skip(&r, NULL), JOBQ_EPROTO);
    assert_false(jobq_mp_read_nil(&r));
}

static void
test_mp_peek_names_every_kind(void **state)
{
    (void) state;
    static const struct {
        uint8_t b[5];         //  a value or its start
        size_t n;             //  bytes
        jobq_mp_type_t want;  //  kind
    } kinds[] = {
        {{0xc0}, 1, JOBQ_MP_NIL},
        {{0xc3}, 1, JOBQ_MP_BOOL},
        {{0x05}, 1, JOBQ_MP_UINT},
        {{0xcc, 0x80}, 2, JOBQ_MP_UINT},
        {{0xff}, 1, JOBQ_MP_INT},
        {{0xd0, 0x80}, 2, JOBQ_MP_INT},
        {{0xca, 0x3f, 0xc0, 0, 0}, 5, JOBQ_MP_FLOAT},
        {{0xa1, 'a'}, 2, JOBQ_MP_STR},
        {{0xc4, 0x00}, 2, JOBQ_MP_BIN},
        {{0x90}, 1, JOBQ_MP_ARRAY},
        {{0x80}, 1, JOBQ_MP_MAP},
        {{0xd4, 1, 2}, 3, JOBQ_MP_EXT},
        {{0xc1}, 1, JOBQ_MP_NONE},
        {{0xdc, 0x00}, 2, JOBQ_MP_NONE},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, kinds[i].b, kinds[i].n);
        if (jobq_mp_peek(&r) != kinds[i].want)
            fail_msg("0x%02x: kind %d, expected %d", kinds[i].b[0],
                     (int) jobq_mp_peek(&r), (int) kinds[i].want);
        assert_ptr_equal(r.p, kinds[i].b);
    }
}

//  --- skip and map_find
//  -------------------------------------------------------

static void
test_mp_skip_returns_the_exact_span_of_each_value(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    s_write_everything(&w);
    size_t first = w.len;
    jobq_mp_write_array(&w, 2);
    jobq_mp_write_cstr(&w, "tail");
    jobq_mp_write_uint(&w, 65536);
    size_t second = w.len - first;
    jobq_mp_write_nil(&w);
    jobq_mp_reader_t r;
    jobq_bytes_t span;
    jobq_mp_reader_init(&r, w.data, w.len);
    assert_int_equal(jobq_mp_skip(&r, &span), JOBQ_OK);
    assert_ptr_equal(span.ptr, w.data);
    assert_int_equal(span.len, first);
    assert_int_equal(jobq_mp_skip(&r, &span), JOBQ_OK);
    assert_ptr_equal(span.ptr, w.data + first);
    assert_int_equal(span.len, second);  //  1 + 5 + 5
    assert_int_equal(second, 11);
    assert_int_equal(jobq_mp_skip(&r, NULL), JOBQ_OK);
    assert_ptr_equal(r.p, r.end);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_skip_refuses_truncation_and_keeps_the_cursor(void **state)
{
    (void) state;
    static const uint8_t cut[] = {0x82, 0xa1, 'a', 0x01, 0xa1};
    static const uint8_t lie[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    static const uint8_t reserved[] = {0x91, 0xc1};
    const uint8_t *bad[] = {cut, lie, reserved};
    size_t lens[] = {sizeof cut, sizeof lie, sizeof reserved};
    for (size_t i = 0; i < 3; i++) {
        jobq_mp_reader_t r;
        jobq_bytes_t span = {NULL, 99};
        jobq_mp_reader_init(&r, bad[i], lens[i]);
        assert_int_equal(jobq_mp_skip(&r, &span), JOBQ_EPROTO);
        assert_ptr_equal(r.p, bad[i]);
        assert_int_equal(span.len, 99);
    }
}

//  {"a": 1, "ab": {"x": [1, 2]}, 3: "int key", "c": "last"}: the int key
//  is skipped over, not matched.
static const uint8_t s_find_map[] = {
    0x84, 0xa1, 'a',  0x01, 0xa2, 'a', 'b', 0x81, 0xa1, 'x',
    0x92, 0x01, 0x02, 0x03, 0xa7, 'i', 'n', 't',  ' ',  'k',
    'e',  'y',  0xa1, 'c',  0xa4, 'l', 'a', 's',  't'};

static void
test_mp_map_find_returns_the_encoded_value_of_a_key(void **state)
{
    (void) state;
    jobq_bytes_t map = {s_find_map, sizeof s_find_map}, val;
    assert_int_equal(jobq_mp_map_find(map, "ab", &val), JOBQ_OK);
    assert_ptr_equal(val.ptr, s_find_map + 7);
    assert_int_equal(val.len, 6);
    assert_memory_equal(val.ptr, "\x81\xa1x\x92\x01\x02", 6);
    assert_int_equal(jobq_mp_map_find(map, "a", &val), JOBQ_OK);
    assert_int_equal(val.len, 1);
    assert_int_equal(val.ptr[0], 0x01);
    assert_int_equal(jobq_mp_map_find(map, "c", &val), JOBQ_OK);
    assert_int_equal(val.len, 5);
    assert_memory_equal(val.ptr, "\xa4last", 5);
}

static void
test_mp_map_find_reports_a_missing_key_as_not_found(void **state)
{
    (void) state;
    jobq_bytes_t map = {s_find_map, sizeof s_find_map}, val;
    static const uint8_t empty[] = {0x80};
    assert_int_equal(jobq_mp_map_find(map, "nope", &val), JOBQ_ENOTFOUND);
    assert_int_equal(jobq_mp_map_find(map, "x", &val), JOBQ_ENOTFOUND);
    assert_int_equal(jobq_mp_map_find(map, "", &val), JOBQ_ENOTFOUND);
    assert_int_equal(jobq_mp_map_find(map, "abc", &val), JOBQ_ENOTFOUND);
    map = (jobq_bytes_t){empty, sizeof empty};
    assert_int_equal(jobq_mp_map_find(map, "a", &val), JOBQ_ENOTFOUND);
}

static void
test_mp_map_find_refuses_what_is_not_a_map(void **state)
{
    (void) state;
    static const uint8_t array[] = {0x92, 0xa1, 'a', 0x01};
    static const uint8_t str[] = {0xa1, 'a'};
    static const uint8_t cut[] = {0x82, 0xa1, 'a', 0x01};
    jobq_bytes_t val;
    assert_int_equal(
        jobq_mp_map_find((jobq_bytes_t){array, sizeof array}, "a", &val),
        JOBQ_EPROTO);
    assert_int_equal(
        jobq_mp_map_find((jobq_bytes_t){str, sizeof str}, "a", &val),
        JOBQ_EPROTO);
    assert_int_equal(jobq_mp_map_find((jobq_bytes_t){str, 0}, "a", &val),
                     JOBQ_EPROTO);
    //  A map that ends before its entries do.
    assert_int_equal(
        jobq_mp_map_find((jobq_bytes_t){cut, sizeof cut}, "b", &val),
        JOBQ_EPROTO);
}

//  --- the writer's cap
//  --------------------------------------------------------

static void
test_mp_writer_past_its_cap_fails_with_etoobig_and_stays_failed(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 8);
    jobq_mp_write_cstr(&w, "1234567");  //  8 bytes: exactly the cap
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    assert_int_equal(w.len, 8);
    jobq_mp_write_uint(&w, 1000);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_ETOOBIG);
    assert_int_equal(w.len, 8);
    assert_true(w.cap <= w.max);
    jobq_mp_writer_fini(&w);
    //  Once failed, even a write that would fit is refused.
    jobq_mp_writer_init(&w, 8);
    jobq_mp_write_str(&w, "123456789", 9);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_ETOOBIG);
    size_t len = w.len;
    assert_true(len <= 8);
    jobq_mp_write_nil(&w);
    jobq_mp_write_bool(&w, true);
    jobq_mp_write_map(&w, 0);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_ETOOBIG);
    assert_int_equal(w.len, len);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_writer_with_a_zero_cap_refuses_everything(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 0);
    jobq_mp_write_nil(&w);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_ETOOBIG);
    assert_int_equal(w.len, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_writer_refuses_a_length_above_four_gib(void **state)
{
    (void) state;
    //  The data is never read: the length alone is refused.
    static const char tiny[1];
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1u << 20);
    jobq_mp_write_bin(&w, tiny, (size_t) UINT32_MAX + 1);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_ETOOBIG);
    assert_int_equal(w.len, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_mp_writer_reset_clears_the_error_and_the_bytes(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4);
    jobq_mp_write_cstr(&w, "too long");
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_ETOOBIG);
    jobq_mp_writer_reset(&w);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    assert_int_equal(w.len, 0);
    jobq_mp_write_cstr(&w, "abc");
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    assert_int_equal(w.len, 4);
    assert_memory_equal(w.data, "\xa3\x61\x62\x63", 4);
    jobq_mp_writer_fini(&w);
    assert_null(w.data);
    assert_int_equal(w.len, 0);
}

static void
test_mp_writer_grows_across_many_small_writes(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 100000);
    for (int i = 0; i < 100000; i++)
        jobq_mp_write_nil(&w);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    assert_int_equal(w.len, 100000);
    assert_true(w.cap <= w.max);
    for (size_t i = 0; i < w.len; i++)
        if (w.data[i] != 0xc0)
            fail_msg("byte %zu is 0x%02x", i, w.data[i]);
    jobq_mp_write_nil(&w);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_ETOOBIG);
    jobq_mp_writer_fini(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        //  the validator: what it accepts
        cmocka_unit_test(
            test_mp_check_accepts_a_message_with_every_kind_of_value),
        cmocka_unit_test(test_mp_check_accepts_a_single_scalar),
        cmocka_unit_test(test_mp_check_tolerates_a_null_why),
        //  the validator: malformed input
        cmocka_unit_test(test_mp_check_rejects_empty_input),
        cmocka_unit_test(
            test_mp_check_rejects_every_truncation_of_a_valid_message),
        cmocka_unit_test(
            test_mp_check_rejects_every_truncation_of_each_scalar_form),
        cmocka_unit_test(test_mp_check_rejects_the_reserved_byte_0xc1_anywhere),
        cmocka_unit_test(test_mp_check_rejects_trailing_bytes),
        cmocka_unit_test(test_mp_check_rejects_an_int_map_key),
        cmocka_unit_test(
            test_mp_check_rejects_a_container_as_map_key_at_any_depth),
        cmocka_unit_test(test_mp_check_rejects_a_length_above_the_bytes_left),
        cmocka_unit_test(test_mp_check_never_reads_past_random_input),
        //  the validator: limits
        cmocka_unit_test(test_mp_check_accepts_sixteen_nested_arrays),
        cmocka_unit_test(test_mp_check_accepts_sixteen_nested_maps),
        cmocka_unit_test(test_mp_check_rejects_seventeen_nested_containers),
        cmocka_unit_test(test_mp_check_rejects_thirty_three_nested_arrays),
        cmocka_unit_test(
            test_mp_check_depth_limit_counts_the_outermost_container_as_one),
        cmocka_unit_test(test_mp_check_depth_counts_siblings_once),
        cmocka_unit_test(test_mp_check_limits_entries_in_one_array),
        cmocka_unit_test(test_mp_check_limits_entries_in_one_map),
        cmocka_unit_test(test_mp_check_limits_entries_in_the_whole_message),
        cmocka_unit_test(
            test_mp_check_counts_a_map_entry_once_toward_the_total),
        cmocka_unit_test(test_mp_check_rejects_a_string_longer_than_max_str),
        cmocka_unit_test(test_mp_check_rejects_bin_and_ext_longer_than_max_str),
        cmocka_unit_test(test_mp_check_accepts_an_ext_of_exactly_max_str_bytes),
        cmocka_unit_test(
            test_mp_check_rejects_a_string_above_the_protocol_limit),
        cmocka_unit_test(test_mp_check_rejects_allocation_bombs),
        cmocka_unit_test(
            test_mp_check_rejects_a_count_above_the_bytes_left_below_the_limit),
        //  the writer's bytes and round trips
        cmocka_unit_test(test_mp_writer_produces_the_hand_computed_bytes),
        cmocka_unit_test(test_mp_uint_round_trips_at_every_width_boundary),
        cmocka_unit_test(
            test_mp_negative_int_round_trips_at_every_width_boundary),
        cmocka_unit_test(
            test_mp_read_int_accepts_non_negative_values_of_any_encoding),
        cmocka_unit_test(
            test_mp_read_uint_refuses_a_negative_and_keeps_the_cursor),
        cmocka_unit_test(test_mp_read_int_refuses_a_uint_above_int64_max),
        cmocka_unit_test(test_mp_strings_round_trip_at_every_length_boundary),
        cmocka_unit_test(
            test_mp_arrays_round_trip_with_15_16_and_65536_entries),
        cmocka_unit_test(test_mp_maps_round_trip_with_15_16_and_65536_entries),
        cmocka_unit_test(test_mp_bool_nil_double_and_bin_round_trip),
        cmocka_unit_test(test_mp_read_double_accepts_float32_and_integers),
        cmocka_unit_test(
            test_mp_numbers_are_formatted_in_their_shortest_exact_form),
        cmocka_unit_test(
            test_mp_reads_refuse_the_wrong_kind_and_keep_the_cursor),
        cmocka_unit_test(test_mp_peek_names_every_kind),
        //  skip and map_find
        cmocka_unit_test(test_mp_skip_returns_the_exact_span_of_each_value),
        cmocka_unit_test(test_mp_skip_refuses_truncation_and_keeps_the_cursor),
        cmocka_unit_test(test_mp_map_find_returns_the_encoded_value_of_a_key),
        cmocka_unit_test(test_mp_map_find_reports_a_missing_key_as_not_found),
        cmocka_unit_test(test_mp_map_find_refuses_what_is_not_a_map),
        //  the writer's cap
        cmocka_unit_test(
            test_mp_writer_past_its_cap_fails_with_etoobig_and_stays_failed),
        cmocka_unit_test(test_mp_writer_with_a_zero_cap_refuses_everything),
        cmocka_unit_test(test_mp_writer_refuses_a_length_above_four_gib),
        cmocka_unit_test(test_mp_writer_reset_clears_the_error_and_the_bytes),
        cmocka_unit_test(test_mp_writer_grows_across_many_small_writes),
    };
    return cmocka_run_group_tests_name("mp", tests, NULL, NULL);
}
