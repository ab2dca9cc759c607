/*
 * lock.h: a 4-byte futex mutex and the futex wrappers the rest of csrc parks on.
 *
 * Why not pthread_mutex_t: a G carries one of these for its joiner list, and a G lives
 * inside every Task object, so 40 bytes per task would be memory spent on a lock that is
 * almost never contended. This is Drepper's three-state mutex ("Futexes Are Tricky", mutex
 * 3): 0 unlocked, 1 locked, 2 locked with waiters.
 */
#ifndef GR_LOCK_H
#define GR_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct gr_lock {
    _Atomic uint32_t state;
} gr_lock;

#define GR_LOCK_INIT {0}

/* futex(2) on a private word. timeout_ns < 0 waits forever. Returns 0, or an errno
 * (ETIMEDOUT, EINTR, EAGAIN when *addr != expected). */
int gr_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns);
void gr_futex_wake(_Atomic uint32_t *addr, int n);

void gr_lock_slow(gr_lock *l);

static inline void gr_lock_acquire(gr_lock *l)
{
    uint32_t z = 0;
    /* acquire: pairs with the release in gr_lock_release. */
    if (!atomic_compare_exchange_strong_explicit(&l->state, &z, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        gr_lock_slow(l);
}

static inline void gr_lock_release(gr_lock *l)
{
    /* release: publishes the critical section to the next acquirer. */
    if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
        gr_futex_wake(&l->state, 1);
}

/* Monotonic clock in nanoseconds; all deadlines in csrc use it. */
int64_t gr_nanotime(void);

#endif
