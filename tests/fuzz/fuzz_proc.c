/* fuzz_proc.c -- the discovery parsers: /proc/self/cgroup, mountinfo lines,
 * and the cgroup directory derived from a mount, which must never climb out
 * of the mount point (through ".." components of the cgroup path) or
 * overflow its buffer.  (The mount point itself comes from the kernel.) */
#include <stdio.h>
#include <string.h>

#include "cgroup_parse.h"
#include "fuzz.h"

/* True when the path below the mount point never goes above it. */
static bool stays_below(const char *rel)
{
    int depth = 0;
    while (*rel) {
        size_t len;
        while (*rel == '/')
            rel++;
        len = strcspn(rel, "/");
        if (len == 2 && rel[0] == '.' && rel[1] == '.')
            depth--;
        else if (len > 0 && !(len == 1 && rel[0] == '.'))
            depth++;
        if (depth < 0)
            return false;
        rel += len;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    static struct gov_proc_cgroup entries[16];
    static struct gov_mountinfo m;
    char dir[256];
    int n = gov_parse_proc_cgroup(s, entries, 16);

    if (n > 16)
        abort();
    for (char *line = s, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (gov_parse_mountinfo_line(line, &m) < 0)
            continue;
        (void)gov_controller_listed(m.super_opts, "memory");
        for (int i = 0; i < (n > 0 ? n : 0); i++) {
            char prefix[1100];
            size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "/sysroot%s", m.mount_point);
            if (gov_cgroup_dir_from_mount("/sysroot", &m, entries[i].path, dir, sizeof(dir)) == 0 &&
                (strncmp(dir, prefix, plen) != 0 || !stays_below(dir + plen)))
                abort();
        }
        (void)gov_cgroup_dir_from_mount("", &m, "/kubepods/pod1/ctr", dir, sizeof(dir));
    }
    free(s);
    return 0;
}
