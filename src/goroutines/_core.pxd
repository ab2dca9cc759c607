# The runtime's classes and park helpers, shared with the other extension modules.
from libc.stdint cimport int64_t, uint64_t

from goroutines._csched cimport gr_g, gr_m, gr_sched, gr_scope, gr_waitop, greenlet


cdef class Task


cdef class CancelScope:
    cdef gr_scope s             # what other threads may change (scope.h)
    cdef CancelScope parent     # the owner's enclosing scope while open
    cdef Task owner             # the task that entered it, until the block ends
    cdef int state
    cdef bint raises            # timeout(): TimeoutError when its deadline cut the block short
    cdef readonly bint cancelled_caught
    cdef object _done           # the Chan closed on cancellation, once asked for
    cdef object _done_timer     # the Timer that cancels at the deadline, for _done's sake
    cdef object __weakref__

    cdef int expire(self) except -1
    cdef int interrupt_owner(self) except -1


cdef class Task:
    cdef gr_g g
    cdef object fn
    cdef tuple args
    cdef dict kwargs
    cdef object ctx            # the contextvars.Context it runs in, until it finishes
    cdef CancelScope scope     # its innermost open cancel scope, or None
    cdef object _result
    cdef object _exc
    cdef greenlet glet         # its worker greenlet once it has parked, until it finishes
    cdef bint retrieved
    cdef str _name             # set at finish only when needed (a failure to report)
    cdef int64_t abandon_at    # shutdown: when it is abandoned if still running (0: unset)
    cdef object spawn_code     # the code object that called go() (its line: _observe.pxi)
    cdef int spawn_lasti
    cdef object callbacks      # done hooks (_api.pxi): None, one, or a list; fired by _finish
    cdef object done_ch        # the Chan of done_chan, made on first use
    cdef dict locals           # gr.local() -> its attribute dict for this task (_api.pxi)

    cdef void untrack(self) noexcept
    cdef _require_done(self, str what)
    cdef _outcome(self)


cdef class Runtime:
    cdef gr_sched *s
    cdef int nprocs
    cdef list ms
    cdef Task main
    cdef object outcome       # an exception run() raises instead of main's outcome
    cdef object lock
    cdef set m_idents         # thread ids of the Ms that have entered Python
    cdef bint deadlock_armed  # a deadlock verdict found no outside thread (on_deadlock)
    cdef uint64_t deadlock_ran  # ... when this many tasks had run
    cdef object obs           # the run's helper threads and dump signal (_observe.pxi)

    cdef void abort(self, exc) noexcept
    cdef void on_deadlock(self) noexcept
    cdef uint64_t executed(self) noexcept
    cdef void deadlock(self) noexcept


cdef class M:
    cdef gr_m *cm
    cdef Runtime rt
    cdef greenlet root        # where the M's last worker returns when the M exits
    cdef list pool            # idle worker greenlets
    cdef Task cur             # the task running on this M
    cdef Task handoff         # the never-run task passed to a pooled worker, or None: exit
    cdef object cpus          # CPUs to pin the M's thread to, or None
    cdef unsigned long ident  # its thread's id once it has entered Python, else 0
    cdef bint want_worker     # set before switching to root: start a worker for handoff
    cdef greenlet target      # the greenlet being switched to; cleared by whoever resumes

    cdef Task pick(self)
    cdef void cancel_started(self) noexcept
    cdef loop(self)
    cdef int switch_away(self, Task me) except -1
    cdef int go_to_target(self) except -1


# What a task is parked on (gr_g.park_reason), named in reprs and deadlock reports.
cdef enum:
    PARK_NONE, PARK_JOIN, PARK_SLEEP, PARK_CHAN_SEND, PARK_CHAN_RECV
    PARK_SELECT, PARK_MUTEX, PARK_SEMAPHORE, PARK_WAITGROUP, PARK_EVENT
    PARK_RWMUTEX_READ, PARK_RWMUTEX_WRITE, PARK_BLOCKING, PARK_FD_READ, PARK_FD_WRITE
    PARK_FUTURE


cdef M _curm()
cdef M _running(str what)
cdef int _park(M m, Task t, int reason) except -1
cdef int _wait(M m, Task t, gr_waitop *op, int64_t deadline, int reason) except -1
cdef int _check_cancel(M m, Task t, bint scopes=*) except -1
cdef int64_t _deadline(object seconds, str what) except -2
cdef Task _new_task(Runtime rt, M m, object fn, tuple args, dict kwargs, object ctx)
