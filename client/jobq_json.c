/*  jobq_json.c: conversions between jansson values and msgpack.

    Both directions recurse, once per level of nesting, so the stack they
    use is bounded: JSON to msgpack stops at JOBQ_JSON_MAX_DEPTH, and
    msgpack to JSON reads only trees jobq_mp_unpack checked to be at most
    JOBQ_MAX_DEPTH deep.
*/
#include "jobq_json.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The longest str, bin or ext the protocol allows (docs/PROTOCOL.md 5.1).
#define S_MAX_STR (1u << 20)

//  What the replacement character U+FFFD is in UTF-8.
#define S_FFFD     "\xef\xbf\xbd"
#define S_FFFD_LEN 3

//  --- UTF-8 ------------------------------------------------------------------

//  The length of the valid UTF-8 sequence at p (n bytes left), or 0 if the
//  bytes there are not one (overlong forms and surrogates are refused).
static size_t
s_utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static bool
s_utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *) s;
    size_t i = 0;
    while (i < n) {
        size_t k = s_utf8_seq(p + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

//  A copy of s (n bytes) with each byte that is not part of a valid UTF-8
//  sequence replaced by U+FFFD, in a new buffer (free it); *out_len gets its
//  length. NULL if out of memory.
static char *
s_utf8_fix(const char *s, size_t n, size_t *out_len)
{
    const uint8_t *p = (const uint8_t *) s;
    char *buf = malloc(n * S_FFFD_LEN + 1);
    if (!buf)
        return NULL;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t k = s_utf8_seq(p + i, n - i);
        if (k) {
            memcpy(buf + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(buf + o, S_FFFD, S_FFFD_LEN);
            o += S_FFFD_LEN;
            i++;
        }
    }
    buf[o] = '\0';
    *out_len = o;
    return buf;
}

//  s (n bytes, maybe not UTF-8) as a JSON string, or NULL if out of memory.
static json_t *
s_text(const char *s, size_t n)
{
    if (s_utf8_valid(s, n))
        return json_stringn_nocheck(s, n);
    size_t len;
    char *fixed = s_utf8_fix(s, n, &len);
    if (!fixed)
        return NULL;
    json_t *j = json_stringn_nocheck(fixed, len);
    free(fixed);
    return j;
}

//  Set o[key] = item (taking item, even on failure). Returns 0 or -1.
static int
s_set_key(json_t *o, const char *key, size_t n, json_t *item)
{
    if (s_utf8_valid(key, n))
        return json_object_setn_new_nocheck(o, key, n, item);
    size_t len;
    char *fixed = s_utf8_fix(key, n, &len);
    if (!fixed) {
        json_decref(item);
        return -1;
    }
    int rc = json_object_setn_new_nocheck(o, fixed, len, item);
    free(fixed);
    return rc;
}

//  --- JSON to msgpack --------------------------------------------------------

typedef struct {
    jobq_mp_writer_t *w;  //  where the msgpack goes
    size_t elements;      //  array items and map entries so far, whole value
    char *err;            //  message on failure
    size_t errlen;        //  size of err, bytes
} s_enc_t;

static int s_enc_fail(s_enc_t *e, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_enc_fail(s_enc_t *e, int rc, const char *fmt, ...)
{
    if (e->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->err, e->errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

//  Write v, a value at nesting depth (the outermost object is 1).
static int
s_encode(s_enc_t *e, json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        bool is_map = json_is_object(v);
        size_t n = is_map ? json_object_size(v) : json_array_size(v);
        if (depth > JOBQ_JSON_MAX_DEPTH)
            return s_enc_fail(e, JOBQ_ETOOBIG,
                              "nested deeper than %d levels (objects and "
                              "arrays)",
                              JOBQ_JSON_MAX_DEPTH);
        if (n > JOBQ_MAX_CONTAINER)
            return s_enc_fail(
                e, JOBQ_ETOOBIG, "an %s of %zu entries (at most %d)",
                is_map ? "object" : "array", n, JOBQ_MAX_CONTAINER);
        e->elements += n;
        if (e->elements > JOBQ_MAX_ELEMENTS)
            return s_enc_fail(e, JOBQ_ETOOBIG,
                              "more than %d array items and object members "
                              "in all",
                              JOBQ_MAX_ELEMENTS);
        if (is_map) {
            jobq_mp_write_map(e->w, (uint32_t) n);
            const char *key;
            json_t *item;
            json_object_foreach(v, key, item)
            {
                jobq_mp_write_str(e->w, key, strlen(key));
                int rc = s_encode(e, item, depth + 1);
                if (rc != JOBQ_OK)
                    return rc;
            }
        } else {
            jobq_mp_write_array(e->w, (uint32_t) n);
            size_t i;
            json_t *item;
            json_array_foreach(v, i, item)
            {
                int rc = s_encode(e, item, depth + 1);
                if (rc != JOBQ_OK)
                    return rc;
            }
        }
        break;
    }
    case JSON_STRING: {
        size_t n = json_string_length(v);
        if (n > S_MAX_STR)
            return s_enc_fail(e, JOBQ_ETOOBIG,
                              "a string of %zu bytes (at most %u)", n,
                              S_MAX_STR);
        jobq_mp_write_str(e->w, json_string_value(v), n);
        break;
    }
    case JSON_INTEGER:
        jobq_mp_write_int(e->w, (int64_t) json_integer_value(v));
        break;
    case JSON_REAL:
        jobq_mp_write_double(e->w, json_real_value(v));
        break;
    case JSON_TRUE:
        jobq_mp_write_bool(e->w, true);
        break;
    case JSON_FALSE:
        jobq_mp_write_bool(e->w, false);
        break;
    case JSON_NULL:
    default:
        jobq_mp_write_nil(e->w);
        break;
    }
    //  The writer's errors are sticky; stop at the first.
    int rc = jobq_mp_writer_error(e->w);
    if (rc == JOBQ_ETOOBIG)
        return s_enc_fail(e, rc, "larger than %zu bytes as msgpack", e->w->max);
    if (rc != JOBQ_OK)
        return s_enc_fail(e, rc, "%s", jobq_strerror(rc));
    return JOBQ_OK;
}

int
jobq_json_to_mp(const char *text, jobq_mp_writer_t *w, char *err, size_t errlen)
{
    s_enc_t e = {w, 0, err, errlen};
    if (errlen)
        err[0] = '\0';
    json_error_t je;
    json_t *root =
        json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root)
        return s_enc_fail(&e, JOBQ_EINVAL, "not JSON: line %d, column %d: %s",
                          je.line, je.column, je.text);
    int rc;
    if (!json_is_object(root))
        rc = s_enc_fail(&e, JOBQ_EINVAL,
                        "must be a JSON object, like {\"ms\": 1000}");
    else
        rc = s_encode(&e, root, 1);
    json_decref(root);
    return rc;
}

//  --- msgpack to JSON --------------------------------------------------------

//  Bytes as a JSON string of lowercase hex digits; NULL if out of memory.
static json_t *
s_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 0xf];
    }
    s[2 * n] = '\0';
    json_t *j = json_stringn_nocheck(s, 2 * n);
    free(s);
    return j;
}

//  One value of a tree msgpack-c unpacked (after jobq_mp_check bounded its
//  depth, so this recursion is as deep as JOBQ_MAX_DEPTH at most).
static json_t *
s_decode(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 <= (uint64_t) INT64_MAX
                   ? json_integer((json_int_t) o->via.u64)
                   : json_real((double) o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32: {
        //  At its own precision: the double its shortest text reads as, so
        //  that 3.9f shows as 3.9. msgpack-c widened it exactly, so the
        //  narrowing is exact too.
        char num[JOBQ_MP_NUMBER_LEN];
        jobq_mp_format_float((float) o->via.f64, num);
        return json_real(strtod(num, NULL));  //  NaN, inf: NULL, as below
    }
    case MSGPACK_OBJECT_FLOAT64:
        //  JSON has no NaN or infinity; jansson refuses them (NULL).
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return s_text(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return s_hex((const uint8_t *) o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT: {
        json_t *hex = s_hex((const uint8_t *) o->via.ext.ptr, o->via.ext.size);
        json_t *e = hex ? json_object() : NULL;
        if (!e ||
            json_object_set_new(e, "ext", json_integer(o->via.ext.type)) ||
            json_object_set_new(e, "hex", hex)) {
            if (!e)
                json_decref(hex);
            json_decref(e);
            return NULL;
        }
        return e;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t k = 0; a && k < o->via.array.size; k++) {
            json_t *item = s_decode(&o->via.array.ptr[k]);
            if (!item || json_array_append_new(a, item) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t k = 0; m && k < o->via.map.size; k++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[k];
            json_t *item = NULL;
            //  jobq_mp_check let through string keys only.
            if (kv->key.type != MSGPACK_OBJECT_STR ||
                !(item = s_decode(&kv->val)) ||
                s_set_key(m, kv->key.via.str.ptr, kv->key.via.str.size, item) !=
                    0) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    default:
        return NULL;
    }
}

json_t *
jobq_json_from_mp(jobq_bytes_t b)
{
    if (!b.len)
        return json_null();
    const jobq_mp_limits_t lim = {JOBQ_MAX_DEPTH, JOBQ_MAX_CONTAINER,
                                  JOBQ_MAX_ELEMENTS, S_MAX_STR};
    msgpack_unpacked tree;
    msgpack_unpacked_init(&tree);
    json_t *j = NULL;
    if (jobq_mp_unpack(b.ptr, b.len, &lim, &tree, NULL) == JOBQ_OK)
        j = s_decode(&tree.data);
    msgpack_unpacked_destroy(&tree);
    return j;
}

//  --- JSON text --------------------------------------------------------------

//  The bytes a JSON number is made of.
#define S_NUMBER_BYTES "+-.0123456789eE"

char *
jobq_json_dumps(const json_t *j, size_t flags)
{
    //  jansson writes a real with %.17g, which reads back as the same
    //  double, and adds ".0" to a whole one; an integer has neither '.' nor
    //  'e'. Outside strings, then, each number token with one of them is a
    //  real: it is read back and written again, shortest. Strings, whose
    //  quotes and backslashes are escaped, are copied as they are.
    char *text = json_dumps(j, flags & ~(size_t) JSON_REAL_PRECISION(31));
    if (!text)
        return NULL;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) {
        free(text);
        return NULL;
    }
    bool in_string = false;
    for (const char *p = text; *p;) {
        if (in_string) {
            size_t n = strcspn(p, "\"\\");
            fwrite(p, 1, n, f);
            p += n;
            if (p[0] == '\\' && p[1]) {
                fwrite(p, 1, 2, f);
                p += 2;
            } else if (*p) {
                in_string = *p != '"';
                fputc(*p++, f);
            }
        } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
            size_t n = strspn(p, S_NUMBER_BYTES);
            if (memchr(p, '.', n) || memchr(p, 'e', n) || memchr(p, 'E', n)) {
                char num[JOBQ_MP_NUMBER_LEN];
                fputs(jobq_mp_format_double(strtod(p, NULL), num), f);
                if (!strpbrk(num, ".e"))
                    fputs(".0", f);  //  still a real when read back
            } else {
                fwrite(p, 1, n, f);
            }
            p += n;
        } else {
            in_string = *p == '"';
            fputc(*p++, f);
        }
    }
    free(text);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

//  --- the job object ---------------------------------------------------------

//  A time in ms since the epoch, or null for 0 (never).
static json_t *
s_time(uint64_t ms)
{
    return ms ? json_integer((json_int_t) ms) : json_null();
}

//  A C string, or null for NULL.
static json_t *
s_opt(const char *s)
{
    return s ? s_text(s, strlen(s)) : json_null();
}

//  An encoded value as JSON, null when absent or unreadable.
static json_t *
s_value(jobq_bytes_t b)
{
    json_t *j = jobq_json_from_mp(b);
    return j ? j : json_null();
}

json_t *
jobq_json_job(const jobq_job_info_t *job)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_t *errors = job->errors.len ? jobq_json_from_mp(job->errors) : NULL;
    if (!json_is_array(errors)) {
        json_decref(errors);
        errors = json_array();
    }
    //  json_object_set_new takes each value and fails on a NULL one (out of
    //  memory), so one check at the end covers every allocation.
    int bad = 0;
    bad |= json_object_set_new(o, "id", s_text(job->id, strlen(job->id)));
    bad |= json_object_set_new(o, "type", s_text(job->type, strlen(job->type)));
    bad |= json_object_set_new(o, "status",
                               json_string(jobq_status_name(job->status)));
    bad |= json_object_set_new(o, "shop_id",
                               s_text(job->shop_id, strlen(job->shop_id)));
    bad |= json_object_set_new(o, "input", s_value(job->input));
    bad |= json_object_set_new(o, "output", s_value(job->output));
    bad |= json_object_set_new(o, "progress", json_integer(job->progress));
    bad |= json_object_set_new(o, "message", s_opt(job->message));
    bad |= json_object_set_new(o, "error", s_opt(job->error));
    bad |= json_object_set_new(o, "errors", errors);
    bad |= json_object_set_new(o, "attempts", json_integer(job->attempts));
    bad |=
        json_object_set_new(o, "max_attempts", json_integer(job->max_attempts));
    bad |= json_object_set_new(o, "priority", json_integer(job->priority));
    bad |= json_object_set_new(o, "run_at", s_time(job->run_at));
    bad |= json_object_set_new(o, "timeout",
                               json_integer((json_int_t) job->timeout_ms));
    bad |= json_object_set_new(o, "key", s_opt(job->key));
    bad |= json_object_set_new(o, "created_at", s_time(job->created_at));
    bad |= json_object_set_new(o, "updated_at", s_time(job->updated_at));
    bad |= json_object_set_new(o, "started_at", s_time(job->started_at));
    bad |= json_object_set_new(o, "completed_at", s_time(job->completed_at));
    bad |= json_object_set_new(o, "worker", s_opt(job->worker));
    bad |= json_object_set_new(o, "lease_until", s_time(job->lease_until));
    bad |= json_object_set_new(o, "version", json_integer(job->version));
    if (job->wait > JOBQ_WAIT_NONE) {
        json_t *w = json_object();
        bad |= !w;
        if (w) {
            bad |= json_object_set_new(w, "reason",
                                       json_string(jobq_wait_name(job->wait)));
            bad |= json_object_set_new(w, "until", s_time(job->wait_until));
            bad |= json_object_set_new(o, "wait", w);
        }
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
