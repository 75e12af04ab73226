/* duration.c -- parses short durations into milliseconds (see duration.h).
 *
 * Exact integer arithmetic: the digits before and after the decimal point
 * are scaled by the unit separately, and a fraction that would leave part of
 * a millisecond is refused rather than rounded, so "2s" and "2000ms" are the
 * same value and nothing is silently changed.  A bare number other than 0 is
 * refused: "2" could mean seconds or milliseconds. */
#include "duration.h"

#include <stdbool.h>
#include <string.h>

int duration_parse_ms(const char *text, uint64_t *ms, const char **why)
{
    static const struct { const char *suffix; uint64_t ms; } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}};
    const char *p = text;
    uint64_t whole = 0, frac = 0, frac_div = 1, unit = 0;
    bool digits = false;

    if (!text || !*text) {
        *why = "empty";
        return -1;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        digits = true;
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > DURATION_MAX_MS) {
            *why = "longer than 1 hour";
            return -1;
        }
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            digits = true;
            if (frac_div >= 1000000) {
                *why = "too many decimal places";
                return -1;
            }
            frac = frac * 10 + (uint64_t)(*p - '0');
            frac_div *= 10;
        }
    }
    if (!digits) {
        *why = "not a number";
        return -1;
    }
    if (*p == '\0') {
        if (whole == 0 && frac == 0) {
            *ms = 0;
            return 0;
        }
        *why = "no unit (ms, s or m)";
        return -1;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(p, units[i].suffix) == 0)
            unit = units[i].ms;
    if (!unit) {
        *why = "unknown unit (ms, s or m)";
        return -1;
    }
    if ((frac * unit) % frac_div != 0) {
        *why = "not a whole number of milliseconds";
        return -1;
    }
    if (whole > DURATION_MAX_MS / unit) {
        *why = "longer than 1 hour";
        return -1;
    }
    whole = whole * unit + frac * unit / frac_div;
    if (whole > DURATION_MAX_MS) {
        *why = "longer than 1 hour";
        return -1;
    }
    *ms = whole;
    return 0;
}
