/* fuzz_routes.c -- the HTTP routing layer: method and path as
 * libmicrohttpd hands them over (any bytes up to a NUL; the input is split
 * at its first newline into method and path).  A route is found only for an
 * exact path, 405 only for a known path, and route_path() of the result
 * names the path again. */
#include <string.h>

#include "fuzz.h"
#include "routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    char *nl = strchr(s, '\n');
    const char *method = "GET", *path = s;
    enum route r;
    int status;

    if (nl) {
        *nl = '\0';
        method = s;
        path = nl + 1;
    }
    status = route_precheck(method, path, &r);
    if (status == 404 && r != ROUTE_NOT_FOUND)
        abort();
    if (status != 404 && strcmp(route_path(r), path) != 0)
        abort();
    if (status == 0 && !route_method_allowed(method))
        abort();
    if (status == 405 && route_method_allowed(method))
        abort();
    (void)route_path((enum route)(size % 16));
    free(s);
    return 0;
}
