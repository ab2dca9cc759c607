/*
 * stats.h: per-P counters behind gr.stats().
 *
 * Each counter has a single writer, the P's own M, so an increment is a relaxed load and
 * store rather than a locked read-modify-write; readers on other threads get a value that
 * is at worst a moment old. Totals across Ps are summed by the reader.
 */
#ifndef GR_STATS_H
#define GR_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "observe.h"

typedef struct gr_pstats {
    _Atomic uint64_t spawned;       /* G's created on this P */
    _Atomic uint64_t finished;      /* G's that finished on this P */
    _Atomic uint64_t executed;      /* times this P handed a G to its M (first runs and resumes) */
    _Atomic uint64_t stolen;        /* G's this P took from other Ps */
    _Atomic uint64_t from_global;   /* G's this P took from the global queue */
    _Atomic uint64_t steals_local;  /* successful steals from a P on the same NUMA node */
    _Atomic uint64_t steals_remote; /* ... from a P on another node */
    _Atomic uint64_t task_parks;    /* times a G parked on this P */
    _Atomic uint64_t mparks;        /* times this P's M slept on its futex */
    _Atomic uint64_t gil_contended; /* GIL waits long enough to mean another M ran Python */
    _Atomic uint64_t backoffs;      /* sleeps instead of taking shared work (GIL busy) */
    _Atomic uint64_t backoff_steals; /* shared work taken anyway after a long back-off */
    gr_pobs obs;                    /* live G's, histograms, the watchdog's view (observe.h) */
} gr_pstats;

/* A plain copy for readers (the Cython layer turns it into a dict). */
typedef struct gr_pstats_snapshot {
    uint64_t spawned, finished, executed, stolen, from_global, steals_local, steals_remote;
    uint64_t task_parks, mparks;
    uint64_t gil_contended, backoffs, backoff_steals;
    uint64_t runq_len;
} gr_pstats_snapshot;

#define GR_STAT_ADD(field, n)                                                                  \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
                          memory_order_relaxed)
#define GR_STAT_INC(field) GR_STAT_ADD(field, 1)
#define GR_STAT_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

#endif
