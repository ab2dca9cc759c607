#include "park.h"

#include <errno.h>

#include "lock.h"

/* The exchanges and CASes below are seq_cst: the park/unpark pair orders the waker's queue
 * push before the parker's next look at the queues. */
int gr_park_wait(gr_park *p, int64_t timeout_ns)
{
    uint32_t s = GR_PARK_NOTIFIED;
    if (atomic_compare_exchange_strong(&p->state, &s, GR_PARK_EMPTY))
        return GR_PARK_WOKEN;
    s = GR_PARK_EMPTY;
    if (!atomic_compare_exchange_strong(&p->state, &s, GR_PARK_PARKED)) {
        atomic_exchange(&p->state, GR_PARK_EMPTY); /* it was NOTIFIED meanwhile */
        return GR_PARK_WOKEN;
    }
    int64_t deadline = -1;
    if (timeout_ns >= 0) {
        /* Saturate: now + a huge timeout would be signed overflow (undefined). */
        int64_t now = gr_nanotime();
        deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    }
    for (;;) {
        int64_t left = -1;
        if (deadline >= 0) {
            left = deadline - gr_nanotime();
            if (left < 0)
                left = 0;
        }
        int err = left == 0 ? ETIMEDOUT : gr_futex_wait(&p->state, GR_PARK_PARKED, left);
        if (atomic_load(&p->state) == GR_PARK_NOTIFIED) {
            atomic_exchange(&p->state, GR_PARK_EMPTY);
            return GR_PARK_WOKEN;
        }
        if (err == ETIMEDOUT || err == EINTR) {
            uint32_t parked = GR_PARK_PARKED;
            if (atomic_compare_exchange_strong(&p->state, &parked, GR_PARK_EMPTY))
                return err == EINTR ? GR_PARK_INTR : GR_PARK_TIMEOUT;
            atomic_exchange(&p->state, GR_PARK_EMPTY);
            return GR_PARK_WOKEN;
        }
    }
}

void gr_park_unpark(gr_park *p)
{
    if (atomic_exchange(&p->state, GR_PARK_NOTIFIED) == GR_PARK_PARKED)
        gr_futex_wake(&p->state, 1);
}
