/*  test_bench.c: the benchmark's own programs, run small: each exits 0 and
    ends with the CSV line bench/run.sh collects, its figures in order
    (p50 <= p99 <= p99.9, rates above zero); a bad call exits 2; and
    bench/table.py reads those rows into the targets. So `make bench`
    cannot rot unnoticed between full runs. */
#include "jobq_test.h"
#include "jobq/jobq_client.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    double rate;  //  jobs_per_s, 0 when empty
    int64_t p50, p99, p999;
} s_row_t;

//  Run a program (argv[0] names it in JOBQ_BENCH_DIR, or is a path) with
//  its output in dir/out.txt; returns its exit code, or -1 if it did not
//  end within 150 s (longer than any bench program's own limit). It runs
//  in a process group of its own, which is killed whole, so a broker or
//  worker it started cannot outlive it.
static int
s_run(const char *dir, char *argv[])
{
    char path[600], log[600];
    if (argv[0][0] != '/') {
        snprintf(path, sizeof path, "%s/%s", JOBQ_BENCH_DIR, argv[0]);
        argv[0] = path;
    }
    snprintf(log, sizeof log, "%s/out.txt", dir);
    remove(log);
    pid_t pid = jobq_test_spawn(argv, log);
    assert_true(pid > 0);
    int status = jobq_test_wait(pid, 150000);
    kill(-pid, SIGKILL);  //  anything of its group still there
    if (status >= 0 && WIFEXITED(status))
        return WEXITSTATUS(status);
    print_message("%s: %s %d\n", argv[0],
                  status < 0 ? "did not end in time, status"
                             : "killed by signal",
                  status < 0 ? status : WTERMSIG(status));
    return -1;
}

//  The directory of jobq-broker and jobq-worker (JOBQ_BIN_DIR, which ctest
//  sets; jobq_test_bin says so when it is missing).
static void
s_bin_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s", jobq_test_bin("jobq-broker"));
    char *slash = strrchr(out, '/');
    assert_non_null(slash);
    *slash = '\0';
}

//  A temporary directory for a case that needs the program at path: the
//  case is skipped, not passed, on a machine without it.
static char *
s_tmpdir_with(const char *path)
{
    if (access(path, X_OK) != 0)
        skip();
    return jobq_test_tmpdir();
}

//  The line of dir/out.txt that starts with prefix (system,mode,scenario,),
//  parsed. Fails the test if there is none or it is malformed.
static s_row_t
s_row_min(const char *dir, const char *prefix, int64_t min_p50)
{
    char log[600], line[512];
    snprintf(log, sizeof log, "%s/out.txt", dir);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    bool found = false;
    s_row_t r = {0};
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, prefix, strlen(prefix)) != 0)
            continue;
        const char *p = line + strlen(prefix);
        char *end;
        if (*p != ',') {
            r.rate = strtod(p, &end);
            p = end;
        }
        assert_int_equal(*p, ',');
        int n = sscanf(p, ",%" SCNd64 ",%" SCNd64 ",%" SCNd64 ",", &r.p50,
                       &r.p99, &r.p999);
        assert_int_equal(n, 3);
        found = true;
    }
    fclose(f);
    if (!found)
        fail_msg("no line starting with %s", prefix);
    assert_true(r.p50 >= min_p50);
    assert_true(r.p50 <= r.p99);
    assert_true(r.p99 <= r.p999);
    return r;
}

static s_row_t
s_row(const char *dir, const char *prefix)
{
    return s_row_min(dir, prefix, 1);
}

//  Whether a line of dir/out.txt holds needle.
static bool
s_out_has(const char *dir, const char *needle)
{
    char path[600], line[512];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

//  How many entries dir holds (. and .. aside).
static int
s_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void
test_commit_floor_times_full_sync_commits(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    char floor[600];
    snprintf(floor, sizeof floor, "%s/floor", dir);
    assert_int_equal(mkdir(floor, 0700), 0);
    char *argv[] = {"commit_floor", floor, "--jobs", "20", NULL};
    assert_int_equal(s_run(dir, argv), 0);
    s_row_t r = s_row(dir, "lmdb,commit-floor,enqueue-ack,");
    assert_true(r.rate > 0);
    assert_int_equal(s_entries(floor), 0);  //  its environment is gone
    char *few[] = {"commit_floor", floor, "--jobs", "5", NULL};
    assert_int_equal(s_run(dir, few), 2);
    char *junk[] = {"commit_floor", floor, "--jobs", "20x", NULL};
    assert_int_equal(s_run(dir, junk), 2);
    char *none[] = {"commit_floor", NULL};
    assert_int_equal(s_run(dir, none), 2);
    char *nodir[] = {"commit_floor", "/nonexistent/jobq", NULL};
    assert_int_equal(s_run(dir, nodir), 1);  //  named, not a crash
    jobq_test_rmtree(dir);
    free(dir);
}

//  jobq_codec prints one row per body and operation, each a time per
//  message; a bad count is refused.
static void
test_codec_times_each_body_and_operation(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    char *argv[] = {"jobq_codec", "200", NULL};
    assert_int_equal(s_run(dir, argv), 0);
    static const char *const rows[] = {"ENQUEUE,",   "JOB,",     "REPLY-job,",
                                       ",encode,",   ",decode,", ",check,",
                                       ",msgpack-c,"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_true(s_out_has(dir, rows[i]));
    char path[600], line[256];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        double ns = 0;
        const char *last = strrchr(line, ',');
        if (n++ == 0 || !last)
            continue;  //  the header
        ns = strtod(last + 1, NULL);
        assert_true(ns > 0);
    }
    fclose(f);
    assert_int_equal(n, 1 + 3 * 4);
    char *bad[] = {"jobq_codec", "0", NULL};
    assert_int_equal(s_run(dir, bad), 2);
    jobq_test_rmtree(dir);
    free(dir);
}

static void
test_latency_through_broker_and_worker(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    char bin[600];
    s_bin_dir(bin, sizeof bin);
    char *argv[] = {"jobq_latency", bin, "--jobs", "20", NULL};
    assert_int_equal(s_run(dir, argv), 0);
    s_row(dir, "jobq,sync,enqueue-ack,");
    s_row(dir, "jobq,sync,idle-dispatch,");
    assert_true(s_out_has(dir, "jobs=20 missed=0"));
    char *bad[] = {"jobq_latency", bin, "--jobs", "1", NULL};
    assert_int_equal(s_run(dir, bad), 2);
    char *raw[] = {"jobq_latency", bin, "--raw", "x", NULL};
    assert_int_equal(s_run(dir, raw), 2);
    jobq_test_rmtree(dir);
    free(dir);
}

//  Through jobq-gateway: the HTTP cycle, and event streams that each end
//  with their job's last version (sse_bench fails otherwise).
static void
test_gateway_cycle_and_event_streams(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    char bin[600];
    s_bin_dir(bin, sizeof bin);
    char *cycle[] = {
        "gateway_bench", bin,  "--producers", "2", "--workers", "2",
        "--jobs",        "40", NULL};
    assert_int_equal(s_run(dir, cycle), 0);
    s_row(dir, "jobq,http,cycle-2x2,");
    char *sse[] = {"sse_bench", bin,         "--streams", "40", "--jobs",
                   "4",         "--seconds", "2",         NULL};
    assert_int_equal(s_run(dir, sse), 0);
    //  A stream may hold an event before the bench's own subscriber sees
    //  it: such a delay counts as 0, and a small run's median can be 0.
    s_row_min(dir, "jobq,sse,fanout-40,", 0);
    assert_true(s_out_has(dir, "held=40 ended=40"));
    char *bad[] = {"sse_bench", bin, "--streams", "0", NULL};
    assert_int_equal(s_run(dir, bad), 2);
    char *odd[] = {"sse_bench", bin, "--stagger", NULL};
    assert_int_equal(s_run(dir, odd), 2);
    jobq_test_rmtree(dir);
    free(dir);
}

static void
test_cycle_plain_batched_pipelined(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    char bin[600];
    s_bin_dir(bin, sizeof bin);
    //  plain, then 16 per ENQUEUE_BATCH, then 8 single ENQUEUEs in flight
    const char *extra[3][4] = {{"--batch", "1", "--pipeline", "1"},
                               {"--batch", "16", "--prefetch", "32"},
                               {"--pipeline", "8", "--prefetch", "32"}};
    const char *rows[3] = {"jobq,sync,cycle-2x2,",
                           "jobq,sync-batched,cycle-2x2,",
                           "jobq,sync-pipelined,cycle-2x2,"};
    for (int i = 0; i < 3; i++) {
        char *argv[] = {"jobq_bench",
                        bin,
                        "--producers",
                        "2",
                        "--workers",
                        "2",
                        "--jobs",
                        "200",
                        (char *) extra[i][0],
                        (char *) extra[i][1],
                        (char *) extra[i][2],
                        (char *) extra[i][3],
                        NULL};
        assert_int_equal(s_run(dir, argv), 0);
        s_row_t r = s_row(dir, rows[i]);
        assert_true(r.rate > 0);
    }
    char *zero[] = {"jobq_bench", bin, "--producers", "0", NULL};
    assert_int_equal(s_run(dir, zero), 2);
    char *unknown[] = {"jobq_bench", bin, "--floors", "1", NULL};
    assert_int_equal(s_run(dir, unknown), 2);
    jobq_test_rmtree(dir);
    free(dir);
}

//  totals.pending in the broker's STATS reply, or -1.
static int64_t
s_pending(const jobq_test_broker_t *b)
{
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b->clients;
    cfg.timeout_ms = 2000;
    jobq_client_t *c = jobq_client_new(&cfg);
    jobq_bytes_t body = {NULL, 0}, totals, v;
    uint64_t n = 0;
    bool ok = c && jobq_client_stats(c, &body) == JOBQ_OK &&
              jobq_mp_map_find(body, "totals", &totals) == JOBQ_OK &&
              jobq_mp_map_find(totals, "pending", &v) == JOBQ_OK;
    if (ok) {
        jobq_mp_reader_t r;
        jobq_mp_reader_init(&r, v.ptr, v.len);
        ok = jobq_mp_read_uint(&r, &n) == JOBQ_OK;
    }
    free((void *) body.ptr);
    jobq_client_destroy(&c);
    return ok ? (int64_t) n : -1;
}

//  The restart scenario's jobq side: a store filled through the broker's
//  store layer, which a broker then opens with every job pending, and the
//  wait that times it.
static void
test_fill_makes_a_store_the_broker_restarts_on(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    char *fill[] = {"jobq_fill", "fill", data, "500", NULL};
    assert_int_equal(s_run(dir, fill), 0);
    jobq_test_broker_t b = {.pid = -1};
    assert_int_equal(jobq_test_broker_start(&b, dir, NULL), 0);
    int64_t pending = s_pending(&b);
    char *wait[] = {"jobq_fill", "wait", b.clients, NULL};
    int rc = s_run(dir, wait);
    jobq_test_broker_stop(&b, SIGTERM);
    assert_int_equal(pending, 500);
    assert_int_equal(rc, 0);
    char out[600], line[64];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char *end = NULL;
    long ms = fgets(line, sizeof line, f) ? strtol(line, &end, 10) : -1;
    fclose(f);
    assert_true(ms >= 0 && end && *end == '\n');  //  the ms it took
    char *zero[] = {"jobq_fill", "fill", data, "0", NULL};
    assert_int_equal(s_run(dir, zero), 2);
    char *none[] = {"jobq_fill", "wait", NULL};
    assert_int_equal(s_run(dir, none), 2);
    jobq_test_rmtree(dir);
    free(dir);
}

//  True once something accepts TCP connections on 127.0.0.1:*(int *) arg.
static bool
s_listening(void *arg)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t) * (int *) arg)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *) &a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

//  beanstalk_bench against a real beanstalkd with fsync on every write,
//  when one is installed (bench/run.sh installs it; the test machine may
//  not have it, and then this case is skipped, not passed): idle mode,
//  the pipelined cycle, and the restart's fill and wait.
static void
test_beanstalkd_idle_cycle_and_fill(void **state)
{
    (void) state;
    const char *bin = "/usr/bin/beanstalkd";
    char *dir = s_tmpdir_with(bin);
    char binlog[600], port[16], blog[600];
    snprintf(binlog, sizeof binlog, "%s/binlog", dir);
    assert_int_equal(mkdir(binlog, 0700), 0);
    snprintf(port, sizeof port, "%d", jobq_test_free_port());
    snprintf(blog, sizeof blog, "%s/beanstalkd.log", dir);
    char *server[] = {(char *) bin, "-l",   "127.0.0.1", "-p", port,
                      "-b",         binlog, "-f",        "0",  NULL};
    pid_t bs = jobq_test_spawn(server, blog);
    assert_true(bs > 0);
    char *idle[] = {"beanstalk_bench", port,        "--idle", "20",
                    "--mode",          "binlog-f0", NULL};
    //  16 puts in flight per producer, deletes sent with the next reserve
    char *piped[] = {"beanstalk_bench",
                     port,
                     "--producers",
                     "2",
                     "--workers",
                     "2",
                     "--jobs",
                     "400",
                     "--mode",
                     "binlog-pipelined",
                     "--pipeline",
                     "16",
                     NULL};
    char *fill[] = {"beanstalk_bench", port, "--fill", "300", NULL};
    char *ready[] = {"beanstalk_bench", port, "--wait-ready", "300", NULL};
    char *bad[] = {"beanstalk_bench", port, "--pipeline", "0", NULL};
    char *unknown[] = {"beanstalk_bench", port, "--raw", "x", NULL};
    int port_n = atoi(port);
    bool up = jobq_test_wait_until(s_listening, &port_n, 10000);
    int rc = up ? s_run(dir, idle) : -1;
    if (rc == 0) {
        s_row(dir, "beanstalkd,binlog-f0,enqueue-ack,");
        s_row(dir, "beanstalkd,binlog-f0,idle-dispatch,");
        rc = s_run(dir, piped);
    }
    if (rc == 0) {
        s_row_t r = s_row(dir, "beanstalkd,binlog-pipelined,cycle-2x2,");
        assert_true(r.rate > 0);
        rc = s_run(dir, fill);
    }
    if (rc == 0)
        rc = s_run(dir, ready);
    if (rc == 0)
        rc = s_run(dir, bad) == 2 && s_run(dir, unknown) == 2 ? 0 : -2;
    jobq_test_stop(bs, SIGTERM, 5000);
    assert_int_equal(rc, 0);
    jobq_test_rmtree(dir);
    free(dir);
}

//  bench/table.py reads the rows these programs write and prints the
//  targets with the figures of the same run, when python3 is installed
//  (skipped otherwise).
static void
test_table_reads_the_rows(void **state)
{
    (void) state;
    const char *py = "/usr/bin/python3";
    char *dir = s_tmpdir_with(py);
    char csv[600];
    snprintf(csv, sizeof csv, "%s/rows.csv", dir);
    FILE *f = fopen(csv, "w");
    assert_non_null(f);
    fputs("system,mode,scenario,jobs_per_s,p50_us,p99_us,p999_us,rss_kb\n"
          "jobq,sync,cycle-1x1,800,1200,2000,3000,\n"
          "jobq,sync-batched,cycle-1x1,20000,2500,9000,9500,\n"
          "jobq,sync,idle-dispatch,,400,900,2000,\n"
          "beanstalkd,binlog-default,cycle-1x1,4000,80,300,700,\n"
          "beanstalkd,binlog-pipelined,cycle-1x1,12000,900,3000,4000,\n"
          "beanstalkd,binlog-f0,idle-dispatch,,250,1300,4000,\n"
          "lmdb,commit-floor,enqueue-ack,2000,480,2000,3000,\n"
          "jobq,sync,restart-1000,,11000,,,808\n"
          "beanstalkd,binlog-default,restart-1000,,4000000,,,500000\n",
          f);
    fclose(f);
    char *argv[] = {(char *) py, JOBQ_SOURCE_DIR "/bench/table.py", csv, NULL};
    assert_int_equal(s_run(dir, argv), 0);
    //  the ratio columns: 800 and 20000 over beanstalkd's 4000
    assert_true(s_out_has(dir, "cycle-1x1           4000       80      300 "
                               "      0.20x        5.00x              -"));
    assert_true(s_out_has(dir, "MISSED cycle 1x1   jobq sync "));
    assert_true(s_out_has(dir, "met    cycle 1x1   jobq sync-batched"));
    //  against the pipelined peer: batched 20000 / 12000 falls short
    assert_true(s_out_has(dir, "MISSED cycle 1x1   jobq sync-batched     "
                               "20000 vs beanstalkd binlog-pipelined   "
                               "12000 = 1.67x"));
    //  plain sync, one request at a time, is not held against it
    assert_false(s_out_has(dir, "jobq sync               800 vs beanstalkd "
                                "binlog-pipelined"));
    //  no BullMQ rows: each of its targets says so, not a verdict
    assert_true(s_out_has(dir, "-      cycle 1x1 jobq sync vs bullmq "
                               "aof-always: no figure"));
    assert_true(s_out_has(dir, "MISSED idle dispatch p50 400 us vs "
                               "beanstalkd -f 0 250 us = 1.60x"));
    assert_true(s_out_has(dir, "met    idle dispatch p99 900 us"));
    assert_true(s_out_has(dir, "met    restart with 1000 jobs: jobq 11 ms "
                               "vs beanstalkd 4000 ms"));
    assert_true(s_out_has(dir, "met    memory with 1000 jobs"));
    assert_true(s_out_has(dir, "makes at most 2083 jobs/s (2x beanstalkd's "
                               "1x1 needs 8000)"));
    jobq_test_rmtree(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_floor_times_full_sync_commits),
        cmocka_unit_test(test_codec_times_each_body_and_operation),
        cmocka_unit_test(test_latency_through_broker_and_worker),
        cmocka_unit_test(test_cycle_plain_batched_pipelined),
        cmocka_unit_test(test_gateway_cycle_and_event_streams),
        cmocka_unit_test(test_fill_makes_a_store_the_broker_restarts_on),
        cmocka_unit_test(test_beanstalkd_idle_cycle_and_fill),
        cmocka_unit_test(test_table_reads_the_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
