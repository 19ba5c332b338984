/*  jobq_proto.h: the wire protocol's constants (docs/PROTOCOL.md).

    Every message is ZeroMQ multipart: [signature][command][body]. The
    signature frame is JOBQ_SIGNATURE (protocol name and version), the
    command frame is one byte, the body is one msgpack map with string keys.
    Events on the PUB socket are [topic][signature][body].
*/
#ifndef JOBQ_PROTO_H_INCLUDED
#define JOBQ_PROTO_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "jobq/jobq_mp.h"
#include "jobq/jobq_types.h"

#define JOBQ_SIGNATURE       "JOBQ\x01"  //  protocol name + version 1
#define JOBQ_SIGNATURE_LEN   5           //  bytes
#define JOBQ_FRAMES          3           //  frames after any routing envelope
#define JOBQ_WORKER_NAME_MAX 64          //  printable worker name, bytes

typedef enum {
    //  client -> broker
    JOBQ_CMD_ENQUEUE = 0x01,
    JOBQ_CMD_STATUS = 0x02,
    JOBQ_CMD_LIST = 0x03,
    JOBQ_CMD_CANCEL = 0x04,
    JOBQ_CMD_STATS = 0x05,
    JOBQ_CMD_RETRY = 0x06,
    JOBQ_CMD_ENQUEUE_BATCH = 0x07,
    //  worker -> broker
    JOBQ_CMD_READY = 0x11,
    JOBQ_CMD_HEARTBEAT = 0x12,  //  also broker -> worker
    JOBQ_CMD_PROGRESS = 0x13,
    JOBQ_CMD_COMPLETE = 0x14,
    JOBQ_CMD_FAIL = 0x15,
    //  broker -> worker
    JOBQ_CMD_JOB = 0x21,
    JOBQ_CMD_CANCEL_JOB = 0x22,
    JOBQ_CMD_DISCONNECT = 0x23,
    JOBQ_CMD_ACK = 0x24,  //  a COMPLETE or FAIL was taken (or refused)
    //  broker -> client or worker
    JOBQ_CMD_REPLY = 0x41,
    JOBQ_CMD_ERROR = 0x42
} jobq_cmd_t;

//  "ENQUEUE", ...; NULL for an unknown code.
const char *jobq_cmd_name(int cmd);

//  The stable wire code of an error ("bad_request", ...) and back.
const char *jobq_err_wire_code(int err);
int jobq_err_from_wire_code(const char *code, size_t len);

//  Limits used to check every body from the network.
extern const jobq_mp_limits_t jobq_proto_limits;
//  The same for a REPLY, whose job map may carry both input and output.
extern const jobq_mp_limits_t jobq_proto_reply_limits;
//  What an input or output map may hold, measured from the map itself.
extern const jobq_mp_limits_t jobq_proto_map_limits;

//  Event topics are "<shop_id>/<job id>": a subscriber takes everything
//  (""), one shop ("<shop>/") or one job ("<shop>/<id>") by prefix.
#define JOBQ_TOPIC_MAX (JOBQ_MAX_SHOP_LEN + 1 + JOBQ_ID_LEN + 1)

//  Write the topic of a job into out (JOBQ_TOPIC_MAX bytes); returns length.
size_t
jobq_topic_format(const char *shop, size_t shop_len, uint64_t id, char *out);

//  True if s is a valid job type: [a-z0-9_.-], 1..JOBQ_MAX_TYPE_LEN bytes.
bool jobq_proto_valid_type(jobq_str_t s);
//  True if s is a valid shop id: [A-Za-z0-9_.:-], 1..JOBQ_MAX_SHOP_LEN.
bool jobq_proto_valid_shop(jobq_str_t s);

#endif
