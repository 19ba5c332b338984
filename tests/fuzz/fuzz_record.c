/*  fuzz_record.c: the stored job record decoder, with damaged records.

    A record read back from disk may be anything: decode must return, and
    what it accepts must encode to the very same bytes. */
#include "jobq_record.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jobq_jobdata_t j;
    if (jobq_record_decode(data, size, &j) != JOBQ_OK)
        return 0;
    size_t n = jobq_record_size(&j);
    uint8_t *b = malloc(n);
    if (!b)
        return 0;
    size_t got = jobq_record_encode(&j, b);
    //  Version 2 encodes byte for byte; a version 1 record gains a budget.
    if (got != n || (data[0] == JOBQ_RECORD_VERSION &&
                     (n != size || memcmp(b, data, n) != 0)))
        abort();
    free(b);
    return 0;
}
