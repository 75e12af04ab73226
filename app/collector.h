/* collector.h -- the seed's metrics collector, bounded by the governor.
 *
 * Every collector.interval_ms it asks the governor for block_size bytes
 * (admission control), allocates the block with mmap, writes every page so
 * it is really resident, and appends it to a FIFO buffer.  It is registered
 * with the governor as a shrinker: a shrink drops the oldest blocks and
 * munmap()s them, so the memory goes back to the kernel at once.  Block size,
 * rate and on/off come from the live policy and may change on reload; a
 * reload re-arms the collector's timer at once. */
#ifndef APP_COLLECTOR_H
#define APP_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "governor.h"

struct collector;

/* Creates a collector bound to governor g and registers it as a shrinker.
 * Returns NULL on failure. */
struct collector *collector_new(struct gov *g);

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
