/*  test_bench.c: the benchmark's own programs, run small: each exits 0 and
    ends with the CSV line bench/run.sh collects, its figures in order
    (p50 <= p99 <= p99.9, rates above zero); a bad call exits 2. So `make
    bench` cannot rot unnoticed between full runs. */
#include "jobq_test.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

typedef struct {
    double rate;  //  jobs_per_s, 0 when empty
    int64_t p50, p99, p999;
} s_row_t;

//  Run a bench program (argv[0] names it in JOBQ_BENCH_DIR) with its
//  output in dir/out.txt; returns its exit code, or -1 if it did not end
//  within 60 s.
static int
s_run(const char *dir, char *argv[])
{
    char path[600], log[600];
    snprintf(path, sizeof path, "%s/%s", JOBQ_BENCH_DIR, argv[0]);
    snprintf(log, sizeof log, "%s/out.txt", dir);
    remove(log);
    argv[0] = path;
    pid_t pid = jobq_test_spawn(argv, log);
    assert_true(pid > 0);
    int status = jobq_test_wait(pid, 60000);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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
test_floors_relay_and_commit(void **state)
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
    char *bad[] = {"floors", "relay", "--jobs", "5", NULL};
    assert_int_equal(s_run(dir, bad), 2);
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
    snprintf(bin, sizeof bin, "%s", getenv("JOBQ_BIN_DIR"));
    char *argv[] = {"jobq_latency", bin, "--jobs", "20", NULL};
    assert_int_equal(s_run(dir, argv), 0);
    s_row(dir, "jobq,sync,enqueue-ack,");
    s_row(dir, "jobq,sync,idle-dispatch,");
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
    snprintf(bin, sizeof bin, "%s", getenv("JOBQ_BIN_DIR"));
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floors_relay_and_commit),
        cmocka_unit_test(test_latency_through_broker_and_worker),
        cmocka_unit_test(test_cycle_plain_batched_pipelined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
