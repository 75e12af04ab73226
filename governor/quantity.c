/* quantity.c -- parse and format Kubernetes byte quantities.
 *
 * The accepted grammar is the subset of Kubernetes' resource.Quantity that
 * makes sense for bytes: an unsigned decimal number with an optional fraction,
 * followed by nothing, a decimal suffix (k M G T P E, powers of 1000), a
 * binary suffix (Ki Mi Gi Ti Pi Ei, powers of 1024), or an exponent (1e9).
 * The result must be a whole number of bytes: "1.5Gi" is fine, "1.5" is not.
 * Arithmetic is done in 128-bit integers so nothing is rounded silently. */
#include "quantity.h"

#include <stdio.h>
#include <string.h>

struct suffix {
    const char *name;
    unsigned __int128 mult;
};

static const struct suffix suffixes[] = {
    {"Ki", (unsigned __int128)1 << 10}, {"Mi", (unsigned __int128)1 << 20},
    {"Gi", (unsigned __int128)1 << 30}, {"Ti", (unsigned __int128)1 << 40},
    {"Pi", (unsigned __int128)1 << 50}, {"Ei", (unsigned __int128)1 << 60},
    {"k", 1000ULL},                     {"M", 1000000ULL},
    {"G", 1000000000ULL},               {"T", 1000000000000ULL},
    {"P", 1000000000000000ULL},         {"E", 1000000000000000000ULL},
};

int gov_quantity_parse(const char *text, uint64_t *bytes, const char **why)
{
    const char *p = text;
    unsigned __int128 whole = 0, frac = 0, frac_div = 1, mult = 1, value;
    int digits = 0, frac_digits = 0;
    const char *dummy;

    if (!why)
        why = &dummy;
    if (!text || !*text) {
        *why = "empty size";
        return -1;
    }
    if (*p == '-') {
        *why = "negative size";
        return -1;
    }
    if (*p == '+')
        p++;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits >= 30) {
            *why = "too many digits";
            return -1;
        }
        whole = whole * 10 + (unsigned)(*p - '0');
    }
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++, frac_digits++) {
            if (frac_digits >= 18) {
                *why = "too many decimals";
                return -1;
            }
            frac = frac * 10 + (unsigned)(*p - '0');
            frac_div *= 10;
        }
    }
    if (digits + frac_digits == 0) {
        *why = "not a number";
        return -1;
    }
    /* "1e9" is an exponent, "1E" and "1Ei" are suffixes (as in Kubernetes) */
    if ((*p == 'e' || *p == 'E') && (p[1] == '\0' || (p[1] >= '0' && p[1] <= '9'))) {
        int exp = 0, exp_digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, exp_digits++) {
            exp = exp * 10 + (*p - '0');
            if (exp > 18) {
                *why = "overflow";
                return -1;
            }
        }
        if (exp_digits == 0) {
            *why = "bad exponent";
            return -1;
        }
        while (exp-- > 0)
            mult *= 10;
    } else if (*p) {
        size_t i;
        for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
            if (strcmp(p, suffixes[i].name) == 0)
                break;
        if (i == sizeof(suffixes) / sizeof(suffixes[0])) {
            *why = (strcmp(p, "m") == 0) ? "milli-bytes are not a size"
                                          : "unknown suffix (use Ki Mi Gi Ti or k M G T)";
            return -1;
        }
        mult = suffixes[i].mult;
        p += strlen(suffixes[i].name);
    }
    if (*p) {
        *why = "trailing characters";
        return -1;
    }
    if (whole > (unsigned __int128)GOV_QUANTITY_MAX) {
        *why = "overflow";
        return -1;
    }
    value = whole * mult;
    if (value > (unsigned __int128)GOV_QUANTITY_MAX) {
        *why = "overflow";
        return -1;
    }
    if (frac) {
        unsigned __int128 part = frac * mult;
        if (part % frac_div != 0) {
            *why = "not a whole number of bytes";
            return -1;
        }
        value += part / frac_div;
        if (value > (unsigned __int128)GOV_QUANTITY_MAX) {
            *why = "overflow";
            return -1;
        }
    }
    *bytes = (uint64_t)value;
    return 0;
}

char *gov_quantity_format(uint64_t bytes, char *buf, size_t len)
{
    static const char *units[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    int u = -1;
    uint64_t scale = 1;

    while (u < 5 && bytes >= scale * 1024) {
        scale *= 1024;
        u++;
    }
    if (u < 0) {
        snprintf(buf, len, "%llu", (unsigned long long)bytes);
        return buf;
    }
    /* one decimal, rounded to nearest, trailing ".0" dropped */
    unsigned __int128 tenths = ((unsigned __int128)bytes * 10 + scale / 2) / scale;
    unsigned long long ip = (unsigned long long)(tenths / 10), fp = (unsigned long long)(tenths % 10);
    if (ip >= 1024 && u < 5) {
        /* rounding carried into the next unit (e.g. 1023.96Ki -> 1Mi) */
        u++;
        ip = 1;
        fp = 0;
    }
    if (fp)
        snprintf(buf, len, "%llu.%llu%s", ip, fp, units[u]);
    else
        snprintf(buf, len, "%llu%s", ip, units[u]);
    return buf;
}
