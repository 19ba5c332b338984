/*  jobq_pool.c: the slot threads, their two queues, and the job handle
    processors see.

    One mutex guards both queues and every slot's running job. The job
    queue wakes a waiting slot with a condition variable; the result queue
    wakes the runtime through an eventfd, written only when the queue goes
    from empty to not empty, so a burst of results costs one wakeup.
*/
#include "jobq_pool.h"
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

typedef struct s_slot s_slot_t;

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
    s_slot_t *slots;               //  nslots entries
    uint32_t nslots;               //  threads started
    const jobq_pool_args_t *args;  //  borrowed
};

struct jobq_job {
    s_slot_t *slot;                           //  where it runs
    uint64_t idv;                             //  job id
    char id[JOBQ_ID_LEN + 1];                 //  as hex
    uint32_t attempt;                         //  from 1
    char type[JOBQ_MAX_TYPE_LEN + 1];         //  job type
    char shop[JOBQ_MAX_SHOP_LEN + 1];         //  shop id
    jobq_bytes_t input;                       //  borrowed from the JOB body
    jobq_mp_writer_t out;                     //  output map
    char error[JOBQ_MAX_ERROR_LEN + 1];       //  set by jobq_job_fail
    bool permanent;                           //  no retry
    int last_pct;                             //  last progress sent, -1 = none
    char last_msg[JOBQ_MAX_MESSAGE_LEN + 1];  //  last message sent
    jobq_client_t **client;                   //  the slot's, made lazily
};

struct s_slot {
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

//  --- the job handle -------------------------------------------------------

const char *
jobq_job_id(const jobq_job_t *job)
{
    return job->id;
}

const char *
jobq_job_type(const jobq_job_t *job)
{
    return job->type;
}

const char *
jobq_job_shop(const jobq_job_t *job)
{
    return job->shop;
}

uint32_t
jobq_job_attempt(const jobq_job_t *job)
{
    return job->attempt;
}

jobq_bytes_t
jobq_job_input(const jobq_job_t *job)
{
    return job->input;
}

static int
s_field(const jobq_job_t *job, const char *key, jobq_mp_reader_t *r)
{
    jobq_bytes_t v;
    int rc = jobq_mp_map_find(job->input, key, &v);
    if (rc != JOBQ_OK)
        return rc == JOBQ_ENOTFOUND ? rc : JOBQ_EINVAL;
    jobq_mp_reader_init(r, v.ptr, v.len);
    if (jobq_mp_peek(r) == JOBQ_MP_NIL)
        return JOBQ_ENOTFOUND;
    return JOBQ_OK;
}

int
jobq_job_input_str(const jobq_job_t *job, const char *key, jobq_str_t *out)
{
    jobq_mp_reader_t r;
    int rc = s_field(job, key, &r);
    if (rc != JOBQ_OK)
        return rc;
    return jobq_mp_read_str(&r, out) == JOBQ_OK ? JOBQ_OK : JOBQ_EINVAL;
}

int
jobq_job_input_int(const jobq_job_t *job, const char *key, int64_t *out)
{
    jobq_mp_reader_t r;
    int rc = s_field(job, key, &r);
    if (rc != JOBQ_OK)
        return rc;
    return jobq_mp_read_int(&r, out) == JOBQ_OK ? JOBQ_OK : JOBQ_EINVAL;
}

int
jobq_job_input_bool(const jobq_job_t *job, const char *key, bool *out)
{
    jobq_mp_reader_t r;
    int rc = s_field(job, key, &r);
    if (rc != JOBQ_OK)
        return rc;
    return jobq_mp_read_bool(&r, out) == JOBQ_OK ? JOBQ_OK : JOBQ_EINVAL;
}

bool
jobq_job_cancelled(jobq_job_t *job)
{
    return atomic_load(&job->slot->cancel);
}

int
jobq_job_sleep(jobq_job_t *job, uint64_t ms)
{
    s_slot_t *slot = job->slot;
    if (ms == 0)  //  a timed wait would still sleep out the timer slack
        return atomic_load(&slot->cancel) ? JOBQ_ECANCELLED : JOBQ_OK;
    if (ms > JOBQ_MAX_TIMEOUT_MS)
        ms = JOBQ_MAX_TIMEOUT_MS;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t) (ms / 1000);
    until.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&slot->pool->lock);
    while (!atomic_load(&slot->cancel))
        if (pthread_cond_timedwait(&slot->wake, &slot->pool->lock, &until) ==
            ETIMEDOUT)
            break;
    pthread_mutex_unlock(&slot->pool->lock);
    return atomic_load(&slot->cancel) ? JOBQ_ECANCELLED : JOBQ_OK;
}

int
jobq_job_progress(jobq_job_t *job, unsigned percent, const char *fmt, ...)
{
    if (jobq_job_cancelled(job))
        return JOBQ_ECANCELLED;
    if (percent > 100)
        percent = 100;
    char msg[JOBQ_MAX_MESSAGE_LEN + 1] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if ((int) percent == job->last_pct && strcmp(msg, job->last_msg) == 0)
        return JOBQ_OK;
    size_t len = strlen(msg);
    jobq_pool_result_t r = {.kind = JOBQ_POOL_PROGRESS,
                            .id = job->idv,
                            .attempt = job->attempt,
                            .percent = (uint8_t) percent,
                            .data = malloc(len + 1),
                            .len = len};
    if (!r.data)
        return JOBQ_OK;  //  progress is advisory; the job goes on
    memcpy(r.data, msg, len + 1);
    job->last_pct = (int) percent;
    memcpy(job->last_msg, msg, len + 1);
    jobq_pool_t *pool = job->slot->pool;
    pthread_mutex_lock(&pool->lock);
    bool notify = s_post(pool, &r);
    pthread_mutex_unlock(&pool->lock);
    if (notify)
        s_notify(pool);
    return JOBQ_OK;
}

jobq_mp_writer_t *
jobq_job_output(jobq_job_t *job)
{
    return &job->out;
}

int
jobq_job_fail(jobq_job_t *job, bool permanent, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->error, sizeof job->error, fmt, ap);
    va_end(ap);
    job->permanent = permanent;
    return JOBQ_EFAILED;
}

const char *
jobq_job_broker_clients(const jobq_job_t *job)
{
    return job->slot->pool->args->clients;
}

jobq_client_t *
jobq_job_client(jobq_job_t *job)
{
    if (!*job->client) {
        jobq_client_config_t cfg;
        jobq_client_config_defaults(&cfg);
        cfg.broker = job->slot->pool->args->clients;
        *job->client = jobq_client_new(&cfg);
    }
    return *job->client;
}

const char *
jobq_job_export_dir(const jobq_job_t *job)
{
    return job->slot->pool->args->export_dir;
}

//  --- the slot thread --------------------------------------------------------

static void
s_copy(char *dst, size_t cap, jobq_str_t s)
{
    size_t n = s.len < cap ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

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
s_run(s_slot_t *slot,
      jobq_client_t **client,
      const s_item_t *it,
      jobq_pool_result_t *r)
{
    const jobq_pool_args_t *args = slot->pool->args;
    jobq_job_t *job = &slot->job;
    memset(r, 0, sizeof *r);
    r->kind = JOBQ_POOL_DONE;
    r->id = it->id;
    r->attempt = it->attempt;
    job->slot = slot;
    job->idv = it->id;
    jobq_id_format(it->id, job->id);
    job->attempt = it->attempt;
    s_copy(job->type, sizeof job->type, s_view_str(it, it->type));
    s_copy(job->shop, sizeof job->shop, s_view_str(it, it->shop));
    job->input = s_view(it, it->input);
    jobq_mp_writer_init(&job->out, JOBQ_MAX_OUTPUT_BYTES);
    job->error[0] = '\0';
    job->permanent = false;
    job->last_pct = -1;
    job->last_msg[0] = '\0';
    job->client = client;
    if (args->verbose)
        fprintf(stderr, "jobq-worker: job %s %s attempt %u started\n", job->id,
                job->type, job->attempt);

    jobq_process_fn *fn = NULL;
    void *state = NULL;
    int rc;
    if (jobq_registry_find(args->registry, job->type, strlen(job->type), &fn,
                           &state) != JOBQ_OK)
        rc = jobq_job_fail(job, true, "no processor for type '%s'", job->type);
    else
        rc = fn(job, state);

    r->ok = rc == JOBQ_OK;
    r->cancelled = jobq_job_cancelled(job);
    if (r->ok) {
        const char *why_bad = NULL, *bad = NULL;
        if (job->out.len == 0)
            jobq_mp_write_map(&job->out, 0);
        jobq_mp_reader_t rd;
        jobq_mp_reader_init(&rd, job->out.data, job->out.len);
        if (jobq_mp_writer_error(&job->out) != JOBQ_OK)
            why_bad = "processor output too large";
        else if (jobq_mp_check(job->out.data, job->out.len,
                               &jobq_proto_map_limits, &bad) != JOBQ_OK ||
                 jobq_mp_peek(&rd) != JOBQ_MP_MAP)
            why_bad = "processor output is not one valid msgpack map within "
                      "the protocol's limits";
        if (why_bad) {
            r->ok = false;
            jobq_job_fail(job, true, "%s", why_bad);
        }
    } else if (!job->error[0]) {
        snprintf(job->error, sizeof job->error, "%s",
                 r->cancelled ? "cancelled" : jobq_strerror(rc));
    }
    if (r->ok) {
        //  The output buffer changes hands: no copy.
        r->data = job->out.data;
        r->len = job->out.len;
        job->out.data = NULL;
    } else {
        r->len = strlen(job->error);
        r->data = malloc(r->len + 1);
        if (r->data)
            memcpy(r->data, job->error, r->len + 1);
        else
            r->len = 0;
        r->permanent = job->permanent;
    }
    jobq_mp_writer_fini(&job->out);
}

static void *
s_slot_main(void *arg)
{
    s_slot_t *slot = arg;
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
        s_slot_t *s = &self->slots[self->nslots];
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
        s_slot_t *s = &self->slots[i];
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
        s_slot_t *s = &self->slots[i];
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
