/*  jobq_page.h: the reviews of one HTML page. The only module that
    touches libxml2.

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
#ifndef JOBQ_PAGE_H_INCLUDED
#define JOBQ_PAGE_H_INCLUDED

#include "jobq_review.h"

#define JOBQ_REVIEWS_PER_PAGE  5000     //  reviews taken from one page
#define JOBQ_REVIEWS_LD_BLOCKS 64       //  JSON-LD scripts read per page
#define JOBQ_REVIEWS_LD_DEPTH  12       //  JSON-LD nesting walked
#define JOBQ_REVIEWS_MAX_STEPS 2000000  //  tree and JSON steps per page

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

#endif
