/* fuzz_quantity.c -- the Kubernetes quantity parser and the formatter.
 *
 * A parsed size is at most GOV_QUANTITY_MAX; every refusal has a reason; the
 * formatter fits its output in 16 bytes for any value. */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "quantity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    const char *why = NULL;
    uint64_t bytes = 0, raw;
    char buf[16];

    if (gov_quantity_parse(s, &bytes, &why) == 0) {
        if (bytes > GOV_QUANTITY_MAX)
            abort();
        gov_quantity_format(bytes, buf, sizeof(buf));
        if (strlen(buf) >= sizeof(buf) - 1 && buf[0] == '\0')
            abort();
    } else if (!why || !*why) {
        abort();
    }
    /* the formatter on any 64-bit value taken from the input */
    if (size >= sizeof(raw)) {
        memcpy(&raw, data, sizeof(raw));
        gov_quantity_format(raw, buf, sizeof(buf));
    }
    free(s);
    return 0;
}
