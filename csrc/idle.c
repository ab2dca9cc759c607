#include "idle.h"

#include <stdlib.h>

int gr_idle_init(gr_idle *s, int nms)
{
    s->stack = calloc((size_t)nms, sizeof *s->stack);
    s->in_set = calloc((size_t)nms, 1);
    if (!s->stack || !s->in_set) {
        free(s->stack);
        free(s->in_set);
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->n = 0;
    atomic_init(&s->nmidle, 0);
    atomic_init(&s->nmspinning, 0);
    return 0;
}

void gr_idle_destroy(gr_idle *s)
{
    pthread_mutex_destroy(&s->mu);
    free(s->stack);
    free(s->in_set);
}

void gr_idle_push_locked(gr_idle *s, int m)
{
    if (s->in_set[m])
        return;
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
    atomic_fetch_sub(&s->nmidle, 1);
    return 1;
}

int gr_idle_pop_locked(gr_idle *s)
{
    if (s->n == 0)
        return -1;
    int m = s->stack[--s->n];
    s->in_set[m] = 0;
    atomic_fetch_sub(&s->nmidle, 1);
    return m;
}
