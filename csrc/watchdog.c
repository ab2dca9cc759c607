#include "watchdog.h"

#include <stdlib.h>
#include <time.h>

/* Looks per threshold: an incident is seen between 1x and 1.25x the threshold in. */
#define GR_WATCHDOG_LOOKS 4
#define GR_WATCHDOG_MIN_PERIOD_NS 1000000

gr_watchdog *gr_watchdog_new(gr_sched *s, int64_t threshold_ns)
{
    gr_watchdog *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->seen = calloc((size_t)s->nprocs, sizeof(uint64_t));
    w->seen_at = calloc((size_t)s->nprocs, sizeof(int64_t));
    w->reported = calloc((size_t)s->nprocs, sizeof(uint64_t));
    if (!w->seen || !w->seen_at || !w->reported) {
        free(w->seen);
        free(w->seen_at);
        free(w->reported);
        free(w);
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->mu, NULL);
    w->s = s;
    w->threshold_ns = threshold_ns;
    w->period_ns = threshold_ns / GR_WATCHDOG_LOOKS;
    if (w->period_ns < GR_WATCHDOG_MIN_PERIOD_NS)
        w->period_ns = GR_WATCHDOG_MIN_PERIOD_NS;
    return w;
}

void gr_watchdog_free(gr_watchdog *w)
{
    if (!w)
        return;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->seen);
    free(w->seen_at);
    free(w->reported);
    free(w);
}

void gr_watchdog_stop(gr_watchdog *w)
{
    pthread_mutex_lock(&w->mu);
    w->stopped = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* One look at every P: 1 and *out if one's M has run the same G past the threshold. A
 * run is timed from the first look that saw it, so a hog is reported between one and
 * 1.25 thresholds after it began, and held_ns is at most a look period short. */
static int look(gr_watchdog *w, gr_hog *out)
{
    gr_sched *s = w->s;
    int64_t now = gr_nanotime();
    for (int i = 0; i < s->nprocs; i++) {
        gr_pobs *o = &s->ps[i].stats.obs;
        /* The read side of gr_obs_running's sequence lock: acquire pairs with its final
         * release store of runs, the fence with its release fence; a look that straddles
         * a change (odd, or runs moved) is discarded, and the next one sees it. */
        uint64_t runs = atomic_load_explicit(&o->runs, memory_order_acquire);
        uint64_t gid = atomic_load_explicit(&o->curgid, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if ((runs & 1) || atomic_load_explicit(&o->runs, memory_order_relaxed) != runs)
            continue;
        if (runs != w->seen[i]) {
            w->seen[i] = runs;
            w->seen_at[i] = now;
            continue;
        }
        if (gid == 0 || runs == w->reported[i] || now - w->seen_at[i] < w->threshold_ns)
            continue;
        w->reported[i] = runs;
        out->p = i;
        out->gid = gid;
        out->held_ns = now - w->seen_at[i];
        return 1;
    }
    return 0;
}

int gr_watchdog_ongoing(gr_watchdog *w, const gr_hog *h)
{
    gr_pobs *o = &w->s->ps[h->p].stats.obs;
    return atomic_load_explicit(&o->curgid, memory_order_relaxed) == h->gid &&
           atomic_load_explicit(&o->runs, memory_order_relaxed) == w->reported[h->p];
}

int gr_watchdog_next(gr_watchdog *w, gr_hog *out)
{
    pthread_mutex_lock(&w->mu);
    while (!w->stopped) {
        if (look(w, out)) {
            pthread_mutex_unlock(&w->mu);
            return 1;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + w->period_ns;
        ts.tv_sec = at / 1000000000;
        ts.tv_nsec = at % 1000000000;
        /* Until the period is over (ETIMEDOUT) or the stop; a spurious wake-up waits on. */
        while (!w->stopped && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&w->mu);
    return 0;
}
