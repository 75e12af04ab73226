/* fuzz_policy.c -- the policy parser and validator on arbitrary bytes.
 *
 * Any input either parses into a policy that passes validation again and
 * prints and re-parses to the same values, or fails with at least one error,
 * each formatted into a bounded message.  A host section shaped like
 * governord's [collector] (app/collector.c) is registered, so that host keys
 * go through the same parser, printer and round trip. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "policy.h"

struct host {
    bool enabled;
    uint32_t interval_ms;
    uint64_t block_size, floor;
    double share;
};
static const struct gov_policy_key host_keys[] = {
    {"enabled", GOV_KEY_BOOL, offsetof(struct host, enabled), 0, 0},
    {"block_size", GOV_KEY_SIZE, offsetof(struct host, block_size), 4096.0, 17179869184.0},
    {"interval_ms", GOV_KEY_MS, offsetof(struct host, interval_ms), 1, 3600000},
    {"floor", GOV_KEY_SIZE, offsetof(struct host, floor), 0.0, 4611686018427387904.0},
    {"share", GOV_KEY_FRACTION, offsetof(struct host, share), 0.0, 1.0},
};
static const struct host host_defaults = {true, 1000, 64u << 20, 0, 0.5};
static const struct gov_policy_section host_section = {
    .name = "collector", .keys = host_keys, .nkeys = 5, .size = sizeof(struct host),
    .defaults = &host_defaults};
static const struct gov_policy_hosts hosts = {&host_section, 1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gov_policy_errors errs, errs2;
    static struct gov_policy_host_values hv, hv2;
    struct gov_policy p, q;
    const struct host *a = (const struct host *)hv.v[0], *b = (const struct host *)hv2.v[0];
    char summary[512];

    if (size > GOV_POLICY_MAX_FILE)
        return 0;
    /* not NUL-terminated on purpose: the parser takes a length */
    if (gov_policy_parse_string_ext((const char *)data, size, "fuzz.ini", &hosts, &p, &hv,
                                    &errs) < 0) {
        if (errs.count < 1)
            abort();
        gov_policy_errors_summary(&errs, summary, sizeof(summary));
        if (strncmp(summary, "fuzz.ini", 8) != 0)
            abort();
        return 0;
    }
    if (gov_policy_validate(&p, &errs2) != 0)
        abort(); /* accepted but invalid */
    /* the effective policy, printed and parsed again, is the same policy */
    {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
            abort();
        gov_policy_write(&p, &hosts, &hv, f);
        fclose(f);
        if (gov_policy_parse_string_ext(text, len, "printed", &hosts, &q, &hv2, &errs2) < 0)
            abort();
        free(text);
        if (q.mode != p.mode || q.interval_ms != p.interval_ms || q.limit != p.limit ||
            q.target != p.target || a->block_size != b->block_size || a->floor != b->floor ||
            a->enabled != b->enabled || a->interval_ms != b->interval_ms || a->share != b->share)
            abort();
    }
    return 0;
}
