/*  jobq_engine.h: the broker's state machine, without sockets or clocks.

    The shell runs turns. A turn is: begin(now), any number of client and
    worker messages, tick (timers and dispatch), commit. Each call appends
    actions (replies, jobs to send, events to publish) that the shell sends
    only after commit returned JOBQ_OK (JOBs of new jobs excepted, see
    jobq_engine_commit): nothing is acknowledged before it is durable. If
    the commit fails, every reply becomes an error, jobs and events are
    dropped, and the in-memory state is put back as it was.

    All memory is bounded: a turn's actions live in one arena the shell
    caps; workers are limited by max_workers; leases by the capacity the
    workers declared.
*/
#ifndef JOBQ_ENGINE_H_INCLUDED
#define JOBQ_ENGINE_H_INCLUDED

#include "jobq_keys.h"
#include "jobq_msg.h"
#include "jobq_store.h"

typedef struct jobq_engine jobq_engine_t;

typedef struct {
    uint64_t lease_ms;           //  a held job is lost after this much
                                 //  silence from its worker, ms
    uint64_t heartbeat_ms;       //  broker -> worker heartbeat interval, ms
    uint64_t worker_timeout_ms;  //  a silent worker is gone after this, ms
    uint64_t idem_window_ms;     //  idempotency keys are honoured this long
    uint64_t retry_base_ms;      //  first retry delay, doubled per attempt
    uint64_t retry_max_ms;       //  retry delay ceiling, ms
    uint32_t max_workers;        //  registered workers at most
    uint32_t dispatch_per_turn;  //  jobs handed out per turn at most
    uint32_t promote_per_turn;   //  delayed jobs made due per turn at most
    uint32_t list_examine;       //  records one LIST may look at
    uint64_t quota_pending;      //  unfinished jobs a shop may hold (a
                                 //  key's quota-pending= wins); 0 = any
    uint64_t quota_bytes;        //  bytes of records a shop may hold
                                 //  before new jobs are refused; 0 = any
    uint64_t retain_ms;          //  ended jobs are deleted after this, ms;
                                 //  0 keeps them forever
    uint64_t seed;               //  retry jitter seed
    const char *types;           //  comma-separated job types ENQUEUE may use
                                 //  (--types), each valid; NULL or "" = any
} jobq_engine_config_t;

//  Fill cfg with the documented defaults.
void jobq_engine_config_defaults(jobq_engine_config_t *cfg);

//  Where an action goes.
typedef enum {
    JOBQ_ACT_CLIENT = 0,  //  a reply on the client ROUTER
    JOBQ_ACT_WORKER = 1,  //  a command on the worker ROUTER
    JOBQ_ACT_PUBLISH = 2  //  an event on the PUB socket (peer = topic)
} jobq_act_kind_t;

typedef struct {
    int kind;             //  jobq_act_kind_t
    int cmd;              //  jobq_cmd_t of the message
    const uint8_t *peer;  //  routing id, or topic for events
    size_t peer_len;      //  bytes
    const uint8_t *body;  //  encoded body
    size_t body_len;      //  bytes
    bool early;           //  may be sent before the commit (see commit)
} jobq_action_t;

//  Why a message was refused (docs/PROTOCOL.md 3.3 and 9.9): the keys of
//  the STATS reply's "refused" map, in this order.
typedef enum {
    JOBQ_REFUSED_ENVELOPE = 0,      //  frame count, signature, command frame
    JOBQ_REFUSED_VERSION,           //  a signature of another version
    JOBQ_REFUSED_UNKNOWN_COMMAND,   //  a command code not in the protocol
    JOBQ_REFUSED_WRONG_SOCKET,      //  a command this socket does not take
    JOBQ_REFUSED_BAD_REQUEST,       //  a body or field error, bad_request
    JOBQ_REFUSED_TOO_LARGE,         //  a body or field error, too_large
    JOBQ_REFUSED_UNKNOWN_WORKER,    //  from a worker that is not registered
    JOBQ_REFUSED_WORKER_NAME,       //  READY from a routing id with no name
    JOBQ_REFUSED_TOO_MANY_WORKERS,  //  READY beyond max_workers
    JOBQ_REFUSED_FORBIDDEN,         //  beyond what the sender's key allows
    JOBQ_REFUSED_RATE_LIMITED,      //  over the sender's key's rate
    JOBQ_REFUSED_COUNT_
} jobq_refused_t;

//  The wire name of a cause ("envelope", "bad_request", ...), or NULL.
const char *jobq_refused_name(int cause);

#define JOBQ_COMMIT_BUCKETS 13

//  Counters for STATS and logs.
typedef struct {
    uint64_t refused[JOBQ_REFUSED_COUNT_];  //  messages refused, by cause
    uint64_t stale;            //  worker messages from stale attempts
    uint64_t enqueued;         //  jobs created
    uint64_t dispatched;       //  attempts started
    uint64_t completed;        //  jobs completed
    uint64_t failed;           //  jobs failed for good
    uint64_t retried;          //  attempts that will run again
    uint64_t lost;             //  attempts lost with their worker or lease
    uint64_t commits_failed;   //  turns whose commit failed
    uint64_t unreadable;       //  queued jobs whose record could not be read
    uint64_t released;         //  attempts handed back unstarted
    uint64_t removed;          //  ended jobs deleted after retain_ms
    uint64_t progress_merged;  //  reports folded into an earlier one
    uint64_t damaged;          //  requests refused: stored data damaged
    uint64_t cancelled;        //  jobs cancelled
    //  Commits that wrote, by how long they took: commit_us[i] counts
    //  those of at most jobq_engine_commit_le[i] us, the last the rest.
    uint64_t commit_us[JOBQ_COMMIT_BUCKETS + 1];
    uint64_t commit_sum_us;  //  their time in all
} jobq_engine_stats_t;

//  The upper bounds (us) of the commit time histogram's buckets.
extern const uint32_t jobq_engine_commit_le[JOBQ_COMMIT_BUCKETS];

//  The shell timed a commit that wrote: count it in the histogram.
void jobq_engine_note_commit(jobq_engine_t *self, uint64_t us);

//  NULL only if out of memory. store is borrowed and must outlive the
//  engine.
jobq_engine_t *jobq_engine_new(jobq_store_t *store,
                               const jobq_engine_config_t *cfg);
void jobq_engine_destroy(jobq_engine_t **self_p);

//  Load the sequence and id counters and the running jobs from the store.
//  Every running job gets a fresh lease from mono (restart time), so the
//  workers that held them have lease_ms to come back. Call once, before the
//  first turn. JOBQ_OK or a store error.
int jobq_engine_recover(jobq_engine_t *self, uint64_t wall, uint64_t mono);

//  Start a turn at wall (ms since epoch) and mono (monotonic ms).
//  JOBQ_OK or a store error (then skip the turn).
int jobq_engine_begin(jobq_engine_t *self, uint64_t wall, uint64_t mono);

//  Handle one decoded client request from peer. who is the sender's key
//  (borrowed for the call), or NULL on a broker without keys, where every
//  request may do everything. A keyed request is refused with forbidden
//  beyond its roles, or for a shop outside its key's on ENQUEUE; another
//  shop's job reads as no job at all (unknown_job), and LIST shows only
//  the key's shops.
void jobq_engine_client(jobq_engine_t *self,
                        const uint8_t *peer,
                        size_t peer_len,
                        const jobq_msg_t *m,
                        const jobq_key_t *who);

//  Handle one decoded worker message from peer, sent with key who (NULL:
//  no keys). A keyed worker needs the worker role, a routing id its key
//  owns (jobq_key_worker_name) and, in READY, only types its key allows;
//  otherwise it gets DISCONNECT "forbidden: ...".
void jobq_engine_worker(jobq_engine_t *self,
                        const uint8_t *peer,
                        size_t peer_len,
                        const jobq_msg_t *m,
                        const jobq_key_t *who);

//  Refuse a message that could not be taken, for cause (jobq_refused_t):
//  an ERROR with rid to a client (kind JOBQ_ACT_CLIENT) or a DISCONNECT
//  "<code>: <why>" to a worker. Counted by cause, and remembered for
//  jobq_engine_refused_last; with peer_len 0 (no routing id to answer)
//  only counted.
void jobq_engine_reject(jobq_engine_t *self,
                        int kind,
                        int cause,
                        const uint8_t *peer,
                        size_t peer_len,
                        uint64_t rid,
                        int err,
                        const char *why);

//  The last message refused for cause, for the broker's log: "<why> (from
//  <peer name>)", or "" if none yet. Valid until the next refusal.
const char *jobq_engine_refused_last(const jobq_engine_t *self, int cause);

//  A subscriber asked for topic: if it names one job, publish its current
//  state so the subscriber starts from it (see docs/PROTOCOL.md, Events).
void
jobq_engine_subscribed(jobq_engine_t *self, const uint8_t *topic, size_t len);

//  Timers (delayed jobs, leases, timeouts, worker liveness, heartbeats) and
//  dispatch. Call once per turn after the messages.
void jobq_engine_tick(jobq_engine_t *self);

//  Commit the turn. JOBQ_OK: send every action. Otherwise the error of the
//  store; the actions are rewritten as described above.
//
//  One exception to "only after the commit": a JOB for a job made in this
//  turn is marked early, and the shell may send it before calling commit,
//  so the worker starts while the disk flushes. Nothing is acknowledged by
//  it: if the commit fails, the rewrite turns it into a CANCEL_JOB for that
//  worker (the job never existed); if the broker dies instead, the job and
//  its id are gone for good (ids restart above a committed ceiling) and the
//  worker's reports about it are refused as unknown.
int jobq_engine_commit(jobq_engine_t *self);

//  The actions of the turn, valid until the next begin.
size_t jobq_engine_action_count(const jobq_engine_t *self);
void
jobq_engine_action(const jobq_engine_t *self, size_t i, jobq_action_t *out);

//  The shell could not deliver action i (peer gone): a worker that cannot
//  be reached is dropped next turn and its jobs go back to pending.
void jobq_engine_undeliverable(jobq_engine_t *self, size_t i);

//  Bytes of action bodies in this turn (the shell stops reading at a cap).
size_t jobq_engine_turn_bytes(const jobq_engine_t *self);

//  Monotonic ms of the next timer, or UINT64_MAX when none.
uint64_t jobq_engine_next_wakeup(const jobq_engine_t *self);

//  The store is nearly full and cannot grow: until told otherwise, ENQUEUE
//  and RETRY get "storage_full" (retryable) while everything else (reads,
//  progress, completions) goes on in the space held back for it.
void jobq_engine_set_store_full(jobq_engine_t *self, bool full);

//  Stop accepting new jobs (SIGTERM): ENQUEUE and RETRY get "unavailable".
void jobq_engine_drain(jobq_engine_t *self);

//  Counters since start.
void jobq_engine_get_stats(const jobq_engine_t *self, jobq_engine_stats_t *out);

//  Workers currently registered.
size_t jobq_engine_worker_count(const jobq_engine_t *self);

//  A connection to the worker endpoint closed. ZeroMQ does not say whose,
//  and its routing id may pass to another connection (a duplicate that
//  waited): with keys, every worker gets no JOB until its next message,
//  which the broker checks against its key (a heartbeat, within a second).
void jobq_engine_workers_unheard(jobq_engine_t *self);

//  Attempts running under a lease (registered worker or not).
size_t jobq_engine_lease_count(const jobq_engine_t *self);

#endif
