/* cgroup.c -- locate the own memory cgroup and sample it (see cgroup.h).
 *
 * Locating is done once at start-up and is allowed to be slow (it reads
 * /proc/self/cgroup and mountinfo).  libcgroup is not used: all it added was
 * the name of the first v1 memory mount, which is the first matching line of
 * mountinfo anyway, and its cgroup_init() cost about 0.8 MiB of resident
 * memory for tables governord never reads (bench/README.md, "Image").  Sampling runs on every tick and on every
 * admission request of the collector, so it only pread()s file descriptors
 * opened once, parses in place and never allocates.
 *
 * Traps handled here (see shared/notes/cgroups-and-kubernetes.md):
 *  - hybrid hosts: memory on v1 while a cgroup2 mount exists without it, so
 *    v2 is only taken when the own v2 cgroup really has memory.current;
 *  - limits on ancestors: on v2 the effective ceiling is the minimum of
 *    memory.max and memory.high over the cgroup and every ancestor up to the
 *    mount root; on v1 hierarchical_memory_limit already folds ancestors in;
 *  - "max" (v2) and 9223372036854771712 (v1) mean no limit, 0 is a limit;
 *  - working set = usage - inactive_file, as the kubelet computes it. */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

#define MAX_DEPTH 32
#define READ_BUF 16384

struct cg_file {
    char path[PATH_MAX];
    int fd;
    bool absent; /* did not exist when opened: optional file, never read */
};

struct level {
    struct cg_file max, high; /* v2 only */
};

struct gov_cgroup {
    struct gov_cgroup_loc loc;
    struct cg_file current, stat, events, pressure, peak; /* v2 */
    struct cg_file usage, limit, oom_control, max_usage;  /* v1 */
    struct cg_file meminfo;                               /* host */
    int nlevels;
    struct level levels[MAX_DEPTH];
    uint64_t memtotal;
};

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

static bool file_exists(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return false;
    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* Reads a whole small file into a malloc'd NUL-terminated buffer. */
static char *slurp(const char *path, size_t max)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ char *buf = NULL;
    size_t got = 0;
    char *ret;

    if (fd < 0)
        return NULL;
    buf = malloc(max + 1);
    if (!buf)
        return NULL;
    for (;;) {
        ssize_t n = read(fd, buf + got, max - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NULL;
        if (n == 0 || (got += (size_t)n) == max)
            break;
    }
    buf[got] = '\0';
    ret = buf;
    buf = NULL;
    return ret;
}

uint64_t gov_read_memtotal(const char *meminfo_path)
{
    _cleanup_free_ char *buf = slurp(meminfo_path, READ_BUF);
    uint64_t bytes = 0;
    if (!buf || gov_parse_meminfo(buf, "MemTotal", &bytes) != 1)
        return 0;
    return bytes;
}

/* ---- locating ------------------------------------------------------------ */

int gov_cgroup_locate(const char *proc_cgroup, const char *mountinfo, const char *sysroot,
                      struct gov_cgroup_loc *out, char *err, size_t errlen)
{
    _cleanup_free_ char *pc = slurp(proc_cgroup, 65536);
    _cleanup_fclose_ FILE *mi = NULL;
    struct gov_proc_cgroup entries[64];
    const char *v2_path = NULL, *v1_path = NULL;
    char why_not_v2[256] = "";
    _cleanup_free_ char *line = NULL;
    size_t cap = 0;
    int n;

    memset(out, 0, sizeof(*out));
    if (!pc) {
        snprintf(err, errlen, "cannot read %s: %s", proc_cgroup, strerror(errno));
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
        if (!file_exists(dir, "memory.current")) {
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
    /* then cgroup v1's memory hierarchy: the first mount of it where our
     * cgroup exists */
    rewind(mi);
    while (v1_path && getline(&line, &cap, mi) > 0) {
        struct gov_mountinfo m;
        char dir[PATH_MAX];
        if (gov_parse_mountinfo_line(line, &m) < 0 || strcmp(m.fstype, "cgroup") != 0 ||
            !gov_controller_listed(m.super_opts, "memory"))
            continue;
        if (gov_cgroup_dir_from_mount(sysroot, &m, v1_path, dir, sizeof(dir)) < 0)
            continue;
        if (!file_exists(dir, "memory.usage_in_bytes"))
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
    if (file_exists(dir, "memory.current"))
        out->version = GOV_CG_V2;
    else if (file_exists(dir, "memory.usage_in_bytes"))
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

/* ---- files ----------------------------------------------------------------- */

static void file_init(struct cg_file *f, const char *dir, const char *name, bool optional)
{
    f->fd = -1;
    f->absent = false;
    if ((size_t)snprintf(f->path, sizeof(f->path), "%s/%s", dir, name) >= sizeof(f->path)) {
        f->absent = true;
        return;
    }
    f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0 && optional && errno == ENOENT)
        f->absent = true;
}

static void file_close(struct cg_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* Reads the whole file into buf (NUL-terminated).  Returns the length, or -1
 * with err set.  Reopens by path after a failure or when the file was
 * unlinked (replaced), so a removed-and-recreated cgroup is picked up. */
static ssize_t file_read(struct cg_file *f, char *buf, size_t size, char *err, size_t errlen)
{
    struct stat st;
    ssize_t n;

    if (f->fd >= 0 && fstat(f->fd, &st) == 0 && st.st_nlink == 0)
        file_close(f);
    if (f->fd < 0) {
        f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (f->fd < 0) {
            snprintf(err, errlen, "%s: %s", f->path, strerror(errno));
            return -1;
        }
    }
    do
        n = pread(f->fd, buf, size - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        snprintf(err, errlen, "%s: %s", f->path, strerror(errno));
        file_close(f);
        return -1;
    }
    if ((size_t)n == size - 1) {
        snprintf(err, errlen, "%s: larger than %zu bytes", f->path, size - 1);
        return -1;
    }
    buf[n] = '\0';
    return n;
}

/* Reads a single-value file.  Returns 0 or -1 with err. */
static int read_value(struct cg_file *f, uint64_t *v, bool *unlimited, char *err, size_t errlen)
{
    char buf[128];
    ssize_t n = file_read(f, buf, sizeof(buf), err, errlen);
    if (n < 0)
        return -1;
    if (gov_parse_value(buf, v, unlimited) < 0) {
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(err, errlen, "%s: not a number or 'max': '%.40s'", f->path,
                 n ? buf : "(empty)");
        return -1;
    }
    return 0;
}

/* Looks up key in a keyed file's content; required keys must be present. */
static int keyed(const struct cg_file *f, const char *buf, const char *key, bool required,
                 uint64_t *v, char *err, size_t errlen)
{
    int r = gov_parse_keyed(buf, key, v);
    if (r < 0) {
        snprintf(err, errlen, "%s: malformed value for %s", f->path, key);
        return -1;
    }
    if (r == 0) {
        *v = 0;
        if (required) {
            snprintf(err, errlen, "%s: no %s", f->path, key);
            return -1;
        }
    }
    return 0;
}

struct gov_cgroup *gov_cgroup_open(const struct gov_cgroup_loc *loc)
{
    struct gov_cgroup *cg = calloc(1, sizeof(*cg));
    const char *d = loc->dir;
    char dir[PATH_MAX];

    if (!cg)
        return NULL;
    cg->loc = *loc;
    cg->memtotal = gov_read_memtotal("/proc/meminfo");
    /* every fd starts closed so that gov_cgroup_close() is always safe */
    struct cg_file *all[] = {&cg->current, &cg->stat,  &cg->events,      &cg->pressure,
                             &cg->peak,    &cg->usage, &cg->limit,       &cg->oom_control,
                             &cg->max_usage, &cg->meminfo};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
        all[i]->fd = -1;
        all[i]->absent = true;
    }

    switch (loc->version) {
    case GOV_CG_V2:
        file_init(&cg->current, d, "memory.current", false);
        file_init(&cg->stat, d, "memory.stat", false);
        file_init(&cg->events, d, "memory.events", true);
        file_init(&cg->pressure, d, "memory.pressure", true);
        file_init(&cg->peak, d, "memory.peak", true);
        /* the limit walk: own cgroup, then parents up to the mount root */
        gov_strlcpy(dir, d, sizeof(dir));
        for (;;) {
            struct level *l = &cg->levels[cg->nlevels];
            char *slash;
            file_init(&l->max, dir, "memory.max", cg->nlevels > 0);
            file_init(&l->high, dir, "memory.high", true);
            cg->nlevels++;
            if (cg->nlevels == MAX_DEPTH || (loc->root[0] && strcmp(dir, loc->root) == 0))
                break;
            slash = strrchr(dir, '/');
            if (!slash || slash == dir)
                break;
            *slash = '\0';
            if (loc->root[0] ? strncmp(dir, loc->root, strlen(loc->root)) != 0
                             : !file_exists(dir, "memory.max"))
                break;
        }
        break;
    case GOV_CG_V1:
        file_init(&cg->usage, d, "memory.usage_in_bytes", false);
        file_init(&cg->limit, d, "memory.limit_in_bytes", false);
        file_init(&cg->stat, d, "memory.stat", false);
        file_init(&cg->oom_control, d, "memory.oom_control", true);
        file_init(&cg->max_usage, d, "memory.max_usage_in_bytes", true);
        break;
    case GOV_CG_HOST:
        break;
    }
    /* MemAvailable bounds the fallback limit when no cgroup limit exists */
    file_init(&cg->meminfo, "/proc", "meminfo", loc->version != GOV_CG_HOST);
    return cg;
}

void gov_cgroup_close(struct gov_cgroup *cg)
{
    if (!cg)
        return;
    struct cg_file *all[] = {&cg->current, &cg->stat,  &cg->events,      &cg->pressure,
                             &cg->peak,    &cg->usage, &cg->limit,       &cg->oom_control,
                             &cg->max_usage, &cg->meminfo};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        file_close(all[i]);
    for (int i = 0; i < cg->nlevels; i++) {
        file_close(&cg->levels[i].max);
        file_close(&cg->levels[i].high);
    }
    free(cg);
}

const struct gov_cgroup_loc *gov_cgroup_location(const struct gov_cgroup *cg)
{
    return &cg->loc;
}

const char *gov_cgroup_events_path(const struct gov_cgroup *cg)
{
    return (cg->loc.version == GOV_CG_V2 && !cg->events.absent) ? cg->events.path : "";
}

const char *gov_cgroup_pressure_path(const struct gov_cgroup *cg)
{
    return (cg->loc.version == GOV_CG_V2 && !cg->pressure.absent) ? cg->pressure.path : "";
}

/* Lowers s->limit to v if v is a real limit below the current one. */
static void consider_limit(struct gov_cgroup_sample *s, uint64_t v, bool unlimited,
                           const char *file)
{
    if (unlimited || (s->has_limit && v >= s->limit))
        return;
    s->has_limit = true;
    s->limit = v;
    gov_strlcpy(s->limit_file, file, sizeof(s->limit_file));
}

static int sample_v2(struct gov_cgroup *cg, struct gov_cgroup_sample *s, char *buf, char *err,
                     size_t errlen)
{
    bool unl;
    uint64_t v;

    if (read_value(&cg->current, &s->current, &unl, err, errlen) < 0)
        return -1;
    if (unl) {
        snprintf(err, errlen, "%s: 'max' is not a usage", cg->current.path);
        return -1;
    }
    if (file_read(&cg->stat, buf, READ_BUF, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "inactive_file", true, &s->inactive_file, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "anon", false, &s->anon, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "file", false, &s->file, err, errlen) < 0)
        return -1;
    for (int i = 0; i < cg->nlevels; i++) {
        struct level *l = &cg->levels[i];
        if (!l->max.absent) {
            if (read_value(&l->max, &v, &unl, err, errlen) < 0)
                return -1;
            consider_limit(s, v, unl, l->max.path);
        }
        if (!l->high.absent) {
            if (read_value(&l->high, &v, &unl, err, errlen) < 0)
                return -1;
            consider_limit(s, v, unl, l->high.path);
        }
    }
    if (!cg->events.absent) {
        if (file_read(&cg->events, buf, READ_BUF, err, errlen) < 0 ||
            keyed(&cg->events, buf, "low", false, &s->events_low, err, errlen) < 0 ||
            keyed(&cg->events, buf, "high", false, &s->events_high, err, errlen) < 0 ||
            keyed(&cg->events, buf, "max", false, &s->events_max, err, errlen) < 0 ||
            keyed(&cg->events, buf, "oom", false, &s->events_oom, err, errlen) < 0 ||
            keyed(&cg->events, buf, "oom_kill", false, &s->oom_kills, err, errlen) < 0)
            return -1;
    }
    if (!cg->peak.absent) {
        if (read_value(&cg->peak, &s->peak, &unl, err, errlen) < 0)
            return -1;
    }
    if (!cg->pressure.absent) {
        /* PSI is informative: a kernel without it (or a garbled file) must
         * not stop the governor. */
        char perr[64];
        if (file_read(&cg->pressure, buf, READ_BUF, perr, sizeof(perr)) >= 0 &&
            gov_parse_psi(buf, &s->psi) == 0)
            s->has_psi = true;
    }
    return 0;
}

static int sample_v1(struct gov_cgroup *cg, struct gov_cgroup_sample *s, char *buf, char *err,
                     size_t errlen)
{
    bool unl;
    uint64_t v, hier = 0;

    if (read_value(&cg->usage, &s->current, &unl, err, errlen) < 0)
        return -1;
    if (unl) {
        snprintf(err, errlen, "%s: 'max' is not a usage", cg->usage.path);
        return -1;
    }
    if (read_value(&cg->limit, &v, &unl, err, errlen) < 0)
        return -1;
    consider_limit(s, v, unl, cg->limit.path);
    if (file_read(&cg->stat, buf, READ_BUF, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "total_inactive_file", true, &s->inactive_file, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "total_rss", false, &s->anon, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "total_cache", false, &s->file, err, errlen) < 0 ||
        keyed(&cg->stat, buf, "hierarchical_memory_limit", false, &hier, err, errlen) < 0)
        return -1;
    if (hier) {
        char where[PATH_MAX + 32];
        snprintf(where, sizeof(where), "%s:hierarchical_memory_limit", cg->stat.path);
        consider_limit(s, hier, hier >= GOV_UNLIMITED, where);
    }
    if (!cg->oom_control.absent) {
        if (file_read(&cg->oom_control, buf, READ_BUF, err, errlen) < 0 ||
            keyed(&cg->oom_control, buf, "oom_kill", false, &s->oom_kills, err, errlen) < 0)
            return -1;
    }
    if (!cg->max_usage.absent) {
        if (read_value(&cg->max_usage, &s->peak, &unl, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static int sample_host(struct gov_cgroup *cg, struct gov_cgroup_sample *s, char *buf, char *err,
                       size_t errlen)
{
    uint64_t total = 0, avail = 0;
    if (file_read(&cg->meminfo, buf, READ_BUF, err, errlen) < 0)
        return -1;
    if (gov_parse_meminfo(buf, "MemTotal", &total) != 1 ||
        gov_parse_meminfo(buf, "MemAvailable", &avail) != 1) {
        snprintf(err, errlen, "%s: no valid MemTotal/MemAvailable", cg->meminfo.path);
        return -1;
    }
    s->host_available = avail;
    s->current = total > avail ? total - avail : 0;
    s->inactive_file = 0;
    return 0;
}

int gov_cgroup_sample(struct gov_cgroup *cg, struct gov_cgroup_sample *s, char *err,
                      size_t errlen)
{
    char buf[READ_BUF];
    int r;

    memset(s, 0, sizeof(*s));
    s->host_memtotal = cg->memtotal;
    switch (cg->loc.version) {
    case GOV_CG_V2:
        r = sample_v2(cg, s, buf, err, errlen);
        break;
    case GOV_CG_V1:
        r = sample_v1(cg, s, buf, err, errlen);
        break;
    default:
        r = sample_host(cg, s, buf, err, errlen);
        break;
    }
    if (r < 0)
        return -1;
    s->working_set = s->current > s->inactive_file ? s->current - s->inactive_file : 0;
    if (!s->has_limit && cg->loc.version != GOV_CG_HOST && !cg->meminfo.absent) {
        /* informative: a failure leaves host_available at 0 (MemTotal rules) */
        char merr[64];
        if (file_read(&cg->meminfo, buf, READ_BUF, merr, sizeof(merr)) >= 0 &&
            gov_parse_meminfo(buf, "MemAvailable", &s->host_available) != 1)
            s->host_available = 0;
    }
    return 0;
}
