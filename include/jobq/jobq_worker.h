/*  jobq_worker.h: processors, their registry, and the worker runtime.

    A processor is a function that runs one job: it reads the job's input (a
    msgpack map), reports progress, checks for cancellation, writes an
    output map and returns JOBQ_OK, or sets an error and returns non-zero.
    The runtime runs each job on its own slot thread (one per unit of
    concurrency), so a long job never delays heartbeats or other jobs, and a
    processor's error never takes the worker down.
*/
#ifndef JOBQ_WORKER_H_INCLUDED
#define JOBQ_WORKER_H_INCLUDED

#include <signal.h>
#include <stdarg.h>

#include "jobq/jobq_client.h"
#include "jobq/jobq_log.h"
#include "jobq/jobq_mp.h"
#include "jobq/jobq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

//  --- the job a processor runs ---------------------------------------------

typedef struct jobq_job jobq_job_t;

//  The job's id as 16 hex digits; borrowed, valid during the call.
JOBQ_EXPORT const char *jobq_job_id(const jobq_job_t *job);
//  Its type and shop id; borrowed, NUL-terminated.
JOBQ_EXPORT const char *jobq_job_type(const jobq_job_t *job);
JOBQ_EXPORT const char *jobq_job_shop(const jobq_job_t *job);
//  Attempt number, from 1.
JOBQ_EXPORT uint32_t jobq_job_attempt(const jobq_job_t *job);
//  The input map, encoded; borrowed. Already checked against the protocol
//  limits, so it can be read with jobq_mp_* or unpacked with msgpack-c.
JOBQ_EXPORT jobq_bytes_t jobq_job_input(const jobq_job_t *job);

//  Input fields by key. JOBQ_OK, JOBQ_ENOTFOUND (absent or nil) or
//  JOBQ_EINVAL (present with another type). Strings borrow from the input.
JOBQ_EXPORT int
jobq_job_input_str(const jobq_job_t *job, const char *key, jobq_str_t *out);
JOBQ_EXPORT int
jobq_job_input_int(const jobq_job_t *job, const char *key, int64_t *out);
JOBQ_EXPORT int
jobq_job_input_bool(const jobq_job_t *job, const char *key, bool *out);

//  Report progress: percent (0..100, clamped) and a printf-style message
//  (NULL for none, cut at JOBQ_MAX_MESSAGE_LEN). Reports that change
//  nothing are not sent; one not yet sent is replaced by the next (the
//  newest always wins). Returns JOBQ_OK or JOBQ_ECANCELLED when the job
//  has been cancelled (stop then).
JOBQ_EXPORT int
jobq_job_progress(jobq_job_t *job, unsigned percent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

//  True once the job was cancelled, timed out on the broker, or the
//  worker's stop grace (grace_ms) ran out. Cheap; call it between steps.
JOBQ_EXPORT bool jobq_job_cancelled(jobq_job_t *job);

//  Sleep up to ms, waking early on cancellation. Returns JOBQ_OK or
//  JOBQ_ECANCELLED.
JOBQ_EXPORT int jobq_job_sleep(jobq_job_t *job, uint64_t ms);

//  Where the processor writes its output: exactly one map. Capped at
//  JOBQ_MAX_OUTPUT_BYTES. Left empty, the output is {}. Borrowed: the
//  runtime owns the writer, valid during the call.
JOBQ_EXPORT jobq_mp_writer_t *jobq_job_output(jobq_job_t *job);

//  Set the error message (printf-style) for a failing return. permanent:
//  do not retry this job. Returns JOBQ_EFAILED, so a processor can write
//  `return jobq_job_fail(job, false, "HTTP %d", code);`.
JOBQ_EXPORT int
jobq_job_fail(jobq_job_t *job, bool permanent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

//  The client endpoint of the broker this worker serves (for processors
//  that read other jobs, such as export_data): cfg.clients as given, so
//  possibly a comma-separated list. Borrowed.
JOBQ_EXPORT const char *jobq_job_broker_clients(const jobq_job_t *job);

//  A client of that broker, for processors that read other jobs (export_data
//  and generate_report read their source jobs with jobq_client_status). Each
//  slot has its own, made on the slot's thread at the first call and kept
//  for the slot's later jobs, because a ZeroMQ socket must stay on the
//  thread that made it: use it only from the processor, during the call,
//  and never destroy it. Its calls block as jobq_client_config_defaults
//  says (3000 ms per try, one retry) and do not see cancellation meanwhile.
//  Borrowed; NULL if out of memory or if the endpoint (--clients) is one
//  ZeroMQ cannot parse.
JOBQ_EXPORT jobq_client_t *jobq_job_client(jobq_job_t *job);

//  The worker's export directory (--export-dir). Borrowed.
JOBQ_EXPORT const char *jobq_job_export_dir(const jobq_job_t *job);

//  --- processors and the registry ------------------------------------------

//  Run job. Return JOBQ_OK to complete with the output map, anything else to
//  fail (with the message set by jobq_job_fail, or the error's name).
//  state is the pointer given at registration. Runs on a slot thread: it
//  must not touch other jobs' data; it may block (it is the point).
typedef int(jobq_process_fn)(jobq_job_t *job, void *state);

typedef struct jobq_registry jobq_registry_t;

//  An empty registry. NULL only if out of memory.
JOBQ_EXPORT jobq_registry_t *jobq_registry_new(void);
//  Destroy the registry; safe on NULL, sets *self_p to NULL.
JOBQ_EXPORT void jobq_registry_destroy(jobq_registry_t **self_p);

//  Register fn for type ([a-z0-9_.-], 1..64 bytes). JOBQ_OK, JOBQ_EINVAL (bad
//  name, or fn NULL), JOBQ_EEXIST (already registered) or JOBQ_ETOOBIG (more
//  than JOBQ_MAX_WORKER_TYPES). The table is fixed: nothing is allocated.
JOBQ_EXPORT int jobq_registry_add(jobq_registry_t *self,
                                  const char *type,
                                  jobq_process_fn *fn,
                                  void *state);

//  Number of types, and the i-th name (borrowed until the registry is
//  destroyed; NULL when i is not below the count).
JOBQ_EXPORT size_t jobq_registry_count(const jobq_registry_t *self);
JOBQ_EXPORT const char *jobq_registry_type(const jobq_registry_t *self,
                                           size_t i);

//  The processor for a type of len bytes: JOBQ_OK or JOBQ_ENOTFOUND.
JOBQ_EXPORT int jobq_registry_find(const jobq_registry_t *self,
                                   const char *type,
                                   size_t len,
                                   jobq_process_fn **fn,
                                   void **state);

//  --- the worker runtime ----------------------------------------------------

//  broker may be a comma-separated list of up to JOBQ_MAX_ENDPOINTS worker
//  endpoints of brokers that serve the same jobs (a shared store): the
//  worker serves one at a time, the first at the start, and each reconnect
//  after broker_timeout_ms of silence goes to the next (round-robin), with
//  READY and the results not yet acknowledged, as after any reconnect. Its
//  leases live in the broker it left: jobs held there run again later
//  elsewhere, under a new attempt. clients may be a list too (as
//  jobq_client_config_t's broker), for the processors' clients.
typedef struct {
    const char *broker;          //  broker worker endpoint, or a list
    const char *clients;         //  broker client endpoint(s), for processors
    const char *name;            //  routing id, 1..64 printable; NULL = made up
    const char *const *types;    //  NULL-terminated subset to run; NULL = all
    const char *export_dir;      //  for processors that write files
    uint32_t concurrency;        //  slots (jobs at once), 1..JOBQ_MAX_CAPACITY
    uint32_t prefetch;           //  jobs held waiting for a slot, default 0;
                                 //  concurrency + prefetch <= JOBQ_MAX_CAPACITY
    uint64_t heartbeat_ms;       //  heartbeat interval
    uint64_t broker_timeout_ms;  //  reconnect after this much broker silence
    uint64_t grace_ms;           //  on stop: time running jobs get to finish
    const jobq_log_t *log;       //  where the runtime's lines go (each job
                                 //  at info); borrowed; NULL = nowhere
    void *zmq_ctx;               //  ZeroMQ context (borrowed; share one for
                                 //  inproc://); NULL: the worker makes its
                                 //  own, and its slots' clients use it
    const jobq_curve_t *curve;   //  CURVE keys (copied), NULL = plain; the
                                 //  slots' clients use them too
} jobq_worker_config_t;

typedef struct jobq_worker jobq_worker_t;

//  Defaults: tcp://127.0.0.1:5556 (clients tcp://127.0.0.1:5555), concurrency
//  4, heartbeat 1000 ms, broker timeout 5000 ms, grace 10000 ms, export dir
//  ./var/exports.
JOBQ_EXPORT void jobq_worker_config_defaults(jobq_worker_config_t *cfg);

//  A worker running the processors of registry (borrowed; must outlive the
//  worker). NULL if out of memory (or no ZeroMQ context could be made).
//  broker, clients, name and export_dir are copied; types, log and zmq_ctx
//  are borrowed and must outlive the worker.
JOBQ_EXPORT jobq_worker_t *jobq_worker_new(const jobq_worker_config_t *cfg,
                                           jobq_registry_t *registry);

//  Connect, register and run jobs until *stop becomes nonzero (from a
//  signal handler; a signal that interrupts the runtime's wait is seen at
//  once). Then take no new jobs and hand the queued ones back; let the
//  running ones finish for up to grace_ms, then cancel them and allow 1 s
//  more for their reports; return. JOBQ_OK, JOBQ_EINVAL (a type in
//  cfg->types is not registered, bad settings, a malformed broker list
//  (logged), or an endpoint ZeroMQ cannot parse), JOBQ_EFORBIDDEN (the broker's
//  key file does not let this worker's key register under its name or run its
//  types; logged) or JOBQ_ENOMEM.
JOBQ_EXPORT int jobq_worker_run(jobq_worker_t *self,
                                volatile sig_atomic_t *stop);

//  Destroy the worker (after jobq_worker_run returned, or instead of it);
//  safe on NULL, sets *self_p to NULL.
JOBQ_EXPORT void jobq_worker_destroy(jobq_worker_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
