/*  jobq_broker.h: the broker's shell: sockets, the loop, the turn.

    One thread. Each turn polls the client ROUTER, the worker ROUTER and the
    event XPUB; reads up to max_msgs_per_turn messages round-robin, one per
    socket per pass (the worker socket first in each pass, so finished jobs
    free their slots); hands them to the engine; ticks timers and dispatch;
    sends the JOBs of jobs made in this turn (they start while the disk
    flushes; jobq_engine_commit says why that is safe); commits one LMDB
    transaction with full sync; then sends every reply, other job and
    event. Nothing is acknowledged before its commit.
*/
#ifndef JOBQ_BROKER_H_INCLUDED
#define JOBQ_BROKER_H_INCLUDED

#include <czmq.h>
#include <signal.h>

#include "jobq_engine.h"
#include "jobq/jobq_log.h"

typedef struct {
    const char *data_dir;           //  LMDB directory
    const char *nats_urls;          //  NATS JetStream servers (a shared
                                    //  store, jobq_store_nats_new); NULL =
                                    //  LMDB in data_dir
    const char *nats_creds;         //  NATS credentials file, or NULL
    const char *clients_ep;         //  client ROUTER bind endpoint
    const char *workers_ep;         //  worker ROUTER bind endpoint
    const char *events_ep;          //  event XPUB bind endpoint
    uint64_t map_size;              //  initial LMDB map, bytes (0 = default)
    uint64_t map_max;               //  map growth ceiling, bytes (0 = none)
    uint32_t max_msgs_per_turn;     //  messages read per turn at most
    size_t max_turn_bytes;          //  stop reading once replies reach this
    uint32_t event_hwm;             //  events queued per subscriber before
                                    //  the PUB drops (it never blocks)
    uint64_t grace_ms;              //  on stop: wait this long at most for
                                    //  the results of running jobs, ms
    uint64_t drain_ms;              //  on stop: serve (refusing new jobs)
                                    //  until quiet this long, ms
    uint64_t refused_log_ms;        //  log refused messages at most once
                                    //  per cause per this long, ms; 0 =
                                    //  every one
    const char *keys_file;          //  key file (jobq_keys.h): CURVE and
                                    //  roles; NULL = no keys
    const char *cert_file;          //  the broker's secret certificate;
                                    //  required with keys_file
    bool insecure;                  //  without keys: bind beyond loopback
    volatile sig_atomic_t *reload;  //  nonzero (SIGHUP): reread the key
                                    //  file, then reset; NULL = never
    uint32_t max_conns;             //  with keys: connections in all before
                                    //  only worker and admin keys get in;
                                    //  0 = 90% of the descriptor limit
    const char *crash_at;           //  test builds: fault point, or NULL
    uint32_t crash_after;           //  crash at the Nth time it is reached
    jobq_engine_config_t engine;    //  state machine settings
    const jobq_log_t *log;          //  borrowed; NULL = silent
} jobq_broker_config_t;

typedef struct jobq_broker jobq_broker_t;

//  Fill cfg with the documented defaults.
void jobq_broker_config_defaults(jobq_broker_config_t *cfg);

//  NULL only if out of memory. cfg is copied (its strings are borrowed and
//  must outlive the broker).
jobq_broker_t *jobq_broker_new(const jobq_broker_config_t *cfg);

//  Open the store, recover, bind the sockets. JOBQ_OK, or JOBQ_ESTORAGE,
//  JOBQ_ECORRUPT (store), JOBQ_EUNAVAILABLE (an endpoint cannot be bound).
int jobq_broker_start(jobq_broker_t *self);

//  Serve until *stop becomes nonzero (set it from a signal handler). Then
//  stop gracefully: new jobs are refused with "shutting down" and none is
//  handed out; results, progress and reads are still taken and committed
//  until no attempt is running and nothing has arrived for drain_ms, or
//  until grace_ms have passed, or *stop becomes negative (a second
//  signal). Jobs still running then keep their leases on disk, and their
//  workers keep their results for the restarted broker. Returns JOBQ_OK
//  after a clean stop, JOBQ_ESTORAGE when five commits in a row failed for
//  another reason than a full map.
int jobq_broker_run(jobq_broker_t *self, volatile sig_atomic_t *stop);

//  The endpoints actually bound (useful with tcp://127.0.0.1:*). Borrowed.
const char *jobq_broker_endpoint(const jobq_broker_t *self, int which);
#define JOBQ_BROKER_EP_CLIENTS 0
#define JOBQ_BROKER_EP_WORKERS 1
#define JOBQ_BROKER_EP_EVENTS  2

void jobq_broker_destroy(jobq_broker_t **self_p);

//  Fault points (docs/STORAGE.md, "Crash safety"), honoured in builds with
//  JOBQ_FAULTS: the broker kills itself with SIGKILL at the point.
#define JOBQ_CRASH_AFTER_COMMIT_BEFORE_REPLY     "after-commit-before-reply"
#define JOBQ_CRASH_AFTER_LEASE_BEFORE_SEND       "after-lease-commit-before-send"
#define JOBQ_CRASH_BEFORE_COMPLETION_COMMIT      "before-completion-commit"
#define JOBQ_CRASH_AFTER_EARLY_JOB_BEFORE_COMMIT "after-early-job-before-commit"

#endif
