/* proto_client.c -- the C side of bench/protocol.sh: trim-protocol clients on
 * the C client of libgovernor (gov_client_*), and the reference the shrink
 * round trip is compared with.
 *
 *   proto_client shrink SOCKET NAME HOLD_BYTES
 *       one client, served from its own poll loop (gov_client_fd +
 *       gov_client_process), that holds HOLD_BYTES and, asked to shrink,
 *       releases what it is asked for (nothing is really allocated: the
 *       benchmark measures the protocol, not munmap) and then reports that
 *       it holds HOLD_BYTES again, so that the governor can ask again.
 *   proto_client idle SOCKET N HOLD_BYTES
 *       N clients on N connections, each registered holding HOLD_BYTES,
 *       served from one poll loop (level lines only: the usage stays low).
 *   proto_client echo ROUNDS PACE_US [PEER-CMD...]
 *       the reference: ROUNDS round trips of one shrink-sized JSON line over
 *       a Unix stream socket (socketpair) to a peer that reads it and writes
 *       it back -- by default a child process of this program in C, else
 *       PEER-CMD run with the socket on its stdin and stdout (the Python
 *       peer), PACE_US microseconds apart (0: back to back; the governor's shrinks
 *       come one per tick, to threads that sleep in between).  Prints
 *       "echo n=N p50_us=... p99_us=... mean_us=...", exact.
 *
 * shrink and idle print "registered N" once connected and run until stdin
 * reaches end of file (or the connection breaks: exit 3).  Written for the
 * benchmark, not installed. */
#include "governor.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_IDLE 64

static uint64_t hold; /* set once in main before any callback: read-only after */

static void on_count(void *ud, uint64_t *bytes, uint64_t *objects)
{
    (void)ud;
    *bytes = hold;
    *objects = 1;
}

static uint64_t on_shrink(void *ud, uint64_t bytes, enum gov_level level, const char *reason)
{
    (void)ud;
    (void)level;
    (void)reason;
    return bytes < hold ? bytes : hold;
}

static int usage(void)
{
    fprintf(stderr, "usage: proto_client shrink SOCKET NAME HOLD_BYTES\n"
                    "       proto_client idle SOCKET N HOLD_BYTES\n"
                    "       proto_client echo ROUNDS PACE_US [PEER-CMD...]\n");
    return 2;
}

/* Serves n clients until stdin ends.  Returns the exit status. */
static int serve(struct gov_client **gc, int n)
{
    struct pollfd p[MAX_IDLE + 1];
    char err[256];
    printf("registered %d\n", n);
    fflush(stdout);
    p[0] = (struct pollfd){.fd = 0, .events = POLLIN};
    for (int i = 0; i < n; i++)
        p[i + 1] = (struct pollfd){.fd = gov_client_fd(gc[i]), .events = POLLIN};
    for (;;) {
        int r = poll(p, (nfds_t)n + 1, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            perror("poll");
            return 1;
        }
        if (p[0].revents) {
            char buf[256];
            ssize_t got = read(0, buf, sizeof(buf));
            if (got <= 0)
                break;
        }
        for (int i = 0; i < n; i++)
            if (p[i + 1].revents && gov_client_process(gc[i]) < 0) {
                gov_client_error(gc[i], err, sizeof(err));
                fprintf(stderr, "client %d: %s\n", i, err);
                return 3;
            }
    }
    for (int i = 0; i < n; i++)
        gov_client_close(gc[i]);
    return 0;
}

static int clients(const char *path, const char *name, int n)
{
    static const struct gov_client_callbacks cb = {on_count, on_shrink, NULL, NULL};
    struct gov_client *gc[MAX_IDLE];
    char err[256], label[80];
    for (int i = 0; i < n; i++) {
        struct gov_client_info info;
        gc[i] = gov_client_connect(path, &cb, err, sizeof(err));
        if (!gc[i]) {
            fprintf(stderr, "connect: %s\n", err);
            return 1;
        }
        snprintf(label, sizeof(label), n > 1 ? "%s-%d" : "%s", name, i);
        if (gov_client_register(gc[i], label, hold, 1, &info, err, sizeof(err)) < 0) {
            fprintf(stderr, "register: %s\n", err);
            return 3;
        }
    }
    return serve(gc, n);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The C peer: echoes whole lines until end of file. */
static void echo_peer(int fd)
{
    char buf[8192];
    size_t len = 0;
    for (;;) {
        ssize_t got = read(fd, buf + len, sizeof(buf) - len);
        char *nl;
        if (got <= 0)
            _exit(0);
        len += (size_t)got;
        while ((nl = memchr(buf, '\n', len)) != NULL) {
            size_t line = (size_t)(nl + 1 - buf);
            if (write(fd, buf, line) != (ssize_t)line)
                _exit(1);
            len -= line;
            memmove(buf, buf + line, len);
        }
        if (len == sizeof(buf))
            _exit(1);
    }
}

static int echo(int rounds, unsigned pace_us, char **peer)
{
    static const char line[] =
        "{\"op\":\"shrink\",\"seq\":12345,\"bytes\":67108864,\"level\":\"high\","
        "\"reason\":\"high: usage passed the high threshold, shrinking toward target\"}\n";
    int sv[2], status;
    uint64_t *t = calloc((size_t)rounds, sizeof(*t)), sum = 0;
    pid_t pid;
    if (!t || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("echo");
        return 1;
    }
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        close(sv[0]);
        if (!peer[0])
            echo_peer(sv[1]);
        if (dup2(sv[1], 0) < 0 || dup2(sv[1], 1) < 0)
            _exit(1);
        execvp(peer[0], peer);
        _exit(127);
    }
    close(sv[1]);
    for (int i = -rounds / 10; i < rounds; i++) { /* a tenth more first: warm-up */
        char buf[512];
        size_t got = 0;
        uint64_t t0;
        if (pace_us)
            usleep(pace_us);
        t0 = now_ns();
        if (write(sv[0], line, sizeof(line) - 1) != (ssize_t)sizeof(line) - 1) {
            perror("write");
            return 1;
        }
        while (got == 0 || buf[got - 1] != '\n') {
            ssize_t r = read(sv[0], buf + got, sizeof(buf) - got);
            if (r <= 0) {
                fprintf(stderr, "echo peer: %s\n", r < 0 ? strerror(errno) : "closed");
                return 1;
            }
            got += (size_t)r;
        }
        if (i >= 0) {
            t[i] = now_ns() - t0;
            sum += t[i];
        }
    }
    close(sv[0]);
    waitpid(pid, &status, 0);
    qsort(t, (size_t)rounds, sizeof(*t), cmp_u64);
    printf("echo n=%d p50_us=%.1f p99_us=%.1f mean_us=%.1f\n", rounds,
           (double)t[rounds / 2] / 1e3, (double)t[(size_t)rounds * 99 / 100] / 1e3,
           (double)sum / rounds / 1e3);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "echo") == 0 && atoi(argv[2]) > 0)
        return echo(atoi(argv[2]), (unsigned)atoi(argv[3]), argv + 4);
    if (argc != 5)
        return usage();
    hold = strtoull(argv[4], NULL, 10);
    if (strcmp(argv[1], "shrink") == 0)
        return clients(argv[2], argv[3], 1);
    if (strcmp(argv[1], "idle") == 0 && atoi(argv[3]) >= 1 && atoi(argv[3]) <= MAX_IDLE)
        return clients(argv[2], "idle", atoi(argv[3]));
    return usage();
}
