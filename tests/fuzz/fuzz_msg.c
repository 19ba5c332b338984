/*  fuzz_msg.c: the decoder of every command body, with hostile bytes.

    Input: one byte of command code, then the body. Whatever it is, decode
    must return (never crash, never read out of bounds, never allocate from
    a declared count); what it accepts must encode again and decode to the
    same command, and a batch's entries must all read back. */
#include "jobq_msg.h"
#include "jobq_proto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int cmd = data[0];
    jobq_msg_t m;
    jobq_msg_why_t why;
    if (jobq_msg_decode(cmd, data + 1, size - 1, &m, &why) != JOBQ_OK)
        return 0;
    if (cmd == JOBQ_CMD_ENQUEUE_BATCH) {
        jobq_mp_reader_t r;
        jobq_msg_batch_begin(&m, &r);
        for (uint32_t i = 0; i < m.u.batch.count; i++) {
            jobq_msg_t one;
            if (jobq_msg_batch_next(&r, &m, &one) != JOBQ_OK)
                abort();  //  decode checked every entry
        }
    }
    if (cmd == JOBQ_CMD_ERROR)
        return 0;  //  written by jobq_msg_write_error, not jobq_msg_encode
    if (cmd == JOBQ_CMD_REPLY) {
        //  A reply's job map, if it has one, reads without harm.
        jobq_bytes_t v;
        if (jobq_mp_map_find(m.u.reply.body, "job", &v) == JOBQ_OK) {
            jobq_mp_reader_t r;
            jobq_jobdata_t j;
            jobq_mp_reader_init(&r, v.ptr, v.len);
            (void) jobq_msg_read_job(&r, &j);
        }
        return 0;
    }
    if (cmd == JOBQ_CMD_READY || cmd == JOBQ_CMD_HEARTBEAT) {
        uint64_t ids[JOBQ_MAX_CAPACITY];
        uint32_t attempts[JOBQ_MAX_CAPACITY];
        (void) jobq_msg_read_held(&m, ids, attempts, JOBQ_MAX_CAPACITY);
    }
    //  What was accepted encodes and decodes again.
    jobq_mp_writer_t w;
    jobq_mp_writer_init(&w, 2 * JOBQ_MAX_FRAME_BYTES);
    jobq_msg_encode(&m, &w);
    jobq_msg_t again;
    if (jobq_mp_writer_error(&w) != JOBQ_OK ||
        jobq_msg_decode(cmd, w.data, w.len, &again, &why) != JOBQ_OK ||
        again.cmd != m.cmd)
        abort();
    //  Client requests carry their rid through; other commands ignore one.
    if (cmd >= JOBQ_CMD_ENQUEUE && cmd <= JOBQ_CMD_ENQUEUE_BATCH &&
        again.rid != m.rid)
        abort();
    jobq_mp_writer_fini(&w);
    return 0;
}
