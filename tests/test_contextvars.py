"""Each task runs in a copy of its spawner's contextvars context, as asyncio's tasks do
(issue 9): what one task sets is never seen by another, and libraries built on context
variables (decimal, logging filters, tracing spans) work per task."""

import contextvars
import decimal
import logging

import pytest

import goroutines as gr

var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=0)

PROCS = [1, 2]


@pytest.mark.parametrize("procs", PROCS)
def test_a_set_in_one_task_is_not_seen_by_later_tasks(procs):
    def setter():
        var.set(5)
        gr.sleep(0.001)  # parks: the value must survive the switch away and back
        return var.get()

    def main():
        first = gr.go(setter).join()
        later = [gr.go(var.get).join() for _ in range(5)]
        return first, later, var.get()

    assert gr.run(main, procs=procs) == (5, [0] * 5, 0)


@pytest.mark.parametrize("procs", PROCS)
def test_a_child_sees_its_parents_value_at_spawn_and_not_later_changes(procs):
    def child(ready, go_on):
        seen = var.get()
        ready.send(None)
        go_on.recv()
        var.set(99)  # the parent's context is untouched
        return seen, var.get()

    def main():
        var.set(1)
        ready, go_on = gr.Chan(), gr.Chan()
        t = gr.go(child, ready, go_on)
        ready.recv()
        var.set(2)
        go_on.send(None)
        return t.join(), var.get()

    assert gr.run(main, procs=procs) == ((1, 99), 2)


def test_run_runs_main_in_a_copy_of_the_callers_context():
    token = var.set(7)
    try:
        def main():
            seen = var.get()
            var.set(8)
            return seen

        assert gr.run(main) == 7
        assert var.get() == 7
    finally:
        var.reset(token)


@pytest.mark.parametrize("procs", PROCS)
def test_decimal_precision_set_in_a_task_does_not_leak(procs):
    def narrow():
        decimal.getcontext().prec = 3
        gr.sleep(0.001)
        return str(decimal.Decimal(1) / decimal.Decimal(7))

    def wide():
        return str(decimal.Decimal(1) / decimal.Decimal(7))

    def main():
        a = gr.go(narrow).join()
        b = [gr.go(wide).join() for _ in range(3)]
        return a, b

    # In a fresh thread: decimal's context variable is unset there, as in a new program.
    import threading

    out = []
    th = threading.Thread(target=lambda: out.append(gr.run(main, procs=procs)))
    th.start()
    th.join()
    narrow_result, wide_results = out[0]
    assert narrow_result == "0.143"
    assert wide_results == ["0.1428571428571428571428571429"] * 3


@pytest.mark.parametrize("procs", PROCS)
def test_decimal_localcontext_is_per_task_across_parks(procs):
    def work(prec, ch):
        with decimal.localcontext() as ctx:
            ctx.prec = prec
            for _ in range(3):
                gr.gosched()
                ch.send(None)
            return str(decimal.Decimal(2).sqrt())

    def main():
        ch = gr.Chan(100)
        tasks = [gr.go(work, p, ch) for p in (2, 5, 9)]
        return [t.join() for t in tasks]

    assert gr.run(main, procs=procs) == ["1.4", "1.4142", "1.41421356"]


@pytest.mark.parametrize("procs", PROCS)
def test_many_tasks_keep_their_own_value_through_parks(procs):
    n = 500

    def task(i, ch):
        var.set(i)
        for _ in range(4):
            ch.send(i)
            gr.sleep(0)
        return var.get()

    def main():
        ch = gr.Chan(n * 4)
        tasks = [gr.go(task, i, ch) for i in range(n)]
        return [t.join() for t in tasks]

    assert gr.run(main, procs=procs) == list(range(n))


@pytest.mark.parametrize("procs", PROCS)
def test_go_with_an_explicit_context_runs_in_it(procs):
    def main():
        ctx = contextvars.copy_context()
        ctx.run(var.set, 3)
        t = gr.go(lambda: (var.get(), var.set(4))[0], context=ctx)
        return t.join(), ctx[var], var.get()

    assert gr.run(main, procs=procs) == (3, 4, 0)


def test_go_context_must_be_a_context():
    def main():
        with pytest.raises(TypeError, match="contextvars.Context"):
            gr.go(print, context={"var": 1})
        return gr.num_tasks()

    assert gr.run(main) == 1


def test_one_context_in_two_tasks_at_once_fails_the_second_clearly():
    def holder(ch):
        var.set(1)
        ch.recv()

    def main():
        ctx = contextvars.copy_context()
        ch = gr.Chan()
        first = gr.go(holder, ch, context=ctx)
        gr.gosched()  # first is now parked, inside ctx
        second = gr.go(var.get, context=ctx)
        with pytest.raises(RuntimeError, match="cannot run in its context"):
            second.join()
        ch.send(None)
        first.join()
        return ctx[var]

    assert gr.run(main, procs=1) == 1


def test_after_func_runs_in_the_context_of_its_caller():
    def main():
        var.set(11)
        out = gr.Chan(1)
        gr.after_func(0.001, lambda: out.send(var.get()))
        var.set(12)
        return out.recv()

    assert gr.run(main) == 11


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id.get()
        return True


@pytest.mark.parametrize("procs", PROCS)
def test_structured_logging_tags_each_tasks_records(procs):
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append((record.request_id, record.getMessage()))

    log = logging.getLogger("goroutines.test.ctx")
    log.propagate = False
    handler = Collect()
    handler.addFilter(_RequestIdFilter())
    log.addHandler(handler)
    try:
        def handle(rid):
            request_id.set(rid)
            for step in range(3):
                gr.sleep(0.001)
                log.warning("step %d", step)

        def main():
            with gr.TaskGroup() as tg:
                for rid in ("a", "b", "c"):
                    tg.go(handle, rid)

        gr.run(main, procs=procs)
    finally:
        log.removeHandler(handler)
    assert sorted(records) == sorted((rid, f"step {s}") for rid in "abc" for s in range(3))
