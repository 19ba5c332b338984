/*  test_fetch.c: URL arithmetic, and fetches that need no network (file
    URLs, refused schemes). HTTP behaviour (retries, timeouts, redirects)
    is tested against a local server in integration/test_processors.c. */
#include "jobq_test.h"
#include "jobq_fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Files allowed under the fixtures' shop/ only.
static jobq_netguard_t s_guard;

static void
s_resolves(const char *base, const char *ref, const char *want)
{
    char out[JOBQ_FETCH_MAX_URL + 1];
    assert_int_equal(jobq_url_resolve(base, ref, out, sizeof out), JOBQ_OK);
    assert_string_equal(out, want);
}

static void
test_fetch_relative_links_resolve_as_a_browser_would(void **state)
{
    (void) state;
    const char *base = "http://127.0.0.1:8080/shop/a/page-1.html?x=1#top";
    s_resolves(base, "page-2.html", "http://127.0.0.1:8080/shop/a/page-2.html");
    s_resolves(base, "../b/p.html#frag", "http://127.0.0.1:8080/shop/b/p.html");
    s_resolves(base, "/root.html", "http://127.0.0.1:8080/root.html");
    s_resolves(base, "?page=2",
               "http://127.0.0.1:8080/shop/a/page-1.html?page=2");
    s_resolves(base, "  https://other.test/x  ", "https://other.test/x");
    s_resolves(base, "//cdn.test/y", "http://cdn.test/y");
    s_resolves("file:///srv/shop/index.html", "reviews-2.html",
               "file:///srv/shop/reviews-2.html");
    s_resolves(NULL, "HTTP://Example.test/a/./b/../c",
               "http://example.test/a/c");
    char out[64];
    assert_int_equal(jobq_url_resolve(NULL, "no-scheme.html", out, sizeof out),
                     JOBQ_EINVAL);
    assert_int_equal(jobq_url_resolve(base, "http://[bad", out, sizeof out),
                     JOBQ_EINVAL);
    assert_int_equal(jobq_url_resolve(NULL,
                                      "http://a.test/"
                                      "0123456789012345678901234567890123456789"
                                      "0123456789",
                                      out, sizeof out),
                     JOBQ_ETOOBIG);
    char scheme[16];
    assert_int_equal(jobq_url_scheme("FTP://x.test/", scheme, sizeof scheme),
                     JOBQ_OK);
    assert_string_equal(scheme, "ftp");
    assert_int_equal(jobq_url_scheme("nope", scheme, sizeof scheme),
                     JOBQ_EINVAL);
}

static jobq_fetch_opts_t
s_opts(size_t max_bytes)
{
    jobq_fetch_opts_t o = {.connect_timeout_ms = 1000,
                           .timeout_ms = 2000,
                           .max_bytes = max_bytes,
                           .max_redirects = 2,
                           .retries = 0,
                           .max_retry_wait_ms = 100,
                           .user_agent = "test",
                           .guard = &s_guard};
    return o;
}

static void
test_fetch_reads_files_within_the_size_bound(void **state)
{
    (void) state;
    char url[1024];
    snprintf(url, sizeof url, "file://%s/shop/jsonld-1.html",
             JOBQ_FIXTURES_DIR);
    jobq_fetch_opts_t o = s_opts(1 << 20);
    jobq_fetch_t *f = jobq_fetch_new(&o);
    assert_non_null(f);
    jobq_fetch_result_t r;
    assert_int_equal(jobq_fetch_get(f, url, &r), JOBQ_OK);
    assert_true(r.len > 1024);
    assert_int_equal(strlen(r.body), r.len);
    assert_non_null(strstr(r.body, "Alice Martin"));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.tries, 1);
    jobq_fetch_result_clear(&r);
    //  The same fetcher again, for a file that is not there.
    snprintf(url, sizeof url, "file://%s/shop/missing.html", JOBQ_FIXTURES_DIR);
    assert_int_equal(jobq_fetch_get(f, url, &r), JOBQ_ENOTFOUND);
    assert_non_null(strstr(r.error, "missing.html"));
    jobq_fetch_destroy(&f);
    assert_null(f);

    //  A body over the bound is refused, not cut.
    o = s_opts(1024);
    f = jobq_fetch_new(&o);
    snprintf(url, sizeof url, "file://%s/shop/jsonld-1.html",
             JOBQ_FIXTURES_DIR);
    assert_int_equal(jobq_fetch_get(f, url, &r), JOBQ_ETOOBIG);
    assert_null(r.body);
    assert_non_null(strstr(r.error, "larger than 1024 bytes"));
    jobq_fetch_destroy(&f);
}

static void
test_fetch_refuses_other_schemes_without_connecting(void **state)
{
    (void) state;
    jobq_fetch_opts_t o = s_opts(1 << 20);
    jobq_fetch_t *f = jobq_fetch_new(&o);
    jobq_fetch_result_t r;
    static const char *const urls[] = {"ftp://127.0.0.1:1/x",
                                       "gopher://127.0.0.1:1/x",
                                       "dict://127.0.0.1:1/x"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        assert_int_equal(jobq_fetch_get(f, urls[i], &r), JOBQ_EINVAL);
        jobq_fetch_result_clear(&r);
    }
    jobq_fetch_destroy(&f);
}

//  The address classes of jobq_netguard.h, spelled as inet_pton reads
//  them (the resolver turns decimal, octal and short forms into these).
static bool
s_public(const char *text)
{
    uint8_t a[16], v4[4];
    if (inet_pton(AF_INET, text, v4) == 1) {
        memset(a, 0, 10);
        a[10] = a[11] = 0xff;
        memcpy(a + 12, v4, 4);
    } else if (inet_pton(AF_INET6, text, a) != 1) {
        fail_msg("not an address: %s", text);
    }
    return jobq_netguard_public(a);
}

static void
test_fetch_guard_refuses_every_inward_address_class(void **state)
{
    (void) state;
    static const char *const inward[] = {"127.0.0.1",
                                         "127.255.255.254",
                                         "0.0.0.0",
                                         "0.1.2.3",
                                         "10.0.0.1",
                                         "172.16.0.1",
                                         "172.31.255.255",
                                         "192.168.1.1",
                                         "100.64.0.1",
                                         "169.254.169.254",
                                         "224.0.0.1",
                                         "239.255.255.250",
                                         "255.255.255.255",
                                         "240.0.0.1",
                                         "192.0.0.170",
                                         "198.18.0.1",
                                         "::",
                                         "::1",
                                         "::ffff:127.0.0.1",
                                         "::ffff:7f00:2",
                                         "::ffff:10.1.2.3",
                                         "::127.0.0.1",
                                         "64:ff9b::a9fe:a9fe",
                                         "2002:7f00:1::1",
                                         "2002:c0a8:101::",
                                         "fe80::1",
                                         "febf::1",
                                         "fc00::1",
                                         "fd12:3456::1",
                                         "ff02::1",
                                         "fec0::1"};
    for (size_t i = 0; i < sizeof inward / sizeof inward[0]; i++)
        if (s_public(inward[i]))
            fail_msg("%s counted as public", inward[i]);
    static const char *const outward[] = {
        "93.184.216.34",  "1.1.1.1",         "172.32.0.1",  "100.128.0.1",
        "11.0.0.1",       "2606:4700::1111", "2001:db8::1", "::ffff:8.8.8.8",
        "2002:808:808::", "64:ff9b::808:808"};
    for (size_t i = 0; i < sizeof outward / sizeof outward[0]; i++)
        if (!s_public(outward[i]))
            fail_msg("%s counted as not public", outward[i]);
}

static void
test_fetch_guard_allow_lists_open_exactly_what_they_name(void **state)
{
    (void) state;
    jobq_netguard_t g;
    jobq_netguard_init(&g);
    char why[200];
    assert_int_equal(jobq_netguard_allow(&g, "127.0.0.1, 10.0.0.0/8,fd00::/8",
                                         why, sizeof why),
                     JOBQ_OK);
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    static const struct {
        const char *addr;
        bool ok;
    } cases[] = {{"127.0.0.1", true},       {"127.0.0.2", false},
                 {"10.9.8.7", true},        {"11.0.0.1", true},
                 {"192.168.0.1", false},    {"fd00::5", true},
                 {"fe80::1", false},        {"::1", false},
                 {"::ffff:127.0.0.1", true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct sockaddr *sa = NULL;
        if (inet_pton(AF_INET, cases[i].addr, &in.sin_addr) == 1)
            sa = (const struct sockaddr *) &in;
        else if (inet_pton(AF_INET6, cases[i].addr, &in6.sin6_addr) == 1)
            sa = (const struct sockaddr *) &in6;
        else
            fail_msg("bad case %s", cases[i].addr);
        if (jobq_netguard_addr_ok(&g, sa) != cases[i].ok)
            fail_msg("%s: expected %s", cases[i].addr,
                     cases[i].ok ? "allowed" : "refused");
    }
    //  Without a guard: public only.
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    assert_false(jobq_netguard_addr_ok(NULL, (const struct sockaddr *) &in));
    //  Bad entries say which.
    static const char *const bad[] = {"10.0.0.0/33", "::/129",
                                      "1.2.3.4/x",   "no-such-host.invalid",
                                      ",",           "localhost/8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jobq_netguard_init(&g);
        why[0] = '\0';
        assert_int_not_equal(jobq_netguard_allow(&g, bad[i], why, sizeof why),
                             JOBQ_OK);
        assert_true(why[0] != '\0');
    }
    //  More than the bound.
    jobq_netguard_init(&g);
    char list[2048] = "";
    for (int i = 0; i <= JOBQ_NETGUARD_MAX_RANGES; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "10.0.%d.1,",
                 i);
    assert_int_equal(jobq_netguard_allow(&g, list, why, sizeof why),
                     JOBQ_ETOOBIG);
}

//  Write text to path.
static void
s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

//  file:// only inside the allowed directory, whatever the spelling or the
//  links, and a refusal reads the same for a path that exists and one that
//  does not.
static void
test_fetch_files_only_inside_the_allowed_directory(void **state)
{
    (void) state;
    char url[1200];
    jobq_fetch_result_t r;
    char *tmp = jobq_test_tmpdir();
    char dir[600], path[700], link[700];
    snprintf(dir, sizeof dir, "%s/allowed", tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/page.html", dir);
    s_write(path, "<html>inside</html>");
    snprintf(path, sizeof path, "%s/secret.html", tmp);
    s_write(path, "<html>outside</html>");
    snprintf(link, sizeof link, "%s/out", dir);
    assert_int_equal(symlink(path, link), 0);  //  allowed/out -> ../secret
    snprintf(link, sizeof link, "%s/in", dir);
    assert_int_equal(symlink("page.html", link), 0);
    jobq_netguard_t g;
    jobq_netguard_init(&g);
    char why[200];
    assert_int_equal(jobq_netguard_allow_files(&g, dir, why, sizeof why),
                     JOBQ_OK);

    //  No directory allowed: refused, even for a file that exists.
    jobq_fetch_opts_t o = s_opts(1 << 20);
    o.guard = NULL;
    jobq_fetch_t *f = jobq_fetch_new(&o);
    snprintf(url, sizeof url, "file://%s/page.html", dir);
    assert_int_equal(jobq_fetch_get(f, url, &r), JOBQ_EINVAL);
    assert_non_null(strstr(r.error, "refused to fetch"));
    assert_null(r.body);
    jobq_fetch_destroy(&f);

    o.guard = &g;
    f = jobq_fetch_new(&o);
    //  Inside, directly and through a link that stays inside.
    //  Each URL is file:// HOST DIR PATH.
    static const char *const inside[][2] = {{"", "/page.html"},
                                            {"", "/in"},
                                            {"", "/./x/../page.html"},
                                            {"localhost", "/page.html"}};
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        snprintf(url, sizeof url, "file://%s%s%s", inside[i][0], dir,
                 inside[i][1]);
        assert_int_equal(jobq_fetch_get(f, url, &r), JOBQ_OK);
        assert_non_null(strstr(r.body, "inside"));
        jobq_fetch_result_clear(&r);
    }
    //  Missing inside: the ordinary error.
    snprintf(url, sizeof url, "file://%s/missing.html", dir);
    assert_int_equal(jobq_fetch_get(f, url, &r), JOBQ_ENOTFOUND);
    //  Outside, by any road, existing or not: one refusal.
    static const char *const outside[][2] = {{"", "/../secret.html"},
                                             {"", "/%2e%2e/secret.html"},
                                             {"", "/../no-such-file"},
                                             {"", "/out"},
                                             {"", "/.."},
                                             {"other.host", "/page.html"},
                                             {"", "/../../../etc/passwd"}};
    char first[320] = "";
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        snprintf(url, sizeof url, "file://%s%s%s", outside[i][0], dir,
                 outside[i][1]);
        if (jobq_fetch_get(f, url, &r) != JOBQ_EINVAL)
            fail_msg("%s was not refused", url);
        assert_null(r.body);
        const char *words = strstr(r.error, ": not an address");
        if (!words)
            fail_msg("%s: '%s'", url, r.error);
        if (!first[0])
            snprintf(first, sizeof first, "%s", words);
        assert_string_equal(words, first);
    }
    jobq_fetch_destroy(&f);
    jobq_test_rmtree(tmp);
    free(tmp);
}

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    jobq_netguard_init(&s_guard);
    char why[200];
    char shop[600];
    snprintf(shop, sizeof shop, "%s/shop", JOBQ_FIXTURES_DIR);
    if (jobq_netguard_allow_files(&s_guard, shop, why, sizeof why) != JOBQ_OK) {
        fprintf(stderr, "test_fetch: %s\n", why);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_relative_links_resolve_as_a_browser_would),
        cmocka_unit_test(test_fetch_reads_files_within_the_size_bound),
        cmocka_unit_test(test_fetch_refuses_other_schemes_without_connecting),
        cmocka_unit_test(test_fetch_guard_refuses_every_inward_address_class),
        cmocka_unit_test(
            test_fetch_guard_allow_lists_open_exactly_what_they_name),
        cmocka_unit_test(test_fetch_files_only_inside_the_allowed_directory),
    };
    int rc = cmocka_run_group_tests_name("fetch", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
