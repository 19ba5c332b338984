/*  jobq_json.h: JSON <-> msgpack for the CLI, with jansson.

    Depth is bounded by JOBQ_MAX_DEPTH both ways, so neither a deep JSON
    document nor a deep msgpack value can exhaust the stack.
*/
#ifndef JOBQ_JSON_H_INCLUDED
#define JOBQ_JSON_H_INCLUDED

#include <jansson.h>

#include "jobq/jobq_client.h"

//  Parse text (a JSON object) into msgpack appended to w. JOBQ_OK, or
//  JOBQ_EINVAL with err (errlen bytes) saying where and why.
int jobq_json_to_mp(const char *text,
                    jobq_mp_writer_t *w,
                    char *err,
                    size_t errlen);

//  One msgpack value as JSON (new reference), or NULL if malformed. bin
//  becomes a hex string, ext a {"ext": type, "hex": ...} object.
json_t *jobq_json_from_mp(jobq_bytes_t b);

//  A job as one JSON object with the field names of the design (times in
//  ms since the epoch, null when unset). New reference.
json_t *jobq_json_job(const jobq_job_info_t *job);

#endif
