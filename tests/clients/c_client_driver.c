/* c_client_driver.c -- a real program on the C trim-protocol client, for the
 * integration tests and bench/protocol.sh.
 *
 *   c_client_driver [--thread] SOCKET NAME
 *
 * It holds a list of 1 MiB blocks (mmap'd, so a release returns the memory
 * to the kernel), registers them as cache NAME, and reads commands on stdin:
 *   grow N     ask admission for N blocks; allocate them when admitted
 *   count      report what it holds
 *   quit       close and exit 0
 * It prints one line per event on stdout (flushed), for the test to wait on:
 *   registered id=ID level=LEVEL limit=L usage=U
 *   admit ok|refused blocks=B
 *   shrink asked=N released=R blocks=B level=LEVEL
 *   level LEVEL
 *   broken REASON          (the connection ended; the program exits 3)
 * Without --thread it serves the governor from its own poll loop
 * (gov_client_fd + gov_client_process); with it, from the client's thread. */
#include "governor.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BLOCK (1u << 20)
#define MAX_BLOCKS 65536

/* The cache: touched by the main thread and by the shrink callback (which
 * runs on the client's thread with --thread), hence its lock. */
struct cache {
    pthread_mutex_t mu;
    void *blocks[MAX_BLOCKS];
    unsigned first, n; /* a ring: oldest at first */
};

static uint64_t held(struct cache *c)
{
    return (uint64_t)c->n * BLOCK;
}

static void on_count(void *ud, uint64_t *bytes, uint64_t *objects)
{
    struct cache *c = ud;
    pthread_mutex_lock(&c->mu);
    *bytes = held(c);
    *objects = c->n;
    pthread_mutex_unlock(&c->mu);
}

static uint64_t on_shrink(void *ud, uint64_t bytes, enum gov_level level, const char *reason)
{
    struct cache *c = ud;
    uint64_t released = 0;
    (void)reason;
    pthread_mutex_lock(&c->mu);
    while (released < bytes && c->n > 0) {
        munmap(c->blocks[c->first], BLOCK);
        c->first = (c->first + 1) % MAX_BLOCKS;
        c->n--;
        released += BLOCK;
    }
    printf("shrink asked=%llu released=%llu blocks=%u level=%s\n", (unsigned long long)bytes,
           (unsigned long long)released, c->n, gov_level_name(level));
    fflush(stdout);
    pthread_mutex_unlock(&c->mu);
    return released;
}

static void on_level(void *ud, enum gov_level level)
{
    (void)ud;
    printf("level %s\n", gov_level_name(level));
    fflush(stdout);
}

static int grow(struct gov_client *gc, struct cache *c, unsigned blocks)
{
    char err[256];
    bool ok = false;
    if (gov_client_admit(gc, (uint64_t)blocks * BLOCK, &ok, err, sizeof(err)) < 0) {
        printf("broken %s\n", err);
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    for (unsigned i = 0; ok && i < blocks && c->n < MAX_BLOCKS; i++) {
        void *b = mmap(NULL, BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED) {
            fprintf(stderr, "mmap: %s\n", strerror(errno));
            break;
        }
        memset(b, 0xa5, BLOCK); /* really use it: the cgroup is charged */
        c->blocks[(c->first + c->n) % MAX_BLOCKS] = b;
        c->n++;
    }
    printf("admit %s blocks=%u\n", ok ? "ok" : "refused", c->n);
    fflush(stdout);
    pthread_mutex_unlock(&c->mu);
    return gov_client_count(gc, held(c), c->n);
}

int main(int argc, char **argv)
{
    static struct cache cache = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct gov_client_callbacks cb = {on_count, on_shrink, on_level, &cache};
    struct gov_client_info info;
    struct gov_client *gc;
    bool thread = argc > 1 && strcmp(argv[1], "--thread") == 0;
    char err[256], line[128];
    size_t linelen = 0;

    if (argc != 3 + thread) {
        fprintf(stderr, "usage: %s [--thread] SOCKET NAME\n", argv[0]);
        return 2;
    }
    gc = gov_client_connect(argv[1 + thread], &cb, err, sizeof(err));
    if (!gc) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (gov_client_register(gc, argv[2 + thread], 0, 0, &info, err, sizeof(err)) < 0) {
        printf("broken %s\n", err);
        return 3;
    }
    printf("registered id=%llu level=%s limit=%llu usage=%llu\n", (unsigned long long)info.id,
           gov_level_name(info.level), (unsigned long long)info.limit_bytes,
           (unsigned long long)info.usage_bytes);
    fflush(stdout);
    if (thread && gov_client_start_thread(gc, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (;;) {
        struct pollfd p[2] = {{.fd = 0, .events = POLLIN},
                              {.fd = gov_client_fd(gc), .events = POLLIN}};
        int r = poll(p, thread ? 1 : 2, thread ? 200 : -1);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "poll: %s\n", strerror(errno));
            return 1;
        }
        if (gov_client_error(gc, err, sizeof(err)) ||
            (!thread && r > 0 && p[1].revents && gov_client_process(gc) < 0)) {
            gov_client_error(gc, err, sizeof(err));
            printf("broken %s\n", err);
            fflush(stdout);
            return 3;
        }
        if (r > 0 && p[0].revents) {
            /* stdin by read(), not stdio: poll must see every unread line */
            ssize_t got = read(0, line + linelen, sizeof(line) - 1 - linelen);
            char *nl;
            if (got <= 0)
                break;
            linelen += (size_t)got;
            while ((nl = memchr(line, '\n', linelen)) != NULL) {
                unsigned n;
                *nl = '\0';
                if (strcmp(line, "quit") == 0)
                    goto out;
                if (sscanf(line, "grow %u", &n) == 1) {
                    if (grow(gc, &cache, n) < 0)
                        return 3;
                } else if (strcmp(line, "count") == 0) {
                    pthread_mutex_lock(&cache.mu);
                    gov_client_count(gc, held(&cache), cache.n);
                    pthread_mutex_unlock(&cache.mu);
                }
                linelen -= (size_t)(nl + 1 - line);
                memmove(line, nl + 1, linelen);
            }
            if (linelen == sizeof(line) - 1)
                linelen = 0; /* an over-long line: dropped */
        }
    }
out:
    gov_client_close(gc);
    return 0;
}
