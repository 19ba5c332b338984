/*  jobq_mp.c: the bounded msgpack validator and reader, the writer on
    msgpack-c's packer (jobq_mp.h says why the reader is our own), and
    numbers as text. */
#include "jobq/jobq_mp.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The deepest nesting any caller may ask for; the check's stack is a fixed
//  array of this many entries, so it never allocates.
#define S_DEPTH_CAP 64

static uint64_t
s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

//  Decode the header at p. Sets *hdr (header bytes), *body (payload bytes
//  that follow: string/bin/ext data, scalar width) and *items (child values
//  for containers, map entries counted twice). Returns the kind, or
//  JOBQ_MP_NONE if the header is truncated or reserved.
static jobq_mp_type_t
s_header(const uint8_t *p,
         const uint8_t *end,
         size_t *hdr,
         uint64_t *body,
         uint64_t *items)
{
    size_t avail = (size_t) (end - p);
    if (avail < 1)
        return JOBQ_MP_NONE;
    uint8_t b = p[0];
    *hdr = 1;
    *body = 0;
    *items = 0;
    if (b <= 0x7f)
        return JOBQ_MP_UINT;
    if (b >= 0xe0)
        return JOBQ_MP_INT;
    if (b <= 0x8f) {
        *items = 2u * (b & 0x0fu);
        return JOBQ_MP_MAP;
    }
    if (b <= 0x9f) {
        *items = b & 0x0fu;
        return JOBQ_MP_ARRAY;
    }
    if (b <= 0xbf) {
        *body = b & 0x1fu;
        return JOBQ_MP_STR;
    }
    size_t w = 0;  //  width of the length field
    jobq_mp_type_t t = JOBQ_MP_NONE;
    switch (b) {
    case 0xc0:
        return JOBQ_MP_NIL;
    case 0xc2:
    case 0xc3:
        return JOBQ_MP_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        w = (size_t) 1 << (b - 0xc4);
        t = JOBQ_MP_BIN;
        break;
    case 0xc7:
    case 0xc8:
    case 0xc9:
        w = (size_t) 1 << (b - 0xc7);
        t = JOBQ_MP_EXT;
        break;
    case 0xca:
        *body = 4;
        return JOBQ_MP_FLOAT;
    case 0xcb:
        *body = 8;
        return JOBQ_MP_FLOAT;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        *body = (uint64_t) 1 << (b - 0xcc);
        return JOBQ_MP_UINT;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        *body = (uint64_t) 1 << (b - 0xd0);
        return JOBQ_MP_INT;  //  sign decided when read
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        *body = 1 + ((uint64_t) 1 << (b - 0xd4));
        return JOBQ_MP_EXT;
    case 0xd9:
    case 0xda:
    case 0xdb:
        w = (size_t) 1 << (b - 0xd9);
        t = JOBQ_MP_STR;
        break;
    case 0xdc:
    case 0xdd:
        w = (b == 0xdc) ? 2 : 4;
        t = JOBQ_MP_ARRAY;
        break;
    case 0xde:
    case 0xdf:
        w = (b == 0xde) ? 2 : 4;
        t = JOBQ_MP_MAP;
        break;
    default:  //  0xc1, reserved
        return JOBQ_MP_NONE;
    }
    if (avail < 1 + w)
        return JOBQ_MP_NONE;
    uint64_t n = s_be(p + 1, w);
    *hdr = 1 + w;
    if (t == JOBQ_MP_ARRAY)
        *items = n;
    else if (t == JOBQ_MP_MAP)
        *items = 2 * n;
    else if (t == JOBQ_MP_EXT)
        *body = n + 1;  //  the type byte
    else
        *body = n;
    return t;
}

int
jobq_mp_check(const uint8_t *buf,
              size_t len,
              const jobq_mp_limits_t *lim,
              const char **why)
{
    struct {
        uint64_t left;  //  values still to come in this container
        int map;        //  1 if a map (keys at even positions)
    } stack[S_DEPTH_CAP + 1];
    const char *dummy;
    if (!why)
        why = &dummy;
    uint32_t max_depth =
        lim->max_depth < S_DEPTH_CAP ? lim->max_depth : S_DEPTH_CAP;
    const uint8_t *p = buf, *end = buf + len;
    uint64_t total = 0;
    int sp = 0;
    stack[0].left = 1;
    stack[0].map = 0;
    while (sp >= 0) {
        if (stack[sp].left == 0) {
            sp--;
            continue;
        }
        int want_key = stack[sp].map && (stack[sp].left % 2 == 0);
        stack[sp].left--;
        size_t hdr;
        uint64_t body, items;
        if (p >= end) {
            *why = "truncated";
            return JOBQ_EINVAL;
        }
        if (*p == 0xc1) {
            *why = "reserved byte 0xc1";
            return JOBQ_EINVAL;
        }
        jobq_mp_type_t t = s_header(p, end, &hdr, &body, &items);
        if (t == JOBQ_MP_NONE) {
            *why = "truncated";
            return JOBQ_EINVAL;
        }
        if (want_key && t != JOBQ_MP_STR) {
            *why = "map key is not a string";
            return JOBQ_EINVAL;
        }
        p += hdr;
        size_t rest = (size_t) (end - p);
        if (t == JOBQ_MP_STR || t == JOBQ_MP_BIN || t == JOBQ_MP_EXT) {
            //  An ext's body includes its type byte; the limit is on data.
            uint64_t data = (t == JOBQ_MP_EXT) ? body - 1 : body;
            if (data > lim->max_str) {
                *why = "string too long";
                return JOBQ_ETOOBIG;
            }
        }
        if (body > rest) {
            *why = "truncated";
            return JOBQ_EINVAL;
        }
        p += body;
        if (t == JOBQ_MP_ARRAY || t == JOBQ_MP_MAP) {
            //  This container sits at depth sp + 1 (the outermost at 1),
            //  empty or not.
            if ((uint32_t) sp + 1 > max_depth) {
                *why = "nested too deep";
                return JOBQ_ETOOBIG;
            }
            uint64_t entries = (t == JOBQ_MP_MAP) ? items / 2 : items;
            if (entries > lim->max_container) {
                *why = "container too large";
                return JOBQ_ETOOBIG;
            }
            //  Every value takes at least one byte: a count above the bytes
            //  left is a lie, rejected before anyone allocates for it.
            if (items > (uint64_t) (end - p)) {
                *why = "truncated";
                return JOBQ_EINVAL;
            }
            total += entries;
            if (total > lim->max_elements) {
                *why = "too many elements";
                return JOBQ_ETOOBIG;
            }
            if (items > 0) {
                sp++;
                stack[sp].left = items;
                stack[sp].map = (t == JOBQ_MP_MAP);
            }
        }
    }
    if (p != end) {
        *why = "trailing bytes";
        return JOBQ_EINVAL;
    }
    return JOBQ_OK;
}

int
jobq_mp_unpack(const uint8_t *buf,
               size_t len,
               const jobq_mp_limits_t *lim,
               struct msgpack_unpacked *result,
               const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    int rc = jobq_mp_check(buf, len, lim, why);
    if (rc != JOBQ_OK)
        return rc;
    size_t off = 0;
    msgpack_unpack_return u =
        msgpack_unpack_next(result, (const char *) buf, len, &off);
    if (u == MSGPACK_UNPACK_SUCCESS && off == len)
        return JOBQ_OK;
    //  The check passed, so only memory can be short here.
    *why = u == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory" : "malformed";
    return u == MSGPACK_UNPACK_NOMEM_ERROR ? JOBQ_ENOMEM : JOBQ_EINVAL;
}

void
jobq_mp_reader_init(jobq_mp_reader_t *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = r->p + len;
}

jobq_mp_type_t
jobq_mp_peek(const jobq_mp_reader_t *r)
{
    size_t hdr;
    uint64_t body, items;
    if (r->p >= r->end)
        return JOBQ_MP_NONE;
    jobq_mp_type_t t = s_header(r->p, r->end, &hdr, &body, &items);
    //  int8..int64 with a non-negative value read as UINT
    if (t == JOBQ_MP_INT && r->p[0] >= 0xd0 && r->p[0] <= 0xd3) {
        if (r->end - r->p < (ptrdiff_t) (1 + body))
            return JOBQ_MP_NONE;
        if (!(r->p[1] & 0x80))
            return JOBQ_MP_UINT;
    }
    return t;
}

static int
s_container(jobq_mp_reader_t *r, jobq_mp_type_t want, uint32_t *n)
{
    size_t hdr;
    uint64_t body, items;
    if (r->p >= r->end)
        return JOBQ_EPROTO;
    if (s_header(r->p, r->end, &hdr, &body, &items) != want)
        return JOBQ_EPROTO;
    uint64_t count = (want == JOBQ_MP_MAP) ? items / 2 : items;
    if (count > UINT32_MAX)
        return JOBQ_EPROTO;
    *n = (uint32_t) count;
    r->p += hdr;
    return JOBQ_OK;
}

int
jobq_mp_read_map(jobq_mp_reader_t *r, uint32_t *n)
{
    return s_container(r, JOBQ_MP_MAP, n);
}

int
jobq_mp_read_array(jobq_mp_reader_t *r, uint32_t *n)
{
    return s_container(r, JOBQ_MP_ARRAY, n);
}

int
jobq_mp_read_str(jobq_mp_reader_t *r, jobq_str_t *s)
{
    size_t hdr;
    uint64_t body, items;
    if (r->p >= r->end)
        return JOBQ_EPROTO;
    if (s_header(r->p, r->end, &hdr, &body, &items) != JOBQ_MP_STR)
        return JOBQ_EPROTO;
    if (body > (uint64_t) (r->end - r->p) - hdr)
        return JOBQ_EPROTO;
    s->ptr = (const char *) r->p + hdr;
    s->len = (size_t) body;
    r->p += hdr + body;
    return JOBQ_OK;
}

//  Read any integer as a sign flag and a magnitude-preserving pair.
static int
s_integer(jobq_mp_reader_t *r, int *neg, uint64_t *u, int64_t *i)
{
    if (r->p >= r->end)
        return JOBQ_EPROTO;
    uint8_t b = r->p[0];
    size_t avail = (size_t) (r->end - r->p);
    if (b <= 0x7f) {
        *neg = 0;
        *u = b;
        r->p += 1;
        return JOBQ_OK;
    }
    if (b >= 0xe0) {
        *neg = 1;
        *i = (int8_t) b;
        r->p += 1;
        return JOBQ_OK;
    }
    if (b >= 0xcc && b <= 0xcf) {
        size_t w = (size_t) 1 << (b - 0xcc);
        if (avail < 1 + w)
            return JOBQ_EPROTO;
        *neg = 0;
        *u = s_be(r->p + 1, w);
        r->p += 1 + w;
        return JOBQ_OK;
    }
    if (b >= 0xd0 && b <= 0xd3) {
        size_t w = (size_t) 1 << (b - 0xd0);
        if (avail < 1 + w)
            return JOBQ_EPROTO;
        uint64_t raw = s_be(r->p + 1, w);
        int64_t v;
        if (w < 8 && (raw & ((uint64_t) 1 << (w * 8 - 1))))
            raw |= ~(((uint64_t) 1 << (w * 8)) - 1);  //  sign-extend
        memcpy(&v, &raw, sizeof v);
        if (v >= 0) {
            *neg = 0;
            *u = (uint64_t) v;
        } else {
            *neg = 1;
            *i = v;
        }
        r->p += 1 + w;
        return JOBQ_OK;
    }
    return JOBQ_EPROTO;
}

int
jobq_mp_read_uint(jobq_mp_reader_t *r, uint64_t *v)
{
    const uint8_t *save = r->p;
    int neg;
    uint64_t u = 0;
    int64_t i = 0;
    if (s_integer(r, &neg, &u, &i) != JOBQ_OK)
        return JOBQ_EPROTO;
    if (neg) {
        r->p = save;
        return JOBQ_EPROTO;
    }
    *v = u;
    return JOBQ_OK;
}

int
jobq_mp_read_int(jobq_mp_reader_t *r, int64_t *v)
{
    const uint8_t *save = r->p;
    int neg;
    uint64_t u = 0;
    int64_t i = 0;
    if (s_integer(r, &neg, &u, &i) != JOBQ_OK)
        return JOBQ_EPROTO;
    if (!neg && u > INT64_MAX) {
        r->p = save;
        return JOBQ_EPROTO;
    }
    *v = neg ? i : (int64_t) u;
    return JOBQ_OK;
}

int
jobq_mp_read_double(jobq_mp_reader_t *r, double *v)
{
    if (r->p >= r->end)
        return JOBQ_EPROTO;
    uint8_t b = r->p[0];
    size_t avail = (size_t) (r->end - r->p);
    if (b == 0xca && avail >= 5) {
        uint32_t bits = (uint32_t) s_be(r->p + 1, 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        *v = f;
        r->p += 5;
        return JOBQ_OK;
    }
    if (b == 0xcb && avail >= 9) {
        uint64_t bits = s_be(r->p + 1, 8);
        memcpy(v, &bits, sizeof *v);
        r->p += 9;
        return JOBQ_OK;
    }
    int64_t i;
    if (jobq_mp_read_int(r, &i) == JOBQ_OK) {
        *v = (double) i;
        return JOBQ_OK;
    }
    return JOBQ_EPROTO;
}

int
jobq_mp_read_bool(jobq_mp_reader_t *r, bool *v)
{
    if (r->p >= r->end || (r->p[0] != 0xc2 && r->p[0] != 0xc3))
        return JOBQ_EPROTO;
    *v = r->p[0] == 0xc3;
    r->p++;
    return JOBQ_OK;
}

bool
jobq_mp_read_nil(jobq_mp_reader_t *r)
{
    if (r->p < r->end && r->p[0] == 0xc0) {
        r->p++;
        return true;
    }
    return false;
}

int
jobq_mp_skip(jobq_mp_reader_t *r, jobq_bytes_t *span)
{
    const uint8_t *p = r->p;
    uint64_t left = 1;  //  values still to skip
    while (left > 0) {
        size_t hdr;
        uint64_t body, items;
        if (s_header(p, r->end, &hdr, &body, &items) == JOBQ_MP_NONE)
            return JOBQ_EPROTO;
        if (body > (uint64_t) (r->end - p) - hdr)
            return JOBQ_EPROTO;
        p += hdr + body;
        left = left - 1 + items;
        //  A count larger than the bytes left can never be satisfied.
        if (left > (uint64_t) (r->end - p))
            return JOBQ_EPROTO;
    }
    if (span) {
        span->ptr = r->p;
        span->len = (size_t) (p - r->p);
    }
    r->p = p;
    return JOBQ_OK;
}

int
jobq_mp_map_find(jobq_bytes_t map, const char *key, jobq_bytes_t *val)
{
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, map.ptr, map.len);
    uint32_t n;
    if (jobq_mp_read_map(&r, &n) != JOBQ_OK)
        return JOBQ_EPROTO;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t k;
        if (jobq_mp_read_str(&r, &k) != JOBQ_OK) {
            if (jobq_mp_skip(&r, NULL) != JOBQ_OK)
                return JOBQ_EPROTO;
        } else if (k.len == klen && memcmp(k.ptr, key, klen) == 0) {
            return jobq_mp_skip(&r, val) == JOBQ_OK ? JOBQ_OK : JOBQ_EPROTO;
        }
        if (jobq_mp_skip(&r, NULL) != JOBQ_OK)
            return JOBQ_EPROTO;
    }
    return JOBQ_ENOTFOUND;
}

//  --- writer -----------------------------------------------------------

void
jobq_mp_writer_init(jobq_mp_writer_t *w, size_t max_bytes)
{
    memset(w, 0, sizeof *w);
    w->max = max_bytes;
}

void
jobq_mp_writer_fini(jobq_mp_writer_t *w)
{
    free(w->data);
    memset(w, 0, sizeof *w);
}

void
jobq_mp_writer_reset(jobq_mp_writer_t *w)
{
    w->len = 0;
    w->err = JOBQ_OK;
}

int
jobq_mp_writer_error(const jobq_mp_writer_t *w)
{
    return w->err;
}

static uint8_t *
s_room(jobq_mp_writer_t *w, size_t n)
{
    if (w->err)
        return NULL;
    if (n > w->max || w->len > w->max - n) {
        w->err = JOBQ_ETOOBIG;
        return NULL;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        if (cap > w->max)
            cap = w->max;
        uint8_t *d = realloc(w->data, cap);
        if (!d) {
            w->err = JOBQ_ENOMEM;
            return NULL;
        }
        w->data = d;
        w->cap = cap;
    }
    uint8_t *at = w->data + w->len;
    w->len += n;
    return at;
}

//  msgpack-c's packer writes through this sink into the bounded buffer.
//  Inlined into each writer, the copy is of a known size: a header costs
//  a store or two, not a call.
static inline __attribute__((always_inline)) int
s_sink(void *data, const char *buf, size_t len)
{
    jobq_mp_writer_t *w = data;
    uint8_t *p = s_room(w, len);
    if (!p)
        return -1;
    memcpy(p, buf, len);
    return 0;
}

//  A packer for w: two pointers, made where it is used so that the
//  compiler sees the sink and calls it directly.
#define S_PACKER(w) msgpack_packer pk = {(w), s_sink}

//  Lengths above 32 bits do not fit msgpack: the writer fails instead of
//  letting a count wrap.
static bool
s_fits(jobq_mp_writer_t *w, size_t n)
{
    if (n <= UINT32_MAX)
        return true;
    if (!w->err)
        w->err = JOBQ_ETOOBIG;
    return false;
}

void
jobq_mp_write_map(jobq_mp_writer_t *w, uint32_t n)
{
    S_PACKER(w);
    msgpack_pack_map(&pk, n);
}

void
jobq_mp_write_array(jobq_mp_writer_t *w, uint32_t n)
{
    S_PACKER(w);
    msgpack_pack_array(&pk, n);
}

void
jobq_mp_write_str(jobq_mp_writer_t *w, const char *s, size_t len)
{
    if (!s_fits(w, len))
        return;
    S_PACKER(w);
    if (msgpack_pack_str(&pk, len) == 0 && len)
        msgpack_pack_str_body(&pk, s, len);
}

void
jobq_mp_write_cstr(jobq_mp_writer_t *w, const char *s)
{
    if (!s)
        jobq_mp_write_nil(w);
    else
        jobq_mp_write_str(w, s, strlen(s));
}

void
jobq_mp_write_bin(jobq_mp_writer_t *w, const void *b, size_t len)
{
    if (!s_fits(w, len))
        return;
    S_PACKER(w);
    if (msgpack_pack_bin(&pk, len) == 0 && len)
        msgpack_pack_bin_body(&pk, b, len);
}

void
jobq_mp_write_uint(jobq_mp_writer_t *w, uint64_t v)
{
    S_PACKER(w);
    msgpack_pack_uint64(&pk, v);
}

void
jobq_mp_write_int(jobq_mp_writer_t *w, int64_t v)
{
    S_PACKER(w);
    msgpack_pack_int64(&pk, v);
}

void
jobq_mp_write_double(jobq_mp_writer_t *w, double v)
{
    S_PACKER(w);
    msgpack_pack_double(&pk, v);
}

void
jobq_mp_write_bool(jobq_mp_writer_t *w, bool v)
{
    S_PACKER(w);
    if (v)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
}

void
jobq_mp_write_nil(jobq_mp_writer_t *w)
{
    S_PACKER(w);
    msgpack_pack_nil(&pk);
}

void
jobq_mp_write_raw(jobq_mp_writer_t *w, const void *b, size_t len)
{
    if (len == 0)
        return;
    uint8_t *p = s_room(w, len);
    if (p)
        memcpy(p, b, len);
}

//  --- numbers as text --------------------------------------------------------

//  17 significant digits always read back as the same double, and 9 as the
//  same float, so the last try needs no check: NaN, which equals nothing,
//  ends there too.
const char *
jobq_mp_format_double(double v, char out[JOBQ_MP_NUMBER_LEN])
{
    for (int prec = 15; prec < 17; prec++) {
        snprintf(out, JOBQ_MP_NUMBER_LEN, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return out;
    }
    snprintf(out, JOBQ_MP_NUMBER_LEN, "%.17g", v);
    return out;
}

const char *
jobq_mp_format_float(float v, char out[JOBQ_MP_NUMBER_LEN])
{
    for (int prec = 6; prec < 9; prec++) {
        snprintf(out, JOBQ_MP_NUMBER_LEN, "%.*g", prec, (double) v);
        if (strtof(out, NULL) == v)
            return out;
    }
    snprintf(out, JOBQ_MP_NUMBER_LEN, "%.9g", (double) v);
    return out;
}
