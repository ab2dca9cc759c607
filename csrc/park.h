/*
 * park.h: one M's futex word, used as a wake-up token.
 *
 * Every M parks on its own word, so a wake-up is always addressed to one M and never a
 * broadcast. The word is a binary semaphore with a memory: an unpark that arrives before
 * the park leaves NOTIFIED behind, and the park then returns at once. That makes the usual
 * "check the queues, then sleep" race harmless as long as wakers publish work first and
 * unpark second, which is what gr_ready and gr_wakep do.
 */
#ifndef GR_PARK_H
#define GR_PARK_H

#include <stdatomic.h>
#include <stdint.h>

enum { GR_PARK_EMPTY = 0, GR_PARK_PARKED = 1, GR_PARK_NOTIFIED = 2 };
enum { GR_PARK_WOKEN = 0, GR_PARK_TIMEOUT = 1, GR_PARK_INTR = 2 };

typedef struct gr_park {
    _Atomic uint32_t state;
} gr_park;

/* Block until unparked or until timeout_ns (< 0: forever) has passed. Returns GR_PARK_*.
 * A signal interrupts the wait (GR_PARK_INTR) so the main thread can run Python's signal
 * handlers. */
int gr_park_wait(gr_park *p, int64_t timeout_ns);
/* Any thread: wake the parked owner, or make its next park return at once. */
void gr_park_unpark(gr_park *p);

#endif
