"""gr.blocking(): calls offloaded to the blocking thread pool while the task parks.

Covers results and exceptions, argument checks, the pool bound (GOROUTINES_MAX_BLOCKING),
deadlock detection with pending offloaded calls, cancellation during a call, and a
"burst then quiesce" stress run that hunts lost wake-ups of idle Ms.
"""

import gc
import threading
import time
import weakref

import pytest

import goroutines as gr
from goroutines import _core


@pytest.fixture
def fresh_pool(monkeypatch):
    """A new offload pool for this test (the pool reads GOROUTINES_MAX_BLOCKING once)."""
    monkeypatch.setattr(_core, "_pool", None)
    yield
    # monkeypatch puts the old pool back; the test's pool threads exit after their idle
    # timeout (they are daemons).


# --- results, exceptions, arguments -----------------------------------------------------


def test_returns_result(procs):
    def main():
        return gr.blocking(divmod, 17, 5)

    assert gr.run(main, procs=procs) == (3, 2)


def test_passes_args_and_kwargs():
    def f(a, b, *, c, d=4):
        return (a, b, c, d)

    assert gr.run(lambda: gr.blocking(f, 1, 2, c=3), procs=1) == (1, 2, 3, 4)
    assert gr.run(lambda: gr.blocking(f, 1, b=2, c=3, d=5), procs=1) == (1, 2, 3, 5)


def test_kwargs_named_fn_are_passed_through():
    def f(**kw):
        return kw

    assert gr.run(lambda: gr.blocking(f, x=1, args=2), procs=1) == {"x": 1, "args": 2}


def test_reraises_exception_from_call():
    class Boom(Exception):
        pass

    err = Boom("x")

    def bad():
        raise err

    def main():
        with pytest.raises(Boom) as info:
            gr.blocking(bad)
        assert info.value is err
        # The task goes on normally afterwards.
        return gr.blocking(lambda: 42)

    assert gr.run(main, procs=1) == 42


def test_exception_propagates_to_run():
    def main():
        gr.blocking(int, "not a number")

    with pytest.raises(ValueError):
        gr.run(main, procs=2)


def test_base_exception_from_call_is_reraised():
    def bad():
        raise KeyboardInterrupt

    def main():
        try:
            gr.blocking(bad)
        except KeyboardInterrupt:
            return "caught"

    assert gr.run(main, procs=1) == "caught"


@pytest.mark.parametrize("bad", [None, 3, "fn", [print]])
def test_non_callable_is_type_error(bad):
    def main():
        with pytest.raises(TypeError):
            gr.blocking(bad)
        return "ok"

    assert gr.run(main, procs=1) == "ok"


def test_non_callable_outside_task_is_type_error():
    with pytest.raises(TypeError):
        gr.blocking(42)


def test_outside_task_is_runtime_error():
    called = []
    with pytest.raises(RuntimeError):
        gr.blocking(called.append, 1)
    assert called == []


def test_from_foreign_thread_during_run_is_runtime_error():
    """A plain thread (not an M) cannot use blocking() even while a run is active."""
    seen = []

    def foreign():
        try:
            gr.blocking(lambda: None)
        except RuntimeError as e:
            seen.append(e)

    def main():
        th = threading.Thread(target=foreign)
        th.start()
        gr.blocking(th.join)
        return len(seen)

    assert gr.run(main, procs=1) == 1


def test_runs_on_offload_thread():
    def main():
        me = threading.get_ident()
        ident, name = gr.blocking(lambda: (threading.get_ident(), threading.current_thread().name))
        return me, ident, name

    me, ident, name = gr.run(main, procs=1)
    assert ident != me
    assert name == "goroutines-offload"


# --- the task parks, the M keeps running other tasks -------------------------------------


def test_m_keeps_running_tasks_while_call_blocks():
    """At procs=1 the only M must run other tasks while one task waits in a blocking call:
    here the blocking call itself waits for another task."""
    ev = threading.Event()

    def setter():
        gr.sleep(0.01)
        ev.set()

    def main():
        gr.go(setter)
        return gr.blocking(ev.wait, 5)

    t0 = time.monotonic()
    assert gr.run(main, procs=1) is True
    assert time.monotonic() - t0 < 4


def test_calls_overlap(procs):
    """Eight 0.2 s sleeps offloaded at once finish in about 0.2 s, not 1.6 s."""

    def main():
        tasks = [gr.go(gr.blocking, time.sleep, 0.2) for _ in range(8)]
        for t in tasks:
            t.join()

    t0 = time.monotonic()
    gr.run(main, procs=procs)
    assert time.monotonic() - t0 < 1.2


def test_many_calls_results_in_order():
    def main():
        tasks = [gr.go(gr.blocking, pow, i, 2) for i in range(500)]
        return [t.join() for t in tasks]

    assert gr.run(main, procs=2) == [i * i for i in range(500)]


def test_sequential_calls_reuse_threads():
    """Back-to-back calls from one task reuse pool threads instead of one thread each."""

    def main():
        return {gr.blocking(threading.get_ident) for _ in range(50)}

    idents = gr.run(main, procs=1)
    assert len(idents) < 50


# --- pool bound ---------------------------------------------------------------------------


def test_pool_bounded_by_env(monkeypatch, fresh_pool):
    monkeypatch.setenv("GOROUTINES_MAX_BLOCKING", "2")
    lock = threading.Lock()
    active = [0]
    peak = [0]
    idents = set()

    def work():
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            idents.add(threading.get_ident())
        time.sleep(0.05)
        with lock:
            active[0] -= 1

    def main():
        tasks = [gr.go(gr.blocking, work) for _ in range(8)]
        for t in tasks:
            t.join()

    t0 = time.monotonic()
    gr.run(main, procs=2)
    elapsed = time.monotonic() - t0
    assert peak[0] == 2
    assert len(idents) <= 2
    assert elapsed >= 0.05 * 8 / 2 * 0.9


def test_pool_bound_of_one_serialises(monkeypatch, fresh_pool):
    monkeypatch.setenv("GOROUTINES_MAX_BLOCKING", "1")

    def main():
        tasks = [gr.go(gr.blocking, threading.get_ident) for _ in range(20)]
        return {t.join() for t in tasks}

    assert len(gr.run(main, procs=2)) == 1


@pytest.mark.parametrize("value", ["0", "-3", "lots", ""])
def test_invalid_max_blocking(monkeypatch, fresh_pool, value):
    monkeypatch.setenv("GOROUTINES_MAX_BLOCKING", value)

    def main():
        gr.blocking(lambda: None)

    with pytest.raises(ValueError, match="GOROUTINES_MAX_BLOCKING"):
        gr.run(main, procs=1)


def test_pool_grows_beyond_default_demand(fresh_pool):
    """Calls that wait on each other need one thread each: the pool must grow on demand."""
    n = 16
    barrier = threading.Barrier(n, timeout=10)

    def main():
        tasks = [gr.go(gr.blocking, barrier.wait) for _ in range(n)]
        return sorted(t.join() for t in tasks)

    assert gr.run(main, procs=2) == list(range(n))


def test_saturated_pool_does_not_count_threads_that_are_gone(monkeypatch, fresh_pool):
    # Every call queued while the pool was at its bound made a thread count itself idle
    # once more when it finished, so idle ended above the number of threads; when they had
    # all timed out, the next call was queued for an idle thread that did not exist and
    # blocking() waited forever.
    monkeypatch.setenv("GOROUTINES_MAX_BLOCKING", "2")
    monkeypatch.setattr(_core, "_IDLE_TIMEOUT", 0.05)

    def main():
        for t in [gr.go(gr.blocking, time.sleep, 0.01) for _ in range(6)]:
            t.join()

    gr.run(main, procs=2)
    pool = _core._pool
    while pool.threads:  # every thread times out
        time.sleep(0.01)
    assert (pool.idle, pool.backlog) == (0, 0)
    assert gr.run(lambda: gr.blocking(pow, 2, 5), procs=1) == 32


# --- deadlock detection ---------------------------------------------------------------------


def test_pending_call_is_not_deadlock():
    """The only live task waits on an offloaded call: that is not a deadlock."""

    def main():
        gr.blocking(time.sleep, 0.2)
        return "done"

    assert gr.run(main, procs=1) == "done"


def test_join_on_task_in_blocking_call_is_not_deadlock(procs):
    def worker():
        gr.blocking(time.sleep, 0.2)
        return 7

    def main():
        return gr.go(worker).join()

    assert gr.run(main, procs=procs) == 7


def test_deadlock_still_detected_after_blocking_call():
    """Once the offloaded call is over, a real deadlock is still reported."""

    def main():
        gr.blocking(time.sleep, 0.05)
        gr.Chan().recv()

    with pytest.raises(gr.Deadlock):
        gr.run(main, procs=2)


def test_deadlock_detected_while_other_tasks_blocked_forever_but_call_pending():
    """A task stuck on a channel is not a deadlock while another task's offloaded call can
    still wake it."""

    def main():
        ch = gr.Chan()

        def producer():
            gr.blocking(time.sleep, 0.1)
            ch.send("hi")

        gr.go(producer)
        return ch.recv()

    assert gr.run(main, procs=2) == "hi"


# --- cancellation ----------------------------------------------------------------------------


def test_cancel_during_call_delivered_after_return():
    finished = threading.Event()
    after = []

    def slow():
        time.sleep(0.2)
        finished.set()
        return "result"

    def worker():
        try:
            gr.blocking(slow)
        except gr.Cancelled:
            # The call ran to completion before the cancellation was delivered.
            after.append(finished.is_set())
            raise
        after.append("not cancelled")

    def main():
        t = gr.go(worker)
        gr.sleep(0.05)
        assert t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        return t.cancelled()

    assert gr.run(main, procs=2) is True
    assert after == [True]


def test_cancel_before_call_skips_it():
    ran = []

    def worker():
        gr.current().cancel()
        gr.blocking(ran.append, 1)

    def main():
        t = gr.go(worker)
        with pytest.raises(gr.Cancelled):
            t.join()

    gr.run(main, procs=1)
    assert ran == []


def test_exception_from_call_wins_over_cancellation():
    def bad():
        time.sleep(0.1)
        raise ZeroDivisionError

    def worker():
        gr.blocking(bad)

    def main():
        t = gr.go(worker)
        gr.sleep(0.02)
        t.cancel()
        try:
            t.join()
        except ZeroDivisionError:
            return "exc"
        except gr.Cancelled:
            return "cancelled"

    assert gr.run(main, procs=2) == "exc"


def test_main_returning_cancels_task_in_blocking_call():
    """run() returns only after the cancelled task's offloaded call has finished."""
    finished = threading.Event()

    def slow():
        time.sleep(0.15)
        finished.set()

    def main():
        gr.go(gr.blocking, slow)
        gr.sleep(0.02)

    gr.run(main, procs=2)
    assert finished.is_set()


def test_results_are_not_kept_alive_by_the_pool(procs):
    # An offload thread waiting for its next call kept the last one, and so its result
    # (a file's contents, say), alive for up to its 10 s idle timeout.
    class Big:
        pass

    refs = []

    def make():
        big = Big()
        refs.append(weakref.ref(big))
        return big

    def main():
        gr.blocking(make)  # returned, and dropped at once
        finished = threading.Event()

        def abandoned():
            time.sleep(0.05)
            finished.set()
            return make()

        with gr.move_on_after(0.01):
            gr.blocking(abandoned)  # its result is dropped when it returns
        gr.blocking(finished.wait, 10)

    gr.run(main, procs=procs)
    deadline = time.monotonic() + 5
    while any(r() is not None for r in refs) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)  # the last call's thread is between return and its next wait
    assert len(refs) == 2 and all(r() is None for r in refs)


# --- stress: burst then quiesce ---------------------------------------------------------------


def test_burst_then_quiesce_no_lost_wakeups():
    """300 rounds of 200 tasks spawned from one task, then a short sleep so the Ms go idle.
    Every task must finish: a lost wake-up of an idle M shows up as a hang (which the
    guard fixture turns into a failure)."""
    rounds, width = 300, 200
    done = [0]
    lock = threading.Lock()

    def body(k):
        mode = k % 3
        if mode == 0:
            gr.blocking(lambda: None)
        elif mode == 1:
            gr.sleep(0)
        with lock:
            done[0] += 1
        return k

    def main():
        for r in range(rounds):
            tasks = [gr.go(body, k) for k in range(width)]
            assert [t.join() for t in tasks] == list(range(width)), r
            gr.sleep(0.001)
        return gr.stats()

    stats = gr.run(main, procs=2)
    assert done[0] == rounds * width
    assert stats["tasks_spawned"] >= rounds * width


def test_blocking_does_not_leak_recursion_depth():
    """Parking in blocking() over and over must not use up the recursion limit: a task
    that parks and is resumed leaves the interpreter's recursion depth where it was.
    (Found by the burst test above: RecursionError in fresh tasks after ~10k parks.)"""

    def probe():
        def rec(n):
            try:
                return rec(n + 1)
            except RecursionError:
                return n

        return rec(0)

    def body():
        gr.blocking(lambda: None)

    def main():
        first = gr.go(probe).join()
        for _ in range(100):
            for t in [gr.go(body) for _ in range(200)]:
                t.join()
        return first, gr.go(probe).join()

    first, last = gr.run(main, procs=1)
    assert last >= first * 0.8, (first, last)


def test_an_aborted_run_abandons_a_blocking_call_in_flight(grun):
    import time as _time

    def main():
        gr.go(gr.blocking, _time.sleep, 5)
        gr.sleep(0.05)  # that task is parked on its call
        raise SystemExit("stop")

    t0 = _time.monotonic()
    with pytest.raises(SystemExit):
        grun(main)
    assert _time.monotonic() - t0 < 4  # run() did not wait for the 5 s call
