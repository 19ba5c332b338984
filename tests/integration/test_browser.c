/*  test_browser.c: the dashboard in a real browser. A broker, a worker and
    jobq-gateway on loopback ports, and tests/browser/dashboard.py driving
    headless Chromium over the DevTools protocol against them: a job's bar
    moves to completed live, Cancel and Retry work as buttons, a job's
    HTML shows as text. The screenshot stays in the build directory
    (tests/browser/dashboard.png) for a person to look at.
*/
#include "jobq_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *dir;
    jobq_test_broker_t b;
    pid_t worker, gateway;
    char base[64];
} s_fx_t;

static int
s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    *state = fx;
    fx->b.pid = -1;
    fx->dir = jobq_test_tmpdir();
    if (jobq_test_broker_start(&fx->b, fx->dir, NULL) != 0)
        return -1;
    const char *wargs[] = {"--types", "sleep,noop,fail", NULL};
    fx->worker = jobq_test_worker_start(&fx->b, wargs);
    fx->gateway =
        jobq_test_gateway_start(&fx->b, NULL, fx->base, sizeof fx->base);
    return fx->worker > 0 && fx->gateway > 0 ? 0 : -1;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    if (fx->gateway > 0)
        jobq_test_stop(fx->gateway, SIGTERM, 5000);
    if (fx->worker > 0)
        jobq_test_stop(fx->worker, SIGTERM, 5000);
    jobq_test_broker_stop(&fx->b, SIGTERM);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static void
test_browser_dashboard_shows_live_jobs_and_acts_on_them(void **state)
{
    s_fx_t *fx = *state;
    //  The driver waits for the gateway's /healthz itself.
    char out[] = JOBQ_BUILD_DIR "/browser";
    mkdir(out, 0755);
    char script[] = JOBQ_SOURCE_DIR "/tests/browser/dashboard.py";
    char py[] = "/usr/bin/python3";
    char log[700], png[700];
    snprintf(log, sizeof log, "%s/dashboard.log", out);
    snprintf(png, sizeof png, "%s/dashboard.png", out);
    remove(log);
    remove(png);
    char *argv[] = {py, script, fx->base, out, NULL};
    pid_t driver = jobq_test_spawn(argv, log);
    assert_true(driver > 0);
    int st = jobq_test_wait(driver, 150000);
    jobq_test_log_tail(log);
    if (st != 0) {
        char gwlog[600];
        snprintf(gwlog, sizeof gwlog, "%s/gateway.log", fx->dir);
        jobq_test_log_tail(gwlog);
        fail_msg("dashboard.py: wait status %d (see %s)", st, log);
    }
    struct stat sb;
    assert_int_equal(stat(png, &sb), 0);
    assert_true(sb.st_size > 10000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_browser_dashboard_shows_live_jobs_and_acts_on_them, s_setup,
            s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
