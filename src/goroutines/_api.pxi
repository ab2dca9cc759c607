# Included by _core.pyx: the helpers built on tasks and channels. Waiting on many tasks
# (gather, wait, as_completed, map), done hooks (Task.add_done_callback, Task.done_chan),
# Queue, task-local data (local) and signals on channels (notify).
#
# Waiting on many tasks hangs one hook (_Waiter) on each of them instead of joining them
# one by one: a task that finishes fires its hooks on its own M, right after it is done
# (_finish), so the waiter parks once, however many tasks it waits for, and learns of a
# failure as soon as it happens.
import collections
import queue as _queue
import signal as _signal
import threading

from cpython.ref cimport Py_INCREF, Py_DECREF

cdef extern from *:
    Py_ssize_t PY_SSIZE_T_MAX

FIRST_COMPLETED = "FIRST_COMPLETED"
FIRST_EXCEPTION = "FIRST_EXCEPTION"
ALL_COMPLETED = "ALL_COMPLETED"


# ---------------------------------------------------------------------------------------
# Done hooks

cdef bint _add_hook(Task t, object hook) except -1:
    """Hang hook on t, to be fired when it is done: True, or False if t is already done
    (the caller fires it then). _finish takes the hooks after the task is done, under the
    same critical section, so a hook is either taken by it or finds the task done."""
    cdef list pair = [None, hook]  # made before the critical section: it may run the collector
    with cython.critical_section(t):
        if gr_g_done(&t.g):
            return False
        cur = t.callbacks
        if cur is None:
            t.callbacks = hook
        elif type(cur) is list:
            (<list>cur).append(hook)
        else:
            pair[0] = cur
            t.callbacks = pair
    return True


cdef int _remove_hook(Task t, object hook) except -1:
    """Take every hook that is ``hook`` (by identity for waiters, by == for callables)
    off t; returns how many."""
    cdef int n = 0
    with cython.critical_section(t):
        cur = t.callbacks
        if cur is None:
            return 0
        if type(cur) is not list:
            if cur is hook or (type(cur) is not _Waiter and cur == hook):
                t.callbacks = None
                return 1
            return 0
        keep = [h for h in <list>cur if not (h is hook or (type(h) is not _Waiter and h == hook))]
        n = len(<list>cur) - len(keep)
        t.callbacks = keep if keep else None
    return n


cdef void _fire_hooks(Task t, object hooks) noexcept:
    """Run t's hooks on the M that finished it, outside any task."""
    if type(hooks) is list:
        for h in <list>hooks:
            _fire_hook(t, h)
    else:
        _fire_hook(t, hooks)


cdef void _fire_hook(Task t, object h) noexcept:
    cdef int w
    if type(h) is _Waiter:
        (<_Waiter>h).notify(t, t._exc)
    elif type(h) is Chan:  # done_chan
        w = gr_wake_begin()
        gr_chan_close((<Chan>h).c)
        gr_wake_end(w)
    else:
        try:
            h(t)
        except BaseException:
            try:
                _log.exception("exception in done callback %r of goroutines task %d", h, t.g.id)
            except BaseException:
                pass


cdef int _add_done_callback(Task t, object fn) except -1:
    if not callable(fn):
        raise TypeError(f"add_done_callback() needs a callable, not {type(fn).__name__}")
    if _add_hook(t, fn):
        return 0
    # Already done: a task may run it at once; any other thread starts it as a task,
    # so that it runs inside the runtime all the same.
    cdef M m = _curm()
    if m is not None and m.cur is not None:
        _fire_hook(t, fn)
    else:
        go(fn, t)
    return 0


cdef Chan _done_chan(Task t):
    cdef Chan ch
    cdef bint done
    cdef list pair = [None, None]
    with cython.critical_section(t):
        ch = t.done_ch
        if ch is None:
            ch = Chan()
            t.done_ch = ch
            if gr_g_done(&t.g):
                gr_chan_close(ch.c)  # nobody can be waiting on it yet
            else:
                cur = t.callbacks
                if cur is None:
                    t.callbacks = ch
                elif type(cur) is list:
                    (<list>cur).append(ch)
                else:
                    pair[0] = cur
                    pair[1] = ch
                    t.callbacks = pair
    return ch


cdef bint _offer(Chan ch, object v) except -1:
    """Send v on ch only if it can go now: True if sent. Never waits, so it works from any
    thread and from code run between tasks (hooks, signal handlers)."""
    Py_INCREF(v)  # the channel's reference, if it takes the value
    cdef int w = gr_wake_begin()
    cdef int rc = gr_chan_send(ch.c, NULL, <void *>v, GR_DEADLINE_NOW)
    gr_wake_end(w)
    if rc == GR_WAIT_OK:
        return True
    Py_DECREF(v)
    if rc == GR_WAIT_CLOSED:
        raise ChanClosed("send on closed channel")
    if rc == GR_WAIT_NOMEM:
        raise MemoryError()
    return False


# ---------------------------------------------------------------------------------------
# Waiting on many tasks

cdef enum:
    _W_ALL        # fires when every task is done
    _W_FIRST      # ... when one is done
    _W_EXCEPTION  # ... when one fails (Cancelled is no failure here), or every task is done
    _W_GATHER     # ... when one fails (Cancelled included), or every task is done
    _W_STREAM     # queues each task as it finishes; fires when the queue is not empty


@cython.final
cdef class _Waiter:
    """A hook shared by the tasks a caller waits for. Its latch (count 1, as an Event)
    reaches zero when the wait is over; the caller may re-arm it and wait again."""
    cdef gr_latch l
    cdef int mode
    cdef Py_ssize_t remaining  # tasks not yet done
    cdef Task failed           # the first to fail (_W_EXCEPTION, _W_GATHER)
    cdef object done           # _W_STREAM: a deque of the tasks done and not yet taken

    def __cinit__(self):
        gr_latch_init(&self.l, 1)

    cdef void notify(self, Task t, object exc) noexcept:
        """t is done, with exc its failure or None. Called once per hook, on the M that
        finished t (or by the caller for a task already done)."""
        cdef bint fire
        cdef int w
        with cython.critical_section(self):
            self.remaining -= 1
            if self.mode == _W_STREAM:
                self.done.append(t)  # a deque grows in plain memory: no collection here
                fire = True
            elif self.mode == _W_FIRST:
                fire = True
            elif self.mode == _W_ALL:
                fire = self.remaining == 0
            else:
                fire = self.remaining == 0
                if exc is not None and (self.mode == _W_GATHER or
                                        not isinstance(exc, Cancelled)):
                    fire = True
                    if self.failed is None:
                        self.failed = t
            if fire:
                w = gr_wake_begin()
                gr_latch_add(&self.l, -1)  # already zero: refused, which is what we want
                gr_wake_end(w)

    cdef bint sleep(self, int64_t deadline) except -1:
        """Wait until the latch is zero; False if the deadline passed first."""
        cdef gr_waitop op
        cdef M m = _curm()
        _op(&op, GR_OP_LATCH, &self.l)
        if m is None:
            return _wait_thread(&op, deadline) == GR_WAIT_OK
        _running_on(m, "wait")
        return _wait(m, m.cur, &op, deadline, PARK_JOIN) == GR_WAIT_OK

    cdef bint rearm(self) noexcept:
        """Set the latch back to one unless the wait is already over: True if re-armed."""
        cdef bint over
        with cython.critical_section(self):
            if self.mode == _W_STREAM:
                over = len(self.done) != 0
            else:
                over = self.remaining == 0
            if not over:
                gr_latch_reset(&self.l)
        return not over

    cdef object take(self, int64_t deadline):
        """_W_STREAM: the next task done, waiting for it; None if the deadline passed."""
        while True:
            with cython.critical_section(self):
                if self.done:
                    return self.done.popleft()
                gr_latch_reset(&self.l)
            if not self.sleep(deadline):
                with cython.critical_section(self):
                    if self.done:
                        return self.done.popleft()
                return None


cdef _Waiter _new_waiter(int mode, Py_ssize_t n):
    cdef _Waiter w = _Waiter.__new__(_Waiter)
    w.mode = mode
    w.remaining = n
    if mode == _W_STREAM:
        w.done = collections.deque()
    return w


class _FutureFailed(Exception):
    """How a future's stand-in task (_settle) tells a FIRST_EXCEPTION wait that the
    future raised."""


def _settle(f):
    """The stand-in task of a future in wait() and as_completed(): it parks in result()
    until the future is done (result() knows each kind of future, and keeps the deadlock
    detector off meanwhile), and fails when the future did, a cancellation aside."""
    try:
        result(f)
    except Cancelled:
        raise  # the wait is over and gave up on the future (which is left alone)
    except BaseException:
        if not f.cancelled():
            raise _FutureFailed() from None


cdef dict _hook_all(_Waiter w, list items):
    """Hang w on every task (w.remaining counts them), notifying it at once of those
    already done. A future gets a stand-in task (_settle) that w waits on instead: the
    result is {stand-in: future}, or None without futures."""
    cdef Task t
    cdef dict standins = None
    for x in items:
        if type(x) is Task:
            t = <Task>x
        else:
            t = go(_settle, x)
            t.retrieved = True  # its failure is the future's, reported by the future
            if standins is None:
                standins = {}
            standins[t] = x
        if not _add_hook(t, w):
            w.notify(t, t._exc)
    return standins


cdef int _unhook_all(_Waiter w, object tasks, dict standins) except -1:
    """Take w off the tasks still running, and stop the stand-ins of the futures."""
    cdef Task t
    for x in tasks:
        if type(x) is Task:
            t = <Task>x
            if not gr_g_done(&t.g):
                _remove_hook(t, w)
    if standins:
        _cancel_all(standins)
    return 0


cdef int _cancel_all(object tasks) except -1:
    cdef Task t
    for t in tasks:
        if not gr_g_done(&t.g):
            t.cancel()
    return 0


cdef list _as_waitables(object items, str what):
    """Tasks, and futures that result() can wait for and that tell done() and
    cancelled() (concurrent.futures, asyncio and Dask futures)."""
    cdef list out = list(items)
    for x in out:
        if type(x) is not Task and (isinstance(x, type) or not all(
                callable(getattr(x, a, None))
                for a in ("add_done_callback", "result", "done", "cancelled", "exception"))):
            raise TypeError(f"{what}() takes Tasks and futures, not {type(x).__name__}")
    return out


cdef bint _failed(object x) except -1:
    """x is done and raised (a cancellation is no failure here)."""
    if type(x) is Task:
        return (<Task>x)._exc is not None and not isinstance((<Task>x)._exc, Cancelled)
    return not x.cancelled() and x.exception() is not None


def gather(*tasks_or_fns, return_exceptions=False) -> list:
    """Wait for every task and return their results, in the order given.

    Each argument is a Task, or a function of no arguments, which is started as a task.
    The first failure (an exception, or a task's cancellation) cancels the other tasks,
    waits for them to finish and is raised, as errgroup does; with
    ``return_exceptions=True`` nothing is cancelled and exceptions take the place of
    their results. Cancelling the caller cancels every task. Works from a task or from a
    plain thread.

    Example::

        a, b = gr.gather(lambda: fetch("a"), gr.go(fetch, "b"))
    """
    for x in tasks_or_fns:
        if not isinstance(x, Task):
            _check_fn(x, "gather")
    cdef list tasks = [x if isinstance(x, Task) else go(x) for x in tasks_or_fns]
    cdef Py_ssize_t n = len(tasks)
    cdef _Waiter w = _new_waiter(_W_ALL if return_exceptions else _W_GATHER, n)
    cdef Task t
    if n == 0:
        return []
    try:
        _hook_all(w, tasks)
        w.sleep(GR_DEADLINE_NEVER)
        if w.failed is not None:
            _cancel_all(tasks)
            with cython.critical_section(w):
                w.mode = _W_ALL
            while w.rearm():
                w.sleep(GR_DEADLINE_NEVER)
    except BaseException:
        _cancel_all(tasks)  # the caller was cancelled (or interrupted): so is every task
        raise
    if w.failed is not None:
        return w.failed._outcome()  # raises
    cdef list results = [None] * n
    cdef Py_ssize_t i
    for i in range(n):
        t = tasks[i]
        if t._exc is not None:
            t.retrieved = True
            results[i] = t._exc
        else:
            results[i] = t._result
    return results


cdef str _check_return_when(object return_when):
    if return_when == FIRST_COMPLETED:
        return FIRST_COMPLETED
    if return_when == FIRST_EXCEPTION:
        return FIRST_EXCEPTION
    if return_when == ALL_COMPLETED:
        return ALL_COMPLETED
    raise ValueError(f"return_when must be FIRST_COMPLETED, FIRST_EXCEPTION or "
                     f"ALL_COMPLETED, got {return_when!r}")


cdef bint _wait_over(str return_when, set done, set pending) except -1:
    if not pending:
        return True
    if return_when == FIRST_COMPLETED:
        return len(done) != 0
    if return_when == FIRST_EXCEPTION:
        for x in done:
            if _failed(x):
                return True
    return False


def wait(tasks, timeout=None, return_when=ALL_COMPLETED) -> tuple:
    """Wait for tasks as concurrent.futures.wait does, and return ``(done, pending)``,
    two sets. ``return_when`` is FIRST_COMPLETED, FIRST_EXCEPTION (a task raised; a
    cancelled task does not count) or ALL_COMPLETED; after ``timeout`` seconds it returns
    what it has. Nothing is cancelled. Works from a task or from a plain thread.

    Futures may be mixed with the tasks: concurrent.futures, asyncio (of a loop running
    in another thread) and Dask futures, or any that ``gr.result()`` takes and that has
    ``done()``, ``cancelled()`` and ``exception()``. Each is waited for by a small task
    parked in ``gr.result()``, so no thread blocks.

    Example::

        done, pending = gr.wait(tasks, timeout=5, return_when=gr.FIRST_COMPLETED)
    """
    cdef str when = _check_return_when(return_when)
    cdef int64_t deadline = _deadline(timeout, "timeout")
    cdef list ts = _as_waitables(set(tasks), "wait")
    cdef set done = {t for t in ts if t.done()}
    cdef set pending = set(ts) - done
    if _wait_over(when, done, pending) or deadline == GR_DEADLINE_NOW:
        return done, pending
    cdef list waiting = list(pending)
    cdef _Waiter w = _new_waiter(_W_ALL if when == ALL_COMPLETED else
                                 _W_FIRST if when == FIRST_COMPLETED else _W_EXCEPTION,
                                 len(waiting))
    cdef dict standins = None
    try:
        standins = _hook_all(w, waiting)
        w.sleep(deadline)
    finally:
        _unhook_all(w, waiting, standins)
    done = {t for t in ts if t.done()}
    return done, set(ts) - done


def as_completed(tasks, timeout=None):
    """Yield the tasks as they finish (those already done first), as
    concurrent.futures.as_completed does. Raises TimeoutError if they have not all
    finished ``timeout`` seconds after the call. Works from a task or a plain thread.
    Futures may be mixed with the tasks, as in wait().

    Example::

        for t in gr.as_completed(tasks, timeout=10):
            print(t.result())
    """
    cdef int64_t deadline = _deadline(timeout, "timeout")
    cdef list ts = _as_waitables(set(tasks), "as_completed")
    return _as_completed(ts, deadline)


def _as_completed(list ts, int64_t deadline):
    cdef _Waiter w = _new_waiter(_W_STREAM, len(ts))
    cdef Py_ssize_t left = len(ts)
    cdef dict standins = None
    try:
        standins = _hook_all(w, ts)
        while left:
            t = w.take(deadline)
            if t is None:
                raise TimeoutError(f"{left} (of {len(ts)}) tasks unfinished")
            left -= 1
            yield standins.get(t, t) if standins else t
    finally:
        _unhook_all(w, ts, standins)


def map(fn, iterable, *, limit=None, ordered=True):
    """Call ``fn(item)`` for each item of ``iterable``, each in its own task, with at most
    ``limit`` tasks in flight (None: no limit), and yield the results: in input order, or
    as they finish with ``ordered=False``.

    The iterable is read lazily, as tasks finish. The first failure cancels the tasks in
    flight, waits for them and is raised (errgroup with SetLimit); closing the iterator
    early, or cancelling the caller, cancels them. With ``ordered=True``, ``limit`` also
    bounds the results held back for an unfinished earlier item, so a slow item delays
    the start of new ones.

    Example::

        sizes = list(gr.map(os.path.getsize, paths, limit=16))
    """
    _check_fn(fn, "map")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit must be an int or None, not {type(limit).__name__}")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
    cdef Py_ssize_t cap = limit if limit is not None else PY_SSIZE_T_MAX
    return _map(fn, iter(iterable), cap, bool(ordered))


def _map(fn, it, Py_ssize_t limit, bint ordered):
    cdef _Waiter w = _new_waiter(_W_STREAM, 0)
    cdef object window = collections.deque()  # ordered: the tasks not yet yielded, in order
    cdef set live = set()                     # the tasks not yet seen done
    cdef bint more = True
    cdef Task t, head
    try:
        while True:
            while more and (len(window) if ordered else len(live)) < limit:
                try:
                    item = next(it)
                except StopIteration:
                    more = False
                    break
                t = go(fn, item)
                live.add(t)
                if ordered:
                    window.append(t)
                with cython.critical_section(w):
                    w.remaining += 1
                if not _add_hook(t, w):
                    w.notify(t, t._exc)
            if ordered:
                if not window:
                    return
                head = window[0]
                while head in live:
                    _map_seen(w, live, w.take(GR_DEADLINE_NEVER))
                window.popleft()
                yield head._result
            else:
                if not live:
                    return
                t = w.take(GR_DEADLINE_NEVER)
                _map_seen(w, live, t)
                yield t._result
    finally:
        _cancel_all(live)


cdef int _map_seen(_Waiter w, set live, Task t) except -1:
    """t is done: on failure, cancel the others, wait for them and raise."""
    live.discard(t)
    if t._exc is None:
        return 0
    _cancel_all(live)
    while live:
        live.discard(w.take(GR_DEADLINE_NEVER))
    t._outcome()  # raises
    return 0


# ---------------------------------------------------------------------------------------
# Queue

class Queue:
    """A FIFO queue with queue.Queue's contract, for tasks and plain threads alike: a task
    parks, a thread blocks, and no M is held up either way. ``maxsize`` <= 0 means
    unbounded. get/put raise queue.Empty/queue.Full (the stdlib's classes) when they
    cannot proceed without blocking or in time; task_done/join count unfinished items.

    Example::

        q = gr.Queue(10)
        gr.go(q.put, "job")
        assert q.get(timeout=1) == "job"
        q.task_done()
    """

    __class_getitem__ = classmethod(types.GenericAlias)  # Queue[int] in annotations

    def __init__(self, maxsize=0):
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int, not {type(maxsize).__name__}")
        self.maxsize = maxsize
        # Held for a few deque operations, never across a wait (which is on a channel).
        self._lock = threading.Lock()
        self._items = collections.deque()
        self._getters = collections.deque()   # Chan(1) of each waiting get
        self._putters = collections.deque()   # [Chan(1), item] of each waiting put
        self._joiners = []                    # Chan of each join, closed at zero
        self._unfinished = 0

    def put(self, item, block=True, timeout=None) -> None:
        """Put item, waiting for a free slot if the queue is full (with ``block``, up to
        ``timeout`` seconds); raises queue.Full if none frees.

        Example::

            q.put(item, timeout=1.0)
        """
        if block and timeout is not None:
            _deadline(timeout, "timeout")  # the stdlib's ValueError for a bad timeout
        with self._lock:
            self._unfinished += 1
            while self._getters:
                if _offer(self._getters.popleft(), item):
                    return
            if self.maxsize <= 0 or len(self._items) < self.maxsize:
                self._items.append(item)
                return
            if not block:
                self._unfinished -= 1
                raise _queue.Full
            entry = [Chan(1), item]
            self._putters.append(entry)
        try:
            (<Chan>entry[0]).recv(timeout)
        except BaseException as e:
            with self._lock:
                try:
                    self._putters.remove(entry)
                except ValueError:
                    return  # a get took the item meanwhile: the put happened
                self._unfinished -= 1
            if isinstance(e, TimeoutError):
                raise _queue.Full from None
            raise

    def get(self, block=True, timeout=None):
        """Remove and return the oldest item, waiting for one (with ``block``, up to
        ``timeout`` seconds); raises queue.Empty if none comes.

        Example::

            item = q.get(timeout=1.0)
        """
        if block and timeout is not None:
            _deadline(timeout, "timeout")
        with self._lock:
            if self._items:
                item = self._items.popleft()
                if self._putters:  # a slot is free: the oldest waiting put goes in
                    entry = self._putters.popleft()
                    self._items.append(entry[1])
                    _offer(entry[0], True)
                return item
            if not block:
                raise _queue.Empty
            ch = Chan(1)
            self._getters.append(ch)
        try:
            return (<Chan>ch).recv(timeout)
        except BaseException as e:
            with self._lock:
                try:
                    self._getters.remove(ch)
                except ValueError:
                    # A put handed the item over meanwhile: take it (a cancellation
                    # stays pending for the next park point).
                    return (<Chan>ch).try_recv()[0]
            if isinstance(e, TimeoutError):
                raise _queue.Empty from None
            raise

    def put_nowait(self, item) -> None:
        """put(item, block=False).

        Example::

            q.put_nowait(item)
        """
        self.put(item, False)

    def get_nowait(self):
        """get(block=False).

        Example::

            item = q.get_nowait()
        """
        return self.get(False)

    def task_done(self) -> None:
        """Mark one item taken by get() as processed; raises ValueError when called more
        times than items were put.

        Example::

            q.task_done()
        """
        with self._lock:
            if self._unfinished <= 0:
                raise ValueError("task_done() called too many times")
            self._unfinished -= 1
            if self._unfinished:
                return
            joiners, self._joiners = self._joiners, []
        for ch in joiners:
            ch.close()

    def join(self) -> None:
        """Wait until every item put has been marked processed by task_done().

        Example::

            q.join()
        """
        with self._lock:
            if self._unfinished == 0:
                return
            ch = Chan()
            self._joiners.append(ch)
        try:
            ch.recv()
        except ChanClosed:
            return
        except BaseException:
            with self._lock:
                if ch in self._joiners:
                    self._joiners.remove(ch)
            raise

    def qsize(self) -> int:
        """The number of items in the queue (waiting puts not counted)."""
        return len(self._items)

    def empty(self) -> bool:
        """True if the queue holds no item."""
        return not self._items

    def full(self) -> bool:
        """True if the queue is bounded and holds maxsize items."""
        return 0 < self.maxsize <= len(self._items)

    def __repr__(self):
        return f"<Queue {len(self._items)}/{self.maxsize or 'inf'}>"


# ---------------------------------------------------------------------------------------
# Task-local data

cdef class local:
    """Attributes that each task sees separately, as threading.local is per thread (and
    gevent.local per greenlet). A subclass's ``__init__`` runs again, with the
    constructor's arguments, the first time each task touches the object. A task's values
    are dropped when it finishes. Outside a task (a plain thread, code run between tasks)
    it is per thread.

    Example::

        ctx = gr.local()

        def handle(req):
            ctx.user = req.user   # seen by this task only
    """
    cdef tuple _args
    cdef dict _kwargs
    cdef object _thread  # a threading.local, for code outside tasks
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        if (args or kwargs) and type(self).__init__ is object.__init__:
            raise TypeError("gr.local() takes no arguments (a subclass's __init__ may)")
        self._args = args
        self._kwargs = kwargs
        self._thread = threading.local()
        _local_dict(self, False)  # the constructor runs __init__ for the creating task

    def __getattribute__(self, name):
        cdef dict d = _local_dict(self)
        if name == "__dict__":
            return d
        if type(self) is local or _data_descriptor(type(self), name) is None:
            try:
                return d[name]
            except KeyError:
                pass
        return object.__getattribute__(self, name)

    def __setattr__(self, name, value):
        if name == "__dict__":
            raise AttributeError("the __dict__ of a gr.local is read-only")
        cdef dict d = _local_dict(self)
        descr = None if type(self) is local else _data_descriptor(type(self), name)
        if descr is not None:
            type(descr).__set__(descr, self, value)  # a property of a subclass, say
        else:
            d[name] = value

    def __delattr__(self, name):
        if name == "__dict__":
            raise AttributeError("the __dict__ of a gr.local is read-only")
        cdef dict d = _local_dict(self)
        descr = None if type(self) is local else _data_descriptor(type(self), name)
        if descr is not None:
            type(descr).__delete__(descr, self)
            return
        try:
            del d[name]
        except KeyError:
            raise AttributeError(name) from None


cdef object _data_descriptor(type cls, str name):
    """The data descriptor (a property, say) that ``name`` is on cls, else None: it takes
    precedence over the task's attributes, as over an instance __dict__."""
    for k in cls.__mro__:
        v = k.__dict__.get(name)
        if v is not None:
            return v if hasattr(type(v), "__set__") else None
    return None


cdef dict _local_dict(local self, bint init=True):
    cdef M m = _curm()
    cdef Task t
    cdef dict d
    cdef dict store
    cdef bint new = False
    if m is not None and m.cur is not None:
        t = m.cur
        store = t.locals
        if store is None:
            store = {}
            t.locals = store
        d = store.get(self)
        if d is None:
            d = {}
            store[self] = d
            new = True
    else:
        d = getattr(self._thread, "d", None)
        if d is None:
            d = {}
            self._thread.d = d
            new = True
    if new and init and type(self).__init__ is not object.__init__:
        type(self).__init__(self, *self._args, **self._kwargs)
    return d


# ---------------------------------------------------------------------------------------
# Signals

# signal number -> the channels notified of it (a tuple, replaced on change, so that the
# handler reads it without the lock); and the handler each replaced.
_sig_lock = threading.Lock()
_sig_chans = {}
_sig_saved = {}


def _on_signal(signum, frame):
    for ch in _sig_chans.get(signum, ()):
        try:
            _offer(ch, _signal.Signals(signum))
        except ChanClosed:
            pass


cdef list _signals(tuple signals):
    if not signals:
        raise TypeError("notify() needs at least one signal")
    cdef list out = []
    valid = _signal.valid_signals()
    for s in signals:
        if isinstance(s, bool) or not isinstance(s, int):
            raise TypeError(f"signals must be ints (signal.SIG*), not {type(s).__name__}")
        if s not in valid or s in (_signal.SIGKILL, _signal.SIGSTOP):
            raise ValueError(f"cannot notify of signal {s!r}")
        out.append(_signal.Signals(s))
    return out


cdef object _on_main_thread(str what, object fn, tuple args):
    """fn(*args) on the main thread, where Python lets signal handlers be installed: here if
    this is it, else as a task spawned onto the M running there (the M that called run(),
    when run() was called on the main thread), which the calling task joins."""
    if threading.current_thread() is threading.main_thread():
        return fn(*args)
    cdef M m = _curm()
    cdef M m0
    cdef Task t
    if m is not None and m.cur is not None:
        m0 = m.rt.ms[0]
        if threading.main_thread().ident in m.rt.m_idents and m0.cm != NULL:
            t = _new_task(m.rt, m, fn, args, None, None)
            gr_spawn_on(m.cm, m0.cm, &t.g)
            return t.join()
    raise RuntimeError(f"{what}() installs signal handlers, which Python allows only on the "
                       f"main thread: call it from a task of a run() started on the main "
                       f"thread")


def notify(*signals, chan=None) -> Chan:
    """Deliver the given signals to a channel, as Go's signal.Notify: each arrival sends
    its ``signal.Signals`` without waiting, and is dropped if the channel is full (so
    give it room). Returns the channel (a new ``Chan(len(signals))`` unless ``chan`` is
    given). Ctrl-C stops the run as usual unless SIGINT is among the signals.
    stop_notify(), or the end of run(), undoes it. Python installs handlers only on the
    main thread: from a task on another M, the handlers are installed by a task on the
    main thread's M (so the run must have been started on the main thread).

    Example::

        sigs = gr.notify(signal.SIGTERM, signal.SIGINT)
        sig = sigs.recv()   # graceful shutdown from here
    """
    cdef list sigs = _signals(signals)
    if chan is None:
        chan = Chan(len(sigs))
    elif not isinstance(chan, Chan):
        raise TypeError(f"chan must be a Chan, not {type(chan).__name__}")
    _on_main_thread("notify", _notify_here, (sigs, chan))
    return chan


def _notify_here(sigs, chan):
    with _sig_lock:
        for s in sigs:
            chans = _sig_chans.get(s, ())
            if chan in chans:
                continue
            if s not in _sig_saved:
                _sig_saved[s] = _signal.signal(s, _on_signal)
            _sig_chans[s] = chans + (chan,)


def stop_notify(chan) -> None:
    """Stop delivering signals to ``chan``; a signal no channel is notified of any more
    gets its previous handler back. Works from any task, as notify() does.

    Example::

        gr.stop_notify(sigs)
    """
    if not isinstance(chan, Chan):
        raise TypeError(f"chan must be a Chan, not {type(chan).__name__}")
    _on_main_thread("stop_notify", _stop_notify_here, (chan,))


def _stop_notify_here(chan):
    with _sig_lock:
        for s in list(_sig_chans):
            chans = tuple(c for c in _sig_chans[s] if c is not chan)
            if chans:
                _sig_chans[s] = chans
            else:
                del _sig_chans[s]
                _signal.signal(s, _sig_saved.pop(s))


cdef void _stop_all_notify() noexcept:
    """The end of a run: every notified signal gets its previous handler back (a SIGINT
    left notified would otherwise swallow Ctrl-C for good)."""
    try:
        with _sig_lock:
            if not _sig_saved or threading.current_thread() is not threading.main_thread():
                return
            for s, handler in _sig_saved.items():
                _signal.signal(s, handler)
            _sig_saved.clear()
            _sig_chans.clear()
    except BaseException as e:
        _log.warning("goroutines: could not restore the signal handlers notify() replaced: %r", e)
