/*
 * idle.h: the set of parked Ms and the spinning count, with every transition between
 * running, spinning (searching for work) and idle (parked). Tokio's idle.rs plays the
 * same part; sched.c only calls these.
 *
 * An M with nothing to run first spins (steals from other Ps without sleeping), and only
 * then parks on its own futex word (park.h). Two counts keep wake-ups cheap and bounded:
 * nmidle, how many Ms are in the idle set, and nmspinning, how many are searching. A submit
 * wakes an idle M only if nobody is spinning, and claims the right to do so by moving
 * nmspinning from 0 to 1, so a burst of submits costs one futex wake, not one per task
 * (Go issue 13527). The woken M starts out spinning; when it finds work it stops spinning
 * and, if it was the last spinner, wakes one more: Ms ramp up one at a time. At most half
 * the busy Ms spin at once (Go issue 28808: unbounded spinning at high core counts).
 *
 * The set itself is a stack under a mutex (parking is already a slow path). The counts are
 * atomics read without the lock on the submit path.
 */
#ifndef GR_IDLE_H
#define GR_IDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct gr_idle {
    pthread_mutex_t mu;
    int *stack;          /* M ids, guarded by mu */
    uint8_t *in_set;     /* per M id, guarded by mu */
    /* Per M id: it holds one unit of nmspinning. Written by the M itself, except while it
     * is in the idle set: then the waker that pops it sets it under mu, and the M reads it
     * after it has taken mu to leave the set. */
    uint8_t *spinning;
    int n;
    int nms;
    /* seq_cst everywhere: a submitter's "push work, then read nmidle/nmspinning" and an
     * idling M's "publish idle / stop spinning, then re-check the queues" are each a
     * store followed by a load, and only a full fence on both sides stops both from
     * missing each other (Go issue 43997). */
    _Atomic int32_t nmidle;
    _Atomic int32_t nmspinning;
} gr_idle;

int gr_idle_init(gr_idle *s, int nms);
void gr_idle_destroy(gr_idle *s);
/* Callers hold mu for the three below. */
void gr_idle_push_locked(gr_idle *s, int m);
int gr_idle_remove_locked(gr_idle *s, int m); /* 1 if m was in the set */
int gr_idle_pop_locked(gr_idle *s);           /* an M id, or -1 */

/* A submitter, after publishing work: the id of an idle M to unpark, which now spins on
 * the submitter's behalf, or -1 when an M is already searching or none is idle. */
int gr_idle_wake_one(gr_idle *s);
/* M m wants to search (steal). 1 if it now spins (or already did); 0 if half the busy Ms
 * already spin. */
int gr_idle_begin_spin(gr_idle *s, int m);
/* M m found work. 1 if it was the last spinner: the caller wakes another M, there may be
 * more where that came from. No-op (0) if m was not spinning. */
int gr_idle_found_work(gr_idle *s, int m);
/* M m gives up searching without work (it parks or backs off). No-op if not spinning. */
void gr_idle_end_spin(gr_idle *s, int m);
static inline int gr_idle_is_spinning(gr_idle *s, int m) { return s->spinning[m]; }

#endif
