/* routes.h -- which handler answers a request, and the request statistics
 * kept per route: pure, fuzzed, no I/O.
 *
 * Paths match exactly (no trailing slash, no prefix matching); the query
 * string is not part of the path libmicrohttpd passes.  Only GET and HEAD
 * are served; any other method on a known path is 405 with "Allow: GET,
 * HEAD", on an unknown path 404. */
#ifndef APP_ROUTES_H
#define APP_ROUTES_H

#include <stdbool.h>
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

/* ---- request checks (RFC 9112) ------------------------------------------------
 *
 * libmicrohttpd 0.9.75 is lenient: it accepts a header name with white
 * space before the colon (so "Content-Length : 5" is not a length and the
 * body runs as a second request), reads a body of an unknown transfer coding
 * until the connection closes, and does not care about Host.  The server
 * runs these checks on every request before answering it. */

/* What a request's header fields say about its framing, added up field by
 * field (start from all zeros). */
struct request_fields {
    unsigned host;              /* Host fields */
    unsigned content_length;    /* Content-Length fields */
    unsigned transfer_encoding; /* Transfer-Encoding fields */
    bool unknown_coding;        /* a Transfer-Encoding other than exactly "chunked" */
    bool bad_name;              /* a field name that is not a token (space, ...) */
    bool bad_value;             /* a control character (not HTAB) in a field value */
};

/* Adds one header field to f. */
void request_fields_add(struct request_fields *f, const char *name, const char *value);

/* True when a raw request target (before percent-decoding) may be served:
 * no control character, space or DEL, and no "%00" (which decodes to a NUL
 * that would cut the path short). */
bool request_target_ok(const char *target);

/* The status a request gets for its header fields: 0 when they are fine,
 * 400 for a bad name or value, a missing Host (HTTP/1.1) or several Host
 * fields, several Content-Length or Transfer-Encoding fields or both of
 * them; 501 for a transfer coding other than chunked.  *why names the
 * reason (a static string). */
int request_verdict(const struct request_fields *f, bool http11, const char **why);

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
    uint64_t counter;                            /* last value GET /counter served */
    uint64_t requests[ROUTE_COUNT][HTTP_NCODES]; /* responses by route and code slot;
                                                    ROUTE_NOT_FOUND = unknown paths */
};

#endif
