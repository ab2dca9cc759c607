# Mirrors the csrc headers. Every function here is plain C: no GIL needed.
from libc.stdint cimport uint32_t, uint64_t, int32_t, int64_t


cdef extern from "g.h" nogil:
    ctypedef struct gr_m
    ctypedef struct gr_waiter:
        pass

    ctypedef struct gr_g:
        uint64_t id
        void *obj
        uint32_t wake_reason
        uint32_t park_reason
        gr_g *started_next

    enum:
        GR_WAIT_OK
        GR_WAIT_PARK
        GR_WAIT_CLOSED
        GR_WAIT_TIMEOUT
        GR_WAIT_CANCELLED
        GR_WAIT_NOMEM
        GR_WAIT_BUSY

    int64_t GR_DEADLINE_NEVER
    int64_t GR_DEADLINE_NOW

    bint gr_g_done(gr_g *g)
    bint gr_g_started(gr_g *g)
    bint gr_g_cancel_requested(gr_g *g)


cdef extern from "stats.h" nogil:
    ctypedef struct gr_pstats_snapshot:
        uint64_t spawned, finished, executed, stolen, from_global, steals_local, steals_remote
        uint64_t task_parks, mparks, gil_contended, backoffs, backoff_steals, runq_len


cdef extern from "lock.h" nogil:
    ctypedef struct gr_lock:
        pass
    void gr_lock_acquire(gr_lock *l)
    void gr_lock_release(gr_lock *l)
    int64_t gr_nanotime()


cdef extern from "sched.h" nogil:
    ctypedef struct gr_sched:
        int nprocs

    ctypedef struct gr_glist:
        gr_g *head
        uint32_t n

    ctypedef struct gr_m:
        int id
        gr_glist started
        void *obj

    enum:
        GR_NEXT_G
        GR_NEXT_NONE
        GR_NEXT_CLOSING
        GR_NEXT_EXIT
        GR_NEXT_DEADLOCK
        GR_NEXT_INTR
        GR_NEXT_BACKOFF
        GR_NEXT_TIMERS

    gr_sched *gr_sched_new(int nprocs)
    void gr_sched_free(gr_sched *s)
    void gr_sched_set_node(gr_sched *s, int p, int node)
    gr_m *gr_sched_m(gr_sched *s, int i)
    void gr_sched_wakep(gr_sched *s)
    void gr_m_bind(gr_m *m)
    gr_m *gr_m_current()
    uint32_t gr_fastrand()

    void gr_g_init(gr_m *m, gr_g *g, void *obj)
    void gr_spawn(gr_m *m, gr_g *g)
    void gr_spawn_on(gr_m *m, gr_m *target, gr_g *g)
    int gr_spawn_external(gr_sched *s, gr_g *g)
    void gr_g_start(gr_m *m, gr_g *g)
    void gr_m_track(gr_m *m, gr_g *g)
    void gr_ready(gr_g *g, int next)
    bint gr_g_wake(gr_g *g, uint32_t reason, int next)
    void gr_yield(gr_m *m, gr_g *g)
    void gr_g_parked(gr_m *m, gr_g *g)
    void gr_g_finish(gr_sched *s, gr_m *m, gr_g *g)
    int gr_sched_next(gr_m *m, gr_g **out)
    int gr_sched_wait(gr_m *m)
    void gr_sched_set_gil_policy(gr_sched *s, int64_t contended_ns)
    void gr_m_gil_waited(gr_m *m, int64_t waited_ns)
    void gr_sched_backoff(gr_m *m)
    ctypedef void (*gr_m_body)(gr_m *m, int rc, int64_t released) noexcept nogil
    int gr_m_thread_start(gr_m *m, gr_m_body body)
    void gr_m_thread_join(gr_m *m)
    void gr_sched_close(gr_sched *s)
    bint gr_sched_closing(gr_sched *s)
    void gr_sched_defer_deadlock(gr_sched *s, int64_t until)
    void gr_sched_external_add(gr_sched *s, int64_t delta)
    int64_t gr_sched_live(gr_sched *s)
    uint64_t gr_sched_spawned(gr_sched *s)
    gr_g *gr_sched_take_global(gr_sched *s)
    void gr_sched_pstats(gr_sched *s, int p, gr_pstats_snapshot *out)
    int gr_sched_nmidle(gr_sched *s)
    int gr_sched_nmspinning(gr_sched *s)
    uint64_t gr_sched_globalq_len(gr_sched *s)


cdef extern from "chan.h" nogil:
    ctypedef struct gr_chan:
        pass
    ctypedef struct gr_selcase:
        gr_chan *c
        void *elem
        uint32_t send
        uint32_t ok

    gr_chan *gr_chan_new(uint64_t cap)
    void gr_chan_free(gr_chan *c)
    void *gr_chan_take_buffered(gr_chan *c)
    uint64_t gr_chan_len(gr_chan *c)
    bint gr_chan_is_closed(gr_chan *c)
    int gr_chan_close(gr_chan *c)
    # Used directly only with GR_DEADLINE_NOW (a try that never parks): select's poll.
    int gr_chan_send(gr_chan *c, gr_g *self, void *elem, int64_t deadline)
    int gr_chan_recv(gr_chan *c, gr_g *self, void **elem, int64_t deadline)


cdef extern from "ctimer.h" nogil:
    ctypedef struct gr_ctimer:
        gr_chan *chan
        void *obj
    ctypedef struct gr_ctimers:
        pass

    enum:
        GR_CTIMER_NONE
        GR_CTIMER_SENT
        GR_CTIMER_DROPPED
        GR_CTIMER_FUNC
        GR_CTIMER_ACTIVE
        GR_CTIMER_KICK
        GR_CTIMER_ECLOSED
        GR_CTIMER_ENOMEM

    void gr_ctimers_init(gr_ctimers *h)
    void gr_ctimers_open(gr_ctimers *h)
    void gr_ctimers_close(gr_ctimers *h)
    gr_ctimer *gr_ctimers_drop(gr_ctimers *h)
    int gr_ctimers_fire(gr_ctimers *h, int64_t now, void *elem, gr_ctimer **func)
    int64_t gr_ctimers_earliest(gr_ctimers *h)
    void gr_ctimer_init(gr_ctimer *t, gr_chan *chan, void *obj)
    int gr_ctimer_reset(gr_ctimers *h, gr_ctimer *t, int64_t when, int64_t period, void **stale)
    int gr_ctimer_stop(gr_ctimers *h, gr_ctimer *t, void **stale)
    int gr_ctimer_block(gr_ctimers *h, gr_ctimer *t)
    void gr_ctimer_unblock(gr_ctimers *h, gr_ctimer *t)
    int gr_ctimer_run(gr_ctimers *h, gr_ctimer *t, int64_t now, void *elem)
    void gr_ctimer_forget(gr_ctimers *h, gr_ctimer *t)
    int64_t gr_ctimer_when(gr_ctimer *t)
    void gr_sched_set_ctimers(gr_sched *s, gr_ctimers *h)  # sched.h


cdef extern from "sync.h" nogil:
    ctypedef struct gr_sema:
        pass
    ctypedef struct gr_latch:
        pass
    ctypedef struct gr_rwmutex:
        pass

    enum:
        GR_LATCH_OK
        GR_LATCH_NEGATIVE
        GR_LATCH_OVERFLOW

    void gr_sema_init(gr_sema *s, int64_t n, int64_t max)
    int gr_sema_acquire(gr_sema *s, gr_g *self, int64_t deadline)
    int gr_sema_release(gr_sema *s)
    int64_t gr_sema_available(gr_sema *s)
    void gr_latch_init(gr_latch *l, int64_t count)
    int gr_latch_add(gr_latch *l, int64_t delta)
    void gr_latch_reset(gr_latch *l)
    int64_t gr_latch_count(gr_latch *l)
    void gr_rwmutex_init(gr_rwmutex *rw)
    int gr_rwmutex_rlock(gr_rwmutex *rw, gr_g *self, int64_t deadline)
    int gr_rwmutex_lock(gr_rwmutex *rw, gr_g *self, int64_t deadline)
    int gr_rwmutex_runlock(gr_rwmutex *rw)
    int gr_rwmutex_unlock(gr_rwmutex *rw)


cdef extern from "wait.h" nogil:
    bint gr_g_cancel(gr_g *g)
    bint gr_g_interrupt(gr_g *g)
    void gr_g_interrupt_clear(gr_g *self)


cdef extern from "scope.h" nogil:
    ctypedef struct gr_scope:
        pass
    void gr_scope_init(gr_scope *s, int64_t deadline, uint32_t shield)
    void gr_scope_cancel(gr_scope *s)
    bint gr_scope_cancelled(gr_scope *s)
    void gr_scope_set_deadline(gr_scope *s, int64_t deadline)
    int64_t gr_scope_deadline(gr_scope *s)
    void gr_scope_set_shield(gr_scope *s, uint32_t shield)
    bint gr_scope_shielded(gr_scope *s)
    bint gr_g_interrupted(gr_g *g)


cdef extern from "netpoll.h" nogil:
    ctypedef struct gr_netpoll:
        uint32_t gen
    ctypedef struct gr_pollfd:
        pass

    void gr_netpoll_init(gr_netpoll *np)
    void gr_netpoll_after_fork(gr_netpoll *np)
    gr_pollfd *gr_netpoll_open(gr_netpoll *np, int fd, uint32_t *seq, int *err)
    bint gr_netpoll_close_fd(gr_netpoll *np, int fd)
    bint gr_netpoll_close(gr_netpoll *np, gr_pollfd *pd, uint32_t seq)
    bint gr_pollfd_hup(gr_pollfd *pd)
    uint32_t gr_pollfd_redges(gr_pollfd *pd)
    int64_t gr_netpoll_nwait(gr_netpoll *np)
    uint64_t gr_netpoll_npolls(gr_netpoll *np)
    uint64_t gr_netpoll_nblocks(gr_netpoll *np)
    void gr_sched_set_netpoll(gr_sched *s, gr_netpoll *np)  # sched.h


cdef extern from "xwait.h" nogil:
    ctypedef struct gr_xwaiter:
        gr_g g

    enum:
        GR_XWAIT_READY
        GR_XWAIT_INTR

    gr_xwaiter *gr_xwaiter_new(void *obj)
    void gr_xwaiter_free(gr_xwaiter *xw)
    void gr_xwaiter_prepare(gr_xwaiter *xw)
    int gr_xwaiter_park(gr_xwaiter *xw, int64_t deadline)
    void gr_xwaiter_cancel(gr_xwaiter *xw)


cdef extern from "waitop.h" nogil:
    enum:
        GR_OP_SLEEP
        GR_OP_JOIN
        GR_OP_SEMA
        GR_OP_LATCH
        GR_OP_RLOCK
        GR_OP_LOCK
        GR_OP_SEND
        GR_OP_RECV
        GR_OP_SELECT
        GR_OP_FDREAD
        GR_OP_FDWRITE

    enum:
        GR_SHIELD_NONE
        GR_SHIELD_REPORT
        GR_SHIELD_QUIET

    ctypedef struct gr_waitop:
        uint32_t kind
        uint32_t shield
        void *obj
        void *elem
        uint32_t ncases
        const uint32_t *pollorder
        gr_waiter *ws
        int32_t fired
        gr_ctimers *ctimers
        gr_ctimer **timers
        uint32_t ntimers
        uint32_t seq
        gr_netpoll *netpoll

    int gr_waitop_begin(gr_waitop *op, gr_g *self, int64_t deadline)
    int gr_waitop_end(gr_waitop *op, gr_g *self)


cdef extern from "asan.h" nogil:
    void gr_asan_after_switch()


cdef extern from "greenlet/greenlet.h":
    ctypedef class greenlet.greenlet [object PyGreenlet]:
        pass

    greenlet PyGreenlet_GetCurrent()
    object PyGreenlet_Switch(greenlet g, void *args, void *kwargs)
    greenlet PyGreenlet_New(object run, greenlet parent)
    void PyGreenlet_Import()


cdef extern from "topology.h" nogil:
    enum:
        GR_MAX_CPUS
        GR_MAX_NODES
        GR_TOPO_EMALFORMED
        GR_TOPO_EINVAL
    ctypedef struct gr_cpuset:
        pass
    ctypedef struct gr_topology:
        int nnodes
        int node_ids[64]
        gr_cpuset node_cpus[64]
        char bad_path[4096]
    ctypedef enum gr_affinity:
        GR_AFFINITY_NONE
        GR_AFFINITY_CPU
        GR_AFFINITY_NODE

    bint gr_cpuset_has(const gr_cpuset *s, int cpu)
    void gr_cpuset_zero(gr_cpuset *s)
    void gr_cpuset_add(gr_cpuset *s, int cpu)
    int gr_topology_read(const char *sysfs_root, gr_topology *out)
    void gr_topology_restrict(gr_topology *t, const gr_cpuset *allowed)
    int gr_topology_allowed(gr_cpuset *out)
    int gr_topology_place(const gr_topology *t, gr_affinity policy, int p, gr_cpuset *cpus_out,
                          int *node_out)
    int gr_topo_pin_self(const gr_cpuset *cpus)
