/*  test_migrate.c: `jobq export` and `jobq import` move every job and
    idempotency key of a store into another, and back, without losing one:
    jobs of every state (pending, delayed, running, completed, failed,
    cancelled) and a keyed one go from one LMDB store to a file and into a
    second store; importing again skips them all; a broker on the second
    store has them all in the same state, answers the key with the same job
    and makes new ids above the imported ones. A truncated or damaged file,
    or a store whose broker runs, is refused with a message and imports
    nothing. LMDB to LMDB; the commands are the same for nats://.
*/
#include "jobq_test.h"
#include "jobq/jobq_client.h"
#include "jobq/jobq_mp.h"
#include "jobq/jobq_types.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_SHOP "migrate-shop"
#define S_KEY  "order-1"

typedef struct {
    int rc;          //  exit status, or -1 if it did not exit
    char err[8192];  //  what it printed (stdout and stderr)
} s_run_t;

//  Run the jobq program with args (NULL-terminated), 60 s at most.
static void
s_jobq(s_run_t *r, const char *dir, const char *const *args)
{
    char bin[1024], log[600];
    snprintf(bin, sizeof bin, "%s", jobq_test_bin("jobq"));
    snprintf(log, sizeof log, "%s/jobq.out", dir);
    unlink(log);
    char *argv[32] = {bin};
    int n = 1;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *) args[i];
    argv[n] = NULL;
    pid_t pid = jobq_test_spawn(argv, log);
    assert_true(pid > 0);
    int st = jobq_test_wait(pid, 60000);
    r->rc = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->err[0] = '\0';
    FILE *f = fopen(log, "r");
    if (f) {
        size_t got = fread(r->err, 1, sizeof r->err - 1, f);
        r->err[got] = '\0';
        fclose(f);
    }
}

static jobq_client_t *
s_client(const jobq_test_broker_t *b)
{
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = b->clients;
    cfg.events = b->events;
    jobq_client_t *cl = jobq_client_new(&cfg);
    assert_non_null(cl);
    return cl;
}

//  Enqueue type with input {name: value} (no input when name is NULL).
static void
s_enqueue(jobq_client_t *cl,
          const char *type,
          const char *name,
          int64_t value,
          uint64_t delay_ms,
          const char *key,
          char id[JOBQ_ID_LEN + 1])
{
    jobq_mp_writer_t in;
    jobq_mp_writer_init(&in, 64);
    jobq_mp_write_map(&in, name ? 1 : 0);
    if (name) {
        jobq_mp_write_cstr(&in, name);
        jobq_mp_write_int(&in, value);
    }
    assert_int_equal(jobq_mp_writer_error(&in), JOBQ_OK);
    jobq_enqueue_t req = {type, S_SHOP, {in.data, in.len}, 0, delay_ms, 1,
                          0,    key};
    int rc = jobq_client_enqueue(cl, &req, id, NULL);
    if (rc != JOBQ_OK)
        fail_msg("enqueue %s: %s", type, jobq_client_last_error(cl));
    jobq_mp_writer_fini(&in);
}

typedef struct {
    jobq_client_t *cl;
    const char *id;
    int status;
} s_wait_t;

static bool
s_has_status(void *arg)
{
    s_wait_t *w = arg;
    jobq_job_info_t info;
    memset(&info, 0, sizeof info);
    bool ok = jobq_client_status(w->cl, w->id, &info) == JOBQ_OK &&
              info.status == w->status;
    jobq_job_info_clear(&info);
    return ok;
}

static void
s_wait_status(jobq_client_t *cl, const char *id, int status)
{
    s_wait_t w = {cl, id, status};
    if (!jobq_test_wait_until(s_has_status, &w, 15000))
        fail_msg("job %s never became %s", id, jobq_status_name(status));
}

//  Copy the first `lines` lines of from into to (all but the end line
//  when lines is -1); flip a hex digit of line `damage` (0 = none).
static int
s_copy(const char *from, const char *to, int lines, int damage)
{
    FILE *in = fopen(from, "r"), *out = fopen(to, "w");
    assert_non_null(in);
    assert_non_null(out);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int count = 0, total = 0;
    while (getline(&line, &cap, in) > 0)
        total++;
    rewind(in);
    if (lines < 0)
        lines = total - 1;
    while (count < lines && (n = getline(&line, &cap, in)) > 0) {
        count++;
        if (count == damage) {
            char *h = strstr(line, "\":\"");
            assert_non_null(h);
            h[20] = h[20] == '0' ? '1' : '0';
        }
        fwrite(line, 1, (size_t) n, out);
    }
    free(line);
    fclose(in);
    fclose(out);
    return total;
}

//  The number of lines of path.
static int
s_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0, c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void
s_expect(const s_run_t *r, int rc, const char *says)
{
    if (r->rc != rc || !strstr(r->err, says))
        fail_msg("jobq exited %d (wanted %d) and said:\n%s\n(wanted \"%s\")",
                 r->rc, rc, r->err, says);
}

enum {
    S_DONE,
    S_FAILED,
    S_RUNNING,
    S_PENDING,
    S_KEYED,
    S_DELAYED,
    S_CANCELLED,
    S_NJOBS
};

static void
test_migrate_lmdb_to_lmdb(void **state)
{
    (void) state;
    char *tmp = jobq_test_tmpdir();
    char a[600], b2[600], c[600], file[600], cut[600], bad[600];
    char store_a[700], store_b[700], store_c[700];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b2, sizeof b2, "%s/b", tmp);
    snprintf(c, sizeof c, "%s/c", tmp);
    snprintf(file, sizeof file, "%s/jobs.jsonl", tmp);
    snprintf(cut, sizeof cut, "%s/cut.jsonl", tmp);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", tmp);
    snprintf(store_a, sizeof store_a, "lmdb:%s/data", a);
    snprintf(store_b, sizeof store_b, "lmdb:%s/data", b2);
    snprintf(store_c, sizeof store_c, "lmdb:%s/data", c);
    assert_int_equal(mkdir(a, 0700), 0);
    assert_int_equal(mkdir(b2, 0700), 0);

    //  The source: a job of every state, and one with a key.
    jobq_test_broker_t src;
    memset(&src, 0, sizeof src);
    const char *lmdb_a[] = {"--store", store_a, NULL};
    assert_int_equal(jobq_test_broker_start(&src, a, lmdb_a), 0);
    const char *wextra[] = {"--types", "sleep,fail", NULL};
    pid_t worker = jobq_test_worker_start(&src, wextra);
    assert_true(worker > 0);
    jobq_client_t *cl = s_client(&src);
    char ids[S_NJOBS][JOBQ_ID_LEN + 1];
    static const int want[S_NJOBS] = {
        [S_DONE] = JOBQ_COMPLETED,     [S_FAILED] = JOBQ_FAILED,
        [S_RUNNING] = JOBQ_RUNNING,    [S_PENDING] = JOBQ_PENDING,
        [S_KEYED] = JOBQ_PENDING,      [S_DELAYED] = JOBQ_PENDING,
        [S_CANCELLED] = JOBQ_CANCELLED};
    s_enqueue(cl, "sleep", "ms", 0, 0, NULL, ids[S_DONE]);
    s_enqueue(cl, "fail", NULL, 0, 0, NULL, ids[S_FAILED]);
    s_enqueue(cl, "sleep", "ms", 120000, 0, NULL, ids[S_RUNNING]);
    s_enqueue(cl, "idle", NULL, 0, 0, NULL, ids[S_PENDING]);
    s_enqueue(cl, "idle", NULL, 0, 0, S_KEY, ids[S_KEYED]);
    s_enqueue(cl, "sleep", "ms", 0, 3600000, NULL, ids[S_DELAYED]);
    s_enqueue(cl, "idle", NULL, 0, 0, NULL, ids[S_CANCELLED]);
    assert_int_equal(jobq_client_cancel(cl, ids[S_CANCELLED], NULL), JOBQ_OK);
    for (int i = 0; i < S_NJOBS; i++)
        s_wait_status(cl, ids[i], want[i]);
    jobq_client_destroy(&cl);

    //  While its broker runs, an LMDB store is refused, and says why.
    s_run_t r;
    const char *exp[] = {"export", "--store", store_a, "--out", file, NULL};
    s_jobq(&r, tmp, exp);
    s_expect(&r, 1, "stop the jobq-broker");
    assert_int_not_equal(access(file, F_OK), 0);

    //  Stopped (the worker after: the job stays running in the store).
    jobq_test_broker_stop(&src, SIGTERM);
    jobq_test_stop(worker, SIGKILL, 5000);
    s_jobq(&r, tmp, exp);
    s_expect(&r, 0, "exported 7 jobs");
    //  The client library gives every enqueue a key of its own.
    s_expect(&r, 0, "and 7 keys from");
    assert_int_equal(s_lines(file), 1 + S_NJOBS + S_NJOBS + 1);

    //  Into an empty store, then again: all skipped.
    const char *imp[] = {"import", "--store", store_b, "--in", file, NULL};
    s_jobq(&r, tmp, imp);
    s_expect(&r, 0, "jobs: 7 imported, 0 skipped");
    s_expect(&r, 0, "keys: 7 imported, 0 skipped");
    s_expect(&r, 0, "1 job came in running");
    s_jobq(&r, tmp, imp);
    s_expect(&r, 0, "jobs: 0 imported, 7 skipped");
    s_expect(&r, 0, "keys: 0 imported, 7 skipped");

    //  A truncated file, and one with a damaged record, import nothing.
    s_copy(file, cut, -1, 0);
    const char *imp_cut[] = {"import", "--store", store_c, "--in", cut, NULL};
    s_jobq(&r, tmp, imp_cut);
    s_expect(&r, 1, "without its end line");
    s_expect(&r, 1, "nothing imported");
    s_copy(file, bad, 100, 3);
    const char *imp_bad[] = {"import", "--store", store_c, "--in", bad, NULL};
    s_jobq(&r, tmp, imp_bad);
    s_expect(&r, 1, "line 3: the record fails its check");
    char again[600];
    snprintf(again, sizeof again, "%s/c.jsonl", tmp);
    const char *exp_c[] = {"export", "--store", store_c, "--out", again, NULL};
    s_jobq(&r, tmp, exp_c);
    s_expect(&r, 0, "exported 0 jobs and 0 keys");

    //  Misuse is named, exit status 2.
    const char *misuse[] = {"import", "--store", store_c, "--out", file, NULL};
    s_jobq(&r, tmp, misuse);
    s_expect(&r, 2, "import does not take --out");
    const char *nostore[] = {"export", NULL};
    s_jobq(&r, tmp, nostore);
    s_expect(&r, 2, "--store");

    //  A broker on the new store has every job, as it was.
    jobq_test_broker_t dst;
    memset(&dst, 0, sizeof dst);
    const char *lmdb_b[] = {"--store", store_b, NULL};
    assert_int_equal(jobq_test_broker_start(&dst, b2, lmdb_b), 0);
    cl = s_client(&dst);
    for (int i = 0; i < S_NJOBS; i++) {
        jobq_job_info_t info;
        memset(&info, 0, sizeof info);
        assert_int_equal(jobq_client_status(cl, ids[i], &info), JOBQ_OK);
        if (info.status != want[i])
            fail_msg("job %s is %s, was %s", ids[i],
                     jobq_status_name(info.status), jobq_status_name(want[i]));
        assert_string_equal(info.shop_id, S_SHOP);
        if (i == S_DELAYED)
            assert_int_equal(info.wait, JOBQ_WAIT_DELAYED);
        jobq_job_info_clear(&info);
    }
    //  The key answers with the same job; a new job gets a new, higher id.
    char id[JOBQ_ID_LEN + 1];
    jobq_enqueue_t req = {"idle", S_SHOP, {NULL, 0}, 0, 0, 1, 0, S_KEY};
    bool created = true;
    assert_int_equal(jobq_client_enqueue(cl, &req, id, &created), JOBQ_OK);
    assert_false(created);
    assert_string_equal(id, ids[S_KEYED]);
    req.key = NULL;
    assert_int_equal(jobq_client_enqueue(cl, &req, id, &created), JOBQ_OK);
    assert_true(created);
    for (int i = 0; i < S_NJOBS; i++)
        assert_true(strcmp(id, ids[i]) > 0);
    jobq_client_destroy(&cl);
    jobq_test_broker_stop(&dst, SIGTERM);
    jobq_test_rmtree(tmp);
    free(tmp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_lmdb_to_lmdb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
