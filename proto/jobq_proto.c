/*  jobq_proto.c: the protocol's tables: body limits, command names, wire
    error codes, topics, and what a type or a shop id may hold. */
#include "jobq_proto.h"

#include <string.h>

const jobq_mp_limits_t jobq_proto_limits = {
    .max_depth = JOBQ_MAX_DEPTH,
    .max_container = JOBQ_MAX_CONTAINER,
    .max_elements = JOBQ_MAX_ELEMENTS,
    .max_str = JOBQ_MAX_OUTPUT_BYTES,
};

//  A job map in a reply carries a job's input and its output, each of which
//  stayed within the element limit on its own.
const jobq_mp_limits_t jobq_proto_reply_limits = {
    .max_depth = JOBQ_MAX_DEPTH,
    .max_container = JOBQ_MAX_CONTAINER,
    .max_elements = 2 * JOBQ_MAX_ELEMENTS + 1024,
    .max_str = JOBQ_MAX_OUTPUT_BYTES,
};

//  An input or output map, measured on its own (the map counts 1): two
//  levels less than a body, so that inside a reply's job map it still fits.
const jobq_mp_limits_t jobq_proto_map_limits = {
    .max_depth = JOBQ_MAX_MAP_DEPTH,
    .max_container = JOBQ_MAX_CONTAINER,
    .max_elements = JOBQ_MAX_ELEMENTS,
    .max_str = JOBQ_MAX_OUTPUT_BYTES,
};

const char *
jobq_cmd_name(int cmd)
{
    switch (cmd) {
    case JOBQ_CMD_ENQUEUE:
        return "ENQUEUE";
    case JOBQ_CMD_STATUS:
        return "STATUS";
    case JOBQ_CMD_LIST:
        return "LIST";
    case JOBQ_CMD_CANCEL:
        return "CANCEL";
    case JOBQ_CMD_STATS:
        return "STATS";
    case JOBQ_CMD_ENQUEUE_BATCH:
        return "ENQUEUE_BATCH";
    case JOBQ_CMD_RETRY:
        return "RETRY";
    case JOBQ_CMD_READY:
        return "READY";
    case JOBQ_CMD_HEARTBEAT:
        return "HEARTBEAT";
    case JOBQ_CMD_PROGRESS:
        return "PROGRESS";
    case JOBQ_CMD_COMPLETE:
        return "COMPLETE";
    case JOBQ_CMD_FAIL:
        return "FAIL";
    case JOBQ_CMD_JOB:
        return "JOB";
    case JOBQ_CMD_CANCEL_JOB:
        return "CANCEL_JOB";
    case JOBQ_CMD_DISCONNECT:
        return "DISCONNECT";
    case JOBQ_CMD_ACK:
        return "ACK";
    case JOBQ_CMD_REPLY:
        return "REPLY";
    case JOBQ_CMD_ERROR:
        return "ERROR";
    default:
        return NULL;
    }
}

static const struct {
    int err;           //  jobq_err_t
    const char *code;  //  stable wire code
} s_codes[] = {
    {JOBQ_EINVAL, "bad_request"},
    {JOBQ_ENOTFOUND, "unknown_job"},
    {JOBQ_ETOOBIG, "too_large"},
    {JOBQ_EUNAVAILABLE, "unavailable"},
    {JOBQ_EINTERNAL, "internal"},
    {JOBQ_ESTATE, "invalid_state"},
    {JOBQ_ESTOREFULL, "storage_full"},
    {JOBQ_ESTORAGE, "storage_error"},
    {JOBQ_EVERSION, "unsupported_version"},
    {JOBQ_ECOMMAND, "unknown_command"},
    {JOBQ_ESTALE, "stale_attempt"},
    {JOBQ_ETYPE, "unknown_type"},
    {JOBQ_EFORBIDDEN, "forbidden"},
    {JOBQ_ERATE, "rate_limited"},
    {JOBQ_EQUOTA, "quota_exceeded"},
    {JOBQ_ENOMEM, "internal"},
};

const char *
jobq_err_wire_code(int err)
{
    for (size_t i = 0; i < sizeof s_codes / sizeof s_codes[0]; i++)
        if (s_codes[i].err == err)
            return s_codes[i].code;
    return "internal";
}

int
jobq_err_from_wire_code(const char *code, size_t len)
{
    for (size_t i = 0; i < sizeof s_codes / sizeof s_codes[0]; i++)
        if (strlen(s_codes[i].code) == len &&
            memcmp(s_codes[i].code, code, len) == 0)
            return s_codes[i].err;
    return JOBQ_EINTERNAL;
}

size_t
jobq_topic_format(const char *shop, size_t shop_len, uint64_t id, char *out)
{
    if (shop_len > JOBQ_MAX_SHOP_LEN)
        shop_len = JOBQ_MAX_SHOP_LEN;
    memcpy(out, shop, shop_len);
    out[shop_len] = '/';
    jobq_id_format(id, out + shop_len + 1);
    return shop_len + 1 + JOBQ_ID_LEN;
}

static bool
s_charset(jobq_str_t s, size_t max, const char *extra, bool upper)
{
    if (s.len < 1 || s.len > max)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            continue;
        if (upper && c >= 'A' && c <= 'Z')
            continue;
        if (c != '\0' && strchr(extra, c))
            continue;
        return false;
    }
    return true;
}

bool
jobq_proto_valid_type(jobq_str_t s)
{
    return s_charset(s, JOBQ_MAX_TYPE_LEN, "_.-", false);
}

bool
jobq_proto_valid_shop(jobq_str_t s)
{
    return s_charset(s, JOBQ_MAX_SHOP_LEN, "_.:-", true);
}
