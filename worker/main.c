/*  jobq-worker: runs the shipped processors for a broker. */
#include "jobq/jobq_worker.h"
#include "jobq_processors.h"

#include <czmq.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
s_usage(FILE *out)
{
    fprintf(
        out,
        "usage: jobq-worker [options]\n"
        "\n"
        "Run jobs handed out by a jobq broker.\n"
        "\n"
        "  --broker EP         broker worker endpoint\n"
        "                      (default tcp://127.0.0.1:5556)\n"
        "  --clients EP        broker client endpoint, for processors that\n"
        "                      read other jobs (default tcp://127.0.0.1:5555)\n"
        "  --types a,b         job types to run (default: all registered)\n"
        "  --concurrency N     jobs at once, 1..1024 (default 4)\n"
        "  --prefetch N        jobs held waiting for a free slot (default 0);\n"
        "                      for many short jobs. A held job's timeout\n"
        "                      runs from its dispatch\n"
        "  --name NAME         worker name, 1-64 printable characters\n"
        "  --export-dir DIR    where processors write files\n"
        "                      (default ./var/exports)\n"
        "  --grace-ms MS       on SIGTERM, time running jobs get to finish\n"
        "                      (default 10000)\n"
        "  --verbose           log each job\n"
        "  --list              print the registered types and exit\n"
        "  --help, --version\n");
}

int
main(int argc, char **argv)
{
    jobq_worker_config_t cfg;
    jobq_worker_config_defaults(&cfg);
    char *types_arg = NULL;
    bool list = false;
    static const struct option opts[] = {
        {"broker", required_argument, 0, 'b'},
        {"clients", required_argument, 0, 'c'},
        {"types", required_argument, 0, 't'},
        {"concurrency", required_argument, 0, 'n'},
        {"prefetch", required_argument, 0, 'p'},
        {"name", required_argument, 0, 'N'},
        {"export-dir", required_argument, 0, 'x'},
        {"grace-ms", required_argument, 0, 'g'},
        {"verbose", no_argument, 0, 'v'},
        {"list", no_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        unsigned long long v = 0;
        switch (c) {
        case 'b':
            cfg.broker = optarg;
            break;
        case 'c':
            cfg.clients = optarg;
            break;
        case 't':
            types_arg = optarg;
            break;
        case 'N':
            cfg.name = optarg;
            break;
        case 'x':
            cfg.export_dir = optarg;
            break;
        case 'v':
            cfg.verbose = true;
            break;
        case 'l':
            list = true;
            break;
        case 'n':
        case 'p':
        case 'g':
            errno = 0;
            v = strtoull(optarg, &end, 10);
            if (!*optarg || *end || errno || optarg[0] == '-' ||
                (c == 'n' && (v < 1 || v > JOBQ_MAX_CAPACITY)) ||
                (c == 'p' && v > JOBQ_MAX_CAPACITY - 1) ||
                (c == 'g' && v > 3600000)) {
                fprintf(stderr, "jobq-worker: %s: bad number '%s'\n",
                        c == 'n'   ? "--concurrency (1..1024)"
                        : c == 'p' ? "--prefetch (0..1023)"
                                   : "--grace-ms (0..3600000)",
                        optarg);
                return 2;
            }
            if (c == 'n')
                cfg.concurrency = (uint32_t) v;
            else if (c == 'p')
                cfg.prefetch = (uint32_t) v;
            else
                cfg.grace_ms = v;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        case 'V':
            printf("jobq-worker %s\n", JOBQ_VERSION_STRING);
            return 0;
        default:
            fprintf(stderr, "jobq-worker: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            s_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "jobq-worker: unexpected argument '%s'\n",
                argv[optind]);
        return 2;
    }
    if (cfg.concurrency + cfg.prefetch > JOBQ_MAX_CAPACITY) {
        fprintf(stderr,
                "jobq-worker: --concurrency plus --prefetch must be at most "
                "%d\n",
                JOBQ_MAX_CAPACITY);
        return 2;
    }
    jobq_registry_t *reg = jobq_registry_new();
    if (!reg || jobq_processors_register(reg) != JOBQ_OK) {
        fprintf(stderr, "jobq-worker: cannot build the registry\n");
        return 1;
    }
    if (list) {
        for (size_t i = 0; i < jobq_registry_count(reg); i++)
            printf("%s\n", jobq_registry_type(reg, i));
        jobq_registry_destroy(&reg);
        return 0;
    }
    const char *types[JOBQ_MAX_WORKER_TYPES + 1];
    if (types_arg) {
        size_t n = 0;
        for (char *save = NULL, *t = strtok_r(types_arg, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            if (n == JOBQ_MAX_WORKER_TYPES ||
                jobq_registry_find(reg, t, strlen(t), NULL, NULL) != JOBQ_OK) {
                fprintf(stderr, "jobq-worker: unknown type '%s' (see --list)\n",
                        t);
                jobq_registry_destroy(&reg);
                return 2;
            }
            types[n++] = t;
        }
        if (n == 0) {
            fprintf(stderr, "jobq-worker: --types is empty\n");
            jobq_registry_destroy(&reg);
            return 2;
        }
        types[n] = NULL;
        cfg.types = types;
    }
    if (cfg.name) {
        size_t n = strlen(cfg.name);
        bool ok = n >= 1 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = cfg.name[i] > 0x20 && cfg.name[i] < 0x7f;
        if (!ok) {
            fprintf(stderr, "jobq-worker: --name must be 1-64 printable "
                            "characters without spaces\n");
            jobq_registry_destroy(&reg);
            return 2;
        }
    }
    zsys_handler_set(NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    jobq_worker_t *w = jobq_worker_new(&cfg, reg);
    if (!w) {
        fprintf(stderr, "jobq-worker: out of memory\n");
        jobq_registry_destroy(&reg);
        return 1;
    }
    fprintf(stderr, "jobq-worker: serving %s with %u slots, prefetch %u\n",
            cfg.broker, cfg.concurrency, cfg.prefetch);
    int rc = jobq_worker_run(w, &s_stop);
    if (rc != JOBQ_OK)
        fprintf(stderr, "jobq-worker: %s\n", jobq_strerror(rc));
    jobq_worker_destroy(&w);
    jobq_registry_destroy(&reg);
    return rc == JOBQ_OK ? 0 : 1;
}
