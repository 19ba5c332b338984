/*  jobq_cli.h: the `jobq` command line, as a function.

    jobq_cli_run parses argv, talks to the broker and writes to out and err;
    it never exits the process, so tests run it in-process. Exit codes: 0
    success, 1 the broker refused or a job failed/was cancelled (watch), 2
    misuse, 3 a watch timed out.
*/
#ifndef JOBQ_CLI_H_INCLUDED
#define JOBQ_CLI_H_INCLUDED

#include <stdio.h>

int jobq_cli_run(int argc, char **argv, FILE *out, FILE *err);

#endif
