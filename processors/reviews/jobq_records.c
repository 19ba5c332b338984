/*  jobq_records.c: records to CSV, NDJSON and JSON, streaming. Each record
    is checked and unpacked with msgpack-c (jobq_mp_unpack) on its own, so
    memory follows one record, not the list. */
#include "jobq_records.h"

#include "jobq/jobq_types.h"

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

//  What one record may hold: the protocol's limits for a body.
static const jobq_mp_limits_t s_limits = {JOBQ_MAX_DEPTH, JOBQ_MAX_CONTAINER,
                                          JOBQ_MAX_ELEMENTS,
                                          JOBQ_MAX_OUTPUT_BYTES};

int
jobq_format_parse(const char *s, size_t len, jobq_format_t *f)
{
    static const char *const names[] = {"csv", "ndjson", "json"};
    for (int i = 0; i < 3; i++) {
        if (len == strlen(names[i]) && memcmp(s, names[i], len) == 0) {
            *f = (jobq_format_t) i;
            return JOBQ_OK;
        }
    }
    return JOBQ_EINVAL;
}

const char *
jobq_format_name(jobq_format_t f)
{
    return f == JOBQ_FORMAT_NDJSON ? "ndjson"
           : f == JOBQ_FORMAT_JSON ? "json"
                                   : "csv";
}

//  --- finding the records ---------------------------------------------------

//  Whether the array at r holds only maps; consumes it either way.
static bool
s_all_maps(jobq_mp_reader_t *r, uint32_t *count, uint32_t *bad)
{
    uint32_t n;
    if (jobq_mp_read_array(r, &n) != JOBQ_OK)
        return false;
    bool ok = true;
    for (uint32_t i = 0; i < n; i++) {
        if (ok && jobq_mp_peek(r) != JOBQ_MP_MAP) {
            ok = false;
            *bad = i;
        }
        if (jobq_mp_skip(r, NULL) != JOBQ_OK)
            return false;
    }
    *count = n;
    return ok;
}

int
jobq_records_find(jobq_bytes_t output,
                  const char *key,
                  jobq_bytes_t *list,
                  uint32_t *count,
                  char *why,
                  size_t whylen)
{
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, output.ptr, output.len);
    uint32_t n;
    if (jobq_mp_read_map(&r, &n) != JOBQ_OK) {
        snprintf(why, whylen, "the output is not a map");
        return JOBQ_EINVAL;
    }
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t k;
        if (jobq_mp_read_str(&r, &k) != JOBQ_OK) {
            snprintf(why, whylen, "the output is not a valid map");
            return JOBQ_EINVAL;
        }
        bool named =
            key && strlen(key) == k.len && memcmp(key, k.ptr, k.len) == 0;
        jobq_mp_reader_t at = r;
        jobq_bytes_t span;
        if (jobq_mp_skip(&r, &span) != JOBQ_OK) {
            snprintf(why, whylen, "the output is not a valid map");
            return JOBQ_EINVAL;
        }
        if (key && !named)
            continue;
        if (jobq_mp_peek(&at) != JOBQ_MP_ARRAY) {
            if (!named)
                continue;
            snprintf(why, whylen, "'%s' in the output is not a list", key);
            return JOBQ_EINVAL;
        }
        uint32_t bad = 0;
        if (s_all_maps(&at, count, &bad)) {
            *list = span;
            return JOBQ_OK;
        }
        if (named) {
            snprintf(why, whylen, "item %u of '%s' is not a map", bad, key);
            return JOBQ_EINVAL;
        }
    }
    if (key)
        snprintf(why, whylen, "the output has no '%s'", key);
    else
        snprintf(why, whylen, "the output has no list of records");
    return JOBQ_ENOTFOUND;
}

//  --- fields
//  ------------------------------------------------------------------

static bool
s_has_field(const jobq_fields_t *f, const char *name, size_t len)
{
    for (size_t i = 0; i < f->count; i++)
        if (strlen(f->names[i]) == len && memcmp(f->names[i], name, len) == 0)
            return true;
    return false;
}

int
jobq_fields_add(jobq_fields_t *f, const char *name, size_t len)
{
    if (len == 0 || len > JOBQ_RECORDS_MAX_FIELD_LEN || memchr(name, 0, len))
        return JOBQ_EINVAL;
    if (s_has_field(f, name, len))
        return JOBQ_EEXIST;
    if (f->count == JOBQ_RECORDS_MAX_FIELDS)
        return JOBQ_ETOOBIG;
    char *s = malloc(len + 1);
    if (!s)
        return JOBQ_ENOMEM;
    memcpy(s, name, len);
    s[len] = '\0';
    f->names[f->count++] = s;
    return JOBQ_OK;
}

int
jobq_fields_from_records(jobq_fields_t *f, jobq_bytes_t list)
{
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, list.ptr, list.len);
    uint32_t n, m;
    if (jobq_mp_read_array(&r, &n) != JOBQ_OK)
        return JOBQ_EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        if (jobq_mp_read_map(&r, &m) != JOBQ_OK)
            return JOBQ_EINVAL;
        for (uint32_t j = 0; j < m; j++) {
            jobq_str_t k;
            if (jobq_mp_read_str(&r, &k) != JOBQ_OK ||
                jobq_mp_skip(&r, NULL) != JOBQ_OK)
                return JOBQ_EINVAL;
            int rc = jobq_fields_add(f, k.ptr, k.len);
            if (rc == JOBQ_ETOOBIG || rc == JOBQ_ENOMEM)
                return rc;
        }
    }
    return JOBQ_OK;
}

void
jobq_fields_clear(jobq_fields_t *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->names[i]);
    memset(f, 0, sizeof *f);
}

//  --- values ----------------------------------------------------------------

//  Bytes in the valid UTF-8 sequence at p (at most n bytes), 0 if invalid.
static size_t
s_utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

static void
s_json_string(FILE *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s;
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
        } else if (c == '\n') {
            fputs("\\n", out);
        } else if (c == '\r') {
            fputs("\\r", out);
        } else if (c == '\t') {
            fputs("\\t", out);
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
        } else if (c < 0x80) {
            fputc(c, out);
        } else {
            size_t len = s_utf8_len(p + i, n - i);
            if (len == 0) {
                fputs("\xef\xbf\xbd", out);  //  U+FFFD
                i++;
                continue;
            }
            fwrite(p + i, 1, len, out);
            i += len;
            continue;
        }
        i++;
    }
    fputc('"', out);
}

static void
s_hex(FILE *out, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", (unsigned char) p[i]);
}

//  A scalar as text (numbers, booleans); false for other kinds. cap is at
//  least JOBQ_MP_NUMBER_LEN.
static bool
s_scalar_text(const msgpack_object *o, char *buf, size_t cap)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(buf, cap, "%llu", (unsigned long long) o->via.u64);
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(buf, cap, "%lld", (long long) o->via.i64);
        return true;
    case MSGPACK_OBJECT_FLOAT32:
        //  msgpack-c widened the float to f64 exactly: narrowing is too.
        if (isfinite(o->via.f64))
            jobq_mp_format_float((float) o->via.f64, buf);
        else
            buf[0] = '\0';
        return true;
    case MSGPACK_OBJECT_FLOAT64:
        if (isfinite(o->via.f64))
            jobq_mp_format_double(o->via.f64, buf);
        else
            buf[0] = '\0';
        return true;
    case MSGPACK_OBJECT_BOOLEAN:
        snprintf(buf, cap, "%s", o->via.boolean ? "true" : "false");
        return true;
    default:
        return false;
    }
}

//  One value as JSON; jobq_mp_unpack bounded its depth, and so this
//  recursion.
static void
s_json_value(FILE *out, const msgpack_object *o)
{
    char buf[64];
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
    case MSGPACK_OBJECT_EXT:
        fputs("null", out);
        return;
    case MSGPACK_OBJECT_STR:
        s_json_string(out, o->via.str.ptr, o->via.str.size);
        return;
    case MSGPACK_OBJECT_BIN:
        fputc('"', out);
        s_hex(out, o->via.bin.ptr, o->via.bin.size);
        fputc('"', out);
        return;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', out);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                fputc(',', out);
            s_json_value(out, &o->via.array.ptr[i]);
        }
        fputc(']', out);
        return;
    case MSGPACK_OBJECT_MAP:
        fputc('{', out);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (i)
                fputc(',', out);
            //  jobq_mp_unpack let through string keys only.
            s_json_string(out, kv->key.via.str.ptr, kv->key.via.str.size);
            fputc(':', out);
            s_json_value(out, &kv->val);
        }
        fputc('}', out);
        return;
    default:
        s_scalar_text(o, buf, sizeof buf);
        fputs(buf[0] ? buf : "null", out);  //  NaN and infinities: null
        return;
    }
}

int
jobq_csv_field(FILE *out, const char *s, size_t len)
{
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        fwrite(s, 1, len, out);
    } else {
        fputc('"', out);
        for (size_t i = 0; i < len; i++) {
            if (s[i] == '"')
                fputc('"', out);
            fputc(s[i], out);
        }
        fputc('"', out);
    }
    return ferror(out) ? JOBQ_ESTORAGE : JOBQ_OK;
}

//  One value as a CSV field.
static int
s_csv_value(FILE *out, const msgpack_object *o)
{
    char buf[64];
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
    case MSGPACK_OBJECT_EXT:
        return JOBQ_OK;
    case MSGPACK_OBJECT_STR:
        return jobq_csv_field(out, o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        s_hex(out, o->via.bin.ptr, o->via.bin.size);
        return JOBQ_OK;
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP: {
        //  Nested values as JSON text, which then is one quoted field.
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (!mem)
            return JOBQ_ENOMEM;
        s_json_value(mem, o);
        int rc =
            fclose(mem) == 0 ? jobq_csv_field(out, text, len) : JOBQ_ENOMEM;
        free(text);
        return rc;
    }
    default:
        s_scalar_text(o, buf, sizeof buf);
        fputs(buf, out);
        return JOBQ_OK;
    }
}

//  The value of key name in map m, or NULL.
static const msgpack_object *
s_field(const msgpack_object *m, const char *name)
{
    size_t n = strlen(name);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, name, n) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

int
jobq_records_begin(FILE *out, jobq_format_t fmt, const jobq_fields_t *f)
{
    if (fmt == JOBQ_FORMAT_JSON) {
        fputc('[', out);
    } else if (fmt == JOBQ_FORMAT_CSV && f->count > 0) {
        for (size_t i = 0; i < f->count; i++) {
            if (i)
                fputc(',', out);
            jobq_csv_field(out, f->names[i], strlen(f->names[i]));
        }
        fputs("\r\n", out);
    }
    return ferror(out) ? JOBQ_ESTORAGE : JOBQ_OK;
}

int
jobq_records_row(FILE *out,
                 jobq_format_t fmt,
                 const jobq_fields_t *f,
                 jobq_bytes_t record,
                 uint64_t index)
{
    msgpack_unpacked tree;
    msgpack_unpacked_init(&tree);
    int rc = jobq_mp_unpack(record.ptr, record.len, &s_limits, &tree, NULL);
    if (rc == JOBQ_OK && tree.data.type != MSGPACK_OBJECT_MAP)
        rc = JOBQ_EINVAL;
    if (rc != JOBQ_OK) {
        msgpack_unpacked_destroy(&tree);
        return rc == JOBQ_ENOMEM ? rc : JOBQ_EINVAL;
    }
    if (fmt == JOBQ_FORMAT_JSON)
        fputs(index ? ",\n" : "\n", out);
    if (fmt != JOBQ_FORMAT_CSV)
        fputc('{', out);
    for (size_t i = 0; i < f->count && rc == JOBQ_OK; i++) {
        const msgpack_object *v = s_field(&tree.data, f->names[i]);
        if (i)
            fputc(',', out);
        if (fmt == JOBQ_FORMAT_CSV) {
            if (v)
                rc = s_csv_value(out, v);
        } else {
            s_json_string(out, f->names[i], strlen(f->names[i]));
            fputc(':', out);
            if (v)
                s_json_value(out, v);
            else
                fputs("null", out);
        }
    }
    msgpack_unpacked_destroy(&tree);
    if (rc != JOBQ_OK)
        return rc;
    if (fmt == JOBQ_FORMAT_CSV)
        fputs("\r\n", out);
    else
        fputs(fmt == JOBQ_FORMAT_NDJSON ? "}\n" : "}", out);
    return ferror(out) ? JOBQ_ESTORAGE : JOBQ_OK;
}

int
jobq_records_end(FILE *out, jobq_format_t fmt, uint64_t rows)
{
    if (fmt == JOBQ_FORMAT_JSON)
        fputs(rows ? "\n]\n" : "]\n", out);
    return ferror(out) ? JOBQ_ESTORAGE : JOBQ_OK;
}
