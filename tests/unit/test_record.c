/*  test_record.c: the stored job record: round trip, and that no flipped
    bit or cut is ever trusted. */
#include "jobq_test.h"
#include "jobq_record.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static jobq_str_t
S(const char *s)
{
    return (jobq_str_t){s, strlen(s)};
}

static const uint8_t s_bin[] = {0x82, 0xa1, 'a',  0x00, 0xa1,
                                'b',  0xc4, 0x02, 0x00, 0xff};

static jobq_jobdata_t
s_full(void)
{
    jobq_jobdata_t j;
    memset(&j, 0, sizeof j);
    j.id = 0x01a222eb783e0042ull;
    j.type = S("scrape_reviews");
    j.shop = S("shop-9");
    j.message = S("page 3 of 10");
    j.error = S("");
    j.key = S("order-17");
    j.worker = S("w-host-1");
    j.input = (jobq_bytes_t){s_bin, sizeof s_bin};
    j.output = (jobq_bytes_t){s_bin, 3};
    j.errors = (jobq_bytes_t){(const uint8_t *) "\x90", 1};
    j.status = JOBQ_RUNNING;
    j.queue = JOBQ_QUEUE_NONE;
    j.progress = 30;
    j.attempts = 2;
    j.max_attempts = 5;
    j.version = 17;
    j.priority = -1000;
    j.run_at = 1795881600000ull;
    j.timeout_ms = 60000;
    j.created_at = 1795881600000ull;
    j.updated_at = 1795881601000ull;
    j.started_at = 1795881600500ull;
    j.completed_at = 0;
    j.lease_until = 1795881616000ull;
    j.seq = 987654321;
    return j;
}

static uint8_t *
s_encode(const jobq_jobdata_t *j, size_t *len)
{
    *len = jobq_record_size(j);
    uint8_t *b = malloc(*len);
    assert_int_equal(jobq_record_encode(j, b), *len);
    return b;
}

static void
test_record_round_trips_every_field(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    assert_int_equal(jobq_record_decode(b, len, &d), JOBQ_OK);
    assert_true(d.id == j.id);
    assert_int_equal(d.status, j.status);
    assert_int_equal(d.queue, j.queue);
    assert_int_equal(d.progress, j.progress);
    assert_int_equal(d.attempts, j.attempts);
    assert_int_equal(d.max_attempts, j.max_attempts);
    assert_int_equal(d.version, j.version);
    assert_int_equal(d.priority, -1000);
    assert_true(d.run_at == j.run_at && d.timeout_ms == j.timeout_ms);
    assert_true(d.created_at == j.created_at && d.updated_at == j.updated_at);
    assert_true(d.started_at == j.started_at && d.completed_at == 0);
    assert_true(d.lease_until == j.lease_until && d.seq == j.seq);
    assert_int_equal(d.type.len, j.type.len);
    assert_memory_equal(d.type.ptr, "scrape_reviews", d.type.len);
    assert_memory_equal(d.worker.ptr, "w-host-1", d.worker.len);
    assert_int_equal(d.error.len, 0);
    assert_int_equal(d.input.len, sizeof s_bin);
    assert_memory_equal(d.input.ptr, s_bin, sizeof s_bin);
    assert_int_equal(d.output.len, 3);
    free(b);
}

static void
test_record_any_flipped_bit_is_detected(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t) (1u << bit);
            int rc = jobq_record_decode(b, len, &d);
            if (i == 0)
                assert_true(rc == JOBQ_EVERSION || rc == JOBQ_ECORRUPT);
            else
                assert_int_equal(rc, JOBQ_ECORRUPT);
            b[i] ^= (uint8_t) (1u << bit);
        }
    }
    assert_int_equal(jobq_record_decode(b, len, &d), JOBQ_OK);
    free(b);
}

static void
test_record_any_truncation_is_detected(void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    for (size_t n = 0; n < len; n++)
        assert_int_equal(jobq_record_decode(b, n, &d), JOBQ_ECORRUPT);
    free(b);
}

static void
s_recrc(uint8_t *b, size_t len)
{
    uLong c = crc32(0L, b, (uInt) (len - 4));
    for (int i = 0; i < 4; i++)
        b[len - 4 + i] = (uint8_t) (c >> (8 * i));
}

static void
test_record_bad_lengths_and_versions_are_refused_even_with_a_good_crc(
    void **state)
{
    (void) state;
    jobq_jobdata_t j = s_full(), d;
    size_t len;
    uint8_t *b = s_encode(&j, &len);
    //  The first variable field's length (type) at offset 92: too long.
    b[92] = 0xff;
    b[93] = 0xff;
    s_recrc(b, len);
    assert_int_equal(jobq_record_decode(b, len, &d), JOBQ_ECORRUPT);
    free(b);
    b = s_encode(&j, &len);
    b[1] = 9;  //  status out of range
    s_recrc(b, len);
    assert_int_equal(jobq_record_decode(b, len, &d), JOBQ_ECORRUPT);
    free(b);
    b = s_encode(&j, &len);
    b[0] = 2;  //  a record from a future version
    s_recrc(b, len);
    assert_int_equal(jobq_record_decode(b, len, &d), JOBQ_EVERSION);
    free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trips_every_field),
        cmocka_unit_test(test_record_any_flipped_bit_is_detected),
        cmocka_unit_test(test_record_any_truncation_is_detected),
        cmocka_unit_test(
            test_record_bad_lengths_and_versions_are_refused_even_with_a_good_crc),
    };
    return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
