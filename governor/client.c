/* client.c -- the C client of the trim protocol (docs/protocol.md).
 *
 * A process that is not governord itself -- any app in the container --
 * connects to governord's Unix socket, registers its cache as a shrinker,
 * reports what it holds, asks before it grows, and releases memory when the
 * governor asks.  This file is that client: one connection, JSON lines of at
 * most GOV_CLIENT_MAX_LINE bytes (jansson encodes and decodes them).
 *
 * Two ways to drive it, chosen by the caller:
 *   - its own poll loop: poll gov_client_fd() for POLLIN and call
 *     gov_client_process() when it is readable;
 *   - a thread of the client's own: gov_client_start_thread().
 * Either way a shrink request runs the caller's shrink callback and is
 * answered with the bytes it released; a level message runs the level
 * callback.  The synchronous calls (register, admit) send their request and
 * wait for the matching answer: without the thread they read the socket
 * themselves and serve the shrink requests that arrive meanwhile (the
 * governor may ask this very client to shrink before it answers an admit),
 * with the thread they wait for it to hand over the answer.
 *
 * Shared state: everything in struct gov_client is under `mu`, except that
 * the callbacks are called with `mu` released (they may call
 * gov_client_count()).  Only one thread reads the socket at a time
 * (`reading`), and lines are written whole under `mu`. */
#include "governor.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum reply_kind { REPLY_NONE, REPLY_REGISTERED, REPLY_ADMIT };

struct gov_client {
    pthread_mutex_t mu;
    pthread_cond_t cond;          /* a reply arrived, the reader changed, or the connection ended */
    int fd;
    struct gov_client_callbacks cb;
    unsigned timeout_ms;          /* for register and admit answers */
    char in[GOV_CLIENT_MAX_LINE + 1];
    size_t inlen;
    bool reading;                 /* a thread is reading the socket */
    bool broken;                  /* the connection ended; err says why */
    char err[256];
    /* the last answer to a synchronous request, taken by its waiter */
    enum reply_kind reply;
    bool admit_ok;
    struct gov_client_info info;  /* from "registered" and "level" */
    /* the optional thread */
    pthread_t thread;
    bool thread_started, stopping;
    int wake[2];                  /* a pipe that stops the thread's poll */
};

/* Formats into the caller's err buffer, which may be NULL. */
#define set_err(err, len, ...)                                                               \
    do {                                                                                     \
        if ((err) && (len))                                                                  \
            snprintf((err), (len), __VA_ARGS__);                                             \
    } while (0)

/* Marks the connection broken (first reason wins) and wakes every waiter. */
static void broken_locked(struct gov_client *c, const char *why)
{
    if (!c->broken) {
        c->broken = true;
        snprintf(c->err, sizeof(c->err), "%s", why);
    }
    pthread_cond_broadcast(&c->cond);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes one JSON object as one line, whole (the socket is blocking; a
 * governor that does not read for the timeout breaks the connection).
 * Called with mu held.  Returns 0 or -1 (connection broken). */
static int send_locked(struct gov_client *c, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    size_t len, off = 0;
    json_decref(msg);
    if (!text) {
        broken_locked(c, "cannot encode a message (out of memory)");
        return -1;
    }
    len = strlen(text);
    if (len + 1 > GOV_CLIENT_MAX_LINE) {
        free(text);
        broken_locked(c, "message longer than the protocol's line limit");
        return -1;
    }
    text[len++] = '\n'; /* replaces the NUL; the buffer is not used as a string again */
    while (off < len && !c->broken) {
        ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            char why[160];
            snprintf(why, sizeof(why), "write to the governor: %s",
                     n < 0 && errno == EAGAIN ? "timed out" : strerror(n < 0 ? errno : EPIPE));
            broken_locked(c, why);
            break;
        }
        off += (size_t)n;
    }
    free(text);
    return c->broken ? -1 : 0;
}

static bool parse_level(const char *s, enum gov_level *out)
{
    for (int l = 0; l < GOV_NLEVELS; l++) {
        if (strcmp(s, gov_level_name((enum gov_level)l)) == 0) {
            *out = (enum gov_level)l;
            return true;
        }
    }
    return false;
}

/* Handles one line from the governor.  Called with mu held; returns with mu
 * held, but releases it around the callbacks. */
static void handle_line_locked(struct gov_client *c, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *m = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *op = m ? json_string_value(json_object_get(m, "op")) : NULL;
    char why[300];

    if (!op) {
        broken_locked(c, "the governor sent a line that is not a protocol message");
        json_decref(m);
        return;
    }
    if (strcmp(op, "shrink") == 0) {
        json_t *seq = json_object_get(m, "seq"), *bytes = json_object_get(m, "bytes");
        const char *lv = json_string_value(json_object_get(m, "level"));
        const char *reason = json_string_value(json_object_get(m, "reason"));
        enum gov_level level = GOV_LEVEL_NORMAL;
        uint64_t released = 0;
        if (!json_is_integer(seq) || !json_is_integer(bytes) || json_integer_value(bytes) < 0) {
            broken_locked(c, "the governor sent a shrink without seq or bytes");
            json_decref(m);
            return;
        }
        if (lv)
            parse_level(lv, &level);
        if (c->cb.shrink) {
            struct gov_client_callbacks cb = c->cb;
            pthread_mutex_unlock(&c->mu);
            released = cb.shrink(cb.ud, (uint64_t)json_integer_value(bytes), level,
                                 reason ? reason : "");
            pthread_mutex_lock(&c->mu);
        }
        if (send_locked(c, json_pack("{s:s, s:I, s:I}", "op", "released", "seq",
                                     json_integer_value(seq), "bytes",
                                     (json_int_t)(released > (uint64_t)INT64_MAX ? INT64_MAX
                                                                                 : released))) ==
                0 &&
            c->cb.count) {
            struct gov_client_callbacks cb = c->cb;
            uint64_t b = 0, o = 0;
            pthread_mutex_unlock(&c->mu);
            cb.count(cb.ud, &b, &o);
            pthread_mutex_lock(&c->mu);
            send_locked(c, json_pack("{s:s, s:I, s:I}", "op", "count", "bytes",
                                     (json_int_t)(b > (uint64_t)INT64_MAX ? INT64_MAX : b),
                                     "objects",
                                     (json_int_t)(o > (uint64_t)INT64_MAX ? INT64_MAX : o)));
        }
    } else if (strcmp(op, "level") == 0) {
        const char *lv = json_string_value(json_object_get(m, "level"));
        enum gov_level level;
        if (lv && parse_level(lv, &level)) {
            c->info.level = level;
            if (c->cb.level) {
                struct gov_client_callbacks cb = c->cb;
                pthread_mutex_unlock(&c->mu);
                cb.level(cb.ud, level);
                pthread_mutex_lock(&c->mu);
            }
        }
    } else if (strcmp(op, "registered") == 0) {
        const char *lv = json_string_value(json_object_get(m, "level"));
        json_int_t id = json_integer_value(json_object_get(m, "id"));
        json_int_t lim = json_integer_value(json_object_get(m, "limit_bytes"));
        json_int_t use = json_integer_value(json_object_get(m, "usage_bytes"));
        c->info.id = id > 0 ? (uint64_t)id : 0;
        c->info.limit_bytes = lim > 0 ? (uint64_t)lim : 0;
        c->info.usage_bytes = use > 0 ? (uint64_t)use : 0;
        if (lv)
            parse_level(lv, &c->info.level);
        c->reply = REPLY_REGISTERED;
        pthread_cond_broadcast(&c->cond);
    } else if (strcmp(op, "admit") == 0) {
        c->admit_ok = json_is_true(json_object_get(m, "ok"));
        c->reply = REPLY_ADMIT;
        pthread_cond_broadcast(&c->cond);
    } else if (strcmp(op, "error") == 0) {
        const char *e = json_string_value(json_object_get(m, "error"));
        snprintf(why, sizeof(why), "the governor refused: %s", e ? e : "(no reason given)");
        broken_locked(c, why);
    }
    /* other ops: a newer governor's messages, ignored */
    json_decref(m);
}

/* Reads what the socket has (without blocking) and handles every complete
 * line.  Called with mu held by the one reader.  Returns 0, or -1 when the
 * connection has ended. */
static int read_locked(struct gov_client *c)
{
    for (;;) {
        char *nl;
        ssize_t n;
        while ((nl = memchr(c->in, '\n', c->inlen)) != NULL) {
            size_t linelen = (size_t)(nl - c->in);
            char line[GOV_CLIENT_MAX_LINE + 1];
            memcpy(line, c->in, linelen);
            memmove(c->in, nl + 1, c->inlen - linelen - 1);
            c->inlen -= linelen + 1;
            handle_line_locked(c, line, linelen);
            if (c->broken)
                return -1;
        }
        if (c->inlen >= GOV_CLIENT_MAX_LINE) {
            broken_locked(c, "the governor sent a line longer than the protocol's limit");
            return -1;
        }
        n = recv(c->fd, c->in + c->inlen, GOV_CLIENT_MAX_LINE - c->inlen, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            char why[160];
            snprintf(why, sizeof(why), "the governor closed the connection%s%s",
                     n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
            broken_locked(c, why);
            return -1;
        }
        c->inlen += (size_t)n;
    }
}

/* Waits for the answer `want` to the request just sent, until the client's
 * timeout.  Called with mu held.  Returns 0 or -1 with err. */
static int wait_reply_locked(struct gov_client *c, enum reply_kind want, char *err,
                             size_t errlen)
{
    int64_t deadline = now_ms() + c->timeout_ms;
    while (c->reply != want && !c->broken) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            set_err(err, errlen, "no answer from the governor within %u ms", c->timeout_ms);
            return -1;
        }
        if (c->thread_started || c->reading) {
            /* another thread reads: it hands the answer over */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += left / 1000;
            until.tv_nsec += (long)(left % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&c->cond, &c->mu, &until);
            continue;
        }
        {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            int r;
            c->reading = true;
            pthread_mutex_unlock(&c->mu);
            r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
            pthread_mutex_lock(&c->mu);
            if (r > 0)
                read_locked(c);
            else if (r < 0 && errno != EINTR)
                broken_locked(c, "poll on the governor's socket failed");
            c->reading = false;
            pthread_cond_broadcast(&c->cond);
        }
    }
    if (c->reply == want) {
        c->reply = REPLY_NONE;
        return 0;
    }
    set_err(err, errlen, "%s", c->err);
    return -1;
}

const char *gov_client_default_socket(void)
{
    const char *e = getenv("GOVERNOR_SOCKET");
    return e && *e ? e : GOV_CLIENT_DEFAULT_SOCKET;
}

struct gov_client *gov_client_connect(const char *path, const struct gov_client_callbacks *cb,
                                      char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct gov_client *c;
    struct timeval tv = {5, 0}; /* a governor that stops reading breaks the connection */

    if (!path)
        path = gov_client_default_socket();
    if (strcmp(path, "none") == 0) {
        set_err(err, errlen, "the governor's socket is disabled (GOVERNOR_SOCKET=none)");
        return NULL;
    }
    if (strlen(path) >= sizeof(sa.sun_path)) {
        set_err(err, errlen, "%s: socket path too long", path);
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    c = calloc(1, sizeof(*c));
    if (!c) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    c->wake[0] = c->wake[1] = -1;
    c->timeout_ms = GOV_CLIENT_TIMEOUT_MS;
    if (cb)
        c->cb = *cb;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        set_err(err, errlen, "socket: %s", strerror(errno));
        free(c);
        return NULL;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        set_err(err, errlen, "connect to %s: %s", path, strerror(errno));
        close(c->fd);
        free(c);
        return NULL;
    }
    if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        set_err(err, errlen, "setsockopt: %s", strerror(errno));
        close(c->fd);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    return c;
}

void gov_client_set_timeout(struct gov_client *c, unsigned timeout_ms)
{
    pthread_mutex_lock(&c->mu);
    c->timeout_ms = timeout_ms ? timeout_ms : GOV_CLIENT_TIMEOUT_MS;
    pthread_mutex_unlock(&c->mu);
}

static json_int_t clamp_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v;
}

int gov_client_register(struct gov_client *c, const char *name, uint64_t bytes,
                        uint64_t objects, struct gov_client_info *info, char *err,
                        size_t errlen)
{
    int r = -1;
    pthread_mutex_lock(&c->mu);
    c->reply = REPLY_NONE;
    if (!c->broken &&
        send_locked(c, json_pack("{s:s, s:s, s:I, s:I}", "op", "register", "name",
                                 name ? name : "", "bytes", clamp_i64(bytes), "objects",
                                 clamp_i64(objects))) == 0)
        r = wait_reply_locked(c, REPLY_REGISTERED, err, errlen);
    else
        set_err(err, errlen, "%s", c->err);
    if (r == 0 && info)
        *info = c->info;
    pthread_mutex_unlock(&c->mu);
    return r;
}

int gov_client_count(struct gov_client *c, uint64_t bytes, uint64_t objects)
{
    int r;
    pthread_mutex_lock(&c->mu);
    r = c->broken ? -1
                  : send_locked(c, json_pack("{s:s, s:I, s:I}", "op", "count", "bytes",
                                             clamp_i64(bytes), "objects", clamp_i64(objects)));
    pthread_mutex_unlock(&c->mu);
    return r;
}

int gov_client_admit(struct gov_client *c, uint64_t bytes, bool *ok, char *err, size_t errlen)
{
    int r = -1;
    pthread_mutex_lock(&c->mu);
    c->reply = REPLY_NONE;
    if (!c->broken &&
        send_locked(c, json_pack("{s:s, s:I}", "op", "admit", "bytes", clamp_i64(bytes))) == 0)
        r = wait_reply_locked(c, REPLY_ADMIT, err, errlen);
    else
        set_err(err, errlen, "%s", c->err);
    if (r == 0)
        *ok = c->admit_ok;
    pthread_mutex_unlock(&c->mu);
    return r;
}

int gov_client_fd(const struct gov_client *c)
{
    return c->fd;
}

int gov_client_process(struct gov_client *c)
{
    int r = 0;
    pthread_mutex_lock(&c->mu);
    while (c->reading && !c->broken)
        pthread_cond_wait(&c->cond, &c->mu);
    if (!c->broken) {
        c->reading = true;
        r = read_locked(c);
        c->reading = false;
        pthread_cond_broadcast(&c->cond);
    }
    r = c->broken ? -1 : r;
    pthread_mutex_unlock(&c->mu);
    return r;
}

enum gov_level gov_client_level(struct gov_client *c)
{
    enum gov_level l;
    pthread_mutex_lock(&c->mu);
    l = c->info.level;
    pthread_mutex_unlock(&c->mu);
    return l;
}

bool gov_client_error(struct gov_client *c, char *err, size_t errlen)
{
    bool broken;
    pthread_mutex_lock(&c->mu);
    broken = c->broken;
    if (broken)
        set_err(err, errlen, "%s", c->err);
    pthread_mutex_unlock(&c->mu);
    return broken;
}

static void *client_thread(void *arg)
{
    struct gov_client *c = arg;
    struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = c->wake[0], .events = POLLIN}};

    pthread_mutex_lock(&c->mu);
    while (!c->stopping && !c->broken) {
        int r;
        pthread_mutex_unlock(&c->mu);
        r = poll(p, 2, -1);
        pthread_mutex_lock(&c->mu);
        if (r < 0 && errno != EINTR) {
            broken_locked(c, "poll on the governor's socket failed");
            break;
        }
        if (r > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !c->stopping) {
            c->reading = true;
            read_locked(c);
            c->reading = false;
            pthread_cond_broadcast(&c->cond);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int gov_client_start_thread(struct gov_client *c, char *err, size_t errlen)
{
    pthread_mutex_lock(&c->mu);
    if (c->thread_started) {
        pthread_mutex_unlock(&c->mu);
        set_err(err, errlen, "the client's thread runs already");
        return -1;
    }
    if (pipe2(c->wake, O_CLOEXEC) < 0) {
        pthread_mutex_unlock(&c->mu);
        set_err(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    /* set before the thread runs, so that no waiter reads the socket too */
    c->thread_started = true;
    if (pthread_create(&c->thread, NULL, client_thread, c) != 0) {
        c->thread_started = false;
        close(c->wake[0]);
        close(c->wake[1]);
        c->wake[0] = c->wake[1] = -1;
        pthread_mutex_unlock(&c->mu);
        set_err(err, errlen, "cannot start the client's thread");
        return -1;
    }
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void gov_client_close(struct gov_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started) {
        ssize_t n;
        do
            n = write(c->wake[1], "x", 1);
        while (n < 0 && errno == EINTR);
        pthread_join(c->thread, NULL);
        close(c->wake[0]);
        close(c->wake[1]);
    }
    close(c->fd);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
