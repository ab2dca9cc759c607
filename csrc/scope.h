/*
 * scope.h: the cross-thread state of a cancel scope (the Python layer's CancelScope).
 *
 * A scope is entered by one task, its owner, which reads this state at the start of each
 * of its waits (the scope chain walk in _scope.pxi). Any thread may cancel the scope, move
 * its deadline or change its shield: it writes here first, then interrupts the owner
 * (wait.h, gr_g_interrupt), whose seq_cst flag update orders these writes before the
 * owner's next read. The loads and stores here need only be atomic (no torn deadline on a
 * free-threaded build) and ordered by that interrupt: release stores, acquire loads.
 */
#ifndef GR_SCOPE_H
#define GR_SCOPE_H

#include <stdatomic.h>
#include <stdint.h>

#include "g.h"

typedef struct gr_scope {
    _Atomic uint32_t cancelled; /* cancel() was called, or the owner saw the deadline pass */
    _Atomic uint32_t shield;    /* outer scopes' cancellations do not reach inside */
    _Atomic int64_t deadline;   /* gr_nanotime(), or GR_DEADLINE_NEVER */
} gr_scope;

static inline void gr_scope_init(gr_scope *s, int64_t deadline, uint32_t shield)
{
    atomic_init(&s->cancelled, 0);
    atomic_init(&s->shield, shield);
    atomic_init(&s->deadline, deadline);
}

/* Release: pairs with the acquire loads below, through the owner's interrupt. */
static inline void gr_scope_cancel(gr_scope *s)
{
    atomic_store_explicit(&s->cancelled, 1, memory_order_release);
}

static inline int gr_scope_cancelled(gr_scope *s)
{
    return (int)atomic_load_explicit(&s->cancelled, memory_order_acquire);
}

static inline void gr_scope_set_deadline(gr_scope *s, int64_t deadline)
{
    atomic_store_explicit(&s->deadline, deadline, memory_order_release);
}

static inline int64_t gr_scope_deadline(gr_scope *s)
{
    return atomic_load_explicit(&s->deadline, memory_order_acquire);
}

static inline void gr_scope_set_shield(gr_scope *s, uint32_t shield)
{
    atomic_store_explicit(&s->shield, shield, memory_order_release);
}

static inline int gr_scope_shielded(gr_scope *s)
{
    return (int)atomic_load_explicit(&s->shield, memory_order_acquire);
}

/* The owner's interrupt flag, read before it clears it (a hint: gr_waitop_begin makes the
 * seq_cst check that decides). Relaxed. */
static inline int gr_g_interrupted(gr_g *g)
{
    return (atomic_load_explicit(&g->flags, memory_order_relaxed) & GR_G_FLAG_INTERRUPT) != 0;
}

#endif
