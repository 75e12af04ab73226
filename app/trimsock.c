/* trimsock.c -- the trim protocol's Unix socket (docs/protocol.md).
 *
 * Any process in the container connects to governord's Unix stream socket,
 * registers with a name and what it holds, and from then on is a shrinker
 * like the built-in collector: the governor asks it to shrink, it answers
 * with what it released, it asks before it allocates.  This file is the
 * process side of that: creating the socket safely, the socket thread, the
 * admission worker, and the one shrinker the library sees.
 *
 * Three threads meet here, and none of them ever waits for a client:
 *
 *   - the socket thread owns the listening socket, every connection's
 *     descriptor and input buffer, and an epoll set.  Sockets are
 *     non-blocking; a connection's output goes through a bounded buffer
 *     (TRIM_OUT_MAX), and a client that lets it fill up is disconnected.
 *     It parses lines (trimproto.c), answers register, takes count and
 *     released, queues admit for the worker, and times out shrinks that
 *     are not answered within the policy's client_timeout_ms;
 *   - the governor thread calls the "clients" shrinker: count sums what the
 *     responsive clients reported, shrink spreads the bytes over them
 *     (largest holder first, trim_distribute), appends one shrink line per
 *     chosen client to its output buffer, wakes the socket thread through
 *     an eventfd and returns 0 -- the release arrives later, in `released`,
 *     and is counted then (gov_count_late_release).  A client with a shrink
 *     outstanding is not asked again until it answers or times out;
 *   - the admission worker answers each client's admit in turn: it runs
 *     gov_admit() (the rules the collector gets; the shrink it may cause
 *     lands on the clients as above) and, when that queued shrinks, waits
 *     on a condition variable until they are answered or client_timeout_ms
 *     has passed, then queues the answer.  Only this thread ever waits, and
 *     only for a bounded time.
 *
 * Locking: one mutex, `lock`, guards the client table's shared part (the
 * counts, counters, pending shrink, admit request and output buffer of
 * every slot) and the shrink sequence; it is held only for memory
 * operations and non-blocking writes, never across a call into the
 * governor, and it is taken inside the library's act_lock by the shrinker
 * callbacks (lock order: act_lock, then this lock; see governor/internal.h).
 * The socket thread alone touches descriptors, input buffers and epoll. */
#include "trimsock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Bytes queued for one client beyond what its socket takes. */
#define TRIM_OUT_MAX 16384
/* A connection must register within this many client timeouts. */
#define TRIM_REGISTER_TIMEOUTS 5
/* accept() out of descriptors: try again after this long. */
#define TRIM_ACCEPT_RETRY_MS 100

#define TAG_LISTEN UINT64_MAX
#define TAG_WAKE (UINT64_MAX - 1)

struct client {
    /* socket thread only */
    size_t inlen;
    uint64_t register_deadline_ms; /* monotonic; 0 once registered */
    int fd;
    bool want_out;                 /* EPOLLOUT armed */
    char in[TRIM_MAX_LINE + 1];    /* a line and its '\n' */
    /* under lock; everything from id to out is cleared when the slot is freed */
    uint64_t id;                   /* unique per daemon, 1, 2, ... */
    int64_t connected_wall_ms;
    uint64_t bytes, objects;
    uint64_t shrinks, released_bytes;
    int64_t last_answer_wall_ms;
    uint64_t last_seq;             /* the highest seq sent to it */
    uint64_t pending_seq, pending_bytes, pending_deadline_ms;
    uint64_t pending_sent_us;      /* monotonic, when the shrink was queued */
    uint64_t admit_bytes, admit_ticket;
    size_t outlen;
    pid_t pid;
    uid_t uid;
    enum gov_level pending_level;
    int level_sent;                /* the level it last heard of */
    bool used;
    bool registered;
    bool closing;                  /* an error line was queued: close after one flush */
    bool overflow;                 /* its output buffer filled: close now */
    bool unresponsive;
    bool pending_admission;
    bool admit_pending;            /* an admit waits for its answer */
    bool admit_running;            /* ... and the worker is on it */
    char name[TRIM_MAX_NAME + 1];
    char out[TRIM_OUT_MAX];
};

struct trimsock {
    /* set up by trimsock_open, then read-only */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char reason[320];
    bool listening;
    unsigned mode;
    long gid;
    dev_t dev;
    ino_t ino;
    int listen_fd, epfd, wake_fd;
    struct gov *g;

    /* socket thread only */
    struct gov_status *st;       /* for register's limit and usage */
    uint64_t accept_resume_ms;   /* accept paused (EMFILE) until then; 0: not */

    /* threads */
    pthread_t sock_thread, worker_thread;
    bool sock_started, worker_started;
    atomic_bool stop;
    atomic_uint timeout_ms;      /* the policy's client_timeout_ms */

    /* under lock */
    pthread_mutex_t lock;
    pthread_cond_t work_cond;    /* an admit was queued, or stop */
    pthread_cond_t done_cond;    /* a shrink was answered, timed out or its client left */
    uint64_t next_id, next_seq, next_ticket;
    unsigned connections;
    uint64_t connections_total, rejected_total, protocol_errors_total, timeouts_total,
        overflows_total;
    /* shrink round trips answered in time: the shrink queued to its
     * `released` handled (governor_client_shrink_round_trip_seconds) */
    uint64_t rtt_buckets[TRIM_RTT_BOUNDS + 1], rtt_count, rtt_sum_us;
    struct client clients[TRIM_MAX_CLIENTS];
};

/* True on the admission worker while it runs gov_admit(): the shrinks that
 * call queues are the admission's (for their reason and their counting).
 * Thread-local, so it is no shared state; only the worker ever sets it. */
static _Thread_local bool in_client_admit;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake(struct trimsock *s)
{
    uint64_t one = 1;
    /* a full eventfd counter still wakes the thread: a failed write is fine */
    if (s->wake_fd >= 0 && write(s->wake_fd, &one, sizeof(one)) < 0) {
    }
}

/* ---- creating the socket ------------------------------------------------------ */

int trimsock_parse_group(const char *group, gid_t *gid, char *err, size_t errlen)
{
    char *end, buf[4096];
    struct group gr, *res = NULL;
    unsigned long n;
    int r;

    if (!group || !*group) {
        snprintf(err, errlen, "--socket-group: empty group");
        return -1;
    }
    errno = 0;
    n = strtoul(group, &end, 10);
    if (*end == '\0' && group[0] >= '0' && group[0] <= '9') {
        if (errno || n >= (unsigned long)UINT32_MAX) {
            snprintf(err, errlen, "--socket-group: '%s' is not a valid gid", group);
            return -1;
        }
        *gid = (gid_t)n;
        return 0;
    }
    r = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
    if (r != 0 || !res) {
        snprintf(err, errlen, "--socket-group: unknown group '%s'%s%s", group, r ? ": " : "",
                 r ? strerror(r) : "");
        return -1;
    }
    *gid = res->gr_gid;
    return 0;
}

/* Makes the socket's directory when it is missing (one level, 0755). */
static int make_dir(const char *path, char *err, size_t errlen)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char *slash;
    struct stat st;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0; /* relative name in the working directory, or under / */
    *slash = '\0';
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s is not a directory", dir);
            return -1;
        }
        return 0;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* What is at path already: nothing (0), a stale socket, removed (0), or an
 * error (-1): a file or directory, or a socket somebody listens on. */
static int clear_path(const char *path, const struct sockaddr_un *sa, char *err, size_t errlen)
{
    struct stat st;
    int fd, r, e;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot inspect %s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is a directory, not a socket", path);
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket (refusing to replace it)", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    e = errno;
    close(fd);
    if (r == 0 || e == EAGAIN || e == EINPROGRESS) {
        snprintf(err, errlen, "%s: another process listens on it (another governord?)", path);
        return -1;
    }
    if (e != ECONNREFUSED && e != ENOENT) {
        snprintf(err, errlen, "%s: cannot tell whether it is in use: %s", path, strerror(e));
        return -1;
    }
    /* a socket file nobody listens on: left behind by a crash */
    if (unlink(path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove the stale socket %s: %s", path, strerror(errno));
        return -1;
    }
    gov_log(LOG_INFO, "socket_stale", "replacing a stale socket nobody listens on", "{s:s}",
            "path", path);
    return 0;
}

static int make_socket(struct trimsock *s, const struct trimsock_config *cfg, char *err,
                       size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    gid_t gid = 0;
    mode_t old;
    int fd, r;

    if (strlen(cfg->path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "%.200s: path too long for a Unix socket (at most %zu bytes)",
                 cfg->path, sizeof(sa.sun_path) - 1);
        return -1;
    }
    memcpy(sa.sun_path, cfg->path, strlen(cfg->path) + 1);
    if (cfg->group && trimsock_parse_group(cfg->group, &gid, err, errlen) < 0)
        return -1;
    if (make_dir(cfg->path, err, errlen) < 0 || clear_path(cfg->path, &sa, err, errlen) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* created 0600 from the start: no moment in which others may connect
     * (single-threaded here: main opens the socket before any thread) */
    old = umask(0177);
    r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r < 0) {
        snprintf(err, errlen, "cannot create the socket %s: %s", cfg->path, strerror(errno));
        close(fd);
        return -1;
    }
    if (cfg->group && (chown(cfg->path, (uid_t)-1, gid) < 0 || chmod(cfg->path, 0660) < 0)) {
        snprintf(err, errlen, "cannot give %s to group %s: %s", cfg->path, cfg->group,
                 strerror(errno));
        unlink(cfg->path);
        close(fd);
        return -1;
    }
    if (listen(fd, 64) < 0 || lstat(cfg->path, &st) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->path, strerror(errno));
        unlink(cfg->path);
        close(fd);
        return -1;
    }
    s->listen_fd = fd;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->mode = cfg->group ? 0660 : 0600;
    s->gid = cfg->group ? (long)gid : -1;
    snprintf(s->path, sizeof(s->path), "%s", cfg->path);
    return 0;
}

struct trimsock *trimsock_open(const struct trimsock_config *cfg, char *err, size_t errlen)
{
    struct trimsock *s = calloc(1, sizeof(*s));
    char why[256] = "";

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->listen_fd = s->epfd = s->wake_fd = -1;
    s->gid = -1;
    s->next_id = s->next_seq = s->next_ticket = 1;
    atomic_store(&s->timeout_ms, 1000u);
    for (int i = 0; i < TRIM_MAX_CLIENTS; i++)
        s->clients[i].fd = -1;
    {
        pthread_condattr_t ca;
        pthread_mutex_init(&s->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->work_cond, &ca);
        pthread_cond_init(&s->done_cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (!cfg->path) {
        snprintf(s->reason, sizeof(s->reason), "disabled (--socket none)");
        return s;
    }
    if (make_socket(s, cfg, why, sizeof(why)) < 0) {
        if (cfg->path_explicit) {
            snprintf(err, errlen, "--socket: %s", why);
            trimsock_free(s);
            return NULL;
        }
        /* the default path is best effort: run without a socket, and say so */
        snprintf(s->reason, sizeof(s->reason), "default socket unavailable: %s", why);
        gov_log(LOG_WARNING, "socket_unavailable",
                "running without the trim protocol's socket", "{s:s, s:s}", "path", cfg->path,
                "reason", why);
        return s;
    }
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->st = malloc(sizeof(*s->st));
    if (s->epfd < 0 || s->wake_fd < 0 || !s->st) {
        snprintf(err, errlen, "--socket: cannot set up: %s", strerror(errno ? errno : ENOMEM));
        trimsock_free(s);
        return NULL;
    }
    {
        struct epoll_event le = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
        struct epoll_event we = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &le) < 0 ||
            epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_fd, &we) < 0) {
            snprintf(err, errlen, "--socket: epoll: %s", strerror(errno));
            trimsock_free(s);
            return NULL;
        }
    }
    s->listening = true;
    return s;
}

const char *trimsock_path(const struct trimsock *s)
{
    return s && s->listening ? s->path : NULL;
}

/* ---- output (under lock) --------------------------------------------------------- */

/* Queues one line for c; a full buffer marks it for disconnection. */
static void queue_line(struct trimsock *s, struct client *c, const char *line, size_t n)
{
    if (n == 0 || c->overflow)
        return;
    if (c->outlen + n > sizeof(c->out)) {
        c->overflow = true;
        s->overflows_total++;
        return;
    }
    memcpy(c->out + c->outlen, line, n);
    c->outlen += n;
}

static void queue_error(struct trimsock *s, struct client *c, const char *why)
{
    char line[512];
    queue_line(s, c, line, trim_fmt_error(line, sizeof(line), why));
    c->closing = true;
    s->protocol_errors_total++;
}

/* ---- the shrinker the library sees ------------------------------------------------ */

static void clients_count(void *ctx, uint64_t *bytes, uint64_t *objects)
{
    struct trimsock *s = ctx;
    uint64_t b = 0, o = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < TRIM_MAX_CLIENTS; i++) {
        const struct client *c = &s->clients[i];
        if (c->used && c->registered && !c->unresponsive) {
            b += c->bytes;
            o += c->objects;
        }
    }
    pthread_mutex_unlock(&s->lock);
    *bytes = b;
    *objects = o;
}

static const char *shrink_reason(enum gov_level level)
{
    if (in_client_admit)
        return "admission: making room for a client's allocation";
    switch (level) {
    case GOV_LEVEL_CRITICAL:
        return "critical: usage reached the critical threshold, release all you can";
    case GOV_LEVEL_HIGH:
        return "high: usage passed the high threshold, shrinking toward target";
    default:
        return "admission: making room for an allocation";
    }
}

static uint64_t clients_shrink(void *ctx, uint64_t bytes)
{
    struct trimsock *s = ctx;
    struct trim_candidate cand[TRIM_MAX_CLIENTS];
    uint64_t ask[TRIM_MAX_CLIENTS];
    int slot[TRIM_MAX_CLIENTS] = {0};
    enum gov_level level = s->g ? gov_level(s->g) : GOV_LEVEL_NORMAL;
    const char *reason = shrink_reason(level);
    uint64_t sent_us = mono_us();
    uint64_t deadline = sent_us / 1000u + atomic_load(&s->timeout_ms);
    size_t n = 0;
    bool queued = false;

    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < TRIM_MAX_CLIENTS; i++) {
        const struct client *c = &s->clients[i];
        /* one shrink outstanding per client; the unresponsive are skipped */
        if (c->used && c->registered && !c->closing && !c->overflow && !c->unresponsive &&
            c->pending_seq == 0 && c->bytes > 0) {
            cand[n] = (struct trim_candidate){.id = c->id, .bytes = c->bytes};
            slot[n++] = i;
        }
    }
    trim_distribute(cand, n, bytes, ask);
    for (size_t k = 0; k < n; k++) {
        struct client *c = &s->clients[slot[k]];
        char line[512];
        uint64_t seq;
        if (ask[k] == 0)
            continue;
        seq = s->next_seq++;
        queue_line(s, c, line,
                   trim_fmt_shrink(line, sizeof(line), seq, ask[k], gov_level_name(level),
                                   reason));
        c->shrinks++;
        c->last_seq = seq;
        c->pending_seq = seq;
        c->pending_bytes = ask[k];
        c->pending_deadline_ms = deadline;
        c->pending_sent_us = sent_us;
        c->pending_level = level;
        c->pending_admission = in_client_admit || level < GOV_LEVEL_HIGH;
        queued = true;
    }
    pthread_mutex_unlock(&s->lock);
    if (queued)
        wake(s);
    return 0; /* released bytes arrive later, in `released` */
}

static void clients_policy_changed(void *ctx)
{
    struct trimsock *s = ctx;
    struct gov_policy p;
    gov_policy(s->g, &p);
    atomic_store(&s->timeout_ms, p.client_timeout_ms);
}

int trimsock_attach(struct trimsock *s, struct gov *g)
{
    struct gov_shrinker sh = {.name = "clients",
                              .count = clients_count,
                              .shrink = clients_shrink,
                              .policy_changed = clients_policy_changed,
                              .ctx = s};
    s->g = g;
    clients_policy_changed(s);
    return gov_register_shrinker(g, &sh);
}

void trimsock_level_changed(struct trimsock *s, enum gov_level level)
{
    bool queued = false;
    if (!s || !s->listening)
        return;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < TRIM_MAX_CLIENTS; i++) {
        struct client *c = &s->clients[i];
        char line[128];
        if (!c->used || !c->registered || c->level_sent == (int)level)
            continue;
        queue_line(s, c, line, trim_fmt_level(line, sizeof(line), gov_level_name(level)));
        c->level_sent = (int)level;
        queued = true;
    }
    pthread_mutex_unlock(&s->lock);
    if (queued)
        wake(s);
}

/* ---- connections (socket thread) ----------------------------------------------------- */

static void close_client(struct trimsock *s, struct client *c, const char *why)
{
    uint64_t id = c->id;
    bool registered = c->registered;
    char name[TRIM_MAX_NAME + 1];
    pid_t pid = c->pid;

    memcpy(name, c->name, sizeof(name));
    close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->inlen = 0;
    c->want_out = false;
    c->register_deadline_ms = 0;
    pthread_mutex_lock(&s->lock);
    memset((char *)c + offsetof(struct client, id), 0,
           offsetof(struct client, out) - offsetof(struct client, id));
    c->fd = -1;
    s->connections--;
    pthread_cond_broadcast(&s->done_cond); /* its shrink will not be answered */
    pthread_mutex_unlock(&s->lock);
    if (registered)
        gov_log(LOG_INFO, "client_gone", "trim client disconnected", "{s:I, s:s, s:i, s:s}",
                "client_id", (json_int_t)id, "name", name, "pid", (int)pid, "why", why);
}

static void accept_all(struct trimsock *s, uint64_t now)
{
    for (;;) {
        struct ucred cred = {0};
        socklen_t clen = sizeof(cred);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
        struct client *c = NULL;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int i;

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: stop accepting for a moment rather
                 * than spin on a listening socket that stays readable */
                if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL) == 0)
                    s->accept_resume_ms = now + TRIM_ACCEPT_RETRY_MS;
                gov_log(LOG_WARNING, "client_accept", "cannot accept a trim client", "{s:s}",
                        "error", strerror(errno));
            }
            return; /* EAGAIN, or the client gave up (ECONNABORTED) */
        }
        pthread_mutex_lock(&s->lock);
        s->connections_total++;
        for (i = 0; i < TRIM_MAX_CLIENTS; i++)
            if (!s->clients[i].used) {
                c = &s->clients[i];
                break;
            }
        if (!c) {
            char line[256];
            size_t n = trim_fmt_error(line, sizeof(line),
                                      "too many clients (at most 64 connections)");
            s->rejected_total++;
            pthread_mutex_unlock(&s->lock);
            /* best effort, never blocks: the socket is non-blocking */
            if (n && write(fd, line, n) < 0) {
            }
            close(fd);
            continue;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
            cred.pid = 0, cred.uid = (uid_t)-1;
        c->used = true;
        c->id = s->next_id++;
        c->pid = cred.pid;
        c->uid = cred.uid;
        c->connected_wall_ms = wall_ms();
        c->level_sent = -1;
        c->outlen = 0;
        s->connections++;
        pthread_mutex_unlock(&s->lock);
        c->fd = fd;
        c->inlen = 0;
        c->want_out = false;
        c->register_deadline_ms =
            now + (uint64_t)TRIM_REGISTER_TIMEOUTS * atomic_load(&s->timeout_ms);
        ev.data.u64 = (uint64_t)i;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            gov_log(LOG_WARNING, "client_accept", "cannot watch a trim client", "{s:s}",
                    "error", strerror(errno));
            close_client(s, c, "epoll failed");
        }
    }
}

static void do_register(struct trimsock *s, struct client *c, const struct trim_msg *m)
{
    char line[512];
    enum gov_level level;

    gov_status_brief(s->g, s->st); /* before lock: never one inside the other */
    level = gov_level(s->g);
    pthread_mutex_lock(&s->lock);
    c->registered = true;
    memcpy(c->name, m->name, sizeof(c->name));
    c->bytes = m->bytes;
    c->objects = m->objects;
    c->level_sent = (int)level;
    queue_line(s, c, line,
               trim_fmt_registered(line, sizeof(line), c->id, gov_level_name(level),
                                   s->st->limit, s->st->usage));
    pthread_mutex_unlock(&s->lock);
    c->register_deadline_ms = 0;
    gov_log(LOG_INFO, "client_register", "trim client registered",
            "{s:I, s:s, s:i, s:i, s:I, s:I}", "client_id", (json_int_t)c->id, "name", c->name,
            "pid", (int)c->pid, "uid", (int)c->uid, "bytes", (json_int_t)m->bytes, "objects",
            (json_int_t)m->objects);
}

static void do_released(struct trimsock *s, struct client *c, const struct trim_msg *m)
{
    uint64_t got;
    enum gov_level level = GOV_LEVEL_NORMAL;
    bool admission = true, was_unresponsive;

    pthread_mutex_lock(&s->lock);
    if (m->seq > c->last_seq) {
        char why[128];
        snprintf(why, sizeof(why), "released: seq %llu was never sent to this client",
                 (unsigned long long)m->seq);
        queue_error(s, c, why);
        pthread_mutex_unlock(&s->lock);
        return;
    }
    /* at most what it said it held: a huge figure cannot skew the counters */
    got = m->bytes < c->bytes ? m->bytes : c->bytes;
    c->bytes -= got;
    c->released_bytes += got;
    c->last_answer_wall_ms = wall_ms();
    was_unresponsive = c->unresponsive;
    c->unresponsive = false; /* it answers again (a late answer counts too) */
    if (m->seq == c->pending_seq) {
        uint64_t now_us = mono_us();
        uint64_t rtt = now_us > c->pending_sent_us ? now_us - c->pending_sent_us : 0;
        s->rtt_buckets[trim_rtt_bucket(rtt)]++;
        s->rtt_count++;
        s->rtt_sum_us += rtt;
        level = c->pending_level;
        admission = c->pending_admission;
        c->pending_seq = 0;
        pthread_cond_broadcast(&s->done_cond);
    }
    pthread_mutex_unlock(&s->lock);
    if (s->g)
        gov_count_late_release(s->g, level, admission, got);
    if (was_unresponsive)
        gov_log(LOG_INFO, "client_responsive", "trim client answers again",
                "{s:I, s:s, s:i, s:I}", "client_id", (json_int_t)c->id, "name", c->name, "pid",
                (int)c->pid, "seq", (json_int_t)m->seq);
}

/* Acts on one line of c; returns false when c is to be closed. */
static bool handle_line(struct trimsock *s, struct client *c, const char *line, size_t len)
{
    struct trim_msg m;
    char why[192];
    bool ok = true;

    if (trim_parse_line(line, len, &m, why, sizeof(why)) < 0) {
        pthread_mutex_lock(&s->lock);
        queue_error(s, c, why);
        pthread_mutex_unlock(&s->lock);
        gov_log(LOG_INFO, "client_error", "trim client sent a bad line: closing it",
                "{s:I, s:i, s:s}", "client_id", (json_int_t)c->id, "pid", (int)c->pid, "error",
                why);
        return false;
    }
    if (m.op == TRIM_OP_REGISTER && !c->registered) {
        do_register(s, c, &m);
        return true;
    }
    if (m.op == TRIM_OP_RELEASED && c->registered) {
        do_released(s, c, &m);
        return !c->closing;
    }
    pthread_mutex_lock(&s->lock);
    if (m.op == TRIM_OP_REGISTER) {
        queue_error(s, c, "register: already registered");
        ok = false;
    } else if (!c->registered) {
        snprintf(why, sizeof(why), "%s: register first", trim_op_name(m.op));
        queue_error(s, c, why);
        ok = false;
    } else if (m.op == TRIM_OP_COUNT) {
        c->bytes = m.bytes;
        c->objects = m.objects;
    } else if (c->admit_pending) { /* TRIM_OP_ADMIT */
        queue_error(s, c, "admit: the previous admit has not been answered yet");
        ok = false;
    } else {
        c->admit_pending = true;
        c->admit_bytes = m.bytes;
        c->admit_ticket = s->next_ticket++;
        pthread_cond_signal(&s->work_cond);
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* Reads what c sent and acts on every complete line. */
static void read_client(struct trimsock *s, struct client *c)
{
    ssize_t r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
    size_t start = 0;
    char *nl;

    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        close_client(s, c, r == 0 ? "closed" : strerror(errno));
        return;
    }
    c->inlen += (size_t)r;
    while ((nl = memchr(c->in + start, '\n', c->inlen - start))) {
        size_t len = (size_t)(nl - (c->in + start));
        if (!handle_line(s, c, c->in + start, len)) {
            c->inlen = 0;
            return; /* closed after the next flush */
        }
        start += len + 1;
    }
    memmove(c->in, c->in + start, c->inlen - start);
    c->inlen -= start;
    if (c->inlen == sizeof(c->in)) {
        char why[96];
        snprintf(why, sizeof(why), "line too long (at most %d bytes)", TRIM_MAX_LINE);
        pthread_mutex_lock(&s->lock);
        queue_error(s, c, why);
        pthread_mutex_unlock(&s->lock);
        c->inlen = 0;
    }
}

/* Writes what is queued for c (lock held); returns false when c must go. */
static bool flush_client(struct trimsock *s, struct client *c)
{
    while (c->outlen > 0) {
        ssize_t w = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            return false;
        }
        memmove(c->out, c->out + w, c->outlen - (size_t)w);
        c->outlen -= (size_t)w;
    }
    if (!c->closing && !c->overflow) {
        bool want = c->outlen > 0;
        if (want != c->want_out) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0),
                                     .data.u64 = (uint64_t)(c - s->clients)};
            if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                return false;
            c->want_out = want;
        }
    }
    return !c->closing && !c->overflow;
}

/* Shrinks and registrations past their time; flushes every connection and
 * closes those that must go.  Returns the epoll timeout until the next
 * deadline (-1: none). */
static int service(struct trimsock *s, uint64_t now)
{
    struct {
        uint64_t id, seq;
        pid_t pid;
        char name[TRIM_MAX_NAME + 1];
    } late[TRIM_MAX_CLIENTS];
    int nlate = 0, close_slot[TRIM_MAX_CLIENTS], nclose = 0;
    uint64_t next = UINT64_MAX;

    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < TRIM_MAX_CLIENTS; i++) {
        struct client *c = &s->clients[i];
        if (!c->used)
            continue;
        if (c->pending_seq && now >= c->pending_deadline_ms) {
            if (!c->unresponsive) {
                late[nlate].id = c->id;
                late[nlate].seq = c->pending_seq;
                late[nlate].pid = c->pid;
                memcpy(late[nlate++].name, c->name, sizeof(c->name));
            }
            c->unresponsive = true;
            c->pending_seq = 0;
            s->timeouts_total++;
            pthread_cond_broadcast(&s->done_cond);
        }
        if (c->register_deadline_ms && now >= c->register_deadline_ms && !c->closing) {
            queue_error(s, c, "register: not received in time");
            c->register_deadline_ms = 0;
        }
        if (!flush_client(s, c))
            close_slot[nclose++] = i;
        if (c->pending_seq && c->pending_deadline_ms < next)
            next = c->pending_deadline_ms;
        if (c->register_deadline_ms && c->register_deadline_ms < next)
            next = c->register_deadline_ms;
    }
    pthread_mutex_unlock(&s->lock);
    for (int k = 0; k < nclose; k++) {
        struct client *c = &s->clients[close_slot[k]];
        close_client(s, c, c->overflow ? "output buffer full (the client does not read)"
                                       : "protocol error");
    }
    for (int k = 0; k < nlate; k++)
        gov_log(LOG_WARNING, "client_unresponsive",
                "trim client did not answer a shrink in time: skipped until it answers",
                "{s:I, s:s, s:i, s:I, s:I}", "client_id", (json_int_t)late[k].id, "name",
                late[k].name, "pid", (int)late[k].pid, "seq", (json_int_t)late[k].seq,
                "timeout_ms", (json_int_t)atomic_load(&s->timeout_ms));
    if (s->accept_resume_ms && s->accept_resume_ms < next)
        next = s->accept_resume_ms;
    if (next == UINT64_MAX)
        return -1;
    return next <= now ? 0 : (int)(next - now > INT_MAX ? INT_MAX : next - now);
}

static void *sock_thread(void *arg)
{
    struct trimsock *s = arg;
    int timeout = -1;

    while (!atomic_load(&s->stop)) {
        struct epoll_event ev[32];
        uint64_t now;
        int n = epoll_wait(s->epfd, ev, 32, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            gov_log(LOG_ERR, "socket_thread", "epoll_wait failed: the trim socket stops",
                    "{s:s}", "error", strerror(errno));
            break;
        }
        now = mono_ms();
        for (int i = 0; i < n; i++) {
            uint64_t tag = ev[i].data.u64;
            if (tag == TAG_LISTEN) {
                accept_all(s, now);
            } else if (tag == TAG_WAKE) {
                uint64_t v;
                if (read(s->wake_fd, &v, sizeof(v)) < 0) {
                } /* EAGAIN: already drained */
            } else if (tag < TRIM_MAX_CLIENTS) {
                struct client *c = &s->clients[tag];
                /* a slot closed earlier in this batch has fd -1 */
                if (c->fd >= 0 && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
                    read_client(s, c);
            }
        }
        if (s->accept_resume_ms && now >= s->accept_resume_ms) {
            struct epoll_event le = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
            if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &le) == 0 || errno == EEXIST)
                s->accept_resume_ms = 0;
            else
                s->accept_resume_ms = now + TRIM_ACCEPT_RETRY_MS;
        }
        timeout = service(s, now);
    }
    return NULL;
}

/* ---- the admission worker ------------------------------------------------------------ */

/* The oldest admit waiting (lock held), or NULL. */
static struct client *next_admit(struct trimsock *s)
{
    struct client *best = NULL;
    for (int i = 0; i < TRIM_MAX_CLIENTS; i++) {
        struct client *c = &s->clients[i];
        if (c->used && c->admit_pending && !c->admit_running &&
            (!best || c->admit_ticket < best->admit_ticket))
            best = c;
    }
    return best;
}

/* True while a shrink with seq in [lo, hi) is outstanding (lock held). */
static bool shrinks_outstanding(const struct trimsock *s, uint64_t lo, uint64_t hi)
{
    for (int i = 0; i < TRIM_MAX_CLIENTS; i++) {
        const struct client *c = &s->clients[i];
        if (c->used && c->pending_seq >= lo && c->pending_seq < hi)
            return true;
    }
    return false;
}

static void *worker_thread(void *arg)
{
    struct trimsock *s = arg;

    pthread_mutex_lock(&s->lock);
    while (!atomic_load(&s->stop)) {
        struct client *c = next_admit(s);
        uint64_t id, bytes, seq_lo, seq_hi;
        int slot;
        bool ok;

        if (!c) {
            pthread_cond_wait(&s->work_cond, &s->lock);
            continue;
        }
        c->admit_running = true;
        id = c->id;
        slot = (int)(c - s->clients);
        bytes = c->admit_bytes;
        seq_lo = s->next_seq;
        pthread_mutex_unlock(&s->lock);

        in_client_admit = true;
        ok = gov_admit(s->g, bytes);
        in_client_admit = false;

        pthread_mutex_lock(&s->lock);
        seq_hi = s->next_seq;
        if (seq_hi != seq_lo) {
            /* the admission shrank clients: give them time to release
             * before the answer lets this one allocate */
            uint64_t end = mono_ms() + atomic_load(&s->timeout_ms);
            struct timespec ts = {.tv_sec = (time_t)(end / 1000),
                                  .tv_nsec = (long)(end % 1000) * 1000000L};
            while (!atomic_load(&s->stop) && shrinks_outstanding(s, seq_lo, seq_hi) &&
                   mono_ms() < end)
                pthread_cond_timedwait(&s->done_cond, &s->lock, &ts);
        }
        c = &s->clients[slot];
        if (c->used && c->id == id) {
            char line[64];
            queue_line(s, c, line, trim_fmt_admit(line, sizeof(line), ok));
            c->admit_pending = c->admit_running = false;
            wake(s);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int trimsock_start(struct trimsock *s, char *err, size_t errlen)
{
    int r;
    if (!s->listening)
        return 0;
    r = pthread_create(&s->sock_thread, NULL, sock_thread, s);
    if (r != 0) {
        snprintf(err, errlen, "cannot start the socket thread: %s", strerror(r));
        return -1;
    }
    s->sock_started = true;
    r = pthread_create(&s->worker_thread, NULL, worker_thread, s);
    if (r != 0) {
        snprintf(err, errlen, "cannot start the admission worker: %s", strerror(r));
        return -1;
    }
    s->worker_started = true;
    gov_log(LOG_INFO, "socket_listening", "trim protocol socket listening",
            "{s:s, s:s, s:I}", "path", s->path, "mode", s->mode == 0660 ? "0660" : "0600", "gid",
            (json_int_t)s->gid);
    return 0;
}

/* ---- status and stop ------------------------------------------------------------------ */

void trimsock_snapshot(struct trimsock *s, struct trimsock_status *out)
{
    memset(out, 0, offsetof(struct trimsock_status, clients));
    out->gid = -1;
    if (!s) {
        snprintf(out->reason, sizeof(out->reason), "not built in");
        return;
    }
    out->listening = s->listening;
    snprintf(out->path, sizeof(out->path), "%s", s->path);
    snprintf(out->reason, sizeof(out->reason), "%s", s->reason);
    out->mode = s->mode;
    out->gid = s->gid;
    pthread_mutex_lock(&s->lock);
    out->connections = s->connections;
    out->connections_total = s->connections_total;
    out->rejected_total = s->rejected_total;
    out->protocol_errors_total = s->protocol_errors_total;
    out->timeouts_total = s->timeouts_total;
    out->overflows_total = s->overflows_total;
    memcpy(out->rtt_buckets, s->rtt_buckets, sizeof(out->rtt_buckets));
    out->rtt_count = s->rtt_count;
    out->rtt_sum_us = s->rtt_sum_us;
    for (int i = 0; i < TRIM_MAX_CLIENTS; i++) {
        const struct client *c = &s->clients[i];
        struct trimsock_client_status *o;
        if (!c->used || !c->registered)
            continue;
        o = &out->clients[out->nclients++];
        o->id = c->id;
        memcpy(o->name, c->name, sizeof(o->name));
        o->pid = c->pid;
        o->uid = c->uid;
        o->bytes = c->bytes;
        o->objects = c->objects;
        o->shrinks = c->shrinks;
        o->released_bytes = c->released_bytes;
        o->connected_wall_ms = c->connected_wall_ms;
        o->last_answer_wall_ms = c->last_answer_wall_ms;
        o->unresponsive = c->unresponsive;
        o->pending_seq = c->pending_seq;
    }
    pthread_mutex_unlock(&s->lock);
    /* by id: slots are reused, ids grow */
    for (unsigned i = 1; i < out->nclients; i++)
        for (unsigned j = i; j > 0 && out->clients[j - 1].id > out->clients[j].id; j--) {
            struct trimsock_client_status t = out->clients[j];
            out->clients[j] = out->clients[j - 1];
            out->clients[j - 1] = t;
        }
}

void trimsock_stop(struct trimsock *s)
{
    struct stat st;
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->work_cond);
    pthread_cond_broadcast(&s->done_cond);
    pthread_mutex_unlock(&s->lock);
    wake(s);
    if (s->sock_started)
        pthread_join(s->sock_thread, NULL);
    if (s->worker_started)
        pthread_join(s->worker_thread, NULL);
    s->sock_started = s->worker_started = false;
    for (int i = 0; i < TRIM_MAX_CLIENTS; i++)
        if (s->clients[i].fd >= 0)
            close_client(s, &s->clients[i], "governord stops");
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
        /* only the file this process created: another may have replaced it */
        if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino &&
            unlink(s->path) < 0)
            gov_log(LOG_WARNING, "socket_remove", "cannot remove the socket file",
                    "{s:s, s:s}", "path", s->path, "error", strerror(errno));
    }
}

void trimsock_free(struct trimsock *s)
{
    if (!s)
        return;
    trimsock_stop(s);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    free(s->st);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->work_cond);
    pthread_cond_destroy(&s->done_cond);
    free(s);
}
