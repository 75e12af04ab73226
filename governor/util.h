/* util.h -- small helpers shared by every module of the governor library.
 *
 * Cleanup attributes in the style of systemd (_cleanup_free_ and friends) so
 * that every early return releases what the function acquired, a monotonic
 * and a wall clock in the units the rest of the code uses, bounded string
 * copies, and the one way this code base reads a small file: opened without
 * blocking, regular files only, read whole up to a bound.  Nothing here
 * allocates global state. */
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

/* Milliseconds since the Unix epoch on CLOCK_REALTIME: used for records. */
int64_t gov_wall_ms(void);

/* Formats a wall-clock time in ms as RFC 3339 UTC with milliseconds,
 * e.g. "2026-11-26T11:32:09.123Z".  buf must hold 32 bytes. */
void gov_format_rfc3339(int64_t wall_ms, char *buf, size_t len);

/* Copies src into dst (size len), always NUL-terminating; returns false if
 * src had to be truncated.  A cut falls between UTF-8 characters (utf8.h),
 * never inside one. */
bool gov_strlcpy(char *dst, const char *src, size_t len);

/* Opens path read-only for gov_read_bounded(): close-on-exec, no controlling
 * terminal, and O_NONBLOCK, so that a FIFO or a device standing where a file
 * belongs cannot block the caller in open(); anything but a regular file is
 * then refused (cgroupfs, procfs and ordinary files are all regular).
 * Returns the descriptor, or -1 with errno (EINVAL for a file that is not
 * regular) and "PATH: reason" in err. */
int gov_open_regular(const char *path, char *err, size_t errlen);

/* Reads all of fd from offset 0 with pread() (the file position is neither
 * used nor moved, so a held descriptor can be read again and again), into
 * buf of size bytes: at most size - 1 bytes, then a NUL.  Short reads and
 * EINTR are retried until end of file.  Returns the length; -1 with errno
 * on a read error, or -1 with errno EFBIG when the file holds more than
 * size - 1 bytes (buf then holds the first size - 1, NUL-terminated).  A
 * pipe, which has no offsets (--check-policy - reads stdin), is read with
 * read() from where it stands. */
ssize_t gov_read_bounded(int fd, char *buf, size_t size);

/* gov_open_regular() and gov_read_bounded() on path into a new buffer of
 * max + 1 bytes.  Returns it (NUL-terminated, length in *len when len is not
 * NULL; the caller frees it), or NULL with "PATH: reason" in err. */
char *gov_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif
