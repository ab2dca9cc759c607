/*
 * xwait.h: a thread that is not an M waits through the same park protocol as a task.
 *
 * A plain thread (or a blocking() callback) that sends on or receives from a channel must
 * block itself, not an M. It gets a G of its own and a stand-in M, with a P that holds
 * only an inbox and a park word: a waker readies that G exactly as it readies a task
 * pinned to another M (gr_ready's cross-thread path: push on the inbox, unpark the owner),
 * and the thread sleeps on the park word until its G shows up. Nothing else of the
 * scheduler is involved: the stand-in M is in no idle set, runs no timers (a deadline is
 * the thread's own park timeout, ended by a self-claim) and never polls.
 */
#ifndef GR_XWAIT_H
#define GR_XWAIT_H

#include <stdint.h>

#include "sched.h"

typedef struct gr_xwaiter {
    gr_m m;
    gr_p p;
    gr_g g;
} gr_xwaiter;

enum { GR_XWAIT_READY = 0, GR_XWAIT_INTR };

/* A waiter for the calling thread; NULL when out of memory. Give it back with
 * gr_xwaiter_free, which keeps it for reuse (never returned to the allocator). */
gr_xwaiter *gr_xwaiter_new(void *obj);
void gr_xwaiter_free(gr_xwaiter *xw);
/* Before a begin call: the waiter's G is running, on its stand-in M. */
void gr_xwaiter_prepare(gr_xwaiter *xw);
/* After a begin call returned GR_WAIT_PARK, without the GIL: sleep until the G is readied
 * (GR_XWAIT_READY; then call the end), claiming it with GR_WAKE_TIMEOUT at the deadline
 * (< 0: none). GR_XWAIT_INTR: a signal interrupted the sleep; call again (after
 * gr_xwaiter_cancel if the thread must stop waiting). */
int gr_xwaiter_park(gr_xwaiter *xw, int64_t deadline);
/* Stop waiting (a KeyboardInterrupt in the thread): the wait ends as cancelled unless a
 * waker got there first. */
void gr_xwaiter_cancel(gr_xwaiter *xw);

#endif
