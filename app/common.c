/* common.c -- clocks, a bounded string copy and a bounded read for app/
 * (see common.h).  The library has its own versions, private to it; these
 * are the application's, built only on the library's public header (for
 * gov_utf8_cut) and libc. */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "governor.h"

uint64_t app_now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t app_now_ms(void)
{
    return app_now_usec() / 1000u;
}

int64_t app_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void app_format_rfc3339(int64_t wall_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    if (len == 0)
        return;
    if (!gmtime_r(&secs, &tm)) {
        app_strlcpy(buf, "1970-01-01T00:00:00.000Z", len);
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
}

bool app_strlcpy(char *dst, const char *src, size_t len)
{
    size_t n;
    if (len == 0)
        return false;
    n = strlen(src);
    if (n >= len) {
        n = gov_utf8_cut(src, n, len - 1); /* never half a character */
        memcpy(dst, src, n);
        dst[n] = '\0';
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

ssize_t app_read_bounded(int fd, char *buf, size_t size)
{
    size_t got = 0;
    char extra;
    ssize_t n;

    if (size == 0) {
        errno = EINVAL;
        return -1;
    }
    while (got < size - 1) {
        n = pread(fd, buf + got, size - 1 - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
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
        /* full: one more byte tells a file of exactly size - 1 bytes from a larger one */
        do
            n = pread(fd, &extra, 1, (off_t)got);
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
