/* history.h -- the governor's memory history: one sample per second.
 *
 * The live page (GET /) draws the last minutes of memory against the limit.
 * The governor thread feeds this ring from every tick, and the ring keeps
 * one sample per second of monotonic time (so a wall-clock step cannot
 * bunch or drop samples): the first tick of a second opens a sample, later
 * ticks in the same second fold into it, keeping the peak of usage, working
 * set, current, buffer and level and the lowest limit.  A spike that a
 * shrink ends within the same second therefore still shows on the chart.
 * GOV_HISTORY_SIZE samples are kept, i.e. 15 minutes at one tick per second
 * or faster (more with interval_ms above one second: one sample per tick).
 *
 * Memory is fixed: the ring is an array inside struct gov, GOV_HISTORY_SIZE
 * * sizeof(struct gov_history_sample) bytes (900 * 56 = 50,400 bytes on
 * x86-64); nothing is allocated after gov_new().
 *
 * The ring itself is not locked: its owner (struct gov) holds state_lock
 * around every call, as for the decision log. */
#ifndef GOVERNOR_HISTORY_H
#define GOVERNOR_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "governor.h" /* struct gov_history_sample, GOV_HISTORY_SIZE */

struct gov_history {
    struct gov_history_sample ring[GOV_HISTORY_SIZE];
    unsigned head;            /* index of the next slot to write */
    unsigned count;           /* samples held, <= GOV_HISTORY_SIZE */
    uint64_t last_second;     /* monotonic second of the newest sample */
};

void gov_history_init(struct gov_history *h);

/* True when a tick at monotonic time now_ms would open a new sample (the
 * caller needs a wall-clock time only then). */
bool gov_history_opens(const struct gov_history *h, uint64_t now_ms);

/* Adds the tick at monotonic time now_ms: opens a new sample (s as it is)
 * when a new second began, else folds s into the newest sample.  Returns
 * true when a new sample was opened. */
bool gov_history_add(struct gov_history *h, uint64_t now_ms, const struct gov_history_sample *s);

/* Copies the samples whose wall_ms is after since_ms (0 = all), oldest
 * first; when more than max qualify, the newest max.  Returns how many.
 * The newest sample may still grow until its second is over. */
unsigned gov_history_copy(const struct gov_history *h, int64_t since_ms,
                          struct gov_history_sample *out, unsigned max);

#endif
