/* routes.c -- the routing table and the status code slots of the request
 * statistics (see routes.h).  The statistics live here, beside the routes
 * they are counted by, so that the HTTP server and the /metrics renderer
 * both depend on this module and not on each other. */
#include "routes.h"

#include <string.h>
#include <strings.h>

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

/* ---- request checks -------------------------------------------------------- */

/* tchar of RFC 9110 5.6.2 */
static bool tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

void request_fields_add(struct request_fields *f, const char *name, const char *value)
{
    const unsigned char *p;

    if (!name || !*name)
        f->bad_name = true;
    else
        for (p = (const unsigned char *)name; *p; p++)
            if (!tchar(*p))
                f->bad_name = true;
    if (value)
        for (p = (const unsigned char *)value; *p; p++)
            if (ctl(*p) && *p != '\t')
                f->bad_value = true;
    if (!name)
        return;
    if (strcasecmp(name, "Host") == 0) {
        f->host++;
    } else if (strcasecmp(name, "Content-Length") == 0) {
        f->content_length++;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        f->transfer_encoding++;
        /* exactly what libmicrohttpd takes for chunked; anything else it
         * would read until the connection closes */
        if (!value || strcasecmp(value, "chunked") != 0)
            f->unknown_coding = true;
    }
}

bool request_target_ok(const char *target)
{
    if (!target || !*target)
        return false;
    for (const unsigned char *p = (const unsigned char *)target; *p; p++) {
        if (ctl(*p) || *p == ' ')
            return false;
        if (p[0] == '%' && p[1] == '0' && p[2] == '0')
            return false;
    }
    return true;
}

int request_verdict(const struct request_fields *f, bool http11, const char **why)
{
    if (f->bad_name) {
        *why = "malformed header field name (white space before the colon?)";
        return 400;
    }
    if (f->bad_value) {
        *why = "control character in a header field value";
        return 400;
    }
    if (f->host > 1 || (http11 && f->host == 0)) {
        *why = f->host ? "several Host header fields" : "HTTP/1.1 request without Host";
        return 400;
    }
    if (f->content_length + f->transfer_encoding > 1) {
        *why = "ambiguous body framing: several Content-Length or Transfer-Encoding headers";
        return 400;
    }
    if (f->unknown_coding) {
        *why = "transfer coding not implemented (only chunked)";
        return 501;
    }
    *why = "";
    return 0;
}
