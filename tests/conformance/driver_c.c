/*  driver_c: the conformance scenarios (tests/conformance/README.md) run
    by libjobq, the C client, against a real broker, with conf_worker for
    the scenarios that need a worker. One cmocka test per scenario file.

    usage: driver_c [SCENARIO_DIR]   (default tests/conformance/scenarios;
    JOBQ_BIN_DIR names the broker's directory, as for every integration
    test)
*/
#include "jobq_json.h"
#include "jobq_test.h"

#include "jobq/jobq_client.h"

#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MAX_SCENARIOS 256

typedef struct {
    json_t *scenario;
    char *dir;
    jobq_test_broker_t b;
    pid_t worker;
    int workers_started;
    jobq_client_t *c;
    json_t *saved;  //  name -> job id
    char why[1024];
} s_run_t;

//  JOBQ/1's code for a libjobq error (docs/PROTOCOL.md 7).
static const char *
s_code(int rc)
{
    switch (rc) {
    case JOBQ_EINVAL:
        return "bad_request";
    case JOBQ_ETYPE:
        return "unknown_type";
    case JOBQ_ENOTFOUND:
        return "unknown_job";
    case JOBQ_EFORBIDDEN:
        return "forbidden";
    case JOBQ_ESTATE:
        return "invalid_state";
    case JOBQ_ETOOBIG:
        return "too_large";
    case JOBQ_ERATE:
        return "rate_limited";
    case JOBQ_EQUOTA:
        return "quota_exceeded";
    case JOBQ_ESTOREFULL:
        return "storage_full";
    case JOBQ_ESTORAGE:
        return "storage_error";
    case JOBQ_EUNAVAILABLE:
    case JOBQ_ETIMEOUT:
        return "unavailable";
    default:
        return "internal";
    }
}

//  A job reference: "=<16 hex>" is that id, anything else a saved name.
static const char *
s_job(s_run_t *r, json_t *step)
{
    const char *ref = json_string_value(json_object_get(step, "job"));
    if (!ref)
        return "";
    if (ref[0] == '=')
        return ref + 1;
    const char *id = json_string_value(json_object_get(r->saved, ref));
    if (!id)
        fail_msg("no job saved as '%s'", ref);
    return id;
}

//  want matches got: objects by their keys (got may have more), arrays
//  element by element, "$name" as the id saved under name, anything else
//  equal. False with r->why naming the path.
static bool
s_match(s_run_t *r, json_t *want, json_t *got, const char *path)
{
    if (json_is_string(want) && json_string_value(want)[0] == '$') {
        const char *id = json_string_value(
            json_object_get(r->saved, json_string_value(want) + 1));
        if (id && json_is_string(got) &&
            strcmp(id, json_string_value(got)) == 0)
            return true;
    } else if (json_is_object(want)) {
        if (!json_is_object(got))
            goto differ;
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", path, k);
            if (!s_match(r, v, json_object_get(got, k), p))
                return false;
        }
        return true;
    } else if (json_is_array(want)) {
        if (!json_is_array(got) ||
            json_array_size(got) != json_array_size(want))
            goto differ;
        for (size_t i = 0; i < json_array_size(want); i++) {
            char p[512];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            if (!s_match(r, json_array_get(want, i), json_array_get(got, i), p))
                return false;
        }
        return true;
    } else if (json_is_number(want) && json_is_number(got)) {
        if (json_number_value(want) == json_number_value(got))
            return true;  //  numbers as numbers: 1 is 1.0
    } else if (json_equal(want, got)) {
        return true;
    }
differ:;
    char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY),
         *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(r->why, sizeof r->why, "%s: want %.300s, got %.300s", path,
             w ? w : "?", g ? g : "(nothing)");
    free(w);
    free(g);
    return false;
}

//  The value at a "/"-separated path of o (stats' expectations).
static json_t *
s_path(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *k = strtok_r(buf, "/", &save); k && o;
         k = strtok_r(NULL, "/", &save))
        o = json_object_get(o, k);
    return o;
}

//  A job read back, as the job map in JSON plus errors_count.
static json_t *
s_job_json(const jobq_job_info_t *info)
{
    json_t *j = jobq_json_job(info);
    json_object_set_new(j, "errors_count",
                        json_integer((json_int_t) json_array_size(
                            json_object_get(j, "errors"))));
    return j;
}

//  The fields of an enqueue step into e; input into w.
static int
s_enqueue_req(json_t *s, jobq_enqueue_t *e, jobq_mp_writer_t *w)
{
    memset(e, 0, sizeof *e);
    e->type = json_string_value(json_object_get(s, "type"));
    e->shop_id = json_string_value(json_object_get(s, "shop"));
    e->key = json_string_value(json_object_get(s, "key"));
    e->priority = (int32_t) json_integer_value(json_object_get(s, "priority"));
    e->delay_ms = (uint64_t) json_integer_value(json_object_get(s, "delay_ms"));
    e->max_attempts =
        (uint32_t) json_integer_value(json_object_get(s, "max_attempts"));
    e->timeout_ms =
        (uint64_t) json_integer_value(json_object_get(s, "timeout_ms"));
    json_t *in = json_object_get(s, "input");
    if (in) {
        //  The client's own check: an input past the limits of 5.1 is
        //  refused before it is sent.
        char *text = json_dumps(in, JSON_COMPACT);
        char why[200];
        size_t at = w->len;
        int rc = jobq_json_to_mp(text, w, why, sizeof why);
        free(text);
        if (rc != JOBQ_OK)
            return rc;
        e->input.ptr = (const uint8_t *) (uintptr_t) at;  //  fixed below
        e->input.len = w->len - at;
    }
    return JOBQ_OK;
}

typedef struct {
    uint32_t last;
    int last_wait;
    uint64_t last_until;
    int states;
    bool out_of_order;
} s_watched_t;

//  Each state a watch yields is newer than the last: a higher version, or
//  the same one with another `wait` (PROTOCOL.md 10.2, step 4).
static void
s_on_state(void *arg, const jobq_job_info_t *job)
{
    s_watched_t *w = arg;
    if (w->states && (job->version < w->last ||
                      (job->version == w->last && job->wait == w->last_wait &&
                       job->wait_until == w->last_until)))
        w->out_of_order = true;
    w->last = job->version;
    w->last_wait = job->wait;
    w->last_until = job->wait_until;
    w->states++;
}

static void
s_start_worker(s_run_t *r)
{
    char name[64];
    snprintf(name, sizeof name, "conf-c-%d", ++r->workers_started);
    char bin[] = JOBQ_CONF_WORKER;
    char log[600];
    snprintf(log, sizeof log, "%s/worker-%d.log", r->dir, r->workers_started);
    char *argv[] = {bin, r->b.workers, name, NULL};
    r->worker = jobq_test_spawn(argv, log);
    assert_true(r->worker > 0);
}

//  One step: run it, and check its answer against "expect" or "error".
static void
s_step(s_run_t *r, json_t *s, size_t n)
{
    const char *op = json_string_value(json_object_get(s, "op"));
    const char *want_err = json_string_value(json_object_get(s, "error"));
    json_t *want = json_object_get(s, "expect");
    json_t *got = NULL;
    int rc = JOBQ_OK;
    assert_non_null(op);
    if (strcmp(op, "enqueue") == 0) {
        jobq_mp_writer_t w;
        jobq_mp_writer_init(&w, JOBQ_MAX_FRAME_BYTES);
        jobq_enqueue_t e;
        rc = s_enqueue_req(s, &e, &w);
        if (e.input.len)
            e.input.ptr = w.data + (uintptr_t) e.input.ptr;
        char id[JOBQ_ID_LEN + 1];
        bool created = false;
        if (rc == JOBQ_OK)
            rc = jobq_client_enqueue(r->c, &e, id, &created);
        if (rc == JOBQ_OK) {
            got = json_pack("{s:s,s:b}", "id", id, "created", created);
            const char *as = json_string_value(json_object_get(s, "as"));
            if (as)
                json_object_set_new(r->saved, as, json_string(id));
        }
        jobq_mp_writer_fini(&w);
    } else if (strcmp(op, "enqueue_batch") == 0) {
        json_t *jobs = json_object_get(s, "jobs");
        size_t k = json_array_size(jobs);
        jobq_enqueue_t *e = calloc(k, sizeof *e);
        char(*ids)[JOBQ_ID_LEN + 1] = calloc(k, sizeof *ids);
        bool *created = calloc(k, sizeof *created);
        jobq_mp_writer_t w;
        jobq_mp_writer_init(&w, JOBQ_MAX_FRAME_BYTES);
        for (size_t i = 0; i < k && rc == JOBQ_OK; i++)
            rc = s_enqueue_req(json_array_get(jobs, i), &e[i], &w);
        for (size_t i = 0; i < k; i++)
            if (e[i].input.len)
                e[i].input.ptr = w.data + (uintptr_t) e[i].input.ptr;
        if (rc == JOBQ_OK)
            rc = jobq_client_enqueue_batch(r->c, e, k, ids, created);
        if (rc == JOBQ_OK) {
            json_t *a = json_array(), *b = json_array();
            json_t *as = json_object_get(s, "as");
            for (size_t i = 0; i < k; i++) {
                json_array_append_new(a, json_string(ids[i]));
                json_array_append_new(b, json_boolean(created[i]));
                const char *name = json_string_value(json_array_get(as, i));
                if (name)
                    json_object_set_new(r->saved, name, json_string(ids[i]));
            }
            got = json_pack("{s:o,s:o}", "ids", a, "created", b);
        }
        jobq_mp_writer_fini(&w);
        free(e);
        free(ids);
        free(created);
    } else if (strcmp(op, "status") == 0 || strcmp(op, "cancel") == 0 ||
               strcmp(op, "retry") == 0) {
        jobq_job_info_t info;
        memset(&info, 0, sizeof info);
        const char *id = s_job(r, s);
        rc = op[0] == 's'   ? jobq_client_status(r->c, id, &info)
             : op[0] == 'c' ? jobq_client_cancel(r->c, id, &info)
                            : jobq_client_retry(r->c, id, &info);
        if (rc == JOBQ_OK)
            got = s_job_json(&info);
        jobq_job_info_clear(&info);
    } else if (strcmp(op, "wait") == 0) {
        const char *id = s_job(r, s);
        const char *status = json_string_value(json_object_get(s, "status"));
        json_int_t within = json_integer_value(json_object_get(s, "within_ms"));
        int64_t until = (int64_t) time(NULL) * 1000 + within;
        for (;;) {
            jobq_job_info_t info;
            memset(&info, 0, sizeof info);
            rc = jobq_client_status(r->c, id, &info);
            bool there = rc == JOBQ_OK &&
                         strcmp(jobq_status_name(info.status), status) == 0;
            if (there)
                got = s_job_json(&info);
            jobq_job_info_clear(&info);
            if (there || rc != JOBQ_OK)
                break;
            if ((int64_t) time(NULL) * 1000 > until)
                fail_msg("step %zu: job %s not %s within %lld ms", n, id,
                         status, (long long) within);
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    } else if (strcmp(op, "watch") == 0) {
        s_watched_t st = {0, 0, 0, 0, false};
        jobq_watch_t cb = {s_on_state, s_on_state, s_on_state, &st};
        const char *id = s_job(r, s);
        rc = jobq_client_watch(
            r->c, id, &cb,
            (int) json_integer_value(json_object_get(s, "within_ms")));
        if (rc == JOBQ_OK || rc == JOBQ_EFAILED || rc == JOBQ_ECANCELLED) {
            if (st.out_of_order)
                fail_msg("step %zu: watch saw versions out of order", n);
            jobq_job_info_t info;
            memset(&info, 0, sizeof info);
            rc = jobq_client_status(r->c, id, &info);
            got = s_job_json(&info);
            json_object_set_new(got, "final",
                                json_string(jobq_status_name(info.status)));
            json_object_set_new(got, "states", json_integer(st.states));
            jobq_job_info_clear(&info);
            json_t *min = json_object_get(want, "min_states");
            if (min && st.states < json_integer_value(min))
                fail_msg("step %zu: watch saw %d states, want %lld or more", n,
                         st.states, (long long) json_integer_value(min));
            json_object_set(got, "min_states", min);
        }
    } else if (strcmp(op, "list") == 0 || strcmp(op, "list_all") == 0) {
        jobq_list_t q = {
            .shop_id = json_string_value(json_object_get(s, "shop")),
            .type = json_string_value(json_object_get(s, "type")),
            .status = -1,
            .limit =
                (uint32_t) json_integer_value(json_object_get(s, "limit"))};
        const char *st = json_string_value(json_object_get(s, "status"));
        for (int i = 0; st && i < JOBQ_STATUS_COUNT_; i++)
            if (strcmp(jobq_status_name(i), st) == 0)
                q.status = i;
        json_t *ids = json_array();
        char next[JOBQ_ID_LEN + 1] = "", cursor[JOBQ_ID_LEN + 1];
        bool all = op[4] == '_';
        for (int page = 0; page < 1000; page++) {
            jobq_job_info_t *jobs = NULL;
            size_t count = 0;
            memcpy(cursor, next, sizeof cursor);
            q.cursor = page ? cursor : NULL;
            rc = jobq_client_list(r->c, &q, &jobs, &count, next);
            if (rc != JOBQ_OK)
                break;
            for (size_t i = 0; i < count; i++)
                json_array_append_new(ids, json_string(jobs[i].id));
            jobq_job_list_free(&jobs, count);
            if (!all || !next[0])
                break;
        }
        if (rc == JOBQ_OK)
            got = json_pack("{s:I,s:b,s:O}", "count",
                            (json_int_t) json_array_size(ids), "more",
                            next[0] != '\0', "ids", ids);
        json_decref(ids);
    } else if (strcmp(op, "stats") == 0) {
        jobq_bytes_t body = {NULL, 0};
        rc = jobq_client_stats(r->c, &body);
        if (rc == JOBQ_OK) {
            json_t *st = jobq_json_from_mp(body);
            free((void *) body.ptr);
            //  Expectations name paths: flatten them into got.
            got = json_object();
            const char *k;
            json_t *v;
            json_object_foreach(want, k, v)
            {
                json_t *at = s_path(st, k);
                if (at)
                    json_object_set(got, k, at);
            }
            json_decref(st);
        }
    } else if (strcmp(op, "same") == 0) {
        json_t *jobs = json_object_get(s, "jobs");
        const char *a = json_string_value(json_object_get(
                       r->saved, json_string_value(json_array_get(jobs, 0)))),
                   *b = json_string_value(json_object_get(
                       r->saved, json_string_value(json_array_get(jobs, 1))));
        if (!a || !b || strcmp(a, b) != 0)
            fail_msg("step %zu: %s and %s differ", n, a ? a : "?", b ? b : "?");
        return;
    } else if (strcmp(op, "sleep") == 0) {
        json_int_t ms = json_integer_value(json_object_get(s, "ms"));
        struct timespec ts = {(time_t) (ms / 1000),
                              (long) (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return;
    } else if (strcmp(op, "kill_worker") == 0) {
        assert_true(r->worker > 0);
        jobq_test_stop(r->worker, SIGKILL, 5000);
        r->worker = -1;
        return;
    } else if (strcmp(op, "start_worker") == 0) {
        s_start_worker(r);
        return;
    } else {
        fail_msg("step %zu: unknown op '%s'", n, op);
    }
    if (want_err) {
        if (rc == JOBQ_OK || strcmp(s_code(rc), want_err) != 0)
            fail_msg("step %zu (%s): want error %s, got %s (%s)", n, op,
                     want_err, rc == JOBQ_OK ? "success" : s_code(rc),
                     jobq_client_last_error(r->c));
    } else if (rc != JOBQ_OK) {
        fail_msg("step %zu (%s): %s: %s", n, op, s_code(rc),
                 jobq_client_last_error(r->c));
    } else if (want && !s_match(r, want, got, op)) {
        fail_msg("step %zu: %s", n, r->why);
    }
    json_decref(got);
}

static int
s_setup(void **state)
{
    s_run_t *r = calloc(1, sizeof *r);
    r->scenario = *state;
    r->dir = jobq_test_tmpdir();
    r->b.pid = -1;
    r->worker = -1;
    r->saved = json_object();
    *state = r;
    json_t *args = json_object_get(r->scenario, "broker");
    const char *extra[16] = {NULL};
    for (size_t i = 0; i < json_array_size(args) && i < 15; i++)
        extra[i] = json_string_value(json_array_get(args, i));
    if (jobq_test_broker_start(&r->b, r->dir, extra) != 0)
        return -1;
    if (json_is_true(json_object_get(r->scenario, "worker")))
        s_start_worker(r);
    jobq_client_config_t cfg;
    jobq_client_config_defaults(&cfg);
    cfg.broker = r->b.clients;
    cfg.events = r->b.events;
    cfg.timeout_ms = 5000;
    r->c = jobq_client_new(&cfg);
    return r->c ? 0 : -1;
}

static int
s_teardown(void **state)
{
    s_run_t *r = *state;
    json_t *scenario = r->scenario;
    jobq_client_destroy(&r->c);
    if (r->worker > 0)
        jobq_test_stop(r->worker, SIGTERM, 5000);
    jobq_test_broker_stop(&r->b, SIGTERM);
    jobq_test_rmtree(r->dir);
    free(r->dir);
    json_decref(r->saved);
    free(r);
    *state = scenario;
    return 0;
}

static void
s_scenario(void **state)
{
    s_run_t *r = *state;
    json_t *steps = json_object_get(r->scenario, "steps");
    assert_true(json_array_size(steps) > 0);
    for (size_t i = 0; i < json_array_size(steps); i++)
        s_step(r, json_array_get(steps, i), i);
}

static int
s_by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

int
main(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "usage: driver_c [SCENARIO_DIR]\n");
        return 2;
    }
    const char *dir = argc == 2 ? argv[1] : JOBQ_CONFORMANCE_DIR;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "driver_c: cannot read %s\n", dir);
        return 2;
    }
    char *files[S_MAX_SCENARIOS];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < S_MAX_SCENARIOS) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
            files[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(files, n, sizeof *files, s_by_name);
    struct CMUnitTest *tests = calloc(n ? n : 1, sizeof *tests);
    for (size_t i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        json_error_t je;
        json_t *sc = json_load_file(path, 0, &je);
        if (!sc) {
            fprintf(stderr, "driver_c: %s: line %d: %s\n", path, je.line,
                    je.text);
            return 2;
        }
        tests[i].name = files[i];
        tests[i].test_func = s_scenario;
        tests[i].setup_func = s_setup;
        tests[i].teardown_func = s_teardown;
        tests[i].initial_state = sc;
    }
    if (n == 0) {
        fprintf(stderr, "driver_c: no scenarios in %s\n", dir);
        return 2;
    }
    return _cmocka_run_group_tests("conformance-c", tests, n, NULL, NULL);
}
