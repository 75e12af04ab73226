/* cgroup.h -- find the process's own memory cgroup and sample it.
 *
 * Discovery reads /proc/self/cgroup and /proc/self/mountinfo and picks, per
 * controller, cgroup v2 when the unified hierarchy carries the memory
 * controller for this process, else cgroup v1's memory hierarchy (its first
 * mount in mountinfo where this process's cgroup exists), else the host's /proc/meminfo
 * (no memory cgroup at all, e.g. the root cgroup of a v2 host).  A directory
 * given with --cgroup is used as the cgroup instead; its version is told by
 * the files present.
 *
 * Sampling keeps every file open and reads it with pread(), so a tick costs a
 * handful of syscalls.  A file that fails (cgroup removed, file replaced,
 * garbage) makes the sample fail with the file's name and reason; the file is
 * reopened by path on the next sample, so the governor recovers by itself
 * when the files come back. */
#ifndef GOVERNOR_CGROUP_H
#define GOVERNOR_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup_parse.h"

enum gov_cg_version { GOV_CG_HOST = 0, GOV_CG_V1 = 1, GOV_CG_V2 = 2 };

/* Where the memory figures come from. */
struct gov_cgroup_loc {
    enum gov_cg_version version;
    char dir[PATH_MAX];   /* the own cgroup's directory ("" for host) */
    char root[PATH_MAX];  /* ancestors are walked up to and including this
                             directory; "" = while a parent has memory.max */
    char how[128];        /* how it was found, for /governor and logs */
};

/* Locates the memory cgroup of the calling process.  proc_cgroup and
 * mountinfo are file paths (normally /proc/self/...); sysroot is prefixed to
 * every mount point ("" normally, a fixture directory in tests).  Returns 0,
 * or -1 with a message in err. */
int gov_cgroup_locate(const char *proc_cgroup, const char *mountinfo, const char *sysroot,
                      struct gov_cgroup_loc *out, char *err, size_t errlen);

/* Uses dir as the cgroup (--cgroup): v2 if it has memory.current, v1 if it
 * has memory.usage_in_bytes.  Returns 0 or -1 with a message. */
int gov_cgroup_locate_dir(const char *dir, struct gov_cgroup_loc *out, char *err, size_t errlen);

/* One reading of the memory source.  All byte figures are exact kernel
 * values; `limit` is the smallest limit found over the cgroup and its
 * ancestors (memory.max and memory.high on v2), 0 with has_limit false when
 * none is set. */
struct gov_cgroup_sample {
    uint64_t current;        /* memory.current / memory.usage_in_bytes */
    uint64_t inactive_file;  /* memory.stat inactive_file / total_inactive_file */
    uint64_t working_set;    /* current - inactive_file, as the kubelet computes it */
    uint64_t anon, file;     /* memory.stat anon/file (v1: total_rss/total_cache) */
    bool has_limit;
    uint64_t limit;
    char limit_file[PATH_MAX]; /* the file that holds the effective limit */
    uint64_t peak;           /* memory.peak / max_usage_in_bytes, 0 if unknown */
    uint64_t events_low, events_high, events_max, events_oom, oom_kills;
    bool has_psi;
    struct gov_psi psi;
    uint64_t host_memtotal;  /* MemTotal of /proc/meminfo */
    uint64_t host_available; /* MemAvailable, read only when has_limit is false;
                                0 if unknown */
};

struct gov_cgroup;

/* Opens the files of loc (and of its ancestors for the limit walk).  Never
 * fails for missing files -- the first sample reports them -- only for lack
 * of memory (returns NULL). */
struct gov_cgroup *gov_cgroup_open(const struct gov_cgroup_loc *loc);

/* Reads one sample.  Returns 0, or -1 with a one-line reason in err. */
int gov_cgroup_sample(struct gov_cgroup *cg, struct gov_cgroup_sample *s, char *err,
                      size_t errlen);

/* Path of memory.events (v2) or "" -- for the wake-up watch. */
const char *gov_cgroup_events_path(const struct gov_cgroup *cg);

/* Path of memory.pressure (v2) or "" -- for the PSI trigger. */
const char *gov_cgroup_pressure_path(const struct gov_cgroup *cg);

/* The location the handle was opened with. */
const struct gov_cgroup_loc *gov_cgroup_location(const struct gov_cgroup *cg);

void gov_cgroup_close(struct gov_cgroup *cg);

/* Reads MemTotal from a meminfo file (normally /proc/meminfo); 0 on error. */
uint64_t gov_read_memtotal(const char *meminfo_path);

/* Name of a version: "v1", "v2", "host". */
const char *gov_cg_version_name(enum gov_cg_version v);

#endif
