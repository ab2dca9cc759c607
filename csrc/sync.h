/*
 * sync.h: the parking primitives behind Mutex, Semaphore, WaitGroup, Event and RWMutex.
 *
 * Each is a lock, a little state and wait queues (waitq.h); all of their state lives here,
 * never in Python objects, so they are correct without the GIL. A blocking call queues the
 * G's own waiter and returns 0; the caller parks and then calls the matching *_end, which
 * unlinks the waiter if it is still queued (timeout, cancel) and says whether the wait was
 * granted. Releases hand the resource straight to the first waiter (FIFO, no barging): a
 * woken task never finds its permit stolen, and nobody starves.
 */
#ifndef GR_SYNC_H
#define GR_SYNC_H

#include <stdint.h>

#include "g.h"

/* A counting semaphore bounded by `max` permits (Mutex is max 1). */
typedef struct gr_sema {
    gr_lock lock;
    int64_t avail, max;
    gr_waitq q;
} gr_sema;

void gr_sema_init(gr_sema *s, int64_t n, int64_t max);
/* 1: acquired. 0: queued (park, then gr_sema_acquire_end). -1: would block and !block. */
int gr_sema_acquire(gr_sema *s, gr_g *self, int block);
int gr_sema_acquire_end(gr_sema *s, gr_g *self); /* 1 if the permit was handed over */
/* 0, or -1 when every permit is already free (releasing what was never acquired). */
int gr_sema_release(gr_sema *s);
int64_t gr_sema_available(gr_sema *s);

/* A count that waiters wait to see reach zero: WaitGroup, and Event (1 = not set). */
typedef struct gr_latch {
    gr_lock lock;
    int64_t count;
    gr_waitq q;
} gr_latch;

void gr_latch_init(gr_latch *l, int64_t count);
/* Add delta; reaching zero wakes every waiter. -1 (and no change) if it would go negative. */
int gr_latch_add(gr_latch *l, int64_t delta);
/* Event.clear: from zero back to one. */
void gr_latch_reset(gr_latch *l);
int64_t gr_latch_count(gr_latch *l);
/* 1: already zero. 0: queued. -1: not zero and !block. */
int gr_latch_wait(gr_latch *l, gr_g *self, int block);
int gr_latch_wait_end(gr_latch *l, gr_g *self); /* 1 if released by reaching zero */

/* A readers-writer lock that prefers writers: once a writer waits, new readers queue behind
 * it; when a writer unlocks, every queued reader is admitted at once. */
typedef struct gr_rwmutex {
    gr_lock lock;
    int64_t readers;
    int32_t writer;
    int32_t writers_waiting;
    gr_waitq rq, wq;
} gr_rwmutex;

void gr_rwmutex_init(gr_rwmutex *rw);
/* 1: held. 0: queued (park, then *_end). -1: would block and !block. */
int gr_rwmutex_rlock(gr_rwmutex *rw, gr_g *self, int block);
int gr_rwmutex_rlock_end(gr_rwmutex *rw, gr_g *self);
int gr_rwmutex_lock(gr_rwmutex *rw, gr_g *self, int block);
int gr_rwmutex_lock_end(gr_rwmutex *rw, gr_g *self);
/* 0, or -1 when not held in that mode. */
int gr_rwmutex_runlock(gr_rwmutex *rw);
int gr_rwmutex_unlock(gr_rwmutex *rw);

#endif
