/*
 * watchdog.h: notice a task that holds its M too long without yielding.
 *
 * Nothing preempts Python code, so a task that calls time.sleep, an unpatched blocking
 * socket call, or loops in pure Python stalls every other task of its P until it returns
 * (guide rule 5: report it, never starve silently). The watchdog is gevent's monitor thread
 * and asyncio's slow-callback warning: a thread outside the runtime that looks, every
 * quarter of the threshold, at what each P's M runs (observe.h: the G's id and a count of
 * runs) and reports each run that it has seen last longer than the threshold, once.
 *
 * It reads only relaxed per-P values the Ms publish anyway, so having it on costs the Ms
 * nothing; the look itself runs without the GIL (gr_watchdog_next), and the Python layer
 * takes the GIL only to report an incident (the task's name and stack).
 */
#ifndef GR_WATCHDOG_H
#define GR_WATCHDOG_H

#include <pthread.h>
#include <stdint.h>

#include "sched.h"

typedef struct gr_watchdog {
    gr_sched *s;
    int64_t threshold_ns, period_ns;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* signalled by gr_watchdog_stop */
    int stopped;        /* guarded by mu */
    /* Per P, the watcher's own: the run count it last saw and since when (its clock), and
     * that of the last incident it reported. */
    uint64_t *seen;
    int64_t *seen_at;
    uint64_t *reported;
} gr_watchdog;

/* An incident: P p's M has run G gid for held_ns. */
typedef struct gr_hog {
    int p;
    uint64_t gid;
    int64_t held_ns;
} gr_hog;

/* NULL when out of memory. threshold_ns > 0. */
gr_watchdog *gr_watchdog_new(gr_sched *s, int64_t threshold_ns);
/* Block (without the GIL) until an incident (returns 1, *out filled) or the stop (0). */
int gr_watchdog_next(gr_watchdog *w, gr_hog *out);
/* Is incident h still going on (the same run of the same G)? */
int gr_watchdog_ongoing(gr_watchdog *w, const gr_hog *h);
void gr_watchdog_stop(gr_watchdog *w);
/* After the watcher has returned from its last gr_watchdog_next. */
void gr_watchdog_free(gr_watchdog *w);

#endif
