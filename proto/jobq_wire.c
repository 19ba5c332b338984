/*  jobq_wire.c: frames in and out. */
#include "jobq_wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void
s_bad(jobq_wire_in_t *in, int err, const char *why)
{
    if (in->err == JOBQ_OK) {
        in->err = err;
        in->why = why;
    }
}

int
jobq_wire_recv(void *raw, bool routed, bool nowait, jobq_wire_in_t *in)
{
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
                return e == EAGAIN  ? JOBQ_ETIMEOUT
                       : e == EINTR ? JOBQ_EINTR
                                    : JOBQ_EUNAVAILABLE;
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

int
jobq_wire_recv_event(void *sub, jobq_wire_in_t *in)
{
    memset(in, 0, sizeof *in);
    in->cmd = -1;
    int total = 0, more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *f = in->nframes < 3 ? &in->frames[in->nframes] : &scratch;
        zmq_msg_init(f);
        if (zmq_msg_recv(f, sub, total == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            int e = errno;
            zmq_msg_close(f);
            if (total == 0) {
                jobq_wire_in_close(in);
                return e == EAGAIN  ? JOBQ_ETIMEOUT
                       : e == EINTR ? JOBQ_EINTR
                                    : JOBQ_EUNAVAILABLE;
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
    if (total != 3) {
        s_bad(in, JOBQ_EPROTO, "expected 3 frames: topic, signature, body");
        return JOBQ_OK;
    }
    size_t tlen = zmq_msg_size(&in->frames[0]);
    if (tlen > JOBQ_WIRE_IDENT_MAX) {
        s_bad(in, JOBQ_EPROTO, "topic too long");
        return JOBQ_OK;
    }
    memcpy(in->ident, zmq_msg_data(&in->frames[0]), tlen);
    in->ident_len = tlen;
    if (zmq_msg_size(&in->frames[1]) != JOBQ_SIGNATURE_LEN ||
        memcmp(zmq_msg_data(&in->frames[1]), JOBQ_SIGNATURE,
               JOBQ_SIGNATURE_LEN) != 0) {
        s_bad(in, JOBQ_EVERSION, "bad signature frame");
        return JOBQ_OK;
    }
    in->body = zmq_msg_data(&in->frames[2]);
    in->body_len = zmq_msg_size(&in->frames[2]);
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
    return errno == EAGAIN  ? JOBQ_ETIMEOUT
           : errno == EINTR ? JOBQ_EINTR
                            : JOBQ_EUNAVAILABLE;
}

int
jobq_wire_send(void *raw,
               const void *ident,
               size_t ident_len,
               int cmd,
               const void *body,
               size_t len)
{
    return s_send(raw, ident, ident_len, cmd, body, len, ZMQ_DONTWAIT);
}

int
jobq_wire_publish(void *raw,
                  const char *topic,
                  size_t topic_len,
                  const void *body,
                  size_t len)
{
    if (zmq_send(raw, topic, topic_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0 ||
        zmq_send(raw, JOBQ_SIGNATURE, JOBQ_SIGNATURE_LEN,
                 ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0 ||
        zmq_send(raw, body, len, ZMQ_DONTWAIT) < 0)
        return JOBQ_ETIMEOUT;
    return JOBQ_OK;
}

static void
s_opt(void *sock, int opt, int v)
{
    zmq_setsockopt(sock, opt, &v, sizeof v);
}

void
jobq_wire_setup(void *sock, int linger_ms)
{
    int64_t max = JOBQ_MAX_FRAME_BYTES;
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max);
    s_opt(sock, ZMQ_LINGER, linger_ms);
    s_opt(sock, ZMQ_SNDHWM, 10000);
    s_opt(sock, ZMQ_RCVHWM, 10000);
    int type = 0;
    size_t n = sizeof type;
    if (zmq_getsockopt(sock, ZMQ_TYPE, &type, &n) == 0 && type == ZMQ_ROUTER)
        s_opt(sock, ZMQ_ROUTER_MANDATORY, 1);
}

void *
jobq_wire_socket(void *ctx, int type, int *err)
{
    void *sock = zmq_socket(ctx, type);
    if (!sock) {
        *err = JOBQ_ENOMEM;
        return NULL;
    }
    jobq_wire_setup(sock, 0);
    return sock;
}

void *
jobq_wire_connect(void *ctx,
                  int type,
                  const char *endpoint,
                  const char *routing_id,
                  const jobq_curve_t *curve,
                  int *err)
{
    void *sock = jobq_wire_socket(ctx, type, err);
    if (!sock)
        return NULL;
    if (curve && jobq_wire_curve(sock, curve) != JOBQ_OK) {
        *err = JOBQ_EINVAL;
        zmq_close(sock);
        return NULL;
    }
    if (routing_id)
        zmq_setsockopt(sock, ZMQ_ROUTING_ID, routing_id, strlen(routing_id));
    if (zmq_connect(sock, endpoint) != 0) {
        *err = JOBQ_EINVAL;
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

int
jobq_wire_endpoints(const char *list,
                    jobq_wire_eps_t *out,
                    char *why,
                    size_t cap)
{
    out->n = 0;
    if (!list)
        list = "";
    const char *p = list;
    while (true) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        size_t len = (size_t) (b - a);
        if (len == 0) {
            if (!*list)
                snprintf(why, cap, "no endpoint given");
            else
                snprintf(why, cap, "endpoint list '%.200s' has an empty item",
                         list);
            return JOBQ_EINVAL;
        }
        if (out->n == JOBQ_WIRE_MAX_ENDPOINTS) {
            snprintf(why, cap, "more than %d endpoints in one list",
                     JOBQ_WIRE_MAX_ENDPOINTS);
            return JOBQ_EINVAL;
        }
        if (len > JOBQ_WIRE_ENDPOINT_MAX) {
            snprintf(why, cap, "endpoint '%.40s...' is longer than %d bytes", a,
                     JOBQ_WIRE_ENDPOINT_MAX);
            return JOBQ_EINVAL;
        }
        memcpy(out->ep[out->n], a, len);
        out->ep[out->n++][len] = '\0';
        if (!*end)
            return JOBQ_OK;
        p = end + 1;
    }
}

int
jobq_wire_endpoints_check(void *ctx,
                          const jobq_wire_eps_t *eps,
                          size_t from,
                          const jobq_curve_t *curve,
                          char *why,
                          size_t cap)
{
    for (size_t i = from; i < eps->n; i++) {
        int err = JOBQ_OK;
        void *sock =
            jobq_wire_connect(ctx, ZMQ_DEALER, eps->ep[i], NULL, curve, &err);
        if (!sock) {
            if (err == JOBQ_EINVAL)
                snprintf(why, cap, "cannot use endpoint '%s'", eps->ep[i]);
            else
                snprintf(why, cap, "out of memory");
            return err;
        }
        jobq_wire_close(&sock);
    }
    return JOBQ_OK;
}

int
jobq_wire_curve(void *sock, const jobq_curve_t *keys)
{
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, keys->server_key,
                       JOBQ_CURVE_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, keys->public_key,
                       JOBQ_CURVE_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, keys->secret_key,
                       JOBQ_CURVE_Z85_LEN + 1) != 0)
        return JOBQ_EINVAL;
    return JOBQ_OK;
}

const char *
jobq_wire_in_user(jobq_wire_in_t *in)
{
    //  libzmq attaches the connection's metadata to each frame it reads
    //  from it; the routing id frame a ROUTER makes up may lack it.
    for (int i = in->nframes - 1; i >= 0; i--) {
        const char *u = zmq_msg_gets(&in->frames[i], "User-Id");
        if (u)
            return u;
    }
    return NULL;
}

void *
jobq_wire_handshake_monitor(void *ctx, void *sock)
{
    char mep[64];
    snprintf(mep, sizeof mep, "inproc://jobq-handshake-%p", sock);
    if (zmq_socket_monitor(sock, mep,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
        return NULL;
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    int zero = 0;
    if (mon)
        zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero);
    if (mon && zmq_connect(mon, mep) != 0) {
        zmq_close(mon);
        mon = NULL;
    }
    return mon;
}

void
jobq_wire_handshake_read(void *mon, int *state)
{
    for (int i = 0; mon && i < 256; i++) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        bool more = zmq_msg_more(&ev);
        uint16_t event = 0;
        if (zmq_msg_size(&ev) == 6)
            memcpy(&event, zmq_msg_data(&ev), 2);
        zmq_msg_close(&ev);
        if (more) {  //  the endpoint: not needed
            zmq_msg_t addr;
            zmq_msg_init(&addr);
            zmq_msg_recv(&addr, mon, 0);
            zmq_msg_close(&addr);
        }
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            *state = 1;
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            *state = JOBQ_WIRE_REFUSED;
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                 event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            *state = JOBQ_WIRE_FAILED;
    }
}

const char *
jobq_wire_handshake_hint(int state, bool curve)
{
    if (state == JOBQ_WIRE_REFUSED)
        return "; the broker refused this key (is it in the broker's key "
               "file, with a role for this endpoint?)";
    if (state == JOBQ_WIRE_FAILED)
        return curve ? "; the CURVE handshake failed (is the broker's public "
                       "key right, and does the broker run with keys?)"
                     : "; the handshake failed: does the broker run with "
                       "keys? (then give a certificate and the broker's "
                       "key: --cert and --broker-key, or JOBQ_CERT and "
                       "JOBQ_BROKER_KEY)";
    return "";
}

void
jobq_wire_close(void **sock_p)
{
    if (sock_p && *sock_p) {
        zmq_close(*sock_p);
        *sock_p = NULL;
    }
}

int64_t
jobq_wire_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
