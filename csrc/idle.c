#include "idle.h"

#include <stdlib.h>

#include "throw.h"

int gr_idle_init(gr_idle *s, int nms)
{
    s->stack = calloc((size_t)nms, sizeof *s->stack);
    s->in_set = calloc((size_t)nms, 1);
    s->spinning = calloc((size_t)nms, 1);
    if (!s->stack || !s->in_set || !s->spinning) {
        free(s->stack);
        free(s->in_set);
        free(s->spinning);
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->n = 0;
    s->nms = nms;
    atomic_init(&s->nmidle, 0);
    atomic_init(&s->nmspinning, 0);
    return 0;
}

void gr_idle_destroy(gr_idle *s)
{
    pthread_mutex_destroy(&s->mu);
    free(s->stack);
    free(s->in_set);
    free(s->spinning);
}

void gr_idle_push_locked(gr_idle *s, int m)
{
    if (s->in_set[m])
        return;
    GR_ASSERT(!s->spinning[m], "an M went idle while still counted as spinning");
    s->in_set[m] = 1;
    s->stack[s->n++] = m;
    atomic_fetch_add(&s->nmidle, 1);
}

int gr_idle_remove_locked(gr_idle *s, int m)
{
    if (!s->in_set[m])
        return 0;
    for (int i = 0; i < s->n; i++) {
        if (s->stack[i] == m) {
            s->stack[i] = s->stack[--s->n];
            break;
        }
    }
    s->in_set[m] = 0;
    int32_t was = atomic_fetch_sub(&s->nmidle, 1);
    GR_ASSERT(was > 0, "negative idle M count");
    return 1;
}

int gr_idle_pop_locked(gr_idle *s)
{
    if (s->n == 0)
        return -1;
    int m = s->stack[--s->n];
    s->in_set[m] = 0;
    int32_t was = atomic_fetch_sub(&s->nmidle, 1);
    GR_ASSERT(was > 0, "negative idle M count");
    return m;
}

int gr_idle_wake_one(gr_idle *s)
{
    /* Pairs with the fence an idling M makes after joining the set (sched.c park_idle):
     * the caller's queue push must be visible before we read the counts, and the M's
     * idle/spinning update before it re-reads the queues. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&s->nmidle) == 0 || atomic_load(&s->nmspinning) != 0)
        return -1;
    int32_t zero = 0;
    if (!atomic_compare_exchange_strong(&s->nmspinning, &zero, 1))
        return -1;
    pthread_mutex_lock(&s->mu);
    int m = gr_idle_pop_locked(s);
    if (m >= 0)
        s->spinning[m] = 1; /* the count taken above is now this M's */
    pthread_mutex_unlock(&s->mu);
    if (m < 0) {
        int32_t was = atomic_fetch_sub(&s->nmspinning, 1);
        GR_ASSERT(was > 0, "negative spinning M count");
    }
    return m;
}

int gr_idle_begin_spin(gr_idle *s, int m)
{
    if (s->spinning[m])
        return 1;
    int32_t busy = s->nms - atomic_load(&s->nmidle);
    if (2 * atomic_load(&s->nmspinning) >= busy)
        return 0;
    s->spinning[m] = 1;
    atomic_fetch_add(&s->nmspinning, 1);
    return 1;
}

int gr_idle_found_work(gr_idle *s, int m)
{
    if (!s->spinning[m])
        return 0;
    s->spinning[m] = 0;
    int32_t was = atomic_fetch_sub(&s->nmspinning, 1);
    GR_ASSERT(was > 0, "negative spinning M count");
    return was == 1;
}

void gr_idle_end_spin(gr_idle *s, int m) { gr_idle_found_work(s, m); }
