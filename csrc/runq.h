/*
 * runq.h: a P's local run queue, a 256-slot ring plus the runnext slot.
 *
 * Only G's that have never run live in the ring: they are the only ones another M may take
 * (a started greenlet cannot change thread). The owner pushes at tail and publishes with a
 * store-release; the owner and stealers consume at head with a CAS. Indices are 32-bit and
 * wrap freely; head and tail sit on separate cache lines so stealers hammering head do not
 * slow the owner's pushes.
 *
 * runnext holds the G just spawned or readied, so a producer/consumer pair hands off
 * without a trip around the queue. It may hold a started G (pinned to this M), tagged in the
 * low pointer bit so a stealer can refuse it without dereferencing a G that may already be
 * finished and freed. Only untagged values are ever stolen, and only on a thief's last pass.
 */
#ifndef GR_RUNQ_H
#define GR_RUNQ_H

#include <stdatomic.h>
#include <stdint.h>

#include "g.h"

/* 256 slots, as Go's runq: enough that a burst of spawns rarely overflows to the global
 * queue, small enough (2 KiB of pointers) to stay in cache. A power of two: indices wrap. */
#define GR_RUNQ_SIZE 256u
/* The low bit of runnext tags a started (pinned) G; G's are at least 8-byte aligned. */
#define GR_RUNNEXT_PINNED ((uintptr_t)1)

typedef struct gr_globalq gr_globalq;

typedef struct gr_runq {
    /* CAS by any consumer; acquire on load pairs with the owner's tail release. */
    _Alignas(64) _Atomic uint32_t head;
    /* Written only by the owner, store-release after filling the slot. */
    _Alignas(64) _Atomic uint32_t tail;
    _Atomic uintptr_t runnext;
    _Atomic(gr_g *) slots[GR_RUNQ_SIZE];
} gr_runq;

void gr_runq_init(gr_runq *q);

/* Owner only. Push g at the tail; when the ring is full, move half of it plus g to the
 * global queue under one lock acquisition. */
void gr_runq_put(gr_runq *q, gr_g *g, gr_globalq *overflow);
/* Owner only. Returns 0 when the ring is full (the cffi tests drive this directly). */
int gr_runq_push(gr_runq *q, gr_g *g);
/* Owner only. Pops from head; NULL when empty. Does not look at runnext. */
gr_g *gr_runq_pop(gr_runq *q);
/* Owner only. Put g in runnext; the G it displaces goes to the ring (or, when pinned, is
 * returned so the caller can queue it where pinned G's go). */
gr_g *gr_runq_put_next(gr_runq *q, gr_g *g, int pinned, gr_globalq *overflow);
/* Owner only. Take runnext (pinned or not); NULL when empty. */
gr_g *gr_runq_take_next(gr_runq *q);

/* Any thread. Move n - n/2 of src's G's into dst's ring (dst must be the caller's own,
 * empty ring) and return one of them to run, or NULL. With steal_next, an unpinned runnext
 * of src may be taken when its ring is empty. *nstolen receives the number of G's taken. */
gr_g *gr_runq_steal(gr_runq *dst, gr_runq *src, int steal_next, uint32_t *nstolen);

static inline uint32_t gr_runq_len(gr_runq *q)
{
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    uint32_t n = t - h;
    return n > GR_RUNQ_SIZE ? 0 : n; /* a torn read of a moving queue */
}

/* Any thread: is there anything another M could take? */
static inline int gr_runq_stealable(gr_runq *q)
{
    uintptr_t nx = atomic_load_explicit(&q->runnext, memory_order_acquire);
    return gr_runq_len(q) != 0 || (nx != 0 && !(nx & GR_RUNNEXT_PINNED));
}

#endif
