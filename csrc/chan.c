#include "chan.h"

#include <stdlib.h>

#include "sched.h"
#include "wait.h"
#include "waitq.h"

gr_chan *gr_chan_new(uint64_t cap)
{
    gr_chan *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cap = cap;
    if (cap) {
        c->buf = calloc(cap, sizeof(void *));
        if (!c->buf) {
            free(c);
            return NULL;
        }
    }
    return c;
}

void gr_chan_free(gr_chan *c)
{
    free(c->buf);
    free(c);
}

void *gr_chan_take_buffered(gr_chan *c)
{
    gr_lock_acquire(&c->lock);
    void *v = NULL;
    if (c->count) {
        v = c->buf[c->recvx];
        c->recvx = (c->recvx + 1) % c->cap;
        c->count--;
    }
    gr_lock_release(&c->lock);
    return v;
}

uint64_t gr_chan_len(gr_chan *c)
{
    gr_lock_acquire(&c->lock);
    uint64_t n = c->count;
    gr_lock_release(&c->lock);
    return n;
}

int gr_chan_is_closed(gr_chan *c)
{
    gr_lock_acquire(&c->lock);
    int closed = (int)c->closed;
    gr_lock_release(&c->lock);
    return closed;
}

/* Under c->lock: complete a send of elem if a receiver waits or the buffer has room
 * (GR_WAIT_OK; the G to ready, if any, through *wake), or GR_WAIT_CLOSED, or
 * GR_WAIT_TIMEOUT: it would have to wait. */
static int try_send(gr_chan *c, void *elem, gr_g **wake)
{
    if (c->closed)
        return GR_WAIT_CLOSED;
    gr_waiter *w = gr_waitq_claim(&c->recvq, GR_WAKE_READY);
    if (w) {
        w->elem = elem;
        w->ok = 1;
        w->success = 1;
        *wake = w->g;
        return GR_WAIT_OK;
    }
    if (c->count < c->cap) {
        c->buf[c->sendx] = elem;
        c->sendx = (c->sendx + 1) % c->cap;
        c->count++;
        return GR_WAIT_OK;
    }
    return GR_WAIT_TIMEOUT;
}

/* Under c->lock: complete a receive if a value is buffered or a sender waits, or report a
 * closed and drained channel; GR_WAIT_TIMEOUT: it would have to wait. */
static int try_recv(gr_chan *c, void **elem, gr_g **wake)
{
    gr_waiter *w = gr_waitq_claim(&c->sendq, GR_WAKE_READY);
    if (w) {
        if (c->cap == 0) {
            *elem = w->elem;
        } else {
            /* Full buffer with a parked sender: take the head, append the sender's value. */
            *elem = c->buf[c->recvx];
            c->buf[c->recvx] = w->elem;
            c->recvx = (c->recvx + 1) % c->cap;
            c->sendx = c->recvx;
        }
        w->elem = NULL;
        w->ok = 1;
        w->success = 1;
        *wake = w->g;
        return GR_WAIT_OK;
    }
    if (c->count) {
        *elem = c->buf[c->recvx];
        c->buf[c->recvx] = NULL;
        c->recvx = (c->recvx + 1) % c->cap;
        c->count--;
        return GR_WAIT_OK;
    }
    if (c->closed) {
        *elem = NULL;
        return GR_WAIT_CLOSED;
    }
    return GR_WAIT_TIMEOUT;
}

static void enqueue(gr_waitq *q, gr_waiter *w, gr_g *g, void *elem, int32_t idx)
{
    w->g = g;
    w->elem = elem;
    w->idx = idx;
    w->ok = 0;
    w->success = 0;
    gr_waitq_push(q, w);
}

/* Under c->lock, rc from try_send or try_recv: if the operation would have to wait and
 * may, arm self's wait and enqueue its waiter. */
static int wait_on(gr_waitq *q, gr_g *self, void *elem, int rc, int64_t deadline)
{
    if (rc != GR_WAIT_TIMEOUT || deadline == GR_DEADLINE_NOW)
        return rc;
    rc = gr_wait_arm(self, deadline);
    if (rc == GR_WAIT_PARK)
        enqueue(q, &self->waiter, self, elem, 0);
    return rc;
}

int gr_chan_send(gr_chan *c, gr_g *self, void *elem, int64_t deadline)
{
    gr_g *wake = NULL;
    gr_lock_acquire(&c->lock);
    int rc = wait_on(&c->sendq, self, elem, try_send(c, elem, &wake), deadline);
    gr_lock_release(&c->lock);
    if (wake)
        gr_ready(wake, 1);
    return rc;
}

/* After the park. A G woken by a channel peer was unlinked by that peer, under the lock,
 * before the claim that set wake_reason, so only other wake-ups need the lock. */
static void leave_queue(gr_chan *c, gr_waitq *q, gr_g *self)
{
    if (self->wake_reason == GR_WAKE_READY)
        return;
    gr_lock_acquire(&c->lock);
    gr_waitq_remove(q, &self->waiter);
    gr_lock_release(&c->lock);
}

/* After the park: the outcome a waker stored in self's waiter, for gr_wait_end. */
static int outcome(gr_waiter *w)
{
    if (!w->success)
        return -1;
    return w->ok ? GR_WAIT_OK : GR_WAIT_CLOSED;
}

int gr_chan_send_end(gr_chan *c, gr_g *self)
{
    leave_queue(c, &c->sendq, self);
    return gr_wait_end(self, outcome(&self->waiter));
}

int gr_chan_recv(gr_chan *c, gr_g *self, void **elem, int64_t deadline)
{
    gr_g *wake = NULL;
    gr_lock_acquire(&c->lock);
    int rc = wait_on(&c->recvq, self, NULL, try_recv(c, elem, &wake), deadline);
    gr_lock_release(&c->lock);
    if (wake)
        gr_ready(wake, 1);
    return rc;
}

int gr_chan_recv_end(gr_chan *c, gr_g *self, void **elem)
{
    gr_waiter *w = &self->waiter;
    leave_queue(c, &c->recvq, self);
    *elem = w->elem;
    w->elem = NULL;
    return gr_wait_end(self, outcome(w));
}

/* Under c->lock: claim every waiter of q and chain its G on *wake with outcome "closed". */
static void close_queue(gr_waitq *q, gr_g **wake)
{
    gr_waiter *w;
    while ((w = gr_waitq_claim(q, GR_WAKE_READY)) != NULL) {
        w->ok = 0;
        w->success = 1;
        w->g->schedlink = *wake;
        *wake = w->g;
    }
}

int gr_chan_close(gr_chan *c)
{
    gr_g *wake = NULL;
    gr_lock_acquire(&c->lock);
    if (c->closed) {
        gr_lock_release(&c->lock);
        return -1;
    }
    c->closed = 1;
    close_queue(&c->recvq, &wake);
    close_queue(&c->sendq, &wake);
    gr_lock_release(&c->lock);
    while (wake) {
        gr_g *next = wake->schedlink;
        gr_ready(wake, 0);
        wake = next;
    }
    return 0;
}

/* ---- select ------------------------------------------------------------------------- */

/* The distinct channels of the cases, sorted by address: the global lock order. */
static uint32_t lock_order(gr_selcase *cases, uint32_t n, gr_chan **order)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        gr_chan *c = cases[i].c;
        uint32_t j = k;
        while (j > 0 && order[j - 1] > c)
            j--;
        if (j > 0 && order[j - 1] == c)
            continue;
        for (uint32_t m = k; m > j; m--)
            order[m] = order[m - 1];
        order[j] = c;
        k++;
    }
    return k;
}

static void lock_all(gr_chan **order, uint32_t k)
{
    for (uint32_t i = 0; i < k; i++)
        gr_lock_acquire(&order[i]->lock);
}

static void unlock_all(gr_chan **order, uint32_t k)
{
    for (uint32_t i = k; i > 0; i--)
        gr_lock_release(&order[i - 1]->lock);
}

#define GR_SELECT_STACK 16

int gr_select(gr_selcase *cases, uint32_t n, const uint32_t *pollorder, gr_waiter *ws,
              gr_g *self, int64_t deadline, int32_t *fired)
{
    gr_chan *stack[GR_SELECT_STACK];
    gr_chan **order = n <= GR_SELECT_STACK ? stack : malloc(n * sizeof(gr_chan *));
    if (!order)
        return GR_WAIT_NOMEM;
    uint32_t k = lock_order(cases, n, order);
    lock_all(order, k);
    gr_g *wake = NULL;
    int rc = GR_WAIT_TIMEOUT;
    for (uint32_t i = 0; i < n && rc == GR_WAIT_TIMEOUT; i++) {
        uint32_t idx = pollorder[i];
        gr_selcase *sc = &cases[idx];
        int r = sc->send ? try_send(sc->c, sc->elem, &wake) : try_recv(sc->c, &sc->elem, &wake);
        if (r != GR_WAIT_TIMEOUT) {
            sc->ok = r == GR_WAIT_OK;
            *fired = (int32_t)idx;
            rc = GR_WAIT_OK;
        }
    }
    if (rc == GR_WAIT_TIMEOUT && deadline != GR_DEADLINE_NOW) {
        rc = gr_wait_arm(self, deadline);
        for (uint32_t i = 0; i < n && rc == GR_WAIT_PARK; i++) {
            gr_selcase *sc = &cases[i];
            enqueue(sc->send ? &sc->c->sendq : &sc->c->recvq, &ws[i], self,
                    sc->send ? sc->elem : NULL, (int32_t)i);
        }
    }
    unlock_all(order, k);
    if (order != stack)
        free(order);
    if (wake)
        gr_ready(wake, 1);
    return rc;
}

int gr_select_end(gr_selcase *cases, uint32_t n, gr_waiter *ws, gr_g *self, int32_t *fired)
{
    /* One lock at a time suffices here: a waiter is unlinked, and its outcome written, only
     * under its own channel's lock. */
    int done = -1;
    for (uint32_t i = 0; i < n; i++) {
        gr_chan *c = cases[i].c;
        gr_lock_acquire(&c->lock);
        gr_waitq_remove(cases[i].send ? &c->sendq : &c->recvq, &ws[i]);
        gr_lock_release(&c->lock);
        if (ws[i].success) {
            *fired = (int32_t)i;
            done = GR_WAIT_OK;
            cases[i].ok = ws[i].ok;
            if (!cases[i].send)
                cases[i].elem = ws[i].elem;
        }
    }
    return gr_wait_end(self, done);
}
