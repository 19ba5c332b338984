/*  jobq_review.c: one review, its text rules, its encoding, and the set of
    distinct reviews. */
#include "jobq_review.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

//  --- text -------------------------------------------------------------------

static bool
s_is_space(const char *p, const char *end, size_t *n)
{
    if (p < end && strchr(" \t\n\r\f\v", *p) && *p) {
        *n = 1;
        return true;
    }
    //  U+00A0, no-break space
    if (end - p >= 2 && (unsigned char) p[0] == 0xc2 &&
        (unsigned char) p[1] == 0xa0) {
        *n = 2;
        return true;
    }
    return false;
}

char *
jobq_review_text(
    const char *s, size_t len, size_t max, jobq_text_mode_t mode, int *err)
{
    char *out = malloc(len + 1);
    if (!out) {
        *err = JOBQ_ENOMEM;
        return NULL;
    }
    const char *p = s, *end = s + len;
    size_t o = 0, n;
    if (mode == JOBQ_TEXT_KEEP) {
        while (p < end && s_is_space(p, end, &n))
            p += n;
        while (end > p) {
            if (strchr(" \t\n\r\f\v", end[-1]) && end[-1])
                end--;
            else if (end - p >= 2 && (unsigned char) end[-2] == 0xc2 &&
                     (unsigned char) end[-1] == 0xa0)
                end -= 2;
            else
                break;
        }
        memcpy(out, p, (size_t) (end - p));
        o = (size_t) (end - p);
    } else {
        bool pending = false, newline = false;
        while (p < end) {
            if (s_is_space(p, end, &n)) {
                pending = true;
                newline |= *p == '\n';
                p += n;
                continue;
            }
            if (pending && o > 0)
                out[o++] = mode == JOBQ_TEXT_FLOW && newline ? '\n' : ' ';
            pending = newline = false;
            out[o++] = *p++;
        }
    }
    if (o > max) {
        o = max;
        //  Back to the first byte of a character cut in two.
        while (o > 0 && ((unsigned char) out[o] & 0xc0) == 0x80)
            o--;
    }
    out[o] = '\0';
    if (o == 0 || memchr(out, '\0', o)) {
        free(out);
        return NULL;
    }
    return out;
}

bool
jobq_review_rating_ok(double value, double best)
{
    return isfinite(value) && isfinite(best) && best > 0 && best <= 1000 &&
           value >= 0 && value <= best;
}

//  --- the record -------------------------------------------------------------

void
jobq_review_clear(jobq_review_t *r)
{
    free(r->author);
    free(r->date);
    free(r->title);
    free(r->body);
    memset(r, 0, sizeof *r);
}

double
jobq_review_stars(const jobq_review_t *r)
{
    return r->rating * 5.0 / r->best_rating;
}

//  test_processors checks that an export of no reviews has the header an
//  export of some has.
const char *const jobq_review_keys[JOBQ_REVIEW_NKEYS] = {
    "author", "rating", "best_rating", "date", "title", "body"};

void
jobq_review_write(const jobq_review_t *r, jobq_mp_writer_t *w)
{
    jobq_mp_write_map(w, JOBQ_REVIEW_NKEYS);
    jobq_mp_write_cstr(w, "author");
    jobq_mp_write_cstr(w, r->author);
    jobq_mp_write_cstr(w, "rating");
    if (r->has_rating)
        jobq_mp_write_double(w, r->rating);
    else
        jobq_mp_write_nil(w);
    jobq_mp_write_cstr(w, "best_rating");
    if (r->has_rating)
        jobq_mp_write_double(w, r->best_rating);
    else
        jobq_mp_write_nil(w);
    jobq_mp_write_cstr(w, "date");
    jobq_mp_write_cstr(w, r->date);
    jobq_mp_write_cstr(w, "title");
    jobq_mp_write_cstr(w, r->title);
    jobq_mp_write_cstr(w, "body");
    jobq_mp_write_cstr(w, r->body);
}

static bool
s_read_number(jobq_mp_reader_t *rd, double *v)
{
    int64_t i;
    uint64_t u;
    switch (jobq_mp_peek(rd)) {
    case JOBQ_MP_FLOAT:
        return jobq_mp_read_double(rd, v) == JOBQ_OK && isfinite(*v);
    case JOBQ_MP_INT:
        if (jobq_mp_read_int(rd, &i) != JOBQ_OK)
            return false;
        *v = (double) i;
        return true;
    case JOBQ_MP_UINT:
        if (jobq_mp_read_uint(rd, &u) != JOBQ_OK)
            return false;
        *v = (double) u;
        return true;
    default:
        return false;
    }
}

int
jobq_review_read(jobq_bytes_t map, jobq_review_t *r)
{
    static const struct {
        const char *key;  //  map key
        size_t off;       //  its string field
        size_t max;       //  bytes kept
    } strs[] = {
        {"author", offsetof(jobq_review_t, author), JOBQ_REVIEW_MAX_AUTHOR},
        {"date", offsetof(jobq_review_t, date), JOBQ_REVIEW_MAX_DATE},
        {"title", offsetof(jobq_review_t, title), JOBQ_REVIEW_MAX_TITLE},
        {"body", offsetof(jobq_review_t, body), JOBQ_REVIEW_MAX_BODY},
    };
    memset(r, 0, sizeof *r);
    jobq_mp_reader_t rd;
    jobq_mp_reader_init(&rd, map.ptr, map.len);
    uint32_t n;
    if (jobq_mp_read_map(&rd, &n) != JOBQ_OK)
        return JOBQ_EINVAL;
    double rating = 0, best = 5;
    bool has_value = false;
    int err = JOBQ_OK;
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t k, s;
        if (jobq_mp_read_str(&rd, &k) != JOBQ_OK) {
            jobq_review_clear(r);
            return JOBQ_EINVAL;
        }
        bool used = false;
        for (size_t j = 0; j < sizeof strs / sizeof strs[0]; j++) {
            char **field = (char **) ((char *) r + strs[j].off);
            if (k.len != strlen(strs[j].key) ||
                memcmp(k.ptr, strs[j].key, k.len) != 0 || *field ||
                jobq_mp_peek(&rd) != JOBQ_MP_STR)
                continue;
            jobq_mp_read_str(&rd, &s);
            *field = jobq_review_text(s.ptr, s.len, strs[j].max, JOBQ_TEXT_KEEP,
                                      &err);
            used = true;
            break;
        }
        if (!used && k.len == 6 && memcmp(k.ptr, "rating", 6) == 0)
            used = has_value = s_read_number(&rd, &rating);
        else if (!used && k.len == 11 && memcmp(k.ptr, "best_rating", 11) == 0)
            used = s_read_number(&rd, &best);
        if (!used && jobq_mp_skip(&rd, NULL) != JOBQ_OK) {
            jobq_review_clear(r);
            return JOBQ_EINVAL;
        }
    }
    if (err) {
        jobq_review_clear(r);
        return err;
    }
    if (has_value && jobq_review_rating_ok(rating, best)) {
        r->rating = rating;
        r->best_rating = best;
        r->has_rating = true;
    }
    return JOBQ_OK;
}

//  --- the set of distinct reviews -------------------------------------------

static uint64_t
s_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;  //  FNV-1a
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static size_t
s_start(const jobq_review_set_t *s, size_t i)
{
    return i ? s->ends[i - 1] : 0;
}

void
jobq_review_set_init(jobq_review_set_t *s, size_t max_bytes)
{
    memset(s, 0, sizeof *s);
    jobq_mp_writer_init(&s->buf, max_bytes);
    jobq_mp_writer_init(&s->tmp, max_bytes);
}

void
jobq_review_set_fini(jobq_review_set_t *s)
{
    jobq_mp_writer_fini(&s->buf);
    jobq_mp_writer_fini(&s->tmp);
    free(s->ends);
    free(s->table);
    memset(s, 0, sizeof *s);
}

static int
s_rehash(jobq_review_set_t *s, size_t tcap)
{
    size_t *t = calloc(tcap, sizeof *t);
    if (!t)
        return JOBQ_ENOMEM;
    for (size_t i = 0; i < s->count; i++) {
        size_t a = s_start(s, i);
        size_t h = (size_t) s_hash(s->buf.data + a, s->ends[i] - a);
        size_t k = h & (tcap - 1);
        while (t[k])
            k = (k + 1) & (tcap - 1);
        t[k] = i + 1;
    }
    free(s->table);
    s->table = t;
    s->tcap = tcap;
    return JOBQ_OK;
}

int
jobq_review_set_add(jobq_review_set_t *s, const jobq_review_t *r)
{
    jobq_mp_writer_reset(&s->tmp);
    jobq_review_write(r, &s->tmp);
    if (jobq_mp_writer_error(&s->tmp))
        return jobq_mp_writer_error(&s->tmp);
    if ((s->count + 1) * 2 > s->tcap &&
        s_rehash(s, s->tcap ? s->tcap * 2 : 64) != JOBQ_OK)
        return JOBQ_ENOMEM;
    const uint8_t *p = s->tmp.data;
    size_t n = s->tmp.len;
    size_t k = (size_t) s_hash(p, n) & (s->tcap - 1);
    for (; s->table[k]; k = (k + 1) & (s->tcap - 1)) {
        size_t i = s->table[k] - 1, a = s_start(s, i);
        if (s->ends[i] - a == n && memcmp(s->buf.data + a, p, n) == 0)
            return JOBQ_EEXIST;
    }
    if (n > s->buf.max - s->buf.len)
        return JOBQ_ETOOBIG;
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        size_t *e = realloc(s->ends, cap * sizeof *e);
        if (!e)
            return JOBQ_ENOMEM;
        s->ends = e;
        s->cap = cap;
    }
    jobq_mp_write_raw(&s->buf, p, n);
    if (jobq_mp_writer_error(&s->buf))
        return jobq_mp_writer_error(&s->buf);
    s->ends[s->count] = s->buf.len;
    s->table[k] = ++s->count;
    return JOBQ_OK;
}

size_t
jobq_review_set_bytes(const jobq_review_set_t *s, size_t n)
{
    return n == 0 ? 0 : s->ends[(n < s->count ? n : s->count) - 1];
}
