/* history.c -- ring buffer of one-second memory samples (see history.h).
 *
 * Pure functions over a fixed array: no clock, no I/O, no allocation, so the
 * unit test drives them with made-up times.  A tick costs one division and
 * a few compares. */
#include "history.h"

#include <string.h>

void gov_history_init(struct gov_history *h)
{
    memset(h, 0, sizeof(*h));
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Folds a tick into the sample of its second (see history.h). */
static void fold(struct gov_history_sample *into, const struct gov_history_sample *s)
{
    into->limit = into->limit < s->limit ? into->limit : s->limit;
    into->level = into->level > s->level ? into->level : s->level;
    if (!s->ok)
        return;
    if (!into->ok) {
        /* the first good tick of the second: take its figures as they are */
        into->ok = true;
        into->usage = s->usage;
        into->working_set = s->working_set;
        into->current = s->current;
        into->buffer = s->buffer;
        return;
    }
    into->usage = max_u64(into->usage, s->usage);
    into->working_set = max_u64(into->working_set, s->working_set);
    into->current = max_u64(into->current, s->current);
    into->buffer = max_u64(into->buffer, s->buffer);
}

bool gov_history_opens(const struct gov_history *h, uint64_t now_ms)
{
    return h->count == 0 || now_ms / GOV_HISTORY_PERIOD_MS != h->last_second;
}

bool gov_history_add(struct gov_history *h, uint64_t now_ms, const struct gov_history_sample *s)
{
    if (!gov_history_opens(h, now_ms)) {
        fold(&h->ring[(h->head + GOV_HISTORY_SIZE - 1) % GOV_HISTORY_SIZE], s);
        return false;
    }
    h->ring[h->head] = *s;
    h->head = (h->head + 1) % GOV_HISTORY_SIZE;
    if (h->count < GOV_HISTORY_SIZE)
        h->count++;
    h->last_second = now_ms / GOV_HISTORY_PERIOD_MS;
    return true;
}

unsigned gov_history_copy(const struct gov_history *h, int64_t since_ms,
                          struct gov_history_sample *out, unsigned max)
{
    unsigned oldest = (h->head + GOV_HISTORY_SIZE - h->count) % GOV_HISTORY_SIZE;
    unsigned wanted = 0, skip, n = 0;

    /* two passes, so that a small max keeps the newest samples */
    for (unsigned i = 0; i < h->count; i++)
        if (h->ring[(oldest + i) % GOV_HISTORY_SIZE].wall_ms > since_ms)
            wanted++;
    skip = wanted > max ? wanted - max : 0;
    for (unsigned i = 0; i < h->count && n < max; i++) {
        const struct gov_history_sample *s = &h->ring[(oldest + i) % GOV_HISTORY_SIZE];
        if (s->wall_ms <= since_ms)
            continue;
        if (skip) {
            skip--;
            continue;
        }
        out[n++] = *s;
    }
    return n;
}
