/*  jobq_curve.c: CURVE certificates (jobq/jobq_curve.h).

    The format is czmq's ZPL certificate: a "curve" section holding
    `public-key = "<z85>"` and, in the secret file, `secret-key = "<z85>"`,
    indented under it. Only those two lines are read; every other line
    (comments, the metadata section) is skipped.
*/
#include "jobq/jobq_curve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_CERT_MAX 65536  //  bytes of a certificate file read at most

//  True when s is a key: 40 characters of Z85 that decode.
static bool
s_key_ok(const char *s)
{
    uint8_t raw[32];
    return strlen(s) == JOBQ_CURVE_Z85_LEN && zmq_z85_decode(raw, s) != NULL;
}

//  From a line `  name = "value"` (quotes optional): the value, if the
//  line names name.
static bool
s_value(const char *line, const char *name, char *out, size_t out_len)
{
    while (*line == ' ' || *line == '\t')
        line++;
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0)
        return false;
    line += n;
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line++ != '=')
        return false;
    while (*line == ' ' || *line == '\t')
        line++;
    char quote = (*line == '"' || *line == '\'') ? *line++ : 0;
    size_t len =
        strcspn(line, quote ? (quote == '"' ? "\"" : "'") : " \t\r\n#");
    if (len >= out_len)
        len = out_len - 1;
    memcpy(out, line, len);
    out[len] = '\0';
    return true;
}

int
jobq_curve_read(const char *path,
                char *public_z85,
                char *secret_z85,
                char *why,
                size_t why_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, why_len, "%s: %s", path, strerror(errno));
        return JOBQ_ESTORAGE;
    }
    char line[512], pub[64] = "", sec[64] = "";
    bool in_curve = false;
    size_t total = 0;
    while (fgets(line, sizeof line, f) && total < S_CERT_MAX) {
        total += strlen(line);
        if (line[0] != ' ' && line[0] != '\t' && line[0] != '#' &&
            line[0] != '\n' && line[0] != '\r') {
            in_curve = strncmp(line, "curve", 5) == 0 &&
                       strspn(line + 5, " \t\r\n") == strlen(line + 5);
            continue;
        }
        if (in_curve && !s_value(line, "public-key", pub, sizeof pub))
            s_value(line, "secret-key", sec, sizeof sec);
    }
    fclose(f);
    if (!s_key_ok(pub)) {
        snprintf(why, why_len,
                 "%s: not a CURVE certificate (no valid public-key in a "
                 "curve section)",
                 path);
        return JOBQ_EINVAL;
    }
    if (secret_z85 && !s_key_ok(sec)) {
        snprintf(why, why_len,
                 "%s: no valid secret-key: give the secret certificate "
                 "(jobq keygen writes it as PATH_secret)",
                 path);
        return JOBQ_EINVAL;
    }
    memcpy(public_z85, pub, JOBQ_CURVE_Z85_LEN + 1);
    if (secret_z85)
        memcpy(secret_z85, sec, JOBQ_CURVE_Z85_LEN + 1);
    return JOBQ_OK;
}

int
jobq_curve_setup(jobq_curve_t *keys,
                 const char *cert,
                 const char *broker_key,
                 char *why,
                 size_t why_len)
{
    memset(keys, 0, sizeof *keys);
    if (!cert || !*cert)
        cert = getenv("JOBQ_CERT");
    if (!broker_key || !*broker_key)
        broker_key = getenv("JOBQ_BROKER_KEY");
    if (cert && !*cert)
        cert = NULL;
    if (broker_key && !*broker_key)
        broker_key = NULL;
    if (!cert && !broker_key)
        return JOBQ_ENOTFOUND;
    if (!cert || !broker_key) {
        snprintf(why, why_len,
                 "CURVE needs both a certificate (--cert or JOBQ_CERT) and the "
                 "broker's public key (--broker-key or JOBQ_BROKER_KEY)");
        return JOBQ_EINVAL;
    }
    int rc =
        jobq_curve_read(cert, keys->public_key, keys->secret_key, why, why_len);
    if (rc != JOBQ_OK)
        return rc;
    if (s_key_ok(broker_key)) {
        memcpy(keys->server_key, broker_key, JOBQ_CURVE_Z85_LEN + 1);
        return JOBQ_OK;
    }
    if (strlen(broker_key) == JOBQ_CURVE_Z85_LEN && access(broker_key, F_OK)) {
        snprintf(why, why_len,
                 "broker key: not a valid Z85 key, and no such file");
        return JOBQ_EINVAL;
    }
    return jobq_curve_read(broker_key, keys->server_key, NULL, why, why_len);
}

//  Write one certificate file; fd is open, exclusively created.
static int
s_write(int fd,
        const char *kind,
        const char *name,
        const char *pub,
        const char *sec)
{
    char stamp[32] = "";
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "#   ZeroMQ CURVE %s certificate, written by jobq "
                     "keygen on %s\n"
                     "#   %s\n"
                     "\n"
                     "metadata\n"
                     "    name = \"%s\"\n"
                     "curve\n"
                     "    public-key = \"%s\"\n"
                     "%s%s%s",
                     kind, stamp,
                     sec ? "Keep this file to its owner: never copy or "
                           "send it."
                         : "Give this file, or the public key in it, to the "
                           "broker's operator.",
                     name, pub, sec ? "    secret-key = \"" : "",
                     sec ? sec : "", sec ? "\"\n" : "");
    if (n < 0 || (size_t) n >= sizeof buf)
        return JOBQ_EINVAL;
    return write(fd, buf, (size_t) n) == n && fsync(fd) == 0 ? JOBQ_OK
                                                             : JOBQ_ESTORAGE;
}

int
jobq_curve_keygen(const char *path,
                  const char *name,
                  char *public_z85,
                  char *why,
                  size_t why_len)
{
    char pub[JOBQ_CURVE_Z85_LEN + 1], sec[JOBQ_CURVE_Z85_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0) {
        snprintf(why, why_len, "this libzmq cannot make CURVE keys: %s",
                 zmq_strerror(zmq_errno()));
        return JOBQ_EINTERNAL;
    }
    char spath[4096];
    if ((size_t) snprintf(spath, sizeof spath, "%s_secret", path) >=
        sizeof spath) {
        snprintf(why, why_len, "path too long");
        return JOBQ_EINVAL;
    }
    const char *paths[2] = {spath, path};
    int fds[2] = {-1, -1};
    for (int i = 0; i < 2; i++) {
        fds[i] = open(paths[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                      i == 0 ? 0600 : 0644);
        if (fds[i] < 0) {
            int e = errno;
            snprintf(why, why_len, "%s: %s%s", paths[i], strerror(e),
                     e == EEXIST ? " (jobq keygen never overwrites a key)"
                                 : "");
            if (i == 1) {
                close(fds[0]);
                unlink(spath);
            }
            return e == EEXIST ? JOBQ_EEXIST : JOBQ_ESTORAGE;
        }
    }
    int rc = s_write(fds[0], "secret", name, pub, sec);
    if (rc == JOBQ_OK)
        rc = s_write(fds[1], "public", name, pub, NULL);
    close(fds[0]);
    close(fds[1]);
    memset(sec, 0, sizeof sec);
    if (rc != JOBQ_OK) {
        unlink(spath);
        unlink(path);
        snprintf(why, why_len, "%s: cannot write the certificates", path);
        return rc;
    }
    if (public_z85)
        memcpy(public_z85, pub, sizeof pub);
    return JOBQ_OK;
}
