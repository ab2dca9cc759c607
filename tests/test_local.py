"""gr.local: per-task attributes, dropped when the task finishes."""

import gc
import threading
import weakref

import pytest

import goroutines as gr


def test_each_task_sees_its_own_attributes(grun):
    def main():
        data = gr.local()
        data.x = "main"

        def task(i):
            assert not hasattr(data, "x")
            data.x = i
            gr.sleep(0.001)
            return data.x

        assert gr.gather(*[gr.go(task, i) for i in range(20)]) == list(range(20))
        return data.x

    assert grun(main) == "main"


def test_delete_and_dict(grun):
    def main():
        data = gr.local()
        data.a = 1
        assert data.__dict__ == {"a": 1}
        del data.a
        with pytest.raises(AttributeError):
            _ = data.a
        with pytest.raises(AttributeError):
            del data.a
        with pytest.raises(AttributeError, match="read-only"):
            data.__dict__ = {}

    grun(main)


def test_values_are_freed_when_the_task_ends(grun):
    class Payload:
        pass

    def main():
        data = gr.local()
        refs = []

        def task():
            p = Payload()
            refs.append(weakref.ref(p))
            data.p = p

        gr.go(task).join()
        gr.gosched()
        gc.collect()
        return refs[0]() is None

    assert grun(main)


def test_subclass_init_runs_once_per_task_with_the_arguments(grun):
    class Counter(gr.local):
        inits = 0

        def __init__(self, start):
            Counter.inits += 1
            self.n = start

        @property
        def double(self):
            return self.n * 2

    def main():
        c = Counter(5)
        assert Counter.inits == 1 and c.n == 5

        def task():
            c.n += 1
            c.n += 1
            return c.double

        assert gr.go(task).join() == 14
        assert Counter.inits == 2 and c.n == 5
        with pytest.raises(AttributeError):
            c.double = 3  # a property without setter stays one

    grun(main)


def test_plain_threads_get_per_thread_values(grun):
    data = gr.local()
    data.x = "outside"

    def main():
        out = []
        th = threading.Thread(target=lambda: out.append(getattr(data, "x", None)))
        th.start()
        gr.blocking(th.join)
        data.x = "task"
        return out

    assert grun(main) == [None]
    assert data.x == "outside"


def test_arguments_need_a_subclass_init():
    with pytest.raises(TypeError, match="no arguments"):
        gr.local(1)
