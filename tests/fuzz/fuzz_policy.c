/* fuzz_policy.c -- the policy parser and validator on arbitrary bytes.
 *
 * Any input either parses into a policy that passes validation again and
 * prints and re-parses to the same values, or fails with at least one error,
 * each formatted into a bounded message. */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gov_policy_errors errs, errs2;
    struct gov_policy p, q;
    char summary[512];

    if (size > GOV_POLICY_MAX_FILE)
        return 0;
    /* not NUL-terminated on purpose: the parser takes a length */
    if (gov_policy_parse_string((const char *)data, size, "fuzz.ini", &p, &errs) < 0) {
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
        gov_policy_write(&p, f);
        fclose(f);
        if (gov_policy_parse_string(text, len, "printed", &q, &errs2) < 0)
            abort();
        free(text);
        if (q.mode != p.mode || q.interval_ms != p.interval_ms || q.block_size != p.block_size ||
            q.floor != p.floor || q.limit != p.limit || q.collector_enabled != p.collector_enabled)
            abort();
    }
    return 0;
}
