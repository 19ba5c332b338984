/*  jobq_reviews.h: the review pipeline, three processors that chain.

    scrape_reviews  input {"url": ..., "max_pages": N, ...}: fetches a shop's
                    pages, following rel="next", and extracts the schema.org
                    reviews (JSON-LD and microdata) of each.
    export_data     input {"source_job": ID, "format": "csv"|"ndjson"|"json",
                    "list": KEY, "fields": [...], "filename": ...}: writes
                    the records of a completed job's output into the export
                    directory.
    generate_report input {"source_jobs": [ID...], "title": ..., "filename":
                    ...}: review figures of completed scrapes as one HTML
                    file with SVG charts, in the export directory.

    They are a library of their own (libcurl, libxml2 and jansson are its
    dependencies, not libjobq's). docs/PROCESSORS.md has every input field,
    output and error.
*/
#ifndef JOBQ_REVIEWS_H_INCLUDED
#define JOBQ_REVIEWS_H_INCLUDED

#include "jobq/jobq_worker.h"
#include "jobq_netguard.h"

//  state: the jobq_netguard_t the fetches obey, or NULL.
int jobq_proc_scrape_reviews(jobq_job_t *job, void *state);
int jobq_proc_export_data(jobq_job_t *job, void *state);
int jobq_proc_generate_report(jobq_job_t *job, void *state);

//  Register the three in reg. scrape_reviews reaches only what guard
//  allows (NULL: public addresses, no files); guard is borrowed and must
//  outlive the worker. JOBQ_OK or the first error. Also initialises the
//  libraries they share between slot threads (libcurl, libxml2, jansson),
//  which must happen once before any slot runs: call it from the main
//  thread before jobq_worker_run.
int jobq_reviews_register(jobq_registry_t *reg, const jobq_netguard_t *guard);

#endif
