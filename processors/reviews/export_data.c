/*  export_data: the records of a completed job's output as a CSV, NDJSON or
    JSON file in the worker's export directory.

    The source job is read from the broker with the slot's client; its
    records are the array under `list`, or the first array of maps in its
    output (for a scrape_reviews job, its reviews). The columns are the
    input's `fields`, else the keys of the records, else, for a scrape that
    found no review, the keys a review has: so the CSV file of a scrape
    always starts with its header. The file is streamed row by row into a
    temporary file and renamed into place once complete (jobq_outfile.h).
    docs/PROCESSORS.md has the input, the output and the errors.
*/
#include "jobq_outfile.h"
#include "jobq_processors.h"
#include "jobq_reviews.h"
#include "jobq_records.h"
#include "jobq_review.h"
#include "jobq_source.h"

#include <errno.h>
#include <string.h>

//  Read the optional input array `fields` into f. On a bad one fail the
//  job for good.
static int
s_fields(jobq_job_t *job, jobq_fields_t *f, bool *given)
{
    jobq_bytes_t v;
    *given = false;
    if (jobq_mp_map_find(jobq_job_input(job), "fields", &v) != JOBQ_OK)
        return JOBQ_OK;
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, v.ptr, v.len);
    if (jobq_mp_read_nil(&r))
        return JOBQ_OK;
    uint32_t n;
    if (jobq_mp_read_array(&r, &n) != JOBQ_OK || n == 0 ||
        n > JOBQ_RECORDS_MAX_FIELDS)
        return jobq_job_fail(job, true,
                             "input 'fields': a list of 1 to %d column names",
                             JOBQ_RECORDS_MAX_FIELDS);
    for (uint32_t i = 0; i < n; i++) {
        jobq_str_t s;
        int rc = jobq_mp_read_str(&r, &s) == JOBQ_OK
                     ? jobq_fields_add(f, s.ptr, s.len)
                     : JOBQ_EINVAL;
        if (rc == JOBQ_EEXIST)
            return jobq_job_fail(job, true,
                                 "input 'fields': '%.*s' appears twice",
                                 (int) s.len, s.ptr);
        if (rc != JOBQ_OK)
            return jobq_job_fail(job, true,
                                 "input 'fields': item %u must be a name of 1 "
                                 "to %d bytes",
                                 i, JOBQ_RECORDS_MAX_FIELD_LEN);
    }
    *given = true;
    return JOBQ_OK;
}

//  Stream the rows of list (count records) into out.
static int
s_write_rows(jobq_job_t *job,
             FILE *out,
             jobq_format_t fmt,
             const jobq_fields_t *fields,
             jobq_bytes_t list,
             uint32_t count)
{
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, list.ptr, list.len);
    uint32_t n;
    jobq_mp_read_array(&r, &n);
    int rc = jobq_records_begin(out, fmt, fields);
    unsigned last_pct = 0;
    for (uint32_t i = 0; i < n && rc == JOBQ_OK; i++) {
        jobq_bytes_t rec;
        if (jobq_mp_skip(&r, &rec) != JOBQ_OK)
            return JOBQ_EINVAL;
        rc = jobq_records_row(out, fmt, fields, rec, i);
        //  A report when the percentage moves: at most 100 per file.
        unsigned pct = (unsigned) (5 + 90ull * (i + 1) / count);
        if (pct != last_pct) {
            last_pct = pct;
            if (jobq_job_progress(job, pct, "row %u of %u", i + 1, count) !=
                JOBQ_OK)
                return JOBQ_ECANCELLED;
        }
    }
    if (rc == JOBQ_OK)
        rc = jobq_records_end(out, fmt, n);
    return rc;
}

//  What the input asks for.
typedef struct {
    char id[65];                               //  source job
    jobq_format_t fmt;                         //  file format
    char filename[JOBQ_OUTFILE_MAX_NAME + 1];  //  checked
    char list[129];                            //  records key, "" = find
    jobq_fields_t fields;                      //  columns, maybe none yet
    bool fields_given;                         //  by the input
} s_input_t;

//  Read and check the input; on a bad field fail the job for good.
static int
s_input(jobq_job_t *job, s_input_t *in)
{
    char fmt_name[16] = "csv", why[160];
    int rc = jobq_proc_input_cstr(job, "source_job", in->id, sizeof in->id);
    if (rc == JOBQ_ETOOBIG)
        return jobq_job_fail(job, true, "input 'source_job': not a job id");
    if (rc != JOBQ_OK)
        return jobq_job_fail(job, true,
                             "input 'source_job': required, the id of a "
                             "completed job");
    rc = jobq_proc_input_cstr(job, "format", fmt_name, sizeof fmt_name);
    if ((rc != JOBQ_OK && rc != JOBQ_ENOTFOUND) ||
        jobq_format_parse(fmt_name, strlen(fmt_name), &in->fmt) != JOBQ_OK)
        return jobq_job_fail(job, true,
                             "input 'format': one of csv, ndjson, json");
    jobq_str_t fname;
    rc = jobq_job_input_str(job, "filename", &fname);
    if (rc == JOBQ_OK &&
        !jobq_outfile_name_ok(fname.ptr, fname.len, why, sizeof why))
        return jobq_job_fail(job, true,
                             "input 'filename': refused, it must be a plain "
                             "file name in the export directory: %s",
                             why);
    if (rc == JOBQ_OK)
        snprintf(in->filename, sizeof in->filename, "%.*s", (int) fname.len,
                 fname.ptr);
    else if (rc == JOBQ_ENOTFOUND)
        snprintf(in->filename, sizeof in->filename, "export-%s.%s",
                 jobq_job_id(job), jobq_format_name(in->fmt));
    else
        return jobq_job_fail(job, true, "input 'filename': must be a string");
    rc = jobq_proc_input_cstr(job, "list", in->list, sizeof in->list);
    if (rc != JOBQ_OK && rc != JOBQ_ENOTFOUND)
        return jobq_job_fail(job, true,
                             "input 'list': a key of up to 128 bytes");
    return s_fields(job, &in->fields, &in->fields_given);
}

//  Whether the records in asks for are the reviews of a scrape_reviews job:
//  those under "reviews", which is also the first list of maps it outputs.
static bool
s_is_reviews(const s_input_t *in, const jobq_job_info_t *src)
{
    return strcmp(src->type, "scrape_reviews") == 0 &&
           (!in->list[0] || strcmp(in->list, "reviews") == 0);
}

//  The columns of a scrape's reviews: when it found none, no record names
//  them, and a CSV file still gets its header.
static int
s_review_fields(jobq_fields_t *f)
{
    int rc = JOBQ_OK;
    for (size_t i = 0; i < JOBQ_REVIEW_NKEYS && rc == JOBQ_OK; i++)
        rc = jobq_fields_add(f, jobq_review_keys[i],
                             strlen(jobq_review_keys[i]));
    return rc;
}

//  Export the records of src's output as in asks.
static int
s_export(jobq_job_t *job, s_input_t *in, const jobq_job_info_t *src)
{
    char why[160];
    jobq_bytes_t list;
    uint32_t count = 0;
    int rc = jobq_records_find(src->output, in->list[0] ? in->list : NULL,
                               &list, &count, why, sizeof why);
    if (rc == JOBQ_OK && !in->fields_given)
        rc = jobq_fields_from_records(&in->fields, list);
    if (rc == JOBQ_OK && in->fields.count == 0 && s_is_reviews(in, src))
        rc = s_review_fields(&in->fields);
    if (rc == JOBQ_ETOOBIG)
        snprintf(why, sizeof why, "the records have more than %d keys",
                 JOBQ_RECORDS_MAX_FIELDS);
    if (rc != JOBQ_OK)
        return jobq_job_fail(job, rc != JOBQ_ENOMEM, "source job %s: %s",
                             in->id, rc == JOBQ_ENOMEM ? "out of memory" : why);
    jobq_job_progress(job, 5, "%u record%s from job %s", count,
                      count == 1 ? "" : "s", in->id);

    jobq_outfile_t file;
    char dir[PATH_MAX];
    rc = jobq_outfile_shop_dir(dir, sizeof dir, jobq_job_export_dir(job),
                               jobq_job_shop(job));
    if (rc == JOBQ_OK)
        rc = jobq_outfile_open(&file, dir, in->filename);
    if (rc != JOBQ_OK)
        return jobq_job_fail(
            job, false, "cannot create %s in %s: %s", in->filename, dir,
            rc == JOBQ_ESTORAGE ? strerror(errno) : jobq_strerror(rc));
    rc = s_write_rows(job, file.f, in->fmt, &in->fields, list, count);
    uint64_t bytes = 0;
    if (rc == JOBQ_OK)
        rc = jobq_outfile_commit(&file, &bytes);
    if (rc != JOBQ_OK) {
        int e = errno;
        jobq_outfile_abort(&file);
        if (rc == JOBQ_ECANCELLED)
            return jobq_job_fail(job, false, "cancelled");
        return jobq_job_fail(
            job, rc == JOBQ_EINVAL, "writing %s: %s", file.path,
            rc == JOBQ_ESTORAGE ? strerror(e) : jobq_strerror(rc));
    }
    jobq_mp_writer_t *out = jobq_job_output(job);
    jobq_mp_write_map(out, 6);
    jobq_mp_write_cstr(out, "path");
    jobq_mp_write_cstr(out, file.path);
    jobq_mp_write_cstr(out, "format");
    jobq_mp_write_cstr(out, jobq_format_name(in->fmt));
    jobq_mp_write_cstr(out, "rows");
    jobq_mp_write_uint(out, count);
    jobq_mp_write_cstr(out, "bytes");
    jobq_mp_write_uint(out, bytes);
    jobq_mp_write_cstr(out, "columns");
    jobq_mp_write_array(out, (uint32_t) in->fields.count);
    for (size_t i = 0; i < in->fields.count; i++)
        jobq_mp_write_cstr(out, in->fields.names[i]);
    jobq_mp_write_cstr(out, "source_job");
    jobq_mp_write_cstr(out, in->id);
    jobq_job_progress(job, 100, "wrote %u row%s to %s", count,
                      count == 1 ? "" : "s", file.path);
    return JOBQ_OK;
}

int
jobq_proc_export_data(jobq_job_t *job, void *state)
{
    (void) state;
    s_input_t in;
    memset(&in, 0, sizeof in);
    jobq_job_info_t src;
    memset(&src, 0, sizeof src);
    int rc = s_input(job, &in);
    if (rc == JOBQ_OK)
        rc = jobq_source_read(job, "source_job",
                              (jobq_str_t){in.id, strlen(in.id)}, &src);
    if (rc == JOBQ_OK)
        rc = s_export(job, &in, &src);
    jobq_job_info_clear(&src);
    jobq_fields_clear(&in.fields);
    return rc;
}
