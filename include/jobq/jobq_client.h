/*  jobq_client.h: the client API: enqueue, status, list, cancel, retry,
    stats, and watch.

    One client is one DEALER to the broker's client endpoint (plus a SUB to
    its event endpoint while watching). Calls are synchronous and bounded in
    time: each waits up to timeout_ms for its reply and resends the same
    request (same request id, same idempotency key) up to `retries` times;
    then it fails with JOBQ_EUNAVAILABLE. An enqueue without a key gets one
    made up by the library when retries are on, so a lost reply never makes
    two jobs. A client is not thread-safe: use one per thread.

    Several brokers that serve the same jobs (a shared store, such as
    jobq-broker --store nats://...) can be named at once, comma-separated:
    "tcp://10.0.0.1:5555,tcp://10.0.0.2:5555". The client talks to one of
    them at a time, starting with the first; a try that gets no reply
    within timeout_ms moves it to the next (round-robin) before the next
    try, and it stays there for later calls. So with a dead broker first
    in the list, a call costs one timeout more (give retries >= the number
    of endpoints minus one to ride over several dead ones in one call).
    While watching, the SUB listens to every event endpoint of its list:
    each broker publishes every job's events, and only newer versions are
    applied. One endpoint alone behaves as it always has.

    Signals are the program's: the library installs no handler. A signal
    caught by the thread waiting in a call (Ctrl-C with a handler, for
    one) ends that wait with JOBQ_EINTR, and so does the interrupt flag of
    the configuration once it is nonzero; call again to go on waiting.
*/
#ifndef JOBQ_CLIENT_H_INCLUDED
#define JOBQ_CLIENT_H_INCLUDED

#include <signal.h>

#include "jobq/jobq_curve.h"
#include "jobq/jobq_mp.h"
#include "jobq/jobq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jobq_client jobq_client_t;

//  Endpoints in one list (broker, events, and the worker's lists), at most.
#define JOBQ_MAX_ENDPOINTS 16

typedef struct {
    const char *broker;  //  client endpoint, or a comma-separated list of
                         //  them (see above); default tcp://127.0.0.1:5555
    const char *events;  //  event endpoint, or a list; default
                         //  tcp://127.0.0.1:5557
    int timeout_ms;      //  per try, default 3000
    int retries;         //  extra tries after a timeout, default 1
    void *zmq_ctx;       //  ZeroMQ context to open sockets on (borrowed;
                         //  share one to use inproc:// endpoints); NULL:
                         //  the client makes and ends its own
    volatile sig_atomic_t *interrupt;  //  waits end with JOBQ_EINTR once
                                       //  this is nonzero; NULL = none
    const jobq_curve_t *curve;         //  CURVE keys (copied), NULL = plain
                                       //  (jobq/jobq_curve.h)
} jobq_client_config_t;

//  A job as the broker reported it; the client owns every pointer.
typedef struct {
    char id[JOBQ_ID_LEN + 1];             //  job id
    char type[JOBQ_MAX_TYPE_LEN + 1];     //  job type
    char shop_id[JOBQ_MAX_SHOP_LEN + 1];  //  shop id
    int status;                           //  jobq_status_t
    uint32_t progress;                    //  0..100
    char *message;                        //  last progress message, or NULL
    char *error;                          //  last error, or NULL
    char *key;                            //  idempotency key, or NULL
    char *worker;                         //  lease holder, or NULL
    uint32_t attempts;                    //  attempts started
    uint32_t max_attempts;                //  attempts allowed
    int32_t priority;                     //  higher first
    uint64_t run_at;                      //  ms since epoch
    uint64_t timeout_ms;                  //  per attempt, 0 = none
    uint64_t created_at;                  //  ms since epoch
    uint64_t updated_at;                  //  ms since epoch
    uint64_t started_at;                  //  ms since epoch, 0 = never
    uint64_t completed_at;                //  ms since epoch, 0 = not ended
    uint64_t lease_until;                 //  ms since epoch, 0 = no lease
    uint32_t version;                     //  changes so far
    uint64_t seq;                         //  broker sequence of last change
    jobq_bytes_t input;                   //  msgpack map (owned), or empty
    jobq_bytes_t output;                  //  msgpack map (owned), or empty
    jobq_bytes_t errors;                  //  msgpack array (owned), or empty
    int wait;             //  jobq_wait_t: why it is not running now
    uint64_t wait_until;  //  ms since epoch that wait ends, 0 = unknown
} jobq_job_info_t;

//  Free what info owns and zero it. Safe on a zeroed struct.
JOBQ_EXPORT void jobq_job_info_clear(jobq_job_info_t *info);

//  Defaults for cfg (see the fields).
JOBQ_EXPORT void jobq_client_config_defaults(jobq_client_config_t *cfg);

//  A client (nothing is sent yet); cfg NULL means every default. NULL only
//  if out of memory, or cfg's broker list is not one jobq_endpoints_check
//  takes or names an endpoint ZeroMQ cannot parse (a bad events list shows
//  at the first watch).
JOBQ_EXPORT jobq_client_t *jobq_client_new(const jobq_client_config_t *cfg);

//  Check the form of an endpoint list: 1..JOBQ_MAX_ENDPOINTS endpoints,
//  comma-separated (spaces around each are dropped), none empty, each at
//  most 255 bytes. JOBQ_OK, or JOBQ_EINVAL with why (cap bytes, may be
//  NULL) saying what is wrong. Whether ZeroMQ can parse each endpoint is
//  checked when it is used.
JOBQ_EXPORT int jobq_endpoints_check(const char *list, char *why, size_t cap);
//  Close the client's sockets (and its context, if it made one); safe on
//  NULL, sets *self_p to NULL.
JOBQ_EXPORT void jobq_client_destroy(jobq_client_t **self_p);

//  The broker's message for the last failed call (or a local one).
//  Borrowed, valid until the next call.
JOBQ_EXPORT const char *jobq_client_last_error(const jobq_client_t *self);

typedef struct {
    const char *type;       //  job type, required
    const char *shop_id;    //  shop id, required
    jobq_bytes_t input;     //  msgpack map; empty = {}
    int32_t priority;       //  higher runs first, default 0
    uint64_t delay_ms;      //  not before now + delay
    uint32_t max_attempts;  //  0 = broker default
    uint64_t timeout_ms;    //  per attempt, 0 = none
    const char *key;        //  idempotency key, NULL = none
} jobq_enqueue_t;

//  Enqueue a job; id gets its id. *created (if not NULL) is false when the
//  key named an existing job. JOBQ_OK once the job is durable; otherwise
//  the broker's error (JOBQ_EINVAL, JOBQ_ETOOBIG, JOBQ_ESTOREFULL,
//  JOBQ_EUNAVAILABLE, ...), with jobq_client_last_error() saying why, or
//  JOBQ_EINTR (see the top of this file; every call that waits may return
//  it: the request may have been sent, and an enqueue with a key can be
//  sent again safely).
JOBQ_EXPORT int jobq_client_enqueue(jobq_client_t *self,
                                    const jobq_enqueue_t *req,
                                    char id[JOBQ_ID_LEN + 1],
                                    bool *created);

//  After an enqueue call returned JOBQ_OK: true when the broker said that
//  no connected worker runs the job's type (for a batch, one of its
//  types). The job is stored all the same and waits for such a worker.
JOBQ_EXPORT bool jobq_client_unserved(const jobq_client_t *self);

//  Enqueue n jobs (1..JOBQ_MAX_BATCH) in one request: the broker checks them
//  all first and commits them together, so either every job is durable or
//  none is. ids[i] gets the id of reqs[i], and created[i] (if created is not
//  NULL) whether it was new. The batch's encoded size is bounded by
//  JOBQ_MAX_FRAME_BYTES (JOBQ_ETOOBIG). Errors as jobq_client_enqueue, the
//  message naming the job ("jobs[3]: ...").
JOBQ_EXPORT int jobq_client_enqueue_batch(jobq_client_t *self,
                                          const jobq_enqueue_t *reqs,
                                          size_t n,
                                          char (*ids)[JOBQ_ID_LEN + 1],
                                          bool *created);

//  --- pipelined enqueue ------------------------------------------------------
//  Many ENQUEUEs in flight on one client, for producers that cannot batch:
//  jobq_client_enqueue_send sends one and returns at once with its ticket;
//  jobq_client_enqueue_recv returns the next answer, in the broker's order.
//  The broker commits whatever arrived in one turn together, so K requests
//  in flight cost about one flush per K jobs. At most JOBQ_CLIENT_MAX_IN_FLIGHT
//  requests may wait for answers; while any does, the other calls on this
//  client are refused (JOBQ_ESTATE). A pipelined request is never sent
//  again by the library: give it a key, so that sending it again after a
//  timeout answers with the same job.
#define JOBQ_CLIENT_MAX_IN_FLIGHT 1024

//  Send req; *ticket names its answer. JOBQ_OK, JOBQ_EINVAL (req incomplete),
//  JOBQ_ETOOBIG (too large, or JOBQ_CLIENT_MAX_IN_FLIGHT already wait),
//  JOBQ_EUNAVAILABLE (could not be queued for the broker within the
//  timeout).
JOBQ_EXPORT int jobq_client_enqueue_send(jobq_client_t *self,
                                         const jobq_enqueue_t *req,
                                         uint64_t *ticket);

//  Wait up to the client's timeout for the next answer to a request in
//  flight: *ticket names it; on JOBQ_OK id and *created (if not NULL) are
//  set as by jobq_client_enqueue, else the broker refused that request
//  (its code, and jobq_client_last_error). JOBQ_ESTATE if nothing is in
//  flight. JOBQ_EUNAVAILABLE (and *ticket 0) if no answer came in time:
//  every request in flight is then given up (their jobs may exist).
JOBQ_EXPORT int jobq_client_enqueue_recv(jobq_client_t *self,
                                         uint64_t *ticket,
                                         char id[JOBQ_ID_LEN + 1],
                                         bool *created);

//  Requests sent and not yet answered.
JOBQ_EXPORT size_t jobq_client_in_flight(const jobq_client_t *self);

//  The job's full record into *info (clear it after). JOBQ_ENOTFOUND if
//  there is no such job, JOBQ_EINVAL if id is not 16 hex digits; the
//  errors of any request (JOBQ_EUNAVAILABLE, JOBQ_EINTR, ...).
JOBQ_EXPORT int
jobq_client_status(jobq_client_t *self, const char *id, jobq_job_info_t *info);

//  Cancel: a pending job at once, a running one by telling its worker.
//  *info (if not NULL) gets the job afterwards. JOBQ_ESTATE if it had ended;
//  otherwise as jobq_client_status.
JOBQ_EXPORT int
jobq_client_cancel(jobq_client_t *self, const char *id, jobq_job_info_t *info);

//  Put a failed or cancelled job back to pending with fresh attempts; *info
//  (if not NULL) gets the job afterwards. JOBQ_ESTATE if it is pending,
//  running or completed, JOBQ_ESTOREFULL or JOBQ_EUNAVAILABLE when the
//  broker refuses new work (full, or stopping); otherwise as
//  jobq_client_status.
JOBQ_EXPORT int
jobq_client_retry(jobq_client_t *self, const char *id, jobq_job_info_t *info);

typedef struct {
    const char *shop_id;  //  filter or NULL
    const char *type;     //  filter or NULL
    int status;           //  filter or -1
    uint32_t limit;       //  page size, 0 = default (50), at most 1000
    const char *cursor;   //  from a previous page's next, or NULL
} jobq_list_t;

//  One page of jobs, newest first, without input or output. *jobs is an
//  array of *count entries the caller frees with jobq_job_list_free. next
//  gets the cursor of the following page, "" when there is none.
//  JOBQ_EINVAL (limit above JOBQ_MAX_LIST, or a cursor that is not a job
//  id), JOBQ_EPROTO (a reply that does not follow the protocol),
//  JOBQ_ENOMEM, or the errors of any request.
JOBQ_EXPORT int jobq_client_list(jobq_client_t *self,
                                 const jobq_list_t *req,
                                 jobq_job_info_t **jobs,
                                 size_t *count,
                                 char next[JOBQ_ID_LEN + 1]);
//  Clear each of the count entries and free the array; safe on NULL, sets
//  *jobs to NULL.
JOBQ_EXPORT void jobq_job_list_free(jobq_job_info_t **jobs, size_t count);

//  The STATS reply body (a msgpack map: counts, totals, workers, capacity,
//  busy, served, refused, counters, commit_us, oldest; docs/PROTOCOL.md
//  8.7), owned by the caller (free(out->ptr)). JOBQ_ENOMEM, or the errors
//  of any request.
JOBQ_EXPORT int jobq_client_stats(jobq_client_t *self, jobq_bytes_t *out);

//  Callbacks of a watch. Each gets the job's state as of that event
//  (borrowed, valid during the call). Any may be NULL.
typedef struct {
    void (*on_progress)(void *arg, const jobq_job_info_t *job);
    void (*on_complete)(void *arg, const jobq_job_info_t *job);
    void (*on_error)(void *arg, const jobq_job_info_t *job);  //  failed or
                                                              //  cancelled
    void *arg;                                                //  passed to each
} jobq_watch_t;

//  Follow job id until it ends or timeout_ms passes (-1 = no limit).
//  Subscribes to the job's events and takes snapshots, applying only newer
//  versions, so an ending is never missed, even one that happened before
//  the call. on_progress gets the first snapshot and every change;
//  on_complete or on_error the end, as a STATUS reads it (with output and
//  errors, which events do not carry). Returns JOBQ_OK (completed),
//  JOBQ_EFAILED, JOBQ_ECANCELLED, JOBQ_ETIMEOUT, JOBQ_ENOTFOUND, JOBQ_EINTR,
//  JOBQ_EINVAL (a bad id, or an events list that is malformed or names an
//  endpoint ZeroMQ cannot parse),
//  JOBQ_ESTATE (pipelined requests wait for answers), JOBQ_ENOMEM, or
//  JOBQ_EUNAVAILABLE when the first snapshot gets no answer. Once the watch
//  has begun, a broker that stops answering is waited for (a restarted
//  broker resumes the stream) until timeout_ms: pass a limit to bound it.
JOBQ_EXPORT int jobq_client_watch(jobq_client_t *self,
                                  const char *id,
                                  const jobq_watch_t *cb,
                                  int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
