#include "timer.h"

#include <stdlib.h>

void gr_timerheap_init(gr_timerheap *h)
{
    h->t = NULL;
    h->n = h->cap = 0;
}

void gr_timerheap_free(gr_timerheap *h)
{
    free(h->t);
    gr_timerheap_init(h);
}

static void place(gr_timerheap *h, uint32_t i, gr_timer tm)
{
    h->t[i] = tm;
    tm.g->timer_idx = (int32_t)i;
}

static void sift_up(gr_timerheap *h, uint32_t i)
{
    gr_timer tm = h->t[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (h->t[parent].when <= tm.when)
            break;
        place(h, i, h->t[parent]);
        i = parent;
    }
    place(h, i, tm);
}

static void sift_down(gr_timerheap *h, uint32_t i)
{
    gr_timer tm = h->t[i];
    for (;;) {
        uint32_t c = 4 * i + 1, best = i;
        int64_t bw = tm.when;
        for (uint32_t k = c; k < c + 4 && k < h->n; k++) {
            if (h->t[k].when < bw) {
                bw = h->t[k].when;
                best = k;
            }
        }
        if (best == i)
            break;
        place(h, i, h->t[best]);
        i = best;
    }
    place(h, i, tm);
}

int gr_timerheap_add(gr_timerheap *h, gr_g *g, int64_t when)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        gr_timer *t = realloc(h->t, cap * sizeof *t);
        if (!t)
            return -1;
        h->t = t;
        h->cap = cap;
    }
    g->timer_when = when;
    h->t[h->n] = (gr_timer){when, g};
    sift_up(h, h->n++);
    return 0;
}

static void remove_at(gr_timerheap *h, uint32_t i)
{
    h->t[i].g->timer_idx = -1;
    if (--h->n == i)
        return;
    gr_timer last = h->t[h->n];
    place(h, i, last);
    if (i > 0 && h->t[(i - 1) / 4].when > last.when)
        sift_up(h, i);
    else
        sift_down(h, i);
}

int gr_timerheap_del(gr_timerheap *h, gr_g *g)
{
    if (g->timer_idx < 0)
        return 0;
    remove_at(h, (uint32_t)g->timer_idx);
    return 1;
}

gr_g *gr_timerheap_pop_expired(gr_timerheap *h, int64_t now)
{
    if (h->n == 0 || h->t[0].when > now)
        return NULL;
    gr_g *g = h->t[0].g;
    remove_at(h, 0);
    return g;
}
