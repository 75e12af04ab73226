/* fuzz.h -- shared by the libFuzzer targets in tests/fuzz.
 *
 * The parsers under test take NUL-terminated text; libFuzzer hands out raw
 * bytes.  fuzz_cstr() makes a malloc'd, NUL-terminated copy (a NUL inside the
 * input just ends the string early, as it would for a file read into a C
 * string), so AddressSanitizer sees exactly the bytes the parser may read. */
#ifndef TESTS_FUZZ_H
#define TESTS_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
