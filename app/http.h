/* http.h -- the HTTP server (libmicrohttpd) of governord.
 *
 * Serves /counter, /governor, /governor/history, /metrics, /healthz, /readyz
 * and the live page (/, /page.js, /page.css) from a pool of threads with
 * epoll.  Handlers read copies of the governor's state; /counter asks the
 * counter store (app/counter.h); the only state the server owns is its own
 * statistics (responses by path and status code, for /metrics), all atomics. */
#ifndef APP_HTTP_H
#define APP_HTTP_H

#include <stdint.h>
#include <sys/socket.h>

#include "counter.h"
#include "governor.h"
#include "render.h"
#include "routes.h"

struct http_server;

struct http_config {
    const char *listen;   /* "ADDR:PORT", "[ADDR]:PORT" or ":PORT" */
    unsigned threads;     /* worker threads (0 = number of CPUs, at least 8) */
    unsigned conn_limit;  /* 0 = derived from RLIMIT_NOFILE; never above 125 x threads */
    unsigned timeout_s;   /* idle connection timeout */
    unsigned reserved_fds; /* descriptors other parts open later (the trim
                            * protocol's clients), left out of the limit */
    struct counter_store *counter; /* /counter's store (required; outlives the server) */
};

/* Parses "ADDR:PORT" into a socket address.  Returns 0 or -1 with err. */
int http_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, char *err,
                      size_t errlen);

/* Starts listening and serving.  Returns NULL with err on failure. */
struct http_server *http_start(const struct http_config *cfg, struct gov *g,
                               const struct app_info *app, char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
uint16_t http_port(const struct http_server *s);

/* Copies the statistics (relaxed atomic loads: each figure is exact, the
 * set is not one instant). */
void http_get_stats(const struct http_server *s, struct http_stats *out);

/* From now on /readyz answers 503 "shutting down"; every other path is
 * served as before (--shutdown-delay).  Safe from any thread. */
void http_set_draining(struct http_server *s);

/* Stops accepting, lets in-flight responses finish (at most grace_ms), then
 * closes every connection and frees the server. */
void http_stop(struct http_server *s, unsigned grace_ms);

#endif
