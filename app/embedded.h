/* embedded.h -- files compiled into the binary (see embedded.c). */
#ifndef APP_EMBEDDED_H
#define APP_EMBEDDED_H

#include <stddef.h>

#include "routes.h"

/* policies/default.ini, NUL-terminated: the policy used when no policy file
 * exists, so that governord runs with no configuration at all. */
extern const char governord_default_policy[];

/* A file of the live page (app/page/): its bytes and content type. */
struct embedded_asset {
    const char *data;
    size_t len;
    const char *type;
};

/* The page file served at route r (ROUTE_INDEX, ROUTE_PAGE_JS,
 * ROUTE_PAGE_CSS).  Returns 0, or -1 for any other route. */
int embedded_page_asset(enum route r, struct embedded_asset *out);

/* The Content-Security-Policy the page is written for and served with:
 * nothing inline, nothing from any other host, no frames, no forms.  The
 * script only fetches /governor/history from the server that sent it. */
#define PAGE_CSP                                                                               \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "          \
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

#endif
