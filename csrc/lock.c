#define _GNU_SOURCE
#include "lock.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int gr_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    if (syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0) == 0)
        return 0;
    return errno;
}

void gr_futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void gr_lock_slow(gr_lock *l)
{
    /* A short spin first: critical sections here are a few loads and stores. */
    for (int i = 0; i < 64; i++) {
        uint32_t z = 0;
        if (atomic_compare_exchange_weak_explicit(&l->state, &z, 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
    }
    /* Mark contended; whoever releases a 2 must wake one waiter. */
    while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
        gr_futex_wait(&l->state, 2, -1);
}

int64_t gr_nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
