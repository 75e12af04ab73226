/* utf8.c -- UTF-8 validation, repair and truncation (see utf8.h).
 *
 * One decoder step, gov_utf8_char_len(), knows the well-formed byte
 * sequences of RFC 3629 (Table 3-7 of the Unicode standard): the second
 * byte's range depends on the lead byte, which is what excludes overlongs
 * (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points above
 * U+10FFFF (F4 90..BF, F5..FF).  Everything else is built on it. */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

size_t gov_utf8_char_len(const char *s, size_t avail, size_t *subpart)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char b0, lo = 0x80, hi = 0xBF;
    size_t n;

    if (subpart)
        *subpart = 1;
    if (avail == 0)
        return 0;
    b0 = u[0];
    if (b0 < 0x80)
        return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        n = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        n = 3;
        if (b0 == 0xE0)
            lo = 0xA0; /* below: overlong */
        else if (b0 == 0xED)
            hi = 0x9F; /* above: surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        n = 4;
        if (b0 == 0xF0)
            lo = 0x90; /* below: overlong */
        else if (b0 == 0xF4)
            hi = 0x8F; /* above: beyond U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0, C1 or F5..FF */
    }
    for (size_t i = 1; i < n; i++) {
        unsigned char b;
        if (i >= avail) {
            if (subpart)
                *subpart = i; /* cut short: the whole start is one subpart */
            return 0;
        }
        b = u[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) {
            if (subpart)
                *subpart = i;
            return 0;
        }
    }
    return n;
}

bool gov_utf8_valid(const char *s, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        size_t n = gov_utf8_char_len(s + pos, len - pos, NULL);
        if (n == 0)
            return false;
        pos += n;
    }
    return true;
}

size_t gov_utf8_cut(const char *s, size_t len, size_t max)
{
    size_t pos = 0;
    if (len <= max)
        return len;
    while (pos < max) {
        size_t n = gov_utf8_char_len(s + pos, len - pos, NULL);
        if (n == 0)
            n = 1; /* an ill-formed byte: a boundary on either side */
        if (pos + n > max)
            break;
        pos += n;
    }
    return pos;
}

size_t gov_utf8_trim_cut(char *s)
{
    size_t len = strlen(s), pos = 0;
    while (pos < len) {
        size_t sub, n = gov_utf8_char_len(s + pos, len - pos, &sub);
        if (n == 0 && pos + sub == len && sub < 4 &&
            (unsigned char)s[pos] >= 0xC2 && (unsigned char)s[pos] <= 0xF4) {
            s[pos] = '\0'; /* a lead byte and its continuations, then the end */
            return pos;
        }
        pos += n ? n : 1;
    }
    return len;
}

size_t gov_utf8_sanitize_into(char *dst, size_t dstlen, const char *src, size_t len)
{
    size_t pos = 0, need = 0, out = 0;
    bool full = dstlen == 0;

    while (pos < len) {
        size_t sub, n = gov_utf8_char_len(src + pos, len - pos, &sub);
        const char *piece = src + pos;
        size_t plen = n;
        if (n == 0 || src[pos] == '\0') {
            piece = GOV_UTF8_REPLACEMENT;
            plen = sizeof(GOV_UTF8_REPLACEMENT) - 1;
            n = n ? n : sub;
        }
        need += plen;
        if (!full && out + plen < dstlen) {
            memcpy(dst + out, piece, plen);
            out += plen;
        } else {
            full = true; /* nothing after a character that did not fit */
        }
        pos += n;
    }
    if (dstlen > 0)
        dst[out] = '\0';
    return need;
}

char *gov_utf8_sanitize(const char *s)
{
    size_t len = strlen(s), need;
    char *out;
    if (gov_utf8_valid(s, len))
        return strdup(s);
    need = gov_utf8_sanitize_into(NULL, 0, s, len);
    out = malloc(need + 1);
    if (!out)
        return NULL;
    gov_utf8_sanitize_into(out, need + 1, s, len);
    return out;
}
