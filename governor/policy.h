/* policy.h -- the governor's policy: model, defaults, INI parser, validator.
 *
 * A policy is a small INI file (parsed with inih) with four sections:
 *
 *   [governor]   mode = enforce|observe, interval_ms, cooldown_ms, client_timeout_ms
 *   [memory]     limit = auto|<size>, signal = working_set|current
 *   [thresholds] target, soft, high, critical (fractions of the limit), hysteresis
 *   [collector]  enabled, block_size, interval_ms, floor
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

enum gov_mode { GOV_MODE_ENFORCE, GOV_MODE_OBSERVE };
enum gov_signal { GOV_SIGNAL_WORKING_SET, GOV_SIGNAL_CURRENT };

struct gov_policy {
    /* [governor] */
    enum gov_mode mode;      /* observe: decide and record, never act */
    uint32_t interval_ms;    /* timer period of the control loop */
    uint32_t cooldown_ms;    /* minimum time between two shrinks at `high` */
    uint32_t client_timeout_ms; /* trim-protocol clients must answer a shrink
                                 * within this (governord's socket) */
    /* [memory] */
    uint64_t limit;          /* bytes used when no cgroup limit exists; 0 = auto */
    enum gov_signal signal;  /* which usage figure is compared to the limit */
    /* [thresholds], fractions of the effective limit */
    double target, soft, high, critical, hysteresis;
    /* [collector] */
    bool collector_enabled;
    bool collector_enabled_set; /* the file set [collector] enabled itself */
    uint64_t block_size;     /* bytes per block */
    uint32_t collector_interval_ms;
    uint64_t floor;          /* bytes of buffer the governor never releases */
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

/* Fills p with the built-in defaults (identical to policies/default.ini). */
void gov_policy_defaults(struct gov_policy *p);

/* Parses INI text of len bytes (need not be NUL-terminated) named `name` in
 * messages.  Returns 0 and fills *out when the text is a valid policy, -1 with
 * errs filled otherwise (*out is then untouched). */
int gov_policy_parse_string(const char *text, size_t len, const char *name,
                            struct gov_policy *out, struct gov_policy_errors *errs);

/* Reads and parses a policy file.  Follows symlinks (the kubelet's ConfigMap
 * layout is made of them) and refuses directories, special files, unreadable
 * paths and files larger than GOV_POLICY_MAX_FILE.  Returns 0 or -1 like
 * gov_policy_parse_string().  When content is not NULL it receives a malloc'd
 * copy of the bytes that were parsed (for change detection), even on error. */
int gov_policy_parse_file(const char *path, struct gov_policy *out,
                          struct gov_policy_errors *errs, char **content, size_t *content_len);

/* Reads everything from fd (a file, a pipe: --check-policy - reads stdin)
 * and parses it, named `name` in messages.  The one reader of policy bytes:
 * more than GOV_POLICY_MAX_FILE bytes are refused, whatever fd is.  Returns
 * and fills content like gov_policy_parse_file(). */
int gov_policy_parse_fd(int fd, const char *name, struct gov_policy *out,
                        struct gov_policy_errors *errs, char **content, size_t *content_len);
/* When p's file did not set [collector] enabled, makes `enabled` its value
 * (governord turns the collector off by default when it supervises a child). */
void gov_policy_collector_default(struct gov_policy *p, bool enabled);

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
 * value formatted as it would be written in a policy file. */
void gov_policy_foreach(const struct gov_policy *p,
                        void (*fn)(const char *section, const char *key, const char *value,
                                   void *ud),
                        void *ud);

/* Writes p as a complete INI policy (the effective policy). */
void gov_policy_write(const struct gov_policy *p, FILE *f);

/* Length of a hex SHA-256 with its NUL. */
#define GOV_POLICY_SHA256_HEX 65

/* Writes the lowercase hex SHA-256 of the len bytes at data (the policy
 * file's bytes, or the embedded text) into hex: the identity of a policy on
 * /governor and in governor_policy_info, so that pods can be compared. */
void gov_policy_sha256_hex(const void *data, size_t len, char hex[GOV_POLICY_SHA256_HEX]);

/* Names used in files, logs and JSON. */
const char *gov_mode_name(enum gov_mode m);
const char *gov_signal_name(enum gov_signal s);

#endif
