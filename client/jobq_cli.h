/*  jobq_cli.h: the `jobq` command line, as a function.

    jobq_cli_run parses argv (argv[0] is the program name), talks to the
    broker through the client library and writes results to out and
    diagnostics to err. It never exits the process, keeps no state between
    calls and touches no global (getenv aside), so tests run it in-process,
    many times. `jobq --help` lists the commands and options.

    Exit codes: 0 success; 1 the broker refused the request, could not be
    reached, or a watched job failed or was cancelled; 2 misuse (the
    message names what was wrong); 3 a watch gave up (its --timeout); 130
    a wait was interrupted (interrupt became nonzero, or a signal arrived).
*/
#ifndef JOBQ_CLI_H_INCLUDED
#define JOBQ_CLI_H_INCLUDED

#include <signal.h>
#include <stdio.h>

//  Run `jobq` with argc words in argv; returns the exit code. out and err
//  stay open and are only written to; a watch redraws its progress bar in
//  place when out is a terminal. interrupt (may be NULL) is the flag the
//  program's SIGINT handler sets: every wait for the broker ends once it
//  is nonzero.
int jobq_cli_run(int argc,
                 char **argv,
                 FILE *out,
                 FILE *err,
                 volatile sig_atomic_t *interrupt);

#endif
