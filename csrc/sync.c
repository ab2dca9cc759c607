#include "sync.h"

#include "sched.h"
#include "wait.h"
#include "waitq.h"

/* Under the lock, when self must wait: GR_WAIT_TIMEOUT for GR_DEADLINE_NOW, else arm and
 * queue self's waiter (GR_WAIT_PARK) or GR_WAIT_NOMEM. */
static int wait_on(gr_waitq *q, gr_g *self, int64_t deadline)
{
    if (deadline == GR_DEADLINE_NOW)
        return GR_WAIT_TIMEOUT;
    int rc = gr_wait_arm(self, deadline);
    if (rc == GR_WAIT_PARK) {
        self->waiter.g = self;
        self->waiter.success = 0;
        gr_waitq_push(q, &self->waiter);
    }
    return rc;
}

/* Under the lock: unlink self's waiter; GR_WAIT_OK if a waker granted it first, else -1
 * (for gr_wait_end). */
static int leave(gr_waitq *q, gr_g *self)
{
    gr_waitq_remove(q, &self->waiter);
    return self->waiter.success ? GR_WAIT_OK : -1;
}

/* Under the lock: claim the first waiter of q, mark it granted and chain it on *wake. */
static int grant_one(gr_waitq *q, gr_g **wake)
{
    gr_waiter *w = gr_waitq_claim(q, GR_WAKE_READY);
    if (!w)
        return 0;
    w->success = 1;
    w->g->schedlink = *wake;
    *wake = w->g;
    return 1;
}

static void ready_all(gr_g *wake)
{
    while (wake) {
        gr_g *next = wake->schedlink;
        gr_ready(wake, 0);
        wake = next;
    }
}

/* ---- semaphore ---------------------------------------------------------------------- */

void gr_sema_init(gr_sema *s, int64_t n, int64_t max)
{
    atomic_init(&s->lock.state, 0);
    s->avail = n;
    s->max = max;
    s->q.head = s->q.tail = NULL;
}

int gr_sema_acquire(gr_sema *s, gr_g *self, int64_t deadline)
{
    int rc = GR_WAIT_OK;
    gr_lock_acquire(&s->lock);
    if (s->avail > 0)
        s->avail--;
    else
        rc = wait_on(&s->q, self, deadline);
    gr_lock_release(&s->lock);
    return rc;
}

int gr_sema_acquire_end(gr_sema *s, gr_g *self)
{
    gr_lock_acquire(&s->lock);
    int done = leave(&s->q, self);
    gr_lock_release(&s->lock);
    return gr_wait_end(self, done);
}

int gr_sema_release(gr_sema *s)
{
    gr_g *wake = NULL;
    gr_lock_acquire(&s->lock);
    if (!grant_one(&s->q, &wake)) {
        if (s->avail >= s->max) {
            gr_lock_release(&s->lock);
            return -1;
        }
        s->avail++;
    }
    gr_lock_release(&s->lock);
    ready_all(wake);
    return 0;
}

int64_t gr_sema_available(gr_sema *s)
{
    gr_lock_acquire(&s->lock);
    int64_t n = s->avail;
    gr_lock_release(&s->lock);
    return n;
}

/* ---- latch -------------------------------------------------------------------------- */

void gr_latch_init(gr_latch *l, int64_t count)
{
    atomic_init(&l->lock.state, 0);
    l->count = count;
    l->q.head = l->q.tail = NULL;
}

int gr_latch_add(gr_latch *l, int64_t delta)
{
    gr_g *wake = NULL;
    gr_lock_acquire(&l->lock);
    /* count is never negative, so only a positive delta can overflow. */
    int rc = delta > 0 && l->count > INT64_MAX - delta ? GR_LATCH_OVERFLOW
             : l->count + delta < 0                   ? GR_LATCH_NEGATIVE
                                                      : GR_LATCH_OK;
    if (rc == GR_LATCH_OK) {
        l->count += delta;
        if (l->count == 0)
            while (grant_one(&l->q, &wake))
                ;
    }
    gr_lock_release(&l->lock);
    ready_all(wake);
    return rc;
}

void gr_latch_reset(gr_latch *l)
{
    gr_lock_acquire(&l->lock);
    if (l->count == 0)
        l->count = 1;
    gr_lock_release(&l->lock);
}

int64_t gr_latch_count(gr_latch *l)
{
    gr_lock_acquire(&l->lock);
    int64_t n = l->count;
    gr_lock_release(&l->lock);
    return n;
}

int gr_latch_wait(gr_latch *l, gr_g *self, int64_t deadline)
{
    int rc = GR_WAIT_OK;
    gr_lock_acquire(&l->lock);
    if (l->count != 0)
        rc = wait_on(&l->q, self, deadline);
    gr_lock_release(&l->lock);
    return rc;
}

int gr_latch_wait_end(gr_latch *l, gr_g *self)
{
    gr_lock_acquire(&l->lock);
    int done = leave(&l->q, self);
    gr_lock_release(&l->lock);
    return gr_wait_end(self, done);
}

/* ---- readers-writer lock ------------------------------------------------------------ */

void gr_rwmutex_init(gr_rwmutex *rw)
{
    atomic_init(&rw->lock.state, 0);
    rw->readers = 0;
    rw->writer = 0;
    rw->rq.head = rw->rq.tail = rw->wq.head = rw->wq.tail = NULL;
}

/* Under the lock, with no writer: admit every queued reader, or else the next writer
 * (skipping writers that gave up). */
static void hand_over(gr_rwmutex *rw, gr_g **wake)
{
    while (grant_one(&rw->rq, wake))
        rw->readers++;
    if (rw->readers == 0 && grant_one(&rw->wq, wake))
        rw->writer = 1;
}

int gr_rwmutex_rlock(gr_rwmutex *rw, gr_g *self, int64_t deadline)
{
    int rc = GR_WAIT_OK;
    gr_lock_acquire(&rw->lock);
    if (!rw->writer && !rw->wq.head)
        rw->readers++;
    else
        rc = wait_on(&rw->rq, self, deadline);
    gr_lock_release(&rw->lock);
    return rc;
}

int gr_rwmutex_rlock_end(gr_rwmutex *rw, gr_g *self)
{
    gr_lock_acquire(&rw->lock);
    int done = leave(&rw->rq, self);
    gr_lock_release(&rw->lock);
    return gr_wait_end(self, done);
}

int gr_rwmutex_lock(gr_rwmutex *rw, gr_g *self, int64_t deadline)
{
    int rc = GR_WAIT_OK;
    gr_lock_acquire(&rw->lock);
    if (!rw->writer && rw->readers == 0)
        rw->writer = 1;
    else
        rc = wait_on(&rw->wq, self, deadline);
    gr_lock_release(&rw->lock);
    return rc;
}

int gr_rwmutex_lock_end(gr_rwmutex *rw, gr_g *self)
{
    gr_g *wake = NULL;
    gr_lock_acquire(&rw->lock);
    int gave_up = self->waiter.linked;
    int done = leave(&rw->wq, self);
    /* Readers held back only by us may go now. */
    if (gave_up && !rw->writer)
        hand_over(rw, &wake);
    gr_lock_release(&rw->lock);
    ready_all(wake);
    return gr_wait_end(self, done);
}

int gr_rwmutex_runlock(gr_rwmutex *rw)
{
    gr_g *wake = NULL;
    gr_lock_acquire(&rw->lock);
    if (rw->readers == 0) {
        gr_lock_release(&rw->lock);
        return -1;
    }
    if (--rw->readers == 0) {
        if (grant_one(&rw->wq, &wake))
            rw->writer = 1;
        else /* every writer they queued behind gave up */
            hand_over(rw, &wake);
    }
    gr_lock_release(&rw->lock);
    ready_all(wake);
    return 0;
}

int gr_rwmutex_unlock(gr_rwmutex *rw)
{
    gr_g *wake = NULL;
    gr_lock_acquire(&rw->lock);
    if (!rw->writer) {
        gr_lock_release(&rw->lock);
        return -1;
    }
    rw->writer = 0;
    hand_over(rw, &wake);
    gr_lock_release(&rw->lock);
    ready_all(wake);
    return 0;
}
