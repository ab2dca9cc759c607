"""Channels from everywhere: send/recv with timeouts, try_send/try_recv, and channel
operations from threads that run no task (plain threads, blocking() calls, no run() at
all), which block the thread through the park protocol (csrc/xwait.h)."""
import collections
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from test_signals import sigint

import goroutines as gr


def test_plain_threads_talk_over_a_channel_without_a_run():
    ch = gr.Chan()
    got = []
    readers = [threading.Thread(target=lambda: got.extend(ch)) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(3000):
        ch.send(i)
    ch.close()
    for t in readers:
        t.join()
    assert sorted(got) == list(range(3000))


def test_threads_feed_tasks_and_nothing_is_lost_or_duplicated(procs):
    n_threads, n_each = 4, 2000

    def main():
        ch = gr.Chan(8)
        done = gr.WaitGroup()

        def feeder(k):
            for i in range(n_each):
                ch.send(k * n_each + i)

        threads = [threading.Thread(target=feeder, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        got = []

        def consumer():
            for v in ch:
                got.append(v)
            done.done()

        done.add(3)
        for _ in range(3):
            gr.go(consumer)
        gr.blocking(lambda: [t.join() for t in threads])
        ch.close()
        done.wait()
        return got

    got = gr.run(main, procs=procs)
    assert sorted(got) == list(range(n_threads * n_each))


def test_tasks_feed_a_plain_thread(procs):
    def main():
        ch = gr.Chan()
        out = []
        th = threading.Thread(target=lambda: out.extend(ch))
        th.start()
        for i in range(500):
            gr.go(ch.send, i)
        gr.sleep(0.01)
        while gr.num_tasks() > 1:
            gr.sleep(0.001)
        ch.close()
        gr.blocking(th.join)
        return out

    assert sorted(gr.run(main, procs=procs)) == list(range(500))


def test_a_blocking_call_receives_from_a_task(grun):
    def main():
        ch = gr.Chan()
        gr.go(lambda: [ch.send(i) for i in range(10)])
        return gr.blocking(lambda: [ch.recv() for _ in range(10)])

    assert grun(main) == list(range(10))


def test_close_wakes_a_thread_blocked_in_recv(grun):
    def main():
        ch = gr.Chan()
        seen = []

        def reader():
            try:
                ch.recv()
            except gr.ChanClosed as e:
                seen.append(str(e))

        th = threading.Thread(target=reader)
        th.start()
        gr.sleep(0.02)
        ch.close()
        gr.blocking(th.join)
        return seen

    assert grun(main) == ["receive on closed channel"]


@pytest.mark.parametrize("where", ["task", "thread"])
def test_timeouts_raise_and_leave_nothing_behind(grun, where):
    def body():
        ch = gr.Chan()
        with pytest.raises(TimeoutError, match="receive timed out"):
            ch.recv(timeout=0.01)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="send timed out"):
            ch.send("late", timeout=0.02)
        assert time.monotonic() - t0 >= 0.02
        # The timed-out send left no value: a receiver finds nothing.
        assert ch.try_recv() == (None, False)
        buf = gr.Chan(1)
        buf.send(1, timeout=0)
        with pytest.raises(TimeoutError):
            buf.send(2, timeout=0)
        assert buf.recv(timeout=0) == 1

    if where == "task":
        grun(body)
    else:
        body()


def test_a_send_with_a_timeout_completes_when_a_receiver_comes(grun):
    def main():
        ch = gr.Chan()
        gr.go(lambda: (gr.sleep(0.01), ch.recv()))
        ch.send("x", timeout=10)
        return True

    assert grun(main)


def test_try_send_and_try_recv(grun):
    def main():
        ch = gr.Chan()
        assert not ch.try_send(1)  # nobody receives
        assert ch.try_recv() == (None, False)
        receiver = gr.go(ch.recv)
        gr.sleep(0.01)
        assert ch.try_send("hand-off")  # a parked receiver takes it
        assert receiver.join() == "hand-off"
        sender = gr.go(ch.send, "waiting")
        gr.sleep(0.01)
        assert ch.try_recv() == ("waiting", True)
        sender.join()
        ch.close()
        with pytest.raises(gr.ChanClosed):
            ch.try_send(1)
        with pytest.raises(gr.ChanClosed):
            ch.try_recv()

    grun(main)


def test_bad_timeouts_are_refused():
    ch = gr.Chan()
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError):
            ch.recv(timeout=bad)
        with pytest.raises(ValueError):
            ch.send(1, timeout=bad)
    with pytest.raises(TypeError):
        ch.recv(timeout="1")


def test_a_thread_receives_from_a_timer_channel(grun):
    def main():
        return gr.blocking(gr.after(0.02).recv)

    assert grun(main) > 0


def test_ctrl_c_ends_a_main_thread_blocked_in_recv():
    code = textwrap.dedent("""
        import goroutines as gr
        ch = gr.Chan()
        print("ready", flush=True)
        try:
            ch.recv()
        finally:
            print("finally", flush=True)
    """)
    rc, out, err = sigint([sys.executable, "-c", code])
    assert out == ["finally"] and "KeyboardInterrupt" in err


class BufferedChannelModel(RuleBasedStateMachine):
    """try_send / try_recv / close on a buffered channel, against a deque."""

    def __init__(self):
        super().__init__()
        self.cap = 3
        self.ch = gr.Chan(self.cap)
        self.model = collections.deque()
        self.closed = False
        self.next = 0

    @rule()
    def try_send(self):
        if self.closed:
            with pytest.raises(gr.ChanClosed):
                self.ch.try_send(self.next)
            return
        sent = self.ch.try_send(self.next)
        assert sent == (len(self.model) < self.cap)
        if sent:
            self.model.append(self.next)
        self.next += 1

    @rule()
    def try_recv(self):
        if self.model:
            assert self.ch.try_recv() == (self.model.popleft(), True)
        elif self.closed:
            with pytest.raises(gr.ChanClosed):
                self.ch.try_recv()
        else:
            assert self.ch.try_recv() == (None, False)

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self):
        self.ch.close()
        self.closed = True

    @invariant()
    def same_length(self):
        assert len(self.ch) == len(self.model)


TestBufferedChannelModel = BufferedChannelModel.TestCase
TestBufferedChannelModel.settings = settings(max_examples=50, stateful_step_count=30,
                                             deadline=None)
