/*  test_report.c: review figures (ratings out of 5, buckets, months, best
    and worst) and the HTML they are written as. */
#include "jobq_test.h"
#include "jobq_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R(a, v, b, d)                                                          \
    {                                                                          \
        .author = (a), .date = (d), .title = (a), .rating = (v),               \
        .best_rating = (b), .has_rating = true                                 \
    }

static void
test_report_stats_normalise_bucket_and_group_by_month(void **state)
{
    (void) state;
    jobq_review_t rs[] = {
        R("five", 5, 5, "2024-01-15"),
        R("eight of ten", 8, 10, "2024-01-28T10:00:00Z"),
        R("nine of ten", 9, 10, "2024-02-03"),  //  4.5: bucket 5
        R("zero", 0, 5, "2024-02-29"),          //  bucket 1
        R("two", 2, 5, "March 2024"),           //  undated
        R("other five", 5, 5, "2023-12-31"),
        {.author = "unrated", .date = "2024-02-10"},
        R("bad month", 3, 5, "2024-13-01"),  //  undated
        R("one of three", 1, 3, NULL),       //  1.67: bucket 2
    };
    jobq_report_stats_t st;
    assert_int_equal(jobq_report_stats(rs, sizeof rs / sizeof rs[0], &st),
                     JOBQ_OK);
    assert_int_equal(st.count, 9);
    assert_int_equal(st.rated, 8);
    double sum = 5 + 4 + 4.5 + 0 + 2 + 5 + 3 + 5.0 / 3;
    assert_true(fabs(st.average - sum / 8) < 1e-9);
    static const size_t stars[5] = {1, 2, 1, 1, 3};
    for (int i = 0; i < 5; i++)
        assert_int_equal(st.stars[i], stars[i]);
    assert_int_equal(st.undated, 3);
    assert_int_equal(st.nmonths, 3);
    assert_string_equal(st.months[0].month, "2023-12");
    assert_string_equal(st.months[1].month, "2024-01");
    assert_string_equal(st.months[2].month, "2024-02");
    assert_int_equal(st.months[1].count, 2);
    assert_int_equal(st.months[2].count, 3);
    assert_int_equal(st.months[2].rated, 2);
    //  The first of the highest and of the lowest.
    assert_ptr_equal(st.best, &rs[0]);
    assert_ptr_equal(st.worst, &rs[3]);
    jobq_report_stats_clear(&st);

    assert_int_equal(jobq_report_stats(rs, 0, &st), JOBQ_OK);
    assert_int_equal(st.count, 0);
    assert_null(st.best);
    assert_true(st.average == 0);
    jobq_report_stats_clear(&st);
}

static char *
s_html(const jobq_report_meta_t *meta, const jobq_report_stats_t *st)
{
    //  Copied out of the stream's buffer: GCC at -O3 takes a pointer into
    //  a buffer whose address was lent to open_memstream for one to the
    //  local that held it (-Wdangling-pointer).
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(jobq_report_write_html(f, meta, st), JOBQ_OK);
    fclose(f);
    char *copy = strdup(text);
    free(text);
    assert_non_null(copy);
    return copy;
}

static void
test_report_html_is_self_contained_and_escaped(void **state)
{
    (void) state;
    jobq_review_t rs[] = {
        {.author = "<script>alert(1)</script>",
         .date = "2024-05-01",
         .title = "Tom & \"Jerry\"",
         .body = "it's <b>fine</b>",
         .rating = 5,
         .best_rating = 5,
         .has_rating = true},
        R("low", 1, 5, "2024-06-01"),
    };
    jobq_report_stats_t st;
    assert_int_equal(jobq_report_stats(rs, 2, &st), JOBQ_OK);
    const char *ids[] = {"0123456789abcdef"};
    jobq_report_meta_t meta = {"Kettles <&> \"co\"", ids, 1, NULL};
    char *html = s_html(&meta, &st);
    assert_non_null(strstr(html, "<!DOCTYPE html>"));
    assert_non_null(strstr(html, "<title>Kettles &lt;&amp;&gt; &quot;co&quot;"
                                 "</title>"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(html, "Tom &amp; &quot;Jerry&quot;"));
    assert_non_null(strstr(html, "it&#39;s &lt;b&gt;fine&lt;/b&gt;"));
    assert_null(strstr(html, "<script"));
    //  Two charts, nothing fetched from elsewhere.
    char *svg = strstr(html, "<svg");
    assert_non_null(svg);
    assert_non_null(strstr(svg + 4, "<svg"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "href="));
    assert_null(strstr(html, "url("));
    assert_non_null(strstr(html, "<title>5 stars: 1</title>"));
    assert_non_null(strstr(html, "<title>2024-06: 1</title>"));
    assert_non_null(strstr(html, "0123456789abcdef"));
    free(html);
    jobq_report_stats_clear(&st);

    //  No reviews at all still makes a page.
    assert_int_equal(jobq_report_stats(rs, 0, &st), JOBQ_OK);
    html = s_html(&meta, &st);
    assert_non_null(strstr(html, "No review has a date."));
    assert_non_null(strstr(html, "</html>"));
    free(html);
    jobq_report_stats_clear(&st);
}

static void
test_report_html_shows_a_rating_as_it_was_given(void **state)
{
    (void) state;
    jobq_review_t rs[] = {R("precise", 7.123456789, 10, "2024-01-01")};
    const char *ids[] = {"0123456789abcdef"};
    jobq_report_meta_t meta = {"Ratings", ids, 1, NULL};
    jobq_report_stats_t st;
    assert_int_equal(jobq_report_stats(rs, 1, &st), JOBQ_OK);
    char *html = s_html(&meta, &st);
    //  Out of 5 it is rounded for the page; as given, it is exact.
    assert_non_null(
        strstr(html, "<strong>3.6 / 5</strong> (7.123456789 of 10)"));
    free(html);
    jobq_report_stats_clear(&st);
}

static void
test_report_html_counts_one_as_one(void **state)
{
    (void) state;
    //  241 months, one review each: the first month is not shown.
    enum { N = 241 };
    jobq_review_t rs[N];
    char dates[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(dates[i], sizeof dates[i], "%04d-%02d-01", 2000 + i / 12,
                 1 + i % 12);
        rs[i] = (jobq_review_t) R("r", 4, 5, dates[i]);
    }
    const char *ids[] = {"0123456789abcdef"};
    jobq_report_meta_t meta = {"One", ids, 1, NULL};
    jobq_report_stats_t st;
    assert_int_equal(jobq_report_stats(rs, N, &st), JOBQ_OK);
    char *html = s_html(&meta, &st);
    assert_non_null(strstr(html, "1 earlier month not shown."));
    free(html);
    jobq_report_stats_clear(&st);
    //  One review of one month.
    assert_int_equal(jobq_report_stats(rs, 1, &st), JOBQ_OK);
    html = s_html(&meta, &st);
    assert_non_null(strstr(html, "<b>1</b>review</div>"));
    assert_non_null(strstr(html, "<b>1</b>month</div>"));
    free(html);
    jobq_report_stats_clear(&st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_stats_normalise_bucket_and_group_by_month),
        cmocka_unit_test(test_report_html_is_self_contained_and_escaped),
        cmocka_unit_test(test_report_html_counts_one_as_one),
        cmocka_unit_test(test_report_html_shows_a_rating_as_it_was_given),
    };
    return cmocka_run_group_tests_name("report", tests, NULL, NULL);
}
