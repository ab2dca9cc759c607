"""after, Timer, Ticker and after_func: runtime timers feeding channels (Go 1.23 semantics),
their interplay with the scheduler (idle Ms, deadlock detection, shutdown) and their
error paths."""

import gc
import math
import random
import threading
import time
import tracemalloc
import weakref

import pytest
from hypothesis import given, settings, strategies as st

import goroutines as gr
from goroutines import Recv


def nothing_in(ch):
    """True if no value can be received from ch right now."""
    return gr.select(Recv(ch), default=True)[0] == -1


def poll(ch, seconds=0.02):
    """Wait up to `seconds` for a value from ch: the value, or None."""
    i, v, ok = gr.select(Recv(ch), timeout=seconds)
    return v if i == 0 else None


# --------------------------------------------------------------------------- firing


def test_timer_fires_once_with_the_time_on_the_monotonic_clock(grun):
    def main():
        t0 = time.monotonic()
        t = gr.Timer(0.01)
        v = t.chan.recv()
        return t0, v, time.monotonic(), poll(t.chan), t.stop()

    t0, v, t1, again, stopped = grun(main)
    assert isinstance(v, float) and t0 + 0.01 - 1e-6 <= v <= t1
    assert again is None  # exactly one value
    assert stopped is False  # fired and received: nothing left to stop


def test_after_fires_while_the_receiver_waits_and_is_not_a_deadlock(grun):
    # The only task waits on the channel: the timer is in the heap, so the runtime must
    # neither report a deadlock nor park forever.
    assert isinstance(grun(lambda: gr.after(0.02).recv()), float)


def test_select_with_after_as_timeout(grun):
    def main():
        never, ready = gr.Chan(), gr.Chan(1)
        timed_out = gr.select(Recv(never), Recv(gr.after(0.01)))
        ready.send("v")
        first = gr.select(Recv(ready), Recv(gr.after(30)))
        return timed_out, first

    timed_out, first = grun(main)
    assert timed_out[0] == 1 and timed_out[2] and isinstance(timed_out[1], float)
    assert first == (0, "v", True)


def test_expired_timer_not_waited_on_delivers_on_the_next_receive(grun):
    # Nobody waited: the timer was never in the heap, and fires lazily when received from.
    def main():
        t = gr.Timer(0.001)
        gr.sleep(0.01)
        got = gr.select(Recv(t.chan), default=True)
        return got, nothing_in(t.chan)

    (i, v, ok), empty = grun(main)
    assert i == 0 and ok and isinstance(v, float)
    assert empty


def test_len_of_an_expired_timer_channel_counts_its_value(grun):
    def main():
        ch = gr.after(0.001)
        gr.sleep(0.01)
        return len(ch)

    assert grun(main) == 1


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=8))
def test_timers_fire_in_deadline_order(delays_ms):
    """Property: a timer with an earlier deadline never carries a later fire time, and no
    timer fires before its deadline."""

    def main():
        bounds, cases = [], []
        for ms in delays_ms:
            t0 = time.monotonic()
            ch = gr.Timer(ms / 1000).chan
            bounds.append((t0 + ms / 1000, time.monotonic() + ms / 1000))
            cases.append(Recv(ch))
        fired = {}
        while len(fired) < len(cases):
            i, v, ok = gr.select(*cases)
            fired[i] = v
            cases[i] = Recv(None)
        return bounds, fired

    bounds, fired = gr.run(main, procs=1)
    for i, (earliest, _) in enumerate(bounds):
        assert fired[i] >= earliest - 1e-6
    for i, (_, latest_i) in enumerate(bounds):
        for j, (earliest_j, _) in enumerate(bounds):
            if latest_i < earliest_j:  # i's deadline is surely before j's
                assert fired[i] <= fired[j], (i, j, fired)


def test_many_timers_waited_on_both_ms_all_fire(procs):
    def main():
        def waiter(k):
            return gr.Timer(0.001 * (k % 7)).chan.recv()

        tasks = [gr.go(waiter, k) for k in range(200)]
        return [t.join() for t in tasks]

    values = gr.run(main, procs=procs)
    assert len(values) == 200 and all(isinstance(v, float) for v in values)


def test_idle_m_wakes_for_a_channel_timer_while_the_other_m_is_busy(go_elsewhere):
    # main keeps M0 busy without a park point: only M1, idle, can fire the timer its own
    # task waits on, so it must park with a timeout for it.
    def main():
        got = []
        ready = threading.Event()

        def waiter():
            ready.set()
            got.append(gr.Timer(0.02).chan.recv())

        go_elsewhere(waiter)
        ready.wait()
        t_end = time.monotonic() + 10
        while not got and time.monotonic() < t_end:
            pass
        return got

    assert len(gr.run(main, procs=2)) == 1


def test_after_func_runs_on_the_idle_m_while_the_other_is_busy():
    def main():
        ran = []
        gr.after_func(0.02, lambda: ran.append(threading.get_ident()))
        t_end = time.monotonic() + 10
        while not ran and time.monotonic() < t_end:
            pass  # M0 busy: the other M must fire it and run the task
        return ran, threading.get_ident()

    ran, main_thread = gr.run(main, procs=2)
    assert len(ran) == 1 and ran[0] != main_thread


# --------------------------------------------------------------------------- stop / reset


def test_timer_stop_before_it_fires(grun):
    def main():
        t = gr.Timer(0.01)
        stopped = t.stop()
        return stopped, poll(t.chan, 0.03), t.stop()

    assert grun(main) == (True, None, False)


def test_timer_stop_when_due_but_not_received_returns_true(grun):
    # Go 1.23: the program had not received the value, so Stop reports True.
    def main():
        t = gr.Timer(0.001)
        gr.sleep(0.01)
        return t.stop(), nothing_in(t.chan)

    assert grun(main) == (True, True)


def test_timer_stop_discards_a_value_already_in_the_channel(grun):
    # Go 1.23: after Stop returns, no stale value is received. len() runs the due timer,
    # so its value sits in the channel's buffer when stop() is called.
    def main():
        t = gr.Timer(0.001)
        gr.sleep(0.01)
        assert len(t.chan) == 1
        return t.stop(), nothing_in(t.chan)

    assert grun(main) == (True, True)


def test_timer_stop_discards_the_value_of_a_select_that_took_another_case(grun):
    # select runs every due timer of its cases, then completes one ready case: the timer's
    # value stays behind in its channel unless stop() revokes it.
    def main():
        results = []
        for _ in range(20):
            ready, t = gr.Chan(1), gr.Timer(0)
            ready.send(1)
            i = gr.select(Recv(ready), Recv(t.chan))[0]
            results.append((i, t.stop(), nothing_in(t.chan)))
        return results

    for i, stopped, empty in grun(main):
        assert empty
        assert stopped == (i == 0)  # True iff its value was not the one received


def test_timer_reset_discards_a_stale_value_and_rearms(grun):
    def main():
        t = gr.Timer(0.001)
        gr.sleep(0.01)
        assert len(t.chan) == 1  # fired into the buffer
        t_reset = time.monotonic()
        active = t.reset(0.02)
        stale = not nothing_in(t.chan)
        v = t.chan.recv()
        return active, stale, t_reset, v

    active, stale, t_reset, v = grun(main)
    assert active and not stale
    assert v >= t_reset + 0.02 - 1e-6


def test_timer_reset_after_stop_or_fire_rearms(grun):
    def main():
        t = gr.Timer(3600)
        t.stop()
        first = t.reset(0.005)  # stopped: not active
        v1 = t.chan.recv()
        second = t.reset(0.005)  # fired and received: not active
        v2 = t.chan.recv()
        return first, second, v2 > v1

    assert grun(main) == (False, False, True)


def test_timer_reset_while_a_task_waits_moves_its_deadline(grun):
    def main():
        t = gr.Timer(3600)
        waiter = gr.go(t.chan.recv)
        gr.sleep(0.01)  # waiter parked: the timer is in the heap at +1 h
        assert t.reset(0.01) is True
        return waiter.join()

    assert isinstance(grun(main), float)


def test_timer_reset_from_a_plain_thread_wakes_the_idle_runtime(procs):
    # Every M is idle, parked until the timer's old deadline (an hour away): the reset
    # from outside the scheduler must wake one so it re-computes its park timeout.
    def main():
        t = gr.Timer(3600)

        def other():
            time.sleep(0.05)
            t.reset(0.01)

        threading.Thread(target=other).start()
        return t.chan.recv()

    assert isinstance(gr.run(main, procs=procs), float)


def test_timer_stop_from_another_task_leaves_the_waiter_parked(go_elsewhere):
    def main():
        t, quit = gr.Timer(0.05), gr.Chan()
        waiter = gr.go(gr.select, Recv(t.chan), Recv(quit))
        stopped = go_elsewhere(t.stop).join()
        gr.sleep(0.1)  # well past the old deadline
        quit.close()
        return stopped, waiter.join()

    stopped, (i, _, _) = gr.run(main, procs=2)
    assert stopped is True and i == 1


def _stop_race(receive_blocking, stopper):
    """Timers due around now; the receivers take what fires while `stopper` stops them
    all. Each timer must end exactly once: received, or stop() returned True."""
    n = 200

    def main():
        timers = [gr.Timer(random.uniform(0, 0.004)) for _ in range(n)]
        received = [0] * n
        done = gr.Chan()

        def receiver(k):
            ch = timers[k].chan
            if receive_blocking:
                i, _, _ = gr.select(Recv(ch), Recv(done))
                received[k] += i == 0
            else:
                while True:
                    i, _, _ = gr.select(Recv(ch), Recv(done), default=True)
                    if i == 1:
                        return
                    received[k] += i == 0
                    # Parks, long enough that an M runs dry now and then and steals (at
                    # 0.2 ms, the hundred pollers a free-threaded M took kept it busy for
                    # good, and go_elsewhere's task never moved).
                    gr.sleep(0.001)

        receivers = [gr.go(receiver, k) for k in range(n)]
        stopped = stopper(timers)
        done.close()
        for t in receivers:
            t.join()
        for k in range(n):  # and nothing arrives afterwards
            received[k] += not nothing_in(timers[k].chan)
        return stopped, received

    return main


def _stop_from_thread(timers):
    out = []
    th = threading.Thread(target=lambda: out.extend(t.stop() for t in timers))
    gr.sleep(0.002)
    th.start()
    while th.is_alive():
        gr.sleep(0.001)
    return out


@pytest.mark.parametrize("blocking", [True, False], ids=["parked", "polling"])
def test_timer_stop_from_plain_thread_races_fire_without_loss_or_duplicate(procs, blocking):
    stopped, received = gr.run(_stop_race(blocking, _stop_from_thread), procs=procs)
    assert [s + r for s, r in zip(stopped, received, strict=True)] == [1] * len(received)


@pytest.mark.parametrize("blocking", [True, False], ids=["parked", "polling"])
def test_timer_stop_from_other_m_races_fire_without_loss_or_duplicate(blocking, go_elsewhere):
    def stopper(timers):
        gr.sleep(0.002)
        return go_elsewhere(lambda: [t.stop() for t in timers]).join()

    stopped, received = gr.run(_stop_race(blocking, stopper), procs=2)
    assert [s + r for s, r in zip(stopped, received, strict=True)] == [1] * len(received)


# --------------------------------------------------------------------------- Ticker


def test_ticker_gives_a_late_receiver_one_value_not_a_burst(grun):
    def main():
        tk = gr.Ticker(0.002)
        gr.sleep(0.03)  # about 15 ticks missed
        first = gr.select(Recv(tk.chan), default=True)
        burst = gr.select(Recv(tk.chan), default=True)
        later = [tk.chan.recv() for _ in range(3)]
        tk.stop()
        return first, burst, later

    first, burst, later = grun(main)
    assert first[0] == 0
    # The buffer holds one value: the second poll finds a tick only if one came due since.
    assert burst[0] == -1 or burst[1] > first[1]
    assert later == sorted(later) and len(set(later)) == 3


def test_ticker_stop_discards_a_tick_not_yet_received(grun):
    def main():
        tk = gr.Ticker(0.001)
        gr.sleep(0.01)
        tk.stop()
        return nothing_in(tk.chan), poll(tk.chan, 0.02)

    assert grun(main) == (True, None)


def test_ticker_reset_changes_the_period(grun):
    def main():
        tk = gr.Ticker(3600)
        t0 = time.monotonic()
        tk.reset(0.005)
        ticks = [tk.chan.recv() for _ in range(3)]
        interval = tk.interval
        tk.stop()
        return t0, ticks, interval

    t0, ticks, interval = grun(main)
    assert interval == 0.005
    assert ticks[0] >= t0 + 0.005 - 1e-6 and ticks == sorted(ticks)


def test_ticker_reset_after_stop_restarts_it(grun):
    def main():
        tk = gr.Ticker(0.001)
        tk.stop()
        tk.reset(0.002)
        v = tk.chan.recv()
        tk.stop()
        return v

    assert isinstance(grun(main), float)


def test_ticker_channel_iteration(grun):
    def main():
        tk = gr.Ticker(0.001)
        got = []
        for v in tk.chan:
            got.append(v)
            if len(got) == 3:
                break
        tk.stop()
        return got

    assert len(grun(main)) == 3


# --------------------------------------------------------------------------- after_func


def test_after_func_runs_fn_in_a_new_task_with_its_arguments(grun):
    def main():
        out = gr.Chan(1)
        me = gr.current()
        gr.after_func(0.005, lambda a, b=0: out.send((a, b, gr.current() is not me)), 1, b=2)
        return out.recv()

    assert grun(main) == (1, 2, True)


def test_after_func_stop_cancels_the_call(grun):
    def main():
        ran = []
        t = gr.after_func(0.01, ran.append, 1)
        assert t.chan is None
        stopped = t.stop()
        gr.sleep(0.03)
        return stopped, ran, t.stop()

    assert grun(main) == (True, [], False)


def test_after_func_stop_after_it_ran_returns_false_and_reset_runs_it_again(grun):
    def main():
        ran = gr.Chan(2)
        t = gr.after_func(0.001, ran.send, "x")
        ran.recv()
        stopped = t.stop()
        active = t.reset(0.001)
        return stopped, active, ran.recv()

    assert grun(main) == (False, False, "x")


def test_after_func_unreferenced_still_runs(grun):
    def main():
        done = gr.Chan()
        gr.after_func(0.01, done.close)
        gc.collect()
        for _ in done:
            pass
        return "ok"

    # main waits on a channel only the pending function can close: not a deadlock.
    assert grun(main) == "ok"


def test_after_func_from_a_plain_thread(grun):
    def main():
        done = gr.Chan()
        th = threading.Thread(target=gr.after_func, args=(0.005, done.close))
        th.start()
        th.join()
        for _ in done:
            pass
        return "ok"

    assert grun(main) == "ok"


def test_after_func_failure_is_reported_not_fatal(grun, caplog):
    def boom():
        raise ValueError("boom")

    def main():
        gr.after_func(0.001, boom)
        gr.sleep(0.02)
        gc.collect()
        return "ok"

    assert grun(main) == "ok"
    reports = [r for r in caplog.records if "was never retrieved" in r.getMessage()]
    assert [str(r.exc_info[1]) for r in reports] == ["boom"]


# --------------------------------------------------------------------------- deadlock


def test_unreferenced_armed_timer_does_not_hide_a_deadlock(grun):
    def main():
        gr.after(3600)
        gr.Timer(3600)
        gr.Ticker(3600)
        gr.Chan().recv()

    with pytest.raises(gr.Deadlock):
        grun(main)


def test_referenced_timer_nobody_waits_on_does_not_hide_a_deadlock(grun):
    # Go 1.23: a channel timer counts only while a task is blocked on its channel.
    def main():
        t = gr.Timer(3600)
        gr.Chan().recv()
        t.stop()

    with pytest.raises(gr.Deadlock):
        grun(main)


def test_waiting_on_a_stopped_timer_is_a_deadlock(grun):
    def main():
        t = gr.Timer(0.01)
        t.stop()
        t.chan.recv()

    with pytest.raises(gr.Deadlock, match="chan receive"):
        grun(main)


def test_waiting_on_a_timer_that_never_fires_is_a_deadlock(grun):
    with pytest.raises(gr.Deadlock, match="select"):
        grun(lambda: gr.select(Recv(gr.Chan()), Recv(gr.after(math.inf))))


def test_cancelled_timer_waiter_does_not_hide_a_later_deadlock(grun):
    # The cancelled waiter must take its timer out of the heap again.
    def main():
        t = gr.Timer(3600)
        waiter = gr.go(t.chan.recv)
        gr.sleep(0.01)
        waiter.cancel()
        with pytest.raises(gr.Cancelled):
            waiter.join()
        gr.Chan().recv()

    with pytest.raises(gr.Deadlock):
        grun(main)


def test_cancelled_select_on_a_timer_leaves_the_timer_usable(grun):
    def main():
        t = gr.Timer(3600)
        waiter = gr.go(gr.select, Recv(gr.Chan()), Recv(t.chan))
        gr.sleep(0.01)
        waiter.cancel()
        with pytest.raises(gr.Cancelled):
            waiter.join()
        t.reset(0.005)
        return t.chan.recv()

    assert isinstance(grun(main), float)


# --------------------------------------------------------------------------- lifetime


def test_after_in_select_loop_does_not_leak_tasks_or_memory():
    """The bug: after() started a task per call, so 100k iterations of this loop left
    100,001 live tasks and +629 MiB."""
    n = 100_000

    def main():
        ch = gr.Chan(1)

        def step(i):
            ch.send(i)
            assert gr.select(Recv(ch), Recv(gr.after(30)))[0] == 0

        for i in range(1000):  # warm up caches and free lists
            step(i)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(n):
                step(i)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        return gr.num_tasks(), grown

    live, grown = gr.run(main, procs=1)
    assert live == 1
    assert grown < 256 * 1024, grown


def test_unreferenced_armed_timers_are_freed(grun):
    def main():
        refs = [
            weakref.ref(gr.Timer(3600)),
            weakref.ref(gr.Ticker(0.001)),
            weakref.ref(gr.after(3600)),
        ]
        t = gr.Timer(0.001)  # waited on once (in the heap meanwhile), then dropped
        t.chan.recv()
        t.reset(3600)
        refs.append(weakref.ref(t))
        refs.append(weakref.ref(t.chan))
        del t
        return [r() is None for r in refs]

    assert grun(main) == [True] * 5


def test_after_func_timer_is_freed_once_it_ran_or_the_run_ended(grun):
    def main():
        ran = gr.Chan(1)
        fired = weakref.ref(gr.after_func(0.001, ran.send, 1))
        ran.recv()
        gr.sleep(0.001)  # let the task that ran it finish
        gc.collect()
        pending = weakref.ref(gr.after_func(3600, print))
        gc.collect()
        return fired() is None, pending() is not None, pending

    freed, kept, pending = grun(main)
    assert freed and kept  # a pending function timer is kept by the heap
    gc.collect()
    assert pending() is None  # run() dropped it


def test_timers_left_at_the_end_of_a_run_never_fire():
    ran = []

    def first():
        gr.after_func(0.01, ran.append, 1)
        return gr.Timer(0.01)

    t = gr.run(first, procs=1)

    def second():
        gr.sleep(0.03)
        return nothing_in(t.chan), t.stop()

    assert gr.run(second, procs=1) == (True, False)
    assert ran == []


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make",
    [gr.after, gr.Timer, gr.Ticker, lambda s: gr.after_func(s, print)],
    ids=["after", "Timer", "Ticker", "after_func"],
)
def test_timer_constructors_reject_bad_durations(grun, make):
    def main():
        for bad, exc in [(None, TypeError), ("1", TypeError), (True, TypeError),
                         (-1, ValueError), (math.nan, ValueError)]:
            with pytest.raises(exc):
                make(bad)
        return True

    assert grun(main)


def test_ticker_rejects_a_zero_interval(grun):
    def main():
        with pytest.raises(ValueError, match="positive"):
            gr.Ticker(0)
        tk = gr.Ticker(1)
        with pytest.raises(ValueError, match="positive"):
            tk.reset(0)
        with pytest.raises(TypeError):
            tk.reset(None)
        with pytest.raises(ValueError):
            tk.reset(-1)
        assert tk.interval == 1  # unchanged by the failed resets
        return True

    assert grun(main)


def test_timer_reset_rejects_bad_durations_and_keeps_the_timer(grun):
    def main():
        t = gr.Timer(0.005)
        with pytest.raises(TypeError):
            t.reset(None)
        with pytest.raises(ValueError):
            t.reset(-0.5)
        return t.chan.recv()

    assert isinstance(grun(main), float)


def test_after_func_rejects_a_non_callable(grun):
    def main():
        with pytest.raises(TypeError, match="callable"):
            gr.after_func(1, 42)
        return True

    assert grun(main)


def test_timers_outside_a_run_raise(foreign_thread_errors):
    calls = [lambda: gr.after(1), lambda: gr.Timer(1), lambda: gr.Ticker(1),
             lambda: gr.after_func(1, print)]
    for call in calls:
        with pytest.raises(RuntimeError, match="under goroutines.run"):
            call()
    assert len(foreign_thread_errors(*calls)) == len(calls)


def test_timer_from_an_ended_run_can_be_stopped_but_not_reset():
    t = gr.run(lambda: gr.Timer(3600), procs=1)
    assert t.stop() is False  # the run dropped it
    with pytest.raises(RuntimeError, match="under goroutines.run"):
        t.reset(1)


def test_uninitialised_timer_and_ticker_raise():
    t, tk = gr.Timer.__new__(gr.Timer), gr.Ticker.__new__(gr.Ticker)
    for call in (t.stop, lambda: t.reset(1), tk.stop, lambda: tk.reset(1)):
        with pytest.raises(RuntimeError, match="not initialised"):
            call()


def test_timer_and_ticker_cannot_be_initialised_twice(grun):
    def main():
        t, tk = gr.Timer(3600), gr.Ticker(3600)
        with pytest.raises(RuntimeError, match="already initialised"):
            t.__init__(1)
        with pytest.raises(RuntimeError, match="already initialised"):
            tk.__init__(1)
        return True

    assert grun(main)
