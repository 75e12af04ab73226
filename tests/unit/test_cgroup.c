/* test_cgroup.c -- cgroupfs and /proc parsers, discovery against fixture
 * trees in the kernel's exact formats (tests/fixtures/cgroup, made by
 * tests/fixtures/make-cgroup-fixtures.py), the bounded file read, and
 * sampling, including files that are garbage, vanish, come back, are
 * replaced or are FIFOs, and a cgroup directory that is replaced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "cgroup_parse.h"
#include "util.h"

#define MIB (UINT64_C(1) << 20)

/* ---- parsers ------------------------------------------------------------- */

static void value_files(void **state)
{
    uint64_t v;
    bool unl;
    (void)state;
    assert_int_equal(gov_parse_value("max\n", &v, &unl), 0);
    assert_true(unl);
    assert_int_equal(gov_parse_value("0\n", &v, &unl), 0);
    assert_false(unl);
    assert_int_equal(v, 0);
    assert_int_equal(gov_parse_value("536870912\n", &v, &unl), 0);
    assert_int_equal(v, 512 * MIB);
    assert_false(unl);
    assert_int_equal(gov_parse_value("9223372036854771712\n", &v, &unl), 0); /* v1 "none" */
    assert_true(unl);
    assert_int_equal(gov_parse_value("42", &v, &unl), 0); /* no newline */
    assert_int_equal(v, 42);
    static const char *bad[] = {"", "\n", "-1\n", "abc\n", "12 34\n", "12abc\n",
                                "18446744073709551616\n", "max max\n", "maximum\n",
                                "1\n2\n", "0x10\n", "+5\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gov_parse_value(bad[i], &v, &unl) == 0)
            print_error("accepted '%s'\n", bad[i]);
        assert_int_equal(gov_parse_value(bad[i], &v, &unl), -1);
    }
}

static void keyed_files(void **state)
{
    const char *events = "low 0\nhigh 17\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n";
    uint64_t v = 99;
    (void)state;
    assert_int_equal(gov_parse_keyed(events, "high", &v), 1);
    assert_int_equal(v, 17);
    assert_int_equal(gov_parse_keyed(events, "oom", &v), 1); /* not oom_kill */
    assert_int_equal(v, 1);
    assert_int_equal(gov_parse_keyed(events, "oom_kill", &v), 1);
    assert_int_equal(v, 1);
    assert_int_equal(gov_parse_keyed(events, "swap", &v), 0);
    assert_int_equal(gov_parse_keyed("file 10\nfile_mapped 5\n", "file_mapped", &v), 1);
    assert_int_equal(v, 5);
    assert_int_equal(gov_parse_keyed("inactive_file -5\n", "inactive_file", &v), -1);
    assert_int_equal(gov_parse_keyed("inactive_file\n", "inactive_file", &v), 0);
    assert_int_equal(gov_parse_keyed("inactive_file x\n", "inactive_file", &v), -1);
    assert_int_equal(gov_parse_keyed("inactive_file 99999999999999999999\n", "inactive_file", &v),
                     -1);
    assert_int_equal(gov_parse_keyed("", "high", &v), 0);
    assert_int_equal(gov_parse_meminfo("MemTotal:       24576000 kB\nMemFree: 1 kB\n", "MemTotal",
                                       &v), 1);
    assert_int_equal(v, 24576000ull * 1024);
    assert_int_equal(gov_parse_meminfo("MemTotal: lots kB\n", "MemTotal", &v), -1);
    assert_int_equal(gov_parse_meminfo("MemFree: 1 kB\n", "MemTotal", &v), 0);
}

static void pressure_files(void **state)
{
    struct gov_psi psi;
    (void)state;
    assert_int_equal(gov_parse_psi("some avg10=1.53 avg60=0.87 avg300=0.20 total=1234567\n"
                                   "full avg10=0.50 avg60=0.25 avg300=0.05 total=456789\n",
                                   &psi), 0);
    assert_true(psi.some_avg10 > 1.52 && psi.some_avg10 < 1.54);
    assert_true(psi.full_avg60 > 0.24 && psi.full_avg60 < 0.26);
    assert_int_equal(psi.some_total, 1234567);
    assert_int_equal(psi.full_total, 456789);
    /* "full" is optional (the system-wide CPU file has none) */
    assert_int_equal(gov_parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &psi), 0);
    assert_int_equal(gov_parse_psi("", &psi), -1);
    assert_int_equal(gov_parse_psi("some avg10=x avg60=0.00 avg300=0.00 total=0\n", &psi), -1);
    assert_int_equal(gov_parse_psi("some avg10=0.00 total=0\n", &psi), -1);
    assert_int_equal(gov_parse_psi("some avg10=101.0 avg60=0 avg300=0 total=0\n", &psi), -1);
    assert_int_equal(gov_parse_psi("other avg10=0 avg60=0 avg300=0 total=0\n", &psi), -1);
}

static void proc_self_cgroup(void **state)
{
    struct gov_proc_cgroup e[8];
    (void)state;
    assert_int_equal(gov_parse_proc_cgroup("0::/\n", e, 8), 1);
    assert_int_equal(e[0].hierarchy, 0);
    assert_string_equal(e[0].controllers, "");
    assert_string_equal(e[0].path, "/");
    assert_int_equal(gov_parse_proc_cgroup("12:pids:/a\n4:memory:/docker/x y\n"
                                           "1:name=systemd:/\n0::/user.slice\n", e, 8), 4);
    assert_string_equal(e[1].controllers, "memory");
    assert_string_equal(e[1].path, "/docker/x y");
    assert_string_equal(e[3].path, "/user.slice");
    assert_true(gov_controller_listed("cpu,cpuacct", "cpuacct"));
    assert_false(gov_controller_listed("cpu,cpuacct", "cpu,"));
    assert_false(gov_controller_listed("memoryx", "memory"));
    assert_true(gov_controller_listed("rw,memory", "memory"));
    assert_int_equal(gov_parse_proc_cgroup("garbage\n", e, 8), -1);
    assert_int_equal(gov_parse_proc_cgroup("x::/\n", e, 8), -1);
    assert_int_equal(gov_parse_proc_cgroup("0::relative\n", e, 8), -1);
    assert_int_equal(gov_parse_proc_cgroup("0::\n", e, 8), -1);
}

static void mountinfo_lines(void **state)
{
    struct gov_mountinfo m;
    (void)state;
    assert_int_equal(gov_parse_mountinfo_line(
                         "31 23 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 "
                         "rw,nsdelegate\n", &m), 0);
    assert_string_equal(m.root, "/");
    assert_string_equal(m.mount_point, "/sys/fs/cgroup");
    assert_string_equal(m.fstype, "cgroup2");
    assert_string_equal(m.super_opts, "rw,nsdelegate");
    /* no optional fields, an escaped space in the mount point */
    assert_int_equal(gov_parse_mountinfo_line(
                         "35 31 0:32 /docker/abc /mnt/my\\040cgroups rw - cgroup cgroup rw,memory",
                         &m), 0);
    assert_string_equal(m.root, "/docker/abc");
    assert_string_equal(m.mount_point, "/mnt/my cgroups");
    assert_string_equal(m.super_opts, "rw,memory");
    assert_int_equal(gov_parse_mountinfo_line("31 23 0:26 / /sys rw shared:9\n", &m), -1);
    assert_int_equal(gov_parse_mountinfo_line("", &m), -1);
    assert_int_equal(gov_parse_mountinfo_line("31 23 0:26 / /x rw - cgroup2\n", &m), -1);
}

static void cgroup_dir_from_mount(void **state)
{
    struct gov_mountinfo m = {.root = "/", .mount_point = "/sys/fs/cgroup"};
    char out[PATH_MAX];
    (void)state;
    assert_int_equal(gov_cgroup_dir_from_mount("", &m, "/", out, sizeof(out)), 0);
    assert_string_equal(out, "/sys/fs/cgroup");
    assert_int_equal(gov_cgroup_dir_from_mount("/fx", &m, "/a/b", out, sizeof(out)), 0);
    assert_string_equal(out, "/fx/sys/fs/cgroup/a/b");
    strcpy(m.root, "/docker/abc");
    assert_int_equal(gov_cgroup_dir_from_mount("", &m, "/docker/abc", out, sizeof(out)), 0);
    assert_string_equal(out, "/sys/fs/cgroup");
    assert_int_equal(gov_cgroup_dir_from_mount("", &m, "/docker/abc/sub", out, sizeof(out)), 0);
    assert_string_equal(out, "/sys/fs/cgroup/sub");
    /* outside the mount: not visible here */
    assert_int_equal(gov_cgroup_dir_from_mount("", &m, "/docker/abcdef", out, sizeof(out)), -1);
    assert_int_equal(gov_cgroup_dir_from_mount("", &m, "/other", out, sizeof(out)), -1);
    strcpy(m.root, "/");
    assert_int_equal(gov_cgroup_dir_from_mount("", &m, "/../escape", out, sizeof(out)), -1);
    /* found by fuzz_proc: "//.." climbed out of the mount */
    assert_int_equal(gov_cgroup_dir_from_mount("", &m, "//..", out, sizeof(out)), -1);
    assert_int_equal(gov_cgroup_dir_from_mount("", &m, "/a/b/..", out, sizeof(out)), -1);
    assert_int_equal(gov_cgroup_dir_from_mount("", &m, "/a/..b/c.", out, sizeof(out)), 0);
    assert_string_equal(out, "/sys/fs/cgroup/a/..b/c.");
}

/* ---- discovery and sampling on fixture trees -------------------------------- */

struct located {
    struct gov_cgroup_loc loc;
    struct gov_cgroup_sample s;
    char err[512];
    int sample_rc;
};

static void locate_and_sample(const char *tree, struct located *out)
{
    char pc[PATH_MAX], mi[PATH_MAX], root[PATH_MAX];
    struct gov_cgroup *cg;
    snprintf(root, sizeof(root), "%s/cgroup/%s", FIXTURES, tree);
    snprintf(pc, sizeof(pc), "%s/proc/self/cgroup", root);
    snprintf(mi, sizeof(mi), "%s/proc/self/mountinfo", root);
    memset(out, 0, sizeof(*out));
    assert_int_equal(gov_cgroup_locate(pc, mi, root, &out->loc, out->err, sizeof(out->err)), 0);
    cg = gov_cgroup_open(&out->loc);
    assert_non_null(cg);
    out->sample_rc = gov_cgroup_sample(cg, &out->s, out->err, sizeof(out->err));
    gov_cgroup_close(cg);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void v2_in_a_cgroup_namespace(void **state)
{
    struct located r;
    (void)state;
    locate_and_sample("v2-ns", &r);
    assert_int_equal(r.loc.version, GOV_CG_V2);
    assert_true(ends_with(r.loc.dir, "/v2-ns/sys/fs/cgroup"));
    assert_int_equal(r.sample_rc, 0);
    assert_int_equal(r.s.current, 300 * MIB);
    assert_int_equal(r.s.inactive_file, 8 * MIB);
    assert_int_equal(r.s.working_set, 292 * MIB);
    assert_true(r.s.has_limit);
    assert_int_equal(r.s.limit, 512 * MIB);
    assert_true(ends_with(r.s.limit_file, "/v2-ns/sys/fs/cgroup/memory.max"));
    assert_int_equal(r.s.events_high, 3);
    assert_int_equal(r.s.events_max, 1);
    assert_int_equal(r.s.oom_kills, 0);
    assert_int_equal(r.s.peak, 316 * MIB);
    assert_true(r.s.has_psi);
    assert_true(r.s.psi.some_avg10 > 1.5);
}

static void v2_nested_with_smaller_parent_limit(void **state)
{
    struct located r;
    (void)state;
    locate_and_sample("v2-nested", &r);
    assert_int_equal(r.loc.version, GOV_CG_V2);
    assert_true(ends_with(r.loc.dir, "/sys/fs/cgroup/kubepods.slice/pod1/ctr"));
    assert_int_equal(r.sample_rc, 0);
    assert_int_equal(r.s.current, 180 * MIB);
    assert_int_equal(r.s.limit, 256 * MIB);
    assert_true(ends_with(r.s.limit_file, "/kubepods.slice/pod1/memory.max"));
}

static void v2_max_everywhere(void **state)
{
    struct located r;
    (void)state;
    locate_and_sample("v2-max", &r);
    assert_int_equal(r.sample_rc, 0);
    assert_false(r.s.has_limit);
    assert_true(r.s.host_memtotal > 0); /* the fallback is there */
}

static void v2_memory_high_below_max(void **state)
{
    struct located r;
    (void)state;
    locate_and_sample("v2-high", &r);
    assert_int_equal(r.sample_rc, 0);
    assert_int_equal(r.s.limit, 384 * MIB);
    assert_true(ends_with(r.s.limit_file, "/memory.high"));
}

static void v2_zero_is_a_limit(void **state)
{
    struct located r;
    (void)state;
    locate_and_sample("v2-zero", &r);
    assert_int_equal(r.sample_rc, 0);
    assert_true(r.s.has_limit);
    assert_int_equal(r.s.limit, 0);
}

static void v1_from_the_host(void **state)
{
    struct located r;
    (void)state;
    locate_and_sample("v1", &r);
    assert_int_equal(r.loc.version, GOV_CG_V1);
    assert_true(ends_with(r.loc.dir, "/sys/fs/cgroup/memory/docker/abc123"));
    assert_int_equal(r.sample_rc, 0);
    assert_int_equal(r.s.current, 300 * MIB);
    assert_int_equal(r.s.working_set, 288 * MIB);
    /* limit_in_bytes is "unlimited": the hierarchical limit is the ceiling */
    assert_int_equal(r.s.limit, 512 * MIB);
    assert_true(ends_with(r.s.limit_file, "memory.stat:hierarchical_memory_limit"));
    assert_int_equal(r.s.oom_kills, 2);
    assert_int_equal(r.s.peak, 350 * MIB);
    assert_false(r.s.has_psi);
}

static void v1_inside_a_container(void **state)
{
    struct located r;
    (void)state;
    locate_and_sample("v1-container", &r);
    assert_int_equal(r.loc.version, GOV_CG_V1);
    assert_true(ends_with(r.loc.dir, "/v1-container/sys/fs/cgroup/memory"));
    assert_int_equal(r.sample_rc, 0);
    assert_int_equal(r.s.limit, 256 * MIB);
    assert_true(ends_with(r.s.limit_file, "memory.limit_in_bytes"));
}

static void hybrid_host_picks_v1(void **state)
{
    struct located r;
    (void)state;
    locate_and_sample("hybrid", &r);
    assert_int_equal(r.loc.version, GOV_CG_V1);
    assert_true(ends_with(r.loc.dir, "/sys/fs/cgroup/memory/user.slice"));
    assert_int_equal(r.sample_rc, 0);
    assert_int_equal(r.s.limit, 768 * MIB); /* hierarchical 768Mi < own 1Gi */
}

static void no_memory_cgroup_uses_meminfo(void **state)
{
    struct located r;
    (void)state;
    locate_and_sample("none", &r);
    assert_int_equal(r.loc.version, GOV_CG_HOST);
    assert_non_null(strstr(r.loc.how, "no memory cgroup found"));
    assert_int_equal(r.sample_rc, 0);
    assert_false(r.s.has_limit);
    assert_true(r.s.current > 0 && r.s.current < r.s.host_memtotal);
}

static void locate_rejects_unreadable_proc(void **state)
{
    struct gov_cgroup_loc loc;
    char err[256];
    (void)state;
    assert_int_equal(gov_cgroup_locate("/nonexistent/cgroup", "/proc/self/mountinfo", "", &loc,
                                       err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/cgroup"));
}

/* ---- --cgroup DIR, and files going bad at run time ---------------------------- */

static char tmpdir[64];

static void write_file(const char *name, const char *content)
{
    char path[PATH_MAX];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* Replaces a file the way tests and editors do: write elsewhere, rename. */
static void replace_file(const char *name, const char *content)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", tmpdir, name);
    f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

static int setup_dir(void **state)
{
    char cmd[PATH_MAX + 128];
    (void)state;
    strcpy(tmpdir, "/tmp/test_cgroup.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(cmd, sizeof(cmd), "cp -r %s/cgroup/v2-ns/sys/fs/cgroup/. %s/", FIXTURES, tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown_dir(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void cgroup_dir_detects_version(void **state)
{
    struct gov_cgroup_loc loc;
    char err[512], path[PATH_MAX];
    (void)state;
    assert_int_equal(gov_cgroup_locate_dir(tmpdir, &loc, err, sizeof(err)), 0);
    assert_int_equal(loc.version, GOV_CG_V2);
    snprintf(path, sizeof(path), "%s/cgroup/v1-container/sys/fs/cgroup/memory", FIXTURES);
    assert_int_equal(gov_cgroup_locate_dir(path, &loc, err, sizeof(err)), 0);
    assert_int_equal(loc.version, GOV_CG_V1);
    assert_int_equal(gov_cgroup_locate_dir("/tmp", &loc, err, sizeof(err)), -1);
    assert_string_equal(err, "--cgroup /tmp: neither memory.current (v2) nor "
                             "memory.usage_in_bytes (v1) found");
    snprintf(path, sizeof(path), "%s/memory.current", tmpdir);
    assert_int_equal(gov_cgroup_locate_dir(path, &loc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a directory"));
    assert_int_equal(gov_cgroup_locate_dir("/nonexistent", &loc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file or directory"));
}

static void sampling_survives_bad_files(void **state)
{
    struct gov_cgroup_loc loc;
    struct gov_cgroup *cg;
    struct gov_cgroup_sample s;
    char err[512], path[PATH_MAX];
    (void)state;
    assert_int_equal(gov_cgroup_locate_dir(tmpdir, &loc, err, sizeof(err)), 0);
    cg = gov_cgroup_open(&loc);
    assert_non_null(cg);
    assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), 0);
    assert_int_equal(s.current, 300 * MIB);

    static const struct { const char *file, *content, *error; } bad[] = {
        {"memory.current", "garbage\n", "memory.current: not a number or 'max': 'garbage'"},
        {"memory.current", "", "memory.current: not a number or 'max': '(empty)'"},
        {"memory.current", "-5\n", "memory.current: not a number or 'max': '-5'"},
        {"memory.current", "99999999999999999999999\n", "memory.current: not a number or 'max'"},
        {"memory.current", "max\n", "memory.current: 'max' is not a usage"},
        {"memory.current", "3145", "memory.current"}, /* fine: no newline is accepted */
        {"memory.max", "lots\n", "memory.max: not a number or 'max': 'lots'"},
        {"memory.stat", "anon 5\nfile 7\n", "memory.stat: no inactive_file"},
        {"memory.stat", "anon 5\ninactive_file -1\n", "memory.stat: malformed value for inactive_file"},
        {"memory.events", "low 0\nhigh x\n", "memory.events: malformed value for high"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char good[4096];
        FILE *f;
        size_t n;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, bad[i].file);
        f = fopen(path, "r");
        assert_non_null(f);
        n = fread(good, 1, sizeof(good) - 1, f);
        good[n] = '\0';
        fclose(f);

        write_file(bad[i].file, bad[i].content); /* in place, as a kernel would change it */
        int rc = gov_cgroup_sample(cg, &s, err, sizeof(err));
        if (i == 5) {
            assert_int_equal(rc, 0);
            assert_int_equal(s.current, 3145);
        } else {
            if (rc == 0 || !strstr(err, bad[i].error))
                print_error("case %zu: rc %d err '%s'\n", i, rc, err);
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, bad[i].error));
        }
        write_file(bad[i].file, good); /* back: the next sample recovers */
        assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), 0);
    }

    /* a file that vanishes (cgroup removed) is reported and picked up again */
    snprintf(path, sizeof(path), "%s/memory.current", tmpdir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "memory.current: No such file or directory"));
    write_file("memory.current", "1048576\n");
    assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), 0);
    assert_int_equal(s.current, 1048576);

    /* a file replaced by rename is followed (not the old, unlinked inode) */
    replace_file("memory.max", "268435456\n");
    assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), 0);
    assert_int_equal(s.limit, 256 * MIB);
    replace_file("memory.max", "max\n");
    assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), 0);
    assert_false(s.has_limit);
    gov_cgroup_close(cg);
}

/* ---- the bounded read ------------------------------------------------------ */

static void bounded_read(void **state)
{
    char path[PATH_MAX], err[PATH_MAX + 64], buf[8];
    int fd;
    (void)state;
    snprintf(path, sizeof(path), "%s/seven", tmpdir);
    write_file("seven", "1234567");
    fd = gov_open_regular(path, err, sizeof(err));
    assert_true(fd >= 0);
    assert_int_equal(gov_read_bounded(fd, buf, sizeof(buf)), 7); /* exactly size - 1 fits */
    assert_string_equal(buf, "1234567");
    assert_int_equal(gov_read_bounded(fd, buf, sizeof(buf)), 7); /* again: pread from 0 */
    close(fd);
    write_file("seven", "12345678");
    fd = gov_open_regular(path, err, sizeof(err));
    assert_true(fd >= 0);
    errno = 0;
    assert_int_equal(gov_read_bounded(fd, buf, sizeof(buf)), -1); /* one byte too many */
    assert_int_equal(errno, EFBIG);
    close(fd);
    write_file("seven", "");
    fd = gov_open_regular(path, err, sizeof(err));
    assert_int_equal(gov_read_bounded(fd, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    close(fd);
    /* refused: a directory, a FIFO (without blocking), nothing */
    assert_int_equal(gov_open_regular(tmpdir, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, ": not a regular file"));
    snprintf(path, sizeof(path), "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10); /* a blocking open fails the test instead of hanging it */
    assert_int_equal(gov_open_regular(path, err, sizeof(err)), -1);
    alarm(0);
    assert_int_equal(errno, EINVAL);
    snprintf(path, sizeof(path), "%s/none", tmpdir);
    assert_int_equal(gov_open_regular(path, err, sizeof(err)), -1);
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err, "none: No such file or directory"));
    assert_null(gov_read_file(tmpdir, 100, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "not a regular file"));
}

/* A FIFO where a cgroup file belongs, at open and swapped in later: opening
 * it for reading would block until a writer comes; it is refused instead. */
static void fifo_is_refused_not_waited_on(void **state)
{
    static const char *const names[] = {"memory.current", "memory.max", "memory.stat",
                                         "memory.events"};
    struct gov_cgroup_loc loc;
    struct gov_cgroup *cg;
    struct gov_cgroup_sample s;
    char err[512], path[PATH_MAX], tmp[PATH_MAX];
    (void)state;
    assert_int_equal(gov_cgroup_locate_dir(tmpdir, &loc, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char good[4096];
        FILE *f;
        size_t n;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        f = fopen(path, "r");
        assert_non_null(f);
        n = fread(good, 1, sizeof(good) - 1, f);
        good[n] = '\0';
        fclose(f);

        /* at open */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkfifo(path, 0600), 0);
        alarm(10); /* a blocking open fails the test instead of hanging it */
        cg = gov_cgroup_open(&loc);
        assert_non_null(cg);
        assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), -1);
        alarm(0);
        assert_non_null(strstr(err, "not a regular file"));
        assert_non_null(strstr(err, names[i]));
        replace_file(names[i], good);
        assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), 0);

        /* swapped in by rename while open: the reopen must not block */
        snprintf(tmp, sizeof(tmp), "%s/.fifo", tmpdir);
        assert_int_equal(mkfifo(tmp, 0600), 0);
        assert_int_equal(rename(tmp, path), 0);
        alarm(10);
        assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), -1);
        alarm(0);
        assert_non_null(strstr(err, "not a regular file"));
        replace_file(names[i], good);
        assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), 0);
        gov_cgroup_close(cg);
    }
}

/* The cgroup's directory renamed away and created anew with other figures:
 * the next sample reads the new one (not the old one until it is deleted),
 * and the owner is told once, to move its memory.events watch. */
static void replaced_directory_is_followed(void **state)
{
    struct gov_cgroup_loc loc;
    struct gov_cgroup *cg;
    struct gov_cgroup_sample s;
    char err[512], old[PATH_MAX], cmd[2 * PATH_MAX + 128];
    (void)state;
    assert_int_equal(gov_cgroup_locate_dir(tmpdir, &loc, err, sizeof(err)), 0);
    cg = gov_cgroup_open(&loc);
    assert_non_null(cg);
    assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), 0);
    assert_int_equal(s.current, 300 * MIB);
    assert_false(gov_cgroup_take_replaced(cg));

    snprintf(old, sizeof(old), "%s.old", tmpdir);
    assert_int_equal(rename(tmpdir, old), 0);
    snprintf(cmd, sizeof(cmd), "cp -r %s %s", old, tmpdir);
    assert_int_equal(system(cmd), 0);
    write_file("memory.current", "123456789\n");
    write_file("memory.max", "987654321\n");
    assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), 0);
    assert_int_equal(s.current, 123456789);
    assert_int_equal(s.limit, 987654321);
    assert_true(gov_cgroup_take_replaced(cg));
    assert_false(gov_cgroup_take_replaced(cg)); /* once */
    assert_int_equal(gov_cgroup_sample(cg, &s, err, sizeof(err)), 0);
    assert_false(gov_cgroup_take_replaced(cg)); /* the same directory: nothing */
    assert_string_equal(gov_cgroup_events_path(cg) + strlen(tmpdir), "/memory.events");

    gov_cgroup_close(cg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", old);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(value_files),
        cmocka_unit_test(keyed_files),
        cmocka_unit_test(pressure_files),
        cmocka_unit_test(proc_self_cgroup),
        cmocka_unit_test(mountinfo_lines),
        cmocka_unit_test(cgroup_dir_from_mount),
        cmocka_unit_test(v2_in_a_cgroup_namespace),
        cmocka_unit_test(v2_nested_with_smaller_parent_limit),
        cmocka_unit_test(v2_max_everywhere),
        cmocka_unit_test(v2_memory_high_below_max),
        cmocka_unit_test(v2_zero_is_a_limit),
        cmocka_unit_test(v1_from_the_host),
        cmocka_unit_test(v1_inside_a_container),
        cmocka_unit_test(hybrid_host_picks_v1),
        cmocka_unit_test(no_memory_cgroup_uses_meminfo),
        cmocka_unit_test(locate_rejects_unreadable_proc),
        cmocka_unit_test_setup_teardown(cgroup_dir_detects_version, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(sampling_survives_bad_files, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(bounded_read, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(fifo_is_refused_not_waited_on, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(replaced_directory_is_followed, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}
