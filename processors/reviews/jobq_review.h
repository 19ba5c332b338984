/*  jobq_review.h: one review as the scraper keeps it, the rules its text
    follows, its encoding as a msgpack map, and a set that keeps distinct
    reviews in the order they were first seen.
*/
#ifndef JOBQ_REVIEW_H_INCLUDED
#define JOBQ_REVIEW_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobq/jobq_mp.h"

#define JOBQ_REVIEW_MAX_AUTHOR 256   //  bytes kept of an author
#define JOBQ_REVIEW_MAX_DATE   64    //  bytes kept of a date
#define JOBQ_REVIEW_MAX_TITLE  512   //  bytes kept of a title
#define JOBQ_REVIEW_MAX_BODY   8192  //  bytes kept of a body

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

//  How jobq_review_text tidies white space (spaces, tabs, line breaks and
//  U+00A0).
typedef enum {
    JOBQ_TEXT_LINE,  //  every run becomes one space
    JOBQ_TEXT_FLOW,  //  a run with a line break becomes one '\n', others
                     //  one space
    JOBQ_TEXT_KEEP   //  kept as is, but trimmed at both ends
} jobq_text_mode_t;

//  A tidy, NUL-terminated copy of s[0..len) (the caller frees it), cut at
//  max bytes on a character boundary. NULL when it is empty or holds a NUL
//  byte, or when memory ran out (then *err is set to JOBQ_ENOMEM).
char *jobq_review_text(
    const char *s, size_t len, size_t max, jobq_text_mode_t mode, int *err);

//  True for a usable rating: both finite, 0 < best <= 1000, 0 <= value
//  <= best.
bool jobq_review_rating_ok(double value, double best);

//  Free the strings of r and zero it.
void jobq_review_clear(jobq_review_t *r);

//  The rating out of 5 (rating * 5 / best_rating). r must have a rating.
double jobq_review_stars(const jobq_review_t *r);

//  The keys of the map jobq_review_write writes, in its order.
#define JOBQ_REVIEW_NKEYS 6
extern const char *const jobq_review_keys[JOBQ_REVIEW_NKEYS];

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
