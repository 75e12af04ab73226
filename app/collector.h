/* collector.h -- the seed's metrics collector, bounded by the governor.
 *
 * Every collector.interval_ms it asks the governor for block_size bytes
 * (admission control), allocates the block with mmap, writes every page so
 * it is really resident, and appends it to a FIFO buffer.  It is registered
 * with the governor as a shrinker: a shrink drops the oldest blocks and
 * munmap()s them, so the memory goes back to the kernel at once.  Block size,
 * rate, on/off and floor come from the policy's [collector] section, which
 * the collector owns (collector_policy_section), and may change on reload;
 * a reload re-arms the collector's timer at once.
 *
 * Order: collector_new(), gov_new() with its section, collector_attach(),
 * gov_start(), collector_start(). */
#ifndef APP_COLLECTOR_H
#define APP_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "governor.h"

struct collector;

/* The [collector] section of the policy file (governord's, not the
 * library's): enabled, block_size, interval_ms, floor. */
struct collector_settings {
    bool enabled;          /* grow at all */
    uint32_t interval_ms;  /* one block per interval */
    uint64_t block_size;   /* bytes per block */
    uint64_t floor;        /* bytes of buffer the governor never releases */
};

/* Creates a collector (not yet governed).  child: governord runs a command
 * (`governord -- CMD`), and then a policy that does not set [collector]
 * enabled gets enabled = false.  Returns NULL on failure. */
struct collector *collector_new(bool child);

/* Describes the [collector] section for gov_config.sections (or
 * gov_policy_check()); its values reach c when a policy is put in force.
 * c may be NULL: the section is then only parsed and printed. */
void collector_policy_section(struct collector *c, struct gov_policy_section *out);

/* Registers c with governor g as a shrinker (once, before gov_start()).
 * Returns 0 or -1. */
int collector_attach(struct collector *c, struct gov *g);

/* The [collector] values in force. */
void collector_get_settings(struct collector *c, struct collector_settings *out);

/* Starts the collector thread.  Returns 0 or -1. */
int collector_start(struct collector *c);

/* Stops and joins the collector thread (idempotent). */
void collector_stop(struct collector *c);

/* Releases all blocks and frees the collector (stops it first). */
void collector_free(struct collector *c);

/* Appends one block of `bytes` now, subject to admission; true if added.
 * (The thread calls this; tests call it directly.) */
bool collector_grow(struct collector *c, uint64_t bytes);

/* The shrinker callbacks (exposed for tests). */
void collector_count(void *ctx, uint64_t *bytes, uint64_t *blocks);
uint64_t collector_shrink(void *ctx, uint64_t bytes);
/* A new policy is in force: the thread's sleep starts again with the new
 * interval (the governor calls this on reload). */
void collector_policy_changed(void *ctx);

/* Allocation failures (mmap or the block's record) so far; 0 for NULL.
 * Each episode of failures is logged once (collector_alloc_failed, then
 * collector_alloc_recovered at the next success). */
uint64_t collector_alloc_failures(struct collector *c);

#endif
