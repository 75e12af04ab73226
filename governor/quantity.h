/* quantity.h -- byte sizes written the way Kubernetes writes them.
 *
 * Policies and limits are given as Kubernetes quantities ("512Mi", "1G",
 * "1.5Gi", "256000000").  The parser is exact (no floating point), refuses
 * anything that is not a whole, non-negative number of bytes that fits in 63
 * bits, and says why.  The formatter prints the short binary form used in
 * decision reasons and logs ("512Mi", "1.5Gi"). */
#ifndef GOVERNOR_QUANTITY_H
#define GOVERNOR_QUANTITY_H

#include <stddef.h>
#include <stdint.h>

#include "governor.h" /* gov_quantity_format() */

/* Largest size the parser accepts (2^62 bytes); larger means "unlimited" in
 * cgroup files and is never a sensible policy value. */
#define GOV_QUANTITY_MAX (UINT64_C(1) << 62)

/* Parses a Kubernetes quantity into bytes.  Returns 0 on success, or -1 with a
 * short static explanation in *why ("unknown suffix", "overflow", ...). */
int gov_quantity_parse(const char *text, uint64_t *bytes, const char **why);

#endif
