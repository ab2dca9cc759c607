# Included by _core.pyx: after, Timer, Ticker and after_func, as Go's time package.
#
# They are runtime timers (csrc/ctimer.h), not tasks. A channel timer's record belongs to
# its channel (Chan.timer) and is in the runtime's heap only while a task waits on that
# channel, so a timer nobody references is freed with its channel, stopped or not (Go
# 1.23). A function timer (after_func) is in the heap while pending and the heap then
# holds a reference to its Timer: it runs even if nobody keeps the Timer.
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.ref cimport Py_INCREF, Py_DECREF
from libc.stdint cimport INT64_MAX, int64_t


cdef int64_t _timer_ns(object seconds, str what) except -1:
    """`seconds` in nanoseconds, INT64_MAX (never) from ~146 years on."""
    cdef double s = _seconds(seconds, what)
    if s >= _FOREVER_S:
        return INT64_MAX
    return <int64_t>(s * 1e9)


cdef int64_t _period_ns(object interval) except -1:
    cdef int64_t ns = _timer_ns(interval, "interval")
    if _seconds(interval, "interval") == 0:
        raise ValueError("interval must be positive")
    return ns if ns > 0 else 1


cdef int64_t _deadline_in(int64_t ns) noexcept:
    cdef int64_t now = gr_nanotime()
    return INT64_MAX if ns > INT64_MAX - now else now + ns


cdef void _kick() noexcept:
    """A timer became the earliest from outside the scheduler: an idle M must shorten its
    park (sched.h's gr_sched_wakep)."""
    cdef Runtime rt = _current_rt()
    if rt is not None and rt.s != NULL:
        gr_sched_wakep(rt.s)


cdef bint _timer_reset(gr_ctimer *tm, int64_t when, int64_t period, object owner) except -1:
    """(Re)arm tm; True if it was active (Go's Reset result). owner: a function timer's
    Timer, which the heap references while the timer is pending."""
    cdef void *stale = NULL
    if owner is not None:
        Py_INCREF(owner)  # before arming: it may fire on another M at once
    cdef int rc = gr_ctimer_reset(&_ctimers, tm, when, period, &stale)
    if stale != NULL:
        Py_DECREF(<object>stale)
    if rc < 0:
        if owner is not None:
            Py_DECREF(owner)
        if rc == GR_CTIMER_ECLOSED:
            raise RuntimeError("after(), after_func(), Timer(), Ticker() and their reset() "
                               "must be called under goroutines.run()")
        raise MemoryError()
    if owner is not None and rc & GR_CTIMER_ACTIVE:
        Py_DECREF(owner)  # the heap already held one
    if rc & GR_CTIMER_KICK:
        _kick()
    return rc & GR_CTIMER_ACTIVE != 0


cdef bint _timer_stop(gr_ctimer *tm, object owner) except -1:
    cdef void *stale = NULL
    cdef bint active = gr_ctimer_stop(&_ctimers, tm, &stale)
    if stale != NULL:
        Py_DECREF(<object>stale)
    if active and owner is not None:
        Py_DECREF(owner)  # the heap's reference, handed back
    return active


cdef Chan _timer_chan():
    """A channel of capacity 1 fed by a new, stopped timer."""
    cdef Chan ch = Chan(1)
    ch.timer = <gr_ctimer *>PyMem_Malloc(sizeof(gr_ctimer))
    if ch.timer == NULL:
        raise MemoryError()
    gr_ctimer_init(ch.timer, ch.c, NULL)
    return ch


@cython.final
cdef class Timer:
    """A single event, as Go's time.Timer: ``chan`` receives the time once ``seconds``
    have passed. ``stop()`` and ``reset()`` may be called from any thread; after either
    returns, no value from before it is received (Go 1.23). A Timer nobody references is
    freed, stopped or not.

    Example::

        t = gr.Timer(1.0)
        i, v, ok = gr.select(gr.Recv(results), gr.Recv(t.chan))
        t.stop()
    """
    cdef gr_ctimer *t       # the channel's timer, or its own (after_func)
    cdef bint owns          # after_func: t is this object's, with fn to run
    cdef readonly Chan chan
    cdef object fn
    cdef tuple args
    cdef dict kwargs
    cdef object ctx         # after_func: the context its task runs in (a copy of the caller's)
    cdef object __weakref__

    def __init__(self, seconds):
        if self.t != NULL:
            raise RuntimeError("Timer is already initialised")
        cdef int64_t ns = _timer_ns(seconds, "seconds")
        cdef Chan ch = _timer_chan()
        _timer_reset(ch.timer, _deadline_in(ns), 0, None)
        self.chan = ch
        self.t = ch.timer

    def __dealloc__(self):
        if self.owns and self.t != NULL:
            gr_ctimer_forget(&_ctimers, self.t)
            PyMem_Free(self.t)

    cdef gr_ctimer *rec(self) except NULL:
        if self.t == NULL:
            raise RuntimeError("Timer was not initialised: use Timer(seconds) or after_func()")
        return self.t

    def stop(self) -> bool:
        """Stop the timer. True if this stopped it before its value was received (or,
        for after_func, before its function started); False if it had already fired and
        its value was taken, or was stopped."""
        return _timer_stop(self.rec(), self if self.owns else None)

    def reset(self, seconds) -> bool:
        """Re-arm the timer to fire ``seconds`` from now, discarding a value not yet
        received. Returns what stop() would have."""
        cdef gr_ctimer *tm = self.rec()
        cdef int64_t ns = _timer_ns(seconds, "seconds")
        return _timer_reset(tm, _deadline_in(ns), 0, self if self.owns else None)


@cython.final
cdef class Ticker:
    """Delivers the time on ``chan`` every ``interval`` seconds, as Go's time.Ticker. A
    receiver that falls behind gets one value, not a burst: ticks it has not taken are
    dropped. ``stop()`` ends it, ``reset(interval)`` changes the period; after either, no
    tick from before is received. A Ticker nobody references is freed, stopped or not.

    Example::

        tk = gr.Ticker(0.1)
        for _ in range(3):
            tk.chan.recv()
        tk.stop()
    """
    cdef readonly Chan chan
    cdef object _interval
    cdef object __weakref__

    def __init__(self, interval):
        if self.chan is not None:
            raise RuntimeError("Ticker is already initialised")
        cdef int64_t period = _period_ns(interval)
        cdef Chan ch = _timer_chan()
        _timer_reset(ch.timer, _deadline_in(period), period, None)
        self.chan = ch
        self._interval = interval

    @property
    def interval(self):
        """The period in seconds, as last given to Ticker() or reset()."""
        with cython.critical_section(self):  # reset() may replace it from another thread
            interval = self._interval
        return interval

    cdef gr_ctimer *rec(self) except NULL:
        if self.chan is None:
            raise RuntimeError("Ticker was not initialised: use Ticker(interval)")
        return self.chan.timer

    def stop(self) -> None:
        """Stop ticking; a tick not yet received is discarded."""
        _timer_stop(self.rec(), None)

    def reset(self, interval) -> None:
        """Tick every ``interval`` seconds from now on; a tick not yet received is
        discarded."""
        cdef gr_ctimer *tm = self.rec()
        cdef int64_t period = _period_ns(interval)
        _timer_reset(tm, _deadline_in(period), period, None)
        with cython.critical_section(self):  # read from any thread (interval)
            self._interval = interval


cdef int _fire_timers(M m) except -1:
    """GR_NEXT_TIMERS: fire every timer due now, earliest first. A channel timer sends the
    time it was due (as _timer_poll does); a function timer starts its function as a new
    task."""
    cdef int64_t now = gr_nanotime()
    cdef int64_t when
    cdef object v
    cdef gr_ctimer *fn_timer = NULL
    cdef Timer tm
    cdef Task t
    cdef int rc
    while True:
        # The earliest deadline is the one gr_ctimers_fire takes, unless another thread
        # stops or resets a timer in between: then the value is off by that race, never
        # later than now.
        when = gr_ctimers_earliest(&_ctimers)
        if when > now:
            return 0
        v = when / 1e9
        Py_INCREF(v)
        rc = gr_ctimers_fire(&_ctimers, now, <void *>v, &fn_timer)
        if rc == GR_CTIMER_SENT:
            continue
        Py_DECREF(v)
        if rc == GR_CTIMER_NONE:
            return 0
        if rc == GR_CTIMER_FUNC:
            tm = <Timer>fn_timer.obj
            Py_DECREF(tm)  # the heap's reference, now ours (tm holds its own)
            t = _new_task(m.rt, m, tm.fn, tm.args, tm.kwargs, tm.ctx.copy())
            gr_spawn(m.cm, &t.g)


cdef void _drop_timers() noexcept:
    """The run ended: every timer still armed is dropped without firing."""
    gr_ctimers_close(&_ctimers)
    cdef gr_ctimer *tm = gr_ctimers_drop(&_ctimers)
    while tm != NULL:
        if tm.chan == NULL:
            Py_DECREF(<object>tm.obj)
        tm = gr_ctimers_drop(&_ctimers)


def after(seconds) -> Chan:
    """A channel that receives the time it was due (on time.monotonic()'s clock) once
    ``seconds`` have passed, as Go's time.After. Nothing keeps it alive but the channel:
    dropping it frees the timer.

    Example::

        i, v, ok = gr.select(gr.Recv(results), gr.Recv(gr.after(1.0)))
    """
    cdef int64_t ns = _timer_ns(seconds, "seconds")
    cdef Chan ch = _timer_chan()
    _timer_reset(ch.timer, _deadline_in(ns), 0, None)
    return ch


def after_func(seconds, fn, *args, **kwargs) -> Timer:
    """Start ``fn(*args, **kwargs)`` as a new task once ``seconds`` have passed, as Go's
    time.AfterFunc. Returns a Timer (whose ``chan`` is None): ``stop()`` cancels the call
    if it has not started yet. It runs even if nobody keeps the Timer.

    Example::

        t = gr.after_func(5.0, print, "no data yet")
        data.recv()
        t.stop()
    """
    _check_fn(fn, "after_func")
    cdef int64_t ns = _timer_ns(seconds, "seconds")
    cdef Timer tm = Timer.__new__(Timer)
    tm.t = <gr_ctimer *>PyMem_Malloc(sizeof(gr_ctimer))
    if tm.t == NULL:
        raise MemoryError()
    gr_ctimer_init(tm.t, NULL, <void *>tm)
    tm.owns = True
    tm.fn = fn
    tm.args = args
    tm.kwargs = kwargs if kwargs else None
    tm.ctx = contextvars.copy_context()
    _timer_reset(tm.t, _deadline_in(ns), 0, tm)
    return tm
