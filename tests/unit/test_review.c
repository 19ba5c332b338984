/*  test_review.c: one review's text rules, its encoding, and the set of
    distinct reviews. */
#include "jobq_test.h"
#include "jobq_review.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  r encoded, as a fresh writer the caller finalises.
static jobq_mp_writer_t
s_encoded(const jobq_review_t *r)
{
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 1 << 16);
    jobq_review_write(r, &w);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    return w;
}

static void
test_review_encoding_round_trips(void **state)
{
    (void) state;
    jobq_review_t r = {.author = "A, \"b\"",
                       .date = "2024-02-03",
                       .title = NULL,
                       .body = "line\nline",
                       .rating = 8,
                       .best_rating = 10,
                       .has_rating = true};
    jobq_mp_writer_t w = s_encoded(&r);
    jobq_review_t back;
    assert_int_equal(jobq_review_read((jobq_bytes_t){w.data, w.len}, &back),
                     JOBQ_OK);
    //  Read back, it encodes to the same bytes: every field came through.
    jobq_mp_writer_t again = s_encoded(&back);
    assert_int_equal(again.len, w.len);
    assert_memory_equal(again.data, w.data, w.len);
    assert_null(back.title);
    assert_true(jobq_review_stars(&back) == 4.0);
    jobq_review_clear(&back);
    jobq_mp_writer_fini(&again);
    //  Integer ratings, no best (5), unknown keys skipped; not a map.
    jobq_mp_writer_reset(&w);
    jobq_mp_write_map(&w, 3);
    jobq_mp_write_cstr(&w, "rating");
    jobq_mp_write_uint(&w, 3);
    jobq_mp_write_cstr(&w, "other");
    jobq_mp_write_array(&w, 1);
    jobq_mp_write_nil(&w);
    jobq_mp_write_cstr(&w, "author");
    jobq_mp_write_cstr(&w, "Zed");
    assert_int_equal(jobq_review_read((jobq_bytes_t){w.data, w.len}, &back),
                     JOBQ_OK);
    assert_string_equal(back.author, "Zed");
    assert_true(back.has_rating && back.rating == 3 && back.best_rating == 5);
    jobq_review_clear(&back);
    //  A rating above its best is dropped, the review kept.
    jobq_mp_writer_reset(&w);
    jobq_mp_write_map(&w, 2);
    jobq_mp_write_cstr(&w, "rating");
    jobq_mp_write_double(&w, 7.5);
    jobq_mp_write_cstr(&w, "best_rating");
    jobq_mp_write_uint(&w, 5);
    assert_int_equal(jobq_review_read((jobq_bytes_t){w.data, w.len}, &back),
                     JOBQ_OK);
    assert_false(back.has_rating);
    jobq_review_clear(&back);
    static const uint8_t arr[] = {0x91, 0x01};
    assert_int_equal(jobq_review_read((jobq_bytes_t){arr, 2}, &back),
                     JOBQ_EINVAL);
    jobq_mp_writer_fini(&w);
}

static void
test_review_text_tidies_white_space_by_mode(void **state)
{
    (void) state;
    static const char in[] = "  a \t b\n\n c\xc2\xa0 ";
    int err = JOBQ_OK;
    char *line = jobq_review_text(in, strlen(in), 100, JOBQ_TEXT_LINE, &err);
    char *flow = jobq_review_text(in, strlen(in), 100, JOBQ_TEXT_FLOW, &err);
    char *keep = jobq_review_text(in, strlen(in), 100, JOBQ_TEXT_KEEP, &err);
    assert_string_equal(line, "a b c");
    assert_string_equal(flow, "a b\nc");
    assert_string_equal(keep, "a \t b\n\n c");
    free(line);
    free(flow);
    free(keep);
    //  Cut on a character boundary: "é" is two bytes, never split.
    char *cut = jobq_review_text("ab\xc3\xa9", 4, 3, JOBQ_TEXT_LINE, &err);
    assert_string_equal(cut, "ab");
    free(cut);
    //  Empty, blank or holding a NUL byte: nothing.
    assert_null(jobq_review_text("  ", 2, 10, JOBQ_TEXT_LINE, &err));
    assert_null(jobq_review_text("a\0b", 3, 10, JOBQ_TEXT_KEEP, &err));
    assert_int_equal(err, JOBQ_OK);
    assert_true(jobq_review_rating_ok(5, 5));
    assert_false(jobq_review_rating_ok(-1, 5));
    assert_false(jobq_review_rating_ok(1, 0));
    assert_false(jobq_review_rating_ok(1, 1001));
}

static void
test_review_set_keeps_distinct_reviews_within_its_bytes(void **state)
{
    (void) state;
    jobq_review_set_t s;
    jobq_review_set_init(&s, 2000);
    jobq_review_t a = {
        .author = "a", .rating = 4, .best_rating = 5, .has_rating = true};
    jobq_review_t b = a;
    b.author = "b";
    jobq_review_t c = a;
    c.rating = 3;  //  same author, other rating: distinct
    assert_int_equal(jobq_review_set_add(&s, &a), JOBQ_OK);
    assert_int_equal(jobq_review_set_add(&s, &b), JOBQ_OK);
    assert_int_equal(jobq_review_set_add(&s, &a), JOBQ_EEXIST);
    assert_int_equal(jobq_review_set_add(&s, &c), JOBQ_OK);
    assert_int_equal(s.count, 3);
    //  Many more: the table grows; then the byte cap stops them.
    char name[32];
    int added = 0, full = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "author %d", i);
        jobq_review_t r = {.author = name};
        int rc = jobq_review_set_add(&s, &r);
        if (rc == JOBQ_OK)
            added++;
        else if (rc == JOBQ_ETOOBIG)
            full++;
    }
    assert_true(added > 10 && full > 0 && added + full == 200);
    assert_true(s.buf.len <= 2000);
    assert_int_equal(jobq_review_set_bytes(&s, s.count), s.buf.len);
    //  Still finds duplicates after growing.
    assert_int_equal(jobq_review_set_add(&s, &b), JOBQ_EEXIST);
    //  The first review reads back.
    jobq_review_t back;
    assert_int_equal(
        jobq_review_read(
            (jobq_bytes_t){s.buf.data, jobq_review_set_bytes(&s, 1)}, &back),
        JOBQ_OK);
    assert_string_equal(back.author, "a");
    jobq_review_clear(&back);
    jobq_review_set_fini(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_review_encoding_round_trips),
        cmocka_unit_test(test_review_text_tidies_white_space_by_mode),
        cmocka_unit_test(
            test_review_set_keeps_distinct_reviews_within_its_bytes),
    };
    return cmocka_run_group_tests_name("review", tests, NULL, NULL);
}
