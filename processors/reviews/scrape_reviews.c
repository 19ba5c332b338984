/*  scrape_reviews: the schema.org reviews of a shop's pages.

    Fetches url, extracts its reviews (jobq_page.h), follows its
    rel="next" link, and so on: never the same page twice, at most
    max_pages pages, until max_reviews distinct reviews are held or the
    output would pass JOBQ_MAX_OUTPUT_BYTES. Progress after every page;
    cancellation is seen between pages, while waiting, and during a
    transfer. docs/PROCESSORS.md has the input, the output and the errors.
*/
#include "jobq_fetch.h"
#include "jobq_processors.h"
#include "jobq_reviews.h"
#include "jobq_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_DEFAULT_AGENT "jobq-scrape_reviews/" JOBQ_VERSION_STRING

typedef struct {
    char url[JOBQ_FETCH_MAX_URL + 1];  //  the first page, normalised
    char scheme[16];                   //  its scheme
    char user_agent[256];              //  User-Agent
    int64_t max_pages;                 //  pages fetched at most
    int64_t delay_ms;                  //  pause between pages, ms
    int64_t max_reviews;               //  distinct reviews kept at most
    int64_t timeout_ms;                //  per request, ms
    int64_t connect_timeout_ms;        //  per connection, ms
    int64_t max_page_bytes;            //  body of one page, bytes
    int64_t retries;                   //  more tries after 429 or 5xx
} s_input_t;

//  Read and check the input; on a bad field fail the job for good.
static int
s_input(jobq_job_t *job, s_input_t *in)
{
    memset(in, 0, sizeof *in);
    char raw[JOBQ_FETCH_MAX_URL + 1];
    int rc = jobq_proc_input_cstr(job, "url", raw, sizeof raw);
    if (rc == JOBQ_ENOTFOUND)
        return jobq_job_fail(job, true,
                             "input 'url': required (an http, https or file "
                             "URL)");
    if (rc == JOBQ_ETOOBIG)
        return jobq_job_fail(job, true, "input 'url': longer than %d bytes",
                             JOBQ_FETCH_MAX_URL);
    if (rc != JOBQ_OK)
        return jobq_job_fail(job, true, "input 'url': must be a string");
    if (jobq_url_resolve(NULL, raw, in->url, sizeof in->url) != JOBQ_OK ||
        jobq_url_scheme(in->url, in->scheme, sizeof in->scheme) != JOBQ_OK)
        return jobq_job_fail(
            job, true, "input 'url': '%.200s' is not an absolute URL", raw);
    if (strcmp(in->scheme, "http") != 0 && strcmp(in->scheme, "https") != 0 &&
        strcmp(in->scheme, "file") != 0)
        return jobq_job_fail(job, true,
                             "input 'url': scheme '%s' is not allowed (http, "
                             "https or file)",
                             in->scheme);
    snprintf(in->user_agent, sizeof in->user_agent, "%s", S_DEFAULT_AGENT);
    rc = jobq_proc_input_cstr(job, "user_agent", in->user_agent,
                              sizeof in->user_agent);
    bool agent_ok = rc == JOBQ_OK || rc == JOBQ_ENOTFOUND;
    //  A header value: printable ASCII only, so no header can be injected.
    for (const char *p = in->user_agent; agent_ok && *p; p++)
        agent_ok = *p >= 0x20 && *p < 0x7f;
    if (!agent_ok)
        return jobq_job_fail(job, true,
                             "input 'user_agent': up to 255 printable ASCII "
                             "characters");
    static const struct {
        const char *key;   //  input field
        size_t off;        //  in s_input_t
        int64_t def;       //  when absent
        int64_t min, max;  //  allowed range
    } ints[] = {
        {"max_pages", offsetof(s_input_t, max_pages), 10, 1, 100},
        {"delay_ms", offsetof(s_input_t, delay_ms), 0, 0, 60000},
        {"max_reviews", offsetof(s_input_t, max_reviews), 1000, 1, 10000},
        {"timeout_ms", offsetof(s_input_t, timeout_ms), 30000, 100, 120000},
        {"connect_timeout_ms", offsetof(s_input_t, connect_timeout_ms), 10000,
         100, 60000},
        {"max_page_bytes", offsetof(s_input_t, max_page_bytes), 5 << 20, 1024,
         16 << 20},
        {"retries", offsetof(s_input_t, retries), 3, 0, 5},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t *v = (int64_t *) ((char *) in + ints[i].off);
        *v = ints[i].def;
        if (jobq_proc_input_range(job, ints[i].key, ints[i].min, ints[i].max,
                                  v) != JOBQ_OK)
            return JOBQ_EFAILED;
    }
    return JOBQ_OK;
}

static bool
s_cancelled(void *arg)
{
    return jobq_job_cancelled(arg);
}

static int
s_wait(void *arg, uint64_t ms)
{
    return jobq_job_sleep(arg, ms);
}

//  Whether a Content-Type names HTML (no Content-Type, as for files, is
//  taken as HTML); *charset gets its charset parameter, or "".
static bool
s_is_html(const char *ctype, char *charset, size_t cap)
{
    charset[0] = '\0';
    while (*ctype == ' ')
        ctype++;
    if (!*ctype)
        return true;
    size_t n = strcspn(ctype, "; ");
    bool html =
        (n == 9 && strncasecmp(ctype, "text/html", n) == 0) ||
        (n == 21 && strncasecmp(ctype, "application/xhtml+xml", n) == 0);
    const char *cs = NULL;
    for (const char *p = ctype; *p && !cs; p++)
        if (strncasecmp(p, "charset=", 8) == 0)
            cs = p;
    if (cs) {
        cs += 8;
        if (*cs == '"')
            cs++;
        size_t k = 0;
        while (k + 1 < cap && cs[k] &&
               strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789-_.:",
                      cs[k]))
            k++;
        memcpy(charset, cs, k);
        charset[k] = '\0';
    }
    return html;
}

//  Whether a failed fetch should not be retried.
static bool
s_permanent(int rc, long status)
{
    if (rc == JOBQ_EFAILED)
        return status >= 400 && status < 500 && status != 408 && status != 429;
    return rc == JOBQ_EINVAL || rc == JOBQ_ENOTFOUND || rc == JOBQ_ETOOBIG;
}

typedef struct {
    char **urls;  //  pages visited, normalised, owned
    size_t n;     //  entries in urls
    size_t cap;   //  entries allocated
} s_seen_t;

static bool
s_seen_has(const s_seen_t *s, const char *url)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->urls[i], url) == 0)
            return true;
    return false;
}

static int
s_seen_add(s_seen_t *s, const char *url)
{
    if (s_seen_has(s, url))
        return JOBQ_OK;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **u = realloc(s->urls, cap * sizeof *u);
        if (!u)
            return JOBQ_ENOMEM;
        s->urls = u;
        s->cap = cap;
    }
    s->urls[s->n] = strdup(url);
    if (!s->urls[s->n])
        return JOBQ_ENOMEM;
    s->n++;
    return JOBQ_OK;
}

static void
s_seen_clear(s_seen_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->urls[i]);
    free(s->urls);
    memset(s, 0, sizeof *s);
}

//  What the scrape found, to be written as the output.
typedef struct {
    const s_input_t *in;         //  the input
    s_seen_t fetched;            //  pages fetched, in order (effective URLs)
    s_seen_t visited;            //  every URL asked for or redirected to
    jobq_review_set_t reviews;   //  distinct reviews
    bool has_aggregate;          //  aggregate is set
    jobq_aggregate_t aggregate;  //  the first one published
    bool truncated;              //  reviews were left out
    char stopped[400];           //  why no further page was fetched
} s_scrape_t;

//  Everything but the reviews; review_count is n.
static void
s_write_head(const s_scrape_t *s, size_t n, bool truncated, jobq_mp_writer_t *w)
{
    jobq_mp_write_map(w, s->has_aggregate ? 8 : 7);
    jobq_mp_write_cstr(w, "url");
    jobq_mp_write_cstr(w, s->in->url);
    jobq_mp_write_cstr(w, "pages_fetched");
    jobq_mp_write_uint(w, s->fetched.n);
    jobq_mp_write_cstr(w, "pages");
    jobq_mp_write_array(w, (uint32_t) s->fetched.n);
    for (size_t i = 0; i < s->fetched.n; i++)
        jobq_mp_write_cstr(w, s->fetched.urls[i]);
    jobq_mp_write_cstr(w, "review_count");
    jobq_mp_write_uint(w, n);
    jobq_mp_write_cstr(w, "truncated");
    jobq_mp_write_bool(w, truncated);
    jobq_mp_write_cstr(w, "stopped");
    jobq_mp_write_cstr(w, s->stopped);
    if (s->has_aggregate) {
        const jobq_aggregate_t *a = &s->aggregate;
        jobq_mp_write_cstr(w, "aggregate_rating");
        jobq_mp_write_map(w, 3);
        jobq_mp_write_cstr(w, "rating_value");
        if (a->has_value)
            jobq_mp_write_double(w, a->value);
        else
            jobq_mp_write_nil(w);
        jobq_mp_write_cstr(w, "review_count");
        if (a->has_count)
            jobq_mp_write_int(w, a->count);
        else
            jobq_mp_write_nil(w);
        jobq_mp_write_cstr(w, "best_rating");
        jobq_mp_write_double(w, a->best);
    }
}

//  The output: the head, then as many reviews as fit in the limit.
static int
s_output(jobq_job_t *job, const s_scrape_t *s)
{
    jobq_mp_writer_t head;
    jobq_mp_writer_init(&head, JOBQ_MAX_OUTPUT_BYTES);
    s_write_head(s, s->reviews.count, true, &head);
    int rc = jobq_mp_writer_error(&head);
    size_t head_len = head.len;
    jobq_mp_writer_fini(&head);
    if (rc != JOBQ_OK)
        return jobq_job_fail(job, true, "output too large: %s",
                             jobq_strerror(rc));
    //  "reviews" (8 bytes) and the array header (at most 5) follow the head.
    size_t room = JOBQ_MAX_OUTPUT_BYTES - 16 > head_len
                      ? JOBQ_MAX_OUTPUT_BYTES - 16 - head_len
                      : 0;
    size_t n = s->reviews.count;
    while (n > 0 && jobq_review_set_bytes(&s->reviews, n) > room)
        n--;
    jobq_mp_writer_t *out = jobq_job_output(job);
    //  The head's map header counts the reviews entry too.
    s_write_head(s, n, s->truncated || n < s->reviews.count, out);
    jobq_mp_write_cstr(out, "reviews");
    jobq_mp_write_array(out, (uint32_t) n);
    jobq_mp_write_raw(out, s->reviews.buf.data,
                      jobq_review_set_bytes(&s->reviews, n));
    return JOBQ_OK;
}

//  Fetch and read one page; *done set when no page should follow. On a
//  failure of the first page, or a cancellation, fails the job.
static int
s_page(
    jobq_job_t *job, s_scrape_t *s, jobq_fetch_t *fetch, char *url, bool *done)
{
    const s_input_t *in = s->in;
    size_t page_no = s->fetched.n + 1;
    jobq_fetch_result_t res;
    int rc = jobq_fetch_get(fetch, url, &res);
    char charset[40] = "";
    if (rc == JOBQ_OK &&
        !s_is_html(res.content_type, charset, sizeof charset)) {
        snprintf(res.error, sizeof res.error,
                 "%.200s is not HTML (Content-Type: %.80s)", url,
                 res.content_type);
        rc = JOBQ_EINVAL;
    }
    if (rc == JOBQ_ECANCELLED || (rc != JOBQ_OK && page_no == 1)) {
        jobq_fetch_result_clear(&res);
        if (rc == JOBQ_ECANCELLED)
            return jobq_job_fail(job, false, "cancelled");
        return jobq_job_fail(job, s_permanent(rc, res.status), "%s",
                             res.error[0] ? res.error : jobq_strerror(rc));
    }
    if (rc != JOBQ_OK) {
        //  Later pages: keep what the earlier ones gave.
        snprintf(s->stopped, sizeof s->stopped, "error on page %zu: %s",
                 page_no, res.error[0] ? res.error : jobq_strerror(rc));
        *done = true;
        return JOBQ_OK;
    }
    jobq_page_t page;
    rc = jobq_page_parse(&page, res.body, res.len, charset[0] ? charset : NULL,
                         (size_t) in->max_reviews);
    if (rc == JOBQ_OK)
        rc = s_seen_add(&s->fetched, res.url);
    if (rc == JOBQ_OK)
        rc = s_seen_add(&s->visited, res.url);
    if (rc == JOBQ_OK)
        rc = s_seen_add(&s->visited, url);
    if (rc != JOBQ_OK) {
        jobq_fetch_result_clear(&res);
        jobq_page_clear(&page);
        return jobq_job_fail(job, false, "page %zu: %s", page_no,
                             jobq_strerror(rc));
    }
    if (page.has_aggregate && !s->has_aggregate) {
        s->has_aggregate = true;
        s->aggregate = page.aggregate;
    }
    for (size_t i = 0; i < page.count && !*done; i++) {
        rc = jobq_review_set_add(&s->reviews, &page.reviews[i]);
        if (rc == JOBQ_ETOOBIG) {
            s->truncated = true;
            snprintf(s->stopped, sizeof s->stopped, "output limit reached");
            *done = true;
        } else if (rc == JOBQ_ENOMEM) {
            jobq_fetch_result_clear(&res);
            jobq_page_clear(&page);
            return jobq_job_fail(job, false, "out of memory");
        }
        if (!*done && s->reviews.count >= (size_t) in->max_reviews) {
            //  Reviews may remain here or on the pages after.
            s->truncated |= i + 1 < page.count || page.cut || page.next;
            snprintf(s->stopped, sizeof s->stopped,
                     "max_reviews (%lld) reached", (long long) in->max_reviews);
            *done = true;
        }
    }
    if (page.cut && !*done)
        s->truncated = true;  //  the page had more than could be read
    //  Where the next page is: relative to <base href> if the page has one.
    char base[JOBQ_FETCH_MAX_URL + 1], next[JOBQ_FETCH_MAX_URL + 1] = "";
    char scheme[16] = "";
    snprintf(base, sizeof base, "%s", res.url);
    if (page.base)
        jobq_url_resolve(res.url, page.base, base, sizeof base);
    if (!*done && !page.next) {
        snprintf(s->stopped, sizeof s->stopped, "no next page");
        *done = true;
    } else if (!*done &&
               (jobq_url_resolve(base, page.next, next, sizeof next) !=
                    JOBQ_OK ||
                jobq_url_scheme(next, scheme, sizeof scheme) != JOBQ_OK)) {
        snprintf(s->stopped, sizeof s->stopped,
                 "next link '%.200s' is not a valid URL", page.next);
        *done = true;
    } else if (!*done &&
               !(strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0 ||
                 (strcmp(scheme, "file") == 0 &&
                  strcmp(in->scheme, "file") == 0))) {
        //  A web page must not lead the worker to its own files.
        snprintf(s->stopped, sizeof s->stopped,
                 "next link %.200s has a scheme not allowed here", next);
        *done = true;
    } else if (!*done && s_seen_has(&s->visited, next)) {
        snprintf(s->stopped, sizeof s->stopped,
                 "next page %.200s was already fetched", next);
        *done = true;
    }
    jobq_job_progress(job,
                      (unsigned) (100 * s->fetched.n / (size_t) in->max_pages),
                      "page %zu of at most %lld: %.300s, %zu review%s so far",
                      page_no, (long long) in->max_pages, res.url,
                      s->reviews.count, s->reviews.count == 1 ? "" : "s");
    if (!*done)
        memcpy(url, next, strlen(next) + 1);
    jobq_fetch_result_clear(&res);
    jobq_page_clear(&page);
    return JOBQ_OK;
}

int
jobq_proc_scrape_reviews(jobq_job_t *job, void *state)
{
    s_input_t in;
    if (s_input(job, &in) != JOBQ_OK)
        return JOBQ_EFAILED;
    jobq_fetch_opts_t fo = {
        .connect_timeout_ms = (uint64_t) (in.connect_timeout_ms < in.timeout_ms
                                              ? in.connect_timeout_ms
                                              : in.timeout_ms),
        .timeout_ms = (uint64_t) in.timeout_ms,
        .max_bytes = (size_t) in.max_page_bytes,
        .max_redirects = 5,
        .retries = (unsigned) in.retries,
        .max_retry_wait_ms = 30000,
        .user_agent = in.user_agent,
        .cancelled = s_cancelled,
        .wait = s_wait,
        .arg = job,
        .guard = state,
    };
    s_scrape_t s;
    memset(&s, 0, sizeof s);
    s.in = &in;
    jobq_review_set_init(&s.reviews, JOBQ_MAX_OUTPUT_BYTES);
    jobq_fetch_t *fetch = jobq_fetch_new(&fo);
    if (!fetch) {
        jobq_review_set_fini(&s.reviews);
        return jobq_job_fail(job, false, "out of memory");
    }
    char url[JOBQ_FETCH_MAX_URL + 1];
    memcpy(url, in.url, sizeof url);
    jobq_job_progress(job, 0, "fetching %.300s", url);
    int rc = JOBQ_OK;
    bool done = false;
    while (!done) {
        if ((int64_t) s.fetched.n >= in.max_pages) {
            snprintf(s.stopped, sizeof s.stopped, "max_pages (%lld) reached",
                     (long long) in.max_pages);
            break;
        }
        if (s.fetched.n > 0 && in.delay_ms > 0 &&
            jobq_job_sleep(job, (uint64_t) in.delay_ms) != JOBQ_OK) {
            rc = jobq_job_fail(job, false, "cancelled");
            break;
        }
        if (jobq_job_cancelled(job)) {
            rc = jobq_job_fail(job, false, "cancelled");
            break;
        }
        rc = s_page(job, &s, fetch, url, &done);
        if (rc != JOBQ_OK)
            break;
    }
    if (rc == JOBQ_OK)
        rc = s_output(job, &s);
    if (rc == JOBQ_OK)
        jobq_job_progress(job, 100, "%zu review%s from %zu page%s",
                          s.reviews.count, s.reviews.count == 1 ? "" : "s",
                          s.fetched.n, s.fetched.n == 1 ? "" : "s");
    jobq_fetch_destroy(&fetch);
    jobq_review_set_fini(&s.reviews);
    s_seen_clear(&s.fetched);
    s_seen_clear(&s.visited);
    return rc;
}
