/*  test_fetch.c: URL arithmetic, and fetches that need no network (file
    URLs, refused schemes). HTTP behaviour (retries, timeouts, redirects)
    is tested against a local server in integration/test_processors.c. */
#include "jobq_test.h"
#include "jobq_fetch.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

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
                           .user_agent = "test"};
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

int
main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_relative_links_resolve_as_a_browser_would),
        cmocka_unit_test(test_fetch_reads_files_within_the_size_bound),
        cmocka_unit_test(test_fetch_refuses_other_schemes_without_connecting),
    };
    int rc = cmocka_run_group_tests_name("fetch", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
