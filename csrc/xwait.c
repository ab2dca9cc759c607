#include "xwait.h"

#include <stdlib.h>
#include <string.h>

#include "park.h"

gr_xwaiter *gr_xwaiter_new(void *obj)
{
    /* 64-byte aligned: the P's inbox is _Alignas(64). */
    gr_xwaiter *xw;
    if (posix_memalign((void **)&xw, 64, sizeof *xw) != 0)
        return NULL;
    memset(xw, 0, sizeof *xw);
    atomic_init(&xw->m.park.state, GR_PARK_EMPTY);
    atomic_init(&xw->p.inbox, NULL);
    xw->m.id = -1;
    xw->m.p = &xw->p;
    xw->p.id = -1;
    xw->g.obj = obj;
    xw->g.timer_idx = -1;
    atomic_store_explicit(&xw->g.m, &xw->m, memory_order_relaxed);
    return xw;
}

void gr_xwaiter_free(gr_xwaiter *xw) { free(xw); }

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
