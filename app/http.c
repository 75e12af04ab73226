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
 * (bench/README.md has the measurement).  So no pool thread may hold more than CONNS_PER_THREAD
 * connections (plus the listen socket and the ITC, still below 128): the
 * connection limit is at most CONNS_PER_THREAD x threads, and the default
 * pool has at least MIN_THREADS threads (they sleep in epoll_wait when idle).
 *
 * Limits: a connection limit derived from RLIMIT_NOFILE (and the above) that
 * leaves the descriptors already open (the governor's: it starts first), the
 * pool's own (an epoll fd and an eventfd per thread, the listener) and
 * FD_HEADROOM for the governor's later opens free, so that clients cannot
 * take the descriptors the governor needs to read its files; an
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
#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "counter.h"
#include "embedded.h"
#include "metrics.h"
#include "routes.h"
#include "common.h"

struct http_server {
    struct MHD_Daemon *mhd;
    struct gov *gov;
    const struct app_info *app;
    struct counter_store *counter; /* /counter's N (app/counter.h); not owned */
    atomic_int inflight;           /* requests begun and not yet completed */
    atomic_size_t output_bytes;    /* rendered bodies held for connections (OUTPUT_BUDGET) */
    atomic_bool draining;          /* shutting down: /readyz fails, the rest is served */
    /* responses by route and status code slot, for /metrics: one relaxed
     * increment per response keeps the /counter path cheap */
    atomic_uint_fast64_t responses[ROUTE_COUNT][HTTP_NCODES];
    uint16_t port;
};

void http_get_stats(const struct http_server *s, struct http_stats *out)
{
    struct counter_status cs;
    counter_get_status(s->counter, &cs);
    out->counter = cs.last;
    for (unsigned r = 0; r < ROUTE_COUNT; r++)
        for (unsigned c = 0; c < HTTP_NCODES; c++)
            out->requests[r][c] =
                atomic_load_explicit(&s->responses[r][c], memory_order_relaxed);
}


#define CONNS_PER_THREAD 125u
#define MIN_THREADS 8u
#define CONN_MEMORY (8u * 1024u) /* request line and headers, parsed in place */

/* *con_cls of a request from the first handler call on (before it: what
 * uri_logged() returned). */
static const char request_seen;

/* ---- output memory ------------------------------------------------------------
 *
 * A client that sends requests and never reads the answers pins memory the
 * governor cannot shrink: the rendered body (until libmicrohttpd has handed
 * all of it to the kernel) and the socket's send queue, which cgroup v2
 * charges to this process's cgroup and which TCP autotuning lets grow to
 * net.ipv4.tcp_wmem's maximum (4 MiB by default) per connection.  Three
 * bounds, documented in README.md ("Limits"):
 *   - SEND_BUFFER: SO_SNDBUF and SO_RCVBUF of every accepted socket (the
 *     kernel doubles them for its bookkeeping and stops autotuning), so a
 *     connection queues at most 2 x SEND_BUFFER each way in the kernel;
 *   - OUTPUT_BUDGET: rendered bodies (/governor, /governor/history,
 *     /metrics) still held for their connections; past it those paths answer
 *     503 with Retry-After until slow readers free theirs;
 *   - the connection limit and the idle timeout, which closes a connection
 *     whose answer has not moved for timeout_s seconds (the send timeout),
 *     with a reset that frees its queues (reset_on_close()).
 * Responses are one at a time per connection: libmicrohttpd reads the next
 * pipelined request only after the previous answer is out. */
#define SEND_BUFFER (16 * 1024)
#define OUTPUT_BUDGET ((size_t)16 << 20)

struct charge {
    struct http_server *s;
    void *body;
    size_t len;
};

static void release_charge(void *cls)
{
    struct charge *c = cls;
    atomic_fetch_sub_explicit(&c->s->output_bytes, c->len, memory_order_relaxed);
    free(c->body);
    free(c);
}

/* A response owning body (malloc'd), whose length counts against
 * OUTPUT_BUDGET until libmicrohttpd frees it.  Frees body on failure. */
static struct MHD_Response *charged_response(struct http_server *s, void *body, size_t len)
{
    struct charge *c = malloc(sizeof(*c));
    struct MHD_Response *resp;
    if (!c) {
        free(body);
        return NULL;
    }
    *c = (struct charge){s, body, len};
    atomic_fetch_add_explicit(&s->output_bytes, len, memory_order_relaxed);
    resp = MHD_create_response_from_buffer_with_free_callback_cls(len, body, release_charge, c);
    if (!resp)
        release_charge(c);
    return resp;
}

/* True when rendered bodies held for connections have reached the budget. */
static bool output_full(struct http_server *s)
{
    return atomic_load_explicit(&s->output_bytes, memory_order_relaxed) >= OUTPUT_BUDGET;
}

/* Every accepted socket gets its SO_SNDBUF and SO_RCVBUF before its first
 * request (the receive side holds pipelined requests not yet read; requests
 * are small and bodies are ignored, so a small window costs nothing). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    const union MHD_ConnectionInfo *ci;
    int size = SEND_BUFFER;
    (void)cls;
    (void)socket_context;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci && (setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) < 0 ||
               setsockopt(ci->connect_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0))
        gov_log(LOG_DEBUG, "http", "cannot set SO_SNDBUF/SO_RCVBUF", NULL);
}

/* An answer that has not moved for the idle timeout is abandoned: when
 * libmicrohttpd then closes the socket, the kernel would keep the unsent
 * queue -- with the FIN behind it -- as an orphan socket for minutes of
 * zero-window probes, still charged to this cgroup.  SO_LINGER 0 makes that
 * close a reset, which frees the queue at once.  (Only for timeouts: an
 * ordinary close must let the last answer drain.) */
static void reset_on_close(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (ci && setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
        gov_log(LOG_DEBUG, "http", "cannot set SO_LINGER", NULL);
}

/* ---- responses ------------------------------------------------------------ */

/* Queues a response and counts it under its route and status code. */
static enum MHD_Result send_body(struct http_server *s, struct MHD_Connection *conn,
                                 enum route route, unsigned status, const char *type, void *body,
                                 size_t len, enum MHD_ResponseMemoryMode mode, bool no_store)
{
    struct MHD_Response *resp;
    enum MHD_Result r;

    if (mode == MHD_RESPMEM_MUST_FREE) {
        resp = charged_response(s, body, len);
    } else {
        resp = MHD_create_response_from_buffer(len, body, mode);
    }
    if (!resp)
        return MHD_NO;
    atomic_fetch_add_explicit(&s->responses[route][http_code_slot(status)], 1, memory_order_relaxed);
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

/* 503 while rendered bodies held for slow readers fill OUTPUT_BUDGET. */
/* A one-line text/plain answer (text and a line feed; cut to fit), never
 * cached, counted for `route`.  TEXT_RETRY adds Retry-After: 1 (a 503 that
 * passes), TEXT_CLOSE adds Connection: close (libmicrohttpd then reads
 * nothing more from the connection). */
enum { TEXT_RETRY = 1, TEXT_CLOSE = 2 };
static enum MHD_Result send_text(struct http_server *s, struct MHD_Connection *conn,
                                 enum route route, unsigned status, const char *text,
                                 unsigned flags)
{
    char body[384];
    int len = snprintf(body, sizeof(body), "%s\n", text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        (size_t)MIN(MAX(len, 0), (int)sizeof(body) - 1), body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result r;
    if (!resp)
        return MHD_NO;
    atomic_fetch_add_explicit(&s->responses[route][http_code_slot(status)], 1,
                              memory_order_relaxed);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (flags & TEXT_RETRY)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (flags & TEXT_CLOSE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result send_busy(struct http_server *s, struct MHD_Connection *conn,
                                 enum route route)
{
    return send_text(s, conn, route, MHD_HTTP_SERVICE_UNAVAILABLE,
                     "busy: too many answers wait for slow clients; retry", TEXT_RETRY);
}

/* ---- handlers ------------------------------------------------------------- */

/* /counter: GET takes the store's next value, or 503 with Retry-After and
 * the one-line reason while the store cannot give one (never a made-up
 * number).  HEAD takes none: it is a safe method (RFC 9110 9.2.1) that
 * monitors use to probe, so it answers with the headers a GET would get now
 * (the Content-Length of the value after the last one this process served)
 * and leaves the value to the next GET. */
static enum MHD_Result handle_counter(struct http_server *s, struct MHD_Connection *conn,
                                      const char *method)
{
    char buf[48], why[300];
    uint64_t n = 0;
    int len;
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

    if (head ? counter_ready(s->counter, why, sizeof(why))
             : counter_next(s->counter, &n, why, sizeof(why)) == 0) {
        if (head) {
            struct counter_status cs;
            counter_get_status(s->counter, &cs);
            n = cs.last + 1;
        }
        len = snprintf(buf, sizeof(buf), "Counter value: %llu", (unsigned long long)n);
        return send_body(s, conn, ROUTE_COUNTER, MHD_HTTP_OK, "text/plain; charset=utf-8", buf,
                         (size_t)len, MHD_RESPMEM_MUST_COPY, true);
    }
    return send_text(s, conn, ROUTE_COUNTER, MHD_HTTP_SERVICE_UNAVAILABLE, why, TEXT_RETRY);
}

static enum MHD_Result handle_governor(struct http_server *s, struct MHD_Connection *conn)
{
    struct gov_status *st;
    struct counter_status *cs;
    size_t len = 0;
    char *body = NULL;
    if (output_full(s))
        return send_busy(s, conn, ROUTE_GOVERNOR);
    st = malloc(sizeof(*st));
    cs = malloc(sizeof(*cs));
    if (st && cs) {
        gov_status(s->gov, st);
        counter_get_status(s->counter, cs);
        body = render_governor_json(st, s->app, cs, &len);
    }
    free(st);
    free(cs);
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
    if (gov_ready(s->gov, why, sizeof(why)) && counter_ready(s->counter, why, sizeof(why)))
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
    if (output_full(s))
        return send_busy(s, conn, ROUTE_HISTORY);
    st = malloc(sizeof(*st));
    samples = malloc(sizeof(*samples) * GOV_HISTORY_SIZE);
    if (st && samples) {
        n = gov_history_snapshot(s->gov, q.since_ms, samples, GOV_HISTORY_SIZE, st);
        body = render_history_json(st, samples, n, &q, app_wall_ms(), s->app, &len);
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
    atomic_fetch_add_explicit(&s->responses[route][http_code_slot(MHD_HTTP_OK)], 1,
                              memory_order_relaxed);
    r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result handle_metrics(struct http_server *s, struct MHD_Connection *conn)
{
    struct gov_status *st;
    struct http_stats *hs;
    struct counter_status *cs;
    size_t len = 0;
    char *body = NULL;

    if (output_full(s))
        return send_busy(s, conn, ROUTE_METRICS);
    st = malloc(sizeof(*st));
    hs = malloc(sizeof(*hs));
    cs = malloc(sizeof(*cs));
    if (st && hs && cs) {
        gov_status_brief(s->gov, st); /* /metrics shows no decisions */
        http_get_stats(s, hs);
        counter_get_status(s->counter, cs);
        body = metrics_render(st, s->app, hs, cs, &len);
    }
    free(st);
    free(hs);
    free(cs);
    if (!body)
        return send_static(s, conn, ROUTE_METRICS, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory\n");
    return send_body(s, conn, ROUTE_METRICS, MHD_HTTP_OK, METRICS_CONTENT_TYPE, body, len,
                     MHD_RESPMEM_MUST_FREE, true);
}

/* ---- requests RFC 9112 says to reject ------------------------------------------
 *
 * libmicrohttpd parses a request in place in its read buffer: it replaces
 * the spaces around the request target, each header's colon and each line
 * end (CR and LF) with NULs, and hands out pointers into that buffer.  A NUL
 * the client sent therefore cuts a string short without any trace in the
 * strings themselves ("GET /counter\0/x" arrives as "/counter"); it shows
 * only in where the strings lie:
 *   - the request target: the URI log callback sees it raw, before
 *     unescaping, and records where its first NUL is; that must be the NUL
 *     that replaced the space before the version, i.e. version - 1;
 *   - header fields (in the order they arrived): a value must end one or two
 *     bytes (LF, CRLF) before the next field's name begins, and the byte
 *     after the last value's NUL must be another line-end NUL.
 * A NUL directly before a bare LF looks like a CR and goes unnoticed; it hides
 * nothing, as no byte follows it on its line.  The rest (field names,
 * control characters, Host, framing) is decided by request_verdict()
 * (routes.c) from the strings. */

/* The URI log callback's verdict on a raw request target with a character
 * that is never valid (control, space, "%00"). */
static const char target_bad;

static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    if (!uri || !request_target_ok(uri))
        return (void *)&target_bad;
    return (void *)(uri + strlen(uri)); /* its first NUL */
}

struct field_scan {
    struct request_fields fields;
    const char *value_end; /* the previous value's terminating NUL */
    bool hidden_nul;
};

static enum MHD_Result scan_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct field_scan *f = cls;
    (void)kind;
    if (f->value_end && (key - f->value_end < 1 || key - f->value_end > 2))
        f->hidden_nul = true;
    request_fields_add(&f->fields, key, value);
    f->value_end = value ? value + strlen(value) : NULL;
    return MHD_YES;
}

/* The status a request gets before any handler runs (0: none), with why. */
static int check_request(struct MHD_Connection *conn, const void *target_end,
                         const char *version, const char **why)
{
    struct field_scan f;
    int status;

    if (target_end == &target_bad || !version || target_end != version - 1) {
        *why = "malformed request target (NUL, control character, space or %00)";
        return 400;
    }
    memset(&f, 0, sizeof(f));
    MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_field, &f);
    if (f.hidden_nul || (f.value_end && f.value_end[1] != '\0')) {
        *why = "malformed header line (NUL or line folding)";
        return 400;
    }
    status = request_verdict(&f.fields, strcmp(version, MHD_HTTP_VERSION_1_1) == 0, why);
    return status;
}

/* 400 or 501, queued while the request's body (if any) is unread: then
 * libmicrohttpd reads nothing more from the connection, sends the answer
 * with "Connection: close" and closes it -- where the next request would
 * start is exactly what is in doubt. */
static enum MHD_Result send_reject(struct http_server *s, struct MHD_Connection *conn,
                                   const char *url, unsigned status, const char *why)
{
    return send_text(s, conn, route_lookup(url), status, why, TEXT_CLOSE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct http_server *s = cls;
    enum route route;
    int status;
    (void)upload_data;

    if (*con_cls != &request_seen) {
        /* the first call: the request line and headers are complete */
        const char *why;
        int reject = check_request(conn, *con_cls, version, &why);
        *con_cls = (void *)&request_seen;
        atomic_fetch_add(&s->inflight, 1);
        if (reject)
            return send_reject(s, conn, url, (unsigned)reject, why);
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* bodies are not used by any endpoint: drain them */
        return MHD_YES;
    }
    status = route_precheck(method, url, &route);
    if (status == 404)
        return send_static(s, conn, ROUTE_NOT_FOUND, MHD_HTTP_NOT_FOUND, "not found\n");
    if (status == 405)
        return send_static(s, conn, route, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");

    switch (route) {
    case ROUTE_COUNTER:
        return handle_counter(s, conn, method);
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
    /* also called for requests that ended before the handler saw them (the
     * URI log callback already made libmicrohttpd aware of them) */
    if (*con_cls == &request_seen)
        atomic_fetch_sub(&s->inflight, 1);
    *con_cls = NULL;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        reset_on_close(conn);
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

/* Descriptors the governor may still open after the server started: a
 * cgroup file reopened after a rename, the policy file (which also has a
 * reserve descriptor of its own), the log's journal socket. */
#define FD_HEADROOM 8u

/* Descriptors open now; a generous guess when /proc is not there. */
static unsigned open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    unsigned n = 0;
    if (!d)
        return 64;
    while (readdir(d))
        n++;
    closedir(d);
    return n > 3 ? n - 3 : 0; /* ".", ".." and the directory's own descriptor */
}

static unsigned default_conn_limit(unsigned threads)
{
    struct rlimit rl;
    uint64_t used;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 1000;
    used = (uint64_t)open_fds() + 2u * (uint64_t)threads + 1u + FD_HEADROOM;
    if (rl.rlim_cur < used + threads)
        return threads; /* one connection per pool thread, at the least */
    return (unsigned)MIN(rl.rlim_cur - used, 10000);
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
    unsigned conn_limit = MIN(cfg->conn_limit ? cfg->conn_limit : default_conn_limit(threads),
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
    s->counter = cfg->counter;
    /* the logger first, so that option warnings go through it too; a pool of
     * one thread is just the internal polling thread */
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        threads > 1 ? threads : 0u, MHD_OPTION_CONNECTION_LIMIT, conn_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ? cfg->timeout_s : 10u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_URI_LOG_CALLBACK, uri_logged, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
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
    deadline = app_now_ms() + grace_ms;
    while (atomic_load(&s->inflight) > 0 && app_now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->mhd);
    free(s);
}
