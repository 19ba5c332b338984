/*  jobq_http.h: the gateway's HTTP API (docs/HTTP.md) over libjobq.

    Pure request handling: a method, a path with its query, some headers
    and a body in; a status, headers and a JSON body out. No sockets of its
    own but the broker client, so the tests and the server share it.
    Each thread that handles requests has its own broker client (libjobq's
    client is one per thread), made at its first request.
*/
#ifndef JOBQ_HTTP_H_INCLUDED
#define JOBQ_HTTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "jobq/jobq_client.h"
#include "jobq_tokens.h"

#define JOBQ_HTTP_MAX_BODY (4u << 20)  //  request body bytes at most
#define JOBQ_HTTP_MAX_CORS 16          //  origins in --cors

typedef struct {
    const char *broker;         //  client endpoint
    const char *events;         //  event endpoint
    const jobq_curve_t *curve;  //  keys for a broker with keys, or NULL
    int timeout_ms;             //  per broker request
    const char *cors[JOBQ_HTTP_MAX_CORS];  //  origins allowed, NULL-ended
    jobq_tokens_t *tokens;  //  --tokens, or NULL: no tokens asked
    int64_t token_rate;     //  --token-rate: requests a second per token
} jobq_http_config_t;

//  One request, as the server read it. Strings are borrowed.
typedef struct {
    const char *method;         //  "GET", "POST", ...
    const char *path;           //  without the query
    const char *query;          //  after '?', or ""
    const char *content_type;   //  or NULL
    const char *idem_key;       //  Idempotency-Key header, or NULL
    const char *origin;         //  Origin header, or NULL
    const char *authorization;  //  Authorization header, or NULL
    const char *cookie;         //  Cookie header, or NULL
    const char *body;           //  NUL-terminated
    size_t body_len;
} jobq_http_request_t;

//  The answer. body is owned (free it); headers are static text.
typedef struct {
    int status;                //  HTTP status
    char *body;                //  JSON text, or NULL for none
    const char *content_type;  //  when not JSON (static), or NULL
    const char *allow;         //  Allow header (405), or NULL
    int retry_after;           //  seconds for Retry-After, 0 = none
    bool preflight;            //  an OPTIONS answered for CORS
    bool challenge;            //  a 401: send WWW-Authenticate
} jobq_http_response_t;

//  Set the configuration for every later call (copied; strings borrowed).
void jobq_http_init(const jobq_http_config_t *cfg);

//  Answer req into *res. Never fails: a fault is a 5xx with a JSON error.
void jobq_http_handle(const jobq_http_request_t *req,
                      jobq_http_response_t *res);

//  Free what the calling thread's client holds (at its end).
void jobq_http_thread_done(void);

//  The calling thread's broker client, made at its first use; NULL if none
//  can be.
jobq_client_t *jobq_http_client(void);

//  A job as the API shows it: camelCase, ISO 8601 times. NULL if out of
//  memory.
json_t *jobq_http_job(const jobq_job_info_t *info);

//  The same from the job map as JSON in the protocol's names (taken; a
//  new object returned, or NULL).
json_t *jobq_http_camel(json_t *snake);

//  origin (an Origin header, or NULL) if --cors lists it, else NULL.
const char *jobq_http_cors(const char *origin);

//  A libjobq failure rc of client c as an HTTP error answer.
void jobq_http_failed(jobq_http_response_t *res, jobq_client_t *c, int rc);

#endif
