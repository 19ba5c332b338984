/*  jobq_repair.c: --verify and --repair (jobq_repair.h).

    Both read the old file only through jobq_mdbfile (pread, every page
    checked), never through LMDB, so damage that would make LMDB assert or
    fault is reported instead. The repair writes the new file through the
    store (jobq_store_put keeps every index and count in step with each
    record), so the rebuilt indexes are the ones the broker itself writes.
*/
#include "jobq_repair.h"
#include "jobq_mdbfile.h"
#include "jobq_record.h"
#include "jobq_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_TYPES 4096   //  distinct job types counted
#define S_BATCH     10000  //  records per transaction of a repair

//  What verify keeps of a record to check the index entries against it.
typedef struct {
    uint64_t id;      //  0 = free slot
    uint64_t run_at;  //  ms since epoch
    uint64_t seq;     //  of its last change
    uint32_t type_h;  //  hash of its type
    uint32_t shop_h;  //  hash of its shop
    int32_t priority;
    uint8_t status;  //  jobq_status_t
    uint8_t queue;   //  JOBQ_QUEUE_*
    uint8_t seen;    //  S_IN_* of the index entries found for it
} s_rec_t;

#define S_IN_READY   0x01
#define S_IN_DELAYED 0x02
#define S_IN_SHOP    0x04
#define S_IN_STATUS  0x08

typedef struct {
    char name[JOBQ_MAX_TYPE_LEN + 1];     //  job type
    uint64_t count[JOBQ_STATUS_COUNT_];   //  records per state
    uint64_t stored[JOBQ_STATUS_COUNT_];  //  what the counts database says
} s_type_t;

typedef struct {
    FILE *out;                //  where lines go
    jobq_repair_report_t *r;  //  the tallies
    s_rec_t *recs;            //  open addressing by id
    size_t cap;               //  slots, a power of two
    size_t n;                 //  records held
    s_type_t *types;          //  counted types
    size_t ntypes;            //  entries in types
    uint64_t max_id;          //  highest id of a sound record
    uint64_t max_seq;         //  highest seq of a sound record
    const char *db;           //  the database being walked
    uint64_t entries;         //  entries reached in it
    jobq_store_t *store;      //  repair: the new store, else NULL
    uint32_t in_txn;          //  repair: puts in the open transaction
    int err;                  //  repair: the first store error
    uint64_t meta[3];         //  seq, last_id, id_ceiling as stored
    uint64_t shops[JOBQ_STATUS_COUNT_];  //  the shops database's sums
    bool shops_walked;                   //  it was there and read
} s_ctx_t;

static void s_line(s_ctx_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
s_line(s_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->out, fmt, ap);
    va_end(ap);
    fputc('\n', c->out);
}

static uint64_t
s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t
s_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u;  //  FNV-1a
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static size_t
s_slot(uint64_t id, size_t cap)
{
    return (size_t) ((id * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

static s_rec_t *
s_find(s_ctx_t *c, uint64_t id)
{
    if (!c->cap)
        return NULL;
    for (size_t k = s_slot(id, c->cap);; k = (k + 1) & (c->cap - 1)) {
        if (c->recs[k].id == id)
            return &c->recs[k];
        if (c->recs[k].id == 0)
            return NULL;
    }
}

//  Room for one more record; false when memory ran out.
static bool
s_grow(s_ctx_t *c)
{
    if ((c->n + 1) * 2 <= c->cap)
        return true;
    size_t cap = c->cap ? c->cap * 2 : 1024;
    s_rec_t *t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->recs[i].id)
            continue;
        size_t k = s_slot(c->recs[i].id, cap);
        while (t[k].id)
            k = (k + 1) & (cap - 1);
        t[k] = c->recs[i];
    }
    free(c->recs);
    c->recs = t;
    c->cap = cap;
    return true;
}

static s_type_t *
s_type(s_ctx_t *c, const char *t, size_t len)
{
    if (len > JOBQ_MAX_TYPE_LEN)
        return NULL;
    for (size_t i = 0; i < c->ntypes; i++)
        if (strlen(c->types[i].name) == len &&
            memcmp(c->types[i].name, t, len) == 0)
            return &c->types[i];
    if (c->ntypes == S_MAX_TYPES)
        return NULL;
    s_type_t *n = &c->types[c->ntypes++];
    memset(n, 0, sizeof *n);
    memcpy(n->name, t, len);
    return n;
}

static void
s_damage(void *arg, uint64_t pgno, const char *what)
{
    s_ctx_t *c = arg;
    (void) pgno;
    c->r->damaged++;
    s_line(c, "damaged: %s", what);
}

//  --- the records
//  -------------------------------------------------------------

//  Writes to the new store go in transactions of S_BATCH puts: begin one
//  if none is open. False (c->err says why) when nothing may be written.
static bool
s_batch_begin(s_ctx_t *c)
{
    if (c->err)
        return false;
    if (c->in_txn == 0)
        c->err = jobq_store_begin(c->store);
    return c->err == JOBQ_OK;
}

//  A put of the batch returned rc: count it, and commit a full batch.
static void
s_batch_end(s_ctx_t *c, int rc)
{
    c->err = rc;
    if (!c->err && ++c->in_txn >= S_BATCH) {
        c->err = jobq_store_commit(c->store);
        c->in_txn = 0;
    }
}

static void
s_put_batched(s_ctx_t *c, const jobq_jobdata_t *j)
{
    if (s_batch_begin(c))
        s_batch_end(c, jobq_store_put(c->store, NULL, j));
}

static int
s_job_visit(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    s_ctx_t *c = arg;
    c->entries++;
    jobq_jobdata_t j;
    uint64_t id = kl == 8 ? s_be(k, 8) : 0;
    int rc = kl == 8 ? jobq_record_decode(v, vl, &j) : JOBQ_ECORRUPT;
    if (rc == JOBQ_OK && j.id != id)
        rc = JOBQ_ECORRUPT;
    if (rc != JOBQ_OK) {
        c->r->bad_records++;
        if (kl == 8)
            s_line(c,
                   "damaged: the record of job %016llx (%zu bytes) fails "
                   "its check%s",
                   (unsigned long long) id, vl,
                   c->store ? ": put in the quarantine" : "");
        else
            s_line(c, "damaged: a key of %zu bytes in jobs%s", kl,
                   c->store ? ": put in the quarantine" : "");
        if (c->store && s_batch_begin(c))
            s_batch_end(c, jobq_store_quarantine_put(c->store, k, kl, v, vl));
        return c->err != 0;
    }
    c->r->jobs++;
    if (j.id > c->max_id)
        c->max_id = j.id;
    if (j.seq > c->max_seq)
        c->max_seq = j.seq;
    if (!s_grow(c)) {
        s_line(c, "out of memory after %zu records", c->n);
        c->err = JOBQ_ENOMEM;
        return 1;
    }
    size_t slot = s_slot(id, c->cap);
    while (c->recs[slot].id)
        slot = (slot + 1) & (c->cap - 1);
    c->recs[slot] = (s_rec_t){id,
                              j.run_at,
                              j.seq,
                              s_hash(j.type.ptr, j.type.len),
                              s_hash(j.shop.ptr, j.shop.len),
                              j.priority,
                              (uint8_t) j.status,
                              (uint8_t) j.queue,
                              0};
    c->n++;
    s_type_t *t = s_type(c, j.type.ptr, j.type.len);
    if (t && j.status >= 0 && j.status < JOBQ_STATUS_COUNT_)
        t->count[j.status]++;
    if (c->store)
        s_put_batched(c, &j);
    return c->err != 0;
}

//  --- the indexes (verify)
//  ------------------------------------------------------

static void s_mismatch(s_ctx_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
s_mismatch(s_ctx_t *c, const char *fmt, ...)
{
    //  One damaged page can make thousands: the first 50 are enough to
    //  see what happened.
    if (++c->r->mismatches > 50)
        return;
    fprintf(c->out, "mismatch: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->out, fmt, ap);
    va_end(ap);
    fputc('\n', c->out);
}

//  The record an index entry names, marked as found in that index; NULL
//  (said) when there is none.
static s_rec_t *
s_named(s_ctx_t *c, uint64_t id, uint8_t mark)
{
    s_rec_t *r = s_find(c, id);
    if (!r) {
        s_mismatch(c, "%s names job %016llx, which has no sound record", c->db,
                   (unsigned long long) id);
        return NULL;
    }
    if (r->seen & mark)
        s_mismatch(c, "%s names job %016llx twice", c->db,
                   (unsigned long long) id);
    r->seen |= mark;
    return r;
}

static int
s_index_visit(
    void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    s_ctx_t *c = arg;
    (void) v;
    (void) vl;
    c->entries++;
    const uint8_t *zero = kl > 8 ? memchr(k, 0, kl - 8) : NULL;
    if (strcmp(c->db, "ready") == 0) {
        if (!zero || (size_t) (zero - k) + 13 != kl) {
            s_mismatch(c, "ready holds a key of %zu bytes", kl);
            return 0;
        }
        s_rec_t *r = s_named(c, s_be(k + kl - 8, 8), S_IN_READY);
        int32_t prio =
            (int32_t) (JOBQ_MAX_PRIORITY - (int64_t) s_be(zero + 1, 4));
        if (r && (r->queue != JOBQ_QUEUE_READY || r->priority != prio ||
                  r->type_h != s_hash(k, (size_t) (zero - k))))
            s_mismatch(c,
                       "ready lists job %016llx, whose record is not so "
                       "queued",
                       (unsigned long long) r->id);
    } else if (strcmp(c->db, "delayed") == 0) {
        if (kl != 16) {
            s_mismatch(c, "delayed holds a key of %zu bytes", kl);
            return 0;
        }
        s_rec_t *r = s_named(c, s_be(k + 8, 8), S_IN_DELAYED);
        if (r && (r->queue != JOBQ_QUEUE_DELAYED || r->run_at != s_be(k, 8)))
            s_mismatch(c,
                       "delayed lists job %016llx, whose record is not so "
                       "queued",
                       (unsigned long long) r->id);
    } else if (strcmp(c->db, "by_shop") == 0) {
        if (!zero || (size_t) (zero - k) + 9 != kl) {
            s_mismatch(c, "by_shop holds a key of %zu bytes", kl);
            return 0;
        }
        s_rec_t *r = s_named(c, s_be(k + kl - 8, 8), S_IN_SHOP);
        if (r && r->shop_h != s_hash(k, (size_t) (zero - k)))
            s_mismatch(c, "by_shop files job %016llx under another shop",
                       (unsigned long long) r->id);
    } else if (strcmp(c->db, "by_status") == 0) {
        if (kl != 9) {
            s_mismatch(c, "by_status holds a key of %zu bytes", kl);
            return 0;
        }
        s_rec_t *r = s_named(c, s_be(k + 1, 8), S_IN_STATUS);
        if (r && r->status != k[0])
            s_mismatch(c, "by_status files job %016llx under another state",
                       (unsigned long long) r->id);
    }
    return 0;
}

static int
s_counts_visit(
    void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    s_ctx_t *c = arg;
    c->entries++;
    if (kl < 3 || k[kl - 2] != 0 || k[kl - 1] >= JOBQ_STATUS_COUNT_ ||
        vl != 8) {
        s_mismatch(c, "counts holds an entry of %zu + %zu bytes", kl, vl);
        return 0;
    }
    s_type_t *t = s_type(c, (const char *) k, kl - 2);
    if (t)
        t->stored[k[kl - 1]] = s_be(v, 8);
    return 0;
}

static int
s_meta_visit(
    void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    s_ctx_t *c = arg;
    c->entries++;
    static const char *const names[3] = {"seq", "last_id", "id_ceiling"};
    for (int i = 0; i < 3; i++)
        if (kl == strlen(names[i]) && memcmp(k, names[i], kl) == 0 && vl == 8)
            c->meta[i] = s_be(v, 8);
    return 0;
}

static int
s_idem_visit(
    void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    s_ctx_t *c = arg;
    c->entries++;
    if (vl != 16) {
        s_mismatch(c, "idem holds a value of %zu bytes", vl);
        return 0;
    }
    uint64_t id = s_be(v, 8);
    if (!s_find(c, id)) {
        if (!c->store)
            s_mismatch(c,
                       "the idempotency key '%.*s' names job %016llx, "
                       "which has no sound record",
                       (int) (kl < 64 ? kl : 64), (const char *) k,
                       (unsigned long long) id);
        return 0;
    }
    if (c->store && s_batch_begin(c))
        s_batch_end(c, jobq_store_idem_put(c->store,
                                           (jobq_str_t){(const char *) k, kl},
                                           id, s_be(v + 8, 8)));
    return c->err != 0;
}

static int
s_count_visit(
    void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    (void) k, (void) kl, (void) v, (void) vl;
    ((s_ctx_t *) arg)->entries++;
    return 0;
}

static int
s_quarantine_visit(
    void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    s_ctx_t *c = arg;
    c->entries++;
    c->r->quarantined++;
    if (kl == 8)
        s_line(c, "quarantined: job %016llx, %zu bytes that fail their check",
               (unsigned long long) s_be(k, 8), vl);
    else
        s_line(c, "quarantined: an entry of %zu + %zu bytes", kl, vl);
    if (c->store && s_batch_begin(c))
        s_batch_end(c, jobq_store_quarantine_put(c->store, k, kl, v, vl));
    return c->err != 0;
}

//  An entry of shops (docs/STORAGE.md 3.6.1): shop, 0 -> six u64; the
//  counts are summed, to check against the records.
static int
s_shops_visit(
    void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    s_ctx_t *c = arg;
    c->entries++;
    if (kl < 2 || kl > JOBQ_MAX_SHOP_LEN + 1 || k[kl - 1] != 0 ||
        vl != 8 * (JOBQ_STATUS_COUNT_ + 1)) {
        s_mismatch(c, "shops holds an entry of %zu + %zu bytes", kl, vl);
        return 0;
    }
    for (int s = 0; s < JOBQ_STATUS_COUNT_; s++)
        c->shops[s] += s_be(v + 8 * s, 8);
    return 0;
}

//  Walk database db with fn; say when it is missing or when its own record
//  counts more entries than the walk reached.
static int
s_walk(s_ctx_t *c, jobq_mdbfile_t *f, const char *db, jobq_mdbfile_entry_fn *fn)
{
    c->db = db;
    c->entries = 0;
    uint64_t counted = 0;
    int rc = jobq_mdbfile_walk(f, db, fn, s_damage, c, &counted);
    //  The quarantine may never have been made, nor the shops database in
    //  a store from before it (the broker builds it at its next start).
    if (rc == 1 && strcmp(db, "quarantine") != 0 && strcmp(db, "shops") != 0) {
        c->r->damaged++;
        s_line(c, "damaged: the database %s is missing", db);
    } else if (rc < 0) {
        c->r->damaged++;
        s_line(c,
               "damaged: the database %s cannot be found: the main "
               "database is damaged",
               db);
    } else if (rc == 0 && counted > c->entries) {
        c->r->unreachable += counted - c->entries;
        s_line(c, "damaged: %s counts %llu entries; %llu could be read", db,
               (unsigned long long) counted, (unsigned long long) c->entries);
    }
    return rc;
}

static void
s_check_records(s_ctx_t *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        const s_rec_t *r = &c->recs[i];
        if (!r->id)
            continue;
        uint8_t want = S_IN_SHOP | S_IN_STATUS |
                       (r->queue == JOBQ_QUEUE_READY     ? S_IN_READY
                        : r->queue == JOBQ_QUEUE_DELAYED ? S_IN_DELAYED
                                                         : 0);
        if ((r->seen & want) != want)
            s_mismatch(
                c, "job %016llx is missing from %s", (unsigned long long) r->id,
                !(r->seen & S_IN_SHOP)                           ? "by_shop"
                : !(r->seen & S_IN_STATUS)                       ? "by_status"
                : !(r->seen & S_IN_READY) && (want & S_IN_READY) ? "ready"
                                                                 : "delayed");
    }
    for (size_t i = 0; i < c->ntypes; i++)
        for (int s = 0; s < JOBQ_STATUS_COUNT_; s++)
            if (c->types[i].count[s] != c->types[i].stored[s])
                s_mismatch(c,
                           "counts says %llu %s %s jobs; the records are "
                           "%llu",
                           (unsigned long long) c->types[i].stored[s],
                           jobq_status_name(s), c->types[i].name,
                           (unsigned long long) c->types[i].count[s]);
    for (int s = 0; c->shops_walked && s < JOBQ_STATUS_COUNT_; s++) {
        uint64_t records = 0;
        for (size_t i = 0; i < c->ntypes; i++)
            records += c->types[i].count[s];
        if (c->shops[s] != records)
            s_mismatch(c,
                       "shops says %llu %s jobs in all; the records are "
                       "%llu",
                       (unsigned long long) c->shops[s], jobq_status_name(s),
                       (unsigned long long) records);
    }
    if (c->meta[0] < c->max_seq)
        s_mismatch(c, "meta seq %llu is below a record's %llu",
                   (unsigned long long) c->meta[0],
                   (unsigned long long) c->max_seq);
    if (c->meta[1] < c->max_id)
        s_mismatch(c, "meta last_id %016llx is below a record's id %016llx",
                   (unsigned long long) c->meta[1],
                   (unsigned long long) c->max_id);
}

static void
s_fini(s_ctx_t *c)
{
    free(c->recs);
    free(c->types);
}

static int
s_begin_ctx(s_ctx_t *c, FILE *out, jobq_repair_report_t *r)
{
    memset(c, 0, sizeof *c);
    memset(r, 0, sizeof *r);
    c->out = out;
    c->r = r;
    c->types = calloc(S_MAX_TYPES, sizeof *c->types);
    return c->types ? JOBQ_OK : JOBQ_ENOMEM;
}

//  Take dir's lock and open its data file; say why not.
static int
s_open(const char *dir, FILE *out, int *lock, jobq_mdbfile_t **f)
{
    char why[512];
    int rc = jobq_store_lock_dir(dir, lock, why, sizeof why);
    if (rc != JOBQ_OK) {
        fprintf(out, "cannot use %s: %s\n", dir, why);
        return rc;
    }
    if (jobq_mdbfile_open(dir, f, why, sizeof why) != 0) {
        fprintf(out, "cannot read the store: %s\n", why);
        close(*lock);
        return JOBQ_ESTORAGE;
    }
    jobq_mdbfile_info_t info;
    jobq_mdbfile_info(*f, &info);
    fprintf(out,
            "%s/data.mdb: %llu pages of %u bytes; the meta page counts %llu "
            "(transaction %llu, meta page %d; the other is %s)\n",
            dir, (unsigned long long) info.pages, info.psize,
            (unsigned long long) info.last_pg + 1,
            (unsigned long long) info.txnid, info.meta,
            info.other_meta ? "sound" : "damaged");
    return JOBQ_OK;
}

int
jobq_verify(const char *dir, FILE *out, jobq_repair_report_t *report)
{
    s_ctx_t c;
    if (s_begin_ctx(&c, out, report) != JOBQ_OK)
        return JOBQ_ENOMEM;
    int lock = -1;
    jobq_mdbfile_t *f = NULL;
    int rc = s_open(dir, out, &lock, &f);
    if (rc != JOBQ_OK) {
        s_fini(&c);
        return rc;
    }
    s_walk(&c, f, "jobs", s_job_visit);
    static const char *const indexes[] = {"ready", "delayed", "by_shop",
                                          "by_status"};
    for (size_t i = 0; i < 4; i++)
        s_walk(&c, f, indexes[i], s_index_visit);
    s_walk(&c, f, "counts", s_counts_visit);
    c.shops_walked = s_walk(&c, f, "shops", s_shops_visit) == 0;
    s_walk(&c, f, "meta", s_meta_visit);
    s_walk(&c, f, "idem", s_idem_visit);
    s_walk(&c, f, "idem_time", s_count_visit);
    s_walk(&c, f, "quarantine", s_quarantine_visit);
    if (!c.err)
        s_check_records(&c);
    if (report->mismatches > 50)
        fprintf(out, "mismatch: ... and %llu more\n",
                (unsigned long long) report->mismatches - 50);
    jobq_mdbfile_close(&f);
    close(lock);
    jobq_repair_report_t *r = report;
    bool bad = r->damaged || r->bad_records || r->unreachable || r->mismatches;
    fprintf(
        out,
        "%s: %llu jobs sound; %llu records fail their check, %llu damaged "
        "pages or entries, %llu entries out of reach, %llu mismatches; "
        "%llu in the quarantine%s\n",
        bad ? "damaged" : "sound", (unsigned long long) r->jobs,
        (unsigned long long) r->bad_records, (unsigned long long) r->damaged,
        (unsigned long long) r->unreachable, (unsigned long long) r->mismatches,
        (unsigned long long) r->quarantined,
        bad ? " (jobq-broker --repair rebuilds the store from the sound "
              "records)"
            : "");
    s_fini(&c);
    return c.err ? c.err : bad ? JOBQ_ECORRUPT : JOBQ_OK;
}

//  --- repair
//  --------------------------------------------------------------------

static int
s_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

//  Put the new file in place, the old one aside in dir/damaged-<time>.
static int
s_swap(const char *dir, const char *tmp, FILE *out)
{
    char aside[4200], from[4300], to[4300];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(aside, sizeof aside, "%s/damaged-%s", dir, stamp);
    if (mkdir(aside, 0700) != 0) {
        fprintf(out, "cannot make %s: %s\n", aside, strerror(errno));
        return JOBQ_ESTORAGE;
    }
    static const char *const old[] = {"data.mdb", "lock.mdb"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s", dir, old[i]);
        snprintf(to, sizeof to, "%s/%s", aside, old[i]);
        if (rename(from, to) != 0 && !(i == 1 && errno == ENOENT)) {
            fprintf(out, "cannot move %s aside: %s\n", from, strerror(errno));
            return JOBQ_ESTORAGE;
        }
    }
    snprintf(from, sizeof from, "%s/data.mdb", tmp);
    snprintf(to, sizeof to, "%s/data.mdb", dir);
    if (rename(from, to) != 0) {
        fprintf(out, "cannot move the new file into place: %s\n",
                strerror(errno));
        return JOBQ_ESTORAGE;
    }
    static const char *const rest[] = {"lock.mdb", "jobq.lock"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s", tmp, rest[i]);
        unlink(from);
    }
    rmdir(tmp);
    s_fsync_dir(dir);
    fprintf(out, "the damaged file is kept in %s\n", aside);
    return JOBQ_OK;
}

int
jobq_repair(const char *dir, FILE *out, jobq_repair_report_t *report)
{
    s_ctx_t c;
    if (s_begin_ctx(&c, out, report) != JOBQ_OK)
        return JOBQ_ENOMEM;
    int lock = -1;
    jobq_mdbfile_t *f = NULL;
    int rc = s_open(dir, out, &lock, &f);
    if (rc != JOBQ_OK) {
        s_fini(&c);
        return rc;
    }
    //  The newest trees may be lost with the end of a truncated file: the
    //  transaction before, on the other meta page, is the next best.
    if (jobq_mdbfile_walk(f, "jobs", NULL, NULL, NULL, NULL) < 0 &&
        jobq_mdbfile_use_other_meta(f) == 0)
        fprintf(out, "the newest transaction's databases cannot be found; "
                     "reading the one before it\n");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/repair.tmp", dir);
    char path[4300];
    snprintf(path, sizeof path, "%s/data.mdb", tmp);
    unlink(path);
    c.store = jobq_store_lmdb_new();
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    uint64_t map = stat(path, &st) == 0 ? (uint64_t) st.st_size * 2 : 0;
    jobq_store_config_t sc = {tmp, map > (1ull << 30) ? map : 1ull << 30, 0,
                              false, 0};
    rc = c.store ? jobq_store_open(c.store, &sc) : JOBQ_ENOMEM;
    if (rc != JOBQ_OK) {
        fprintf(out, "cannot make the new store in %s: %s\n", tmp,
                c.store ? jobq_store_why(c.store) : "out of memory");
        goto done;
    }
    if (s_walk(&c, f, "jobs", s_job_visit) != 0) {
        //  Nothing to rebuild from: keep the damaged file as it is.
        fprintf(out, "not repaired: the jobs cannot be read; restore the "
                     "data from a copy\n");
        rc = JOBQ_ECORRUPT;
        goto done;
    }
    s_walk(&c, f, "quarantine", s_quarantine_visit);
    s_walk(&c, f, "meta", s_meta_visit);
    s_walk(&c, f, "idem", s_idem_visit);
    if (!c.err && c.in_txn == 0)
        c.err = jobq_store_begin(c.store);
    //  Counters at least as high as before, and above every record.
    uint64_t seq = c.meta[0] > c.max_seq ? c.meta[0] : c.max_seq;
    uint64_t last = c.meta[1] > c.max_id ? c.meta[1] : c.max_id;
    uint64_t ceiling = c.meta[2] > last ? c.meta[2] : last;
    if (!c.err)
        c.err = jobq_store_meta_put(c.store, "seq", seq);
    if (!c.err)
        c.err = jobq_store_meta_put(c.store, "last_id", last);
    if (!c.err)
        c.err = jobq_store_meta_put(c.store, "id_ceiling", ceiling);
    if (!c.err)
        c.err = jobq_store_commit(c.store);
    else
        jobq_store_abort(c.store);
    rc = c.err;
    if (rc != JOBQ_OK) {
        fprintf(out, "writing the new store failed: %s (%s)\n",
                jobq_strerror(rc), jobq_store_why(c.store));
        goto done;
    }
    jobq_store_destroy(&c.store);
    rc = s_swap(dir, tmp, out);
    if (rc == JOBQ_OK)
        fprintf(out,
                "repaired: %llu jobs kept, %llu records in the quarantine, "
                "indexes, counts and keys rebuilt; %llu damaged pages or "
                "entries, %llu entries out of reach were lost\n",
                (unsigned long long) report->jobs,
                (unsigned long long) report->bad_records + report->quarantined,
                (unsigned long long) report->damaged,
                (unsigned long long) report->unreachable);
done:
    jobq_store_destroy(&c.store);
    jobq_mdbfile_close(&f);
    close(lock);
    s_fini(&c);
    return rc;
}
