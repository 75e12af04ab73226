/* fuzz_trimproto.c -- a line from a trim protocol client (any bytes): the
 * parser never crashes, and what it accepts is within the protocol's
 * bounds (numbers up to 2^53 - 1, seq from 1, a name of 1 to 64 bytes
 * without control characters, for the ops that have one). */
#include <string.h>

#include "fuzz.h"
#include "trimproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trim_msg m;
    char err[200];
    char line[512];
    if (trim_parse_line((const char *)data, size, &m, err, sizeof(err)) < 0) {
        if (!err[0] || strlen(err) >= sizeof(err))
            abort();
        /* the error line always fits and is one line */
        if (trim_fmt_error(line, sizeof(line), err) == 0 || !memchr(line, '\n', sizeof(line)))
            abort();
        return 0;
    }
    if (size > TRIM_MAX_LINE || m.bytes > TRIM_MAX_VALUE || m.objects > TRIM_MAX_VALUE)
        abort();
    if (m.op == TRIM_OP_RELEASED && m.seq < 1)
        abort();
    if (m.op == TRIM_OP_REGISTER) {
        size_t n = strlen(m.name);
        if (n == 0 || n > TRIM_MAX_NAME)
            abort();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)m.name[i] < 0x20 || m.name[i] == 0x7f)
                abort();
    }
    return 0;
}
