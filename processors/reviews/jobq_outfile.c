/*  jobq_outfile.c: checked names, temporary file, fsync, rename. */
#define _XOPEN_SOURCE 700  //  realpath
#include "jobq_outfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool
jobq_outfile_name_ok(const char *name, size_t len, char *why, size_t whylen)
{
    if (len == 0) {
        snprintf(why, whylen, "empty");
        return false;
    }
    if (len > JOBQ_OUTFILE_MAX_NAME) {
        snprintf(why, whylen, "longer than %d bytes", JOBQ_OUTFILE_MAX_NAME);
        return false;
    }
    if (name[0] == '.') {
        snprintf(why, whylen, "starts with '.'");
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) {
            snprintf(why, whylen,
                     "only letters, digits, '.', '_' and '-' may appear "
                     "(byte %zu is not one)",
                     i);
            return false;
        }
    }
    return true;
}

//  mkdir -p dir.
static int
s_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return JOBQ_ETOOBIG;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return JOBQ_ESTORAGE;
        path[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return JOBQ_ESTORAGE;
    return S_ISDIR(st.st_mode) ? JOBQ_OK : JOBQ_EINVAL;
}

int
jobq_outfile_shop_dir(char *out,
                      size_t cap,
                      const char *export_dir,
                      const char *shop)
{
    size_t n = strlen(shop);
    if (n < 1 || n > 128)
        return JOBQ_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char) shop[i]) && !strchr("_.:-", shop[i]))
            return JOBQ_EINVAL;
    int w = shop[0] == '.'
                ? snprintf(out, cap, "%s/%%2e%s", export_dir, shop + 1)
                : snprintf(out, cap, "%s/%s", export_dir, shop);
    return w < 0 || (size_t) w >= cap ? JOBQ_ETOOBIG : JOBQ_OK;
}

int
jobq_outfile_open(jobq_outfile_t *o, const char *dir, const char *name)
{
    char why[128];
    memset(o, 0, sizeof *o);
    if (!jobq_outfile_name_ok(name, strlen(name), why, sizeof why))
        return JOBQ_EINVAL;
    int rc = s_mkdirs(dir);
    if (rc != JOBQ_OK)
        return rc;
    if (!realpath(dir, o->dir))
        return JOBQ_ESTORAGE;
    if (snprintf(o->path, sizeof o->path, "%s/%s", o->dir, name) >=
            (int) sizeof o->path ||
        snprintf(o->tmp, sizeof o->tmp, "%s/.%s.XXXXXX", o->dir, name) >=
            (int) sizeof o->tmp)
        return JOBQ_ETOOBIG;
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        o->tmp[0] = '\0';
        return JOBQ_ESTORAGE;
    }
    fchmod(fd, 0644);
    o->f = fdopen(fd, "w");
    if (!o->f) {
        int e = errno;
        close(fd);
        unlink(o->tmp);
        o->tmp[0] = '\0';
        errno = e;
        return JOBQ_ESTORAGE;
    }
    return JOBQ_OK;
}

int
jobq_outfile_commit(jobq_outfile_t *o, uint64_t *bytes)
{
    if (!o->f)
        return JOBQ_ESTORAGE;
    int e = 0;
    if (fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0)
        e = errno ? errno : EIO;
    off_t size = ftello(o->f);
    if (fclose(o->f) != 0 && !e)
        e = errno ? errno : EIO;
    o->f = NULL;
    if (!e && rename(o->tmp, o->path) != 0)
        e = errno;
    if (e) {
        unlink(o->tmp);
        o->tmp[0] = '\0';
        errno = e;
        return JOBQ_ESTORAGE;
    }
    o->tmp[0] = '\0';
    //  The rename itself is durable once the directory is.
    int dfd = open(o->dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    *bytes = size > 0 ? (uint64_t) size : 0;
    return JOBQ_OK;
}

void
jobq_outfile_abort(jobq_outfile_t *o)
{
    if (o->f)
        fclose(o->f);
    o->f = NULL;
    if (o->tmp[0])
        unlink(o->tmp);
    o->tmp[0] = '\0';
}
