/*  jobq-broker: the broker process. */
#include "jobq_app.h"
#include "jobq_broker.h"
#include "jobq_repair.h"
#include "jobq_sched.h"

#include <getopt.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_IO_SLICE_NS 100000  //  ZeroMQ I/O threads: 0.1 ms, the shortest

#define S_PROG "jobq-broker"

static void
s_usage(FILE *out)
{
    fprintf(
        out,
        "usage: jobq-broker [options]\n"
        "\n"
        "Persist jobs in LMDB and hand them to workers over ZeroMQ.\n"
        "\n"
        "  --data DIR          data directory (default ./var/jobq)\n"
        "  --store URI         lmdb:DIR (the default, as --data), or\n"
        "                      nats://HOST:PORT[,HOST:PORT...][?replicas=N]:\n"
        "                      share the jobs with other brokers on a NATS\n"
        "                      JetStream cluster (replicas default 3)\n"
        "  --nats-creds FILE   NATS credentials file for --store nats://\n"
        "  --clients EP        client endpoint (default tcp://127.0.0.1:5555)\n"
        "  --workers EP        worker endpoint (default tcp://127.0.0.1:5556)\n"
        "  --events EP         event endpoint  (default tcp://127.0.0.1:5557)\n"
        "  --map-size MB       initial LMDB map size (default 1024)\n"
        "  --map-max MB        grow the map up to this (default 65536, 0 = "
        "never)\n"
        "  --lease-ms MS       a held job is lost after this worker silence\n"
        "                      (default 15000)\n"
        "  --worker-timeout-ms MS  a silent worker is dropped (default 5000)\n"
        "  --heartbeat-ms MS   broker heartbeat to workers (default 1000)\n"
        "  --retry-base-ms MS  first retry delay, doubled per attempt\n"
        "                      (default 1000)\n"
        "  --retain-ms MS      ended jobs are deleted this long after they\n"
        "                      end (default 604800000, 7 days; 0 = never)\n"
        "  --grace-ms MS       on SIGTERM or Ctrl-C, wait this long at most\n"
        "                      for running jobs to report (default 15000);\n"
        "                      a second signal stops at once\n"
        "  --types A,B,...     accept only jobs of these types; any other\n"
        "                      is refused with unknown_type (default: any)\n"
        "  --event-hwm N       events queued per slow subscriber before\n"
        "                      they are dropped (default 10000)\n"
        "  --keys FILE         who may connect, with which roles and shops\n"
        "                      (docs/PROTOCOL.md section 13); every\n"
        "                      endpoint then speaks CURVE only; SIGHUP\n"
        "                      reads the file again\n"
        "  --cert FILE_secret  the broker's own certificate (jobq keygen),\n"
        "                      required with --keys\n"
        "  --insecure          without --keys, bind beyond loopback anyway\n"
        "  --quota-pending N   unfinished jobs a shop may hold; beyond,\n"
        "                      quota_exceeded (a key's quota-pending= wins;\n"
        "                      default no limit)\n"
        "  --quota-bytes N     bytes of job records a shop may hold before\n"
        "                      new jobs are refused (default no limit)\n"
        "  --max-connections N with --keys: connections in all before\n"
        "                      only worker and admin keys get in (default:\n"
        "                      90%% of the file descriptor limit)\n"
        "  --verify DIR        check the store in DIR (the broker stopped)\n"
        "                      and exit: 0 sound, 1 damaged\n"
        "  --repair DIR        rebuild the store in DIR from its sound\n"
        "                      records, the damaged file kept aside\n"
        "  --refused-log-ms MS log refused messages at most once per cause\n"
        "                      per MS, with their count (default 10000;\n"
        "                      0 = every one); STATS counts them all\n"
        "  --quiet             log errors only\n"
        "  --verbose           log every bad message too\n"
        "  --help              this text\n"
        "  --version           print the version\n");
}

//  --types: one or more valid job types, comma-separated.
static bool
s_types_ok(const char *list)
{
    const char *p = list;
    do {
        size_t len = strcspn(p, ",");
        jobq_str_t t = {p, len};
        if (!jobq_proto_valid_type(t)) {
            fprintf(stderr,
                    S_PROG ": --types: '%.*s' is not a job type (use 1-64 of "
                           "[a-z0-9_.-], comma-separated)\n",
                    (int) (len > 80 ? 80 : len), p);
            return false;
        }
        p += len;
    } while (*p++ == ',');
    return true;
}

//  Parse a number option into *out (see jobq_app_number).
#define S_NUMBER(opt, min, max, out)                                           \
    jobq_app_number(S_PROG, opt, optarg, min, max, out)

//  Every connection holds a file descriptor, and the usual soft limit
//  (1,024) is one that idle connections from anyone fill quickly: take the
//  hard limit, and say what it is.
static void
s_raise_fd_limit(jobq_log_t *log)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        return;
    rlim_t was = r.rlim_cur;
    if (r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0)
            r.rlim_cur = was;
    }
    if (r.rlim_cur != was)
        jobq_log_write(log, JOBQ_LOG_NOTICE,
                       "file descriptors: %llu (raised from %llu, the hard "
                       "limit)",
                       (unsigned long long) r.rlim_cur,
                       (unsigned long long) was);
    else
        jobq_log_write(
            log, JOBQ_LOG_NOTICE, "file descriptors: %llu (hard limit %llu)",
            (unsigned long long) r.rlim_cur, (unsigned long long) r.rlim_max);
}

int
main(int argc, char **argv)
{
    jobq_broker_config_t cfg;
    jobq_broker_config_defaults(&cfg);
    jobq_log_t log = {stderr, JOBQ_LOG_NOTICE, "broker"};
    int tool = 0;  //  'y' --verify, 'Y' --repair, 0 serve
    const char *tool_dir = NULL;
    cfg.log = &log;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"store", required_argument, 0, 'S'},
        {"nats-creds", required_argument, 0, 'N'},
        {"clients", required_argument, 0, 'c'},
        {"workers", required_argument, 0, 'w'},
        {"events", required_argument, 0, 'e'},
        {"map-size", required_argument, 0, 'm'},
        {"map-max", required_argument, 0, 'M'},
        {"lease-ms", required_argument, 0, 'l'},
        {"worker-timeout-ms", required_argument, 0, 't'},
        {"heartbeat-ms", required_argument, 0, 'b'},
        {"retry-base-ms", required_argument, 0, 'r'},
        {"event-hwm", required_argument, 0, 'H'},
        {"retain-ms", required_argument, 0, 'R'},
        {"grace-ms", required_argument, 0, 'g'},
        {"refused-log-ms", required_argument, 0, 'L'},
        {"types", required_argument, 0, 'T'},
        {"keys", required_argument, 0, 'K'},
        {"cert", required_argument, 0, 'k'},
        {"insecure", no_argument, 0, 'I'},
        {"max-connections", required_argument, 0, 'C'},
        {"quota-pending", required_argument, 0, 'Q'},
        {"quota-bytes", required_argument, 0, 'B'},
        {"verify", required_argument, 0, 'y'},
        {"repair", required_argument, 0, 'Y'},
        {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c;
    uint64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            cfg.data_dir = optarg;
            break;
        case 'S':
            if (strncmp(optarg, "lmdb:", 5) == 0 && optarg[5]) {
                cfg.data_dir = optarg + 5;
                cfg.nats_urls = NULL;
            } else if (strncmp(optarg, "nats://", 7) == 0 && optarg[7]) {
                cfg.nats_urls = optarg;
            } else {
                fprintf(stderr,
                        S_PROG ": --store: '%.200s' is neither lmdb:DIR nor "
                               "nats://HOST:PORT[,HOST:PORT...]\n",
                        optarg);
                return 2;
            }
            break;
        case 'N':
            cfg.nats_creds = optarg;
            break;
        case 'c':
            cfg.clients_ep = optarg;
            break;
        case 'w':
            cfg.workers_ep = optarg;
            break;
        case 'e':
            cfg.events_ep = optarg;
            break;
        case 'm':
            if (!S_NUMBER("--map-size", 1, 1u << 24, &v))
                return 2;
            cfg.map_size = v << 20;
            break;
        case 'M':
            if (!S_NUMBER("--map-max", 0, 1u << 24, &v))
                return 2;
            cfg.map_max = v << 20;
            break;
        case 'l':
            if (!S_NUMBER("--lease-ms", 100, 86400000, &v))
                return 2;
            cfg.engine.lease_ms = v;
            break;
        case 't':
            if (!S_NUMBER("--worker-timeout-ms", 100, 86400000, &v))
                return 2;
            cfg.engine.worker_timeout_ms = v;
            break;
        case 'b':
            if (!S_NUMBER("--heartbeat-ms", 10, 600000, &v))
                return 2;
            cfg.engine.heartbeat_ms = v;
            break;
        case 'r':
            if (!S_NUMBER("--retry-base-ms", 0, 3600000, &v))
                return 2;
            cfg.engine.retry_base_ms = v;
            break;
        case 'R':
            if (!S_NUMBER("--retain-ms", 0, 3650ull * 86400000, &v))
                return 2;
            cfg.engine.retain_ms = v;
            break;
        case 'y':
        case 'Y':
            if (tool) {
                fprintf(stderr, "%s: --verify and --repair go alone\n", S_PROG);
                return 2;
            }
            tool = c;
            tool_dir = optarg;
            break;
        case 'g':
            if (!S_NUMBER("--grace-ms", 0, 3600000, &v))
                return 2;
            cfg.grace_ms = v;
            break;
        case 'L':
            if (!S_NUMBER("--refused-log-ms", 0, 86400000, &v))
                return 2;
            cfg.refused_log_ms = v;
            break;
        case 'T':
            if (!s_types_ok(optarg))
                return 2;
            cfg.engine.types = optarg;
            break;
        case 'H':
            if (!S_NUMBER("--event-hwm", 1, 10000000, &v))
                return 2;
            cfg.event_hwm = (uint32_t) v;
            break;
        case 'K':
            cfg.keys_file = optarg;
            break;
        case 'k':
            cfg.cert_file = optarg;
            break;
        case 'I':
            cfg.insecure = true;
            break;
        case 'C':
            if (!S_NUMBER("--max-connections", 1, 1u << 20, &v))
                return 2;
            cfg.max_conns = (uint32_t) v;
            break;
        case 'Q':
            if (!S_NUMBER("--quota-pending", 1, 1000000000000ull, &v))
                return 2;
            cfg.engine.quota_pending = v;
            break;
        case 'B':
            if (!S_NUMBER("--quota-bytes", 1, 1000000000000000ull, &v))
                return 2;
            cfg.engine.quota_bytes = v;
            break;
        case 'q':
            log.level = JOBQ_LOG_ERROR;
            break;
        case 'v':
            log.level = JOBQ_LOG_INFO;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        case 'V':
            printf("jobq-broker %s\n", JOBQ_VERSION_STRING);
            return 0;
        default:
            return jobq_app_bad_option(S_PROG, argv, s_usage);
        }
    }
    if (jobq_app_no_operands(S_PROG, argc, argv))
        return 2;
    if (tool) {
        //  Offline tools: they run alone and exit, 0 sound (or repaired),
        //  1 damaged, 2 the directory is in use.
        jobq_repair_report_t r;
        int rc = tool == 'y' ? jobq_verify(tool_dir, stdout, &r)
                             : jobq_repair(tool_dir, stdout, &r);
        return rc == JOBQ_OK ? 0 : rc == JOBQ_EUNAVAILABLE ? 2 : 1;
    }
#ifdef JOBQ_FAULTS
    //  Test builds: JOBQ_CRASH_AT=point[:N] kills the broker at a fault
    //  point (the Nth time it is reached).
    static char crash[64];
    const char *env = getenv("JOBQ_CRASH_AT");
    if (env && *env) {
        snprintf(crash, sizeof crash, "%s", env);
        char *colon = strchr(crash, ':');
        cfg.crash_after = 1;
        if (colon) {
            *colon = '\0';
            if (!jobq_app_number(S_PROG, "JOBQ_CRASH_AT count", colon + 1, 1,
                                 1000000, &v))
                return 2;
            cfg.crash_after = (uint32_t) v;
        }
        cfg.crash_at = crash;
    }
#endif
    if (cfg.cert_file && !cfg.keys_file) {
        fprintf(stderr,
                "%s: --cert needs --keys FILE, the keys that may connect\n",
                S_PROG);
        return 2;
    }
    if (cfg.insecure && cfg.keys_file) {
        fprintf(stderr, "%s: --insecure and --keys go apart\n", S_PROG);
        return 2;
    }
    if (cfg.map_max && cfg.map_max < cfg.map_size)
        cfg.map_max = cfg.map_size;
    static volatile sig_atomic_t stop = 0;
    static volatile sig_atomic_t reload = 0;
    jobq_app_signals(&stop);
    jobq_app_hangup(&reload);
    cfg.reload = &reload;
    s_raise_fd_limit(&log);
    //  Damaged data met inside LMDB fails that request, not the broker.
    if (jobq_store_lmdb_catch_faults() != JOBQ_OK)
        jobq_log_write(&log, JOBQ_LOG_WARN,
                       "cannot install the handler for faults in the data "
                       "file: damaged data may stop the broker");

    jobq_broker_t *b = jobq_broker_new(&cfg);
    if (!b) {
        fprintf(stderr, "jobq-broker: out of memory\n");
        return 1;
    }
    //  ZeroMQ starts its I/O threads with the first socket, and they take
    //  this thread's slice. A short one lets the I/O thread that carries a
    //  JOB out, or an acknowledgement, run as soon as it is woken instead
    //  of waiting while this thread writes the commit (README,
    //  "Scheduling"). This thread goes back to the default. Kernels before
    //  6.12 ignore both calls.
    bool short_io = jobq_sched_set_slice(S_IO_SLICE_NS) == 0;
    int rc = jobq_broker_start(b);
    if (short_io)
        jobq_sched_set_slice(0);
    if (rc == JOBQ_OK)
        rc = jobq_broker_run(b, &stop);
    jobq_broker_destroy(&b);
    return rc == JOBQ_OK ? 0 : 1;
}
