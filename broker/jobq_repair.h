/*  jobq_repair.h: jobq-broker --verify and --repair, with the broker
    stopped (both take the data directory's lock).

    --verify walks every page of every database by hand (jobq_mdbfile.h,
    so no damage can crash it), checks every record against its CRC, every
    index entry against the record it names and every record against the
    entries it should have, the counts against the records, and the
    counters against the highest id and sequence number; it lists the
    records in the quarantine. --repair keeps every record that passes its
    check, puts the ones that fail into the quarantine, and writes a new
    data file whose indexes, counts, idempotency keys and counters are
    rebuilt from those records; the old file is kept beside it. After a
    repair STATS and LIST agree, and --verify finds nothing wrong.
*/
#ifndef JOBQ_REPAIR_H_INCLUDED
#define JOBQ_REPAIR_H_INCLUDED

#include <stdint.h>
#include <stdio.h>

typedef struct {
    uint64_t jobs;         //  records that passed their check
    uint64_t bad_records;  //  records that failed it
    uint64_t damaged;      //  damaged pages or entries found
    uint64_t unreachable;  //  entries a database counts but no walk reached
    uint64_t mismatches;   //  index entries, counts and counters that
                           //  disagree with the records
    uint64_t quarantined;  //  records in the quarantine
} jobq_repair_report_t;

//  Check the store in dir, writing one line per problem and a summary to
//  out. JOBQ_OK when nothing is wrong (quarantined records are listed but
//  are not a problem: they were set aside on purpose), JOBQ_ECORRUPT when
//  something is, JOBQ_EUNAVAILABLE when a broker holds dir, JOBQ_ESTORAGE
//  when the file cannot be read at all.
int jobq_verify(const char *dir, FILE *out, jobq_repair_report_t *report);

//  Rebuild the store in dir from the records that pass their check (see
//  above), saying what it does on out. The damaged file is moved to
//  dir/damaged-<time>/ first. JOBQ_OK once the new file is in place, or
//  the error that stopped it (the old file then stays where it was).
int jobq_repair(const char *dir, FILE *out, jobq_repair_report_t *report);

#endif
