/*
 * g.h: the G (task descriptor) and the wait protocol every parking primitive uses.
 *
 * A G is embedded in the Python Task object that owns it: the runtime holds one strong
 * reference to the Task from spawn until the G finishes, so queues and wait lists carry
 * plain gr_g pointers with no reference counting in C.
 *
 * The wait protocol (Go's gopark/goready). Every blocking operation is a pair of C calls
 * around one park in the Python layer:
 *
 *   begin(..., self, deadline)  under the primitive's lock: complete at once (GR_WAIT_OK,
 *                               _CLOSED), give up at once (deadline 0: GR_WAIT_TIMEOUT), or
 *                               arm self's timer, prepare its wait and queue its waiter
 *                               (GR_WAIT_PARK). wait.h's gr_wait_arm does the middle part.
 *   park                        the Python layer switches away until a waker readies self.
 *   end(..., self)              leave every queue, disarm the timer, and say how the wait
 *                               ended: what a waker handed over (GR_WAIT_OK, _CLOSED), or
 *                               else why self was woken (GR_WAIT_TIMEOUT, _CANCELLED).
 *
 * The Python layer drives every wait through waitop.h's one begin and one end, which
 * also close the race with a cancel that lands as the G parks (wait.c, gr_g_cancel).
 *
 * A G prepares (waiting = 1) only on the way to parking, and under the lock of the queue
 * it joins, so nothing ever has to take a prepared wait back. Any waker (a finishing task,
 * a channel peer, a timer, a cancel) must win gr_g_claim (CAS waiting 1 -> 0) before it may
 * make the G runnable, so a G is readied exactly once per wait however many wakers race,
 * and it always parks to consume that ready. A waker that finds the G through a wait queue
 * holds that queue's lock while it claims: the G must take the same lock to leave the
 * queue, so it cannot have moved on to a different wait in between (no ABA).
 */
#ifndef GR_G_H
#define GR_G_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lock.h"
#include "throw.h"

typedef struct gr_g gr_g;
typedef struct gr_m gr_m;

/* A parked G's place in one wait queue (waitq.h). A G's own `waiter` serves every wait on
 * one thing (join, a channel operation, a semaphore); select allocates one per case. All
 * fields but g are guarded by the lock of the queue the waiter is on. */
typedef struct gr_waiter {
    gr_g *g;
    struct gr_waiter *next, *prev;
    void *elem;          /* the value handed over (channels) */
    int32_t idx;         /* select: the case's index */
    uint32_t ok;         /* channels and fd waits: 0 when woken by close */
    uint32_t linked;
    uint32_t success;    /* set by the waker that completed this waiter's operation */
} gr_waiter;

typedef struct gr_waitq {
    gr_waiter *head, *tail;
} gr_waitq;

/* A G's states. The runtime reads only DONE (gr_g_done); the others make every transition
 * checkable (gr_g_move, with GR_DEBUG):
 *   NEW -> RUNNABLE          spawned
 *   RUNNABLE -> RUNNING      handed to its M by gr_sched_next
 *   RUNNING -> WAITING       about to park (gr_g_prepare_wait)
 *   WAITING -> RUNNABLE      readied by the claim's winner (gr_ready)
 *   RUNNING -> RUNNABLE      yielded
 *   any but DONE -> DONE     finished, or dropped unrun (shutdown), or abandoned parked */
enum { GR_G_NEW = 0, GR_G_RUNNABLE, GR_G_RUNNING, GR_G_WAITING, GR_G_DONE };
enum { GR_WAKE_NONE = 0, GR_WAKE_READY, GR_WAKE_TIMEOUT, GR_WAKE_CANCEL };
/* CANCEL: set by gr_g_cancel and never cleared: a cancelled G stays cancelled (trio's
 * rule), so every later park point raises again.
 * INTERRUPT: set by gr_g_interrupt (a cancel scope of the G's was cancelled, or its
 * deadline moved) and cleared by the G itself at the start of each wait, before it reads
 * its scopes: the wait ends with GR_WAIT_CANCELLED, and the Python layer decides from the
 * scopes whether that is a cancellation or a reason to look again. */
enum { GR_G_FLAG_CANCEL = 1u, GR_G_FLAG_INTERRUPT = 2u };

/* How every begin and end call of a wait (sync.h, chan.h, wait.h) reports. */
typedef enum gr_wait_result {
    GR_WAIT_OK = 0,      /* done: granted, sent, received, joined, or slept to the deadline */
    GR_WAIT_PARK,        /* begin only: queued with its timer armed; park, then call end */
    GR_WAIT_CLOSED,      /* a channel operation found the channel closed */
    GR_WAIT_TIMEOUT,     /* the deadline came first (deadline 0: nothing was ready) */
    GR_WAIT_CANCELLED,   /* end only: woken by gr_g_cancel before anything completed */
    GR_WAIT_NOMEM,       /* begin only: out of memory, nothing queued */
    GR_WAIT_BUSY,        /* begin only: another G already waits in that slot (netpoll.h) */
} gr_wait_result;

/* Deadlines are absolute gr_nanotime() values, or one of these. */
#define GR_DEADLINE_NEVER ((int64_t)-1) /* wait as long as it takes */
#define GR_DEADLINE_NOW ((int64_t)0)    /* do not wait at all (try_lock, select's default) */

struct gr_g {
    uint64_t id;
    void *obj;                 /* the owning Task (borrowed: the Task embeds this G) */
    /* Owner M, set by the M that first runs the G and never changed after (a started
     * greenlet cannot change thread). Relaxed: readers reach the G through a lock or a
     * queue hand-off that already orders this store before them. */
    _Atomic(gr_m *) m;
    gr_g *schedlink;           /* run queues, inboxes and the global queue */
    _Atomic uint32_t state;    /* GR_G_*; DONE is stored with release (see gr_g_done) */
    _Atomic uint32_t waiting;  /* 1 between gr_g_prepare_wait and the winning claim */
    _Atomic uint32_t flags;    /* GR_G_FLAG_CANCEL */
    uint32_t wake_reason;      /* written by the claim winner before it readies the G */
    int32_t timer_idx;         /* owner-only: slot in the owner P's timer heap, -1 if none */
    uint32_t started_linked;   /* owner-only: on its M's started list */
    int64_t timer_when;
    gr_lock lock;              /* guards joiners and the DONE transition */
    uint32_t park_reason;      /* what it is parked on: a code of the Python layer's */
    gr_waitq joiners;
    gr_waiter waiter;          /* this G's place in the wait queue it is parked on */
    gr_g *started_next, *started_prev; /* owner M's list of started, unfinished Gs */
    /* observe.h: the live list it is on (guarded by that list's lock), when it last
     * parked (coarse clock; any thread reads it), and the fine times of a sampled
     * wait (written by its owner and the waker that readies it, read by the M that runs
     * it next: the hand-off orders them; relaxed atomics, so that a harness that lets the
     * G wait again without that hand-off, as csrc's tests do, skews a sample, no more). */
    gr_g *live_next, *live_prev;
    struct gr_live *live;
    _Atomic int64_t since;
    _Atomic int64_t park_ns, ready_ns;
    _Atomic uint32_t sampled;
    uint32_t obs_seq;
};

static inline uint32_t gr_g_state(gr_g *g)
{
    /* acquire: pairs with the release store of DONE in gr_g_finish, so a reader that
     * sees DONE also sees the result the finishing M wrote before it. */
    return atomic_load_explicit(&g->state, memory_order_acquire);
}

static inline int gr_g_done(gr_g *g) { return gr_g_state(g) == GR_G_DONE; }
static inline int gr_g_started(gr_g *g)
{
    return atomic_load_explicit(&g->m, memory_order_relaxed) != NULL;
}
static inline int gr_g_cancel_requested(gr_g *g)
{
    return (atomic_load_explicit(&g->flags, memory_order_acquire) & GR_G_FLAG_CANCEL) != 0;
}
/* Relaxed: a G's state is written by whoever owns the G at that moment (its M, or the
 * claim's winner), and each hand-off between those is already ordered by a queue or the
 * claim. The check reads what the owner itself last wrote, or what the hand-off ordered. */
static inline void gr_g_move(gr_g *g, uint32_t from, uint32_t to, const char *what)
{
    GR_ASSERT(atomic_load_explicit(&g->state, memory_order_relaxed) == from, what);
    (void)from;
    (void)what;
    atomic_store_explicit(&g->state, to, memory_order_relaxed);
}

static inline void gr_obs_waiting(gr_g *g);

static inline void gr_g_prepare_wait(gr_g *g)
{
    g->wake_reason = GR_WAKE_NONE;
    gr_obs_waiting(g);
    gr_g_move(g, GR_G_RUNNING, GR_G_WAITING, "a G that is not running prepared to wait");
    /* seq_cst: the flag must be visible before the G appears in any wait list. */
    atomic_store_explicit(&g->waiting, 1, memory_order_seq_cst);
}

/* Win the right to ready g. acq_rel: acquire pairs with prepare_wait, release publishes
 * wake_reason and whatever the waker handed over to the eventual gr_ready. */
static inline int gr_g_claim(gr_g *g, uint32_t reason)
{
    uint32_t one = 1;
    if (!atomic_compare_exchange_strong_explicit(&g->waiting, &one, 0, memory_order_acq_rel,
                                                 memory_order_acquire))
        return 0;
    g->wake_reason = reason;
    return 1;
}

#include "observe.h"

#endif
