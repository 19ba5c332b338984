/*  jobq_migrate.h: `jobq export` and `jobq import`, moving every job and
    idempotency key of a store to a file and from a file into a store
    (LMDB or NATS JetStream), in the format of docs/STORAGE.md, "Export
    format".

    Export reads the store in one transaction and writes a header line, one
    line per job (its record's bytes, which carry their own CRC), one line
    per key and an end line with the counts. Import first reads the whole
    file and checks every line (so a truncated or damaged file imports
    nothing), then puts each job whose id the store does not have and each
    key it does not have, committing every S_BATCH jobs: running it again,
    after a failure or on a file already imported, is safe.
*/
#ifndef JOBQ_MIGRATE_H_INCLUDED
#define JOBQ_MIGRATE_H_INCLUDED

#include "jobq_store.h"

#include <signal.h>
#include <stdio.h>

#define JOBQ_EXPORT_VERSION 1  //  the "jobq_export" of the header line

typedef struct {
    uint64_t jobs;                           //  exported, or imported
    uint64_t jobs_skipped;                   //  import: the store had them
    uint64_t keys;                           //  exported, or imported
    uint64_t keys_skipped;                   //  import: the store had them
    uint64_t by_status[JOBQ_STATUS_COUNT_];  //  the jobs, by status
    uint64_t line;                           //  import: lines committed
} jobq_migrate_stats_t;

//  Write every job and key of store (open, no transaction) to out. JOBQ_OK,
//  or the store's error or JOBQ_ESTORAGE (out could not be written), why
//  saying which. *stats (zeroed first) counts what was written.
int jobq_migrate_export(jobq_store_t *store,
                        FILE *out,
                        jobq_migrate_stats_t *stats,
                        char *why,
                        size_t len);

//  Import the file in into store (open, no transaction). in is read twice
//  (it is copied to a temporary file first when it cannot seek). JOBQ_OK;
//  JOBQ_EINVAL when the file is refused (nothing was written; why names the
//  line); JOBQ_EINTR when *stop became nonzero (what was committed stays);
//  or the store's error (the jobs of lines up to stats->line are in).
int jobq_migrate_import(jobq_store_t *store,
                        FILE *in,
                        jobq_migrate_stats_t *stats,
                        volatile sig_atomic_t *stop,
                        char *why,
                        size_t len);

//  The command word of a `jobq` command line (the first word that is not
//  an option or an option's value), or NULL.
const char *jobq_migrate_command(int argc, char **argv);

//  Run `jobq export ...` or `jobq import ...` (argv as given to main);
//  messages go to err. Exit code: 0 done, 1 failed (the store, the file),
//  2 misuse, 130 interrupted.
int
jobq_migrate_cli(int argc, char **argv, FILE *err, volatile sig_atomic_t *stop);

#endif
