/*  test_page.c: reviews out of HTML buffers (JSON-LD, microdata, broken
    markup, next links) and their bounds. No network: pages are strings
    here or files under tests/fixtures/shop. */
#include "jobq_test.h"
#include "jobq_page.h"

#include "jobq/jobq_types.h"

#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The fixture file name, whole, NUL-terminated; *len gets its size.
static char *
s_fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/shop/%s", JOBQ_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void
s_parse_fixture(const char *name, jobq_page_t *page)
{
    size_t len;
    char *html = s_fixture(name, &len);
    assert_int_equal(jobq_page_parse(page, html, len, NULL, 1000), JOBQ_OK);
    free(html);
}

static void
s_parse(const char *html, jobq_page_t *page)
{
    assert_int_equal(jobq_page_parse(page, html, strlen(html), NULL, 1000),
                     JOBQ_OK);
}

static void
s_check(const jobq_review_t *r,
        const char *author,
        double rating,
        double best,
        const char *date,
        const char *title,
        const char *body)
{
    if (author)
        assert_string_equal(r->author, author);
    else
        assert_null(r->author);
    assert_true(r->has_rating);
    assert_true(r->rating == rating);
    assert_true(r->best_rating == best);
    if (date)
        assert_string_equal(r->date, date);
    if (title)
        assert_string_equal(r->title, title);
    if (body)
        assert_string_equal(r->body, body);
}

static void
test_page_jsonld_product_gives_its_reviews_and_aggregate(void **state)
{
    (void) state;
    jobq_page_t p;
    s_parse_fixture("jsonld-1.html", &p);
    assert_int_equal(p.count, 3);
    s_check(&p.reviews[0], "Alice Martin", 5, 5, "2024-01-15", "Great kettle",
            "Boils fast, quiet, and looks good.");
    s_check(&p.reviews[1], "Bob \"The Builder\" Jones", 4, 5, "2024-01-28",
            "Solid", "He said \"buy it\", so I did.\nSecond line here.");
    s_check(&p.reviews[2], "Chlo\xc3\xa9 Dubois", 2, 5,
            "2024-02-03T09:30:00+01:00", "Lid broke <b>after</b> a week", NULL);
    assert_true(p.has_aggregate);
    assert_true(p.aggregate.has_value && p.aggregate.value == 4.1);
    assert_true(p.aggregate.has_count && p.aggregate.count == 11);
    assert_true(p.aggregate.best == 5);
    //  The second script is not JSON: skipped and counted.
    assert_int_equal(p.ld_blocks, 2);
    assert_int_equal(p.ld_errors, 1);
    assert_string_equal(p.next, "jsonld-2.html");
    jobq_page_clear(&p);
}

static void
test_page_jsonld_graph_arrays_and_untyped_review_lists(void **state)
{
    (void) state;
    jobq_page_t p;
    s_parse_fixture("jsonld-2.html", &p);
    //  Two in @graph, the same second one again in microdata.
    assert_int_equal(p.count, 3);
    s_check(&p.reviews[0], "Dmitri K.", 8, 10, "2024-02-20", "Good value",
            "Eight out of ten.");
    s_check(&p.reviews[1], "Eve", 3, 5, "2024-03-01", "Average",
            "Does the job.");
    s_check(&p.reviews[2], "Eve", 3, 5, "2024-03-01", "Average",
            "Does the job.");
    assert_false(p.has_aggregate);
    assert_string_equal(p.next, "/shop/microdata-1.html");
    jobq_page_clear(&p);

    //  A top-level array, a review list without @type, "reviews" as key,
    //  an author array, numbers as strings with a decimal comma.
    s_parse("<script type='Application/LD+JSON; charset=utf-8'>"
            "[{\"@type\":\"Thing\"},"
            " {\"@type\":\"Organization\",\"reviews\":["
            "  {\"author\":[{\"name\":\"Ann\"},{\"name\":\"Ben\"}],"
            "   \"reviewRating\":{\"ratingValue\":\"4,5\"},"
            "   \"headline\":\"H\",\"description\":\"D\"}]},"
            " {\"@type\":\"http://schema.org/UserReview\",\"author\":\"Cy\","
            "  \"ratingValue\":2}]"
            "</script>",
            &p);
    assert_int_equal(p.count, 2);
    s_check(&p.reviews[0], "Ann", 4.5, 5, NULL, "H", "D");
    s_check(&p.reviews[1], "Cy", 2, 5, NULL, NULL, NULL);
    jobq_page_clear(&p);
}

static void
test_page_jsonld_numbers_as_text_are_kept_exact(void **state)
{
    (void) state;
    jobq_page_t p;
    s_parse("<script type='application/ld+json'>"
            "{\"@type\":\"Review\",\"author\":1234567890123456789,"
            " \"name\":0.1234567890123456,"
            " \"reviewRating\":{\"ratingValue\":4}}"
            "</script>",
            &p);
    assert_int_equal(p.count, 1);
    s_check(&p.reviews[0], "1234567890123456789", 4, 5, NULL,
            "0.1234567890123456", NULL);
    jobq_page_clear(&p);
}

static void
test_page_microdata_nested_author_rating_and_aggregate(void **state)
{
    (void) state;
    jobq_page_t p;
    s_parse_fixture("microdata-1.html", &p);
    assert_int_equal(p.count, 3);
    s_check(&p.reviews[0], "Frank", 1, 5, "2024-03-10", "Terrible",
            "Stopped working after two days.");
    s_check(&p.reviews[1], "Grace", 5, 5, "2024-03-18", "Love it",
            "Perfect\nfor tea.");
    s_check(&p.reviews[2], "Heidi", 3, 5, "2024-04-02", "OK",
            "Fine, but loud.");
    assert_true(p.has_aggregate);
    assert_true(p.aggregate.value == 3.9 && p.aggregate.count == 11);
    assert_string_equal(p.next, "{{origin}}/shop/broken.html");
    jobq_page_clear(&p);
}

static void
test_page_broken_markup_still_yields_its_reviews(void **state)
{
    (void) state;
    jobq_page_t p;
    s_parse_fixture("broken.html", &p);
    assert_int_equal(p.count, 2);
    s_check(&p.reviews[0], "Ivan", 4, 5, "2024-04-15", "Works",
            "Unclosed tags & stray ones everywhere");
    s_check(&p.reviews[1], "Judy", 2, 5, "2024-05-01", "Meh", "Too small.");
    assert_string_equal(p.next, "../shop/jsonld-1.html#reviews");
    jobq_page_clear(&p);
    //  Fragments and garbage are not errors.
    static const char *const junk[] = {
        "", "just text", "<<<>>><div itemscope itemtype=Review>",
        "<script type=application/ld+json>{\"@type\":\"Review\"</script>",
        "\x01\x02\xff\xfe<html>"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        assert_int_equal(
            jobq_page_parse(&p, junk[i], strlen(junk[i]), NULL, 10), JOBQ_OK);
        assert_int_equal(p.count, 0);
        jobq_page_clear(&p);
    }
}

static void
test_page_page_without_reviews_is_not_an_error(void **state)
{
    (void) state;
    jobq_page_t p;
    s_parse_fixture("empty.html", &p);
    assert_int_equal(p.count, 0);
    assert_false(p.has_aggregate);
    assert_null(p.next);
    jobq_page_clear(&p);
}

static void
test_page_next_link_needs_the_rel_token_and_the_first_wins(void **state)
{
    (void) state;
    jobq_page_t p;
    s_parse("<base href='http://shop.test/a/'>"
            "<a rel='prev' href='p1'>prev</a>"
            "<a rel='nextpage' href='wrong'>x</a>"
            "<a href='also-wrong'>next</a>"
            "<a rel='NOFOLLOW  Next' href='  p3.html  '>next</a>"
            "<link rel=next href=p9.html>",
            &p);
    assert_string_equal(p.next, "p3.html");
    assert_string_equal(p.base, "http://shop.test/a/");
    jobq_page_clear(&p);
    s_parse("<a rel=next>no href</a><a rel=next href=''>empty</a>", &p);
    assert_null(p.next);
    jobq_page_clear(&p);
}

static void
test_page_bad_ratings_are_dropped_but_the_review_kept(void **state)
{
    (void) state;
    jobq_page_t p;
    s_parse("<script type=application/ld+json>{\"@graph\":["
            "{\"@type\":\"Review\",\"author\":\"a\",\"reviewRating\":"
            "{\"ratingValue\":6}},"
            "{\"@type\":\"Review\",\"author\":\"b\",\"reviewRating\":"
            "{\"ratingValue\":-1}},"
            "{\"@type\":\"Review\",\"author\":\"c\",\"reviewRating\":"
            "{\"ratingValue\":\"NaN\"}},"
            "{\"@type\":\"Review\",\"author\":\"d\",\"reviewRating\":"
            "{\"ratingValue\":3,\"bestRating\":0}},"
            "{\"@type\":\"Review\",\"author\":\"e\",\"reviewRating\":"
            "{\"ratingValue\":\"4 stars\"}},"
            "{\"@type\":\"Review\",\"author\":\"f\",\"reviewRating\":"
            "{\"ratingValue\":0}},"
            "{\"@type\":\"Review\"}"
            "]}</script>",
            &p);
    //  The last has nothing at all: not a review.
    assert_int_equal(p.count, 6);
    for (int i = 0; i < 5; i++)
        assert_false(p.reviews[i].has_rating);
    assert_true(p.reviews[5].has_rating && p.reviews[5].rating == 0);
    jobq_page_clear(&p);
}

static void
test_page_long_fields_are_cut_on_a_character_boundary(void **state)
{
    (void) state;
    //  "é" is two bytes: 300 of them pass the 256-byte author bound.
    size_t n = 300 * 2 + 256;
    char *html = malloc(n + 20000);
    int k = snprintf(html, n + 20000, "%s",
                     "<div itemscope itemtype=schema.org/Review>"
                     "<span itemprop=author>x");
    for (int i = 0; i < 300; i++)
        k += snprintf(html + k, 3, "\xc3\xa9");
    k += snprintf(html + k, 64, "</span><p itemprop=reviewBody>");
    for (int i = 0; i < 10000; i++)
        html[k++] = (char) ('a' + i % 26);
    snprintf(html + k, 64, "</p></div>");
    jobq_page_t p;
    s_parse(html, &p);
    assert_int_equal(p.count, 1);
    size_t alen = strlen(p.reviews[0].author);
    assert_true(alen <= JOBQ_REVIEW_MAX_AUTHOR && alen >= 250);
    //  'x' then whole two-byte characters only.
    assert_int_equal((alen - 1) % 2, 0);
    assert_int_equal(strlen(p.reviews[0].body), JOBQ_REVIEW_MAX_BODY);
    jobq_page_clear(&p);
    free(html);
}

static void
test_page_per_page_bound_cuts_and_says_so(void **state)
{
    (void) state;
    char html[8192];
    int k = 0;
    for (int i = 0; i < 20; i++)
        k += snprintf(html + k, sizeof html - (size_t) k,
                      "<div itemscope itemtype=https://schema.org/Review>"
                      "<span itemprop=author>r%d</span></div>",
                      i);
    jobq_page_t p;
    assert_int_equal(jobq_page_parse(&p, html, (size_t) k, NULL, 5), JOBQ_OK);
    assert_int_equal(p.count, 5);
    assert_true(p.cut);
    assert_string_equal(p.reviews[4].author, "r4");
    jobq_page_clear(&p);
}

int
main(void)
{
    xmlInitParser();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_page_jsonld_product_gives_its_reviews_and_aggregate),
        cmocka_unit_test(
            test_page_jsonld_graph_arrays_and_untyped_review_lists),
        cmocka_unit_test(
            test_page_microdata_nested_author_rating_and_aggregate),
        cmocka_unit_test(test_page_broken_markup_still_yields_its_reviews),
        cmocka_unit_test(test_page_page_without_reviews_is_not_an_error),
        cmocka_unit_test(
            test_page_next_link_needs_the_rel_token_and_the_first_wins),
        cmocka_unit_test(test_page_bad_ratings_are_dropped_but_the_review_kept),
        cmocka_unit_test(test_page_long_fields_are_cut_on_a_character_boundary),
        cmocka_unit_test(test_page_per_page_bound_cuts_and_says_so),
        cmocka_unit_test(test_page_jsonld_numbers_as_text_are_kept_exact),
    };
    return cmocka_run_group_tests_name("page", tests, NULL, NULL);
}
