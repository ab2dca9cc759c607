/*
 * netpoll.h: the network poller (Go's netpoll), one per process, shared by the runs.
 *
 * A task that waits for a file descriptor parks, like any other wait (g.h's protocol),
 * in the reader or writer slot of the fd's descriptor (gr_pollfd, Go's pollDesc). Every
 * fd is registered once, edge-triggered, for both directions; an edge that finds its slot
 * empty is remembered in the slot's ready flag, which the next wait consumes without
 * parking. Readiness is a hint: the Python layer does the non-blocking call first and
 * waits only when it says EAGAIN, so a stale flag costs one extra try, never a lost wake-up.
 *
 * Into the scheduler (sched.c), Go's way:
 *   - an M out of local and global work polls without blocking before it steals, and a
 *     busy M polls every 61 ticks when nobody has polled for GR_NETPOLL_STALE_NS;
 *   - an M that goes idle while tasks wait on fds blocks in the poller instead of on its
 *     futex, until its next timer is due; at most one M at a time (gr_netpoll_try_block);
 *   - whoever wakes an M that is in the poller (new work for it, a ready started task,
 *     shutdown) breaks the wait through an eventfd (gr_netpoll_break);
 *   - a readied task goes to its own M through gr_ready, as any wake-up does: started
 *     tasks are pinned, and the poll may run on any M.
 *
 * Descriptors are never freed while the process lives (they are recycled): a waiter or an
 * event that still holds one after its fd was closed touches valid memory, and the
 * descriptor's sequence number, bumped at every close and carried in each epoll event and
 * by every Python handle, turns anything stale into a no-op or GR_WAIT_CLOSED. The fd ->
 * descriptor table remembers each fd's file identity (device and inode): an fd number
 * closed behind the poller's back and reused by another file is registered afresh.
 *
 * The OS part is a small backend (netpoll_epoll.c: init, add, del, wait, wake) so that a
 * kqueue backend could follow.
 */
#ifndef GR_NETPOLL_H
#define GR_NETPOLL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "g.h"

/* A busy M polls when nobody has for this long (Go's sysmon uses 10 ms). */
#define GR_NETPOLL_STALE_NS 10000000

enum { GR_POLL_READ = 0, GR_POLL_WRITE = 1 };

typedef struct gr_pollfd {
    gr_lock lock;        /* guards everything below but idx */
    uint32_t seq;        /* bumped at every close: tags events and handles */
    uint32_t idx;        /* place in the descriptor table (fixed) */
    int fd;
    uint32_t closing;
    uint32_t ready[2];   /* an edge arrived while the slot was empty */
    /* A hang-up, the peer's FIN or an error was reported (sticky until the fd is
     * registered again). Read without the lock by gr_pollfd_hup. */
    _Atomic uint32_t hup;
    /* Read edges harvested so far (never reset: handles compare it with what they saw).
     * Read without the lock by gr_pollfd_redges. */
    _Atomic uint32_t redges;
    gr_g *waiter[2];     /* the G parked for reading / writing, or NULL */
    uint64_t dev, ino;   /* identity of the registered file */
    struct gr_pollfd *next_free;
} gr_pollfd;

/* The descriptor table: chunks allocated on demand, never freed before gr_netpoll_destroy. */
#define GR_PD_CHUNK 256
#define GR_PD_CHUNKS 4096

typedef struct gr_netpoll {
    pthread_mutex_t mu;           /* guards the tables, the free list and (re)initialisation */
    _Atomic int inited;
    int epfd, evfd;
    uint32_t gen;                 /* bumped when a forked child starts afresh */
    _Atomic(gr_pollfd *) chunks[GR_PD_CHUNKS];
    uint32_t npd;                 /* descriptors handed out so far (under mu) */
    gr_pollfd *free;
    uint32_t *fdtab;              /* fd -> idx + 1, 0 for none (under mu) */
    uint32_t fdcap;
    /* G's parked on an fd: deadlock detection, and whether polling is worth a syscall.
     * Incremented by a begin under the descriptor's lock before its M can reach the idle
     * lock (so the deadlock check, which holds it, sees the count), decremented by end. */
    _Atomic int64_t nwait;
    _Atomic int32_t blocked;      /* an M is in gr_netpoll_block */
    _Atomic uint32_t wakesig;     /* a break is pending in evfd (Go's netpollWakeSig) */
    _Atomic int64_t lastpoll;     /* gr_nanotime() of the last poll */
    /* Counters for stats(), relaxed: nothing is ordered by them. */
    _Atomic uint64_t npolls;      /* non-blocking polls */
    _Atomic uint64_t nblocks;     /* waits of an M blocked in the poller */
} gr_netpoll;

void gr_netpoll_init(gr_netpoll *np);
/* Close the OS objects; descriptors stay valid for stale handles. */
void gr_netpoll_destroy(gr_netpoll *np);
/* In a child after fork(): the epoll instance is the parent's. Forget every registration
 * (every descriptor's seq is bumped) and start afresh at the next open (gen changes). */
void gr_netpoll_after_fork(gr_netpoll *np);

/* The descriptor of fd (registering it on first use) and its seq through *seq.
 * NULL with *err: EBADF (not open), EPERM (a regular file or another fd epoll cannot
 * watch: it is always ready), ENOMEM, EMFILE (poller fds) or another errno. */
gr_pollfd *gr_netpoll_open(gr_netpoll *np, int fd, uint32_t *seq, int *err);
/* fd is about to be closed: wake its waiters with GR_WAIT_CLOSED and drop its registration.
 * 1 if there was one. */
int gr_netpoll_close_fd(gr_netpoll *np, int fd);
/* The same through a handle: a no-op (0) if pd has been closed since seq was taken. */
int gr_netpoll_close(gr_netpoll *np, gr_pollfd *pd, uint32_t seq);

/* The wait (g.h): OK (readiness was pending), CLOSED (pd closed, or seq stale), BUSY
 * (another G waits in that slot), TIMEOUT (deadline NOW), or PARK. */
int gr_pollfd_wait_begin(gr_netpoll *np, gr_pollfd *pd, uint32_t seq, int mode, gr_g *self,
                         int64_t deadline);
/* After the park: OK (ready), CLOSED, TIMEOUT or CANCELLED. */
int gr_pollfd_wait_end(gr_netpoll *np, gr_pollfd *pd, int mode, gr_g *self);

static inline int64_t gr_netpoll_nwait(gr_netpoll *np)
{
    return np ? atomic_load(&np->nwait) : 0;
}
/* Poll once, without blocking, and ready the waiters of every fd found ready. Returns how
 * many G's were readied. */
int gr_netpoll_poll(gr_netpoll *np);
/* How many polls and blocking waits this poller has made (since its init). */
uint64_t gr_netpoll_npolls(gr_netpoll *np);
uint64_t gr_netpoll_nblocks(gr_netpoll *np);
/* Become the one M blocked in the poller: 1 if this caller now is (call gr_netpoll_block,
 * then gr_netpoll_unblock), 0 if another M is. */
int gr_netpoll_try_block(gr_netpoll *np);
void gr_netpoll_unblock(gr_netpoll *np);
/* Wait up to timeout_ns (< 0: forever) for fd events or a break, and ready the waiters.
 * Returns the number readied, or -1 if a signal interrupted the wait. */
int gr_netpoll_block(gr_netpoll *np, int64_t timeout_ns);
/* Any thread: make a blocked gr_netpoll_block return. */
void gr_netpoll_break(gr_netpoll *np);

/* ---- the OS backend (netpoll_epoll.c) ---- */
int gr_npb_init(gr_netpoll *np);                     /* 0 or an errno */
void gr_npb_close(gr_netpoll *np);
int gr_npb_add(gr_netpoll *np, int fd, uint64_t tag); /* 0 or an errno */
void gr_npb_del(gr_netpoll *np, int fd);
/* Wait for events (timeout_ns: 0 poll, < 0 forever) and call gr_netpoll_event for each.
 * Returns the number of G's readied, or -1 on EINTR. */
int gr_npb_wait(gr_netpoll *np, int64_t timeout_ns);
void gr_npb_wake(gr_netpoll *np);
/* Called by the backend: the fd tagged `tag` is readable and/or writable; hup: the event
 * reports a hang-up, the peer's FIN or an error. */
int gr_netpoll_event(gr_netpoll *np, uint64_t tag, int readable, int writable, int hup);

/* Whether a hang-up was ever reported for pd's fd (an event harvested before the caller
 * looked). A TCP reader uses it to know that a short read may have stopped at the peer's
 * FIN, whose edge is already spent (_PollFd.io). */
static inline int gr_pollfd_hup(gr_pollfd *pd)
{
    return atomic_load_explicit(&pd->hup, memory_order_acquire) != 0;
}

/* How many read edges have been harvested for pd. A reader that drained the fd keeps
 * what this said before its read: the same count later means no edge came since, so the
 * next arrival is still to come as an edge for its wait; a new count means an edge came,
 * which another wait (wait_readable on the same fd) may have spent, so it reads first.
 * seq_cst, as the increment in gr_netpoll_event. */
static inline uint32_t gr_pollfd_redges(gr_pollfd *pd)
{
    return atomic_load(&pd->redges);
}

#endif
