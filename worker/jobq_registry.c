/*  jobq_registry.c: type name -> processor, a small fixed table. */
#include "jobq/jobq_worker.h"
#include "jobq_proto.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char type[JOBQ_MAX_TYPE_LEN + 1];  //  job type
    jobq_process_fn *fn;               //  processor
    void *state;                       //  its argument
} s_entry_t;

struct jobq_registry {
    s_entry_t entries[JOBQ_MAX_WORKER_TYPES];  //  registered processors
    size_t count;                              //  entries used
};

jobq_registry_t *
jobq_registry_new(void)
{
    return calloc(1, sizeof(jobq_registry_t));
}

void
jobq_registry_destroy(jobq_registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

int
jobq_registry_add(jobq_registry_t *self,
                  const char *type,
                  jobq_process_fn *fn,
                  void *state)
{
    if (!type || !fn)
        return JOBQ_EINVAL;
    jobq_str_t t = {type, strlen(type)};
    if (!jobq_proto_valid_type(t))
        return JOBQ_EINVAL;
    if (jobq_registry_find(self, type, t.len, NULL, NULL) == JOBQ_OK)
        return JOBQ_EEXIST;
    if (self->count == JOBQ_MAX_WORKER_TYPES)
        return JOBQ_ETOOBIG;
    s_entry_t *e = &self->entries[self->count++];
    memcpy(e->type, type, t.len + 1);
    e->fn = fn;
    e->state = state;
    return JOBQ_OK;
}

size_t
jobq_registry_count(const jobq_registry_t *self)
{
    return self->count;
}

const char *
jobq_registry_type(const jobq_registry_t *self, size_t i)
{
    return i < self->count ? self->entries[i].type : NULL;
}

int
jobq_registry_find(const jobq_registry_t *self,
                   const char *type,
                   size_t len,
                   jobq_process_fn **fn,
                   void **state)
{
    for (size_t i = 0; i < self->count; i++) {
        const s_entry_t *e = &self->entries[i];
        if (strlen(e->type) == len && memcmp(e->type, type, len) == 0) {
            if (fn)
                *fn = e->fn;
            if (state)
                *state = e->state;
            return JOBQ_OK;
        }
    }
    return JOBQ_ENOTFOUND;
}
