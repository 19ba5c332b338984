/*  jobq-worker: runs the shipped processors for a broker. */
#include "jobq/jobq_worker.h"
#include "jobq_app.h"
#include "jobq_processors.h"
#include "jobq_reviews.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PROG "jobq-worker"

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
        "                      (default tcp://127.0.0.1:5556); or a\n"
        "                      comma-separated list of up to 16 brokers\n"
        "                      that share a store: the worker serves one at\n"
        "                      a time and moves to the next after 5 s of\n"
        "                      silence\n"
        "  --clients EP        broker client endpoint, for processors that\n"
        "                      read other jobs (default "
        "tcp://127.0.0.1:5555);\n"
        "                      or a list, as --broker\n"
        "  --types a,b         job types to run (default: all registered)\n"
        "  --concurrency N     jobs at once, 1..1024 (default 4)\n"
        "  --prefetch N        jobs held waiting for a free slot (default 0);\n"
        "                      for many short jobs. A held job's timeout\n"
        "                      runs from its dispatch\n"
        "  --name NAME         worker name, 1-64 printable characters\n"
        "  --export-dir DIR    where processors write files\n"
        "                      (default ./var/exports)\n"
        "  --allow-private L   let scrape_reviews reach these addresses,\n"
        "                      ranges or hosts, comma-separated (127.0.0.1,\n"
        "                      10.0.0.0/8, fd00::/8, intranet.example);\n"
        "                      loopback, private, link-local and multicast\n"
        "                      addresses are refused otherwise. Repeatable\n"
        "  --allow-files DIR   let scrape_reviews read file:// URLs inside\n"
        "                      DIR (refused otherwise)\n"
        "  --cert FILE_secret  this worker's CURVE certificate (jobq keygen);\n"
        "                      or JOBQ_CERT. With keys, --name must be the\n"
        "                      key's name in the broker's key file, or\n"
        "                      that name, a dot and more\n"
        "  --broker-key KEY    the broker's public key (Z85) or certificate;\n"
        "                      or JOBQ_BROKER_KEY\n"
        "  --grace-ms MS       on SIGTERM or Ctrl-C, time running jobs get to\n"
        "                      finish (default 10000); a second signal\n"
        "                      stops at once\n"
        "  --verbose           log each job\n"
        "  --quiet             log errors only\n"
        "  --list              print the registered types and exit\n"
        "  --help, --version\n");
}

//  The registry of every processor this program ships. NULL after saying
//  why on stderr.
static jobq_registry_t *
s_registry(const jobq_netguard_t *guard)
{
    jobq_registry_t *reg = jobq_registry_new();
    if (!reg || jobq_processors_register(reg) != JOBQ_OK ||
        jobq_reviews_register(reg, guard) != JOBQ_OK) {
        fprintf(stderr, "%s: cannot build the registry\n", S_PROG);
        jobq_registry_destroy(&reg);
    }
    return reg;
}

//  Split the --types list (changed in place) into types, checking each
//  against reg. The number of types, or 0 after saying why.
static size_t
s_types(char *arg, const jobq_registry_t *reg, const char **types)
{
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(arg, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (n == JOBQ_MAX_WORKER_TYPES ||
            jobq_registry_find(reg, t, strlen(t), NULL, NULL) != JOBQ_OK) {
            fprintf(stderr, "%s: unknown type '%s' (see --list)\n", S_PROG, t);
            return 0;
        }
        types[n++] = t;
    }
    if (n == 0)
        fprintf(stderr, "%s: --types is empty\n", S_PROG);
    types[n] = NULL;
    return n;
}

static bool
s_name_ok(const char *name)
{
    size_t n = strlen(name);
    bool ok = n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = name[i] > 0x20 && name[i] < 0x7f;
    if (!ok)
        fprintf(stderr,
                "%s: --name must be 1-64 printable characters without "
                "spaces\n",
                S_PROG);
    return ok;
}

int
main(int argc, char **argv)
{
    jobq_worker_config_t cfg;
    jobq_worker_config_defaults(&cfg);
    jobq_log_t log = {stderr, JOBQ_LOG_NOTICE, "worker"};
    cfg.log = &log;
    char *types_arg = NULL;
    bool list = false;
    //  Lives as long as the processors that read it.
    static jobq_netguard_t guard;
    jobq_netguard_init(&guard);
    char why[300];
    const char *key_arg = NULL, *broker_key_arg = NULL;
    static const struct option opts[] = {
        {"broker", required_argument, 0, 'b'},
        {"clients", required_argument, 0, 'c'},
        {"types", required_argument, 0, 't'},
        {"concurrency", required_argument, 0, 'n'},
        {"prefetch", required_argument, 0, 'p'},
        {"name", required_argument, 0, 'N'},
        {"export-dir", required_argument, 0, 'x'},
        {"grace-ms", required_argument, 0, 'g'},
        {"allow-private", required_argument, 0, 'P'},
        {"allow-files", required_argument, 0, 'F'},
        {"cert", required_argument, 0, 'k'},
        {"broker-key", required_argument, 0, 'K'},
        {"verbose", no_argument, 0, 'v'},
        {"quiet", no_argument, 0, 'q'},
        {"list", no_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c;
    uint64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
        case 'k':
            key_arg = optarg;
            break;
        case 'K':
            broker_key_arg = optarg;
            break;
        case 'x':
            cfg.export_dir = optarg;
            break;
        case 'v':
            log.level = JOBQ_LOG_INFO;
            break;
        case 'q':
            log.level = JOBQ_LOG_ERROR;
            break;
        case 'l':
            list = true;
            break;
        case 'n':
            if (!jobq_app_number(S_PROG, "--concurrency", optarg, 1,
                                 JOBQ_MAX_CAPACITY, &v))
                return 2;
            cfg.concurrency = (uint32_t) v;
            break;
        case 'p':
            if (!jobq_app_number(S_PROG, "--prefetch", optarg, 0,
                                 JOBQ_MAX_CAPACITY - 1, &v))
                return 2;
            cfg.prefetch = (uint32_t) v;
            break;
        case 'g':
            if (!jobq_app_number(S_PROG, "--grace-ms", optarg, 0, 3600000, &v))
                return 2;
            cfg.grace_ms = v;
            break;
        case 'P':
            if (jobq_netguard_allow(&guard, optarg, why, sizeof why) !=
                JOBQ_OK) {
                fprintf(stderr, "%s: --allow-private: %s\n", S_PROG, why);
                return 2;
            }
            break;
        case 'F':
            if (jobq_netguard_allow_files(&guard, optarg, why, sizeof why) !=
                JOBQ_OK) {
                fprintf(stderr, "%s: --allow-files: %s\n", S_PROG, why);
                return 2;
            }
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        case 'V':
            printf("jobq-worker %s\n", JOBQ_VERSION_STRING);
            return 0;
        default:
            return jobq_app_bad_option(S_PROG, argv, s_usage);
        }
    }
    if (jobq_app_no_operands(S_PROG, argc, argv))
        return 2;
    if (cfg.broker &&
        jobq_endpoints_check(cfg.broker, why, sizeof why) != JOBQ_OK) {
        fprintf(stderr, "%s: --broker: %s\n", S_PROG, why);
        return 2;
    }
    if (cfg.clients &&
        jobq_endpoints_check(cfg.clients, why, sizeof why) != JOBQ_OK) {
        fprintf(stderr, "%s: --clients: %s\n", S_PROG, why);
        return 2;
    }
    if (cfg.concurrency + cfg.prefetch > JOBQ_MAX_CAPACITY) {
        fprintf(stderr,
                "%s: --concurrency plus --prefetch must be at most %d\n",
                S_PROG, JOBQ_MAX_CAPACITY);
        return 2;
    }
    if (cfg.name && !s_name_ok(cfg.name))
        return 2;
    static jobq_curve_t curve;
    int crc =
        jobq_curve_setup(&curve, key_arg, broker_key_arg, why, sizeof why);
    if (crc != JOBQ_OK && crc != JOBQ_ENOTFOUND) {
        fprintf(stderr, "%s: %s\n", S_PROG, why);
        return 2;
    }
    if (crc == JOBQ_OK) {
        if (!cfg.name) {
            fprintf(stderr,
                    "%s: with a key, give --name: the key's name in the "
                    "broker's key file (or that name, a dot and more)\n",
                    S_PROG);
            return 2;
        }
        cfg.curve = &curve;
    }
    jobq_registry_t *reg = s_registry(&guard);
    if (!reg)
        return 1;
    if (list) {
        for (size_t i = 0; i < jobq_registry_count(reg); i++)
            printf("%s\n", jobq_registry_type(reg, i));
        jobq_registry_destroy(&reg);
        return 0;
    }
    const char *types[JOBQ_MAX_WORKER_TYPES + 1];
    if (types_arg) {
        if (s_types(types_arg, reg, types) == 0) {
            jobq_registry_destroy(&reg);
            return 2;
        }
        cfg.types = types;
    }
    static volatile sig_atomic_t stop = 0;
    jobq_app_signals(&stop);

    jobq_worker_t *w = jobq_worker_new(&cfg, reg);
    if (!w) {
        fprintf(stderr, "%s: out of memory\n", S_PROG);
        jobq_registry_destroy(&reg);
        return 1;
    }
    jobq_log_write(&log, JOBQ_LOG_NOTICE,
                   "serving %s with %u slot%s, prefetch %u", cfg.broker,
                   cfg.concurrency, cfg.concurrency == 1 ? "" : "s",
                   cfg.prefetch);
    int rc = jobq_worker_run(w, &stop);
    if (rc != JOBQ_OK)
        jobq_log_write(&log, JOBQ_LOG_ERROR, "%s", jobq_strerror(rc));
    jobq_worker_destroy(&w);
    jobq_registry_destroy(&reg);
    return rc == JOBQ_OK ? 0 : 1;
}
