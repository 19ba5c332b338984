/*  jobq_leases.c: linear probing with tombstones, rebuilt at half load. */
#include "jobq_leases.h"

#include <stdlib.h>
#include <string.h>

#define S_TOMB UINT64_MAX  //  id of a removed slot

struct jobq_leases {
    jobq_lease_t *slots;  //  table, cap entries
    size_t cap;           //  power of two
    size_t used;          //  live entries
    size_t tombs;         //  removed entries still occupying slots
};

static size_t
s_hash(uint64_t id, size_t cap)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t) id & (cap - 1);
}

jobq_leases_t *
jobq_leases_new(void)
{
    jobq_leases_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = 64;
    self->slots = calloc(self->cap, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    return self;
}

void
jobq_leases_destroy(jobq_leases_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

jobq_lease_t *
jobq_leases_get(jobq_leases_t *self, uint64_t id)
{
    size_t i = s_hash(id, self->cap);
    while (self->slots[i].id != 0) {
        if (self->slots[i].id == id)
            return &self->slots[i];
        i = (i + 1) & (self->cap - 1);
    }
    return NULL;
}

static int
s_rebuild(jobq_leases_t *self, size_t cap)
{
    jobq_lease_t *old = self->slots;
    size_t ocap = self->cap;
    jobq_lease_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    self->slots = slots;
    self->cap = cap;
    self->tombs = 0;
    for (size_t j = 0; j < ocap; j++) {
        if (old[j].id == 0 || old[j].id == S_TOMB)
            continue;
        size_t i = s_hash(old[j].id, cap);
        while (slots[i].id != 0)
            i = (i + 1) & (cap - 1);
        slots[i] = old[j];
    }
    free(old);
    return 0;
}

jobq_lease_t *
jobq_leases_add(jobq_leases_t *self, uint64_t id)
{
    if ((self->used + self->tombs + 1) * 2 > self->cap) {
        size_t cap = self->cap;
        while ((self->used + 1) * 4 > cap)
            cap *= 2;
        if (s_rebuild(self, cap) != 0)
            return NULL;
    }
    size_t i = s_hash(id, self->cap);
    while (self->slots[i].id != 0 && self->slots[i].id != S_TOMB)
        i = (i + 1) & (self->cap - 1);
    if (self->slots[i].id == S_TOMB)
        self->tombs--;
    memset(&self->slots[i], 0, sizeof self->slots[i]);
    self->slots[i].id = id;
    self->used++;
    return &self->slots[i];
}

void
jobq_leases_remove(jobq_leases_t *self, uint64_t id)
{
    jobq_lease_t *e = jobq_leases_get(self, id);
    if (!e)
        return;
    memset(e, 0, sizeof *e);
    e->id = S_TOMB;
    self->used--;
    self->tombs++;
}

size_t
jobq_leases_count(const jobq_leases_t *self)
{
    return self->used;
}

jobq_lease_t *
jobq_leases_next(jobq_leases_t *self, size_t *pos)
{
    while (*pos < self->cap) {
        jobq_lease_t *e = &self->slots[(*pos)++];
        if (e->id != 0 && e->id != S_TOMB)
            return e;
    }
    return NULL;
}
