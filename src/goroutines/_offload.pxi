# Included by _core.pyx: blocking(), which runs a call on the offload thread pool while
# the calling task parks, and _Outcome, the one way a task or thread waits for work done
# elsewhere: an offloaded call here, a future or a coroutine in _future.pxi.
#
# The pool is bounded and grows on demand, as Tokio's spawn_blocking: a submit with no idle
# thread starts one, up to GOROUTINES_MAX_BLOCKING (default 128); a thread idle for 10
# seconds exits. An offloaded call cannot be interrupted, so the task stays parked until it
# returns; a cancellation that arrives meanwhile is delivered right after. A cancelled
# scope around it, or an aborted run (Ctrl-C), abandons it.
import os
import queue
import threading


_IDLE_TIMEOUT = 10.0
# Offload threads are the runtime's own: they never count as outside threads that could
# still wake a task (Runtime.on_deadlock); a call in flight is counted in C instead.
_offload_idents = set()


cdef class _Outcome:
    """The outcome of work done elsewhere, for one waiter. Whoever finishes the work
    settles it, from any thread: that counts a latch down, which readies a parked task as
    Event.set() does, or wakes a blocked thread; the waiter then takes the outcome.
    Subclasses are the work: _Call (blocking()) and _AioCall (aio())."""
    cdef gr_latch done  # 1 until settled
    cdef object value
    cdef object exc

    def __cinit__(self):
        gr_latch_init(&self.done, 1)

    def __call__(self, fut):
        """As a future's done callback: settles with its outcome (result() does not
        block: the future is done)."""
        try:
            value = fut.result()
        except BaseException as e:
            self.settle(None, e)
        else:
            self.settle(value, None)

    def _deliver(self, value, exc):
        """The outcome, from whoever fetched it (the Dask gatherer, goroutines._interop)."""
        self.settle(value, exc)

    @cython.final
    cdef void settle(self, object value, object exc) noexcept:
        # Only the thread that counts the latch down writes value and exc, before it does;
        # the waiter reads them after its wait returned OK (the latch's lock orders the two).
        self.value = value
        self.exc = exc
        cdef int w = gr_wake_begin()
        gr_latch_add(&self.done, -1)
        gr_wake_end(w)

    @cython.final
    cdef take(self):
        """The outcome: the value, or its exception raised."""
        exc = self.exc
        if exc is not None:
            self.exc = None  # no cycle through the traceback's frames
            raise exc
        return self.value

    @cython.final
    cdef int wait(self, str what, int64_t deadline, int shield, int reason) except -1:
        """Wait until settled: GR_WAIT_OK, or GR_WAIT_TIMEOUT at the deadline. A thread
        that runs no task blocks (as Chan.recv blocks it). A task parks; the thread that
        settles is outside the runtime, so the deadlock detector is kept quiet meanwhile.
        Unshielded (GR_SHIELD_NONE), a cancel raises Cancelled. Shielded
        (GR_SHIELD_REPORT), a cancel of the task or of a scope around it ends the park and
        asks give_up(): GR_WAIT_CANCELLED if it says so, else the wait goes on, QUIET from
        then on (waitop.h: the scopes, and a cancel already seen, no longer end it)."""
        if gr_latch_count(&self.done) == 0:
            return GR_WAIT_OK
        cdef gr_waitop op
        _op(&op, GR_OP_LATCH, &self.done)
        cdef M m = _curm()
        if m is None:
            return _wait_thread(&op, deadline)
        _running_on(m, what)
        cdef Task t = m.cur
        cdef int rc
        op.shield = shield
        gr_sched_external_add(m.rt.s, 1)
        try:
            while True:
                rc = _wait(m, t, &op, deadline, reason)
                if rc != GR_WAIT_CANCELLED or self.give_up(m, t):
                    return rc
        finally:
            gr_sched_external_add(m.rt.s, -1)

    cdef int give_up(self, M m, Task t) except -1:
        """A cancel reached a shielded wait: 1 to stop waiting, 0 to go on. An aborted
        run (Ctrl-C, SystemExit) stops every wait, so that run() raises promptly."""
        return gr_sched_closing(m.rt.s) and m.rt.outcome is not None


@cython.final
cdef class _Call(_Outcome):
    """A call for the pool, settled with its outcome once it has run."""
    cdef object fn, args, kwargs
    cdef uint64_t gid    # the calling task's id (the trace names the call after it)

    def run(self):
        cdef uint64_t gid = self.gid
        GR_TRACE(GR_TEV_OFFLOAD_RUN, gid, 0, 0)
        value = exc = None
        try:
            value = self.fn(*self.args, **self.kwargs)
        except BaseException as e:
            exc = e
        self.fn = self.args = self.kwargs = None
        self.settle(value, exc)
        GR_TRACE(GR_TEV_OFFLOAD_DONE, gid, 0, 0)  # after the wake, which it made

    cdef int give_up(self, M m, Task t) except -1:
        # A cancel of the task waits for the call (blocking() delivers it after), as does
        # the shutdown after main returns (as asyncio.run joins its executor); a cancelled
        # scope around it abandons it, as an aborted run does.
        return _Outcome.give_up(self, m, t) or not _cancel_pending(m, t)


class _Pool:
    def __init__(self, max_threads):
        self.max_threads = max_threads
        self.jobs = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads = 0
        self.idle = 0     # threads free for a call that no queued call has claimed yet
        self.backlog = 0  # queued calls that found no thread to claim and none to start

    def submit(self, call):
        with self.lock:
            # Queued under the lock, so an idle thread that times out sees the job.
            self.jobs.put(call)
            spawn = self.idle == 0 and self.threads < self.max_threads
            if spawn:
                self.threads += 1
            elif self.idle:
                self.idle -= 1
            else:
                self.backlog += 1
        if spawn:
            threading.Thread(target=self.worker, name="goroutines-offload", daemon=True).start()

    def worker(self):
        _offload_idents.add(threading.get_ident())
        try:
            self.work()
        finally:
            _offload_idents.discard(threading.get_ident())

    def work(self):
        cdef _Call call
        while True:
            try:
                call = self.jobs.get(timeout=_IDLE_TIMEOUT)
            except queue.Empty:
                with self.lock:
                    if self.jobs.empty():
                        self.threads -= 1
                        self.idle -= 1
                        return
                continue
            fn = call.fn
            call.run()
            if _forked:  # the call forked, and this is the child: no task will take its result
                _exit_forked_child(f"blocking({_fn_name(fn)})", call.exc)
            # Neither is kept alive while this thread waits for the next call: an abandoned
            # call's result is dropped here.
            fn = call = None
            with self.lock:
                # A backlogged call is this thread's to take: it does not become free.
                # Counting it free anyway left idle above the number of threads, and once
                # they had all timed out, calls were queued for threads that did not exist.
                if self.backlog:
                    self.backlog -= 1
                else:
                    self.idle += 1


def _max_blocking():
    env = os.environ.get("GOROUTINES_MAX_BLOCKING", "128")
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"GOROUTINES_MAX_BLOCKING must be a positive integer, got {env!r}")
    return n


_pool = None
_pool_lock = threading.Lock()


def _forget_pool():
    # The pool's threads did not survive the fork: a child that later calls run() (one
    # forked outside a run may) must start a pool of its own, not queue calls for ghosts.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def blocking(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` on an offload thread and park the calling task until it
    returns; give back its result or re-raise its exception. Use it for calls that block
    the thread: file I/O, sockets without netpoll, C libraries, time.sleep.

    The call cannot be interrupted: a ``cancel()`` takes effect once it returns, and run()
    waits for it after ``main`` returns. When a cancel scope around it is cancelled (a
    ``timeout()`` expires, say), or the run is aborted (Ctrl-C, SystemExit), the task stops
    waiting, and the call is abandoned to finish on its thread, its result dropped.

    Example::

        data = gr.blocking(open("big.bin", "rb").read)
    """
    global _pool
    _check_fn(fn, "blocking")
    cdef M m = _running("blocking")
    cdef Task t = m.cur
    _check_cancel(m, t)
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = _Pool(_max_blocking())
    cdef _Call call = _Call()
    call.fn, call.args, call.kwargs = fn, args, kwargs
    call.gid = t.g.id
    GR_TRACE(GR_TEV_OFFLOAD, t.g.id, 0, 0)
    _pool.submit(call)
    # REPORT: a cancel that lands before the park counts too (_Call.give_up decides).
    if call.wait("blocking", GR_DEADLINE_NEVER, GR_SHIELD_REPORT,
                 PARK_BLOCKING) == GR_WAIT_CANCELLED:
        raise Cancelled()  # abandoned, left to finish on its thread
    value = call.take()  # the call's exception wins over a cancel that came meanwhile
    _check_cancel(m, t)
    return value
