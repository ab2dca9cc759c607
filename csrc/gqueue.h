/*
 * gqueue.h: the intrusive lists of G's, so no queue of G's is linked by hand.
 *
 *   gr_gqueue  a FIFO through g->schedlink. A runnable G is on at most one queue at a
 *              time, so one link serves the ready queue, the global queue, inbox drains
 *              and batches of G's being handed around.
 *   gr_glist   an M's started, unfinished G's, doubly linked through started_next/prev
 *              so that a finishing G leaves in O(1).
 *
 * Neither is synchronized: the owner's thread or lock guards it.
 */
#ifndef GR_GQUEUE_H
#define GR_GQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "g.h"

typedef struct gr_gqueue {
    gr_g *head, *tail;
} gr_gqueue;

static inline void gr_gqueue_init(gr_gqueue *q) { q->head = q->tail = NULL; }
static inline int gr_gqueue_empty(const gr_gqueue *q) { return q->head == NULL; }

/* Append the chain head..tail, linked through schedlink (tail's link is overwritten). */
static inline void gr_gqueue_append(gr_gqueue *q, gr_g *head, gr_g *tail)
{
    tail->schedlink = NULL;
    if (q->tail)
        q->tail->schedlink = head;
    else
        q->head = head;
    q->tail = tail;
}

static inline void gr_gqueue_push(gr_gqueue *q, gr_g *g) { gr_gqueue_append(q, g, g); }

static inline gr_g *gr_gqueue_pop(gr_gqueue *q)
{
    gr_g *g = q->head;
    if (g) {
        q->head = g->schedlink;
        if (!q->head)
            q->tail = NULL;
        g->schedlink = NULL;
    }
    return g;
}

/* Detach the first (up to) max G's: a NULL-terminated chain through schedlink, its
 * length in *n. */
static inline gr_g *gr_gqueue_pop_n(gr_gqueue *q, uint32_t max, uint32_t *n)
{
    gr_g *head = q->head, *last = NULL, *g = head;
    uint32_t k = 0;
    while (g && k < max) {
        last = g;
        g = g->schedlink;
        k++;
    }
    *n = k;
    if (!last)
        return NULL;
    last->schedlink = NULL;
    q->head = g;
    if (!g)
        q->tail = NULL;
    return head;
}

typedef struct gr_glist {
    gr_g *head;
    uint32_t n;
} gr_glist;

/* Idempotent: a G already on the list stays where it is. */
static inline void gr_glist_insert(gr_glist *l, gr_g *g)
{
    if (g->started_linked)
        return;
    g->started_linked = 1;
    g->started_prev = NULL;
    g->started_next = l->head;
    if (l->head)
        l->head->started_prev = g;
    l->head = g;
    l->n++;
}

static inline void gr_glist_remove(gr_glist *l, gr_g *g)
{
    if (!g->started_linked)
        return;
    if (g->started_prev)
        g->started_prev->started_next = g->started_next;
    else
        l->head = g->started_next;
    if (g->started_next)
        g->started_next->started_prev = g->started_prev;
    g->started_linked = 0;
    l->n--;
}

#endif
