/*
 * idle.h: the set of parked Ms and the spinning count.
 *
 * An M with nothing to run first spins (steals from other Ps without sleeping), and only
 * then parks on its own futex word (park.h). Two counts keep wake-ups cheap and bounded:
 * nmidle, how many Ms are in the idle set, and nmspinning, how many are searching. A submit
 * wakes an idle M only if nobody is spinning, and claims the right to do so by moving
 * nmspinning from 0 to 1, so a burst of submits costs one futex wake, not one per task
 * (Go issue 13527). The woken M starts out spinning; when it finds work it stops spinning
 * and, if it was the last spinner, wakes one more: Ms ramp up one at a time.
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
    int n;
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

#endif
