/* fuzz_cgroup_files.c -- the parsers of cgroupfs and /proc files the
 * governor reads on every tick: single values (memory.current, memory.max),
 * keyed files (memory.stat, memory.events, memory.oom_control), meminfo and
 * PSI (memory.pressure).  Results must be consistent: "max" and huge values
 * mean unlimited, PSI averages stay within 0..100. */
#include "cgroup_parse.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"inactive_file", "anon", "file", "oom_kill", "max",
                                       "total_inactive_file", "hierarchical_memory_limit"};
    char *s = fuzz_cstr(data, size);
    uint64_t v = 0;
    bool unlimited = false;
    struct gov_psi psi;

    if (gov_parse_value(s, &v, &unlimited) == 0 && unlimited != (v >= GOV_UNLIMITED))
        abort();
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        (void)gov_parse_keyed(s, keys[i], &v);
    (void)gov_parse_meminfo(s, "MemTotal", &v);
    (void)gov_parse_meminfo(s, "MemAvailable", &v);
    if (gov_parse_psi(s, &psi) == 0) {
        if (psi.some_avg10 < 0 || psi.some_avg10 > 100 || psi.full_avg60 < 0 ||
            psi.full_avg60 > 100)
            abort();
    }
    free(s);
    return 0;
}
