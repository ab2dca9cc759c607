/*
 * timer.h: a P's timers, a 4-ary min-heap of (deadline, G).
 *
 * Every timer belongs to a G that is parked on the heap's own M (any wait with a deadline:
 * wait.h arms and disarms it), and a started G never leaves its M, so the heap is owner-only
 * and needs no lock.
 * A G has at most one timer; g->timer_idx tracks its slot so the G can remove its timer when
 * something else woke it first. 4-ary rather than binary: fewer levels, and the four children
 * share a cache line or two.
 */
#ifndef GR_TIMER_H
#define GR_TIMER_H

#include <stdint.h>

#include "g.h"

typedef struct gr_timer {
    int64_t when;
    gr_g *g;
} gr_timer;

typedef struct gr_timerheap {
    gr_timer *t;
    uint32_t n, cap;
} gr_timerheap;

void gr_timerheap_init(gr_timerheap *h);
void gr_timerheap_free(gr_timerheap *h);
/* Returns 0, or -1 when out of memory. g must have no timer. */
int gr_timerheap_add(gr_timerheap *h, gr_g *g, int64_t when);
/* Remove g's timer if it has one; returns 1 if one was removed. */
int gr_timerheap_del(gr_timerheap *h, gr_g *g);
/* Pop the earliest timer if its deadline is <= now; returns its G or NULL. */
gr_g *gr_timerheap_pop_expired(gr_timerheap *h, int64_t now);

static inline int64_t gr_timerheap_earliest(gr_timerheap *h)
{
    return h->n ? h->t[0].when : INT64_MAX;
}

#endif
