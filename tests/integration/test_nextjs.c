/*  test_nextjs.c: the original design running (examples/nextjs). A broker,
    a worker that may read the sample shop, jobq-gateway, and the example
    app under `next dev`, all on loopback; tests/browser/nextjs.py clicks
    Start in headless Chromium and checks that the scrape's progress, its
    end (a full bar) and its result show on the page. The app and its npm
    packages are the ones tests/js/setup.sh put in BUILD/js (the js
    fixture). The screenshot stays in BUILD/tests/browser/nextjs.png.
*/
#include "jobq_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_JS_DIR JOBQ_BUILD_ROOT "/js"

typedef struct {
    char *dir;
    jobq_test_broker_t b;
    pid_t worker, gateway, app;
    char app_url[64];
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
    const char *wargs[] = {"--allow-files", S_JS_DIR "/examples", NULL};
    fx->worker = jobq_test_worker_start(&fx->b, wargs);
    int aport = jobq_test_free_port();
    char cors[64], gurl[64], log[600], aport_s[16];
    snprintf(cors, sizeof cors, "http://127.0.0.1:%d", aport);
    snprintf(fx->app_url, sizeof fx->app_url, "http://127.0.0.1:%d/", aport);
    const char *gargs[] = {"--cors", cors, NULL};
    fx->gateway = jobq_test_gateway_start(&fx->b, gargs, gurl, sizeof gurl);
    //  The app: its server talks to the broker, its page to the gateway.
    snprintf(aport_s, sizeof aport_s, "%d", aport);
    setenv("PORT", aport_s, 1);
    setenv("JOBQ_BROKER", fx->b.clients, 1);
    setenv("JOBQ_EVENTS", fx->b.events, 1);
    setenv("NEXT_PUBLIC_JOBQ_GATEWAY", gurl, 1);
    setenv("NEXT_TELEMETRY_DISABLED", "1", 1);
    snprintf(log, sizeof log, "%s/next.log", fx->dir);
    char sh[] = "/bin/sh", c[] = "-c",
         cmd[] = "cd " S_JS_DIR "/examples/nextjs && exec npm run dev";
    char *aargv[] = {sh, c, cmd, NULL};
    fx->app = jobq_test_spawn(aargv, log);
    return fx->worker > 0 && fx->gateway > 0 && fx->app > 0 ? 0 : -1;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    if (fx->app > 0) {  //  npm, next and its workers: the whole group
        kill(-fx->app, SIGTERM);
        if (jobq_test_wait(fx->app, 5000) < 0)
            kill(-fx->app, SIGKILL);
        kill(-fx->app, SIGKILL);
    }
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
test_nextjs_start_shows_the_scrape_live_to_its_result(void **state)
{
    s_fx_t *fx = *state;
    char out[] = JOBQ_BUILD_DIR "/browser";
    mkdir(out, 0755);
    char script[] = JOBQ_SOURCE_DIR "/tests/browser/nextjs.py";
    char py[] = "/usr/bin/python3";
    char log[700];
    snprintf(log, sizeof log, "%s/nextjs.log", out);
    remove(log);
    char *argv[] = {py, script, fx->app_url, out, NULL};
    pid_t driver = jobq_test_spawn(argv, log);
    assert_true(driver > 0);
    int st = jobq_test_wait(driver, 200000);
    jobq_test_log_tail(log);
    if (st != 0) {
        char next[600];
        snprintf(next, sizeof next, "%s/next.log", fx->dir);
        jobq_test_log_tail(next);
        fail_msg("nextjs.py: wait status %d (see %s)", st, log);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_nextjs_start_shows_the_scrape_live_to_its_result, s_setup,
            s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
