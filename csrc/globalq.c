#include "globalq.h"

void gr_globalq_init(gr_globalq *q)
{
    pthread_mutex_init(&q->mu, NULL);
    gr_gqueue_init(&q->q);
    q->closed = 0;
    atomic_init(&q->len, 0);
}

void gr_globalq_destroy(gr_globalq *q) { pthread_mutex_destroy(&q->mu); }

void gr_globalq_put_batch(gr_globalq *q, gr_g *head, gr_g *tail, uint32_t n)
{
    pthread_mutex_lock(&q->mu);
    gr_gqueue_append(&q->q, head, tail);
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + n,
                          memory_order_release);
    pthread_mutex_unlock(&q->mu);
}

void gr_globalq_put(gr_globalq *q, gr_g *g) { gr_globalq_put_batch(q, g, g, 1); }

int gr_globalq_put_open(gr_globalq *q, gr_g *g)
{
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return -1;
    }
    gr_gqueue_push(&q->q, g);
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + 1,
                          memory_order_release);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void gr_globalq_close(gr_globalq *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_mutex_unlock(&q->mu);
}

gr_g *gr_globalq_get_batch(gr_globalq *q, uint32_t max, uint32_t *n)
{
    *n = 0;
    if (max == 0 || gr_globalq_len(q) == 0)
        return NULL;
    pthread_mutex_lock(&q->mu);
    gr_g *head = gr_gqueue_pop_n(&q->q, max, n);
    if (*n)
        atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) - *n,
                              memory_order_release);
    pthread_mutex_unlock(&q->mu);
    return head;
}
