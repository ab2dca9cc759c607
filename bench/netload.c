/* Load generator and reference echo server for bench/bench_net.py (Linux, loopback only).
 *
 * bench/_netload.py compiles this with `cc -O2` into build/bench/ and caches the binary.
 *
 *   netload echo   PORT CONNS SIZE WARMUP_S DURATION_S COUNT SERVER_PID
 *       CONNS connections, each keeps one SIZE-byte message in flight (non-blocking sockets,
 *       one epoll, level-triggered). After WARMUP_S seconds it measures until DURATION_S
 *       seconds have passed, or COUNT round trips if COUNT > 0. Prints one JSON line: round
 *       trips, elapsed seconds, the server's CPU seconds (utime+stime of SERVER_PID, all
 *       threads, from /proc/PID/stat) and its own CPU seconds over the measured window.
 *   netload idle   PORT IDLE SIZE ECHOES SERVER_PID
 *       One active connection echoes 100 messages to warm the server, then the server's
 *       VmRSS is read, IDLE connections are opened (each does one round trip, so the server
 *       has accepted it and its handler is waiting in a read) and left idle, VmRSS is read
 *       again, and the active connection times ECHOES sequential round trips. Prints one
 *       JSON line: connections, both VmRSS figures, latency p50/p99/max in microseconds.
 *   netload server
 *       A trivial epoll echo server on 127.0.0.1, port picked by the kernel (printed on the
 *       first line of stdout); serves until killed. The reference for what a server that
 *       does nothing but the syscalls costs, and the load generator's ceiling.
 *
 * Every mode raises its soft RLIMIT_NOFILE to the hard limit. Exits non-zero with a message
 * on stderr on any error, and after 120 s of no progress at the latest.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define STALL_S 120.0

static void die(const char *what) {
    fprintf(stderr, "netload: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void fail(const char *what) {
    fprintf(stderr, "netload: %s\n", what);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* utime+stime of a process (all its threads), in seconds. */
static double proc_cpu(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) die(path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name (field 2) may hold spaces and parentheses: count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) fail("unexpected /proc/PID/stat");
    unsigned long utime = 0, stime = 0;
    /* Fields 3..13 skipped, then 14 (utime) and 15 (stime). */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        fail("unexpected /proc/PID/stat");
    return (double)(utime + stime) / sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(long pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) die(path);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    fclose(f);
    if (kb < 0) fail("no VmRSS in /proc/PID/status");
    return kb;
}

static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int tcp_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* ------------------------------------------------------------------------------ echo */

typedef struct {
    int fd;
    int wpos; /* bytes of the current message written */
    int rpos; /* bytes of its echo read */
    int want_out;
} conn_t;

static void conn_events(int ep, conn_t *c, int out) {
    if (c->want_out == out) return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
    c->want_out = out;
}

/* Writes what is left of the current message; asks for EPOLLOUT if the socket is full. */
static void conn_write(int ep, conn_t *c, const char *msg, int size) {
    while (c->wpos < size) {
        ssize_t n = write(c->fd, msg + c->wpos, size - c->wpos);
        if (n < 0) {
            if (errno == EAGAIN) break;
            die("write");
        }
        c->wpos += (int)n;
    }
    conn_events(ep, c, c->wpos < size);
}

/* Opens conns connections to port and waits until every one is established. */
static conn_t *open_conns(int ep, int port, int conns) {
    conn_t *cs = calloc(conns, sizeof *cs);
    if (!cs) fail("out of memory");
    struct sockaddr_in a = loopback(port);
    for (int i = 0; i < conns; i++) {
        cs[i].fd = tcp_socket();
        if (connect(cs[i].fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
            die("connect");
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = &cs[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0) die("epoll_ctl");
    }
    struct epoll_event evs[MAX_EVENTS];
    int pending = conns;
    double deadline = now() + STALL_S;
    while (pending) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        if (now() > deadline) fail("connect stalled");
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                errno = err;
                die("connect");
            }
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
            pending--;
        }
    }
    return cs;
}

static int run_echo(int argc, char **argv) {
    if (argc != 9) fail("usage: netload echo PORT CONNS SIZE WARMUP_S DURATION_S COUNT PID");
    int port = atoi(argv[2]), conns = atoi(argv[3]), size = atoi(argv[4]);
    double warmup = atof(argv[5]), duration = atof(argv[6]);
    long count = atol(argv[7]), pid = atol(argv[8]);
    if (conns < 1 || size < 1) fail("CONNS and SIZE must be positive");
    char *msg = malloc(size), *buf = malloc(size);
    if (!msg || !buf) fail("out of memory");
    memset(msg, 'x', size);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    conn_t *cs = open_conns(ep, port, conns);

    double t0 = now(), start = 0, cpu_srv0 = 0, cpu_self0 = 0, last_progress = t0;
    int measuring = warmup <= 0;
    if (measuring) {
        start = t0;
        cpu_srv0 = proc_cpu(pid);
        cpu_self0 = self_cpu();
    }
    long rts = 0;
    for (int i = 0; i < conns; i++) conn_write(ep, &cs[i], msg, size);

    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        double t = now();
        if (!measuring && t - t0 >= warmup) {
            measuring = 1;
            start = t;
            rts = 0;
            cpu_srv0 = proc_cpu(pid);
            cpu_self0 = self_cpu();
        }
        if (measuring && (count > 0 ? rts >= count : t - start >= duration)) {
            double cpu_srv = proc_cpu(pid) - cpu_srv0, cpu_self = self_cpu() - cpu_self0;
            printf("{\"round_trips\": %ld, \"elapsed\": %.6f, \"server_cpu\": %.4f, "
                   "\"client_cpu\": %.6f}\n",
                   rts, t - start, cpu_srv, cpu_self);
            return 0;
        }
        if (n > 0) last_progress = t;
        else if (t - last_progress > STALL_S) fail("no progress: the server stopped answering");
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT) conn_write(ep, c, msg, size);
            if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            ssize_t r = read(c->fd, buf, size - c->rpos);
            if (r < 0) {
                if (errno == EAGAIN) continue;
                die("read");
            }
            if (r == 0) fail("the server closed a connection");
            c->rpos += (int)r;
            if (c->rpos == size && c->wpos == size) {
                rts++;
                c->rpos = c->wpos = 0;
                conn_write(ep, c, msg, size);
            }
        }
    }
}

/* ------------------------------------------------------------------------------ idle */

/* One blocking round trip of size bytes on fd (a non-blocking socket: poll between tries). */
static void round_trip(int fd, const char *msg, char *buf, int size) {
    int w = 0, r = 0;
    double deadline = now() + STALL_S;
    while (r < size) {
        if (w < size) {
            ssize_t n = write(fd, msg + w, size - w);
            if (n > 0) w += (int)n;
            else if (n < 0 && errno != EAGAIN) die("write");
        }
        ssize_t n = read(fd, buf, size - r);
        if (n > 0) {
            r += (int)n;
            continue;
        }
        if (n == 0) fail("the server closed the active connection");
        if (errno != EAGAIN) die("read");
        if (now() > deadline) fail("the server stopped answering");
        struct pollfd p = {.fd = fd, .events = POLLIN | (w < size ? POLLOUT : 0)};
        if (poll(&p, 1, 1000) < 0 && errno != EINTR) die("poll");
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_idle(int argc, char **argv) {
    if (argc != 7) fail("usage: netload idle PORT IDLE SIZE ECHOES PID");
    int port = atoi(argv[2]), idle = atoi(argv[3]), size = atoi(argv[4]);
    int echoes = atoi(argv[5]);
    long pid = atol(argv[6]);
    if (idle < 0 || size < 1 || echoes < 1) fail("bad IDLE, SIZE or ECHOES");
    char *msg = malloc(size), *buf = malloc(size);
    double *lat = malloc(sizeof(double) * echoes);
    if (!msg || !buf || !lat) fail("out of memory");
    memset(msg, 'x', size);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    conn_t *active = open_conns(ep, port, 1);
    if (epoll_ctl(ep, EPOLL_CTL_DEL, active->fd, NULL) < 0) die("epoll_ctl");
    for (int i = 0; i < 100; i++) round_trip(active->fd, msg, buf, size);
    long rss0 = proc_rss_kb(pid);

    /* Open the idle connections BATCH at a time: each connects, sends one message, reads its
     * echo and then stays open and silent. */
    enum { BATCH = 256 };
    conn_t *cs = calloc(idle ? idle : 1, sizeof *cs);
    if (!cs) fail("out of memory");
    struct sockaddr_in a = loopback(port);
    struct epoll_event evs[MAX_EVENTS];
    int opened = 0, done = 0;
    double t_open = now(), last_progress = t_open;
    while (done < idle) {
        while (opened < idle && opened - done < BATCH) {
            conn_t *c = &cs[opened++];
            c->fd = tcp_socket();
            if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
                die("connect");
            c->want_out = 1;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
        }
        int n = epoll_wait(ep, evs, MAX_EVENTS, 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        double t = now();
        if (n > 0) last_progress = t;
        else if (t - last_progress > STALL_S) fail("opening idle connections stalled");
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLERR) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                errno = err;
                die("idle connection");
            }
            if (evs[i].events & EPOLLOUT) conn_write(ep, c, msg, size);
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP))) continue;
            ssize_t r = read(c->fd, buf, size - c->rpos);
            if (r < 0) {
                if (errno == EAGAIN) continue;
                die("read");
            }
            if (r == 0) fail("the server closed an idle connection");
            c->rpos += (int)r;
            if (c->rpos == size) {
                if (epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL) < 0) die("epoll_ctl");
                done++;
            }
        }
    }
    double open_s = now() - t_open;
    long rss1 = proc_rss_kb(pid);

    for (int i = 0; i < echoes; i++) {
        double t = now();
        round_trip(active->fd, msg, buf, size);
        lat[i] = (now() - t) * 1e6;
    }
    qsort(lat, echoes, sizeof *lat, cmp_double);
    printf("{\"idle\": %d, \"open_s\": %.3f, \"rss_before_kb\": %ld, \"rss_after_kb\": %ld, "
           "\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n",
           idle, open_s, rss0, rss1, lat[echoes / 2], lat[(int)(echoes * 0.99)],
           lat[echoes - 1]);
    return 0;
}

/* ---------------------------------------------------------------------------- server */

static _Noreturn void run_server(void) {
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ls < 0) die("socket");
    struct sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(ls, 4096) < 0) die("listen");
    if (getsockname(ls, (struct sockaddr *)&a, &len) < 0) die("getsockname");
    printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0) die("epoll_ctl");
    struct epoll_event evs[MAX_EVENTS];
    char buf[65536];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0) die("epoll_ctl");
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && errno == EAGAIN) continue;
            if (r <= 0) {
                close(fd);
                continue;
            }
            /* The clients keep one message in flight, so the echo fits the socket buffer; a
             * client that floods it loses its connection rather than stalling the others. */
            if (write(fd, buf, r) != r) close(fd);
        }
    }
}

int main(int argc, char **argv) {
    raise_nofile();
    if (argc >= 2 && strcmp(argv[1], "echo") == 0) return run_echo(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "idle") == 0) return run_idle(argc, argv);
    if (argc == 2 && strcmp(argv[1], "server") == 0) run_server();
    fail("usage: netload echo|idle|server ARGS... (see bench/netload.c)");
    return 1;
}
