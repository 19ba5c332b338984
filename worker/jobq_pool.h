/*  jobq_pool.h: a worker's slots. N threads take jobs from one shared,
    bounded queue and report through one bounded result queue, which the
    runtime waits on as a plain file descriptor (an eventfd) in its poll.

    A slot that finishes a job takes the next one at once if one is queued,
    so a busy worker runs job after job without a wakeup per job, and the
    runtime reads every result that came in since its last turn in one go.
    A progress report replaces the same job's unread one, so a processor
    that reports faster than the broker takes reports sends only the
    newest; results are never replaced.
    Only the runtime thread calls these functions, but for the slot calls
    at the end, which the job handle (jobq_job.c) makes on its slot's
    thread.
*/
#ifndef JOBQ_POOL_H_INCLUDED
#define JOBQ_POOL_H_INCLUDED

#include "jobq/jobq_log.h"
#include "jobq/jobq_worker.h"
#include "jobq_msg.h"

#include <time.h>

typedef struct jobq_pool jobq_pool_t;

typedef struct {
    const jobq_registry_t *registry;  //  read-only while the pool runs
    const char *clients;              //  broker client endpoint
    const char *export_dir;           //  for processors
    const jobq_log_t *log;            //  job starts at info; NULL = none
    void *zmq_ctx;                    //  for the slots' broker clients
    const jobq_curve_t *curve;        //  their keys, or NULL
} jobq_pool_args_t;

typedef enum {
    JOBQ_POOL_PROGRESS = 1,  //  percent and message (data, a string)
    JOBQ_POOL_DONE = 2       //  ok: data is the output map; else the error
} jobq_pool_kind_t;

//  One report from a slot. data is owned by the receiver: free() it.
typedef struct {
    jobq_pool_kind_t kind;
    uint64_t id;       //  job id
    uint32_t attempt;  //  its attempt
    uint8_t percent;   //  PROGRESS
    bool ok;           //  DONE: completed
    bool permanent;    //  DONE, failed: do not retry
    bool cancelled;    //  DONE, failed: stopped on request
    uint8_t *data;     //  output, error or progress message
    size_t len;        //  bytes in data
} jobq_pool_result_t;

//  What jobq_pool_cancel found.
typedef enum {
    JOBQ_POOL_NOT_HELD = 0,  //  not queued, not running (maybe reported)
    JOBQ_POOL_UNQUEUED = 1,  //  removed before it started: report it
    JOBQ_POOL_SIGNALLED = 2  //  running: its processor is asked to stop
} jobq_pool_cancel_t;

//  Start slots threads and room for queue_cap jobs waiting. args must
//  outlive the pool. NULL if memory or threads ran out.
jobq_pool_t *
jobq_pool_new(uint32_t slots, uint32_t queue_cap, const jobq_pool_args_t *args);

//  Ask running jobs to stop, wait for every slot thread to end, and drop
//  what was queued or not yet read.
void jobq_pool_destroy(jobq_pool_t **self_p);

//  Readable while results wait to be read.
int jobq_pool_fd(const jobq_pool_t *self);

//  Queue the JOB m, decoded and checked from the message body (body, len
//  bytes): the pool keeps a copy of body and where m's type, shop and
//  input lie in it, so the slot reads them without decoding again.
//  JOBQ_ETOOBIG if queue_cap jobs wait, JOBQ_ENOMEM if the copy failed,
//  JOBQ_EINVAL if m is not a JOB, was not decoded from body, or body is
//  4 GiB or more.
int jobq_pool_submit(jobq_pool_t *self,
                     const jobq_msg_t *m,
                     const uint8_t *body,
                     size_t len);

//  Cancel job id at attempt: drop it if it waits, signal it if it runs.
jobq_pool_cancel_t
jobq_pool_cancel(jobq_pool_t *self, uint64_t id, uint32_t attempt);

//  Signal every running job to stop.
void jobq_pool_cancel_running(jobq_pool_t *self);

//  Take the jobs no slot will start out of the queue (ids and attempts, at
//  most cap), in queue order: every queued job but the oldest one per free
//  slot, which a free slot is about to take. Returns how many.
size_t jobq_pool_take_queued(jobq_pool_t *self,
                             uint64_t *ids,
                             uint32_t *attempts,
                             size_t cap);

//  Move at most cap results, oldest first, into out; returns how many.
//  jobq_pool_fd() stays readable while more wait.
size_t
jobq_pool_results(jobq_pool_t *self, jobq_pool_result_t *out, size_t cap);

//  --- what a job handle asks of its slot ------------------------------------

typedef struct jobq_pool_slot jobq_pool_slot_t;

//  True once the job running on slot is asked to stop.
bool jobq_pool_slot_cancelled(jobq_pool_slot_t *slot);

//  Wait until the slot's job is asked to stop or until (CLOCK_MONOTONIC)
//  passes; true if it was asked to stop.
bool jobq_pool_slot_wait(jobq_pool_slot_t *slot, const struct timespec *until);

//  Queue the progress report *r of the slot's job for the runtime (it
//  takes r->data). It replaces the same job's unread progress report; it
//  waits while the result queue is full.
void jobq_pool_slot_report(jobq_pool_slot_t *slot, jobq_pool_result_t *r);

//  The arguments the pool was made with. Borrowed.
const jobq_pool_args_t *jobq_pool_slot_args(const jobq_pool_slot_t *slot);

#endif
