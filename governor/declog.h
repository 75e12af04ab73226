/* declog.h -- the decision log: the last GOV_DECLOG_SIZE decisions.
 *
 * Every level change and every action becomes a record with a monotonic
 * sequence number.  Repeats of the same admission action (evict/refuse) or
 * of the same dry-run action at the same level are folded into the newest
 * record (its `repeat` count grows) so that a collector rotating blocks ten
 * times a second does not push the interesting records out.
 *
 * The ring itself is not locked: its owner (struct gov) holds state_lock
 * around every call. */
#ifndef GOVERNOR_DECLOG_H
#define GOVERNOR_DECLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "governor.h" /* struct gov_decision, GOV_DECLOG_SIZE */

struct gov_declog {
    struct gov_decision ring[GOV_DECLOG_SIZE];
    unsigned head;     /* index of the next slot to write */
    unsigned count;    /* records held, <= GOV_DECLOG_SIZE */
    uint64_t next_seq; /* sequence number of the next new record */
};

void gov_declog_init(struct gov_declog *log);

/* Appends d (its seq is assigned here) or folds it into the newest record
 * when it repeats it.  Returns true when a new record was created, false
 * when it was folded. */
bool gov_declog_push(struct gov_declog *log, const struct gov_decision *d);

/* Copies up to max records, newest first; returns how many. */
unsigned gov_declog_copy(const struct gov_declog *log, struct gov_decision *out, unsigned max);

#endif
