/* cgroup_parse.c -- pure parsers for cgroupfs and /proc formats.
 *
 * The formats are those of Documentation/admin-guide/cgroup-v2.rst,
 * cgroup-v1/memory.rst, filesystems/proc.rst and accounting/psi.rst.  Each
 * parser is strict: a value must be all digits (a leading '-' is an error,
 * not a huge number), and a line that names the wanted key but carries no
 * valid number is reported as malformed rather than skipped. */
#include "cgroup_parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Parses the decimal digits at *p into *out, advancing *p.  Returns false on
 * no digits or overflow. */
static bool take_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static bool at_eol(const char *p)
{
    p = skip_blanks(p);
    return *p == '\0' || *p == '\n';
}

int gov_parse_value(const char *buf, uint64_t *value, bool *unlimited)
{
    const char *p = skip_blanks(buf);
    uint64_t v;

    if (strncmp(p, "max", 3) == 0 && at_eol(p + 3)) {
        *value = UINT64_MAX;
        *unlimited = true;
        return 0;
    }
    if (!take_u64(&p, &v) || !at_eol(p))
        return -1;
    /* nothing may follow the first line */
    p = skip_blanks(p);
    if (*p == '\n' && p[1] != '\0')
        return -1;
    *value = v;
    *unlimited = v >= GOV_UNLIMITED;
    return 0;
}

/* Finds the line that starts with key followed by one of the characters in
 * seps and returns where its value starts (blanks skipped), or NULL. */
static const char *find_key(const char *buf, const char *key, const char *seps)
{
    size_t klen = strlen(key);
    for (const char *p = buf; *p;) {
        const char *eol = strchr(p, '\n');
        if (strncmp(p, key, klen) == 0 && p[klen] && strchr(seps, p[klen]))
            return skip_blanks(p + klen + 1);
        if (!eol)
            break;
        p = eol + 1;
    }
    return NULL;
}

int gov_parse_keyed(const char *buf, const char *key, uint64_t *value)
{
    const char *v = find_key(buf, key, " \t");
    uint64_t n;
    if (!v)
        return 0;
    if (!take_u64(&v, &n) || !at_eol(v))
        return -1;
    *value = n;
    return 1;
}

int gov_parse_meminfo(const char *buf, const char *key, uint64_t *bytes)
{
    const char *v = find_key(buf, key, ":");
    uint64_t n;
    if (!v)
        return 0;
    if (!take_u64(&v, &n))
        return -1;
    v = skip_blanks(v);
    if (strncmp(v, "kB", 2) == 0) {
        if (n > UINT64_MAX / 1024)
            return -1;
        n *= 1024;
        v += 2;
    }
    if (!at_eol(v))
        return -1;
    *bytes = n;
    return 1;
}

/* Parses "avg10=X avg60=Y avg300=Z total=T" after the "some"/"full" word. */
static int parse_psi_line(const char *p, double *avg10, double *avg60, uint64_t *total)
{
    bool have10 = false, have60 = false, havetotal = false;
    while (!at_eol(p)) {
        char *end;
        p = skip_blanks(p);
        if (strncmp(p, "avg10=", 6) == 0 || strncmp(p, "avg60=", 6) == 0 ||
            strncmp(p, "avg300=", 7) == 0) {
            bool is10 = p[3] == '1', is60 = p[3] == '6';
            const char *num = strchr(p, '=') + 1;
            double d;
            if (*num < '0' || *num > '9')
                return -1;
            errno = 0;
            d = strtod(num, &end);
            if (errno || end == num || d < 0 || d > 100.0)
                return -1;
            if (is10) {
                *avg10 = d;
                have10 = true;
            } else if (is60) {
                *avg60 = d;
                have60 = true;
            }
            p = end;
        } else if (strncmp(p, "total=", 6) == 0) {
            p += 6;
            if (!take_u64(&p, total))
                return -1;
            havetotal = true;
        } else {
            return -1;
        }
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\0')
            return -1;
    }
    return (have10 && have60 && havetotal) ? 0 : -1;
}

int gov_parse_psi(const char *buf, struct gov_psi *psi)
{
    const char *p = buf;
    bool some = false;

    memset(psi, 0, sizeof(*psi));
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (strncmp(p, "some ", 5) == 0) {
            if (parse_psi_line(p + 5, &psi->some_avg10, &psi->some_avg60, &psi->some_total) < 0)
                return -1;
            some = true;
        } else if (strncmp(p, "full ", 5) == 0) {
            if (parse_psi_line(p + 5, &psi->full_avg10, &psi->full_avg60, &psi->full_total) < 0)
                return -1;
        } else if (!at_eol(p)) {
            return -1;
        }
        if (!eol)
            break;
        p = eol + 1;
    }
    return some ? 0 : -1;
}

int gov_parse_proc_cgroup(const char *buf, struct gov_proc_cgroup *out, int max)
{
    const char *p = buf;
    int n = 0;

    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *c1, *c2;
        uint64_t id;
        const char *q = p;

        if (len == 0) {
            if (!eol)
                break;
            p = eol + 1;
            continue;
        }
        c1 = memchr(p, ':', len);
        c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - p)) : NULL;
        if (!c1 || !c2 || !take_u64(&q, &id) || q != c1 || id > 1000000)
            return -1;
        if (n < max) {
            struct gov_proc_cgroup *e = &out[n];
            size_t clen = (size_t)(c2 - c1 - 1), plen = len - (size_t)(c2 + 1 - p);
            if (clen >= sizeof(e->controllers) || plen >= sizeof(e->path) || plen == 0 ||
                c2[1] != '/')
                return -1;
            e->hierarchy = (int)id;
            memcpy(e->controllers, c1 + 1, clen);
            e->controllers[clen] = '\0';
            memcpy(e->path, c2 + 1, plen);
            e->path[plen] = '\0';
            n++;
        }
        if (!eol)
            break;
        p = eol + 1;
    }
    return n;
}

bool gov_controller_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

/* Copies one space-separated mountinfo field, decoding \ooo escapes.  Returns
 * a pointer after the field, or NULL if it is missing or does not fit. */
static const char *take_field(const char *p, char *out, size_t len)
{
    size_t n = 0;
    p = skip_blanks(p);
    if (*p == '\0' || *p == '\n')
        return NULL;
    while (*p && *p != ' ' && *p != '\n') {
        char c = *p++;
        if (c == '\\' && p[0] >= '0' && p[0] <= '3' && p[1] >= '0' && p[1] <= '7' &&
            p[2] >= '0' && p[2] <= '7') {
            c = (char)(((p[0] - '0') << 6) | ((p[1] - '0') << 3) | (p[2] - '0'));
            p += 3;
        }
        if (n + 1 >= len)
            return NULL;
        out[n++] = c;
    }
    out[n] = '\0';
    return p;
}

int gov_parse_mountinfo_line(const char *line, struct gov_mountinfo *out)
{
    char scratch[1024];
    const char *p = line;

    /* 1 mount id, 2 parent id, 3 major:minor */
    for (int i = 0; i < 3; i++)
        if (!(p = take_field(p, scratch, sizeof(scratch))))
            return -1;
    if (!(p = take_field(p, out->root, sizeof(out->root))))
        return -1;
    if (!(p = take_field(p, out->mount_point, sizeof(out->mount_point))))
        return -1;
    /* mount options, then optional fields up to the " - " separator */
    for (;;) {
        if (!(p = take_field(p, scratch, sizeof(scratch))))
            return -1;
        if (strcmp(scratch, "-") == 0)
            break;
    }
    if (!(p = take_field(p, out->fstype, sizeof(out->fstype))))
        return -1;
    if (!(p = take_field(p, scratch, sizeof(scratch)))) /* source */
        return -1;
    if (!take_field(p, out->super_opts, sizeof(out->super_opts)))
        return -1;
    return 0;
}

int gov_cgroup_dir_from_mount(const char *sysroot, const struct gov_mountinfo *m,
                              const char *cg_path, char *out, size_t len)
{
    size_t rlen = strlen(m->root);
    const char *rel;
    int n;

    if (strcmp(m->root, "/") == 0) {
        rel = cg_path;
    } else {
        if (strncmp(cg_path, m->root, rlen) != 0 || (cg_path[rlen] != '/' && cg_path[rlen]))
            return -1;
        rel = cg_path + rlen;
    }
    if (strcmp(rel, "/") == 0)
        rel = "";
    /* no ".." component may lead out of the mount ("//.." included) */
    for (const char *c = rel; *c;) {
        size_t clen;
        while (*c == '/')
            c++;
        clen = strcspn(c, "/");
        if (clen == 2 && c[0] == '.' && c[1] == '.')
            return -1;
        c += clen;
    }
    n = snprintf(out, len, "%s%s%s", sysroot ? sysroot : "", m->mount_point, rel);
    if (n < 0 || (size_t)n >= len)
        return -1;
    return 0;
}
