/*  test_nats_cluster.c: the NATS JetStream cluster fixture (three
    nats-server processes on loopback) and what the broker's NATS store
    will count on: an R3 stream keeps every acknowledged message through
    the loss of its leader (publishes fail only while the others elect a
    new one, and succeed again within seconds), takes the killed node back,
    and goes on accepting publishes while one node of the three is frozen
    (a quorum of two). */
#include "jobq_test.h"
#include "jobq_test_nats.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_STREAM "SMOKE"

typedef struct {
    char *dir;           //  temporary directory
    jobq_test_nats_t c;  //  the cluster
    natsConnection *nc;  //  a client of it
    jsCtx *js;           //  its JetStream context
} s_fx_t;

static int64_t
s_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void
s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int
s_setup(void **state)
{
    s_fx_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    for (int i = 0; i < JOBQ_TEST_NATS_NODES; i++)
        fx->c.pid[i] = -1;
    fx->dir = jobq_test_tmpdir();
    *state = fx;
    return fx->dir ? 0 : -1;
}

static int
s_teardown(void **state)
{
    s_fx_t *fx = *state;
    jsCtx_Destroy(fx->js);
    natsConnection_Destroy(fx->nc);
    jobq_test_nats_stop(&fx->c);
    jobq_test_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

//  Publish message n (1, 2, ...) to smoke.n, with message id smoke-n so
//  that a retry of a publish that was stored but not acknowledged is not
//  stored twice. Returns NATS_OK when acknowledged.
static natsStatus
s_publish(jsCtx *js, int n, int64_t max_wait)
{
    char subj[32], id[32], body[32];
    snprintf(subj, sizeof subj, "smoke.%d", n);
    snprintf(id, sizeof id, "smoke-%d", n);
    int len = snprintf(body, sizeof body, "message %d", n);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = max_wait;
    po.MsgId = id;
    jsPubAck *pa = NULL;
    jsErrCode err = 0;
    natsStatus s = js_Publish(&pa, js, subj, body, len, &po, &err);
    if (s == NATS_OK && (!pa || strcmp(pa->Stream, S_STREAM) != 0))
        s = NATS_ERR;
    jsPubAck_Destroy(pa);
    return s;
}

//  Publish message n again and again (100 ms apart) until it is
//  acknowledged or the clock passes deadline (ms). True if acknowledged.
static bool
s_publish_until(jsCtx *js, int n, int64_t deadline)
{
    while (true) {
        int64_t left = deadline - s_now_ms();
        if (left <= 0)
            return false;
        if (s_publish(js, n, left < 1000 ? left : 1000) == NATS_OK)
            return true;
        s_sleep_ms(100);
    }
}

//  Messages in the stream, or -1 if no answer within 5 s.
static int64_t
s_stream_msgs(jsCtx *js)
{
    int64_t deadline = s_now_ms() + 5000;
    while (s_now_ms() < deadline) {
        jsStreamInfo *si = NULL;
        if (js_GetStreamInfo(&si, js, S_STREAM, NULL, NULL) == NATS_OK) {
            int64_t msgs = (int64_t) si->State.Msgs;
            jsStreamInfo_Destroy(si);
            return msgs;
        }
        s_sleep_ms(100);
    }
    return -1;
}

typedef struct {
    jobq_test_nats_t *c;
    int leader;
    int except;  //  a leader other than this node (-1: any)
} s_leader_t;

static bool
s_has_leader(void *arg)
{
    s_leader_t *l = arg;
    l->leader = jobq_test_nats_stream_leader(l->c, S_STREAM);
    return l->leader >= 0 && l->leader != l->except;
}

static void
test_nats_r3_stream_survives_leader_loss(void **state)
{
    s_fx_t *fx = *state;
    int64_t t_start = s_now_ms();
    assert_int_equal(jobq_test_nats_start(&fx->c, fx->dir), 0);
    printf("cluster ready in %lld ms: %s\n", (long long) (s_now_ms() - t_start),
           fx->c.urls);

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    assert_int_equal(jobq_test_nats_connect(&fx->c, &fx->nc), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&fx->js, fx->nc, &jo), NATS_OK);

    //  An R3 stream on file storage.
    const char *subjects[] = {"smoke.>"};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = S_STREAM;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.Replicas = 3;
    jsStreamInfo *si = NULL;
    jsErrCode err = 0;
    natsStatus s = js_AddStream(&si, fx->js, &sc, NULL, &err);
    if (s != NATS_OK)
        fail_msg("js_AddStream: %s (JetStream error %d)", natsStatus_GetText(s),
                 (int) err);
    assert_non_null(si->Cluster);
    assert_int_equal(si->Config->Replicas, 3);
    jsStreamInfo_Destroy(si);
    s_leader_t l = {&fx->c, -1, -1};
    assert_true(jobq_test_wait_until(s_has_leader, &l, 10000));

    for (int n = 1; n <= 50; n++)
        assert_int_equal(s_publish(fx->js, n, 2000), NATS_OK);
    assert_int_equal(s_stream_msgs(fx->js), 50);

    //  Kill the stream's leader; the other two elect a new one.
    int dead = jobq_test_nats_stream_leader(&fx->c, S_STREAM);
    assert_true(dead >= 0);
    int64_t t_kill = s_now_ms();
    jobq_test_nats_stop_node(&fx->c, dead, SIGKILL);
    int64_t deadline = t_kill + 15000;
    int64_t t_first = -1;
    for (int n = 51; n <= 100; n++) {
        if (!s_publish_until(fx->js, n, deadline))
            fail_msg("message %d not acknowledged within 15 s of killing "
                     "the leader n%d",
                     n, dead + 1);
        if (t_first < 0)
            t_first = s_now_ms();
    }
    int64_t t_all = s_now_ms();
    assert_int_equal(s_stream_msgs(fx->js), 100);
    l.except = dead;
    assert_true(jobq_test_wait_until(s_has_leader, &l, 5000));
    printf("leader n%d killed: first publish acknowledged after %lld ms, "
           "all 50 after %lld ms; new leader n%d\n",
           dead + 1, (long long) (t_first - t_kill),
           (long long) (t_all - t_kill), l.leader + 1);

    //  The killed node comes back with its store.
    int64_t t_restart = s_now_ms();
    assert_int_equal(jobq_test_nats_restart_node(&fx->c, dead), 0);
    printf("n%d healthy again after %lld ms\n", dead + 1,
           (long long) (s_now_ms() - t_restart));

    //  Freeze a node that neither leads the stream nor serves our client:
    //  the other two are a quorum, and publishes go on.
    l.except = -1;
    assert_true(jobq_test_wait_until(s_has_leader, &l, 5000));
    char url[256] = "";
    assert_int_equal(natsConnection_GetConnectedUrl(fx->nc, url, sizeof url),
                     NATS_OK);
    int ours = jobq_test_nats_node_of_url(&fx->c, url);
    int frozen = -1;
    for (int i = 0; i < JOBQ_TEST_NATS_NODES && frozen < 0; i++)
        if (i != l.leader && i != ours)
            frozen = i;
    assert_true(frozen >= 0);
    jobq_test_nats_pause_node(&fx->c, frozen, true);
    int n = 101;
    int64_t t_pause = s_now_ms();
    while (s_now_ms() - t_pause < 2000) {
        s = s_publish(fx->js, n, 2000);
        if (s != NATS_OK)
            fail_msg("message %d with n%d frozen: %s", n, frozen + 1,
                     natsStatus_GetText(s));
        n++;
        s_sleep_ms(50);
    }
    jobq_test_nats_pause_node(&fx->c, frozen, false);
    printf("n%d frozen for 2 s: %d publishes acknowledged\n", frozen + 1,
           n - 101);
    assert_int_equal(s_stream_msgs(fx->js), n - 1);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_nats_r3_stream_survives_leader_loss, s_setup, s_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close();
    return rc;
}
