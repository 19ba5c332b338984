/*  jobq_store.h: where jobs live, behind an interface.

    The engine sees jobs, never LMDB: a write transaction per loop turn
    (begin, any number of reads and puts, then commit or abort), the pending
    indexes in dispatch order, LIST queries, idempotency keys, counters and
    named 64-bit metadata. LMDB (jobq_store_lmdb.c) is the one implementation
    today; a replicated backend would provide the same operations.

    Lifetimes: strings and spans in a jobq_jobdata_t filled by the store
    borrow from the transaction's memory and stay valid until the next put or
    the end of the transaction, whichever comes first. Copy what you keep.
*/
#ifndef JOBQ_STORE_H_INCLUDED
#define JOBQ_STORE_H_INCLUDED

#include "jobq_msg.h"

typedef struct jobq_store jobq_store_t;

typedef struct {
    const char *dir;    //  data directory, created if missing
    uint64_t map_size;  //  initial LMDB map size, bytes (0 = default)
    uint64_t map_max;   //  grow the map on demand up to this, bytes; 0 = never
    bool scratch;       //  LMDB: no sync, files unlinked once open (a view
                        //  rebuilt at every start)
    uint64_t key_ttl_ms;  //  NATS: idempotency keys live this long (the
                          //  engine's idem_window_ms); 0 = forever
} jobq_store_config_t;

//  One change a shared store brought in at begin: a job as a revision of
//  the shared store has it (its `seq` set to that revision), made by this
//  broker (own) or another.
typedef struct {
    const jobq_jobdata_t *job;  //  the job; NULL when removed
    uint64_t id;                //  its id
    uint64_t rev;               //  the revision of the change
    bool own;                   //  written by this process
    int claim;                  //  own: 1 when the write took the job from
                                //  the revision it read, -1 when the store
                                //  also took another write made on that
                                //  revision first (docs/STORAGE.md 10.4);
                                //  0 otherwise
} jobq_store_change_t;

typedef void(jobq_store_change_fn)(void *arg, const jobq_store_change_t *c);

//  A LIST query: newest first, ids below `before` (0 = from the newest).
typedef struct {
    jobq_str_t shop;       //  filter, empty = any
    jobq_str_t type;       //  filter, empty = any
    int status;            //  filter, -1 = any
    uint64_t before;       //  exclusive upper bound on id, 0 = none
    uint32_t limit;        //  matches wanted
    uint32_t max_examine;  //  records looked at, at most (bounds the work)
} jobq_store_query_t;

//  Called for each job a scan yields; return nonzero to stop the scan.
typedef int(jobq_store_visit_fn)(void *arg, const jobq_jobdata_t *job);
//  Called for each (type, status) counter.
typedef void(jobq_store_count_fn)(void *arg,
                                  jobq_str_t type,
                                  int status,
                                  uint64_t count);
//  Called for each idempotency key an idem_scan yields (key in its stored
//  form, borrowed for the call); return nonzero to stop the scan.
typedef int(jobq_store_idem_fn)(void *arg,
                                jobq_str_t key,
                                uint64_t id,
                                uint64_t created);

//  The operations an implementation provides; see the wrappers below.
typedef struct {
    int (*open)(void *impl, const jobq_store_config_t *cfg);
    void (*destroy)(void **impl_p);
    int (*begin)(void *impl);
    int (*commit)(void *impl);
    void (*abort)(void *impl);
    int (*get)(void *impl, uint64_t id, jobq_jobdata_t *job);
    int (*put)(void *impl,
               const jobq_jobdata_t *old,
               const jobq_jobdata_t *job);
    int (*ready_first)(void *impl,
                       jobq_str_t type,
                       uint64_t *id,
                       int32_t *priority);
    int (*ready_after)(void *impl,
                       jobq_str_t type,
                       int32_t after_priority,
                       uint64_t after_id,
                       uint64_t *id,
                       int32_t *priority);
    int (*ready_before)(void *impl,
                        jobq_str_t type,
                        int32_t priority,
                        uint64_t before_id,
                        uint64_t *id);
    int (*ready_oldest)(void *impl,
                        jobq_str_t type,
                        uint32_t max_levels,
                        uint64_t *id);
    int (*delayed_first)(void *impl, uint64_t *run_at, uint64_t *id);
    int (*unqueue)(void *impl, const jobq_jobdata_t *job);
    int (*remove)(void *impl, const jobq_jobdata_t *job);
    int (*query)(void *impl,
                 const jobq_store_query_t *q,
                 jobq_store_visit_fn *fn,
                 void *arg,
                 uint64_t *next);
    int (*scan_status)(void *impl,
                       int status,
                       jobq_store_visit_fn *fn,
                       void *arg);
    int (*idem_get)(void *impl,
                    jobq_str_t key,
                    uint64_t *id,
                    uint64_t *created);
    int (*idem_put)(void *impl, jobq_str_t key, uint64_t id, uint64_t created);
    int (*idem_scan)(void *impl, jobq_store_idem_fn *fn, void *arg);
    int (*meta_get)(void *impl, const char *name, uint64_t *value);
    int (*meta_put)(void *impl, const char *name, uint64_t value);
    int (*counts)(void *impl, jobq_store_count_fn *fn, void *arg);
    int (*shop_counts)(void *impl, jobq_str_t shop, uint64_t *out);
    int (*grow)(void *impl);
    void (*usage)(void *impl, uint64_t *used, uint64_t *size, uint64_t *max);
    int (*idem_expire)(void *impl,
                       uint64_t before,
                       uint32_t max,
                       uint32_t *removed);
    const char *(*why)(void *impl);
    bool (*wrote)(void *impl);
    int (*quarantine_put)(void *impl,
                          const uint8_t *key,
                          size_t klen,
                          const uint8_t *val,
                          size_t vlen);
    //  Shared stores only (NULL otherwise); see the wrappers below.
    int (*fd)(void *impl);
    size_t (*changes)(void *impl, jobq_store_change_fn *fn, void *arg);
    int (*slot)(void *impl);
    bool (*leader)(void *impl);
    bool (*taken)(void *impl, uint64_t id);
    int (*rank)(void *impl, int maker);
} jobq_store_ops_t;

//  A store backed by LMDB. NULL only if out of memory. Open it next.
jobq_store_t *jobq_store_lmdb_new(void);

//  A store shared by any number of brokers, on a NATS JetStream cluster
//  (jobq_store_nats.c, docs/STORAGE.md section 10): urls is a comma-
//  separated list of nats://HOST:PORT, optionally ending in
//  ?replicas=N (default 3); creds a NATS credentials file or NULL. Both
//  are copied. NULL only if out of memory or urls is empty. Open it next.
jobq_store_t *jobq_store_nats_new(const char *urls, const char *creds);

//  True for a store other brokers write too: the engine then takes its
//  changes at each begin, and many brokers run at once.
bool jobq_store_shared(const jobq_store_t *self);

//  A descriptor that becomes readable when a shared store has changes to
//  bring in (read it empty with jobq_store_drain_fd), or -1.
int jobq_store_fd(const jobq_store_t *self);
void jobq_store_drain_fd(const jobq_store_t *self);

//  Call fn for each change the last begin brought in, in revision order.
//  Returns how many. 0 for a store that is not shared.
size_t
jobq_store_changes(jobq_store_t *self, jobq_store_change_fn *fn, void *arg);

//  This process's number among the brokers of a shared store (0..63,
//  unique among those alive: it goes in the low bits of the ids it
//  makes), or -1 for a store that is not shared.
int jobq_store_slot(jobq_store_t *self);

//  True for the one broker of a shared store that runs the work of all
//  (delayed jobs, leases whose broker died, retention): the live one with
//  the lowest slot. Always true for a store that is not shared.
bool jobq_store_leader(jobq_store_t *self);

//  After a commit that failed: true if the shared store took the turn's
//  write of job id all the same (a shared store commits each job on its
//  own: a write that met another broker's fails alone, and the view keeps
//  the others). Always false for a store that is not shared, whose failed
//  commits keep nothing.
bool jobq_store_taken(jobq_store_t *self, uint64_t id);

//  Shared store: this broker's place after the broker with slot maker
//  among the brokers alive, counting up from maker and round (1 for the
//  next one alive), which orders who takes a job maker made; 0 for maker
//  itself; -1 for a store that is not shared.
int jobq_store_rank(jobq_store_t *self, int maker);

//  Install SIGSEGV and SIGBUS handlers that turn a fault inside a call into
//  LMDB (damaged data: a page that points outside the map, a file shorter
//  than its meta page says) into JOBQ_ECORRUPT for that call, as the
//  store's assertion callback does for LMDB's own checks. A fault anywhere
//  else still kills the process. For the broker program, once, at start.
//  JOBQ_OK or JOBQ_EINTERNAL.
int jobq_store_lmdb_catch_faults(void);

//  What went wrong last (an error the store met, in words, for a log:
//  LMDB's message and errno's name, or where damaged data was found), or
//  "". Borrowed, valid until the next call on the store.
const char *jobq_store_why(const jobq_store_t *self);

//  Keep a record that failed its check, as its bytes, in the quarantine
//  (--repair moves them there; --verify lists them). JOBQ_OK or a store
//  error.
int jobq_store_quarantine_put(jobq_store_t *self,
                              const uint8_t *key,
                              size_t klen,
                              const uint8_t *val,
                              size_t vlen);

//  Take the lock of data directory dir (dir/jobq.lock, flock): one broker,
//  or one --verify or --repair, at a time. On JOBQ_OK *fd holds it (close
//  it to let go); JOBQ_EUNAVAILABLE when another process holds it,
//  JOBQ_ESTORAGE when the file cannot be opened; why says which.
int jobq_store_lock_dir(const char *dir, int *fd, char *why, size_t len);

//  True when the open transaction, or the last one if none is open, wrote
//  anything: a commit of nothing proves nothing about the disk.
bool jobq_store_wrote(const jobq_store_t *self);

//  Open the store described by cfg, creating its directory (and parents)
//  when missing, and taking its lock (jobq_store_lock_dir) for as long as
//  it is open. JOBQ_OK, JOBQ_ESTORAGE (cannot create or open the directory
//  or environment), JOBQ_EUNAVAILABLE (another process has the directory),
//  JOBQ_ECORRUPT (a truncated or damaged file) or JOBQ_EVERSION;
//  jobq_store_why says which.
int jobq_store_open(jobq_store_t *self, const jobq_store_config_t *cfg);

//  Close and free; safe on NULL; aborts an open transaction; sets *self_p
//  to NULL.
void jobq_store_destroy(jobq_store_t **self_p);

//  Start the write transaction of a turn. JOBQ_OK or JOBQ_ESTORAGE.
int jobq_store_begin(jobq_store_t *self);

//  Make the transaction durable (fsync) and end it. JOBQ_OK only once the
//  data is on disk; otherwise JOBQ_ESTOREFULL or JOBQ_ESTORAGE, and nothing
//  of the transaction was persisted. The transaction is over either way. A
//  shared store also fails with JOBQ_ESTALE (another broker changed one of
//  the jobs first) or JOBQ_EUNAVAILABLE (the cluster did not take it); part
//  of the transaction may then be stored (docs/STORAGE.md 10.3).
int jobq_store_commit(jobq_store_t *self);

//  Drop the transaction's changes. Safe when none is open.
void jobq_store_abort(jobq_store_t *self);

//  Read job id. JOBQ_OK, JOBQ_ENOTFOUND, JOBQ_ECORRUPT or JOBQ_EVERSION (a
//  record of a newer format).
int jobq_store_get(jobq_store_t *self, uint64_t id, jobq_jobdata_t *job);

//  Write job (new when old is NULL, else replacing old as read by get) and
//  keep every index in step. JOBQ_OK, JOBQ_ESTOREFULL (the transaction is
//  then unusable: abort it), JOBQ_ESTORAGE or JOBQ_ENOMEM.
int jobq_store_put(jobq_store_t *self,
                   const jobq_jobdata_t *old,
                   const jobq_jobdata_t *job);

//  The next job to dispatch for type: highest priority, then oldest.
//  JOBQ_OK or JOBQ_ENOTFOUND.
int jobq_store_ready_first(jobq_store_t *self,
                           jobq_str_t type,
                           uint64_t *id,
                           int32_t *priority);

//  The ready job of type that comes after (after_priority, after_id) in
//  dispatch order (the one ready_first gave, say). JOBQ_OK or
//  JOBQ_ENOTFOUND.
//  The last ready job of type at priority (exactly) whose id is below
//  before_id: the newest of that level made before some moment, for a
//  broker of a shared store that takes another's jobs from the far end of
//  its queue. JOBQ_OK or JOBQ_ENOTFOUND.
int jobq_store_ready_before(jobq_store_t *self,
                            jobq_str_t type,
                            int32_t priority,
                            uint64_t before_id,
                            uint64_t *id);

int jobq_store_ready_after(jobq_store_t *self,
                           jobq_str_t type,
                           int32_t after_priority,
                           uint64_t after_id,
                           uint64_t *id,
                           int32_t *priority);

//  The smallest id (so the oldest job) among the ready jobs of type, looked
//  for in its first max_levels priority levels (highest first): the oldest
//  of each level is one seek. JOBQ_OK or JOBQ_ENOTFOUND.
int jobq_store_ready_oldest(jobq_store_t *self,
                            jobq_str_t type,
                            uint32_t max_levels,
                            uint64_t *id);

//  The delayed job due first. JOBQ_OK or JOBQ_ENOTFOUND.
int
jobq_store_delayed_first(jobq_store_t *self, uint64_t *run_at, uint64_t *id);

//  Remove the ready or delayed index entry that job's queue, id, type,
//  priority and run_at name, and nothing else: for an entry whose record
//  cannot be read, so that it stops blocking the jobs behind it.
int jobq_store_unqueue(jobq_store_t *self, const jobq_jobdata_t *job);

//  Delete job (as read from the store) and every index entry and count it
//  has, and its idempotency key if that still names it.
int jobq_store_remove(jobq_store_t *self, const jobq_jobdata_t *job);

//  Run a LIST query, calling fn for each match. When fn returns nonzero the
//  scan stops and that job is not counted: the cursor resumes with it.
//  *next gets the cursor for the following page, 0 when the scan reached
//  the end. A record that fails its check, an index entry whose key has
//  the wrong shape or names no job, ends the query with JOBQ_ECORRUPT
//  (jobq_store_why names it): a page is never silently shorter.
int jobq_store_query(jobq_store_t *self,
                     const jobq_store_query_t *q,
                     jobq_store_visit_fn *fn,
                     void *arg,
                     uint64_t *next);

//  Call fn for every job in status, oldest first.
int jobq_store_scan_status(jobq_store_t *self,
                           int status,
                           jobq_store_visit_fn *fn,
                           void *arg);

//  Idempotency keys are stored per shop, as `shop 0x00 key`: the same key in
//  two shops names two jobs. Entries written before that have the key
//  alone (docs/STORAGE.md 3.5).
#define JOBQ_IDEM_KEY_MAX (JOBQ_MAX_SHOP_LEN + 1 + JOBQ_MAX_KEY_LEN)

//  The stored form of (shop, key) into out (JOBQ_IDEM_KEY_MAX bytes); its
//  length. shop and key are cut to their limits.
size_t jobq_store_idem_key(uint8_t *out, jobq_str_t shop, jobq_str_t key);

//  Idempotency keys, in their stored form. get: JOBQ_OK or
//  JOBQ_ENOTFOUND.
int jobq_store_idem_get(jobq_store_t *self,
                        jobq_str_t key,
                        uint64_t *id,
                        uint64_t *created);
int jobq_store_idem_put(jobq_store_t *self,
                        jobq_str_t key,
                        uint64_t id,
                        uint64_t created);

//  Call fn for every idempotency key, in the order of its stored form
//  (jobq export). JOBQ_OK, or a store error (JOBQ_ECORRUPT for an entry
//  whose value is not 16 bytes).
int jobq_store_idem_scan(jobq_store_t *self, jobq_store_idem_fn *fn, void *arg);

//  Forget at most max idempotency keys created before `before` (ms since
//  epoch), oldest first; *removed says how many went. Bounded work, so the
//  engine calls it a little every turn and the key table stays bounded by
//  the retention window.
int jobq_store_idem_expire(jobq_store_t *self,
                           uint64_t before,
                           uint32_t max,
                           uint32_t *removed);

//  Named counters of the broker (sequence, last id). get: JOBQ_ENOTFOUND
//  when never written.
int jobq_store_meta_get(jobq_store_t *self, const char *name, uint64_t *value);
int jobq_store_meta_put(jobq_store_t *self, const char *name, uint64_t value);

//  Call fn for every (type, status) with a nonzero count, as of this
//  transaction.
int jobq_store_counts(jobq_store_t *self, jobq_store_count_fn *fn, void *arg);

//  One shop's jobs as of this transaction: out[s] for each status s, then
//  out[JOBQ_STATUS_COUNT_] the bytes of their records
//  (JOBQ_STORE_SHOP_FIELDS values; zeros for a shop with no jobs).
//  JOBQ_OK or a store error.
#define JOBQ_STORE_SHOP_FIELDS (JOBQ_STATUS_COUNT_ + 1)
int jobq_store_shop_counts(jobq_store_t *self, jobq_str_t shop, uint64_t *out);

//  Grow the map after a JOBQ_ESTOREFULL, with no transaction open.
//  JOBQ_OK, or JOBQ_ESTOREFULL when already at the configured ceiling.
int jobq_store_grow(jobq_store_t *self);

//  Bytes in use (an upper bound: pages up to the highest one written), the
//  map size now, and the growth ceiling (0 = none). With no transaction
//  open.
void jobq_store_usage(jobq_store_t *self,
                      uint64_t *used,
                      uint64_t *size,
                      uint64_t *max);

//  Fault seam for tests: the next commit fails with err instead of syncing.
void jobq_store_fail_next_commit(jobq_store_t *self, int err);
//  Fault seam for tests: the next put fails with err and writes nothing.
void jobq_store_fail_next_put(jobq_store_t *self, int err);

#endif
