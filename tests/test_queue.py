"""gr.Queue: queue.Queue's contract for tasks and plain threads."""

import queue
import threading

import pytest
from hypothesis import given, settings, strategies as st

import goroutines as gr


def test_fifo_and_sizes(grun):
    def main():
        q = gr.Queue()
        assert q.empty() and not q.full() and q.qsize() == 0
        for i in range(5):
            q.put(i)
        assert q.qsize() == 5 and not q.full()
        return [q.get() for _ in range(5)]

    assert grun(main) == list(range(5))


def test_bounded_put_waits_for_a_get(grun):
    def main():
        q = gr.Queue(2)
        order = []

        def producer():
            for i in range(6):
                q.put(i)
                order.append(("put", i))

        p = gr.go(producer)
        while not q.full():
            gr.sleep(0.0005)
        gr.sleep(0.001)
        assert q.qsize() == 2 and order == [("put", 0), ("put", 1)]  # the third put waits
        got = []
        for _ in range(6):
            got.append(q.get())
        p.join()
        return got

    assert grun(main) == list(range(6))


def test_get_waits_for_a_put(grun):
    def main():
        q = gr.Queue()
        t = gr.go(q.get)
        gr.sleep(0.002)
        assert not t.done()
        q.put("x")
        return t.join()

    assert grun(main) == "x"


def test_nowait_and_timeouts_raise_the_stdlib_exceptions(grun):
    def main():
        q = gr.Queue(1)
        with pytest.raises(queue.Empty):
            q.get_nowait()
        with pytest.raises(queue.Empty):
            q.get(timeout=0.002)
        with pytest.raises(queue.Empty):
            q.get(block=False)
        q.put_nowait(1)
        with pytest.raises(queue.Full):
            q.put_nowait(2)
        with pytest.raises(queue.Full):
            q.put(2, timeout=0.002)
        with pytest.raises(queue.Full):
            q.put(2, timeout=0)
        assert q.get() == 1 and q.empty()
        # A timed-out put was not counted: join() does not wait for it.
        q.task_done()
        q.join()

    grun(main)


def test_bad_arguments(grun):
    with pytest.raises(TypeError, match="maxsize"):
        gr.Queue("3")

    def main():
        q = gr.Queue()
        with pytest.raises(ValueError, match="non-negative"):
            q.get(timeout=-1)
        with pytest.raises(ValueError, match="non-negative"):
            q.put(1, timeout=-1)
        with pytest.raises(ValueError, match="too many"):
            q.task_done()

    grun(main)


def test_task_done_and_join(grun):
    def main():
        q = gr.Queue()
        done = []

        def worker():
            while True:
                item = q.get()
                gr.sleep(0.0005)
                done.append(item)
                q.task_done()

        w = gr.go(worker)
        for i in range(10):
            q.put(i)
        q.join()
        assert done == list(range(10))
        w.cancel()

    grun(main)


def test_cancelled_get_loses_no_item(grun):
    def main():
        q = gr.Queue()
        getter = gr.go(q.get)
        gr.sleep(0.002)
        getter.cancel()
        with pytest.raises(gr.Cancelled):
            getter.join()
        q.put("kept")
        return q.get_nowait()

    assert grun(main) == "kept"


def test_cancelled_put_is_not_counted(grun):
    def main():
        q = gr.Queue(1)
        q.put(0)
        putter = gr.go(q.put, 1)
        gr.sleep(0.002)
        putter.cancel()
        with pytest.raises(gr.Cancelled):
            putter.join()
        assert q.get() == 0 and q.empty()
        q.task_done()
        q.join()  # the cancelled put never counted

    grun(main)


def test_from_plain_threads_both_ways(grun):
    def main():
        q = gr.Queue(4)
        back = gr.Queue()
        answer = gr.Queue()

        def thread_body():
            for i in range(50):
                q.put(i)
            q.put(None)
            answer.put(sum(iter(back.get, None)))

        th = threading.Thread(target=thread_body)
        th.start()
        total = 0
        for item in iter(q.get, None):
            total += item
            back.put(item)
        back.put(None)
        result = answer.get(timeout=10)
        gr.blocking(th.join)
        return total, result

    assert grun(main) == (sum(range(50)), sum(range(50)))


def test_queue_works_outside_run():
    q: gr.Queue[int] = gr.Queue[int]()
    q.put(1)
    assert q.get() == 1
    with pytest.raises(queue.Empty):
        q.get(timeout=0.001)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 4), st.integers(1, 4), st.integers(1, 4), st.integers(0, 40))
def test_stress_many_producers_consumers_nothing_lost_or_duplicated(maxsize, np, nc, n):
    def main():
        q = gr.Queue(maxsize)
        got = []

        def producer(k):
            for i in range(n):
                q.put((k, i))

        def consumer():
            while (item := q.get()) is not None:
                got.append(item)
                q.task_done()
            q.task_done()

        cs = [gr.go(consumer) for _ in range(nc)]
        with gr.TaskGroup() as tg:
            for k in range(np):
                tg.go(producer, k)
        q.join()
        for _ in cs:
            q.put(None)
        gr.gather(*cs)
        return sorted(got)

    assert gr.run(main, procs=2) == sorted((k, i) for k in range(np) for i in range(n))
