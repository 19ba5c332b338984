/*  jobq: the command line. Everything but the process is in jobq_cli.c. */
#include "jobq_cli.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

int
main(int argc, char **argv)
{
    //  A closed pipe (`jobq list | head -1`) is a write error, not a death.
    signal(SIGPIPE, SIG_IGN);
    int rc = jobq_cli_run(argc, argv, stdout, stderr);
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
