/*  jobq_coalesce.c: one ENQUEUE_BATCH for the requests that arrive
    together (jobq_coalesce.h). */
#include "jobq_coalesce.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct s_item {
    jobq_enqueue_t e;  //  strings and input point into mem
    char *mem;
    //  The answer, under s_co.mu.
    bool done;
    bool abandoned;  //  its request gave up waiting: free it when done
    int rc;
    char id[JOBQ_ID_LEN + 1];
    bool created;
    char why[256];
    struct s_item *next;
} s_item_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work;      //  the thread: something to send, or stop
    pthread_cond_t answered;  //  the requests: some answers came
    s_item_t *head, **tail;
    int queued;
    bool running, stop;
    pthread_t threads[JOBQ_COALESCE_THREADS];
    int nthreads;
    jobq_client_t *(*client)(void);
    void (*done)(void);
} s_co = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .work = PTHREAD_COND_INITIALIZER,
          .answered = PTHREAD_COND_INITIALIZER};

//  A copy of e whose strings and input live in one block.
static s_item_t *
s_item_new(const jobq_enqueue_t *e)
{
    size_t tl = strlen(e->type) + 1, sl = strlen(e->shop_id) + 1,
           kl = e->key ? strlen(e->key) + 1 : 0;
    s_item_t *it = calloc(1, sizeof *it);
    char *m = it ? malloc(tl + sl + kl + e->input.len + 1) : NULL;
    if (!m) {
        free(it);
        return NULL;
    }
    it->mem = m;
    it->e = *e;
    memcpy(m, e->type, tl);
    it->e.type = m;
    m += tl;
    memcpy(m, e->shop_id, sl);
    it->e.shop_id = m;
    m += sl;
    if (kl) {
        memcpy(m, e->key, kl);
        it->e.key = m;
        m += kl;
    }
    if (e->input.len)
        memcpy(m, e->input.ptr, e->input.len);
    it->e.input.ptr = (const uint8_t *) m;
    return it;
}

static void
s_item_free(s_item_t *it)
{
    free(it->mem);
    free(it);
}

//  Record item i's answer (under s_co.mu).
static void
s_answer(s_item_t *it, int rc, const char *id, bool created, const char *why)
{
    it->rc = rc;
    if (id)
        memcpy(it->id, id, JOBQ_ID_LEN + 1);
    it->created = created;
    snprintf(it->why, sizeof it->why, "%s", why ? why : "");
    it->done = true;
}

//  Send batch[0..n) and answer each (outside the lock; answers under it).
static void
s_send(jobq_client_t *c, s_item_t **batch, size_t n)
{
    static __thread jobq_enqueue_t reqs[JOBQ_COALESCE_MAX_JOBS];
    static __thread char ids[JOBQ_COALESCE_MAX_JOBS][JOBQ_ID_LEN + 1];
    static __thread bool created[JOBQ_COALESCE_MAX_JOBS];
    int rc = JOBQ_EUNAVAILABLE;
    const char *why = "the gateway has no broker client";
    if (c && n == 1) {
        rc = jobq_client_enqueue(c, &batch[0]->e, ids[0], &created[0]);
        why = jobq_client_last_error(c);
    } else if (c) {
        for (size_t i = 0; i < n; i++)
            reqs[i] = batch[i]->e;
        rc = jobq_client_enqueue_batch(c, reqs, n, ids, created);
        why = jobq_client_last_error(c);
        //  Refused for one entry (or one shop): each on its own, so that
        //  only the requests at fault are refused. Only on a refusal the
        //  broker made before storing anything: after any other error the
        //  batch may be stored, and every request gets that error.
        if (rc == JOBQ_EINVAL || rc == JOBQ_ETYPE || rc == JOBQ_ETOOBIG ||
            rc == JOBQ_EQUOTA || rc == JOBQ_EFORBIDDEN) {
            for (size_t i = 0; i < n; i++)
                s_send(c, &batch[i], 1);
            return;
        }
    }
    pthread_mutex_lock(&s_co.mu);
    for (size_t i = 0; i < n; i++) {
        s_answer(batch[i], rc, rc == JOBQ_OK ? ids[i] : NULL,
                 rc == JOBQ_OK && created[i], why);
        if (batch[i]->abandoned)
            s_item_free(batch[i]);
    }
    pthread_cond_broadcast(&s_co.answered);
    pthread_mutex_unlock(&s_co.mu);
}

static void *
s_main(void *arg)
{
    (void) arg;
    jobq_client_t *c = s_co.client();
    s_item_t *batch[JOBQ_COALESCE_MAX_JOBS];
    pthread_mutex_lock(&s_co.mu);
    for (;;) {
        while (!s_co.head && !s_co.stop)
            pthread_cond_wait(&s_co.work, &s_co.mu);
        if (s_co.stop)
            break;
        //  What is waiting, up to a batch's count and bytes.
        size_t n = 0, bytes = 0;
        while (s_co.head && n < JOBQ_COALESCE_MAX_JOBS &&
               (n == 0 ||
                bytes + s_co.head->e.input.len <= JOBQ_COALESCE_MAX_BYTES)) {
            s_item_t *it = s_co.head;
            s_co.head = it->next;
            if (!s_co.head)
                s_co.tail = &s_co.head;
            s_co.queued--;
            if (it->abandoned) {  //  its request gave up: never sent
                s_item_free(it);
                continue;
            }
            bytes += it->e.input.len;
            batch[n++] = it;
        }
        pthread_mutex_unlock(&s_co.mu);
        if (n)
            s_send(c, batch, n);
        pthread_mutex_lock(&s_co.mu);
    }
    //  Stopping: whatever waits is not sent.
    for (s_item_t *it = s_co.head, *next; it; it = next) {
        next = it->next;
        s_answer(it, JOBQ_EUNAVAILABLE, NULL, false, "the gateway is stopping");
        if (it->abandoned)
            s_item_free(it);
    }
    s_co.head = NULL;
    s_co.tail = &s_co.head;
    s_co.queued = 0;
    pthread_cond_broadcast(&s_co.answered);
    pthread_mutex_unlock(&s_co.mu);
    if (s_co.done)
        s_co.done();
    return NULL;
}

int
jobq_coalesce_start(jobq_client_t *(*client)(void), void (*done)(void))
{
    s_co.client = client;
    s_co.done = done;
    s_co.head = NULL;
    s_co.tail = &s_co.head;
    s_co.stop = false;
    for (s_co.nthreads = 0; s_co.nthreads < JOBQ_COALESCE_THREADS;
         s_co.nthreads++)
        if (pthread_create(&s_co.threads[s_co.nthreads], NULL, s_main, NULL) !=
            0)
            break;
    if (s_co.nthreads == 0)
        return JOBQ_ENOMEM;
    s_co.running = true;
    return JOBQ_OK;
}

void
jobq_coalesce_stop(void)
{
    if (!s_co.running)
        return;
    pthread_mutex_lock(&s_co.mu);
    s_co.stop = true;
    pthread_cond_broadcast(&s_co.work);
    pthread_mutex_unlock(&s_co.mu);
    for (int i = 0; i < s_co.nthreads; i++)
        pthread_join(s_co.threads[i], NULL);
    s_co.running = false;
}

int
jobq_coalesce_enqueue(const jobq_enqueue_t *e,
                      int wait_ms,
                      char id[JOBQ_ID_LEN + 1],
                      bool *created,
                      char *why,
                      size_t why_len)
{
    s_item_t *it = s_item_new(e);
    if (!it) {
        snprintf(why, why_len, "out of memory");
        return JOBQ_ENOMEM;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    //  The coalescer's own request may take the client's timeout, and a
    //  batch refused for one entry is sent again one by one: wait for it.
    long long ns = until.tv_nsec + (long long) wait_ms * 1000000LL;
    until.tv_sec += (time_t) (ns / 1000000000LL);
    until.tv_nsec = (long) (ns % 1000000000LL);
    pthread_mutex_lock(&s_co.mu);
    if (!s_co.running || s_co.stop || s_co.queued >= JOBQ_COALESCE_MAX_QUEUE) {
        pthread_mutex_unlock(&s_co.mu);
        s_item_free(it);
        snprintf(why, why_len,
                 "the gateway has too many jobs waiting for "
                 "the broker; retry later");
        return JOBQ_EUNAVAILABLE;
    }
    *s_co.tail = it;
    s_co.tail = &it->next;
    s_co.queued++;
    pthread_cond_signal(&s_co.work);
    int wrc = 0;
    while (!it->done && wrc != ETIMEDOUT)
        wrc = pthread_cond_timedwait(&s_co.answered, &s_co.mu, &until);
    if (!it->done) {
        //  Given up: the coalescer frees it when it is answered.
        it->abandoned = true;
        pthread_mutex_unlock(&s_co.mu);
        snprintf(why, why_len, "no answer from the broker in time");
        return JOBQ_EUNAVAILABLE;
    }
    pthread_mutex_unlock(&s_co.mu);
    int rc = it->rc;
    if (rc == JOBQ_OK) {
        memcpy(id, it->id, JOBQ_ID_LEN + 1);
        *created = it->created;
    }
    snprintf(why, why_len, "%s", it->why);
    s_item_free(it);
    return rc;
}
