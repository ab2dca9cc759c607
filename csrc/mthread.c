/*
 * mthread.c: the OS thread of an M other than M0, started without Python.
 *
 * On a GIL build a thread's first step into Python takes the GIL; while another M runs
 * Python that waits out a whole switch interval and then forces a switch on it, and on a
 * loaded machine the forced M may stall for milliseconds until both threads get a CPU
 * again. So an M's thread first waits in C (gr_sched_wait: spin, park, the steal grace)
 * and enters Python only once there is work for it, or a deadlock to report. A run
 * whose work never leaves M0 then pays nothing for the other Ms but a parked thread.
 */
#define _GNU_SOURCE
#include "sched.h"
#include "trace.h"

#include <errno.h>

static void *m_thread(void *arg)
{
    gr_m *m = arg;
    gr_trace_bind(m->id); /* its events before it enters Python are M m's too */
    for (;;) {
        int rc = gr_sched_wait(m);
        if (rc == GR_NEXT_INTR)
            continue;
        /* Shutdown before this M ever ran Python: it owns no task and nothing queued
         * (only its own spawns reach its ring), so it ends without entering Python. */
        if (rc == GR_NEXT_NONE && gr_sched_closing(m->sched) && gr_gqueue_empty(&m->p->readyq) &&
            !atomic_load(&m->p->inbox) && gr_runq_len(&m->p->runq) == 0)
            return NULL;
        m->body(m, rc, gr_nanotime());
        return NULL;
    }
}

int gr_m_thread_start(gr_m *m, gr_m_body body)
{
    m->body = body;
    int err = pthread_create(&m->thread, NULL, m_thread, m);
    m->has_thread = err == 0;
    return err;
}

void gr_m_thread_join(gr_m *m)
{
    if (m->has_thread) {
        pthread_join(m->thread, NULL);
        m->has_thread = 0;
    }
}
