/*  jobq_pool.c: the slot threads and their two queues.

    One mutex guards both queues and every slot's running job. The job
    queue wakes a waiting slot with a condition variable; the result queue
    wakes the runtime through an eventfd, written only when the queue goes
    from empty to not empty, so a burst of results costs one wakeup.
*/
#include "jobq_pool.h"
#include "jobq_job.h"
#include "jobq_msg.h"
#include "jobq_proto.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

//  Where a field of the JOB lies in an item's copy of its body.
typedef struct {
    uint32_t off, len;
} s_span_t;

typedef struct {
    uint64_t id;                 //  job id
    uint32_t attempt;            //  its attempt
    uint8_t *body;               //  the JOB body, owned
    size_t len;                  //  bytes in body
    s_span_t type, shop, input;  //  decoded by the runtime, in body
} s_item_t;

struct jobq_pool {
    pthread_mutex_t lock;          //  guards everything below
    pthread_cond_t work;           //  a job was queued, or stop
    pthread_cond_t room;           //  a result was read, or stop
    bool stop;                     //  the pool is ending
    uint32_t idle;                 //  slots waiting on work
    s_item_t *queue;               //  jobs not started, a ring
    uint32_t qcap, qhead, qcount;  //  its size, oldest, entries
    jobq_pool_result_t *results;   //  reports not read, a ring
    uint32_t rcap, rhead, rcount;  //  its size, oldest, entries
    int efd;                       //  readable while rcount > 0
    jobq_pool_slot_t *slots;       //  nslots entries
    uint32_t nslots;               //  threads started
    const jobq_pool_args_t *args;  //  borrowed
};


struct jobq_pool_slot {
    jobq_pool_t *pool;    //  owner
    pthread_t thread;     //  the slot thread
    pthread_cond_t wake;  //  jobq_job_sleep waits here
    uint64_t id;          //  running job, 0 when idle; under the lock
    uint32_t attempt;     //  its attempt
    atomic_bool cancel;   //  the running job is asked to stop
    jobq_job_t job;       //  the handle of the running job, reused
};

//  How far back a progress report looks for an unread one to replace.
#define S_FOLD_WINDOW 64

//  If the newest unread report of r's job (among the last S_FOLD_WINDOW)
//  is a progress report, r takes its place: it says all the old one said.
//  A DONE is never folded and never folded into.
static bool
s_fold(jobq_pool_t *self, jobq_pool_result_t *r)
{
    if (r->kind != JOBQ_POOL_PROGRESS)
        return false;
    for (uint32_t k = 0; k < self->rcount && k < S_FOLD_WINDOW; k++) {
        jobq_pool_result_t *q =
            &self->results[(self->rhead + self->rcount - 1 - k) % self->rcap];
        if (q->id != r->id || q->attempt != r->attempt)
            continue;
        if (q->kind != JOBQ_POOL_PROGRESS)
            return false;
        free(q->data);
        *q = *r;
        return true;
    }
    return false;
}

//  Add r to the result queue, waiting for room; with the lock held. If the
//  pool is ending the report is dropped: nobody will read it. True when the
//  queue was empty: the caller then calls s_notify once it let go of the
//  lock, so that the runtime it wakes does not find the lock still held.
static bool
s_post(jobq_pool_t *self, jobq_pool_result_t *r)
{
    if (s_fold(self, r))
        return false;
    while (self->rcount == self->rcap && !self->stop)
        pthread_cond_wait(&self->room, &self->lock);
    if (self->stop) {
        free(r->data);
        return false;
    }
    self->results[(self->rhead + self->rcount) % self->rcap] = *r;
    return self->rcount++ == 0;
}

//  Make the eventfd readable; without the lock. A late write after the
//  runtime already took the result only wakes it once for nothing.
static void
s_notify(jobq_pool_t *self)
{
    uint64_t one = 1;
    ssize_t n = write(self->efd, &one, sizeof one);
    (void) n;  //  EAGAIN only if already readable, which is enough
}

//  --- the slot thread --------------------------------------------------------

//  The view of the span sp of item it ({NULL, 0} when empty).
static jobq_bytes_t
s_view(const s_item_t *it, s_span_t sp)
{
    return (jobq_bytes_t){sp.len ? it->body + sp.off : NULL, sp.len};
}

static jobq_str_t
s_view_str(const s_item_t *it, s_span_t sp)
{
    jobq_bytes_t b = s_view(it, sp);
    return (jobq_str_t){(const char *) b.ptr, b.len};
}

//  Run the job it on slot and fill in its DONE report r. client is the
//  slot's broker client (NULL until a processor asks for it).
static void
s_run(jobq_pool_slot_t *slot,
      jobq_client_t **client,
      const s_item_t *it,
      jobq_pool_result_t *r)
{
    const jobq_pool_args_t *args = slot->pool->args;
    jobq_job_t *job = &slot->job;
    jobq_job_start(job, slot, it->id, it->attempt, s_view_str(it, it->type),
                   s_view_str(it, it->shop), s_view(it, it->input), client);
    JOBQ_LOG(args->log, JOBQ_LOG_INFO, "job %s %s attempt %u started", job->id,
             job->type, job->attempt);
    jobq_process_fn *fn = NULL;
    void *state = NULL;
    int rc;
    if (jobq_registry_find(args->registry, job->type, strlen(job->type), &fn,
                           &state) != JOBQ_OK)
        rc = jobq_job_fail(job, true, "no processor for type '%s'", job->type);
    else
        rc = fn(job, state);
    jobq_job_finish(job, rc, r);
}

static void *
s_slot_main(void *arg)
{
    jobq_pool_slot_t *slot = arg;
    jobq_pool_t *self = slot->pool;
    //  Made and destroyed on this thread only (see jobq_job_client).
    jobq_client_t *client = NULL;
    pthread_mutex_lock(&self->lock);
    while (!self->stop) {
        if (self->qcount == 0) {
            self->idle++;
            pthread_cond_wait(&self->work, &self->lock);
            self->idle--;
            continue;
        }
        s_item_t it = self->queue[self->qhead];
        self->qhead = (self->qhead + 1) % self->qcap;
        self->qcount--;
        slot->id = it.id;
        slot->attempt = it.attempt;
        atomic_store(&slot->cancel, false);
        pthread_mutex_unlock(&self->lock);

        jobq_pool_result_t r;
        s_run(slot, &client, &it, &r);
        free(it.body);

        pthread_mutex_lock(&self->lock);
        bool notify = s_post(self, &r);
        slot->id = 0;
        slot->attempt = 0;
        if (notify) {
            pthread_mutex_unlock(&self->lock);
            s_notify(self);
            pthread_mutex_lock(&self->lock);
        }
    }
    pthread_mutex_unlock(&self->lock);
    jobq_client_destroy(&client);
    return NULL;
}

//  --- what a job handle asks of its slot
//  --------------------------------------

bool
jobq_pool_slot_cancelled(jobq_pool_slot_t *slot)
{
    return atomic_load(&slot->cancel);
}

bool
jobq_pool_slot_wait(jobq_pool_slot_t *slot, const struct timespec *until)
{
    pthread_mutex_lock(&slot->pool->lock);
    while (!atomic_load(&slot->cancel))
        if (pthread_cond_timedwait(&slot->wake, &slot->pool->lock, until) ==
            ETIMEDOUT)
            break;
    pthread_mutex_unlock(&slot->pool->lock);
    return atomic_load(&slot->cancel);
}

void
jobq_pool_slot_report(jobq_pool_slot_t *slot, jobq_pool_result_t *r)
{
    jobq_pool_t *pool = slot->pool;
    pthread_mutex_lock(&pool->lock);
    bool notify = s_post(pool, r);
    pthread_mutex_unlock(&pool->lock);
    if (notify)
        s_notify(pool);
}

const jobq_pool_args_t *
jobq_pool_slot_args(const jobq_pool_slot_t *slot)
{
    return slot->pool->args;
}

//  --- the runtime's side ----------------------------------------------------

jobq_pool_t *
jobq_pool_new(uint32_t slots, uint32_t queue_cap, const jobq_pool_args_t *args)
{
    jobq_pool_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->args = args;
    self->qcap = queue_cap ? queue_cap : 1;
    //  Room for a burst of progress without holding the slots up.
    self->rcap = 4 * slots + 64;
    self->queue = calloc(self->qcap, sizeof *self->queue);
    self->results = calloc(self->rcap, sizeof *self->results);
    self->slots = calloc(slots, sizeof *self->slots);
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->work, NULL);
    pthread_cond_init(&self->room, NULL);
    if (!self->queue || !self->results || !self->slots || self->efd < 0) {
        jobq_pool_destroy(&self);
        return NULL;
    }
    pthread_condattr_t mono;
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    for (; self->nslots < slots; self->nslots++) {
        jobq_pool_slot_t *s = &self->slots[self->nslots];
        s->pool = self;
        atomic_init(&s->cancel, false);
        pthread_cond_init(&s->wake, &mono);
        if (pthread_create(&s->thread, NULL, s_slot_main, s) != 0) {
            pthread_cond_destroy(&s->wake);
            pthread_condattr_destroy(&mono);
            jobq_pool_destroy(&self);
            return NULL;
        }
    }
    pthread_condattr_destroy(&mono);
    return self;
}

void
jobq_pool_destroy(jobq_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_pool_t *self = *self_p;
    pthread_mutex_lock(&self->lock);
    self->stop = true;
    for (uint32_t i = 0; i < self->nslots; i++) {
        atomic_store(&self->slots[i].cancel, true);
        pthread_cond_signal(&self->slots[i].wake);
    }
    pthread_cond_broadcast(&self->work);
    pthread_cond_broadcast(&self->room);
    pthread_mutex_unlock(&self->lock);
    for (uint32_t i = 0; i < self->nslots; i++) {
        pthread_join(self->slots[i].thread, NULL);
        pthread_cond_destroy(&self->slots[i].wake);
    }
    for (uint32_t i = 0; i < self->qcount; i++)
        free(self->queue[(self->qhead + i) % self->qcap].body);
    for (uint32_t i = 0; i < self->rcount; i++)
        free(self->results[(self->rhead + i) % self->rcap].data);
    if (self->efd >= 0)
        close(self->efd);
    pthread_cond_destroy(&self->work);
    pthread_cond_destroy(&self->room);
    pthread_mutex_destroy(&self->lock);
    free(self->queue);
    free(self->results);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

int
jobq_pool_fd(const jobq_pool_t *self)
{
    return self->efd;
}

//  Where view (ptr, n) lies in body (len bytes, at most UINT32_MAX), into
//  *out: an empty view is {0, 0}. False if the view lies outside body,
//  which a decode of body cannot give.
static bool
s_span(
    const uint8_t *body, size_t len, const void *ptr, size_t n, s_span_t *out)
{
    *out = (s_span_t){0, 0};
    if (!ptr || n == 0)
        return true;
    uintptr_t b = (uintptr_t) body, p = (uintptr_t) ptr;
    if (p < b || n > len || p - b > len - n)
        return false;
    *out = (s_span_t){(uint32_t) (p - b), (uint32_t) n};
    return true;
}

int
jobq_pool_submit(jobq_pool_t *self,
                 const jobq_msg_t *m,
                 const uint8_t *body,
                 size_t len)
{
    if (m->cmd != JOBQ_CMD_JOB || len > UINT32_MAX)
        return JOBQ_EINVAL;
    uint64_t id = m->u.dispatch.id;
    uint32_t attempt = m->u.dispatch.attempt;
    const jobq_str_t *ty = &m->u.dispatch.type, *sh = &m->u.dispatch.shop;
    const jobq_bytes_t *in = &m->u.dispatch.input;
    s_span_t type, shop, input;
    if (!s_span(body, len, ty->ptr, ty->len, &type) ||
        !s_span(body, len, sh->ptr, sh->len, &shop) ||
        !s_span(body, len, in->ptr, in->len, &input))
        return JOBQ_EINVAL;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return JOBQ_ENOMEM;
    memcpy(copy, body, len);
    pthread_mutex_lock(&self->lock);
    if (self->qcount == self->qcap) {
        pthread_mutex_unlock(&self->lock);
        free(copy);
        return JOBQ_ETOOBIG;
    }
    self->queue[(self->qhead + self->qcount) % self->qcap] =
        (s_item_t){id, attempt, copy, len, type, shop, input};
    self->qcount++;
    bool wake = self->idle > 0;
    pthread_mutex_unlock(&self->lock);
    //  Signalled after the unlock: a slot woken while this thread still
    //  held the lock would only block on it again.
    if (wake)
        pthread_cond_signal(&self->work);
    return JOBQ_OK;
}

jobq_pool_cancel_t
jobq_pool_cancel(jobq_pool_t *self, uint64_t id, uint32_t attempt)
{
    jobq_pool_cancel_t found = JOBQ_POOL_NOT_HELD;
    pthread_mutex_lock(&self->lock);
    for (uint32_t i = 0; i < self->qcount; i++) {
        s_item_t *it = &self->queue[(self->qhead + i) % self->qcap];
        if (it->id != id || it->attempt != attempt)
            continue;
        free(it->body);
        //  Close the gap: move the later entries one place up.
        for (uint32_t k = i; k + 1 < self->qcount; k++)
            self->queue[(self->qhead + k) % self->qcap] =
                self->queue[(self->qhead + k + 1) % self->qcap];
        self->qcount--;
        found = JOBQ_POOL_UNQUEUED;
        break;
    }
    for (uint32_t i = 0; i < self->nslots && !found; i++) {
        jobq_pool_slot_t *s = &self->slots[i];
        if (s->id == id && s->attempt == attempt) {
            atomic_store(&s->cancel, true);
            pthread_cond_signal(&s->wake);
            found = JOBQ_POOL_SIGNALLED;
        }
    }
    pthread_mutex_unlock(&self->lock);
    return found;
}

void
jobq_pool_cancel_running(jobq_pool_t *self)
{
    pthread_mutex_lock(&self->lock);
    for (uint32_t i = 0; i < self->nslots; i++) {
        jobq_pool_slot_t *s = &self->slots[i];
        if (s->id) {
            atomic_store(&s->cancel, true);
            pthread_cond_signal(&s->wake);
        }
    }
    pthread_mutex_unlock(&self->lock);
}

size_t
jobq_pool_take_queued(jobq_pool_t *self,
                      uint64_t *ids,
                      uint32_t *attempts,
                      size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&self->lock);
    //  A job that a free slot is about to take has started, as far as the
    //  broker knows (it was handed to a free slot): the oldest jobs, one
    //  per free slot, stay, and the ones behind them go back, in order.
    uint32_t free_slots = self->nslots;
    for (uint32_t i = 0; i < self->nslots; i++)
        free_slots -= self->slots[i].id != 0;
    uint32_t keep = self->qcount < free_slots ? self->qcount : free_slots;
    uint32_t take = self->qcount - keep;
    if (take > cap)
        take = (uint32_t) cap;
    for (; n < take; n++) {
        s_item_t *it = &self->queue[(self->qhead + keep + n) % self->qcap];
        ids[n] = it->id;
        attempts[n] = it->attempt;
        free(it->body);
    }
    //  Anything behind the taken ones (only if cap cut it short) moves up.
    for (uint32_t k = keep + take; k < self->qcount; k++)
        self->queue[(self->qhead + k - take) % self->qcap] =
            self->queue[(self->qhead + k) % self->qcap];
    self->qcount -= take;
    pthread_mutex_unlock(&self->lock);
    return n;
}

size_t
jobq_pool_results(jobq_pool_t *self, jobq_pool_result_t *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&self->lock);
    bool was_full = self->rcount == self->rcap;
    while (self->rcount > 0 && n < cap) {
        out[n++] = self->results[self->rhead];
        self->rhead = (self->rhead + 1) % self->rcap;
        self->rcount--;
    }
    if (self->rcount == 0) {
        //  Empty: clear the eventfd. The slot that posts the next result
        //  writes it again, after this lock (s_notify).
        uint64_t v;
        ssize_t got = read(self->efd, &v, sizeof v);
        (void) got;
    }
    if (was_full && n > 0)
        pthread_cond_broadcast(&self->room);
    pthread_mutex_unlock(&self->lock);
    return n;
}
