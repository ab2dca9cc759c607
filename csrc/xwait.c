#include "xwait.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "park.h"

/* Waiters are recycled, never freed: a waker's unpark of the stand-in M (its last touch)
 * may still be under way after the thread saw its G readied, went on and ended. A stray
 * unpark of a recycled waiter only makes its next park return once, for nothing. */
static pthread_mutex_t free_mu = PTHREAD_MUTEX_INITIALIZER;
static gr_xwaiter *free_list;

gr_xwaiter *gr_xwaiter_new(void *obj)
{
    gr_xwaiter *xw;
    pthread_mutex_lock(&free_mu);
    xw = free_list;
    if (xw)
        free_list = (gr_xwaiter *)xw->g.schedlink;
    pthread_mutex_unlock(&free_mu);
    if (!xw) {
        /* 64-byte aligned: the P's inbox is _Alignas(64). */
        if (posix_memalign((void **)&xw, 64, sizeof *xw) != 0)
            return NULL;
        memset(xw, 0, sizeof *xw);
        atomic_init(&xw->m.park.state, GR_PARK_EMPTY);
        atomic_init(&xw->p.inbox, NULL);
        xw->m.id = -1;
        xw->m.p = &xw->p;
        xw->p.id = -1;
        atomic_store_explicit(&xw->g.m, &xw->m, memory_order_relaxed);
    }
    /* A recycled one keeps its park word: a late unpark may still land on it. */
    xw->g.schedlink = NULL;
    xw->g.obj = obj;
    xw->g.timer_idx = -1;
    return xw;
}

void gr_xwaiter_free(gr_xwaiter *xw)
{
    pthread_mutex_lock(&free_mu);
    xw->g.schedlink = (gr_g *)free_list;
    free_list = xw;
    pthread_mutex_unlock(&free_mu);
}

void gr_xwaiter_prepare(gr_xwaiter *xw)
{
    atomic_store_explicit(&xw->g.state, GR_G_RUNNING, memory_order_relaxed);
}

/* The G was readied: it is on our inbox (gr_ready's cross-thread path). */
static int take(gr_xwaiter *xw)
{
    /* acquire: pairs with the waker's release push, so what it handed over is seen. */
    gr_g *g = atomic_exchange_explicit(&xw->p.inbox, NULL, memory_order_acquire);
    if (!g)
        return 0;
    GR_ASSERT(g == &xw->g && g->schedlink == NULL, "a thread waiter's inbox held another G");
    gr_g_move(g, GR_G_RUNNABLE, GR_G_RUNNING, "a thread waiter's G readied twice");
    return 1;
}

int gr_xwaiter_park(gr_xwaiter *xw, int64_t deadline)
{
    for (;;) {
        if (take(xw))
            return GR_XWAIT_READY;
        int64_t timeout = -1;
        if (deadline >= 0) {
            timeout = deadline - gr_nanotime();
            if (timeout <= 0) {
                /* Our own timer: a lost claim means a waker won, and the G is on its way. */
                gr_g_wake(&xw->g, GR_WAKE_TIMEOUT, 0);
                timeout = -1;
                deadline = -1;
                continue;
            }
        }
        if (gr_park_wait(&xw->m.park, timeout) == GR_PARK_INTR)
            return GR_XWAIT_INTR;
    }
}

void gr_xwaiter_cancel(gr_xwaiter *xw) { gr_g_wake(&xw->g, GR_WAKE_CANCEL, 0); }
