#include "waitop.h"

#include "sched.h"
#include "wait.h"

static int begin(gr_waitop *op, gr_g *self, int64_t deadline)
{
    switch ((gr_waitop_kind)op->kind) {
    case GR_OP_SLEEP:
        return gr_sleep_begin(self, deadline);
    case GR_OP_JOIN:
        return gr_g_join_begin(op->obj, self, deadline);
    case GR_OP_SEMA:
        return gr_sema_acquire(op->obj, self, deadline);
    case GR_OP_LATCH:
        return gr_latch_wait(op->obj, self, deadline);
    case GR_OP_RLOCK:
        return gr_rwmutex_rlock(op->obj, self, deadline);
    case GR_OP_LOCK:
        return gr_rwmutex_lock(op->obj, self, deadline);
    case GR_OP_SEND:
        return gr_chan_send(op->obj, self, op->elem, deadline);
    case GR_OP_RECV:
        return gr_chan_recv(op->obj, self, &op->elem, deadline);
    case GR_OP_SELECT:
        return gr_select(op->obj, op->ncases, op->pollorder, op->ws, self, deadline, &op->fired);
    case GR_OP_FDREAD:
        return gr_pollfd_wait_begin(op->netpoll, op->obj, op->seq, GR_POLL_READ, self, deadline);
    case GR_OP_FDWRITE:
        return gr_pollfd_wait_begin(op->netpoll, op->obj, op->seq, GR_POLL_WRITE, self, deadline);
    }
    return GR_WAIT_NOMEM; /* unreachable for a valid kind; nothing was queued */
}

static void unblock_timers(gr_waitop *op, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        gr_ctimer_unblock(op->ctimers, op->timers[i]);
}

/* GR_WAIT_OK once every timer is in the heap, GR_WAIT_NOMEM with none of them. */
static int block_timers(gr_waitop *op)
{
    for (uint32_t i = 0; i < op->ntimers; i++) {
        if (gr_ctimer_block(op->ctimers, op->timers[i]) != 0) {
            unblock_timers(op, i);
            return GR_WAIT_NOMEM;
        }
    }
    return GR_WAIT_OK;
}

int gr_waitop_begin(gr_waitop *op, gr_g *self, int64_t deadline)
{
    /* A poll never parks, so its timers never need the heap. */
    uint32_t blocked = deadline == GR_DEADLINE_NOW ? 0 : op->ntimers;
    if (blocked && block_timers(op) != GR_WAIT_OK)
        return GR_WAIT_NOMEM;
    int rc = begin(op, self, deadline);
    if (rc != GR_WAIT_PARK)
        unblock_timers(op, blocked);
    /* seq_cst: pairs with gr_g_cancel's and gr_g_interrupt's flag updates and fences (see
     * there). A QUIET wait has seen the cancel, but not an interrupt newer than its start. */
    if (rc == GR_WAIT_PARK) {
        uint32_t flags = atomic_load_explicit(&self->flags, memory_order_seq_cst);
        if ((flags & GR_G_FLAG_INTERRUPT) ||
            (op->shield != GR_SHIELD_QUIET && (flags & GR_G_FLAG_CANCEL)))
            gr_g_wake(self, GR_WAKE_CANCEL, 0);
    }
    return rc;
}

static int end(gr_waitop *op, gr_g *self)
{
    switch ((gr_waitop_kind)op->kind) {
    case GR_OP_SLEEP:
        return gr_sleep_end(self);
    case GR_OP_JOIN:
        return gr_g_join_end(op->obj, self);
    case GR_OP_SEMA:
        return gr_sema_acquire_end(op->obj, self);
    case GR_OP_LATCH:
        return gr_latch_wait_end(op->obj, self);
    case GR_OP_RLOCK:
        return gr_rwmutex_rlock_end(op->obj, self);
    case GR_OP_LOCK:
        return gr_rwmutex_lock_end(op->obj, self);
    case GR_OP_SEND:
        return gr_chan_send_end(op->obj, self);
    case GR_OP_RECV:
        return gr_chan_recv_end(op->obj, self, &op->elem);
    case GR_OP_SELECT:
        return gr_select_end(op->obj, op->ncases, op->ws, self, &op->fired);
    case GR_OP_FDREAD:
        return gr_pollfd_wait_end(op->netpoll, op->obj, GR_POLL_READ, self);
    case GR_OP_FDWRITE:
        return gr_pollfd_wait_end(op->netpoll, op->obj, GR_POLL_WRITE, self);
    }
    return GR_WAIT_CANCELLED; /* unreachable: begin refused any other kind */
}

int gr_waitop_end(gr_waitop *op, gr_g *self)
{
    int rc = end(op, self);
    unblock_timers(op, op->ntimers);
    return rc;
}
