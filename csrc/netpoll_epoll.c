/*
 * netpoll_epoll.c: the Linux backend of netpoll.h: one epoll instance, every fd
 * edge-triggered for both directions, and an eventfd to break a blocked wait.
 */
#define _GNU_SOURCE
#include "netpoll.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The eventfd's tag: no descriptor has idx 0xffffffff (the table is smaller). */
#define EVFD_TAG UINT64_MAX
#define MAX_EVENTS 128

int gr_npb_init(gr_netpoll *np)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return errno;
    int ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ev < 0) {
        int e = errno;
        close(ep);
        return e;
    }
    /* Level-triggered: a break stays visible until the blocked poll drains it, even if a
     * non-blocking poll on another M sees it first (and leaves it alone). */
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = EVFD_TAG};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) != 0) {
        int err = errno;
        close(ev);
        close(ep);
        return err;
    }
    np->epfd = ep;
    np->evfd = ev;
    return 0;
}

void gr_npb_close(gr_netpoll *np)
{
    close(np->evfd);
    close(np->epfd);
    np->evfd = np->epfd = -1;
}

int gr_npb_add(gr_netpoll *np, int fd, uint64_t tag)
{
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = tag};
    if (epoll_ctl(np->epfd, EPOLL_CTL_ADD, fd, &e) == 0)
        return 0;
    /* Still registered under an old tag (its descriptor was shut while the file stayed
     * open): retag it. */
    if (errno == EEXIST && epoll_ctl(np->epfd, EPOLL_CTL_MOD, fd, &e) == 0)
        return 0;
    return errno;
}

void gr_npb_del(gr_netpoll *np, int fd)
{
    /* ENOENT or EBADF: the kernel dropped it already (the file was closed). */
    epoll_ctl(np->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* epoll_pwait2 (Linux 5.11) takes a timespec: epoll_wait's milliseconds would round a
 * 100 us timer up to 1 ms. Called through syscall() so that a wheel built against an old
 * glibc still has it; ENOSYS falls back to epoll_wait for good. */
static _Atomic int no_pwait2;

static int wait_events(int ep, struct epoll_event *evs, int64_t timeout_ns)
{
#ifdef SYS_epoll_pwait2
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts, *tsp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000);
            ts.tv_nsec = (long)(timeout_ns % 1000000000);
            tsp = &ts;
        }
        int n = (int)syscall(SYS_epoll_pwait2, ep, evs, MAX_EVENTS, tsp, NULL, (size_t)8);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
    }
#endif
    int ms = -1;
    if (timeout_ns >= 0) {
        int64_t up = (timeout_ns + 999999) / 1000000; /* round up: never wake early */
        ms = up > INT32_MAX ? INT32_MAX : (int)up;
    }
    return epoll_wait(ep, evs, MAX_EVENTS, ms);
}

int gr_npb_wait(gr_netpoll *np, int64_t timeout_ns)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = wait_events(np->epfd, evs, timeout_ns);
    if (n < 0)
        return errno == EINTR ? -1 : 0;
    int readied = 0;
    for (int i = 0; i < n; i++) {
        uint64_t tag = evs[i].data.u64;
        if (tag == EVFD_TAG) {
            /* Only a blocking poll consumes a break (Go's rule): a non-blocking one that
             * drained it could leave the blocked M asleep. Drain, then re-arm wakesig. */
            if (timeout_ns != 0) {
                uint64_t v;
                ssize_t r = read(np->evfd, &v, sizeof v);
                (void)r;
                atomic_store(&np->wakesig, 0);
            }
            continue;
        }
        uint32_t e = evs[i].events;
        readied += gr_netpoll_event(np, tag, (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0,
                                    (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0,
                                    (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    }
    return readied;
}

void gr_npb_wake(gr_netpoll *np)
{
    uint64_t one = 1;
    ssize_t r;
    do
        r = write(np->evfd, &one, sizeof one);
    while (r < 0 && errno == EINTR);
}
