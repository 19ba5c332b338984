/*  jobq_wire.h: ZeroMQ framing of the protocol; the only proto module that
    touches sockets.

    A message is read frame by frame and at most JOBQ_FRAMES + 1 frames are
    kept, so a peer that sends 100,000 frames costs one frame of memory at a
    time, never the whole message (ZMQ_MAXMSGSIZE bounds each frame only).
*/
#ifndef JOBQ_WIRE_H_INCLUDED
#define JOBQ_WIRE_H_INCLUDED

#include <czmq.h>

#include "jobq_proto.h"

#define JOBQ_WIRE_IDENT_MAX 255  //  routing id bytes (ZeroMQ's own limit)

//  One received message. Fields point into frames it owns until
//  jobq_wire_in_close().
typedef struct {
    zmq_msg_t frames[JOBQ_FRAMES + 1];   //  [identity] signature command body
    int nframes;                         //  frames held in frames[]
    uint8_t ident[JOBQ_WIRE_IDENT_MAX];  //  routing id (ROUTER only)
    size_t ident_len;                    //  bytes in ident
    int cmd;                             //  command byte, -1 if unreadable
    const uint8_t *body;                 //  body bytes, valid until close
    size_t body_len;                     //  bytes
    int err;                             //  JOBQ_OK or why the envelope is bad
    const char *why;                     //  static text when err != JOBQ_OK
} jobq_wire_in_t;

//  Receive one message from sock (ZMQ_DONTWAIT if nowait). routed: the socket
//  is a ROUTER and the first frame is the peer's routing id. Returns JOBQ_OK
//  when a message was read (check in->err for its envelope: JOBQ_EPROTO for
//  a bad frame count or command frame, JOBQ_EVERSION for another protocol
//  version), JOBQ_ETIMEOUT if nothing was waiting, JOBQ_EUNAVAILABLE if the
//  socket failed. Always call jobq_wire_in_close() after JOBQ_OK.
int jobq_wire_recv(void *sock, bool routed, bool nowait, jobq_wire_in_t *in);

//  Release the frames of in.
void jobq_wire_in_close(jobq_wire_in_t *in);

//  Send [ident][signature][cmd][body] (ident omitted when ident_len is 0)
//  without blocking. Returns JOBQ_OK, JOBQ_EUNAVAILABLE (peer gone, with
//  ROUTER_MANDATORY) or JOBQ_ETIMEOUT (high-water mark reached).
int jobq_wire_send(void *sock,
                   const void *ident,
                   size_t ident_len,
                   int cmd,
                   const void *body,
                   size_t len);

//  Like jobq_wire_send, but waits up to timeout_ms for room (-1 = forever).
int jobq_wire_send_wait(
    void *sock, int cmd, const void *body, size_t len, int timeout_ms);

//  Publish [topic][signature][body] on a PUB socket; never blocks (PUB drops
//  at its high-water mark, which subscribers detect by sequence numbers).
int jobq_wire_publish(void *sock,
                      const char *topic,
                      size_t topic_len,
                      const void *body,
                      size_t len);

//  Apply the protocol's socket options: ZMQ_MAXMSGSIZE, high-water marks,
//  linger_ms, and for ROUTERs ZMQ_ROUTER_MANDATORY.
void jobq_wire_setup(zsock_t *sock, int linger_ms);

#endif
