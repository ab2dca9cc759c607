"""gr.Executor: a concurrent.futures.Executor whose calls run as goroutines tasks.

Covers submit/map/shutdown as the stdlib documents them, from plain threads (on the
background runtime the executor starts) and from tasks (on the running runtime); calls
that park; cancellation of calls not started; calls dropped by a run that ended; bad
input; and that the background runtime is gone once the last executor is shut down, so
that goroutines.run() can start again.
"""

import concurrent.futures as cf
import gc
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

import goroutines as gr
from goroutines import _interop


@pytest.fixture(autouse=True)
def no_background_left():
    yield
    _interop._background.join()
    assert _interop._background.users == 0
    assert gr.run(lambda: "a run can start", procs=1) == "a run can start"


class Boom(Exception):
    pass


def in_task():
    """What a call sees of the runtime: its task and the number of procs."""
    return gr.current() is not None, gr.procs()


# --- from sync code -----------------------------------------------------------------------


def test_submit_runs_as_a_task_on_a_background_runtime(procs):
    with gr.Executor(procs=procs) as ex:
        assert ex.submit(in_task).result() == (True, procs)
        assert ex.submit(pow, 2, 10).result() == 1024
        assert ex.submit(dict, a=1).result() == {"a": 1}


def test_exception_travels_in_the_future():
    err = Boom("x")

    def bad():
        raise err

    with gr.Executor(procs=1) as ex:
        f = ex.submit(bad)
        assert f.exception() is err
        with pytest.raises(Boom):
            f.result()


def test_calls_park_instead_of_holding_threads(procs):
    # 500 calls each waiting 50 ms: with one thread per call this would need 500 threads.
    before = threading.active_count()
    with gr.Executor(procs=procs) as ex:
        futures = [ex.submit(gr.sleep, 0.05) for _ in range(500)]
        during = threading.active_count()
        assert [f.result() for f in futures] == [None] * 500
    assert during - before <= procs + 1


def test_map_in_order_with_a_timeout(procs):
    def slow_square(x):
        gr.sleep(0.001 * (10 - x))
        return x * x

    with gr.Executor(procs=procs) as ex:
        assert list(ex.map(slow_square, range(10))) == [x * x for x in range(10)]
        assert list(ex.map(pow, [2, 3], [5, 2, 9])) == [32, 9]  # the shortest iterable
        it = ex.map(gr.sleep, [0, 0.3], timeout=0.05)
        assert next(it) is None
        with pytest.raises(TimeoutError):
            next(it)


def test_map_timeout_cancels_the_calls_not_started():
    ran = []
    gate = threading.Event()
    with gr.Executor(procs=1) as ex:
        ex.submit(gate.wait)  # holds the only M (a thread Event does not park)
        it = ex.map(ran.append, range(5), timeout=0.02)
        with pytest.raises(TimeoutError):
            next(it)
        gate.set()
    assert ran == []


def test_map_reraises_a_calls_exception():
    def f(x):
        if x == 1:
            raise Boom("second")
        return x

    with gr.Executor(procs=1) as ex:
        it = ex.map(f, range(3))
        assert next(it) == 0
        with pytest.raises(Boom, match="second"):
            next(it)


def test_shutdown_wait_waits_for_every_call(procs):
    done = []
    ex = gr.Executor(procs=procs)
    for i in range(50):
        ex.submit(lambda i=i: (gr.sleep(0.02), done.append(i)))
    ex.shutdown(wait=True)
    assert sorted(done) == list(range(50))


def test_shutdown_without_wait_lets_calls_finish(procs):
    ex = gr.Executor(procs=procs)
    futures = [ex.submit(lambda i=i: (gr.sleep(0.02), i)[1]) for i in range(20)]
    ex.shutdown(wait=False)
    assert [f.result() for f in futures] == list(range(20))


def test_shutdown_cancel_futures_cancels_calls_not_started():
    # procs=1 and a first call that holds the M without parking: the others cannot start.
    started = threading.Event()

    def hog():
        started.set()
        time.sleep(0.2)
        return "hog"

    ex = gr.Executor(procs=1)
    first = ex.submit(hog)
    rest = [ex.submit(pow, 2, i) for i in range(10)]
    started.wait()
    ex.shutdown(wait=True, cancel_futures=True)
    assert first.result() == "hog"
    assert all(f.cancelled() for f in rest)


def test_cancelled_future_never_runs():
    ran = []
    with gr.Executor(procs=1) as ex:
        gate = threading.Event()
        blocker = ex.submit(gate.wait)  # holds the only M (a thread Event does not park)
        f = ex.submit(ran.append, 1)
        assert f.cancel()
        gate.set()
        blocker.result()
    assert ran == [] and f.cancelled()


def test_submit_after_shutdown():
    ex = gr.Executor(procs=1)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(pow, 2, 2)
    ex.shutdown()  # a second shutdown is harmless


def test_many_threads_submit_at_once():
    n, per = 8, 250
    out = []

    def feeder(ex, k):
        futures = [ex.submit(lambda v: v, k * per + i) for i in range(per)]
        out.extend(f.result() for f in futures)

    with gr.Executor(procs=2) as ex:
        threads = [threading.Thread(target=feeder, args=(ex, k)) for k in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert sorted(out) == list(range(n * per))


def test_stdlib_helpers_work_on_its_futures():
    with gr.Executor(procs=2) as ex:
        futures = [ex.submit(gr.sleep, 0.01 * i) for i in range(5)]
        done, not_done = cf.wait(futures)
        assert len(done) == 5 and not not_done
        assert len(list(cf.as_completed([ex.submit(abs, -i) for i in range(5)]))) == 5


def test_two_executors_share_the_background_runtime():
    with gr.Executor(procs=2) as a, gr.Executor() as b:
        assert a.submit(gr.procs).result() == b.submit(gr.procs).result() == 2
        with pytest.raises(ValueError, match="with 2 procs|has 2 procs"):
            gr.Executor(procs=1).submit(gr.procs)


def test_dropped_executor_lets_go_of_the_runtime():
    ex = gr.Executor(procs=1)
    assert ex.submit(pow, 2, 3).result() == 8
    del ex
    gc.collect()  # the fixture checks that the background runtime ended


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(), st.sampled_from([0, 0.001, 0.003])), max_size=30))
def test_map_keeps_the_order_whatever_the_finishing_order(items):
    def delayed(x, pause):
        gr.sleep(pause)
        return x

    with gr.Executor(procs=2) as ex:
        got = list(ex.map(delayed, [x for x, _ in items], [p for _, p in items]))
    assert got == [x for x, _ in items]


# --- from tasks -----------------------------------------------------------------------------


def test_inside_a_run_calls_go_to_that_run(procs):
    def main():
        with gr.Executor() as ex:
            f = ex.submit(in_task)
            assert gr.result(f) == (True, procs)
            return list(ex.map(pow, [2, 2], [3, 4]))

    assert gr.run(main, procs=procs) == [8, 16]


def test_inside_a_run_explicit_procs_must_match(procs):
    def main():
        ex = gr.Executor(procs=procs + 1)
        with pytest.raises(ValueError, match=f"has {procs} procs"):
            ex.submit(pow, 2, 2)
        ex.shutdown()
        return True

    assert gr.run(main, procs=procs)


def test_calls_dropped_by_an_ending_run_are_cancelled():
    futures = []

    def main():
        ex = gr.Executor()
        futures.extend(ex.submit(pow, 2, i) for i in range(5))
        # main returns at once: the run ends and drops the tasks that never ran

    gr.run(main, procs=1)
    assert all(f.done() for f in futures)
    assert any(f.cancelled() for f in futures)


def test_after_its_run_ended_an_executor_starts_the_background_runtime():
    box = []
    gr.run(lambda: box.append(gr.Executor()), procs=1)
    ex = box.pop()
    try:
        assert ex.submit(in_task).result()[0]
    finally:
        ex.shutdown()


def test_shutdown_in_a_task_parks_until_calls_finish(procs):
    def main():
        ex = gr.Executor()
        futures = [ex.submit(gr.sleep, 0.01) for _ in range(20)]
        ex.shutdown(wait=True)
        return all(f.done() for f in futures)

    assert gr.run(main, procs=procs)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(("procs", "exc"), [("2", TypeError), (True, TypeError),
                                            (0, ValueError), (-1, ValueError)])
def test_bad_procs(procs, exc):
    with pytest.raises(exc, match="procs"):
        gr.Executor(procs=procs)


def test_async_function_is_type_error():
    async def coro():
        return 1

    with gr.Executor(procs=1) as ex:
        with pytest.raises(TypeError, match="async function"):
            ex.submit(coro)
        with pytest.raises(TypeError, match="callable"):
            ex.submit(42)
        assert ex.submit(pow, 2, 2).result() == 4  # nothing was lost by the errors


# --- interpreter exit -----------------------------------------------------------------------


def test_exit_finishes_submitted_calls_and_stops_cleanly():
    # As ThreadPoolExecutor: calls submitted before exit still run; nothing hangs or warns.
    script = textwrap.dedent("""
        import asyncio
        import goroutines as gr

        async def hello():
            await asyncio.sleep(0.01)
            return "aio"

        ex = gr.Executor(procs=2)  # never shut down
        ex.submit(lambda: (gr.sleep(0.1), print("call ran", flush=True)))
        print(gr.aio(hello()), flush=True)
    """)
    proc = subprocess.run([sys.executable, "-X", "dev", "-c", script], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["aio", "call", "ran"]
    assert proc.stderr == ""


def test_a_call_while_the_background_runtime_is_ending_starts_a_new_one():
    # shutdown(wait=False) lets the runtime end on its own: the next submit may find it
    # still ending, and must wait for it and start a new one, not fail.
    for _ in range(20):
        ex = gr.Executor(procs=1)
        assert ex.submit(pow, 2, 2).result() == 4
        ex.shutdown(wait=False)


# --- regression: "the runtime kept shutting down under the submit" ------------------------
#
# Which runtime takes a call was decided apart from the go() that sent it there, while the
# background runtime (started and ended by its users) or the user's run could end between
# the two: a valid submit then failed with that RuntimeError, or its call was cancelled.


class Bursts:
    """Threads submitting through short-lived executors and an asyncio loop through
    to_async, in bursts with gaps between (so the background runtime ends and restarts),
    until the time budget ends or something fails. Every call is counted."""

    def __init__(self, budget):
        self.end = time.monotonic() + budget
        self.lock = threading.Lock()
        self.failed = []
        self.ok = self.cancelled = 0
        self.backgrounds = set()  # the background runtimes' threads seen

    def going(self):
        return time.monotonic() < self.end and not self.failed

    def count(self, value, want):
        with self.lock:
            if value != want:
                self.failed.append(AssertionError(f"got {value!r}, want {want!r}"))
            self.ok += 1
            th = _interop._background.thread
            if th is not None:
                self.backgrounds.add(th)

    def outcome(self, f, want):
        try:
            value = f.result(timeout=10)
        except cf.CancelledError:  # tolerated by the caller where a run of its own ends
            with self.lock:
                self.cancelled += 1
            return
        self.count(value, want)

    def executor_thread(self, k):
        i = 0
        while self.going():
            try:
                ex = gr.Executor()
                futures = [ex.submit(pow, i, 2) for _ in range(3)]
                ex.shutdown(wait=False)
                for f in futures:
                    self.outcome(f, i * i)
            except BaseException as e:
                self.failed.append(e)
            time.sleep(0.0003 * (k + 1))  # a gap: the runtime's users may reach 0
            i += 1

    def asyncio_thread(self):
        import asyncio

        async def main():
            i = 0
            while self.going():
                try:
                    got = await asyncio.gather(*(gr.to_async(pow, i, 3) for _ in range(3)),
                                               return_exceptions=True)
                    for value in got:
                        if isinstance(value, asyncio.CancelledError):
                            with self.lock:
                                self.cancelled += 1
                        elif isinstance(value, BaseException):
                            raise value
                        else:
                            self.count(value, i**3)
                except BaseException as e:
                    self.failed.append(e)
                await asyncio.sleep(0.0005)
                i += 1

        asyncio.run(main())

    def run(self, *others):
        threads = [threading.Thread(target=self.executor_thread, args=(k,)) for k in range(3)]
        threads.append(threading.Thread(target=self.asyncio_thread))
        threads.extend(threading.Thread(target=fn) for fn in others)
        switch = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)  # threads switch often: more interleavings per second
        try:
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        finally:
            sys.setswitchinterval(switch)
        if self.failed:
            raise self.failed[0]


def test_kept_shutting_down_calls_while_the_background_runtime_restarts():
    bursts = Bursts(budget=1.5)
    bursts.run()
    assert bursts.cancelled == 0  # no run of the user's: every call had its background run
    assert bursts.ok > 0
    assert len(bursts.backgrounds) > 1  # it did end and restart


def test_kept_shutting_down_calls_while_runs_of_the_user_end(procs):
    runs = []

    def runner(bursts):
        def main():
            for t in [gr.go(gr.sleep, 0.0005) for _ in range(4)]:
                t.join()
            return True

        while bursts.going() and len(runs) < 100:  # enough ends; each stops a thread or two
            try:
                runs.append(gr.run(main, procs=procs))
            except RuntimeError as e:  # the background runtime is up: a run cannot start
                assert "already running" in str(e), e
                time.sleep(0.0005)

    bursts = Bursts(budget=1.0)
    bursts.run(lambda: runner(bursts))
    # A call queued on a run that ends before it starts is cancelled (as documented);
    # none fails, and every other one has its result.
    assert bursts.ok > 0
    assert len(runs) > 1


class EndingRun:
    """A run of the user's on a thread, held ending: main has returned, and one task waits
    in gr.blocking() for a call that returns only on release() (the run waits for it)."""

    def __init__(self, procs):
        self.started, self.released = threading.Event(), threading.Event()

        def call():
            self.started.set()
            self.released.wait()

        def main():
            gr.go(gr.blocking, call)
            while not self.started.is_set():
                gr.sleep(0.001)

        self.thread = threading.Thread(target=gr.run, args=(main,), kwargs={"procs": procs})
        self.thread.start()
        self.started.wait()
        while True:  # until main has returned: the run takes no more calls
            try:
                gr.go(abs, 1)
            except RuntimeError:
                break
            time.sleep(0.001)

    def release(self):
        self.released.set()
        self.thread.join()


def test_a_submit_waits_for_a_run_ending_then_gives_up(procs, monkeypatch):
    monkeypatch.setattr(_interop, "_OTHER_RUN_WAIT", 0.2)
    ex = gr.Executor()
    ending = EndingRun(procs)
    try:
        with pytest.raises(RuntimeError, match=r"submit: the running goroutines.run\(\) did "
                                               r"not end within 0.2 s of shutting down"):
            ex.submit(pow, 2, 3)
    finally:
        ending.release()
    assert ex.submit(pow, 2, 3).result() == 8  # on the background runtime now
    ex.shutdown()


def test_a_submit_finding_a_run_ending_runs_once_it_ended(procs):
    ex = gr.Executor()
    ending = EndingRun(procs)
    threading.Timer(0.05, ending.release).start()  # while the submit waits
    assert ex.submit(in_task).result()[0]  # ran as a task, on the background runtime
    ending.thread.join()
    ex.shutdown()


def test_a_task_of_the_ending_background_runtime_can_submit_while_the_next_one_waits():
    # The background runtime ends (its users reached 0) while one of its tasks, in its
    # cleanup, submits a call; meanwhile another thread's submit waits to start the next
    # runtime. That wait must not hold the lock the task's submit needs (it did: a hang).
    script = textwrap.dedent("""
        import threading, time
        import goroutines as gr

        in_cleanup, go_on = threading.Event(), threading.Event()
        late = gr.Executor()
        out = []

        def straggler():
            try:
                gr.sleep(60)
            except gr.Cancelled:
                in_cleanup.set()
                go_on.wait()  # holds its M: the run cannot end meanwhile
                out.append(late.submit(pow, 2, 2))  # to its own run, which is ending
                raise

        ex = gr.Executor()
        ex.submit(gr.go, straggler).result()
        ex.shutdown(wait=False)  # the runtime's last user: it ends, cancelling straggler
        in_cleanup.wait()
        nxt = []
        th = threading.Thread(target=lambda: nxt.append(gr.Executor().submit(pow, 3, 2)))
        th.start()
        time.sleep(0.1)  # that submit waits for the run to end
        go_on.set()
        th.join()
        print(nxt[0].result(), out[0].cancelled() or out[0].result(), flush=True)
        late.shutdown()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() in (["9", "True"], ["9", "4"])
