"""go() and Task: creation, identity, names, reprs, outcomes, join (with and without a
timeout, across Ms), exception propagation and the never-retrieved report."""

import functools
import gc
import subprocess
import sys
import textwrap
import threading
import traceback
import warnings

import pytest

import goroutines as gr


def fail(exc):
    raise exc


# ---- creation ------------------------------------------------------------------------------


def test_task_cannot_be_constructed_directly():
    with pytest.raises(TypeError, match=r"created by goroutines.go\(\)"):
        gr.Task()


def test_go_returns_a_task(grun):
    def main():
        t = gr.go(int)
        return type(t), t.join()

    assert grun(main) == (gr.Task, 0)


def test_go_passes_arguments(grun):
    def f(a, b=0, *rest, c, **more):
        return a, b, rest, c, more

    def main():
        return gr.go(f, 1, 2, 3, c=4, d=5).join(), gr.go(f, "x", c=None).join()

    assert grun(main) == ((1, 2, (3,), 4, {"d": 5}), ("x", 0, (), None, {}))


@pytest.mark.parametrize("fn", [None, 42, "f", (print,)], ids=repr)
def test_go_rejects_non_callable(grun, fn):
    def main():
        with pytest.raises(TypeError, match=r"go\(\) needs a callable, not " + type(fn).__name__):
            gr.go(fn)
        return gr.num_tasks()  # nothing was spawned

    assert grun(main) == 1


def test_ids_are_positive_and_unique(grun):
    def main():
        ts = [gr.go(lambda: gr.current().id) for _ in range(1000)]
        return [(t.id, t.join()) for t in ts] + [(gr.current().id, gr.current().id)]

    pairs = grun(main)
    ids = [a for a, _ in pairs]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(set(ids)) == len(ids)
    assert all(a == b for a, b in pairs)  # the id seen from inside is the handle's id


def test_task_ids_are_not_reused_by_the_next_run():
    # The id counter lived in each run's scheduler and restarted at 1 with the next run(),
    # so two tasks of one process could have the same id (in reprs, logs, reports).
    def main():
        ids = [gr.go(int).id for _ in range(100)]  # from the Ps' id caches
        th = threading.Thread(target=lambda: ids.append(gr.go(int).id))  # from the counter
        th.start()
        th.join()
        return ids + [gr.current().id]

    seen = []
    for i in range(6):
        seen += gr.run(main, procs=1 + i % 2)
    assert len(set(seen)) == len(seen) == 6 * 102


def test_current_is_the_handle_go_returned(grun):
    def main():
        ts = [gr.go(gr.current) for _ in range(50)]
        return all(t.join() is t for t in ts)

    assert grun(main)


class Worker:
    def meth(self):
        return "meth"

    def __call__(self):
        return "call"


def named_function():
    return gr.current().name


@pytest.mark.parametrize(
    "fn, name",
    [
        (named_function, "named_function"),
        (Worker().meth, "Worker.meth"),
        (Worker(), "Worker"),
        (abs, "abs"),
        (functools.partial(int, "1"), "partial"),
    ],
    ids=["function", "method", "callable-object", "builtin", "partial"],
)
def test_name_is_the_qualified_name_of_the_function(grun, fn, name):
    def main():
        t = gr.go(fn) if fn is not abs else gr.go(fn, -1)
        before, done = t.name, t.done()
        t.join()
        return before, done

    before, done = grun(main)
    # A free-threaded build at procs=2 may run t to completion on the other M first: a
    # task that did not fail drops its function, and with it its name, when it finishes.
    assert before == name or (before == "?" and done)


def test_name_of_a_local_function_and_from_inside(grun):
    def inner():
        return gr.current().name

    def main():
        t = gr.go(inner)
        return t.name, t.done(), t.join()

    qual = inner.__qualname__
    before, done, inside = grun(main)
    assert inside == qual
    assert before == qual or (before == "?" and done)  # see the test above


def test_name_survives_failure(grun):
    def exploding():
        raise ValueError("x")

    def main():
        t = gr.go(exploding)
        with pytest.raises(ValueError):
            t.join()
        return t.name

    assert grun(main).endswith("exploding")


async def coroutine_function():
    return "never run"


class AsyncCallable:
    async def __call__(self):
        return "never run"

    async def method(self):
        return "never run"


class SyncCallable:
    def __call__(self):
        return "ran"


ASYNC_FUNCTIONS = [
    pytest.param(coroutine_function, id="async-def"),
    pytest.param(functools.partial(coroutine_function), id="partial"),
    pytest.param(functools.partial(functools.partial(coroutine_function)), id="partial-of-partial"),
    pytest.param(AsyncCallable(), id="async-__call__"),
    pytest.param(functools.partial(AsyncCallable()), id="partial-of-async-__call__"),
    pytest.param(AsyncCallable().method, id="async-method"),
]


def _start_in(entry, fn):
    """Hand fn to one of the calls that run a function: run() outside a run, the others
    from a task. Returns the TypeError raised, and how many tasks were alive after it."""
    if entry == "run":
        with pytest.raises(TypeError) as ei:
            gr.run(fn)
        return ei.value, None

    def main():
        with gr.TaskGroup() as tg:
            with pytest.raises(TypeError) as ei:
                if entry == "after_func":
                    gr.after_func(0, fn)
                else:
                    {"go": gr.go, "blocking": gr.blocking, "TaskGroup.go": tg.go}[entry](fn)
        return ei.value, gr.num_tasks()

    return gr.run(main, procs=1)


@pytest.mark.parametrize("entry", ["go", "run", "TaskGroup.go", "blocking", "after_func"])
@pytest.mark.parametrize("fn", ASYNC_FUNCTIONS)
def test_async_function_is_rejected_instead_of_returning_a_coroutine(entry, fn):
    # go(async_fn) used to start a task that returned an unawaited coroutine, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited": it was created
        err, alive = _start_in(entry, fn)
        gc.collect()
    message = str(err)
    assert message.startswith(f"{entry}() cannot run ")
    assert "it is an async function" in message
    assert "Define it with def" in message and "blocking(asyncio.run, " in message
    assert alive in (None, 1)  # nothing was started


@pytest.mark.parametrize("entry", ["go", "run", "TaskGroup.go", "blocking", "after_func"])
def test_coroutine_object_is_rejected_with_the_fix(entry):
    coro = coroutine_function()
    try:
        err, alive = _start_in(entry, coro)
    finally:
        coro.close()
    assert str(err).startswith(f"{entry}() got a coroutine object (coroutine_function)")
    assert f"{entry}(fn, *args)" in str(err) and "not async def" in str(err)
    assert alive in (None, 1)


def _generator():
    yield 1


def _with_attribute():
    return "ran"


_with_attribute.tag = "a function with a __dict__"


@pytest.mark.parametrize(
    "fn",
    [
        lambda: "ran",
        SyncCallable(),
        functools.partial(str, "ran"),
        Worker().meth,
        _with_attribute,
        _generator,
        int,
        gr.Chan,
        gr.num_tasks,
        gr.Event().set,
    ],
    ids=["lambda", "sync-__call__", "partial", "method", "function-with-dict", "generator",
         "class", "extension-class", "cython-function", "cython-method"],
)
def test_plain_callables_are_not_mistaken_for_async(grun, fn):
    def main():
        return type(gr.go(fn).join()), type(gr.blocking(fn))

    grun(main)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="inspect.markcoroutinefunction is 3.12+")
def test_function_marked_as_coroutine_function_is_rejected():
    import inspect

    def returns_a_coroutine():
        return coroutine_function()

    inspect.markcoroutinefunction(returns_a_coroutine)
    err, _ = _start_in("go", returns_a_coroutine)
    assert "it is an async function" in str(err)


# ---- repr and lifecycle ----------------------------------------------------------------------


def test_repr_and_flags_through_the_lifecycle():
    # procs=1 makes "pending" and "parked" observable deterministically.
    snapshots = {}

    def sleeper():
        snapshots["running"] = repr(gr.current())
        gr.sleep(1000)

    def joiner(t):
        t.join()

    def main():
        t = gr.go(sleeper)
        snapshots["pending"] = (repr(t), t.done(), t.cancelled())
        while "running" not in snapshots:
            gr.sleep(0)
        j = gr.go(joiner, t)
        gr.sleep(0)
        gr.sleep(0)
        snapshots["parked"] = (repr(t), t.done(), t.cancelled())
        snapshots["joining"] = repr(j)
        assert t.cancel()
        with pytest.raises(gr.Cancelled):
            j.join()
        with pytest.raises(gr.Cancelled):
            t.join()
        snapshots["cancelled"] = (repr(t), t.done(), t.cancelled())
        ok = gr.go(int, "5")
        ok.join()
        snapshots["done"] = (repr(ok), ok.done(), ok.cancelled())
        bad = gr.go(int, "x")
        with pytest.raises(ValueError):
            bad.join()
        snapshots["failed"] = (repr(bad), bad.done(), bad.cancelled())
        return t.id, j.id, ok.id, bad.id

    tid, jid, okid, badid = gr.run(main, procs=1)
    name = sleeper.__qualname__
    assert snapshots["pending"] == (f"<Task {tid} {name} pending>", False, False)
    assert snapshots["running"] == f"<Task {tid} {name} running>"
    assert snapshots["parked"] == (f"<Task {tid} {name} parked on sleep>", False, False)
    assert snapshots["joining"] == f"<Task {jid} {joiner.__qualname__} parked on join>"
    assert snapshots["cancelled"] == (f"<Task {tid} {name} cancelled>", True, True)
    r, done, cancelled = snapshots["done"]
    assert r.startswith(f"<Task {okid} ") and r.endswith(" done>")
    assert (done, cancelled) == (True, False)
    r, done, cancelled = snapshots["failed"]
    assert r.startswith(f"<Task {badid} int failed: ValueError(")
    assert (done, cancelled) == (True, False)


# ---- outcomes ----------------------------------------------------------------------------------


def test_result_and_exception_of_unfinished_task(grun):
    def main():
        t = gr.go(gr.sleep, 1000)
        with pytest.raises(
            RuntimeError, match=rf"result\(\) of task {t.id}, which has not finished"
        ):
            t.result()
        with pytest.raises(
            RuntimeError, match=rf"exception\(\) of task {t.id}, which has not finished"
        ):
            t.exception()
        t.cancel()
        return "ok"

    assert grun(main) == "ok"


def test_outcome_of_a_successful_task(grun):
    value = object()

    def main():
        t = gr.go(lambda: value)
        assert t.join() is value
        return t.done(), t.cancelled(), t.result() is value, t.exception(), t.join() is value

    assert grun(main) == (True, False, True, None, True)


def test_outcome_of_a_failed_task(grun):
    err = OSError(5, "io")

    def main():
        t = gr.go(fail, err)
        with pytest.raises(OSError) as ei:
            t.join()
        assert ei.value is err
        with pytest.raises(OSError) as ei:
            t.result()
        assert ei.value is err
        return t.done(), t.cancelled(), t.exception() is err

    assert grun(main) == (True, False, True)


def test_outcome_of_a_cancelled_task(grun):
    def main():
        t = gr.go(gr.sleep, 1000)
        gr.sleep(0)
        assert t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        with pytest.raises(gr.Cancelled):
            t.result()
        with pytest.raises(gr.Cancelled):
            t.exception()
        return t.done(), t.cancelled()

    assert grun(main) == (True, True)


def test_finished_task_outcomes_outside_the_run(grun):
    def main():
        ok, bad, gone = gr.go(pow, 2, 3), gr.go(fail, KeyError("k")), gr.go(gr.sleep, 1000)
        ok.join()
        with pytest.raises(KeyError):  # retrieved: not reported when bad is freed
            bad.join()
        gone.cancel()
        with pytest.raises(gr.Cancelled):
            gone.join()
        return ok, bad, gone

    ok, bad, gone = grun(main)
    assert ok.join() == 8 and ok.result() == 8 and ok.join(timeout=0) == 8
    with pytest.raises(KeyError):
        bad.join()
    with pytest.raises(KeyError):
        bad.result()
    with pytest.raises(gr.Cancelled):
        gone.join()
    with pytest.raises(gr.Cancelled):
        gone.result()


def test_many_joiners_get_the_same_outcome(grun):
    value, err = object(), ValueError("shared")

    def slow(outcome):
        gr.sleep(0.01)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def main():
        good, bad = gr.go(slow, value), gr.go(slow, err)

        def wait_both():
            with pytest.raises(ValueError) as ei:
                bad.join()
            return good.join(), ei.value

        joiners = [gr.go(wait_both) for _ in range(20)]
        return [j.join() for j in joiners]

    for got_value, got_err in grun(main):
        assert got_value is value and got_err is err


# ---- join errors -------------------------------------------------------------------------------


def test_join_self_raises(grun):
    def child():
        with pytest.raises(RuntimeError, match="a task cannot join itself"):
            gr.current().join()
        with pytest.raises(RuntimeError, match="a task cannot join itself"):
            gr.current().join(timeout=1)
        return "child ok"

    def main():
        with pytest.raises(RuntimeError, match="a task cannot join itself"):
            gr.current().join()
        return gr.go(child).join()

    assert grun(main) == "child ok"


def test_join_of_unfinished_task_outside_a_task(grun, foreign_thread_errors):
    def main():
        t = gr.go(gr.sleep, 1000)
        errors = foreign_thread_errors(t.join, lambda: t.join(timeout=0.01))
        t.cancel()
        return errors

    errors = grun(main)
    assert len(errors) == 2
    assert all("join() of an unfinished task must be called from a task" in e for e in errors)


def test_join_of_finished_task_from_a_foreign_thread(grun):
    def main():
        t = gr.go(pow, 3, 4)
        t.join()
        box = []
        th = threading.Thread(target=lambda: box.append(t.join()))
        th.start()
        th.join()
        return box

    assert grun(main) == [81]


# ---- join with a timeout -------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, 0.0, 0.01])
def test_join_timeout_expires(grun, timeout):
    def main():
        t = gr.go(gr.sleep, 1000)
        with pytest.raises(TimeoutError, match=rf"task {t.id} did not finish in time"):
            t.join(timeout=timeout)
        # The timeout did not touch the task: it is alive, and can still be joined.
        state = (t.done(), t.cancelled())
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        return state

    assert grun(main) == (False, False)


def test_join_timeout_positional(grun):
    def main():
        t = gr.go(gr.sleep, 1000)
        with pytest.raises(TimeoutError):
            t.join(0.001)
        t.cancel()
        return "ok"

    assert grun(main) == "ok"


def test_join_within_timeout_returns_result(grun):
    def slow():
        gr.sleep(0.005)
        return "slow"

    def main():
        return (
            gr.go(slow).join(timeout=30),
            gr.go(pow, 2, 2).join(timeout=30),
            gr.go(int).join(None),
        )

    assert grun(main) == ("slow", 4, 0)


def test_join_timeout_then_join_again(grun):
    def gated(flag):
        while not flag:
            gr.sleep(0.001)
        return "released"

    def main():
        flag = []
        t = gr.go(gated, flag)
        with pytest.raises(TimeoutError):
            t.join(timeout=0.005)
        flag.append(True)
        return t.join()

    assert grun(main) == "released"


@pytest.mark.parametrize("bad", [-1, -0.001, float("-inf"), float("nan")], ids=repr)
def test_join_timeout_bad_value(grun, bad):
    def main():
        t = gr.go(gr.sleep, 1000)
        with pytest.raises(ValueError, match="timeout must be a non-negative number of seconds"):
            t.join(timeout=bad)
        t.cancel()
        return "ok"

    assert grun(main) == "ok"


@pytest.mark.parametrize("bad", ["x", [1], object(), 1j], ids=repr)
def test_join_timeout_bad_type(grun, bad):
    def main():
        t = gr.go(gr.sleep, 1000)
        with pytest.raises(
            TypeError, match="timeout must be a number of seconds, not " + type(bad).__name__
        ):
            t.join(timeout=bad)
        t.cancel()
        return "ok"

    assert grun(main) == "ok"


def test_join_across_ms_wakes_the_joiner(go_elsewhere):
    def remote():
        gr.sleep(0.002)
        return threading.get_ident()

    def main():
        here = threading.get_ident()
        results = [go_elsewhere(remote).join() for _ in range(3)]
        results += [go_elsewhere(remote).join(timeout=30) for _ in range(3)]
        return here, results

    here, results = gr.run(main, procs=2)
    assert len(results) == 6 and here not in results


def test_join_timeout_across_ms(go_elsewhere):
    def main():
        t = go_elsewhere(gr.sleep, 1000)
        with pytest.raises(TimeoutError):
            t.join(timeout=0.01)
        alive = not t.done()
        assert t.cancel()  # a cross-M cancel of a parked task
        with pytest.raises(gr.Cancelled):
            t.join(timeout=30)
        return alive, t.cancelled()

    assert gr.run(main, procs=2) == (True, True)


# ---- exception propagation -----------------------------------------------------------------------


def test_exception_propagates_through_nested_joins_and_run(grun):
    err = KeyError("leaf")

    def leaf():
        raise err

    def middle():
        return gr.go(leaf).join()

    def main():
        return gr.go(middle).join()

    with pytest.raises(KeyError) as ei:
        grun(main)
    assert ei.value is err
    names = {entry.name for entry in ei.traceback}
    assert {"leaf", "middle", "main"} <= names


def test_caught_child_exception_does_not_fail_the_run(grun):
    def main():
        t = gr.go(fail, ValueError("handled"))
        try:
            t.join()
        except ValueError as e:
            return str(e)

    assert grun(main) == "handled"


def test_unjoined_child_failure_does_not_fail_the_run(grun):
    def main():
        t = gr.go(fail, ValueError("ignored"))
        while not t.done():
            gr.sleep(0)
        t.exception()
        return "fine"

    assert grun(main) == "fine"


def test_base_exception_other_than_interrupts_is_a_task_failure(grun):
    class Custom(BaseException):
        pass

    def main():
        t = gr.go(fail, Custom("mine"))
        with pytest.raises(Custom):
            t.join()
        return "survived"

    assert grun(main) == "survived"


# ---- the never-retrieved report ------------------------------------------------------------------


def _finish_unretrieved(exc, retrieve=None):
    def main():
        t = gr.go(fail, exc)
        while not t.done():
            gr.sleep(0)
        if retrieve:
            try:
                retrieve(t)
            except BaseException:
                pass
        del t

    return main


def _reports(caplog):
    return [r for r in caplog.records if "was never retrieved" in r.getMessage()]


def test_never_retrieved_exception_goes_through_logging_with_its_traceback(grun, caplog):
    # The report used to be written straight to sys.stderr: no way to route, filter or
    # silence it. It is logged on the "goroutines" logger, with the exception attached.
    # Several runs in a row: each failure is reported once, however many Task objects
    # came and went before (earlier tests, the warm-up run).
    grun(lambda: [gr.go(int).join() for _ in range(300)])
    caplog.clear()
    errors = [ValueError(f"nobody-looked-{i}") for i in range(5)]
    for err in errors:
        grun(_finish_unretrieved(err))
        gc.collect()
    reports = _reports(caplog)
    assert [r.exc_info[1] for r in reports] == errors
    for r in reports:
        assert (r.name, r.levelname) == ("goroutines", "ERROR")
        assert "(fail)" in r.getMessage()  # the task's name
        assert any(f.name == "fail" for f in traceback.extract_tb(r.exc_info[2]))


@pytest.mark.parametrize(
    "retrieve",
    [lambda t: t.join(), lambda t: t.result(), lambda t: t.exception()],
    ids=["join", "result", "exception"],
)
def test_retrieved_exception_is_not_reported(grun, caplog, retrieve):
    grun(_finish_unretrieved(ValueError("seen-xyz"), retrieve))
    gc.collect()
    assert _reports(caplog) == []


def test_cancellation_and_success_are_not_reported(grun, caplog):
    def main():
        t = gr.go(gr.sleep, 1000)
        gr.sleep(0)
        t.cancel()
        gr.go(int)
        gr.go(gr.sleep, 1000)  # cancelled by the shutdown

    grun(main)
    gc.collect()
    assert _reports(caplog) == []


def test_never_retrieved_report_in_a_real_program():
    script = textwrap.dedent(
        """
        import goroutines as gr

        def doomed():
            raise RuntimeError("unseen-failure-42")

        def main():
            t = gr.go(doomed)
            while not t.done():
                gr.sleep(0)

        gr.run(main, procs=2)
        print("run returned")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "run returned" in proc.stdout
    assert "was never retrieved" in proc.stderr
    assert "RuntimeError: unseen-failure-42" in proc.stderr
    assert "doomed" in proc.stderr
