/*
 * globalq.h: the global run queue, a mutex-protected FIFO of G's that have never run.
 *
 * It takes what overflows a full local ring (half a ring at a time), G's spawned from
 * threads that are not Ms, and is polled by every P every 61 scheduling ticks so that two
 * tasks respawning each other cannot starve it. All transfers are batches under one lock
 * acquisition. The length is also kept in an atomic so that "is it empty?" costs no lock.
 */
#ifndef GR_GLOBALQ_H
#define GR_GLOBALQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "g.h"
#include "gqueue.h"

typedef struct gr_globalq {
    pthread_mutex_t mu;
    gr_gqueue q;         /* under mu */
    int closed;          /* under mu: puts from outside the runtime are refused */
    /* Written under mu; read without it only as a hint (an empty-check before locking). */
    _Atomic uint64_t len;
} gr_globalq;

void gr_globalq_init(gr_globalq *q);
void gr_globalq_destroy(gr_globalq *q);
/* Append the chain head..tail (linked through schedlink) of n G's. */
void gr_globalq_put_batch(gr_globalq *q, gr_g *head, gr_g *tail, uint32_t n);
void gr_globalq_put(gr_globalq *q, gr_g *g);
/* Append g unless the queue is closed: 0, or -1 when closed (Tokio's inject queue). A
 * thread outside the runtime spawns through this, so its G is either queued before the
 * runtime shuts down, and drained by it, or refused: never left behind. */
int gr_globalq_put_open(gr_globalq *q, gr_g *g);
/* Refuse every later gr_globalq_put_open. */
void gr_globalq_close(gr_globalq *q);
/* Take up to max G's; returns the chain (NULL-terminated through schedlink), *n the count. */
gr_g *gr_globalq_get_batch(gr_globalq *q, uint32_t max, uint32_t *n);

static inline uint64_t gr_globalq_len(gr_globalq *q)
{
    return atomic_load_explicit(&q->len, memory_order_acquire);
}

#endif
