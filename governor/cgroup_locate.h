/* cgroup_locate.h -- where the process's memory figures come from.
 *
 * Discovery reads /proc/self/cgroup and /proc/self/mountinfo and picks, per
 * controller, cgroup v2 when the unified hierarchy carries the memory
 * controller for this process, else cgroup v1's memory hierarchy (its first
 * mount in mountinfo where this process's cgroup exists), else the host's /proc/meminfo
 * (no memory cgroup at all, e.g. the root cgroup of a v2 host).  A directory
 * given with --cgroup is used as the cgroup instead; its version is told by
 * the files present.  Sampling the location is cgroup.h's business. */
#ifndef GOVERNOR_CGROUP_LOCATE_H
#define GOVERNOR_CGROUP_LOCATE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "governor.h" /* enum gov_cg_version, struct gov_cgroup_loc */

/* Locates the memory cgroup of the calling process.  proc_cgroup and
 * mountinfo are file paths (normally /proc/self/...); sysroot is prefixed to
 * every mount point ("" normally, a fixture directory in tests).  Returns 0,
 * or -1 with a message in err. */
int gov_cgroup_locate(const char *proc_cgroup, const char *mountinfo, const char *sysroot,
                      struct gov_cgroup_loc *out, char *err, size_t errlen);

/* Uses dir as the cgroup (--cgroup): v2 if it has memory.current, v1 if it
 * has memory.usage_in_bytes.  Returns 0 or -1 with a message. */
int gov_cgroup_locate_dir(const char *dir, struct gov_cgroup_loc *out, char *err, size_t errlen);

/* Whether dir/name exists and is not a directory (it may still be unreadable:
 * the sample reports that). */
bool gov_cgroup_dir_has(const char *dir, const char *name);

#endif
