/*
 * ctimer.h: channel timers (after, Timer, Ticker) and function timers (after_func), after
 * Go 1.23's runtime/time.go.
 *
 * A parked G's timer (timer.h) belongs to the G's own M. These do not: a Timer may be
 * stopped or reset from any thread and may fire on any M. So they live in one runtime-wide
 * 4-ary heap under a lock, and the heap's earliest deadline is published in an atomic that
 * every M reads on each scheduling decision (one load when nothing is armed).
 *
 * A channel timer is in the heap only while some task waits to receive from its channel
 * (gr_ctimer_block/unblock around the wait). Otherwise nobody can observe it fire, and the
 * receive path runs it lazily when it is due (gr_ctimer_run). So an unreferenced timer
 * costs nothing and keeps nothing alive: its record belongs to its channel and is
 * forgotten when the channel is freed, and the heap never refers to a channel nobody waits
 * on. A function timer must run even when nobody holds it: it is in the heap while it is
 * pending, and the heap then owns one reference to `obj`, which the Python layer takes
 * before arming it and gets back from stop, fire or close.
 *
 * Firing sends into the channel under the heap lock, and stop/reset drain the channel
 * under the same lock, so no value from before a stop or reset is received after it
 * returns. The value (an owned reference of the Python layer) is made by the caller; C
 * never creates or releases Python objects. Lock order: the heap lock, then a channel's.
 *
 * A run brackets the heap with open/close. close forgets every timer (bumping the
 * generation makes the ones outside the heap not pending), so timers left at the end of a
 * run never fire, in that run or a later one.
 */
#ifndef GR_CTIMER_H
#define GR_CTIMER_H

#include <stdatomic.h>
#include <stdint.h>

#include "chan.h"
#include "lock.h"

/* Every field is guarded by the heap lock; `when` is also read without it, as a hint. */
typedef struct gr_ctimer {
    /* Deadline (gr_nanotime), 0 when not pending. Relaxed loads only ask "maybe due?" and
     * are confirmed under the lock (stores are made under it too). */
    _Atomic int64_t when;
    int64_t period;     /* > 0: a ticker, re-armed to its next tick after each fire */
    uint64_t gen;       /* the heap's generation when armed: older ones are not pending */
    int32_t idx;        /* slot in the heap, -1 when not in it */
    uint32_t blocked;   /* tasks parked receiving from chan */
    gr_chan *chan;      /* the channel fed; NULL for a function timer */
    void *obj;          /* function timer: its owner, referenced by the heap while in it */
} gr_ctimer;

typedef struct gr_ctimers {
    gr_lock lock;
    gr_ctimer **t;
    uint32_t n, cap;
    uint64_t gen;
    uint32_t open;
    /* t[0]->when, INT64_MAX when empty. Stored under the lock; seq_cst: a scheduler that
     * reads it after the fence of going idle sees every arm that came before its wakep
     * (sched.c's park_idle). */
    _Atomic int64_t earliest;
} gr_ctimers;

/* What firing did. */
enum { GR_CTIMER_NONE = 0, GR_CTIMER_SENT, GR_CTIMER_DROPPED, GR_CTIMER_FUNC };
/* Flags of gr_ctimer_reset, and its errors. */
enum { GR_CTIMER_ACTIVE = 1, GR_CTIMER_KICK = 2 };
enum { GR_CTIMER_ECLOSED = -1, GR_CTIMER_ENOMEM = -2 };

void gr_ctimers_init(gr_ctimers *h);
void gr_ctimers_destroy(gr_ctimers *h);
/* A run starts: timers may be armed. */
void gr_ctimers_open(gr_ctimers *h);
/* The run ended: refuse arming and forget every pending timer. Then call gr_ctimers_drop
 * until it returns NULL, releasing the obj of the function timers it returns. */
void gr_ctimers_close(gr_ctimers *h);
gr_ctimer *gr_ctimers_drop(gr_ctimers *h);

/* A new, stopped timer feeding chan (a channel timer) or owned by obj (chan == NULL). */
void gr_ctimer_init(gr_ctimer *t, gr_chan *chan, void *obj);
/* (Re)arm t for `when` (period > 0: a ticker). Flags: ACTIVE if it was pending or its
 * value was still in the channel (Go's Reset result); KICK if it is now the earliest
 * deadline in the heap, so an idle M must be woken to shorten its park. A value left in
 * the channel is moved to *stale (or NULL). ECLOSED outside a run, ENOMEM. */
int gr_ctimer_reset(gr_ctimers *h, gr_ctimer *t, int64_t when, int64_t period, void **stale);
/* 1 if t was pending or its value was still in the channel (moved to *stale); for a
 * function timer, 1 hands the heap's reference to obj back to the caller. */
int gr_ctimer_stop(gr_ctimers *h, gr_ctimer *t, void **stale);
/* Around a task's wait to receive from t's channel (waitop.c blocks before the begin call,
 * so running out of memory leaves nothing queued, and unblocks after the end call). block
 * returns 0, or GR_CTIMER_ENOMEM when the heap cannot grow. */
int gr_ctimer_block(gr_ctimers *h, gr_ctimer *t);
void gr_ctimer_unblock(gr_ctimers *h, gr_ctimer *t);
/* The receive path: fire t now if it is due at `now`. SENT (elem moved into the channel),
 * DROPPED (the channel was full or closed) or NONE. */
int gr_ctimer_run(gr_ctimers *h, gr_ctimer *t, int64_t now, void *elem);
/* t's channel or owner is being freed. */
void gr_ctimer_forget(gr_ctimers *h, gr_ctimer *t);

/* The scheduler: fire the earliest timer if it is due at `now`. SENT/DROPPED as for
 * gr_ctimer_run; FUNC: *func is a function timer whose reference to obj is now the
 * caller's; NONE: nothing is due. */
int gr_ctimers_fire(gr_ctimers *h, int64_t now, void *elem, gr_ctimer **func);

/* The earliest deadline in the heap, INT64_MAX if none: nothing will ever fire. */
static inline int64_t gr_ctimers_earliest(gr_ctimers *h)
{
    return atomic_load(&h->earliest);
}

static inline int64_t gr_ctimer_when(gr_ctimer *t)
{
    return atomic_load_explicit(&t->when, memory_order_relaxed);
}

#endif
