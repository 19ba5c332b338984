/*  jobq_migrate.c: `jobq export` and `jobq import` (jobq_migrate.h; the
    format is docs/STORAGE.md, "Export format").

    Every line is bounded: a job line holds one record in hex, and a record
    is at most S_RECORD_MAX bytes (export refuses a larger one, import a
    longer line), so memory stays bounded by a few such lines whatever the
    size of the store. Import commits every S_BATCH lines.
*/
#define _GNU_SOURCE  //  fseeko, ftello
#include "jobq_migrate.h"
#include "jobq_record.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  A record, at most: input (256 KiB), output (1 MiB), the errors of 100
//  attempts (about 410 KiB) and the strings stay well under 2 MiB; twice
//  that leaves room, and bounds a line to 8 MiB of hex.
#define S_RECORD_MAX (2u * JOBQ_MAX_FRAME_BYTES)
#define S_LINE_MAX   (2u * S_RECORD_MAX + 256)
#define S_BATCH      256  //  lines (jobs or keys) per import transaction
#define S_HEX_CHUNK  8192
#define S_KEY_TTL_MS (24ull * 3600 * 1000)  //  the broker's default window
#define S_MAP_SIZE   (1ull << 30)           //  LMDB: as the broker's
#define S_MAP_MAX    (64ull << 30)          //  defaults

static const char s_hexdigits[] = "0123456789abcdef";

static void s_say(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
s_say(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

static uint64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

//  Grow *buf (capacity *cap) to hold n bytes. False when out of memory.
static bool
s_reserve(uint8_t **buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return true;
    size_t c = *cap ? *cap : 4096;
    while (c < n)
        c *= 2;
    uint8_t *p = realloc(*buf, c);
    if (!p)
        return false;
    *buf = p;
    *cap = c;
    return true;
}

//  --- export -------------------------------------------------------------

typedef struct {
    FILE *out;
    jobq_migrate_stats_t *stats;
    uint8_t *rec;  //  the record being written
    size_t cap;
    int err;  //  why the scan stopped, or JOBQ_OK
    char *why;
    size_t len;
} s_export_t;

static void
s_write_hex(FILE *out, const uint8_t *p, size_t n)
{
    char chunk[S_HEX_CHUNK];
    while (n) {
        size_t m = n < sizeof chunk / 2 ? n : sizeof chunk / 2;
        for (size_t i = 0; i < m; i++) {
            chunk[2 * i] = s_hexdigits[p[i] >> 4];
            chunk[2 * i + 1] = s_hexdigits[p[i] & 15];
        }
        fwrite(chunk, 1, 2 * m, out);
        p += m;
        n -= m;
    }
}

//  The output went wrong: say so and stop the scan.
static int
s_write_failed(s_export_t *x)
{
    x->err = JOBQ_ESTORAGE;
    s_say(x->why, x->len, "cannot write the output: %s", strerror(errno));
    return 1;
}

static int
s_export_job(void *arg, const jobq_jobdata_t *j)
{
    s_export_t *x = arg;
    size_t n = jobq_record_size(j);
    char id[JOBQ_ID_LEN + 1];
    jobq_id_format(j->id, id);
    if (n > S_RECORD_MAX) {
        x->err = JOBQ_ETOOBIG;
        s_say(x->why, x->len,
              "job %s: its record is %zu bytes, above the %u of the format", id,
              n, S_RECORD_MAX);
        return 1;
    }
    if (!s_reserve(&x->rec, &x->cap, n)) {
        x->err = JOBQ_ENOMEM;
        s_say(x->why, x->len, "out of memory");
        return 1;
    }
    jobq_record_encode(j, x->rec);
    fputs("{\"job\":\"", x->out);
    s_write_hex(x->out, x->rec, n);
    fputs("\"}\n", x->out);
    if (ferror(x->out))
        return s_write_failed(x);
    x->stats->jobs++;
    if (j->status >= 0 && j->status < JOBQ_STATUS_COUNT_)
        x->stats->by_status[j->status]++;
    return 0;
}

static int
s_export_key(void *arg, jobq_str_t key, uint64_t id, uint64_t created)
{
    s_export_t *x = arg;
    char ids[JOBQ_ID_LEN + 1];
    jobq_id_format(id, ids);
    fputs("{\"key\":\"", x->out);
    s_write_hex(x->out, (const uint8_t *) key.ptr, key.len);
    fprintf(x->out, "\",\"id\":\"%s\",\"created\":%" PRIu64 "}\n", ids,
            created);
    if (ferror(x->out))
        return s_write_failed(x);
    x->stats->keys++;
    return 0;
}

//  A meta value, 0 when absent or unreadable (import also raises the
//  counters to the highest id and sequence number it meets).
static uint64_t
s_meta(jobq_store_t *store, const char *name)
{
    uint64_t v = 0;
    return jobq_store_meta_get(store, name, &v) == JOBQ_OK ? v : 0;
}

int
jobq_migrate_export(jobq_store_t *store,
                    FILE *out,
                    jobq_migrate_stats_t *stats,
                    char *why,
                    size_t len)
{
    memset(stats, 0, sizeof *stats);
    s_export_t x = {out, stats, NULL, 0, JOBQ_OK, why, len};
    int rc = jobq_store_begin(store);
    if (rc != JOBQ_OK) {
        s_say(why, len, "cannot start a transaction: %s",
              jobq_store_why(store));
        return rc;
    }
    uint64_t last_id = s_meta(store, "last_id");
    uint64_t ceiling = s_meta(store, "id_ceiling");
    char ids[JOBQ_ID_LEN + 1];
    jobq_id_format(ceiling > last_id ? ceiling : last_id, ids);
    fprintf(out,
            "{\"jobq_export\":%d,\"created\":%" PRIu64 ",\"last_id\":\"%s\","
            "\"seq\":%" PRIu64 "}\n",
            JOBQ_EXPORT_VERSION, s_now_ms(), ids, s_meta(store, "seq"));
    if (ferror(out))
        s_write_failed(&x);
    for (int s = 0; s < JOBQ_STATUS_COUNT_ && x.err == JOBQ_OK; s++) {
        rc = jobq_store_scan_status(store, s, s_export_job, &x);
        if (rc != JOBQ_OK && x.err == JOBQ_OK) {
            x.err = rc;
            s_say(why, len, "reading the %s jobs: %s (%s)", jobq_status_name(s),
                  jobq_store_why(store), jobq_strerror(rc));
        }
    }
    if (x.err == JOBQ_OK) {
        rc = jobq_store_idem_scan(store, s_export_key, &x);
        if (rc != JOBQ_OK && x.err == JOBQ_OK) {
            x.err = rc;
            s_say(why, len, "reading the idempotency keys: %s (%s)",
                  jobq_store_why(store), jobq_strerror(rc));
        }
    }
    jobq_store_abort(store);
    free(x.rec);
    if (x.err != JOBQ_OK)
        return x.err;
    fprintf(out, "{\"end\":true,\"jobs\":%" PRIu64 ",\"keys\":%" PRIu64 "}\n",
            stats->jobs, stats->keys);
    if (fflush(out) != 0 || ferror(out)) {
        s_say(why, len, "cannot write the output: %s", strerror(errno));
        return JOBQ_ESTORAGE;
    }
    return JOBQ_OK;
}

//  --- import: reading and checking lines ----------------------------------

enum { S_HEADER, S_JOB, S_KEY, S_END };

//  One line, parsed and checked.
typedef struct {
    int kind;
    jobq_jobdata_t job;  //  S_JOB: borrows from the import's rec
    uint8_t key[JOBQ_IDEM_KEY_MAX];
    size_t klen;       //  S_KEY
    uint64_t id;       //  S_KEY: the job it names
    uint64_t created;  //  S_KEY
    uint64_t jobs;     //  S_END: the counts it promises
    uint64_t keys;
    uint64_t last_id;  //  S_HEADER: the source's id counter
    uint64_t seq;      //  S_HEADER: and its sequence
} s_entry_t;

typedef struct {
    jobq_store_t *store;
    FILE *in;
    char *buf;  //  the line
    size_t cap, len;
    uint8_t *rec;  //  a job's record, decoded from hex
    size_t rcap;
    uint64_t line;        //  lines read
    uint64_t jobs, keys;  //  job and key lines read, this pass
    bool ended;           //  the end line was read
    bool shared;
    uint64_t last_id, seq;  //  the highest seen (header or jobs)
    jobq_migrate_stats_t *stats;
    volatile sig_atomic_t *stop;
    char *why;
    size_t wlen;
    //  Where the transaction began, to go back when the map must grow.
    off_t batch_off;
    uint64_t batch_line, batch_last_id, batch_seq, batch_jobs, batch_keys;
    jobq_migrate_stats_t batch_stats;
    uint32_t in_batch;  //  lines of the open transaction
} s_import_t;

//  The next line into x->buf, without its newline (nor a \r before it).
//  1 read, 0 at the end of the file, or JOBQ_ESTORAGE, JOBQ_ETOOBIG,
//  JOBQ_ENOMEM after saying why.
static int
s_read_line(s_import_t *x)
{
    x->len = 0;
    bool any = false;
    int c;
    while ((c = getc(x->in)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (x->len + 2 >= x->cap) {
            if (x->cap >= S_LINE_MAX) {
                s_say(x->why, x->wlen,
                      "line %" PRIu64 " is longer than %u bytes", x->line + 1,
                      S_LINE_MAX);
                return JOBQ_ETOOBIG;
            }
            size_t cap = x->cap ? x->cap * 2 : 4096;
            char *p = realloc(x->buf, cap < S_LINE_MAX ? cap : S_LINE_MAX);
            if (!p) {
                s_say(x->why, x->wlen, "out of memory");
                return JOBQ_ENOMEM;
            }
            x->buf = p;
            x->cap = cap < S_LINE_MAX ? cap : S_LINE_MAX;
        }
        x->buf[x->len++] = (char) c;
    }
    if (ferror(x->in)) {
        s_say(x->why, x->wlen, "cannot read line %" PRIu64 ": %s", x->line + 1,
              strerror(errno));
        return JOBQ_ESTORAGE;
    }
    if (!any)
        return 0;
    if (!x->buf && !(x->buf = malloc(x->cap = 64))) {
        s_say(x->why, x->wlen, "out of memory");
        return JOBQ_ENOMEM;
    }
    if (x->len && x->buf[x->len - 1] == '\r')
        x->len--;
    x->buf[x->len] = '\0';
    x->line++;
    return 1;
}

static int
s_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

//  Decode n hex digits of s into out (n / 2 bytes). False if n is odd or a
//  character is not a hex digit.
static bool
s_unhex(const char *s, size_t n, uint8_t *out)
{
    if (n % 2)
        return false;
    for (size_t i = 0; i < n; i += 2) {
        int hi = s_hexval(s[i]), lo = s_hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i / 2] = (uint8_t) (hi << 4 | lo);
    }
    return true;
}

//  The refusal of the current line; JOBQ_EINVAL.
static int s_bad(s_import_t *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
s_bad(s_import_t *x, const char *fmt, ...)
{
    int n = snprintf(x->why, x->wlen, "line %" PRIu64 ": ", x->line);
    if (n > 0 && (size_t) n < x->wlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->why + n, x->wlen - (size_t) n, fmt, ap);
        va_end(ap);
    }
    return JOBQ_EINVAL;
}

//  A whole number >= 0 of object o, member name, into *v.
static bool
s_count(json_t *o, const char *name, uint64_t *v)
{
    json_t *m = json_object_get(o, name);
    if (!json_is_integer(m) || json_integer_value(m) < 0)
        return false;
    *v = (uint64_t) json_integer_value(m);
    return true;
}

static int
s_parse_header(s_import_t *x, json_t *o, s_entry_t *e)
{
    json_t *v = json_object_get(o, "jobq_export");
    if (!json_is_integer(v))
        return s_bad(x, "not a jobq export: the first line has no "
                        "\"jobq_export\" version");
    if (json_integer_value(v) != JOBQ_EXPORT_VERSION)
        return s_bad(x,
                     "format %lld, and this jobq reads format %d: use the "
                     "jobq that wrote it, or a newer one",
                     (long long) json_integer_value(v), JOBQ_EXPORT_VERSION);
    e->kind = S_HEADER;
    json_t *l = json_object_get(o, "last_id");
    if (l && (!json_is_string(l) ||
              jobq_id_parse(json_string_value(l), json_string_length(l),
                            &e->last_id) != JOBQ_OK))
        return s_bad(x, "\"last_id\" is not a job id");
    if (json_object_get(o, "seq") && !s_count(o, "seq", &e->seq))
        return s_bad(x, "\"seq\" is not a whole number");
    return JOBQ_OK;
}

static int
s_parse_job(s_import_t *x, json_t *v, s_entry_t *e)
{
    if (!json_is_string(v))
        return s_bad(x, "\"job\" is not a string");
    size_t n = json_string_length(v);
    if (n > 2 * S_RECORD_MAX)
        return s_bad(x, "the record is above %u bytes", S_RECORD_MAX);
    if (!s_reserve(&x->rec, &x->rcap, n / 2 + 1))
        return s_bad(x, "out of memory");
    if (!s_unhex(json_string_value(v), n, x->rec))
        return s_bad(x, "the record is not hex digits");
    int rc = jobq_record_decode(x->rec, n / 2, &e->job);
    if (rc == JOBQ_EVERSION)
        return s_bad(x, "a record of version %u, which this jobq does not read",
                     n ? x->rec[0] : 0);
    if (rc != JOBQ_OK)
        return s_bad(x, "the record fails its check (CRC or lengths): the "
                        "file is damaged");
    if (e->job.id == 0)
        return s_bad(x, "the record has job id 0");
    e->kind = S_JOB;
    return JOBQ_OK;
}

static int
s_parse_key(s_import_t *x, json_t *o, json_t *v, s_entry_t *e)
{
    size_t n = json_is_string(v) ? json_string_length(v) : 0;
    if (n < 2 || n > 2 * JOBQ_IDEM_KEY_MAX ||
        !s_unhex(json_string_value(v), n, e->key))
        return s_bad(x, "\"key\" is not 1 to %d bytes in hex",
                     JOBQ_IDEM_KEY_MAX);
    e->klen = n / 2;
    json_t *id = json_object_get(o, "id");
    if (!json_is_string(id) ||
        jobq_id_parse(json_string_value(id), json_string_length(id), &e->id) !=
            JOBQ_OK)
        return s_bad(x, "\"id\" is not a job id (%d hex digits)", JOBQ_ID_LEN);
    if (!s_count(o, "created", &e->created))
        return s_bad(x, "\"created\" is not a time in ms");
    e->kind = S_KEY;
    return JOBQ_OK;
}

//  Parse and check line x->line (in x->buf) into *e.
static int
s_parse(s_import_t *x, s_entry_t *e)
{
    json_error_t jerr;
    json_t *o = json_loadb(x->buf, x->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return s_bad(x, "not JSON (column %d: %s)", jerr.column, jerr.text);
    int rc;
    json_t *v;
    if (!json_is_object(o))
        rc = s_bad(x, "not a JSON object");
    else if (x->line == 1)
        rc = s_parse_header(x, o, e);
    else if (json_object_get(o, "jobq_export"))
        rc = s_bad(x, "a second header: two exports put together?");
    else if ((v = json_object_get(o, "job")))
        rc = s_parse_job(x, v, e);
    else if ((v = json_object_get(o, "key")))
        rc = s_parse_key(x, o, v, e);
    else if (json_is_true(json_object_get(o, "end"))) {
        e->kind = S_END;
        rc = s_count(o, "jobs", &e->jobs) && s_count(o, "keys", &e->keys)
                 ? JOBQ_OK
                 : s_bad(x, "the end line lacks its \"jobs\" or \"keys\"");
    } else
        rc = s_bad(x, "neither a job, a key nor the end line");
    json_decref(o);
    return rc;
}

//  --- import: writing ------------------------------------------------------

//  Raise meta name to at least v: new ids and sequence numbers of an LMDB
//  broker then continue above the imported ones.
static int
s_raise(s_import_t *x, const char *name, uint64_t v)
{
    uint64_t have = 0;
    int rc = jobq_store_meta_get(x->store, name, &have);
    if (rc != JOBQ_OK && rc != JOBQ_ENOTFOUND && rc != JOBQ_ECORRUPT)
        return rc;
    if (v == 0 || (rc == JOBQ_OK && have >= v))
        return JOBQ_OK;
    return jobq_store_meta_put(x->store, name, v);
}

static void
s_mark_batch(s_import_t *x)
{
    x->batch_off = ftello(x->in);
    x->batch_line = x->line;
    x->batch_last_id = x->last_id;
    x->batch_seq = x->seq;
    x->batch_jobs = x->jobs;
    x->batch_keys = x->keys;
    x->batch_stats = *x->stats;
    x->in_batch = 0;
}

//  Commit the open transaction and begin the next one (unless last).
static int
s_commit(s_import_t *x, bool last)
{
    int rc = JOBQ_OK;
    //  A shared store keeps no counters: its brokers' ids carry a slot.
    if (!x->shared && (rc = s_raise(x, "last_id", x->last_id)) == JOBQ_OK)
        rc = s_raise(x, "seq", x->seq);
    if (rc == JOBQ_OK)
        rc = jobq_store_commit(x->store);
    else
        jobq_store_abort(x->store);
    if (rc != JOBQ_OK)
        return rc;
    x->stats->line = x->line;
    s_mark_batch(x);
    return last ? JOBQ_OK : jobq_store_begin(x->store);
}

//  The map was full: grow it, and go back to the start of the batch.
//  JOBQ_OK to go on, else the error to stop with.
static int
s_regrow(s_import_t *x)
{
    jobq_store_abort(x->store);
    if (jobq_store_grow(x->store) != JOBQ_OK) {
        s_say(x->why, x->wlen,
              "line %" PRIu64 ": the store is full, and at its ceiling (%llu "
              "MiB)",
              x->line, (unsigned long long) (S_MAP_MAX >> 20));
        return JOBQ_ESTOREFULL;
    }
    if (fseeko(x->in, x->batch_off, SEEK_SET) != 0) {
        s_say(x->why, x->wlen, "cannot read the input again: %s",
              strerror(errno));
        return JOBQ_ESTORAGE;
    }
    x->line = x->batch_line;
    x->last_id = x->batch_last_id;
    x->seq = x->batch_seq;
    x->jobs = x->batch_jobs;
    x->keys = x->batch_keys;
    x->ended = false;
    *x->stats = x->batch_stats;
    x->in_batch = 0;
    return jobq_store_begin(x->store);
}

static int
s_apply(s_import_t *x, const s_entry_t *e)
{
    jobq_store_t *st = x->store;
    if (e->kind == S_KEY) {
        uint64_t id, created;
        jobq_str_t k = {(const char *) e->key, e->klen};
        int rc = jobq_store_idem_get(st, k, &id, &created);
        if (rc == JOBQ_OK) {
            x->stats->keys_skipped++;
            return JOBQ_OK;
        }
        if (rc == JOBQ_ENOTFOUND)
            rc = jobq_store_idem_put(st, k, e->id, e->created);
        if (rc == JOBQ_OK)
            x->stats->keys++;
        return rc;
    }
    const jobq_jobdata_t *j = &e->job;
    jobq_jobdata_t have;
    int rc = jobq_store_get(st, j->id, &have);
    if (rc == JOBQ_OK) {
        x->stats->jobs_skipped++;
        return JOBQ_OK;
    }
    if (rc == JOBQ_ENOTFOUND)
        rc = jobq_store_put(st, NULL, j);
    if (rc != JOBQ_OK)
        return rc;
    x->stats->jobs++;
    x->stats->by_status[j->status]++;
    if (j->id > x->last_id)
        x->last_id = j->id;
    if (j->seq > x->seq)
        x->seq = j->seq;
    return JOBQ_OK;
}

//  Count the line e, check the end line's counts, and when apply, write
//  it, committing every S_BATCH lines.
static int
s_take(s_import_t *x, const s_entry_t *e, bool apply)
{
    if (e->kind == S_HEADER) {
        if (e->last_id > x->last_id)
            x->last_id = e->last_id;
        if (e->seq > x->seq)
            x->seq = e->seq;
        return JOBQ_OK;
    }
    if (e->kind == S_END) {
        x->ended = true;
        if (e->jobs != x->jobs || e->keys != x->keys)
            return s_bad(x,
                         "the end line counts %" PRIu64 " jobs and %" PRIu64
                         " keys, the file holds %" PRIu64 " and %" PRIu64
                         " (lines lost?)",
                         e->jobs, e->keys, x->jobs, x->keys);
        return JOBQ_OK;
    }
    if (e->kind == S_JOB)
        x->jobs++;
    else
        x->keys++;
    if (!apply)
        return JOBQ_OK;
    int rc = s_apply(x, e);
    if (rc == JOBQ_OK && ++x->in_batch >= S_BATCH) {
        rc = s_commit(x, false);
        if (rc == JOBQ_OK && x->stop && *x->stop)
            return JOBQ_EINTR;
    }
    if (rc != JOBQ_OK) {
        char id[JOBQ_ID_LEN + 1];
        jobq_id_format(e->kind == S_JOB ? e->job.id : e->id, id);
        s_say(x->why, x->wlen, "line %" PRIu64 " (%s %s): %s (%s)", x->line,
              e->kind == S_JOB ? "job" : "the key of job", id,
              jobq_store_why(x->store), jobq_strerror(rc));
    }
    return rc;
}

//  The file ended: was it whole?
static int
s_at_end(s_import_t *x)
{
    if (x->line == 0) {
        s_say(x->why, x->wlen, "the file is empty");
        return JOBQ_EINVAL;
    }
    if (!x->ended) {
        s_say(x->why, x->wlen,
              "the file ends at line %" PRIu64 " without its end line "
              "(truncated?)",
              x->line);
        return JOBQ_EINVAL;
    }
    return JOBQ_OK;
}

//  One pass over the file: check every line, and when apply, write them.
static int
s_pass(s_import_t *x, bool apply)
{
    s_entry_t e;
    memset(&e, 0, sizeof e);
    x->line = x->jobs = x->keys = 0;
    x->ended = false;
    int rc = JOBQ_OK;
    if (apply) {
        s_mark_batch(x);
        if ((rc = jobq_store_begin(x->store)) != JOBQ_OK)
            s_say(x->why, x->wlen, "cannot start a transaction: %s",
                  jobq_store_why(x->store));
    }
    bool done = false;
    while (rc == JOBQ_OK && !done) {
        int got = s_read_line(x);
        if (got < 0) {
            rc = got == JOBQ_ETOOBIG ? JOBQ_EINVAL : got;
            break;
        }
        if (got == 0) {
            done = true;
            rc = s_at_end(x);
            if (rc == JOBQ_OK && apply && (rc = s_commit(x, true)) != JOBQ_OK)
                s_say(x->why, x->wlen, "the last commit: %s (%s)",
                      jobq_store_why(x->store), jobq_strerror(rc));
        } else {
            rc =
                x->ended ? s_bad(x, "more after the end line") : s_parse(x, &e);
            if (rc == JOBQ_OK)
                rc = s_take(x, &e, apply);
        }
        //  The LMDB map is full: grow it and do the batch again.
        if (rc == JOBQ_ESTOREFULL && apply) {
            rc = s_regrow(x);
            done = false;
        }
    }
    if (rc != JOBQ_OK && apply)
        jobq_store_abort(x->store);
    //  Ctrl-C may show as a read that failed (EINTR).
    if (rc != JOBQ_OK && x->stop && *x->stop)
        rc = JOBQ_EINTR;
    return rc;
}

//  A copy of in that can seek (in itself when it can).
static FILE *
s_seekable(FILE *in, char *why, size_t len)
{
    if (fseeko(in, 0, SEEK_SET) == 0)
        return in;
    FILE *t = tmpfile();
    if (!t) {
        s_say(why, len, "cannot make a temporary file: %s", strerror(errno));
        return NULL;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (fwrite(buf, 1, n, t) != n) {
            s_say(why, len, "cannot write a temporary file: %s",
                  strerror(errno));
            fclose(t);
            return NULL;
        }
    }
    if (ferror(in) || fflush(t) != 0 || fseeko(t, 0, SEEK_SET) != 0) {
        s_say(why, len, "cannot read the input: %s", strerror(errno));
        fclose(t);
        return NULL;
    }
    return t;
}

int
jobq_migrate_import(jobq_store_t *store,
                    FILE *in,
                    jobq_migrate_stats_t *stats,
                    volatile sig_atomic_t *stop,
                    char *why,
                    size_t len)
{
    memset(stats, 0, sizeof *stats);
    FILE *f = s_seekable(in, why, len);
    if (!f)
        return JOBQ_ESTORAGE;
    s_import_t x;
    memset(&x, 0, sizeof x);
    x.store = store;
    x.in = f;
    x.shared = jobq_store_shared(store);
    x.stats = stats;
    x.stop = stop;
    x.why = why;
    x.wlen = len;
    //  Check it all first: a truncated or damaged file imports nothing.
    int rc = s_pass(&x, false);
    if (rc == JOBQ_OK && stop && *stop)
        rc = JOBQ_EINTR;
    if (rc == JOBQ_OK) {
        if (fseeko(f, 0, SEEK_SET) != 0) {
            s_say(why, len, "cannot read the input again: %s", strerror(errno));
            rc = JOBQ_ESTORAGE;
        } else {
            rc = s_pass(&x, true);
        }
    }
    if (f != in)
        fclose(f);
    free(x.buf);
    free(x.rec);
    return rc;
}

//  --- the command line ------------------------------------------------------

static const char s_usage[] =
    "usage: jobq export --store URI [--out FILE] [--nats-creds FILE]\n"
    "       jobq import --store URI [--in FILE] [--nats-creds FILE]\n"
    "\n"
    "  export   write every job and idempotency key of the store to FILE\n"
    "           (default: stdout), one JSON line each\n"
    "  import   put every job and key of FILE (default: stdin) that the\n"
    "           store does not have yet; running it again is safe\n"
    "\n"
    "  --store URI         lmdb:DIR (the broker of DIR must be stopped), or\n"
    "                      nats://HOST:PORT[,HOST:PORT...][?replicas=N]\n"
    "                      (brokers may run)\n"
    "  --out FILE          export: where to write (- = stdout)\n"
    "  --in FILE           import: what to read (- = stdin)\n"
    "  --nats-creds FILE   NATS credentials file for --store nats://\n"
    "\n"
    "A file is checked whole before anything is imported: a truncated or\n"
    "damaged one is refused. Format: docs/STORAGE.md, \"Export format\".\n"
    "exit status: 0 done; 1 the store or the file failed; 2 misuse; 130\n"
    "interrupted (what was committed stays: run the import again).\n";

//  Options that take no value, of `jobq` and of these commands.
static bool
s_flag(const char *a)
{
    static const char *const flags[] = {"--help", "-h", "--version", "--json",
                                        "--watch"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (strcmp(a, flags[i]) == 0)
            return true;
    return false;
}

const char *
jobq_migrate_command(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' || a[1] == '\0')
            return a;
        //  `--name value`: skip the value, unless it is an option itself.
        if (!strchr(a, '=') && !s_flag(a) && i + 1 < argc &&
            argv[i + 1][0] != '-')
            i++;
    }
    return NULL;
}

static int s_misuse(FILE *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
s_misuse(FILE *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("jobq: ", err);
    vfprintf(err, fmt, ap);
    fputs(" (see jobq export --help)\n", err);
    va_end(ap);
    return 2;
}

typedef struct {
    const char *cmd;       //  "export" or "import"
    const char *store;     //  --store
    const char *file;      //  --out or --in
    const char *creds;     //  --nats-creds
    const char *file_opt;  //  "--out" or "--in", as given
    bool help;
} s_args_t;

static int
s_args(int argc, char **argv, FILE *err, s_args_t *a)
{
    bool words = false;
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        if (!words && strcmp(w, "--") == 0) {
            words = true;
            continue;
        }
        if (words || w[0] != '-' || w[1] == '\0') {
            if (a->cmd)
                return s_misuse(err, "%s takes no arguments, not '%s'", a->cmd,
                                w);
            a->cmd = w;
            continue;
        }
        if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0) {
            a->help = true;
            continue;
        }
        const char *eq = strchr(w, '=');
        size_t n = eq ? (size_t) (eq - w) : strlen(w);
        const char **dst = NULL;
        if (n == 7 && strncmp(w, "--store", n) == 0)
            dst = &a->store;
        else if ((n == 5 && strncmp(w, "--out", n) == 0) ||
                 (n == 4 && strncmp(w, "--in", n) == 0))
            dst = &a->file;
        else if (n == 12 && strncmp(w, "--nats-creds", n) == 0)
            dst = &a->creds;
        else
            return s_misuse(err, "export and import do not take '%.*s'",
                            (int) n, w);
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!v || !v[0])
            return s_misuse(err, "option '%.*s' needs a value", (int) n, w);
        if (dst == &a->file)
            a->file_opt = w[2] == 'o' ? "--out" : "--in";
        *dst = v;
    }
    if (a->help)
        return 0;
    if (!a->cmd || (strcmp(a->cmd, "export") && strcmp(a->cmd, "import")))
        return s_misuse(err, "no export or import command given");
    const char *wants = strcmp(a->cmd, "export") == 0 ? "--out" : "--in";
    if (a->file_opt && strcmp(a->file_opt, wants) != 0)
        return s_misuse(err, "%s does not take %s (its file is %s)", a->cmd,
                        a->file_opt, wants);
    if (!a->store)
        return s_misuse(err, "%s needs --store lmdb:DIR or --store nats://...",
                        a->cmd);
    return 0;
}

//  The store of uri, open. NULL after saying why; *code the exit code.
static jobq_store_t *
s_open(const s_args_t *a, FILE *err, int *code)
{
    bool lmdb = strncmp(a->store, "lmdb:", 5) == 0 && a->store[5];
    bool nats = strncmp(a->store, "nats://", 7) == 0 && a->store[7];
    *code = 2;
    if (!lmdb && !nats) {
        s_misuse(err,
                 "--store: '%.200s' is neither lmdb:DIR nor "
                 "nats://HOST:PORT[,HOST:PORT...]",
                 a->store);
        return NULL;
    }
    if (lmdb && a->creds) {
        s_misuse(err, "--nats-creds is for a nats:// store");
        return NULL;
    }
    *code = 1;
    const char *dir = a->store + 5;
    if (lmdb && strcmp(a->cmd, "export") == 0) {
        //  Opening would make an empty store, and export nothing.
        char path[4200];
        struct stat st;
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if (stat(path, &st) != 0) {
            fprintf(err, "jobq: export: no jobq store in %s (%s: %s)\n", dir,
                    path, strerror(errno));
            return NULL;
        }
    }
    if (lmdb)
        jobq_store_lmdb_catch_faults();
    jobq_store_t *store =
        lmdb ? jobq_store_lmdb_new() : jobq_store_nats_new(a->store, a->creds);
    if (!store) {
        fprintf(err, "jobq: %s: out of memory\n", a->cmd);
        return NULL;
    }
    jobq_store_config_t cfg = {lmdb ? dir : NULL, S_MAP_SIZE, S_MAP_MAX, false,
                               S_KEY_TTL_MS};
    int rc = jobq_store_open(store, &cfg);
    if (rc != JOBQ_OK) {
        fprintf(err, "jobq: %s: cannot open %s: %s (%s)\n", a->cmd, a->store,
                jobq_store_why(store), jobq_strerror(rc));
        if (lmdb && rc == JOBQ_EUNAVAILABLE)
            fprintf(err,
                    "jobq: %s needs the store of an LMDB directory to itself: "
                    "stop the jobq-broker of %s, then run it again\n",
                    a->cmd, dir);
        jobq_store_destroy(&store);
        return NULL;
    }
    return store;
}

static void
s_by_status(FILE *err, const jobq_migrate_stats_t *st)
{
    const char *sep = " (";
    for (int s = 0; s < JOBQ_STATUS_COUNT_; s++) {
        if (!st->by_status[s])
            continue;
        fprintf(err, "%s%s %" PRIu64, sep, jobq_status_name(s),
                st->by_status[s]);
        sep = ", ";
    }
    if (sep[0] == ',')
        fputs(")", err);
}

static int
s_export(const s_args_t *a, jobq_store_t *store, FILE *err)
{
    bool to_stdout = !a->file || strcmp(a->file, "-") == 0;
    const char *name = to_stdout ? "stdout" : a->file;
    FILE *out = to_stdout ? stdout : fopen(a->file, "w");
    if (!out) {
        fprintf(err, "jobq: export: cannot open %s: %s\n", a->file,
                strerror(errno));
        return 1;
    }
    char why[1024] = "";
    jobq_migrate_stats_t st;
    int rc = jobq_migrate_export(store, out, &st, why, sizeof why);
    //  On disk before anyone deletes the source.
    if (rc == JOBQ_OK && (fflush(out) != 0 || fsync(fileno(out)) != 0) &&
        !(to_stdout && (errno == EINVAL || errno == EROFS))) {
        s_say(why, sizeof why, "cannot write %s: %s", name, strerror(errno));
        rc = JOBQ_ESTORAGE;
    }
    if (!to_stdout && fclose(out) != 0 && rc == JOBQ_OK) {
        s_say(why, sizeof why, "cannot write %s: %s", name, strerror(errno));
        rc = JOBQ_ESTORAGE;
    }
    if (rc != JOBQ_OK) {
        fprintf(err, "jobq: export: %s\n", why);
        if (!to_stdout) {
            unlink(a->file);
            fprintf(err, "jobq: export: %s removed (it was incomplete)\n",
                    a->file);
        }
        return 1;
    }
    fprintf(err, "jobq: exported %" PRIu64 " job%s", st.jobs,
            st.jobs == 1 ? "" : "s");
    s_by_status(err, &st);
    fprintf(err, " and %" PRIu64 " key%s from %s to %s\n", st.keys,
            st.keys == 1 ? "" : "s", a->store, name);
    return 0;
}

static int
s_import(const s_args_t *a,
         jobq_store_t *store,
         FILE *err,
         volatile sig_atomic_t *stop)
{
    bool from_stdin = !a->file || strcmp(a->file, "-") == 0;
    const char *name = from_stdin ? "stdin" : a->file;
    FILE *in = from_stdin ? stdin : fopen(a->file, "r");
    if (!in) {
        fprintf(err, "jobq: import: cannot open %s: %s\n", a->file,
                strerror(errno));
        return 1;
    }
    char why[1024] = "";
    jobq_migrate_stats_t st;
    int rc = jobq_migrate_import(store, in, &st, stop, why, sizeof why);
    if (!from_stdin)
        fclose(in);
    if (rc == JOBQ_EINVAL) {
        fprintf(err, "jobq: import: %s refused, nothing imported: %s\n", name,
                why);
        return 1;
    }
    if (rc != JOBQ_OK && rc != JOBQ_EINTR)
        fprintf(err, "jobq: import: stopped at %s\n", why);
    if (rc == JOBQ_EINTR)
        fprintf(err, "jobq: import: interrupted\n");
    fprintf(err,
            "jobq: import %s %s: jobs: %" PRIu64 " imported, %" PRIu64
            " skipped (already there); keys: %" PRIu64 " imported, %" PRIu64
            " skipped\n",
            rc == JOBQ_OK ? "into" : "so far, into", a->store, st.jobs,
            st.jobs_skipped, st.keys, st.keys_skipped);
    if (rc != JOBQ_OK) {
        if (st.line)
            fprintf(err, "jobq: import: lines 1 to %" PRIu64 " of %s are in",
                    st.line, name);
        else
            fprintf(err, "jobq: import: nothing of %s was committed", name);
        fprintf(err, "; run the same import again to finish (what is there "
                     "is skipped)\n");
        return rc == JOBQ_EINTR ? 130 : 1;
    }
    if (st.by_status[JOBQ_RUNNING])
        fprintf(err, "jobq: import: %" PRIu64 " job%s came in running: %s\n",
                st.by_status[JOBQ_RUNNING],
                st.by_status[JOBQ_RUNNING] == 1 ? "" : "s",
                jobq_store_shared(store)
                    ? "the brokers retry them once their lease runs out"
                    : "the broker gives them fresh leases at its start, and "
                      "retries them if their worker does not come back");
    return 0;
}

int
jobq_migrate_cli(int argc, char **argv, FILE *err, volatile sig_atomic_t *stop)
{
    s_args_t a;
    memset(&a, 0, sizeof a);
    int rc = s_args(argc, argv, err, &a);
    if (rc != 0)
        return rc;
    if (a.help) {
        fputs(s_usage, stdout);
        return 0;
    }
    jobq_store_t *store = s_open(&a, err, &rc);
    if (!store)
        return rc;
    rc = strcmp(a.cmd, "export") == 0 ? s_export(&a, store, err)
                                      : s_import(&a, store, err, stop);
    jobq_store_destroy(&store);
    return rc;
}
