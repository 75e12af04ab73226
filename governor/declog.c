/* declog.c -- ring buffer of decision records (see declog.h). */
#include "declog.h"

#include <string.h>

void gov_declog_init(struct gov_declog *log)
{
    memset(log, 0, sizeof(*log));
    log->next_seq = 1;
}

static struct gov_decision *newest(struct gov_declog *log)
{
    if (log->count == 0)
        return NULL;
    return &log->ring[(log->head + GOV_DECLOG_SIZE - 1) % GOV_DECLOG_SIZE];
}

/* Repeats worth folding: admission actions, and dry-run actions, that match
 * the newest record in level, action and mode. */
static bool folds_into(const struct gov_decision *last, const struct gov_decision *d)
{
    bool foldable = d->action == GOV_ACT_EVICT || d->action == GOV_ACT_REFUSE || d->dry_run;
    return last && foldable && last->action == d->action && last->level == d->level &&
           last->from == d->from && last->dry_run == d->dry_run;
}

bool gov_declog_push(struct gov_declog *log, const struct gov_decision *d)
{
    struct gov_decision *last = newest(log);

    if (folds_into(last, d)) {
        uint64_t seq = last->seq;
        uint32_t repeat = last->repeat;
        uint64_t released = last->released, would = last->would_release;
        *last = *d;
        last->seq = seq;
        last->repeat = repeat + 1;
        last->released = released + d->released;
        last->would_release = would + d->would_release;
        return false;
    }
    log->ring[log->head] = *d;
    log->ring[log->head].seq = log->next_seq++;
    log->ring[log->head].repeat = 1;
    log->head = (log->head + 1) % GOV_DECLOG_SIZE;
    if (log->count < GOV_DECLOG_SIZE)
        log->count++;
    return true;
}

unsigned gov_declog_copy(const struct gov_declog *log, struct gov_decision *out, unsigned max)
{
    unsigned n = log->count < max ? log->count : max;
    for (unsigned i = 0; i < n; i++)
        out[i] = log->ring[(log->head + GOV_DECLOG_SIZE - 1 - i) % GOV_DECLOG_SIZE];
    return n;
}
