/*  jobq_report.h: figures over a set of reviews, and the HTML report that
    shows them, for generate_report.

    Ratings are compared out of 5: a rating of 8 out of 10 counts as 4. The
    distribution puts each rated review in the bucket of its rating out of
    5 rounded half up, and clamped to 1..5 (so a 0 counts as 1). A month is
    the YYYY-MM that starts a review's date (ISO 8601 dates, the schema.org
    norm); reviews without one are counted as undated. The best review is
    the first with the highest rating, the worst the first with the lowest.

    The report is one self-contained HTML5 file: inline CSS, charts drawn
    as inline SVG (the rating histogram and the reviews per month), no
    scripts and nothing fetched from elsewhere; every piece of text from
    reviews or input is HTML-escaped.
*/
#ifndef JOBQ_REPORT_H_INCLUDED
#define JOBQ_REPORT_H_INCLUDED

#include <stdio.h>

#include "jobq_review.h"

//  Reviews of one month.
typedef struct {
    char month[8];     //  "YYYY-MM"
    size_t count;      //  reviews
    size_t rated;      //  of those, with a rating
    double stars_sum;  //  sum of their ratings out of 5
} jobq_report_month_t;

typedef struct {
    size_t count;                 //  reviews
    size_t rated;                 //  with a rating
    double average;               //  mean rating out of 5, 0 when none
    size_t stars[5];              //  rated reviews with 1..5 stars
    size_t undated;               //  reviews without a YYYY-MM date
    jobq_report_month_t *months;  //  ascending, owned
    size_t nmonths;               //  entries in months
    const jobq_review_t *best;    //  borrowed from the reviews, or NULL
    const jobq_review_t *worst;   //  borrowed from the reviews, or NULL
} jobq_report_stats_t;

//  Compute the figures of reviews[0..n) into *st (zeroed first; clear it
//  after). st borrows from reviews. JOBQ_OK or JOBQ_ENOMEM.
int jobq_report_stats(const jobq_review_t *reviews,
                      size_t n,
                      jobq_report_stats_t *st);
void jobq_report_stats_clear(jobq_report_stats_t *st);

//  The star bucket (1..5) of a rated review.
int jobq_report_bucket(const jobq_review_t *r);

//  Write s (len bytes) with & < > " ' escaped.
void jobq_html_escape(FILE *out, const char *s, size_t len);

//  What the report shows besides the figures.
typedef struct {
    const char *title;           //  the heading, escaped when written
    const char *const *sources;  //  the source job ids
    size_t nsources;             //  entries in sources
    const char *generated;       //  a timestamp to print, or NULL
} jobq_report_meta_t;

//  Write the whole HTML document. JOBQ_OK or JOBQ_ESTORAGE.
int jobq_report_write_html(FILE *out,
                           const jobq_report_meta_t *meta,
                           const jobq_report_stats_t *st);

#endif
