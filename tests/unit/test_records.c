/*  test_records.c: finding records in an output map, columns, and writing
    them as CSV (RFC 4180 quoting), NDJSON and JSON, in memory. */
#include "jobq_test.h"
#include "jobq_records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A memory FILE and what it holds once closed.
typedef struct {
    FILE *f;     //  write here
    char *text;  //  after s_mem_done: the bytes, NUL-terminated
    size_t len;  //  their count
} s_mem_t;

static void
s_mem_open(s_mem_t *m)
{
    m->text = NULL;
    m->len = 0;
    m->f = open_memstream(&m->text, &m->len);
    assert_non_null(m->f);
}

static void
s_mem_done(s_mem_t *m)
{
    assert_int_equal(fclose(m->f), 0);
    m->f = NULL;
}

static const char *
s_csv(const char *s)
{
    static char out[256];
    s_mem_t m;
    s_mem_open(&m);
    assert_int_equal(jobq_csv_field(m.f, s, strlen(s)), JOBQ_OK);
    s_mem_done(&m);
    snprintf(out, sizeof out, "%s", m.text);
    free(m.text);
    return out;
}

static void
test_records_csv_quotes_only_what_needs_quoting(void **state)
{
    (void) state;
    assert_string_equal(s_csv("plain text"), "plain text");
    assert_string_equal(s_csv(""), "");
    assert_string_equal(s_csv("a,b"), "\"a,b\"");
    assert_string_equal(s_csv("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_string_equal(s_csv("\""), "\"\"\"\"");
    assert_string_equal(s_csv("two\nlines"), "\"two\nlines\"");
    assert_string_equal(s_csv("cr\rhere"), "\"cr\rhere\"");
    assert_string_equal(s_csv("semi;colon 'single'"), "semi;colon 'single'");
}

//  {"count": 2, "pages": ["a"], "reviews": [{...}, {...}]}
static void
s_output(jobq_mp_writer_t *w)
{
    jobq_mp_writer_init(w, 4096);
    jobq_mp_write_map(w, 3);
    jobq_mp_write_cstr(w, "count");
    jobq_mp_write_uint(w, 2);
    jobq_mp_write_cstr(w, "pages");
    jobq_mp_write_array(w, 1);
    jobq_mp_write_cstr(w, "a");
    jobq_mp_write_cstr(w, "reviews");
    jobq_mp_write_array(w, 2);
    jobq_mp_write_map(w, 3);
    jobq_mp_write_cstr(w, "author");
    jobq_mp_write_cstr(w, "Bob \"B\", Jr.");
    jobq_mp_write_cstr(w, "rating");
    jobq_mp_write_double(w, 4.5);
    jobq_mp_write_cstr(w, "body");
    jobq_mp_write_cstr(w, "line one\nline two");
    jobq_mp_write_map(w, 5);
    jobq_mp_write_cstr(w, "rating");
    jobq_mp_write_int(w, -3);
    jobq_mp_write_cstr(w, "author");
    jobq_mp_write_nil(w);
    jobq_mp_write_cstr(w, "ok");
    jobq_mp_write_bool(w, true);
    jobq_mp_write_cstr(w, "tags");
    jobq_mp_write_map(w, 1);
    jobq_mp_write_cstr(w, "k");
    jobq_mp_write_array(w, 2);
    jobq_mp_write_uint(w, 1);
    jobq_mp_write_cstr(w, "x\"y");
    jobq_mp_write_cstr(w, "raw");
    jobq_mp_write_bin(w, "\x01\xab", 2);
    assert_int_equal(jobq_mp_writer_error(w), JOBQ_OK);
}

static void
test_records_are_found_by_key_or_as_the_first_list_of_maps(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    s_output(&w);
    jobq_bytes_t out = {w.data, w.len}, list;
    uint32_t n = 0;
    char why[128];
    //  "pages" is a list of strings: skipped.
    assert_int_equal(jobq_records_find(out, NULL, &list, &n, why, sizeof why),
                     JOBQ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(
        jobq_records_find(out, "reviews", &list, &n, why, sizeof why), JOBQ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(
        jobq_records_find(out, "pages", &list, &n, why, sizeof why),
        JOBQ_EINVAL);
    assert_non_null(strstr(why, "item 0 of 'pages' is not a map"));
    assert_int_equal(
        jobq_records_find(out, "count", &list, &n, why, sizeof why),
        JOBQ_EINVAL);
    assert_int_equal(jobq_records_find(out, "nope", &list, &n, why, sizeof why),
                     JOBQ_ENOTFOUND);
    jobq_mp_writer_fini(&w);
    //  An empty list counts.
    jobq_mp_writer_init(&w, 64);
    jobq_mp_write_map(&w, 1);
    jobq_mp_write_cstr(&w, "reviews");
    jobq_mp_write_array(&w, 0);
    out = (jobq_bytes_t){w.data, w.len};
    assert_int_equal(jobq_records_find(out, NULL, &list, &n, why, sizeof why),
                     JOBQ_OK);
    assert_int_equal(n, 0);
    jobq_mp_writer_fini(&w);
}

static void
test_records_fields_come_in_first_seen_order_and_are_bounded(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    s_output(&w);
    jobq_bytes_t list;
    uint32_t n;
    char why[64];
    assert_int_equal(jobq_records_find((jobq_bytes_t){w.data, w.len}, NULL,
                                       &list, &n, why, sizeof why),
                     JOBQ_OK);
    jobq_fields_t f;
    memset(&f, 0, sizeof f);
    assert_int_equal(jobq_fields_from_records(&f, list), JOBQ_OK);
    static const char *const want[] = {"author", "rating", "body",
                                       "ok",     "tags",   "raw"};
    assert_int_equal(f.count, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(f.names[i], want[i]);
    assert_int_equal(jobq_fields_add(&f, "body", 4), JOBQ_EEXIST);
    assert_int_equal(jobq_fields_add(&f, "", 0), JOBQ_EINVAL);
    assert_int_equal(jobq_fields_add(&f, "a\0b", 3), JOBQ_EINVAL);
    char longname[200];
    memset(longname, 'x', sizeof longname);
    assert_int_equal(jobq_fields_add(&f, longname, 129), JOBQ_EINVAL);
    char name[16];
    int rc = JOBQ_OK;
    for (int i = 0; rc == JOBQ_OK; i++) {
        snprintf(name, sizeof name, "c%d", i);
        rc = jobq_fields_add(&f, name, strlen(name));
    }
    assert_int_equal(rc, JOBQ_ETOOBIG);
    assert_int_equal(f.count, JOBQ_RECORDS_MAX_FIELDS);
    jobq_fields_clear(&f);
    jobq_mp_writer_fini(&w);
}

//  Write the two records of s_output in fmt with the given columns.
static char *
s_write(jobq_format_t fmt, const char *const *cols, size_t ncols)
{
    jobq_mp_writer_t w;
    s_output(&w);
    jobq_bytes_t list;
    uint32_t n;
    char why[64];
    assert_int_equal(jobq_records_find((jobq_bytes_t){w.data, w.len}, "reviews",
                                       &list, &n, why, sizeof why),
                     JOBQ_OK);
    jobq_fields_t f;
    memset(&f, 0, sizeof f);
    for (size_t i = 0; i < ncols; i++)
        assert_int_equal(jobq_fields_add(&f, cols[i], strlen(cols[i])),
                         JOBQ_OK);
    s_mem_t m;
    s_mem_open(&m);
    assert_int_equal(jobq_records_begin(m.f, fmt, &f), JOBQ_OK);
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, list.ptr, list.len);
    jobq_mp_read_array(&r, &n);
    for (uint32_t i = 0; i < n; i++) {
        jobq_bytes_t rec;
        assert_int_equal(jobq_mp_skip(&r, &rec), JOBQ_OK);
        assert_int_equal(jobq_records_row(m.f, fmt, &f, rec, i), JOBQ_OK);
    }
    assert_int_equal(jobq_records_end(m.f, fmt, n), JOBQ_OK);
    s_mem_done(&m);
    jobq_fields_clear(&f);
    jobq_mp_writer_fini(&w);
    return m.text;
}

static void
test_records_csv_rows_follow_rfc_4180(void **state)
{
    (void) state;
    static const char *const cols[] = {"author", "rating", "body",   "ok",
                                       "tags",   "raw",    "missing"};
    char *csv = s_write(JOBQ_FORMAT_CSV, cols, 7);
    assert_string_equal(
        csv, "author,rating,body,ok,tags,raw,missing\r\n"
             "\"Bob \"\"B\"\", Jr.\",4.5,\"line one\nline two\",,,,\r\n"
             ",-3,,true,\"{\"\"k\"\":[1,\"\"x\\\"\"y\"\"]}\",01ab,\r\n");
    free(csv);
}

static void
test_records_ndjson_and_json_are_one_object_per_record(void **state)
{
    (void) state;
    static const char *const cols[] = {"author", "rating", "tags", "missing"};
    char *nd = s_write(JOBQ_FORMAT_NDJSON, cols, 4);
    assert_string_equal(
        nd, "{\"author\":\"Bob \\\"B\\\", Jr.\",\"rating\":4.5,\"tags\":null,"
            "\"missing\":null}\n"
            "{\"author\":null,\"rating\":-3,\"tags\":{\"k\":[1,\"x\\\"y\"]},"
            "\"missing\":null}\n");
    free(nd);
    static const char *const one[] = {"body"};
    char *js = s_write(JOBQ_FORMAT_JSON, one, 1);
    assert_string_equal(js, "[\n{\"body\":\"line one\\nline two\"},\n"
                            "{\"body\":null}\n]\n");
    free(js);
}

static void
test_records_json_strings_are_valid_utf8(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 256);
    jobq_mp_write_map(&w, 1);
    jobq_mp_write_cstr(&w, "s");
    const char *bad = "ok \xc3\xa9 bad \xff \xc3 ctl \x01 nul";
    jobq_mp_write_str(&w, bad, strlen(bad));
    jobq_fields_t f;
    memset(&f, 0, sizeof f);
    jobq_fields_add(&f, "s", 1);
    s_mem_t m;
    s_mem_open(&m);
    assert_int_equal(jobq_records_row(m.f, JOBQ_FORMAT_NDJSON, &f,
                                      (jobq_bytes_t){w.data, w.len}, 0),
                     JOBQ_OK);
    s_mem_done(&m);
    assert_string_equal(m.text, "{\"s\":\"ok \xc3\xa9 bad \xef\xbf\xbd "
                                "\xef\xbf\xbd ctl \\u0001 nul\"}\n");
    free(m.text);
    jobq_fields_clear(&f);
    jobq_mp_writer_fini(&w);
    jobq_format_t fmt;
    assert_int_equal(jobq_format_parse("ndjson", 6, &fmt), JOBQ_OK);
    assert_int_equal(fmt, JOBQ_FORMAT_NDJSON);
    assert_int_equal(jobq_format_parse("xml", 3, &fmt), JOBQ_EINVAL);
    assert_int_equal(jobq_format_parse("csvx", 4, &fmt), JOBQ_EINVAL);
}

static void
test_records_numbers_are_written_in_their_shortest_exact_form(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 256);
    jobq_mp_write_map(&w, 4);
    jobq_mp_write_cstr(&w, "d");
    jobq_mp_write_double(&w, 3.9);
    jobq_mp_write_cstr(&w, "f");
    jobq_mp_write_raw(&w, "\xca\x40\x79\x99\x9a", 5);  //  float 32: 3.9f
    jobq_mp_write_cstr(&w, "sum");
    jobq_mp_write_double(&w, 0.1 + 0.2);
    jobq_mp_write_cstr(&w, "whole");
    jobq_mp_write_double(&w, 4.0);
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    jobq_fields_t f;
    memset(&f, 0, sizeof f);
    static const char *const cols[] = {"d", "f", "sum", "whole"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(jobq_fields_add(&f, cols[i], strlen(cols[i])),
                         JOBQ_OK);
    static const char *const want[] = {
        "3.9,3.9,0.30000000000000004,4\r\n",
        "{\"d\":3.9,\"f\":3.9,\"sum\":0.30000000000000004,\"whole\":4}\n"};
    static const jobq_format_t fmts[] = {JOBQ_FORMAT_CSV, JOBQ_FORMAT_NDJSON};
    for (size_t i = 0; i < 2; i++) {
        s_mem_t m;
        s_mem_open(&m);
        assert_int_equal(jobq_records_row(m.f, fmts[i], &f,
                                          (jobq_bytes_t){w.data, w.len}, 0),
                         JOBQ_OK);
        s_mem_done(&m);
        assert_string_equal(m.text, want[i]);
        free(m.text);
    }
    jobq_fields_clear(&f);
    jobq_mp_writer_fini(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_csv_quotes_only_what_needs_quoting),
        cmocka_unit_test(
            test_records_are_found_by_key_or_as_the_first_list_of_maps),
        cmocka_unit_test(
            test_records_fields_come_in_first_seen_order_and_are_bounded),
        cmocka_unit_test(test_records_csv_rows_follow_rfc_4180),
        cmocka_unit_test(
            test_records_ndjson_and_json_are_one_object_per_record),
        cmocka_unit_test(test_records_json_strings_are_valid_utf8),
        cmocka_unit_test(
            test_records_numbers_are_written_in_their_shortest_exact_form),
    };
    return cmocka_run_group_tests_name("records", tests, NULL, NULL);
}
