/* render.h -- turn a governor status snapshot into response bodies.
 *
 * Renderers take a copy of the status (never live state) and return a
 * malloc'd body that the HTTP layer hands to libmicrohttpd to free. */
#ifndef APP_RENDER_H
#define APP_RENDER_H

#include <stddef.h>

#include "counter.h"
#include "governor.h"

struct collector;
struct trimsock;

/* Facts about the process that do not change while it runs, and the
 * collector, whose own counters (atomics) the documents read live. */
struct app_info {
    const char *version;
    const char *pod_name, *pod_namespace, *node_name; /* NULL when unset */
    int64_t start_wall_ms;
    double process_start_s;   /* the process's real start (Unix seconds), 0 if unknown */
    struct collector *collector; /* NULL: no collector (counters read 0) */
    struct trimsock *sock;       /* the trim protocol's socket; NULL: none */
};

/* GET /governor: the JSON status document, with the counter store's state
 * under "counter" (null when cs is NULL).  Returns NULL on out of memory. */
char *render_governor_json(const struct gov_status *st, const struct app_info *app,
                           const struct counter_status *cs, size_t *len);

/* The query of GET /governor/history: the page asks only for what it does
 * not have yet.  since_ms: samples (and updated decisions) after this
 * wall-clock time; after_seq: decisions with a higher sequence number. */
struct history_query {
    int64_t since_ms;
    uint64_t after_seq;
};

/* Parses the query parameters (either may be NULL = 0): decimal integers,
 * nothing else.  Returns 0, or -1 with a message in err. */
int render_history_query(const char *since, const char *after_seq, struct history_query *q,
                         char *err, size_t errlen);

/* GET /governor/history: the status the page shows, the samples (oldest
 * first, as gov_history_snapshot() copied them after q->since_ms) and the
 * decisions with seq > q->after_seq or updated after q->since_ms (all of
 * the decision log for an empty query), newest first.  now_ms is the
 * server's wall clock, the right edge of the page's chart.  Returns NULL on
 * out of memory. */
char *render_history_json(const struct gov_status *st, const struct gov_history_sample *samples,
                          unsigned nsamples, const struct history_query *q, int64_t now_ms,
                          const struct app_info *app, size_t *len);

#endif
