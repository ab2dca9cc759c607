/*
 * observe.h: what the scheduler shows of itself (gr.tasks(), gr.dump(), the watchdog and
 * the histograms of gr.stats()). docs/observability.md is the user's side of it.
 *
 * The live registry. Every G, from spawn to finish, is on one P's live list, a doubly
 * linked list under that P's lock (a G spawned from outside the runtime goes on P0's).
 * It is the one place that can list every task: a never-run G sits in a lock-free ring
 * other threads must not walk, a started one on its M's owner-only list. The G remembers
 * its list, so it can finish on another P (a stolen G) and still unlink itself. A snapshot
 * takes one P's lock at a time, so it costs the scheduler nothing but that P's spawns and
 * finishes for the length of the walk; the lock is uncontended otherwise (~10 ns a spawn).
 *
 * Timestamps. Each G keeps when it last parked (`since`, read by snapshots, so an atomic),
 * from CLOCK_MONOTONIC_COARSE: about 3 ns a read against 22 ns for the fine clock, and its
 * resolution (a few ms) is plenty for "parked for 2.5 s". Only the park is stamped, as in
 * Go's dump, which shows how long a goroutine has waited: a stamp at every ready and run
 * too cost ping-pong 2% more. The histograms need the fine clock, so, as Go does for
 * /sched/latencies (gTrackingPeriod), only one wait in GR_OBS_SAMPLE of each G is timed
 * finely: park, ready, run. A sample is decided by the G's owner in gr_g_prepare_wait
 * (before any waker can see the G) or at spawn (by its id).
 *
 * The watchdog's view. Each P publishes the id of the G its M runs (0 between tasks) and a
 * count of its runs: single writer; the watchdog (watchdog.c) times how long the count
 * stays the same from its own thread, so the Ms read no clock for it.
 *
 * Histogram counters have a single writer, the P's own M (stats.h's rule), except the
 * ready half of a sample, which rides in the G to the M that runs it.
 */
#ifndef GR_OBSERVE_H
#define GR_OBSERVE_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "g.h"
#include "lock.h"

/* Log2 buckets: bucket i counts durations in [2^(i-1), 2^i) ns (bucket 0: under 1 ns); the
 * last one is open-ended (2^38 ns is 4.6 minutes). */
#define GR_HIST_BUCKETS 40
/* Wait reasons timed separately: the Python layer's PARK_* codes (_core.pxd) are below. */
#define GR_OBS_REASONS 16
/* One wait in this many is timed finely (a power of two). */
#define GR_OBS_SAMPLE 16

typedef struct gr_hist {
    _Atomic uint64_t count[GR_HIST_BUCKETS];
    _Atomic uint64_t n, sum, max;
} gr_hist;

/* A P's live G's. n is read without the lock by gr.stats() (relaxed; a moment old). */
typedef struct gr_live {
    gr_lock lock;
    gr_g *head;
    _Atomic int64_t n;
} gr_live;

typedef struct gr_pobs {
    gr_live live;
    gr_hist latency;                 /* ready -> running (sampled) */
    gr_hist wait[GR_OBS_REASONS];    /* parked -> ready, per park reason (sampled) */
    /* The G this P's M runs, 0 between tasks. Written by the M; read by the watchdog. */
    _Atomic uint64_t curgid;
    /* Twice the runs so far, odd while curgid changes (gr_obs_running): a watchdog
     * incident is one value of it. */
    _Atomic uint64_t runs;
} gr_pobs;

static inline int64_t gr_coarsetime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Single writer: relaxed load and store (stats.h's GR_STAT_ADD). */
static inline void gr_hist_add1(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void gr_hist_record(gr_hist *h, int64_t ns)
{
    uint64_t v = ns > 0 ? (uint64_t)ns : 0;
    int b = v ? 64 - __builtin_clzll(v) : 0;
    if (b >= GR_HIST_BUCKETS)
        b = GR_HIST_BUCKETS - 1;
    gr_hist_add1(&h->count[b], 1);
    gr_hist_add1(&h->n, 1);
    gr_hist_add1(&h->sum, v);
    if (v > atomic_load_explicit(&h->max, memory_order_relaxed))
        atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

/* ---- the live registry ---------------------------------------------------------------- */

static inline void gr_live_add(gr_live *l, gr_g *g)
{
    g->live = l;
    g->live_prev = NULL;
    gr_lock_acquire(&l->lock);
    g->live_next = l->head;
    if (l->head)
        l->head->live_prev = g;
    l->head = g;
    atomic_store_explicit(&l->n, atomic_load_explicit(&l->n, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    gr_lock_release(&l->lock);
}

/* Idempotent: a G never registered (or already removed) is left alone. */
static inline void gr_live_remove(gr_g *g)
{
    gr_live *l = g->live;
    if (!l)
        return;
    gr_lock_acquire(&l->lock);
    if (g->live_prev)
        g->live_prev->live_next = g->live_next;
    else
        l->head = g->live_next;
    if (g->live_next)
        g->live_next->live_prev = g->live_prev;
    atomic_store_explicit(&l->n, atomic_load_explicit(&l->n, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    gr_lock_release(&l->lock);
    g->live = NULL;
}

/* ---- state changes -------------------------------------------------------------------- */

/* Relaxed: see gr_g's comment on these fields. */
#define GR_OBS_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)
#define GR_OBS_SET(field, v) atomic_store_explicit(&(field), (v), memory_order_relaxed)

/* g became runnable (spawned, readied, yielded), on whichever thread did it. */
static inline void gr_obs_runnable(gr_g *g)
{
    if (GR_OBS_GET(g->sampled))
        GR_OBS_SET(g->ready_ns, gr_nanotime());
}

/* g becomes runnable without a wait to time (spawned, yielded); `sampled` says whether
 * its ready -> running latency is timed. */
static inline void gr_obs_queued(gr_g *g, uint32_t sampled)
{
    GR_OBS_SET(g->sampled, sampled);
    GR_OBS_SET(g->park_ns, 0);
    gr_obs_runnable(g);
}

/* One wait or yield of g in GR_OBS_SAMPLE is sampled (its owner counts them). */
static inline uint32_t gr_obs_next_sampled(gr_g *g)
{
    return (++g->obs_seq & (GR_OBS_SAMPLE - 1)) == 0;
}

/* A fresh G: sampled by its id, so one spawn in GR_OBS_SAMPLE is timed to its first run. */
static inline void gr_obs_spawned(gr_g *g) { gr_obs_queued(g, (g->id & (GR_OBS_SAMPLE - 1)) == 0); }

/* g, running, is about to wait (its owner, before any waker can see it). */
static inline void gr_obs_waiting(gr_g *g)
{
    int64_t now = gr_coarsetime();
    atomic_store_explicit(&g->since, now, memory_order_relaxed);
    uint32_t sampled = gr_obs_next_sampled(g);
    GR_OBS_SET(g->sampled, sampled);
    GR_OBS_SET(g->park_ns, sampled ? gr_nanotime() : 0);
}

/* The M of p is about to run g. */
static inline void gr_obs_running(gr_pobs *o, gr_g *g)
{
    /* A sequence lock for the watchdog (watchdog.c, look): runs is odd while curgid
     * changes. The release fence pairs with the reader's acquire fence, the final release
     * store with its acquire load. Single writer: a load and a store, no locked RMW. */
    uint64_t runs = atomic_load_explicit(&o->runs, memory_order_relaxed);
    atomic_store_explicit(&o->runs, runs + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&o->curgid, g->id, memory_order_relaxed);
    atomic_store_explicit(&o->runs, runs + 2, memory_order_release);
    if (GR_OBS_GET(g->sampled)) {
        GR_OBS_SET(g->sampled, 0);
        int64_t fine = gr_nanotime(), ready = GR_OBS_GET(g->ready_ns);
        int64_t parked = GR_OBS_GET(g->park_ns);
        gr_hist_record(&o->latency, fine - ready);
        if (parked && g->park_reason < GR_OBS_REASONS)
            gr_hist_record(&o->wait[g->park_reason], ready - parked);
    }
}

/* The M of p stops running its G (it parked, yielded or finished). */
static inline void gr_obs_stopped(gr_pobs *o)
{
    atomic_store_explicit(&o->curgid, 0, memory_order_relaxed);
}

/* g, running, yields: back on its M's queue at once. */
static inline void gr_obs_yielded(gr_pobs *o, gr_g *g)
{
    gr_obs_stopped(o);
    gr_obs_queued(g, gr_obs_next_sampled(g));
}

#endif
