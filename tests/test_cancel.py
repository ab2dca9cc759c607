"""Task.cancel() and the cancellation of live tasks when main returns."""

import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import goroutines as gr


def started_task(fn, *args):
    """go(fn, *args), returning once the task is running (it may not have parked yet):
    from then on a cancel() must be delivered at a park point rather than skip the task."""
    started = []

    def body():
        started.append(True)
        return fn(*args)

    t = gr.go(body)
    while not started:
        gr.sleep(0)
    return t


def test_cancelled_is_a_base_exception_not_an_exception():
    assert issubclass(gr.Cancelled, BaseException)
    assert not issubclass(gr.Cancelled, Exception)


# ---- cancel() of a parked task -----------------------------------------------------------------


@pytest.mark.parametrize("park", ["sleep", "sleep-forever", "join", "join-timeout"])
def test_cancel_parked_task_runs_its_finally(grun, park):
    log = []

    def blocker():
        gr.sleep(1000)

    def victim(other):
        log.append("started")
        try:
            if park == "sleep":
                gr.sleep(1000)
            elif park == "sleep-forever":
                gr.sleep(float("inf"))
            elif park == "join":
                other.join()
            else:
                other.join(timeout=1000)
            log.append("not cancelled")
        finally:
            log.append("finally")

    def main():
        other = gr.go(blocker)
        t = gr.go(victim, other)
        while not log:
            gr.sleep(0)
        gr.sleep(0.001)  # usually it has parked by now; if not, the cancel still lands
        assert t.cancel() is True
        with pytest.raises(gr.Cancelled):
            t.join()
        # Cancelling the joiner does not touch the task it was waiting for.
        state = (t.done(), t.cancelled(), other.done())
        other.cancel()
        return state

    assert grun(main) == (True, True, False)
    assert log == ["started", "finally"]


def test_cancelled_exception_is_raised_at_the_park_point(grun):
    def victim():
        try:
            gr.sleep(1000)
        except gr.Cancelled as e:
            return ("caught", type(e))
        return ("not cancelled", None)

    def main():
        t = started_task(victim)
        t.cancel()
        return t.join(), t.cancelled()

    # A task may catch Cancelled and finish normally: then it was not cancelled.
    assert grun(main) == (("caught", gr.Cancelled), False)


def test_except_exception_does_not_swallow_cancelled(grun):
    log = []

    def victim():
        try:
            gr.sleep(1000)
        except Exception:
            log.append("swallowed")
        log.append("continued")

    def main():
        t = started_task(victim)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()

    grun(main)
    assert log == []


# ---- cancel() of a task that never ran ---------------------------------------------------------


def test_cancel_never_started_task_never_runs():
    ran = []

    def main():
        ts = [gr.go(ran.append, i) for i in range(10)]
        assert [t.cancel() for t in ts] == [True] * 10  # procs=1: none has run yet
        for t in ts:
            with pytest.raises(gr.Cancelled):
                t.join()
        return [(t.done(), t.cancelled()) for t in ts]

    assert gr.run(main, procs=1) == [(True, True)] * 10
    assert ran == []


def test_cancel_before_start_races_at_two_procs(procs):
    # Whatever the race, a task that did not run reports cancelled, and a task whose
    # cancel() returned False had finished.
    n = 2000
    ran = [False] * n

    def work(i):
        ran[i] = True
        return i

    def main():
        ts = [gr.go(work, i) for i in range(n)]
        returned = [t.cancel() for t in ts]
        out = []
        for t in ts:
            try:
                out.append(("ok", t.join()))
            except gr.Cancelled:
                out.append(("cancelled", None))
        return returned, out, [t.cancelled() for t in ts]

    returned, out, cancelled = gr.run(main, procs=procs)
    for i in range(n):
        if not ran[i]:
            assert out[i] == ("cancelled", None) and cancelled[i] and returned[i]
        else:
            assert out[i] == ("ok", i) and not cancelled[i]
    if procs == 1:
        assert not any(ran)


# ---- cancel() of a running task ----------------------------------------------------------------


def test_cancel_running_task_from_another_task(grun):
    log = []

    def spinner():
        n = 0
        try:
            while True:
                gr.gosched()
                n += 1
                if n == 5:
                    log.append("spinning")
        finally:
            log.append("finally")

    def canceller(t):
        while not log:
            gr.gosched()
        return t.cancel()

    def main():
        t = gr.go(spinner)
        c = gr.go(canceller, t)
        assert c.join() is True
        with pytest.raises(gr.Cancelled):
            t.join()
        return t.cancelled()

    assert grun(main) is True
    assert log == ["spinning", "finally"]


def test_cancel_while_truly_running_on_another_m(go_elsewhere):
    # The victim is executing Python code on the other M (not parked) when cancel() is
    # called; Cancelled comes out of its next park point.
    state = {"cancel_sent": False}
    log = []

    def victim():
        while not state["cancel_sent"]:
            pass  # running, no park point
        log.append("reached park point")
        try:
            gr.sleep(0)
            log.append("not cancelled")
        finally:
            log.append("finally")

    def main():
        t = go_elsewhere(victim)
        returned = t.cancel()
        state["cancel_sent"] = True
        with pytest.raises(gr.Cancelled):
            t.join()
        return returned, t.cancelled()

    assert gr.run(main, procs=2) == (True, True)
    assert log == ["reached park point", "finally"]


def test_cancel_parked_task_on_another_m(go_elsewhere):
    log = []

    def victim():
        try:
            gr.sleep(1000)
        finally:
            log.append(threading.get_ident())

    def main():
        ts = [go_elsewhere(victim) for _ in range(3)]
        gr.sleep(0.002)
        for t in ts:
            assert t.cancel()
        for t in ts:
            with pytest.raises(gr.Cancelled):
                t.join()
        return threading.get_ident()

    here = gr.run(main, procs=2)
    assert len(log) == 3 and here not in log


def test_cancel_self_raises_at_the_next_park_point(grun):
    def child():
        assert gr.current().cancel() is True
        try:
            gr.gosched()
        except gr.Cancelled:
            return "cancelled at gosched"
        return "not cancelled"

    def main():
        return gr.go(child).join()

    assert grun(main) == "cancelled at gosched"


def test_cancel_from_a_foreign_thread(grun):
    log = []

    def victim():
        try:
            gr.sleep(1000)
        finally:
            log.append("finally")

    def main():
        t = started_task(victim)
        result = []
        th = threading.Thread(target=lambda: result.append(t.cancel()))
        th.start()
        with pytest.raises(gr.Cancelled):
            t.join()  # woken by the foreign thread's cancel
        th.join()
        return result, t.cancelled()

    assert grun(main) == ([True], True)
    assert log == ["finally"]


def test_cancel_is_idempotent_until_done(grun):
    def call(started, release):
        started.set()
        release.wait()

    def main():
        # The task is inside blocking(), which defers a cancel until the call returns: it
        # cannot finish between the two cancels (at procs=2 without the GIL it did).
        started, release = gr.Event(), threading.Event()
        t = gr.go(gr.blocking, call, started, release)
        started.wait()
        first, second = t.cancel(), t.cancel()
        release.set()
        with pytest.raises(gr.Cancelled):
            t.join()
        return first, second, t.cancel()

    assert grun(main) == (True, True, False)


def test_cancel_returns_false_on_done_tasks(grun):
    def boom():
        raise ValueError("done by failing")

    def main():
        ok, bad, gone = gr.go(int), gr.go(boom), gr.go(gr.sleep, 1000)
        ok.join()
        with pytest.raises(ValueError):
            bad.join()
        gr.sleep(0)
        gone.cancel()
        with pytest.raises(gr.Cancelled):
            gone.join()
        returned = (ok.cancel(), bad.cancel(), gone.cancel())
        # ... and does not change their outcome.
        return returned, ok.result(), bad.cancelled(), gone.cancelled()

    assert grun(main) == ((False, False, False), 0, False, True)


def test_cancel_after_run_returns_false(grun):
    def main():
        return gr.current(), gr.go(int)

    main_task, child = grun(main)
    assert main_task.done() and main_task.cancel() is False
    assert child.done() and child.cancel() is False


# ---- shutdown: main returns while tasks are alive ----------------------------------------------


def test_main_return_cancels_live_tasks_and_runs_finally(grun):
    log = []
    started = []

    def forever():
        gr.sleep(1000)

    def parked(kind, other):
        started.append(kind)
        try:
            if kind == "sleep":
                gr.sleep(1000)
            elif kind == "join":
                other.join()
            elif kind == "join-timeout":
                other.join(timeout=1000)
            elif kind == "gosched":
                while True:
                    gr.gosched()
        finally:
            log.append(kind)

    kinds = ["sleep", "join", "join-timeout", "gosched"]

    def main():
        other = gr.go(forever)
        ts = [gr.go(parked, k, other) for k in kinds]
        while len(started) < len(kinds):
            gr.sleep(0)
        return ts, other

    ts, other = grun(main)
    # Cancelled, and their finally blocks ran, before run() returned.
    assert sorted(log) == sorted(kinds)
    assert all(t.done() and t.cancelled() for t in ts)
    assert other.done() and other.cancelled()
    assert all(repr(t).endswith(" cancelled>") for t in ts)


def test_main_return_never_starts_pending_tasks():
    ran = []

    def main():
        return [gr.go(ran.append, i) for i in range(100)]

    ts = gr.run(main, procs=1)
    assert ran == []
    assert all(t.done() and t.cancelled() for t in ts)


def test_shutdown_at_two_procs_cancels_tasks_on_both_ms(go_elsewhere):
    log = []

    def sleeper():
        try:
            gr.sleep(1000)
        finally:
            log.append(threading.get_ident())

    def main():
        remote = [go_elsewhere(sleeper) for _ in range(3)]
        local = [started_task(sleeper) for _ in range(3)]
        return remote + local

    ts = gr.run(main, procs=2)
    assert len(log) == 6
    assert all(t.cancelled() for t in ts)


def test_park_during_shutdown_raises_cancelled_at_once(grun):
    log = []

    def stubborn():
        try:
            gr.sleep(1000)
        finally:
            for park in (
                lambda: gr.sleep(1000),
                gr.gosched,
                lambda: gr.sleep(0),
                lambda: gr.go(gr.sleep, 1).join(),
            ):
                try:
                    park()
                    log.append("parked normally")
                except gr.Cancelled:
                    log.append("cancelled again")

    def main():
        return started_task(stubborn)

    t = grun(main)
    assert log == ["cancelled again"] * 4
    assert t.cancelled()


def test_task_swallowing_cancellation_during_shutdown_finishes(grun):
    count = []

    def swallower():
        while len(count) < 5:
            try:
                gr.sleep(1000)
            except gr.Cancelled:
                count.append(1)
        return "gave up"

    def main():
        return started_task(swallower)

    t = grun(main)
    assert len(count) == 5
    assert t.result() == "gave up" and not t.cancelled()


def test_main_failure_also_cancels_live_tasks(grun):
    log = []

    def sleeper():
        try:
            gr.sleep(1000)
        finally:
            log.append("finally")

    def main():
        for _ in range(3):
            started_task(sleeper)
        raise ValueError("main failed")

    with pytest.raises(ValueError, match="main failed"):
        grun(main)
    assert log == ["finally"] * 3


def test_spawn_during_shutdown_does_not_hang(grun):
    spawned = []

    def spawner():
        try:
            gr.sleep(1000)
        finally:
            spawned.append(gr.go(spawned.append, "late task ran"))

    def main():
        started_task(spawner)

    grun(main)
    assert spawned and spawned[0].done()


def test_exceptions_of_shutdown_cancelled_tasks_do_not_fail_run(grun):
    def converts():
        try:
            gr.sleep(1000)
        except gr.Cancelled:
            raise RuntimeError("converted") from None

    def main():
        return started_task(converts)

    t = grun(main)
    with pytest.raises(RuntimeError, match="converted"):
        t.result()


# ---- property: random cancels ------------------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plan=st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=1, max_size=40),
    nprocs=st.sampled_from([1, 2]),
)
def test_random_cancels_every_task_finishes_once(plan, nprocs):
    # Each task yields `steps` times then returns; some get cancelled at a random moment.
    # Every task finishes exactly once; a cancelled() task ran its finally and did not
    # return; a task that returned was not cancelled().
    started = [False] * len(plan)
    finished = [0] * len(plan)
    returned = [False] * len(plan)

    def worker(i, steps):
        started[i] = True
        try:
            for _ in range(steps):
                gr.gosched()
            returned[i] = True
            return i
        finally:
            finished[i] += 1

    def main():
        ts = [gr.go(worker, i, steps) for i, (steps, _) in enumerate(plan)]
        for i, (_, cancel) in enumerate(plan):
            if cancel:
                ts[i].cancel()
            if i % 3 == 0:
                gr.gosched()
        out = []
        for t in ts:
            try:
                out.append(t.join())
            except gr.Cancelled:
                out.append(None)
        return ts, out

    ts, out = gr.run(main, procs=nprocs)
    for i, t in enumerate(ts):
        assert t.done()
        if t.cancelled():
            assert out[i] is None and not returned[i] and plan[i][1]
            assert finished[i] == (1 if started[i] else 0)
        else:
            assert out[i] == i and returned[i] and finished[i] == 1
