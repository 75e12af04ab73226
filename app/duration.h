/* duration.h -- short durations written on the command line ("2s", "500ms").
 *
 * Used by --shutdown-delay.  Pure: no I/O, no allocation. */
#ifndef APP_DURATION_H
#define APP_DURATION_H

#include <stdint.h>

/* Longest duration accepted: one hour. */
#define DURATION_MAX_MS UINT64_C(3600000)

/* Parses "0", "N ms", "N s" or "N m" (no space; N a whole number, or for s
 * and m a decimal with at most as many places as keep it whole in
 * milliseconds: "1.5s", "0.25s") into milliseconds, at most DURATION_MAX_MS.
 * Returns 0, or -1 with a short static explanation in *why. */
int duration_parse_ms(const char *text, uint64_t *ms, const char **why);

#endif
