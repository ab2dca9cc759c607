"""Waiting on many tasks: gather, wait, as_completed, Task.done_chan,
Task.add_done_callback, and join(timeout) not cancelling."""

import asyncio
import concurrent.futures
import logging
import threading

import pytest
from hypothesis import given, settings, strategies as st

import goroutines as gr


def boom(msg="boom"):
    raise ValueError(msg)


def parked_forever(started=None):
    if started is not None:
        started.set()
    gr.Event().wait()


# --------------------------------------------------------------------------- gather


def test_gather_returns_results_in_argument_order(grun):
    def main():
        gate = gr.Event()
        ts = [gr.go(lambda i=i: (gate.wait(), i * i)[1]) for i in range(50)]
        gr.go(gate.set)
        return gr.gather(*ts, lambda: "fn", gr.go(str, 7))

    assert grun(main) == [i * i for i in range(50)] + ["fn", "7"]


def test_gather_of_nothing_is_an_empty_list(grun):
    assert grun(gr.gather) == []


def test_gather_first_failure_cancels_the_rest_and_waits_for_them(grun):
    def main():
        started = gr.WaitGroup()
        started.add(3)
        cleaned = []

        def sibling(i):
            started.done()
            try:
                gr.Event().wait()
            finally:
                cleaned.append(i)

        def failing():
            started.wait()
            raise ValueError("first")

        siblings = [gr.go(sibling, i) for i in range(3)]
        with pytest.raises(ValueError, match="first"):
            gr.gather(*siblings, failing)
        # The siblings were cancelled and had finished (their finally ran) before the raise.
        assert sorted(cleaned) == [0, 1, 2]
        assert all(t.cancelled() for t in siblings)

    grun(main)


def test_gather_return_exceptions_cancels_nothing(grun):
    def main():
        ok = gr.go(lambda: (gr.sleep(0.01), "late")[1])
        failed = gr.go(boom, "x")
        cancelled = gr.go(parked_forever)
        gr.gosched()
        cancelled.cancel()
        out = gr.gather(ok, failed, cancelled, return_exceptions=True)
        assert out[0] == "late"
        assert isinstance(out[1], ValueError) and str(out[1]) == "x"
        assert isinstance(out[2], gr.Cancelled)

    grun(main)


def test_gather_raises_a_childs_cancellation(grun):
    def main():
        t = gr.go(parked_forever)
        gr.gosched()
        t.cancel()
        with pytest.raises(gr.Cancelled):
            gr.gather(t)

    grun(main)


def test_cancelling_gather_cancels_its_tasks(grun):
    def main():
        started = gr.WaitGroup()
        started.add(2)
        children = [gr.go(parked_forever, None) for _ in range(2)]

        def gatherer():
            started.done()
            started.done()
            gr.gather(*children)

        g = gr.go(gatherer)
        started.wait()
        gr.gosched()
        g.cancel()
        with pytest.raises(gr.Cancelled):
            g.join()
        for c in children:
            with pytest.raises(gr.Cancelled):
                c.join()

    grun(main)


def test_gather_rejects_what_is_neither_task_nor_function_before_starting_any(grun):
    def main():
        before = gr.num_tasks()
        with pytest.raises(TypeError, match="callable"):
            gr.gather(lambda: 1, 42)

        async def coro():
            pass

        with pytest.raises(TypeError, match="async"):
            gr.gather(coro)
        assert gr.num_tasks() == before

    grun(main)


def test_gather_from_a_plain_thread(grun):
    def main():
        ts = [gr.go(lambda i=i: (gr.sleep(0.001), i)[1]) for i in range(20)]
        out = []
        th = threading.Thread(target=lambda: out.append(gr.gather(*ts)))
        th.start()
        gr.blocking(th.join)
        return out

    assert grun(main) == [list(range(20))]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from(["ok", "sleep", "fail"]), max_size=12), st.booleans())
def test_gather_property_results_or_first_failure(kinds, return_exceptions):
    def job(i, kind):
        if kind == "sleep":
            gr.sleep(0.001)
        if kind == "fail":
            raise ValueError(i)
        return i

    def main():
        ts = [gr.go(job, i, k) for i, k in enumerate(kinds)]
        try:
            out = gr.gather(*ts, return_exceptions=return_exceptions)
        except ValueError as e:
            assert not return_exceptions and kinds[e.args[0]] == "fail"
            assert all(t.done() for t in ts)
            for t in ts:  # the other failures (gather raises the first; these are logged)
                if not t.cancelled():
                    t.exception()
            return
        assert "fail" not in kinds or return_exceptions
        for i, (k, v) in enumerate(zip(kinds, out, strict=True)):
            assert (isinstance(v, ValueError) and v.args == (i,)) if k == "fail" else v == i

    gr.run(main, procs=2)


# --------------------------------------------------------------------------- wait


def test_wait_all_completed(grun):
    def main():
        ts = [gr.go(gr.sleep, 0.001 * i) for i in range(5)]
        done, pending = gr.wait(ts)
        assert done == set(ts) and pending == set()

    grun(main)


def test_wait_first_completed_returns_once_one_is_done(grun):
    def main():
        gate = gr.Event()
        slow = [gr.go(gate.wait) for _ in range(3)]
        fast = gr.go(gr.sleep, 0.001)
        done, pending = gr.wait(slow + [fast], return_when=gr.FIRST_COMPLETED)
        assert done == {fast} and pending == set(slow)
        gate.set()
        done, pending = gr.wait(slow + [fast], return_when=gr.FIRST_COMPLETED)
        assert fast in done

    grun(main)


def test_wait_first_exception_ignores_cancellations(grun):
    def main():
        gate = gr.Event()
        blocked = gr.go(gate.wait)
        cancelled = gr.go(parked_forever)
        gr.gosched()
        cancelled.cancel()
        with pytest.raises(gr.Cancelled):
            cancelled.join()
        failing = gr.go(lambda: (gr.sleep(0.002), boom())[1])
        done, pending = gr.wait([blocked, cancelled, failing], return_when=gr.FIRST_EXCEPTION)
        assert done == {cancelled, failing} and pending == {blocked}
        gate.set()
        with pytest.raises(ValueError):
            failing.result()

    grun(main)


def test_wait_first_exception_without_failure_waits_for_all(grun):
    def main():
        ts = [gr.go(gr.sleep, 0.001) for _ in range(4)]
        done, pending = gr.wait(ts, return_when=gr.FIRST_EXCEPTION)
        assert done == set(ts) and not pending

    grun(main)


def test_wait_timeout_returns_what_is_done_and_cancels_nothing(grun):
    def main():
        gate = gr.Event()
        blocked = gr.go(gate.wait)
        quick = gr.go(int)
        done, pending = gr.wait([blocked, quick], timeout=0.01)
        assert done == {quick} and pending == {blocked}
        assert not blocked.done()
        done, pending = gr.wait([blocked], timeout=0)
        assert pending == {blocked}
        gate.set()
        blocked.join()

    grun(main)


def test_wait_in_a_loop_beside_a_long_task(grun):
    # The FIRST_COMPLETED loop of concurrent.futures: every round waits on the same long
    # task (and takes its hook back off it), which still finishes normally.
    def main():
        gate = gr.Event()
        long = gr.go(gate.wait)
        for _ in range(50):
            t = gr.go(int)
            done, pending = gr.wait([long, t], return_when=gr.FIRST_COMPLETED)
            assert t in done
        calls = []
        long.add_done_callback(calls.append)
        gate.set()
        long.join()
        return calls == [long]

    assert grun(main)


def test_wait_bad_arguments(grun):
    def main():
        t = gr.go(int)
        with pytest.raises(ValueError, match="return_when"):
            gr.wait([t], return_when="SOMETIMES")
        with pytest.raises(TypeError, match="Tasks"):
            gr.wait([t, 3])
        with pytest.raises(ValueError, match="non-negative"):
            gr.wait([t], timeout=-1)
        with pytest.raises(TypeError):
            gr.wait(5)
        assert gr.wait([]) == (set(), set())

    grun(main)


# --------------------------------------------------------------------------- as_completed


def test_as_completed_yields_in_completion_order(grun):
    def main():
        chans = [gr.Chan() for _ in range(4)]
        ts = [gr.go(c.recv) for c in chans]
        order = [2, 0, 3, 1]

        def feeder():
            for i in order:
                chans[i].send(i)
                ts[i].join()

        gr.go(feeder)
        return [t.result() for t in gr.as_completed(ts)]

    assert grun(main) == [2, 0, 3, 1]


def test_as_completed_timeout_raises(grun):
    def main():
        gate = gr.Event()
        ts = [gr.go(int), gr.go(gate.wait)]
        it = gr.as_completed(ts, timeout=0.01)
        assert next(it) is ts[0]
        with pytest.raises(TimeoutError, match="1 \\(of 2\\)"):
            next(it)
        gate.set()

    grun(main)


def test_as_completed_closed_early_leaves_the_tasks_alone(grun):
    def main():
        gate = gr.Event()
        ts = [gr.go(int), gr.go(gate.wait)]
        it = gr.as_completed(ts)
        next(it)
        it.close()
        assert not ts[1].done()
        gate.set()
        return ts[1].join()

    assert grun(main) is True


# --------------------------------------------------------------------------- done_chan


def test_done_chan_closes_when_the_task_finishes(grun):
    def main():
        gate = gr.Event()
        t = gr.go(gate.wait)
        ch = t.done_chan
        assert ch is t.done_chan and not ch.closed
        assert gr.select(gr.Recv(ch), default=True) == (-1, None, False)
        gr.go(gate.set)
        assert gr.select(gr.Recv(ch), gr.Recv(gr.Chan())) == (0, None, False)
        done = gr.go(int)
        done.join()
        assert done.done_chan.closed  # made after the end: closed at once

    grun(main)


def test_done_chan_of_a_cancelled_and_a_failed_task(grun):
    def main():
        a = gr.go(parked_forever)
        b = gr.go(lambda: (gr.gosched(), boom())[1])
        chans = [a.done_chan, b.done_chan]
        a.cancel()
        for ch in chans:
            with pytest.raises(gr.ChanClosed):
                ch.recv()
        with pytest.raises(ValueError):
            b.join()

    grun(main)


# --------------------------------------------------------------------------- callbacks


def test_add_done_callback_runs_once_after_done_outside_any_task(grun):
    def main():
        seen = []
        gate = gr.Event()
        t = gr.go(gate.wait)

        def cb(task):
            seen.append((task is t, task.done(), gr.current(), threading.get_ident()))

        t.add_done_callback(cb)
        t.add_done_callback(cb)
        gate.set()
        t.join()
        while len(seen) < 2:  # at procs=2 the hooks may run on the other M after the join
            gr.sleep(0.0005)
        return seen

    seen = grun(main)
    assert len(seen) == 2 and all(s[:3] == (True, True, None) for s in seen)


def test_add_done_callback_on_a_done_task_runs_at_once_in_a_task(grun):
    def main():
        t = gr.go(int)
        t.join()
        seen = []
        t.add_done_callback(seen.append)
        assert seen == [t]

    grun(main)


def test_add_done_callback_from_a_thread_on_a_done_task_runs_as_a_task(grun):
    def main():
        t = gr.go(int)
        t.join()
        got = gr.Chan(1)
        th = threading.Thread(
            target=t.add_done_callback, args=(lambda task: got.send(gr.current()),)
        )
        th.start()
        gr.blocking(th.join)
        runner = got.recv()
        assert isinstance(runner, gr.Task) and runner is not t

    grun(main)


def test_done_callback_may_start_tasks_and_send_without_waiting(grun):
    def main():
        out = gr.Chan(2)
        t = gr.go(gr.sleep, 0.001)
        t.add_done_callback(lambda task: out.try_send("cb"))
        t.add_done_callback(lambda task: gr.go(out.send, "task"))
        return sorted([out.recv(), out.recv()])

    assert grun(main) == ["cb", "task"]


def test_done_callback_exception_is_logged_and_others_still_run(grun, caplog):
    def main():
        seen = []
        t = gr.go(gr.sleep, 0.001)
        t.add_done_callback(lambda task: boom("in callback"))
        t.add_done_callback(seen.append)
        t.join()
        while not seen:
            gr.sleep(0.0005)
        return seen

    with caplog.at_level(logging.ERROR, logger="goroutines"):
        seen = grun(main)
    assert len(seen) == 1
    assert "exception in done callback" in caplog.text and "in callback" in caplog.text


def test_remove_done_callback(grun):
    def main():
        gate = gr.Event()
        t = gr.go(gate.wait)
        seen = []

        def cb(task):
            seen.append(task)

        t.add_done_callback(cb)
        t.add_done_callback(cb)
        t.add_done_callback(print)
        assert t.remove_done_callback(cb) == 2
        assert t.remove_done_callback(cb) == 0
        assert t.remove_done_callback(print) == 1
        gate.set()
        t.join()
        return seen

    assert grun(main) == []


def test_add_done_callback_needs_a_callable(grun):
    def main():
        with pytest.raises(TypeError, match="callable"):
            gr.go(int).add_done_callback(3)

    grun(main)


def test_callbacks_race_with_finishing_tasks_none_lost(procs):
    # A hook added from one M while the task finishes on the other fires exactly once.
    def main():
        fired = []
        lock = threading.Lock()

        def cb(t):
            with lock:
                fired.append(t.id)

        ts = []
        for _ in range(2000):
            t = gr.go(gr.gosched)
            t.add_done_callback(cb)
            ts.append(t)
        for t in ts:
            t.join()
        while len(fired) < len(ts):  # hooks run after the joiner is woken
            gr.sleep(0.0005)
        gr.sleep(0.001)  # a duplicate would show up meanwhile
        return sorted(fired) == sorted(t.id for t in ts)

    assert gr.run(main, procs=procs)


# --------------------------------------------------------------------------- join


def test_join_timeout_does_not_cancel(grun):
    def main():
        gate = gr.Event()
        t = gr.go(lambda: (gate.wait(), "finished")[1])
        with pytest.raises(TimeoutError):
            t.join(timeout=0.005)
        assert not t.done() and not t.cancelled()
        gate.set()
        return t.join()

    assert grun(main) == "finished"


# --------------------------------------------------------------------------- futures


@pytest.fixture
def pool():
    with concurrent.futures.ThreadPoolExecutor(2) as p:
        yield p


@pytest.fixture
def loop():
    """An asyncio loop running on its own thread."""
    lp = asyncio.new_event_loop()
    th = threading.Thread(target=lp.run_forever)
    th.start()
    yield lp
    lp.call_soon_threadsafe(lp.stop)
    th.join()
    lp.close()


def test_wait_mixes_tasks_and_concurrent_futures(grun, pool):
    def main():
        gate = threading.Event()
        fut = pool.submit(gate.wait, 10)
        t = gr.go(gr.sleep, 0.001)
        done, pending = gr.wait([fut, t], return_when=gr.FIRST_COMPLETED)
        assert done == {t} and pending == {fut}
        gate.set()
        done, pending = gr.wait([fut, t])
        assert done == {fut, t} and not pending and fut.result() is True

    grun(main)


def test_wait_first_exception_on_a_future_and_a_cancelled_one(grun, pool):
    def main():
        gate = threading.Event()
        blocked = pool.submit(gate.wait, 10)
        cancelled = concurrent.futures.Future()
        cancelled.cancel()
        failing = pool.submit(boom, "in pool")
        done, pending = gr.wait([blocked, cancelled, failing], return_when=gr.FIRST_EXCEPTION)
        assert failing in done and blocked in pending and cancelled in done
        gate.set()

    grun(main)


def test_wait_timeout_on_futures_leaves_them_alone_and_no_task_behind(grun, pool):
    def main():
        gate = threading.Event()
        fut = pool.submit(gate.wait, 10)
        before = gr.num_tasks()
        done, pending = gr.wait([fut], timeout=0.005)
        assert pending == {fut} and not fut.done()
        gr.sleep(0.001)  # the cancelled stand-in task finishes
        assert gr.num_tasks() == before
        gate.set()
        assert fut.result() is True

    grun(main)


def test_as_completed_yields_the_futures_themselves(grun, pool, loop):
    def main():
        gates = [threading.Event() for _ in range(2)]
        f1 = pool.submit(gates[0].wait, 10)
        f2 = pool.submit(gates[1].wait, 10)

        async def later():
            return "aio"

        af = asyncio.run_coroutine_threadsafe(later(), loop)  # a concurrent.futures one
        box = concurrent.futures.Future()  # an asyncio.Future, made on its loop's thread
        loop.call_soon_threadsafe(lambda: box.set_result(loop.create_future()))
        aio_future = box.result(10)
        t = gr.go(str, "task")
        it = gr.as_completed([f1, f2, af, aio_future, t], timeout=10)
        first = {next(it), next(it)}
        assert first == {af, t}
        gates[1].set()
        assert next(it) is f2
        loop.call_soon_threadsafe(aio_future.set_result, "set")
        assert next(it) is aio_future
        gates[0].set()
        assert next(it) is f1
        assert aio_future.result() == "set" and af.result() == "aio"

    grun(main)


def test_wait_from_a_plain_thread_on_futures(grun, pool):
    def main():
        fut = pool.submit(pow, 2, 8)
        out = []
        th = threading.Thread(target=lambda: out.append(gr.wait([fut, gr.go(int)])))
        th.start()
        gr.blocking(th.join)
        done, pending = out[0]
        return fut in done and not pending

    assert grun(main)


def test_wait_rejects_what_is_not_a_future(grun):
    def main():
        with pytest.raises(TypeError, match="Tasks and futures"):
            gr.wait([gr.go(int), object()])
        with pytest.raises(TypeError, match="Tasks and futures"):
            list(gr.as_completed([concurrent.futures.Future]))

    grun(main)
