/*  jobq_mp.h: bounded msgpack reading and writing.

    jobq never hands untrusted bytes to an allocating decoder. A message is
    first walked by jobq_mp_check(), which allocates nothing, recurses
    nowhere, and rejects truncation, trailing bytes, the reserved byte 0xc1,
    non-string map keys, and any depth, container count, total element count
    or string length above the caller's limits. Only then is it read: with
    the cursor functions below, which borrow from the buffer and never
    allocate, or, for a whole document tree, with msgpack-c's unpacker
    through jobq_mp_unpack().

    The writer appends to a growable buffer with a hard size cap, encoding
    with msgpack-c's packer. Errors are sticky: write everything, then
    check jobq_mp_writer_error() once.

    Every number people read (the CLI's JSON, exports, reports) is written
    by jobq_mp_format_double() or, for a float 32, jobq_mp_format_float(),
    so that one value reads the same everywhere.

    Why the cursor reader is jobq's own and not msgpack-c's unpacker:
    jobq keeps a job's input and output maps as the bytes that arrived, and
    stores and forwards them without re-encoding; the cursor gives each
    value's exact span, and msgpack-c's object tree has no spans, so every
    message would be unpacked and its maps packed again. Measured with
    bench/jobq_codec, msgpack-c's unpack alone, after the same check,
    costs more than the cursor's whole decode of a STATUS reply with a
    20-review output, before a single field is read.
*/
#ifndef JOBQ_MP_H_INCLUDED
#define JOBQ_MP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobq/jobq_err.h"

#ifdef __cplusplus
extern "C" {
#endif

//  A borrowed string: not NUL-terminated, may contain NUL bytes.
typedef struct {
    const char *ptr;  //  first byte, borrowed
    size_t len;       //  bytes
} jobq_str_t;

//  A borrowed byte span (for example one encoded msgpack value).
typedef struct {
    const uint8_t *ptr;  //  first byte, borrowed
    size_t len;          //  bytes
} jobq_bytes_t;

//  Limits for jobq_mp_check().
typedef struct {
    uint32_t max_depth;      //  nested containers, the outermost counts 1
    uint32_t max_container;  //  entries in one array or map
    uint32_t max_elements;   //  array items + map entries, whole message
    uint32_t max_str;        //  bytes in one str, bin or ext
} jobq_mp_limits_t;

//  Walk buf[0..len) as exactly one msgpack value within lim (a max_depth
//  above 64 counts as 64). Returns JOBQ_OK,
//  JOBQ_ETOOBIG (a limit was exceeded) or JOBQ_EINVAL (malformed). On error
//  *why, if not NULL, gets a static description. Allocates nothing.
JOBQ_EXPORT int jobq_mp_check(const uint8_t *buf,
                              size_t len,
                              const jobq_mp_limits_t *lim,
                              const char **why);

//  The kind of the next value, as read by jobq_mp_peek().
typedef enum {
    JOBQ_MP_NONE = 0,  //  end of buffer or malformed
    JOBQ_MP_NIL,
    JOBQ_MP_BOOL,
    JOBQ_MP_UINT,  //  a non-negative integer
    JOBQ_MP_INT,   //  a negative integer
    JOBQ_MP_FLOAT,
    JOBQ_MP_STR,
    JOBQ_MP_BIN,
    JOBQ_MP_ARRAY,
    JOBQ_MP_MAP,
    JOBQ_MP_EXT
} jobq_mp_type_t;

struct msgpack_object;
struct msgpack_unpacked;

//  Check buf[0..len) with jobq_mp_check() against lim, then unpack it with
//  msgpack-c's msgpack_unpack_next() into *result (msgpack_unpacked_init it
//  first; msgpack_unpacked_destroy it after, also after an error). The
//  check comes first, so msgpack-c never allocates for a count the bytes
//  cannot hold. Strings, bin and ext in the tree point into buf: keep buf
//  while the tree is used. JOBQ_OK, JOBQ_EINVAL or JOBQ_ETOOBIG (as
//  jobq_mp_check, *why saying what), JOBQ_ENOMEM. A caller includes
//  <msgpack.h> and links msgpack-c itself.
JOBQ_EXPORT int jobq_mp_unpack(const uint8_t *buf,
                               size_t len,
                               const jobq_mp_limits_t *lim,
                               struct msgpack_unpacked *result,
                               const char **why);

//  A read cursor. Set p and end by hand or with jobq_mp_reader_init().
typedef struct {
    const uint8_t *p;    //  next byte
    const uint8_t *end;  //  one past the last byte
} jobq_mp_reader_t;

JOBQ_EXPORT void
jobq_mp_reader_init(jobq_mp_reader_t *r, const void *buf, size_t len);

//  The kind of the next value, without consuming it.
JOBQ_EXPORT jobq_mp_type_t jobq_mp_peek(const jobq_mp_reader_t *r);

//  Each read consumes one value of the named kind and returns JOBQ_OK, or
//  returns JOBQ_EPROTO (wrong kind, out of range, or truncated) and leaves
//  the cursor where it was. Strings borrow from the buffer.
JOBQ_EXPORT int jobq_mp_read_map(jobq_mp_reader_t *r, uint32_t *n);
JOBQ_EXPORT int jobq_mp_read_array(jobq_mp_reader_t *r, uint32_t *n);
JOBQ_EXPORT int jobq_mp_read_str(jobq_mp_reader_t *r, jobq_str_t *s);
JOBQ_EXPORT int jobq_mp_read_uint(jobq_mp_reader_t *r, uint64_t *v);
JOBQ_EXPORT int jobq_mp_read_int(jobq_mp_reader_t *r, int64_t *v);
JOBQ_EXPORT int jobq_mp_read_double(jobq_mp_reader_t *r, double *v);
JOBQ_EXPORT int jobq_mp_read_bool(jobq_mp_reader_t *r, bool *v);
//  Consume a nil if the next value is one; returns true if it did.
JOBQ_EXPORT bool jobq_mp_read_nil(jobq_mp_reader_t *r);
//  Consume one whole value of any kind; *span (if not NULL) gets its bytes.
//  Iterative, bounded by the buffer.
JOBQ_EXPORT int jobq_mp_skip(jobq_mp_reader_t *r, jobq_bytes_t *span);

//  In the map encoded in map, find key; *val gets the encoded value.
//  Returns JOBQ_OK, JOBQ_ENOTFOUND, or JOBQ_EPROTO if map is not a map.
JOBQ_EXPORT int
jobq_mp_map_find(jobq_bytes_t map, const char *key, jobq_bytes_t *val);

//  A bounded, growable output buffer.
typedef struct {
    uint8_t *data;  //  owned buffer, NULL until the first write
    size_t len;     //  bytes written
    size_t cap;     //  bytes allocated
    size_t max;     //  hard cap on len, bytes
    int err;        //  first error (JOBQ_ENOMEM, JOBQ_ETOOBIG) or JOBQ_OK
} jobq_mp_writer_t;

//  Start an empty writer that refuses to grow past max_bytes.
JOBQ_EXPORT void jobq_mp_writer_init(jobq_mp_writer_t *w, size_t max_bytes);
//  Free the buffer; the writer may be initialised again.
JOBQ_EXPORT void jobq_mp_writer_fini(jobq_mp_writer_t *w);
//  Forget what was written (and any error), keeping the buffer.
JOBQ_EXPORT void jobq_mp_writer_reset(jobq_mp_writer_t *w);
//  The first error of the writer, or JOBQ_OK.
JOBQ_EXPORT int jobq_mp_writer_error(const jobq_mp_writer_t *w);

JOBQ_EXPORT void jobq_mp_write_map(jobq_mp_writer_t *w, uint32_t n);
JOBQ_EXPORT void jobq_mp_write_array(jobq_mp_writer_t *w, uint32_t n);
JOBQ_EXPORT void
jobq_mp_write_str(jobq_mp_writer_t *w, const char *s, size_t len);
//  s is NUL-terminated; NULL writes nil.
JOBQ_EXPORT void jobq_mp_write_cstr(jobq_mp_writer_t *w, const char *s);
JOBQ_EXPORT void
jobq_mp_write_bin(jobq_mp_writer_t *w, const void *b, size_t len);
JOBQ_EXPORT void jobq_mp_write_uint(jobq_mp_writer_t *w, uint64_t v);
JOBQ_EXPORT void jobq_mp_write_int(jobq_mp_writer_t *w, int64_t v);
JOBQ_EXPORT void jobq_mp_write_double(jobq_mp_writer_t *w, double v);
JOBQ_EXPORT void jobq_mp_write_bool(jobq_mp_writer_t *w, bool v);
JOBQ_EXPORT void jobq_mp_write_nil(jobq_mp_writer_t *w);
//  Append bytes that already are one or more encoded values.
JOBQ_EXPORT void
jobq_mp_write_raw(jobq_mp_writer_t *w, const void *b, size_t len);

//  Bytes that hold any number jobq_mp_format_double or _float writes, and
//  its NUL.
#define JOBQ_MP_NUMBER_LEN 32

//  v as text for people, in its shortest exact form: the first of %.15g,
//  %.16g and %.17g that strtod() reads back as v, so 3.9 is "3.9", not
//  "3.8999999999999999", and 4.0 is "4". NaN and the infinities are written
//  as printf writes them ("inf", "-inf", "nan"...); JSON has no such
//  number, so a caller writing JSON checks isfinite() first. Returns out.
JOBQ_EXPORT const char *jobq_mp_format_double(double v,
                                              char out[JOBQ_MP_NUMBER_LEN]);
//  The same at the precision of a msgpack float 32: the first of %.6g to
//  %.9g that strtof() reads back as v, so 3.9f is "3.9", not
//  "3.9000000953674316". Returns out.
JOBQ_EXPORT const char *jobq_mp_format_float(float v,
                                             char out[JOBQ_MP_NUMBER_LEN]);

#ifdef __cplusplus
}
#endif
#endif
