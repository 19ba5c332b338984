/*  jobq_record.h: the stored form of a job (docs/STORAGE.md).

    A record is a version byte, fixed little-endian fields, length-prefixed
    variable fields and a CRC-32 of all that precedes it. Decoding checks
    every length against the record size and the CRC before trusting
    anything, so a flipped bit or a truncated value is JOBQ_ECORRUPT, never a
    crash. Never a struct written raw.
*/
#ifndef JOBQ_RECORD_H_INCLUDED
#define JOBQ_RECORD_H_INCLUDED

#include "jobq_msg.h"

#define JOBQ_RECORD_VERSION 2  //  bump on any layout change; keep old readers

//  Bytes needed to encode j.
size_t jobq_record_size(const jobq_jobdata_t *j);

//  Encode j into out (jobq_record_size(j) bytes). Returns bytes written.
size_t jobq_record_encode(const jobq_jobdata_t *j, uint8_t *out);

//  Decode a record of len bytes into *j; strings and spans borrow from buf.
//  JOBQ_OK, JOBQ_ECORRUPT (bad length or CRC) or JOBQ_EVERSION.
int jobq_record_decode(const uint8_t *buf, size_t len, jobq_jobdata_t *j);

#endif
