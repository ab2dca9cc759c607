# Included by _core.pyx: channels, select and the sync primitives.
#
# All of their shared state (buffers, wait queues, counts) lives in csrc (chan.h, sync.h);
# this part moves Python references in and out and parks the calling task.
import collections
import sys
import threading
import time

from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF, Py_XDECREF
from libc.stdint cimport int64_t, uint32_t
from libc.string cimport memset


if sys.version_info >= (3, 11):
    _ExceptionGroup = ExceptionGroup
    _BaseExceptionGroup = BaseExceptionGroup
else:
    from exceptiongroup import ExceptionGroup as _ExceptionGroup, BaseExceptionGroup as _BaseExceptionGroup


class ChanClosed(Exception):
    """A send on a closed channel, a receive on a closed and drained one, or a second close."""


# The API call behind each sync.h wait, indexed by park reason: named when it is misused.
cdef tuple _WAIT_CALLS = tuple({
    PARK_MUTEX: "Mutex.lock", PARK_SEMAPHORE: "Semaphore.acquire",
    PARK_WAITGROUP: "WaitGroup.wait", PARK_EVENT: "Event.wait",
    PARK_RWMUTEX_READ: "RWMutex.rlock", PARK_RWMUTEX_WRITE: "RWMutex.lock",
}.get(r, "") for r in range(PARK_BLOCKING + 1))


cdef bint _acquire(uint32_t kind, void *obj, object timeout, int reason) except -1:
    """Wait on a sync.h primitive from the running task: True once granted, False if
    ``timeout`` seconds pass first. Cancellation raises Cancelled, unless the grant won the
    race: then the cancellation stays pending for the next park point."""
    cdef M m = _running(<str>_WAIT_CALLS[reason])
    cdef int64_t deadline = _deadline(timeout, "timeout")
    cdef gr_waitop op
    _op(&op, kind, obj)
    return _wait(m, m.cur, &op, deadline, reason) == GR_WAIT_OK


cdef inline object _take(void *p):
    """Turn a reference moved out of a channel into an object (no net refcount change)."""
    cdef object v = <object>p
    Py_DECREF(v)
    return v


cdef int _timer_poll(gr_ctimer *tm, int64_t now) except -1:
    """Receiving from a timer's channel: fire the timer now if it is due. A channel timer
    is in the heap only while a task is parked on its channel (ctimer.h), so this is how
    it fires otherwise. The value is the time it was due, on time.monotonic()'s clock, as
    Go 1.23 sends: firing is lazy, so the time of the poll would put a timer polled late
    after one due later than it."""
    cdef int64_t when = gr_ctimer_when(tm)
    if when == 0 or when > now:
        return 0
    cdef object v = when / 1e9
    Py_INCREF(v)
    cdef int w = gr_wake_begin()  # the value may go to a receiver parked on an M: a wake
    cdef int rc = gr_ctimer_run(&_ctimers, tm, now, <void *>v)
    gr_wake_end(w)
    if rc != GR_CTIMER_SENT:
        Py_DECREF(v)
    return 0


@cython.final
cdef class _ThreadWaiter:
    """The G and stand-in M through which a thread that runs no task waits (xwait.h)."""
    cdef gr_xwaiter *xw

    def __cinit__(self):
        self.xw = gr_xwaiter_new(<void *>self)
        if self.xw == NULL:
            raise MemoryError()

    def __dealloc__(self):
        gr_xwaiter_free(self.xw)


# One waiter per thread: a thread waits for one thing at a time.
_thread_waiters = threading.local()


cdef M _running_on(M m, str what):
    """m, the M of this thread, is running a task: code the scheduler runs between tasks
    (a signal handler, a finalizer) must not wait, or it would block the M itself and
    every task pinned to it."""
    if m.cur is None:
        raise RuntimeError(f"{what}() must be called from a task, or from a thread that is "
                           f"not one of the runtime's, not from code run between tasks")
    return m


cdef int _wait_thread(gr_waitop *op, int64_t deadline) except -1:
    """The park protocol for a thread that is not an M (a plain thread, a blocking()
    call, any thread outside run()): the same begin and end as a task's wait, with the
    thread blocked in between instead of a task parked. A signal handler's exception (Ctrl-C in
    the main thread) ends the wait; if the operation completed first, it is raised after."""
    cdef _ThreadWaiter w = getattr(_thread_waiters, "w", None)
    if w is None:
        w = _ThreadWaiter()
        _thread_waiters.w = w
    cdef gr_xwaiter *xw = w.xw
    cdef int r
    gr_xwaiter_prepare(xw)
    cdef int woke = gr_wake_begin()  # the begin may hand over to a task parked on an M
    cdef int rc = gr_waitop_begin(op, &xw.g, GR_DEADLINE_NOW if deadline == GR_DEADLINE_NOW
                                  else GR_DEADLINE_NEVER)
    gr_wake_end(woke)
    if rc == GR_WAIT_NOMEM:
        raise MemoryError()
    if rc != GR_WAIT_PARK:
        return rc
    pending = None
    while True:
        # Before every sleep, the first included: a signal whose handler ran since the
        # caller's last bytecode (while this call got here) would not interrupt the sleep.
        if pending is None:
            try:
                PyErr_CheckSignals()
            except BaseException as e:
                pending = e
                gr_xwaiter_cancel(xw)
        with nogil:
            r = gr_xwaiter_park(xw, deadline)
        if r == GR_XWAIT_READY:
            break
    rc = gr_waitop_end(op, &xw.g)
    if pending is not None:
        if rc == GR_WAIT_OK and op.kind == GR_OP_RECV:
            Py_DECREF(<object>op.elem)  # nobody will take the value now
        raise pending
    return rc


cdef int _recv_timer_thread(gr_ctimer *tm, gr_waitop *op, int64_t deadline) except -1:
    """A thread receives from a timer's channel. Channel timers are fired by the Ms (or by
    a receive that finds them due), and there may be no run at all: so poll, and sleep
    until the timer is due, the deadline, or a signal."""
    cdef int rc
    cdef int64_t now, until
    while True:
        now = gr_nanotime()
        _timer_poll(tm, now)
        rc = _wait_thread(op, GR_DEADLINE_NOW)
        if rc != GR_WAIT_TIMEOUT or deadline == GR_DEADLINE_NOW:
            return rc
        if deadline > 0 and now >= deadline:
            return GR_WAIT_TIMEOUT
        until = gr_ctimer_when(tm)
        if deadline > 0 and (until == 0 or deadline < until):
            until = deadline
        # A stopped timer never fires: without a deadline this waits for good, as in Go.
        time.sleep(min((until - now) / 1e9, 0.05) if until > 0 else 0.05)


cdef int _check_capacity(object n, str what) except -1:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{what} must be >= 0, got {n}")
    return 0


@cython.final
cdef class Chan:
    """A Go channel. ``Chan()`` is unbuffered (a send waits for a receiver); ``Chan(n)``
    buffers n values. Waiting senders and receivers are served first come, first served.

    Example::

        ch = gr.Chan()
        gr.go(ch.send, 42)
        assert ch.recv() == 42
    """
    cdef gr_chan *c
    cdef gr_ctimer *timer  # the timer feeding it (after, Timer, Ticker), else NULL
    cdef readonly object capacity
    cdef object __weakref__

    __class_getitem__ = classmethod(types.GenericAlias)  # Chan[int] in annotations

    def __cinit__(self, capacity=0):
        _check_capacity(capacity, "capacity")
        self.c = gr_chan_new(capacity)
        if self.c == NULL:
            raise MemoryError(f"cannot allocate a channel buffer of {capacity} values")
        self.capacity = capacity

    def __dealloc__(self):
        cdef void *p
        if self.timer != NULL:
            gr_ctimer_forget(&_ctimers, self.timer)
            PyMem_Free(self.timer)
        if self.c != NULL:
            p = gr_chan_take_buffered(self.c)
            while p != NULL:
                Py_XDECREF(<PyObject *>p)
                p = gr_chan_take_buffered(self.c)
            gr_chan_free(self.c)

    def send(self, value, timeout=None) -> None:
        """Send value, waiting for room or for a receiver. Raises ChanClosed, or
        TimeoutError if ``timeout`` seconds pass first (the value is then not sent).

        Works from any thread: a task parks, a plain thread (or a ``blocking()`` call)
        blocks, and no M is held up either way.

        Example::

            ch.send("job", timeout=1.0)
        """
        if self._send(value, _deadline(timeout, "timeout") if timeout is not None
                      else GR_DEADLINE_NEVER) == GR_WAIT_TIMEOUT:
            raise TimeoutError("send timed out")

    def try_send(self, value) -> bool:
        """Send value only if a receiver or room is ready now: True if sent. Raises
        ChanClosed on a closed channel, as send() does.

        It never waits, so it also works between tasks (a done callback, a signal
        handler).

        Example::

            if not ch.try_send(item):
                dropped += 1
        """
        return _offer(self, value)

    cdef int _send(self, value, int64_t deadline) except -1:
        """Send; GR_WAIT_OK, or GR_WAIT_TIMEOUT when the deadline came first."""
        cdef M m = _curm()
        cdef gr_waitop op
        _op(&op, GR_OP_SEND, self.c)
        op.elem = <void *>value
        Py_INCREF(value)  # the channel's reference, once the value is in
        cdef int rc = GR_WAIT_CANCELLED
        try:
            if m is None:
                rc = _wait_thread(&op, deadline)
            else:
                rc = _wait(_running_on(m, "Chan.send"), m.cur, &op, deadline, PARK_CHAN_SEND)
        finally:
            if rc != GR_WAIT_OK:
                Py_DECREF(value)
        if rc == GR_WAIT_CLOSED:
            raise ChanClosed("send on closed channel")
        return rc

    def recv(self, timeout=None):
        """Receive a value, waiting for one. Raises ChanClosed once closed and drained,
        or TimeoutError if ``timeout`` seconds pass first. Works from any thread, as
        send() does.

        Example::

            job = ch.recv(timeout=1.0)
        """
        return self._recv(_deadline(timeout, "timeout") if timeout is not None else GR_DEADLINE_NEVER)

    def try_recv(self):
        """Receive only if a value is ready now: ``(value, True)``, or ``(None, False)``
        when none is. Raises ChanClosed once closed and drained, as recv() does.

        Example::

            value, ok = ch.try_recv()
        """
        cdef void *p = NULL
        if self.timer != NULL:
            _timer_poll(self.timer, gr_nanotime())
        cdef int w = gr_wake_begin()  # taking a value may let a sender parked on an M go
        cdef int rc = gr_chan_recv(self.c, NULL, &p, GR_DEADLINE_NOW)
        gr_wake_end(w)
        if rc == GR_WAIT_OK:
            return _take(p), True
        if rc == GR_WAIT_CLOSED:
            raise ChanClosed("receive on closed channel")
        return None, False

    cdef object _recv(self, int64_t deadline):
        cdef gr_waitop op
        if self._recv_op(&op, deadline) == GR_WAIT_TIMEOUT:
            raise TimeoutError("receive timed out")
        return _take(op.elem)

    cdef int _recv_op(self, gr_waitop *op, int64_t deadline) except -1:
        """Receive into op.elem (a reference to take); OK or TIMEOUT."""
        cdef M m = _curm()
        cdef int rc
        _op(op, GR_OP_RECV, self.c)
        if m is not None:
            _running_on(m, "Chan.recv")
            if self.timer != NULL:
                _timer_poll(self.timer, gr_nanotime())
                op.ctimers = &_ctimers
                op.timers = &self.timer
                op.ntimers = 1
            rc = _wait(m, m.cur, op, deadline, PARK_CHAN_RECV)
        elif self.timer != NULL:
            rc = _recv_timer_thread(self.timer, op, deadline)
        else:
            rc = _wait_thread(op, deadline)
        if rc == GR_WAIT_CLOSED:
            raise ChanClosed("receive on closed channel")
        return rc

    def close(self) -> None:
        """Close the channel: parked receivers and senders wake with ChanClosed, buffered
        values can still be received. Closing twice raises ChanClosed. Safe from any thread."""
        cdef int w = gr_wake_begin()
        cdef int rc = gr_chan_close(self.c)
        gr_wake_end(w)
        if rc != 0:
            raise ChanClosed("close of closed channel")

    @property
    def closed(self) -> bool:
        return gr_chan_is_closed(self.c)

    def __len__(self):
        if self.timer != NULL:
            _timer_poll(self.timer, gr_nanotime())
        return gr_chan_len(self.c)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self._recv(GR_DEADLINE_NEVER)
        except ChanClosed:
            raise StopIteration from None

    def __repr__(self):
        state = " closed" if self.closed else ""
        return f"<Chan {len(self)}/{self.capacity}{state}>"


@cython.final
cdef class Recv:
    """A select case that receives from ``chan`` (None: never ready)."""
    cdef readonly Chan chan

    def __init__(self, chan):
        if chan is not None and not isinstance(chan, Chan):
            raise TypeError(f"Recv needs a Chan or None, not {type(chan).__name__}")
        self.chan = chan


@cython.final
cdef class Send:
    """A select case that sends ``value`` on ``chan`` (None: never ready)."""
    cdef readonly Chan chan
    cdef readonly object value

    def __init__(self, chan, value):
        if chan is not None and not isinstance(chan, Chan):
            raise TypeError(f"Send needs a Chan or None, not {type(chan).__name__}")
        self.chan = chan
        self.value = value


# Up to this many cases, select first polls them (_select_poll) before anything is
# allocated or more than one channel is locked.
cdef enum:
    _SELECT_POLL_MAX = 16


cdef inline void _random_order(uint32_t *order, uint32_t n) noexcept:
    """order[0..n) := a uniformly random permutation of 0..n-1 (Fisher-Yates): when
    several cases are ready, select picks one at random."""
    cdef uint32_t i, j, tmp
    for i in range(n):
        order[i] = i
    for i in range(n - 1, 0, -1):
        j = gr_fastrand() % (i + 1)
        tmp = order[i]; order[i] = order[j]; order[j] = tmp


cdef object _select_poll(tuple cases, Py_ssize_t ncases):
    """Try each case once without waiting, in a uniformly random order, locking one
    channel at a time; the (index, value, ok) of the first that proceeds, or None. A ready
    case is found here before any channel is locked for parking, as Go's selectgo polls
    before it enqueues; only a select that must wait pays for locking every channel."""
    cdef uint32_t order[_SELECT_POLL_MAX]
    cdef uint32_t i
    cdef void *p
    cdef int rc
    cdef int64_t now = 0
    cdef object case, value
    cdef Chan chan
    if ncases > _SELECT_POLL_MAX:
        return None
    _random_order(order, <uint32_t>ncases)
    for i in range(ncases):
        case = cases[order[i]]
        if type(case) is Recv:
            chan = (<Recv>case).chan
            if chan is None:
                continue
            if chan.timer != NULL:
                if now == 0:
                    now = gr_nanotime()
                _timer_poll(chan.timer, now)
            p = NULL
            rc = gr_chan_recv(chan.c, NULL, &p, GR_DEADLINE_NOW)
            if rc == GR_WAIT_OK:
                return (order[i], _take(p), True)
            if rc == GR_WAIT_CLOSED:
                return (order[i], None, False)
        else:
            chan = (<Send>case).chan
            if chan is None:
                continue
            value = (<Send>case).value
            Py_INCREF(value)  # the channel's reference, if it takes the value
            rc = gr_chan_send(chan.c, NULL, <void *>value, GR_DEADLINE_NOW)
            if rc == GR_WAIT_OK:
                return (order[i], None, True)
            Py_DECREF(value)
            if rc == GR_WAIT_CLOSED:
                raise ChanClosed("send on closed channel")
    return None


def select(*cases, default=False, timeout=None):
    """Wait until one of the cases can proceed, do it, and return ``(index, value, ok)``.

    Cases are ``Recv(ch)`` and ``Send(ch, v)``. When several are ready one is chosen at
    random. A Recv on a closed channel gives ``(i, None, False)``; a Send on one raises
    ChanClosed. With ``default=True`` it never waits, and with ``timeout`` it waits that
    long: both return ``(-1, None, False)`` when nothing was ready.

    Example::

        i, v, ok = gr.select(gr.Recv(data), gr.Recv(quit), timeout=1.0)
    """
    cdef M m = _running("select")
    cdef uint32_t n = 0, i, built = 0
    cdef Py_ssize_t ncases = len(cases)
    cdef uint32_t ntimers = 0
    cdef int64_t now
    cdef int64_t deadline = GR_DEADLINE_NOW if default else _deadline(timeout, "timeout")
    for c in cases:
        if not isinstance(c, (Recv, Send)):
            raise TypeError(f"select cases must be Recv or Send, not {type(c).__name__}")
    _check_cancel(m, m.cur)  # a park point, even when a case is ready
    ready = _select_poll(cases, ncases)
    if ready is not None:
        return ready
    if default:
        return (-1, None, False)
    live = [k for k in range(ncases) if cases[k].chan is not None]  # None: never ready
    n = len(live)
    cdef gr_selcase *sc = <gr_selcase *>PyMem_Malloc((n + 1) * sizeof(gr_selcase))
    cdef uint32_t *order = <uint32_t *>PyMem_Malloc((n + 1) * sizeof(uint32_t))
    cdef gr_waiter *ws = <gr_waiter *>PyMem_Malloc((n + 1) * sizeof(gr_waiter))
    cdef gr_ctimer **tms = <gr_ctimer **>PyMem_Malloc((n + 1) * sizeof(gr_ctimer *))
    if sc == NULL or order == NULL or ws == NULL or tms == NULL:
        PyMem_Free(sc); PyMem_Free(order); PyMem_Free(ws); PyMem_Free(tms)
        raise MemoryError()
    memset(sc, 0, (n + 1) * sizeof(gr_selcase))
    memset(ws, 0, (n + 1) * sizeof(gr_waiter))
    cdef gr_waitop op
    _op(&op, GR_OP_SELECT, sc)
    op.ncases = n
    op.pollorder = order
    op.ws = ws
    cdef int rc = GR_WAIT_CANCELLED
    cdef object case
    try:
        for i in range(n):
            case = cases[live[i]]
            if isinstance(case, Send):
                sc[i].c = (<Send>case).chan.c
                sc[i].send = 1
                sc[i].elem = <void *>(<Send>case).value
                Py_INCREF((<Send>case).value)
            else:
                sc[i].c = (<Recv>case).chan.c
                if (<Recv>case).chan.timer != NULL:
                    tms[ntimers] = (<Recv>case).chan.timer
                    ntimers += 1
            built = i + 1
        if ntimers:
            now = gr_nanotime()
            for i in range(ntimers):
                _timer_poll(tms[i], now)
            op.ctimers = &_ctimers
            op.timers = tms
            op.ntimers = ntimers
        _random_order(order, n)
        rc = _wait(m, m.cur, &op, deadline, PARK_SELECT)
        if rc == GR_WAIT_TIMEOUT:
            return (-1, None, False)
        if sc[op.fired].send:
            if not sc[op.fired].ok:
                raise ChanClosed("send on closed channel")
            return (live[op.fired], None, True)
        if sc[op.fired].ok:
            return (live[op.fired], _take(sc[op.fired].elem), True)
        return (live[op.fired], None, False)
    finally:
        for i in range(built):  # give back the values of the sends that did not happen
            if sc[i].send and not (rc == GR_WAIT_OK and <int>i == op.fired and sc[i].ok):
                Py_DECREF(<object>sc[i].elem)
        PyMem_Free(sc)
        PyMem_Free(order)
        PyMem_Free(ws)
        PyMem_Free(tms)


@cython.final
cdef class Mutex:
    """A mutual exclusion lock that parks the task, never the thread.

    Example::

        mu = gr.Mutex()
        with mu:
            counter += 1
    """
    cdef gr_sema s

    def __cinit__(self):
        gr_sema_init(&self.s, 1, 1)

    def lock(self) -> None:
        """Acquire the lock, parking until it is free.

        Example::

            mu.lock()
            try:
                counter += 1
            finally:
                mu.unlock()
        """
        _acquire(GR_OP_SEMA, &self.s, None, PARK_MUTEX)

    def try_lock(self) -> bool:
        """Acquire the lock if it is free, without waiting: True if acquired.

        Example::

            if mu.try_lock():
                mu.unlock()
        """
        return gr_sema_acquire(&self.s, NULL, GR_DEADLINE_NOW) == GR_WAIT_OK

    def unlock(self) -> None:
        """Release the lock (any task may, as in Go). Unlocking an unlocked Mutex raises
        RuntimeError.

        Example::

            mu.unlock()
        """
        cdef int w = gr_wake_begin()
        cdef int rc = gr_sema_release(&self.s)
        gr_wake_end(w)
        if rc != 0:
            raise RuntimeError("unlock of unlocked Mutex")

    def locked(self) -> bool:
        """True while some task holds the lock.

        Example::

            assert not mu.locked()
        """
        return gr_sema_available(&self.s) == 0

    def __enter__(self):
        self.lock()
        return self

    def __exit__(self, *exc):
        self.unlock()


@cython.final
cdef class Semaphore:
    """A counting semaphore of ``n`` permits, usable with ``with``. It is bounded, as
    threading.BoundedSemaphore (``BoundedSemaphore`` is another name for it): releasing
    more than were acquired raises ValueError.

    Example::

        sem = gr.Semaphore(4)
        with sem:
            fetch(url)
    """
    cdef gr_sema s

    def __cinit__(self, n=1):
        _check_capacity(n, "n")
        gr_sema_init(&self.s, n, n)

    def acquire(self, timeout=None) -> bool:
        """Take a permit, parking until one is free; False if ``timeout`` seconds pass
        first.

        Example::

            if sem.acquire(timeout=1.0):
                sem.release()
        """
        return _acquire(GR_OP_SEMA, &self.s, timeout, PARK_SEMAPHORE)

    def try_acquire(self) -> bool:
        """Take a permit if one is free, without waiting: True if taken.

        Example::

            if sem.try_acquire():
                sem.release()
        """
        return gr_sema_acquire(&self.s, NULL, GR_DEADLINE_NOW) == GR_WAIT_OK

    def release(self) -> None:
        """Give a permit back (any task or thread may). Raises ValueError if every permit
        is already free.

        Example::

            sem.release()
        """
        cdef int w = gr_wake_begin()
        cdef int rc = gr_sema_release(&self.s)
        gr_wake_end(w)
        if rc != 0:
            raise ValueError("Semaphore released more times than it was acquired")

    @property
    def available(self) -> int:
        """The permits free now."""
        return gr_sema_available(&self.s)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


# threading's name for a semaphore that refuses extra releases, which gr.Semaphore does.
BoundedSemaphore = Semaphore

_INT64_MAX = 2**63 - 1


cdef int _latch_error(int rc, object n) except -1:
    if rc == GR_LATCH_NEGATIVE:
        raise ValueError("negative WaitGroup counter")
    if rc == GR_LATCH_OVERFLOW:
        raise OverflowError(f"WaitGroup counter overflow: adding {n} would pass 2**63 - 1")
    return 0


@cython.final
cdef class WaitGroup:
    """Waits for a collection of tasks to finish, as Go's sync.WaitGroup.

    Example::

        wg = gr.WaitGroup()
        for url in urls:
            wg.add()
            gr.go(fetch, url, wg)   # fetch calls wg.done()
        wg.wait()
    """
    cdef gr_latch l

    def __cinit__(self):
        gr_latch_init(&self.l, 0)

    def add(self, n=1) -> None:
        """Add n (which may be negative) to the counter. Raises ValueError if the counter
        would go negative and OverflowError if it would pass 2**63 - 1, leaving it as it
        was."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        if n > _INT64_MAX:  # beyond int64_t: decided here, with the same errors
            _latch_error(GR_LATCH_OVERFLOW, n)
        if n < -_INT64_MAX:
            _latch_error(GR_LATCH_NEGATIVE, n)
        cdef int w = gr_wake_begin()
        cdef int rc = gr_latch_add(&self.l, n)
        gr_wake_end(w)
        _latch_error(rc, n)

    def done(self) -> None:
        """Decrement the counter by one."""
        cdef int w = gr_wake_begin()
        cdef int rc = gr_latch_add(&self.l, -1)
        gr_wake_end(w)
        _latch_error(rc, -1)

    def wait(self, timeout=None) -> bool:
        """Park until the counter is zero; False if ``timeout`` seconds pass first."""
        return _acquire(GR_OP_LATCH, &self.l, timeout, PARK_WAITGROUP)

    @property
    def count(self) -> int:
        return gr_latch_count(&self.l)


@cython.final
cdef class Event:
    """A flag tasks can wait for, as threading.Event.

    Example::

        ready = gr.Event()

        def start():
            setup()
            ready.set()

        gr.go(start)
        ready.wait()
    """
    cdef gr_latch l
    cdef Chan _chan  # made by the chan property; closed by set(), replaced after clear()

    def __cinit__(self):
        gr_latch_init(&self.l, 1)

    def set(self) -> None:
        """Set the flag: every waiter wakes, and waits return at once until clear().
        Safe from any thread.

        Example::

            ready = gr.Event()
            ready.set()
        """
        cdef int w = gr_wake_begin()
        gr_latch_add(&self.l, -1)  # already set: the latch refuses to go below zero
        # After the latch: a chan made meanwhile sees it set and closes itself.
        with cython.critical_section(self):
            if self._chan is not None and not gr_chan_is_closed(self._chan.c):
                gr_chan_close(self._chan.c)
        gr_wake_end(w)

    def clear(self) -> None:
        """Reset the flag.

        Example::

            ready = gr.Event()
            ready.clear()
        """
        gr_latch_reset(&self.l)
        with cython.critical_section(self):
            if self._chan is not None and gr_chan_is_closed(self._chan.c):
                self._chan = None  # the next chan is open until the next set()

    def is_set(self) -> bool:
        """True while the flag is set.

        Example::

            ready = gr.Event()
            if not ready.is_set():
                ready.wait()
        """
        return gr_latch_count(&self.l) == 0

    def wait(self, timeout=None) -> bool:
        """Park until the flag is set; False if ``timeout`` seconds pass first.

        Example::

            ready = gr.Event()
            ready.wait(timeout=1.0)
        """
        return _acquire(GR_OP_LATCH, &self.l, timeout, PARK_EVENT)

    @property
    def chan(self) -> Chan:
        """A channel closed when the flag is set, for select. After clear() it is a new,
        open channel.

        Example::

            i, _, _ = gr.select(gr.Recv(stop.chan), gr.Recv(jobs))
        """
        with cython.critical_section(self):
            if self._chan is None:
                self._chan = Chan()
            if gr_latch_count(&self.l) == 0 and not gr_chan_is_closed(self._chan.c):
                gr_chan_close(self._chan.c)
            return self._chan


@cython.final
cdef class RWMutex:
    """A readers-writer lock, as Go's sync.RWMutex; writers are preferred. ``with rw:``
    or ``with rw.write_lock():`` holds it for writing, ``with rw.read_lock():`` for reading.

    Example::

        rw = gr.RWMutex()
        with rw.read_lock():
            value = table[key]
    """
    cdef gr_rwmutex rw

    def __cinit__(self):
        gr_rwmutex_init(&self.rw)

    def lock(self) -> None:
        """Acquire it for writing, parking until no reader or writer holds it.

        Example::

            rw.lock()
            table[key] = value
            rw.unlock()
        """
        _acquire(GR_OP_LOCK, &self.rw, None, PARK_RWMUTEX_WRITE)

    def rlock(self) -> None:
        """Acquire it for reading, parking while a writer holds or waits for it.

        Example::

            rw.rlock()
            value = table[key]
            rw.runlock()
        """
        _acquire(GR_OP_RLOCK, &self.rw, None, PARK_RWMUTEX_READ)

    def try_lock(self) -> bool:
        """Acquire it for writing if that can be done now: True if acquired.

        Example::

            if rw.try_lock():
                rw.unlock()
        """
        return gr_rwmutex_lock(&self.rw, NULL, GR_DEADLINE_NOW) == GR_WAIT_OK

    def try_rlock(self) -> bool:
        """Acquire it for reading if that can be done now: True if acquired.

        Example::

            if rw.try_rlock():
                rw.runlock()
        """
        return gr_rwmutex_rlock(&self.rw, NULL, GR_DEADLINE_NOW) == GR_WAIT_OK

    def unlock(self) -> None:
        """Release the write lock; raises RuntimeError if it is not held for writing.

        Example::

            rw.unlock()
        """
        cdef int w = gr_wake_begin()
        cdef int rc = gr_rwmutex_unlock(&self.rw)
        gr_wake_end(w)
        if rc != 0:
            raise RuntimeError("unlock of unlocked RWMutex")

    def runlock(self) -> None:
        """Release one read lock; raises RuntimeError if none is held.

        Example::

            rw.runlock()
        """
        cdef int w = gr_wake_begin()
        cdef int rc = gr_rwmutex_runlock(&self.rw)
        gr_wake_end(w)
        if rc != 0:
            raise RuntimeError("runlock of RWMutex not held for reading")

    def rlocker(self):
        """A lock object whose lock/unlock (and ``with``) take the read side, as Go's
        RLocker.

        Example::

            with rw.rlocker():
                value = table[key]
        """
        return _RLocker(self)

    def read_lock(self):
        """A context manager holding the lock for reading (the same as rlocker()).

        Example::

            with rw.read_lock():
                value = table[key]
        """
        return _RLocker(self)

    def write_lock(self):
        """A context manager holding the lock for writing (the RWMutex itself).

        Example::

            with rw.write_lock():
                table[key] = value
        """
        return self

    def __enter__(self):
        self.lock()
        return self

    def __exit__(self, *exc):
        self.unlock()


cdef class _RLocker:
    """The read side of an RWMutex, as a lock (RWMutex.rlocker(), read_lock())."""
    cdef RWMutex rw

    def __init__(self, RWMutex rw):
        self.rw = rw

    def lock(self):
        """Acquire the RWMutex for reading."""
        self.rw.rlock()

    def unlock(self):
        """Release one read lock of the RWMutex."""
        self.rw.runlock()

    def __enter__(self):
        self.rw.rlock()
        return self

    def __exit__(self, *exc):
        self.rw.runlock()


class Cond:
    """A condition variable over a lock ``L`` (a new Mutex by default; an RWMutex, or
    its rlocker(), will do), as Go's sync.Cond: wait() unlocks L, parks until signal() or
    broadcast(), and locks L again before it returns, whatever happens (a cancelled
    waiter gets L back before Cancelled propagates, and passes on a wake-up it was given).
    signal() and broadcast() may be called from any thread, with or without L.

    Example::

        cond = gr.Cond()
        with cond.L:
            while not ready:
                cond.wait()
    """

    def __init__(self, L=None):
        if L is None:
            L = Mutex()
        elif not isinstance(L, (Mutex, RWMutex, _RLocker)):
            raise TypeError(f"Cond needs a Mutex, an RWMutex or an RWMutex.rlocker(), "
                            f"not {type(L).__name__}")
        self.L = L
        # Held for a few deque operations, never across a wait.
        self._lock = threading.Lock()
        self._waiters = collections.deque()  # a Chan(1) per waiter, oldest first

    def wait(self, timeout=None) -> bool:
        """Unlock L, park until woken by signal() or broadcast() (or until ``timeout``
        seconds pass: then False), and lock L again. L must be held. As in Go, check the
        condition in a loop: another task may have changed it before this one runs.

        Example::

            with cond.L:
                while not queue:
                    cond.wait()
        """
        cdef M m = _running("Cond.wait")
        _deadline(timeout, "timeout")
        ch = Chan(1)
        with self._lock:
            self._waiters.append(ch)
        try:
            self.L.unlock()
        except BaseException:
            with self._lock:
                self._waiters.remove(ch)
            raise
        try:
            ch.recv(timeout)
            return True
        except TimeoutError:
            with self._lock:
                if ch in self._waiters:
                    self._waiters.remove(ch)
                    return False
            return True  # woken as the time ran out
        except BaseException:
            with self._lock:
                mine = ch in self._waiters
                if mine:
                    self._waiters.remove(ch)
            if not mine:
                self.signal()  # pass on the wake-up this waiter will not use
            raise
        finally:
            _relock(m, self.L)

    def signal(self) -> None:
        """Wake one waiting task, the one waiting longest, if any.

        Example::

            with cond.L:
                queue.append(item)
                cond.signal()
        """
        with self._lock:
            ch = self._waiters.popleft() if self._waiters else None
        if ch is not None:
            _offer(ch, None)

    def broadcast(self) -> None:
        """Wake every waiting task.

        Example::

            with cond.L:
                done = True
                cond.broadcast()
        """
        with self._lock:
            waiters, self._waiters = self._waiters, collections.deque()
        for ch in waiters:
            _offer(ch, None)


cdef int _relock(M m, object L) except -1:
    """Cond.wait's relock of L: it takes no cancellation (a shielded wait), as the caller
    must hold L when wait() returns or raises."""
    cdef gr_waitop op
    cdef int reason
    if isinstance(L, Mutex):
        _op(&op, GR_OP_SEMA, &(<Mutex>L).s)
        reason = PARK_MUTEX
    elif isinstance(L, RWMutex):
        _op(&op, GR_OP_LOCK, &(<RWMutex>L).rw)
        reason = PARK_RWMUTEX_WRITE
    else:
        _op(&op, GR_OP_RLOCK, &(<_RLocker>L).rw.rw)
        reason = PARK_RWMUTEX_READ
    op.shield = GR_SHIELD_QUIET
    while _wait(m, m.cur, &op, GR_DEADLINE_NEVER, reason) != GR_WAIT_OK:
        pass
    return 0


class Once:
    """Runs a function exactly once, however many tasks call ``do``; later callers wait
    for the first call to finish. As in Go, a call that raises still counts.

    Example::

        once = gr.Once()
        once.do(init_config)
    """

    def __init__(self):
        self._mu = Mutex()
        self._done = Event()

    def do(self, fn, *args, **kwargs) -> None:
        """Call ``fn(*args, **kwargs)`` if no call of ``do`` has been made yet; otherwise
        wait until the first call has returned (or raised).

        Example::

            once.do(load_config, path)
        """
        if self._done.is_set():
            return
        _running("Once.do")
        with self._mu:
            if self._done.is_set():
                return
            try:
                fn(*args, **kwargs)
            finally:
                self._done.set()


cdef enum:
    _TG_NEW, _TG_OPEN, _TG_DONE


class TaskGroup:
    """Structured concurrency: the ``with`` block does not end before every task started
    with ``tg.go`` has finished, including tasks that those tasks started in the group.

    - The first failure, of a task or of the block itself, cancels every other task of
      the group, and the failures are raised together as an ExceptionGroup, as
      asyncio.TaskGroup does.
    - Cancelling the task that runs the block (the owner) cancels every task of the group,
      whether the owner is in the block or already waiting at its end. The block still
      waits for all of them to finish, then re-raises the owner's Cancelled; if some task
      failed, the ExceptionGroup is raised instead.
    - A group is entered once, from a task; ``tg.go`` raises RuntimeError before the
      block is entered and after it has ended.
    - When the runtime shuts down the owner's wait cannot be cut short either: every task
      is being cancelled, and the block ends once they have finished.
    - With ``limit=N``, ``tg.go`` parks while N tasks of the group are running (errgroup's
      SetLimit), so a loop of ``tg.go`` never has more than N in flight. A task of the
      group that calls ``tg.go`` itself can then wait for a slot that never frees.

    Example::

        with gr.TaskGroup(limit=8) as tg:
            for url in urls:
                tg.go(fetch, url)
    """

    def __init__(self, limit=None):
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise TypeError(f"limit must be an int or None, not {type(limit).__name__}")
            if limit < 1:
                raise ValueError(f"limit must be >= 1, got {limit}")
        # A slot is taken by go() and given back when the task is done (a done hook: a
        # task cancelled before it ran never runs _run).
        self._slots = Semaphore(limit) if limit is not None else None
        # Held only for a few list operations, never across a park: a thread lock will do,
        # and it works where a Mutex would raise Cancelled (a cancelled owner at the end).
        self._lock = threading.Lock()
        self._tasks = []
        self._state = _TG_NEW
        self._cancelling = False  # once set, tasks started in the group are cancelled at once

    def __enter__(self):
        _running("TaskGroup.__enter__")
        with self._lock:
            if self._state != _TG_NEW:
                raise RuntimeError("a TaskGroup can be entered only once")
            self._state = _TG_OPEN
        return self

    def go(self, fn, *args, **kwargs) -> Task:
        """Start ``fn(*args, **kwargs)`` as a task of the group and return its Task; with
        a limit, first park until fewer than ``limit`` tasks of the group are running.
        ``name`` as for go() (default: fn's qualified name, not the group's wrapper's).

        Example::

            t = tg.go(fetch, url)
        """
        _check_fn(fn, "TaskGroup.go")
        name = kwargs.pop("name", None) if kwargs else None
        self._check_open()
        slots = self._slots
        if slots is not None:
            slots.acquire()
        try:
            with self._lock:
                self._check_open()
                t = go(self._run, fn, args, kwargs,
                       name=_fn_name(fn) if name is None else name)
                self._tasks.append(t)
                cancelling = self._cancelling
        except BaseException:
            if slots is not None:
                slots.release()
            raise
        if slots is not None:
            _add_done_callback(t, self._free_slot)
        if cancelling:
            t.cancel()
        return t

    def _check_open(self):
        if self._state == _TG_NEW:
            raise RuntimeError("TaskGroup.go() before the group was entered: "
                               "use it inside 'with TaskGroup() as tg:'")
        if self._state == _TG_DONE:
            raise RuntimeError("TaskGroup.go() after the group's block has ended")

    def _free_slot(self, t):
        self._slots.release()

    def _run(self, fn, args, kwargs):
        try:
            return fn(*args, **kwargs)
        except Cancelled:
            raise
        except BaseException:
            self._cancel_all()
            raise

    def _cancel_all(self):
        with self._lock:
            if self._cancelling:
                return  # every task was cancelled then, and go() cancels the later ones
            self._cancelling = True
            tasks = list(self._tasks)
        for t in tasks:
            t.cancel()

    def __exit__(self, et, ev, tb):
        cdef M m = _running("TaskGroup.__exit__")
        cdef Task me = m.cur
        cdef Task t
        cdef gr_waitop op
        cdef bint owner_cancelled = False  # a cancellation of the owner is pending
        if ev is not None:  # the block failed, or the owner was cancelled in it
            self._cancel_all()
        i = 0
        while True:  # tasks may start more tasks in the group while we wait
            with self._lock:
                if i == len(self._tasks):
                    self._state = _TG_DONE
                    break
                t = self._tasks[i]
            i += 1
            # Not t.join(): a cancelled owner must keep waiting, so this wait takes no
            # cancellation, it only notices one and passes it on to the group.
            if not owner_cancelled and _cancel_pending(m, me):
                owner_cancelled = True
                self._cancel_all()
            _op(&op, GR_OP_JOIN, &t.g)
            op.shield = GR_SHIELD_QUIET if owner_cancelled else GR_SHIELD_REPORT
            while _wait(m, me, &op, GR_DEADLINE_NEVER, PARK_JOIN) == GR_WAIT_CANCELLED:
                if not owner_cancelled:
                    owner_cancelled = True
                    self._cancel_all()
        errors = []
        for t in self._tasks:
            if t._exc is not None and not isinstance(t._exc, Cancelled):
                t.retrieved = True
                errors.append(t._exc)
        if ev is not None and not isinstance(ev, Cancelled):
            errors.insert(0, ev)
        if errors:
            if all(isinstance(e, Exception) for e in errors):
                raise _ExceptionGroup("unhandled errors in a TaskGroup", errors)
            raise _BaseExceptionGroup("unhandled errors in a TaskGroup", errors)
        if owner_cancelled:
            _check_cancel(m, me)  # delivers the owner's Cancelled
        return False

