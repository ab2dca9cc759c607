# Included by _core.pyx: blocking(), which runs a call on the offload thread pool while
# the calling task parks.
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


@cython.final
cdef class _Call:
    cdef object fn, args, kwargs, result, exc
    cdef gr_latch done   # 1 until the call has returned: the task waits on it

    def __cinit__(self):
        gr_latch_init(&self.done, 1)

    def run(self):
        try:
            self.result = self.fn(*self.args, **self.kwargs)
        except BaseException as e:
            self.exc = e
        self.fn = self.args = self.kwargs = None
        cdef int w = gr_wake_begin()
        gr_latch_add(&self.done, -1)
        gr_wake_end(w)


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
            fn = None  # not kept alive while this thread waits for the next call
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
    cdef gr_waitop op
    _op(&op, GR_OP_LATCH, &call.done)
    # The call cannot be interrupted: a cancel() waits for it, and is delivered after; so
    # does the shutdown after main returns (as asyncio.run joins its executor). Only an
    # aborted run (Ctrl-C, SystemExit) abandons it, left to finish on its thread, so that
    # run() raises promptly. REPORT: a cancel that lands before the park counts too.
    op.shield = GR_SHIELD_REPORT
    cdef bint abandoned = False
    gr_sched_external_add(m.rt.s, 1)  # keeps the deadlock detector quiet meanwhile
    _pool.submit(call)
    try:
        while _wait(m, t, &op, GR_DEADLINE_NEVER, PARK_BLOCKING) == GR_WAIT_CANCELLED:
            if gr_sched_closing(m.rt.s) and m.rt.outcome is not None:
                abandoned = True
                break
            if not _cancel_pending(m, t):  # not the task's cancel: one of its scopes
                abandoned = True
                break
    finally:
        gr_sched_external_add(m.rt.s, -1)
    if abandoned:
        raise Cancelled()
    if call.exc is not None:
        raise call.exc
    _check_cancel(m, t)
    return call.result
