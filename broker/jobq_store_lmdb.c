/*  jobq_store_lmdb.c: the store on LMDB; the only file that includes lmdb.h.

    Databases (docs/STORAGE.md): jobs (id -> record), ready (type, 0,
    inverted priority, id), delayed (run_at, id), by_shop (shop, 0, id),
    by_status (status, id), idem (key -> id, created), idem_time (created,
    key), counts (type, 0, status -> count), shops (shop, 0 -> counts by
    status and bytes), meta (name -> u64). Keys are
   big-endian so byte order is numeric order. The environment is opened with
   LMDB's default, durable sync: a commit returns after fsync. Never MDB_NOSYNC,
    MDB_NOMETASYNC or MDB_WRITEMAP (a full disk would raise SIGBUS).
*/
#define _GNU_SOURCE  //  strerrorname_np
#include "jobq_store.h"
#include "jobq_mdbfile.h"
#include "jobq_record.h"

#include <errno.h>
#include <lmdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define S_DEFAULT_MAP (1ull << 30)  //  1 GiB, sparse on Linux
#define S_MAX_DIRTY   64            //  distinct counters touched per turn
#define S_KEY_MAX     (JOBQ_MAX_SHOP_LEN + 1 + 8 + 8)

enum {
    S_JOBS,
    S_READY,
    S_DELAYED,
    S_SHOP,
    S_STATUS,
    S_IDEM,
    S_COUNTS,
    S_META,
    S_IDEM_TIME,
    S_QUARANTINE,
    S_SHOPS,
    S_NDB
};
static const char *const s_dbnames[S_NDB] = {
    "jobs",   "ready", "delayed",   "by_shop",    "by_status", "idem",
    "counts", "meta",  "idem_time", "quarantine", "shops"};

//  A shops entry: a count per status, then the bytes of the shop's records.
#define S_SHOP_FIELDS (JOBQ_STATUS_COUNT_ + 1)

typedef struct {
    char shop[JOBQ_MAX_SHOP_LEN];  //  shop id
    size_t shop_len;               //  bytes in shop
    int64_t delta[S_SHOP_FIELDS];  //  changes in this transaction
} s_sdirty_t;

typedef struct {
    char type[JOBQ_MAX_TYPE_LEN];  //  job type
    size_t type_len;               //  bytes in type
    int status;                    //  jobq_status_t
    int64_t delta;                 //  change in this transaction
} s_dirty_t;

typedef struct {
    MDB_env *env;                    //  the environment, NULL until open
    MDB_dbi dbi[S_NDB];              //  the databases
    MDB_txn *txn;                    //  the open write transaction, or NULL
    uint8_t *rec;                    //  scratch for encoding records
    size_t rec_cap;                  //  bytes allocated in rec
    s_dirty_t dirty[S_MAX_DIRTY];    //  counter deltas of this transaction
    int ndirty;                      //  entries used in dirty
    s_sdirty_t sdirty[S_MAX_DIRTY];  //  per-shop deltas of this transaction
    int nsdirty;                     //  entries used in sdirty
    uint64_t map_size;               //  current map size, bytes
    uint64_t map_max;                //  growth ceiling, bytes; 0 = no growth
    uint32_t psize;                  //  page size, bytes
    char dir[4096];                  //  the data directory
    int lock_fd;                     //  holds the data directory's lock
    bool wrote;                      //  the transaction (or the last one)
                                     //  changed something
    bool damaged;                    //  LMDB met damaged data in this
                                     //  transaction: only abort is left
    char assert_text[256];           //  LMDB's words, when it asserted
    char why[512];                   //  the last error, in words
} s_lmdb_t;

void *jobq_store_lmdb_impl_new(void);

void *
jobq_store_lmdb_impl_new(void)
{
    s_lmdb_t *self = calloc(1, sizeof(s_lmdb_t));
    if (self)
        self->lock_fd = -1;
    return self;
}

int
jobq_store_lock_dir(const char *dir, int *fd, char *why, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/jobq.lock", dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0) {
        snprintf(why, len, "cannot open %s: %s", path, strerror(errno));
        return JOBQ_ESTORAGE;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        if (e == EWOULDBLOCK) {
            snprintf(why, len,
                     "%s is in use by another jobq-broker (or a --repair): "
                     "stop it first",
                     dir);
            return JOBQ_EUNAVAILABLE;
        }
        snprintf(why, len, "cannot lock %s: %s", path, strerror(e));
        return JOBQ_ESTORAGE;
    }
    return JOBQ_OK;
}

//  Remember what went wrong, in words, for the broker's log.
static void s_why(s_lmdb_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
s_why(s_lmdb_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->why, sizeof self->why, fmt, ap);
    va_end(ap);
}

static int s_err(int rc);

//  s_err, and the words for the log: LMDB's, and errno's name for the
//  system errors a disk gives (ENOSPC, EIO, ...).
static int
s_fail(s_lmdb_t *self, const char *what, int rc)
{
    if (rc > 0 && strerrorname_np(rc))
        s_why(self, "%s: %s (%s)", what, mdb_strerror(rc), strerrorname_np(rc));
    else if (rc == MDB_MAP_FULL)
        s_why(self, "%s: the map is full (MDB_MAP_FULL, %llu MiB)", what,
              (unsigned long long) (self->map_size >> 20));
    else
        s_why(self, "%s: %s", what, mdb_strerror(rc));
    return s_err(rc);
}

//  Set when LMDB reported damage (MDB_CORRUPTED, MDB_PAGE_NOTFOUND): such
//  an error also leaves the transaction unable to commit, so the guard
//  marks it damaged (one store, one thread: a static is enough).
static bool s_mdb_damage;

static int
s_err(int rc)
{
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
        s_mdb_damage = true;
    switch (rc) {
    case MDB_SUCCESS:
        return JOBQ_OK;
    case MDB_NOTFOUND:
        return JOBQ_ENOTFOUND;
    case MDB_MAP_FULL:
        return JOBQ_ESTOREFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return JOBQ_ECORRUPT;
    case MDB_VERSION_MISMATCH:
        return JOBQ_EVERSION;
    case ENOMEM:
        return JOBQ_ENOMEM;
    default:
        return JOBQ_ESTORAGE;
    }
}

static void
s_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
}

static uint64_t
s_unbe(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

//  --- keys -----------------------------------------------------------------

static size_t
s_key_id(uint8_t *k, uint64_t id)
{
    s_be(k, id, 8);
    return 8;
}

//  Priority inverted so higher priorities sort first.
static size_t
s_key_ready(uint8_t *k, const jobq_jobdata_t *j)
{
    memcpy(k, j->type.ptr, j->type.len);
    k[j->type.len] = 0;
    s_be(k + j->type.len + 1,
         (uint32_t) (JOBQ_MAX_PRIORITY - (int64_t) j->priority), 4);
    s_be(k + j->type.len + 5, j->id, 8);
    return j->type.len + 13;
}

static size_t
s_key_delayed(uint8_t *k, const jobq_jobdata_t *j)
{
    s_be(k, j->run_at, 8);
    s_be(k + 8, j->id, 8);
    return 16;
}

static size_t
s_key_shop(uint8_t *k, const jobq_jobdata_t *j)
{
    memcpy(k, j->shop.ptr, j->shop.len);
    k[j->shop.len] = 0;
    s_be(k + j->shop.len + 1, j->id, 8);
    return j->shop.len + 9;
}

static size_t
s_key_status(uint8_t *k, int status, uint64_t id)
{
    k[0] = (uint8_t) status;
    s_be(k + 1, id, 8);
    return 9;
}

//  --- the guard: damaged data never takes the broker down --------------------
//
//  LMDB trusts its file. A damaged page makes it fail an assertion (and
//  abort the process) or read outside its map (SIGSEGV, or SIGBUS past the
//  end of a short file). Every call into LMDB runs inside a guard: the
//  assertion callback, and the fault handlers jobq_store_lmdb_catch_faults
//  installs, jump back to the guard, which turns the call into
//  JOBQ_ECORRUPT, marks the transaction damaged (only abort is left of it)
//  and keeps LMDB's words or the faulting page for the log. A fault outside
//  a guard kills the process as it always would.

typedef struct s_guard {
    sigjmp_buf jb;         //  where the call began
    struct s_guard *prev;  //  the guard around this one, or NULL
    int sig;               //  the fault, or 0 for an assertion
    void *addr;            //  the faulting address
} s_guard_t;

//  The innermost guarded call of this thread (a signal handler has no
//  other way to find it).
static _Thread_local s_guard_t *s_guard;

static void
s_on_assert(MDB_env *env, const char *msg)
{
    s_lmdb_t *self = mdb_env_get_userctx(env);
    if (self)
        snprintf(self->assert_text, sizeof self->assert_text, "%s", msg);
    if (s_guard) {
        s_guard->sig = 0;
        siglongjmp(s_guard->jb, 1);
    }
    //  Not inside a guard: LMDB aborts, as it would have.
}

static void
s_on_fault(int sig, siginfo_t *si, void *uc)
{
    (void) uc;
    if (s_guard) {
        s_guard->sig = sig;
        s_guard->addr = si->si_addr;
        siglongjmp(s_guard->jb, 1);
    }
    //  Not ours: the default action, when the instruction runs again.
    signal(sig, SIG_DFL);
}

int
jobq_store_lmdb_catch_faults(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = s_on_fault;
    //  SA_NODEFER: the handler leaves by siglongjmp without restoring the
    //  mask, so the signal must not be blocked while it runs.
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)
        return JOBQ_EINTERNAL;
    return JOBQ_OK;
}

//  A guarded call jumped back: the transaction is damaged; say where.
static int
s_damage(s_lmdb_t *self, const char *what, const s_guard_t *g)
{
    self->damaged = true;
    if (g->sig) {
        MDB_envinfo info;
        mdb_env_info(self->env, &info);
        uintptr_t base = (uintptr_t) info.me_mapaddr, at = (uintptr_t) g->addr;
        if (at >= base && at < base + info.me_mapsize && self->psize)
            s_why(self, "%s: %s reading page %llu of the data file", what,
                  g->sig == SIGBUS ? "SIGBUS" : "SIGSEGV",
                  (unsigned long long) ((at - base) / self->psize));
        else
            s_why(self, "%s: %s at %p, outside the data file", what,
                  g->sig == SIGBUS ? "SIGBUS" : "SIGSEGV", g->addr);
    } else {
        s_why(self, "%s: LMDB: %s", what, self->assert_text);
    }
    return JOBQ_ECORRUPT;
}

//  Return the value of expr, computed inside a guard (see above); in a
//  transaction already damaged, JOBQ_ECORRUPT at once.
#define S_GUARDED(self, what, expr)                                            \
    do {                                                                       \
        if ((self)->damaged)                                                   \
            return JOBQ_ECORRUPT;                                              \
        s_guard_t g_;                                                          \
        memset(&g_, 0, sizeof g_);                                             \
        g_.prev = s_guard;                                                     \
        if (sigsetjmp(g_.jb, 0)) {                                             \
            s_guard = g_.prev;                                                 \
            return s_damage((self), (what), &g_);                              \
        }                                                                      \
        s_guard = &g_;                                                         \
        s_mdb_damage = false;                                                  \
        int rc_ = (expr);                                                      \
        s_guard = g_.prev;                                                     \
        if (s_mdb_damage)                                                      \
            (self)->damaged = true;                                            \
        return rc_;                                                            \
    } while (0)

//  --- lifecycle ------------------------------------------------------------

//  mkdir -p dir, mode 0700 for what it makes. 0, or -1 with errno set.
static int
s_mkdirs(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

//  Every page a database refers to must be in the file, or LMDB will read
//  past its end (SIGBUS) at the first touch. Checked before any page but
//  the meta pages is read: when the file is shorter than its meta page
//  counts (which LMDB allows: the last pages may be free ones never
//  written), the trees are walked by hand (jobq_mdbfile.h) to find the
//  highest page they need.
static int
s_check_size(s_lmdb_t *self, const char *dir)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(self->env, &info);
    mdb_env_stat(self->env, &st);
    self->psize = st.ms_psize;
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat fs;
    if (stat(path, &fs) != 0)
        return s_fail(self, "reading the size of the data file", errno);
    uint64_t need = ((uint64_t) info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t) fs.st_size >= need)
        return JOBQ_OK;
    jobq_mdbfile_t *f = NULL;
    char why[256];
    if (jobq_mdbfile_open(dir, &f, why, sizeof why) != 0) {
        s_why(self, "reading the data file: %s", why);
        return JOBQ_ECORRUPT;
    }
    uint64_t highest = jobq_mdbfile_highest_page(f);
    jobq_mdbfile_close(&f);
    need = (highest + 1) * st.ms_psize;
    if ((uint64_t) fs.st_size < need) {
        s_why(self,
              "the data file %s is truncated: %llu bytes, but its databases "
              "need %llu pages of %u bytes (%llu bytes); restore it from a "
              "copy, or salvage what is left with jobq-broker --repair",
              path, (unsigned long long) fs.st_size,
              (unsigned long long) highest + 1, st.ms_psize,
              (unsigned long long) need);
        return JOBQ_ECORRUPT;
    }
    return JOBQ_OK;
}

static int
s_shop_count(s_lmdb_t *self, jobq_str_t shop, int from, int to, int64_t bytes);
static int s_flush_shops(s_lmdb_t *self);
static int s_put_key(s_lmdb_t *self,
                     int db,
                     const uint8_t *k,
                     size_t klen,
                     const void *v,
                     size_t vlen,
                     unsigned flags);

//  A store made before the shops database (docs/STORAGE.md, 3.6.1) gets it
//  built from its records, once: meta "shops" says it is there. Records
//  that fail their check are left out (--verify names them).
static int
s_build_shops(s_lmdb_t *self)
{
    MDB_val key = {5, "shops"}, val;
    int grc = mdb_get(self->txn, self->dbi[S_META], &key, &val);
    if (grc != MDB_NOTFOUND)
        return grc ? s_fail(self, "reading the meta database", grc) : JOBQ_OK;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[S_JOBS], &cur);
    if (rc)
        return s_fail(self, "counting the jobs of each shop", rc);
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    int out = JOBQ_OK;
    for (; rc == 0 && out == JOBQ_OK;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        jobq_jobdata_t j;
        if (jobq_record_decode(v.mv_data, v.mv_size, &j) != JOBQ_OK)
            continue;
        //  The record borrows from its page: copied before any write.
        char shop[JOBQ_MAX_SHOP_LEN];
        size_t len = j.shop.len < sizeof shop ? j.shop.len : sizeof shop;
        memcpy(shop, j.shop.ptr, len);
        out = s_shop_count(self, (jobq_str_t){shop, len}, -1, j.status,
                           (int64_t) v.mv_size);
    }
    mdb_cursor_close(cur);
    if (out == JOBQ_OK && rc != MDB_NOTFOUND)
        out = s_fail(self, "counting the jobs of each shop", rc);
    if (out == JOBQ_OK)
        out = s_flush_shops(self);
    uint8_t one[8];
    s_be(one, 1, 8);
    if (out == JOBQ_OK)
        out = s_put_key(self, S_META, (const uint8_t *) "shops", 5, one, 8, 0);
    return out;
}

static int
s_open_dbs(s_lmdb_t *self)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(self->env, NULL, 0, &txn);
    if (rc)
        return s_fail(self, "beginning the first transaction", rc);
    for (int i = 0; i < S_NDB; i++) {
        rc = mdb_dbi_open(txn, s_dbnames[i], MDB_CREATE, &self->dbi[i]);
        if (rc) {
            mdb_txn_abort(txn);
            s_fail(self, "opening the databases", rc);
            return s_err(rc);
        }
    }
    self->txn = txn;
    int brc = s_build_shops(self);
    self->txn = NULL;
    self->nsdirty = 0;
    if (brc != JOBQ_OK) {
        mdb_txn_abort(txn);
        return brc;
    }
    rc = mdb_txn_commit(txn);
    return rc ? s_fail(self, "creating the databases", rc) : JOBQ_OK;
}

static int
s_guarded_open_dbs(s_lmdb_t *self)
{
    S_GUARDED(self, "opening the databases", s_open_dbs(self));
}

static int
s_open(void *impl, const jobq_store_config_t *cfg)
{
    s_lmdb_t *self = impl;
    if (s_mkdirs(cfg->dir) != 0) {
        int e = errno;
        s_why(self, "cannot create the data directory %s: %s (%s)", cfg->dir,
              strerror(e), strerrorname_np(e) ? strerrorname_np(e) : "?");
        return JOBQ_ESTORAGE;
    }
    snprintf(self->dir, sizeof self->dir, "%s", cfg->dir);
    //  One broker to a directory: two would each believe they own the
    //  jobs (LMDB would let them share the file).
    char lwhy[512];
    int rc = jobq_store_lock_dir(cfg->dir, &self->lock_fd, lwhy, sizeof lwhy);
    if (rc != JOBQ_OK) {
        s_why(self, "%s", lwhy);
        return rc;
    }
    rc = mdb_env_create(&self->env);
    if (rc) {
        close(self->lock_fd);
        self->lock_fd = -1;
        return s_fail(self, "creating the environment", rc);
    }
    mdb_env_set_userctx(self->env, self);
    mdb_env_set_assert(self->env, s_on_assert);
    self->map_size = cfg->map_size ? cfg->map_size : S_DEFAULT_MAP;
    self->map_max = cfg->map_max;
    mdb_env_set_maxdbs(self->env, S_NDB);
    mdb_env_set_mapsize(self->env, self->map_size);
    mdb_env_set_maxreaders(self->env, 126);
    //  A scratch store (a view a backend rebuilds at every start) needs
    //  no sync, and leaves no file behind: its files are unlinked once
    //  open, and live as long as the process holds them.
    unsigned flags = MDB_NOTLS;
    if (cfg->scratch)
        flags |= MDB_NOSYNC | MDB_NOMETASYNC;
    rc = mdb_env_open(self->env, cfg->dir, flags, 0600);
    if (rc) {
        rc = s_fail(self, "opening the environment", rc);
        goto fail;
    }
    //  Readers left by a process that died are cleared at start.
    int dead = 0;
    mdb_reader_check(self->env, &dead);
    MDB_envinfo info;
    mdb_env_info(self->env, &info);
    if (info.me_mapsize > self->map_size)
        self->map_size = info.me_mapsize;
    if ((rc = s_check_size(self, cfg->dir)) != JOBQ_OK)
        goto fail;
    rc = s_guarded_open_dbs(self);
    if (rc != JOBQ_OK)
        goto fail;
    if (cfg->scratch) {
        static const char *const files[] = {"data.mdb", "lock.mdb",
                                            "jobq.lock"};
        char path[4200];
        for (size_t i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s", cfg->dir, files[i]);
            unlink(path);
        }
        rmdir(cfg->dir);
    }
    return JOBQ_OK;
fail:
    mdb_env_close(self->env);
    self->env = NULL;
    close(self->lock_fd);
    self->lock_fd = -1;
    return rc;
}

static void
s_abort(void *impl)
{
    s_lmdb_t *self = impl;
    if (self->txn)
        mdb_txn_abort(self->txn);
    self->txn = NULL;
    self->ndirty = 0;
    self->nsdirty = 0;
    self->damaged = false;
}

static void
s_destroy(void **impl_p)
{
    s_lmdb_t *self = *impl_p;
    if (!self)
        return;
    s_abort(self);
    if (self->env)
        mdb_env_close(self->env);
    if (self->lock_fd >= 0)
        close(self->lock_fd);
    free(self->rec);
    free(self);
    *impl_p = NULL;
}

static int
s_begin(void *impl)
{
    s_lmdb_t *self = impl;
    if (self->txn)
        return JOBQ_EINTERNAL;
    self->ndirty = 0;
    self->nsdirty = 0;
    self->damaged = false;
    self->wrote = false;
    int rc = mdb_txn_begin(self->env, NULL, 0, &self->txn);
    return rc ? s_fail(self, "beginning a transaction", rc) : JOBQ_OK;
}

static int s_flush_counts(s_lmdb_t *self);

static int
s_commit(void *impl)
{
    s_lmdb_t *self = impl;
    if (!self->txn)
        return JOBQ_EINTERNAL;
    int rc = s_flush_counts(self);
    if (rc == JOBQ_OK)
        rc = s_flush_shops(self);
    if (rc != JOBQ_OK) {
        s_abort(self);
        return rc;
    }
    //  mdb_txn_commit frees the transaction whatever it returns.
    int mrc = mdb_txn_commit(self->txn);
    self->txn = NULL;
    self->ndirty = 0;
    self->nsdirty = 0;
    if (mrc == MDB_BAD_TXN) {  //  a put hit MAP_FULL earlier
        s_fail(self, "committing", MDB_MAP_FULL);
        return JOBQ_ESTOREFULL;
    }
    if (mrc == MDB_SUCCESS)
        return JOBQ_OK;
    rc = s_fail(self, "committing", mrc);
    //  LMDB reports a short write as EIO; on a full disk that is what a
    //  write does, so say which it was.
    struct statvfs vfs;
    if (mrc == EIO && statvfs(self->dir, &vfs) == 0 &&
        (uint64_t) vfs.f_bavail * vfs.f_frsize < (1u << 20))
        s_why(self,
              "committing: the disk holding %s is full (ENOSPC: a short "
              "write, %llu bytes left)",
              self->dir, (unsigned long long) vfs.f_bavail * vfs.f_frsize);
    return rc;
}

static int
s_grow(void *impl)
{
    s_lmdb_t *self = impl;
    if (self->txn || !self->map_max || self->map_size >= self->map_max)
        return JOBQ_ESTOREFULL;
    uint64_t next = self->map_size * 2;
    if (next > self->map_max)
        next = self->map_max;
    int rc = mdb_env_set_mapsize(self->env, next);
    if (rc)
        return s_err(rc);
    self->map_size = next;
    return JOBQ_OK;
}

//  --- jobs -----------------------------------------------------------------

static int
s_get(void *impl, uint64_t id, jobq_jobdata_t *job)
{
    s_lmdb_t *self = impl;
    uint8_t k[8];
    MDB_val key = {s_key_id(k, id), k}, val;
    int rc = mdb_get(self->txn, self->dbi[S_JOBS], &key, &val);
    if (rc)
        return s_err(rc);
    rc = jobq_record_decode(val.mv_data, val.mv_size, job);
    if (rc == JOBQ_ECORRUPT)
        s_why(self, "the record of job %016llx fails its check",
              (unsigned long long) id);
    return rc;
}

static int
s_put_key(s_lmdb_t *self,
          int db,
          const uint8_t *k,
          size_t klen,
          const void *v,
          size_t vlen,
          unsigned flags)
{
    MDB_val key = {klen, (void *) k}, val = {vlen, (void *) v};
    self->wrote = true;
    return s_err(mdb_put(self->txn, self->dbi[db], &key, &val, flags));
}

static int
s_del_key(s_lmdb_t *self, int db, const uint8_t *k, size_t klen)
{
    MDB_val key = {klen, (void *) k};
    self->wrote = true;
    int rc = mdb_del(self->txn, self->dbi[db], &key, NULL);
    return rc == MDB_NOTFOUND ? JOBQ_OK : s_err(rc);
}

static int
s_count(s_lmdb_t *self, jobq_str_t type, int status, int64_t delta)
{
    for (int i = 0; i < self->ndirty; i++) {
        s_dirty_t *d = &self->dirty[i];
        if (d->status == status && d->type_len == type.len &&
            memcmp(d->type, type.ptr, type.len) == 0) {
            d->delta += delta;
            return JOBQ_OK;
        }
    }
    if (self->ndirty == S_MAX_DIRTY) {
        //  Full: fold into the database now rather than grow without bound.
        //  If that fails the transaction is lost anyway; say so.
        int rc = s_flush_counts(self);
        if (rc)
            return rc;
    }
    s_dirty_t *d = &self->dirty[self->ndirty++];
    memcpy(d->type, type.ptr, type.len);
    d->type_len = type.len;
    d->status = status;
    d->delta = delta;
    return JOBQ_OK;
}

static size_t
s_key_count(uint8_t *k, const char *type, size_t len, int status)
{
    memcpy(k, type, len);
    k[len] = 0;
    k[len + 1] = (uint8_t) status;
    return len + 2;
}

static int
s_flush_counts(s_lmdb_t *self)
{
    for (int i = 0; i < self->ndirty; i++) {
        s_dirty_t *d = &self->dirty[i];
        if (d->delta == 0)
            continue;
        uint8_t k[JOBQ_MAX_TYPE_LEN + 2];
        MDB_val key = {s_key_count(k, d->type, d->type_len, d->status), k};
        MDB_val val;
        uint64_t n = 0;
        if (mdb_get(self->txn, self->dbi[S_COUNTS], &key, &val) == 0 &&
            val.mv_size == 8)
            n = s_unbe(val.mv_data, 8);
        n = (d->delta < 0 && (uint64_t) -d->delta > n)
                ? 0
                : (uint64_t) ((int64_t) n + d->delta);
        int rc;
        if (n == 0) {
            rc = s_del_key(self, S_COUNTS, k, key.mv_size);
        } else {
            uint8_t v[8];
            s_be(v, n, 8);
            rc = s_put_key(self, S_COUNTS, k, key.mv_size, v, 8, 0);
        }
        if (rc)
            return rc;
    }
    self->ndirty = 0;
    return JOBQ_OK;
}

//  A job of shop moved from status from (-1: new) to status to (-1:
//  removed), its record's size changing by bytes.
static int
s_shop_count(s_lmdb_t *self, jobq_str_t shop, int from, int to, int64_t bytes)
{
    s_sdirty_t *d = NULL;
    for (int i = 0; i < self->nsdirty && !d; i++)
        if (self->sdirty[i].shop_len == shop.len &&
            memcmp(self->sdirty[i].shop, shop.ptr, shop.len) == 0)
            d = &self->sdirty[i];
    if (!d) {
        if (self->nsdirty == S_MAX_DIRTY) {
            int rc = s_flush_shops(self);
            if (rc)
                return rc;
        }
        d = &self->sdirty[self->nsdirty++];
        memset(d, 0, sizeof *d);
        d->shop_len = shop.len < sizeof d->shop ? shop.len : sizeof d->shop;
        memcpy(d->shop, shop.ptr, d->shop_len);
    }
    if (from >= 0 && from < JOBQ_STATUS_COUNT_)
        d->delta[from]--;
    if (to >= 0 && to < JOBQ_STATUS_COUNT_)
        d->delta[to]++;
    d->delta[JOBQ_STATUS_COUNT_] += bytes;
    return JOBQ_OK;
}

static int
s_flush_shops(s_lmdb_t *self)
{
    for (int i = 0; i < self->nsdirty; i++) {
        s_sdirty_t *d = &self->sdirty[i];
        uint8_t k[JOBQ_MAX_SHOP_LEN + 1];
        memcpy(k, d->shop, d->shop_len);
        k[d->shop_len] = 0;
        MDB_val key = {d->shop_len + 1, k}, val;
        uint64_t n[S_SHOP_FIELDS] = {0};
        if (mdb_get(self->txn, self->dbi[S_SHOPS], &key, &val) == 0 &&
            val.mv_size == 8 * S_SHOP_FIELDS)
            for (int f = 0; f < S_SHOP_FIELDS; f++)
                n[f] = s_unbe((const uint8_t *) val.mv_data + 8 * f, 8);
        bool any = false, changed = false;
        for (int f = 0; f < S_SHOP_FIELDS; f++) {
            changed |= d->delta[f] != 0;
            n[f] = (d->delta[f] < 0 && (uint64_t) -d->delta[f] > n[f])
                       ? 0
                       : (uint64_t) ((int64_t) n[f] + d->delta[f]);
            any |= n[f] != 0;
        }
        if (!changed)
            continue;
        int rc;
        if (!any) {
            rc = s_del_key(self, S_SHOPS, k, key.mv_size);
        } else {
            uint8_t v[8 * S_SHOP_FIELDS];
            for (int f = 0; f < S_SHOP_FIELDS; f++)
                s_be(v + 8 * f, n[f], 8);
            rc = s_put_key(self, S_SHOPS, k, key.mv_size, v, sizeof v, 0);
        }
        if (rc)
            return rc;
    }
    self->nsdirty = 0;
    return JOBQ_OK;
}

static int
s_put(void *impl, const jobq_jobdata_t *old, const jobq_jobdata_t *job)
{
    s_lmdb_t *self = impl;
    //  Encode the record and every key first: old and job may borrow from
    //  pages the first mdb_put moves.
    size_t need = jobq_record_size(job);
    if (need > self->rec_cap) {
        uint8_t *r = realloc(self->rec, need);
        if (!r)
            return JOBQ_ENOMEM;
        self->rec = r;
        self->rec_cap = need;
    }
    size_t rlen = jobq_record_encode(job, self->rec);
    uint8_t kid[8], oq[S_KEY_MAX], nq[S_KEY_MAX], os[9], ns[9], ks[S_KEY_MAX];
    size_t oql = 0, nql = 0, osl = 0, nsl, ksl = 0;
    int oqdb = -1, nqdb = -1;
    s_key_id(kid, job->id);
    if (old && old->queue == JOBQ_QUEUE_READY)
        oql = s_key_ready(oq, old), oqdb = S_READY;
    else if (old && old->queue == JOBQ_QUEUE_DELAYED)
        oql = s_key_delayed(oq, old), oqdb = S_DELAYED;
    if (job->queue == JOBQ_QUEUE_READY)
        nql = s_key_ready(nq, job), nqdb = S_READY;
    else if (job->queue == JOBQ_QUEUE_DELAYED)
        nql = s_key_delayed(nq, job), nqdb = S_DELAYED;
    if (old)
        osl = s_key_status(os, old->status, old->id);
    nsl = s_key_status(ns, job->status, job->id);
    if (!old)
        ksl = s_key_shop(ks, job);
    //  The type too: the counters are updated after the puts.
    char tbuf[JOBQ_MAX_TYPE_LEN];
    size_t tlen = job->type.len < sizeof tbuf ? job->type.len : sizeof tbuf;
    memcpy(tbuf, job->type.ptr, tlen);
    jobq_str_t type = {tbuf, tlen};
    int same_queue = oqdb == nqdb && oql == nql && memcmp(oq, nq, oql) == 0;
    int old_status = old ? old->status : -1;
    char sbuf[JOBQ_MAX_SHOP_LEN];
    size_t slen = job->shop.len < sizeof sbuf ? job->shop.len : sizeof sbuf;
    memcpy(sbuf, job->shop.ptr, slen);
    int64_t dbytes =
        (int64_t) rlen - (old ? (int64_t) jobq_record_size(old) : 0);

    //  New ids are always the largest so far: append is exact and cheap.
    int rc =
        s_put_key(self, S_JOBS, kid, 8, self->rec, rlen, old ? 0 : MDB_APPEND);
    if (rc == JOBQ_ESTORAGE && !old)  //  an id below the last (clock reset)
        rc = s_put_key(self, S_JOBS, kid, 8, self->rec, rlen, 0);
    if (rc)
        return rc;
    if (!same_queue) {
        if (oqdb >= 0 && (rc = s_del_key(self, oqdb, oq, oql)))
            return rc;
        if (nqdb >= 0 && (rc = s_put_key(self, nqdb, nq, nql, "", 0, 0)))
            return rc;
    }
    if (old_status != job->status) {
        if (old && (rc = s_del_key(self, S_STATUS, os, osl)))
            return rc;
        if ((rc = s_put_key(self, S_STATUS, ns, nsl, "", 0, 0)))
            return rc;
        if (old && (rc = s_count(self, type, old_status, -1)))
            return rc;
        if ((rc = s_count(self, type, job->status, +1)))
            return rc;
    }
    if (ksl && (rc = s_put_key(self, S_SHOP, ks, ksl, "", 0, 0)))
        return rc;
    if (old_status != job->status || dbytes != 0)
        return s_shop_count(self, (jobq_str_t){sbuf, slen},
                            old_status == job->status ? -1 : old_status,
                            old_status == job->status ? -1 : job->status,
                            dbytes);
    return JOBQ_OK;
}

//  --- indexes ----------------------------------------------------------

//  The first ready key of type at or after the key (type, from) where
//  from is the 12 bytes of inverted priority and id, or none (NULL); with
//  back, the last key before (type, from) of the same priority level.
static int
s_ready_seek(s_lmdb_t *self,
             jobq_str_t type,
             const uint8_t *from,
             bool back,
             uint64_t *id,
             int32_t *priority)
{
    uint8_t k[JOBQ_MAX_TYPE_LEN + 13];
    memcpy(k, type.ptr, type.len);
    k[type.len] = 0;
    size_t klen = type.len + 1;
    if (from) {
        memcpy(k + klen, from, 12);
        klen += 12;
    }
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[S_READY], &cur);
    if (rc)
        return s_err(rc);
    MDB_val key = {klen, k}, val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    //  Back: the key before the first at or past, or the last of all.
    if (back && rc == 0)
        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    else if (back && rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    size_t match = type.len + (back ? 5 : 1);  //  the type (and level)
    int out = JOBQ_ENOTFOUND;
    if (rc == 0 && key.mv_size == type.len + 13 &&
        memcmp(key.mv_data, k, match) == 0) {
        const uint8_t *p = (const uint8_t *) key.mv_data + type.len + 1;
        if (priority)
            *priority = (int32_t) (JOBQ_MAX_PRIORITY - (int64_t) s_unbe(p, 4));
        *id = s_unbe(p + 4, 8);
        out = JOBQ_OK;
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        out = s_err(rc);
    }
    mdb_cursor_close(cur);
    return out;
}

static int
s_ready_first(void *impl, jobq_str_t type, uint64_t *id, int32_t *priority)
{
    return s_ready_seek(impl, type, NULL, false, id, priority);
}

static int
s_ready_before(void *impl,
               jobq_str_t type,
               int32_t priority,
               uint64_t before_id,
               uint64_t *id)
{
    uint8_t from[12];
    s_be(from, (uint64_t) (JOBQ_MAX_PRIORITY - (int64_t) priority), 4);
    s_be(from + 4, before_id, 8);
    return s_ready_seek(impl, type, from, true, id, NULL);
}

static int
s_ready_after(void *impl,
              jobq_str_t type,
              int32_t after_priority,
              uint64_t after_id,
              uint64_t *id,
              int32_t *priority)
{
    if (after_id == UINT64_MAX && after_priority == -JOBQ_MAX_PRIORITY)
        return JOBQ_ENOTFOUND;
    uint8_t from[12];
    uint64_t inv = (uint64_t) (JOBQ_MAX_PRIORITY - (int64_t) after_priority);
    uint64_t next = after_id + 1;
    if (after_id == UINT64_MAX) {  //  the next level's first
        inv++;
        next = 0;
    }
    s_be(from, inv, 4);
    s_be(from + 4, next, 8);
    return s_ready_seek(impl, type, from, false, id, priority);
}

//  Ready keys are type NUL, 4 bytes of inverted priority, 8 of id: the
//  first key of each level is its oldest job; the next level starts at
//  the level's bytes plus one.
static int
s_ready_oldest(void *impl, jobq_str_t type, uint32_t max_levels, uint64_t *id)
{
    s_lmdb_t *self = impl;
    uint8_t k[JOBQ_MAX_TYPE_LEN + 13];
    memcpy(k, type.ptr, type.len);
    k[type.len] = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[S_READY], &cur);
    if (rc)
        return s_err(rc);
    MDB_val key = {type.len + 1, k}, val;
    int out = JOBQ_ENOTFOUND;
    for (uint32_t n = 0; n < max_levels; n++) {
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc != 0 || key.mv_size != type.len + 13 ||
            memcmp(key.mv_data, k, type.len + 1) != 0)
            break;
        const uint8_t *p = (const uint8_t *) key.mv_data + type.len + 1;
        uint64_t level = s_unbe(p, 4), first = s_unbe(p + 4, 8);
        if (out == JOBQ_ENOTFOUND || first < *id)
            *id = first;
        out = JOBQ_OK;
        if (level == UINT32_MAX)
            break;
        s_be(k + type.len + 1, level + 1, 4);
        key.mv_size = type.len + 5;
        key.mv_data = k;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        out = s_err(rc);
    mdb_cursor_close(cur);
    return out;
}

static int
s_delayed_first(void *impl, uint64_t *run_at, uint64_t *id)
{
    s_lmdb_t *self = impl;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[S_DELAYED], &cur);
    if (rc)
        return s_err(rc);
    MDB_val key, val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    if (rc == 0 && key.mv_size == 16) {
        *run_at = s_unbe(key.mv_data, 8);
        *id = s_unbe((const uint8_t *) key.mv_data + 8, 8);
    }
    mdb_cursor_close(cur);
    return rc == 0 ? JOBQ_OK : s_err(rc);
}

static int
s_unqueue(void *impl, const jobq_jobdata_t *job)
{
    s_lmdb_t *self = impl;
    uint8_t k[S_KEY_MAX];
    if (job->queue == JOBQ_QUEUE_READY)
        return s_del_key(self, S_READY, k, s_key_ready(k, job));
    if (job->queue == JOBQ_QUEUE_DELAYED)
        return s_del_key(self, S_DELAYED, k, s_key_delayed(k, job));
    return JOBQ_EINVAL;
}

static int
s_remove(void *impl, const jobq_jobdata_t *job)
{
    s_lmdb_t *self = impl;
    //  Every key first: job borrows from a page the deletes may move.
    uint8_t kid[8], ks[S_KEY_MAX], kst[9], kq[S_KEY_MAX];
    char tbuf[JOBQ_MAX_TYPE_LEN];
    size_t tlen = job->type.len < sizeof tbuf ? job->type.len : sizeof tbuf;
    memcpy(tbuf, job->type.ptr, tlen);
    jobq_str_t type = {tbuf, tlen};
    char sbuf[JOBQ_MAX_SHOP_LEN];
    size_t slen = job->shop.len < sizeof sbuf ? job->shop.len : sizeof sbuf;
    memcpy(sbuf, job->shop.ptr, slen);
    int64_t bytes = (int64_t) jobq_record_size(job);
    int status = job->status, qdb = -1;
    size_t ksl = s_key_shop(ks, job), kstl = s_key_status(kst, status, job->id);
    size_t kql = 0;
    if (job->queue == JOBQ_QUEUE_READY)
        kql = s_key_ready(kq, job), qdb = S_READY;
    else if (job->queue == JOBQ_QUEUE_DELAYED)
        kql = s_key_delayed(kq, job), qdb = S_DELAYED;
    s_key_id(kid, job->id);
    //  The key as stored now (shop, key), and as stored before per-shop keys.
    uint8_t kidem[JOBQ_IDEM_KEY_MAX], klegacy[JOBQ_MAX_KEY_LEN];
    size_t kidl =
        job->key.len ? jobq_store_idem_key(kidem, job->shop, job->key) : 0;
    size_t kll = job->key.len <= sizeof klegacy ? job->key.len : 0;
    memcpy(klegacy, job->key.ptr, kll);
    uint64_t id = job->id;
    int rc;
    if ((rc = s_del_key(self, S_JOBS, kid, 8)) ||
        (rc = s_del_key(self, S_SHOP, ks, ksl)) ||
        (rc = s_del_key(self, S_STATUS, kst, kstl)) ||
        (qdb >= 0 && (rc = s_del_key(self, qdb, kq, kql))))
        return rc;
    //  The idempotency key goes with its job, unless it names a newer one
    //  (taken again after its window). Its idem_time entry stays, and its
    //  sweep finds nothing left to delete.
    MDB_val ik[2] = {{kidl, kidem}, {kll, klegacy}}, iv;
    for (int i = 0; i < 2; i++) {
        if (!ik[i].mv_size)
            continue;
        rc = mdb_get(self->txn, self->dbi[S_IDEM], &ik[i], &iv);
        if (rc && rc != MDB_NOTFOUND)
            return s_err(rc);
        if (rc == 0 && iv.mv_size == 16 && s_unbe(iv.mv_data, 8) == id &&
            (rc = s_del_key(self, S_IDEM, ik[i].mv_data, ik[i].mv_size)))
            return rc;
    }
    if ((rc = s_shop_count(self, (jobq_str_t){sbuf, slen}, status, -1, -bytes)))
        return rc;
    return s_count(self, type, status, -1);
}

static bool
s_match(const jobq_store_query_t *q, const jobq_jobdata_t *j)
{
    if (q->status >= 0 && j->status != q->status)
        return false;
    if (q->type.len && (j->type.len != q->type.len ||
                        memcmp(j->type.ptr, q->type.ptr, q->type.len)))
        return false;
    if (q->shop.len && (j->shop.len != q->shop.len ||
                        memcmp(j->shop.ptr, q->shop.ptr, q->shop.len)))
        return false;
    return true;
}

//  Walk one index backwards from (prefix, before) while keys keep the
//  prefix; the last 8 key bytes are the job id.
static int
s_query(void *impl,
        const jobq_store_query_t *q,
        jobq_store_visit_fn *fn,
        void *arg,
        uint64_t *next)
{
    s_lmdb_t *self = impl;
    uint8_t k[S_KEY_MAX];
    size_t plen = 0;
    int db = S_JOBS;
    if (q->shop.len) {
        db = S_SHOP;
        memcpy(k, q->shop.ptr, q->shop.len);
        k[q->shop.len] = 0;
        plen = q->shop.len + 1;
    } else if (q->status >= 0) {
        db = S_STATUS;
        k[0] = (uint8_t) q->status;
        plen = 1;
    }
    s_be(k + plen, q->before ? q->before : UINT64_MAX, 8);
    *next = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[db], &cur);
    if (rc)
        return s_err(rc);
    MDB_val key = {plen + 8, k}, val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    else if (rc == 0)
        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    //  With no `before`, a key equal to (prefix, UINT64_MAX) cannot exist.
    uint32_t seen = 0, matched = 0;
    int out = JOBQ_OK;
    while (rc == 0) {
        //  Every key of jobs and by_status has one size: another one is
        //  damage. In by_shop a key of another size is another shop's.
        if (db != S_SHOP && key.mv_size != plen + 8) {
            s_why(self, "the index %s holds a key of %zu bytes", s_dbnames[db],
                  key.mv_size);
            out = JOBQ_ECORRUPT;
            break;
        }
        if (key.mv_size != plen + 8 || memcmp(key.mv_data, k, plen) != 0)
            break;
        uint64_t id = s_unbe((const uint8_t *) key.mv_data + plen, 8);
        if (seen == q->max_examine || matched == q->limit) {
            *next = id + 1;  //  resume with this id included
            break;
        }
        seen++;
        jobq_jobdata_t j;
        int drc = (db == S_JOBS)
                      ? jobq_record_decode(val.mv_data, val.mv_size, &j)
                      : s_get(self, id, &j);
        if (drc == JOBQ_OK && s_match(q, &j)) {
            if (fn(arg, &j)) {
                *next = id + 1;  //  not taken: the next page starts with it
                break;
            }
            matched++;
        } else if (drc != JOBQ_OK) {
            //  A page must not come back silently short: the query fails,
            //  naming the job, and --verify / --repair deal with it.
            if (drc == JOBQ_ENOTFOUND)
                s_why(self,
                      "the index %s names job %016llx, which is not "
                      "stored",
                      s_dbnames[db], (unsigned long long) id);
            else if (drc == JOBQ_ECORRUPT)
                s_why(self, "the record of job %016llx fails its check",
                      (unsigned long long) id);
            else if (drc == JOBQ_EVERSION)
                s_why(self, "the record of job %016llx is of a newer format",
                      (unsigned long long) id);
            out = drc == JOBQ_ENOTFOUND ? JOBQ_ECORRUPT : drc;
            break;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    }
    if (rc != 0 && rc != MDB_NOTFOUND && out == JOBQ_OK)
        out = s_fail(self, "listing jobs", rc);
    mdb_cursor_close(cur);
    return out;
}

static int
s_scan_status(void *impl, int status, jobq_store_visit_fn *fn, void *arg)
{
    s_lmdb_t *self = impl;
    uint8_t k[9];
    s_key_status(k, status, 0);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[S_STATUS], &cur);
    if (rc)
        return s_err(rc);
    MDB_val key = {9, k}, val;
    int out = JOBQ_OK;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == 9 &&
           ((const uint8_t *) key.mv_data)[0] == (uint8_t) status) {
        uint64_t id = s_unbe((const uint8_t *) key.mv_data + 1, 8);
        jobq_jobdata_t j;
        int grc = s_get(self, id, &j);
        if (grc != JOBQ_OK) {
            out = grc;
            break;
        }
        if (fn(arg, &j))
            break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return out;
}

//  --- keys, meta, counts -----------------------------------------------------

static int
s_idem_get(void *impl, jobq_str_t k, uint64_t *id, uint64_t *created)
{
    s_lmdb_t *self = impl;
    MDB_val key = {k.len, (void *) k.ptr}, val;
    int rc = mdb_get(self->txn, self->dbi[S_IDEM], &key, &val);
    if (rc)
        return s_err(rc);
    if (val.mv_size != 16)
        return JOBQ_ECORRUPT;
    *id = s_unbe(val.mv_data, 8);
    *created = s_unbe((const uint8_t *) val.mv_data + 8, 8);
    return JOBQ_OK;
}

static int
s_idem_put(void *impl, jobq_str_t k, uint64_t id, uint64_t created)
{
    s_lmdb_t *self = impl;
    uint8_t v[16];
    s_be(v, id, 8);
    s_be(v + 8, created, 8);
    int rc = s_put_key(self, S_IDEM, (const uint8_t *) k.ptr, k.len, v, 16, 0);
    if (rc)
        return rc;
    //  (created, key): the order in which keys expire.
    uint8_t tk[8 + JOBQ_IDEM_KEY_MAX];
    size_t klen = k.len < JOBQ_IDEM_KEY_MAX ? k.len : JOBQ_IDEM_KEY_MAX;
    s_be(tk, created, 8);
    memcpy(tk + 8, k.ptr, klen);
    return s_put_key(self, S_IDEM_TIME, tk, 8 + klen, "", 0, 0);
}

static int
s_idem_scan(void *impl, jobq_store_idem_fn *fn, void *arg)
{
    s_lmdb_t *self = impl;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[S_IDEM], &cur);
    if (rc)
        return s_err(rc);
    MDB_val key, val;
    int out = JOBQ_OK;
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == 0) {
        if (val.mv_size != 16) {
            s_why(self, "an idem entry holds %zu bytes, not 16", val.mv_size);
            out = JOBQ_ECORRUPT;
            break;
        }
        jobq_str_t k = {(const char *) key.mv_data, key.mv_size};
        if (fn(arg, k, s_unbe(val.mv_data, 8),
               s_unbe((const uint8_t *) val.mv_data + 8, 8)))
            break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND && out == JOBQ_OK)
        out = s_fail(self, "listing the idempotency keys", rc);
    mdb_cursor_close(cur);
    return out;
}

static int
s_idem_expire(void *impl, uint64_t before, uint32_t max, uint32_t *removed)
{
    s_lmdb_t *self = impl;
    *removed = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(self->txn, self->dbi[S_IDEM_TIME], &cur);
    if (rc)
        return s_err(rc);
    MDB_val key, val;
    int out = JOBQ_OK;
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == 0 && *removed < max && key.mv_size >= 8) {
        const uint8_t *tk = key.mv_data;
        uint64_t created = s_unbe(tk, 8);
        if (created >= before)
            break;
        //  The key may have been taken again since (a newer entry then
        //  holds it): remove it only if this entry is the current one.
        MDB_val ik = {key.mv_size - 8, (void *) (tk + 8)}, iv;
        if (mdb_get(self->txn, self->dbi[S_IDEM], &ik, &iv) == 0 &&
            iv.mv_size == 16 &&
            s_unbe((const uint8_t *) iv.mv_data + 8, 8) == created &&
            (rc = mdb_del(self->txn, self->dbi[S_IDEM], &ik, NULL))) {
            out = s_err(rc);
            break;
        }
        self->wrote = true;
        if ((rc = mdb_cursor_del(cur, 0))) {
            out = s_err(rc);
            break;
        }
        (*removed)++;
        rc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
        if (rc == MDB_NOTFOUND || rc == EINVAL)
            rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    }
    mdb_cursor_close(cur);
    return out;
}

static int
s_meta_get(void *impl, const char *name, uint64_t *value)
{
    s_lmdb_t *self = impl;
    MDB_val key = {strlen(name), (void *) name}, val;
    int rc = mdb_get(self->txn, self->dbi[S_META], &key, &val);
    if (rc)
        return s_err(rc);
    if (val.mv_size != 8)
        return JOBQ_ECORRUPT;
    *value = s_unbe(val.mv_data, 8);
    return JOBQ_OK;
}

static int
s_meta_put(void *impl, const char *name, uint64_t value)
{
    s_lmdb_t *self = impl;
    uint8_t v[8];
    s_be(v, value, 8);
    return s_put_key(self, S_META, (const uint8_t *) name, strlen(name), v, 8,
                     0);
}

static int
s_counts(void *impl, jobq_store_count_fn *fn, void *arg)
{
    s_lmdb_t *self = impl;
    int rc = s_flush_counts(self);
    if (rc)
        return rc;
    MDB_cursor *cur;
    rc = mdb_cursor_open(self->txn, self->dbi[S_COUNTS], &cur);
    if (rc)
        return s_err(rc);
    MDB_val key, val;
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == 0) {
        if (key.mv_size >= 3 && val.mv_size == 8) {
            jobq_str_t t = {key.mv_data, key.mv_size - 2};
            int st = ((const uint8_t *) key.mv_data)[key.mv_size - 1];
            fn(arg, t, st, s_unbe(val.mv_data, 8));
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? JOBQ_OK : s_err(rc);
}

static void
s_usage(void *impl, uint64_t *used, uint64_t *size, uint64_t *max)
{
    s_lmdb_t *self = impl;
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(self->env, &info);
    mdb_env_stat(self->env, &st);
    *used = ((uint64_t) info.me_last_pgno + 1) * st.ms_psize;
    *size = self->map_size;
    *max = self->map_max;
}

//  --- the operations, each inside the guard ----------------------------------

static int
s_g_commit(void *impl)
{
    s_lmdb_t *self = impl;
    if (self->damaged) {
        s_abort(self);
        return JOBQ_ECORRUPT;
    }
    S_GUARDED(self, "while committing", s_commit(impl));
}

static int
s_g_get(void *impl, uint64_t id, jobq_jobdata_t *job)
{
    S_GUARDED((s_lmdb_t *) impl, "while reading a job", s_get(impl, id, job));
}

static int
s_g_put(void *impl, const jobq_jobdata_t *old, const jobq_jobdata_t *job)
{
    S_GUARDED((s_lmdb_t *) impl, "while writing a job", s_put(impl, old, job));
}

static int
s_g_ready_first(void *impl, jobq_str_t type, uint64_t *id, int32_t *priority)
{
    S_GUARDED((s_lmdb_t *) impl, "in the ready queue",
              s_ready_first(impl, type, id, priority));
}

static int
s_g_ready_before(void *impl,
                 jobq_str_t type,
                 int32_t priority,
                 uint64_t before_id,
                 uint64_t *id)
{
    S_GUARDED((s_lmdb_t *) impl, "in the ready queue",
              s_ready_before(impl, type, priority, before_id, id));
}

static int
s_g_ready_after(void *impl,
                jobq_str_t type,
                int32_t after_priority,
                uint64_t after_id,
                uint64_t *id,
                int32_t *priority)
{
    S_GUARDED(
        (s_lmdb_t *) impl, "in the ready queue",
        s_ready_after(impl, type, after_priority, after_id, id, priority));
}

static int
s_g_ready_oldest(void *impl, jobq_str_t type, uint32_t max_levels, uint64_t *id)
{
    S_GUARDED((s_lmdb_t *) impl, "in the ready queue",
              s_ready_oldest(impl, type, max_levels, id));
}

static int
s_g_delayed_first(void *impl, uint64_t *run_at, uint64_t *id)
{
    S_GUARDED((s_lmdb_t *) impl, "in the delayed queue",
              s_delayed_first(impl, run_at, id));
}

static int
s_g_unqueue(void *impl, const jobq_jobdata_t *job)
{
    S_GUARDED((s_lmdb_t *) impl, "while taking a job out of its queue",
              s_unqueue(impl, job));
}

static int
s_g_remove(void *impl, const jobq_jobdata_t *job)
{
    S_GUARDED((s_lmdb_t *) impl, "while deleting a job", s_remove(impl, job));
}

static int
s_g_query(void *impl,
          const jobq_store_query_t *q,
          jobq_store_visit_fn *fn,
          void *arg,
          uint64_t *next)
{
    S_GUARDED((s_lmdb_t *) impl, "while listing jobs",
              s_query(impl, q, fn, arg, next));
}

static int
s_g_scan_status(void *impl, int status, jobq_store_visit_fn *fn, void *arg)
{
    S_GUARDED((s_lmdb_t *) impl, "while scanning a state",
              s_scan_status(impl, status, fn, arg));
}

static int
s_g_idem_get(void *impl, jobq_str_t k, uint64_t *id, uint64_t *created)
{
    S_GUARDED((s_lmdb_t *) impl, "in the idempotency keys",
              s_idem_get(impl, k, id, created));
}

static int
s_g_idem_put(void *impl, jobq_str_t k, uint64_t id, uint64_t created)
{
    S_GUARDED((s_lmdb_t *) impl, "in the idempotency keys",
              s_idem_put(impl, k, id, created));
}

static int
s_g_idem_scan(void *impl, jobq_store_idem_fn *fn, void *arg)
{
    S_GUARDED((s_lmdb_t *) impl, "in the idempotency keys",
              s_idem_scan(impl, fn, arg));
}

static int
s_g_idem_expire(void *impl, uint64_t before, uint32_t max, uint32_t *removed)
{
    S_GUARDED((s_lmdb_t *) impl, "in the idempotency keys",
              s_idem_expire(impl, before, max, removed));
}

static int
s_g_meta_get(void *impl, const char *name, uint64_t *value)
{
    S_GUARDED((s_lmdb_t *) impl, "in the counters",
              s_meta_get(impl, name, value));
}

static int
s_g_meta_put(void *impl, const char *name, uint64_t value)
{
    S_GUARDED((s_lmdb_t *) impl, "in the counters",
              s_meta_put(impl, name, value));
}

static int
s_quarantine_put(void *impl,
                 const uint8_t *key,
                 size_t klen,
                 const uint8_t *val,
                 size_t vlen)
{
    return s_put_key(impl, S_QUARANTINE, key, klen, val, vlen, 0);
}

static int
s_g_quarantine_put(void *impl,
                   const uint8_t *key,
                   size_t klen,
                   const uint8_t *val,
                   size_t vlen)
{
    S_GUARDED((s_lmdb_t *) impl, "in the quarantine",
              s_quarantine_put(impl, key, klen, val, vlen));
}

static int
s_g_counts(void *impl, jobq_store_count_fn *fn, void *arg)
{
    S_GUARDED((s_lmdb_t *) impl, "in the counts", s_counts(impl, fn, arg));
}

static int
s_shop_counts(void *impl, jobq_str_t shop, uint64_t *out)
{
    s_lmdb_t *self = impl;
    memset(out, 0, 8 * S_SHOP_FIELDS);
    int rc = s_flush_shops(self);
    if (rc)
        return rc;
    uint8_t k[JOBQ_MAX_SHOP_LEN + 1];
    if (shop.len > JOBQ_MAX_SHOP_LEN)
        return JOBQ_OK;
    memcpy(k, shop.ptr, shop.len);
    k[shop.len] = 0;
    MDB_val key = {shop.len + 1, k}, val;
    rc = mdb_get(self->txn, self->dbi[S_SHOPS], &key, &val);
    if (rc == MDB_NOTFOUND)
        return JOBQ_OK;
    if (rc)
        return s_err(rc);
    if (val.mv_size != 8 * S_SHOP_FIELDS) {
        s_why(self, "the shops entry of %.*s holds %zu bytes", (int) shop.len,
              shop.ptr, val.mv_size);
        return JOBQ_ECORRUPT;
    }
    for (int f = 0; f < S_SHOP_FIELDS; f++)
        out[f] = s_unbe((const uint8_t *) val.mv_data + 8 * f, 8);
    return JOBQ_OK;
}

static int
s_g_shop_counts(void *impl, jobq_str_t shop, uint64_t *out)
{
    S_GUARDED((s_lmdb_t *) impl, "in the shops",
              s_shop_counts(impl, shop, out));
}

static const char *
s_g_why(void *impl)
{
    return ((s_lmdb_t *) impl)->why;
}

static bool
s_wrote(void *impl)
{
    return ((s_lmdb_t *) impl)->wrote;
}

const jobq_store_ops_t jobq_store_lmdb_ops = {
    .open = s_open,
    .destroy = s_destroy,
    .begin = s_begin,
    .commit = s_g_commit,
    .abort = s_abort,
    .get = s_g_get,
    .put = s_g_put,
    .ready_first = s_g_ready_first,
    .ready_after = s_g_ready_after,
    .ready_before = s_g_ready_before,
    .ready_oldest = s_g_ready_oldest,
    .delayed_first = s_g_delayed_first,
    .unqueue = s_g_unqueue,
    .remove = s_g_remove,
    .query = s_g_query,
    .scan_status = s_g_scan_status,
    .idem_get = s_g_idem_get,
    .idem_put = s_g_idem_put,
    .idem_scan = s_g_idem_scan,
    .meta_get = s_g_meta_get,
    .meta_put = s_g_meta_put,
    .counts = s_g_counts,
    .shop_counts = s_g_shop_counts,
    .grow = s_grow,
    .usage = s_usage,
    .idem_expire = s_g_idem_expire,
    .why = s_g_why,
    .wrote = s_wrote,
    .quarantine_put = s_g_quarantine_put,
};
