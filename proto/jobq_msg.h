/*  jobq_msg.h: typed bodies of the wire protocol, encoded and decoded.

    Decoding checks the body against jobq_proto_limits first (nothing is
    allocated for a hostile count), then reads the top-level map into a
    jobq_msg_t whose strings and byte spans borrow from the body: keep the
    body alive while the message is used. Unknown keys are skipped (newer
    peers may send more); a known key given twice, a wrong type or a value
    out of range is an error naming the field.
*/
#ifndef JOBQ_MSG_H_INCLUDED
#define JOBQ_MSG_H_INCLUDED

#include "jobq_proto.h"

//  Everything the broker keeps about a job, as borrowed views. Used for the
//  storage record, the job map in replies, and events.
typedef struct {
    uint64_t id;            //  job id
    jobq_str_t type;        //  job type
    jobq_str_t shop;        //  shop id
    jobq_str_t message;     //  last progress message
    jobq_str_t error;       //  last error
    jobq_str_t key;         //  idempotency key, empty if none
    jobq_str_t worker;      //  lease holder's worker id, empty if none
    jobq_bytes_t input;     //  encoded msgpack map
    jobq_bytes_t output;    //  encoded msgpack map, empty if none
    jobq_bytes_t errors;    //  encoded array of per-attempt errors
    int status;             //  jobq_status_t
    uint32_t progress;      //  0..100 percent
    uint32_t attempts;      //  attempts started so far
    uint32_t max_attempts;  //  highest attempt number that may start
    uint32_t budget;        //  attempts each run gets (storage only)
    uint32_t version;       //  changes to this job so far, from 1
    int32_t priority;       //  higher runs first
    uint64_t run_at;        //  ms since epoch; not before this
    uint64_t timeout_ms;    //  per attempt, 0 = none
    uint64_t created_at;    //  ms since epoch
    uint64_t updated_at;    //  ms since epoch
    uint64_t started_at;    //  ms since epoch of the first start, 0 = never
    uint64_t completed_at;  //  ms since epoch of the end, 0 = not ended
    uint64_t lease_until;   //  ms since epoch the lease runs to, 0 = none
    uint64_t seq;           //  broker event sequence of the last change
    int queue;              //  broker-internal: JOBQ_QUEUE_* index it sits in
    int wait;               //  wire only: jobq_wait_t, why it is not running
    uint64_t wait_until;    //  wire only: ms since epoch that wait ends, 0
} jobq_jobdata_t;

//  Which pending index holds a job (storage only, never on the wire).
#define JOBQ_QUEUE_NONE    0  //  not pending
#define JOBQ_QUEUE_READY   1  //  due: dispatch order by type, priority, id
#define JOBQ_QUEUE_DELAYED 2  //  waiting for run_at

//  What a job map carries besides the always-present fields.
#define JOBQ_JOBMAP_INPUT  0x1  //  the input map
#define JOBQ_JOBMAP_OUTPUT 0x2  //  the output map and per-attempt errors

//  Write j as a msgpack map (docs/PROTOCOL.md, "The job map").
void
jobq_msg_write_job(jobq_mp_writer_t *w, const jobq_jobdata_t *j, int flags);
//  Read a job map into *j (views into the reader's buffer). Missing fields
//  are zero. JOBQ_OK or JOBQ_EPROTO.
int jobq_msg_read_job(jobq_mp_reader_t *r, jobq_jobdata_t *j);

//  A decoded request or worker message.
typedef struct {
    int cmd;            //  jobq_cmd_t
    uint64_t rid;       //  client request id (client commands and replies)
    jobq_bytes_t held;  //  READY, HEARTBEAT: encoded array of the jobs the
                        //  worker runs, [{id, attempt}...]; empty if absent
    bool has_held;      //  the worker sent the list
    uint64_t echo;      //  READY: a number for the broker to send back in a
                        //  HEARTBEAT; HEARTBEAT from the broker: that number
    bool has_echo;      //  echo was sent
    union {
        struct {
            jobq_str_t type;        //  required
            jobq_str_t shop;        //  required
            jobq_bytes_t input;     //  map; empty map if absent
            jobq_str_t key;         //  idempotency key, optional
            int32_t priority;       //  default 0
            uint64_t delay_ms;      //  default 0
            uint32_t max_attempts;  //  default JOBQ_DEFAULT_ATTEMPTS
            uint64_t timeout_ms;    //  default 0 (none)
        } enqueue;
        struct {
            jobq_bytes_t jobs;  //  the array of job maps, each checked
            uint32_t count;     //  1..JOBQ_MAX_BATCH entries
        } batch;                //  ENQUEUE_BATCH: read with
                                //  jobq_msg_batch_next
        struct {
            uint64_t id;  //  job id
        } job;            //  STATUS, CANCEL, RETRY
        struct {
            jobq_str_t shop;  //  filter, empty = any
            jobq_str_t type;  //  filter, empty = any
            int status;       //  filter, -1 = any
            uint32_t limit;   //  page size
            uint64_t cursor;  //  list ids below this one; 0 = from newest
        } list;
        struct {
            jobq_str_t types[JOBQ_MAX_WORKER_TYPES];  //  job types run
            uint32_t ntypes;                          //  entries in types
            uint32_t capacity;                        //  concurrent jobs
            jobq_str_t name;                          //  for logs and stats
        } ready;
        struct {
            uint64_t id;         //  job id
            uint32_t attempt;    //  the attempt the sender runs
            uint32_t progress;   //  0..100
            jobq_str_t message;  //  may be empty
        } progress;
        struct {
            uint64_t id;          //  job id
            uint32_t attempt;     //  the attempt the sender ran
            jobq_bytes_t output;  //  map
        } complete;
        struct {
            uint64_t id;       //  job id
            uint32_t attempt;  //  the attempt the sender ran
            jobq_str_t error;  //  what went wrong
            bool permanent;    //  do not retry
            bool cancelled;    //  ended because it was cancelled
            bool released;     //  never started: hand the job back
        } fail;
        struct {
            uint64_t id;          //  job id
            uint32_t attempt;     //  attempt number, from 1
            jobq_str_t type;      //  job type
            jobq_str_t shop;      //  shop id
            jobq_bytes_t input;   //  map
            uint64_t timeout_ms;  //  0 = none
        } dispatch;               //  JOB
        struct {
            uint64_t id;       //  job id
            uint32_t attempt;  //  attempt to stop
        } cancel_job;
        struct {
            jobq_str_t reason;  //  why the broker drops the worker
        } disconnect;
        struct {
            uint64_t id;       //  job id
            uint32_t attempt;  //  the attempt whose result this answers
            bool taken;        //  the result changed the job (false: it was
                               //  stale, or already recorded)
        } ack;
        struct {
            int code;  //  jobq_err_t
            jobq_str_t message;
        } error;
        struct {
            jobq_bytes_t body;  //  the whole reply body map
        } reply;
    } u;
} jobq_msg_t;

//  Room for a decode error: the field and what was wrong with it.
typedef struct {
    char text[160];  //  NUL-terminated
} jobq_msg_why_t;

//  Decode body as command cmd into *m. Returns JOBQ_OK, JOBQ_ECOMMAND
//  (unknown command), JOBQ_ETOOBIG or JOBQ_EINVAL; on error why->text says
//  what, and m->rid holds the request id if one can be found (0 if not):
//  the first "rid" of the top-level map holding an unsigned integer, read
//  in order up to the first entry that cannot be read, whatever and
//  wherever the fault (docs/PROTOCOL.md 8.1).
int jobq_msg_decode(int cmd,
                    const uint8_t *body,
                    size_t len,
                    jobq_msg_t *m,
                    jobq_msg_why_t *why);

//  Read the next job of an ENQUEUE_BATCH into one->u.enqueue (one->cmd
//  becomes JOBQ_CMD_ENQUEUE, one->rid the batch's). r starts as a reader
//  over batch->u.batch.jobs, after the array header (jobq_msg_batch_begin).
//  The entries were checked by jobq_msg_decode, so this fails only on
//  misuse.
void jobq_msg_batch_begin(const jobq_msg_t *batch, jobq_mp_reader_t *r);
int jobq_msg_batch_next(jobq_mp_reader_t *r,
                        const jobq_msg_t *batch,
                        jobq_msg_t *one);

//  Write one ENQUEUE_BATCH entry: the ENQUEUE fields of one->u.enqueue.
void jobq_msg_write_batch_entry(jobq_mp_writer_t *w, const jobq_msg_t *one);

//  Encode m (for its m->cmd) as a body into w (appended).
void jobq_msg_encode(const jobq_msg_t *m, jobq_mp_writer_t *w);

//  Encode the list of held jobs (for m->held) into w: n pairs.
void jobq_msg_write_held(jobq_mp_writer_t *w,
                         const uint64_t *ids,
                         const uint32_t *attempts,
                         uint32_t n);

//  Read up to max pairs from m->held (already validated by decode).
//  Returns how many were read.
uint32_t jobq_msg_read_held(const jobq_msg_t *m,
                            uint64_t *ids,
                            uint32_t *attempts,
                            uint32_t max);

//  Start a REPLY body: a map of nfields + 1 entries, the first being rid.
void jobq_msg_reply_begin(jobq_mp_writer_t *w, uint64_t rid, uint32_t nfields);

//  Write an ERROR body {rid, code, message}.
void jobq_msg_write_error(jobq_mp_writer_t *w,
                          uint64_t rid,
                          int err,
                          const char *message);

#endif
