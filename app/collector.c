/* collector.c -- the bounded collector (see collector.h).
 *
 * The buffer is a singly linked FIFO of blocks; buffer_lock protects the
 * list and its totals and is never held while calling into the governor
 * (gov_admit() may call collector_shrink() on this same thread).  Blocks are
 * anonymous private mappings: munmap() returns them to the kernel at once,
 * unlike free(), which may keep them in a malloc arena.
 *
 * The thread sleeps collector.interval_ms on a condition variable (stop_cond
 * under stop_lock) that also ends the sleep early for a stop, and for a new
 * policy: the governor calls collector_policy_changed() on reload, and the
 * thread re-arms with the new interval at once instead of sleeping out the
 * old one (60 s -> 100 ms must not wait 60 s).
 *
 * Its settings are the policy file's [collector] section, which belongs to
 * governord, not to the governor library: the collector describes the
 * section (keys, types, ranges, defaults) as a struct gov_policy_section,
 * the library parses and validates it with the rest of the file, and hands
 * the values over (collector_commit) when a policy is put in force -- never
 * part of a rejected one.  The values live under settings_lock.  The
 * [collector] floor is the shrinker's floor callback: the library never
 * takes the buffer below it. */
#include "collector.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "governor.h"
#include "common.h"

struct block {
    struct block *next;
    void *mem;
    uint64_t size;
};

struct collector {
    struct gov *gov;
    bool child;                  /* governord runs a command: enabled defaults to false */
    pthread_mutex_t settings_lock; /* protects settings */
    struct collector_settings settings;
    pthread_mutex_t buffer_lock; /* protects head, tail, bytes, blocks */
    struct block *head, *tail;   /* oldest first */
    uint64_t bytes, blocks;
    atomic_uint_fast64_t alloc_failures;
    atomic_bool alloc_failing; /* an episode of failures is under way (logged once) */

    pthread_t thread;
    bool running;
    pthread_mutex_t stop_lock; /* with stop_cond: interruptible sleep */
    pthread_cond_t stop_cond;
    bool stop;
    bool rearm;                /* a new policy: start the sleep again */
};

static void *map_block(uint64_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                              -1, 0);
    if (mem == MAP_FAILED)
        return NULL;
    /* touch every page: the seed's blocks were real data, not promises */
    for (uint64_t off = 0; off < size; off += (uint64_t)(page > 0 ? page : 4096))
        mem[off] = (unsigned char)(off >> 12);
    return mem;
}

/* What a block of `bytes` costs: the kernel maps whole pages, so a block
 * that is not a multiple of the page size costs the next multiple (0 when
 * that does not fit in 64 bits). */
static uint64_t block_cost(uint64_t bytes)
{
    long sz = sysconf(_SC_PAGESIZE);
    uint64_t page = sz > 0 ? (uint64_t)sz : 4096;
    uint64_t rest = bytes % page;
    if (rest == 0)
        return bytes;
    return bytes > UINT64_MAX - (page - rest) ? 0 : bytes + (page - rest);
}

bool collector_grow(struct collector *c, uint64_t bytes)
{
    struct block *b;
    uint64_t n;
    int err;

    uint64_t cost = block_cost(bytes); /* admitted, mapped and counted as whole pages */
    if (cost == 0) {
        errno = EOVERFLOW; /* a block size no page count can hold */
        goto fail;
    }
    bytes = cost;
    if (!gov_admit(c->gov, bytes))
        return false;
    b = malloc(sizeof(*b));
    if (!b)
        goto fail;
    b->mem = map_block(bytes);
    if (!b->mem) {
        err = errno;
        free(b);
        errno = err;
        goto fail;
    }
    b->size = bytes;
    b->next = NULL;
    pthread_mutex_lock(&c->buffer_lock);
    if (c->tail)
        c->tail->next = b;
    else
        c->head = b;
    c->tail = b;
    c->bytes += bytes;
    c->blocks++;
    pthread_mutex_unlock(&c->buffer_lock);
    if (atomic_exchange(&c->alloc_failing, false))
        gov_log(LOG_INFO, "collector_alloc_recovered", "collector allocates blocks again",
                "{s:I, s:I}", "block_bytes", (json_int_t)bytes, "alloc_failures_total",
                (json_int_t)atomic_load(&c->alloc_failures));
    return true;
fail:
    err = errno;
    n = atomic_fetch_add(&c->alloc_failures, 1) + 1;
    /* one line per episode, not one per attempt (the collector retries
     * every interval): the count goes on in /governor and /metrics */
    if (!atomic_exchange(&c->alloc_failing, true))
        gov_log(LOG_ERR, "collector_alloc_failed",
                "collector cannot allocate a block; it retries every interval",
                "{s:I, s:s, s:I}", "block_bytes",
                (json_int_t)(bytes > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : bytes), "error",
                strerror(err),
                "alloc_failures_total", (json_int_t)n);
    return false;
}

void collector_count(void *ctx, uint64_t *bytes, uint64_t *blocks)
{
    struct collector *c = ctx;
    pthread_mutex_lock(&c->buffer_lock);
    *bytes = c->bytes;
    *blocks = c->blocks;
    pthread_mutex_unlock(&c->buffer_lock);
}

uint64_t collector_shrink(void *ctx, uint64_t bytes)
{
    struct collector *c = ctx;
    struct block *victims = NULL, **tailp = &victims;
    uint64_t released = 0;

    /* unlink under the lock, unmap outside it */
    pthread_mutex_lock(&c->buffer_lock);
    while (c->head && released < bytes) {
        struct block *b = c->head;
        c->head = b->next;
        if (!c->head)
            c->tail = NULL;
        c->bytes -= b->size;
        c->blocks--;
        released += b->size;
        b->next = NULL;
        *tailp = b;
        tailp = &b->next;
    }
    pthread_mutex_unlock(&c->buffer_lock);

    while (victims) {
        struct block *b = victims;
        victims = b->next;
        munmap(b->mem, b->size);
        free(b);
    }
    return released;
}

uint64_t collector_alloc_failures(struct collector *c)
{
    return c ? atomic_load(&c->alloc_failures) : 0;
}

enum wake { WAKE_TIMEOUT, WAKE_REARM, WAKE_STOP };

/* Sleeps ms unless stopped or re-armed; says which. */
static enum wake sleep_for(struct collector *c, uint32_t ms)
{
    struct timespec ts;
    enum wake w = WAKE_TIMEOUT;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->stop_lock);
    while (!c->stop && !c->rearm &&
           pthread_cond_timedwait(&c->stop_cond, &c->stop_lock, &ts) != ETIMEDOUT) {
    }
    if (c->stop)
        w = WAKE_STOP;
    else if (c->rearm)
        w = WAKE_REARM;
    c->rearm = false;
    pthread_mutex_unlock(&c->stop_lock);
    return w;
}

static void *collector_thread(void *arg)
{
    struct collector *c = arg;
    struct collector_settings p;
    enum wake w;

    pthread_setname_np(pthread_self(), "collector"); /* for top -H and bench/overhead.sh */
    collector_get_settings(c, &p);
    while ((w = sleep_for(c, p.interval_ms)) != WAKE_STOP) {
        collector_get_settings(c, &p); /* block size and rate follow reloads */
        if (w == WAKE_TIMEOUT && p.enabled)
            collector_grow(c, p.block_size);
    }
    return NULL;
}

void collector_policy_changed(void *ctx)
{
    struct collector *c = ctx;
    pthread_mutex_lock(&c->stop_lock);
    c->rearm = true;
    pthread_cond_signal(&c->stop_cond);
    pthread_mutex_unlock(&c->stop_lock);
}

/* ---- the [collector] section of the policy ---------------------------------- */

enum { KEY_ENABLED, KEY_BLOCK_SIZE, KEY_INTERVAL_MS, KEY_FLOOR };

#define SETTING(field) offsetof(struct collector_settings, field)
static const struct gov_policy_key collector_keys[] = {
    [KEY_ENABLED] = {"enabled", GOV_KEY_BOOL, SETTING(enabled), 0, 0},
    [KEY_BLOCK_SIZE] = {"block_size", GOV_KEY_SIZE, SETTING(block_size), 4096.0,
                        17179869184.0 /* 16Gi */},
    [KEY_INTERVAL_MS] = {"interval_ms", GOV_KEY_MS, SETTING(interval_ms), 1, 3600000},
    [KEY_FLOOR] = {"floor", GOV_KEY_SIZE, SETTING(floor), 0.0, 4611686018427387904.0 /* 2^62 */},
};

/* The values of keys a policy leaves out (policies/default.ini). */
static const struct collector_settings collector_defaults = {
    .enabled = true,
    .block_size = 64ull << 20,
    .interval_ms = 1000,
    .floor = 0,
};

/* With a child (governord -- CMD) the collector is off unless the policy
 * sets [collector] enabled itself. */
static int collector_finish(void *ctx, void *values, const bool *set, unsigned *key,
                            char *what, size_t whatlen)
{
    struct collector *c = ctx;
    struct collector_settings *v = values;
    (void)key;
    (void)what;
    (void)whatlen;
    if (c && c->child && !set[KEY_ENABLED])
        v->enabled = false;
    return 0;
}

/* A policy is in force: its [collector] values are ours now. */
static void collector_commit(void *ctx, const void *values)
{
    struct collector *c = ctx;
    if (!c)
        return;
    pthread_mutex_lock(&c->settings_lock);
    memcpy(&c->settings, values, sizeof(c->settings));
    pthread_mutex_unlock(&c->settings_lock);
}

static uint64_t collector_floor(void *ctx)
{
    struct collector *c = ctx;
    uint64_t floor;
    pthread_mutex_lock(&c->settings_lock);
    floor = c->settings.floor;
    pthread_mutex_unlock(&c->settings_lock);
    return floor;
}

void collector_policy_section(struct collector *c, struct gov_policy_section *out)
{
    _Static_assert(sizeof(struct collector_settings) <= GOV_POLICY_SECTION_MAX,
                   "[collector] fits a host section");
    *out = (struct gov_policy_section){
        .name = "collector",
        .keys = collector_keys,
        .nkeys = ARRAY_SIZE(collector_keys),
        .size = sizeof(struct collector_settings),
        .defaults = &collector_defaults,
        .finish = collector_finish,
        .commit = collector_commit,
        .ctx = c,
    };
}

void collector_get_settings(struct collector *c, struct collector_settings *out)
{
    pthread_mutex_lock(&c->settings_lock);
    *out = c->settings;
    pthread_mutex_unlock(&c->settings_lock);
}

struct collector *collector_new(bool child)
{
    struct collector *c = calloc(1, sizeof(*c));
    pthread_condattr_t attr;
    if (!c)
        return NULL;
    c->child = child;
    c->settings = collector_defaults;
    pthread_mutex_init(&c->settings_lock, NULL);
    pthread_mutex_init(&c->buffer_lock, NULL);
    pthread_mutex_init(&c->stop_lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->stop_cond, &attr);
    pthread_condattr_destroy(&attr);
    return c;
}

int collector_attach(struct collector *c, struct gov *g)
{
    struct gov_shrinker s = {
        .name = "collector",
        .count = collector_count,
        .shrink = collector_shrink,
        .floor = collector_floor,
        .policy_changed = collector_policy_changed,
        .ctx = c};
    if (c->gov || gov_register_shrinker(g, &s) < 0)
        return -1;
    c->gov = g;
    return 0;
}

int collector_start(struct collector *c)
{
    if (pthread_create(&c->thread, NULL, collector_thread, c) != 0)
        return -1;
    c->running = true;
    return 0;
}

void collector_stop(struct collector *c)
{
    if (!c || !c->running)
        return;
    pthread_mutex_lock(&c->stop_lock);
    c->stop = true;
    pthread_cond_signal(&c->stop_cond);
    pthread_mutex_unlock(&c->stop_lock);
    pthread_join(c->thread, NULL);
    c->running = false;
}

void collector_free(struct collector *c)
{
    if (!c)
        return;
    collector_stop(c);
    collector_shrink(c, UINT64_MAX);
    pthread_mutex_destroy(&c->buffer_lock);
    pthread_mutex_destroy(&c->settings_lock);
    pthread_mutex_destroy(&c->stop_lock);
    pthread_cond_destroy(&c->stop_cond);
    free(c);
}
