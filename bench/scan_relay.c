/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scan_relay -- a TCP relay that adds latency, for the scan benchmark
 * (bench/probe_scan.sh).  The kernel here has no netem qdisc, so the
 * round-trip delay of a remote estate is made in user space: every chunk
 * read from one side is written to the other side DELAY_MS later, in
 * order, in both directions (DELAY_MS = 25 gives 50 ms per round trip).
 *
 *   scan_relay DELAY_MS BACKEND_PORT LISTEN_PORT ADDR...
 *
 * listens on ADDR:LISTEN_PORT for every ADDR (any of 127.0.0.0/8), and
 * relays each connection to 127.0.0.1:BACKEND_PORT.  One thread, epoll;
 * prints "ready" when listening, runs until SIGTERM/SIGINT.  The TCP
 * handshake itself is not delayed (the kernel answers the SYN), nor is a
 * close: an end of stream is passed on once the data before it is out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTEN 64
#define CHUNK 16384

typedef struct chunk {
    struct chunk *next;
    long long due_ms; /* when it may be written */
    size_t len, off;
    int eof; /* an end of stream, not data */
    unsigned char data[];
} chunk;

/* One direction: read from |from|, queue, write to |to|. */
typedef struct {
    int from, to;
    chunk *head, *tail;
    int read_done; /* EOF seen on |from| */
    int write_done; /* shutdown(SHUT_WR) done on |to| */
} pipe_dir;

typedef struct conn {
    pipe_dir dir[2]; /* 0: client -> backend, 1: backend -> client */
    int fd[2]; /* client, backend */
    int connected; /* backend connect finished */
    int dead; /* to be freed after this batch of events */
    int registered[2]; /* the side's fd is in the epoll set */
    struct conn *next, *prev;
} conn;

static volatile sig_atomic_t stop;
static int ep;
static long delay_ms;
static struct sockaddr_in backend;
static conn *conns;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* epoll data: the conn pointer with the side (0/1) in the low bit; listeners
 * are registered with their fd and a marker. */
#define LISTEN_TAG ((uint64_t)1 << 63)

static void watch(conn *c, int side)
{
    struct epoll_event ev;
    int fd = c->fd[side];
    pipe_dir *in = &c->dir[side]; /* data read from this side */
    pipe_dir *out = &c->dir[1 - side]; /* data written to this side */

    memset(&ev, 0, sizeof(ev));
    if (!in->read_done)
        ev.events |= EPOLLIN;
    if ((side == 1 && !c->connected)
        || (out->head != NULL && out->head->due_ms <= now_ms() && !out->write_done))
        ev.events |= EPOLLOUT;
    ev.data.u64 = (uint64_t)(uintptr_t)c | (uint64_t)side;
    /* Nothing wanted: out of the set, or a hung-up socket (EPOLLHUP is
     * always reported) would wake the loop until the connection ends. */
    if (ev.events == 0) {
        if (c->registered[side])
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        c->registered[side] = 0;
        return;
    }
    epoll_ctl(ep, c->registered[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    c->registered[side] = 1;
}

static void conn_free(conn *c)
{
    int d;
    chunk *k, *n;

    for (d = 0; d < 2; d++) {
        for (k = c->dir[d].head; k != NULL; k = n) {
            n = k->next;
            free(k);
        }
        close(c->fd[d]);
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
}

static void enqueue(pipe_dir *p, chunk *k)
{
    k->next = NULL;
    k->due_ms = now_ms() + delay_ms;
    if (p->tail != NULL)
        p->tail->next = k;
    else
        p->head = k;
    p->tail = k;
}

/* Reads what |side| sent; 0 when the connection must go. */
static int do_read(conn *c, int side)
{
    pipe_dir *p = &c->dir[side];
    chunk *k;
    ssize_t n;

    for (;;) {
        if ((k = malloc(sizeof(*k) + CHUNK)) == NULL)
            return 0;
        n = recv(c->fd[side], k->data, CHUNK, 0);
        if (n > 0) {
            k->len = (size_t)n;
            k->off = 0;
            k->eof = 0;
            enqueue(p, k);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            free(k);
            return 1;
        }
        if (n < 0 && errno == EINTR) {
            free(k);
            continue;
        }
        /* end of stream, or an error (passed on as an end of stream) */
        k->len = k->off = 0;
        k->eof = 1;
        enqueue(p, k);
        p->read_done = 1;
        return 1;
    }
}

/* Writes the chunks of direction |d| that are due; 0 when the connection
 * must go. */
static int do_write(conn *c, int d)
{
    pipe_dir *p = &c->dir[d];
    long long now = now_ms();
    chunk *k;
    ssize_t n;

    while ((k = p->head) != NULL && k->due_ms <= now) {
        if (k->eof) {
            shutdown(p->to, SHUT_WR);
            p->write_done = 1;
        } else {
            n = send(p->to, k->data + k->off, k->len - k->off, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return 1;
            if (n < 0 && errno != EINTR)
                return 0;
            if (n > 0)
                k->off += (size_t)n;
            if (k->off < k->len)
                continue;
        }
        p->head = k->next;
        if (p->head == NULL)
            p->tail = NULL;
        free(k);
    }
    return 1;
}

static int finished(const conn *c)
{
    return c->dir[0].write_done && c->dir[1].write_done;
}

static void accept_all(int lfd)
{
    struct epoll_event ev;
    conn *c;
    int fd, bfd, one = 1, side;

    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        bfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        c = calloc(1, sizeof(*c));
        if (bfd < 0 || c == NULL
            || (connect(bfd, (struct sockaddr *)&backend, sizeof(backend)) != 0
                && errno != EINPROGRESS)) {
            close(fd);
            if (bfd >= 0)
                close(bfd);
            free(c);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(bfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd[0] = fd;
        c->fd[1] = bfd;
        c->dir[0].from = fd;
        c->dir[0].to = bfd;
        c->dir[1].from = bfd;
        c->dir[1].to = fd;
        c->next = conns;
        if (conns != NULL)
            conns->prev = c;
        conns = c;
        for (side = 0; side < 2; side++) {
            memset(&ev, 0, sizeof(ev));
            ev.events = EPOLLIN;
            ev.data.u64 = (uint64_t)(uintptr_t)c | (uint64_t)side;
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd[side], &ev);
            c->registered[side] = 1;
        }
        watch(c, 1);
    }
}

/* Handles one side's event; 0 when the connection must go. */
static int on_event(conn *c, int side, uint32_t events)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (side == 1 && !c->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
            return 0;
        c->connected = 1;
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->dir[side].read_done
        && (side == 0 || c->connected) && !do_read(c, side))
        return 0;
    if (c->connected && !do_write(c, 1 - side))
        return 0;
    return 1;
}

int main(int argc, char **argv)
{
    struct epoll_event evs[256], ev;
    struct sockaddr_in sa;
    int lfds[MAX_LISTEN], nl = 0, i, n, one = 1, timeout;
    long long next, now;
    conn *c, *cn;

    if (argc < 5) {
        fprintf(stderr, "usage: scan_relay DELAY_MS BACKEND_PORT LISTEN_PORT ADDR...\n");
        return 2;
    }
    delay_ms = atol(argv[1]);
    memset(&backend, 0, sizeof(backend));
    backend.sin_family = AF_INET;
    backend.sin_port = htons((unsigned short)atoi(argv[2]));
    backend.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        perror("scan_relay: epoll_create1");
        return 2;
    }
    for (i = 4; i < argc && nl < MAX_LISTEN; i++) {
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((unsigned short)atoi(argv[3]));
        if (inet_pton(AF_INET, argv[i], &sa.sin_addr) != 1) {
            fprintf(stderr, "scan_relay: bad address '%s'\n", argv[i]);
            return 2;
        }
        lfds[nl] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        setsockopt(lfds[nl], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(lfds[nl], (struct sockaddr *)&sa, sizeof(sa)) != 0
            || listen(lfds[nl], 1024) != 0) {
            fprintf(stderr, "scan_relay: %s:%s: %s\n", argv[i], argv[3], strerror(errno));
            return 2;
        }
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.u64 = LISTEN_TAG | (uint64_t)nl;
        epoll_ctl(ep, EPOLL_CTL_ADD, lfds[nl], &ev);
        nl++;
    }
    printf("ready\n");
    fflush(stdout);
    while (!stop) {
        /* sleep until the next chunk is due (or an event) */
        next = -1;
        for (c = conns; c != NULL; c = c->next)
            for (i = 0; i < 2; i++)
                if (c->dir[i].head != NULL && (next < 0 || c->dir[i].head->due_ms < next))
                    next = c->dir[i].head->due_ms;
        now = now_ms();
        timeout = next < 0 ? 1000 : next <= now ? 0 : (int)(next - now);
        n = epoll_wait(ep, evs, 256, timeout);
        for (i = 0; i < n; i++) {
            if (evs[i].data.u64 & LISTEN_TAG) {
                accept_all(lfds[evs[i].data.u64 & 0xffff]);
                continue;
            }
            c = (conn *)(uintptr_t)(evs[i].data.u64 & ~(uint64_t)1);
            /* both sockets of a connection may be in one batch */
            if (!c->dead && !on_event(c, (int)(evs[i].data.u64 & 1), evs[i].events))
                c->dead = 1;
        }
        /* due chunks, and the epoll masks */
        for (c = conns; c != NULL; c = cn) {
            cn = c->next;
            if (c->dead
                || (c->connected && (!do_write(c, 0) || !do_write(c, 1) || finished(c)))) {
                conn_free(c);
                continue;
            }
            watch(c, 0);
            watch(c, 1);
        }
    }
    while (conns != NULL)
        conn_free(conns);
    for (i = 0; i < nl; i++)
        close(lfds[i]);
    close(ep);
    return 0;
}
