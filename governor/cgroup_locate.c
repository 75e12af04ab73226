/* cgroup_locate.c -- find the memory cgroup to govern (see cgroup_locate.h).
 *
 * Locating runs once, in gov_new() before any thread starts, and is allowed
 * to be slow: it reads /proc/self/cgroup and /proc/self/mountinfo.  It only
 * decides where the figures come from; cgroup.c opens and samples them.
 *
 * Traps handled here (see shared/notes/cgroups-and-kubernetes.md):
 *  - hybrid hosts: memory on v1 while a cgroup2 mount exists without it, so
 *    v2 is only taken when the own v2 cgroup really has memory.current;
 *  - cgroup namespaces: the path in /proc/self/cgroup is relative to the
 *    mount's root, which mountinfo gives (cgroup_parse.c joins them);
 *  - cgroup v1: the first mount of the memory hierarchy where the own
 *    cgroup exists.  libcgroup is not used (README, "libcgroup"): all it
 *    gave was that mount's name, at the price of its cgroup_init() tables
 *    in every process (bench/README.md, "Image"). */
#include "cgroup_locate.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup_parse.h"
#include "util.h"

/* /proc/self/cgroup is a few lines; a larger file is not one */
#define PROC_CGROUP_MAX 65536

const char *gov_cg_version_name(enum gov_cg_version v)
{
    switch (v) {
    case GOV_CG_V1:
        return "v1";
    case GOV_CG_V2:
        return "v2";
    default:
        return "host";
    }
}

bool gov_cgroup_dir_has(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return false;
    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* ---- discovery ------------------------------------------------------------ */

int gov_cgroup_locate(const char *proc_cgroup, const char *mountinfo, const char *sysroot,
                      struct gov_cgroup_loc *out, char *err, size_t errlen)
{
    char rerr[PATH_MAX + 64];
    _cleanup_free_ char *pc = gov_read_file(proc_cgroup, PROC_CGROUP_MAX, NULL, rerr,
                                            sizeof(rerr));
    _cleanup_fclose_ FILE *mi = NULL;
    struct gov_proc_cgroup entries[64];
    const char *v2_path = NULL, *v1_path = NULL;
    char why_not_v2[256] = "";
    _cleanup_free_ char *line = NULL;
    size_t cap = 0;
    int n;

    memset(out, 0, sizeof(*out));
    if (!pc) {
        snprintf(err, errlen, "cannot read %s", rerr);
        return -1;
    }
    n = gov_parse_proc_cgroup(pc, entries, (int)ARRAY_SIZE(entries));
    if (n < 0) {
        snprintf(err, errlen, "%s: malformed line", proc_cgroup);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (entries[i].hierarchy == 0 && entries[i].controllers[0] == '\0')
            v2_path = entries[i].path;
        else if (gov_controller_listed(entries[i].controllers, "memory"))
            v1_path = entries[i].path;
    }

    mi = fopen(mountinfo, "re");
    if (!mi) {
        snprintf(err, errlen, "cannot read %s: %s", mountinfo, strerror(errno));
        return -1;
    }
    /* cgroup v2 first: the first cgroup2 mount where our cgroup has memory */
    while (v2_path && getline(&line, &cap, mi) > 0) {
        struct gov_mountinfo m;
        char dir[PATH_MAX];
        if (gov_parse_mountinfo_line(line, &m) < 0 || strcmp(m.fstype, "cgroup2") != 0)
            continue;
        if (gov_cgroup_dir_from_mount(sysroot, &m, v2_path, dir, sizeof(dir)) < 0)
            continue;
        if (!gov_cgroup_dir_has(dir, "memory.current")) {
            snprintf(why_not_v2, sizeof(why_not_v2),
                     "; cgroup2 at %s has no memory controller for this process", m.mount_point);
            continue;
        }
        out->version = GOV_CG_V2;
        gov_strlcpy(out->dir, dir, sizeof(out->dir));
        snprintf(out->root, sizeof(out->root), "%s%s", sysroot ? sysroot : "", m.mount_point);
        snprintf(out->how, sizeof(out->how), "discovered: cgroup2 mounted at %s",
                 m.mount_point);
        return 0;
    }
    /* then cgroup v1's memory hierarchy: its first mount where our cgroup
     * exists */
    rewind(mi);
    while (v1_path && getline(&line, &cap, mi) > 0) {
        struct gov_mountinfo m;
        char dir[PATH_MAX];
        if (gov_parse_mountinfo_line(line, &m) < 0 || strcmp(m.fstype, "cgroup") != 0 ||
            !gov_controller_listed(m.super_opts, "memory"))
            continue;
        if (gov_cgroup_dir_from_mount(sysroot, &m, v1_path, dir, sizeof(dir)) < 0)
            continue;
        if (!gov_cgroup_dir_has(dir, "memory.usage_in_bytes"))
            continue;
        out->version = GOV_CG_V1;
        gov_strlcpy(out->dir, dir, sizeof(out->dir));
        snprintf(out->root, sizeof(out->root), "%s%s", sysroot ? sysroot : "", m.mount_point);
        snprintf(out->how, sizeof(out->how), "discovered: cgroup v1 memory at %s",
                 m.mount_point);
        return 0;
    }
    out->version = GOV_CG_HOST;
    snprintf(out->how, sizeof(out->how), "no memory cgroup found%s; using /proc/meminfo",
             why_not_v2);
    return 0;
}

int gov_cgroup_locate_dir(const char *dir, struct gov_cgroup_loc *out, char *err, size_t errlen)
{
    struct stat st;
    memset(out, 0, sizeof(*out));
    if (stat(dir, &st) < 0) {
        snprintf(err, errlen, "--cgroup %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--cgroup %s: not a directory", dir);
        return -1;
    }
    if (gov_cgroup_dir_has(dir, "memory.current"))
        out->version = GOV_CG_V2;
    else if (gov_cgroup_dir_has(dir, "memory.usage_in_bytes"))
        out->version = GOV_CG_V1;
    else {
        snprintf(err, errlen,
                 "--cgroup %s: neither memory.current (v2) nor memory.usage_in_bytes (v1) found",
                 dir);
        return -1;
    }
    if (!realpath(dir, out->dir)) {
        snprintf(err, errlen, "--cgroup %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(out->how, sizeof(out->how), "--cgroup %s", dir);
    return 0;
}
