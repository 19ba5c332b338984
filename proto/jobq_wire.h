/*  jobq_wire.h: ZeroMQ framing of the protocol; the only proto module that
    touches sockets. Plain libzmq sockets (a czmq zsock_t goes through
    zsock_resolve first): libjobq does not use czmq, so that it never
    installs signal handlers in the program that uses it.

    A message is read frame by frame and at most JOBQ_FRAMES + 1 frames are
    kept, so a peer that sends 100,000 frames costs one frame of memory at a
    time, never the whole message (ZMQ_MAXMSGSIZE bounds each frame only).
*/
#ifndef JOBQ_WIRE_H_INCLUDED
#define JOBQ_WIRE_H_INCLUDED

#include <zmq.h>

#include "jobq/jobq_curve.h"
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
//  version), JOBQ_ETIMEOUT if nothing was waiting, JOBQ_EINTR if a signal
//  interrupted the wait, JOBQ_EUNAVAILABLE if the socket failed. Always
//  call jobq_wire_in_close() after JOBQ_OK.
int jobq_wire_recv(void *sock, bool routed, bool nowait, jobq_wire_in_t *in);

//  Receive one event [topic][signature][body] from a SUB socket without
//  waiting: in->ident holds the topic, in->body the body. Returns as
//  jobq_wire_recv; in->err is JOBQ_EPROTO for another frame count and
//  JOBQ_EVERSION for another signature.
int jobq_wire_recv_event(void *sub, jobq_wire_in_t *in);

//  Release the frames of in.
void jobq_wire_in_close(jobq_wire_in_t *in);

//  Send [ident][signature][cmd][body] (ident omitted when ident_len is 0)
//  without blocking. Returns JOBQ_OK, JOBQ_EUNAVAILABLE (peer gone, with
//  ROUTER_MANDATORY), JOBQ_ETIMEOUT (high-water mark reached, or no peer
//  yet) or JOBQ_EINTR.
int jobq_wire_send(void *sock,
                   const void *ident,
                   size_t ident_len,
                   int cmd,
                   const void *body,
                   size_t len);

//  Publish [topic][signature][body] on a PUB socket; never blocks (PUB drops
//  at its high-water mark, which subscribers detect by sequence numbers).
int jobq_wire_publish(void *sock,
                      const char *topic,
                      size_t topic_len,
                      const void *body,
                      size_t len);

//  Apply the protocol's socket options: ZMQ_MAXMSGSIZE, high-water marks,
//  linger_ms, and for ROUTERs ZMQ_ROUTER_MANDATORY.
void jobq_wire_setup(void *sock, int linger_ms);

//  A socket of type on ctx with the protocol's options (jobq_wire_setup,
//  linger 0). NULL with *err set to JOBQ_ENOMEM if ZeroMQ cannot make one.
void *jobq_wire_socket(void *ctx, int type, int *err);

//  The same, connected to endpoint; routing_id, if not NULL, names it.
//  NULL with *err set: JOBQ_EINVAL (ZeroMQ cannot parse the endpoint) or
//  JOBQ_ENOMEM.
//  With curve (not NULL), the socket is a CURVE client of the broker whose
//  key curve->server_key is.
void *jobq_wire_connect(void *ctx,
                        int type,
                        const char *endpoint,
                        const char *routing_id,
                        const jobq_curve_t *curve,
                        int *err);

//  --- lists of endpoints ---------------------------------------------------
//  A client or worker may name several brokers that serve the same jobs:
//  "tcp://a:5555,tcp://b:5555". At most JOBQ_WIRE_MAX_ENDPOINTS, each at
//  most JOBQ_WIRE_ENDPOINT_MAX bytes.
#define JOBQ_WIRE_MAX_ENDPOINTS 16
#define JOBQ_WIRE_ENDPOINT_MAX  255

typedef struct {
    char ep[JOBQ_WIRE_MAX_ENDPOINTS][JOBQ_WIRE_ENDPOINT_MAX + 1];
    size_t n;  //  entries in ep, 1..JOBQ_WIRE_MAX_ENDPOINTS once parsed
} jobq_wire_eps_t;

//  Split list at its commas into out; spaces around an item are dropped.
//  JOBQ_OK, or JOBQ_EINVAL with why (cap bytes) saying what is wrong: a
//  NULL or empty list, an empty item, more than JOBQ_WIRE_MAX_ENDPOINTS
//  items, or one longer than JOBQ_WIRE_ENDPOINT_MAX bytes. ZeroMQ's own
//  checks are jobq_wire_endpoints_check's.
int jobq_wire_endpoints(const char *list,
                        jobq_wire_eps_t *out,
                        char *why,
                        size_t cap);

//  Whether ZeroMQ can parse eps->ep[from..]: a DEALER on ctx (a CURVE
//  client when curve is not NULL, so that a broker with keys sees an
//  ordinary client) is connected to each and closed at once. JOBQ_OK,
//  JOBQ_EINVAL with why naming the endpoint, or JOBQ_ENOMEM.
int jobq_wire_endpoints_check(void *ctx,
                              const jobq_wire_eps_t *eps,
                              size_t from,
                              const jobq_curve_t *curve,
                              char *why,
                              size_t cap);

//  Make sock a CURVE client with keys (before connecting it). JOBQ_OK, or
//  JOBQ_EINVAL when this libzmq has no CURVE or a key is malformed.
int jobq_wire_curve(void *sock, const jobq_curve_t *keys);

//  The CURVE public key (Z85) of the peer that sent in, as the broker's
//  ZAP handler named it, or NULL on a plain connection.
const char *jobq_wire_in_user(jobq_wire_in_t *in);

//  A PAIR on ctx that hears sock's handshake events (success, or failure
//  of each kind), or NULL when ZeroMQ cannot make one. Close it with
//  jobq_wire_close before sock.
void *jobq_wire_handshake_monitor(void *ctx, void *sock);

//  Read what mon heard (without waiting) into *state: 1 once a handshake
//  succeeded, JOBQ_WIRE_REFUSED when the broker refused the key (ZAP),
//  JOBQ_WIRE_FAILED for another failed handshake; unchanged when nothing
//  new was heard. Safe with mon NULL.
#define JOBQ_WIRE_REFUSED (-1)
#define JOBQ_WIRE_FAILED  (-2)
void jobq_wire_handshake_read(void *mon, int *state);

//  Words for a state of jobq_wire_handshake_read, to end a "no answer"
//  message with ("" when there is nothing to say); curve: the peer has
//  keys.
const char *jobq_wire_handshake_hint(int state, bool curve);

//  Close a socket made by jobq_wire_connect; safe on NULL, sets it to NULL.
void jobq_wire_close(void **sock_p);

//  Monotonic milliseconds, for timeouts.
int64_t jobq_wire_now_ms(void);

#endif
