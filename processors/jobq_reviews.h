/*  jobq_reviews.h: reviews, and finding them in an HTML page. The only
    module that touches libxml2.

    A page is parsed with libxml2's forgiving HTML parser (broken markup is
    repaired, never fatal; no network access). Reviews come from two
    schema.org encodings:

    - JSON-LD: every <script type="application/ld+json"> is parsed with
      jansson and walked for objects of @type Review (also UserReview and
      CriticReview), alone, in arrays, in @graph, or in the `review` list
      of another object such as a Product; objects of @type AggregateRating
      or under an `aggregateRating` key give the page's aggregate rating.
    - Microdata: every element with `itemscope` and an `itemtype` ending in
      /Review is a review; its `itemprop`s (not those of items nested in
      it) give author (text, or the `name` of a nested Person), reviewRating
      (a nested Rating's ratingValue and bestRating), datePublished, name
      and reviewBody; an item of type AggregateRating gives the aggregate.

    The page's next page is the href of the first <a> or <link> whose rel
    holds the token "next", and its <base href> is kept for resolving it.

    Everything is bounded: reviews per page, bytes per field (longer text
    is cut at a character boundary), JSON-LD scripts per page and their
    nesting, and the number of tree steps spent on one page, so a hostile
    page costs at most a fixed amount of work.
*/
#ifndef JOBQ_REVIEWS_H_INCLUDED
#define JOBQ_REVIEWS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobq/jobq_mp.h"

#define JOBQ_REVIEW_MAX_AUTHOR 256      //  bytes kept of an author
#define JOBQ_REVIEW_MAX_DATE   64       //  bytes kept of a date
#define JOBQ_REVIEW_MAX_TITLE  512      //  bytes kept of a title
#define JOBQ_REVIEW_MAX_BODY   8192     //  bytes kept of a body
#define JOBQ_REVIEWS_PER_PAGE  5000     //  reviews taken from one page
#define JOBQ_REVIEWS_LD_BLOCKS 64       //  JSON-LD scripts read per page
#define JOBQ_REVIEWS_LD_DEPTH  12       //  JSON-LD nesting walked
#define JOBQ_REVIEWS_MAX_STEPS 2000000  //  tree and JSON steps per page

//  One review. Strings are owned UTF-8, NULL when absent.
typedef struct {
    char *author;        //  author, or the author's name
    char *date;          //  datePublished, as published
    char *title;         //  name or headline
    char *body;          //  reviewBody or description
    double rating;       //  ratingValue, when has_rating
    double best_rating;  //  bestRating (5 when not given), when has_rating
    bool has_rating;     //  0 <= rating <= best_rating, 0 < best_rating
} jobq_review_t;

//  A page's AggregateRating.
typedef struct {
    bool has_value;  //  value is set
    double value;    //  ratingValue
    bool has_count;  //  count is set
    int64_t count;   //  reviewCount, or ratingCount
    double best;     //  bestRating, 5 when not given
} jobq_aggregate_t;

//  What one page holds.
typedef struct {
    jobq_review_t *reviews;      //  in the order found, owned
    size_t count;                //  entries in reviews
    size_t cap;                  //  entries allocated
    bool has_aggregate;          //  aggregate is set
    jobq_aggregate_t aggregate;  //  the first aggregate rating found
    char *next;                  //  raw href of the next page, or NULL
    char *base;                  //  raw <base href>, or NULL
    unsigned ld_blocks;          //  JSON-LD scripts read
    unsigned ld_errors;          //  of those, not valid JSON (skipped)
    bool cut;                    //  a bound stopped the extraction early
} jobq_page_t;

//  Parse html (len bytes; encoding from the Content-Type, or NULL to let
//  the page say) and fill *page (zeroed first; clear it after), taking at
//  most max_reviews reviews (at most JOBQ_REVIEWS_PER_PAGE). A page
//  without reviews, or one that is not HTML at all, is not an error.
//  JOBQ_OK, JOBQ_ETOOBIG (len above INT_MAX) or JOBQ_ENOMEM.
int jobq_page_parse(jobq_page_t *page,
                    const char *html,
                    size_t len,
                    const char *encoding,
                    size_t max_reviews);
void jobq_page_clear(jobq_page_t *page);

//  Free the strings of r and zero it.
void jobq_review_clear(jobq_review_t *r);

//  The rating out of 5 (rating * 5 / best_rating). r must have a rating.
double jobq_review_stars(const jobq_review_t *r);

//  Write r as one map {author, rating, best_rating, date, title, body},
//  absent values as nil. Errors stay in w.
void jobq_review_write(const jobq_review_t *r, jobq_mp_writer_t *w);

//  Read one map written by jobq_review_write (or any map with some of those
//  keys; ratings may be ints or floats, and bad ones are dropped) into *r
//  (clear it after). JOBQ_OK, JOBQ_EINVAL (not a map) or JOBQ_ENOMEM.
int jobq_review_read(jobq_bytes_t map, jobq_review_t *r);

//  Distinct reviews, kept encoded (as jobq_review_write writes them), in
//  the order first added. Two reviews are the same when every field is.
typedef struct {
    jobq_mp_writer_t buf;  //  the encoded reviews, back to back
    size_t *ends;          //  end offset in buf of each review
    size_t count;          //  reviews held
    size_t cap;            //  entries allocated in ends
    size_t *table;         //  open addressing: index + 1, 0 = free
    size_t tcap;           //  slots in table, a power of two
    jobq_mp_writer_t tmp;  //  scratch for one review
} jobq_review_set_t;

//  An empty set that holds at most max_bytes of encoded reviews.
void jobq_review_set_init(jobq_review_set_t *s, size_t max_bytes);
void jobq_review_set_fini(jobq_review_set_t *s);

//  Add r unless the set has it. JOBQ_OK (added), JOBQ_EEXIST (already
//  there), JOBQ_ETOOBIG (it would pass max_bytes; not added), JOBQ_ENOMEM.
int jobq_review_set_add(jobq_review_set_t *s, const jobq_review_t *r);

//  The encoded bytes of the first n reviews.
size_t jobq_review_set_bytes(const jobq_review_set_t *s, size_t n);

#endif
