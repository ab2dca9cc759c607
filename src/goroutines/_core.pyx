# cython: language_level=3, freethreading_compatible=True
# cython: boundscheck=False, wraparound=False, initializedcheck=False
# cython: annotation_typing=False
# (Annotations are for readers and the stubs: with typing on, `def go(...) -> Task` gives
# the C wrapper a Task * return type, and CPython calls it through a pointer to a function
# returning PyObject *, which is undefined behaviour that -fsanitize=function reports.)
"""The runtime: tasks, the Ms' worker greenlets, run() and go(), and (included below)
channels and sync, the offload pool, waits on file descriptors and the topology.

This is the one extension module of goroutines: csrc is linked once, into it, so there is
exactly one copy of the scheduler's state (the thread-local current M among it) in the
process. The other parts are included as .pxi files, as uvloop does.

Cross-thread state (queues, parking, timers, counters) lives in csrc; this module owns
the Python objects and the greenlet switches. Each M runs a small set of long-lived worker
greenlets. Exactly one of them runs the scheduling loop at a time: it takes a task that
has never run and calls it inline, on its own stack, so a task that finishes without
parking costs neither a greenlet nor a switch. When a task parks, the greenlet it runs on
stays with it, and the scheduling continues on a pooled worker (or directly in the greenlet
of the next started task). docs/design.md tells the whole story.
"""
import atexit
import contextvars
import decimal
import functools
import inspect
import logging
import numbers
import os
import sys
import sysconfig
import threading
import traceback
import types

cimport cython
from cpython.ref cimport Py_INCREF, Py_DECREF, Py_XDECREF
from cpython.exc cimport PyErr_CheckSignals
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint32_t, uint64_t, uintptr_t
from libc.math cimport isnan
from libc.string cimport memset

from goroutines._csched cimport *

PyGreenlet_Import()

if sysconfig.get_config_var("Py_GIL_DISABLED"):
    # When a thread that ran greenlets ends, greenlet tears down its state on the main
    # thread and, if the thread's main greenlet still has one reference too many, looks
    # for it with gc.get_referrers (an "optional cleanup" of a leak). On free-threaded
    # 3.13 that search crashed when an M thread ended while runs ended and started beside
    # it (test_executor: 7 runs in 12 of one script, 0 in 16 with the cleanup off). The
    # Ms let go of their greenlets before they end (M.thread_main), so it has nothing to
    # clean up for us; greenlet's own docs offer this switch for its cost.
    from greenlet import enable_optional_cleanup
    enable_optional_cleanup(False)

cdef extern from "greenlet/greenlet.h":
    # The same call with a borrowed pointer and a raw result: see M.go_to_target.
    PyObject *_switch_borrowed "PyGreenlet_Switch"(void *g, void *args, void *kwargs)

cdef extern from *:
    """
    /* On a free-threaded build, the critical sections a thread holds (list(it) holds its
       list's, for one) are a chain of records on its C stack, headed by
       tstate->critical_section. A greenlet switch swaps C stacks, and greenlet before 3.5
       leaves the chain alone: the next greenlet would push onto records that are no
       longer there, and keep the suspended one's object locks held. So every switch
       releases the chain as a thread detach does, and the resumed greenlet takes its own
       back (CPython exports these two for PyEval_SaveThread/RestoreThread's sake). */
    #ifdef Py_GIL_DISABLED
    PyAPI_FUNC(void) _PyCriticalSection_SuspendAll(PyThreadState *tstate);
    PyAPI_FUNC(void) _PyCriticalSection_Resume(PyThreadState *tstate);

    static inline uintptr_t gr_cs_suspend(void)
    {
        PyThreadState *ts = PyThreadState_GET();
        uintptr_t chain = ts->critical_section;
        if (chain != 0) {
            _PyCriticalSection_SuspendAll(ts);
            chain = ts->critical_section;  /* now tagged inactive */
            ts->critical_section = 0;
        }
        return chain;
    }

    static inline void gr_cs_resume(uintptr_t chain)
    {
        if (chain != 0) {
            PyThreadState *ts = PyThreadState_GET();
            ts->critical_section = chain;
            _PyCriticalSection_Resume(ts);
        }
    }
    #else
    #define gr_cs_suspend() ((uintptr_t)0)
    #define gr_cs_resume(chain) ((void)(chain))
    #endif
    """
    uintptr_t gr_cs_suspend() noexcept
    void gr_cs_resume(uintptr_t chain) noexcept

cdef extern from *:
    """
    #include <sched.h>
    #include <stdatomic.h>

    /* A wake-up from a thread that is not an M (an offload thread whose call returned, a
       plain thread setting an Event or cancelling a task) ends in the woken G's M, which
       it unparks after the G is already in that M's inbox. Meanwhile the M may run the G,
       and the run end and free the scheduler: the waker would then unpark freed memory.
       On a GIL build the waker holds the GIL throughout, so the run cannot end meanwhile;
       without the GIL, such wakes are counted, and a scheduler is freed only once none
       is in flight. An M needs no count: run() joins every M before the free. */
    static _Atomic(long) gr_foreign_wakes;

    static inline int gr_wake_begin(void)
    {
        if (gr_m_current() != NULL)
            return 0;
        atomic_fetch_add(&gr_foreign_wakes, 1);
        return 1;
    }

    static inline void gr_wake_end(int counted)
    {
        if (counted)
            atomic_fetch_sub(&gr_foreign_wakes, 1);
    }

    /* Called with the scheduler unreachable: a wake that begins later finds none of its
       Gs waiting. Wakes are short C calls, so this hardly ever waits. */
    static inline void gr_wakes_quiesce(void)
    {
        while (atomic_load(&gr_foreign_wakes) != 0)
            sched_yield();
    }
    """
    int gr_wake_begin() noexcept nogil
    void gr_wake_end(int counted) noexcept nogil
    void gr_wakes_quiesce() noexcept nogil

cdef extern from "Python.h":
    int PyThreadState_SetAsyncExc(unsigned long id, object exc)
    void PyObject_GC_Track(PyObject *op)
    void PyObject_GC_UnTrack(PyObject *op)
    bint PyObject_GC_IsTracked(object op)
    ctypedef struct PyCodeObject:
        int co_flags
    ctypedef struct PyFunctionObject:
        PyObject *func_code
        PyObject *func_dict
    bint PyFunction_Check(object op)
    bint PyCFunction_Check(object op)
    bint PyMethod_Check(object op)
    PyObject *PyMethod_GET_FUNCTION(object op)
    object PyContext_CopyCurrent()
    int PyContext_Enter(object ctx) except -1
    int PyContext_Exit(object ctx) except -1
    # The fields greenlet itself swaps on every switch (cpython/pystate.h, 3.10-3.14).
    ctypedef struct _TsContext "PyThreadState":
        PyObject *context
        uint64_t context_ver
    _TsContext *_tstate "PyThreadState_Get"()

# Idle worker greenlets an M keeps; past this, a worker that would go idle ends instead.
# Each holds a stack copy and, on 3.11+, an interpreter data-stack chunk.
cdef Py_ssize_t _POOL_MAX = 64
cdef int _MAX_PROCS = 1024
# While a thread outside the runtime is alive, a deadlock is checked again this often.
cdef int64_t _DEADLOCK_RECHECK_NS = 50_000_000
# Sleeps longer than this never wake (no timer is armed): ~146 years.
cdef double _FOREVER_S = 4.6e9
cdef int _CO_COROUTINE = inspect.CO_COROUTINE
# Shutdown cancels every task; a task that still reaches a park point this long after its
# first Cancelled there catches Cancelled and carries on, and would keep run() from ever
# returning. It is abandoned instead (see _abandon). One second is far longer than any
# cleanup should take, and short enough for a program that is exiting.
cdef int64_t _SHUTDOWN_GRACE_NS = 1_000_000_000

_log = logging.getLogger("goroutines")
# The greenlets of abandoned tasks, kept forever: freeing a suspended greenlet resumes it
# (greenlet throws GreenletExit into it), and these must never run again.
_abandoned = []


class Cancelled(BaseException):
    """Raised inside a task at its park point when it is cancelled.

    It derives from BaseException, as asyncio.CancelledError does, so that a bare
    ``except Exception`` in user code does not swallow it.
    """


class Deadlock(RuntimeError):
    """Raised by run() when every task is asleep and nothing can wake any of them."""


cdef Runtime _rt = None
# Guards _rt: without the GIL, a thread that read the pointer could lose the object to
# run()'s end before its incref. Held only to copy the reference (_current_rt, _set_rt).
cdef gr_lock _rt_lock
# The channel and function timers (ctimer.h): one heap for the process, opened and closed
# by each run, so that a timer's record can outlive the run that armed it.
cdef gr_ctimers _ctimers
gr_ctimers_init(&_ctimers)
_PARK_REASONS = ("", "join", "sleep", "chan send", "chan receive", "select", "mutex",
                 "semaphore", "waitgroup", "event", "rwmutex read", "rwmutex write",
                 "blocking call", "fd read", "fd write", "future")
_run_lock = threading.Lock()
# Set in a child process forked while run() was running (see _after_fork_in_child).
cdef bint _forked = False
_FORKED = ("goroutines cannot be used in a process forked while goroutines.run() was running: "
           "its other threads and their tasks did not survive the fork. Call os._exit() or "
           "exec in the child, or use multiprocessing's 'spawn' or 'forkserver' start method")


@cython.final
cdef class Task:
    """A lightweight task started by go().

    Example::

        t = gr.go(pow, 2, 10)
        assert t.join() == 1024
    """

    __class_getitem__ = classmethod(types.GenericAlias)  # Task[int] in annotations

    def __init__(self, *args, **kwargs):
        raise TypeError("Task objects are created by goroutines.go()")

    @property
    def name(self) -> str:
        """The name given to go(name=...), else the qualified name of the task's function
        (while it is known)."""
        with cython.critical_section(self):  # the task's M clears fn when it finishes
            fn = self.fn
        if self._name is None and fn is not None:
            return _fn_name(fn)
        return self._name or "?"

    @property
    def id(self) -> int:
        """A unique, positive task id."""
        return self.g.id

    def done(self) -> bool:
        """True once the task has finished, by returning, raising or being cancelled."""
        return gr_g_done(&self.g)

    def cancelled(self) -> bool:
        """True if the task finished because it was cancelled."""
        return gr_g_done(&self.g) and isinstance(self._exc, Cancelled)

    def result(self):
        """The task's return value; re-raises its exception. The task must be done."""
        self._require_done("result")
        return self._outcome()

    def exception(self):
        """The task's exception, or None. Raises Cancelled if it was cancelled."""
        self._require_done("exception")
        self.retrieved = True
        if isinstance(self._exc, Cancelled):
            raise self._exc
        return self._exc

    def cancel(self) -> bool:
        """Ask the task to stop: Cancelled is raised at its next park point (or at once if
        it is parked), and again at every park point after that: a cancelled task stays
        cancelled. A task that never ran is dropped without running. Returns False if it
        had already finished. Safe from any thread."""
        cdef int w = gr_wake_begin()
        cdef bint cancelled = gr_g_cancel(&self.g)
        gr_wake_end(w)
        return cancelled

    def join(self, timeout=None):
        """Wait for the task and return its result, or re-raise its exception.

        Raises TimeoutError if ``timeout`` seconds pass first. A timeout does not cancel
        the task: it keeps running, and can be joined again (or cancelled). Only a task
        may wait; a finished task can be joined from anywhere.

        Example::

            try:
                value = t.join(timeout=1.0)
            except TimeoutError:
                t.cancel()
        """
        if gr_g_done(&self.g):
            return self._outcome()
        cdef int64_t deadline = _deadline(timeout, "timeout")
        cdef M m = _curm()
        if m is None or m.cur is None:
            raise RuntimeError("join() of an unfinished task must be called from a task")
        cdef Task me = m.cur
        if me is self:
            raise RuntimeError("a task cannot join itself")
        cdef gr_waitop op
        _op(&op, GR_OP_JOIN, &self.g)
        if _wait(m, me, &op, deadline, PARK_JOIN) == GR_WAIT_TIMEOUT:
            raise TimeoutError(f"task {self.g.id} did not finish in time")
        return self._outcome()

    @property
    def done_chan(self) -> Chan:
        """A channel closed when the task finishes, so that select can wait for a task
        beside channels. Made on first use; the same channel every time.

        Example::

            i, _, _ = gr.select(gr.Recv(t.done_chan), gr.Recv(quit))
        """
        return _done_chan(self)

    def add_done_callback(self, fn) -> None:
        """Call ``fn(task)`` once the task is done (returned, raised or was cancelled).

        The call is made inside the runtime, never on a foreign thread: on the M that ran
        the task, right after it finished and outside any task, as a concurrent.futures
        callback runs in the thread that completes the future. So ``fn`` must not wait
        (it may start tasks, set Events, close channels, ``try_send``). If the task is
        already done, ``fn`` is called at once when the caller is a task, or else started
        as a new task. An exception from ``fn`` is logged on the "goroutines" logger.

        Example::

            t.add_done_callback(lambda done: print("finished", done.id))
        """
        _add_done_callback(self, fn)

    def remove_done_callback(self, fn) -> int:
        """Remove every pending ``fn`` added by add_done_callback; returns how many.

        Example::

            t.remove_done_callback(report)
        """
        return _remove_hook(self, fn)

    def __repr__(self):
        cdef uint32_t st = gr_g_state_of(&self.g)
        cdef uint32_t reason = self.g.park_reason
        if st == GR_G_WAITING:
            state = "parked on " + _PARK_REASONS[reason] if 0 < reason < len(_PARK_REASONS) else "parked"
        elif st == GR_G_RUNNING:
            state = "running"
        elif st != GR_G_DONE:
            state = "runnable" if gr_g_started(&self.g) else "pending"  # pending: never ran
        elif isinstance(self._exc, Cancelled):
            state = "cancelled"
        elif self._exc is not None:
            state = f"failed: {self._exc!r}"
        else:
            state = "done"
        return f"<Task {self.g.id} {self.name} {state}>"

    cdef void untrack(self) noexcept:
        PyObject_GC_UnTrack(<PyObject *>self)

    def __del__(self):
        if self._exc is None or self.retrieved:
            return
        # A finalizer must not raise. At interpreter exit the module's globals may already
        # be cleared (Cancelled is None then: a free-threaded build frees tasks that late).
        try:
            if not isinstance(self._exc, Cancelled):
                _log.error("exception in goroutines task %d (%s) was never retrieved",
                           self.g.id, self.name,
                           exc_info=(type(self._exc), self._exc, self._exc.__traceback__))
        except BaseException:
            pass

    cdef _require_done(self, str what):
        if not gr_g_done(&self.g):
            raise RuntimeError(f"{what}() of task {self.g.id}, which has not finished")

    cdef _outcome(self):
        if self._exc is not None:
            self.retrieved = True
            raise self._exc
        return self._result


@cython.final
cdef class M:
    """One OS thread of the runtime, bound to one P."""

    cdef Task pick(self):
        """The next task for this M, or None when the M must exit."""
        cdef gr_g *g = NULL
        cdef int rc
        cdef int64_t released
        while True:
            rc = gr_sched_next(self.cm, &g)
            if rc == GR_NEXT_NONE or rc == GR_NEXT_BACKOFF:
                # A signal whose handler ran since the last bytecode would not interrupt
                # the wait: run the Python handlers first, as a GR_NEXT_INTR does.
                try:
                    PyErr_CheckSignals()
                except BaseException as e:
                    self.rt.abort(e)
                    continue  # the abort closes the scheduler: look again
                # Only waiting lets go of the GIL (see sched.h); how long taking it back
                # took tells whether another M is running Python (GIL-aware stealing).
                with nogil:
                    if rc == GR_NEXT_BACKOFF:
                        gr_sched_backoff(self.cm)
                        rc = GR_NEXT_NONE
                    else:
                        rc = gr_sched_wait(self.cm)
                    released = gr_nanotime()
                gr_m_gil_waited(self.cm, gr_nanotime() - released)
            if rc == GR_NEXT_G:
                return <Task>g.obj
            if rc == GR_NEXT_EXIT:
                return None
            if rc == GR_NEXT_CLOSING:
                self.cancel_started()
            elif rc == GR_NEXT_TIMERS:
                try:
                    _fire_timers(self)
                except BaseException as e:
                    self.rt.abort(e)
            elif rc == GR_NEXT_DEADLOCK:
                self.rt.on_deadlock()
            elif rc == GR_NEXT_INTR:
                try:
                    PyErr_CheckSignals()
                except BaseException as e:
                    self.rt.abort(e)

    cdef void cancel_started(self) noexcept:
        cdef gr_g *g = self.cm.started.head
        while g != NULL:
            gr_g_cancel(g)
            g = g.started_next

    cdef loop(self):
        """The scheduling loop, run by whichever worker greenlet holds the M."""
        cdef Task t = self.handoff
        self.handoff = None
        while True:
            if t is not None:
                _run_new(self, t)
            t = self.pick()
            if t is None:
                return
            if t.glet is not None:
                if len(self.pool) >= _POOL_MAX:
                    # Pool full: this worker ends here, and greenlet resumes its parent.
                    PyGreenlet_GetCurrent().parent = t.glet
                    return
                self.pool.append(PyGreenlet_GetCurrent())
                self.target = t.glet
                self.go_to_target()
                t = self.handoff
                self.handoff = None
                if t is None:
                    return

    cdef int switch_away(self, Task me) except -1:
        """Run something else until `me` is scheduled again (called in me's greenlet).
        me is None when the greenlet is an abandoned task's: it is never resumed."""
        cdef Task nt
        while True:
            nt = self.pick()
            if nt is None:
                if me is not None:
                    raise SystemError("goroutines: an M tried to exit with a parked task")
                self.target = self.root  # the M is done: its root retires the pool and ends
                return self.go_to_target()
            if nt is me:
                return 0
            if nt.glet is not None:
                self.target = nt.glet
            else:
                self.handoff = nt
                if self.pool:
                    self.target = self.pool.pop()
                else:
                    # A new greenlet inherits the recursion depth of the greenlet that
                    # first switches into it, so chains of parked tasks would add up to a
                    # RecursionError: let the shallow root greenlet start it.
                    self.want_worker = True
                    self.target = self.root
            return self.go_to_target()

    cdef int go_to_target(self) except -1:
        """Switch to self.target, holding no reference to it while we are suspended.

        A suspended greenlet that kept the greenlet it switched to would keep it alive
        after it died, and a dead greenlet keeps its parent: with workers that end into
        the task they resume, that grew into one chain of dead greenlets per cancelled
        task, freed recursively (a C stack overflow at 50k tasks).

        Every switch of the runtime goes through here, so this is where a greenlet's
        critical sections (free-threaded builds) are let go and taken back."""
        cdef uintptr_t cs = gr_cs_suspend()
        cdef PyObject *r = _switch_borrowed(<PyObject *>self.target, NULL, NULL)
        gr_asan_after_switch()
        gr_cs_resume(cs)
        if r == NULL:
            return -1
        Py_DECREF(<object>r)
        self.target = None  # we are running again: whoever switched here is done with it
        return 0

    def thread_main(self):
        """Body of the M's OS thread (and of run() on the calling thread for M0)."""
        gr_m_bind(self.cm)
        self.ident = threading.get_ident()
        self.rt.m_idents.add(self.ident)
        try:
            if self.cpus is not None:
                pin_self(self.cpus)
            self.root = PyGreenlet_GetCurrent()
            self.handoff = None
            self.want_worker = True
            # The root starts every worker greenlet; it is resumed either to start one more
            # (want_worker) or because the M's last worker returned: the M is done.
            while self.want_worker:
                self.want_worker = False
                self.target = PyGreenlet_New(_worker_entry, self.root)
                self.go_to_target()
            # Every task of this M has finished: retire the pooled workers before the
            # thread ends (greenlets left behind on a dead thread are never cleaned up).
            while self.pool:
                self.target = self.pool.pop()
                self.handoff = None
                self.go_to_target()
        except BaseException as e:
            self.rt.abort(e)
        finally:
            # Hold nothing of this thread's greenlets once it ends: greenlet would search
            # the whole heap (gc.get_referrers) for whoever still refers to them.
            self.root = None
            self.target = None
            self.pool = []
            gr_m_bind(NULL)


cdef void _m_thread_body(gr_m *cm, int rc, int64_t released) noexcept nogil:
    """The Python side of an M's thread (csrc/mthread.c), entered once it has work."""
    with gil:
        gr_m_gil_waited(cm, gr_nanotime() - released)
        m = <M>cm.obj
        if rc == GR_NEXT_DEADLOCK:
            m.rt.on_deadlock()
        m.thread_main()


def _worker_entry():
    gr_asan_after_switch()
    cdef M m = <M>gr_m_current().obj
    m.target = None
    m.loop()


cdef inline int _check_not_forked() except -1:
    if _forked:
        raise RuntimeError(_FORKED)
    return 0


cdef M _curm():
    """The M of this thread, or None; raises in a child forked during a run."""
    _check_not_forked()
    cdef gr_m *cm = gr_m_current()
    if cm == NULL:
        return None
    return <M>cm.obj


cdef M _running(str what):
    """The M of the running task; `what` names the caller's API in the error."""
    cdef M m = _curm()
    if m is None or m.cur is None:
        raise RuntimeError(f"{what}() must be called from a task running under goroutines.run()")
    return m


cdef void _run_new(M m, Task t) noexcept:
    """Run a never-run task inline, on the current worker greenlet."""
    cdef object result = None
    cdef object exc = None
    gr_g_start(m.cm, &t.g)
    if gr_g_cancel_requested(&t.g) or gr_sched_closing(m.rt.s):
        exc = Cancelled()
    else:
        m.cur = t
        # The task's context is made current on the worker greenlet, which keeps it across
        # the task's parks (greenlet swaps the thread's context on every switch).
        if t.ctx is None:
            exc = _run_in_fresh_context(t)
        else:
            try:
                PyContext_Enter(t.ctx)
            except RuntimeError as e:
                exc = RuntimeError(f"task {t.g.id} cannot run in its context: {e} (a context "
                                   f"runs one task at a time: pass context=ctx.copy())")
            else:
                exc = _call_task(t)
                PyContext_Exit(t.ctx)
        if exc is None:
            result = t._result
    _finish(m, t, result, exc)


cdef object _call_task(Task t):
    """Call the task's function: None, with its result in t._result, or its exception."""
    try:
        if t.kwargs is None:
            t._result = t.fn(*t.args)
        else:
            t._result = t.fn(*t.args, **t.kwargs)
    except BaseException as e:
        return e
    return None


cdef object _run_in_fresh_context(Task t):
    """_call_task with no context at all (NULL): the task's spawner had no variable set,
    so its copy would be empty. CPython makes a context on the first ContextVar access,
    which then is the task's own; this saves a copy and a GC object per spawn."""
    cdef _TsContext *ts = _tstate()
    cdef PyObject *saved = ts.context
    ts.context = NULL
    ts.context_ver += 1  # ContextVar.get caches by this version
    exc = _call_task(t)  # on this thread still: a greenlet never changes thread
    cdef PyObject *made = ts.context
    ts.context = saved
    ts.context_ver += 1
    Py_XDECREF(made)
    return exc


cdef str _fn_name(fn):
    return getattr(fn, "__qualname__", None) or type(fn).__name__


cdef int _check_fn(object fn, str what) except -1:
    """`fn` must be a plain callable: a task calls it and is done, so an async function
    would only return a coroutine that nothing ever awaits."""
    cdef object f = fn
    if PyMethod_Check(f):
        f = <object>PyMethod_GET_FUNCTION(f)
    # The common cases without inspect, which costs more than go() itself.
    if PyFunction_Check(f):
        if _plain_function(<PyFunctionObject *>f):
            return 0
    elif PyCFunction_Check(f) or type(f) is type:  # a C function, or a class to construct
        return 0
    elif type(f) is _CYFUNCTION:  # Cython's functions, e.g. gr.sleep and Chan.send
        if not f.__code__.co_flags & _CO_COROUTINE:
            return 0
    elif not callable(fn):
        if inspect.iscoroutine(fn):
            raise TypeError(f"{what}() got a coroutine object ({fn.__qualname__}), which no task "
                            f"would await: pass a plain function and its arguments, "
                            f"{what}(fn, *args), with fn defined by def, not async def")
        raise TypeError(f"{what}() needs a callable, not {type(fn).__name__}")
    if _is_async(fn):
        name = _fn_name(fn)
        raise TypeError(f"{what}() cannot run {name}: it is an async function, and calling it "
                        f"only creates a coroutine that nothing would await. Define it with def "
                        f"(a task waits by parking, without await), or run it on an event "
                        f"loop: blocking(asyncio.run, {name}(...))")
    return 0


_CYFUNCTION = type(_worker_entry)


cdef inline bint _plain_function(PyFunctionObject *f):
    """No CO_COROUTINE flag and no inspect.markcoroutinefunction() mark (Python 3.12+)."""
    if (<PyCodeObject *>f.func_code).co_flags & _CO_COROUTINE:
        return False
    return f.func_dict == NULL or "_is_coroutine_marker" not in <dict><object>f.func_dict


cdef bint _is_async(object fn) except -1:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    # An instance whose __call__ is async (a class is called by type.__call__: never async).
    return not isinstance(fn, type) and inspect.iscoroutinefunction(getattr(type(fn), "__call__", None))


cdef void _exit_forked_child(str who, object exc) noexcept:
    """`who` (the task that called os.fork(), or an offloaded call that did) has finished
    in a child forked while run() was running. The runtime cannot go on there: its other
    threads, and the tasks pinned to them, did not survive the fork. So the child ends here
    as a script would (its exit status, the traceback of a failure, atexit handlers),
    saying why, instead of hanging in the scheduler or vanishing silently."""
    cdef int code = 0
    try:
        how = "returned"
        if isinstance(exc, SystemExit):
            how = "raised SystemExit"
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                sys.stderr.write(f"{exc.code}\n")
                code = 1
            exc = None
        elif exc is not None:
            how = "failed"
            code = 1
        sys.stderr.write(f"goroutines: {who} {how} in a process forked while goroutines.run() "
                         f"was running; the runtime does not survive a fork, so the child exits "
                         f"here with status {code} (call os._exit() or exec in a forked child)\n")
        if exc is not None:
            traceback.print_exception(type(exc), exc, exc.__traceback__)
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = code or 1
    os._exit(code)


def _after_fork_in_child():
    global _forked
    gr_netpoll_after_fork(&_netpoll)  # the epoll instance is the parent's
    if _rt is not None:
        _forked = True  # written before any other thread exists in the child


os.register_at_fork(after_in_child=_after_fork_in_child)


cdef void _finish(M m, Task t, object result, object exc) noexcept:
    cdef uint32_t trace_name = _trace_name_of(t) if GR_TRACING() else 0
    m.cur = None  # finalizers run by the drops below are outside any task
    if _forked:
        _exit_forked_child(f"task {t.g.id} ({_fn_name(t.fn)})", exc)
    t._result = result
    t._exc = exc
    if exc is not None:
        if t._name is None:
            t._name = _fn_name(t.fn)
        PyObject_GC_Track(<PyObject *>t)
    elif result is not None and PyObject_GC_IsTracked(result):
        PyObject_GC_Track(<PyObject *>t)
    # name, from any thread, reads fn: without the GIL, a plain read could lose the
    # function to this drop before its incref.
    with cython.critical_section(t):
        t.fn = None
    t.args = None
    t.kwargs = None
    t.ctx = None
    t.glet = None
    if exc is not None and isinstance(exc, (KeyboardInterrupt, SystemExit)):
        # Not a task's own failure: the whole program was asked to stop.
        t.retrieved = True
        m.rt.abort(exc)
    t.locals = None  # gr.local() data lives as long as the task
    gr_g_finish(m.rt.s, m.cm, &t.g)
    # Taken once the task is done, so that a hook added meanwhile sees done() (_add_hook).
    with cython.critical_section(t):
        hooks = t.callbacks
        t.callbacks = None
    if hooks is not None:
        _fire_hooks(t, hooks)
    if GR_TRACING():  # after the finish and the hooks: the tasks they woke were woken by t
        gr_trace_emit(GR_TEV_GO_END, t.g.id, 0, trace_name)
    if t is m.rt.main:
        gr_sched_close(m.rt.s)
    Py_DECREF(t)  # the runtime's reference, taken in go()


cdef inline void _keep_greenlet(M m, Task t) noexcept:
    """t is about to switch away for the first time: the worker greenlet it runs on is
    its own from now on, and t joins the M's started tasks (cancelled at shutdown)."""
    if t.glet is None:
        t.glet = PyGreenlet_GetCurrent()
        gr_m_track(m.cm, &t.g)


cdef int _park(M m, Task t, int reason) except -1:
    """Switch away from the running task t until a waker readies it: a begin call has
    queued it (GR_WAIT_PARK) or it yields. While t is away no task is current on this M,
    so code the scheduler runs meanwhile (signal handlers, finalizers) cannot park t."""
    _keep_greenlet(m, t)
    t.g.park_reason = reason
    gr_g_parked(m.cm, &t.g)
    m.cur = None
    m.switch_away(t)
    m.cur = t
    t.g.park_reason = PARK_NONE
    return 0


cdef int _yield(M m, Task t) except -1:
    """Put the running task t at the back of its M's ready queue and run the others."""
    _keep_greenlet(m, t)
    gr_yield(m.cm, &t.g)
    m.cur = None
    m.switch_away(t)
    m.cur = t
    return 0


cdef inline void _op(gr_waitop *op, uint32_t kind, void *obj) noexcept:
    memset(op, 0, sizeof(gr_waitop))
    op.kind = kind
    op.obj = obj


cdef int _wait(M m, Task t, gr_waitop *op, int64_t deadline, int reason) except -1:
    """The one park protocol of every blocking call (Go's gopark): deliver a pending
    cancellation, begin the wait in C (which queues t and arms its timer), park, end it in
    C. Returns GR_WAIT_OK, GR_WAIT_CLOSED or GR_WAIT_TIMEOUT; raises Cancelled or
    MemoryError. A grant that races a cancellation wins and leaves the cancellation pending
    for the next park point. A shielded wait (op.shield, waitop.h) raises no Cancelled: it
    returns GR_WAIT_CANCELLED when a cancel woke it, once, and its caller decides."""
    if op.shield == GR_SHIELD_NONE:
        _check_cancel(m, t, False)  # the scopes, if any, are _wait_scoped's to look at
    if t.scope is not None or gr_g_interrupted(&t.g):
        return _wait_scoped(m, t, op, deadline, reason)
    cdef int rc = gr_waitop_begin(op, &t.g, deadline)
    if rc == GR_WAIT_PARK:
        _park(m, t, reason)
        rc = gr_waitop_end(op, &t.g)
    if rc == GR_WAIT_NOMEM:
        raise MemoryError()
    if op.shield != GR_SHIELD_NONE:
        if rc == GR_WAIT_CANCELLED:
            op.shield = GR_SHIELD_QUIET  # seen: the next wait on op is not cut short by it
        return rc
    if rc == GR_WAIT_CANCELLED:
        raise Cancelled()
    if rc == GR_WAIT_TIMEOUT and _cancel_pending(m, t):
        raise Cancelled()  # a cancel that raced the deadline wins over the timeout
    return rc


cdef int _wait_scoped(M m, Task t, gr_waitop *op, int64_t deadline, int reason) except -1:
    """_wait for a task in a cancel scope (_scope.pxi), or one interrupted since its last
    wait: the scopes' earliest deadline bounds the wait, and an interrupt ends it to look
    at them again. A cancelled scope raises Cancelled (a shielded wait returns
    GR_WAIT_CANCELLED once and its caller decides); a QUIET wait ignores scopes, as it
    ignores the task's own cancellation, and a shielded wait becomes QUIET once it has
    reported either."""
    cdef int64_t scoped, bound
    cdef bint by_scope
    cdef int rc
    while True:
        gr_g_interrupt_clear(&t.g)  # before reading the scopes: scope.h explains
        scoped = GR_DEADLINE_NEVER
        if op.shield != GR_SHIELD_QUIET:
            scoped = _scope_state(t)
            if scoped == _CHAIN_CANCELLED:
                if op.shield == GR_SHIELD_NONE:
                    raise Cancelled()
                op.shield = GR_SHIELD_QUIET
                return GR_WAIT_CANCELLED
        by_scope = (scoped != GR_DEADLINE_NEVER and deadline != GR_DEADLINE_NOW and
                    (deadline == GR_DEADLINE_NEVER or scoped < deadline))
        bound = scoped if by_scope else deadline
        rc = gr_waitop_begin(op, &t.g, bound)
        if rc == GR_WAIT_PARK:
            _park(m, t, reason)
            rc = gr_waitop_end(op, &t.g)
        if rc == GR_WAIT_NOMEM:
            raise MemoryError()
        if by_scope and (rc == GR_WAIT_TIMEOUT or (rc == GR_WAIT_OK and op.kind == GR_OP_SLEEP)):
            continue  # the scope's deadline, not the wait's: the next round says so
        if rc == GR_WAIT_CANCELLED:
            if not _cancel_pending(m, t):
                continue  # an interrupt: the scopes changed, or it is stale
            if op.shield == GR_SHIELD_NONE:
                raise Cancelled()
            op.shield = GR_SHIELD_QUIET
            return rc
        if rc == GR_WAIT_TIMEOUT and op.shield == GR_SHIELD_NONE and _cancel_pending(m, t):
            raise Cancelled()
        return rc


cdef inline bint _cancel_pending(M m, Task t) noexcept:
    return gr_g_cancel_requested(&t.g) or gr_sched_closing(m.rt.s)


cdef int _check_cancel(M m, Task t, bint scopes=True) except -1:
    """The start of every park point: a task with a cancellation pending gets Cancelled,
    every time (a cancelled task stays cancelled, as in trio). It yields first, as trio's
    checkpoints do, so a task that catches Cancelled in a loop cannot starve its M. So
    does a task in a cancelled scope, unless the caller looks at the scopes itself
    (scopes=False: _wait_scoped)."""
    if not _cancel_pending(m, t):
        if scopes and t.scope is not None and _scope_state(t) == _CHAIN_CANCELLED:
            raise Cancelled()
        return 0
    if gr_sched_closing(m.rt.s):
        if t.abandon_at == 0:
            t.abandon_at = gr_nanotime() + _SHUTDOWN_GRACE_NS
        elif gr_nanotime() >= t.abandon_at:
            _abandon(m, t)
    _yield(m, t)
    raise Cancelled()


cdef int _abandon(M m, Task t) except -1:
    """Give up on t, a task that keeps catching Cancelled at shutdown: finish it as
    cancelled, so its joiners wake and run() can return, and never resume it. Its pending
    finally blocks never run."""
    _log.warning("goroutines: task %d (%s) still running %.1f s after shutdown cancelled it; "
                 "abandoning it", t.g.id, t.name, _SHUTDOWN_GRACE_NS / 1e9)
    _keep_greenlet(m, t)
    _abandoned.append(t.glet)
    _finish(m, t, None, Cancelled())
    m.switch_away(None)
    raise SystemError("goroutines: an abandoned task was resumed")


cdef int64_t _deadline(object seconds, str what) except -2:
    """-1 for no deadline (None), else an absolute gr_nanotime() deadline (0 = now)."""
    if seconds is None:
        return -1
    cdef double s = _seconds(seconds, what)
    if s == 0:
        return 0
    if s >= _FOREVER_S:
        return -1
    return gr_nanotime() + <int64_t>(s * 1e9)


cdef bint _is_seconds(object x) except -1:
    """A number of seconds: a real number (int, float, Fraction, numpy's) or a Decimal, not
    a bool. One checked isinstance() at a time: Cython unrolls isinstance(x, (A, B)) into
    calls whose error it ignores, so an exception raised in an ABC's __instancecheck__ (a
    signal handler's, such as Ctrl-C's) was left set behind a True."""
    if type(x) is float or type(x) is int:
        return True
    if isinstance(x, bool):
        return False
    if isinstance(x, numbers.Real):
        return True
    return isinstance(x, decimal.Decimal)


cdef double _seconds(object seconds, str what) except -1:
    if not _is_seconds(seconds):
        raise TypeError(f"{what} must be a number of seconds, not {type(seconds).__name__}")
    cdef double s = float(seconds)
    if isnan(s) or s < 0:
        raise ValueError(f"{what} must be a non-negative number of seconds, got {seconds!r}")
    return s


@cython.final
cdef class Runtime:

    def __dealloc__(self):
        if self.s != NULL:
            with nogil:
                gr_wakes_quiesce()
            gr_sched_free(self.s)
            self.s = NULL

    cdef void abort(self, exc) noexcept:
        """Stop the run with exc (Ctrl-C, SystemExit, a deadlock): close the scheduler, so
        every park point raises Cancelled, and raise Cancelled right away in the tasks
        running on the other Ms. Those may never reach a park point (a loop without one),
        and run() could not return until they finish; CPython delivers the exception at
        their next bytecode, as it delivers KeyboardInterrupt to the main thread."""
        cdef M m
        cdef Task t
        cdef unsigned long me = threading.get_ident()
        with self.lock:
            first = self.outcome is None
            if first:
                self.outcome = exc
        if first:
            # Before the close: once it is seen, the other Ms cancel their tasks and run
            # their finally blocks, and an exception delivered in the middle of one would
            # cut that cleanup short (seen on a free-threaded build). A task already
            # cancelled is unwinding on its own and is left alone.
            for m in self.ms:
                t = m.cur
                if (t is not None and m.ident != 0 and m.ident != me and
                        not gr_g_cancel_requested(&t.g)):
                    PyThreadState_SetAsyncExc(m.ident, Cancelled)
        gr_sched_close(self.s)

    cdef void on_deadlock(self) noexcept:
        """Every task is asleep and no M, timer or offloaded call can wake one. A Python
        thread outside the runtime still could (Event.set(), close(), cancel(), go(), ...
        are safe from any thread), so while one is alive the report is put off and checked
        again later; the rule is Go's with cgo threads. sys._current_frames() lists the
        threads that are really alive (threading.enumerate() keeps stale dummy threads).

        The verdict comes from a check made before this call, and such a thread may have
        woken a task and exited in between (without the GIL nothing orders the two; with
        it, the window is only narrower). So finding no such thread only arms the report:
        it is made when the next verdict, which the scheduler reaches after this call,
        finds that no task has run since."""
        cdef uint64_t ran
        others = set(sys._current_frames()) - self.m_idents - _offload_idents - (<_Observers>self.obs).idents
        if others:
            self.deadlock_armed = False
            gr_sched_defer_deadlock(self.s, gr_nanotime() + _DEADLOCK_RECHECK_NS)
            return
        ran = self.executed()
        if self.deadlock_armed and self.deadlock_ran == ran:
            self.deadlock()
        else:
            self.deadlock_armed = True
            self.deadlock_ran = ran

    cdef uint64_t executed(self) noexcept:
        """Tasks run or resumed so far, on every P."""
        cdef gr_pstats_snapshot snap
        cdef uint64_t n = 0
        cdef int i
        for i in range(self.nprocs):
            gr_sched_pstats(self.s, i, &snap)
            n += snap.executed
        return n

    cdef void deadlock(self) noexcept:
        try:
            msg = _deadlock_message(self)
        except BaseException as e:  # the report must not hide the deadlock itself
            msg = f"all tasks are asleep - deadlock! (the report failed: {e!r})"
        self.abort(Deadlock(msg))


cdef bint _gil_enabled():
    is_enabled = getattr(sys, "_is_gil_enabled", None)  # 3.13+; older builds always have it
    return is_enabled is None or is_enabled()


cdef int _resolve_procs(object procs) except -1:
    cdef object n
    if procs is None:
        env = os.environ.get("GOROUTINES_PROCS")
        if env is not None and env.strip():
            try:
                n = int(env)
            except ValueError:
                raise ValueError(f"GOROUTINES_PROCS must be a positive integer, got {env!r}") from None
            what = "GOROUTINES_PROCS"
        else:
            n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            what = "procs"
    else:
        if isinstance(procs, bool) or not isinstance(procs, int):
            raise TypeError(f"procs must be an int, not {type(procs).__name__}")
        n = procs
        what = "procs"
    if n < 1 or n > _MAX_PROCS:
        raise ValueError(f"{what} must be between 1 and {_MAX_PROCS}, got {n}")
    return n


def run(main, *args, procs=None, affinity=None, watchdog=None, trace=None, **kwargs):
    """Run ``main(*args, **kwargs)`` as the first task of a fresh runtime and return its
    result (or re-raise its exception).

    ``procs`` is the number of processors (OS threads running tasks); the default is the
    GOROUTINES_PROCS environment variable, else the CPUs this process may use.
    ``affinity`` pins each processor's thread: "cpu" to one CPU each (filling one NUMA node
    before the next), "node" to its node's CPUs, None (default) not at all. When main
    returns, tasks still alive are cancelled and finish before run() returns; a task that
    still reaches a park point a second after that (it keeps catching Cancelled) is
    abandoned, never resumed, and named in a warning on the "goroutines" logger. If every
    task is parked and nothing can wake any of them, run() raises Deadlock, naming each
    stuck task, what it waits on and where. ``trace`` (a path) records an execution
    trace of the whole run there (see trace()).

    ``watchdog`` (seconds; default the GOROUTINES_WATCHDOG environment variable, else off)
    reports with a HogWarning each time a task holds its M longer than that without
    yielding. GOROUTINES_SCHEDTRACE (milliseconds) prints a line of scheduler state that
    often, GOROUTINES_DUMP_SIGNAL (such as SIGUSR1) makes that signal print dump(), and
    GOROUTINES_SPAWN_SITES=1 has go() record where each task was started (for dump()).

    Example::

        def main():
            return sum(t.join() for t in [gr.go(abs, -i) for i in range(10)])
        assert gr.run(main) == 45
    """
    if trace is not None:  # recorded around the whole run (see trace())
        with Trace(trace):
            return run(main, *args, procs=procs, affinity=affinity, watchdog=watchdog, **kwargs)
    _check_not_forked()
    _check_fn(main, "run")
    cdef int n = _resolve_procs(procs)
    cdef double wd = _resolve_watchdog(watchdog)
    cdef double sched_period = _resolve_schedtrace()
    dump_signal = _resolve_dump_signal()
    _resolve_spawn_sites()
    cdef _Observers obs = _Observers()
    # Only affinity needs the topology: a plain run never reads sysfs.
    places = placement(affinity, n) if affinity is not None else [(0, None)] * n
    saved_affinity = os.sched_getaffinity(0) if affinity is not None else None
    if not _run_lock.acquire(blocking=False):
        raise RuntimeError("goroutines.run() is already running (runs cannot nest, and one "
                           "process has one run at a time: an open gr.Executor, or a "
                           "to_async() call, keeps a background run going)")
    cdef Runtime rt
    cdef M m
    cdef int i, err
    try:
        rt = Runtime.__new__(Runtime)
        rt.s = gr_sched_new(n)
        if rt.s == NULL:
            raise MemoryError()
        rt.nprocs = n
        gr_sched_set_ctimers(rt.s, &_ctimers)
        gr_sched_set_netpoll(rt.s, &_netpoll)
        gr_ctimers_open(&_ctimers)
        if _gil_enabled():
            # Half the switch interval: a thread that waits for the GIL while another runs
            # Python waits the whole interval before CPython forces a switch.
            gr_sched_set_gil_policy(rt.s, <int64_t>(sys.getswitchinterval() * 0.5e9))
        rt.lock = threading.Lock()
        obs.rt = rt
        rt.obs = obs
        rt.m_idents = set()
        rt.ms = []
        for i in range(n):
            m = M.__new__(M)
            m.cm = gr_sched_m(rt.s, i)
            m.cm.obj = <void *>m
            m.rt = rt
            m.pool = []
            gr_sched_set_node(rt.s, i, places[i][0])
            m.cpus = places[i][1]
            rt.ms.append(m)
        _set_rt(rt)
        m = rt.ms[0]
        rt.main = _new_task(rt, m, main, args, kwargs, None)
        gr_spawn_on(m.cm, m.cm, &rt.main.g)  # main runs on this thread: signal.signal() works
        obs.start(wd, sched_period, dump_signal)
        for i in range(1, n):
            err = gr_m_thread_start((<M>rt.ms[i]).cm, _m_thread_body)
            if err:
                rt.abort(OSError(err, f"cannot start the thread of M{i}: {os.strerror(err)}"))
                break
        m.thread_main()
    finally:
        obs.stop()
        if rt is not None and rt.s != NULL:
            for i in range(1, n):
                with nogil:
                    gr_m_thread_join(gr_sched_m(rt.s, i))
        _drop_timers()
        _stop_all_notify()
        if saved_affinity is not None:
            os.sched_setaffinity(0, saved_affinity)
        _set_rt(None)
        if rt is not None and rt.s != NULL:
            # A go() from a thread outside the runtime may still hold rt: its spawn is
            # refused since the run began to close (closed here too if it never started),
            # and what was queued before is cancelled. The scheduler's memory goes with the
            # last reference to rt (Runtime.__dealloc__).
            gr_sched_close(rt.s)
            _drain_external(rt)
            rt.ms = []  # M.rt -> Runtime -> M: no cycle left to wait for the collector
        _run_lock.release()
    if rt.outcome is not None:
        if not rt.main.done():
            rt.main.retrieved = True
        raise rt.outcome
    return rt.main.result()


cdef Runtime _current_rt():
    """The running Runtime, or None (a strong reference, safe from any thread)."""
    cdef Runtime rt
    gr_lock_acquire(&_rt_lock)
    rt = _rt
    gr_lock_release(&_rt_lock)
    return rt


cdef void _set_rt(Runtime rt) noexcept:
    global _rt
    gr_lock_acquire(&_rt_lock)
    old = _rt  # dropped after the lock: the lock is never held while code may run
    _rt = rt
    gr_lock_release(&_rt_lock)


cdef void _drain_external(Runtime rt) noexcept:
    """Cancel tasks spawned from foreign threads after every M had exited."""
    cdef M m = rt.ms[0]
    cdef gr_g *g = gr_sched_take_global(rt.s)
    while g != NULL:
        _finish(m, <Task>g.obj, None, Cancelled())
        g = gr_sched_take_global(rt.s)


cdef Task _new_task(Runtime rt, M m, object fn, tuple args, dict kwargs, object ctx):
    """A task of fn(*args, **kwargs) run in ctx, or in a copy of the caller's context
    (None), as asyncio's tasks are: what one task sets is not seen by the others."""
    cdef Task t = Task.__new__(Task)
    t.fn = fn
    t.args = args
    t.kwargs = kwargs if kwargs else None
    cdef PyObject *cur
    if ctx is None:
        cur = _tstate().context
        if cur != NULL and len(<object>cur):
            t.ctx = PyContext_CopyCurrent()
    else:
        t.ctx = ctx
    # Untracked until it finishes: while alive it is held by the runtime and so cannot be
    # in a garbage cycle, and a trivial task then never costs the cycle collector anything.
    t.untrack()
    gr_g_init(m.cm if m is not None else NULL, &t.g, <void *>t)
    if GR_TRACING():
        _trace_created(t)
    Py_INCREF(t)  # the runtime's reference, dropped by _finish
    return t


def go(fn, *args, **kwargs) -> Task:
    """Start ``fn(*args, **kwargs)`` as a new task and return its Task at once.

    The task runs in a copy of the caller's ``contextvars`` context, as an asyncio task
    does, or in ``context`` when given (a ``contextvars.Context`` that no other task or
    thread is running in at the same time). ``context`` is reserved: it is not passed to
    ``fn``.

    ``name`` (reserved as well, as in asyncio's create_task) names the task in its repr,
    ``gr.tasks()``, ``gr.dump()`` and reports; the default is the function's qualified
    name. Every other keyword argument goes to ``fn``.

    Example::

        t = gr.go(print, "hello from a task", name="greeter")
        t.join()
    """
    _check_fn(fn, "go")
    # name and context are taken out of kwargs rather than declared keyword-only: Cython's
    # parsing of a keyword-only argument costs every go() ~12 ns, even one without keywords.
    name = context = None
    if kwargs:
        name = kwargs.pop("name", None)
        if name is not None and type(name) is not str:
            raise TypeError(f"go() name must be a str, not {type(name).__name__}")
        context = kwargs.pop("context", None)
        if context is not None and not isinstance(context, contextvars.Context):
            raise TypeError(f"go() context must be a contextvars.Context, "
                            f"not {type(context).__name__}")
    cdef M m = _curm()
    cdef Task t
    if m is not None:
        t = _new_task(m.rt, m, fn, args, kwargs, context)
        t._name = name
        _note_spawn_site(t)
        gr_spawn(m.cm, &t.g)
        return t
    cdef Runtime rt = _current_rt()
    if rt is None:
        raise RuntimeError("go() must be called under goroutines.run()")
    t = _new_task(rt, None, fn, args, kwargs, context)
    t._name = name
    _note_spawn_site(t)
    if gr_spawn_external(rt.s, &t.g) != 0:
        Py_DECREF(t)  # the runtime's reference: it never took the task
        raise RuntimeError("go() must be called under goroutines.run(): this run is shutting down")
    return t


def gosched() -> None:
    """Yield the processor: let other runnable tasks run, then continue.

    Example::

        while not ready:
            gr.gosched()
    """
    _gosched(_running("gosched"))


cdef int _gosched(M m) except -1:
    cdef Task t = m.cur
    _check_cancel(m, t)
    _yield(m, t)
    if _cancel_pending(m, t):
        raise Cancelled()
    return 0


def sleep(seconds) -> None:
    """Park the calling task for ``seconds``; ``sleep(0)`` is ``gosched()``.

    Example::

        gr.sleep(0.01)
    """
    if seconds is None:
        raise TypeError("seconds must be a number of seconds, not NoneType")
    cdef int64_t deadline = _deadline(seconds, "seconds")
    cdef M m = _running("sleep")
    if deadline == 0:
        _gosched(m)
        return
    cdef gr_waitop op
    _op(&op, GR_OP_SLEEP, NULL)
    _wait(m, m.cur, &op, deadline, PARK_SLEEP)


def current():
    """The running task, or None when no task is running: in code the scheduler runs
    between tasks, such as a signal handler or a finalizer. Raises RuntimeError off the
    runtime's threads (outside run(), or on a thread that is not one of its Ms), as
    asyncio.current_task() does without a running loop.

    Example::

        me = gr.current()
    """
    cdef M m = _curm()
    if m is None:
        raise RuntimeError("current() must be called from a task running under goroutines.run()")
    return m.cur


cdef Runtime _active(str what):
    _check_not_forked()
    cdef Runtime rt = _current_rt()
    if rt is None:
        raise RuntimeError(f"{what}() must be called under goroutines.run()")
    return rt


def num_tasks() -> int:
    """How many tasks are alive (spawned and not finished).

    Example::

        n = gr.num_tasks()
    """
    return gr_sched_live(_active("num_tasks").s)


def procs() -> int:
    """The number of processors of the running runtime.

    Example::

        n = gr.procs()
    """
    return _active("procs").nprocs


def stats() -> dict:
    """Scheduler counters: totals and, under ``"procs"``, one dict per P.

    Beside the counters, each P has ``"latency"``, a histogram of the time tasks waited
    from ready to running, ``"wait"``, one histogram per wait reason of the time parked
    tasks waited, and ``"tasks"``, the live tasks registered on it; the totals merge them
    and add the offload pool (``"offload"``) and the tasks waiting on fds. A histogram is a
    dict: ``count``, ``sum``, ``max``, ``p50``, ``p99`` (seconds) and ``buckets`` (bucket i
    counts durations under 2**i ns). One wait in 16 is timed (Go samples too), so counts
    are about a sixteenth of the waits.

    Example::

        print(gr.stats()["steals"])
    """
    cdef Runtime rt = _active("stats")
    cdef gr_pstats_snapshot snap
    per = []
    for i in range(rt.nprocs):
        gr_sched_pstats(rt.s, i, &snap)
        per.append({
            "executed": snap.executed,
            "stolen": snap.stolen,
            "from_global": snap.from_global,
            "steals_local": snap.steals_local,
            "steals_remote": snap.steals_remote,
            "parks": snap.task_parks,
            "m_parks": snap.mparks,
            "gil_contended": snap.gil_contended,
            "backoffs": snap.backoffs,
            "backoff_steals": snap.backoff_steals,
            "spawned": snap.spawned,
            "finished": snap.finished,
            "runq_len": snap.runq_len,
        })
        _observe_pstats(rt, i, per[i])
    return {
        "procs": per,
        "tasks_spawned": gr_sched_spawned(rt.s),
        "tasks_live": gr_sched_live(rt.s),
        "executed": sum(p["executed"] for p in per),
        "steals": sum(p["steals_local"] + p["steals_remote"] for p in per),
        "stolen": sum(p["stolen"] for p in per),
        "parks": sum(p["parks"] for p in per),
        "global_runq_len": gr_sched_globalq_len(rt.s),
        "idle_ms": gr_sched_nmidle(rt.s),
        "spinning_ms": gr_sched_nmspinning(rt.s),
        **_observe_totals(rt, per),
    }


include "_topology.pxi"
include "_sync.pxi"
include "_timer.pxi"
include "_scope.pxi"
include "_offload.pxi"
include "_netpoll.pxi"
include "_future.pxi"
include "_api.pxi"
include "_trace.pxi"
include "_observe.pxi"
