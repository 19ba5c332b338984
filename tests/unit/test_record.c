/*  test_record.c: the stored job record (docs/STORAGE.md): every field
    round trips, the bytes follow the documented layout, and no flipped bit,
    replaced byte, cut or lying length is ever trusted. Every decode runs on
    a heap copy of exactly the bytes given, so AddressSanitizer sees any
    read past the end. */
#include "jobq_test.h"
#include "jobq_record.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define S_FIXED   96  //  bytes before the first length field
#define S_NVAR    9   //  length-prefixed fields
#define S_MINIMUM (S_FIXED + 4 * S_NVAR + 4)

//  --- helpers ---------------------------------------------------------------

static jobq_str_t
S(const char *s)
{
    return (jobq_str_t){s, strlen(s)};
}

//  A msgpack map with NUL and 0xff bytes in it: {"a": "\0", "b": bin}.
static const uint8_t s_bin[] = {0x82, 0xa1, 'a',  0xa1, 0x00, 0xa1,
                                'b',  0xc4, 0x02, 0x00, 0xff};

static jobq_jobdata_t
s_full(void)
{
    jobq_jobdata_t j;
    memset(&j, 0, sizeof j);
    j.id = 0x01a222eb783e0042ull;
    j.type = S("scrape_reviews");
    j.shop = S("Shop:9");
    j.message = S("page 3 of 10");
    j.error = S("");  //  an empty string, not absent
    j.key = S("order-17");
    j.worker = S("w-host-1");
    j.input = (jobq_bytes_t){s_bin, sizeof s_bin};
    j.output = (jobq_bytes_t){s_bin, 3};
    j.errors = (jobq_bytes_t){(const uint8_t *) "\x90", 1};
    j.status = JOBQ_RUNNING;
    j.queue = JOBQ_QUEUE_READY;
    j.progress = 30;
    j.attempts = 2;
    j.max_attempts = 5;
    j.budget = 3;
    j.version = 17;
    j.priority = -1000;
    j.run_at = 1795881600000ull;
    j.timeout_ms = 60000;
    j.created_at = 1795881600001ull;
    j.updated_at = 1795881601000ull;
    j.started_at = 1795881600500ull;
    j.completed_at = 0;
    j.lease_until = 1795881616000ull;
    j.seq = 987654321;
    return j;
}

//  Encode j into a fresh buffer of exactly its size.
static uint8_t *
s_encode(const jobq_jobdata_t *j, size_t *len)
{
    *len = jobq_record_size(j);
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    assert_int_equal(jobq_record_encode(j, b), *len);
    return b;
}

//  Decode a heap copy of exactly b[0..n).
static int
s_decode(const uint8_t *b, size_t n, jobq_jobdata_t *d)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, b, n);
    int rc = jobq_record_decode(copy, n, d);
    if (rc == JOBQ_OK) {
        //  Every view must lie inside the buffer it came from.
        const jobq_str_t *strs[6] = {&d->type,  &d->shop, &d->message,
                                     &d->error, &d->key,  &d->worker};
        const jobq_bytes_t *spans[3] = {&d->input, &d->output, &d->errors};
        for (int i = 0; i < 6; i++)
            assert_true((const uint8_t *) strs[i]->ptr >= copy &&
                        (const uint8_t *) strs[i]->ptr + strs[i]->len <=
                            copy + n);
        for (int i = 0; i < 3; i++)
            assert_true(spans[i]->ptr >= copy &&
                        spans[i]->ptr + spans[i]->len <= copy + n);
    }
    free(copy);
    return rc;
}

static uint64_t
s_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t) p[i] << (8 * i);
    return v;
}

static void
s_put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}

//  Recompute the CRC-32 (zlib) of all but the last 4 bytes, little-endian,
//  as a writer that meant to store these bytes would.
static void
s_recrc(uint8_t *b, size_t len)
{
    uLong c = crc32(0L, b, (uInt) (len - 4));
    s_put_le(b + len - 4, c, 4);
}

//  Offsets of the nine length fields of the record b of len bytes.
static void
s_length_offsets(const uint8_t *b, size_t len, size_t off[S_NVAR])
{
    size_t p = S_FIXED;
    for (int i = 0; i < S_NVAR; i++) {
        off[i] = p;
        p += 4 + (size_t) s_le(b + p, 4);
    }
    assert_int_equal(p, len - 4);
}

static bool
s_str_is(jobq_str_t a, jobq_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool
s_bytes_are(jobq_bytes_t a, jobq_bytes_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void
s_assert_same(const jobq_jobdata_t *d, const jobq_jobdata_t *j)
{
    assert_true(d->id == j->id);
    assert_int_equal(d->status, j->status);
    assert_int_equal(d->queue, j->queue);
    assert_int_equal(d->progress, j->progress);
    assert_int_equal(d->attempts, j->attempts);
    assert_int_equal(d->max_attempts, j->max_attempts);
    assert_int_equal(d->budget, j->budget);
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
    assert_true(s_str_is(d->type, j->type));
    assert_true(s_str_is(d->shop, j->shop));
    assert_true(s_str_is(d->message, j->message));
    assert_true(s_str_is(d->error, j->error));
    assert_true(s_str_is(d->key, j->key));
    assert_true(s_str_is(d->worker, j->worker));
    assert_true(s_bytes_are(d->input, j->input));
    assert_true(s_bytes_are(d->output, j->output));
    assert_true(s_bytes_are(d->errors, j->errors));
}

//  A deterministic generator (xorshift64).
static uint64_t
s_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

//  --- round trips
//  -------------------------------------------------------------

static void
test_record_round_trips_every_field(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    assert_int_equal(jobq_record_decode(b, len, &d), JOBQ_OK);
    s_assert_same(&d, &j);
    assert_int_equal(d.priority, -1000);
    assert_int_equal(d.error.len, 0);
    assert_memory_equal(d.input.ptr, s_bin, sizeof s_bin);
    //  Views borrow from the record: type is the first variable field.
    assert_ptr_equal(d.type.ptr, (const char *) b + S_FIXED + 4);
    assert_int_equal(s_decode(b, len, &d), JOBQ_OK);
    free(b);
}

static void
test_record_round_trips_extreme_values(void **state)
{
    (void) state;
    jobq_jobdata_t j, d;
    memset(&j, 0, sizeof j);
    j.id = UINT64_MAX;
    j.status = JOBQ_CANCELLED;
    j.queue = JOBQ_QUEUE_DELAYED;
    j.progress = 100;
    j.attempts = UINT32_MAX;
    j.max_attempts = UINT32_MAX;
    j.version = UINT32_MAX;
    j.priority = INT32_MIN;
    j.run_at = UINT64_MAX;
    j.timeout_ms = UINT64_MAX;
    j.created_at = UINT64_MAX;
    j.updated_at = UINT64_MAX;
    j.started_at = UINT64_MAX;
    j.completed_at = UINT64_MAX;
    j.lease_until = UINT64_MAX;
    j.seq = UINT64_MAX;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    assert_int_equal(len, S_MINIMUM);  //  every variable field empty
    assert_int_equal(s_decode(b, len, &d), JOBQ_OK);
    s_assert_same(&d, &j);
    j.priority = INT32_MAX;
    j.status = JOBQ_PENDING;
    j.queue = JOBQ_QUEUE_NONE;
    j.progress = 0;
    free(b);
    b = s_encode(&j, &len);
    assert_int_equal(s_decode(b, len, &d), JOBQ_OK);
    s_assert_same(&d, &j);
    free(b);
}

static void
test_record_round_trips_every_status_and_queue(void **state)
{
    (void) state;
    for (int st = 0; st < JOBQ_STATUS_COUNT_; st++) {
        for (int q = JOBQ_QUEUE_NONE; q <= JOBQ_QUEUE_DELAYED; q++) {
            jobq_jobdata_t j = s_full(), d;
            j.status = st;
            j.queue = q;
            size_t len;
            uint8_t *b = s_encode(&j, &len);
            assert_int_equal(s_decode(b, len, &d), JOBQ_OK);
            assert_int_equal(d.status, st);
            assert_int_equal(d.queue, q);
            free(b);
        }
    }
}

static void
test_record_round_trips_a_large_binary_input(void **state)
{
    (void) state;
    size_t n = JOBQ_MAX_OUTPUT_BYTES;
    uint8_t *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t) (i * 131 + 7);
    jobq_jobdata_t j = s_full(), d;
    j.input = (jobq_bytes_t){big, JOBQ_MAX_INPUT_BYTES};
    j.output = (jobq_bytes_t){big, n};
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    assert_int_equal(jobq_record_decode(b, len, &d), JOBQ_OK);
    s_assert_same(&d, &j);
    free(b);
    free(big);
}

static void
test_record_size_is_what_encode_writes(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full();
    size_t vars = j.type.len + j.shop.len + j.message.len + j.error.len +
                  j.key.len + j.worker.len + j.input.len + j.output.len +
                  j.errors.len;
    assert_int_equal(jobq_record_size(&j), S_MINIMUM + vars);
    //  encode writes exactly that many bytes and not one more.
    size_t len = jobq_record_size(&j);
    uint8_t *b = malloc(len + 16);
    assert_non_null(b);
    memset(b, 0xa5, len + 16);
    assert_int_equal(jobq_record_encode(&j, b), len);
    for (size_t i = len; i < len + 16; i++)
        assert_int_equal(b[i], 0xa5);
    free(b);
}

static void
test_record_follows_the_documented_layout(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full();
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    //  docs/STORAGE.md, "The job record, version 2".
    assert_int_equal(b[0], JOBQ_RECORD_VERSION);
    assert_int_equal(JOBQ_RECORD_VERSION, 2);
    assert_int_equal(b[1], j.status);
    assert_int_equal(b[2], j.queue);
    assert_int_equal(b[3], j.progress);
    assert_int_equal(s_le(b + 4, 4), j.attempts);
    assert_int_equal(s_le(b + 8, 4), j.max_attempts);
    assert_int_equal(s_le(b + 12, 4), j.version);
    assert_int_equal(s_le(b + 16, 4), (uint32_t) -1000);
    const uint64_t fixed[9] = {j.id,           j.run_at,      j.timeout_ms,
                               j.created_at,   j.updated_at,  j.started_at,
                               j.completed_at, j.lease_until, j.seq};
    for (int i = 0; i < 9; i++)
        assert_true(s_le(b + 20 + 8 * i, 8) == fixed[i]);
    assert_int_equal(s_le(b + 92, 4), j.budget);
    const void *ptr[S_NVAR] = {j.type.ptr,  j.shop.ptr,   j.message.ptr,
                               j.error.ptr, j.key.ptr,    j.worker.ptr,
                               j.input.ptr, j.output.ptr, j.errors.ptr};
    const size_t lens[S_NVAR] = {j.type.len,  j.shop.len,   j.message.len,
                                 j.error.len, j.key.len,    j.worker.len,
                                 j.input.len, j.output.len, j.errors.len};
    size_t p = S_FIXED;
    for (int i = 0; i < S_NVAR; i++) {
        assert_int_equal(s_le(b + p, 4), lens[i]);
        if (lens[i])
            assert_memory_equal(b + p + 4, ptr[i], lens[i]);
        p += 4 + lens[i];
    }
    assert_int_equal(p, len - 4);
    assert_int_equal(s_le(b + len - 4, 4), crc32(0L, b, (uInt) (len - 4)));
    free(b);
}

//  --- corruption -------------------------------------------------------------

static void
test_record_detects_every_flipped_bit(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t) (1u << bit);
            int rc = s_decode(b, len, &d);
            //  The version byte is read first: a flip there is a version
            //  this reader does not know.
            bool ok = rc == (i == 0 ? JOBQ_EVERSION : JOBQ_ECORRUPT);
            if (!ok)
                fail_msg("bit %d of byte %zu: rc=%d", bit, i, rc);
            b[i] ^= (uint8_t) (1u << bit);
        }
    }
    assert_int_equal(s_decode(b, len, &d), JOBQ_OK);
    free(b);
}

static void
test_record_detects_every_replaced_byte(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    for (size_t i = 0; i < len; i++) {
        uint8_t was = b[i];
        for (unsigned v = 0; v < 256; v++) {
            if (v == was)
                continue;
            b[i] = (uint8_t) v;
            int rc = jobq_record_decode(b, len, &d);
            //  Byte 0 set to another known version fails the CRC.
            bool ok = rc == (i == 0 && v != 1 ? JOBQ_EVERSION : JOBQ_ECORRUPT);
            if (!ok)
                fail_msg("byte %zu set to 0x%02x: rc=%d", i, v, rc);
        }
        b[i] = was;
    }
    assert_int_equal(s_decode(b, len, &d), JOBQ_OK);
    free(b);
}

static void
test_record_detects_every_truncation(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    for (size_t n = 0; n < len; n++) {
        int rc = s_decode(b, n, &d);
        if (rc != JOBQ_ECORRUPT)
            fail_msg("cut to %zu of %zu bytes: rc=%d", n, len, rc);
    }
    free(b);
}

static void
test_record_detects_every_truncation_even_with_a_good_crc(void **state)
{
    (void) state;
    //  A writer that stored a short record with its own CRC: the lengths
    //  inside no longer add up.
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    uint8_t *cut = malloc(len);
    assert_non_null(cut);
    for (size_t n = S_MINIMUM; n < len; n++) {
        memcpy(cut, b, n - 4);
        s_recrc(cut, n);
        int rc = s_decode(cut, n, &d);
        if (rc != JOBQ_ECORRUPT)
            fail_msg("cut to %zu of %zu bytes with a CRC: rc=%d", n, len, rc);
    }
    free(cut);
    free(b);
}

static void
test_record_detects_appended_bytes(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, b, len);
    longer[len] = 0;
    assert_int_equal(s_decode(longer, len + 1, &d), JOBQ_ECORRUPT);
    //  One byte of slack before the CRC, with a CRC that covers it.
    memcpy(longer, b, len - 4);
    longer[len - 4] = 0;
    s_recrc(longer, len + 1);
    assert_int_equal(s_decode(longer, len + 1, &d), JOBQ_ECORRUPT);
    free(longer);
    free(b);
}

//  The worked example of docs/STORAGE.md section 4, byte for byte.
static const uint8_t s_doc_example[] = {
    0x02, 0x01, 0x00, 0x28, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0xd6,
    0x6d, 0x79, 0x9b, 0x01, 0x7b, 0xd6, 0x6d, 0x79, 0x9b, 0x01, 0x00, 0x00,
    0xc0, 0x27, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0xd6, 0x6d, 0x79,
    0x9b, 0x01, 0x00, 0x00, 0xe3, 0xe6, 0x6d, 0x79, 0x9b, 0x01, 0x00, 0x00,
    0x80, 0xd6, 0x6d, 0x79, 0x9b, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x7b, 0x21, 0x6e, 0x79, 0x9b, 0x01, 0x00, 0x00,
    0x17, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x0e, 0x00, 0x00, 0x00, 0x73, 0x63, 0x72, 0x61, 0x70, 0x65, 0x5f, 0x72,
    0x65, 0x76, 0x69, 0x65, 0x77, 0x73, 0x07, 0x00, 0x00, 0x00, 0x73, 0x68,
    0x6f, 0x70, 0x2d, 0x34, 0x32, 0x0b, 0x00, 0x00, 0x00, 0x70, 0x61, 0x67,
    0x65, 0x20, 0x32, 0x20, 0x6f, 0x66, 0x20, 0x33, 0x00, 0x00, 0x00, 0x00,
    0x08, 0x00, 0x00, 0x00, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x2d, 0x31, 0x37,
    0x09, 0x00, 0x00, 0x00, 0x77, 0x6f, 0x72, 0x6b, 0x65, 0x72, 0x2d, 0x61,
    0x31, 0x25, 0x00, 0x00, 0x00, 0x82, 0xa3, 0x75, 0x72, 0x6c, 0xb8, 0x68,
    0x74, 0x74, 0x70, 0x73, 0x3a, 0x2f, 0x2f, 0x65, 0x78, 0x61, 0x6d, 0x70,
    0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x2f, 0x70, 0x2f, 0x31, 0x37, 0xa5,
    0x70, 0x61, 0x67, 0x65, 0x73, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x29, 0xba, 0x94, 0xe3,
};

static void
test_record_matches_the_documented_example(void **state)
{
    (void) state;
    static const uint8_t input[] = {
        0x82, 0xa3, 'u', 'r', 'l',  0xb8, 'h', 't', 't', 'p', 's', ':', '/',
        '/',  'e',  'x', 'a', 'm',  'p',  'l', 'e', '.', 'c', 'o', 'm', '/',
        'p',  '/',  '1', '7', 0xa5, 'p',  'a', 'g', 'e', 's', 0x03};
    jobq_jobdata_t j;
    memset(&j, 0, sizeof j);
    j.id = 0x019b796dd67b0000ull;
    j.type = S("scrape_reviews");
    j.shop = S("shop-42");
    j.message = S("page 2 of 3");
    j.key = S("order-17");
    j.worker = S("worker-a1");
    j.input = (jobq_bytes_t){input, sizeof input};
    j.status = JOBQ_RUNNING;
    j.queue = JOBQ_QUEUE_NONE;
    j.progress = 40;
    j.attempts = 1;
    j.max_attempts = 3;
    j.budget = 3;
    j.version = 3;
    j.priority = 5;
    j.run_at = 0x019b796dd67bull;
    j.timeout_ms = 600000;
    j.created_at = 0x019b796dd67bull;
    j.updated_at = 0x019b796de6e3ull;
    j.started_at = 0x019b796dd680ull;
    j.lease_until = 0x019b796e217bull;
    j.seq = 1047;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    assert_int_equal(len, sizeof s_doc_example);
    assert_memory_equal(b, s_doc_example, len);
    free(b);
}

//  A version 1 record (no budget) still reads, with the budget its
//  max_attempts: jobs stored before version 2 keep working.
static void
test_record_version_1_still_reads(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    //  Version 1: the same bytes without the budget at 92..95.
    memmove(b + 92, b + 96, len - 96);
    len -= 4;
    b[0] = 1;
    s_recrc(b, len);
    assert_int_equal(jobq_record_decode(b, len, &d), JOBQ_OK);
    j.budget = j.max_attempts;
    s_assert_same(&d, &j);
    //  Too short for version 1 is corrupt, not misread.
    assert_int_equal(jobq_record_decode(b, S_MINIMUM - 5, &d), JOBQ_ECORRUPT);
    free(b);
}

static void
test_record_unknown_version_is_eversion(void **state)
{
    (void) state;
    static const uint8_t versions[] = {0, 3, 0x81, 0xff};
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    for (size_t i = 0; i < sizeof versions; i++) {
        b[0] = versions[i];
        assert_int_equal(s_decode(b, len, &d), JOBQ_EVERSION);
        s_recrc(b, len);  //  a well-formed record of another version
        assert_int_equal(s_decode(b, len, &d), JOBQ_EVERSION);
    }
    b[0] = JOBQ_RECORD_VERSION;
    s_recrc(b, len);
    assert_int_equal(s_decode(b, len, &d), JOBQ_OK);
    free(b);
}

static void
test_record_length_past_the_end_is_refused_even_with_a_good_crc(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len, off[S_NVAR];
    uint8_t *b = s_encode(&j, &len);
    s_length_offsets(b, len, off);
    for (int i = 0; i < S_NVAR; i++) {
        size_t was = (size_t) s_le(b + off[i], 4);
        //  What is left for this field's bytes before the CRC.
        size_t left = len - 4 - (off[i] + 4);
        const uint64_t lies[] = {left + 1, left + 4, 0x7fffffffu, 0xffffffffu,
                                 0xfffffffcu};
        for (size_t k = 0; k < sizeof lies / sizeof lies[0]; k++) {
            s_put_le(b + off[i], lies[k], 4);
            s_recrc(b, len);
            int rc = s_decode(b, len, &d);
            if (rc != JOBQ_ECORRUPT)
                fail_msg("field %d length 0x%llx: rc=%d", i,
                         (unsigned long long) lies[k], rc);
        }
        s_put_le(b + off[i], was, 4);
    }
    s_recrc(b, len);
    assert_int_equal(s_decode(b, len, &d), JOBQ_OK);
    free(b);
}

static void
test_record_lengths_that_do_not_add_up_are_refused_with_a_good_crc(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len, off[S_NVAR];
    uint8_t *b = s_encode(&j, &len);
    s_length_offsets(b, len, off);
    for (int i = 0; i < S_NVAR; i++) {
        size_t was = (size_t) s_le(b + off[i], 4);
        //  One byte shorter or longer: the fields no longer end at the CRC
        //  (or a later length, read one byte off, points past it).
        const uint64_t wrong[] = {was + 1, was ? was - 1 : 2};
        for (size_t k = 0; k < 2; k++) {
            s_put_le(b + off[i], wrong[k], 4);
            s_recrc(b, len);
            int rc = s_decode(b, len, &d);
            if (rc != JOBQ_ECORRUPT)
                fail_msg("field %d length %llu: rc=%d", i,
                         (unsigned long long) wrong[k], rc);
        }
        s_put_le(b + off[i], was, 4);
    }
    free(b);
}

static void
test_record_status_or_queue_out_of_range_is_refused_with_a_good_crc(
    void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    static const uint8_t statuses[] = {JOBQ_STATUS_COUNT_, 9, 0x80, 0xff};
    for (size_t i = 0; i < sizeof statuses; i++) {
        b[1] = statuses[i];
        s_recrc(b, len);
        assert_int_equal(s_decode(b, len, &d), JOBQ_ECORRUPT);
    }
    b[1] = (uint8_t) j.status;
    static const uint8_t queues[] = {3, 0x7f, 0xff};
    for (size_t i = 0; i < sizeof queues; i++) {
        b[2] = queues[i];
        s_recrc(b, len);
        assert_int_equal(s_decode(b, len, &d), JOBQ_ECORRUPT);
    }
    b[2] = (uint8_t) j.queue;
    s_recrc(b, len);
    assert_int_equal(s_decode(b, len, &d), JOBQ_OK);
    free(b);
}

static void
test_record_survives_random_corruption_with_a_good_crc(void **state)
{
    (void) state;
    //  A buggy writer with a correct CRC: whatever the bytes, decode either
    //  refuses them or returns views inside the buffer (checked by
    //  s_decode), and never crashes.
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *orig = s_encode(&j, &len);
    uint8_t *b = malloc(len);
    assert_non_null(b);
    uint64_t seed = 0x2545f4914f6cdd1dull;
    size_t refused = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(b, orig, len);
        int changes = 1 + (int) (s_rand(&seed) % 4);
        for (int c = 0; c < changes; c++) {
            size_t at = 1 + (size_t) (s_rand(&seed) % (len - 5));
            b[at] = (uint8_t) s_rand(&seed);
        }
        s_recrc(b, len);
        int rc = s_decode(b, len, &d);
        assert_true(rc == JOBQ_OK || rc == JOBQ_ECORRUPT);
        if (rc == JOBQ_ECORRUPT)
            refused++;
    }
    assert_true(refused > 0);
    free(b);
    free(orig);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        //  round trips
        cmocka_unit_test(test_record_round_trips_every_field),
        cmocka_unit_test(test_record_round_trips_extreme_values),
        cmocka_unit_test(test_record_round_trips_every_status_and_queue),
        cmocka_unit_test(test_record_round_trips_a_large_binary_input),
        cmocka_unit_test(test_record_size_is_what_encode_writes),
        cmocka_unit_test(test_record_follows_the_documented_layout),
        //  corruption
        cmocka_unit_test(test_record_detects_every_flipped_bit),
        cmocka_unit_test(test_record_detects_every_replaced_byte),
        cmocka_unit_test(test_record_detects_every_truncation),
        cmocka_unit_test(
            test_record_detects_every_truncation_even_with_a_good_crc),
        cmocka_unit_test(test_record_detects_appended_bytes),
        cmocka_unit_test(test_record_version_1_still_reads),
        cmocka_unit_test(test_record_matches_the_documented_example),
        cmocka_unit_test(test_record_unknown_version_is_eversion),
        cmocka_unit_test(
            test_record_length_past_the_end_is_refused_even_with_a_good_crc),
        cmocka_unit_test(
            test_record_lengths_that_do_not_add_up_are_refused_with_a_good_crc),
        cmocka_unit_test(
            test_record_status_or_queue_out_of_range_is_refused_with_a_good_crc),
        cmocka_unit_test(
            test_record_survives_random_corruption_with_a_good_crc),
    };
    return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
