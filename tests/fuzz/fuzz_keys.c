/*  fuzz_keys.c: the broker's key file parser, with any text.

    Parsing must return; a file it accepts must answer every question a
    connection or a message asks of its keys without fault. */
#include "jobq_keys.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jobq_keys_t *keys = NULL;
    char why[256];
    if (jobq_keys_parse((const char *) data, size, &keys, why, sizeof why) !=
        JOBQ_OK) {
        if (keys || !memchr(why, '\0', sizeof why))
            abort();
        return 0;
    }
    for (size_t i = 0; i < jobq_keys_count(keys); i++) {
        jobq_key_t *k = jobq_keys_at(keys, i);
        if (jobq_keys_find(keys, k->z85, strlen(k->z85)) != k)
            abort();
        //  The key's own name and shops, and the input itself, as a shop,
        //  a type, a worker name and a topic.
        size_t n = size < 200 ? size : 200;
        jobq_key_shop(k, (jobq_str_t){(const char *) data, n});
        jobq_key_type(k, (jobq_str_t){(const char *) data, n});
        jobq_key_topic(k, data, n);
        jobq_key_worker_name(k, data, n);
        if (!jobq_key_worker_name(k, (const uint8_t *) k->name,
                                  strlen(k->name)))
            abort();
        for (size_t s = 0; s < k->nshops; s++)
            if (!jobq_key_shop(k,
                               (jobq_str_t){k->shops[s], strlen(k->shops[s])}))
                abort();
        jobq_key_take(k, 1000);
    }
    jobq_keys_destroy(&keys);
    return 0;
}
