/*  fuzz_zap.c: the broker's decision on a ZAP request (RFC 27), with any
    frames. The input is split into frames, each led by its length byte.

    The decision must return; only a well-formed CURVE request with the
    one known key, on an endpoint its roles fit, may get in. */
#include "jobq_auth.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

//  The known key: 32 bytes of 0x01.
static jobq_keys_t *
s_keys(void)
{
    static jobq_keys_t *keys;
    if (!keys) {
        uint8_t raw[32];
        memset(raw, 1, sizeof raw);
        char z85[41], file[128];
        zmq_z85_encode(z85, raw, 32);
        snprintf(file, sizeof file, "api client shop-1 %s\n", z85);
        char why[128];
        if (jobq_keys_parse(file, strlen(file), &keys, why, sizeof why) !=
            JOBQ_OK)
            abort();
    }
    return keys;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jobq_zap_frame_t f[16];
    int n = 0;
    size_t pos = 0;
    while (pos < size && n < 16) {
        size_t len = data[pos++];
        if (len > size - pos)
            len = size - pos;
        f[n++] = (jobq_zap_frame_t){data + pos, len};
        pos += len;
    }
    char user[41];
    const char *text = NULL;
    bool reserve[3] = {size & 1, size & 2, size & 4};
    int rc = jobq_auth_check(s_keys(), f, n, reserve, user, &text);
    if (!text)
        abort();
    if (rc < 0) {
        //  The key is a client's: the client and event endpoints only,
        //  and neither when it is at its limit.
        uint8_t raw[32];
        memset(raw, 1, sizeof raw);
        bool clients = f[2].len == strlen(JOBQ_AUTH_CLIENTS) &&
                       memcmp(f[2].ptr, JOBQ_AUTH_CLIENTS, f[2].len) == 0;
        bool events = f[2].len == strlen(JOBQ_AUTH_EVENTS) &&
                      memcmp(f[2].ptr, JOBQ_AUTH_EVENTS, f[2].len) == 0;
        if (n != 7 || f[6].len != 32 || memcmp(f[6].ptr, raw, 32) != 0 ||
            !(clients || events) || (clients && reserve[0]) ||
            (events && reserve[2]))
            abort();
    }
    return 0;
}
