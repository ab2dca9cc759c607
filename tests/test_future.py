"""gr.result(): a task parks on a future that lives elsewhere.

Covers concurrent.futures futures (from a thread pool and completed by hand), asyncio
futures and Tasks of a loop running on another thread, any object with add_done_callback()
and result(), goroutines Tasks; outcomes (value, exception, cancelled future, timeout,
cancelled waiter); every bad input; waits from threads that run no task; and a stress run
at procs=2 counting that every wait gets its outcome exactly once.
"""

import asyncio
import concurrent.futures as cf
import gc
import threading
import warnings

import pytest

import goroutines as gr


@pytest.fixture(scope="module")
def loop():
    """An asyncio loop running on a thread of its own, as a library's would."""
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_forever, daemon=True)
    th.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    th.join()
    loop.close()


@pytest.fixture(scope="module")
def pool():
    with cf.ThreadPoolExecutor(4) as pool:
        yield pool


def on_loop(loop, fn, *args):
    """fn(*args) run on the loop's thread; its return value."""
    return asyncio.run_coroutine_threadsafe(_call(fn, *args), loop).result()


async def _call(fn, *args):
    return fn(*args)


class Boom(Exception):
    pass


# --- concurrent.futures -----------------------------------------------------------------


def test_returns_result_of_pool_future(procs, pool):
    def main():
        return gr.result(pool.submit(divmod, 17, 5))

    assert gr.run(main, procs=procs) == (3, 2)


def test_reraises_the_futures_exception(procs, pool):
    err = Boom("x")

    def bad():
        raise err

    def main():
        with pytest.raises(Boom) as info:
            gr.result(pool.submit(bad))
        return info.value

    assert gr.run(main, procs=procs) is err


def test_done_future_returns_at_once(procs):
    f = cf.Future()
    f.set_result(5)
    assert gr.run(lambda: gr.result(f, timeout=0), procs=procs) == 5


def test_parks_the_task_not_the_m(procs):
    # At procs=1 the only M must run the task that completes the future: a wait that
    # blocked the M would never end.
    def main():
        f = cf.Future()
        gr.go(f.set_result, "set by a task")
        return gr.result(f)

    assert gr.run(main, procs=procs) == "set by a task"


def test_many_tasks_wait_on_one_future(procs):
    def main():
        f = cf.Future()
        tasks = [gr.go(gr.result, f) for _ in range(100)]
        gr.sleep(0.01)
        f.set_result(3)
        return [t.join() for t in tasks]

    assert gr.run(main, procs=procs) == [3] * 100


def test_completed_by_a_plain_thread_is_no_deadlock(procs):
    # Nothing in the runtime can wake the task: the completing thread starts only after
    # the task parked, and the deadlock detector must not fire meanwhile.
    def main():
        f = cf.Future()
        th = threading.Timer(0.2, f.set_result, ("late",))
        th.start()
        try:
            return gr.result(f)
        finally:
            th.join()

    assert gr.run(main, procs=procs) == "late"


def test_cancelled_future_raises_cancelled_error(procs):
    def main():
        f = cf.Future()
        gr.go(f.cancel)
        with pytest.raises(cf.CancelledError):
            gr.result(f)
        return True

    assert gr.run(main, procs=procs)


def test_timeout_raises_timeout_error_and_leaves_the_future(procs):
    def main():
        f = cf.Future()
        with pytest.raises(TimeoutError, match="did not finish"):
            gr.result(f, timeout=0.02)
        assert not f.done() and not f.cancelled()
        with pytest.raises(TimeoutError):
            gr.result(f, timeout=0)
        f.set_result(1)
        return gr.result(f, timeout=0)

    assert gr.run(main, procs=procs) == 1


def test_cancelling_the_waiting_task(procs):
    def main():
        f = cf.Future()
        t = gr.go(gr.result, f)
        gr.sleep(0.01)
        assert "parked on future" in repr(t)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        assert not f.done()  # the waiter stopped; the future is someone else's
        f.set_result(1)  # the callback left behind runs harmlessly
        return True

    assert gr.run(main, procs=procs)


def test_already_cancelled_task_gets_cancelled(procs):
    def main():
        f = cf.Future()
        gr.current().cancel()
        with pytest.raises(gr.Cancelled):
            gr.result(f)
        return True

    assert gr.run(main, procs=procs)


def test_timeout_and_completion_race_give_one_outcome(procs, pool):
    # Whatever the interleaving: the value or TimeoutError, never a hang or both.
    def main():
        outcomes = []
        for i in range(200):
            f = pool.submit(pow, i, 2)
            try:
                outcomes.append(gr.result(f, timeout=0.0005 * (i % 4)))
            except TimeoutError:
                outcomes.append(gr.result(f))
        return outcomes

    assert gr.run(main, procs=procs) == [i * i for i in range(200)]


def test_stress_every_wait_gets_its_value_once():
    n = 2000

    def waiter(f, out):
        out.append(gr.result(f))

    def main():
        futures = [cf.Future() for _ in range(n)]
        out = []
        tasks = [gr.go(waiter, f, out) for f in futures]

        def complete(part):
            for i in part:
                futures[i].set_result(i)

        threads = [threading.Thread(target=complete, args=(range(k, n, 3),)) for k in range(3)]
        for th in threads:
            th.start()
        for t in tasks:
            t.join()
        for th in threads:
            th.join()
        return out

    assert sorted(gr.run(main, procs=2)) == list(range(n))


def test_stress_cancel_racing_completion_gives_one_outcome(pool):
    # A parked waiter cancelled while a pool thread completes its future: the value or
    # Cancelled, never both, never neither, never a hang.
    def main():
        outcomes = {"value": 0, "cancelled": 0}

        def waiter(f, parked):
            parked.set()
            try:
                gr.result(f)
            except gr.Cancelled:
                outcomes["cancelled"] += 1
                raise
            outcomes["value"] += 1

        for i in range(500):
            f, parked = cf.Future(), gr.Event()
            t = gr.go(waiter, f, parked)
            parked.wait()
            pool.submit(f.set_result, i)
            if i % 2:
                gr.gosched()
            t.cancel()
            try:
                t.join()
            except gr.Cancelled:
                pass
        return outcomes

    outcomes = gr.run(main, procs=2)
    assert outcomes["value"] + outcomes["cancelled"] == 500
    assert outcomes["cancelled"] > 0


# --- asyncio ------------------------------------------------------------------------------


def test_asyncio_future_of_a_loop_on_another_thread(procs, loop):
    def main():
        f = on_loop(loop, loop.create_future)
        gr.go(loop.call_soon_threadsafe, f.set_result, "from the loop")
        return gr.result(f)

    assert gr.run(main, procs=procs) == "from the loop"


def test_asyncio_task_on_another_thread(procs, loop):
    async def work(x):
        await asyncio.sleep(0.01)
        return x * 2

    def main():
        t = on_loop(loop, lambda: loop.create_task(work(21)))
        return gr.result(t)

    assert gr.run(main, procs=procs) == 42


def test_asyncio_exception_and_done_future(procs, loop):
    def main():
        f = on_loop(loop, loop.create_future)
        on_loop(loop, f.set_exception, Boom("async"))
        with pytest.raises(Boom, match="async"):
            gr.result(f)
        g = on_loop(loop, loop.create_future)
        on_loop(loop, g.set_result, 9)
        return gr.result(g, timeout=0)

    assert gr.run(main, procs=procs) == 9


def test_cancelled_asyncio_future_raises_asyncio_cancelled_error(procs, loop):
    def main():
        f = on_loop(loop, loop.create_future)
        gr.go(loop.call_soon_threadsafe, f.cancel)
        with pytest.raises(asyncio.CancelledError):
            gr.result(f)
        return True

    assert gr.run(main, procs=procs)


def test_asyncio_future_timeout(procs, loop):
    def main():
        f = on_loop(loop, loop.create_future)
        with pytest.raises(TimeoutError):
            gr.result(f, timeout=0.02)
        loop.call_soon_threadsafe(f.set_result, 1)
        return gr.result(f)

    assert gr.run(main, procs=procs) == 1


def test_asyncio_future_of_a_closed_loop():
    closed = asyncio.new_event_loop()
    f = closed.create_future()
    closed.close()

    def main():
        with pytest.raises(RuntimeError, match="event loop is closed"):
            gr.result(f)
        return True

    assert gr.run(main, procs=1)
    with pytest.raises(RuntimeError, match="event loop is closed"):
        gr.result(f)  # from a thread that runs no task too


def test_asyncio_future_from_its_own_loops_thread():
    async def main():
        f = asyncio.get_running_loop().create_future()
        with pytest.raises(RuntimeError, match="await the future instead"):
            gr.result(f)
        return True

    assert asyncio.run(main())


# --- other futures ------------------------------------------------------------------------


class ThreadFuture:
    """A future of a home-made library: the two methods the protocol asks for, completed
    by a thread of its own that calls the callbacks there (as Dask's client does)."""

    def __init__(self, fn):
        self._lock = threading.Lock()
        self._callbacks = []
        self._done = False
        self._value = self._exc = None
        threading.Thread(target=self._run, args=(fn,)).start()

    def _run(self, fn):
        try:
            self._value = fn()
        except BaseException as e:
            self._exc = e
        with self._lock:
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(self)

    def add_done_callback(self, cb):
        with self._lock:
            if not self._done:
                self._callbacks.append(cb)
                return
        cb(self)

    def result(self):
        if not self._done:
            raise RuntimeError("result() of a ThreadFuture before it is done")
        if self._exc is not None:
            raise self._exc
        return self._value


def test_any_object_with_the_protocol(procs):
    def bad():
        raise Boom("duck")

    def main():
        assert gr.result(ThreadFuture(lambda: "quack")) == "quack"
        with pytest.raises(Boom, match="duck"):
            gr.result(ThreadFuture(bad))
        return True

    assert gr.run(main, procs=procs)


def test_goroutines_task_is_joined(procs):
    def main():
        t = gr.go(pow, 2, 10)
        assert gr.result(t) == 1024
        slow = gr.go(gr.sleep, 1)
        with pytest.raises(TimeoutError):
            gr.result(slow, timeout=0.01)
        slow.cancel()
        return True

    assert gr.run(main, procs=procs)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, 42, "future", object(), cf.Future])
def test_non_future_is_type_error(bad):
    with pytest.raises(TypeError, match="result\\(\\) needs a future"):
        gr.result(bad)
    with pytest.raises(TypeError, match="result\\(\\) needs a future"):
        gr.run(gr.result, bad, procs=1)


def test_coroutine_is_type_error_pointing_to_aio():
    async def coro():
        return 1

    c = coro()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "was never awaited" on top of the error
        with pytest.raises(TypeError, match="aio"):
            gr.result(c)
        del c
        gc.collect()


@pytest.mark.parametrize(("timeout", "exc"), [("1", TypeError), (True, TypeError),
                                              (-1, ValueError), (float("nan"), ValueError)])
def test_bad_timeout(timeout, exc):
    f = cf.Future()
    f.set_result(1)
    with pytest.raises(exc, match="timeout"):
        gr.result(f, timeout=timeout)


# --- threads that run no task -----------------------------------------------------------


def test_from_a_plain_thread_without_a_run(pool):
    assert gr.result(pool.submit(pow, 3, 3)) == 27
    f = cf.Future()
    with pytest.raises(TimeoutError):
        gr.result(f, timeout=0.01)
    threading.Timer(0.02, f.set_result, ("later",)).start()
    assert gr.result(f) == "later"


def test_asyncio_future_from_a_plain_thread(loop):
    f = on_loop(loop, loop.create_future)
    threading.Timer(0.02, loop.call_soon_threadsafe, (f.set_result, "to a thread")).start()
    assert gr.result(f) == "to a thread"


def test_from_a_plain_thread_during_a_run(procs):
    got = []

    def thread(f):
        got.append(gr.result(f))

    def main():
        f = cf.Future()
        th = threading.Thread(target=thread, args=(f,))
        th.start()
        gr.sleep(0.01)
        f.set_result("to the thread")
        gr.blocking(th.join)
        return got

    assert gr.run(main, procs=procs) == ["to the thread"]
