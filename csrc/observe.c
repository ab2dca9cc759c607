/* observe.c: the readers' side of observe.h, for the Python layer (gr.tasks(), stats()). */
#include "observe.h"

#include "sched.h"

gr_pobs *gr_sched_pobs(gr_sched *s, int p) { return &s->ps[p].stats.obs; }

int gr_g_mid(gr_g *g)
{
    gr_m *m = atomic_load_explicit(&g->m, memory_order_relaxed);
    return m ? m->id : -1;
}

int64_t gr_g_since(gr_g *g) { return atomic_load_explicit(&g->since, memory_order_relaxed); }

uint32_t gr_g_state_of(gr_g *g) { return gr_g_state(g); }

void gr_hist_read(gr_hist *h, uint64_t *counts, uint64_t *n, uint64_t *sum, uint64_t *max)
{
    for (int i = 0; i < GR_HIST_BUCKETS; i++)
        counts[i] = atomic_load_explicit(&h->count[i], memory_order_relaxed);
    *n = atomic_load_explicit(&h->n, memory_order_relaxed);
    *sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
    *max = atomic_load_explicit(&h->max, memory_order_relaxed);
}

int64_t gr_sched_nexternal(gr_sched *s) { return atomic_load(&s->nexternal); }

gr_g *gr_g_live_next(gr_g *g) { return g->live_next; }
