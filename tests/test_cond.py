"""Cond (Go's sync.Cond), BoundedSemaphore, the locks' context managers and Event.chan."""

import threading
import time

import pytest

import goroutines as gr


def test_signal_wakes_one_waiter_in_order(grun):
    def main():
        cond = gr.Cond()
        woken = []

        def waiter(i, holding):
            with cond.L:
                holding.set()  # and wait() queues it before it lets go of L
                cond.wait()
                woken.append(i)

        ts = []
        for i in range(3):
            holding = gr.Event()
            ts.append(gr.go(waiter, i, holding))
            holding.wait()  # the next waiter gets L only once this one is queued
        for n in range(1, 4):
            with cond.L:
                cond.signal()
            while len(woken) < n:
                gr.sleep(0.0005)
            assert len(woken) == n
        gr.gather(*ts)
        return woken

    assert grun(main) == [0, 1, 2]


def test_broadcast_wakes_every_waiter_and_each_holds_the_lock(grun):
    def main():
        cond = gr.Cond()
        state = {"go": False, "inside": 0, "most": 0}
        parked = gr.WaitGroup()
        parked.add(5)

        def waiter():
            with cond.L:
                parked.done()
                while not state["go"]:
                    cond.wait()
                state["inside"] += 1
                state["most"] = max(state["most"], state["inside"])
                gr.gosched()
                state["inside"] -= 1

        ts = [gr.go(waiter) for _ in range(5)]
        parked.wait()
        with cond.L:
            state["go"] = True
            cond.broadcast()
        gr.gather(*ts)
        return state["most"]

    assert grun(main) == 1


def test_wait_timeout_returns_false_and_relocks(grun):
    def main():
        cond = gr.Cond()
        with cond.L:
            assert cond.wait(timeout=0.002) is False
            assert cond.L.locked()
        with pytest.raises(ValueError):
            with cond.L:
                cond.wait(timeout=-1)

    grun(main)


def test_wait_without_the_lock_raises(grun):
    def main():
        cond = gr.Cond()
        with pytest.raises(RuntimeError, match="unlock"):
            cond.wait()
        cond.signal()  # nobody was left waiting

    grun(main)


def test_cancelled_waiter_gets_the_lock_back_and_the_next_signal_goes_on(grun):
    def main():
        cond = gr.Cond()
        got, held = [], []
        parked = gr.WaitGroup()
        parked.add(2)

        def waiter(i):
            with cond.L:
                parked.done()
                try:
                    cond.wait()
                except gr.Cancelled:
                    held.append(cond.L.locked())
                    raise
                got.append(i)

        a = gr.go(waiter, "a")
        gr.sleep(0.001)
        b = gr.go(waiter, "b")
        parked.wait()
        with cond.L:
            a.cancel()  # a needs the lock back before its Cancelled goes on
            gr.sleep(0.001)
            assert not a.done()
        with pytest.raises(gr.Cancelled):
            a.join()
        assert held == [True] and not cond.L.locked()
        with cond.L:
            cond.signal()  # a left the queue: b is woken
        b.join()
        return got

    assert grun(main) == ["b"]


def test_a_wakeup_that_wins_over_a_cancellation_is_kept(grun):
    # The grant wins the race: wait() returns, and the cancellation is raised at the next
    # park point, as for every wait of the runtime.
    def main():
        cond = gr.Cond()
        got = []

        holding = gr.Event()

        def waiter():
            with cond.L:
                holding.set()
                cond.wait()
                got.append("woken")
            gr.sleep(1)

        a = gr.go(waiter)
        holding.wait()
        with cond.L:  # taken once a is queued
            cond.signal()
            a.cancel()
        with pytest.raises(gr.Cancelled):
            a.join()
        return got

    assert grun(main) == ["woken"]


def test_cond_over_an_rwmutex_and_its_read_side(grun):
    def main():
        rw = gr.RWMutex()
        cw, cr = gr.Cond(rw), gr.Cond(rw.rlocker())
        flag = []

        def reader():
            with rw.read_lock():
                while not flag:
                    cr.wait()
            return "read"

        def writer():
            with rw.write_lock():
                while not flag:
                    cw.wait()
            return "wrote"

        r, w = gr.go(reader), gr.go(writer)
        gr.sleep(0.002)
        with rw:
            flag.append(1)
            cw.broadcast()
            cr.broadcast()
        return gr.gather(r, w)

    assert grun(main) == ["read", "wrote"]


def test_signal_from_a_plain_thread(grun):
    def main():
        cond = gr.Cond()
        woken = threading.Event()

        def signaller():  # until the task is woken: a signal before its wait is lost
            while not woken.is_set():
                cond.signal()
                time.sleep(0.001)

        th = threading.Thread(target=signaller)
        with cond.L:
            th.start()
            assert cond.wait(timeout=10)
        woken.set()
        gr.blocking(th.join)

    grun(main)


def test_cond_bad_lock_and_wait_outside_a_task():
    with pytest.raises(TypeError, match="Cond needs"):
        gr.Cond(threading.Lock())
    with pytest.raises(RuntimeError, match="from a task"):
        gr.Cond().wait()


# --------------------------------------------------------------------------- semaphores


def test_bounded_semaphore_refuses_extra_releases(grun):
    def main():
        sem = gr.BoundedSemaphore(2)
        assert isinstance(sem, gr.Semaphore)
        with sem:
            assert sem.available == 1
            assert sem.try_acquire() and not sem.try_acquire()
            sem.release()
        with pytest.raises(ValueError):
            sem.release()

    grun(main)


def test_semaphore_with_limits_concurrency(grun):
    def main():
        sem = gr.Semaphore(2)
        state = {"now": 0, "most": 0}

        def job():
            with sem:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
                gr.sleep(0.0005)
                state["now"] -= 1

        gr.gather(*[job] * 10)
        return state["most"]

    assert grun(main) == 2


def test_lock_context_managers_release_on_error(grun):
    def main():
        mu, rw = gr.Mutex(), gr.RWMutex()
        with pytest.raises(KeyError):
            with mu:
                raise KeyError
        assert not mu.locked()
        with pytest.raises(KeyError):
            with rw.read_lock():
                assert not rw.try_lock()
                raise KeyError
        with pytest.raises(KeyError):
            with rw.write_lock():
                assert not rw.try_rlock()
                raise KeyError
        assert rw.try_lock()
        rw.unlock()

    grun(main)


def test_every_lock_method_has_a_docstring():
    for cls in (gr.Mutex, gr.RWMutex, gr.Semaphore, gr.Cond, gr.Event, gr.WaitGroup, gr.Once):
        for name, member in vars(cls).items():
            if callable(member) and not name.startswith("_"):
                assert member.__doc__, f"{cls.__name__}.{name}"


# --------------------------------------------------------------------------- Event.chan


def test_event_chan_closes_on_set_and_renews_after_clear(grun):
    def main():
        ev = gr.Event()
        ch = ev.chan
        assert ch is ev.chan and not ch.closed
        waiter = gr.go(gr.select, gr.Recv(ch), gr.Recv(gr.Chan()))
        gr.sleep(0.001)
        ev.set()
        assert waiter.join() == (0, None, False)
        assert ev.chan is ch and ch.closed
        ev.set()  # again: nothing to close twice
        ev.clear()
        fresh = ev.chan
        assert fresh is not ch and not fresh.closed
        ev.set()
        assert fresh.closed

    grun(main)


def test_event_chan_made_after_set_is_closed():
    ev = gr.Event()
    ev.set()
    assert ev.chan.closed
