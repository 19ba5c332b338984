/*  jobq_clock.c: the real clock and the fake clock of the tests. */
#include "jobq_clock.h"

#include <stdlib.h>
#include <time.h>

struct jobq_clock {
    int fake;          //  1 for a fake clock
    uint64_t wall_ms;  //  fake wall reading, ms since epoch
    uint64_t mono_ms;  //  fake monotonic reading, ms
};

static const jobq_clock_t s_real = {0, 0, 0};

const jobq_clock_t *
jobq_clock_real(void)
{
    return &s_real;
}

jobq_clock_t *
jobq_clock_fake_new(uint64_t wall_ms)
{
    jobq_clock_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->fake = 1;
    self->wall_ms = wall_ms;
    self->mono_ms = 1000;
    return self;
}

void
jobq_clock_destroy(jobq_clock_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

void
jobq_clock_fake_advance(jobq_clock_t *self, uint64_t ms)
{
    self->wall_ms += ms;
    self->mono_ms += ms;
}

static uint64_t
s_read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

uint64_t
jobq_clock_wall_ms(const jobq_clock_t *self)
{
    return self->fake ? self->wall_ms : s_read(CLOCK_REALTIME);
}

uint64_t
jobq_clock_mono_ms(const jobq_clock_t *self)
{
    return self->fake ? self->mono_ms : s_read(CLOCK_MONOTONIC);
}
