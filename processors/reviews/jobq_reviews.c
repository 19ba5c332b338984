/*  jobq_reviews.c: the review pipeline's processors, registered together. */
#include "jobq_reviews.h"

#include <curl/curl.h>
#include <jansson.h>
#include <libxml/parser.h>

int
jobq_reviews_register(jobq_registry_t *reg, const jobq_netguard_t *guard)
{
    //  Global set-up that is not thread-safe, done once before slots run.
    //  Never undone: the libraries live as long as the process.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return JOBQ_EINTERNAL;
    xmlInitParser();
    json_object_seed(0);
    int rc = jobq_registry_add(reg, "scrape_reviews", jobq_proc_scrape_reviews,
                               (void *) guard);
    if (rc == JOBQ_OK)
        rc = jobq_registry_add(reg, "export_data", jobq_proc_export_data, NULL);
    if (rc == JOBQ_OK)
        rc = jobq_registry_add(reg, "generate_report",
                               jobq_proc_generate_report, NULL);
    return rc;
}
