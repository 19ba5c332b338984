/*  test_cli.c: the `jobq` command line, run in-process: every misuse is
    named and exits 2; against a real broker, enqueue, status --json, list,
    watch and cancel print what they promise. And the real program: Ctrl-C
    (a real SIGINT) ends a watch or a wait for the broker at once, with
    exit status 130. */
#include "jobq_test.h"
#include "jobq_cli.h"
#include "jobq/jobq_client.h"
#include "jobq/jobq_types.h"

#include <czmq.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char out[65536];  //  what the command printed on stdout
    char err[4096];   //  and on stderr
    int rc;           //  its exit code
} s_run_t;

//  Run `jobq` with the words of line (split on spaces; a word in single
//  quotes may hold spaces).
static void
s_run(s_run_t *r, const char *line)
{
    char buf[2048], *argv[64] = {"jobq"};
    int argc = 1;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *p = buf; *p && argc < 63;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        char end = ' ';
        if (*p == '\'') {
            end = '\'';
            p++;
        }
        argv[argc++] = p;
        while (*p && *p != end)
            p++;
        if (*p)
            *p++ = '\0';
    }
    FILE *out = tmpfile(), *err = tmpfile();
    r->rc = jobq_cli_run(argc, argv, out, err, NULL);
    rewind(out);
    rewind(err);
    size_t n = fread(r->out, 1, sizeof r->out - 1, out);
    r->out[n] = '\0';
    n = fread(r->err, 1, sizeof r->err - 1, err);
    r->err[n] = '\0';
    fclose(out);
    fclose(err);
}

static void
test_cli_misuse_is_named_and_exits_2(void **state)
{
    (void) state;
    static const struct {
        const char *line;  //  arguments
        const char *says;  //  part of the message
    } cases[] = {
        {"", "no command"},
        {"frobnicate", "unknown command"},
        {"enqueue", "one job type"},
        {"enqueue sleep", "--shop"},
        {"enqueue sleep --shop s --input [1]", "JSON object"},
        {"enqueue sleep --shop s --input {oops", "line 1"},
        {"enqueue sleep --shop s --priority 99999", "--priority"},
        {"enqueue sleep --shop s --delay -1", "--delay"},
        {"enqueue sleep --shop s --max-attempts 0", "--max-attempts"},
        {"enqueue sleep --shop s --timeout abc", "--timeout"},
        {"enqueue sleep --shop", "needs a value"},
        {"status", "one job id"},
        {"status 123", "not a job id"},
        {"status 0123456789ABCDEF", "not a job id"},
        {"status 0123456789abcdef more", "one job id"},
        {"watch nothex", "not a job id"},
        {"cancel", "one job id"},
        {"list --limit 0", "--limit"},
        {"list --limit 1001", "--limit"},
        {"list --status done", "unknown --status"},
        {"list --cursor zz", "not a job id"},
        {"list extra", "no arguments"},
        {"stats --shop s", "does not take --shop"},
        {"status 0123456789abcdef --watch", "does not take --watch"},
        {"list --frobnicate", "unknown option"},
        {"--timeout-ms 0 stats", "--timeout-ms"},
        {"--broker tcp://127.0.0.1:1,,tcp://127.0.0.1:2 stats", "empty item"},
        {"--events tcp://127.0.0.1:1, stats", "empty item"},
        {"--broker tcp://127.0.0.1:1,tcp://127.0.0.1:2,tcp://127.0.0.1:3,"
         "tcp://127.0.0.1:4,tcp://127.0.0.1:5,tcp://127.0.0.1:6,"
         "tcp://127.0.0.1:7,tcp://127.0.0.1:8,tcp://127.0.0.1:9,"
         "tcp://127.0.0.1:10,tcp://127.0.0.1:11,tcp://127.0.0.1:12,"
         "tcp://127.0.0.1:13,tcp://127.0.0.1:14,tcp://127.0.0.1:15,"
         "tcp://127.0.0.1:16,tcp://127.0.0.1:17 stats",
         "more than 16 endpoints"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_run_t r;
        s_run(&r, cases[i].line);
        if (r.rc != 2 || !strstr(r.err, cases[i].says))
            fail_msg("'jobq %s': rc=%d err=%s", cases[i].line, r.rc, r.err);
    }
    s_run_t r;
    s_run(&r, "--help");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "enqueue TYPE"));
}

static void
test_cli_unreachable_broker_exits_1_with_the_reason(void **state)
{
    (void) state;
    char line[200];
    snprintf(line, sizeof line,
             "--broker tcp://127.0.0.1:%d --timeout-ms 200 "
             "status 0123456789abcdef",
             jobq_test_free_port());
    s_run_t r;
    s_run(&r, line);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "no reply from the broker"));
    //  A list: every endpoint is named.
    snprintf(line, sizeof line,
             "--broker tcp://127.0.0.1:%d,tcp://127.0.0.1:%d --timeout-ms 200 "
             "status 0123456789abcdef",
             jobq_test_free_port(), jobq_test_free_port());
    s_run(&r, line);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "no reply from the brokers at"));
}

static void
test_cli_enqueue_status_list_watch_cancel_against_a_broker(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    jobq_test_broker_t b;
    memset(&b, 0, sizeof b);
    assert_int_equal(jobq_test_broker_start(&b, dir, NULL), 0);
    const char *wextra[] = {"--types", "sleep", NULL};
    pid_t w = jobq_test_worker_start(&b, wextra);
    char base[200], line[1024];
    snprintf(base, sizeof base, "--broker %s --events %s", b.clients, b.events);
    s_run_t r;
    snprintf(line, sizeof line,
             "%s enqueue sleep --shop cli-shop --input '{\"ms\": 200, "
             "\"steps\": 4}' --watch",
             base);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    char id[JOBQ_ID_LEN + 1];
    snprintf(id, sizeof id, "%.16s", r.out);
    assert_non_null(strstr(r.out, "100% completed"));
    assert_non_null(strstr(r.out, "\"slept_ms\":200"));

    snprintf(line, sizeof line, "%s status %s --json", base, id);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")),
                        "completed");
    assert_string_equal(json_string_value(json_object_get(j, "shop_id")),
                        "cli-shop");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "input"), "ms")),
        200);
    assert_int_equal(json_integer_value(json_object_get(j, "progress")), 100);
    assert_true(json_is_integer(json_object_get(j, "completed_at")));
    json_decref(j);

    //  A job nobody runs: enqueue warns, status and stats say why it
    //  waits; list it, cancel it, watch says cancelled.
    snprintf(line, sizeof line, "%s enqueue noop --shop cli-shop", base);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.err, "no connected worker runs type 'noop'"));
    char pend[JOBQ_ID_LEN + 1];
    snprintf(pend, sizeof pend, "%.16s", r.out);
    snprintf(line, sizeof line, "%s status %s", base, pend);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    assert_non_null(
        strstr(r.out, "waiting:    no connected worker runs type 'noop'"));
    snprintf(line, sizeof line, "%s stats", base);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "workers"));
    assert_non_null(strstr(r.out, "<- no worker"));
    assert_non_null(strstr(r.out, "1 pending job is of a type no"));
    //  A job of a type the worker runs does not warn.
    snprintf(line, sizeof line,
             "%s enqueue sleep --shop other --input "
             "'{\"ms\": 1}'",
             base);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    assert_null(strstr(r.err, "warning"));
    snprintf(line, sizeof line,
             "%s list --shop cli-shop --status pending "
             "--json",
             base);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    j = json_loads(r.out, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 1);
    assert_true(json_is_null(json_object_get(j, "next")));
    json_decref(j);
    snprintf(line, sizeof line, "%s cancel %s", base, pend);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "cancelled"));
    snprintf(line, sizeof line, "%s watch %s", base, pend);
    s_run(&r, line);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "cancelled"));
    snprintf(line, sizeof line, "%s cancel %s", base, pend);
    s_run(&r, line);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "already cancelled"));
    snprintf(line, sizeof line, "%s status 0000000000000001", base);
    s_run(&r, line);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "no job"));
    snprintf(line, sizeof line, "%s stats", base);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "sleep"));
    //  Lists: a dead broker first costs one try; watch listens to every
    //  event endpoint of its list.
    char dead[64];
    snprintf(dead, sizeof dead, "tcp://127.0.0.1:%d", jobq_test_free_port());
    snprintf(line, sizeof line,
             "--broker %s,%s --events %s,%s --timeout-ms 500 enqueue sleep "
             "--shop cli-shop --input '{\"ms\": 100}' --watch",
             dead, b.clients, dead, b.events);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "100% completed"));

    jobq_test_stop(w, SIGTERM, 10000);
    jobq_test_broker_stop(&b, SIGTERM);
    jobq_test_rmtree(dir);
    free(dir);
}

//  A broker started with --types refuses any other type at once, and
//  the CLI says which; a bad --types list stops the broker with exit 2.
static void
test_cli_broker_types_refuse_unknown_types(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    jobq_test_broker_t b;
    memset(&b, 0, sizeof b);
    const char *extra[] = {"--types", "sleep,report", NULL};
    assert_int_equal(jobq_test_broker_start(&b, dir, extra), 0);
    char line[1024];
    s_run_t r;
    snprintf(line, sizeof line, "--broker %s enqueue send_email --shop s",
             b.clients);
    s_run(&r, line);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "unknown job type 'send_email'"));
    assert_non_null(strstr(r.err, "sleep,report"));
    snprintf(line, sizeof line, "--broker %s enqueue report --shop s",
             b.clients);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    jobq_test_broker_stop(&b, SIGTERM);

    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s --data %s --types 'sleep,Bad' 2>%s/err",
             jobq_test_bin("jobq-broker"), dir, dir);
    int status = system(cmd);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
    snprintf(cmd, sizeof cmd, "grep -q \"'Bad' is not a job type\" %s/err",
             dir);
    assert_int_equal(system(cmd), 0);
    jobq_test_rmtree(dir);
    free(dir);
}

//  jobq-worker's --allow-private and --allow-files, and jobq-broker's
//  --verify and --repair: a wrong value or mix is named and the program
//  exits 2 before it touches anything.
static void
test_cli_programs_name_bad_options_and_exit_2(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    static const struct {
        const char *args;  //  appended to the command, shell words
        const char *says;  //  part of the message
        bool broker;       //  jobq-broker, else jobq-worker
    } cases[] = {
        {"--verify a --repair b", "--verify and --repair go alone", true},
        {"--verify a --bogus", "unknown or incomplete option", true},
        {"--verify a extra", "extra", true},
        {"--allow-private 10.0.0.0/33", "an IPv4 prefix is 0 to 32", false},
        {"--allow-private ::/129", "the prefix is not 0 to 128", false},
        {"--allow-private ,", "no address, range or host given", false},
        {"--allow-private no-such-host.invalid",
         "'no-such-host.invalid' is not an address", false},
        {"--allow-private localhost/8", "a prefix goes with an address", false},
        {"--allow-files /no/such/dir", "'/no/such/dir' is not a directory",
         false},
        {"--allow-files /etc/passwd", "is not a directory", false},
        {"--broker tcp://127.0.0.1:1,", "--broker: endpoint list", false},
        {"--clients tcp://127.0.0.1:1,,tcp://127.0.0.1:2", "empty item", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1200], grep[1200];
        snprintf(cmd, sizeof cmd, "%s %s %s 2>%s/err >/dev/null",
                 jobq_test_bin(cases[i].broker ? "jobq-broker" : "jobq-worker"),
                 cases[i].broker ? "" : "--broker tcp://127.0.0.1:1",
                 cases[i].args, dir);
        int status = system(cmd);
        snprintf(grep, sizeof grep, "grep -qF -- \"%s\" %s/err", cases[i].says,
                 dir);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 2 || system(grep) != 0)
            fail_msg("%s %s: status %d",
                     cases[i].broker ? "jobq-broker" : "jobq-worker",
                     cases[i].args, status);
    }
    jobq_test_rmtree(dir);
    free(dir);
}

//  The newer options: --x=v, --input @FILE, watch --timeout (exit 3),
//  retry --json, and control characters in a job's text kept off the
//  terminal.
static void
test_cli_input_file_watch_timeout_retry_json(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    jobq_test_broker_t b;
    memset(&b, 0, sizeof b);
    assert_int_equal(jobq_test_broker_start(&b, dir, NULL), 0);
    char base[200], line[1024], path[512];
    snprintf(base, sizeof base, "--broker=%s --events=%s", b.clients, b.events);
    snprintf(path, sizeof path, "%s/input.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"message\": \"bad\\u001b[31mred\"}\n", f);
    fclose(f);
    s_run_t r;

    //  Nobody runs `fail` yet: a watch with a deadline gives up with 3.
    snprintf(line, sizeof line, "%s enqueue fail --shop=s1 --input @%s", base,
             path);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    char id[JOBQ_ID_LEN + 1];
    snprintf(id, sizeof id, "%.16s", r.out);
    snprintf(line, sizeof line, "%s watch %s --timeout 300", base, id);
    s_run(&r, line);
    assert_int_equal(r.rc, 3);

    snprintf(line, sizeof line, "%s enqueue fail --shop s1 --input @%s/none",
             base, dir);
    s_run(&r, line);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "none"));

    const char *wextra[] = {"--types", "fail", NULL};
    pid_t w = jobq_test_worker_start(&b, wextra);
    snprintf(line, sizeof line, "%s watch %s --timeout 10000", base, id);
    s_run(&r, line);
    assert_int_equal(r.rc, 1);
    assert_null(strchr(r.err, '\x1b'));
    assert_null(strchr(r.out, '\x1b'));
    assert_non_null(strstr(r.err, "failed"));

    snprintf(line, sizeof line, "%s retry %s --json", base, id);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "id")), id);
    json_decref(j);

    jobq_test_stop(w, SIGTERM, 10000);
    jobq_test_broker_stop(&b, SIGTERM);
    jobq_test_rmtree(dir);
    free(dir);
}

//  Numbers in what jobq prints are in their shortest exact form, a float 32
//  at its own precision, and a whole real keeps its ".0".
static void
test_cli_prints_numbers_in_their_shortest_exact_form(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    jobq_test_broker_t b;
    memset(&b, 0, sizeof b);
    assert_int_equal(jobq_test_broker_start(&b, dir, NULL), 0);
    const char *wextra[] = {"--types", "noop", NULL};
    pid_t w = jobq_test_worker_start(&b, wextra);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b.clients;
    cfg.events = b.events;
    jobq_client_t *cl = jobq_client_new(&cfg);
    assert_non_null(cl);
    //  noop's output is its input.
    jobq_mp_writer_t in;
    jobq_mp_writer_init(&in, 256);
    jobq_mp_write_map(&in, 4);
    jobq_mp_write_cstr(&in, "d");
    jobq_mp_write_double(&in, 3.9);
    jobq_mp_write_cstr(&in, "f");
    jobq_mp_write_raw(&in, "\xca\x40\x79\x99\x9a", 5);  //  float 32: 3.9f
    jobq_mp_write_cstr(&in, "sum");
    jobq_mp_write_double(&in, 0.1 + 0.2);
    jobq_mp_write_cstr(&in, "whole");
    jobq_mp_write_double(&in, 4.0);
    assert_int_equal(jobq_mp_writer_error(&in), JOBQ_OK);
    jobq_enqueue_t req = {"noop", "cli-shop", {in.data, in.len}, 0, 0, 1,
                          0,      NULL};
    char id[JOBQ_ID_LEN + 1];
    assert_int_equal(jobq_client_enqueue(cl, &req, id, NULL), JOBQ_OK);
    jobq_mp_writer_fini(&in);
    jobq_client_destroy(&cl);

    char base[200], line[1024];
    snprintf(base, sizeof base, "--broker %s --events %s", b.clients, b.events);
    s_run_t r;
    snprintf(line, sizeof line, "%s watch %s --timeout 10000", base, id);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    if (!strstr(r.out, "{\"d\":3.9,\"f\":3.9,\"sum\":0.30000000000000004,"
                       "\"whole\":4.0}"))
        fail_msg("watch printed: %s", r.out);
    snprintf(line, sizeof line, "%s status %s --json", base, id);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    if (!strstr(r.out, "\"d\": 3.9,") || !strstr(r.out, "\"f\": 3.9,") ||
        !strstr(r.out, "\"whole\": 4.0\n"))
        fail_msg("status --json printed: %s", r.out);

    jobq_test_stop(w, SIGTERM, 10000);
    jobq_test_broker_stop(&b, SIGTERM);
    jobq_test_rmtree(dir);
    free(dir);
}

typedef struct {
    pid_t pid;         //  the jobq process
    const char *log;   //  its stdout and stderr
    const char *text;  //  to wait for in log, or NULL
} s_waiting_t;

//  True once the process runs jobq (not the test's fork of itself, which
//  has handlers of its own), has a SIGINT handler (bit 2 of SigCgt in
//  /proc/PID/status) and its log holds the text waited for.
static bool
s_ready_for_sigint(void *arg)
{
    const s_waiting_t *w = arg;
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/exe", (int) w->pid);
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0)
        return false;
    buf[n] = '\0';
    const char *base = strrchr(buf, '/');
    if (!base || strcmp(base, "/jobq") != 0)
        return false;
    snprintf(path, sizeof path, "/proc/%d/status", (int) w->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    unsigned long long caught = 0;
    while (fgets(buf, sizeof buf, f))
        if (sscanf(buf, "SigCgt: %llx", &caught) == 1)
            break;
    fclose(f);
    if (!(caught & (1ull << (SIGINT - 1))))
        return false;
    if (!w->text)
        return true;
    f = fopen(w->log, "r");
    if (!f)
        return false;
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    buf[got] = '\0';
    fclose(f);
    return strstr(buf, w->text) != NULL;
}

//  Start the real jobq with argv (argv[0] is replaced by its path), wait
//  until it catches SIGINT and, if text is not NULL, has printed text; then
//  send SIGINT as a terminal's Ctrl-C would. Returns its exit status, which
//  must come within two seconds.
static int
s_interrupted_status(char **argv, const char *dir, const char *text)
{
    char log[600];
    snprintf(log, sizeof log, "%s/cli-%s.log", dir, argv[1]);
    argv[0] = (char *) jobq_test_bin("jobq");
    s_waiting_t w = {jobq_test_spawn(argv, log), log, text};
    assert_true(w.pid > 0);
    assert_true(jobq_test_wait_until(s_ready_for_sigint, &w, 10000));
    assert_int_equal(kill(w.pid, SIGINT), 0);
    int status = jobq_test_wait(w.pid, 2000);
    assert_int_not_equal(status, -1);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void
test_cli_ctrl_c_ends_watch_status_and_list_with_130(void **state)
{
    (void) state;
    char *dir = jobq_test_tmpdir();
    jobq_test_broker_t b;
    memset(&b, 0, sizeof b);
    assert_int_equal(jobq_test_broker_start(&b, dir, NULL), 0);
    const char *wextra[] = {"--types", "sleep", NULL};
    pid_t w = jobq_test_worker_start(&b, wextra);
    char broker[80], events[80];
    snprintf(broker, sizeof broker, "--broker=%s", b.clients);
    snprintf(events, sizeof events, "--events=%s", b.events);
    s_run_t r;
    char line[512];
    snprintf(line, sizeof line,
             "%s %s enqueue sleep --shop s --input '{\"ms\": 30000, "
             "\"steps\": 300}'",
             broker, events);
    s_run(&r, line);
    assert_int_equal(r.rc, 0);
    char id[JOBQ_ID_LEN + 1];
    snprintf(id, sizeof id, "%.16s", r.out);

    //  A watch of a running job.
    char *watch[] = {"", "watch", id, broker, events, NULL};
    assert_int_equal(s_interrupted_status(watch, dir, "running"), 130);
    //  enqueue --watch: the job is made, then the watch is interrupted.
    char *enq[] = {"",        "enqueue",         "sleep",   "--shop", "s",
                   "--input", "{\"ms\": 30000}", "--watch", broker,   events,
                   NULL};
    assert_int_equal(s_interrupted_status(enq, dir, "running"), 130);
    //  status and list waiting for a broker that never answers: nothing
    //  listens on this port, and each try may wait a minute.
    char silent[80];
    snprintf(silent, sizeof silent, "--broker=tcp://127.0.0.1:%d",
             jobq_test_free_port());
    char *status[] = {"", "status", id, silent, "--timeout-ms", "60000", NULL};
    assert_int_equal(s_interrupted_status(status, dir, NULL), 130);
    char *list[] = {"", "list", silent, "--timeout-ms", "60000", NULL};
    assert_int_equal(s_interrupted_status(list, dir, NULL), 130);

    jobq_test_stop(w, SIGTERM, 10000);
    jobq_test_broker_stop(&b, SIGTERM);
    jobq_test_rmtree(dir);
    free(dir);
}

int
main(void)
{
    zsys_init();
    zsys_set_linger(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_misuse_is_named_and_exits_2),
        cmocka_unit_test(test_cli_programs_name_bad_options_and_exit_2),
        cmocka_unit_test(test_cli_unreachable_broker_exits_1_with_the_reason),
        cmocka_unit_test(
            test_cli_enqueue_status_list_watch_cancel_against_a_broker),
        cmocka_unit_test(test_cli_input_file_watch_timeout_retry_json),
        cmocka_unit_test(test_cli_prints_numbers_in_their_shortest_exact_form),
        cmocka_unit_test(test_cli_broker_types_refuse_unknown_types),
        cmocka_unit_test(test_cli_ctrl_c_ends_watch_status_and_list_with_130),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
