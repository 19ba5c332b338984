/*  jobq: the command line. */
#include "jobq_cli.h"

#include <signal.h>

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    return jobq_cli_run(argc, argv, stdout, stderr);
}
