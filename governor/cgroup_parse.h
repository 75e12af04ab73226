/* cgroup_parse.h -- pure parsers for the kernel's text formats.
 *
 * Everything the governor reads from /proc and cgroupfs goes through these
 * functions: single-value files ("max" or a number), flat keyed files
 * (memory.stat, memory.events, memory.oom_control, /proc/meminfo), PSI
 * (memory.pressure), /proc/self/cgroup and /proc/self/mountinfo.  They take a
 * NUL-terminated buffer, never do I/O, and treat anything unexpected as an
 * error rather than as zero, so that garbage in a file can never look like
 * "plenty of memory left".  They are fuzzed (tests/fuzz). */
#ifndef GOVERNOR_CGROUP_PARSE_H
#define GOVERNOR_CGROUP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "governor.h"

/* Values at or above this are "no limit" (v1 writes 9223372036854771712). */
#define GOV_UNLIMITED (UINT64_C(1) << 62)

/* Parses a single-value file ("123\n" or "max\n").  "max" and values >=
 * GOV_UNLIMITED give *unlimited = true.  Returns 0, or -1 for an empty file,
 * a negative number, garbage, trailing junk or overflow. */
int gov_parse_value(const char *buf, uint64_t *value, bool *unlimited);

/* Finds `key` in a "key value" per line file and parses its unsigned value.
 * Returns 1 if found, 0 if absent, -1 if the line for key is malformed. */
int gov_parse_keyed(const char *buf, const char *key, uint64_t *value);

/* Finds `key` (e.g. "MemTotal") in /proc/meminfo content ("MemTotal:
 * 24576000 kB") and returns its value in bytes.  Returns 1, 0 if absent, -1 if
 * malformed. */
int gov_parse_meminfo(const char *buf, const char *key, uint64_t *bytes);

/* struct gov_psi (pressure stall information) is in governor.h. */

/* Parses memory.pressure ("some avg10=.. avg60=.. avg300=.. total=..",
 * "full ..." optional).  Returns 0 or -1. */
int gov_parse_psi(const char *buf, struct gov_psi *psi);

/* One line of /proc/self/cgroup: "hierarchy-id:controllers:path". */
struct gov_proc_cgroup {
    int hierarchy;          /* 0 for the cgroup v2 unified hierarchy */
    char controllers[128];  /* comma separated, "" for v2 */
    char path[1024];
};

/* Parses /proc/self/cgroup into at most max entries; returns the number of
 * entries or -1 on a malformed line. */
int gov_parse_proc_cgroup(const char *buf, struct gov_proc_cgroup *out, int max);

/* True if controller `name` is in the comma-separated list (exact match). */
bool gov_controller_listed(const char *list, const char *name);

/* The fields of one /proc/self/mountinfo line the governor uses; octal
 * escapes (\040 for a space) are decoded. */
struct gov_mountinfo {
    char root[1024];        /* field 4: root of the mount within its filesystem */
    char mount_point[1024]; /* field 5 */
    char fstype[32];        /* first field after " - " */
    char super_opts[512];   /* last field: for cgroup v1 the controllers */
};

/* Parses one mountinfo line (without or with the trailing newline).
 * Returns 0 or -1. */
int gov_parse_mountinfo_line(const char *line, struct gov_mountinfo *out);

/* Given the cgroup path from /proc/self/cgroup and a mount of that hierarchy,
 * writes the directory of the cgroup (sysroot + mount point + path relative
 * to the mount's root).  Returns 0, or -1 if the path is outside the mount
 * (the cgroup is not visible in this mount namespace) or too long. */
int gov_cgroup_dir_from_mount(const char *sysroot, const struct gov_mountinfo *m,
                              const char *cg_path, char *out, size_t len);

#endif
