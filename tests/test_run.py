"""goroutines.run(): results, arguments, procs resolution, nesting, aborts, and what is
(not) allowed outside a run."""

import gc
import os
import re
import threading

import pytest

import goroutines as gr


def default_procs():
    return len(os.sched_getaffinity(0))


# ---- results and arguments -------------------------------------------------------------


def test_returns_main_result(grun):
    assert grun(lambda: 42) == 42


def test_returns_none_when_main_returns_nothing(grun):
    assert grun(lambda: None) is None


def test_passes_positional_and_keyword_arguments(grun):
    def main(a, b, *rest, c, **more):
        return a, b, rest, c, more

    assert grun(main, 1, 2, 3, c=4, d=5) == (1, 2, (3,), 4, {"d": 5})


def test_docstring_example(grun):
    def main():
        return sum(t.join() for t in [gr.go(abs, -i) for i in range(10)])

    assert grun(main) == 45


def test_reraises_main_exception_object(grun):
    err = ValueError("from main")

    def main():
        raise err

    with pytest.raises(ValueError) as ei:
        grun(main)
    assert ei.value is err


def test_main_failure_traceback_reaches_the_raising_frame(grun):
    def deepest_frame_in_main():
        raise LookupError("deep")

    def main():
        deepest_frame_in_main()

    with pytest.raises(LookupError) as ei:
        grun(main)
    assert any(entry.name == "deepest_frame_in_main" for entry in ei.traceback)


def test_runs_are_reusable_back_to_back():
    for i in range(20):
        procs = 1 + i % 2
        assert gr.run(lambda i=i: (i, gr.procs()), procs=procs) == (i, procs)


def test_run_after_a_failed_run_works(grun):
    with pytest.raises(ZeroDivisionError):
        grun(lambda: 1 / 0)
    assert grun(lambda: gr.go(pow, 3, 3).join()) == 27


@pytest.mark.parametrize("main", [None, 3, "main", [print]], ids=repr)
def test_rejects_non_callable_main(main):
    with pytest.raises(TypeError, match=r"run\(\) needs a callable, not " + type(main).__name__):
        gr.run(main)


# ---- procs -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_procs_argument(n):
    def main():
        return gr.procs(), len(gr.stats()["procs"])

    assert gr.run(main, procs=n) == (n, n)


def test_procs_upper_bound_is_accepted():
    assert gr.run(gr.procs, procs=1024) == 1024


def test_m_threads_exit_without_a_heap_scan(monkeypatch):
    # When a thread ends while its main greenlet is still referenced, greenlet looks for the
    # referrer with gc.get_referrers: a scan of the whole heap, per M, at every run's end
    # (run(procs=1024) in a large process then takes seconds). The Ms must let go of
    # their threads' greenlets before the threads end.
    calls = []
    real = gc.get_referrers

    def spy(*objs):
        calls.append([type(o).__name__ for o in objs])
        return real(*objs)

    monkeypatch.setattr(gc, "get_referrers", spy)
    assert gr.run(lambda: gr.go(gr.sleep, 0.001).join(), procs=4) is None
    assert calls == []


@pytest.mark.parametrize("bad", [True, False, 2.0, 1.5, "2", b"2", [2], object()], ids=repr)
def test_procs_must_be_an_int(bad):
    with pytest.raises(TypeError, match=r"procs must be an int, not " + type(bad).__name__):
        gr.run(lambda: None, procs=bad)


@pytest.mark.parametrize("bad", [0, -1, 1025, 10**20, -(10**20)])
def test_procs_out_of_range(bad):
    with pytest.raises(ValueError, match=rf"procs must be between 1 and 1024, got {bad}"):
        gr.run(lambda: None, procs=bad)


def test_bad_procs_does_not_leave_the_runtime_locked():
    with pytest.raises(ValueError):
        gr.run(lambda: None, procs=0)
    assert gr.run(lambda: 1, procs=1) == 1


def test_default_procs_is_the_cpus_allowed(monkeypatch):
    monkeypatch.delenv("GOROUTINES_PROCS", raising=False)
    assert gr.run(gr.procs) == default_procs()


def test_default_procs_follows_the_affinity_mask(monkeypatch):
    monkeypatch.delenv("GOROUTINES_PROCS", raising=False)
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        assert gr.run(gr.procs) == 1
    finally:
        os.sched_setaffinity(0, allowed)


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3), (" 2 ", 2)])
def test_procs_from_environment(monkeypatch, value, expected):
    monkeypatch.setenv("GOROUTINES_PROCS", value)
    assert gr.run(gr.procs) == expected


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_environment_means_default(monkeypatch, value):
    monkeypatch.setenv("GOROUTINES_PROCS", value)
    assert gr.run(gr.procs) == default_procs()


@pytest.mark.parametrize("value", ["abc", "1.5", "2x", "0x2", "one"])
def test_environment_not_an_integer(monkeypatch, value):
    monkeypatch.setenv("GOROUTINES_PROCS", value)
    with pytest.raises(ValueError, match="GOROUTINES_PROCS") as ei:
        gr.run(lambda: None)
    assert repr(value) in str(ei.value)


@pytest.mark.parametrize("value", ["0", "-2", "1025", "99999999999999999999"])
def test_environment_out_of_range(monkeypatch, value):
    monkeypatch.setenv("GOROUTINES_PROCS", value)
    with pytest.raises(ValueError, match="GOROUTINES_PROCS"):
        gr.run(lambda: None)


def test_explicit_procs_overrides_environment(monkeypatch):
    monkeypatch.setenv("GOROUTINES_PROCS", "not a number")
    assert gr.run(gr.procs, procs=2) == 2
    monkeypatch.setenv("GOROUTINES_PROCS", "3")
    assert gr.run(gr.procs, procs=1) == 1


def test_environment_is_read_at_each_run(monkeypatch):
    monkeypatch.setenv("GOROUTINES_PROCS", "1")
    assert gr.run(gr.procs) == 1
    monkeypatch.setenv("GOROUTINES_PROCS", "2")
    assert gr.run(gr.procs) == 2


# ---- nesting and concurrency of runs -----------------------------------------------------


def test_nested_run_from_main_raises(grun):
    def main():
        with pytest.raises(RuntimeError, match="already running"):
            gr.run(lambda: "inner", procs=1)
        # The outer runtime is unharmed.
        return gr.go(pow, 2, 5).join()

    assert grun(main) == 32


def test_nested_run_from_a_child_task_raises(grun):
    def child():
        gr.run(lambda: None)

    def main():
        t = gr.go(child)
        with pytest.raises(RuntimeError, match="already running"):
            t.join()
        return "ok"

    assert grun(main) == "ok"


def test_run_from_another_thread_while_running_raises(grun):
    def main():
        errors = []

        def other():
            try:
                gr.run(lambda: None, procs=1)
            except RuntimeError as e:
                errors.append(e)

        th = threading.Thread(target=other)
        th.start()
        th.join()
        return errors

    (err,) = grun(main)
    assert "already running" in str(err)


# ---- outside a run -------------------------------------------------------------------------


def _with(cm):
    with cm:
        pass


_UNDER_RUN = r" must be called under goroutines\.run\(\)$"
_FROM_A_TASK = r" must be called from a task running under goroutines\.run\(\)$"


def _task_only(name, call, id=None):
    return pytest.param(call, rf"^{re.escape(name)}\(\)" + _FROM_A_TASK, id=id or name)


def _under_run(name, call):
    return pytest.param(call, rf"^{re.escape(name)}\(\)" + _UNDER_RUN, id=name)


def _timer(name, call):
    # One message for every timer call: it names them all.
    return pytest.param(call, rf"\b{re.escape(name)}\(\).*" + _UNDER_RUN, id=name)


# Every public call that needs the runtime, and the name its error must give: the one the
# user called (the sync waits said "this must be called ...", num_tasks() "goroutines.run()
# is not running"). current() is left out: what it does outside a task is decided elsewhere,
# and so are Chan.send and Chan.recv, which block a thread that is not an M
# (test_chan_threads.py).
TASK_ONLY = [
    _task_only("gosched", gr.gosched),
    _task_only("sleep", lambda: gr.sleep(0), "sleep(0)"),
    _task_only("sleep", lambda: gr.sleep(0.001)),
    _task_only("select", lambda: gr.select(gr.Recv(gr.Chan()), default=True)),
    _task_only("Mutex.lock", lambda: gr.Mutex().lock()),
    _task_only("Mutex.lock", lambda: _with(gr.Mutex()), "with-Mutex"),
    _task_only("Semaphore.acquire", lambda: gr.Semaphore().acquire(timeout=0)),
    _task_only("WaitGroup.wait", lambda: gr.WaitGroup().wait()),
    _task_only("Event.wait", lambda: gr.Event().wait(0.001)),
    _task_only("RWMutex.lock", lambda: gr.RWMutex().lock()),
    _task_only("RWMutex.rlock", lambda: gr.RWMutex().rlock()),
    _task_only("RWMutex.rlock", lambda: _with(gr.RWMutex().rlocker()), "with-rlocker"),
    _task_only("Once.do", lambda: gr.Once().do(print)),
    _task_only("blocking", lambda: gr.blocking(print)),
    _task_only("TaskGroup.__enter__", lambda: _with(gr.TaskGroup()), "with-TaskGroup"),
]
ENTRY_POINTS = TASK_ONLY + [
    _under_run("go", lambda: gr.go(print)),
    _under_run("num_tasks", gr.num_tasks),
    _under_run("procs", gr.procs),
    _under_run("stats", gr.stats),
    _timer("after", lambda: gr.after(1)),
    _timer("after_func", lambda: gr.after_func(1, print)),
    _timer("Timer", lambda: gr.Timer(1)),
    _timer("Ticker", lambda: gr.Ticker(1)),
]


@pytest.mark.parametrize("call, expected", ENTRY_POINTS)
def test_calls_outside_run_name_the_function_called(call, expected):
    with pytest.raises(RuntimeError, match=expected):
        call()


def test_api_is_unusable_again_after_run_returns():
    gr.run(lambda: None, procs=2)
    with pytest.raises(RuntimeError):
        gr.go(print)
    with pytest.raises(RuntimeError):
        gr.num_tasks()


@pytest.mark.parametrize("call, expected", TASK_ONLY)
def test_task_only_calls_from_a_foreign_thread_name_the_function_called(
    grun, foreign_thread_errors, call, expected
):
    (seen,) = grun(foreign_thread_errors, call)
    assert re.search(expected, seen), seen


def test_go_from_a_foreign_thread_during_run(grun):
    def main():
        box = []
        th = threading.Thread(target=lambda: box.append(gr.go(pow, 2, 10)))
        th.start()
        th.join()
        (t,) = box
        return t.join(), gr.num_tasks()

    assert grun(main) == (1024, 1)


# ---- KeyboardInterrupt / SystemExit abort the run ----------------------------------------


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_interrupt_in_main_is_reraised(grun, exc_type):
    err = exc_type(3)

    def main():
        raise err

    with pytest.raises(exc_type) as ei:
        grun(main)
    assert ei.value is err


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_interrupt_in_a_child_aborts_the_run(grun, exc_type):
    err = exc_type(7)
    log = []

    def sleeper(i):
        log.append(("start", i))
        try:
            gr.sleep(1000)
        finally:
            log.append(("finally", i))

    def bomb():
        raise err

    def main():
        for i in range(5):
            gr.go(sleeper, i)
        while len(log) < 5:
            gr.sleep(0)
        gr.go(bomb)
        try:
            gr.sleep(1000)  # only the abort can end this
        finally:
            log.append("main finally")
        return "not aborted"

    with pytest.raises(exc_type) as ei:
        grun(main)
    assert ei.value is err
    assert sorted(e for e in log if e[0] == "finally") == [("finally", i) for i in range(5)]
    assert "main finally" in log


def test_interrupt_in_a_joined_child_aborts_the_run(grun):
    def main():
        t = gr.go(lambda: (_ for _ in ()).throw(KeyboardInterrupt("child")))
        t.join()
        return "not aborted"

    with pytest.raises(KeyboardInterrupt, match="child"):
        grun(main)


def test_run_after_an_aborted_run_works(grun):
    with pytest.raises(KeyboardInterrupt):
        grun(lambda: gr.go(lambda: (_ for _ in ()).throw(KeyboardInterrupt())).join())
    assert grun(lambda: "fine") == "fine"
