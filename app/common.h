/* common.h -- small helpers of governord's own code (app/).
 *
 * The governor library keeps its helpers private (governor/util.h is not
 * installed), and app/ uses only the library's public header, so the few
 * helpers the application needs live here under app_ names: clocks in the
 * units the rest of the code uses, a bounded string copy that never cuts a
 * UTF-8 character in two, and a bounded read of a small file. */
#ifndef APP_COMMON_H
#define APP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Milliseconds and microseconds on CLOCK_MONOTONIC. */
uint64_t app_now_ms(void);
uint64_t app_now_usec(void);

/* Milliseconds since the Unix epoch on CLOCK_REALTIME. */
int64_t app_wall_ms(void);

/* RFC 3339 UTC with milliseconds ("2026-11-26T11:32:09.123Z"); buf must
 * hold 32 bytes. */
void app_format_rfc3339(int64_t wall_ms, char *buf, size_t len);

/* Copies src into dst (size len), always NUL-terminating, cut between
 * UTF-8 characters; returns false if src had to be truncated. */
bool app_strlcpy(char *dst, const char *src, size_t len);

/* Reads all of fd from offset 0 with pread() into buf (at most size - 1
 * bytes, then a NUL), retrying short reads and EINTR.  Returns the length,
 * or -1 with errno (EFBIG when the file holds more than size - 1 bytes). */
ssize_t app_read_bounded(int fd, char *buf, size_t size);

#endif
