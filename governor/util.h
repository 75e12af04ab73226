/* util.h -- small helpers shared by every module of the governor library.
 *
 * Cleanup attributes in the style of systemd (_cleanup_free_ and friends) so
 * that every early return releases what the function acquired, a monotonic
 * and a wall clock in the units the rest of the code uses, and bounded string
 * copies.  Nothing here allocates global state. */
#ifndef GOVERNOR_UTIL_H
#define GOVERNOR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Milliseconds on CLOCK_MONOTONIC: used for intervals, cooldowns, heartbeats. */
uint64_t gov_now_ms(void);

/* Microseconds on CLOCK_MONOTONIC (sd-event and sd_notify MONOTONIC_USEC). */
uint64_t gov_now_usec(void);

/* Milliseconds since the Unix epoch on CLOCK_REALTIME: used for records. */
int64_t gov_wall_ms(void);

/* Formats a wall-clock time in ms as RFC 3339 UTC with milliseconds,
 * e.g. "2026-11-26T11:32:09.123Z".  buf must hold 32 bytes. */
void gov_format_rfc3339(int64_t wall_ms, char *buf, size_t len);

/* Copies src into dst (size len), always NUL-terminating; returns false if
 * src had to be truncated.  A cut falls between UTF-8 characters (utf8.h),
 * never inside one. */
bool gov_strlcpy(char *dst, const char *src, size_t len);

#endif
