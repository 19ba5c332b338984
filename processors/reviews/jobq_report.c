/*  jobq_report.c: review figures and the HTML report with inline SVG. */
#include "jobq_report.h"

#include "jobq/jobq_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

//  Months drawn and listed: the latest ones, so a report stays small
//  whatever dates the reviews claim.
#define S_MAX_MONTHS_SHOWN 240

int
jobq_report_bucket(const jobq_review_t *r)
{
    double s = floor(jobq_review_stars(r) + 0.5);
    return s < 1 ? 1 : s > 5 ? 5 : (int) s;
}

//  The YYYY-MM starting date, if it has one.
static bool
s_month(const char *date, char out[8])
{
    if (!date || strlen(date) < 7)
        return false;
    for (int i = 0; i < 7; i++) {
        bool digit = date[i] >= '0' && date[i] <= '9';
        if (i == 4 ? date[i] != '-' : !digit)
            return false;
    }
    int m = (date[5] - '0') * 10 + (date[6] - '0');
    if (m < 1 || m > 12 || (date[7] >= '0' && date[7] <= '9'))
        return false;
    memcpy(out, date, 7);
    out[7] = '\0';
    return true;
}

//  The entry for month, added in order if new; NULL if out of memory.
static jobq_report_month_t *
s_month_entry(jobq_report_stats_t *st, size_t *cap, const char *month)
{
    size_t lo = 0, hi = st->nmonths;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(st->months[mid].month, month);
        if (c == 0)
            return &st->months[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (st->nmonths == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        jobq_report_month_t *m = realloc(st->months, ncap * sizeof *m);
        if (!m)
            return NULL;
        st->months = m;
        *cap = ncap;
    }
    memmove(&st->months[lo + 1], &st->months[lo],
            (st->nmonths - lo) * sizeof *st->months);
    st->nmonths++;
    jobq_report_month_t *e = &st->months[lo];
    memset(e, 0, sizeof *e);
    memcpy(e->month, month, 8);
    return e;
}

int
jobq_report_stats(const jobq_review_t *reviews,
                  size_t n,
                  jobq_report_stats_t *st)
{
    memset(st, 0, sizeof *st);
    size_t cap = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const jobq_review_t *r = &reviews[i];
        st->count++;
        double stars = 0;
        if (r->has_rating) {
            stars = jobq_review_stars(r);
            st->rated++;
            sum += stars;
            st->stars[jobq_report_bucket(r) - 1]++;
            if (!st->best || stars > jobq_review_stars(st->best))
                st->best = r;
            if (!st->worst || stars < jobq_review_stars(st->worst))
                st->worst = r;
        }
        char month[8];
        if (!s_month(r->date, month)) {
            st->undated++;
            continue;
        }
        jobq_report_month_t *m = s_month_entry(st, &cap, month);
        if (!m) {
            jobq_report_stats_clear(st);
            return JOBQ_ENOMEM;
        }
        m->count++;
        if (r->has_rating) {
            m->rated++;
            m->stars_sum += stars;
        }
    }
    st->average = st->rated ? sum / (double) st->rated : 0;
    return JOBQ_OK;
}

void
jobq_report_stats_clear(jobq_report_stats_t *st)
{
    free(st->months);
    memset(st, 0, sizeof *st);
}

void
jobq_html_escape(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        case '\0':
            break;
        default:
            fputc(s[i], out);
        }
    }
}

static void
s_esc(FILE *out, const char *s)
{
    if (s)
        jobq_html_escape(out, s, strlen(s));
}

static const char s_style[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;"
    "max-width:860px;margin:2em auto;padding:0 1em;color:#222;"
    "line-height:1.45}\n"
    "h1{margin-bottom:.2em}.meta{color:#666;font-size:.9em}\n"
    ".figures{display:flex;flex-wrap:wrap;gap:1em;margin:1.5em 0}\n"
    ".figure{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;"
    "min-width:9em}\n"
    ".figure b{display:block;font-size:1.8em}\n"
    "svg{max-width:100%;height:auto}\n"
    "svg text{font-size:12px;fill:#444}\n"
    "table{border-collapse:collapse}td,th{padding:.25em .8em;"
    "border-bottom:1px solid #eee;text-align:right}\n"
    "th:first-child,td:first-child{text-align:left}\n"
    ".review{border-left:4px solid #4a7;padding:.4em 1em;margin:1em 0;"
    "background:#f7faf8}\n"
    ".review.worst{border-color:#c54;background:#fbf6f5}\n"
    ".review .body{white-space:pre-wrap}\n";

//  The rating histogram: five bars.
static void
s_histogram(FILE *out, const jobq_report_stats_t *st)
{
    const int w = 520, h = 240, base = 200, top = 30;
    size_t max = 1;
    for (int i = 0; i < 5; i++)
        if (st->stars[i] > max)
            max = st->stars[i];
    fprintf(out,
            "<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
            "role=\"img\" aria-label=\"Reviews by rating\">\n",
            w, h, w, h);
    fprintf(out,
            "<line x1=\"40\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
            "stroke=\"#999\"/>\n",
            base, w - 20, base);
    for (int i = 0; i < 5; i++) {
        double bh = (double) st->stars[i] / (double) max * (base - top);
        double x = 60 + i * 90;
        fprintf(out,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"60\" height=\"%.1f\" "
                "fill=\"#4a7\"><title>%d star%s: %zu</title></rect>\n",
                x, base - bh, bh, i + 1, i ? "s" : "", st->stars[i]);
        fprintf(out,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%zu"
                "</text>\n",
                x + 30, base - bh - 6, st->stars[i]);
        fprintf(out,
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d "
                "star%s</text>\n",
                x + 30, base + 20, i + 1, i ? "s" : "");
    }
    fputs("</svg>\n", out);
}

//  Reviews per month: a line over the months shown.
static void
s_trend(FILE *out, const jobq_report_month_t *m, size_t n)
{
    const double w = 640, h = 260, left = 50, right = 20, top = 20, bottom = 50;
    const double pw = w - left - right, ph = h - top - bottom;
    //  Points keep clear of the axes, so end labels fit.
    const double x0 = left + 30, xw = pw - 60;
    size_t max = 1;
    for (size_t i = 0; i < n; i++)
        if (m[i].count > max)
            max = m[i].count;
    fprintf(out,
            "<svg viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
            "role=\"img\" aria-label=\"Reviews per month\">\n",
            w, h, w, h);
    fprintf(out,
            "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" "
            "stroke=\"#999\"/>\n"
            "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" "
            "stroke=\"#999\"/>\n",
            left, top + ph, left + pw, top + ph, left, top, left, top + ph);
    fprintf(out,
            "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%zu</text>\n"
            "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">0</text>\n",
            left - 6, top + 4, max, left - 6, top + ph + 4);
    size_t every = (n + 11) / 12;
    fputs("<polyline fill=\"none\" stroke=\"#37a\" stroke-width=\"2\" "
          "points=\"",
          out);
    for (size_t i = 0; i < n; i++) {
        double x =
            n == 1 ? x0 + xw / 2 : x0 + xw * (double) i / (double) (n - 1);
        double y = top + ph - ph * (double) m[i].count / (double) max;
        fprintf(out, "%s%.1f,%.1f", i ? " " : "", x, y);
    }
    fputs("\"/>\n", out);
    for (size_t i = 0; i < n; i++) {
        double x =
            n == 1 ? x0 + xw / 2 : x0 + xw * (double) i / (double) (n - 1);
        double y = top + ph - ph * (double) m[i].count / (double) max;
        //  Month names are checked digits and a dash: nothing to escape.
        fprintf(out,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#37a\">"
                "<title>%s: %zu</title></circle>\n",
                x, y, m[i].month, m[i].count);
        if (i % every == 0 || i == n - 1)
            fprintf(out,
                    "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s"
                    "</text>\n",
                    x, top + ph + 20, m[i].month);
    }
    fputs("</svg>\n", out);
}

static void
s_review(FILE *out,
         const char *heading,
         const char *cls,
         const jobq_review_t *r)
{
    fprintf(out, "<h2>%s</h2>\n<div class=\"review %s\">\n", heading, cls);
    fprintf(out, "<p><strong>%.1f / 5</strong>", jobq_review_stars(r));
    if (r->best_rating != 5) {
        char v[JOBQ_MP_NUMBER_LEN], b[JOBQ_MP_NUMBER_LEN];
        fprintf(out, " (%s of %s)", jobq_mp_format_double(r->rating, v),
                jobq_mp_format_double(r->best_rating, b));
    }
    if (r->title) {
        fputs(" &middot; <strong>", out);
        s_esc(out, r->title);
        fputs("</strong>", out);
    }
    fputs("</p>\n<p class=\"meta\">", out);
    s_esc(out, r->author ? r->author : "anonymous");
    if (r->date) {
        fputs(", ", out);
        s_esc(out, r->date);
    }
    fputs("</p>\n", out);
    if (r->body) {
        fputs("<p class=\"body\">", out);
        s_esc(out, r->body);
        fputs("</p>\n", out);
    }
    fputs("</div>\n", out);
}

int
jobq_report_write_html(FILE *out,
                       const jobq_report_meta_t *meta,
                       const jobq_report_stats_t *st)
{
    const char *title = meta->title ? meta->title : "Review report";
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
          "<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, "
          "initial-scale=1\">\n<title>",
          out);
    s_esc(out, title);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>",
            s_style);
    s_esc(out, title);
    fputs("</h1>\n<p class=\"meta\">From job", out);
    fputs(meta->nsources == 1 ? " " : "s ", out);
    for (size_t i = 0; i < meta->nsources; i++) {
        fputs(i ? ", <code>" : "<code>", out);
        s_esc(out, meta->sources[i]);
        fputs("</code>", out);
    }
    if (meta->generated) {
        fputs("; generated ", out);
        s_esc(out, meta->generated);
    }
    fputs(".</p>\n<div class=\"figures\">\n", out);
    fprintf(out, "<div class=\"figure\"><b>%zu</b>review%s</div>\n", st->count,
            st->count == 1 ? "" : "s");
    if (st->rated)
        fprintf(out,
                "<div class=\"figure\"><b>%.2f</b>average rating of 5</div>\n",
                st->average);
    else
        fputs("<div class=\"figure\"><b>&ndash;</b>no ratings</div>\n", out);
    fprintf(out, "<div class=\"figure\"><b>%zu</b>rated</div>\n", st->rated);
    fprintf(out, "<div class=\"figure\"><b>%zu</b>month%s</div>\n", st->nmonths,
            st->nmonths == 1 ? "" : "s");
    fputs("</div>\n<h2>Ratings</h2>\n", out);
    s_histogram(out, st);
    fputs("<h2>Reviews per month</h2>\n", out);
    size_t first =
        st->nmonths > S_MAX_MONTHS_SHOWN ? st->nmonths - S_MAX_MONTHS_SHOWN : 0;
    if (st->nmonths == 0) {
        fputs("<p>No review has a date.</p>\n", out);
    } else {
        s_trend(out, st->months + first, st->nmonths - first);
        if (first)
            fprintf(out,
                    "<p class=\"meta\">%zu earlier month%s not shown.</p>\n",
                    first, first == 1 ? "" : "s");
        fputs("<table>\n<tr><th>Month</th><th>Reviews</th>"
              "<th>Average of 5</th></tr>\n",
              out);
        for (size_t i = first; i < st->nmonths; i++) {
            const jobq_report_month_t *m = &st->months[i];
            fprintf(out, "<tr><td>%s</td><td>%zu</td><td>", m->month, m->count);
            if (m->rated)
                fprintf(out, "%.2f", m->stars_sum / (double) m->rated);
            else
                fputs("&ndash;", out);
            fputs("</td></tr>\n", out);
        }
        fputs("</table>\n", out);
    }
    if (st->undated)
        fprintf(out, "<p class=\"meta\">%zu review%s without a date.</p>\n",
                st->undated, st->undated == 1 ? "" : "s");
    if (st->best)
        s_review(out, "Best review", "best", st->best);
    if (st->worst && st->worst != st->best)
        s_review(out, "Worst review", "worst", st->worst);
    fputs("</body>\n</html>\n", out);
    return ferror(out) ? JOBQ_ESTORAGE : JOBQ_OK;
}
