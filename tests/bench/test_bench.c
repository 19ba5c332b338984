/*  test_bench.c: the benchmark's own programs, run small: each exits 0 and
    ends with the CSV line bench/run.sh collects, its figures in order
    (p50 <= p99 <= p99.9, rates above zero); a bad call exits 2. So `make
    bench` cannot rot unnoticed between full runs. */
#include "jobq_test.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
s_row(const char *dir, const char *prefix)
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
    assert_true(r.p50 > 0);
    assert_true(r.p50 <= r.p99);
    assert_true(r.p99 <= r.p999);
    return r;
}

static void
test_floors_relay_commit_pingpong(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    char *relay[] = {"floors", "relay", "--jobs", "20", NULL};
    assert_int_equal(s_run(dir, relay), 0);
    s_row(dir, "zeromq,relay-floor,idle-dispatch,");
    char *commit[] = {"floors", "commit", dir, "--jobs", "20", NULL};
    assert_int_equal(s_run(dir, commit), 0);
    s_row_t r = s_row(dir, "lmdb,commit-floor,enqueue-ack,");
    assert_true(r.rate > 0);
    //  one record into each of six databases per commit
    char *six[] = {"floors", "commit", dir, "--jobs", "20", "--dbs", "6", NULL};
    assert_int_equal(s_run(dir, six), 0);
    r = s_row(dir, "lmdb,commit-6-dbs,enqueue-ack,");
    assert_true(r.rate > 0);
    //  the same round trip between two processes, placed freely, then
    //  both on one CPU
    char *ping[] = {"floors", "pingpong", "--jobs", "20", NULL};
    assert_int_equal(s_run(dir, ping), 0);
    s_row(dir, "tcp,pingpong-any-cpu,round-trip,");
    s_row(dir, "tcp,pingpong-one-cpu,round-trip,");
    char *ping_raw[] = {"floors", "pingpong", "--raw", "x", NULL};
    assert_int_equal(s_run(dir, ping_raw), 2);
    char *bad[] = {"floors", "relay", "--jobs", "5", NULL};
    assert_int_equal(s_run(dir, bad), 2);
    char *many[] = {"floors", "commit", dir, "--dbs", "17", NULL};
    assert_int_equal(s_run(dir, many), 2);
    char *relay_dbs[] = {"floors", "relay", "--dbs", "2", NULL};
    assert_int_equal(s_run(dir, relay_dbs), 2);
    char *nodir[] = {"floors", "commit", "/nonexistent/jobq",
                     "--jobs", "20",     NULL};
    assert_int_equal(s_run(dir, nodir), 1);  //  named, not a crash
    char *none[] = {"floors", NULL};
    assert_int_equal(s_run(dir, none), 2);
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
    char raw[600];
    snprintf(raw, sizeof raw, "%s/raw.txt", dir);
    char *argv[] = {"jobq_latency", bin, "--jobs", "20", "--raw", raw, NULL};
    assert_int_equal(s_run(dir, argv), 0);
    s_row(dir, "jobq,sync,enqueue-ack,");
    s_row(dir, "jobq,sync,idle-dispatch,");
    //  --raw: every sample, two positive numbers a line
    FILE *f = fopen(raw, "r");
    assert_non_null(f);
    //  a line naming the processes, then every sample: ack, dispatch and
    //  the send time, which is on CLOCK_MONOTONIC like the test's clock
    char head[128];
    assert_non_null(fgets(head, sizeof head, f));
    int producer = 0, broker = 0, worker = 0;
    assert_int_equal(sscanf(head, "# producer=%d broker=%d worker=%d",
                            &producer, &broker, &worker),
                     3);
    assert_true(producer > 0 && broker > 0 && worker > 0);
    long long a, d, sent, last = 0;
    int lines = 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long now_us = (long long) now.tv_sec * 1000000 + now.tv_nsec / 1000;
    while (fscanf(f, "%lld %lld %lld", &a, &d, &sent) == 3 && a > 0 && d > 0 &&
           sent > last && sent < now_us) {
        last = sent;
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 20);
    //  samples that cannot be written make the run fail, not a short file
    char *unwritable[] = {"jobq_latency",     bin, "--jobs", "20", "--raw",
                          "/nonexistent/raw", NULL};
    assert_int_equal(s_run(dir, unwritable), 1);
    char *bad[] = {"jobq_latency", bin, "--jobs", "1", NULL};
    assert_int_equal(s_run(dir, bad), 2);
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

//  beanstalkd's idle mode, against a real beanstalkd with fsync on every
//  write, when one is installed (bench/run.sh installs it; the test
//  machine may not have it, and then this case is skipped, not passed).
static void
test_beanstalkd_idle_and_pipelined(void **state)
{
    (void) state;
    const char *bin = "/usr/bin/beanstalkd";
    char *dir = s_tmpdir_with(bin);
    char binlog[600], port[16], blog[600], raw[600];
    snprintf(binlog, sizeof binlog, "%s/binlog", dir);
    assert_int_equal(mkdir(binlog, 0700), 0);
    snprintf(port, sizeof port, "%d", jobq_test_free_port());
    snprintf(blog, sizeof blog, "%s/beanstalkd.log", dir);
    snprintf(raw, sizeof raw, "%s/raw.txt", dir);
    char *server[] = {(char *) bin, "-l",   "127.0.0.1", "-p", port,
                      "-b",         binlog, "-f",        "0",  NULL};
    pid_t bs = jobq_test_spawn(server, blog);
    assert_true(bs > 0);
    char *argv[] = {"beanstalk_bench", port,    "--idle", "20", "--mode",
                    "binlog-f0",       "--raw", raw,      NULL};
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
    char *bad[] = {"beanstalk_bench", port, "--pipeline", "0", NULL};
    int port_n = atoi(port);
    bool up = jobq_test_wait_until(s_listening, &port_n, 10000);
    int rc = up ? s_run(dir, argv) : -1;
    if (rc == 0) {
        s_row(dir, "beanstalkd,binlog-f0,enqueue-ack,");
        s_row(dir, "beanstalkd,binlog-f0,idle-dispatch,");
        rc = s_run(dir, piped);
    }
    if (rc == 0) {
        s_row_t r = s_row(dir, "beanstalkd,binlog-pipelined,cycle-2x2,");
        assert_true(r.rate > 0);
        rc = s_run(dir, bad) == 2 ? 0 : -2;
    }
    jobq_test_stop(bs, SIGTERM, 5000);
    assert_int_equal(rc, 0);
    //  the samples' file names the producer and the consumer it forked
    FILE *f = fopen(raw, "r");
    assert_non_null(f);
    int producer = 0, worker = 0, lines = 0;
    assert_int_equal(fscanf(f, "# producer=%d worker=%d", &producer, &worker),
                     2);
    assert_true(producer > 0 && worker > 0);
    long long a, d, sent;
    while (fscanf(f, "%lld %lld %lld", &a, &d, &sent) == 3 && a > 0 && d > 0)
        lines++;
    fclose(f);
    assert_int_equal(lines, 20);
    jobq_test_rmtree(dir);
    free(dir);
}

//  Write a raw file of idle samples lo..hi (ack lo + 1000, dispatch, sent).
static void
s_write_raw(const char *dir, const char *name, int lo, int hi)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("# producer=1 broker=2 worker=3\n", f);
    for (int i = lo; i <= hi; i++)
        fprintf(f, "%d %d %d\n", 1000 + i, i, 5000000 + i * 3000);
    fclose(f);
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

//  bench/table.py reads the rows these programs write, floors included,
//  and prints the targets, when python3 is installed (skipped otherwise).
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
          "beanstalkd,binlog-f0,idle-dispatch,,480,1300,4000,\n"
          "zeromq,relay-floor,idle-dispatch,,300,1200,3000,\n"
          "lmdb,commit-floor,enqueue-ack,2000,480,2000,3000,\n"
          "tcp,pingpong-any-cpu,round-trip,,300,900,1200,\n"
          "tcp,pingpong-one-cpu,round-trip,,20,40,60,\n",
          f);
    fclose(f);
    char *argv[] = {(char *) py, JOBQ_SOURCE_DIR "/bench/table.py", csv, NULL};
    assert_int_equal(s_run(dir, argv), 0);
    char out[600], line[512];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    f = fopen(out, "r");
    assert_non_null(f);
    int seen = 0;
    bool plain_vs_piped = false;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "MISSED cycle 1x1   jobq sync "))
            seen |= 1;
        if (strstr(line, "met    cycle 1x1   jobq sync-batched"))
            seen |= 2;
        if (strstr(line, "met    idle dispatch p99 900 us"))
            seen |= 4;
        if (strstr(line, "makes at most 2083 jobs/s"))
            seen |= 8;
        if (strstr(line, "the scheduler, 20 us with both on one CPU (15.0x"))
            seen |= 32;
        //  against the pipelined peer: batched 20000 / 12000 falls short
        if (strstr(line, "MISSED cycle 1x1   jobq sync-batched     20000 vs "
                         "beanstalkd binlog-pipelined   12000 = 1.67x"))
            seen |= 16;
        //  plain sync, one request at a time, is not held against it
        if (strstr(line, "jobq sync  ") && strstr(line, "binlog-pipelined"))
            plain_vs_piped = true;
    }
    fclose(f);
    assert_int_equal(seen, 63);
    assert_false(plain_vs_piped);
    //  pool.py: two runs' raw samples taken together
    char r1[600], r2[600];
    snprintf(r1, sizeof r1, "%s/raw-1", dir);
    snprintf(r2, sizeof r2, "%s/raw-2", dir);
    s_write_raw(dir, "raw-1", 1, 50);
    s_write_raw(dir, "raw-2", 51, 100);
    char *pool[] = {
        (char *) py, JOBQ_SOURCE_DIR "/bench/pool.py", "jobq", "sync", r1, r2,
        NULL};
    assert_int_equal(s_run(dir, pool), 0);
    f = fopen(out, "r");
    assert_non_null(f);
    //  samples 1..100: p50 = sorted[50] = 51, p99 = p99.9 = sorted[99] = 100
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "jobq,sync,enqueue-ack,,1051,1100,1100,\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "jobq,sync,idle-dispatch,,51,100,100,\n");
    fclose(f);
    //  The p99 ratio of [run 1, run 2] over [run 2]: 100 / 100, but a
    //  redraw of the first side that takes run 1 twice (one in four) has
    //  p99 50, so the middle 95% of redraws spans 0.50x to 1.00x.
    char *ratio[] = {(char *) py, JOBQ_SOURCE_DIR "/bench/pool.py",
                     "ratio",     "a",
                     "b",         r1,
                     r2,          "--",
                     r2,          NULL};
    assert_int_equal(s_run(dir, ratio), 0);
    f = fopen(out, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "p99 a / b = 1.00x; with their 2 and 1 runs"));
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "ratios fall in 0.50x to 1.00x"));
    fclose(f);
    char *one_side[] = {(char *) py, JOBQ_SOURCE_DIR "/bench/pool.py",
                        "ratio",     "a",
                        "b",         r1,
                        "--",        NULL};
    assert_int_not_equal(s_run(dir, one_side), 0);
    jobq_test_rmtree(dir);
    free(dir);
}

//  bench/hops.py on a made-up trace of two samples through jobq's seven
//  threads, when python3 is installed (skipped otherwise): each hop ends
//  at its thread's switch-in, the last at the stamp; in the second the
//  worker's I/O thread is already on a CPU when its hop begins.
static void
test_hops_splits_a_sample(void **state)
{
    (void) state;
    const char *py = "/usr/bin/python3";
    char *dir = s_tmpdir_with(py);
    char raw[600], trace[600];
    snprintf(raw, sizeof raw, "%s/raw", dir);
    snprintf(trace, sizeof trace, "%s/trace", dir);
    FILE *f = fopen(raw, "w");
    assert_non_null(f);
    //  sent at 1 s and at 2 s, each started 500 us later
    fputs("# producer=100 broker=200 worker=300\n"
          "500 500 1000000\n500 500 2000000\n",
          f);
    fclose(f);
    //  thread, its process and name, switched in and out (us after 1 s)
    const struct {
        int tid, pid;
        const char *comm;
        int in, out;
    } run[] = {
        {101, 100, "ZMQbg/IO/0", 10, 15},
        {201, 200, "ZMQbg/IO/0", 50, 55},
        {200, 200, "jobq-broker", 80, 85},
        {201, 200, "ZMQbg/IO/0", 120, 125},
        {301, 300, "ZMQbg/IO/0", 200, 205},
        {300, 300, "jobq_latency", 300, 305},
        {302, 300, "jobq_latency", 400, 405},
        {101, 100, "ZMQbg/IO/0", 1000010, 1000015},
        {201, 200, "ZMQbg/IO/0", 1000050, 1000055},
        {200, 200, "jobq-broker", 1000080, 1000085},
        {201, 200, "ZMQbg/IO/0", 1000120, 1000125},
        {301, 300, "ZMQbg/IO/0", 1000100, 1000250},  //  on when its hop begins
        {300, 300, "jobq_latency", 1000300, 1000305},
        {302, 300, "jobq_latency", 1000400, 1000405},
    };
    f = fopen(trace, "w");
    assert_non_null(f);
    fputs("    jobq_latency   100/100   [000] 1.000002: sched:sched_waking: "
          "comm=ZMQbg/IO/0 pid=101 prio=120 target_cpu=001\n",
          f);
    for (size_t i = 0; i < sizeof run / sizeof run[0]; i++) {
        fprintf(f,
                "         swapper     0/0     [001] %d.%06d: "
                "sched:sched_switch: prev_comm=swapper/1 prev_pid=0 "
                "prev_prio=120 prev_state=R ==> next_comm=%s next_pid=%d "
                "next_prio=120\n",
                1 + run[i].in / 1000000, run[i].in % 1000000, run[i].comm,
                run[i].tid);
        fprintf(f,
                "    %s   %d/%d   [001] %d.%06d: sched:sched_switch: "
                "prev_comm=%s prev_pid=%d prev_prio=120 prev_state=S ==> "
                "next_comm=swapper/1 next_pid=0 next_prio=120\n",
                run[i].comm, run[i].pid, run[i].tid, 1 + run[i].out / 1000000,
                run[i].out % 1000000, run[i].comm, run[i].tid);
    }
    fclose(f);
    char *argv[] = {(char *) py, JOBQ_SOURCE_DIR "/bench/hops.py",
                    trace,       raw,
                    "--csv",     NULL};
    assert_int_equal(s_run(dir, argv), 0);
    //  two samples: p50, p90 and p99 are the larger; the slowest 2% is the
    //  first sample (a tie at 500 us, broken by its hops)
    const char *want[] = {
        "hop,p50_us,p90_us,p99_us,slowest2_mean_us,running,unseen",
        "to producer io,10,10,10,10,0,0",
        "to broker io,40,40,40,40,0,0",
        "to broker main,30,30,30,30,0,0",
        "to broker io,40,40,40,40,0,0",
        "to worker io,80,80,80,80,1,0",
        "to worker main,180,180,180,100,0,0",
        "to worker slot,100,100,100,100,0,0",
        "to stamp,100,100,100,100,,",
        "total,500,500,500,500,,"};
    char out[600], line[256];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    f = fopen(out, "r");
    assert_non_null(f);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_non_null(fgets(line, sizeof line, f));
        line[strcspn(line, "\n")] = '\0';
        assert_string_equal(line, want[i]);
    }
    fclose(f);
    //  an old two-column file, or processes the trace lacks, are refused
    //  with a reason (exit 1), not a traceback
    f = fopen(raw, "w");
    assert_non_null(f);
    fputs("500 500\n", f);
    fclose(f);
    char *old[] = {(char *) py, JOBQ_SOURCE_DIR "/bench/hops.py", trace, raw,
                   NULL};
    assert_int_equal(s_run(dir, old), 1);
    f = fopen(raw, "w");
    assert_non_null(f);
    fputs("# producer=7 broker=8 worker=9\n500 500 1000000\n", f);
    fclose(f);
    assert_int_equal(s_run(dir, old), 1);
    jobq_test_rmtree(dir);
    free(dir);
}

//  pool.py series on made-up blocks: block 1, jobq p99 100 against
//  beanstalkd's 200; block 2, 300 against 200; block 3 has no beanstalkd
//  runs; a directory that is not block-N is not read.
static void
test_pool_series_reads_blocks(void **state)
{
    (void) state;
    const char *py = "/usr/bin/python3";
    char *dir = s_tmpdir_with(py);
    char top[600], block[700];
    snprintf(top, sizeof top, "%s/series", dir);
    assert_int_equal(mkdir(top, 0700), 0);
    const char *names[] = {"block-1", "block-2", "block-3", "block-x"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(block, sizeof block, "%s/%s", top, names[i]);
        assert_int_equal(mkdir(block, 0700), 0);
        int lo = i == 1 ? 201 : 1;  //  jobq's samples
        s_write_raw(block, "jobq-1", lo, lo + 99);
        s_write_raw(block, "floor-1", 1, 100);
        if (i != 2)
            s_write_raw(block, "bsf0-1", 101, 200);
    }
    char *argv[] = {(char *) py, JOBQ_SOURCE_DIR "/bench/pool.py", "series",
                    top, NULL};
    assert_int_equal(s_run(dir, argv), 0);
    assert_true(s_out_has(dir, "100              200    100    0.50x"));
    assert_true(s_out_has(dir, "300              200    100    1.50x"));
    assert_true(s_out_has(dir, "    3  (a side has no samples)"));
    assert_true(s_out_has(dir, "jobq in 1 of 2 blocks, the floor in 2"));
    //  blocks 1..3 pooled: jobq 1..100 twice and 201..300, so p50 is
    //  sorted[150] = 76 and p99 sorted[297] = 298
    assert_true(s_out_has(dir, "all 3 runs of jobq: p50 76, p99 298"));
    assert_true(s_out_has(dir, "all 2 runs of beanstalkd -f 0: p50 151"));
    assert_true(s_out_has(dir, "pooled p99 jobq / beanstalkd -f 0 = 1.49x"));
    char empty[600];
    snprintf(empty, sizeof empty, "%s/none", dir);
    assert_int_equal(mkdir(empty, 0700), 0);
    char *nothing[] = {(char *) py, JOBQ_SOURCE_DIR "/bench/pool.py", "series",
                       empty, NULL};
    assert_int_not_equal(s_run(dir, nothing), 0);
    jobq_test_rmtree(dir);
    free(dir);
}

//  bench/idle_series.sh end to end, one block of one short run each, when
//  beanstalkd is installed; and its bad calls.
static void
test_idle_series_runs_a_block(void **state)
{
    (void) state;
    if (access("/usr/bin/python3", X_OK) != 0)
        skip();
    char *dir = s_tmpdir_with("/usr/bin/beanstalkd");
    char build[600], out[700];
    s_bin_dir(build, sizeof build);
    char *slash = strrchr(build, '/');  //  BUILD/apps -> BUILD
    assert_non_null(slash);
    *slash = '\0';
    snprintf(out, sizeof out, "%s/series", dir);
    char *argv[] = {"/usr/bin/env",
                    "ROUNDS=1",
                    "PER=10",
                    "/bin/sh",
                    JOBQ_SOURCE_DIR "/bench/idle_series.sh",
                    build,
                    "1",
                    out,
                    NULL};
    assert_int_equal(s_run(dir, argv), 0);
    assert_true(s_out_has(dir, "jobq in "));
    assert_true(s_out_has(dir, "all 1 runs of jobq: p50 "));
    assert_true(s_out_has(dir, "all 1 runs of beanstalkd -f 0: p50 "));
    assert_true(s_out_has(dir, "all 1 runs of zeromq floor: p50 "));
    char raw[800];
    snprintf(raw, sizeof raw, "%s/block-1/jobq-1", out);
    assert_int_equal(access(raw, R_OK), 0);
    char *no_blocks[] = {"/bin/sh", JOBQ_SOURCE_DIR "/bench/idle_series.sh",
                         build, "0", NULL};
    assert_int_equal(s_run(dir, no_blocks), 2);
    char *big[] = {"/usr/bin/env",
                   "PER=5000",
                   "/bin/sh",
                   JOBQ_SOURCE_DIR "/bench/idle_series.sh",
                   build,
                   "1",
                   NULL};
    assert_int_equal(s_run(dir, big), 2);
    jobq_test_rmtree(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floors_relay_commit_pingpong),
        cmocka_unit_test(test_latency_through_broker_and_worker),
        cmocka_unit_test(test_cycle_plain_batched_pipelined),
        cmocka_unit_test(test_beanstalkd_idle_and_pipelined),
        cmocka_unit_test(test_table_reads_the_rows),
        cmocka_unit_test(test_hops_splits_a_sample),
        cmocka_unit_test(test_pool_series_reads_blocks),
        cmocka_unit_test(test_idle_series_runs_a_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
