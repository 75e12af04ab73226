/* metrics.h -- GET /metrics: the Prometheus text exposition format 0.0.4.
 *
 * The renderer turns a governor status snapshot, the HTTP server's
 * statistics and the process facts into one exposition document.  Every
 * family has # HELP and # TYPE, values are in base units (bytes, seconds,
 * ratios), counters end in _total, and label values are escaped, so the
 * output passes `promtool check metrics` without findings.  The families
 * are listed in README.md ("Metrics"). */
#ifndef APP_METRICS_H
#define APP_METRICS_H

#include <stdio.h>

#include "governor.h"
#include "render.h"
#include "routes.h"

/* The Content-Type of the exposition format. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Renders the whole document from one copy of each: the governor's status,
 * the HTTP statistics and the counter store's status.  Returns a malloc'd
 * body (length in *len) or NULL when out of memory. */
char *metrics_render(const struct gov_status *st, const struct app_info *app,
                     const struct http_stats *http, const struct counter_status *store,
                     size_t *len);

/* Writes s as a label value: backslash, double quote and line feed escaped
 * as \\, \" and \n (the format's only escapes). */
void metrics_write_label_value(FILE *f, const char *s);

/* Writes a sample value: integers exactly, +Inf/-Inf/NaN by their names,
 * other numbers in the shortest form that reads back to the same double. */
void metrics_write_double(FILE *f, double v);

/* Extracts starttime (field 22: clock ticks after boot) from the text of
 * /proc/PID/stat, whose second field (comm) may contain spaces and ')'.
 * Returns 0 or -1 when the text is malformed. */
int metrics_parse_starttime(const char *proc_stat, unsigned long long *ticks);

/* The process's start time in seconds since the Unix epoch, from
 * /proc/self/stat: starttime is counted on CLOCK_BOOTTIME, so the start is
 * now(REALTIME) - now(BOOTTIME) + starttime.  Returns 0 or -1. */
int metrics_process_start_time(double *out);

/* The process_* figures of the Prometheus client libraries. */
struct metrics_process {
    double cpu_seconds;       /* utime + stime */
    uint64_t virtual_bytes;   /* vsize */
    uint64_t resident_bytes;  /* rss pages * page size */
};

/* Extracts utime, stime (fields 14, 15, clock ticks of hz), vsize (23, bytes)
 * and rss (24, pages of page_size) from the text of /proc/PID/stat.
 * Returns 0 or -1 when the text is malformed. */
int metrics_parse_process_stat(const char *proc_stat, long hz, long page_size,
                               struct metrics_process *out);

/* The same for this process, from /proc/self/stat.  Returns 0 or -1. */
int metrics_process_read(struct metrics_process *out);

/* Open file descriptors of this process (entries of /proc/self/fd, less the
 * one that reads it).  Returns 0 or -1. */
int metrics_open_fds(uint64_t *out);

/* The soft RLIMIT_NOFILE.  Returns 0 or -1. */
int metrics_max_fds(uint64_t *out);

#endif
