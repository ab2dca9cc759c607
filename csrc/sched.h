/*
 * sched.h: the G-M-P scheduler.
 *
 * Glossary (docs/design.md has the full essay):
 *   G  a task (g.h). Embedded in its Python Task object.
 *   P  a processor: the run queues a G waits in, its timers and its counters.
 *   M  an OS thread that runs Python. In this runtime each M owns one P for its whole
 *      life: a P is never handed to another thread, because blocking calls are offloaded
 *      rather than run on the M (Go's hand-off of the P has nothing to gain here).
 *
 * Where a runnable G waits:
 *   - never run:  its P's runnext or ring (runq.h), or the global queue (globalq.h). Any M
 *                 may run it; stealing moves only these.
 *   - started:    pinned to its M (greenlet cannot switch across threads). Readied on its
 *                 own M it goes to runnext (hand-off) or the P's private ready queue;
 *                 readied from another thread it is pushed on the P's inbox, a lock-free
 *                 stack drained by the owner, and the owner M is unparked.
 *
 * Order of a scheduling decision (gr_sched_next): due channel timers (ctimer.h), reported
 * to the caller, which fires them holding the GIL; every 61 ticks a poll of the network if
 * nobody has polled for 10 ms; expired timers; every 61 ticks one G from the global queue;
 * runnext (at most 3 in a row); every 61 ticks the ready queue first; the ring; the ready
 * queue; a non-blocking poll of the network (netpoll.h); the global queue (a batch);
 * stealing; parking, in the poller if tasks wait on fds and no other M is in it.
 *
 * Invariants:
 *   - A G is on at most one queue, and is readied at most once per wait (g.h's claim).
 *   - Only an M's own thread touches its ready queue, timer heap and started list.
 *   - An M exits only after the runtime is closing and it has no started G left, so no
 *     greenlet is abandoned with its finally blocks unrun; the one exception is a task
 *     that keeps catching Cancelled past the shutdown grace period, which the Python
 *     layer finishes as cancelled and never resumes (docs/design.md).
 *   - Deadlock: every M idle, no G queued anywhere, no timer (nor channel timer that can
 *     fire), no offloaded call, no G waiting on an fd, and G's still alive. Only the last
 *     M to go idle can see that, under the idle lock.
 *
 * Build note: this file shadows the system <sched.h> (which <pthread.h> includes) if csrc is
 * put on the -I path; compile with -iquote csrc instead.
 */
#ifndef GR_SCHED_H
#define GR_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "g.h"
#include "globalq.h"
#include "gqueue.h"
#include "idle.h"
#include "netpoll.h"
#include "park.h"
#include "runq.h"
#include "stats.h"
#include "timer.h"

typedef struct gr_sched gr_sched;
typedef struct gr_ctimers gr_ctimers;
/* The Python side of an M's thread (mthread.c): rc is what gr_sched_wait returned
 * (GR_NEXT_NONE: work to do, GR_NEXT_DEADLOCK: report it), released the gr_nanotime() at
 * which the thread set out to take the GIL. */
typedef void (*gr_m_body)(gr_m *m, int rc, int64_t released);

typedef struct gr_p {
    gr_runq runq;
    /* Started G's readied by other threads. Pushers CAS with release; the owner takes the
     * whole stack with an acquire exchange (no ABA: nobody pops single entries). */
    _Alignas(64) _Atomic(gr_g *) inbox;
    _Alignas(64) gr_gqueue readyq; /* owner only */
    uint32_t schedtick;
    uint32_t next_streak;
    uint32_t ctimer_tick; /* schedtick when channel timers were last reported due */
    uint64_t idcache, idcache_end; /* task ids reserved from the global counter */
    gr_timerheap timers;
    int id;
    int node;
    gr_pstats stats;
} gr_p;

struct gr_m {
    gr_park park;
    int id;
    gr_p *p;
    gr_sched *sched;
    int seen_closing;
    uint64_t rng;
    gr_g *curg;
    gr_glist started;   /* owner only: started, unfinished G's (for cancellation) */
    /* GIL-aware stealing (owner only): set when this M's last wait for the GIL took long
     * enough that another M must have been running Python (gr_m_gil_waited). */
    int gil_contended;
    uint32_t nbackoff;  /* back-offs in a row while contended */
    uint32_t nshort;    /* short GIL waits in a row */
    /* gr_sched_wait judged shared work worth the GIL (shared_work_persists); cleared when
     * this M backs off or parks. Without it a GIL build takes no shared work. */
    int steal_grant;
    /* 0 while this M is inside gr_sched_wait or gr_sched_backoff (it runs no Python), 1
     * otherwise. Written by the M, read by the others: shared work whose holders are all
     * inactive is taken at once (sched.c, others_active). */
    _Atomic int active;
    /* 1 while this M is blocked in the poller: whoever unparks it must break the poll
     * too (m_unpark in sched.c). seq_cst, paired with the park word (see there). */
    _Atomic uint32_t in_poll;
    /* Its G's parked on an fd (netpoll.c: changed by this M's own begin and end calls,
     * read by the others): only an M with some blocks in the poller. */
    _Atomic int32_t nfdwait;
    /* Set while this M sleeps on its futex because another M held the poller: the poller
     * wakes it when it leaves (sched.c, take_poller and poll_idle). */
    _Atomic uint32_t want_poll;
    /* Its thread's CPU clock, set by gr_m_bind (has_cpuclock: release, after cpuclock):
     * how much another M has really run (sched.c, shared_work_persists). */
    clockid_t cpuclock;
    _Atomic int has_cpuclock;
    void *obj;          /* the Cython M object */
    gr_m_body body;
    pthread_t thread;
    int has_thread;
};

struct gr_sched {
    int nprocs;
    gr_p *ps;
    gr_m *ms;
    uint32_t *coprimes; /* strides for visiting victims */
    uint32_t ncoprimes;
    gr_globalq gq;
    gr_idle idle;
    gr_ctimers *ctimers;           /* the runtime's channel timers (set before any M runs) */
    gr_netpoll *netpoll;           /* the process's poller (set before any M runs) */
    _Atomic uint64_t ext_spawned;  /* spawned from threads that are not Ms */
    _Atomic int64_t ntimers;       /* armed timers on all Ps (deadlock detection) */
    _Atomic int64_t nexternal;     /* offloaded calls in flight (deadlock detection) */
    _Atomic int64_t deadlock_defer_until; /* gr_nanotime() before which none is declared */
    _Atomic uint32_t closing;
    /* A GIL wait at least this long means another M was running Python; 0 turns GIL-aware
     * stealing off (one P, or a free-threaded build). Set before any M starts. */
    int64_t gil_contended_ns;
};

enum {
    GR_NEXT_G = 0,       /* *out is the G to run */
    GR_NEXT_NONE,        /* non-blocking call found nothing */
    GR_NEXT_CLOSING,     /* first sight of closing on this M: cancel its started G's */
    GR_NEXT_EXIT,        /* closing and nothing left for this M: the thread may end */
    GR_NEXT_DEADLOCK,    /* every task is asleep and nothing can wake one */
    GR_NEXT_INTR,        /* a signal interrupted the park: run Python's handlers */
    GR_NEXT_BACKOFF,     /* only shared work, and the GIL is busy: gr_sched_backoff */
    GR_NEXT_TIMERS,      /* channel timers are due: fire them (gr_ctimers_fire), call again */
};

gr_sched *gr_sched_new(int nprocs);
void gr_sched_free(gr_sched *s);
void gr_sched_set_node(gr_sched *s, int p, int node);
gr_m *gr_sched_m(gr_sched *s, int i);
void gr_sched_set_ctimers(gr_sched *s, gr_ctimers *h);
void gr_sched_set_netpoll(gr_sched *s, gr_netpoll *np);

/* The M of the calling thread (thread-local), or NULL on threads that are not Ms. */
void gr_m_bind(gr_m *m);
gr_m *gr_m_current(void);

/* A cheap per-thread random number (select's poll order). */
uint32_t gr_fastrand(void);

/* Fill in a fresh G with a process-wide unique id. Call on an M (ids come from its P's
 * cache) or with m == NULL. */
void gr_g_init(gr_m *m, gr_g *g, void *obj);
/* Make a new G runnable: runnext of m's P, then wake an idle M if nobody is spinning. */
void gr_spawn(gr_m *m, gr_g *g);
/* Spawn g from M m (its own thread, or run()'s before any M runs) to run on target only,
 * as if it had started there, never stolen: code that must run on one thread, such as
 * run()'s main on the thread that called run() and installing a signal handler on the main
 * thread's M. */
void gr_spawn_on(gr_m *m, gr_m *target, gr_g *g);
/* The same as gr_spawn from a thread that is not an M: the global queue. Returns -1
 * (and queues nothing) once the runtime is closing (gr_sched_close). */
int gr_spawn_external(gr_sched *s, gr_g *g);

/* m runs g for the first time: g is pinned to m from now on. */
void gr_g_start(gr_m *m, gr_g *g);
/* Put a started G on m's started list (done at its first park; idempotent). */
void gr_m_track(gr_m *m, gr_g *g);
/* Make a claimed G runnable on its own M. next: hand it runnext (a channel hand-off). */
void gr_ready(gr_g *g, int next);
/* Claim and ready; returns 1 if this call won the claim. */
int gr_g_wake(gr_g *g, uint32_t reason, int next);
/* The running G g yields: it goes to the tail of m's ready queue. */
void gr_yield(gr_m *m, gr_g *g);
/* A parked G is about to switch away (counts the park). */
void gr_g_parked(gr_m *m, gr_g *g);
/* g finished on m: DONE (release), wake joiners, forget it. */
void gr_g_finish(gr_sched *s, gr_m *m, gr_g *g);

/* A channel timer became the earliest from outside the scheduler: wake an idle M (if none
 * is spinning), so that it parks again with a timeout that includes it. */
void gr_sched_wakep(gr_sched *s);

/* The next G for m, with the GIL held: its own queues, then the global queue, then
 * stealing. Never waits. GR_NEXT_NONE: call gr_sched_wait without the GIL, then again. */
int gr_sched_next(gr_m *m, gr_g **out);
/* Without the GIL: spin briefly, then park, until work may be there for m. Returns
 * GR_NEXT_NONE (look again), GR_NEXT_DEADLOCK or GR_NEXT_INTR. It never dequeues: a G
 * taken here would sit in an M's hands while that M waits for the GIL, unseen by the
 * others, and whether to take shared work at all depends on that wait. */
int gr_sched_wait(gr_m *m);

/* GIL-aware stealing, for GIL builds with more than one P. On such a build only one M
 * runs Python at a time, so a never-run task started on another M buys parallelism only
 * if its M can get the GIL: when the thread holding it is in a GIL-releasing call
 * (hashlib, zlib, I/O) or idle. Otherwise it splits chatty tasks across Ms for good (a
 * started task is pinned), and every message between them costs a GIL hand-off. The
 * signal needs no CPython internals: how long this M waited for the GIL. A wait near the
 * switch interval means another M was running Python until CPython forced a switch;
 * then this M leaves shared work alone (GR_NEXT_BACKOFF) and sleeps a growing while
 * (gr_sched_backoff), outside the idle set. docs/design.md weighs the alternatives. */
void gr_sched_set_gil_policy(gr_sched *s, int64_t contended_ns);
/* The Python layer reports each wait for the GIL after gr_sched_wait/gr_sched_backoff. */
void gr_m_gil_waited(gr_m *m, int64_t waited_ns);
/* Without the GIL: sleep 0.5 ms, doubling per round up to 16 ms, or until this M's inbox,
 * a timer of its own or shutdown wakes it. */
void gr_sched_backoff(gr_m *m);

/* Start m's OS thread (not M0's: that is run()'s caller). It waits in C and calls body,
 * which enters Python, once there is work for it (mthread.c). Returns an errno value. */
int gr_m_thread_start(gr_m *m, gr_m_body body);
/* Wait for m's thread to end (call without the GIL); a no-op if none was started. */
void gr_m_thread_join(gr_m *m);

/* Start shutdown: spawns from outside the runtime are refused from now on, and every M
 * sees GR_NEXT_CLOSING once, then drains and exits. Idempotent. */
void gr_sched_close(gr_sched *s);
static inline int gr_sched_closing(gr_sched *s)
{
    return atomic_load_explicit(&s->closing, memory_order_acquire) != 0;
}
/* A deadlock was seen but a thread outside the runtime could still end it: report none
 * before `until` (gr_nanotime()); the last idle M then checks again. */
void gr_sched_defer_deadlock(gr_sched *s, int64_t until);
/* Offloaded calls in flight keep the deadlock detector quiet. */
void gr_sched_external_add(gr_sched *s, int64_t delta);

/* After every M has exited: one G left on the global queue (spawned from a foreign
 * thread as the runtime closed), or NULL. */
gr_g *gr_sched_take_global(gr_sched *s);
/* G's spawned so far, and live G's (spawned and not finished). Exact when quiescent. */
uint64_t gr_sched_spawned(gr_sched *s);
int64_t gr_sched_live(gr_sched *s);
void gr_sched_pstats(gr_sched *s, int p, gr_pstats_snapshot *out);
uint64_t gr_sched_globalq_len(gr_sched *s);
int gr_sched_nmidle(gr_sched *s);
int gr_sched_nmspinning(gr_sched *s);

#endif
