/*
 * sync.h: the parking primitives behind Mutex, Semaphore, WaitGroup, Event and RWMutex.
 *
 * Each is a lock, a little state and wait queues (waitq.h); all of their state lives here,
 * never in Python objects, so they are correct without the GIL. The waits follow g.h's
 * protocol: a begin call returns GR_WAIT_OK (granted at once), GR_WAIT_TIMEOUT (deadline
 * GR_DEADLINE_NOW and not free; self may then be NULL), GR_WAIT_NOMEM, or GR_WAIT_PARK with
 * the G's own waiter queued and its timer armed; after the park, the matching *_end unlinks
 * the waiter if it is still queued and returns GR_WAIT_OK (granted), GR_WAIT_TIMEOUT or
 * GR_WAIT_CANCELLED. A grant that races a timeout or a cancel wins: the permit is the
 * task's. Releases hand the resource straight to the first waiter (FIFO, no barging): a
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
int gr_sema_acquire(gr_sema *s, gr_g *self, int64_t deadline);
int gr_sema_acquire_end(gr_sema *s, gr_g *self);
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
enum { GR_LATCH_OK = 0, GR_LATCH_NEGATIVE, GR_LATCH_OVERFLOW };
/* Add delta; reaching zero wakes every waiter. GR_LATCH_NEGATIVE or GR_LATCH_OVERFLOW (and
 * no change) if the count would go below zero or past INT64_MAX. */
int gr_latch_add(gr_latch *l, int64_t delta);
/* Event.clear: from zero back to one. */
void gr_latch_reset(gr_latch *l);
int64_t gr_latch_count(gr_latch *l);
/* Granted once the count is zero. */
int gr_latch_wait(gr_latch *l, gr_g *self, int64_t deadline);
int gr_latch_wait_end(gr_latch *l, gr_g *self);

/* A readers-writer lock that prefers writers: once a writer waits, new readers queue behind
 * it; when a writer unlocks, every queued reader is admitted at once.
 *
 * "A writer waits" is wq being non-empty, not a count: a writer that times out or is
 * cancelled may be unlinked by a releaser that skips it (waitq.h) or by itself, and a
 * count that only one of the two could take back leaked (every later rlock() waited
 * forever). Whoever empties wq of writers admits the readers queued behind them. */
typedef struct gr_rwmutex {
    gr_lock lock;
    int64_t readers;
    int32_t writer;
    gr_waitq rq, wq;
} gr_rwmutex;

void gr_rwmutex_init(gr_rwmutex *rw);
int gr_rwmutex_rlock(gr_rwmutex *rw, gr_g *self, int64_t deadline);
int gr_rwmutex_rlock_end(gr_rwmutex *rw, gr_g *self);
int gr_rwmutex_lock(gr_rwmutex *rw, gr_g *self, int64_t deadline);
int gr_rwmutex_lock_end(gr_rwmutex *rw, gr_g *self);
/* 0, or -1 when not held in that mode. */
int gr_rwmutex_runlock(gr_rwmutex *rw);
int gr_rwmutex_unlock(gr_rwmutex *rw);

#endif
