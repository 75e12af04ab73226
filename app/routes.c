/* routes.c -- the routing table and the status code slots of the request
 * statistics (see routes.h).  The statistics live here, beside the routes
 * they are counted by, so that the HTTP server and the /metrics renderer
 * both depend on this module and not on each other. */
#include "routes.h"

#include <string.h>

static const char *const paths[ROUTE_COUNT] = {
    [ROUTE_NOT_FOUND] = "",          [ROUTE_INDEX] = "/",
    [ROUTE_COUNTER] = "/counter",    [ROUTE_GOVERNOR] = "/governor",
    [ROUTE_METRICS] = "/metrics",    [ROUTE_HEALTHZ] = "/healthz",
    [ROUTE_READYZ] = "/readyz",
    [ROUTE_HISTORY] = "/governor/history",
    [ROUTE_PAGE_JS] = "/page.js",    [ROUTE_PAGE_CSS] = "/page.css",
};

enum route route_lookup(const char *path)
{
    if (!path)
        return ROUTE_NOT_FOUND;
    for (int r = ROUTE_INDEX; r < ROUTE_COUNT; r++)
        if (strcmp(path, paths[r]) == 0)
            return (enum route)r;
    return ROUTE_NOT_FOUND;
}

const char *route_path(enum route r)
{
    return (unsigned)r < ROUTE_COUNT ? paths[r] : "";
}

int route_method_allowed(const char *method)
{
    return method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
}

int route_precheck(const char *method, const char *path, enum route *out)
{
    *out = route_lookup(path);
    if (*out == ROUTE_NOT_FOUND)
        return 404;
    if (!route_method_allowed(method))
        return 405;
    return 0;
}

static const unsigned counted_codes[HTTP_NCODES] = {200, 400, 404, 405, 500, 503, 0};

unsigned http_code_at(unsigned i)
{
    return i < HTTP_NCODES ? counted_codes[i] : 0;
}

unsigned http_code_slot(unsigned status)
{
    for (unsigned i = 0; i < HTTP_NCODES - 1; i++)
        if (counted_codes[i] == status)
            return i;
    return HTTP_NCODES - 1;
}
