/*  jobq_store_nats.c: the store shared by many brokers, on NATS JetStream.

    The truth is three key-value buckets on a JetStream cluster: jobq_jobs
    (one record per job, keyed by its id, in the same bytes as LMDB's),
    jobq_keys (idempotency keys, kept for the window) and jobq_brokers (one
    key per live broker: its slot). Each broker keeps a view of the jobs and
    keys: a local LMDB store with no sync, filled from a watch of both
    buckets, in which the engine reads and indexes exactly as on the
    embedded store. A turn's writes go to the view and to a write set; the
    commit publishes the set with, on every record, the revision it was
    read at (a compare-and-set: Nats-Expected-Last-Subject-Sequence), waits
    for the cluster's acknowledgements (a quorum of the replicas has the
    write), and only then commits the view. A record another broker changed
    in between fails its compare; the turn then fails as a whole and the
    view catches up from the watch. docs/STORAGE.md section 10 says what
    each promise rests on.

    Threads: the broker's own, one per watched bucket (they queue what the
    watch brings, bounded, and wake the broker through a pipe), and one that
    keeps the broker's slot alive and learns which broker leads.
*/
#define _GNU_SOURCE  //  pipe2
#include "jobq_store.h"
#include "jobq_record.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_SLOTS          64
#define S_BROKER_TTL_MS  6000         //  a silent broker's slot frees
#define S_BROKER_BEAT_MS 1500         //  a live one says so this often
#define S_QUEUE_BYTES    (64u << 20)  //  watched changes waiting, bytes
#define S_QUEUE_COUNT    (1u << 16)   //  and count
#define S_APPLY_MAX      4096         //  changes brought in per begin
#define S_ACK_WAIT_MS    2000         //  a commit waits this long, in all
#define S_OPEN_WAIT_MS   20000        //  for a cluster electing its leaders
#define S_AGAIN          1            //  a failure that may pass: try again
//  nats-server 2.11 and later refuse a compare-and-set write while another
//  write of the same key is in flight ("wrong last sequence", without a
//  sequence): a conflict, as JSStreamWrongLastSequenceErr is.
#define S_ERR_SUBJECT_BUSY 10164
#define S_WINDOW           4096  //  writes in flight at most
#define S_HISTORY          8     //  revisions the jobs bucket keeps of each job
#define S_VIEW_MAP         (256ull << 20)  //  the view's first map
#define S_VIEW_MAP_MAX     (64ull << 30)   //  and its ceiling
#define S_KEY_HEX_MAX      (2 * JOBQ_IDEM_KEY_MAX + 1)

enum { S_JOBS = 0, S_KEYS = 1 };

//  A change the watch brought: one allocation, key and value after it.
typedef struct s_entry {
    struct s_entry *next;
    int bucket;
    int op;  //  kvOperation
    uint64_t rev;
    char *key;
    uint8_t *val;
    size_t vlen;
    jobq_jobdata_t job;  //  decoded, when has_job (borrows from val)
    bool has_job;
    bool own;
    int claim;  //  own write: 1 it took the job, -1 another got there first
} s_entry_t;

//  id -> revision, open addressing with linear probing.
typedef struct {
    uint64_t *k, *v;
    size_t cap, n;
} s_map_t;

//  One write of the turn.
typedef struct {
    int bucket;
    uint64_t id;      //  jobs: the job
    uint64_t expect;  //  the subject's last revision we read; 0 = new
    bool del;
    size_t key_off;   //  subject key in the arena
    size_t off, len;  //  value in the arena
    //  jobs: the record before the turn's first write of it (in the arena;
    //  had_old false for a job the turn made), to put back in the view if
    //  the cluster refuses this write and takes others of the turn
    bool had_old, old_set;
    size_t old_off, old_len;
    uint64_t rev;  //  acknowledged revision
    int err;       //  JetStream error code, or -1; 0 = none
    bool done;
} s_write_t;

typedef struct s_nats s_nats_t;

typedef struct {
    s_nats_t *self;
    int bucket;
    kvWatcher *w;
    pthread_t thread;
    bool started;
} s_watch_t;

struct s_nats {
    char *urls;
    char *creds;
    int replicas;
    char prefix[33];     //  bucket names: PREFIX_jobs, ...
    char bucket[3][48];  //  jobs, keys, brokers
    char srv[16][256];   //  the servers, each nats://HOST:PORT
    jobq_store_t *view;
    char why[1024];

    natsConnection *nc;
    jsCtx *js;
    kvStore *kv[2];
    kvStore *brokers;
    volatile int slot;  //  the beat thread may change it (under mu)
    uint64_t slot_rev;  //  the revision of our slot's key
    char slot_key[16];
    volatile bool leader;
    uint64_t live;  //  the slots alive at the last beat, a bit each (atomic)

    //  The watch, its queue and the broker's wake-up.
    s_watch_t watch[2];
    pthread_mutex_t mu;
    pthread_cond_t room;
    pthread_cond_t caught_up;
    s_entry_t *head, *tail;
    size_t qcount, qbytes;
    bool initial[2];  //  the watch delivered the bucket's first state
    volatile bool stopping;
    int pipe[2];
    pthread_t beat;
    bool beat_started;

    //  The last begin's changes, kept until the next.
    s_entry_t *turn;
    size_t nturn;
    bool delivered;  //  jobq_store_changes has seen turn
    s_map_t revs;
    s_map_t seen;  //  revisions read from the cluster in this turn
    //  Each job this broker wrote: the revision of the write, and the one
    //  it was made on (+ 1; UINT64_MAX once another write is seen between
    //  them): JetStream before 2.11 may take two writes made on the same
    //  revision, and only the first counts (docs/STORAGE.md 10.4).
    s_map_t claim_rev, claim_base;
    uint64_t max_id;  //  the highest job id the view has seen

    //  The turn's write set.
    s_write_t *writes;
    size_t nwrites, cwrites;
    s_map_t pending;  //  id -> index + 1 of its write
    s_map_t taken;    //  after a failed commit: the jobs it wrote anyway
    uint8_t *arena;
    size_t alen, acap;
    int64_t deadline;   //  the commit in progress gives up then (ms)
    uint64_t gen;       //  commits published: the Jobq-Write header
                        //  ties an acknowledgement to its commit
    zhashx_t *orphans;  //  key (hex) -> its revision, for keys a failed
                        //  commit wrote without their job
    bool in_txn;
    bool wrote;
};

static void
s_why(s_nats_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->why, sizeof self->why, fmt, ap);
    va_end(ap);
}

//  --- the map -----------------------------------------------------------

static size_t
s_hash(uint64_t x, size_t cap)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t) x & (cap - 1);
}

static uint64_t
s_map_get(const s_map_t *m, uint64_t id)
{
    if (!m->cap)
        return 0;
    for (size_t i = s_hash(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->k[i] == id)
            return m->v[i];
        if (m->k[i] == 0)
            return 0;
    }
}

static int s_map_put(s_map_t *m, uint64_t id, uint64_t v);

static int
s_map_grow(s_map_t *m)
{
    s_map_t n = {0};
    n.cap = m->cap ? m->cap * 2 : 1024;
    n.k = calloc(n.cap, sizeof *n.k);
    n.v = calloc(n.cap, sizeof *n.v);
    if (!n.k || !n.v) {
        free(n.k);
        free(n.v);
        return JOBQ_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->k[i])
            s_map_put(&n, m->k[i], m->v[i]);
    free(m->k);
    free(m->v);
    *m = n;
    return JOBQ_OK;
}

static int
s_map_put(s_map_t *m, uint64_t id, uint64_t v)
{
    if ((m->n + 1) * 10 >= m->cap * 7 && s_map_grow(m) != JOBQ_OK)
        return JOBQ_ENOMEM;
    size_t i = s_hash(id, m->cap);
    while (m->k[i] && m->k[i] != id)
        i = (i + 1) & (m->cap - 1);
    if (!m->k[i])
        m->n++;
    m->k[i] = id;
    m->v[i] = v;
    return JOBQ_OK;
}

static void
s_map_clear(s_map_t *m)
{
    if (m->cap && m->n)
        memset(m->k, 0, m->cap * sizeof *m->k);
    m->n = 0;
}

static void
s_map_free(s_map_t *m)
{
    free(m->k);
    free(m->v);
    memset(m, 0, sizeof *m);
}

//  --- the watch ----------------------------------------------------------

static void
s_wake(s_nats_t *self)
{
    if (self->pipe[1] >= 0) {
        ssize_t n = write(self->pipe[1], "w", 1);
        (void) n;  //  a full pipe is awake already
    }
}

static void *
s_watch_main(void *arg)
{
    s_watch_t *wt = arg;
    s_nats_t *self = wt->self;
    while (!self->stopping) {
        kvEntry *e = NULL;
        natsStatus s = kvWatcher_Next(&e, wt->w, 500);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            if (self->stopping)
                break;
            usleep(100 * 1000);
            continue;
        }
        if (!e) {
            pthread_mutex_lock(&self->mu);
            self->initial[wt->bucket] = true;
            pthread_cond_broadcast(&self->caught_up);
            pthread_mutex_unlock(&self->mu);
            continue;
        }
        const char *key = kvEntry_Key(e);
        size_t klen = strlen(key);
        int vlen = kvEntry_ValueLen(e);
        if (vlen < 0)
            vlen = 0;
        s_entry_t *n = malloc(sizeof *n + klen + 1 + (size_t) vlen);
        if (!n) {
            //  Out of memory: the view would miss a change. Stop here;
            //  the broker sees the watch stopped (jobq_store_why).
            kvEntry_Destroy(e);
            break;
        }
        memset(n, 0, sizeof *n);
        n->bucket = wt->bucket;
        n->op = (int) kvEntry_Operation(e);
        n->rev = kvEntry_Revision(e);
        n->key = (char *) (n + 1);
        memcpy(n->key, key, klen + 1);
        n->val = (uint8_t *) n->key + klen + 1;
        n->vlen = (size_t) vlen;
        if (vlen)
            memcpy(n->val, kvEntry_Value(e), (size_t) vlen);
        kvEntry_Destroy(e);
        size_t cost = sizeof *n + klen + (size_t) vlen;
        pthread_mutex_lock(&self->mu);
        while (!self->stopping &&
               (self->qcount >= S_QUEUE_COUNT || self->qbytes >= S_QUEUE_BYTES))
            pthread_cond_wait(&self->room, &self->mu);
        bool was_empty = !self->head;
        if (self->tail)
            self->tail->next = n;
        else
            self->head = n;
        self->tail = n;
        self->qcount++;
        self->qbytes += cost;
        pthread_mutex_unlock(&self->mu);
        if (was_empty)
            s_wake(self);
    }
    return NULL;
}

static s_entry_t *
s_pop(s_nats_t *self)
{
    pthread_mutex_lock(&self->mu);
    s_entry_t *e = self->head;
    if (e) {
        self->head = e->next;
        if (!self->head)
            self->tail = NULL;
        self->qcount--;
        self->qbytes -= sizeof *e + strlen(e->key) + e->vlen;
        e->next = NULL;
        pthread_cond_signal(&self->room);
    }
    pthread_mutex_unlock(&self->mu);
    return e;
}

static void
s_free_entries(s_entry_t *e)
{
    while (e) {
        s_entry_t *next = e->next;
        free(e);
        e = next;
    }
}

//  Keep the slot alive; the live broker with the lowest slot leads.
static bool s_passing(natsStatus s);
static int s_take_slot(s_nats_t *self);

static void *
s_beat_main(void *arg)
{
    s_nats_t *self = arg;
    char val[64];
    snprintf(val, sizeof val, "pid %ld", (long) getpid());
    int len = (int) strlen(val);
    while (!self->stopping) {
        //  Renew the slot on the revision this broker wrote: if it lapsed
        //  (the cluster was out of reach longer than the TTL) and another
        //  broker took it, take a free one (ids then carry the new slot).
        uint64_t rev = 0;
        natsStatus s = kvStore_Update(&rev, self->brokers, self->slot_key, val,
                                      len, self->slot_rev);
        if (s == NATS_OK)
            self->slot_rev = rev;
        //  A cluster that does not answer gets the next beat, not a try
        //  of every slot at a timeout each (which held a stopping broker
        //  for minutes).
        else if (!self->stopping && !s_passing(s) &&
                 s_take_slot(self) == JOBQ_OK)
            s = NATS_OK;
        if (s != NATS_OK)
            self->leader = false;
        kvKeysList list = {0};
        kvWatchOptions o;
        kvWatchOptions_Init(&o);
        o.Timeout = 1000;
        if (kvStore_Keys(&list, self->brokers, &o) == NATS_OK) {
            int lowest = S_SLOTS;
            uint64_t live = 0;
            for (int i = 0; i < list.Count; i++) {
                int n = atoi(list.Keys[i] + 1);
                if (list.Keys[i][0] == 's' && n < lowest)
                    lowest = n;
                if (list.Keys[i][0] == 's' && n >= 0 && n < S_SLOTS)
                    live |= 1ull << n;
            }
            __atomic_store_n(&self->live, live, __ATOMIC_RELAXED);
            self->leader = s == NATS_OK && lowest >= self->slot;
            kvKeysList_Destroy(&list);
        } else {
            self->leader = false;
        }
        for (int i = 0; i < S_BROKER_BEAT_MS / 100 && !self->stopping; i++)
            usleep(100 * 1000);
    }
    return NULL;
}

//  --- open and close -----------------------------------------------------

void *jobq_store_nats_impl_new(const char *urls, const char *creds);

static void
s_free_item(void **item)
{
    free(*item);
    *item = NULL;
}

void *
jobq_store_nats_impl_new(const char *urls, const char *creds)
{
    s_nats_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->urls = strdup(urls);
    self->creds = creds ? strdup(creds) : NULL;
    self->view = jobq_store_lmdb_new();
    self->orphans = zhashx_new();
    if (self->orphans)
        zhashx_set_destructor(self->orphans, s_free_item);
    if (!self->urls || (creds && !self->creds) || !self->view ||
        !self->orphans) {
        zhashx_destroy(&self->orphans);
        free(self->urls);
        free(self->creds);
        jobq_store_destroy(&self->view);
        free(self);
        return NULL;
    }
    self->pipe[0] = self->pipe[1] = -1;
    self->replicas = 3;
    snprintf(self->prefix, sizeof self->prefix, "jobq");
    self->slot = -1;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->room, NULL);
    pthread_cond_init(&self->caught_up, NULL);
    return self;
}

static void
s_stop_threads(s_nats_t *self)
{
    pthread_mutex_lock(&self->mu);
    self->stopping = true;
    pthread_cond_broadcast(&self->room);
    pthread_cond_broadcast(&self->caught_up);
    pthread_mutex_unlock(&self->mu);
    for (int b = 0; b < 2; b++) {
        s_watch_t *wt = &self->watch[b];
        if (wt->w)
            kvWatcher_Stop(wt->w);
        if (wt->started)
            pthread_join(wt->thread, NULL);
        wt->started = false;
        if (wt->w)
            kvWatcher_Destroy(wt->w);
        wt->w = NULL;
    }
    if (self->beat_started)
        pthread_join(self->beat, NULL);
    self->beat_started = false;
}

static void
s_destroy(void **impl_p)
{
    s_nats_t *self = *impl_p;
    if (!self)
        return;
    s_stop_threads(self);
    if (self->brokers && self->slot >= 0)
        kvStore_Delete(self->brokers, self->slot_key);
    for (int b = 0; b < 2; b++)
        kvStore_Destroy(self->kv[b]);
    kvStore_Destroy(self->brokers);
    jsCtx_Destroy(self->js);
    if (self->nc) {
        natsConnection_Close(self->nc);
        natsConnection_Destroy(self->nc);
    }
    jobq_store_destroy(&self->view);
    s_free_entries(self->head);
    s_free_entries(self->turn);
    s_map_free(&self->revs);
    s_map_free(&self->pending);
    s_map_free(&self->taken);
    s_map_free(&self->seen);
    s_map_free(&self->claim_rev);
    s_map_free(&self->claim_base);
    free(self->writes);
    free(self->arena);
    zhashx_destroy(&self->orphans);
    for (int i = 0; i < 2; i++)
        if (self->pipe[i] >= 0)
            close(self->pipe[i]);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->room);
    pthread_cond_destroy(&self->caught_up);
    free(self->urls);
    free(self->creds);
    free(self);
    *impl_p = NULL;
}

static void
s_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void) js;
    s_nats_t *self = closure;
    //  "GEN.INDEX": an acknowledgement of an earlier commit (one that gave
    //  up waiting) must not be taken for one of this commit's writes.
    const char *tag = NULL;
    unsigned long long gen = 0, at = 0;
    if (natsMsgHeader_Get(msg, "Jobq-Write", &tag) == NATS_OK && tag &&
        sscanf(tag, "%llu.%llu", &gen, &at) == 2) {
        pthread_mutex_lock(&self->mu);
        if (gen == self->gen && at < self->nwrites) {
            s_write_t *w = &self->writes[at];
            if (pa)
                w->rev = pa->Sequence;
            else
                w->err = pae && pae->ErrCode ? (int) pae->ErrCode : -1;
            w->done = true;
        }
        pthread_mutex_unlock(&self->mu);
    }
    natsMsg_Destroy(msg);
}

//  Parse "nats://h:p,nats://h:p?replicas=N" into servers (pointers into
//  buf) and replicas.
static int
s_parse_urls(s_nats_t *self, char *buf, const char **servers, int *n)
{
    *n = 0;
    char *q = strchr(buf, '?');
    if (q)
        *q++ = '\0';
    for (char *save = NULL, *p = q ? strtok_r(q, "&", &save) : NULL; p;
         p = strtok_r(NULL, "&", &save)) {
        if (strncmp(p, "replicas=", 9) == 0 && atoi(p + 9) >= 1 &&
            atoi(p + 9) <= 5 && strspn(p + 9, "0123456789") == strlen(p + 9)) {
            self->replicas = atoi(p + 9);
        } else if (strncmp(p, "prefix=", 7) == 0 && p[7] &&
                   strlen(p + 7) < sizeof self->prefix &&
                   strspn(p + 7, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                 "QRSTUVWXYZ0123456789-") == strlen(p + 7)) {
            snprintf(self->prefix, sizeof self->prefix, "%s", p + 7);
        } else {
            s_why(self,
                  "--store: '%s' is neither replicas=N (1 to 5) nor "
                  "prefix=NAME (1 to 32 of [A-Za-z0-9-])",
                  p);
            return JOBQ_EINVAL;
        }
    }
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p;
         p = strtok_r(NULL, ",", &save)) {
        if (*n == 16) {
            s_why(self, "--store: more than 16 NATS servers");
            return JOBQ_EINVAL;
        }
        const char *hp = strncmp(p, "nats://", 7) == 0 ? p + 7 : p;
        if (!*hp || !strchr(hp, ':') || strlen(hp) >= sizeof self->srv[0] - 8) {
            s_why(self, "--store: '%s' is not HOST:PORT", p);
            return JOBQ_EINVAL;
        }
        snprintf(self->srv[*n], sizeof self->srv[0], "nats://%s", hp);
        servers[*n] = self->srv[*n];
        (*n)++;
    }
    if (*n == 0) {
        s_why(self, "--store: no NATS server named");
        return JOBQ_EINVAL;
    }
    return JOBQ_OK;
}

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  True for what a cluster without a leader answers, for a while: no
//  answer, or JetStream saying it is unavailable for now.
static bool
s_passing(natsStatus s)
{
    const char *text = nats_GetLastError(NULL);
    return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ||
           (s == NATS_ERR && text && strstr(text, "temporarily unavailable"));
}

static int
s_bucket(s_nats_t *self,
         kvStore **kv,
         const char *name,
         int64_t ttl_ms,
         uint8_t history)
{
    natsStatus s = js_KeyValue(kv, self->js, name);
    if (s == NATS_OK)
        return JOBQ_OK;
    kvConfig c;
    kvConfig_Init(&c);
    c.Bucket = name;
    c.History = history;
    c.Replicas = self->replicas;
    c.StorageType = js_FileStorage;
    c.TTL = ttl_ms * 1000000;  //  nanoseconds
    s = js_CreateKeyValue(kv, self->js, &c);
    if (s != NATS_OK) {
        s_why(self, "cannot make the bucket %s (replicas %d): %s%s%s", name,
              self->replicas, natsStatus_GetText(s),
              nats_GetLastError(NULL) ? ": " : "",
              nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
        return s_passing(s) ? S_AGAIN : JOBQ_EUNAVAILABLE;
    }
    return JOBQ_OK;
}

//  Take the first free slot of the brokers' bucket: at open, and when the
//  beat found this broker's slot taken by another (it lapsed). JOBQ_OK,
//  S_AGAIN when the cluster does not answer, or JOBQ_EUNAVAILABLE when
//  every slot is taken. Says nothing (s_why): the beat thread calls it.
static int
s_take_slot(s_nats_t *self)
{
    char val[64];
    snprintf(val, sizeof val, "pid %ld", (long) getpid());
    for (int i = 0; i < S_SLOTS && !self->stopping; i++) {
        char key[sizeof self->slot_key];
        snprintf(key, sizeof key, "s%d", i);
        uint64_t rev = 0;
        natsStatus s =
            kvStore_Create(&rev, self->brokers, key, val, (int) strlen(val));
        if (s == NATS_OK) {
            pthread_mutex_lock(&self->mu);
            memcpy(self->slot_key, key, sizeof key);
            self->slot = i;
            pthread_mutex_unlock(&self->mu);
            self->slot_rev = rev;
            return JOBQ_OK;
        }
        if (s_passing(s))
            return S_AGAIN;
    }
    return JOBQ_EUNAVAILABLE;
}

//  Watch bucket b (its thread starts in s_open).
static int
s_watch(s_nats_t *self, int b)
{
    s_watch_t *wt = &self->watch[b];
    wt->self = self;
    wt->bucket = b;
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    natsStatus s = kvStore_WatchAll(&wt->w, self->kv[b], &wo);
    if (s == NATS_OK)
        return JOBQ_OK;
    s_why(self, "cannot watch %s: %s", self->bucket[b], natsStatus_GetText(s));
    return s_passing(s) ? S_AGAIN : JOBQ_EUNAVAILABLE;
}

//  The buckets, made if missing, a slot, and the watches. A cluster that has
//  just lost a server, or is starting, can go without a leader for some
//  seconds: what fails for that (S_AGAIN) is tried again for S_OPEN_WAIT_MS.
static int
s_join(s_nats_t *self, const jobq_store_config_t *cfg)
{
    int64_t end = s_now_ms() + S_OPEN_WAIT_MS;
    while (true) {
        //  The jobs keep S_HISTORY revisions each: a watch that fell
        //  behind, or was made again after the loss of a server, still sees
        //  a write that another soon replaced, which is how a claim is
        //  checked (docs/STORAGE.md 10.4).
        int rc;
        if (!self->kv[S_JOBS])
            rc = s_bucket(self, &self->kv[S_JOBS], self->bucket[0], 0,
                          S_HISTORY);
        else if (!self->kv[S_KEYS])
            rc = s_bucket(self, &self->kv[S_KEYS], self->bucket[1],
                          (int64_t) cfg->key_ttl_ms, 1);
        else if (!self->brokers)
            rc = s_bucket(self, &self->brokers, self->bucket[2],
                          S_BROKER_TTL_MS, 1);
        else if (self->slot < 0) {
            rc = s_take_slot(self);
            if (rc == S_AGAIN)
                s_why(self, "the cluster did not answer for %s",
                      self->bucket[2]);
            else if (rc != JOBQ_OK)
                s_why(self, "all %d broker slots are taken (%s)", S_SLOTS,
                      self->bucket[2]);
        } else if (!self->watch[S_JOBS].w || !self->watch[S_KEYS].w)
            rc = s_watch(self, self->watch[S_JOBS].w ? S_KEYS : S_JOBS);
        else
            return JOBQ_OK;
        if (rc == S_AGAIN && s_now_ms() < end) {
            struct timespec ts = {0, 250 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (rc != JOBQ_OK)
            return rc == S_AGAIN ? JOBQ_EUNAVAILABLE : rc;
    }
}

static int s_apply(s_nats_t *self, size_t max, s_entry_t **out);
static void s_applied(s_nats_t *self, s_entry_t *list, bool keep);
static void s_unpop(s_nats_t *self, s_entry_t *list);
static int s_bring_in(s_nats_t *self, bool keep);

static int
s_open(void *impl, const jobq_store_config_t *cfg)
{
    s_nats_t *self = impl;
    char buf[2048];
    const char *servers[16];
    int nservers = 0;
    snprintf(buf, sizeof buf, "%s", self->urls);
    int rc = s_parse_urls(self, buf, servers, &nservers);
    if (rc != JOBQ_OK)
        return rc;
    static const char *const names[3] = {"jobs", "keys", "brokers"};
    for (int i = 0; i < 3; i++)
        snprintf(self->bucket[i], sizeof self->bucket[i], "%s_%s", self->prefix,
                 names[i]);

    //  The view: a scratch LMDB store in a directory of our own.
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/jobq-view-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        s_why(self, "cannot make a directory for the view in %s: %s",
              tmp && *tmp ? tmp : "/tmp", strerror(errno));
        return JOBQ_ESTORAGE;
    }
    jobq_store_config_t vc = {dir, S_VIEW_MAP, S_VIEW_MAP_MAX, true, 0};
    rc = jobq_store_open(self->view, &vc);
    if (rc != JOBQ_OK) {
        s_why(self, "the view: %s", jobq_store_why(self->view));
        rmdir(dir);
        return rc;
    }
    if (pipe2(self->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        s_why(self, "pipe: %s", strerror(errno));
        return JOBQ_EINTERNAL;
    }

    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, servers, nservers);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, "jobq-broker");
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 200);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, 2);
    if (s == NATS_OK && self->creds)
        s = natsOptions_SetUserCredentialsFromFiles(o, self->creds, NULL);
    if (s == NATS_OK)
        s = natsConnection_Connect(&self->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        s_why(self, "cannot reach NATS at %s: %s", self->urls,
              nats_GetLastError(NULL) ? nats_GetLastError(NULL)
                                      : natsStatus_GetText(s));
        return JOBQ_EUNAVAILABLE;
    }
    //  A record holds up to 256 KiB of input, 1 MiB of output and the
    //  errors: the servers must take messages of 2 MiB.
    int64_t maxp = natsConnection_GetMaxPayload(self->nc);
    if (maxp < (int64_t) JOBQ_MAX_FRAME_BYTES) {
        s_why(self,
              "the NATS servers take messages of %lld bytes at most; jobq "
              "needs %u (set max_payload: 4MB in their configuration)",
              (long long) maxp, (unsigned) JOBQ_MAX_FRAME_BYTES);
        return JOBQ_EINVAL;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = S_ACK_WAIT_MS;
    jo.PublishAsync.AckHandler = s_on_ack;
    jo.PublishAsync.AckHandlerClosure = self;
    jo.PublishAsync.MaxPending = 65536;
    s = natsConnection_JetStream(&self->js, self->nc, &jo);
    if (s != NATS_OK) {
        s_why(self, "JetStream: %s", natsStatus_GetText(s));
        return JOBQ_EUNAVAILABLE;
    }
    if ((rc = s_join(self, cfg)) != JOBQ_OK)
        return rc;

    //  Read both watches, and wait for their state as of now.
    for (int b = 0; b < 2; b++) {
        s_watch_t *wt = &self->watch[b];
        if (pthread_create(&wt->thread, NULL, s_watch_main, wt) != 0) {
            s_why(self, "cannot start a thread");
            return JOBQ_EINTERNAL;
        }
        wt->started = true;
    }
    if (pthread_create(&self->beat, NULL, s_beat_main, self) != 0) {
        s_why(self, "cannot start a thread");
        return JOBQ_EINTERNAL;
    }
    self->beat_started = true;
    while (true) {
        pthread_mutex_lock(&self->mu);
        bool done = self->initial[0] && self->initial[1] && !self->head;
        if (!done && !self->head) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&self->caught_up, &self->mu, &ts);
        }
        pthread_mutex_unlock(&self->mu);
        if (done)
            break;
        rc = s_bring_in(self, false);
        //  A full view grows, and takes the same changes again.
        if (rc == JOBQ_ESTOREFULL && jobq_store_grow(self->view) == JOBQ_OK)
            continue;
        if (rc != JOBQ_OK)
            return rc;
    }
    return JOBQ_OK;
}

//  --- turns --------------------------------------------------------------

static size_t
s_hex(char *out, const uint8_t *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
    return 2 * n;
}

static size_t
s_unhex(uint8_t *out, size_t max, const char *s)
{
    size_t n = strlen(s) / 2;
    if (n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return 0;
        out[i] = (uint8_t) v;
    }
    return n;
}

static void
s_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t) v;
}

static uint64_t
s_unbe64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

//  Put entries (a list, in order) back first in line.
static void
s_unpop(s_nats_t *self, s_entry_t *list)
{
    if (!list)
        return;
    s_entry_t *last = list;
    size_t n = 1, bytes = sizeof *last + strlen(last->key) + last->vlen;
    while (last->next) {
        last = last->next;
        n++;
        bytes += sizeof *last + strlen(last->key) + last->vlen;
    }
    pthread_mutex_lock(&self->mu);
    last->next = self->head;
    self->head = list;
    if (!self->tail)
        self->tail = last;
    self->qcount += n;
    self->qbytes += bytes;
    pthread_mutex_unlock(&self->mu);
}

//  Bring up to max queued changes into the view's open transaction. *out
//  gets them, in order, for s_applied once that transaction committed; on
//  an error every one of them is back in the queue, and the caller aborts.
static int
s_apply(s_nats_t *self, size_t max, s_entry_t **out)
{
    s_entry_t *head = NULL, **tail = &head;
    *out = NULL;
    for (size_t i = 0; i < max; i++) {
        s_entry_t *e = s_pop(self);
        if (!e)
            break;
        int rc = JOBQ_OK;
        if (e->bucket == S_JOBS) {
            char *end = NULL;
            uint64_t id = strtoull(e->key, &end, 10);
            if (!id || *end) {
                free(e);
                continue;
            }
            e->own = e->rev <= s_map_get(&self->revs, id);
            uint64_t mine = s_map_get(&self->claim_rev, id);
            if (mine) {
                uint64_t base = s_map_get(&self->claim_base, id);
                if (e->rev == mine) {
                    e->claim = base == UINT64_MAX ? -1 : 1;
                    s_map_put(&self->claim_rev, id, 0);
                } else if (e->rev < mine && base != UINT64_MAX &&
                           e->rev + 1 > base) {
                    //  A write the cluster took after the revision ours
                    //  was made on, and before ours: ours should have
                    //  failed its compare.
                    s_map_put(&self->claim_base, id, UINT64_MAX);
                }
            }
            if (e->op == kvOp_Put &&
                jobq_record_decode(e->val, e->vlen, &e->job) == JOBQ_OK) {
                e->has_job = true;
                e->job.seq = e->rev;
            }
            e->job.id = id;
            jobq_jobdata_t old;
            if (e->own) {
                //  Ours, in the view already.
            } else if (e->has_job) {
                bool had = jobq_store_get(self->view, id, &old) == JOBQ_OK;
                rc = jobq_store_put(self->view, had ? &old : NULL, &e->job);
            } else if (jobq_store_get(self->view, id, &old) == JOBQ_OK) {
                //  Removed, or a record this broker cannot read (damaged,
                //  or of a newer format): out of the view, so that it is
                //  neither dispatched nor written from a stale copy.
                rc = jobq_store_remove(self->view, &old);
                if (rc == JOBQ_OK && e->op == kvOp_Put)
                    s_why(self,
                          "job %" PRIu64 " revision %" PRIu64
                          " cannot be read: left out of the view",
                          id, e->rev);
            }
        } else if (e->op == kvOp_Put && e->vlen == 16) {
            uint8_t k[JOBQ_IDEM_KEY_MAX];
            size_t klen = s_unhex(k, sizeof k, e->key);
            if (klen) {
                jobq_str_t key = {(const char *) k, klen};
                rc = jobq_store_idem_put(self->view, key, s_unbe64(e->val),
                                         s_unbe64(e->val + 8));
            }
        }
        *tail = e;
        tail = &e->next;
        if (rc != JOBQ_OK) {
            //  The view could not take it (its map is full): all of this
            //  call's changes go back, first in line.
            s_why(self, "the view: %s", jobq_store_why(self->view));
            s_unpop(self, head);
            return rc;
        }
    }
    pthread_mutex_lock(&self->mu);
    bool more = self->head != NULL;
    pthread_mutex_unlock(&self->mu);
    if (more)
        s_wake(self);
    *out = head;
    return JOBQ_OK;
}

//  The view's transaction with the changes of list committed: learn their
//  revisions, then keep them for the engine (keep) or free them.
static void
s_applied(s_nats_t *self, s_entry_t *list, bool keep)
{
    s_entry_t **tail = &self->turn;
    while (*tail)
        tail = &(*tail)->next;
    while (list) {
        s_entry_t *e = list;
        list = e->next;
        e->next = NULL;
        if (e->bucket == S_JOBS) {
            if (e->job.id > self->max_id)
                self->max_id = e->job.id;
            //  A removed job keeps its revision: an older change of it
            //  still on its way must not bring it back.
            if (!e->own)
                s_map_put(&self->revs, e->job.id, e->rev);
        }
        if (keep && e->bucket == S_JOBS) {
            *tail = e;
            tail = &e->next;
            self->nturn++;
        } else {
            free(e);
        }
    }
}

//  Up to S_APPLY_MAX queued changes into the view, in a transaction of
//  their own; kept for the engine (keep) or freed. On an error they are
//  all queued again, first in line.
static int
s_bring_in(s_nats_t *self, bool keep)
{
    int rc = jobq_store_begin(self->view);
    if (rc != JOBQ_OK)
        return rc;
    s_entry_t *list = NULL;
    rc = s_apply(self, S_APPLY_MAX, &list);
    if (rc != JOBQ_OK) {
        jobq_store_abort(self->view);
        return rc;
    }
    rc = jobq_store_commit(self->view);
    if (rc == JOBQ_OK)
        s_applied(self, list, keep);
    else
        s_unpop(self, list);
    return rc;
}

static void
s_reset_writes(s_nats_t *self)
{
    self->nwrites = 0;
    self->alen = 0;
    s_map_clear(&self->pending);
}

static int
s_begin(void *impl)
{
    s_nats_t *self = impl;
    //  Changes a begin brought in that no engine took (a rollback's or a
    //  recovery's begin) wait for the next; a bound keeps that finite.
    if (self->delivered || self->nturn > 8 * S_APPLY_MAX) {
        s_free_entries(self->turn);
        self->turn = NULL;
        self->nturn = 0;
    }
    self->delivered = false;
    s_reset_writes(self);
    self->wrote = false;
    s_map_clear(&self->seen);
    s_map_clear(&self->taken);
    //  What the watch brought goes into the view in a transaction of its
    //  own: the turn's may fail, and the watch does not bring it twice.
    int rc = s_bring_in(self, true);
    if (rc == JOBQ_ESTOREFULL)
        jobq_store_grow(self->view);
    if (rc == JOBQ_OK)
        rc = jobq_store_begin(self->view);
    if (rc != JOBQ_OK)
        return rc;
    self->in_txn = true;
    return JOBQ_OK;
}

static void
s_abort(void *impl)
{
    s_nats_t *self = impl;
    jobq_store_abort(self->view);
    self->in_txn = false;
    s_reset_writes(self);
}

static int
s_arena(s_nats_t *self, const void *p, size_t n, size_t *off)
{
    if (self->alen + n > self->acap) {
        size_t cap = self->acap ? self->acap : 1 << 16;
        while (cap < self->alen + n)
            cap *= 2;
        uint8_t *a = realloc(self->arena, cap);
        if (!a)
            return JOBQ_ENOMEM;
        self->arena = a;
        self->acap = cap;
    }
    *off = self->alen;
    if (n && p)
        memcpy(self->arena + self->alen, p, n);
    self->alen += n;
    return JOBQ_OK;
}

static s_write_t *
s_add_write(s_nats_t *self, int bucket, const char *key)
{
    if (self->nwrites == self->cwrites) {
        size_t cap = self->cwrites ? self->cwrites * 2 : 256;
        s_write_t *w = realloc(self->writes, cap * sizeof *w);
        if (!w)
            return NULL;
        self->writes = w;
        self->cwrites = cap;
    }
    s_write_t *w = &self->writes[self->nwrites];
    memset(w, 0, sizeof *w);
    w->bucket = bucket;
    if (s_arena(self, key, strlen(key) + 1, &w->key_off) != JOBQ_OK)
        return NULL;
    self->nwrites++;
    return w;
}

//  Keep old, the record before the turn's first write of w's job.
static int
s_keep_old(s_nats_t *self, s_write_t *w, const jobq_jobdata_t *old)
{
    if (w->old_set)
        return JOBQ_OK;
    w->old_set = true;
    w->had_old = old != NULL;
    if (!old)
        return JOBQ_OK;
    w->old_len = jobq_record_size(old);
    if (s_arena(self, NULL, w->old_len, &w->old_off) != JOBQ_OK)
        return JOBQ_ENOMEM;
    jobq_record_encode(old, self->arena + w->old_off);
    return JOBQ_OK;
}

//  The write of job id in this turn, made when missing.
static s_write_t *
s_job_write(s_nats_t *self, uint64_t id)
{
    uint64_t at = s_map_get(&self->pending, id);
    if (at)
        return &self->writes[at - 1];
    char key[24];
    snprintf(key, sizeof key, "%" PRIu64, id);
    s_write_t *w = s_add_write(self, S_JOBS, key);
    if (!w)
        return NULL;
    w->id = id;
    w->expect = s_map_get(&self->revs, id);
    if (!w->expect)
        w->expect = s_map_get(&self->seen, id);
    if (s_map_put(&self->pending, id, self->nwrites) != JOBQ_OK) {
        self->nwrites--;
        return NULL;
    }
    return w;
}

static int
s_get(void *impl, uint64_t id, jobq_jobdata_t *job)
{
    s_nats_t *self = impl;
    int rc = jobq_store_get(self->view, id, job);
    if (rc != JOBQ_ENOTFOUND || !self->in_txn || s_map_get(&self->pending, id))
        return rc;
    //  Not in the view (yet): a job just made through another broker, or
    //  no job at all. Ask the cluster.
    char key[24];
    snprintf(key, sizeof key, "%" PRIu64, id);
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, self->kv[S_JOBS], key);
    if (s != NATS_OK || !e)
        return JOBQ_ENOTFOUND;
    jobq_jobdata_t j;
    rc = JOBQ_ENOTFOUND;
    if (kvEntry_Operation(e) == kvOp_Put &&
        kvEntry_Revision(e) > s_map_get(&self->revs, id) &&
        jobq_record_decode(kvEntry_Value(e), (size_t) kvEntry_ValueLen(e),
                           &j) == JOBQ_OK) {
        //  Into this turn's view only: the watch brings it for good.
        j.seq = kvEntry_Revision(e);
        rc = jobq_store_put(self->view, NULL, &j);
        if (rc == JOBQ_OK)
            rc = s_map_put(&self->seen, id, kvEntry_Revision(e));
        if (rc == JOBQ_OK)
            rc = jobq_store_get(self->view, id, job);
    }
    kvEntry_Destroy(e);
    return rc;
}

static int
s_put(void *impl, const jobq_jobdata_t *old, const jobq_jobdata_t *job)
{
    s_nats_t *self = impl;
    //  Encode first: old and job may borrow from view pages its put moves.
    s_write_t *w = s_job_write(self, job->id);
    if (!w || s_keep_old(self, w, old) != JOBQ_OK)
        return JOBQ_ENOMEM;
    size_t n = jobq_record_size(job);
    size_t off;
    if (s_arena(self, NULL, n, &off) != JOBQ_OK)
        return JOBQ_ENOMEM;
    jobq_record_encode(job, self->arena + off);
    w->off = off;
    w->len = n;
    w->del = false;
    self->wrote = true;
    return jobq_store_put(self->view, old, job);
}

static int
s_remove(void *impl, const jobq_jobdata_t *job)
{
    s_nats_t *self = impl;
    s_write_t *w = s_job_write(self, job->id);
    if (!w || s_keep_old(self, w, job) != JOBQ_OK)
        return JOBQ_ENOMEM;
    w->del = true;
    w->len = 0;
    self->wrote = true;
    return jobq_store_remove(self->view, job);
}

//  A key a failed commit of this broker wrote without its job reads as
//  absent here at once (elsewhere once it is old: jobq_engine.c).
static int
s_idem_get(void *impl, jobq_str_t key, uint64_t *id, uint64_t *created)
{
    s_nats_t *self = impl;
    int rc = jobq_store_idem_get(self->view, key, id, created);
    if (rc != JOBQ_OK || !zhashx_size(self->orphans))
        return rc;
    char hex[S_KEY_HEX_MAX];
    size_t klen = key.len < JOBQ_IDEM_KEY_MAX ? key.len : JOBQ_IDEM_KEY_MAX;
    s_hex(hex, (const uint8_t *) key.ptr, klen);
    return zhashx_lookup(self->orphans, hex) ? JOBQ_ENOTFOUND : JOBQ_OK;
}

static int
s_idem_put(void *impl, jobq_str_t key, uint64_t id, uint64_t created)
{
    s_nats_t *self = impl;
    char hex[S_KEY_HEX_MAX];
    size_t klen = key.len < JOBQ_IDEM_KEY_MAX ? key.len : JOBQ_IDEM_KEY_MAX;
    s_hex(hex, (const uint8_t *) key.ptr, klen);
    //  Taking over a key whose job was never written: compare with the
    //  revision that wrote it, so that one broker only takes it.
    uint64_t expect = 0, old_id = 0, oid, oat;
    const uint64_t *o = zhashx_lookup(self->orphans, hex);
    if (o) {
        expect = o[0];
        old_id = o[1];
    } else if (jobq_store_idem_get(self->view, key, &oid, &oat) == JOBQ_OK) {
        kvEntry *e = NULL;
        if (kvStore_Get(&e, self->kv[S_KEYS], hex) == NATS_OK && e) {
            expect = kvEntry_Revision(e);
            kvEntry_Destroy(e);
        }
        old_id = oid;
    }
    //  The job the old key named was never written; fence it off, so that
    //  a write of it still on its way (buffered through a reconnect) fails
    //  its compare: a delete marker where it would go.
    if (old_id && old_id != id) {
        s_write_t *f = s_job_write(self, old_id);
        if (!f)
            return JOBQ_ENOMEM;
        f->expect = 0;
        f->del = true;
        f->len = 0;
    }
    s_write_t *w = s_add_write(self, S_KEYS, hex);
    if (!w)
        return JOBQ_ENOMEM;
    w->expect = expect;
    uint8_t v[16];
    s_be64(v, id);
    s_be64(v + 8, created);
    if (s_arena(self, v, 16, &w->off) != JOBQ_OK)
        return JOBQ_ENOMEM;
    w->len = 16;
    self->wrote = true;
    return jobq_store_idem_put(self->view, key, id, created);
}

//  What is left of the commit's time to wait, ms (at least 1).
static int64_t
s_left_ms(const s_nats_t *self)
{
    int64_t left = self->deadline - s_now_ms();
    return left > 0 ? left : 1;
}

//  Publish the writes of one bucket and wait for every acknowledgement.
static int
s_publish(s_nats_t *self, int bucket)
{
    const char *name = self->bucket[bucket];
    size_t sent = 0;
    int rc = JOBQ_OK;
    for (size_t i = 0; i < self->nwrites && rc == JOBQ_OK; i++) {
        s_write_t *w = &self->writes[i];
        if (w->bucket != bucket)
            continue;
        char subject[S_KEY_HEX_MAX + 64];
        snprintf(subject, sizeof subject, "$KV.%s.%s", name,
                 (const char *) self->arena + w->key_off);
        natsMsg *m = NULL;
        natsStatus s =
            natsMsg_Create(&m, subject, NULL,
                           (const char *) self->arena + w->off, (int) w->len);
        char expect[24];
        snprintf(expect, sizeof expect, "%" PRIu64, w->expect);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence",
                                  expect);
        if (s == NATS_OK && w->del)
            s = natsMsgHeader_Set(m, "KV-Operation", "DEL");
        char tag[48];
        snprintf(tag, sizeof tag, "%" PRIu64 ".%zu", self->gen, i);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Jobq-Write", tag);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(self->js, &m, NULL);
        //  A window of S_WINDOW writes in flight: a turn of big batches
        //  does not fill the library's queue of pending acknowledgements.
        if (s == NATS_OK && (sent + 1) % S_WINDOW == 0) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = s_left_ms(self);
            s = js_PublishAsyncComplete(self->js, &po);
            if (s != NATS_OK) {
                s_why(self,
                      "the cluster did not acknowledge a write within %d ms "
                      "(%s)",
                      S_ACK_WAIT_MS, natsStatus_GetText(s));
                sent++;
                rc = JOBQ_EUNAVAILABLE;
                break;
            }
        }
        if (s != NATS_OK) {
            natsMsg_Destroy(m);
            s_why(self, "publishing to %s: %s", name, natsStatus_GetText(s));
            rc = JOBQ_EUNAVAILABLE;
            break;
        }
        sent++;
    }
    if (sent && rc == JOBQ_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = s_left_ms(self);
        natsStatus s = js_PublishAsyncComplete(self->js, &po);
        if (s != NATS_OK && rc == JOBQ_OK) {
            s_why(self,
                  "the cluster did not acknowledge a write within %d ms "
                  "(%s)",
                  S_ACK_WAIT_MS, natsStatus_GetText(s));
            rc = JOBQ_EUNAVAILABLE;
        }
    }
    pthread_mutex_lock(&self->mu);
    self->gen++;  //  late acknowledgements find nothing
    pthread_mutex_unlock(&self->mu);
    if (rc != JOBQ_OK) {
        natsMsgList pending = {0};
        if (js_PublishAsyncGetPendingList(&pending, self->js) == NATS_OK)
            natsMsgList_Destroy(&pending);
        return rc;
    }
    for (size_t i = 0; i < self->nwrites; i++) {
        s_write_t *w = &self->writes[i];
        if (w->bucket != bucket)
            continue;
        if (!w->done || w->err) {
            if (w->err == JSStreamWrongLastSequenceErr ||
                w->err == S_ERR_SUBJECT_BUSY) {
                s_why(self,
                      "%s %s changed at the same moment through "
                      "another broker",
                      bucket == S_JOBS ? "job" : "idempotency key",
                      (const char *) self->arena + w->key_off);
                return JOBQ_ESTALE;
            }
            s_why(self, "the cluster refused a write to %s (error %d)", name,
                  w->err);
            return JOBQ_EUNAVAILABLE;
        }
    }
    return JOBQ_OK;
}

//  After a failed commit: the keys it wrote whose jobs it did not.
static void
s_note_orphans(s_nats_t *self)
{
    for (size_t i = 0; i < self->nwrites; i++) {
        s_write_t *k = &self->writes[i];
        if (k->bucket != S_KEYS || !k->done || k->err || k->len != 16)
            continue;
        uint64_t id = s_unbe64(self->arena + k->off);
        uint64_t at = s_map_get(&self->pending, id);
        const s_write_t *j = at ? &self->writes[at - 1] : NULL;
        if (j && j->done && !j->err)
            continue;
        uint64_t *o = malloc(2 * sizeof *o);
        if (o && zhashx_size(self->orphans) < 4096) {
            o[0] = k->rev;
            o[1] = id;
            zhashx_update(self->orphans,
                          (const char *) self->arena + k->key_off, o);
        } else {
            free(o);
        }
    }
}

//  Take the revisions of the view's committed writes as known, and each
//  as a claim to check when the watch brings it (docs/STORAGE.md 10.4).
static void
s_learn(s_nats_t *self, const s_write_t *w)
{
    s_map_put(&self->revs, w->id, w->rev);
    s_map_put(&self->claim_rev, w->id, w->rev);
    s_map_put(&self->claim_base, w->id, w->expect + 1);
}

//  After a failed commit whose jobs were published: the cluster took some
//  of them. Those stay in the view (and in taken, for the engine); the
//  others go back to what the view had before the turn. JOBQ_OK with the
//  view committed, or an error and the view's transaction left to abort.
static int
s_keep_taken(s_nats_t *self)
{
    size_t taken = 0;
    for (size_t i = 0; i < self->nwrites; i++) {
        const s_write_t *w = &self->writes[i];
        taken += w->bucket == S_JOBS && w->done && !w->err;
    }
    if (!taken)
        return JOBQ_ENOTFOUND;
    int rc = JOBQ_OK;
    for (size_t i = 0; i < self->nwrites && rc == JOBQ_OK; i++) {
        const s_write_t *w = &self->writes[i];
        if (w->bucket != S_JOBS || (w->done && !w->err))
            continue;
        jobq_jobdata_t now, before;
        bool has_now = !w->del && jobq_record_decode(self->arena + w->off,
                                                     w->len, &now) == JOBQ_OK;
        bool has_before =
            w->had_old && jobq_record_decode(self->arena + w->old_off,
                                             w->old_len, &before) == JOBQ_OK;
        if (has_now)
            now.id = w->id;
        if (has_before)
            before.id = w->id;
        if (has_before)
            rc = jobq_store_put(self->view, has_now ? &now : NULL, &before);
        else if (has_now)
            rc = jobq_store_remove(self->view, &now);
        else if (w->had_old || !w->del)
            rc = JOBQ_EINTERNAL;  //  a record of ours that does not decode
    }
    if (rc == JOBQ_OK)
        rc = jobq_store_commit(self->view);
    if (rc != JOBQ_OK)
        return rc;
    for (size_t i = 0; i < self->nwrites; i++) {
        const s_write_t *w = &self->writes[i];
        if (w->bucket == S_JOBS && w->done && !w->err) {
            s_learn(self, w);
            s_map_put(&self->taken, w->id, 1);
        }
    }
    return JOBQ_OK;
}

static int
s_commit(void *impl)
{
    s_nats_t *self = impl;
    self->in_txn = false;
    if (self->nwrites == 0)
        return jobq_store_commit(self->view);
    //  One deadline for the whole commit: a broker waits this long at
    //  most, and keeps its workers and clients served.
    self->deadline = s_now_ms() + S_ACK_WAIT_MS;
    //  Keys first: a key taken at the same moment through another broker
    //  stops the turn before any job of it is written.
    int rc = s_publish(self, S_KEYS);
    if (rc == JOBQ_OK)
        rc = s_publish(self, S_JOBS);
    if (rc != JOBQ_OK) {
        s_note_orphans(self);
        if (s_keep_taken(self) != JOBQ_OK)
            jobq_store_abort(self->view);
        s_reset_writes(self);
        return rc;
    }
    for (size_t i = 0; i < self->nwrites; i++) {
        s_write_t *w = &self->writes[i];
        if (w->bucket == S_KEYS && zhashx_size(self->orphans))
            zhashx_delete(self->orphans,
                          (const char *) self->arena + w->key_off);
    }
    //  The cluster has it; the view's commit needs no sync. Only once the
    //  view has the writes does the broker take their revisions as known:
    //  if it cannot take them, the watch brings them in as others' would.
    rc = jobq_store_commit(self->view);
    if (rc == JOBQ_OK) {
        for (size_t i = 0; i < self->nwrites; i++) {
            s_write_t *w = &self->writes[i];
            if (w->bucket == S_JOBS)
                s_learn(self, w);
        }
    }
    s_reset_writes(self);
    return rc;
}

static size_t
s_changes(void *impl, jobq_store_change_fn *fn, void *arg)
{
    s_nats_t *self = impl;
    size_t n = 0;
    self->delivered = true;
    for (s_entry_t *e = self->turn; e; e = e->next, n++) {
        jobq_store_change_t c = {e->has_job ? &e->job : NULL, e->job.id, e->rev,
                                 e->own, e->claim};
        fn(arg, &c);
    }
    return n;
}

static int
s_fd(void *impl)
{
    return ((s_nats_t *) impl)->pipe[0];
}

static int
s_slot(void *impl)
{
    return ((s_nats_t *) impl)->slot;
}

static bool
s_leader(void *impl)
{
    return ((s_nats_t *) impl)->leader;
}

//  This broker's place after maker among the live slots, going up and
//  round: 1 for the next live one. 0 when it is the maker.
static int
s_rank(void *impl, int maker)
{
    s_nats_t *self = impl;
    uint64_t live = __atomic_load_n(&self->live, __ATOMIC_RELAXED);
    int me = self->slot, rank = 0;
    live |= me >= 0 ? 1ull << me : 0;
    for (int k = 1; k <= S_SLOTS && me >= 0 && maker >= 0; k++) {
        int s = (maker + k) % S_SLOTS;
        if (live & (1ull << s))
            rank++;
        if (s == me)
            return s == maker ? 0 : rank;
    }
    return 0;
}

static bool
s_taken(void *impl, uint64_t id)
{
    return s_map_get(&((s_nats_t *) impl)->taken, id) != 0;
}

static const char *
s_why_op(void *impl)
{
    s_nats_t *self = impl;
    return self->why[0] ? self->why : jobq_store_why(self->view);
}

static bool
s_wrote(void *impl)
{
    s_nats_t *self = impl;
    return self->wrote || jobq_store_wrote(self->view);
}

//  --- reads and the rest: the view's --------------------------------------

#define S_VIEW(self) (((s_nats_t *) (self))->view)

static int
s_ready_first(void *impl, jobq_str_t type, uint64_t *id, int32_t *priority)
{
    return jobq_store_ready_first(S_VIEW(impl), type, id, priority);
}

static int
s_ready_before(void *impl,
               jobq_str_t type,
               int32_t priority,
               uint64_t before_id,
               uint64_t *id)
{
    return jobq_store_ready_before(S_VIEW(impl), type, priority, before_id, id);
}

static int
s_ready_after(void *impl,
              jobq_str_t type,
              int32_t after_priority,
              uint64_t after_id,
              uint64_t *id,
              int32_t *priority)
{
    return jobq_store_ready_after(S_VIEW(impl), type, after_priority, after_id,
                                  id, priority);
}

static int
s_ready_oldest(void *impl, jobq_str_t type, uint32_t levels, uint64_t *id)
{
    return jobq_store_ready_oldest(S_VIEW(impl), type, levels, id);
}

static int
s_delayed_first(void *impl, uint64_t *run_at, uint64_t *id)
{
    return jobq_store_delayed_first(S_VIEW(impl), run_at, id);
}

static int
s_unqueue(void *impl, const jobq_jobdata_t *job)
{
    return jobq_store_unqueue(S_VIEW(impl), job);
}

static int
s_query(void *impl,
        const jobq_store_query_t *q,
        jobq_store_visit_fn *fn,
        void *arg,
        uint64_t *next)
{
    return jobq_store_query(S_VIEW(impl), q, fn, arg, next);
}

static int
s_scan_status(void *impl, int status, jobq_store_visit_fn *fn, void *arg)
{
    return jobq_store_scan_status(S_VIEW(impl), status, fn, arg);
}


//  "last_id" is the highest id any broker has made (or imported), as far
//  as the view knows: a broker's next id goes above it.
static int
s_meta_get(void *impl, const char *name, uint64_t *value)
{
    s_nats_t *self = impl;
    if (strcmp(name, "last_id") == 0) {
        *value = self->max_id;
        return self->max_id ? JOBQ_OK : JOBQ_ENOTFOUND;
    }
    return jobq_store_meta_get(S_VIEW(impl), name, value);
}

static int
s_meta_put(void *impl, const char *name, uint64_t value)
{
    return jobq_store_meta_put(S_VIEW(impl), name, value);
}

static int
s_counts(void *impl, jobq_store_count_fn *fn, void *arg)
{
    return jobq_store_counts(S_VIEW(impl), fn, arg);
}

static int
s_shop_counts(void *impl, jobq_str_t shop, uint64_t *out)
{
    return jobq_store_shop_counts(S_VIEW(impl), shop, out);
}

static int
s_grow(void *impl)
{
    return jobq_store_grow(S_VIEW(impl));
}

static void
s_usage(void *impl, uint64_t *used, uint64_t *size, uint64_t *max)
{
    jobq_store_usage(S_VIEW(impl), used, size, max);
}

//  Keys leave the bucket by its TTL; the view forgets them by age.
static int
s_idem_expire(void *impl, uint64_t before, uint32_t max, uint32_t *removed)
{
    return jobq_store_idem_expire(S_VIEW(impl), before, max, removed);
}

static int
s_quarantine_put(void *impl,
                 const uint8_t *key,
                 size_t klen,
                 const uint8_t *val,
                 size_t vlen)
{
    return jobq_store_quarantine_put(S_VIEW(impl), key, klen, val, vlen);
}

//  The keys the view holds: every key of the bucket, as the watch has it.
static int
s_idem_scan(void *impl, jobq_store_idem_fn *fn, void *arg)
{
    return jobq_store_idem_scan(S_VIEW(impl), fn, arg);
}

const jobq_store_ops_t jobq_store_nats_ops = {
    .open = s_open,
    .destroy = s_destroy,
    .begin = s_begin,
    .commit = s_commit,
    .abort = s_abort,
    .get = s_get,
    .put = s_put,
    .ready_first = s_ready_first,
    .ready_after = s_ready_after,
    .ready_before = s_ready_before,
    .ready_oldest = s_ready_oldest,
    .delayed_first = s_delayed_first,
    .unqueue = s_unqueue,
    .remove = s_remove,
    .query = s_query,
    .scan_status = s_scan_status,
    .idem_get = s_idem_get,
    .idem_put = s_idem_put,
    .idem_scan = s_idem_scan,
    .meta_get = s_meta_get,
    .meta_put = s_meta_put,
    .counts = s_counts,
    .shop_counts = s_shop_counts,
    .grow = s_grow,
    .usage = s_usage,
    .idem_expire = s_idem_expire,
    .why = s_why_op,
    .wrote = s_wrote,
    .quarantine_put = s_quarantine_put,
    .fd = s_fd,
    .changes = s_changes,
    .slot = s_slot,
    .leader = s_leader,
    .taken = s_taken,
    .rank = s_rank,
};
