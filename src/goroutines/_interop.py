"""Executor and to_async(): goroutines tasks for code that runs no task.

A process has one runtime at a time (goroutines.run() does not nest). Work submitted from
outside any task goes to the runtime that is running, whoever started it; when none is,
to a background runtime: goroutines.run() on a thread of its own, whose main task only
waits until nobody needs the runtime any more. It is started on demand and ends once
every open Executor is shut down and every submitted call has finished, so that a later
goroutines.run() in the same process can start. Calls reach it as go() from a foreign
thread does (the scheduler's global queue), and each call completes a
concurrent.futures.Future, which sync code waits on with result() and asyncio code with
asyncio.wrap_future().

Which runtime takes a call is decided, and the call sent there, under the background
runtime's lock, which its start and its end (its users reaching 0) also take: the choice
still holds at the go(). A submit that finds a run of the user's ending waits for it to
end (a while: _OTHER_RUN_WAIT), then starts the background runtime; one that finds the
background runtime ending waits for it, outside the lock, then starts a new one.

A call that never ran, because the run it was queued on ended first (Ctrl-C, the user's
run returning), has its future cancelled: the runtime drops such a task's function
without calling it, and the task's done callback (else the drop: _Work.__del__) tells.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar

from goroutines._core import (
    Event,
    Task,
    _check_callable,
    current,
    go,
    procs as _running_procs,
    result,
    run,
)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _runtime_procs() -> int | None:
    """The procs of the runtime that is running, or None when none is."""
    try:
        return _running_procs()
    except RuntimeError:
        return None


# How long a submit waits for the user's run to end when it finds one ending (its tasks
# are cancelled, and one still parking a second later is abandoned).
_OTHER_RUN_WAIT = 5.0


class _OtherRun(RuntimeError):
    """The background runtime cannot start: another run holds the process."""


def _on_a_runtime_thread() -> bool:
    """Whether this thread is one of a runtime's."""
    try:
        current()
    except RuntimeError:
        return False
    return True


class _Background:
    """The background runtime: started by the first user, ended by the last."""

    def __init__(self) -> None:
        # Reentrant: a finalizer (a dropped Executor's, a dropped call's) may release a
        # use from whatever this thread was doing, take() included.
        self.lock = threading.RLock()
        self.users = 0
        self.procs = 0
        self.stop = Event()
        self.thread: threading.Thread | None = None

    def take(self, procs: int | None) -> threading.Thread | None:
        """Take a use of the background runtime, starting it if need be; or, when the last
        one is still ending (runs do not nest), take none and return its thread, to join
        outside the lock (one of its tasks may need the lock to finish). The caller holds
        the lock."""
        if self.users == 0:
            if self.ending():
                return self.thread
            self._start(procs)
        elif procs is not None and procs != self.procs:
            raise ValueError(f"Executor(procs={procs}): the background runtime already "
                             f"runs with {self.procs} procs")
        self.users += 1
        return None

    def ending(self) -> bool:
        """Whether the background runtime is ending: nobody uses it and its thread is
        alive. The caller holds the lock."""
        if self.users > 0:
            return False
        if self.thread is not None and not self.thread.is_alive():
            self.thread = None
        return self.thread is not None

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0:
                self.stop.set()

    def _start(self, procs: int | None) -> None:
        started = threading.Event()
        box: list[int | BaseException] = []
        stop = Event()

        def main() -> None:
            box.append(_running_procs())
            started.set()
            stop.wait()

        def body() -> None:
            try:
                run(main, procs=procs)
            except BaseException as e:
                box.append(e)
            finally:
                started.set()

        th = threading.Thread(target=body, name="goroutines-background", daemon=True)
        th.start()
        started.wait()
        first = box[0] if box else RuntimeError("the background runtime did not start")
        if isinstance(first, BaseException):
            th.join()
            # run() refuses while another run holds the process: the caller may wait.
            other = isinstance(first, RuntimeError) and "already running" in str(first)
            raise (_OtherRun if other else RuntimeError)(
                f"cannot start the background runtime: {first}") from first
        self.procs, self.stop, self.thread = first, stop, th

    def join(self) -> None:
        with self.lock:
            th = self.thread
        if th is not None:
            th.join()

    def settle(self) -> None:
        """Once nothing uses it, wait for the background runtime to end, so that a
        goroutines.run() right after can start. Not from a runtime's own thread: the
        caller may be one of its tasks."""
        with self.lock:
            th = self.thread if self.users == 0 else None
        if th is not None and not _on_a_runtime_thread():
            th.join()

    def forget(self) -> None:
        # The runtime's threads did not survive the fork.
        self.lock = threading.RLock()
        self.users = 0
        self.thread = None


_background = _Background()
os.register_at_fork(after_in_child=_background.forget)


class _Owner:
    """What one Executor (or to_async) has in flight: futures not finished yet, and
    whether it keeps the background runtime up (an open Executor does)."""

    def __init__(self, procs: int | None, keep: bool) -> None:
        self.lock = threading.Lock()
        self.procs = procs
        self.keep = keep          # hold the background runtime while open
        self.holding = False      # ... and it does
        self.closed = False
        self.pending: set[concurrent.futures.Future[Any]] = set()

    def spawn(self, work: _Work, what: str) -> Task[None]:
        """Start work's task on the running runtime, else on the background one. A run
        of the user's that is ending (or starting) takes no call and keeps the background
        runtime from starting: the submit waits for it, a while."""
        give_up = time.monotonic() + _OTHER_RUN_WAIT
        delay = 0.0002
        while True:
            with _background.lock:
                got = self._attach(work)
            if isinstance(got, Task):
                return got
            if isinstance(got, threading.Thread):
                got.join()  # the background runtime ending: then a new one starts
                continue
            if time.monotonic() >= give_up:
                raise RuntimeError(f"{what}: the running goroutines.run() did not end within "
                                   f"{_OTHER_RUN_WAIT:g} s of shutting down: the call was "
                                   "not run") from got
            time.sleep(delay)
            delay = min(2 * delay, 0.01)

    def _attach(self, work: _Work) -> Task[None] | threading.Thread | RuntimeError:
        """spawn()'s one try, under the background lock: only a holder of that lock starts
        the background runtime or ends it (its users reaching 0), so what is decided here
        still holds at the go(). Returns the task; or the thread of the background runtime
        ending, to wait for; or why the user's run, ending or starting, took no call."""
        if _background.users == 0 and (_on_a_runtime_thread() or not _background.ending()):
            # No background runtime up, so the running one, if any, is the user's, or ours
            # ending, seen from one of its tasks (a new one would wait for its end): the
            # call goes to it, as a go() of that task would.
            procs = _runtime_procs()
            if procs is not None:
                if self.procs is not None and procs != self.procs:
                    raise ValueError(f"Executor(procs={self.procs}): the running runtime "
                                     f"has {procs} procs")
                try:
                    task = go(work.run)
                except RuntimeError as e:  # that run is ending
                    return e
                work.watch(task)
                return task
        try:
            # Each call holds the background runtime while it runs: a call riding on it
            # unheld would be cancelled when another call let go of it last.
            ending = _background.take(self.procs)
        except _OtherRun as e:  # the user's run is starting, or ending unseen
            return e
        if ending is not None:
            return ending
        work.held = True
        with self.lock:  # an open Executor keeps the runtime up between its calls
            hold = self.keep and not self.holding and not self.closed
            self.holding = self.holding or hold
        if hold:
            _background.users += 1
        # Held, the runtime cannot end: a failure here is true (_submit lets go of it).
        return go(work.run)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            holding, self.holding = self.holding, False
        if holding:
            _background.release()


class _Work:
    """One submitted call: its task runs run(); its future gets the outcome."""

    __slots__ = ("future", "fn", "args", "kwargs", "owner", "held", "ran")

    def __init__(
        self, owner: _Owner, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.fn: Callable[..., Any] | None
        self.args: tuple[Any, ...] | None
        self.kwargs: dict[str, Any] | None
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.owner = owner
        self.held = False  # holds a use of the background runtime
        self.ran = False

    def run(self) -> None:
        self.ran = True
        f = self.future
        if not f.set_running_or_notify_cancel():
            self.finish()
            return
        try:
            assert self.fn is not None and self.args is not None and self.kwargs is not None
            value = self.fn(*self.args, **self.kwargs)
        except BaseException as e:  # as ThreadPoolExecutor: the future carries it
            self.fn = self.args = self.kwargs = None
            self.release()
            f.set_exception(e)
        else:
            self.fn = self.args = self.kwargs = None
            self.release()
            f.set_result(value)
        self.finish()

    def release(self) -> None:
        # Before the future is set: whoever it wakes finds the runtime's use already given
        # back, and can wait for a stopping background runtime to end (settle()).
        if self.held:
            self.held = False
            _background.release()

    def finish(self) -> None:
        self.release()
        owner = self.owner
        with owner.lock:
            owner.pending.discard(self.future)

    def watch(self, task: Task[None]) -> None:
        """For a call on a run that may end before it starts (not the background runtime,
        held until it ran): the task's end tells whether it ran. Its drop alone may tell
        too late: on a free-threaded build, this object, made on the submitting thread, is
        freed only once that thread runs Python again, and it may be waiting on the future
        (a hang, seen)."""
        try:
            task.add_done_callback(self.dropped)
        except RuntimeError:  # done already, and its run is over: nothing can call it
            self.dropped(task)

    def dropped(self, task: Task[None]) -> None:
        if not self.ran:
            self.ran = True  # never will: __del__ has nothing left to do
            self.future.cancel()
            self.finish()

    def __del__(self) -> None:
        if not self.ran:
            try:
                self.future.cancel()
                self.finish()
            except BaseException:  # a finalizer must not raise (late at interpreter exit)
                pass


def _submit(
    owner: _Owner,
    fn: Callable[..., _R],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    what: str,
) -> tuple[concurrent.futures.Future[_R], Task[None]]:
    _check_callable(fn, what)
    work = _Work(owner, fn, args, kwargs)
    with owner.lock:
        if owner.closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        owner.pending.add(work.future)
    try:
        task = owner.spawn(work, what)
    except BaseException:
        work.ran = True  # it never will: no cancel from the finalizer
        with owner.lock:
            owner.pending.discard(work.future)
        if work.held:
            _background.release()
        raise
    return work.future, task


def _wait_done(f: concurrent.futures.Future[Any]) -> None:
    """Wait for f; its own outcome is not this wait's business. Raises Cancelled if the
    waiting task is cancelled."""
    try:
        result(f)
    except BaseException:
        if not f.done():
            raise


def _result_or_cancel(f: concurrent.futures.Future[_R], deadline: float | None) -> _R:
    """map()'s wait for one call, as the stdlib's: a call given up on is cancelled."""
    try:
        return result(f, None if deadline is None else max(0.0, deadline - time.monotonic()))
    finally:
        f.cancel()


class _DaskBatch:
    """Fetches the values of finished Dask futures for result(), many per round trip.

    Dask calls done callbacks on one thread of its own, and a finished future's result()
    there is a round trip to a worker: with a thousand tasks waiting, that one thread took
    as long as the whole run, the cluster's work long done. So the callback only queues
    the future here, and the client's event loop gathers whatever is queued in one call,
    again and again while more arrive. A batch that fails (a worker lost the data) is
    retried one future at a time, so each waiter gets its own outcome."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.queued: list[tuple[Any, Any]] = []
        self.flushing = False

    def put(self, fut: Any, out: Any) -> None:
        if self.client.status != "running":
            # A closing client's loop may never run a flush: the waiter learns it now.
            try:
                out._deliver(fut.result(), None)
            except BaseException as e:
                out._deliver(None, e)
            return
        with self.lock:
            self.queued.append((fut, out))
            if self.flushing:
                return
            self.flushing = True
        self.client.loop.add_callback(self.flush)

    async def flush(self) -> None:
        while True:
            with self.lock:
                batch, self.queued = self.queued, []
                if not batch:
                    self.flushing = False
                    return
            try:
                values = await self.client.gather([f for f, _ in batch], asynchronous=True)
            except BaseException:
                for f, out in batch:
                    try:
                        value = await self.client.gather(f, asynchronous=True)
                    except BaseException as e:
                        out._deliver(None, e)
                    else:
                        out._deliver(value, None)
            else:
                for (_, out), value in zip(batch, values, strict=True):
                    out._deliver(value, None)


_dask_batches: weakref.WeakKeyDictionary[Any, _DaskBatch] = weakref.WeakKeyDictionary()
_dask_batches_lock = threading.Lock()


def _dask_batch(client: Any) -> _DaskBatch:
    """The gatherer of a Dask client (result() of its futures)."""
    with _dask_batches_lock:
        batch = _dask_batches.get(client)
        if batch is None:
            batch = _dask_batches[client] = _DaskBatch(client)
        return batch


_executors: weakref.WeakSet[Executor] = weakref.WeakSet()
_executors_lock = threading.Lock()


class Executor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` whose calls run as goroutines tasks: for sync code,
    plain threads and libraries that take an executor. From outside any run, its calls go
    to a background runtime (``procs`` processors, default as for ``run()``) that it keeps
    up until ``shutdown()``; inside a run they go to that run. A call may park as any task
    does, so a thousand calls waiting on the network cost no thread each.

    Wait for the futures with ``goroutines.result()`` from a task (``Future.result()``
    would block its M) and with ``result()`` or ``concurrent.futures.wait()`` elsewhere.
    While the background runtime is up, ``goroutines.run()`` cannot start in this process;
    a submit that finds a run of the user's ending waits for its end (5 s at most, then
    RuntimeError) and runs the call on the background runtime.

    Example::

        with gr.Executor() as ex:
            futures = [ex.submit(pow, 2, i) for i in range(8)]
            assert [f.result() for f in futures] == [2**i for i in range(8)]
    """

    def __init__(self, procs: int | None = None) -> None:
        if procs is not None:
            if isinstance(procs, bool) or not isinstance(procs, int):
                raise TypeError(f"procs must be an int, not {type(procs).__name__}")
            if procs < 1:
                raise ValueError(f"procs must be a positive int, got {procs}")
        self._owner = _Owner(procs, keep=True)
        # An executor dropped without shutdown() lets go of the runtime (its calls finish).
        weakref.finalize(self, self._owner.close)
        with _executors_lock:
            _executors.add(self)

    def submit(
        self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> concurrent.futures.Future[_R]:
        """Run ``fn(*args, **kwargs)`` as a task; return a ``concurrent.futures.Future``.
        Raises RuntimeError after shutdown()."""
        return _submit(self._owner, fn, args, kwargs, "submit")[0]

    def map(
        self,
        fn: Callable[..., _R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[_R]:
        """As ``concurrent.futures.Executor.map``: every call is submitted at once, results
        come in order; in a task, waiting for them parks it. ``chunksize`` is accepted for
        compatibility and ignored, as by ThreadPoolExecutor."""
        deadline = None if timeout is None else timeout + time.monotonic()
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=False)]

        def results() -> Iterator[_R]:
            try:
                futures.reverse()  # pop() from the end: each future is dropped once yielded
                while futures:
                    yield _result_or_cancel(futures.pop(), deadline)
            finally:
                for f in futures:
                    f.cancel()

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """As ``concurrent.futures.Executor.shutdown``: no more submits; with
        ``cancel_futures`` the calls not started yet are cancelled; with ``wait`` it waits
        for the others (a task parks). The background runtime ends after the last call of
        the last executor using it."""
        owner = self._owner
        with owner.lock:
            owner.closed = True
            pending = list(owner.pending)
        if cancel_futures:
            for f in pending:
                f.cancel()
        if wait:
            for f in pending:
                _wait_done(f)
        owner.close()
        if wait:
            _background.settle()


_async_owner = _Owner(None, keep=False)


async def to_async(fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """From asyncio code: run ``fn(*args, **kwargs)`` as a goroutines task and await its
    result, as ``asyncio.to_thread`` runs it on a thread. The task runs on the runtime
    that is running, else on a background one (kept up only while such calls run: an open
    ``Executor`` keeps it up between them). Cancelling the awaiting coroutine cancels the
    task (``Cancelled`` at its next park point).

    Example::

        import asyncio

        async def main() -> int:
            return await gr.to_async(pow, 2, 10)

        assert asyncio.run(main()) == 1024
    """
    import asyncio

    future, task = _submit(_async_owner, fn, args, kwargs, "to_async")
    try:
        value = await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        task.cancel()
        raise
    _background.settle()  # a short wait: the last call ends the background runtime
    return value


def _at_exit() -> None:
    # As ThreadPoolExecutor at exit: the calls already submitted finish first.
    with _executors_lock:
        executors = list(_executors)
    for ex in executors:
        ex.shutdown(wait=True)
    _background.join()


atexit.register(_at_exit)

__all__ = ["Executor", "to_async"]
