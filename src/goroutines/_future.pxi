# Included by _core.pyx: result(), which parks a task on a future that lives elsewhere (a
# thread pool's, an event loop's, a Dask cluster's), and aio(), which runs a coroutine on a
# shared background event loop for a task.
#
# Every such wait goes through a done callback, an _Outcome (_offload.pxi): whoever
# completes the future runs it, which takes the outcome there (where result() does not
# block: the future is done) and readies the parked task as Event.set() does. So the
# task holds no M and no thread while it waits, however many wait at once. An asyncio
# future's callbacks must be added on its loop's thread: that is done through
# call_soon_threadsafe, and it runs them there. A finished Dask future's value is still on
# a worker: its callback hands it to a gatherer instead (_DaskBatch in _interop.py).
import inspect
import threading


@cython.final
cdef class _DaskDone:
    """A Dask future's done callback. A finished one's value is still on a worker: it is
    fetched with others in one gather, off Dask's callback thread (_DaskBatch)."""
    cdef _Outcome out
    cdef object batch

    def __call__(self, fut):
        if fut.status == "finished":
            self.batch.put(fut, self.out)
        else:
            self.out(fut)


cdef object _asyncio_loop(object fut):
    """The event loop of an asyncio future, or None for any other object. asyncio is only
    looked up, never imported: no asyncio future exists before it is."""
    aio = sys.modules.get("asyncio")
    if aio is None or not aio.isfuture(fut):
        return None
    loop = fut.get_loop()
    if loop.is_closed():
        raise RuntimeError(f"result() of {fut!r}: its event loop is closed, so it can never "
                           f"finish")
    if aio._get_running_loop() is loop:
        raise RuntimeError("result() called on the thread that runs the future's event loop "
                           "would block that loop for good: await the future instead")
    return loop


cdef int _check_future(object fut) except -1:
    if isinstance(fut, type):  # its methods are there, unbound
        raise TypeError(f"result() needs a future, not the class {fut.__name__}")
    if callable(getattr(fut, "add_done_callback", None)) and callable(getattr(fut, "result", None)):
        return 0
    if inspect.isawaitable(fut):
        if inspect.iscoroutine(fut):
            fut.close()  # never awaited: no "was never awaited" warning on top of this error
        raise TypeError(f"result() needs a future, not {type(fut).__name__}: run a coroutine "
                        f"with goroutines.aio(coro)")
    raise TypeError(f"result() needs a future (an object with add_done_callback() and "
                    f"result()), not {type(fut).__name__}")


cdef int _add_callback(object fut, _Outcome out) except -1:
    loop = _asyncio_loop(fut)
    if loop is None:
        dist = sys.modules.get("distributed")
        if dist is not None and isinstance(fut, dist.Future):
            if fut.client.status != "running":
                out(fut)  # a closed client's loop runs no callback; its futures are cancelled
                return 0
            from goroutines._interop import _dask_batch
            done = _DaskDone()
            done.out, done.batch = out, _dask_batch(fut.client)
            fut.add_done_callback(done)
            return 0
        fut.add_done_callback(out)  # a done future calls it at once, here
    elif fut.done():
        out(fut)  # a done future's outcome is final: read here, without a trip to its loop
    else:
        try:
            loop.call_soon_threadsafe(fut.add_done_callback, out)
        except RuntimeError:  # closed since _asyncio_loop looked
            raise RuntimeError(f"result() of {fut!r}: its event loop is closed, so it can "
                               f"never finish") from None
    return 0


def result(future, timeout=None):
    """Wait for ``future`` and return its result, or raise its exception.

    In a task, the task parks (its M runs other tasks) until the future is done; from any
    other thread, the thread blocks. ``future`` is a ``concurrent.futures.Future``, an
    ``asyncio.Future`` or Task (of a loop running on another thread), a goroutines Task, or
    any object with ``add_done_callback(fn)`` and ``result()``, such as a Dask
    ``distributed.Future``. Raises TimeoutError if ``timeout`` seconds pass first (the
    future is left running), and the future's own CancelledError if it was cancelled. A
    cancelled task stops waiting at once; the future is left alone.

    Example::

        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor() as pool:
            n = gr.result(pool.submit(sum, [1, 2, 3]))
    """
    cdef int64_t deadline = _deadline(timeout, "timeout")
    if isinstance(future, Task):
        return (<Task>future).join(timeout)
    _check_future(future)
    cdef _Outcome out = _Outcome()
    _add_callback(future, out)
    # Never shielded: a cancel of the task, or of a scope around it, stops the wait.
    if out.wait("result", deadline, GR_SHIELD_NONE, PARK_FUTURE) == GR_WAIT_TIMEOUT:
        raise TimeoutError(f"result() timed out: {future!r} did not finish in {timeout} s")
    return out.take()


def _check_callable(fn, what):
    """go()'s check of fn, for the Executor's submit and to_async (goroutines._interop)."""
    _check_fn(fn, what)


# The shared event loop of aio(): started by the first call, on a daemon thread, and run
# until the interpreter exits. uvloop's when it is installed.
_aio_loop = None
_aio_lock = threading.Lock()


def _new_loop():
    try:
        import uvloop
    except ImportError:
        import asyncio
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _aio_thread(box, ready):
    # The runtime's own thread, as the offload threads are: it wakes only tasks waiting in
    # aio(), which the deadlock check counts already; as an outside thread it would put
    # off every later deadlock report for as long as the process lives.
    me = threading.get_ident()
    _offload_idents.add(me)
    try:
        _aio_loop_body(box, ready)
    finally:
        _offload_idents.discard(me)


def _aio_loop_body(box, ready):
    import asyncio
    loop = None
    try:
        loop = _new_loop()
        asyncio.set_event_loop(loop)
    except BaseException as e:
        box.append(e)
        return
    finally:
        if loop is not None:
            box.append(loop)
        ready.set()
    try:
        loop.run_forever()
        # Stopped at exit: end the coroutines still running as asyncio.run() does.
        tasks = asyncio.all_tasks(loop)
        for t in tasks:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def _shared_loop():
    global _aio_loop
    with _aio_lock:
        if _aio_loop is None:
            box = []
            ready = threading.Event()
            th = threading.Thread(target=_aio_thread, args=(box, ready), name="goroutines-aio",
                                  daemon=True)
            th.start()
            ready.wait()
            if isinstance(box[0], BaseException):
                raise box[0]
            _aio_loop = (box[0], th)
        return _aio_loop[0]


def _stop_aio_loop():
    global _aio_loop
    with _aio_lock:
        pair, _aio_loop = _aio_loop, None
    if pair is not None:
        loop, th = pair
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:  # already closed
            return
        th.join(5.0)


def _forget_aio_loop():
    # Its thread did not survive the fork: a child that calls aio() starts a loop of its own.
    global _aio_loop, _aio_lock
    _aio_loop = None
    _aio_lock = threading.Lock()


atexit.register(_stop_aio_loop)
os.register_at_fork(after_in_child=_forget_aio_loop)


@cython.final
cdef class _AioCall(_Outcome):
    """One coroutine run by aio(), settled as its asyncio task's done callback. start()
    and cancel() run on the shared loop's thread, in the order they were scheduled there:
    start() always comes before cancel()."""
    cdef object coro
    cdef object loop
    cdef object task
    cdef bint cancelled  # the waiting task has cancelled the coroutine

    def start(self):
        coro, self.coro = self.coro, None
        try:
            self.task = _create_task(coro)
        except BaseException as e:  # the loop is shutting down
            coro.close()
            self.settle(None, e)
            return
        self.task.add_done_callback(self)

    def cancel(self):
        if self.task is not None:
            self.task.cancel()

    cdef int give_up(self, M m, Task t) except -1:
        # A cancel of the task, or of a scope around it, cancels the coroutine, and the
        # task waits (quietly) until it has finished its cleanup, as asyncio.wait_for()
        # does; only an aborted run abandons it.
        if not self.cancelled:
            self.cancelled = True
            self.loop.call_soon_threadsafe(self.cancel)
        return _Outcome.give_up(self, m, t)


def _create_task(coro):
    import asyncio
    return asyncio.get_running_loop().create_task(coro)


def aio(coro):
    """Run the coroutine ``coro`` on a shared background event loop (uvloop's when it is
    installed) and wait for it: return its result or raise its exception. A task parks
    meanwhile, so asyncio libraries can be used from tasks; another thread blocks.
    Cancelling the task cancels the coroutine, and the task waits for it to finish.

    Example::

        import asyncio

        async def greet(name: str) -> str:
            await asyncio.sleep(0.01)
            return f"hello, {name}"

        assert gr.aio(greet("tasks")) == "hello, tasks"
    """
    if not inspect.iscoroutine(coro):
        if callable(coro) and _is_async(coro):
            raise TypeError(f"aio() needs a coroutine object: call {_fn_name(coro)}, "
                            f"aio({_fn_name(coro)}(...))")
        raise TypeError(f"aio() needs a coroutine object, not {type(coro).__name__}")
    aio = sys.modules.get("asyncio")
    if aio is not None and aio._get_running_loop() is not None:
        coro.close()
        raise RuntimeError("aio() waits by blocking, and this thread runs an event loop: "
                           "await the coroutine instead")
    cdef M m = _curm()
    if m is not None:
        try:
            _running_on(m, "aio")
            _check_cancel(m, m.cur)  # a cancelled task does not start the coroutine
        except BaseException:
            coro.close()
            raise
    try:
        loop = _shared_loop()
    except BaseException:
        coro.close()
        raise
    cdef _AioCall call = _AioCall()
    call.coro, call.loop = coro, loop
    loop.call_soon_threadsafe(call.start)
    try:
        call.wait("aio", GR_DEADLINE_NEVER, GR_SHIELD_REPORT, PARK_FUTURE)
    except BaseException:  # Ctrl-C in a thread: cancel the coroutine, let it finish alone
        loop.call_soon_threadsafe(call.cancel)
        raise
    if call.cancelled:
        raise Cancelled()
    return call.take()
