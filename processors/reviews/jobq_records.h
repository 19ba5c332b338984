/*  jobq_records.h: a list of records (msgpack maps) out of a job's output,
    written as CSV, NDJSON or one JSON array, for export_data.

    CSV follows RFC 4180: a header line of the field names, then one line
    per record, CRLF line ends; a field holding a comma, a double quote, CR
    or LF is quoted, and its quotes doubled. A value that is missing or nil
    is an empty field (JSON: null); strings are written as they are; numbers
    in their shortest exact form (jobq_mp_format_double, or for a float 32
    jobq_mp_format_float: 3.9, not 3.8999999999999999), NaN and infinities
    as an empty field (JSON: null); booleans true and false; nested maps and
    arrays as compact JSON text; binary strings as hex digits.

    JSON and NDJSON are UTF-8: a string that is not valid UTF-8 has each bad
    byte replaced by U+FFFD. Writing streams: nothing is held but the
    current record.
*/
#ifndef JOBQ_RECORDS_H_INCLUDED
#define JOBQ_RECORDS_H_INCLUDED

#include <stdio.h>

#include "jobq/jobq_mp.h"

#define JOBQ_RECORDS_MAX_FIELDS    256  //  columns
#define JOBQ_RECORDS_MAX_FIELD_LEN 128  //  bytes in a column name

typedef enum {
    JOBQ_FORMAT_CSV = 0,
    JOBQ_FORMAT_NDJSON = 1,
    JOBQ_FORMAT_JSON = 2
} jobq_format_t;

//  "csv", "ndjson" or "json" (len bytes) into *f: JOBQ_OK or JOBQ_EINVAL.
int jobq_format_parse(const char *s, size_t len, jobq_format_t *f);
//  Its name, which is also the file extension. Static.
const char *jobq_format_name(jobq_format_t f);

//  Find the records in output (a map): the array under key, or with key
//  NULL the first array whose items are all maps (an empty one counts). *list
//  gets the encoded array and *count its length. JOBQ_OK; JOBQ_ENOTFOUND (no
//  such key, or no such array); JOBQ_EINVAL (output is not a map, the value
//  under key is not an array, or an item is not a map: why says which).
int jobq_records_find(jobq_bytes_t output,
                      const char *key,
                      jobq_bytes_t *list,
                      uint32_t *count,
                      char *why,
                      size_t whylen);

//  Column names, NUL-terminated and owned.
typedef struct {
    char *names[JOBQ_RECORDS_MAX_FIELDS];  //  in column order
    size_t count;                          //  columns
} jobq_fields_t;

//  Add a column: JOBQ_OK, JOBQ_EINVAL (empty, holds NUL, longer than
//  JOBQ_RECORDS_MAX_FIELD_LEN), JOBQ_EEXIST (already there), JOBQ_ETOOBIG
//  (JOBQ_RECORDS_MAX_FIELDS already) or JOBQ_ENOMEM.
int jobq_fields_add(jobq_fields_t *f, const char *name, size_t len);
//  Add the keys of every record of list (an array of maps) in first-seen
//  order, skipping keys already there and keys that are not valid names.
//  JOBQ_OK, JOBQ_ETOOBIG (more than JOBQ_RECORDS_MAX_FIELDS), JOBQ_EINVAL
//  (list is not an array of maps) or JOBQ_ENOMEM.
int jobq_fields_from_records(jobq_fields_t *f, jobq_bytes_t list);
void jobq_fields_clear(jobq_fields_t *f);

//  Write one CSV field (quoted when it must be). JOBQ_OK or JOBQ_ESTORAGE.
int jobq_csv_field(FILE *out, const char *s, size_t len);

//  The start of a file of format: the CSV header (nothing when there are
//  no fields), "[" for JSON, nothing for NDJSON.
int jobq_records_begin(FILE *out, jobq_format_t fmt, const jobq_fields_t *f);
//  One record (an encoded map); index counts from 0. JOBQ_OK, JOBQ_EINVAL
//  (not a map, or nested deeper than JOBQ_MAX_DEPTH), JOBQ_ENOMEM or
//  JOBQ_ESTORAGE (a write failed).
int jobq_records_row(FILE *out,
                     jobq_format_t fmt,
                     const jobq_fields_t *f,
                     jobq_bytes_t record,
                     uint64_t index);
//  The end: "]" for JSON. rows is the number of rows written.
int jobq_records_end(FILE *out, jobq_format_t fmt, uint64_t rows);

#endif
