/*  jobq_codec: nanoseconds per message of encoding and decoding three
    bodies a broker handles all day (an ENQUEUE, its JOB, and a STATUS
    reply carrying a finished job with a 20-review output), with no socket
    and no disk. Operations: `encode` (into a reused writer), `decode`
    (the bounded check and the read into typed fields that the broker and
    clients do), `check` (the validator alone) and `msgpack-c` (msgpack-c's
    unpacker building its tree in a reused zone, no field read: the least a
    decode through msgpack-c costs, after the same check). Median of five
    rounds. Usage: jobq_codec [OPERATIONS_PER_ROUND] (default 200000). */
#include "jobq_msg.h"

#include <msgpack.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { S_ENCODE, S_DECODE, S_CHECK, S_MSGPACK, S_OPS };
static const char *const s_ops[] = {"encode", "decode", "check", "msgpack-c"};
static const char *const s_kinds[] = {"ENQUEUE", "JOB", "REPLY-job"};

//  The jobs' input map, and the finished job's output map.
static jobq_mp_writer_t s_input, s_output;

static void
s_make_maps(void)
{
    jobq_mp_writer_t *w = &s_input;
    jobq_mp_write_map(w, 3);
    jobq_mp_write_cstr(w, "url");
    jobq_mp_write_cstr(w, "https://shop.example/products/lantern/reviews");
    jobq_mp_write_cstr(w, "fields");
    jobq_mp_write_array(w, 2);
    jobq_mp_write_cstr(w, "author");
    jobq_mp_write_cstr(w, "rating");
    jobq_mp_write_cstr(w, "options");
    jobq_mp_write_map(w, 2);
    jobq_mp_write_cstr(w, "max_pages");
    jobq_mp_write_uint(w, 10);
    jobq_mp_write_cstr(w, "follow");
    jobq_mp_write_bool(w, true);
    w = &s_output;
    jobq_mp_write_map(w, 1);
    jobq_mp_write_cstr(w, "reviews");
    jobq_mp_write_array(w, 20);
    for (int i = 0; i < 20; i++) {
        jobq_mp_write_map(w, 3);
        jobq_mp_write_cstr(w, "author");
        jobq_mp_write_cstr(w, i % 2 ? "Ada L." : "Grace H.");
        jobq_mp_write_cstr(w, "rating");
        jobq_mp_write_double(w, 3.5 + (i % 3) * 0.5);
        jobq_mp_write_cstr(w, "body");
        jobq_mp_write_cstr(w, "Bright enough for the porch, and the battery "
                              "lasts the whole evening.");
    }
}

//  Encode body kind into w.
static void
s_encode(int kind, jobq_mp_writer_t *w)
{
    jobq_str_t type = {"scrape_reviews", 14}, shop = {"shop-1234", 9};
    jobq_bytes_t input = {s_input.data, s_input.len};
    jobq_msg_t m;
    memset(&m, 0, sizeof m);
    jobq_mp_writer_reset(w);
    if (kind == 0) {
        m.cmd = JOBQ_CMD_ENQUEUE;
        m.rid = 0x1a2b3c4d5e6f0001ull;
        m.u.enqueue.type = type;
        m.u.enqueue.shop = shop;
        m.u.enqueue.input = input;
        m.u.enqueue.key = (jobq_str_t){"order-20261128-000123", 21};
        m.u.enqueue.priority = 5;
        m.u.enqueue.max_attempts = 3;
        jobq_msg_encode(&m, w);
    } else if (kind == 1) {
        m.cmd = JOBQ_CMD_JOB;
        m.u.dispatch.id = 0x01a2509706590000ull;
        m.u.dispatch.attempt = 1;
        m.u.dispatch.type = type;
        m.u.dispatch.shop = shop;
        m.u.dispatch.input = input;
        jobq_msg_encode(&m, w);
    } else {
        jobq_jobdata_t j = {.id = 0x01a2509706590000ull,
                            .type = type,
                            .shop = shop,
                            .input = input,
                            .output = {s_output.data, s_output.len},
                            .status = JOBQ_COMPLETED,
                            .progress = 100,
                            .attempts = 1,
                            .max_attempts = 3,
                            .version = 7,
                            .created_at = 1796000000000ull,
                            .completed_at = 1796000004200ull,
                            .seq = 123456};
        jobq_msg_write_job(w, &j, JOBQ_JOBMAP_INPUT | JOBQ_JOBMAP_OUTPUT);
    }
}

//  One round of n operations op on body kind (in body): ns per operation,
//  or -1 if one failed.
static double
s_round(int kind, int op, long n, const jobq_mp_writer_t *body)
{
    const uint8_t *b = body->data;
    size_t len = body->len;
    jobq_mp_writer_t enc;
    jobq_mp_writer_init(&enc, JOBQ_MAX_FRAME_BYTES);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 8192);
    int bad = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        jobq_msg_t m;
        jobq_msg_why_t why;
        jobq_jobdata_t j;
        jobq_mp_reader_t r;
        msgpack_object obj;
        size_t off = 0;
        if (op == S_ENCODE) {
            s_encode(kind, &enc);
            bad |= jobq_mp_writer_error(&enc);
        } else if (op == S_DECODE && kind < 2) {
            int cmd = kind ? JOBQ_CMD_JOB : JOBQ_CMD_ENQUEUE;
            bad |= jobq_msg_decode(cmd, b, len, &m, &why) != JOBQ_OK;
        } else if (op == S_DECODE) {
            jobq_mp_reader_init(&r, b, len);
            bad |= jobq_mp_check(b, len, &jobq_proto_reply_limits, NULL) !=
                       JOBQ_OK ||
                   jobq_msg_read_job(&r, &j) != JOBQ_OK;
        } else if (op == S_CHECK) {
            bad |= jobq_mp_check(b, len, &jobq_proto_reply_limits, NULL) !=
                   JOBQ_OK;
        } else {
            bad |= msgpack_unpack((const char *) b, len, &off, &zone, &obj) !=
                   MSGPACK_UNPACK_SUCCESS;
            msgpack_zone_clear(&zone);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    msgpack_zone_destroy(&zone);
    jobq_mp_writer_fini(&enc);
    double ns = (double) (t1.tv_sec - t0.tv_sec) * 1e9 +
                (double) (t1.tv_nsec - t0.tv_nsec);
    return bad ? -1 : ns / (double) n;
}

static int
s_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    long n = 200000;
    if (argc > 2 || (argc == 2 && (n = strtol(argv[1], NULL, 10)) < 1)) {
        fprintf(stderr, "usage: jobq_codec [OPERATIONS_PER_ROUND]\n");
        return 2;
    }
    jobq_mp_writer_t body;
    jobq_mp_writer_init(&s_input, 1 << 16);
    jobq_mp_writer_init(&s_output, 1 << 16);
    jobq_mp_writer_init(&body, JOBQ_MAX_FRAME_BYTES);
    s_make_maps();
    printf("body,bytes,op,ns_per_op\n");
    for (int kind = 0; kind < 3; kind++) {
        s_encode(kind, &body);
        for (int op = 0; op < S_OPS; op++) {
            double t[5];
            for (int k = 0; k < 5; k++) {
                if ((t[k] = s_round(kind, op, n, &body)) < 0) {
                    fprintf(stderr, "jobq_codec: %s %s failed\n", s_kinds[kind],
                            s_ops[op]);
                    return 1;
                }
            }
            qsort(t, 5, sizeof t[0], s_cmp);
            printf("%s,%zu,%s,%.1f\n", s_kinds[kind], body.len, s_ops[op],
                   t[2]);
        }
    }
    jobq_mp_writer_fini(&body);
    return 0;  //  s_input and s_output end with the process
}
