/*  jobq_records.c: records to CSV, NDJSON and JSON, streaming. */
#include "jobq_records.h"

#include "jobq/jobq_types.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

//  The shortest of %.15g, %.16g, %.17g that reads back as v.
static void
s_double(double v, char *buf, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

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

//  The payload of the bin or ext value span (header skipped).
static jobq_bytes_t
s_bin_payload(jobq_bytes_t span)
{
    size_t h = span.ptr[0] == 0xc4 ? 2 : span.ptr[0] == 0xc5 ? 3 : 5;
    if (h > span.len)
        h = span.len;
    return (jobq_bytes_t){span.ptr + h, span.len - h};
}

static void
s_hex(FILE *out, jobq_bytes_t b)
{
    for (size_t i = 0; i < b.len; i++)
        fprintf(out, "%02x", b.ptr[i]);
}

//  A scalar as text (numbers, booleans); false for other kinds.
static bool
s_scalar_text(jobq_mp_reader_t *r, char *buf, size_t cap)
{
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    switch (jobq_mp_peek(r)) {
    case JOBQ_MP_UINT:
        jobq_mp_read_uint(r, &u);
        snprintf(buf, cap, "%llu", (unsigned long long) u);
        return true;
    case JOBQ_MP_INT:
        jobq_mp_read_int(r, &i);
        snprintf(buf, cap, "%lld", (long long) i);
        return true;
    case JOBQ_MP_FLOAT:
        jobq_mp_read_double(r, &d);
        if (isfinite(d))
            s_double(d, buf, cap);
        else
            buf[0] = '\0';
        return true;
    case JOBQ_MP_BOOL:
        jobq_mp_read_bool(r, &b);
        snprintf(buf, cap, "%s", b ? "true" : "false");
        return true;
    default:
        return false;
    }
}

//  One value as JSON; depth counts containers around it.
static int
s_json_value(FILE *out, jobq_mp_reader_t *r, int depth)
{
    char buf[64];
    jobq_str_t s;
    jobq_bytes_t span;
    uint32_t n;
    if (depth > JOBQ_MAX_DEPTH)
        return JOBQ_EINVAL;
    jobq_mp_type_t t = jobq_mp_peek(r);
    switch (t) {
    case JOBQ_MP_NIL:
        jobq_mp_read_nil(r);
        fputs("null", out);
        return JOBQ_OK;
    case JOBQ_MP_STR:
        jobq_mp_read_str(r, &s);
        s_json_string(out, s.ptr, s.len);
        return JOBQ_OK;
    case JOBQ_MP_BIN:
    case JOBQ_MP_EXT:
        if (jobq_mp_skip(r, &span) != JOBQ_OK)
            return JOBQ_EINVAL;
        if (t == JOBQ_MP_EXT) {
            fputs("null", out);
        } else {
            fputc('"', out);
            s_hex(out, s_bin_payload(span));
            fputc('"', out);
        }
        return JOBQ_OK;
    case JOBQ_MP_ARRAY:
        jobq_mp_read_array(r, &n);
        fputc('[', out);
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                fputc(',', out);
            int rc = s_json_value(out, r, depth + 1);
            if (rc != JOBQ_OK)
                return rc;
        }
        fputc(']', out);
        return JOBQ_OK;
    case JOBQ_MP_MAP:
        jobq_mp_read_map(r, &n);
        fputc('{', out);
        for (uint32_t i = 0; i < n; i++) {
            if (jobq_mp_read_str(r, &s) != JOBQ_OK)
                return JOBQ_EINVAL;
            if (i)
                fputc(',', out);
            s_json_string(out, s.ptr, s.len);
            fputc(':', out);
            int rc = s_json_value(out, r, depth + 1);
            if (rc != JOBQ_OK)
                return rc;
        }
        fputc('}', out);
        return JOBQ_OK;
    default:
        if (!s_scalar_text(r, buf, sizeof buf))
            return JOBQ_EINVAL;
        fputs(buf[0] ? buf : "null", out);  //  NaN and infinities: null
        return JOBQ_OK;
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
s_csv_value(FILE *out, jobq_mp_reader_t *r)
{
    char buf[64];
    jobq_str_t s;
    jobq_bytes_t span;
    switch (jobq_mp_peek(r)) {
    case JOBQ_MP_NIL:
        jobq_mp_read_nil(r);
        return JOBQ_OK;
    case JOBQ_MP_STR:
        jobq_mp_read_str(r, &s);
        return jobq_csv_field(out, s.ptr, s.len);
    case JOBQ_MP_BIN:
        if (jobq_mp_skip(r, &span) != JOBQ_OK)
            return JOBQ_EINVAL;
        s_hex(out, s_bin_payload(span));
        return JOBQ_OK;
    case JOBQ_MP_EXT:
        return jobq_mp_skip(r, NULL) == JOBQ_OK ? JOBQ_OK : JOBQ_EINVAL;
    case JOBQ_MP_ARRAY:
    case JOBQ_MP_MAP: {
        //  Nested values as JSON text, which then is one quoted field.
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (!mem)
            return JOBQ_ENOMEM;
        int rc = s_json_value(mem, r, 1);
        if (fclose(mem) != 0 && rc == JOBQ_OK)
            rc = JOBQ_ENOMEM;
        if (rc == JOBQ_OK)
            rc = jobq_csv_field(out, text, len);
        free(text);
        return rc;
    }
    default:
        if (!s_scalar_text(r, buf, sizeof buf))
            return JOBQ_EINVAL;
        fputs(buf, out);
        return JOBQ_OK;
    }
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
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, record.ptr, record.len);
    if (jobq_mp_peek(&r) != JOBQ_MP_MAP)
        return JOBQ_EINVAL;
    if (fmt == JOBQ_FORMAT_JSON)
        fputs(index ? ",\n" : "\n", out);
    if (fmt != JOBQ_FORMAT_CSV)
        fputc('{', out);
    for (size_t i = 0; i < f->count; i++) {
        jobq_bytes_t v;
        bool has = jobq_mp_map_find(record, f->names[i], &v) == JOBQ_OK;
        jobq_mp_reader_t vr;
        jobq_mp_reader_init(&vr, has ? v.ptr : NULL, has ? v.len : 0);
        int rc = JOBQ_OK;
        if (fmt == JOBQ_FORMAT_CSV) {
            if (i)
                fputc(',', out);
            if (has)
                rc = s_csv_value(out, &vr);
        } else {
            if (i)
                fputc(',', out);
            s_json_string(out, f->names[i], strlen(f->names[i]));
            fputc(':', out);
            if (has)
                rc = s_json_value(out, &vr, 1);
            else
                fputs("null", out);
        }
        if (rc != JOBQ_OK)
            return rc;
    }
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
