/*  test_json.c: the CLI's JSON <-> msgpack conversions, both ways: every
    msgpack kind to its JSON form, and what is refused (too deep, not one
    valid value, not an object, duplicate keys). No sockets. */
#include "jobq_test.h"
#include "jobq_json.h"

#include <stdlib.h>
#include <string.h>

//  The JSON text of the msgpack bytes b (n bytes), compact and with keys
//  sorted, in a fresh string (free it); NULL if the conversion refused b.
static char *
s_to_json(const uint8_t *b, size_t n)
{
    json_t *j = jobq_json_from_mp((jobq_bytes_t){b, n});
    if (!j)
        return NULL;
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY |
                                   JSON_REAL_PRECISION(17));
    json_decref(j);
    return text;
}

static void
test_json_every_msgpack_kind_has_its_json_form(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    jobq_mp_write_map(&w, 10);
    jobq_mp_write_cstr(&w, "nil");
    jobq_mp_write_nil(&w);
    jobq_mp_write_cstr(&w, "t");
    jobq_mp_write_bool(&w, true);
    jobq_mp_write_cstr(&w, "neg");
    jobq_mp_write_int(&w, -70000);
    jobq_mp_write_cstr(&w, "big");
    jobq_mp_write_uint(&w, UINT64_MAX);  //  above INT64_MAX: a real
    jobq_mp_write_cstr(&w, "f");
    jobq_mp_write_double(&w, 2.5);
    jobq_mp_write_cstr(&w, "s");
    jobq_mp_write_str(&w,
                      "a\xff"
                      "b",
                      3);  //  a bad byte becomes U+FFFD
    jobq_mp_write_cstr(&w, "bin");
    jobq_mp_write_bin(&w, "\x01\xab", 2);
    jobq_mp_write_cstr(&w, "arr");
    jobq_mp_write_array(&w, 2);
    jobq_mp_write_uint(&w, 1);
    jobq_mp_write_map(&w, 0);
    jobq_mp_write_cstr(&w, "ext");
    jobq_mp_write_raw(&w, "\xd4\x05\x7f", 3);  //  fixext 1, type 5
    jobq_mp_write_cstr(&w, "f32");
    jobq_mp_write_raw(&w, "\xca\x3f\xc0\x00\x00", 5);  //  float 32: 1.5
    assert_int_equal(jobq_mp_writer_error(&w), JOBQ_OK);
    char *text = s_to_json(w.data, w.len);
    assert_non_null(text);
    assert_string_equal(text,
                        "{\"arr\":[1,{}],\"big\":1.8446744073709552e19,"
                        "\"bin\":\"01ab\",\"ext\":{\"ext\":5,\"hex\":\"7f\"},"
                        "\"f\":2.5,\"f32\":1.5,\"neg\":-70000,\"nil\":null,"
                        "\"s\":\"a\xef\xbf\xbd"
                        "b\",\"t\":true}");
    free(text);
    jobq_mp_writer_fini(&w);
    //  Empty bytes: null.
    text = s_to_json(NULL, 0);
    assert_string_equal(text, "null");
    free(text);
}

static void
test_json_from_mp_refuses_what_is_not_one_bounded_value(void **state)
{
    (void) state;
    static const uint8_t trailing[] = {0x01, 0x02};
    static const uint8_t truncated[] = {0x92, 0x01};
    static const uint8_t int_key[] = {0x81, 0x01, 0x02};
    assert_null(jobq_json_from_mp((jobq_bytes_t){trailing, 2}));
    assert_null(jobq_json_from_mp((jobq_bytes_t){truncated, 2}));
    assert_null(jobq_json_from_mp((jobq_bytes_t){int_key, 3}));
    //  JOBQ_MAX_DEPTH arrays nest (the outermost counts 1); one more does
    //  not.
    uint8_t deep[JOBQ_MAX_DEPTH + 1];
    memset(deep, 0x91, sizeof deep);
    deep[JOBQ_MAX_DEPTH - 1] = 0x90;
    json_t *ok = jobq_json_from_mp((jobq_bytes_t){deep, JOBQ_MAX_DEPTH});
    assert_non_null(ok);
    json_decref(ok);
    deep[JOBQ_MAX_DEPTH - 1] = 0x91;
    deep[JOBQ_MAX_DEPTH] = 0x90;
    assert_null(jobq_json_from_mp((jobq_bytes_t){deep, sizeof deep}));
}

static void
test_json_to_mp_takes_one_bounded_object(void **state)
{
    (void) state;
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 4096);
    char err[256];
    assert_int_equal(jobq_json_to_mp("{\"a\": [1, -2, 2.5, \"x\", null, true]}",
                                     &w, err, sizeof err),
                     JOBQ_OK);
    char *text = s_to_json(w.data, w.len);
    assert_string_equal(text, "{\"a\":[1,-2,2.5,\"x\",null,true]}");
    free(text);
    jobq_mp_writer_reset(&w);
    assert_int_equal(jobq_json_to_mp("[1]", &w, err, sizeof err), JOBQ_EINVAL);
    jobq_mp_writer_reset(&w);
    assert_int_equal(jobq_json_to_mp("{\"a\":1,\"a\":2}", &w, err, sizeof err),
                     JOBQ_EINVAL);
    jobq_mp_writer_reset(&w);
    assert_int_equal(jobq_json_to_mp("{\"a\": ", &w, err, sizeof err),
                     JOBQ_EINVAL);
    assert_non_null(strstr(err, "line 1"));
    //  JOBQ_JSON_MAX_DEPTH levels, the object counting 1, and no more.
    char doc[128] = "{\"a\":";
    for (int i = 1; i < JOBQ_JSON_MAX_DEPTH; i++)
        strcat(doc, "[");
    for (int i = 1; i < JOBQ_JSON_MAX_DEPTH; i++)
        strcat(doc, "]");
    strcat(doc, "}");
    jobq_mp_writer_reset(&w);
    assert_int_equal(jobq_json_to_mp(doc, &w, err, sizeof err), JOBQ_OK);
    memmove(doc + 6, doc + 5, strlen(doc + 5) + 1);
    doc[5] = '[';
    char *end = strrchr(doc, '}');
    memmove(end + 1, end, strlen(end) + 1);
    *end = ']';
    jobq_mp_writer_reset(&w);
    assert_int_equal(jobq_json_to_mp(doc, &w, err, sizeof err), JOBQ_ETOOBIG);
    jobq_mp_writer_fini(&w);
}

static void
test_json_dumps_writes_reals_in_their_shortest_exact_form(void **state)
{
    (void) state;
    json_t *j =
        json_pack("{s:f, s:f, s:f, s:f, s:f, s:I, s:s, s:[f, f]}", "d", 3.9,
                  "sum", 0.1 + 0.2, "whole", 4.0, "big", 1e100, "neg", -1e-7,
                  "int", (json_int_t) 12345678901234567, "text",
                  "3.8999999999999999 \"1.5\\\" 2.50", "a", -0.0, 1.0 / 3.0);
    assert_non_null(j);
    char *text = jobq_json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(3));
    assert_non_null(text);
    //  Strings keep their digits; integers stay integers; a whole real
    //  keeps its ".0"; the precision asked for is not used.
    assert_string_equal(text, "{\"d\":3.9,\"sum\":0.30000000000000004,"
                              "\"whole\":4.0,\"big\":1e+100,\"neg\":-1e-07,"
                              "\"int\":12345678901234567,"
                              "\"text\":\"3.8999999999999999 \\\"1.5\\\\\\\" "
                              "2.50\",\"a\":[-0.0,0.3333333333333333]}");
    free(text);
    text = jobq_json_dumps(j, JSON_INDENT(2));
    assert_non_null(strstr(text, "\n  \"d\": 3.9,\n"));
    assert_non_null(strstr(text, "\n    -0.0,\n    0.3333333333333333\n  ]"));
    free(text);
    json_decref(j);
    //  A float 32 at its own precision: 3.9f is 3.9.
    static const uint8_t f32[] = {0xca, 0x40, 0x79, 0x99, 0x9a};
    j = jobq_json_from_mp((jobq_bytes_t){f32, sizeof f32});
    assert_true(json_real_value(j) == 3.9);
    text = jobq_json_dumps(j, JSON_ENCODE_ANY);
    assert_string_equal(text, "3.9");
    free(text);
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_every_msgpack_kind_has_its_json_form),
        cmocka_unit_test(
            test_json_from_mp_refuses_what_is_not_one_bounded_value),
        cmocka_unit_test(test_json_to_mp_takes_one_bounded_object),
        cmocka_unit_test(
            test_json_dumps_writes_reals_in_their_shortest_exact_form),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
