/* policy.h -- the governor's policy: model, defaults, INI parser, validator.
 *
 * A policy is a small INI file (parsed with inih) with the library's three
 * sections and the host's own (struct gov_policy_section, e.g. governord's
 * [collector]):
 *
 *   [governor]   mode = enforce|observe, interval_ms, cooldown_ms
 *   [memory]     limit = auto|<size>, signal = working_set|current
 *   [thresholds] target, soft, high, critical (fractions of the limit), hysteresis
 *
 * Keys left out keep their defaults (the values of policies/default.ini),
 * but a file must set at least one key: an empty file is refused, so that a
 * truncated ConfigMap cannot silently reset everything.  Anything else -- unknown sections or keys, duplicates, bad numbers, values
 * out of range, thresholds in the wrong order, binary data, over-long lines
 * -- is an error reported as "file:line: key: what is wrong", and a policy
 * with any error is never used. */
#ifndef GOVERNOR_POLICY_H
#define GOVERNOR_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "governor.h" /* struct gov_policy, struct gov_policy_section */

/* The host's sections of a policy and, for one parse, their values: one
 * fixed slot per section (no allocation), filled from the section's
 * defaults and then from the file. */
struct gov_policy_hosts {
    const struct gov_policy_section *sections;
    unsigned n;
};
struct gov_policy_host_values {
    _Alignas(16) unsigned char v[GOV_POLICY_MAX_SECTIONS][GOV_POLICY_SECTION_MAX];
};

/* Largest policy file accepted (a ConfigMap is at most 1 MiB anyway). */
#define GOV_POLICY_MAX_FILE (1u << 20)
#define GOV_POLICY_MAX_ERRORS 32

struct gov_policy_error {
    int line;       /* 1-based; 0 when the error concerns the file as a whole */
    char key[48];   /* "section.key", "[section]" or "" */
    char what[160];
};

struct gov_policy_errors {
    char file[256];   /* name used in messages */
    int count;        /* errors stored in e[] */
    int dropped;      /* further errors not stored */
    struct gov_policy_error e[GOV_POLICY_MAX_ERRORS];
};

/* Checks that host sections are usable: names that are not the library's
 * (nor each other's), at most the maximum of sections and keys, sizes that
 * fit, keys whose fields lie inside the struct.  Returns 0, or -1 with a
 * message in err. */
int gov_policy_hosts_check(const struct gov_policy_hosts *h, char *err, size_t errlen);

/* Fills p with the built-in defaults (identical to policies/default.ini). */
void gov_policy_defaults(struct gov_policy *p);

/* Parses INI text of len bytes (need not be NUL-terminated) named `name` in
 * messages.  Returns 0 and fills *out when the text is a valid policy, -1 with
 * errs filled otherwise (*out is then untouched).  No host sections: the
 * library's own three only. */
int gov_policy_parse_string(const char *text, size_t len, const char *name,
                            struct gov_policy *out, struct gov_policy_errors *errs);

/* Like gov_policy_parse_string() with the host sections of h (may be NULL):
 * their values go to *hv (untouched on error), each section's finish
 * callback runs once the file parsed without error. */
int gov_policy_parse_string_ext(const char *text, size_t len, const char *name,
                                const struct gov_policy_hosts *h, struct gov_policy *out,
                                struct gov_policy_host_values *hv,
                                struct gov_policy_errors *errs);

/* Reads and parses a policy file.  Follows symlinks (the kubelet's ConfigMap
 * layout is made of them) and refuses directories, special files, unreadable
 * paths and files larger than GOV_POLICY_MAX_FILE.  Returns 0 or -1 like
 * gov_policy_parse_string().  When content is not NULL it receives a malloc'd
 * copy of the bytes that were parsed (for change detection), even on error. */
int gov_policy_parse_file(const char *path, const struct gov_policy_hosts *h,
                          struct gov_policy *out, struct gov_policy_host_values *hv,
                          struct gov_policy_errors *errs, char **content, size_t *content_len);

/* Reads everything from fd (a file, a pipe: --check-policy - reads stdin)
 * and parses it, named `name` in messages.  The one reader of policy bytes:
 * more than GOV_POLICY_MAX_FILE bytes are refused, whatever fd is.  Returns
 * and fills content like gov_policy_parse_file(). */
int gov_policy_parse_fd(int fd, const char *name, const struct gov_policy_hosts *h,
                        struct gov_policy *out, struct gov_policy_host_values *hv,
                        struct gov_policy_errors *errs, char **content, size_t *content_len);

/* Checks cross-field rules (threshold order, ranges) of a filled policy.
 * Returns the number of errors appended to errs. */
int gov_policy_validate(const struct gov_policy *p, struct gov_policy_errors *errs);

/* Writes errors one per line as "file:line: key: what". */
void gov_policy_errors_print(const struct gov_policy_errors *errs, FILE *f);

/* Formats error i as one line "file:line: key: what" into buf. */
void gov_policy_error_line(const struct gov_policy_errors *errs, int i, char *buf, size_t len);

/* Formats the first error as one line into buf (for /governor and logs);
 * mentions how many more there are. */
void gov_policy_errors_summary(const struct gov_policy_errors *errs, char *buf, size_t len);

/* Calls fn(section, key, value) for every key of p in file order, with the
 * value formatted as it would be written in a policy file; then, when h is
 * not NULL, for every key of its sections with their values in hv. */
void gov_policy_foreach(const struct gov_policy *p, const struct gov_policy_hosts *h,
                        const struct gov_policy_host_values *hv,
                        void (*fn)(const char *section, const char *key, const char *value,
                                   void *ud),
                        void *ud);

/* Fills out[] (at most max) with the host sections' keys and values as
 * printed; returns how many. */
unsigned gov_policy_host_strings(const struct gov_policy_hosts *h,
                                 const struct gov_policy_host_values *hv,
                                 struct gov_policy_value *out, unsigned max);

/* Writes p (and the host sections of h with values hv, h may be NULL) as a
 * complete INI policy (the effective policy). */
void gov_policy_write(const struct gov_policy *p, const struct gov_policy_hosts *h,
                      const struct gov_policy_host_values *hv, FILE *f);

/* Writes the lowercase hex SHA-256 of the len bytes at data (the policy
 * file's bytes, or the embedded text) into hex: the identity of a policy on
 * /governor and in governor_policy_info, so that pods can be compared. */
void gov_policy_sha256_hex(const void *data, size_t len, char hex[GOV_POLICY_SHA256_HEX]);

#endif
