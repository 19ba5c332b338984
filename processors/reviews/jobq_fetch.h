/*  jobq_fetch.h: bounded fetches of http, https and file URLs, and URL
    arithmetic, for processors that read the web (scrape_reviews). The only
    module that touches libcurl.

    Every fetch is guarded (jobq_netguard.h): each address it is about to
    connect to, for the URL, each redirect and each next link, after DNS,
    must be public or allowed, and a file:// URL must lie in the allowed
    directory. A refusal says only that the URL was refused, nothing about
    what is behind it. Proxies from the environment are not used, so the
    address checked is the one connected to.

    Every fetch is bounded: a connect timeout and a total timeout per try,
    at most max_redirects redirects (to http or https only, never to file),
    at most max_bytes of body after decompression (the transfer is aborted
    as soon as it passes), and at most `retries` more tries after an answer
    of 429 or 5xx. Between tries it waits what the server's Retry-After
    asks (seconds or an HTTP date), or 500 ms, 1 s, 2 s... without one,
    never more than max_retry_wait_ms, through the caller's wait function,
    which wakes early on cancellation. A cancellation also aborts a
    transfer in flight. Responses may be compressed (every encoding libcurl
    knows is accepted and decoded).

    curl_global_init must have run (jobq_reviews_register does it)
    before the first fetcher is made. A fetcher belongs to one thread.
*/
#ifndef JOBQ_FETCH_H_INCLUDED
#define JOBQ_FETCH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobq/jobq_err.h"
#include "jobq_netguard.h"

//  Longest URL handled, bytes.
#define JOBQ_FETCH_MAX_URL 2048

typedef struct {
    uint64_t connect_timeout_ms;          //  per try
    uint64_t timeout_ms;                  //  per try, the whole transfer
    size_t max_bytes;                     //  body after decompression
    unsigned max_redirects;               //  followed per try
    unsigned retries;                     //  more tries after 429 or 5xx
    uint64_t max_retry_wait_ms;           //  cap on one wait between tries
    const char *user_agent;               //  User-Agent; NULL = none
    bool (*cancelled)(void *arg);         //  true aborts; NULL = never
    int (*wait)(void *arg, uint64_t ms);  //  sleep: JOBQ_OK, or
                                          //  JOBQ_ECANCELLED when woken by a
                                          //  cancellation; NULL = nanosleep
    void *arg;                            //  for cancelled and wait
    const jobq_netguard_t *guard;  //  what may be reached (borrowed); NULL =
                                   //  public addresses only, no files
} jobq_fetch_opts_t;

//  What one fetch gave.
typedef struct {
    char *body;                        //  owned, NUL-terminated, or NULL
    size_t len;                        //  bytes in body
    long status;                       //  last HTTP status, 0 for file
    char content_type[128];            //  as sent, "" if none
    char url[JOBQ_FETCH_MAX_URL + 1];  //  effective URL, after redirects
    unsigned tries;                    //  requests made
    uint64_t waited_ms;                //  time spent between tries
    char error[320];                   //  why it failed, or ""
} jobq_fetch_result_t;

typedef struct jobq_fetch jobq_fetch_t;

//  A fetcher with opts (copied; user_agent is copied too). NULL if out of
//  memory.
jobq_fetch_t *jobq_fetch_new(const jobq_fetch_opts_t *opts);
void jobq_fetch_destroy(jobq_fetch_t **self_p);

//  GET url into *res (cleared first; clear it after with
//  jobq_fetch_result_clear). Returns
//    JOBQ_OK            a 2xx answer, or the file's bytes;
//    JOBQ_EFAILED       another HTTP status, after the retries for 429 and
//                       5xx (res->status says which);
//    JOBQ_ETIMEOUT      a try passed connect_timeout_ms or timeout_ms;
//    JOBQ_ETOOBIG       the body passed max_bytes;
//    JOBQ_ECANCELLED    cancelled while fetching or waiting;
//    JOBQ_ENOTFOUND     a file that cannot be read;
//    JOBQ_EINVAL        a bad URL, a scheme other than http, https or file,
//                       too many redirects, a bad content encoding, or a
//                       URL the guard refuses;
//    JOBQ_EUNAVAILABLE  the host could not be resolved or reached, or the
//                       connection broke;
//    JOBQ_ENOMEM.
//  On error res->error holds a message naming the URL.
int
jobq_fetch_get(jobq_fetch_t *self, const char *url, jobq_fetch_result_t *res);

//  Free res->body and forget it.
void jobq_fetch_result_clear(jobq_fetch_result_t *res);

//  Resolve ref against base (an absolute URL, or NULL when ref must be
//  absolute itself) as a browser would, drop the fragment, and write the
//  normalised absolute URL to out (cap bytes). Leading and trailing white
//  space of ref is ignored. JOBQ_OK, JOBQ_EINVAL (cannot be parsed, or no
//  scheme), JOBQ_ETOOBIG (longer than cap - 1 or JOBQ_FETCH_MAX_URL),
//  JOBQ_ENOMEM.
int jobq_url_resolve(const char *base, const char *ref, char *out, size_t cap);

//  The scheme of absolute URL url, lowercase, into out (cap bytes).
//  JOBQ_OK, JOBQ_EINVAL or JOBQ_ENOMEM.
int jobq_url_scheme(const char *url, char *out, size_t cap);

#endif
