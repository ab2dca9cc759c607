#include "runq.h"

#include "throw.h"

#include "globalq.h"

void gr_runq_init(gr_runq *q)
{
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    atomic_init(&q->runnext, 0);
    for (uint32_t i = 0; i < GR_RUNQ_SIZE; i++)
        atomic_init(&q->slots[i], NULL);
}

int gr_runq_push(gr_runq *q, gr_g *g)
{
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - h >= GR_RUNQ_SIZE)
        return 0;
    /* Relaxed slot store: a thief reads slots before its head CAS, and the CAS fails if
     * the owner has lapped it, so a stale slot value is never used. */
    atomic_store_explicit(&q->slots[t % GR_RUNQ_SIZE], g, memory_order_relaxed);
    /* release: pairs with the acquire load of tail in pop/steal. */
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return 1;
}

/* Move half of the ring plus g to the global queue. Fails (returns 0) when thieves emptied
 * part of the ring meanwhile; the caller then retries the fast path. */
static int runq_put_slow(gr_runq *q, gr_g *g, uint32_t h, uint32_t t, gr_globalq *gq)
{
    uint32_t n = (t - h) / 2;
    if (n != GR_RUNQ_SIZE / 2)
        return 0;
    gr_g *batch[GR_RUNQ_SIZE / 2 + 1];
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&q->slots[(h + i) % GR_RUNQ_SIZE], memory_order_relaxed);
    /* release on success: the slots we read must not be reused before the head moves. */
    if (!atomic_compare_exchange_strong_explicit(&q->head, &h, h + n, memory_order_release,
                                                 memory_order_relaxed))
        return 0;
    batch[n] = g;
    for (uint32_t i = 0; i < n; i++)
        batch[i]->schedlink = batch[i + 1];
    g->schedlink = NULL;
    gr_globalq_put_batch(gq, batch[0], g, n + 1);
    return 1;
}

void gr_runq_put(gr_runq *q, gr_g *g, gr_globalq *overflow)
{
    for (;;) {
        if (gr_runq_push(q, g))
            return;
        uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (runq_put_slow(q, g, h, t, overflow))
            return;
    }
}

gr_g *gr_runq_pop(gr_runq *q)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        gr_g *g = atomic_load_explicit(&q->slots[h % GR_RUNQ_SIZE], memory_order_relaxed);
        /* release: the slot may be overwritten by the owner's next push only after this. */
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + 1, memory_order_release,
                                                  memory_order_relaxed))
            return g;
    }
}

gr_g *gr_runq_put_next(gr_runq *q, gr_g *g, int pinned, gr_globalq *overflow)
{
    uintptr_t v = (uintptr_t)g | (pinned ? GR_RUNNEXT_PINNED : 0);
    /* acq_rel exchange: a thief CASes runnext too, so the owner must see its outcome. */
    uintptr_t old = atomic_exchange_explicit(&q->runnext, v, memory_order_acq_rel);
    if (old == 0)
        return NULL;
    gr_g *kicked = (gr_g *)(old & ~GR_RUNNEXT_PINNED);
    if (old & GR_RUNNEXT_PINNED)
        return kicked;
    gr_runq_put(q, kicked, overflow);
    return NULL;
}

gr_g *gr_runq_take_next(gr_runq *q)
{
    uintptr_t old = atomic_exchange_explicit(&q->runnext, 0, memory_order_acq_rel);
    return (gr_g *)(old & ~GR_RUNNEXT_PINNED);
}

/* Copy up to half of src into dst's ring starting at dst_tail, without publishing it.
 * Returns how many were grabbed. */
static uint32_t runq_grab(gr_runq *src, gr_runq *dst, uint32_t dst_tail, int steal_next)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&src->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&src->tail, memory_order_acquire);
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (!steal_next)
                return 0;
            uintptr_t nx = atomic_load_explicit(&src->runnext, memory_order_acquire);
            if (nx == 0 || (nx & GR_RUNNEXT_PINNED))
                return 0;
            if (!atomic_compare_exchange_strong_explicit(&src->runnext, &nx, 0,
                                                         memory_order_acq_rel,
                                                         memory_order_relaxed))
                continue;
            atomic_store_explicit(&dst->slots[dst_tail % GR_RUNQ_SIZE], (gr_g *)nx,
                                  memory_order_relaxed);
            return 1;
        }
        if (n > GR_RUNQ_SIZE / 2)
            continue; /* read head and tail at different moments; retry */
        for (uint32_t i = 0; i < n; i++) {
            gr_g *g = atomic_load_explicit(&src->slots[(h + i) % GR_RUNQ_SIZE],
                                           memory_order_relaxed);
            atomic_store_explicit(&dst->slots[(dst_tail + i) % GR_RUNQ_SIZE], g,
                                  memory_order_relaxed);
        }
        /* release: commits the grab; the owner may reuse those slots afterwards. */
        if (atomic_compare_exchange_strong_explicit(&src->head, &h, h + n, memory_order_acq_rel,
                                                    memory_order_relaxed))
            return n;
    }
}

gr_g *gr_runq_steal(gr_runq *dst, gr_runq *src, int steal_next, uint32_t *nstolen)
{
    GR_ASSERT(gr_runq_len(dst) == 0, "a steal into a non-empty run queue");
    uint32_t t = atomic_load_explicit(&dst->tail, memory_order_relaxed);
    uint32_t n = runq_grab(src, dst, t, steal_next);
    *nstolen = n;
    if (n == 0)
        return NULL;
    n--;
    gr_g *g = atomic_load_explicit(&dst->slots[(t + n) % GR_RUNQ_SIZE], memory_order_relaxed);
    if (n != 0)
        /* release: publishes the grabbed slots to dst's own consumers and thieves. */
        atomic_store_explicit(&dst->tail, t + n, memory_order_release);
    return g;
}
