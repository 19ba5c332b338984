/*  jobq_msg.c: encoding and decoding of the protocol bodies. */
#include "jobq_msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

//  --- decoding helpers ---------------------------------------------------

typedef struct {
    jobq_mp_reader_t r;   //  over the body
    jobq_msg_why_t *why;  //  where errors are described
    uint64_t seen;        //  bit per field index already read
} s_dec_t;

static int s_fail(s_dec_t *d, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_fail(s_dec_t *d, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why->text, sizeof d->why->text, fmt, ap);
    va_end(ap);
    return err;
}

static bool
s_is(jobq_str_t k, const char *name)
{
    size_t n = strlen(name);
    return k.len == n && memcmp(k.ptr, name, n) == 0;
}

//  Mark field idx seen; fails on a repeated key.
static int
s_once(s_dec_t *d, int idx, const char *name)
{
    uint64_t bit = (uint64_t) 1 << idx;
    if (d->seen & bit)
        return s_fail(d, JOBQ_EINVAL, "field '%s' given twice", name);
    d->seen |= bit;
    return JOBQ_OK;
}

static int
s_str(s_dec_t *d, const char *name, size_t max, jobq_str_t *out)
{
    if (jobq_mp_read_str(&d->r, out) != JOBQ_OK)
        return s_fail(d, JOBQ_EINVAL, "field '%s': expected a string", name);
    if (out->len > max)
        return s_fail(d, JOBQ_ETOOBIG, "field '%s': longer than %zu bytes",
                      name, max);
    return JOBQ_OK;
}

static int
s_uint(s_dec_t *d, const char *name, uint64_t max, uint64_t *out)
{
    if (jobq_mp_read_uint(&d->r, out) != JOBQ_OK)
        return s_fail(d, JOBQ_EINVAL,
                      "field '%s': expected a non-negative integer", name);
    if (*out > max)
        return s_fail(d, JOBQ_EINVAL, "field '%s': above %llu", name,
                      (unsigned long long) max);
    return JOBQ_OK;
}

static int
s_u32(s_dec_t *d, const char *name, uint32_t max, uint32_t *out)
{
    uint64_t v;
    int rc = s_uint(d, name, max, &v);
    if (rc == JOBQ_OK)
        *out = (uint32_t) v;
    return rc;
}

static int
s_id(s_dec_t *d, const char *name, uint64_t *out)
{
    jobq_str_t s;
    if (jobq_mp_read_str(&d->r, &s) != JOBQ_OK ||
        jobq_id_parse(s.ptr, s.len, out) != JOBQ_OK)
        return s_fail(d, JOBQ_EINVAL,
                      "field '%s': expected a job id of %d "
                      "hex digits",
                      name, JOBQ_ID_LEN);
    return JOBQ_OK;
}

static int
s_map(s_dec_t *d, const char *name, size_t max, jobq_bytes_t *out)
{
    if (jobq_mp_peek(&d->r) != JOBQ_MP_MAP)
        return s_fail(d, JOBQ_EINVAL, "field '%s': expected a map", name);
    if (jobq_mp_skip(&d->r, out) != JOBQ_OK)
        return s_fail(d, JOBQ_EINVAL, "field '%s': malformed", name);
    if (out->len > max)
        return s_fail(d, JOBQ_ETOOBIG, "field '%s': larger than %zu bytes",
                      name, max);
    if (jobq_mp_check(out->ptr, out->len, &jobq_proto_map_limits, NULL) !=
        JOBQ_OK)
        return s_fail(d, JOBQ_ETOOBIG,
                      "field '%s': nested deeper than %d levels", name,
                      JOBQ_MAX_MAP_DEPTH);
    return JOBQ_OK;
}

static int
s_bool(s_dec_t *d, const char *name, bool *out)
{
    if (jobq_mp_read_bool(&d->r, out) != JOBQ_OK)
        return s_fail(d, JOBQ_EINVAL, "field '%s': expected a boolean", name);
    return JOBQ_OK;
}

static int
s_skip(s_dec_t *d)
{
    return jobq_mp_skip(&d->r, NULL) == JOBQ_OK
               ? JOBQ_OK
               : s_fail(d, JOBQ_EINVAL, "malformed value");
}

//  One field of one command: idx is its bit in d->seen.
typedef int (*s_field_fn)(s_dec_t *d, jobq_str_t key, jobq_msg_t *m);

#define S_FIELD(i, name) (s_is(key, name) && (rc = s_once(d, i, name)) == 0)
#define S_SEEN(i)        (d->seen & ((uint64_t) 1 << (i)))

static int
s_enqueue(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    int rc = 0;
    uint64_t v;
    int64_t p;
    if (S_FIELD(1, "type")) {
        if ((rc = s_str(d, "type", JOBQ_MAX_TYPE_LEN, &m->u.enqueue.type)))
            return rc;
        if (!jobq_proto_valid_type(m->u.enqueue.type))
            return s_fail(d, JOBQ_EINVAL,
                          "field 'type': use 1-64 of [a-z0-9_.-]");
        return 0;
    }
    if (S_FIELD(2, "shop_id")) {
        if ((rc = s_str(d, "shop_id", JOBQ_MAX_SHOP_LEN, &m->u.enqueue.shop)))
            return rc;
        if (!jobq_proto_valid_shop(m->u.enqueue.shop))
            return s_fail(d, JOBQ_EINVAL,
                          "field 'shop_id': use 1-128 of [A-Za-z0-9_.:-]");
        return 0;
    }
    if (S_FIELD(3, "input"))
        return s_map(d, "input", JOBQ_MAX_INPUT_BYTES, &m->u.enqueue.input);
    if (S_FIELD(4, "key")) {
        if ((rc = s_str(d, "key", JOBQ_MAX_KEY_LEN, &m->u.enqueue.key)))
            return rc;
        if (m->u.enqueue.key.len == 0)
            return s_fail(d, JOBQ_EINVAL, "field 'key': empty");
        return 0;
    }
    if (S_FIELD(5, "priority")) {
        if (jobq_mp_read_int(&d->r, &p) != JOBQ_OK || p < JOBQ_MIN_PRIORITY ||
            p > JOBQ_MAX_PRIORITY)
            return s_fail(d, JOBQ_EINVAL,
                          "field 'priority': expected an integer in "
                          "[%d, %d]",
                          JOBQ_MIN_PRIORITY, JOBQ_MAX_PRIORITY);
        m->u.enqueue.priority = (int32_t) p;
        return 0;
    }
    if (S_FIELD(6, "delay"))
        return s_uint(d, "delay", JOBQ_MAX_DELAY_MS, &m->u.enqueue.delay_ms);
    if (S_FIELD(7, "max_attempts")) {
        if ((rc = s_uint(d, "max_attempts", JOBQ_MAX_ATTEMPTS, &v)))
            return rc;
        if (v == 0)
            return s_fail(d, JOBQ_EINVAL, "field 'max_attempts': must be >= 1");
        m->u.enqueue.max_attempts = (uint32_t) v;
        return 0;
    }
    if (S_FIELD(8, "timeout"))
        return s_uint(d, "timeout", JOBQ_MAX_TIMEOUT_MS,
                      &m->u.enqueue.timeout_ms);
    return rc ? rc : s_skip(d);
}

static const uint8_t s_empty_map[] = {0x80};

//  One ENQUEUE_BATCH entry (a map of ENQUEUE fields, rid excepted) at the
//  reader of d, into m->u.enqueue.
static int
s_batch_entry(s_dec_t *d, jobq_msg_t *m)
{
    memset(&m->u.enqueue, 0, sizeof m->u.enqueue);
    m->u.enqueue.max_attempts = JOBQ_DEFAULT_ATTEMPTS;
    m->u.enqueue.input.ptr = s_empty_map;
    m->u.enqueue.input.len = sizeof s_empty_map;
    d->seen = 0;
    uint32_t n;
    if (jobq_mp_read_map(&d->r, &n) != JOBQ_OK)
        return s_fail(d, JOBQ_EINVAL, "expected a map");
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t key;
        if (jobq_mp_read_str(&d->r, &key) != JOBQ_OK)
            return s_fail(d, JOBQ_EINVAL, "map key is not a string");
        int rc = s_enqueue(d, key, m);
        if (rc != 0)
            return rc;
    }
    if ((d->seen & 0x6) != 0x6)
        return s_fail(d, JOBQ_EINVAL, "needs fields: type, shop_id");
    return JOBQ_OK;
}

static int
s_batch(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    int rc = 0;
    if (S_FIELD(1, "jobs")) {
        jobq_mp_reader_t at = d->r;
        uint32_t n;
        if (jobq_mp_read_array(&d->r, &n) != JOBQ_OK)
            return s_fail(d, JOBQ_EINVAL, "field 'jobs': expected an array");
        if (n == 0 || n > JOBQ_MAX_BATCH)
            return s_fail(d, n ? JOBQ_ETOOBIG : JOBQ_EINVAL,
                          "field 'jobs': 1 to %d jobs", JOBQ_MAX_BATCH);
        //  Check every entry now, so that the broker applies all or none.
        s_dec_t e = {.r = d->r, .why = d->why};
        jobq_msg_t one;
        for (uint32_t i = 0; i < n; i++) {
            if ((rc = s_batch_entry(&e, &one)) != 0) {
                char text[sizeof d->why->text];
                memcpy(text, d->why->text, sizeof text);
                return s_fail(d, rc, "jobs[%u]: %s", i, text);
            }
        }
        d->r = e.r;
        m->u.batch.jobs.ptr = at.p;
        m->u.batch.jobs.len = (size_t) (d->r.p - at.p);
        m->u.batch.count = n;
        return 0;
    }
    return rc ? rc : s_skip(d);
}

void
jobq_msg_batch_begin(const jobq_msg_t *batch, jobq_mp_reader_t *r)
{
    uint32_t n;
    jobq_mp_reader_init(r, batch->u.batch.jobs.ptr, batch->u.batch.jobs.len);
    jobq_mp_read_array(r, &n);
}

int
jobq_msg_batch_next(jobq_mp_reader_t *r,
                    const jobq_msg_t *batch,
                    jobq_msg_t *one)
{
    jobq_msg_why_t why;
    s_dec_t d = {.r = *r, .why = &why};
    memset(one, 0, sizeof *one);
    one->cmd = JOBQ_CMD_ENQUEUE;
    one->rid = batch->rid;
    int rc = s_batch_entry(&d, one);
    *r = d.r;
    return rc;
}

static int
s_jobref(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    int rc = 0;
    if (S_FIELD(1, "id"))
        return s_id(d, "id", &m->u.job.id);
    return rc ? rc : s_skip(d);
}

static int
s_list(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    int rc = 0;
    jobq_str_t s;
    if (S_FIELD(1, "shop_id")) {
        if ((rc = s_str(d, "shop_id", JOBQ_MAX_SHOP_LEN, &m->u.list.shop)))
            return rc;
        return jobq_proto_valid_shop(m->u.list.shop)
                   ? 0
                   : s_fail(d, JOBQ_EINVAL, "field 'shop_id': invalid");
    }
    if (S_FIELD(2, "type")) {
        if ((rc = s_str(d, "type", JOBQ_MAX_TYPE_LEN, &m->u.list.type)))
            return rc;
        return jobq_proto_valid_type(m->u.list.type)
                   ? 0
                   : s_fail(d, JOBQ_EINVAL, "field 'type': invalid");
    }
    if (S_FIELD(3, "status")) {
        if ((rc = s_str(d, "status", 16, &s)))
            return rc;
        m->u.list.status = jobq_status_parse(s.ptr, s.len);
        return m->u.list.status >= 0
                   ? 0
                   : s_fail(d, JOBQ_EINVAL, "field 'status': unknown state");
    }
    if (S_FIELD(4, "limit")) {
        if ((rc = s_u32(d, "limit", JOBQ_MAX_LIST, &m->u.list.limit)))
            return rc;
        return m->u.list.limit >= 1
                   ? 0
                   : s_fail(d, JOBQ_EINVAL, "field 'limit': must be >= 1");
    }
    if (S_FIELD(5, "cursor")) {
        if (jobq_mp_read_nil(&d->r))
            return 0;
        return s_id(d, "cursor", &m->u.list.cursor);
    }
    return rc ? rc : s_skip(d);
}

//  "jobs": [{"id": ..., "attempt": ...}, ...], at most JOBQ_MAX_CAPACITY.
static int
s_held(s_dec_t *d, jobq_msg_t *m)
{
    const uint8_t *start = d->r.p;
    uint32_t n;
    if (jobq_mp_read_array(&d->r, &n) != JOBQ_OK || n > JOBQ_MAX_CAPACITY)
        return s_fail(d, JOBQ_EINVAL,
                      "field 'jobs': expected an array of "
                      "at most %d entries",
                      JOBQ_MAX_CAPACITY);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k;
        if (jobq_mp_read_map(&d->r, &k) != JOBQ_OK)
            return s_fail(d, JOBQ_EINVAL, "field 'jobs': expected maps");
        bool id_seen = false, at_seen = false;
        for (uint32_t f = 0; f < k; f++) {
            jobq_str_t key;
            uint64_t id, at;
            int rc;
            if (jobq_mp_read_str(&d->r, &key) != JOBQ_OK)
                return s_fail(d, JOBQ_EINVAL, "field 'jobs': bad key");
            if ((s_is(key, "id") && id_seen) ||
                (s_is(key, "attempt") && at_seen))
                return s_fail(d, JOBQ_EINVAL,
                              "field 'jobs': a key given twice");
            if (s_is(key, "id")) {
                id_seen = true;
                if ((rc = s_id(d, "jobs.id", &id)))
                    return rc;
            } else if (s_is(key, "attempt")) {
                at_seen = true;
                if ((rc = s_uint(d, "jobs.attempt", UINT32_MAX, &at)))
                    return rc;
            } else if ((rc = s_skip(d))) {
                return rc;
            }
        }
        if (!id_seen || !at_seen)
            return s_fail(d, JOBQ_EINVAL,
                          "field 'jobs': each entry needs "
                          "id and attempt");
    }
    m->held.ptr = start;
    m->held.len = (size_t) (d->r.p - start);
    m->has_held = true;
    return JOBQ_OK;
}

static int
s_echo(s_dec_t *d, jobq_msg_t *m)
{
    int rc = s_uint(d, "echo", UINT64_MAX, &m->echo);
    m->has_echo = rc == JOBQ_OK;
    return rc;
}

static int
s_heartbeat(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    int rc = 0;
    if (S_FIELD(1, "jobs"))
        return s_held(d, m);
    if (S_FIELD(2, "echo"))
        return s_echo(d, m);
    return rc ? rc : s_skip(d);
}

static int
s_none(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    (void) key;
    (void) m;
    return s_skip(d);
}

static int
s_ready(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    int rc = 0;
    uint32_t n;
    if (S_FIELD(1, "types")) {
        if (jobq_mp_read_array(&d->r, &n) != JOBQ_OK)
            return s_fail(d, JOBQ_EINVAL, "field 'types': expected an array");
        if (n < 1 || n > JOBQ_MAX_WORKER_TYPES)
            return s_fail(d, JOBQ_EINVAL, "field 'types': 1 to %d types",
                          JOBQ_MAX_WORKER_TYPES);
        for (uint32_t i = 0; i < n; i++) {
            jobq_str_t *t = &m->u.ready.types[i];
            if ((rc = s_str(d, "types", JOBQ_MAX_TYPE_LEN, t)))
                return rc;
            if (!jobq_proto_valid_type(*t))
                return s_fail(d, JOBQ_EINVAL, "field 'types': invalid name");
        }
        m->u.ready.ntypes = n;
        return 0;
    }
    if (S_FIELD(2, "capacity")) {
        //  0: a draining worker that keeps its leases but takes no jobs.
        return s_u32(d, "capacity", JOBQ_MAX_CAPACITY, &m->u.ready.capacity);
    }
    if (S_FIELD(3, "name"))
        return s_str(d, "name", 64, &m->u.ready.name);
    if (S_FIELD(4, "jobs"))
        return s_held(d, m);
    if (S_FIELD(5, "echo"))
        return s_echo(d, m);
    return rc ? rc : s_skip(d);
}

//  id and attempt, shared by the worker's job messages (indexes 1 and 2).
static int
s_attempt_ref(
    s_dec_t *d, jobq_str_t key, uint64_t *id, uint32_t *attempt, bool *done)
{
    int rc = 0;
    *done = true;
    if (S_FIELD(1, "id"))
        return s_id(d, "id", id);
    if (S_FIELD(2, "attempt"))
        return s_u32(d, "attempt", UINT32_MAX, attempt);
    *done = rc != 0;
    return rc;
}

static int
s_progress(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    bool done;
    int rc =
        s_attempt_ref(d, key, &m->u.progress.id, &m->u.progress.attempt, &done);
    if (done)
        return rc;
    if (S_FIELD(3, "progress"))
        return s_u32(d, "progress", 100, &m->u.progress.progress);
    if (S_FIELD(4, "message"))
        return s_str(d, "message", JOBQ_MAX_MESSAGE_LEN,
                     &m->u.progress.message);
    return rc ? rc : s_skip(d);
}

static int
s_complete(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    bool done;
    int rc =
        s_attempt_ref(d, key, &m->u.complete.id, &m->u.complete.attempt, &done);
    if (done)
        return rc;
    if (S_FIELD(3, "output"))
        return s_map(d, "output", JOBQ_MAX_OUTPUT_BYTES, &m->u.complete.output);
    return rc ? rc : s_skip(d);
}

static int
s_failmsg(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    bool done;
    int rc = s_attempt_ref(d, key, &m->u.fail.id, &m->u.fail.attempt, &done);
    if (done)
        return rc;
    if (S_FIELD(3, "error"))
        return s_str(d, "error", JOBQ_MAX_ERROR_LEN, &m->u.fail.error);
    if (S_FIELD(4, "permanent"))
        return s_bool(d, "permanent", &m->u.fail.permanent);
    if (S_FIELD(5, "cancelled"))
        return s_bool(d, "cancelled", &m->u.fail.cancelled);
    if (S_FIELD(6, "released"))
        return s_bool(d, "released", &m->u.fail.released);
    return rc ? rc : s_skip(d);
}

static int
s_job(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    bool done;
    int rc =
        s_attempt_ref(d, key, &m->u.dispatch.id, &m->u.dispatch.attempt, &done);
    if (done)
        return rc;
    if (S_FIELD(3, "type"))
        return s_str(d, "type", JOBQ_MAX_TYPE_LEN, &m->u.dispatch.type);
    if (S_FIELD(4, "shop_id"))
        return s_str(d, "shop_id", JOBQ_MAX_SHOP_LEN, &m->u.dispatch.shop);
    if (S_FIELD(5, "input"))
        return s_map(d, "input", JOBQ_MAX_INPUT_BYTES, &m->u.dispatch.input);
    if (S_FIELD(6, "timeout"))
        return s_uint(d, "timeout", JOBQ_MAX_TIMEOUT_MS,
                      &m->u.dispatch.timeout_ms);
    return rc ? rc : s_skip(d);
}

static int
s_cancel_job(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    bool done;
    int rc = s_attempt_ref(d, key, &m->u.cancel_job.id,
                           &m->u.cancel_job.attempt, &done);
    return done ? rc : s_skip(d);
}

static int
s_ack(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    bool done;
    int rc = s_attempt_ref(d, key, &m->u.ack.id, &m->u.ack.attempt, &done);
    if (done)
        return rc;
    if (S_FIELD(3, "taken"))
        return s_bool(d, "taken", &m->u.ack.taken);
    return rc ? rc : s_skip(d);
}

static int
s_disconnect(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    int rc = 0;
    if (S_FIELD(1, "reason"))
        return s_str(d, "reason", JOBQ_MAX_ERROR_LEN, &m->u.disconnect.reason);
    return rc ? rc : s_skip(d);
}

static int
s_errmsg(s_dec_t *d, jobq_str_t key, jobq_msg_t *m)
{
    int rc = 0;
    jobq_str_t s;
    if (S_FIELD(1, "code")) {
        if ((rc = s_str(d, "code", 64, &s)))
            return rc;
        m->u.error.code = jobq_err_from_wire_code(s.ptr, s.len);
        return 0;
    }
    if (S_FIELD(2, "message"))
        return s_str(d, "message", JOBQ_MAX_ERROR_LEN, &m->u.error.message);
    return rc ? rc : s_skip(d);
}

//  Per command: its field reader, whether it carries rid, and the field
//  bits that must be present (bit 0 is rid).
static const struct {
    int cmd;                 //  jobq_cmd_t
    s_field_fn field;        //  reads one known field or skips
    uint64_t need;           //  required field bits
    const char *need_names;  //  for the error text
} s_cmds[] = {
    {JOBQ_CMD_ENQUEUE, s_enqueue, 0x7, "rid, type, shop_id"},
    {JOBQ_CMD_STATUS, s_jobref, 0x3, "rid, id"},
    {JOBQ_CMD_LIST, s_list, 0x1, "rid"},
    {JOBQ_CMD_CANCEL, s_jobref, 0x3, "rid, id"},
    {JOBQ_CMD_STATS, s_none, 0x1, "rid"},
    {JOBQ_CMD_RETRY, s_jobref, 0x3, "rid, id"},
    {JOBQ_CMD_ENQUEUE_BATCH, s_batch, 0x3, "rid, jobs"},
    {JOBQ_CMD_READY, s_ready, 0x6, "types, capacity"},
    {JOBQ_CMD_HEARTBEAT, s_heartbeat, 0x0, ""},
    {JOBQ_CMD_PROGRESS, s_progress, 0xe, "id, attempt, progress"},
    {JOBQ_CMD_COMPLETE, s_complete, 0x6, "id, attempt"},
    {JOBQ_CMD_FAIL, s_failmsg, 0xe, "id, attempt, error"},
    {JOBQ_CMD_JOB, s_job, 0x3e, "id, attempt, type, shop_id, input"},
    {JOBQ_CMD_CANCEL_JOB, s_cancel_job, 0x6, "id, attempt"},
    {JOBQ_CMD_DISCONNECT, s_disconnect, 0x0, ""},
    {JOBQ_CMD_ACK, s_ack, 0x6, "id, attempt"},
    {JOBQ_CMD_ERROR, s_errmsg, 0x7, "rid, code, message"},
    {JOBQ_CMD_REPLY, s_none, 0x1, "rid"},
};

static int
s_decode(int cmd,
         const uint8_t *body,
         size_t len,
         jobq_msg_t *m,
         jobq_msg_why_t *why)
{
    s_dec_t dec = {.why = why, .seen = 0}, *d = &dec;
    memset(m, 0, sizeof *m);
    why->text[0] = '\0';
    m->cmd = cmd;
    size_t c = 0, ncmds = sizeof s_cmds / sizeof s_cmds[0];
    while (c < ncmds && s_cmds[c].cmd != cmd)
        c++;
    if (c == ncmds)
        return s_fail(d, JOBQ_ECOMMAND, "unknown command 0x%02x", cmd & 0xff);
    const char *bad;
    int rc = jobq_mp_check(body, len,
                           cmd == JOBQ_CMD_REPLY ? &jobq_proto_reply_limits
                                                 : &jobq_proto_limits,
                           &bad);
    if (rc != JOBQ_OK)
        return s_fail(d, rc, "body: %s", bad);
    jobq_mp_reader_init(&d->r, body, len);
    uint32_t n;
    if (jobq_mp_read_map(&d->r, &n) != JOBQ_OK)
        return s_fail(d, JOBQ_EINVAL, "body: expected a map");
    //  Defaults.
    if (cmd == JOBQ_CMD_ENQUEUE) {
        m->u.enqueue.max_attempts = JOBQ_DEFAULT_ATTEMPTS;
        m->u.enqueue.input.ptr = s_empty_map;
        m->u.enqueue.input.len = sizeof s_empty_map;
    } else if (cmd == JOBQ_CMD_LIST) {
        m->u.list.status = -1;
        m->u.list.limit = JOBQ_DEFAULT_LIST;
    } else if (cmd == JOBQ_CMD_COMPLETE) {
        m->u.complete.output.ptr = s_empty_map;
        m->u.complete.output.len = sizeof s_empty_map;
    }
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t key;
        if (jobq_mp_read_str(&d->r, &key) != JOBQ_OK)
            return s_fail(d, JOBQ_EINVAL, "body: map key is not a string");
        if (s_is(key, "rid")) {
            if ((rc = s_once(d, 0, "rid")) != 0)
                return rc;
            if ((rc = s_uint(d, "rid", UINT64_MAX, &m->rid)) != 0)
                return rc;
            continue;
        }
        if (cmd == JOBQ_CMD_REPLY) {
            if ((rc = s_skip(d)) != 0)
                return rc;
            continue;
        }
        if ((rc = s_cmds[c].field(d, key, m)) != 0)
            return rc;
    }
    if ((d->seen & s_cmds[c].need) != s_cmds[c].need)
        return s_fail(d, JOBQ_EINVAL, "%s needs fields: %s", jobq_cmd_name(cmd),
                      s_cmds[c].need_names);
    if (cmd == JOBQ_CMD_REPLY) {
        m->u.reply.body.ptr = body;
        m->u.reply.body.len = len;
    }
    return JOBQ_OK;
}

//  The rid of a body that could not be decoded, when it can still be
//  found: the top-level entries are read in order up to the first that
//  cannot be read (not a map, a key that is not a string, a value cut
//  short), and the first "rid" is taken if it holds an unsigned integer.
//  So an error answers with the request's rid whatever the fault, as long
//  as the bytes up to rid are whole. One pass over the body at most:
//  jobq_mp_skip is iterative, and every entry read consumes bytes.
static bool
s_find_rid(const uint8_t *body, size_t len, uint64_t *rid)
{
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, body, len);
    uint32_t n;
    if (jobq_mp_read_map(&r, &n) != JOBQ_OK)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t key;
        if (jobq_mp_read_str(&r, &key) != JOBQ_OK)
            return false;
        if (s_is(key, "rid"))
            return jobq_mp_read_uint(&r, rid) == JOBQ_OK;
        if (jobq_mp_skip(&r, NULL) != JOBQ_OK)
            return false;
    }
    return false;
}

int
jobq_msg_decode(int cmd,
                const uint8_t *body,
                size_t len,
                jobq_msg_t *m,
                jobq_msg_why_t *why)
{
    int rc = s_decode(cmd, body, len, m, why);
    if (rc != JOBQ_OK && m->rid == 0) {
        uint64_t rid = 0;
        if (s_find_rid(body, len, &rid))
            m->rid = rid;
    }
    return rc;
}

//  --- encoding -------------------------------------------------------------

static void
s_wkey(jobq_mp_writer_t *w, const char *k)
{
    jobq_mp_write_cstr(w, k);
}

static void
s_wstr(jobq_mp_writer_t *w, const char *k, jobq_str_t s)
{
    s_wkey(w, k);
    jobq_mp_write_str(w, s.ptr ? s.ptr : "", s.len);
}

static void
s_wid(jobq_mp_writer_t *w, const char *k, uint64_t id)
{
    char hex[JOBQ_ID_LEN + 1];
    jobq_id_format(id, hex);
    s_wkey(w, k);
    jobq_mp_write_str(w, hex, JOBQ_ID_LEN);
}

static void
s_wuint(jobq_mp_writer_t *w, const char *k, uint64_t v)
{
    s_wkey(w, k);
    jobq_mp_write_uint(w, v);
}

static void
s_wmap(jobq_mp_writer_t *w, const char *k, jobq_bytes_t b)
{
    s_wkey(w, k);
    if (b.len)
        jobq_mp_write_raw(w, b.ptr, b.len);
    else
        jobq_mp_write_map(w, 0);
}

//  The ENQUEUE fields of m as a map, with rid first when with_rid.
static void
s_wenqueue(jobq_mp_writer_t *w, const jobq_msg_t *m, bool with_rid)
{
    uint32_t n = 7 + with_rid + (m->u.enqueue.key.len > 0);
    jobq_mp_write_map(w, n);
    if (with_rid)
        s_wuint(w, "rid", m->rid);
    s_wstr(w, "type", m->u.enqueue.type);
    s_wstr(w, "shop_id", m->u.enqueue.shop);
    s_wmap(w, "input", m->u.enqueue.input);
    s_wkey(w, "priority");
    jobq_mp_write_int(w, m->u.enqueue.priority);
    s_wuint(w, "delay", m->u.enqueue.delay_ms);
    s_wuint(w, "max_attempts", m->u.enqueue.max_attempts);
    s_wuint(w, "timeout", m->u.enqueue.timeout_ms);
    if (m->u.enqueue.key.len)
        s_wstr(w, "key", m->u.enqueue.key);
}

void
jobq_msg_write_batch_entry(jobq_mp_writer_t *w, const jobq_msg_t *one)
{
    s_wenqueue(w, one, false);
}

void
jobq_msg_encode(const jobq_msg_t *m, jobq_mp_writer_t *w)
{
    switch (m->cmd) {
    case JOBQ_CMD_ENQUEUE:
        s_wenqueue(w, m, true);
        break;
    case JOBQ_CMD_ENQUEUE_BATCH:
        //  u.batch.jobs holds the encoded array (jobq_msg_write_batch_entry
        //  after a jobq_mp_write_array of u.batch.count).
        jobq_mp_write_map(w, 2);
        s_wuint(w, "rid", m->rid);
        s_wkey(w, "jobs");
        jobq_mp_write_raw(w, m->u.batch.jobs.ptr, m->u.batch.jobs.len);
        break;
    case JOBQ_CMD_STATUS:
    case JOBQ_CMD_CANCEL:
    case JOBQ_CMD_RETRY:
        jobq_mp_write_map(w, 2);
        s_wuint(w, "rid", m->rid);
        s_wid(w, "id", m->u.job.id);
        break;
    case JOBQ_CMD_LIST: {
        uint32_t n = 2 + (m->u.list.shop.len > 0) + (m->u.list.type.len > 0) +
                     (m->u.list.status >= 0) + (m->u.list.cursor != 0);
        jobq_mp_write_map(w, n);
        s_wuint(w, "rid", m->rid);
        s_wuint(w, "limit", m->u.list.limit);
        if (m->u.list.shop.len)
            s_wstr(w, "shop_id", m->u.list.shop);
        if (m->u.list.type.len)
            s_wstr(w, "type", m->u.list.type);
        if (m->u.list.status >= 0) {
            s_wkey(w, "status");
            jobq_mp_write_cstr(w, jobq_status_name(m->u.list.status));
        }
        if (m->u.list.cursor)
            s_wid(w, "cursor", m->u.list.cursor);
        break;
    }
    case JOBQ_CMD_STATS:
        jobq_mp_write_map(w, 1);
        s_wuint(w, "rid", m->rid);
        break;
    case JOBQ_CMD_READY:
        jobq_mp_write_map(w, 2 + (m->u.ready.name.len > 0) + m->has_held +
                                 m->has_echo);
        if (m->has_held) {
            s_wkey(w, "jobs");
            jobq_mp_write_raw(w, m->held.ptr, m->held.len);
        }
        s_wkey(w, "types");
        jobq_mp_write_array(w, m->u.ready.ntypes);
        for (uint32_t i = 0; i < m->u.ready.ntypes; i++)
            jobq_mp_write_str(w, m->u.ready.types[i].ptr,
                              m->u.ready.types[i].len);
        s_wuint(w, "capacity", m->u.ready.capacity);
        if (m->u.ready.name.len)
            s_wstr(w, "name", m->u.ready.name);
        if (m->has_echo)
            s_wuint(w, "echo", m->echo);
        break;
    case JOBQ_CMD_HEARTBEAT:
        jobq_mp_write_map(w, m->has_held + m->has_echo);
        if (m->has_held) {
            s_wkey(w, "jobs");
            jobq_mp_write_raw(w, m->held.ptr, m->held.len);
        }
        if (m->has_echo)
            s_wuint(w, "echo", m->echo);
        break;
    case JOBQ_CMD_PROGRESS:
        jobq_mp_write_map(w, 4);
        s_wid(w, "id", m->u.progress.id);
        s_wuint(w, "attempt", m->u.progress.attempt);
        s_wuint(w, "progress", m->u.progress.progress);
        s_wstr(w, "message", m->u.progress.message);
        break;
    case JOBQ_CMD_COMPLETE:
        jobq_mp_write_map(w, 3);
        s_wid(w, "id", m->u.complete.id);
        s_wuint(w, "attempt", m->u.complete.attempt);
        s_wmap(w, "output", m->u.complete.output);
        break;
    case JOBQ_CMD_FAIL:
        jobq_mp_write_map(w, 5 + m->u.fail.released);
        s_wid(w, "id", m->u.fail.id);
        s_wuint(w, "attempt", m->u.fail.attempt);
        s_wstr(w, "error", m->u.fail.error);
        s_wkey(w, "permanent");
        jobq_mp_write_bool(w, m->u.fail.permanent);
        s_wkey(w, "cancelled");
        jobq_mp_write_bool(w, m->u.fail.cancelled);
        if (m->u.fail.released) {
            s_wkey(w, "released");
            jobq_mp_write_bool(w, true);
        }
        break;
    case JOBQ_CMD_JOB:
        jobq_mp_write_map(w, 6);
        s_wid(w, "id", m->u.dispatch.id);
        s_wuint(w, "attempt", m->u.dispatch.attempt);
        s_wstr(w, "type", m->u.dispatch.type);
        s_wstr(w, "shop_id", m->u.dispatch.shop);
        s_wmap(w, "input", m->u.dispatch.input);
        s_wuint(w, "timeout", m->u.dispatch.timeout_ms);
        break;
    case JOBQ_CMD_CANCEL_JOB:
        jobq_mp_write_map(w, 2);
        s_wid(w, "id", m->u.cancel_job.id);
        s_wuint(w, "attempt", m->u.cancel_job.attempt);
        break;
    case JOBQ_CMD_DISCONNECT:
        jobq_mp_write_map(w, 1);
        s_wstr(w, "reason", m->u.disconnect.reason);
        break;
    case JOBQ_CMD_ACK:
        jobq_mp_write_map(w, 3);
        s_wid(w, "id", m->u.ack.id);
        s_wuint(w, "attempt", m->u.ack.attempt);
        s_wkey(w, "taken");
        jobq_mp_write_bool(w, m->u.ack.taken);
        break;
    default:
        jobq_mp_write_map(w, 0);
        break;
    }
}

void
jobq_msg_write_held(jobq_mp_writer_t *w,
                    const uint64_t *ids,
                    const uint32_t *attempts,
                    uint32_t n)
{
    jobq_mp_write_array(w, n);
    for (uint32_t i = 0; i < n; i++) {
        jobq_mp_write_map(w, 2);
        s_wid(w, "id", ids[i]);
        s_wuint(w, "attempt", attempts[i]);
    }
}

uint32_t
jobq_msg_read_held(const jobq_msg_t *m,
                   uint64_t *ids,
                   uint32_t *attempts,
                   uint32_t max)
{
    if (!m->has_held)
        return 0;
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, m->held.ptr, m->held.len);
    uint32_t n, got = 0;
    if (jobq_mp_read_array(&r, &n) != JOBQ_OK)
        return 0;
    for (uint32_t i = 0; i < n && got < max; i++) {
        uint32_t k;
        uint64_t id = 0, at = 0;
        if (jobq_mp_read_map(&r, &k) != JOBQ_OK)
            return got;
        for (uint32_t f = 0; f < k; f++) {
            jobq_str_t key, s;
            if (jobq_mp_read_str(&r, &key) != JOBQ_OK)
                return got;
            if (s_is(key, "id") && jobq_mp_read_str(&r, &s) == JOBQ_OK)
                jobq_id_parse(s.ptr, s.len, &id);
            else if (!(s_is(key, "attempt") &&
                       jobq_mp_read_uint(&r, &at) == JOBQ_OK))
                jobq_mp_skip(&r, NULL);
        }
        ids[got] = id;
        attempts[got++] = (uint32_t) at;
    }
    return got;
}

void
jobq_msg_reply_begin(jobq_mp_writer_t *w, uint64_t rid, uint32_t nfields)
{
    jobq_mp_write_map(w, nfields + 1);
    s_wuint(w, "rid", rid);
}

void
jobq_msg_write_error(jobq_mp_writer_t *w,
                     uint64_t rid,
                     int err,
                     const char *message)
{
    jobq_mp_write_map(w, 3);
    s_wuint(w, "rid", rid);
    s_wkey(w, "code");
    jobq_mp_write_cstr(w, jobq_err_wire_code(err));
    s_wkey(w, "message");
    jobq_mp_write_cstr(w, message ? message : jobq_strerror(err));
}

//  --- the job map ------------------------------------------------------------

//  A time field: ms since epoch, or nil when 0 (never happened).
static void
s_wtime(jobq_mp_writer_t *w, const char *k, uint64_t ms)
{
    s_wkey(w, k);
    if (ms)
        jobq_mp_write_uint(w, ms);
    else
        jobq_mp_write_nil(w);
}

//  An optional string: nil when empty.
static void
s_wopt(jobq_mp_writer_t *w, const char *k, jobq_str_t s)
{
    s_wkey(w, k);
    if (s.len)
        jobq_mp_write_str(w, s.ptr, s.len);
    else
        jobq_mp_write_nil(w);
}

void
jobq_msg_write_job(jobq_mp_writer_t *w, const jobq_jobdata_t *j, int flags)
{
    uint32_t n = 21;
    bool wait = j->wait > JOBQ_WAIT_NONE && j->wait < JOBQ_WAIT_COUNT_;
    if (wait)
        n++;
    if (flags & JOBQ_JOBMAP_INPUT)
        n++;
    if (flags & JOBQ_JOBMAP_OUTPUT)
        n += 2;
    jobq_mp_write_map(w, n);
    s_wid(w, "id", j->id);
    s_wstr(w, "type", j->type);
    s_wkey(w, "status");
    jobq_mp_write_cstr(w, jobq_status_name(j->status));
    s_wstr(w, "shop_id", j->shop);
    s_wuint(w, "progress", j->progress);
    s_wopt(w, "message", j->message);
    s_wopt(w, "error", j->error);
    s_wuint(w, "attempts", j->attempts);
    s_wuint(w, "max_attempts", j->max_attempts);
    s_wkey(w, "priority");
    jobq_mp_write_int(w, j->priority);
    s_wtime(w, "run_at", j->run_at);
    s_wuint(w, "timeout", j->timeout_ms);
    s_wopt(w, "key", j->key);
    s_wtime(w, "created_at", j->created_at);
    s_wtime(w, "updated_at", j->updated_at);
    s_wtime(w, "started_at", j->started_at);
    s_wtime(w, "completed_at", j->completed_at);
    s_wopt(w, "worker", j->worker);
    s_wtime(w, "lease_until", j->lease_until);
    s_wuint(w, "version", j->version);
    s_wuint(w, "seq", j->seq);
    if (wait) {
        s_wkey(w, "wait");
        jobq_mp_write_map(w, 2);
        s_wkey(w, "reason");
        jobq_mp_write_cstr(w, jobq_wait_name(j->wait));
        s_wtime(w, "until", j->wait_until);
    }
    if (flags & JOBQ_JOBMAP_INPUT)
        s_wmap(w, "input", j->input);
    if (flags & JOBQ_JOBMAP_OUTPUT) {
        s_wkey(w, "output");
        if (j->output.len)
            jobq_mp_write_raw(w, j->output.ptr, j->output.len);
        else
            jobq_mp_write_nil(w);
        s_wkey(w, "errors");
        if (j->errors.len)
            jobq_mp_write_raw(w, j->errors.ptr, j->errors.len);
        else
            jobq_mp_write_array(w, 0);
    }
}

//  Read an optional string (nil = empty).
static int
s_ropt(jobq_mp_reader_t *r, jobq_str_t *s)
{
    if (jobq_mp_read_nil(r)) {
        s->ptr = "";
        s->len = 0;
        return JOBQ_OK;
    }
    return jobq_mp_read_str(r, s);
}

//  Read an optional time or count (nil = 0).
static int
s_rnum(jobq_mp_reader_t *r, uint64_t *v)
{
    if (jobq_mp_read_nil(r)) {
        *v = 0;
        return JOBQ_OK;
    }
    return jobq_mp_read_uint(r, v);
}

//  The job map's wait: {reason, until}; other keys are skipped.
static int
s_read_wait(jobq_mp_reader_t *r, jobq_jobdata_t *j)
{
    uint32_t n;
    if (jobq_mp_read_nil(r))
        return JOBQ_OK;
    if (jobq_mp_read_map(r, &n) != JOBQ_OK)
        return JOBQ_EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t k, s;
        int rc;
        if (jobq_mp_read_str(r, &k) != JOBQ_OK)
            return JOBQ_EPROTO;
        if (s_is(k, "reason")) {
            rc = jobq_mp_read_str(r, &s);
            if (rc == JOBQ_OK)
                j->wait = jobq_wait_parse(s.ptr, s.len);
        } else if (s_is(k, "until")) {
            rc = s_rnum(r, &j->wait_until);
        } else {
            rc = jobq_mp_skip(r, NULL);
        }
        if (rc != JOBQ_OK)
            return JOBQ_EPROTO;
    }
    return JOBQ_OK;
}

int
jobq_msg_read_job(jobq_mp_reader_t *r, jobq_jobdata_t *j)
{
    memset(j, 0, sizeof *j);
    uint32_t n;
    if (jobq_mp_read_map(r, &n) != JOBQ_OK)
        return JOBQ_EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t k, s;
        uint64_t v = 0;
        int64_t iv;
        int rc = JOBQ_OK;
        if (jobq_mp_read_str(r, &k) != JOBQ_OK)
            return JOBQ_EPROTO;
        if (s_is(k, "id")) {
            rc = jobq_mp_read_str(r, &s);
            if (rc == JOBQ_OK)
                rc = jobq_id_parse(s.ptr, s.len, &j->id);
        } else if (s_is(k, "type")) {
            rc = jobq_mp_read_str(r, &j->type);
        } else if (s_is(k, "status")) {
            rc = jobq_mp_read_str(r, &s);
            if (rc == JOBQ_OK)
                j->status = jobq_status_parse(s.ptr, s.len);
        } else if (s_is(k, "shop_id")) {
            rc = jobq_mp_read_str(r, &j->shop);
        } else if (s_is(k, "message")) {
            rc = s_ropt(r, &j->message);
        } else if (s_is(k, "error")) {
            rc = s_ropt(r, &j->error);
        } else if (s_is(k, "key")) {
            rc = s_ropt(r, &j->key);
        } else if (s_is(k, "worker")) {
            rc = s_ropt(r, &j->worker);
        } else if (s_is(k, "priority")) {
            rc = jobq_mp_read_int(r, &iv);
            j->priority = (int32_t) iv;
        } else if (s_is(k, "input")) {
            rc = jobq_mp_skip(r, &j->input);
        } else if (s_is(k, "output")) {
            if (!jobq_mp_read_nil(r))
                rc = jobq_mp_skip(r, &j->output);
        } else if (s_is(k, "errors")) {
            rc = jobq_mp_skip(r, &j->errors);
        } else if (s_is(k, "wait")) {
            rc = s_read_wait(r, j);
        } else {
            static const char *const nums[] = {
                "progress",   "attempts",     "max_attempts", "version",
                "run_at",     "timeout",      "created_at",   "updated_at",
                "started_at", "completed_at", "lease_until",  "seq"};
            size_t idx = 0, count = sizeof nums / sizeof nums[0];
            while (idx < count && !s_is(k, nums[idx]))
                idx++;
            if (idx == count) {
                rc = jobq_mp_skip(r, NULL);
            } else {
                rc = s_rnum(r, &v);
                switch (idx) {
                case 0:
                    j->progress = (uint32_t) v;
                    break;
                case 1:
                    j->attempts = (uint32_t) v;
                    break;
                case 2:
                    j->max_attempts = (uint32_t) v;
                    break;
                case 3:
                    j->version = (uint32_t) v;
                    break;
                case 4:
                    j->run_at = v;
                    break;
                case 5:
                    j->timeout_ms = v;
                    break;
                case 6:
                    j->created_at = v;
                    break;
                case 7:
                    j->updated_at = v;
                    break;
                case 8:
                    j->started_at = v;
                    break;
                case 9:
                    j->completed_at = v;
                    break;
                case 10:
                    j->lease_until = v;
                    break;
                default:
                    j->seq = v;
                    break;
                }
            }
        }
        if (rc != JOBQ_OK)
            return JOBQ_EPROTO;
    }
    return JOBQ_OK;
}
