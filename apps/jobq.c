/*  jobq: the command line. Everything but the process is in jobq_cli.c,
    but export and import, which open a store (jobq_migrate.c). */
#include "jobq_app.h"
#include "jobq_cli.h"
#include "jobq_migrate.h"

#include <errno.h>
#include <string.h>

int
main(int argc, char **argv)
{
    //  Ctrl-C ends a watch, a list or any wait for the broker at once, with
    //  exit status 130; a closed pipe (`jobq list | head -1`) is a write
    //  error, not a death.
    static volatile sig_atomic_t stop = 0;
    jobq_app_signals(&stop);
    const char *cmd = jobq_migrate_command(argc, argv);
    bool migrate =
        cmd && (strcmp(cmd, "export") == 0 || strcmp(cmd, "import") == 0);
    int rc = migrate ? jobq_migrate_cli(argc, argv, stderr, &stop)
                     : jobq_cli_run(argc, argv, stdout, stderr, &stop);
    //  Output that never arrived (a full disk, a closed pipe) is a failure.
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno != EPIPE)
            fprintf(stderr, "jobq: cannot write the output: %s\n",
                    strerror(errno));
        if (rc == 0)
            rc = 1;
    }
    return rc;
}
