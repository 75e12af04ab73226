/* routes.h -- which handler answers a request, and the request statistics
 * kept per route: pure, fuzzed, no I/O.
 *
 * Paths match exactly (no trailing slash, no prefix matching); the query
 * string is not part of the path libmicrohttpd passes.  Only GET and HEAD
 * are served; any other method on a known path is 405 with "Allow: GET,
 * HEAD", on an unknown path 404. */
#ifndef APP_ROUTES_H
#define APP_ROUTES_H

#include <stdint.h>

enum route {
    ROUTE_NOT_FOUND = 0,
    ROUTE_INDEX,     /* /          the live page */
    ROUTE_COUNTER,   /* /counter   "Counter value: N" */
    ROUTE_GOVERNOR,  /* /governor  JSON status */
    ROUTE_METRICS,   /* /metrics   Prometheus text format */
    ROUTE_HEALTHZ,   /* /healthz   liveness */
    ROUTE_READYZ,    /* /readyz    readiness */
    ROUTE_HISTORY,   /* /governor/history  JSON samples and decisions for the page */
    ROUTE_PAGE_JS,   /* /page.js   the live page's script */
    ROUTE_PAGE_CSS,  /* /page.css  the live page's style sheet */
    ROUTE_COUNT
};

/* The route of a path, ROUTE_NOT_FOUND if none. */
enum route route_lookup(const char *path);

/* The path of a route ("/counter"), "" for ROUTE_NOT_FOUND. */
const char *route_path(enum route r);

/* True for GET and HEAD. */
int route_method_allowed(const char *method);

/* The HTTP status a request gets before its handler runs: 404 for an unknown
 * path, 405 for a method other than GET/HEAD, 0 when the handler decides. */
int route_precheck(const char *method, const char *path, enum route *out);

/* ---- request statistics (counted by the HTTP server, shown by /metrics) ---- */

/* Status codes counted per route: 200, 400, 404, 405, 500, 503 and a last
 * slot for any other code.  Responses libmicrohttpd makes by itself (400,
 * 413, 414, 431 for malformed or over-long requests) never reach a handler
 * and are not counted. */
#define HTTP_NCODES 7

/* The status code counted in slot i, 0 for the "other" slot. */
unsigned http_code_at(unsigned i);

/* The slot a status code is counted in (the last one for any other code). */
unsigned http_code_slot(unsigned status);

/* A copy of the server's statistics, for /metrics. */
struct http_stats {
    uint64_t counter;                            /* last value /counter served */
    uint64_t requests[ROUTE_COUNT][HTTP_NCODES]; /* responses by route and code slot;
                                                    ROUTE_NOT_FOUND = unknown paths */
};

#endif
