/*
 * waitq.h: the FIFO of parked G's behind every blocking primitive (joins, channels,
 * semaphores, latches).
 *
 * The queue is guarded by its owner's lock. A waker takes waiters from the head with
 * gr_waitq_claim, which also wins the G's wait (g.h): a waiter whose G was already claimed
 * by someone else (a timeout, a cancel, another case of the same select) is unlinked and
 * skipped, and its owner, which must take the same lock to leave, finds it gone. So either
 * side may be the one that unlinks a waiter that gave up: state kept beside a queue must
 * not assume which (a count of waiting writers once leaked this way; sync.h).
 */
#ifndef GR_WAITQ_H
#define GR_WAITQ_H

#include "g.h"

static inline void gr_waitq_push(gr_waitq *q, gr_waiter *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    w->linked = 1;
}

static inline void gr_waitq_remove(gr_waitq *q, gr_waiter *w)
{
    if (!w->linked)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->next = w->prev = NULL;
    w->linked = 0;
}

/* Unlink and return the first waiter whose G this call claims, or NULL. */
static inline gr_waiter *gr_waitq_claim(gr_waitq *q, uint32_t reason)
{
    gr_waiter *w;
    while ((w = q->head) != NULL) {
        gr_waitq_remove(q, w);
        if (gr_g_claim(w->g, reason))
            return w;
    }
    return NULL;
}

#endif
