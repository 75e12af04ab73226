/* util.c -- clocks, string helpers and the bounded file read (see util.h).
 *
 * Every small file the governor reads -- cgroupfs files on each tick, the
 * /proc files at start-up, the policy file on each reload, /proc/self/stat
 * for the metrics -- goes through gov_open_regular() and gov_read_bounded(),
 * so that the rules (never block in open, regular files only, retry short
 * reads and EINTR, refuse a file larger than the buffer instead of cutting
 * it) live in one place. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "utf8.h"

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t gov_now_ms(void)
{
    return now_usec() / 1000u;
}

int64_t gov_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gov_format_rfc3339(int64_t wall_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    if (len == 0)
        return;
    if (!gmtime_r(&secs, &tm)) {
        gov_strlcpy(buf, "1970-01-01T00:00:00.000Z", len);
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
}

bool gov_strlcpy(char *dst, const char *src, size_t len)
{
    size_t n;
    if (len == 0)
        return false;
    n = strlen(src);
    if (n >= len) {
        /* never half a multi-byte character: it would be invalid UTF-8 */
        n = gov_utf8_cut(src, n, len - 1);
        memcpy(dst, src, n);
        dst[n] = '\0';
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

int gov_open_regular(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    int saved;

    if (fd < 0) {
        saved = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        saved = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(saved));
        close(fd);
        errno = saved;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

ssize_t gov_read_bounded(int fd, char *buf, size_t size)
{
    size_t got = 0;
    char extra;
    ssize_t n;

    if (size == 0) {
        errno = EINVAL;
        return -1;
    }
    bool stream = false; /* a pipe (--check-policy -): read(), not pread() */

    while (got < size - 1) {
        n = stream ? read(fd, buf + got, size - 1 - got)
                   : pread(fd, buf + got, size - 1 - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ESPIPE && !stream) {
            stream = true;
            continue;
        }
        if (n < 0) {
            buf[got] = '\0';
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    if (got == size - 1) {
        /* full: one more byte tells a file of exactly size - 1 bytes from a
         * larger one */
        do
            n = stream ? read(fd, &extra, 1) : pread(fd, &extra, 1, (off_t)got);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return -1;
        if (n > 0) {
            errno = EFBIG;
            return -1;
        }
    }
    return (ssize_t)got;
}

char *gov_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    _cleanup_close_ int fd = gov_open_regular(path, err, errlen);
    char *buf;
    ssize_t n;
    int saved;

    if (fd < 0)
        return NULL;
    buf = malloc(max + 1);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    n = gov_read_bounded(fd, buf, max + 1);
    if (n < 0) {
        saved = errno;
        free(buf);
        if (saved == EFBIG)
            snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
        else
            snprintf(err, errlen, "%s: %s", path, strerror(saved));
        return NULL;
    }
    if (len)
        *len = (size_t)n;
    return buf;
}
