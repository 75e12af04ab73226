/* render.h -- turn a governor status snapshot into response bodies.
 *
 * Renderers take a copy of the status (never live state) and return a
 * malloc'd body that the HTTP layer hands to libmicrohttpd to free. */
#ifndef APP_RENDER_H
#define APP_RENDER_H

#include <stddef.h>

#include "governor.h"

/* Facts about the process that do not change while it runs. */
struct app_info {
    const char *version;
    const char *pod_name, *pod_namespace, *node_name; /* NULL when unset */
    int64_t start_wall_ms;
    double process_start_s;   /* the process's real start (Unix seconds), 0 if unknown */
};

/* GET /governor: the JSON status document.  Returns NULL on out of memory. */
char *render_governor_json(const struct gov_status *st, const struct app_info *app,
                           size_t *len);

#endif
