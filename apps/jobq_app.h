/*  jobq_app.h: what the three programs share around their options and
    signals. Programs only: the libraries never touch signals or exit.
*/
#ifndef JOBQ_APP_H_INCLUDED
#define JOBQ_APP_H_INCLUDED

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

//  Parse arg, the value of option opt, as a whole decimal number from min to
//  max into *out. On failure print "PROG: OPT needs a number from MIN to
//  MAX, not 'ARG'" on stderr and return false.
bool jobq_app_number(const char *prog,
                     const char *opt,
                     const char *arg,
                     uint64_t min,
                     uint64_t max,
                     uint64_t *out);

//  The getopt_long loop met an option it does not know, or one without its
//  value (argv[optind - 1]); say so, show usage on stderr, return 2.
int
jobq_app_bad_option(const char *prog, char **argv, void (*usage)(FILE *out));

//  Words left after the options: say so and return 2; 0 when none.
int jobq_app_no_operands(const char *prog, int argc, char **argv);

//  SIGINT and SIGTERM set *stop to the signal's number, and a second one to
//  -1 (stop now, without grace), and interrupt the blocking call in
//  progress (no SA_RESTART); SIGPIPE is ignored, so a closed socket or pipe
//  is an error to handle, not a death.
void jobq_app_signals(volatile sig_atomic_t *stop);

//  SIGHUP sets *flag to 1 (and interrupts the blocking call in progress).
void jobq_app_hangup(volatile sig_atomic_t *flag);

#endif
