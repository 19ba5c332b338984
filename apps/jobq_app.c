/*  jobq_app.c: option and signal helpers of the programs. */
#include "jobq_app.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

bool
jobq_app_number(const char *prog,
                const char *opt,
                const char *arg,
                uint64_t min,
                uint64_t max,
                uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (!*arg || *end || errno || arg[0] == '-' || arg[0] == '+' || v < min ||
        v > max) {
        fprintf(stderr, "%s: %s needs a number from %llu to %llu, not '%s'\n",
                prog, opt, (unsigned long long) min, (unsigned long long) max,
                arg);
        return false;
    }
    *out = v;
    return true;
}

int
jobq_app_bad_option(const char *prog, char **argv, void (*usage)(FILE *out))
{
    fprintf(stderr, "%s: unknown or incomplete option '%s'\n", prog,
            argv[optind - 1]);
    usage(stderr);
    return 2;
}

int
jobq_app_no_operands(const char *prog, int argc, char **argv)
{
    if (optind >= argc)
        return 0;
    fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
    return 2;
}

//  The one flag a handler may write: set by jobq_app_signals, read nowhere
//  else. A program has one set of signal dispositions, so one flag.
static volatile sig_atomic_t *s_flag;

static void
s_on_signal(int sig)
{
    if (s_flag)
        *s_flag = *s_flag ? -1 : sig;  //  a second signal: stop at once
}

void
jobq_app_signals(volatile sig_atomic_t *stop)
{
    s_flag = stop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static volatile sig_atomic_t *s_hangup;

static void
s_on_hangup(int sig)
{
    (void) sig;
    if (s_hangup)
        *s_hangup = 1;
}

void
jobq_app_hangup(volatile sig_atomic_t *flag)
{
    s_hangup = flag;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_hangup;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
}
