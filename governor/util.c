/* util.c -- clocks and string helpers (see util.h). */
#include "util.h"

#include <string.h>
#include <time.h>

#include "utf8.h"

uint64_t gov_now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t gov_now_ms(void)
{
    return gov_now_usec() / 1000u;
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
