/*  jobq_json.h: JSON <-> msgpack for the `jobq` command line, with jansson.

    The CLI takes job input as JSON and shows jobs, outputs and stats as
    JSON; the wire speaks msgpack. Nesting is bounded both ways (by
    the protocol's depth limits), so neither a deep JSON document nor a deep
   msgpack value can exhaust the stack: the recursion below is at most that
   deep.
*/
#ifndef JOBQ_JSON_H_INCLUDED
#define JOBQ_JSON_H_INCLUDED

#include <jansson.h>
#include <stddef.h>

#include "jobq/jobq_client.h"
#include "jobq/jobq_mp.h"

//  Deepest JSON accepted by jobq_json_to_mp, the outermost object counting
//  1: what the protocol allows an input map (JOBQ_MAX_MAP_DEPTH).
#define JOBQ_JSON_MAX_DEPTH JOBQ_MAX_MAP_DEPTH

//  Parse text, which must be one JSON object (a job's input), and append it
//  to w as one msgpack map. Returns JOBQ_OK; JOBQ_EINVAL if text is not JSON
//  (err names the line and column) or not an object; JOBQ_ETOOBIG if it is
//  nested deeper than JOBQ_JSON_MAX_DEPTH, has a container of more than
//  JOBQ_MAX_CONTAINER entries or more than JOBQ_MAX_ELEMENTS entries in all,
//  or does not fit under w's size cap; JOBQ_ENOMEM. On error err (errlen
//  bytes, may be NULL when errlen is 0) says why, and w may hold part of a
//  value: reset or finish it. Duplicate keys are refused; integers keep
//  their sign, reals become float 64.
int jobq_json_to_mp(const char *text,
                    jobq_mp_writer_t *w,
                    char *err,
                    size_t errlen);

//  One msgpack value b as a new JSON value (the caller owns the
//  reference); json null when b is empty. Maps (string keys), arrays, str,
//  ints, floats, bools and nil map to their JSON kind (a float 32 becomes
//  the double its shortest text at float precision reads as, so 3.9f is
//  3.9, not 3.9000000953674316); bin becomes a string
//  of lowercase hex digits, ext an object {"ext": type, "hex": digits}; a
//  str or key that is not UTF-8 has each bad byte replaced by U+FFFD; a uint
//  above INT64_MAX becomes a real. Returns NULL if b is not one valid
//  msgpack value within the protocol limits (JOBQ_MAX_DEPTH and the others)
//  or if memory ran out. Allocates only for the result.
json_t *jobq_json_from_mp(jobq_bytes_t b);

//  j as json_dumps(j, flags) writes it, but with every real in its shortest
//  exact form (jobq_mp_format_double: 3.9, not 3.8999999999999999), and
//  ".0" after a whole one so that it still reads back as a real (4.0).
//  JSON_REAL_PRECISION in flags is ignored. The caller frees the text; NULL
//  when memory ran out or json_dumps refused j.
char *jobq_json_dumps(const json_t *j, size_t flags);

//  The job as a new JSON object (caller owns it) with the keys of the job
//  map (docs/PROTOCOL.md, section 6), in this order: id, type, status,
//  shop_id, input, output, progress, message, error, errors, attempts,
//  max_attempts, priority, run_at, timeout, key, created_at, updated_at,
//  started_at, completed_at, worker, lease_until, version. Times are
//  integer ms since the epoch, null when 0; optional strings are null when
//  NULL; input and output are null when absent (a LIST page has neither),
//  errors [] when absent; timeout is ms per attempt (0 = none). NULL only
//  when memory ran out.
json_t *jobq_json_job(const jobq_job_info_t *job);

#endif
