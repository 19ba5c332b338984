/*  generate_report: one HTML report over the reviews of completed
    scrape_reviews jobs: how many, the average rating, the distribution of
    ratings, reviews per month, the best and the worst review, with the
    charts as inline SVG (jobq_report.h). Written into the worker's export
    directory all or nothing (jobq_outfile.h). docs/PROCESSORS.md has the
    input, the output and the errors.
*/
#include "jobq_outfile.h"
#include "jobq_processors.h"
#include "jobq_reviews.h"
#include "jobq_records.h"
#include "jobq_report.h"
#include "jobq_source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MAX_SOURCES 32      //  source jobs in one report
#define S_MAX_REVIEWS 200000  //  reviews over all of them
#define S_MAX_TITLE   200     //  bytes in the title
#define S_OUT_MONTHS  240     //  latest months listed in the output

typedef struct {
    char ids[S_MAX_SOURCES][JOBQ_ID_LEN + 1];  //  source jobs
    const char *idp[S_MAX_SOURCES];            //  pointers to ids
    size_t n;                                  //  entries in ids
    char title[S_MAX_TITLE + 1];               //  report heading
    char filename[JOBQ_OUTFILE_MAX_NAME + 1];  //  checked
} s_input_t;

typedef struct {
    jobq_review_t *items;  //  owned
    size_t count;          //  entries in items
    size_t cap;            //  entries allocated
} s_reviews_t;

static void
s_reviews_clear(s_reviews_t *r)
{
    for (size_t i = 0; i < r->count; i++)
        jobq_review_clear(&r->items[i]);
    free(r->items);
    memset(r, 0, sizeof *r);
}

static int
s_source_id(jobq_job_t *job, s_input_t *in, jobq_str_t s)
{
    uint64_t v;
    if (s.len != JOBQ_ID_LEN || jobq_id_parse(s.ptr, s.len, &v) != JOBQ_OK)
        return jobq_job_fail(job, true,
                             "input 'source_jobs': '%.*s' is not a job id",
                             (int) (s.len > 64 ? 64 : s.len), s.ptr);
    memcpy(in->ids[in->n], s.ptr, JOBQ_ID_LEN);
    in->ids[in->n][JOBQ_ID_LEN] = '\0';
    in->idp[in->n] = in->ids[in->n];
    in->n++;
    return JOBQ_OK;
}

//  Read and check the input; on a bad field fail the job for good.
static int
s_input(jobq_job_t *job, s_input_t *in)
{
    memset(in, 0, sizeof *in);
    jobq_bytes_t v;
    jobq_mp_reader_t r;
    jobq_str_t s;
    uint32_t n = 0;
    bool found =
        jobq_mp_map_find(jobq_job_input(job), "source_jobs", &v) == JOBQ_OK;
    if (found)
        jobq_mp_reader_init(&r, v.ptr, v.len);
    //  One id alone may be given as a string.
    if (found && jobq_mp_peek(&r) == JOBQ_MP_STR) {
        jobq_mp_read_str(&r, &s);
        if (s_source_id(job, in, s) != JOBQ_OK)
            return JOBQ_EFAILED;
    } else if (!found || jobq_mp_read_array(&r, &n) != JOBQ_OK || n == 0 ||
               n > S_MAX_SOURCES) {
        return jobq_job_fail(job, true,
                             "input 'source_jobs': required, a list of 1 to "
                             "%d ids of completed scrape_reviews jobs",
                             S_MAX_SOURCES);
    }
    for (uint32_t i = 0; i < n; i++) {
        if (jobq_mp_read_str(&r, &s) != JOBQ_OK)
            return jobq_job_fail(job, true,
                                 "input 'source_jobs': item %u is not a "
                                 "string",
                                 i);
        for (size_t k = 0; k < in->n; k++)
            if (s.len == JOBQ_ID_LEN && memcmp(in->ids[k], s.ptr, s.len) == 0)
                return jobq_job_fail(job, true,
                                     "input 'source_jobs': %s appears twice",
                                     in->ids[k]);
        if (s_source_id(job, in, s) != JOBQ_OK)
            return JOBQ_EFAILED;
    }
    snprintf(in->title, sizeof in->title, "Review report");
    int rc = jobq_proc_input_cstr(job, "title", in->title, sizeof in->title);
    if (rc != JOBQ_OK && rc != JOBQ_ENOTFOUND)
        return jobq_job_fail(job, true,
                             "input 'title': a string of up to %d "
                             "bytes",
                             S_MAX_TITLE);
    char why[160];
    rc = jobq_job_input_str(job, "filename", &s);
    if (rc == JOBQ_OK && !jobq_outfile_name_ok(s.ptr, s.len, why, sizeof why))
        return jobq_job_fail(job, true,
                             "input 'filename': refused, it must be a plain "
                             "file name in the export directory: %s",
                             why);
    if (rc == JOBQ_OK)
        snprintf(in->filename, sizeof in->filename, "%.*s", (int) s.len, s.ptr);
    else if (rc == JOBQ_ENOTFOUND)
        snprintf(in->filename, sizeof in->filename, "report-%s.html",
                 jobq_job_id(job));
    else
        return jobq_job_fail(job, true, "input 'filename': must be a string");
    return JOBQ_OK;
}

//  Append the reviews of the completed job id to all.
static int
s_read_source(jobq_job_t *job, const char *id, s_reviews_t *all)
{
    jobq_job_info_t src;
    if (jobq_source_read(job, "source_jobs", (jobq_str_t){id, strlen(id)},
                         &src) != JOBQ_OK)
        return JOBQ_EFAILED;
    char why[160];
    jobq_bytes_t list;
    uint32_t n;
    int rc =
        jobq_records_find(src.output, "reviews", &list, &n, why, sizeof why);
    if (rc != JOBQ_OK) {
        jobq_job_info_clear(&src);
        return jobq_job_fail(job, true,
                             "input 'source_jobs': job %s is not a scrape: %s",
                             id, why);
    }
    if (n > S_MAX_REVIEWS - all->count) {
        jobq_job_info_clear(&src);
        return jobq_job_fail(job, true, "more than %d reviews in all",
                             S_MAX_REVIEWS);
    }
    if (all->count + n > all->cap) {
        size_t cap = all->count + n;
        jobq_review_t *a = realloc(all->items, (cap ? cap : 1) * sizeof *a);
        if (!a) {
            jobq_job_info_clear(&src);
            return jobq_job_fail(job, false, "out of memory");
        }
        all->items = a;
        all->cap = cap;
    }
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, list.ptr, list.len);
    jobq_mp_read_array(&r, &n);
    for (uint32_t i = 0; i < n && rc == JOBQ_OK; i++) {
        jobq_bytes_t map;
        rc = jobq_mp_skip(&r, &map);
        if (rc == JOBQ_OK)
            rc = jobq_review_read(map, &all->items[all->count]);
        if (rc == JOBQ_OK)
            all->count++;
    }
    jobq_job_info_clear(&src);
    if (rc != JOBQ_OK)
        return jobq_job_fail(job, rc != JOBQ_ENOMEM,
                             "job %s: its reviews cannot be read: %s", id,
                             jobq_strerror(rc));
    return JOBQ_OK;
}

static void
s_write_review(jobq_mp_writer_t *w, const jobq_review_t *r)
{
    if (!r) {
        jobq_mp_write_nil(w);
        return;
    }
    jobq_mp_write_map(w, 4);
    jobq_mp_write_cstr(w, "author");
    jobq_mp_write_cstr(w, r->author);
    jobq_mp_write_cstr(w, "rating");
    jobq_mp_write_double(w, jobq_review_stars(r));
    jobq_mp_write_cstr(w, "date");
    jobq_mp_write_cstr(w, r->date);
    jobq_mp_write_cstr(w, "title");
    jobq_mp_write_cstr(w, r->title);
}

static void
s_output(jobq_job_t *job,
         const s_input_t *in,
         const jobq_report_stats_t *st,
         const char *path,
         uint64_t bytes)
{
    jobq_mp_writer_t *w = jobq_job_output(job);
    jobq_mp_write_map(w, 12);
    jobq_mp_write_cstr(w, "path");
    jobq_mp_write_cstr(w, path);
    jobq_mp_write_cstr(w, "bytes");
    jobq_mp_write_uint(w, bytes);
    jobq_mp_write_cstr(w, "source_jobs");
    jobq_mp_write_array(w, (uint32_t) in->n);
    for (size_t i = 0; i < in->n; i++)
        jobq_mp_write_cstr(w, in->ids[i]);
    jobq_mp_write_cstr(w, "review_count");
    jobq_mp_write_uint(w, st->count);
    jobq_mp_write_cstr(w, "rated_count");
    jobq_mp_write_uint(w, st->rated);
    jobq_mp_write_cstr(w, "average_rating");
    if (st->rated)
        jobq_mp_write_double(w, st->average);
    else
        jobq_mp_write_nil(w);
    jobq_mp_write_cstr(w, "distribution");
    jobq_mp_write_map(w, 5);
    for (int i = 0; i < 5; i++) {
        char key[2] = {(char) ('1' + i), '\0'};
        jobq_mp_write_cstr(w, key);
        jobq_mp_write_uint(w, st->stars[i]);
    }
    size_t first = st->nmonths > S_OUT_MONTHS ? st->nmonths - S_OUT_MONTHS : 0;
    jobq_mp_write_cstr(w, "months");
    jobq_mp_write_map(w, (uint32_t) (st->nmonths - first));
    for (size_t i = first; i < st->nmonths; i++) {
        jobq_mp_write_cstr(w, st->months[i].month);
        jobq_mp_write_uint(w, st->months[i].count);
    }
    jobq_mp_write_cstr(w, "undated");
    jobq_mp_write_uint(w, st->undated);
    jobq_mp_write_cstr(w, "best");
    s_write_review(w, st->best);
    jobq_mp_write_cstr(w, "worst");
    s_write_review(w, st->worst);
    jobq_mp_write_cstr(w, "title");
    jobq_mp_write_cstr(w, in->title);
}

static int
s_write(jobq_job_t *job, const s_input_t *in, const jobq_report_stats_t *st)
{
    char generated[32] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(generated, sizeof generated, "%Y-%m-%d %H:%M UTC", &tm);
    jobq_report_meta_t meta = {in->title, in->idp, in->n,
                               generated[0] ? generated : NULL};
    jobq_outfile_t file;
    char dir[PATH_MAX];
    int rc = jobq_outfile_shop_dir(dir, sizeof dir, jobq_job_export_dir(job),
                                   jobq_job_shop(job));
    if (rc == JOBQ_OK)
        rc = jobq_outfile_open(&file, dir, in->filename);
    if (rc != JOBQ_OK)
        return jobq_job_fail(
            job, false, "cannot create %s in %s: %s", in->filename, dir,
            rc == JOBQ_ESTORAGE ? strerror(errno) : jobq_strerror(rc));
    uint64_t bytes = 0;
    rc = jobq_report_write_html(file.f, &meta, st);
    if (rc == JOBQ_OK)
        rc = jobq_outfile_commit(&file, &bytes);
    if (rc != JOBQ_OK) {
        int e = errno;
        jobq_outfile_abort(&file);
        return jobq_job_fail(job, false, "writing %s: %s", file.path,
                             strerror(e));
    }
    s_output(job, in, st, file.path, bytes);
    jobq_job_progress(job, 100, "%zu review%s, report in %s", st->count,
                      st->count == 1 ? "" : "s", file.path);
    return JOBQ_OK;
}

int
jobq_proc_generate_report(jobq_job_t *job, void *state)
{
    (void) state;
    s_input_t in;
    if (s_input(job, &in) != JOBQ_OK)
        return JOBQ_EFAILED;
    s_reviews_t all;
    memset(&all, 0, sizeof all);
    int rc = JOBQ_OK;
    for (size_t i = 0; i < in.n && rc == JOBQ_OK; i++) {
        if (jobq_job_cancelled(job)) {
            rc = jobq_job_fail(job, false, "cancelled");
            break;
        }
        rc = s_read_source(job, in.ids[i], &all);
        if (rc == JOBQ_OK)
            jobq_job_progress(job, (unsigned) (10 + 70 * (i + 1) / in.n),
                              "read job %s (%zu review%s so far)", in.ids[i],
                              all.count, all.count == 1 ? "" : "s");
    }
    jobq_report_stats_t st;
    memset(&st, 0, sizeof st);
    if (rc == JOBQ_OK &&
        jobq_report_stats(all.items, all.count, &st) != JOBQ_OK)
        rc = jobq_job_fail(job, false, "out of memory");
    if (rc == JOBQ_OK)
        rc = s_write(job, &in, &st);
    jobq_report_stats_clear(&st);
    s_reviews_clear(&all);
    return rc;
}
