/*  jobq_record.c: job record encoding, version 2 (reads 1 and 2).

    Layout: u8 version, u8 status, u8 queue, u8 progress, u32 attempts,
    u32 max_attempts, u32 version, i32 priority, u64 id, run_at, timeout_ms,
    created_at, updated_at, started_at, completed_at, lease_until, seq;
    (version 2 only) u32 budget; then nine u32-length-prefixed fields: type,
    shop, message, error, key, worker, input, output, errors; then u32
    CRC-32 (zlib) of everything before it. All integers little-endian.
*/
#include "jobq_record.h"

#include <string.h>
#include <zlib.h>

#define S_FIXED1 (4 + 4 * 4 + 9 * 8)  //  fixed part, version 1
#define S_FIXED  (S_FIXED1 + 4)       //  version 2 adds budget
#define S_NVAR   9

static void
s_put(uint8_t **p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        (*p)[i] = (uint8_t) (v >> (8 * i));
    *p += n;
}

static uint64_t
s_get(const uint8_t **p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t) (*p)[i] << (8 * i);
    *p += n;
    return v;
}

//  The variable fields in record order, as (pointer, length) pairs.
static void
s_vars(const jobq_jobdata_t *j, const void *ptr[S_NVAR], size_t len[S_NVAR])
{
    ptr[0] = j->type.ptr, len[0] = j->type.len;
    ptr[1] = j->shop.ptr, len[1] = j->shop.len;
    ptr[2] = j->message.ptr, len[2] = j->message.len;
    ptr[3] = j->error.ptr, len[3] = j->error.len;
    ptr[4] = j->key.ptr, len[4] = j->key.len;
    ptr[5] = j->worker.ptr, len[5] = j->worker.len;
    ptr[6] = j->input.ptr, len[6] = j->input.len;
    ptr[7] = j->output.ptr, len[7] = j->output.len;
    ptr[8] = j->errors.ptr, len[8] = j->errors.len;
}

size_t
jobq_record_size(const jobq_jobdata_t *j)
{
    const void *ptr[S_NVAR];
    size_t len[S_NVAR], n = S_FIXED + 4 * S_NVAR + 4;
    s_vars(j, ptr, len);
    for (int i = 0; i < S_NVAR; i++)
        n += len[i];
    return n;
}

size_t
jobq_record_encode(const jobq_jobdata_t *j, uint8_t *out)
{
    uint8_t *p = out;
    uint32_t prio;
    memcpy(&prio, &j->priority, sizeof prio);
    s_put(&p, JOBQ_RECORD_VERSION, 1);
    s_put(&p, (uint64_t) j->status, 1);
    s_put(&p, (uint64_t) j->queue, 1);
    s_put(&p, j->progress, 1);
    s_put(&p, j->attempts, 4);
    s_put(&p, j->max_attempts, 4);
    s_put(&p, j->version, 4);
    s_put(&p, prio, 4);
    const uint64_t fixed[9] = {j->id,           j->run_at,      j->timeout_ms,
                               j->created_at,   j->updated_at,  j->started_at,
                               j->completed_at, j->lease_until, j->seq};
    for (int i = 0; i < 9; i++)
        s_put(&p, fixed[i], 8);
    s_put(&p, j->budget, 4);
    const void *ptr[S_NVAR];
    size_t len[S_NVAR];
    s_vars(j, ptr, len);
    for (int i = 0; i < S_NVAR; i++) {
        s_put(&p, len[i], 4);
        if (len[i])
            memcpy(p, ptr[i], len[i]);
        p += len[i];
    }
    uLong crc = crc32(0L, out, (uInt) (p - out));
    s_put(&p, crc, 4);
    return (size_t) (p - out);
}

int
jobq_record_decode(const uint8_t *buf, size_t len, jobq_jobdata_t *j)
{
    memset(j, 0, sizeof *j);
    if (len < 1)
        return JOBQ_ECORRUPT;
    if (buf[0] != 1 && buf[0] != 2)
        return JOBQ_EVERSION;
    size_t fixed_len = buf[0] == 1 ? S_FIXED1 : S_FIXED;
    if (len < fixed_len + 4 * S_NVAR + 4)
        return JOBQ_ECORRUPT;
    const uint8_t *c = buf + len - 4;
    uint32_t want = (uint32_t) s_get(&c, 4);
    if ((uint32_t) crc32(0L, buf, (uInt) (len - 4)) != want)
        return JOBQ_ECORRUPT;
    const uint8_t *p = buf + 1, *end = buf + len - 4;
    j->status = (int) s_get(&p, 1);
    j->queue = (int) s_get(&p, 1);
    j->progress = (uint32_t) s_get(&p, 1);
    j->attempts = (uint32_t) s_get(&p, 4);
    j->max_attempts = (uint32_t) s_get(&p, 4);
    j->version = (uint32_t) s_get(&p, 4);
    uint32_t prio = (uint32_t) s_get(&p, 4);
    memcpy(&j->priority, &prio, sizeof prio);
    uint64_t *fixed[9] = {&j->id,           &j->run_at,      &j->timeout_ms,
                          &j->created_at,   &j->updated_at,  &j->started_at,
                          &j->completed_at, &j->lease_until, &j->seq};
    for (int i = 0; i < 9; i++)
        *fixed[i] = s_get(&p, 8);
    //  Version 1 had no budget: every run got max_attempts.
    j->budget = buf[0] == 1 ? j->max_attempts : (uint32_t) s_get(&p, 4);
    if (j->status < 0 || j->status >= JOBQ_STATUS_COUNT_ || j->queue > 2)
        return JOBQ_ECORRUPT;
    const uint8_t *vp[S_NVAR];
    size_t vl[S_NVAR];
    for (int i = 0; i < S_NVAR; i++) {
        if (end - p < 4)
            return JOBQ_ECORRUPT;
        vl[i] = (size_t) s_get(&p, 4);
        if (vl[i] > (size_t) (end - p))
            return JOBQ_ECORRUPT;
        vp[i] = p;
        p += vl[i];
    }
    if (p != end)
        return JOBQ_ECORRUPT;
    jobq_str_t *strs[6] = {&j->type,  &j->shop, &j->message,
                           &j->error, &j->key,  &j->worker};
    for (int i = 0; i < 6; i++) {
        strs[i]->ptr = (const char *) vp[i];
        strs[i]->len = vl[i];
    }
    jobq_bytes_t *spans[3] = {&j->input, &j->output, &j->errors};
    for (int i = 0; i < 3; i++) {
        spans[i]->ptr = vp[6 + i];
        spans[i]->len = vl[6 + i];
    }
    return JOBQ_OK;
}
