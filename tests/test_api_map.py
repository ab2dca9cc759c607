"""gr.map (bounded, lazy, first error cancels the rest) and TaskGroup(limit=N)."""

import sys
import threading

import pytest
from hypothesis import given, settings, strategies as st

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

import goroutines as gr


class Gauge:
    """Counts the calls in flight and remembers the most there were at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


def test_map_ordered_results(grun):
    def main():
        return list(gr.map(lambda x: (gr.sleep(0.001 * (x % 3)), x * 2)[1], range(40), limit=5))

    assert grun(main) == [x * 2 for x in range(40)]


def test_map_unordered_yields_as_completed(grun):
    def main():
        gates = [gr.Event() for _ in range(3)]

        def job(i):
            gates[i].wait()
            return i

        it = gr.map(job, range(3), limit=3, ordered=False)
        gates[2].set()
        first = next(it)
        gates[0].set()
        second = next(it)
        gates[1].set()
        return [first, second, next(it)]

    assert grun(main) == [2, 0, 1]


@pytest.mark.parametrize("ordered", [True, False])
def test_map_never_has_more_than_limit_in_flight(grun, ordered):
    def main():
        g = Gauge()

        def job(x):
            with g:
                gr.sleep(0.0005)
            return x

        out = list(gr.map(job, range(60), limit=4, ordered=ordered))
        assert sorted(out) == list(range(60))
        return g.most

    assert 1 <= grun(main) <= 4


def test_map_reads_the_iterable_lazily(grun):
    def main():
        pulled = []

        def items():
            for i in range(100):
                pulled.append(i)
                yield i

        it = gr.map(lambda x: x, items(), limit=3)
        assert pulled == []  # nothing before the first next()
        assert next(it) == 0
        assert len(pulled) <= 4
        it.close()
        return len(pulled)

    assert grun(main) <= 4


def test_map_over_an_infinite_iterable(grun):
    def main():
        import itertools

        it = gr.map(lambda x: x * x, itertools.count(), limit=8)
        return [next(it) for _ in range(20)]

    assert grun(main) == [x * x for x in range(20)]


@pytest.mark.parametrize("ordered", [True, False])
def test_map_first_error_cancels_the_rest_and_raises(grun, ordered):
    def main():
        cleaned = []
        started = gr.WaitGroup()
        started.add(3)

        def job(i):
            if i == 3:
                started.wait()
                raise ValueError(i)
            started.done()
            try:
                gr.Event().wait()
            finally:
                cleaned.append(i)

        with pytest.raises(ValueError, match="3"):
            list(gr.map(job, range(100), limit=4, ordered=ordered))
        return sorted(cleaned)

    assert grun(main) == [0, 1, 2]


def test_closing_map_early_cancels_the_tasks_in_flight(grun):
    def main():
        tasks = {}
        started = gr.WaitGroup()
        started.add(2)

        def job(i):
            tasks[i] = gr.current()
            if i == 0:
                started.wait()  # 1 and 2 are in flight when 0 is yielded
                return i
            started.done()
            gr.Event().wait()

        it = gr.map(job, range(10), limit=3)
        assert next(it) == 0
        it.close()
        assert sorted(tasks) == [0, 1, 2]
        for i in (1, 2):
            with pytest.raises(gr.Cancelled):
                tasks[i].join()

    grun(main)


def test_map_error_from_the_iterable_cancels_the_tasks(grun):
    def main():
        tasks = []

        def job(i):
            tasks.append(gr.current())
            gr.Event().wait()

        def items():
            yield 1
            yield 2
            raise KeyError("source")

        with pytest.raises(KeyError):
            list(gr.map(job, items(), limit=5))
        gr.gosched()
        for t in tasks:
            with pytest.raises(gr.Cancelled):
                t.join()

    grun(main)


def test_map_without_limit_and_of_nothing(grun):
    def main():
        assert list(gr.map(str, [])) == []
        return list(gr.map(str, range(5)))

    assert grun(main) == ["0", "1", "2", "3", "4"]


def test_map_bad_arguments_raise_at_the_call(grun):
    def main():
        with pytest.raises(ValueError, match="limit"):
            gr.map(str, [1], limit=0)
        with pytest.raises(TypeError, match="limit"):
            gr.map(str, [1], limit=2.5)
        with pytest.raises(TypeError, match="limit"):
            gr.map(str, [1], limit=True)
        with pytest.raises(TypeError):
            gr.map(str, 42)
        with pytest.raises(TypeError, match="callable"):
            gr.map(42, [1])

    grun(main)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=30), st.integers(1, 6), st.booleans())
def test_map_property_every_item_once(xs, limit, ordered):
    def main():
        out = list(gr.map(lambda x: (gr.sleep(0.0002 * x), x)[1], xs, limit=limit, ordered=ordered))
        return out if ordered else sorted(out)

    assert gr.run(main, procs=2) == (xs if ordered else sorted(xs))


# --------------------------------------------------------------------------- TaskGroup(limit)


def test_taskgroup_limit_bounds_running_tasks(grun):
    def main():
        g = Gauge()

        def job():
            with g:
                gr.sleep(0.0005)

        with gr.TaskGroup(limit=3) as tg:
            for _ in range(30):
                tg.go(job)
        return g.most

    assert 1 <= grun(main) <= 3


def test_taskgroup_limit_slot_freed_by_a_task_cancelled_before_it_ran(grun):
    def main():
        with gr.TaskGroup(limit=1) as tg:
            t = tg.go(int)
            t.cancel()  # never runs: its slot still comes back
            tg.go(int)
            tg.go(int)

    grun(main)


def test_taskgroup_limit_failure_cancels_tasks_and_parked_go(grun):
    def main():
        def fail():
            raise ValueError("x")

        with pytest.raises(ExceptionGroup) as ei:
            with gr.TaskGroup(limit=2) as tg:
                tg.go(gr.Event().wait)
                tg.go(fail)
                tg.go(gr.Event().wait)  # parks until the failure's cancellations free a slot
        assert any(isinstance(e, ValueError) for e in ei.value.exceptions)

    grun(main)


def test_taskgroup_limit_bad_values():
    with pytest.raises(ValueError, match="limit"):
        gr.TaskGroup(limit=0)
    with pytest.raises(TypeError, match="limit"):
        gr.TaskGroup(limit="3")
