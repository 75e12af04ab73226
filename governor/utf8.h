/* utf8.h -- UTF-8 validation, repair and boundary-aware truncation.
 *
 * Bytes from outside (policy files, cgroup files, paths, command lines) may
 * be anything, but JSON strings must be valid UTF-8: jansson refuses a
 * string that is not, which would fail a whole document or strip a log
 * line's fields.  Everything that carries foreign text into JSON passes it
 * through gov_utf8_sanitize() first, and copies into fixed-size buffers cut
 * only between characters (gov_utf8_cut()).
 *
 * "Valid" is RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF),
 * nothing above U+10FFFF, no bytes C0, C1, F5..FF.  Each maximal ill-formed
 * subpart is replaced by one U+FFFD (Unicode's recommended practice, as in
 * WHATWG's decoder), so a cut multi-byte character becomes one replacement
 * character, not several.  Pure functions, no state. */
#ifndef GOVERNOR_UTF8_H
#define GOVERNOR_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#include "governor.h" /* gov_utf8_valid(), gov_utf8_sanitize(), gov_utf8_cut() */

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
#define GOV_UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Length of the well-formed character at s (1..4), or 0 when the bytes at s
 * (at most avail of them) do not start one.  *subpart, when not NULL,
 * receives the length of the maximal ill-formed subpart to replace with
 * one U+FFFD (>= 1) when the result is 0. */
size_t gov_utf8_char_len(const char *s, size_t avail, size_t *subpart);

/* gov_utf8_valid() and gov_utf8_cut() (governor.h): ill-formed bytes count
 * as one-byte characters for the cut (they are replaced later, one by one
 * or as a subpart). */

/* Drops a character cut short at the very end of the NUL-terminated s (what
 * snprintf leaves when it truncates in the middle of one); anything else,
 * also ill-formed bytes, stays.  Returns the new length. */
size_t gov_utf8_trim_cut(char *s);

/* Writes the len bytes at src into dst (size dstlen, NUL-terminated) with
 * every ill-formed subpart replaced by U+FFFD and NUL bytes by U+FFFD as
 * well (a C string cannot hold them), cut between characters when it does
 * not fit.  Returns the bytes the full result needs without the NUL (as
 * snprintf does): >= dstlen means it was truncated. */
size_t gov_utf8_sanitize_into(char *dst, size_t dstlen, const char *src, size_t len);


#endif
