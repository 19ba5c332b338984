/*  jobq_outfile.h: files that processors write into the worker's export
    directory, all or nothing.

    A file is written under a temporary name in the same directory
    (".NAME.XXXXXX", which no accepted name can take), flushed and fsynced,
    then renamed over NAME and the directory fsynced: a reader sees the old
    file or the whole new one, never a part, and a crash leaves at most a
    temporary file behind.

    Names are single path components chosen by whoever enqueues a job, so
    they are checked before anything touches the disk: 1 to
    JOBQ_OUTFILE_MAX_NAME bytes of letters, digits, '.', '_' and '-', not
    starting with '.'. That refuses "", "..", "a/b", "/etc/x", NUL bytes
    and anything else that could leave the directory.
*/
#ifndef JOBQ_OUTFILE_H_INCLUDED
#define JOBQ_OUTFILE_H_INCLUDED

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "jobq/jobq_err.h"

#define JOBQ_OUTFILE_MAX_NAME 128  //  bytes in a file name

typedef struct {
    FILE *f;              //  write here between open and commit
    char path[PATH_MAX];  //  the final path, absolute
    char tmp[PATH_MAX];   //  the temporary file
    char dir[PATH_MAX];   //  the directory, absolute
} jobq_outfile_t;

//  The directory for shop's files under export_dir, into out (cap bytes):
//  export_dir/SHOP, so that one shop never writes over another's file. A
//  shop id (letters, digits, '_', '.', ':', '-') is used as it is, but for
//  a leading '.', written "%2e" ('%' is in no shop id), so "." and ".."
//  stay inside. JOBQ_OK, JOBQ_EINVAL (not a shop id) or JOBQ_ETOOBIG.
int jobq_outfile_shop_dir(char *out,
                          size_t cap,
                          const char *export_dir,
                          const char *shop);

//  Whether name (len bytes, may hold NUL) is an acceptable file name;
//  when not, why (whylen bytes) says what is wrong.
bool
jobq_outfile_name_ok(const char *name, size_t len, char *why, size_t whylen);

//  Create dir (and its parents) if missing, and a temporary file in it for
//  name (already checked). JOBQ_OK, JOBQ_EINVAL (a bad name, or dir is not
//  a directory), JOBQ_ETOOBIG (path too long), JOBQ_ESTORAGE (errno says
//  why).
int jobq_outfile_open(jobq_outfile_t *o, const char *dir, const char *name);

//  Flush, fsync, close and rename into place; *bytes gets the file's size.
//  JOBQ_OK or JOBQ_ESTORAGE (the temporary file is removed).
int jobq_outfile_commit(jobq_outfile_t *o, uint64_t *bytes);

//  Close and remove the temporary file. Safe after a commit (does
//  nothing) and on a zeroed struct.
void jobq_outfile_abort(jobq_outfile_t *o);

#endif
