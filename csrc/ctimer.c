#include "ctimer.h"

#include <stdlib.h>

/* ---- the 4-ary heap (as timer.h's, over records); all under h->lock ----------------- */

static int64_t when_of(gr_ctimer *t)
{
    return atomic_load_explicit(&t->when, memory_order_relaxed);
}

static void set_when(gr_ctimer *t, int64_t when)
{
    atomic_store_explicit(&t->when, when, memory_order_relaxed);
}

static void place(gr_ctimers *h, uint32_t i, gr_ctimer *t)
{
    h->t[i] = t;
    t->idx = (int32_t)i;
}

static void sift_up(gr_ctimers *h, uint32_t i)
{
    gr_ctimer *t = h->t[i];
    int64_t w = when_of(t);
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (when_of(h->t[parent]) <= w)
            break;
        place(h, i, h->t[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(gr_ctimers *h, uint32_t i)
{
    gr_ctimer *t = h->t[i];
    for (;;) {
        uint32_t c = 4 * i + 1, best = i;
        int64_t bw = when_of(t);
        for (uint32_t k = c; k < c + 4 && k < h->n; k++) {
            if (when_of(h->t[k]) < bw) {
                bw = when_of(h->t[k]);
                best = k;
            }
        }
        if (best == i)
            break;
        place(h, i, h->t[best]);
        i = best;
    }
    place(h, i, t);
}

/* Room for one more record, so that nothing fails once a change has begun. */
static int reserve(gr_ctimers *h)
{
    if (h->n < h->cap)
        return 0;
    uint32_t cap = h->cap ? h->cap * 2 : 64;
    gr_ctimer **t = realloc(h->t, cap * sizeof *t);
    if (!t)
        return -1;
    h->t = t;
    h->cap = cap;
    return 0;
}

static void heap_add(gr_ctimers *h, gr_ctimer *t)
{
    place(h, h->n, t);
    sift_up(h, h->n++);
}

static void heap_remove(gr_ctimers *h, gr_ctimer *t)
{
    uint32_t i = (uint32_t)t->idx;
    t->idx = -1;
    if (--h->n == i)
        return;
    gr_ctimer *last = h->t[h->n];
    place(h, i, last);
    if (i > 0 && when_of(h->t[(i - 1) / 4]) > when_of(last))
        sift_up(h, i);
    else
        sift_down(h, i);
}

static void publish(gr_ctimers *h)
{
    /* seq_cst: pairs with the load after park_idle's fence (see ctimer.h). */
    atomic_store(&h->earliest, h->n ? when_of(h->t[0]) : INT64_MAX);
}

/* ---- timer state ------------------------------------------------------------------- */

static int pending(gr_ctimers *h, gr_ctimer *t)
{
    return when_of(t) != 0 && t->gen == h->gen;
}

/* In the heap while somebody could observe it fire: a function timer while pending, a
 * channel timer while pending and a task is parked receiving from its channel. */
static int wants_heap(gr_ctimers *h, gr_ctimer *t)
{
    return pending(h, t) && (t->chan == NULL || t->blocked > 0);
}

/* Put t where its state says it belongs (never grows the heap: see reserve). */
static void settle(gr_ctimers *h, gr_ctimer *t)
{
    if (t->idx >= 0)
        heap_remove(h, t);
    if (wants_heap(h, t))
        heap_add(h, t);
    publish(h);
}

/* The first tick of period after now, as Go's ticker: ticks a slow receiver missed are
 * dropped, not delivered late in a burst. */
static int64_t next_tick(int64_t when, int64_t period, int64_t now)
{
    int64_t k = (now - when) / period + 1;
    if (k > (INT64_MAX - when) / period)
        return INT64_MAX;
    return when + k * period;
}

/* t is pending and due at now. */
static int fire_locked(gr_ctimers *h, gr_ctimer *t, int64_t now, void *elem)
{
    if (t->chan == NULL) {
        set_when(t, 0);
        settle(h, t);
        return GR_CTIMER_FUNC;
    }
    /* Non-blocking: a full channel already holds an undelivered value. */
    int rc = gr_chan_send(t->chan, NULL, elem, GR_DEADLINE_NOW) == GR_WAIT_OK ? GR_CTIMER_SENT
                                                                              : GR_CTIMER_DROPPED;
    set_when(t, t->period ? next_tick(when_of(t), t->period, now) : 0);
    settle(h, t);
    return rc;
}

/* ---- the heap ---------------------------------------------------------------------- */

void gr_ctimers_init(gr_ctimers *h)
{
    atomic_init(&h->lock.state, 0);
    h->t = NULL;
    h->n = h->cap = 0;
    h->gen = 0;
    h->open = 0;
    atomic_init(&h->earliest, INT64_MAX);
}

void gr_ctimers_destroy(gr_ctimers *h)
{
    free(h->t);
    h->t = NULL;
    h->n = h->cap = 0;
}

void gr_ctimers_open(gr_ctimers *h)
{
    gr_lock_acquire(&h->lock);
    h->open = 1;
    gr_lock_release(&h->lock);
}

void gr_ctimers_close(gr_ctimers *h)
{
    gr_lock_acquire(&h->lock);
    h->open = 0;
    h->gen++;
    gr_lock_release(&h->lock);
}

gr_ctimer *gr_ctimers_drop(gr_ctimers *h)
{
    gr_ctimer *t = NULL;
    gr_lock_acquire(&h->lock);
    if (h->n) {
        t = h->t[--h->n]; /* the last slot: no sifting */
        t->idx = -1;
        set_when(t, 0);
        publish(h);
    }
    gr_lock_release(&h->lock);
    return t;
}

int gr_ctimers_fire(gr_ctimers *h, int64_t now, void *elem, gr_ctimer **func)
{
    int rc = GR_CTIMER_NONE;
    gr_lock_acquire(&h->lock);
    if (h->n && when_of(h->t[0]) <= now) {
        gr_ctimer *t = h->t[0];
        rc = fire_locked(h, t, now, elem);
        if (rc == GR_CTIMER_FUNC)
            *func = t;
    }
    gr_lock_release(&h->lock);
    return rc;
}

/* ---- one timer --------------------------------------------------------------------- */

void gr_ctimer_init(gr_ctimer *t, gr_chan *chan, void *obj)
{
    atomic_init(&t->when, 0);
    t->period = 0;
    t->gen = 0;
    t->idx = -1;
    t->blocked = 0;
    t->chan = chan;
    t->obj = obj;
}

/* Under the lock: the value a fire left in the channel, which a stop or reset revokes. */
static void *drain(gr_ctimer *t)
{
    return t->chan ? gr_chan_take_buffered(t->chan) : NULL;
}

int gr_ctimer_reset(gr_ctimers *h, gr_ctimer *t, int64_t when, int64_t period, void **stale)
{
    *stale = NULL;
    gr_lock_acquire(&h->lock);
    if (!h->open) {
        gr_lock_release(&h->lock);
        return GR_CTIMER_ECLOSED;
    }
    if (reserve(h) != 0) {
        gr_lock_release(&h->lock);
        return GR_CTIMER_ENOMEM;
    }
    int flags = pending(h, t) ? GR_CTIMER_ACTIVE : 0;
    if ((*stale = drain(t)) != NULL)
        flags |= GR_CTIMER_ACTIVE;
    int64_t before = atomic_load_explicit(&h->earliest, memory_order_relaxed);
    set_when(t, when);
    t->period = period;
    t->gen = h->gen;
    settle(h, t);
    if (t->idx == 0 && when < before)
        flags |= GR_CTIMER_KICK;
    gr_lock_release(&h->lock);
    return flags;
}

int gr_ctimer_stop(gr_ctimers *h, gr_ctimer *t, void **stale)
{
    gr_lock_acquire(&h->lock);
    int active = pending(h, t);
    if ((*stale = drain(t)) != NULL)
        active = 1;
    set_when(t, 0);
    settle(h, t);
    gr_lock_release(&h->lock);
    return active;
}

int gr_ctimer_block(gr_ctimers *h, gr_ctimer *t)
{
    gr_lock_acquire(&h->lock);
    if (reserve(h) != 0) {
        gr_lock_release(&h->lock);
        return GR_CTIMER_ENOMEM;
    }
    t->blocked++;
    if (t->idx < 0 && wants_heap(h, t)) {
        heap_add(h, t);
        publish(h);
    }
    gr_lock_release(&h->lock);
    return 0;
}

void gr_ctimer_unblock(gr_ctimers *h, gr_ctimer *t)
{
    gr_lock_acquire(&h->lock);
    t->blocked--;
    if (t->idx >= 0 && !wants_heap(h, t)) {
        heap_remove(h, t);
        publish(h);
    }
    gr_lock_release(&h->lock);
}

int gr_ctimer_run(gr_ctimers *h, gr_ctimer *t, int64_t now, void *elem)
{
    int rc = GR_CTIMER_NONE;
    gr_lock_acquire(&h->lock);
    if (t->chan != NULL && pending(h, t) && when_of(t) <= now)
        rc = fire_locked(h, t, now, elem);
    gr_lock_release(&h->lock);
    return rc;
}

void gr_ctimer_forget(gr_ctimers *h, gr_ctimer *t)
{
    gr_lock_acquire(&h->lock);
    set_when(t, 0);
    t->blocked = 0;
    settle(h, t);
    gr_lock_release(&h->lock);
}
