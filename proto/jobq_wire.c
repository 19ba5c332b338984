/*  jobq_wire.c: frames in and out. */
#include "jobq_wire.h"

#include <errno.h>
#include <string.h>

static void
s_bad(jobq_wire_in_t *in, int err, const char *why)
{
    if (in->err == JOBQ_OK) {
        in->err = err;
        in->why = why;
    }
}

int
jobq_wire_recv(void *sock, bool routed, bool nowait, jobq_wire_in_t *in)
{
    void *raw = zsock_resolve(sock);
    memset(in, 0, sizeof *in);
    in->cmd = -1;
    int want = JOBQ_FRAMES + (routed ? 1 : 0);
    int total = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *f = in->nframes < want ? &in->frames[in->nframes] : &scratch;
        zmq_msg_init(f);
        int flags = (total == 0 && nowait) ? ZMQ_DONTWAIT : 0;
        if (zmq_msg_recv(f, raw, flags) < 0) {
            int e = errno;
            zmq_msg_close(f);
            if (total == 0) {
                jobq_wire_in_close(in);
                return (e == EAGAIN) ? JOBQ_ETIMEOUT : JOBQ_EUNAVAILABLE;
            }
            s_bad(in, JOBQ_EPROTO, "truncated message");
            break;
        }
        total++;
        more = zmq_msg_more(f);
        if (f == &scratch)
            zmq_msg_close(f);
        else
            in->nframes++;
    }
    int base = 0;
    if (routed) {
        zmq_msg_t *id = &in->frames[0];
        size_t n = zmq_msg_size(id);
        if (n == 0 || n > JOBQ_WIRE_IDENT_MAX) {
            s_bad(in, JOBQ_EPROTO, "bad routing id");
            return JOBQ_OK;
        }
        memcpy(in->ident, zmq_msg_data(id), n);
        in->ident_len = n;
        base = 1;
    }
    if (total != want) {
        s_bad(in, JOBQ_EPROTO, "expected 3 frames: signature, command, body");
        return JOBQ_OK;
    }
    zmq_msg_t *sig = &in->frames[base];
    const char *s = zmq_msg_data(sig);
    size_t slen = zmq_msg_size(sig);
    if (slen != JOBQ_SIGNATURE_LEN ||
        memcmp(s, JOBQ_SIGNATURE, JOBQ_SIGNATURE_LEN) != 0) {
        if (slen == JOBQ_SIGNATURE_LEN && memcmp(s, "JOBQ", 4) == 0)
            s_bad(in, JOBQ_EVERSION, "unsupported protocol version");
        else
            s_bad(in, JOBQ_EPROTO, "bad signature frame");
        return JOBQ_OK;
    }
    zmq_msg_t *cmd = &in->frames[base + 1];
    if (zmq_msg_size(cmd) != 1) {
        s_bad(in, JOBQ_EPROTO, "command frame must be one byte");
        return JOBQ_OK;
    }
    in->cmd = ((const uint8_t *) zmq_msg_data(cmd))[0];
    zmq_msg_t *body = &in->frames[base + 2];
    in->body = zmq_msg_data(body);
    in->body_len = zmq_msg_size(body);
    return JOBQ_OK;
}

void
jobq_wire_in_close(jobq_wire_in_t *in)
{
    for (int i = 0; i < in->nframes; i++)
        zmq_msg_close(&in->frames[i]);
    in->nframes = 0;
    in->body = NULL;
    in->body_len = 0;
}

static int
s_send(void *raw,
       const void *ident,
       size_t ident_len,
       int cmd,
       const void *body,
       size_t len,
       int flags)
{
    uint8_t c = (uint8_t) cmd;
    if (ident_len && zmq_send(raw, ident, ident_len, flags | ZMQ_SNDMORE) < 0)
        goto fail;
    //  After the first frame the rest go through atomically (ZeroMQ queues
    //  a multipart message whole), so only the first can fail.
    if (zmq_send(raw, JOBQ_SIGNATURE, JOBQ_SIGNATURE_LEN, flags | ZMQ_SNDMORE) <
            0 ||
        zmq_send(raw, &c, 1, flags | ZMQ_SNDMORE) < 0 ||
        zmq_send(raw, body, len, flags) < 0)
        goto fail;
    return JOBQ_OK;
fail:
    return errno == EAGAIN ? JOBQ_ETIMEOUT : JOBQ_EUNAVAILABLE;
}

int
jobq_wire_send(void *sock,
               const void *ident,
               size_t ident_len,
               int cmd,
               const void *body,
               size_t len)
{
    return s_send(zsock_resolve(sock), ident, ident_len, cmd, body, len,
                  ZMQ_DONTWAIT);
}

int
jobq_wire_send_wait(
    void *sock, int cmd, const void *body, size_t len, int timeout_ms)
{
    void *raw = zsock_resolve(sock);
    zmq_setsockopt(raw, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
    return s_send(raw, NULL, 0, cmd, body, len, 0);
}

int
jobq_wire_publish(void *sock,
                  const char *topic,
                  size_t topic_len,
                  const void *body,
                  size_t len)
{
    void *raw = zsock_resolve(sock);
    if (zmq_send(raw, topic, topic_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0 ||
        zmq_send(raw, JOBQ_SIGNATURE, JOBQ_SIGNATURE_LEN,
                 ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0 ||
        zmq_send(raw, body, len, ZMQ_DONTWAIT) < 0)
        return JOBQ_ETIMEOUT;
    return JOBQ_OK;
}

void
jobq_wire_setup(zsock_t *sock, int linger_ms)
{
    zsock_set_maxmsgsize(sock, JOBQ_MAX_FRAME_BYTES);
    zsock_set_linger(sock, linger_ms);
    zsock_set_sndhwm(sock, 10000);
    zsock_set_rcvhwm(sock, 10000);
    if (zsock_type(sock) == ZMQ_ROUTER)
        zsock_set_router_mandatory(sock, 1);
}
