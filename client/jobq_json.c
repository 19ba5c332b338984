/*  jobq_json.c: conversions between jansson values and msgpack. */
#include "jobq_json.h"

#include <stdio.h>
#include <string.h>

static int
s_to_mp(json_t *v, jobq_mp_writer_t *w, int depth)
{
    if (depth > JOBQ_MAX_DEPTH)
        return JOBQ_ETOOBIG;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        jobq_mp_write_map(w, (uint32_t) json_object_size(v));
        const char *k;
        json_t *item;
        json_object_foreach(v, k, item)
        {
            jobq_mp_write_cstr(w, k);
            int rc = s_to_mp(item, w, depth + 1);
            if (rc)
                return rc;
        }
        return JOBQ_OK;
    }
    case JSON_ARRAY: {
        jobq_mp_write_array(w, (uint32_t) json_array_size(v));
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            int rc = s_to_mp(item, w, depth + 1);
            if (rc)
                return rc;
        }
        return JOBQ_OK;
    }
    case JSON_STRING:
        jobq_mp_write_str(w, json_string_value(v), json_string_length(v));
        return JOBQ_OK;
    case JSON_INTEGER:
        jobq_mp_write_int(w, (int64_t) json_integer_value(v));
        return JOBQ_OK;
    case JSON_REAL:
        jobq_mp_write_double(w, json_real_value(v));
        return JOBQ_OK;
    case JSON_TRUE:
        jobq_mp_write_bool(w, true);
        return JOBQ_OK;
    case JSON_FALSE:
        jobq_mp_write_bool(w, false);
        return JOBQ_OK;
    default:
        jobq_mp_write_nil(w);
        return JOBQ_OK;
    }
}

int
jobq_json_to_mp(const char *text, jobq_mp_writer_t *w, char *err, size_t errlen)
{
    json_error_t e;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        snprintf(err, errlen, "line %d, column %d: %s", e.line, e.column,
                 e.text);
        return JOBQ_EINVAL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(err, errlen, "must be a JSON object, like {\"ms\": 1000}");
        return JOBQ_EINVAL;
    }
    int rc = s_to_mp(root, w, 1);
    json_decref(root);
    if (rc == JOBQ_OK)
        rc = jobq_mp_writer_error(w);
    if (rc != JOBQ_OK)
        snprintf(err, errlen, "%s",
                 rc == JOBQ_ETOOBIG ? "too large or nested too deep"
                                    : jobq_strerror(rc));
    return rc;
}

static json_t *
s_hex(const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *s = malloc(2 * n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = hex[p[i] >> 4];
        s[2 * i + 1] = hex[p[i] & 0xf];
    }
    s[2 * n] = '\0';
    json_t *j = json_string(s);
    free(s);
    return j;
}

static json_t *
s_from(jobq_mp_reader_t *r, int depth)
{
    if (depth > JOBQ_MAX_DEPTH)
        return NULL;
    uint32_t n;
    jobq_str_t s;
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    jobq_bytes_t span;
    switch (jobq_mp_peek(r)) {
    case JOBQ_MP_NIL:
        jobq_mp_read_nil(r);
        return json_null();
    case JOBQ_MP_BOOL:
        jobq_mp_read_bool(r, &b);
        return json_boolean(b);
    case JOBQ_MP_UINT:
        if (jobq_mp_read_uint(r, &u) != JOBQ_OK)
            return NULL;
        return u <= (uint64_t) INT64_MAX ? json_integer((json_int_t) u)
                                         : json_real((double) u);
    case JOBQ_MP_INT:
        return jobq_mp_read_int(r, &i) == JOBQ_OK ? json_integer(i) : NULL;
    case JOBQ_MP_FLOAT:
        return jobq_mp_read_double(r, &d) == JOBQ_OK ? json_real(d) : NULL;
    case JOBQ_MP_STR:
        if (jobq_mp_read_str(r, &s) != JOBQ_OK)
            return NULL;
        //  Invalid UTF-8 cannot be a JSON string: show its bytes.
        json_t *js = json_stringn(s.ptr, s.len);
        return js ? js : s_hex((const uint8_t *) s.ptr, s.len);
    case JOBQ_MP_ARRAY: {
        if (jobq_mp_read_array(r, &n) != JOBQ_OK)
            return NULL;
        json_t *a = json_array();
        for (uint32_t k = 0; k < n; k++) {
            json_t *item = s_from(r, depth + 1);
            if (!item) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, item);
        }
        return a;
    }
    case JOBQ_MP_MAP: {
        if (jobq_mp_read_map(r, &n) != JOBQ_OK)
            return NULL;
        json_t *o = json_object();
        for (uint32_t k = 0; k < n; k++) {
            char key[1024];
            if (jobq_mp_read_str(r, &s) != JOBQ_OK) {
                json_decref(o);
                return NULL;
            }
            snprintf(key, sizeof key, "%.*s", (int) s.len, s.ptr);
            json_t *item = s_from(r, depth + 1);
            if (!item) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, key, item);
        }
        return o;
    }
    case JOBQ_MP_BIN:
    case JOBQ_MP_EXT:
        if (jobq_mp_skip(r, &span) != JOBQ_OK)
            return NULL;
        return s_hex(span.ptr, span.len);
    default:
        return NULL;
    }
}

json_t *
jobq_json_from_mp(jobq_bytes_t b)
{
    if (!b.len)
        return json_null();
    if (jobq_mp_check(b.ptr, b.len,
                      &(jobq_mp_limits_t){JOBQ_MAX_DEPTH, JOBQ_MAX_CONTAINER,
                                          JOBQ_MAX_ELEMENTS,
                                          JOBQ_MAX_OUTPUT_BYTES},
                      NULL) != JOBQ_OK)
        return NULL;
    jobq_mp_reader_t r;
    jobq_mp_reader_init(&r, b.ptr, b.len);
    return s_from(&r, 1);
}

static json_t *
s_time(uint64_t ms)
{
    return ms ? json_integer((json_int_t) ms) : json_null();
}

static json_t *
s_opt(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *
jobq_json_job(const jobq_job_info_t *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "type", json_string(j->type));
    json_object_set_new(o, "status", json_string(jobq_status_name(j->status)));
    json_object_set_new(o, "shop_id", json_string(j->shop_id));
    json_t *in = jobq_json_from_mp(j->input);
    json_object_set_new(o, "input", in ? in : json_null());
    json_t *out = jobq_json_from_mp(j->output);
    json_object_set_new(o, "output", out ? out : json_null());
    json_object_set_new(o, "progress", json_integer(j->progress));
    json_object_set_new(o, "message", s_opt(j->message));
    json_object_set_new(o, "error", s_opt(j->error));
    json_t *errs = j->errors.len ? jobq_json_from_mp(j->errors) : json_array();
    json_object_set_new(o, "errors", errs ? errs : json_array());
    json_object_set_new(o, "attempts", json_integer(j->attempts));
    json_object_set_new(o, "max_attempts", json_integer(j->max_attempts));
    json_object_set_new(o, "priority", json_integer(j->priority));
    json_object_set_new(o, "run_at", s_time(j->run_at));
    json_object_set_new(o, "timeout", json_integer((json_int_t) j->timeout_ms));
    json_object_set_new(o, "key", s_opt(j->key));
    json_object_set_new(o, "created_at", s_time(j->created_at));
    json_object_set_new(o, "updated_at", s_time(j->updated_at));
    json_object_set_new(o, "started_at", s_time(j->started_at));
    json_object_set_new(o, "completed_at", s_time(j->completed_at));
    json_object_set_new(o, "worker", s_opt(j->worker));
    json_object_set_new(o, "lease_until", s_time(j->lease_until));
    json_object_set_new(o, "version", json_integer(j->version));
    return o;
}
