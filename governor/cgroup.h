/* cgroup.h -- sample the memory cgroup that cgroup_locate.h found.
 *
 * Sampling keeps every file open and reads it with pread(), so a tick costs a
 * handful of syscalls.  A file that fails (cgroup removed, file replaced,
 * garbage, a FIFO or anything else that is not a regular file) makes the
 * sample fail with the file's name and reason; the file is reopened by path
 * on the next sample, so the governor recovers by itself when the files come
 * back.  The cgroup's directory is held open too: when the path names
 * another directory than the held one (the cgroup was replaced, e.g. renamed
 * away and created anew), every file is reopened in the new one, and the
 * owner hears of it (gov_cgroup_take_replaced) to move its memory.events
 * watch. */
#ifndef GOVERNOR_CGROUP_H
#define GOVERNOR_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup_locate.h"
#include "cgroup_parse.h"
#include "governor.h" /* struct gov_cgroup_sample */

struct gov_cgroup;

/* Opens the files of loc (and of its ancestors for the limit walk).  Never
 * fails for missing files -- the first sample reports them -- only for lack
 * of memory (returns NULL). */
struct gov_cgroup *gov_cgroup_open(const struct gov_cgroup_loc *loc);

/* Reads one sample.  Returns 0, or -1 with a one-line reason in err. */
int gov_cgroup_sample(struct gov_cgroup *cg, struct gov_cgroup_sample *s, char *err,
                      size_t errlen);

/* True once after a sample found the cgroup's directory replaced (the path
 * now names another directory than the one held) and reopened every file
 * there; the caller then moves its memory.events watch to the new
 * directory.  Clears the flag. */
bool gov_cgroup_take_replaced(struct gov_cgroup *cg);

/* Path of memory.events (v2) or "" -- for the wake-up watch. */
const char *gov_cgroup_events_path(const struct gov_cgroup *cg);

/* Path of memory.pressure (v2) or "" -- for the PSI trigger. */
const char *gov_cgroup_pressure_path(const struct gov_cgroup *cg);

void gov_cgroup_close(struct gov_cgroup *cg);

#endif
