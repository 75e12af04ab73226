/* slow-clients.c -- many HTTP clients that send requests and never read.
 *
 * The VM test's slow-readers case runs this against governord: N
 * connections to 127.0.0.1:PORT, each with a small receive buffer (4 KiB),
 * each sending REPEAT rounds of pipelined "GET PATH" requests, one per path
 * of the comma-separated PATHS, at once and then reading nothing, so that every answer the server writes stays queued on the
 * server's side -- in its socket send queue (kernel memory that cgroup v2
 * charges to the server's cgroup) and in its own buffers.  After HOLD
 * seconds it reports how many connections the server has closed by then
 * (seen as POLLRDHUP without reading anything) and exits, which resets
 * them all (SO_LINGER 0).
 *
 * Built statically (cc -static) for the initramfs.
 * Usage: slow-clients PORT N PATHS REPEAT HOLD_SECONDS
 * Prints: "slow-clients: N connected, C closed by the server after H s". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long arg(const char *s, long min, long max)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) {
        fprintf(stderr, "slow-clients: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct pollfd *pfd;
    struct linger lg = {1, 0};
    char *req, *batch;
    size_t reqlen, batchlen;
    long port, n, repeat, hold, connected = 0, closed = 0;
    int rcvbuf = 4096;

    if (argc != 6) {
        fprintf(stderr, "usage: slow-clients PORT N PATHS REPEAT HOLD_SECONDS\n");
        return 2;
    }
    port = arg(argv[1], 1, 65535);
    n = arg(argv[2], 1, 100000);
    repeat = arg(argv[4], 1, 100000);
    hold = arg(argv[5], 0, 3600);
    /* one round: a request for each path */
    {
        char *paths = strdup(argv[3]), *save = NULL, *one;
        size_t cap = 0;
        FILE *f = open_memstream(&req, &cap);
        if (!paths || !f)
            return 1;
        for (one = strtok_r(paths, ",", &save); one; one = strtok_r(NULL, ",", &save))
            fprintf(f, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", one);
        if (fclose(f) != 0)
            return 1;
        free(paths);
    }
    reqlen = strlen(req);
    batchlen = reqlen * (size_t)repeat;
    batch = malloc(batchlen);
    pfd = calloc((size_t)n, sizeof(*pfd));
    if (!batch || !pfd)
        return 1;
    for (long i = 0; i < repeat; i++)
        memcpy(batch + (size_t)i * reqlen, req, reqlen);
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    for (long i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        pfd[i].fd = -1;
        if (fd < 0) {
            perror("slow-clients: socket");
            break;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            perror("slow-clients: connect");
            close(fd);
            break;
        }
        /* as much of the batch as the socket takes now; the rest is dropped */
        fcntl(fd, F_SETFL, O_NONBLOCK);
        if (send(fd, batch, batchlen, MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
            perror("slow-clients: send");
            close(fd);
            break;
        }
        pfd[i].fd = fd;
        pfd[i].events = POLLRDHUP;
        connected++;
    }
    printf("slow-clients: %ld connected, holding %ld s\n", connected, hold);
    fflush(stdout);
    if (hold > 0) {
        struct timespec ts = {hold, 0};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
    }
    if (poll(pfd, (nfds_t)connected, 0) < 0)
        perror("slow-clients: poll");
    for (long i = 0; i < connected; i++)
        if (pfd[i].revents & (POLLRDHUP | POLLHUP | POLLERR))
            closed++;
    printf("slow-clients: %ld connected, %ld closed by the server after %ld s\n", connected,
           closed, hold);
    return 0;
}
