/*  jobq_clock.h: time, injectable.

    Two readings: wall time in ms since the epoch (for records and run_at)
    and monotonic ms (for timers and leases inside one process). A fake
    clock lets tests move time by hand; core modules take "now" as an
    argument and never read a clock themselves.
*/
#ifndef JOBQ_CLOCK_H_INCLUDED
#define JOBQ_CLOCK_H_INCLUDED

#include <stdint.h>

typedef struct jobq_clock jobq_clock_t;

//  The process-wide real clock. Borrowed; never destroy it.
const jobq_clock_t *jobq_clock_real(void);

//  A fake clock starting at wall_ms (monotonic starts at 1000). NULL only if
//  out of memory. Destroy with jobq_clock_destroy.
jobq_clock_t *jobq_clock_fake_new(uint64_t wall_ms);

//  Destroy a fake clock; safe on NULL, sets *self_p to NULL. Never call it
//  on the real clock.
void jobq_clock_destroy(jobq_clock_t **self_p);

//  Move a fake clock forward by ms (both readings).
void jobq_clock_fake_advance(jobq_clock_t *self, uint64_t ms);

//  Wall time, ms since the Unix epoch.
uint64_t jobq_clock_wall_ms(const jobq_clock_t *self);

//  Monotonic time, ms since an arbitrary origin.
uint64_t jobq_clock_mono_ms(const jobq_clock_t *self);

#endif
