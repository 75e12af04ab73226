/* lru-cache.c -- an LRU cache of fixed-size entries, governed by libgovernor.
 *
 * A small example of the library's life cycle: the cache creates a governor
 * (gov_new), registers itself as a shrinker (gov_register_shrinker: count
 * what it holds, drop least-recently-used entries on request), starts it
 * (gov_start), and asks before it grows (gov_admit).  Entries are anonymous
 * mappings, so dropping one (munmap) gives its memory back to the kernel at
 * once -- the cgroup's usage falls right after a shrink.
 *
 * Commands, one per line on standard input (answers on standard output):
 *
 *   put KEY      store an entry under KEY (replaces an older one)
 *   get KEY      "hit" (and KEY becomes the most recent) or "miss"
 *   fill N       put N entries with fresh keys
 *   stats        entries, bytes, shrinks asked, entries released, refusals
 *   quit         (also end of input)
 *
 * Options: --entry-size BYTES (default 1 MiB), --policy FILE (default: the
 * library's defaults), --no-governor (the same cache without a governor: it
 * grows until the kernel's OOM killer stops it).  Each shrink is also
 * reported on standard error as "shrink: asked N bytes, released M bytes".
 *
 * Build: cc -o lru-cache lru-cache.c $(pkg-config --cflags --libs governor) */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <governor.h>

#define NBUCKETS 4096

struct entry {
    struct entry *prev, *next;   /* LRU list: head is the most recent */
    struct entry *hnext;         /* hash chain */
    char key[64];
    void *mem;                   /* entry_size bytes, mmap'd */
};

/* The cache.  lock protects everything below it: the governor calls
 * cache_count and cache_shrink from its own thread and from gov_admit. */
struct cache {
    size_t entry_size;
    pthread_mutex_t lock;
    struct entry *head, *tail;
    struct entry *buckets[NBUCKETS];
    uint64_t entries, shrinks, released_entries, refused;
};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

static void unlink_lru(struct cache *c, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(struct cache *c, struct entry *e)
{
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void unhash(struct cache *c, struct entry *e)
{
    struct entry **p = &c->buckets[hash(e->key)];
    while (*p && *p != e)
        p = &(*p)->hnext;
    if (*p)
        *p = e->hnext;
}

static struct entry *find(struct cache *c, const char *key)
{
    struct entry *e = c->buckets[hash(key)];
    while (e && strcmp(e->key, key) != 0)
        e = e->hnext;
    return e;
}

/* Drops e (lock held); the caller munmaps e->mem and frees e outside it. */
static void drop(struct cache *c, struct entry *e)
{
    unlink_lru(c, e);
    unhash(c, e);
    c->entries--;
}

static void destroy(struct cache *c, struct entry *e)
{
    munmap(e->mem, c->entry_size);
    free(e);
}

/* ---- the shrinker ------------------------------------------------------- */

static void cache_count(void *ctx, uint64_t *bytes, uint64_t *objects)
{
    struct cache *c = ctx;
    pthread_mutex_lock(&c->lock);
    *objects = c->entries;
    *bytes = c->entries * c->entry_size;
    pthread_mutex_unlock(&c->lock);
}

/* Drops least-recently-used entries until `bytes` are released; *n gets
 * how many. */
static uint64_t release_lru(struct cache *c, uint64_t bytes, uint64_t *count)
{
    struct entry *victims = NULL;
    uint64_t released = 0, n = 0;

    pthread_mutex_lock(&c->lock);
    while (c->tail && released < bytes) {
        struct entry *e = c->tail;
        drop(c, e);
        e->next = victims;
        victims = e;
        released += c->entry_size;
        n++;
    }
    pthread_mutex_unlock(&c->lock);
    while (victims) { /* munmap outside the lock */
        struct entry *e = victims;
        victims = e->next;
        destroy(c, e);
    }
    *count = n;
    return released;
}

/* The shrinker's callback: the governor asks for `bytes`. */
static uint64_t cache_shrink(void *ctx, uint64_t bytes)
{
    struct cache *c = ctx;
    uint64_t n, released = release_lru(c, bytes, &n);
    pthread_mutex_lock(&c->lock);
    c->shrinks++;
    c->released_entries += n;
    pthread_mutex_unlock(&c->lock);
    fprintf(stderr, "shrink: asked %" PRIu64 " bytes, released %" PRIu64 " bytes (%" PRIu64
                    " entries)\n", bytes, released, n);
    return released;
}

/* ---- the cache's own operations ------------------------------------------ */

/* Stores an entry under key; false when the governor refused the memory
 * (or mmap failed). */
static bool put(struct cache *c, struct gov *g, const char *key)
{
    struct entry *e, *old;
    unsigned char *mem;

    if (g && !gov_admit(g, c->entry_size)) { /* may shrink this very cache first */
        pthread_mutex_lock(&c->lock);
        c->refused++;
        pthread_mutex_unlock(&c->lock);
        return false;
    }
    mem = mmap(NULL, c->entry_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return false;
    memset(mem, 0x5a, c->entry_size); /* real data: every page resident */
    e = calloc(1, sizeof(*e));
    if (!e) {
        munmap(mem, c->entry_size);
        return false;
    }
    e->mem = mem;
    snprintf(e->key, sizeof(e->key), "%s", key);
    pthread_mutex_lock(&c->lock);
    old = find(c, e->key);
    if (old)
        drop(c, old);
    e->hnext = c->buckets[hash(e->key)];
    c->buckets[hash(e->key)] = e;
    push_front(c, e);
    c->entries++;
    pthread_mutex_unlock(&c->lock);
    if (old)
        destroy(c, old);
    return true;
}

static bool get(struct cache *c, const char *key)
{
    struct entry *e;
    pthread_mutex_lock(&c->lock);
    e = find(c, key);
    if (e) {
        unlink_lru(c, e);
        push_front(c, e);
    }
    pthread_mutex_unlock(&c->lock);
    return e != NULL;
}

static void stats(struct cache *c)
{
    pthread_mutex_lock(&c->lock);
    printf("stats entries=%" PRIu64 " bytes=%" PRIu64 " shrinks=%" PRIu64
           " released_entries=%" PRIu64 " refused=%" PRIu64 "\n",
           c->entries, c->entries * c->entry_size, c->shrinks, c->released_entries, c->refused);
    pthread_mutex_unlock(&c->lock);
}

static int usage(void)
{
    fprintf(stderr, "usage: lru-cache [--entry-size BYTES] [--policy FILE] [--no-governor]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct cache c = {.entry_size = 1 << 20};
    struct gov_config cfg = {0};
    struct gov *g = NULL;
    bool governed = true;
    char line[256], err[512];
    uint64_t next_key = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-governor") == 0) {
            governed = false;
        } else if (strcmp(argv[i], "--entry-size") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            c.entry_size = strtoul(argv[++i], &end, 10);
            if (errno || *end || c.entry_size == 0)
                return usage();
        } else if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc) {
            cfg.policy_path = argv[++i];
        } else {
            return usage();
        }
    }
    if (pthread_mutex_init(&c.lock, NULL) != 0)
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (governed) {
        struct gov_shrinker s = {.name = "lru-cache", .count = cache_count,
                                 .shrink = cache_shrink, .ctx = &c};
        gov_log_setup(GOV_LOG_TEXT, LOG_WARNING);
        g = gov_new(&cfg, err, sizeof(err));
        if (!g) {
            fprintf(stderr, "lru-cache: %s\n", err);
            return 1;
        }
        if (gov_register_shrinker(g, &s) < 0 || gov_start(g, err, sizeof(err)) < 0) {
            fprintf(stderr, "lru-cache: cannot start the governor: %s\n", err);
            gov_free(g);
            return 1;
        }
        {
            struct gov_status *st = malloc(sizeof(*st));
            char lim[16];
            if (st) {
                gov_status(g, st);
                printf("governed: limit %s (%s), level %s\n",
                       gov_quantity_format(st->limit, lim, sizeof(lim)),
                       gov_limit_source_name(st->limit_source), gov_level_name(st->level));
                free(st);
            }
        }
    } else {
        printf("not governed\n");
    }

    while (fgets(line, sizeof(line), stdin)) {
        char cmd[16], arg[128] = "";
        if (sscanf(line, "%15s %127s", cmd, arg) < 1)
            continue;
        if (strcmp(cmd, "put") == 0 && arg[0]) {
            printf("%s\n", put(&c, g, arg) ? "stored" : "refused");
        } else if (strcmp(cmd, "get") == 0 && arg[0]) {
            printf("%s\n", get(&c, arg) ? "hit" : "miss");
        } else if (strcmp(cmd, "fill") == 0) {
            unsigned long n = strtoul(arg, NULL, 10), stored = 0;
            for (unsigned long i = 0; i < n; i++) {
                char key[32];
                snprintf(key, sizeof(key), "k%" PRIu64, next_key++);
                stored += put(&c, g, key);
            }
            printf("filled %lu of %lu\n", stored, n);
        } else if (strcmp(cmd, "stats") == 0) {
            stats(&c);
        } else if (strcmp(cmd, "quit") == 0) {
            break;
        } else {
            printf("error: unknown command\n");
        }
    }

    gov_free(g); /* stops the governor thread first */
    release_lru(&c, UINT64_MAX, &next_key);
    pthread_mutex_destroy(&c.lock);
    return 0;
}
