/*  jobq_processors.h: the processors that ship with jobq.

    noop            returns its input as its output.
    sleep           input {"ms": N, "steps": K}: sleeps N ms in K steps,
                    reporting progress after each step; stops early when
                    cancelled.
    fail            input {"message": "...", "permanent": bool, "times": N}:
                    fails with message; with times, fails only the first N
                    attempts and then completes (for retry tests).
    scrape_reviews  input {"url": ..., "max_pages": N, ...}: fetches a shop's
                    pages, following rel="next", and extracts the schema.org
                    reviews (JSON-LD and microdata) of each.
    export_data     input {"source_job": ID, "format": "csv"|"ndjson"|"json",
                    "fields": [...], "filename": ...}: writes the records of
                    a completed job's output into the export directory.
    generate_report input {"source_jobs": [ID...], "title": ..., "filename":
                    ...}: review figures of completed scrapes as one HTML
                    file with SVG charts, in the export directory.

    docs/PROCESSORS.md has every input field, output and error.
*/
#ifndef JOBQ_PROCESSORS_H_INCLUDED
#define JOBQ_PROCESSORS_H_INCLUDED

#include "jobq/jobq_worker.h"

int jobq_proc_noop(jobq_job_t *job, void *state);
int jobq_proc_sleep(jobq_job_t *job, void *state);
int jobq_proc_fail(jobq_job_t *job, void *state);
int jobq_proc_scrape_reviews(jobq_job_t *job, void *state);
int jobq_proc_export_data(jobq_job_t *job, void *state);
int jobq_proc_generate_report(jobq_job_t *job, void *state);

//  Register every shipped processor in reg. JOBQ_OK or the first error.
//  Also initialises the libraries processors share between slot threads
//  (libcurl, libxml2, jansson), which must happen once before any slot
//  runs: call it from the main thread before jobq_worker_run.
int jobq_processors_register(jobq_registry_t *reg);

//  Input field key, a string, as a NUL-terminated copy in buf (cap bytes).
//  JOBQ_OK, JOBQ_ENOTFOUND (absent or nil), JOBQ_EINVAL (not a string, or
//  it holds a NUL byte), JOBQ_ETOOBIG (cap bytes or more).
int jobq_proc_input_cstr(const jobq_job_t *job,
                         const char *key,
                         char *buf,
                         size_t cap);

//  Input field key, an integer from min to max, into *out (left as it is
//  when the field is absent). JOBQ_OK, or the job has been failed for good
//  with a message naming the field and its range, and the result is
//  JOBQ_EFAILED.
int jobq_proc_input_range(
    jobq_job_t *job, const char *key, int64_t min, int64_t max, int64_t *out);

#endif
