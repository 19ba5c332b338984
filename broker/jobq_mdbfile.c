/*  jobq_mdbfile.c: LMDB's on-disk format, read with pread and checked at
    every step (jobq_mdbfile.h).

    The layout, from LMDB 0.9's mdb.c: a page starts with a 16-byte header
    (page number u64, pad u16, flags u16, then lower and upper u16 bounds,
    or the count of overflow pages u32); an array of u16 node offsets
    follows it. A node is lo u16, hi u16, flags u16, key size u16, then the
    key and, in a leaf, the data. A branch node's child page number is lo |
    hi << 16 | flags << 32; a leaf node's data size is lo | hi << 16, and
    with F_BIGDATA its data is the u64 number of the overflow run holding
    it. Pages 0 and 1 are meta pages: after the header, magic u32, version
    u32, address u64, map size u64, the free and main databases (48 bytes
    each: pad u32 (the page size, in the free one), flags u16, depth u16,
    branch, leaf and overflow page counts, entries, root, u64 each), last
    page u64, transaction id u64. A named database is an entry of the main
    one with F_SUBDATA whose data is its 48-byte record.
*/
#include "jobq_mdbfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAGIC      0xBEEFC0DEu
#define S_VERSION    1u
#define S_HDR        16u  //  page header
#define S_NODE       8u   //  node header
#define S_DB         48u  //  a database record
#define S_P_BRANCH   0x01
#define S_P_LEAF     0x02
#define S_P_OVERFLOW 0x04
#define S_P_META     0x08
#define S_P_LEAF2    0x20
#define S_F_BIGDATA  0x01
#define S_F_SUBDATA  0x02
#define S_F_DUPDATA  0x04
#define S_MAX_DEPTH  32           //  LMDB's own cursor stack
#define S_MAX_VALUE  (64u << 20)  //  an overflow value read whole
#define S_NO_PAGE    UINT64_MAX

typedef struct {
    uint64_t root;     //  root page, S_NO_PAGE when empty
    uint64_t entries;  //  entries the record counts
    uint16_t flags;    //  database flags (MDB_DUPSORT and friends)
} s_db_t;

struct jobq_mdbfile {
    int fd;                          //  the data file
    uint32_t psize;                  //  page size
    uint64_t pages;                  //  whole pages in the file
    uint64_t last_pg;                //  as the meta page counts
    uint64_t txnid;                  //  of the meta page in use
    int meta;                        //  0 or 1
    bool other_meta;                 //  the other one is sound too
    s_db_t main;                     //  the main database
    s_db_t free_db;                  //  LMDB's free-page database
    uint8_t *seen;                   //  a bit per page, visited in this walk
    uint64_t seen_bits;              //  bits in seen
    uint8_t *page[S_MAX_DEPTH + 1];  //  one page buffer per level
    uint8_t *value;                  //  an overflow value being read
};

static uint16_t
s_u16(const uint8_t *p)
{
    return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t
s_u32(const uint8_t *p)
{
    return (uint32_t) s_u16(p) | (uint32_t) s_u16(p + 2) << 16;
}

static uint64_t
s_u64(const uint8_t *p)
{
    return (uint64_t) s_u32(p) | (uint64_t) s_u32(p + 4) << 32;
}

static s_db_t
s_db(const uint8_t *p)
{
    s_db_t d;
    d.flags = s_u16(p + 4);
    d.entries = s_u64(p + 32);
    d.root = s_u64(p + 40);
    return d;
}

static bool
s_read(const jobq_mdbfile_t *self, uint64_t pgno, uint8_t *buf, size_t n)
{
    ssize_t got = pread(self->fd, buf, n, (off_t) (pgno * self->psize));
    return got == (ssize_t) n;
}

static void s_say(jobq_mdbfile_damage_fn *dfn,
                  void *arg,
                  uint64_t pgno,
                  const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

static void
s_say(
    jobq_mdbfile_damage_fn *dfn, void *arg, uint64_t pgno, const char *fmt, ...)
{
    if (!dfn)
        return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    dfn(arg, pgno, text);
}

//  A sound meta page n into *txnid and the two database records, or false.
static bool
s_meta(int n,
       const uint8_t *buf,
       uint64_t *txnid,
       uint64_t *last_pg,
       s_db_t *free_db,
       s_db_t *main_db)
{
    const uint8_t *m = buf + S_HDR;
    if ((s_u16(buf + 10) & S_P_META) == 0 || s_u32(m) != S_MAGIC ||
        s_u32(m + 4) != S_VERSION || s_u64(buf) != (uint64_t) n)
        return false;
    *free_db = s_db(m + 24);
    *main_db = s_db(m + 24 + S_DB);
    *last_pg = s_u64(m + 120);
    *txnid = s_u64(m + 128);
    return true;
}

int
jobq_mdbfile_open(const char *dir, jobq_mdbfile_t **out, char *why, size_t len)
{
    *out = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    //  The first meta page says the page size; read enough for any.
    uint8_t head[S_HDR + 136];
    struct stat st;
    if (fstat(fd, &st) != 0 ||
        pread(fd, head, sizeof head, 0) != (ssize_t) sizeof head) {
        snprintf(why, len, "%s is too short to be an LMDB file", path);
        close(fd);
        return -1;
    }
    uint32_t psize = s_u32(head + S_HDR + 24);
    if (s_u32(head + S_HDR) != S_MAGIC || psize < 512 || psize > 65536 ||
        (psize & (psize - 1))) {
        snprintf(why, len,
                 "%s does not start with an LMDB meta page (magic %08x, "
                 "page size %u)",
                 path, s_u32(head + S_HDR), psize);
        close(fd);
        return -1;
    }
    jobq_mdbfile_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(why, len, "out of memory");
        close(fd);
        return -1;
    }
    self->fd = fd;
    self->psize = psize;
    self->pages = (uint64_t) st.st_size / psize;
    for (int i = 0; i <= S_MAX_DEPTH; i++)
        if (!(self->page[i] = malloc(psize)))
            goto oom;
    bool ok[2] = {false, false};
    uint64_t txn[2] = {0, 0}, last[2] = {0, 0};
    s_db_t fdb[2], mdb[2];
    for (int n = 0; n < 2; n++)
        ok[n] = self->pages > (uint64_t) n &&
                s_read(self, (uint64_t) n, self->page[0], psize) &&
                s_meta(n, self->page[0], &txn[n], &last[n], &fdb[n], &mdb[n]);
    if (!ok[0] && !ok[1]) {
        snprintf(why, len, "%s: neither meta page (0, 1) is sound", path);
        jobq_mdbfile_close(&self);
        return -1;
    }
    int m = !ok[0] || (ok[1] && txn[1] > txn[0]);
    self->meta = m;
    self->other_meta = ok[!m];
    self->txnid = txn[m];
    self->last_pg = last[m];
    self->free_db = fdb[m];
    self->main = mdb[m];
    self->seen_bits =
        (self->last_pg > self->pages ? self->last_pg : self->pages) + 1;
    self->seen = calloc((size_t) (self->seen_bits / 8 + 1), 1);
    if (!self->seen)
        goto oom;
    *out = self;
    return 0;
oom:
    snprintf(why, len, "out of memory");
    jobq_mdbfile_close(&self);
    return -1;
}

void
jobq_mdbfile_close(jobq_mdbfile_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_mdbfile_t *self = *self_p;
    if (self->fd >= 0)
        close(self->fd);
    for (int i = 0; i <= S_MAX_DEPTH; i++)
        free(self->page[i]);
    free(self->seen);
    free(self->value);
    free(self);
    *self_p = NULL;
}

int
jobq_mdbfile_use_other_meta(jobq_mdbfile_t *self)
{
    int n = !self->meta;
    uint64_t txnid, last_pg;
    s_db_t fdb, mdb;
    if (!self->other_meta ||
        !s_read(self, (uint64_t) n, self->page[0], self->psize) ||
        !s_meta(n, self->page[0], &txnid, &last_pg, &fdb, &mdb))
        return -1;
    self->other_meta = true;
    self->meta = n;
    self->txnid = txnid;
    self->last_pg = last_pg;
    self->free_db = fdb;
    self->main = mdb;
    return 0;
}

void
jobq_mdbfile_info(const jobq_mdbfile_t *self, jobq_mdbfile_info_t *out)
{
    out->psize = self->psize;
    out->pages = self->pages;
    out->last_pg = self->last_pg;
    out->txnid = self->txnid;
    out->meta = self->meta;
    out->other_meta = self->other_meta;
}

//  --- checking a page
//  ---------------------------------------------------------

typedef struct {
    jobq_mdbfile_t *f;            //  the file
    jobq_mdbfile_entry_fn *efn;   //  per entry, or NULL
    void *earg;                   //  for efn
    jobq_mdbfile_damage_fn *dfn;  //  per damage, or NULL
    void *darg;                   //  for dfn
    const char *db;               //  the database, for messages
    uint64_t highest;             //  highest page referred to
    bool stop;                    //  efn asked to stop
    bool subdata;                 //  the entry just given had F_SUBDATA
} s_walk_t;

//  The page to read: in the file and below the meta page's last page, not
//  seen before in this walk.
static bool
s_may_visit(s_walk_t *w, uint64_t pgno, const char *from)
{
    jobq_mdbfile_t *f = w->f;
    if (pgno < 2 || pgno > f->last_pg) {
        s_say(w->dfn, w->darg, pgno,
              "database %s: %s refers to page %llu, outside pages 2..%llu",
              w->db, from, (unsigned long long) pgno,
              (unsigned long long) f->last_pg);
        return false;
    }
    if (pgno > w->highest)
        w->highest = pgno;
    if (pgno >= f->pages) {
        s_say(w->dfn, w->darg, pgno,
              "database %s: page %llu lies past the end of the file (%llu "
              "pages): the file is truncated",
              w->db, (unsigned long long) pgno, (unsigned long long) f->pages);
        return false;
    }
    if (pgno < f->seen_bits) {
        if (f->seen[pgno / 8] & (1u << (pgno % 8))) {
            s_say(w->dfn, w->darg, pgno,
                  "database %s: page %llu is reached twice", w->db,
                  (unsigned long long) pgno);
            return false;
        }
        f->seen[pgno / 8] |= (uint8_t) (1u << (pgno % 8));
    }
    return true;
}

//  Read a value kept on the overflow run at pgno, vlen bytes, into
//  f->value. NULL after saying why.
static const uint8_t *
s_overflow(s_walk_t *w, uint64_t pgno, size_t vlen)
{
    jobq_mdbfile_t *f = w->f;
    if (vlen > S_MAX_VALUE) {
        s_say(w->dfn, w->darg, pgno, "database %s: a value of %zu bytes", w->db,
              vlen);
        return NULL;
    }
    uint64_t npages = (S_HDR - 1 + vlen) / f->psize + 1;
    if (!s_may_visit(w, pgno, "an overflow value") ||
        pgno + npages - 1 > f->last_pg || pgno + npages > f->pages) {
        s_say(w->dfn, w->darg, pgno,
              "database %s: an overflow run of %llu pages at %llu does not "
              "fit in the file",
              w->db, (unsigned long long) npages, (unsigned long long) pgno);
        return NULL;
    }
    if (pgno + npages - 1 > w->highest)
        w->highest = pgno + npages - 1;
    uint8_t *v = realloc(f->value, vlen ? vlen : 1);
    if (!v) {
        s_say(w->dfn, w->darg, pgno, "database %s: out of memory", w->db);
        return NULL;
    }
    f->value = v;
    uint8_t hdr[S_HDR];
    if (pread(f->fd, hdr, S_HDR, (off_t) (pgno * f->psize)) != S_HDR ||
        s_u64(hdr) != pgno || !(s_u16(hdr + 10) & S_P_OVERFLOW) ||
        s_u32(hdr + 12) != npages ||
        pread(f->fd, v, vlen, (off_t) (pgno * f->psize + S_HDR)) !=
            (ssize_t) vlen) {
        s_say(w->dfn, w->darg, pgno,
              "database %s: page %llu is not the overflow run a value "
              "points to",
              w->db, (unsigned long long) pgno);
        return NULL;
    }
    for (uint64_t i = 1; i < npages; i++)
        if (pgno + i < f->seen_bits)
            f->seen[(pgno + i) / 8] |= (uint8_t) (1u << ((pgno + i) % 8));
    return v;
}

//  The node count of page p (number pgno), checked: header bounds, and
//  every node offset inside the page. -1 after saying why.
static int
s_nodes(s_walk_t *w, const uint8_t *p, uint64_t pgno, uint16_t *flags)
{
    uint32_t ps = w->f->psize;
    *flags = s_u16(p + 10);
    uint16_t lower = s_u16(p + 12), upper = s_u16(p + 14);
    const char *bad = NULL;
    if (s_u64(p) != pgno)
        bad = "carries another page's number";
    else if ((*flags & (S_P_BRANCH | S_P_LEAF)) == 0 ||
             (*flags & S_P_BRANCH && *flags & S_P_LEAF))
        bad = "is neither a branch nor a leaf page";
    else if (*flags & (S_P_LEAF2 | S_P_OVERFLOW | S_P_META))
        bad = "has flags no jobq database uses";
    else if (lower < S_HDR || upper < lower || upper > ps ||
             (lower - S_HDR) % 2)
        bad = "has free-space bounds outside the page";
    if (bad) {
        s_say(w->dfn, w->darg, pgno, "database %s: page %llu %s", w->db,
              (unsigned long long) pgno, bad);
        return -1;
    }
    int n = (lower - S_HDR) / 2;
    for (int i = 0; i < n; i++) {
        uint16_t off = s_u16(p + S_HDR + 2 * i);
        if (off < upper || (uint32_t) off + S_NODE > ps ||
            (uint32_t) off + S_NODE + s_u16(p + off + 6) > ps) {
            s_say(w->dfn, w->darg, pgno,
                  "database %s: page %llu: node %d lies outside the page",
                  w->db, (unsigned long long) pgno, i);
            return -1;
        }
    }
    return n;
}

//  Keys of one page must rise; the first key of a branch page is empty.
static bool
s_rises(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);
    return c < 0 || (c == 0 && al < bl);
}

//  Walk the tree under page pgno at depth, in key order.
static void
s_tree(s_walk_t *w, uint64_t pgno, int depth, const char *from)
{
    jobq_mdbfile_t *f = w->f;
    if (w->stop)
        return;
    if (depth > S_MAX_DEPTH) {
        s_say(w->dfn, w->darg, pgno, "database %s: deeper than %d levels",
              w->db, S_MAX_DEPTH);
        return;
    }
    if (!s_may_visit(w, pgno, from))
        return;
    uint8_t *p = f->page[depth];
    if (!s_read(f, pgno, p, f->psize)) {
        s_say(w->dfn, w->darg, pgno, "database %s: page %llu cannot be read",
              w->db, (unsigned long long) pgno);
        return;
    }
    uint16_t flags;
    int n = s_nodes(w, p, pgno, &flags);
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (int i = 0; i < n && !w->stop; i++) {
        const uint8_t *node = p + s_u16(p + S_HDR + 2 * i);
        uint16_t nflags = s_u16(node + 4), ksize = s_u16(node + 6);
        const uint8_t *key = node + S_NODE;
        if ((flags & S_P_LEAF || i > 0) && prev &&
            !s_rises(prev, prev_len, key, ksize)) {
            s_say(w->dfn, w->darg, pgno,
                  "database %s: page %llu: keys out of order at node %d", w->db,
                  (unsigned long long) pgno, i);
        }
        if (flags & S_P_LEAF || i > 0) {
            prev = key;
            prev_len = ksize;
        }
        if (flags & S_P_BRANCH) {
            uint64_t child = (uint64_t) s_u16(node) |
                             (uint64_t) s_u16(node + 2) << 16 |
                             (uint64_t) nflags << 32;
            s_tree(w, child, depth + 1, "a branch node");
            continue;
        }
        size_t vlen = (size_t) s_u16(node) | (size_t) s_u16(node + 2) << 16;
        const uint8_t *val = key + ksize;
        if (nflags & S_F_DUPDATA) {
            s_say(w->dfn, w->darg, pgno,
                  "database %s: page %llu: node %d holds duplicates, which no "
                  "jobq database has",
                  w->db, (unsigned long long) pgno, i);
            continue;
        }
        if (nflags & S_F_BIGDATA) {
            if ((size_t) (key - p) + ksize + 8 > f->psize) {
                s_say(w->dfn, w->darg, pgno,
                      "database %s: page %llu: node %d lies outside the page",
                      w->db, (unsigned long long) pgno, i);
                continue;
            }
            val = s_overflow(w, s_u64(key + ksize), vlen);
            if (!val)
                continue;
        } else if ((size_t) (key - p) + ksize + vlen > f->psize) {
            s_say(w->dfn, w->darg, pgno,
                  "database %s: page %llu: node %d lies outside the page",
                  w->db, (unsigned long long) pgno, i);
            continue;
        }
        w->subdata = (nflags & S_F_SUBDATA) != 0;
        if (w->efn && w->efn(w->earg, key, ksize, val, vlen))
            w->stop = true;
    }
}

static void
s_walk_db(s_walk_t *w, const s_db_t *db)
{
    memset(w->f->seen, 0, (size_t) (w->f->seen_bits / 8 + 1));
    if (db->root != UINT64_MAX)
        s_tree(w, db->root, 0, "the database record");
}

//  --- finding a named database
//  ------------------------------------------------

typedef struct {
    const char *name;  //  wanted, or NULL: every one, into dbs
    bool found;        //  it was
    s_db_t db;         //  its record
    s_walk_t *w;       //  the walk of the main database
    s_db_t dbs[64];    //  every named database (name NULL)
    int ndbs;          //  entries in dbs
} s_find_t;

static int
s_find_visit(
    void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    s_find_t *fd = arg;
    if (!fd->w->subdata || vl != S_DB)
        return 0;
    if (!fd->name) {
        if (fd->ndbs < 64)
            fd->dbs[fd->ndbs++] = s_db(v);
        return 0;
    }
    if (kl != strlen(fd->name) || memcmp(k, fd->name, kl) != 0)
        return 0;
    fd->db = s_db(v);
    fd->found = true;
    return 1;
}

typedef struct {
    int damaged;                  //  damage seen
    jobq_mdbfile_damage_fn *dfn;  //  passed on, or NULL
    void *arg;                    //  for dfn
} s_count_t;

static void
s_count_damage(void *arg, uint64_t pgno, const char *what)
{
    s_count_t *c = arg;
    c->damaged++;
    if (c->dfn)
        c->dfn(c->arg, pgno, what);
}

int
jobq_mdbfile_walk(jobq_mdbfile_t *self,
                  const char *name,
                  jobq_mdbfile_entry_fn *efn,
                  jobq_mdbfile_damage_fn *dfn,
                  void *arg,
                  uint64_t *entries)
{
    s_db_t db = self->main;
    if (name) {
        s_count_t md = {0, dfn, arg};
        s_find_t fd;
        memset(&fd, 0, sizeof fd);
        fd.name = name;
        s_walk_t mw = {self, s_find_visit, &fd,  s_count_damage, &md, "main",
                       0,    false,        false};
        fd.w = &mw;
        s_walk_db(&mw, &self->main);
        if (!fd.found)
            return md.damaged ? -1 : 1;
        db = fd.db;
    }
    if (entries)
        *entries = db.entries;
    s_walk_t w = {self, efn,   arg,  dfn, arg, name ? name : "main",
                  0,    false, false};
    s_walk_db(&w, &db);
    return 0;
}

uint64_t
jobq_mdbfile_highest_page(jobq_mdbfile_t *self)
{
    s_count_t cd = {0, NULL, NULL};
    s_find_t fd;
    memset(&fd, 0, sizeof fd);
    s_walk_t mw = {self, s_find_visit, &fd,  s_count_damage, &cd, "main",
                   0,    false,        false};
    fd.w = &mw;
    s_walk_db(&mw, &self->main);
    uint64_t highest = mw.highest;
    s_walk_t fw = {self,   NULL, NULL,  s_count_damage, &cd,
                   "free", 0,    false, false};
    s_walk_db(&fw, &self->free_db);
    if (fw.highest > highest)
        highest = fw.highest;
    for (int i = 0; i < fd.ndbs; i++) {
        s_walk_t w = {self,    NULL, NULL,  s_count_damage, &cd,
                      "named", 0,    false, false};
        s_walk_db(&w, &fd.dbs[i]);
        if (w.highest > highest)
            highest = w.highest;
    }
    return highest;
}
