"""Channels: semantics against a sequential model, errors, close wake-ups, stress."""
import collections

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import goroutines as gr
from goroutines import Chan, ChanClosed, Recv, Send

# --------------------------------------------------------------------------- basics


def test_unbuffered_send_recv(procs):
    def main():
        ch = Chan()
        gr.go(ch.send, 42)
        return ch.recv()

    assert gr.run(main, procs=procs) == 42


def test_buffered_fifo_and_len(procs):
    def main():
        ch = Chan(3)
        assert ch.capacity == 3 and len(ch) == 0
        for i in range(3):
            ch.send(i)  # does not block: room in the buffer
        assert len(ch) == 3
        out = [ch.recv() for _ in range(3)]
        assert len(ch) == 0
        return out

    assert gr.run(main, procs=procs) == [0, 1, 2]


def test_iteration_ends_when_closed_and_drained(procs):
    def main():
        ch = Chan(2)

        def producer():
            for i in range(10):
                ch.send(i)
            ch.close()

        gr.go(producer)
        return list(ch)

    assert gr.run(main, procs=procs) == list(range(10))


def test_buffered_values_survive_close():
    def main():
        ch = Chan(3)
        ch.send("a")
        ch.send("b")
        ch.close()
        assert ch.closed
        assert len(ch) == 2
        assert ch.recv() == "a"
        assert ch.recv() == "b"
        with pytest.raises(ChanClosed):
            ch.recv()
        return True

    assert gr.run(main, procs=1)


def test_repr_and_closed_property():
    def main():
        ch = Chan(2)
        ch.send(1)
        assert not ch.closed
        r1 = repr(ch)
        ch.close()
        return r1, repr(ch)

    r1, r2 = gr.run(main, procs=1)
    assert "1/2" in r1 and "closed" not in r1
    assert "closed" in r2


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [-1, -100])
def test_negative_capacity(bad):
    with pytest.raises(ValueError):
        Chan(bad)


@pytest.mark.parametrize("bad", [1.5, "3", None, True, [1]])
def test_non_int_capacity(bad):
    with pytest.raises(TypeError):
        Chan(bad)


@pytest.mark.parametrize("cap", [0, 1, 4])
def test_recv_on_closed_drained(cap):
    def main():
        ch = Chan(cap)
        ch.close()
        with pytest.raises(ChanClosed):
            ch.recv()
        return True

    assert gr.run(main, procs=1)


@pytest.mark.parametrize("cap", [0, 1, 4])
def test_send_on_closed(cap):
    def main():
        ch = Chan(cap)
        ch.close()
        with pytest.raises(ChanClosed):
            ch.send(1)
        assert len(ch) == 0
        return True

    assert gr.run(main, procs=1)


@pytest.mark.parametrize("cap", [0, 2])
def test_double_close(cap):
    def main():
        ch = Chan(cap)
        ch.close()
        with pytest.raises(ChanClosed):
            ch.close()
        return True

    assert gr.run(main, procs=1)


def test_close_outside_runtime_then_use():
    # close() is documented as safe from any thread, including outside run().
    ch = Chan(1)
    ch.close()
    assert ch.closed
    with pytest.raises(ChanClosed):
        ch.close()


@pytest.mark.parametrize("cap", [0, 3])
def test_close_wakes_many_parked_receivers(procs, cap):
    n = 100

    def main():
        ch = Chan(cap)
        parked = gr.WaitGroup()
        closed_count = [0]
        mu = gr.Mutex()

        def receiver():
            parked.done()
            try:
                ch.recv()
            except ChanClosed:
                with mu:
                    closed_count[0] += 1
                return "closed"
            return "value"

        parked.add(n)
        tasks = [gr.go(receiver) for _ in range(n)]
        parked.wait()
        # Let them reach the park point (a task that is not parked yet still sees a
        # closed channel and gets ChanClosed, so the count is exact either way).
        for _ in range(10):
            gr.gosched()
        ch.close()
        results = [t.join() for t in tasks]
        return results, closed_count[0]

    results, count = gr.run(main, procs=procs)
    assert results == ["closed"] * n
    assert count == n


@pytest.mark.parametrize("cap", [0, 3])
def test_close_wakes_many_parked_senders(procs, cap):
    n = 100

    def main():
        ch = Chan(cap)
        for _ in range(cap):  # fill the buffer so every sender parks
            ch.send(-1)
        started = gr.WaitGroup()
        started.add(n)

        def sender(i):
            started.done()
            try:
                ch.send(i)
            except ChanClosed:
                return "closed"
            return "sent"

        tasks = [gr.go(sender, i) for i in range(n)]
        started.wait()
        for _ in range(10):
            gr.gosched()
        ch.close()
        results = [t.join() for t in tasks]
        drained = list(ch)
        return results, drained

    results, drained = gr.run(main, procs=procs)
    assert results.count("closed") == n
    assert drained == [-1] * cap


# --------------------------------------------------------------------------- model test

# ops: ("send", v) / ("recv",) non-blocking through select(default=True),
# ("close",), ("len",), and ("park_recv",)/("park_send", v) which start a task parked on
# the channel so that unbuffered non-blocking operations have a partner.
_op = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 1000)),
    st.tuples(st.just("recv")),
    st.tuples(st.just("close")),
    st.tuples(st.just("len")),
    st.tuples(st.just("park_recv")),
    st.tuples(st.just("park_send"), st.integers(0, 1000)),
)


def _settle():
    # procs=1: every spawned task runs to its park point before main runs again.
    for _ in range(3):
        gr.gosched()


class _ChanModel:
    """A Chan and a sequential model of it, stepped one operation at a time from inside
    a task at procs=1 (spawned tasks run to their park point on _settle)."""

    def __init__(self, cap):
        self.cap = cap
        self.ch = Chan(cap)
        self.buf = collections.deque()
        self.parked_recv = collections.deque()  # tasks parked receiving (FIFO)
        self.parked_send = collections.deque()  # (task, value) parked sending (FIFO)
        self.closed = False

    def _do_recv(self):
        try:
            return ("ok", self.ch.recv())
        except ChanClosed:
            return ("closed", None)

    def _do_send(self, v):
        try:
            self.ch.send(v)
            return ("ok", None)
        except ChanClosed:
            return ("closed", None)

    def _refill_from_parked_sender(self):
        # A receive freed a buffer slot: the first parked sender moves its value in.
        if self.parked_send:
            t, sv = self.parked_send.popleft()
            self.buf.append(sv)
            _settle()
            assert t.done() and t.result() == ("ok", None)

    def step(self, op):
        ch, buf = self.ch, self.buf
        kind = op[0]
        if kind == "send":
            v = op[1]
            if self.closed:
                with pytest.raises(ChanClosed):
                    gr.select(Send(ch, v), default=True)
                return
            i, got, ok = gr.select(Send(ch, v), default=True)
            if self.parked_recv:
                assert (i, ok) == (0, True)
                t = self.parked_recv.popleft()
                _settle()
                assert t.done() and t.result() == ("ok", v)
            elif len(buf) < self.cap:
                assert (i, ok) == (0, True)
                buf.append(v)
            else:
                assert (i, got, ok) == (-1, None, False), "non-blocking send must fail"
        elif kind == "recv":
            i, got, ok = gr.select(Recv(ch), default=True)
            if buf:
                assert (i, got, ok) == (0, buf.popleft(), True)
                self._refill_from_parked_sender()
            elif self.parked_send:
                t, sv = self.parked_send.popleft()
                assert (i, got, ok) == (0, sv, True)
                _settle()
                assert t.done() and t.result() == ("ok", None)
            elif self.closed:
                assert (i, got, ok) == (0, None, False)
            else:
                assert (i, got, ok) == (-1, None, False)
        elif kind == "close":
            if self.closed:
                with pytest.raises(ChanClosed):
                    ch.close()
                return
            ch.close()
            self.closed = True
            _settle()
            while self.parked_recv:
                t = self.parked_recv.popleft()
                assert t.done() and t.result() == ("closed", None)
            while self.parked_send:
                t, _ = self.parked_send.popleft()
                assert t.done() and t.result() == ("closed", None)
            assert ch.closed
        elif kind == "len":
            assert len(ch) == len(buf)
            assert ch.closed == self.closed
        elif kind == "park_recv":
            t = gr.go(self._do_recv)
            _settle()
            if buf:
                assert t.done() and t.result() == ("ok", buf.popleft())
                self._refill_from_parked_sender()
            elif self.parked_send:
                pt, sv = self.parked_send.popleft()
                assert t.done() and t.result() == ("ok", sv)
                _settle()
                assert pt.done() and pt.result() == ("ok", None)
            elif self.closed:
                assert t.done() and t.result() == ("closed", None)
            else:
                assert not t.done()
                self.parked_recv.append(t)
        elif kind == "park_send":
            v = op[1]
            t = gr.go(self._do_send, v)
            _settle()
            if self.closed:
                assert t.done() and t.result() == ("closed", None)
            elif self.parked_recv:
                rt = self.parked_recv.popleft()
                _settle()
                assert t.done() and t.result() == ("ok", None)
                assert rt.done() and rt.result() == ("ok", v)
            elif len(buf) < self.cap:
                assert t.done() and t.result() == ("ok", None)
                buf.append(v)
            else:
                assert not t.done()
                self.parked_send.append((t, v))
        assert len(ch) == len(buf)

    def finish(self):
        """Close the channel so that whatever is still parked on it finishes."""
        if not self.closed:
            self.step(("close",))


class ChanMachine(RuleBasedStateMachine):
    """The model above as a hypothesis state machine: each rule is one operation."""

    model = None

    @initialize(cap=st.integers(0, 3))
    def make(self, cap):
        self.model = _ChanModel(cap)

    @rule(v=st.integers(0, 1000))
    def send(self, v):
        self.model.step(("send", v))

    @rule()
    def recv(self):
        self.model.step(("recv",))

    @rule()
    def close(self):
        self.model.step(("close",))

    @rule()
    def park_recv(self):
        self.model.step(("park_recv",))

    @rule(v=st.integers(0, 1000))
    def park_send(self, v):
        self.model.step(("park_send", v))

    @invariant()
    def length_matches(self):
        if self.model is not None:
            self.model.step(("len",))

    def teardown(self):
        if self.model is not None:
            self.model.finish()


def test_chan_state_machine():
    # hypothesis drives the machine from inside one task, so rules may park and spawn.
    machine_settings = settings(
        max_examples=120, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    # A broken rule or invariant raises, and run() re-raises it here.
    gr.run(run_state_machine_as_test, ChanMachine, settings=machine_settings, procs=1)


def _run_model(cap, ops):
    def main():
        model = _ChanModel(cap)
        for op in ops:
            model.step(op)
        model.finish()

    gr.run(main, procs=1)  # the model's asserts raise through run()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_op, max_size=40))
def test_unbuffered_chan_matches_sequential_model(ops):
    _run_model(0, ops)


def test_unbuffered_nonblocking_send_without_receiver_fails():
    def main():
        ch = Chan()
        return gr.select(Send(ch, 1), default=True)

    assert gr.run(main, procs=1) == (-1, None, False)


# --------------------------------------------------------------------------- stress


def test_stress_4x4_over_3_channels():
    total = 20_000
    n_prod = n_cons = 4
    per_prod = total // n_prod

    def main():
        chans = [Chan(0), Chan(1), Chan(64)]
        prod_wg = gr.WaitGroup()
        prod_wg.add(n_prod)

        def producer(p):
            try:
                for k in range(per_prod):
                    v = p * per_prod + k
                    chans[v % 3].send(v)
            finally:
                prod_wg.done()

        def consumer(c):
            got = []
            # Each consumer reads all three channels with select until all are closed.
            live = list(chans)
            while live:
                i, v, ok = gr.select(*[Recv(ch) for ch in live])
                if ok:
                    got.append(v)
                else:
                    live.pop(i)
            return got

        consumers = [gr.go(consumer, c) for c in range(n_cons)]
        for p in range(n_prod):
            gr.go(producer, p)
        prod_wg.wait()
        for ch in chans:
            ch.close()
        return [t.join() for t in consumers]

    results = gr.run(main, procs=2)
    flat = [v for r in results for v in r]
    assert len(flat) == total
    assert sorted(flat) == list(range(total))


def test_stress_plain_recv_iteration(procs):
    total = 20_000

    def main():
        chans = [Chan(0), Chan(2), Chan(128)]
        done = gr.WaitGroup()
        done.add(4)

        def producer(p):
            for k in range(total // 4):
                chans[(p + k) % 3].send(p * (total // 4) + k)
            done.done()

        def closer():
            done.wait()
            for ch in chans:
                ch.close()

        def consumer(ch):
            return list(ch)

        cons = [gr.go(consumer, chans[i % 3]) for i in range(4)]
        for p in range(4):
            gr.go(producer, p)
        gr.go(closer)
        return [t.join() for t in cons]

    flat = [v for r in gr.run(main, procs=procs) for v in r]
    assert sorted(flat) == list(range(total))


def test_values_keep_identity_and_refcount(procs):
    import sys

    obj = object()
    base = sys.getrefcount(obj)

    def main():
        ch = Chan(4)
        for _ in range(4):
            ch.send(obj)
        got = [ch.recv() for _ in range(4)]
        assert all(g is obj for g in got)
        del got
        # Sends that never happen (select default) must not leak a reference.
        full = Chan(0)
        for _ in range(100):
            gr.select(Send(full, obj), default=True)
        # Values still buffered when the channel is collected are released.
        ch2 = Chan(3)
        ch2.send(obj)
        ch2.send(obj)
        del ch2
        return True

    assert gr.run(main, procs=procs)
    assert sys.getrefcount(obj) == base


def test_send_and_recv_work_outside_the_runtime_but_select_does_not():
    # send and recv block a thread that runs no task (test_chan_threads.py); select still
    # needs a task.
    ch = Chan(1)
    ch.send(1)
    assert ch.recv() == 1
    with pytest.raises(RuntimeError):
        gr.select(Recv(ch), default=True)


def test_cancelled_receiver_is_not_a_partner(procs):
    def main():
        ch = Chan()
        t = gr.go(ch.recv)
        gr.sleep(0.01)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        return gr.select(Send(ch, 1), default=True)

    assert gr.run(main, procs=procs) == (-1, None, False)
