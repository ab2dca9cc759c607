/*
 * wait.h: the C half of the wait protocol (g.h): a waiting G's timer, sleep, join and
 * cancel.
 *
 * Every begin call (sync.h, chan.h, join and sleep here) takes an absolute deadline and,
 * on its way to GR_WAIT_PARK, calls gr_wait_arm under the lock of the queue it is about
 * to join; every end call finishes with gr_wait_end. A G's timer lives in its own P's heap
 * (timer.h), which only its own M touches: a begin call runs on that M, and the timer can
 * fire only once the M is back in its scheduler, after the G has parked. So the timer is
 * armed before the wait is prepared, and running out of memory for it leaves nothing to
 * take back.
 */
#ifndef GR_WAIT_H
#define GR_WAIT_H

#include <stdint.h>

#include "g.h"

/* On the way to parking, under the lock of the queue self is about to join: arm self's
 * timer (deadline > 0) and prepare its wait. GR_WAIT_PARK, or GR_WAIT_NOMEM with nothing
 * done. */
int gr_wait_arm(gr_g *self, int64_t deadline);
/* After the park, with self off every queue: disarm its timer and return `completed`,
 * the result a waker handed over, or, when it is -1 (nobody did), GR_WAIT_TIMEOUT or
 * GR_WAIT_CANCELLED according to what woke self. */
int gr_wait_end(gr_g *self, int completed);

/* Sleep until deadline (GR_DEADLINE_NEVER: until cancelled). end: GR_WAIT_OK when the
 * deadline passed, GR_WAIT_CANCELLED when woken by a cancel. */
int gr_sleep_begin(gr_g *self, int64_t deadline);
int gr_sleep_end(gr_g *self);

/* Wait for target to finish: GR_WAIT_OK once it is done, whatever else woke self. */
int gr_g_join_begin(gr_g *target, gr_g *self, int64_t deadline);
int gr_g_join_end(gr_g *target, gr_g *self);

/* Request cancellation (sticky, g.h) and wake g if it is parked in a wait. Returns 0 if g
 * had already finished. Safe from any thread. */
int gr_g_cancel(gr_g *g);

/* Set g's interrupt flag (g.h) and wake g if it is parked in a wait, as gr_g_cancel does
 * without making the request sticky. Returns 0 if g had already finished. Safe from any
 * thread. */
int gr_g_interrupt(gr_g *g);

/* The G itself, before it reads the state an interrupter wrote (its scopes): clear the
 * interrupt flag. */
void gr_g_interrupt_clear(gr_g *self);

#endif
