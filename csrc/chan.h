/*
 * chan.h: channels and select, after Go's runtime/chan.go and select.go.
 *
 * A channel is a lock, a ring buffer of `cap` opaque values, and two wait queues of parked
 * senders and receivers. Values are owned references of the Python layer: a successful send
 * moves one into the channel (or straight into a parked receiver's waiter), a successful
 * receive moves one out, and C never looks inside them. Unbuffered channels hand a value
 * from sender to receiver directly; a buffered channel that has parked senders refills
 * its ring from the first of them as a receiver takes from the head, so FIFO order holds.
 *
 * Operations follow g.h's wait protocol. A blocking one prepares the G's wait (gr_wait_arm)
 * under the channel lock just before enqueueing its waiter, so an operation that completes
 * at once costs no claim. Wakers claim the G (waitq.h) under the same lock, store the
 * outcome in the waiter (success, ok, elem) and ready the G after unlocking, with runnext
 * so the woken task runs next on its M.
 *
 * select locks every distinct channel of its cases in address order (a global order, so
 * two selects can never deadlock on each other's locks), polls the cases in a random order
 * and completes the first that is ready. Otherwise it enqueues one waiter per case and
 * parks; the first waker to claim the G decides the case, and every other waiter is found
 * unclaimable and dropped. After waking, gr_select_end relocks and unlinks the rest.
 */
#ifndef GR_CHAN_H
#define GR_CHAN_H

#include <stdint.h>

#include "g.h"

typedef struct gr_chan {
    gr_lock lock;
    uint32_t closed;
    uint64_t cap, count, sendx, recvx;
    void **buf;
    gr_waitq recvq, sendq;
} gr_chan;

/* NULL when the buffer cannot be allocated. */
gr_chan *gr_chan_new(uint64_t cap);
/* The channel must have no waiters; buffered values must have been taken out first. */
void gr_chan_free(gr_chan *c);
/* Take one buffered value out without any waiter logic (for tearing a channel down). */
void *gr_chan_take_buffered(gr_chan *c);
uint64_t gr_chan_len(gr_chan *c);
int gr_chan_is_closed(gr_chan *c);

/* GR_WAIT_OK: elem moved into the channel. GR_WAIT_CLOSED, _TIMEOUT (deadline
 * GR_DEADLINE_NOW and no room; self may then be NULL) or _NOMEM: elem still the caller's.
 * GR_WAIT_PARK: self->waiter is queued with elem; park, then call gr_chan_send_end. */
int gr_chan_send(gr_chan *c, gr_g *self, void *elem, int64_t deadline);
/* After the park: GR_WAIT_OK (delivered), or CLOSED, TIMEOUT, CANCELLED with elem still
 * the caller's. */
int gr_chan_send_end(gr_chan *c, gr_g *self);
/* GR_WAIT_OK: *elem is the value. GR_WAIT_CLOSED: closed and drained. The rest as for
 * send. */
int gr_chan_recv(gr_chan *c, gr_g *self, void **elem, int64_t deadline);
int gr_chan_recv_end(gr_chan *c, gr_g *self, void **elem);
/* 0, or -1 if it was already closed. Parked receivers wake with CLOSED, parked senders too. */
int gr_chan_close(gr_chan *c);

typedef struct gr_selcase {
    gr_chan *c;
    void *elem;     /* send: the value (an owned reference); recv: the value received */
    uint32_t send;
    uint32_t ok;    /* out: 1 for a value, 0 for a closed channel */
} gr_selcase;

/* GR_WAIT_OK with *fired the index of the case that completed (its ok says value or
 * closed); GR_WAIT_TIMEOUT when nothing is ready and deadline is GR_DEADLINE_NOW;
 * GR_WAIT_NOMEM; or GR_WAIT_PARK with one waiter per case queued in ws[0..n). pollorder is
 * a permutation of 0..n-1. */
int gr_select(gr_selcase *cases, uint32_t n, const uint32_t *pollorder, gr_waiter *ws,
              gr_g *self, int64_t deadline, int32_t *fired);
/* After the park: unlink every waiter. GR_WAIT_OK with *fired the case a waker completed,
 * or GR_WAIT_TIMEOUT / GR_WAIT_CANCELLED. */
int gr_select_end(gr_selcase *cases, uint32_t n, gr_waiter *ws, gr_g *self, int32_t *fired);

#endif
