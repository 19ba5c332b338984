/*  test_keys.c: the broker's key file parser and the rules of a key. */
#include "jobq_test.h"
#include "jobq_keys.h"

#include <stdlib.h>
#include <string.h>

#define KA "0000000000000000000000000000000000000000"
#define KB "1111111111111111111111111111111111111111"
#define KC "rq:rI>se#[p5g)!S0W.(qSDtVp>:Ix9F0nl}(j7T"

static jobq_keys_t *
s_parse(const char *text, int want, const char *why_has)
{
    jobq_keys_t *k = NULL;
    char why[256] = "";
    int rc = jobq_keys_parse(text, strlen(text), &k, why, sizeof why);
    if (rc != want)
        fail_msg("'%s': %d (%s), wanted %d", text, rc, why, want);
    if (why_has && !strstr(why, why_has))
        fail_msg("'%s': '%s' does not say '%s'", text, why, why_has);
    return k;
}

static void
test_keys_a_file_with_every_feature(void **state)
{
    (void) state;
    jobq_keys_t *k = s_parse(
        "# comment\n"
        "\n"
        "api   client,watcher  shop-b,shop-a,shop-a  " KA " rate=10\r\n"
        "  w1  worker  *  " KB " types=b,a burst=3 rate=2\n"
        "ops admin * " KC " quota-pending=5 quota-bytes=1000000000000\n",
        JOBQ_OK, NULL);
    assert_int_equal(jobq_keys_count(k), 3);
    jobq_key_t *api = jobq_keys_find(k, KA, 40);
    assert_non_null(api);
    assert_string_equal(api->name, "api");
    assert_int_equal(api->nshops, 2);  //  repeats dropped
    assert_true(jobq_key_shop(api, (jobq_str_t){"shop-a", 6}));
    assert_false(jobq_key_shop(api, (jobq_str_t){"shop-c", 6}));
    assert_false(jobq_key_shop(api, (jobq_str_t){"shop", 4}));
    assert_true(jobq_key_can(api, JOBQ_ROLE_CLIENT));
    assert_false(jobq_key_can(api, JOBQ_ROLE_WORKER));
    //  Topics: only those that start with one of its shops and '/'.
    assert_true(jobq_key_topic(api, (const uint8_t *) "shop-a/", 7));
    assert_true(jobq_key_topic(api, (const uint8_t *) "shop-b/0123", 11));
    assert_false(jobq_key_topic(api, (const uint8_t *) "", 0));
    assert_false(jobq_key_topic(api, (const uint8_t *) "shop-", 5));
    assert_false(jobq_key_topic(api, (const uint8_t *) "shop-c/", 7));
    jobq_key_t *w1 = jobq_keys_find(k, KB, 40);
    assert_true(jobq_key_type(w1, (jobq_str_t){"a", 1}));
    assert_false(jobq_key_type(w1, (jobq_str_t){"c", 1}));
    assert_true(jobq_key_worker_name(w1, (const uint8_t *) "w1", 2));
    assert_true(jobq_key_worker_name(w1, (const uint8_t *) "w1.x", 4));
    assert_false(jobq_key_worker_name(w1, (const uint8_t *) "w1.", 3));
    assert_false(jobq_key_worker_name(w1, (const uint8_t *) "w10", 3));
    assert_false(jobq_key_worker_name(w1, (const uint8_t *) "w", 1));
    //  The bucket: 3 at once, then 2 a second.
    assert_true(jobq_key_take(w1, 1000));
    assert_true(jobq_key_take(w1, 1000));
    assert_true(jobq_key_take(w1, 1000));
    assert_false(jobq_key_take(w1, 1000));
    assert_true(jobq_key_take(w1, 1500));
    assert_false(jobq_key_take(w1, 1500));
    jobq_key_t *ops = jobq_keys_find(k, KC, 40);
    assert_true(jobq_key_can(ops, JOBQ_ROLE_WORKER));
    assert_int_equal(ops->quota_pending, 5);
    assert_int_equal(ops->quota_bytes, 1000000000000ull);
    assert_int_equal(api->quota_pending, 0);
    assert_true(jobq_key_topic(ops, (const uint8_t *) "", 0));
    assert_true(jobq_key_worker_name(ops, (const uint8_t *) "any", 3));
    assert_null(jobq_keys_find(k, KC, 39));
    //  A reload keeps the buckets of keys still there.
    jobq_keys_t *fresh =
        s_parse("w1 worker * " KB " types=b,a burst=3 rate=2\n", JOBQ_OK, NULL);
    jobq_keys_carry(fresh, k);
    assert_false(jobq_key_take(jobq_keys_find(fresh, KB, 40), 1500));
    jobq_keys_destroy(&fresh);
    jobq_keys_destroy(&k);
    assert_null(k);
}

static void
test_keys_bad_lines_say_which_and_why(void **state)
{
    (void) state;
    s_parse("a client\n", JOBQ_EINVAL, "line 1: expected NAME");
    s_parse("# c\na.b client * " KA "\n", JOBQ_EINVAL, "line 2: name");
    s_parse("a king * " KA "\n", JOBQ_EINVAL, "roles");
    s_parse("a client, * " KA "\n", JOBQ_EINVAL, "roles");
    s_parse("a client shop/1 " KA "\n", JOBQ_EINVAL, "bad shop 'shop/1'");
    s_parse("a client s,,t " KA "\n", JOBQ_EINVAL, "bad shop ''");
    s_parse("a admin s " KA "\n", JOBQ_EINVAL, "admin key has every shop");
    s_parse("a client * 000000000000000000000000000000000000000\n", JOBQ_EINVAL,
            "public key");
    s_parse("a client * 000000000000000000000000000000000000000~\n",
            JOBQ_EINVAL, "public key");
    //  Z85 that decodes beyond 32 bits per group.
    s_parse("a client * #####00000000000000000000000000000000000\n",
            JOBQ_EINVAL, "public key");
    s_parse("a client * " KA " types=x\n", JOBQ_EINVAL, "for worker keys");
    s_parse("a worker * " KA " types=X\n", JOBQ_EINVAL, "bad type 'X'");
    s_parse("a client * " KA " rate=0\n", JOBQ_EINVAL, "option");
    s_parse("a client * " KA " rate=1 rate=2\n", JOBQ_EINVAL, "repeated");
    s_parse("a client * " KA " burst=2\n", JOBQ_EINVAL, "burst= needs rate=");
    s_parse("a client * " KA " colour=red\n", JOBQ_EINVAL, "unknown");
    s_parse("a client * " KA " quota-pending=0\n", JOBQ_EINVAL, "option");
    s_parse("a client * " KA " quota-bytes=x\n", JOBQ_EINVAL, "option");
    s_parse("a client * " KA "\nb client * " KA "\n", JOBQ_EINVAL,
            "line 2: public key is used twice (a)");
    s_parse("a client * " KA "\na client * " KB "\n", JOBQ_EINVAL,
            "line 2: name 'a' is used twice");
    char nul[] = "a client * " KA "\0\n";
    jobq_keys_t *k = NULL;
    char why[200];
    assert_int_equal(jobq_keys_parse(nul, sizeof nul - 1, &k, why, sizeof why),
                     JOBQ_EINVAL);
    assert_null(k);
    //  Bounds: a line, and the number of shops of a key.
    size_t big = JOBQ_KEYS_LINE_MAX + 10;
    char *line = malloc(big + 1);
    memset(line, 'a', big);
    line[big] = '\0';
    s_parse(line, JOBQ_ETOOBIG, "longer than");
    free(line);
    char *many = malloc(JOBQ_KEY_SHOPS_MAX * 4 + 100);
    strcpy(many, "a client ");
    for (int i = 0; i <= JOBQ_KEY_SHOPS_MAX; i++)
        strcat(many, i ? ",s" : "s");
    strcat(many, " " KA "\n");
    s_parse(many, JOBQ_ETOOBIG, "more than");
    free(many);
    //  An empty file is no keys at all (every connection refused).
    k = s_parse("# nobody\n", JOBQ_OK, NULL);
    assert_int_equal(jobq_keys_count(k), 0);
    jobq_keys_destroy(&k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_a_file_with_every_feature),
        cmocka_unit_test(test_keys_bad_lines_say_which_and_why),
    };
    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
