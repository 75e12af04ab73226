/* http.c -- governord's HTTP server on libmicrohttpd (see http.h).
 *
 * Mode: MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL with a thread pool,
 * which is the fastest combination of libmicrohttpd 0.9.75 here (see
 * bench/README.md).  Requests use the usual two-call pattern: the first call
 * only marks the request as seen (queuing a response that early makes 0.9.75
 * close the connection), upload data is drained and ignored, and the final
 * call answers.
 *
 * Threads and connections: 0.9.75's epoll loop calls epoll_wait() again,
 * with the full timeout, whenever one call returned its maximum of 128
 * events; when exactly that many connections were ready, the thread then
 * sleeps until a connection times out while all of them wait for answers
 * (1,400 req/s instead of 80,000 at 128 keep-alive connections on one
 * thread).  So no pool thread may hold more than CONNS_PER_THREAD
 * connections (plus the listen socket and the ITC, still below 128): the
 * connection limit is at most CONNS_PER_THREAD x threads, and the default
 * pool has at least MIN_THREADS threads (they sleep in epoll_wait when idle).
 *
 * Limits: a connection limit derived from RLIMIT_NOFILE (and the above), an
 * idle timeout so slow clients cannot hold a slot forever, and an 8 KiB
 * per-connection memory pool, which answers over-long URLs and headers with
 * 414/431.  The pool is zeroed on every request, so its size is paid per
 * request: 32 KiB (the default) cost more user CPU than all of the request
 * handling.
 *
 * Shutdown: with --shutdown-delay, /readyz first fails for the delay while
 * everything else is served (a flag set by the main thread); then quiesce (stop accepting), wait for in-flight requests to finish
 * (counted from the first access-handler call to the completion callback),
 * then stop the daemon, which closes idle keep-alive connections. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "embedded.h"
#include "metrics.h"
#include "routes.h"
#include "util.h"

struct http_server {
    struct MHD_Daemon *mhd;
    struct gov *gov;
    const struct app_info *app;
    atomic_uint_fast64_t counter;  /* /counter's N: one per request, never repeated */
    atomic_int inflight;           /* requests begun and not yet completed */
    atomic_bool draining;          /* shutting down: /readyz fails, the rest is served */
    /* responses by route and status code slot, for /metrics: one relaxed
     * increment per response keeps the /counter path cheap */
    atomic_uint_fast64_t responses[ROUTE_COUNT][HTTP_NCODES];
    uint16_t port;
};

static const unsigned counted_codes[HTTP_NCODES] = {200, 400, 404, 405, 500, 503, 0};

unsigned http_code_at(unsigned i)
{
    return i < HTTP_NCODES ? counted_codes[i] : 0;
}

static unsigned code_slot(unsigned status)
{
    for (unsigned i = 0; i < HTTP_NCODES - 1; i++)
        if (counted_codes[i] == status)
            return i;
    return HTTP_NCODES - 1;
}

void http_get_stats(const struct http_server *s, struct http_stats *out)
{
    out->counter = atomic_load_explicit(&s->counter, memory_order_relaxed);
    for (unsigned r = 0; r < ROUTE_COUNT; r++)
        for (unsigned c = 0; c < HTTP_NCODES; c++)
            out->requests[r][c] =
                atomic_load_explicit(&s->responses[r][c], memory_order_relaxed);
}


#define CONNS_PER_THREAD 125u
#define MIN_THREADS 8u
#define CONN_MEMORY (8u * 1024u) /* request line and headers, parsed in place */

/* Mark a connection's request as begun (the first handler call), with its
 * body framing clear or ambiguous. */
static const char request_seen, body_ambiguous;

/* ---- responses ------------------------------------------------------------ */

/* Queues a response and counts it under its route and status code. */
static enum MHD_Result send_body(struct http_server *s, struct MHD_Connection *conn,
                                 enum route route, unsigned status, const char *type, void *body,
                                 size_t len, enum MHD_ResponseMemoryMode mode, bool no_store)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
    enum MHD_Result r;

    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    atomic_fetch_add_explicit(&s->responses[route][code_slot(status)], 1, memory_order_relaxed);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (no_store)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result send_static(struct http_server *s, struct MHD_Connection *conn,
                                   enum route route, unsigned status, const char *text)
{
    return send_body(s, conn, route, status, "text/plain; charset=utf-8", (void *)text,
                     strlen(text), MHD_RESPMEM_PERSISTENT, true);
}

/* ---- handlers ------------------------------------------------------------- */

static enum MHD_Result handle_counter(struct http_server *s, struct MHD_Connection *conn)
{
    char buf[48];
    uint64_t n = atomic_fetch_add(&s->counter, 1) + 1;
    int len = snprintf(buf, sizeof(buf), "Counter value: %llu", (unsigned long long)n);
    return send_body(s, conn, ROUTE_COUNTER, MHD_HTTP_OK, "text/plain; charset=utf-8", buf,
                     (size_t)len, MHD_RESPMEM_MUST_COPY, true);
}

static enum MHD_Result handle_governor(struct http_server *s, struct MHD_Connection *conn)
{
    struct gov_status *st = malloc(sizeof(*st));
    size_t len = 0;
    char *body;
    if (!st)
        return send_static(s, conn, ROUTE_GOVERNOR, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory\n");
    gov_status(s->gov, st);
    body = render_governor_json(st, s->app, &len);
    free(st);
    if (!body)
        return send_static(s, conn, ROUTE_GOVERNOR, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory\n");
    return send_body(s, conn, ROUTE_GOVERNOR, MHD_HTTP_OK, "application/json", body, len,
                     MHD_RESPMEM_MUST_FREE, true);
}

static enum MHD_Result handle_readyz(struct http_server *s, struct MHD_Connection *conn)
{
    char why[400], body[440];
    int len;
    if (atomic_load(&s->draining))
        return send_static(s, conn, ROUTE_READYZ, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "shutting down\n");
    if (gov_ready(s->gov, why, sizeof(why)))
        return send_static(s, conn, ROUTE_READYZ, MHD_HTTP_OK, "ready\n");
    len = snprintf(body, sizeof(body), "not ready: %s\n", why);
    return send_body(s, conn, ROUTE_READYZ, MHD_HTTP_SERVICE_UNAVAILABLE,
                     "text/plain; charset=utf-8", body, (size_t)MIN(len, (int)sizeof(body) - 1),
                     MHD_RESPMEM_MUST_COPY, true);
}

/* GET /governor/history[?since=MS&after_seq=N]: what the live page polls. */
static enum MHD_Result handle_history(struct http_server *s, struct MHD_Connection *conn)
{
    struct history_query q;
    struct gov_status *st;
    struct gov_history_sample *samples;
    unsigned n;
    size_t len = 0;
    char *body = NULL, err[128], msg[160];

    if (render_history_query(
            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since"),
            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "after_seq"), &q, err,
            sizeof(err)) < 0) {
        int mlen = snprintf(msg, sizeof(msg), "bad request: %s\n", err);
        return send_body(s, conn, ROUTE_HISTORY, MHD_HTTP_BAD_REQUEST,
                         "text/plain; charset=utf-8", msg, (size_t)MIN(mlen, (int)sizeof(msg) - 1),
                         MHD_RESPMEM_MUST_COPY, true);
    }
    st = malloc(sizeof(*st));
    samples = malloc(sizeof(*samples) * GOV_HISTORY_SIZE);
    if (st && samples) {
        n = gov_history_snapshot(s->gov, q.since_ms, samples, GOV_HISTORY_SIZE, st);
        body = render_history_json(st, samples, n, &q, gov_wall_ms(), s->app, &len);
    }
    free(st);
    free(samples);
    if (!body)
        return send_static(s, conn, ROUTE_HISTORY, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory\n");
    return send_body(s, conn, ROUTE_HISTORY, MHD_HTTP_OK, "application/json", body, len,
                     MHD_RESPMEM_MUST_FREE, true);
}

/* GET /, /page.js, /page.css: the live page, from the binary, with a
 * Content-Security-Policy that keeps it from loading or sending anything
 * anywhere but this server. */
static enum MHD_Result handle_page(struct http_server *s, struct MHD_Connection *conn,
                                   enum route route)
{
    struct embedded_asset a;
    struct MHD_Response *resp;
    enum MHD_Result r;

    if (embedded_page_asset(route, &a) < 0)
        return send_static(s, conn, route, MHD_HTTP_NOT_FOUND, "not found\n");
    resp = MHD_create_response_from_buffer(a.len, (void *)a.data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a.type) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES ||
        MHD_add_response_header(resp, "Content-Security-Policy", PAGE_CSP) != MHD_YES ||
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") != MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    atomic_fetch_add_explicit(&s->responses[route][code_slot(MHD_HTTP_OK)], 1,
                              memory_order_relaxed);
    r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result handle_metrics(struct http_server *s, struct MHD_Connection *conn)
{
    struct gov_status *st = malloc(sizeof(*st));
    struct http_stats *hs = malloc(sizeof(*hs));
    size_t len = 0;
    char *body = NULL;

    if (st && hs) {
        gov_status(s->gov, st);
        http_get_stats(s, hs);
        body = metrics_render(st, s->app, hs, &len);
    }
    free(st);
    free(hs);
    if (!body)
        return send_static(s, conn, ROUTE_METRICS, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory\n");
    return send_body(s, conn, ROUTE_METRICS, MHD_HTTP_OK, METRICS_CONTENT_TYPE, body, len,
                     MHD_RESPMEM_MUST_FREE, true);
}

/* Body framing a proxy in front could read differently from us (request
 * smuggling): several Content-Length headers, or Content-Length together with
 * Transfer-Encoding (RFC 9112 6.3).  One pass over the (few) headers. */
struct framing {
    unsigned content_length, transfer_encoding;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct framing *f = cls;
    (void)kind;
    (void)value;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        f->content_length++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
        f->transfer_encoding++;
    return MHD_YES;
}

/* 400, and the connection is closed: where the next request starts is
 * exactly what is in doubt. */
static enum MHD_Result send_ambiguous(struct MHD_Connection *conn)
{
    static const char body[] =
        "ambiguous body framing: several Content-Length or Transfer-Encoding headers\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result r;
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r = MHD_queue_response(conn, MHD_HTTP_BAD_REQUEST, resp);
    MHD_destroy_response(resp);
    return r;
}

static bool framing_ok(struct MHD_Connection *conn)
{
    struct framing f = {0, 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    return f.content_length + f.transfer_encoding <= 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct http_server *s = cls;
    enum route route;
    int status;
    (void)version;
    (void)upload_data;

    if (*con_cls == NULL) {
        *con_cls = (void *)(framing_ok(conn) ? &request_seen : &body_ambiguous);
        atomic_fetch_add(&s->inflight, 1);
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* bodies are not used by any endpoint: drain them */
        return MHD_YES;
    }
    if (*con_cls == &body_ambiguous)
        return send_ambiguous(conn);
    status = route_precheck(method, url, &route);
    if (status == 404)
        return send_static(s, conn, ROUTE_NOT_FOUND, MHD_HTTP_NOT_FOUND, "not found\n");
    if (status == 405)
        return send_static(s, conn, route, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");

    switch (route) {
    case ROUTE_COUNTER:
        return handle_counter(s, conn);
    case ROUTE_GOVERNOR:
        return handle_governor(s, conn);
    case ROUTE_METRICS:
        return handle_metrics(s, conn);
    case ROUTE_HEALTHZ:
        return gov_alive(s->gov)
                   ? send_static(s, conn, ROUTE_HEALTHZ, MHD_HTTP_OK, "ok\n")
                   : send_static(s, conn, ROUTE_HEALTHZ, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "governor loop stalled\n");
    case ROUTE_READYZ:
        return handle_readyz(s, conn);
    case ROUTE_HISTORY:
        return handle_history(s, conn);
    case ROUTE_INDEX:
    case ROUTE_PAGE_JS:
    case ROUTE_PAGE_CSS:
        return handle_page(s, conn, route);
    default:
        return send_static(s, conn, ROUTE_NOT_FOUND, MHD_HTTP_NOT_FOUND, "not found\n");
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    (void)conn;
    (void)toe;
    if (*con_cls) {
        atomic_fetch_sub(&s->inflight, 1);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];
    size_t n;
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    gov_log(LOG_DEBUG, "http", msg, NULL);
}

/* ---- set-up ------------------------------------------------------------------ */

int http_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, char *err,
                      size_t errlen)
{
    char host[256];
    const char *colon, *port;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char *end;
    long portnum;
    int r;

    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof(host))
            goto bad;
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        host[close - listen - 1] = '\0';
        port = close + 2;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof(host) || strchr(listen, ':') != colon)
            goto bad;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        port = colon + 1;
    }
    errno = 0;
    portnum = strtol(port, &end, 10);
    if (!*port || *end || errno || portnum < 0 || portnum > 65535)
        goto bad;
    r = getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res);
    if (r != 0 || !res) {
        snprintf(err, errlen, "listen address '%s': %s", listen, gai_strerror(r));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
bad:
    snprintf(err, errlen, "listen address '%s': expected ADDR:PORT, [ADDR]:PORT or :PORT",
             listen);
    return -1;
}

static unsigned default_conn_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 1000;
    /* leave room for cgroup files, the policy watch, logs and the listener */
    if (rl.rlim_cur <= 96)
        return 16;
    return (unsigned)MIN(rl.rlim_cur - 64, 10000);
}

struct http_server *http_start(const struct http_config *cfg, struct gov *g,
                               const struct app_info *app, char *err, size_t errlen)
{
    struct http_server *s = calloc(1, sizeof(*s));
    struct sockaddr_storage ss;
    socklen_t sslen;
    const union MHD_DaemonInfo *info;
    unsigned threads = cfg->threads ? cfg->threads
                                     : MAX((unsigned)MAX(sysconf(_SC_NPROCESSORS_ONLN), 1), MIN_THREADS);
    unsigned conn_limit = MIN(cfg->conn_limit ? cfg->conn_limit : default_conn_limit(),
                              CONNS_PER_THREAD * threads);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (http_parse_listen(cfg->listen, &ss, &sslen, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->gov = g;
    s->app = app;
    /* the logger first, so that option warnings go through it too; a pool of
     * one thread is just the internal polling thread */
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        threads > 1 ? threads : 0u, MHD_OPTION_CONNECTION_LIMIT, conn_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ? cfg->timeout_s : 10u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not available)",
                 cfg->listen);
        free(s);
        return NULL;
    }
    info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s;
}

uint16_t http_port(const struct http_server *s)
{
    return s->port;
}

void http_set_draining(struct http_server *s)
{
    atomic_store(&s->draining, true);
}

void http_stop(struct http_server *s, unsigned grace_ms)
{
    uint64_t deadline;
    MHD_socket listener;
    if (!s)
        return;
    listener = MHD_quiesce_daemon(s->mhd);
    if (listener != MHD_INVALID_SOCKET)
        close(listener);
    deadline = gov_now_ms() + grace_ms;
    while (atomic_load(&s->inflight) > 0 && gov_now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->mhd);
    free(s);
}
