"""select: readiness, randomness, closed channels, defaults/timeouts, contention."""
import collections

import pytest

import goroutines as gr
from goroutines import Chan, ChanClosed, Recv, Send


def test_recv_case_fires(procs):
    def main():
        a, b = Chan(), Chan(1)
        b.send("x")
        return gr.select(Recv(a), Recv(b))

    assert gr.run(main, procs=procs) == (1, "x", True)


def test_send_case_fires(procs):
    def main():
        a, b = Chan(), Chan(1)
        r = gr.select(Send(a, 1), Send(b, 2))
        return r, b.recv()

    assert gr.run(main, procs=procs) == ((1, None, True), 2)


def test_blocking_select_woken_by_sender(procs):
    def main():
        a, b = Chan(), Chan()
        gr.go(lambda: (gr.sleep(0.01), b.send(7)))
        return gr.select(Recv(a), Recv(b))

    assert gr.run(main, procs=procs) == (1, 7, True)


def test_blocking_select_woken_by_receiver(procs):
    def main():
        a, b = Chan(), Chan()
        t = gr.go(a.recv)
        r = gr.select(Send(a, "v"), Send(b, "w"))
        return r, t.join()

    assert gr.run(main, procs=procs) == ((0, None, True), "v")


def test_exactly_one_case_fires():
    def main():
        chans = [Chan(1) for _ in range(4)]
        for i, ch in enumerate(chans):
            ch.send(i)
        i, v, ok = gr.select(*[Recv(ch) for ch in chans])
        assert ok and v == i
        lens = [len(ch) for ch in chans]
        assert lens.count(0) == 1 and lens[i] == 0
        # Sends: exactly one goes through.
        outs = [Chan(1) for _ in range(4)]
        j, _, ok = gr.select(*[Send(ch, k) for k, ch in enumerate(outs)])
        lens = [len(ch) for ch in outs]
        assert ok and lens.count(1) == 1 and lens[j] == 1
        return True

    assert gr.run(main, procs=1)


def test_mixed_send_and_recv_cases():
    def main():
        inp, out = Chan(1), Chan(1)
        inp.send("in")
        seen = set()
        for _ in range(200):
            if len(inp) == 0:
                inp.send("in")
            if len(out) == 1:
                out.recv()
            i, v, ok = gr.select(Recv(inp), Send(out, "out"))
            assert ok
            seen.add(i)
            if i == 0:
                assert v == "in"
        return seen

    assert gr.run(main, procs=1) == {0, 1}


def test_recv_on_closed_returns_not_ok():
    def main():
        ch = Chan()
        ch.close()
        return gr.select(Recv(ch))

    assert gr.run(main, procs=1) == (0, None, False)


def test_recv_on_closed_but_buffered_gets_value_first():
    def main():
        ch = Chan(2)
        ch.send(1)
        ch.close()
        return gr.select(Recv(ch)), gr.select(Recv(ch))

    assert gr.run(main, procs=1) == ((0, 1, True), (0, None, False))


def test_send_on_closed_raises():
    def main():
        ch = Chan(1)
        ch.close()
        with pytest.raises(ChanClosed):
            gr.select(Send(ch, 1))
        with pytest.raises(ChanClosed):
            gr.select(Send(ch, 1), default=True)
        return True

    assert gr.run(main, procs=1)


def test_parked_select_woken_by_close(procs):
    def main():
        a, b = Chan(), Chan()
        t = gr.go(gr.select, Recv(a), Recv(b))
        gr.sleep(0.01)
        b.close()
        return t.join()

    assert gr.run(main, procs=procs) == (1, None, False)


def test_parked_select_send_woken_by_close_raises(procs):
    def main():
        a = Chan()

        def sel():
            try:
                gr.select(Send(a, 1))
            except ChanClosed:
                return "closed"

        t = gr.go(sel)
        gr.sleep(0.01)
        a.close()
        return t.join()

    assert gr.run(main, procs=procs) == "closed"


def test_default_when_nothing_ready():
    def main():
        a, b = Chan(), Chan(1)
        b.send(0)  # full: Send(b) not ready
        return gr.select(Recv(a), Send(b, 1), default=True)

    assert gr.run(main, procs=1) == (-1, None, False)


def test_default_not_taken_when_ready():
    def main():
        a = Chan(1)
        a.send(5)
        return gr.select(Recv(a), default=True)

    assert gr.run(main, procs=1) == (0, 5, True)


def test_timeout_returns_minus_one(procs):
    def main():
        return gr.select(Recv(Chan()), timeout=0.01)

    assert gr.run(main, procs=procs) == (-1, None, False)


def test_timeout_zero_is_nonblocking():
    def main():
        return gr.select(Recv(Chan()), timeout=0)

    assert gr.run(main, procs=1) == (-1, None, False)


def test_timeout_not_taken_when_value_arrives():
    def main():
        ch = Chan()
        gr.go(ch.send, "late")
        return gr.select(Recv(ch), timeout=30)

    assert gr.run(main, procs=1) == (0, "late", True)


def test_timed_out_send_is_not_delivered():
    def main():
        ch = Chan()
        r = gr.select(Send(ch, "x"), timeout=0.01)
        # Nobody took the value and it must not appear later.
        late = gr.select(Recv(ch), default=True)
        return r, late

    assert gr.run(main, procs=1) == ((-1, None, False), (-1, None, False))


def test_none_channel_never_ready():
    def main():
        ch = Chan(1)
        ch.send("v")
        r1 = gr.select(Recv(None), Send(None, 1), Recv(ch))
        r2 = gr.select(Recv(None), Send(None, 1), default=True)
        r3 = gr.select(Recv(None), timeout=0.01)
        return r1, r2, r3

    assert gr.run(main, procs=1) == ((2, "v", True), (-1, None, False), (-1, None, False))


def test_only_none_channels_deadlock():
    with pytest.raises(gr.Deadlock):
        gr.run(lambda: gr.select(Recv(None)), procs=1)


def test_empty_select_blocks_forever(procs):
    with pytest.raises(gr.Deadlock):
        gr.run(gr.select, procs=procs)


def test_empty_select_with_default_and_timeout():
    def main():
        return gr.select(default=True), gr.select(timeout=0.01)

    assert gr.run(main, procs=1) == ((-1, None, False), (-1, None, False))


def test_bad_cases():
    def main():
        with pytest.raises(TypeError):
            gr.select(Chan())
        with pytest.raises(TypeError):
            gr.select(42)
        return True

    with pytest.raises(TypeError):
        Recv(42)
    with pytest.raises(TypeError):
        Send("not a chan", 1)
    assert gr.run(main, procs=1)


def test_fairness_two_ready_channels(procs):
    n = 4000

    def main():
        a, b = Chan(1), Chan(1)
        counts = [0, 0]
        for _ in range(n):
            if len(a) == 0:
                a.send("a")
            if len(b) == 0:
                b.send("b")
            i, v, ok = gr.select(Recv(a), Recv(b))
            assert ok and v == "ab"[i]
            counts[i] += 1
        return counts

    counts = gr.run(main, procs=procs)
    # Binomial(4000, 0.5): sd ~ 32, so 40%..60% is > 12 sd away from the mean.
    for c in counts:
        assert 0.40 * n <= c <= 0.60 * n, counts


def test_fairness_four_ready_send_cases():
    n = 4000

    def main():
        chans = [Chan(1) for _ in range(4)]
        counts = [0] * 4
        for _ in range(n):
            i, _, ok = gr.select(*[Send(ch, k) for k, ch in enumerate(chans)])
            counts[i] += 1
            chans[i].recv()
        return counts

    counts = gr.run(main, procs=1)
    for c in counts:  # expected 1000 each, sd ~ 27
        assert 0.18 * n <= c <= 0.32 * n, counts


def test_contention_select_over_four_sends(procs):
    rounds = 20_000

    def main():
        chans = [Chan() for _ in range(4)]

        def receiver(ch):
            return list(ch)

        recvs = [gr.go(receiver, ch) for ch in chans]
        for k in range(rounds):
            i, v, ok = gr.select(*[Send(ch, k) for ch in chans])
            assert ok and 0 <= i < 4
        for ch in chans:
            ch.close()
        return [t.join() for t in recvs]

    per_chan = gr.run(main, procs=procs)
    flat = [v for r in per_chan for v in r]
    assert len(flat) == rounds
    assert sorted(flat) == list(range(rounds))
    for r in per_chan:  # each receiver sees its values in send order
        assert r == sorted(r)


def test_contention_many_selectors_many_channels(procs):
    """4 tasks select over Sends to 4 channels, 4 receivers select over Recvs."""
    per_sender = 2500

    def main():
        chans = [Chan(c) for c in (0, 0, 1, 8)]
        wg = gr.WaitGroup()
        wg.add(4)

        def sender(s):
            for k in range(per_sender):
                gr.select(*[Send(ch, (s, k)) for ch in chans])
            wg.done()

        def receiver():
            got, live = [], list(chans)
            while live:
                i, v, ok = gr.select(*[Recv(ch) for ch in live])
                if ok:
                    got.append(v)
                else:
                    live.pop(i)
            return got

        recvs = [gr.go(receiver) for _ in range(4)]
        for s in range(4):
            gr.go(sender, s)
        wg.wait()
        for ch in chans:
            ch.close()
        return [t.join() for t in recvs]

    flat = [v for r in gr.run(main, procs=procs) for v in r]
    assert len(flat) == 4 * per_sender
    assert collections.Counter(flat) == collections.Counter(
        (s, k) for s in range(4) for k in range(per_sender)
    )


def test_goless_both_ends_of_unbuffered_channel(procs):
    """goless bug: two tasks each select on both the send and the receive end of the
    same unbuffered channel; they must pair up instead of deadlocking."""

    def main():
        ch = Chan()

        def both(tag):
            return gr.select(Send(ch, tag), Recv(ch))

        t1 = gr.go(both, "t1")
        t2 = gr.go(both, "t2")
        r1, r2 = t1.join(), t2.join()
        return r1, r2

    for _ in range(50):
        r1, r2 = gr.run(main, procs=procs)
        # one sent, the other received what it sent
        assert {r1[0], r2[0]} == {0, 1}
        sent, recvd = (r1, r2) if r1[0] == 0 else (r2, r1)
        assert sent == (0, None, True)
        assert recvd[2] is True and recvd[1] in ("t1", "t2")
        assert recvd[1] == ("t1" if sent is r1 else "t2")


def test_select_with_itself_send_and_recv_same_chan_alone_deadlocks():
    # A single task cannot rendezvous with itself on an unbuffered channel.
    def main():
        ch = Chan()
        gr.select(Send(ch, 1), Recv(ch))

    with pytest.raises(gr.Deadlock):
        gr.run(main, procs=1)


def test_select_cancelled_while_parked(procs):
    def main():
        ch = Chan()
        t = gr.go(gr.select, Recv(ch), Send(ch, 1))
        gr.sleep(0.01)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        # The cancelled select left nothing behind: the channel is still usable.
        gr.go(ch.send, "after")
        return ch.recv()

    assert gr.run(main, procs=procs) == "after"


def test_after_in_select(procs):
    def main():
        never = Chan()
        return gr.select(Recv(never), Recv(gr.after(0.01)))

    i, v, ok = gr.run(main, procs=procs)
    assert i == 1 and ok and isinstance(v, float)


def test_duplicate_recv_cases_consume_one_value(procs):
    def main():
        ch = Chan()
        t = gr.go(gr.select, Recv(ch), Recv(ch))
        gr.sleep(0.01)
        ch.send(1)
        r = t.join()
        # The select's other (stale) waiter must not act as a receiver any more.
        return r, gr.select(Send(ch, 2), default=True)

    r, r2 = gr.run(main, procs=procs)
    assert r[1:] == (1, True) and r[0] in (0, 1)
    assert r2 == (-1, None, False)


def test_duplicate_send_cases_deliver_one_value(procs):
    def main():
        ch = Chan()
        t = gr.go(gr.select, Send(ch, "a"), Send(ch, "b"))
        gr.sleep(0.01)
        v = ch.recv()
        r = t.join()
        return v, r, gr.select(Recv(ch), default=True)

    v, r, r2 = gr.run(main, procs=procs)
    assert v == "ab"[r[0]] and r[1:] == (None, True)
    assert r2 == (-1, None, False)


def test_timed_out_and_cancelled_sends_release_value():
    import sys

    obj = object()
    base = sys.getrefcount(obj)

    def main():
        ch = Chan()
        for _ in range(50):
            gr.select(Send(ch, obj), timeout=0.0001)
        t = gr.go(ch.send, obj)
        gr.sleep(0.01)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        # the cancelled sender is no longer a partner
        return gr.select(Recv(ch), default=True)

    assert gr.run(main, procs=1) == (-1, None, False)
    assert sys.getrefcount(obj) == base


def test_tiny_timeouts_lose_nothing(procs):
    n = 2000

    def main():
        ch = Chan()

        def snd():
            for i in range(n):
                ch.send(i)
            ch.close()

        gr.go(snd)
        got = []
        while True:
            i, v, ok = gr.select(Recv(ch), timeout=0.00001)
            if i == 0 and not ok:
                return got
            if ok:
                got.append(v)

    assert gr.run(main, procs=procs) == list(range(n))


def test_a_select_with_a_ready_case_is_still_a_park_point_for_cancellation(grun):
    # select polls its cases before it parks; a pending cancel must still win over a
    # ready case, as it does for a plain send or receive.
    def main():
        ch = gr.Chan(1)
        ch.send("ready")
        started = gr.Event()

        def victim():
            started.set()
            gr.current().cancel()
            gr.select(gr.Recv(ch))

        t = gr.go(victim)
        started.wait()
        with pytest.raises(gr.Cancelled):
            t.join()
        return ch.recv()

    assert grun(main) == "ready"  # the value was not taken by the cancelled select


def test_select_poll_hands_a_value_to_a_parked_receiver_and_reports_closed(grun):
    def main():
        ch, closed = gr.Chan(), gr.Chan()
        closed.close()
        r = gr.go(ch.recv)
        gr.sleep(0.01)  # r is parked on ch
        assert gr.select(gr.Send(ch, 7), default=True) == (0, None, True)
        assert r.join() == 7
        assert gr.select(gr.Recv(None), gr.Recv(closed)) == (1, None, False)
        with pytest.raises(gr.ChanClosed):
            gr.select(gr.Send(closed, 1))
        return True

    assert grun(main)
