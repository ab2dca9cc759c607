#include "wait.h"

#include "sched.h"
#include "waitq.h"

static gr_m *owner(gr_g *g) { return atomic_load_explicit(&g->m, memory_order_relaxed); }

int gr_wait_arm(gr_g *self, int64_t deadline)
{
    if (deadline > 0) {
        gr_m *m = owner(self);
        if (gr_timerheap_add(&m->p->timers, self, deadline) != 0)
            return GR_WAIT_NOMEM;
        /* Read by the deadlock check in park_idle, which this M can only reach after
         * taking the idle lock: the lock orders this count before that read. */
        atomic_fetch_add(&m->sched->ntimers, 1);
    }
    gr_g_prepare_wait(self);
    return GR_WAIT_PARK;
}

int gr_wait_end(gr_g *self, int completed)
{
    gr_m *m = owner(self);
    if (gr_timerheap_del(&m->p->timers, self))
        atomic_fetch_sub(&m->sched->ntimers, 1); /* see gr_wait_arm */
    if (completed >= 0)
        return completed;
    return self->wake_reason == GR_WAKE_TIMEOUT ? GR_WAIT_TIMEOUT : GR_WAIT_CANCELLED;
}

/* ---- sleep -------------------------------------------------------------------------- */

int gr_sleep_begin(gr_g *self, int64_t deadline)
{
    if (deadline == GR_DEADLINE_NOW)
        return GR_WAIT_OK;
    return gr_wait_arm(self, deadline);
}

int gr_sleep_end(gr_g *self)
{
    return gr_wait_end(self, -1) == GR_WAIT_TIMEOUT ? GR_WAIT_OK : GR_WAIT_CANCELLED;
}

/* ---- join --------------------------------------------------------------------------- */

int gr_g_join_begin(gr_g *target, gr_g *self, int64_t deadline)
{
    int rc = GR_WAIT_OK;
    gr_lock_acquire(&target->lock);
    if (!gr_g_done(target)) {
        rc = deadline == GR_DEADLINE_NOW ? GR_WAIT_TIMEOUT : gr_wait_arm(self, deadline);
        if (rc == GR_WAIT_PARK) {
            self->waiter.g = self;
            gr_waitq_push(&target->joiners, &self->waiter);
        }
    }
    gr_lock_release(&target->lock);
    return rc;
}

int gr_g_join_end(gr_g *target, gr_g *self)
{
    gr_lock_acquire(&target->lock);
    gr_waitq_remove(&target->joiners, &self->waiter);
    gr_lock_release(&target->lock);
    /* A target that finished as the timer or a cancel fired still counts as joined. */
    return gr_wait_end(self, gr_g_done(target) ? GR_WAIT_OK : -1);
}

/* ---- cancel ------------------------------------------------------------------------- */

/* Set flag on g and wake it if it is parked. seq_cst and a full fence before the claim
 * reads `waiting`: pairs with the seq_cst store of `waiting` in gr_g_prepare_wait and the
 * load of the flags after it in gr_waitop_begin. Either this claim sees the G waiting, or
 * the G sees the flag and wakes itself: a cancel or interrupt that lands as the G parks is
 * never lost. */
static int flag_and_wake(gr_g *g, uint32_t flag)
{
    if (gr_g_done(g))
        return 0;
    atomic_fetch_or_explicit(&g->flags, flag, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    gr_g_wake(g, GR_WAKE_CANCEL, 0);
    return 1;
}

int gr_g_cancel(gr_g *g) { return flag_and_wake(g, GR_G_FLAG_CANCEL); }

/* The interrupter wrote the scope state before this, and the G clears the flag
 * (gr_g_interrupt_clear) before it reads that state: either the G reads the new state, or
 * the flag is set after its clear and its wait ends at once. */
int gr_g_interrupt(gr_g *g) { return flag_and_wake(g, GR_G_FLAG_INTERRUPT); }

void gr_g_interrupt_clear(gr_g *self)
{
    /* seq_cst: pairs with gr_g_interrupt's fetch_or (see there). */
    atomic_fetch_and_explicit(&self->flags, ~GR_G_FLAG_INTERRUPT, memory_order_seq_cst);
}
