/*  jobq_store.c: dispatch through the implementation's operations, and the
    fault seam shared by all implementations. */
#include "jobq_store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct jobq_store {
    const jobq_store_ops_t *ops;  //  the implementation
    void *impl;                   //  its state
    int fail_commit;              //  test seam: next commit fails with this
    int fail_put;                 //  test seam: next put fails with this
};

extern const jobq_store_ops_t jobq_store_lmdb_ops;
extern const jobq_store_ops_t jobq_store_nats_ops;
void *jobq_store_nats_impl_new(const char *urls, const char *creds);

jobq_store_t *
jobq_store_nats_new(const char *urls, const char *creds)
{
    if (!urls || !*urls)
        return NULL;
    jobq_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ops = &jobq_store_nats_ops;
    self->impl = jobq_store_nats_impl_new(urls, creds);
    if (!self->impl) {
        free(self);
        return NULL;
    }
    return self;
}

bool
jobq_store_shared(const jobq_store_t *self)
{
    return self->ops->changes != NULL;
}

int
jobq_store_fd(const jobq_store_t *self)
{
    return self->ops->fd ? self->ops->fd(self->impl) : -1;
}

void
jobq_store_drain_fd(const jobq_store_t *self)
{
    int fd = jobq_store_fd(self);
    char buf[256];
    while (fd >= 0 && read(fd, buf, sizeof buf) > 0)
        ;
}

size_t
jobq_store_changes(jobq_store_t *self, jobq_store_change_fn *fn, void *arg)
{
    return self->ops->changes ? self->ops->changes(self->impl, fn, arg) : 0;
}

int
jobq_store_slot(jobq_store_t *self)
{
    return self->ops->slot ? self->ops->slot(self->impl) : -1;
}

bool
jobq_store_leader(jobq_store_t *self)
{
    return self->ops->leader ? self->ops->leader(self->impl) : true;
}
int
jobq_store_rank(jobq_store_t *self, int maker)
{
    return self->ops->rank ? self->ops->rank(self->impl, maker) : -1;
}

bool
jobq_store_taken(jobq_store_t *self, uint64_t id)
{
    return self->ops->taken ? self->ops->taken(self->impl, id) : false;
}

void *jobq_store_lmdb_impl_new(void);

jobq_store_t *
jobq_store_lmdb_new(void)
{
    jobq_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ops = &jobq_store_lmdb_ops;
    self->impl = jobq_store_lmdb_impl_new();
    if (!self->impl) {
        free(self);
        return NULL;
    }
    return self;
}

int
jobq_store_open(jobq_store_t *self, const jobq_store_config_t *cfg)
{
    return self->ops->open(self->impl, cfg);
}

void
jobq_store_destroy(jobq_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jobq_store_t *self = *self_p;
    self->ops->destroy(&self->impl);
    free(self);
    *self_p = NULL;
}

int
jobq_store_begin(jobq_store_t *self)
{
    return self->ops->begin(self->impl);
}

int
jobq_store_commit(jobq_store_t *self)
{
    if (self->fail_commit) {
        int err = self->fail_commit;
        self->fail_commit = 0;
        self->ops->abort(self->impl);
        return err;
    }
    return self->ops->commit(self->impl);
}

void
jobq_store_abort(jobq_store_t *self)
{
    self->ops->abort(self->impl);
}

int
jobq_store_get(jobq_store_t *self, uint64_t id, jobq_jobdata_t *job)
{
    return self->ops->get(self->impl, id, job);
}

int
jobq_store_put(jobq_store_t *self,
               const jobq_jobdata_t *old,
               const jobq_jobdata_t *job)
{
    if (self->fail_put) {
        int err = self->fail_put;
        self->fail_put = 0;
        return err;
    }
    return self->ops->put(self->impl, old, job);
}

int
jobq_store_ready_first(jobq_store_t *self,
                       jobq_str_t type,
                       uint64_t *id,
                       int32_t *priority)
{
    return self->ops->ready_first(self->impl, type, id, priority);
}

int
jobq_store_ready_before(jobq_store_t *self,
                        jobq_str_t type,
                        int32_t priority,
                        uint64_t before_id,
                        uint64_t *id)
{
    return self->ops->ready_before(self->impl, type, priority, before_id, id);
}

int
jobq_store_ready_after(jobq_store_t *self,
                       jobq_str_t type,
                       int32_t after_priority,
                       uint64_t after_id,
                       uint64_t *id,
                       int32_t *priority)
{
    return self->ops->ready_after(self->impl, type, after_priority, after_id,
                                  id, priority);
}

int
jobq_store_ready_oldest(jobq_store_t *self,
                        jobq_str_t type,
                        uint32_t max_levels,
                        uint64_t *id)
{
    return self->ops->ready_oldest(self->impl, type, max_levels, id);
}

int
jobq_store_delayed_first(jobq_store_t *self, uint64_t *run_at, uint64_t *id)
{
    return self->ops->delayed_first(self->impl, run_at, id);
}

int
jobq_store_unqueue(jobq_store_t *self, const jobq_jobdata_t *job)
{
    return self->ops->unqueue(self->impl, job);
}

int
jobq_store_remove(jobq_store_t *self, const jobq_jobdata_t *job)
{
    return self->ops->remove(self->impl, job);
}

int
jobq_store_query(jobq_store_t *self,
                 const jobq_store_query_t *q,
                 jobq_store_visit_fn *fn,
                 void *arg,
                 uint64_t *next)
{
    return self->ops->query(self->impl, q, fn, arg, next);
}

int
jobq_store_scan_status(jobq_store_t *self,
                       int status,
                       jobq_store_visit_fn *fn,
                       void *arg)
{
    return self->ops->scan_status(self->impl, status, fn, arg);
}

size_t
jobq_store_idem_key(uint8_t *out, jobq_str_t shop, jobq_str_t key)
{
    size_t s = shop.len < JOBQ_MAX_SHOP_LEN ? shop.len : JOBQ_MAX_SHOP_LEN;
    size_t k = key.len < JOBQ_MAX_KEY_LEN ? key.len : JOBQ_MAX_KEY_LEN;
    memcpy(out, shop.ptr, s);
    out[s] = 0;
    memcpy(out + s + 1, key.ptr, k);
    return s + 1 + k;
}

int
jobq_store_idem_get(jobq_store_t *self,
                    jobq_str_t key,
                    uint64_t *id,
                    uint64_t *created)
{
    return self->ops->idem_get(self->impl, key, id, created);
}

int
jobq_store_idem_put(jobq_store_t *self,
                    jobq_str_t key,
                    uint64_t id,
                    uint64_t created)
{
    return self->ops->idem_put(self->impl, key, id, created);
}

int
jobq_store_idem_scan(jobq_store_t *self, jobq_store_idem_fn *fn, void *arg)
{
    return self->ops->idem_scan(self->impl, fn, arg);
}

int
jobq_store_idem_expire(jobq_store_t *self,
                       uint64_t before,
                       uint32_t max,
                       uint32_t *removed)
{
    return self->ops->idem_expire(self->impl, before, max, removed);
}

int
jobq_store_meta_get(jobq_store_t *self, const char *name, uint64_t *value)
{
    return self->ops->meta_get(self->impl, name, value);
}

int
jobq_store_meta_put(jobq_store_t *self, const char *name, uint64_t value)
{
    return self->ops->meta_put(self->impl, name, value);
}

int
jobq_store_counts(jobq_store_t *self, jobq_store_count_fn *fn, void *arg)
{
    return self->ops->counts(self->impl, fn, arg);
}

int
jobq_store_shop_counts(jobq_store_t *self, jobq_str_t shop, uint64_t *out)
{
    return self->ops->shop_counts(self->impl, shop, out);
}

int
jobq_store_grow(jobq_store_t *self)
{
    return self->ops->grow(self->impl);
}

void
jobq_store_usage(jobq_store_t *self,
                 uint64_t *used,
                 uint64_t *size,
                 uint64_t *max)
{
    self->ops->usage(self->impl, used, size, max);
}

void
jobq_store_fail_next_commit(jobq_store_t *self, int err)
{
    assert(err < 0);
    self->fail_commit = err;
}

void
jobq_store_fail_next_put(jobq_store_t *self, int err)
{
    assert(err < 0);
    self->fail_put = err;
}

const char *
jobq_store_why(const jobq_store_t *self)
{
    return self->ops->why ? self->ops->why(self->impl) : "";
}

bool
jobq_store_wrote(const jobq_store_t *self)
{
    return self->ops->wrote ? self->ops->wrote(self->impl) : true;
}

int
jobq_store_quarantine_put(jobq_store_t *self,
                          const uint8_t *key,
                          size_t klen,
                          const uint8_t *val,
                          size_t vlen)
{
    return self->ops->quarantine_put(self->impl, key, klen, val, vlen);
}
