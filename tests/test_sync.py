"""Sync primitives: Mutex, RWMutex, WaitGroup, Once, Semaphore, Event, TaskGroup,
after, Ticker, and deadlock detection of tasks parked on them."""

import sys
import threading
import time

import pytest

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

import goroutines as gr

# --------------------------------------------------------------------------- Mutex


def test_mutex_mutual_exclusion_counter(procs):
    n_tasks, iters = 8, 500

    def main():
        mu = gr.Mutex()
        state = {"count": 0, "inside": 0, "max_inside": 0}

        def worker():
            for _ in range(iters):
                with mu:
                    state["inside"] += 1
                    state["max_inside"] = max(state["max_inside"], state["inside"])
                    c = state["count"]
                    gr.gosched()  # invite a race: another task runs here
                    state["count"] = c + 1
                    state["inside"] -= 1

        tasks = [gr.go(worker) for _ in range(n_tasks)]
        for t in tasks:
            t.join()
        return state

    state = gr.run(main, procs=procs)
    assert state["count"] == n_tasks * iters
    assert state["max_inside"] == 1


def test_mutex_try_lock_and_locked():
    def main():
        mu = gr.Mutex()
        assert not mu.locked()
        assert mu.try_lock()
        assert mu.locked()
        assert not mu.try_lock()
        mu.unlock()
        assert not mu.locked()
        return True

    assert gr.run(main, procs=1)


def test_mutex_unlock_unlocked():
    def main():
        mu = gr.Mutex()
        with pytest.raises(RuntimeError):
            mu.unlock()
        mu.lock()
        mu.unlock()
        with pytest.raises(RuntimeError):
            mu.unlock()
        return True

    assert gr.run(main, procs=1)


def test_mutex_context_manager_releases_on_error():
    def main():
        mu = gr.Mutex()
        with pytest.raises(KeyError):
            with mu:
                raise KeyError
        return mu.locked()

    assert gr.run(main, procs=1) is False


def test_mutex_unlocked_by_another_task_wakes_waiter(procs):
    def main():
        mu = gr.Mutex()
        mu.lock()
        t = gr.go(lambda: (mu.lock(), "got")[1])
        gr.sleep(0.01)
        assert not t.done()
        gr.go(mu.unlock).join()  # any task may unlock
        return t.join()

    assert gr.run(main, procs=procs) == "got"


def test_deadlock_mutex_double_lock(procs):
    def main():
        mu = gr.Mutex()
        mu.lock()
        mu.lock()

    with pytest.raises(gr.Deadlock):
        gr.run(main, procs=procs)


# --------------------------------------------------------------------------- RWMutex


def test_rwmutex_readers_concurrent(procs):
    n = 5

    def main():
        rw = gr.RWMutex()
        inside = gr.WaitGroup()
        inside.add(n)
        release = gr.Event()

        def reader():
            with rw.rlocker():
                inside.done()
                release.wait()  # all n readers must be inside at once to get past here

        tasks = [gr.go(reader) for _ in range(n)]
        assert inside.wait(timeout=30)
        assert not rw.try_lock()  # readers hold it: no writer
        assert rw.try_rlock()  # one more reader is fine
        rw.runlock()
        release.set()
        for t in tasks:
            t.join()
        assert rw.try_lock()
        rw.unlock()
        return True

    assert gr.run(main, procs=procs)


def test_rwmutex_writer_exclusive(procs):
    def main():
        rw = gr.RWMutex()
        state = {"readers": 0, "writers": 0, "bad": 0, "writes": 0}
        # Readers share the RWMutex, so on a free-threaded build their counts change in
        # parallel: a += there is a read and a write that another M can come between.
        counts = threading.Lock()

        def add(key, n):
            with counts:
                state[key] += n

        def writer():
            for _ in range(200):
                with rw:
                    add("writers", 1)
                    if state["writers"] != 1 or state["readers"] != 0:
                        add("bad", 1)
                    gr.gosched()
                    add("writes", 1)
                    add("writers", -1)

        def reader():
            for _ in range(200):
                rw.rlock()
                add("readers", 1)
                if state["writers"] != 0:
                    add("bad", 1)
                gr.gosched()
                add("readers", -1)
                rw.runlock()

        tasks = [gr.go(writer) for _ in range(2)] + [gr.go(reader) for _ in range(4)]
        for t in tasks:
            t.join()
        return state

    state = gr.run(main, procs=procs)
    assert state["bad"] == 0
    assert state["writes"] == 400


def test_rwmutex_try_and_errors():
    def main():
        rw = gr.RWMutex()
        with pytest.raises(RuntimeError):
            rw.unlock()
        with pytest.raises(RuntimeError):
            rw.runlock()
        assert rw.try_lock()
        assert not rw.try_lock()
        assert not rw.try_rlock()
        rw.unlock()
        assert rw.try_rlock()
        assert not rw.try_lock()
        rw.runlock()
        with pytest.raises(RuntimeError):
            rw.runlock()
        rl = rw.rlocker()
        rl.lock()
        assert not rw.try_lock()
        rl.unlock()
        return True

    assert gr.run(main, procs=1)


def test_rwmutex_writer_preferred(procs):
    """With a writer waiting, new readers wait behind it (as Go's RWMutex)."""

    def main():
        rw = gr.RWMutex()
        order = []
        rw.rlock()
        w = gr.go(lambda: (rw.lock(), order.append("w"), rw.unlock()))
        gr.sleep(0.01)
        assert not rw.try_rlock()  # a writer is pending
        r = gr.go(lambda: (rw.rlock(), order.append("r"), rw.runlock()))
        gr.sleep(0.01)
        rw.runlock()
        w.join()
        r.join()
        return order

    assert gr.run(main, procs=procs) == ["w", "r"]


def test_deadlock_rwmutex_write_after_read():
    def main():
        rw = gr.RWMutex()
        rw.rlock()
        rw.lock()

    with pytest.raises(gr.Deadlock):
        gr.run(main, procs=1)


# --------------------------------------------------------------------------- WaitGroup


def test_waitgroup_waits_for_all(procs):
    def main():
        wg = gr.WaitGroup()
        done = []

        def work(i):
            gr.sleep(0.001 * (i % 3))
            done.append(i)
            wg.done()

        for i in range(50):
            wg.add()
            gr.go(work, i)
        assert wg.wait() is True
        assert wg.count == 0
        return sorted(done)

    assert gr.run(main, procs=procs) == list(range(50))


def test_waitgroup_errors_and_count():
    def main():
        wg = gr.WaitGroup()
        with pytest.raises(ValueError):
            wg.done()
        with pytest.raises(ValueError):
            wg.add(-1)
        with pytest.raises(TypeError):
            wg.add(1.0)
        with pytest.raises(TypeError):
            wg.add(True)
        wg.add(3)
        assert wg.count == 3
        wg.add(-2)
        assert wg.count == 1
        with pytest.raises(ValueError):
            wg.add(-2)
        wg.done()
        assert wg.wait(timeout=0) is True  # zero: returns at once
        return True

    assert gr.run(main, procs=1)


def test_waitgroup_wait_timeout(procs):
    def main():
        wg = gr.WaitGroup()
        wg.add()
        r = wg.wait(timeout=0.01)
        wg.done()
        return r, wg.wait(timeout=0.01)

    assert gr.run(main, procs=procs) == (False, True)


def test_deadlock_waitgroup_wait(procs):
    def main():
        wg = gr.WaitGroup()
        wg.add(2)
        gr.go(wg.done)
        wg.wait()

    with pytest.raises(gr.Deadlock):
        gr.run(main, procs=procs)


# --------------------------------------------------------------------------- Once


def test_once_runs_once_across_50_tasks(procs):
    def main():
        once = gr.Once()
        calls = []

        def init():
            calls.append(1)
            gr.sleep(0.005)  # others arrive meanwhile and must wait

        def user():
            once.do(init)
            return len(calls)  # init has finished by the time do returns

        tasks = [gr.go(user) for _ in range(50)]
        return len(calls), [t.join() for t in tasks]

    _, seen = gr.run(main, procs=procs)
    assert seen == [1] * 50


def test_once_args_and_raise_counts():
    def main():
        once = gr.Once()
        with pytest.raises(ZeroDivisionError):
            once.do(lambda: 1 / 0)
        called = []
        once.do(called.append, 1)  # the raising call counted
        once2 = gr.Once()
        once2.do(lambda a, b=0: called.append(a + b), 2, b=3)
        once2.do(called.append, 99)
        return called

    assert gr.run(main, procs=1) == [5]


# --------------------------------------------------------------------------- Semaphore


def test_semaphore_bounds_concurrency(procs):
    limit = 3

    def main():
        sem = gr.Semaphore(limit)
        state = {"inside": 0, "max": 0}
        mu = gr.Mutex()

        def worker():
            for _ in range(20):
                with sem:
                    with mu:
                        state["inside"] += 1
                        state["max"] = max(state["max"], state["inside"])
                    gr.gosched()
                    with mu:
                        state["inside"] -= 1

        tasks = [gr.go(worker) for _ in range(10)]
        for t in tasks:
            t.join()
        assert sem.available == limit
        return state["max"]

    m = gr.run(main, procs=procs)
    assert 1 <= m <= limit


def test_semaphore_acquire_timeout_and_errors():
    def main():
        sem = gr.Semaphore(2)
        assert sem.available == 2
        assert sem.acquire() is True
        assert sem.acquire(timeout=0.01) is True
        assert sem.available == 0
        assert sem.acquire(timeout=0.01) is False
        assert sem.acquire(timeout=0) is False
        sem.release()
        sem.release()
        with pytest.raises(ValueError):
            sem.release()
        return True

    assert gr.run(main, procs=1)
    with pytest.raises(ValueError):
        gr.Semaphore(-1)
    with pytest.raises(TypeError):
        gr.Semaphore(1.5)


def test_semaphore_release_wakes_waiter(procs):
    def main():
        sem = gr.Semaphore(1)
        sem.acquire()
        t = gr.go(sem.acquire)
        gr.sleep(0.01)
        assert not t.done()
        sem.release()
        return t.join()

    assert gr.run(main, procs=procs) is True


def test_deadlock_semaphore():
    def main():
        sem = gr.Semaphore(0)
        sem.acquire()

    with pytest.raises(gr.Deadlock):
        gr.run(main, procs=1)


# --------------------------------------------------------------------------- Event


def test_event_wakes_all_waiters(procs):
    n = 50

    def main():
        ev = gr.Event()
        tasks = [gr.go(ev.wait) for _ in range(n)]
        gr.sleep(0.01)
        assert not any(t.done() for t in tasks)
        ev.set()
        return [t.join() for t in tasks]

    assert gr.run(main, procs=procs) == [True] * n


def test_event_set_clear_is_set_timeout():
    def main():
        ev = gr.Event()
        assert not ev.is_set()
        assert ev.wait(timeout=0.01) is False
        assert ev.wait(timeout=0) is False
        ev.set()
        ev.set()  # idempotent
        assert ev.is_set()
        assert ev.wait() is True
        assert ev.wait(timeout=0) is True
        ev.clear()
        assert not ev.is_set()
        assert ev.wait(timeout=0.01) is False
        ev.clear()  # idempotent
        ev.set()
        return ev.is_set()

    assert gr.run(main, procs=1)


def test_deadlock_event_wait():
    with pytest.raises(gr.Deadlock):
        gr.run(lambda: gr.Event().wait(), procs=1)


# --------------------------------------------------------------------------- TaskGroup


def test_taskgroup_waits_for_all(procs):
    def main():
        results = []
        with gr.TaskGroup() as tg:
            ts = [tg.go(lambda i=i: (gr.sleep(0.001), results.append(i), i)[2]) for i in range(20)]
        assert all(t.done() for t in ts)
        return sorted(results), [t.result() for t in ts]

    res, rets = gr.run(main, procs=procs)
    assert res == list(range(20)) and rets == list(range(20))


def test_taskgroup_first_failure_cancels_rest(procs):
    def main():
        cancelled = []

        def slow():
            try:
                gr.sleep(30)
            except gr.Cancelled:
                cancelled.append(1)
                raise

        def bad():
            gr.sleep(0.005)
            raise ValueError("boom")

        with pytest.raises(ExceptionGroup) as ei:
            with gr.TaskGroup() as tg:
                for _ in range(5):
                    tg.go(slow)
                tg.go(bad)
        return ei.value, len(cancelled)

    eg, n_cancelled = gr.run(main, procs=procs)
    assert n_cancelled == 5
    assert len(eg.exceptions) == 1
    assert isinstance(eg.exceptions[0], ValueError)


def test_taskgroup_multiple_failures_grouped():
    def main():
        def fail(exc):
            raise exc

        with pytest.raises(ExceptionGroup) as ei:
            with gr.TaskGroup() as tg:
                tg.go(fail, KeyError("a"))
                tg.go(fail, IndexError("b"))
        return ei.value

    eg = gr.run(main, procs=1)
    # The first task to fail cancels the other, which may not have run yet (the
    # scheduler's run order is not FIFO), so one or both failures are reported.
    types = [type(e) for e in eg.exceptions]
    assert 1 <= len(types) <= 2
    assert set(types) <= {KeyError, IndexError}


def test_taskgroup_body_error_cancels_tasks():
    def main():
        with pytest.raises(ExceptionGroup) as ei:
            with gr.TaskGroup() as tg:
                t = tg.go(gr.sleep, 30)
                raise RuntimeError("body")
        return ei.value, t.cancelled()

    eg, cancelled = gr.run(main, procs=1)
    assert cancelled
    assert [type(e) for e in eg.exceptions] == [RuntimeError]


class _Stop(BaseException):
    pass


def test_taskgroup_base_exception_group():
    def main():
        def stop():
            raise _Stop

        with pytest.raises(BaseExceptionGroup) as ei:
            with gr.TaskGroup() as tg:
                tg.go(stop)
        return ei.value

    eg = gr.run(main, procs=1)
    assert not isinstance(eg, ExceptionGroup)
    assert isinstance(eg.exceptions[0], _Stop)


def test_keyboardinterrupt_in_taskgroup_aborts_run():
    # KeyboardInterrupt/SystemExit in any task stop the whole run (core design), so
    # they surface from run() itself rather than as a BaseExceptionGroup.
    def main():
        with gr.TaskGroup() as tg:
            tg.go(lambda: (_ for _ in ()).throw(KeyboardInterrupt))
            tg.go(gr.sleep, 30)

    with pytest.raises(KeyboardInterrupt):
        gr.run(main, procs=1)


def test_taskgroup_tasks_spawning_tasks():
    def main():
        seen = []
        with gr.TaskGroup() as tg:
            def child(d):
                gr.sleep(0.001)
                seen.append(d)
                if d < 4:
                    tg.go(child, d + 1)
            tg.go(child, 0)
        return seen

    assert gr.run(main, procs=1) == [0, 1, 2, 3, 4]


def _owner_and_child(go_child, owner_body_parks):
    """An owner task with one TaskGroup child that sleeps until cancelled and then takes a
    while to clean up; the log tells what happened in which order."""
    log = []

    def child():
        try:
            gr.sleep(1000)
        except gr.Cancelled:
            # A slow cleanup, which the owner must still wait for. Not a park: a cancelled
            # task stays cancelled, and each of its park points raises Cancelled again.
            time.sleep(0.01)
            log.append("child cleaned up")
            raise

    def owner():
        try:
            with gr.TaskGroup() as tg:
                log.append(go_child(tg, child))
                if owner_body_parks:
                    gr.sleep(1000)
        finally:
            log.append(("owner leaves", log[0].done()))

    return owner, log


def _until_parked_on(t, what):
    while f"parked on {what}" not in repr(t):
        gr.sleep(0.001)


def _go_child_here(tg, child):
    return tg.go(child)


def test_taskgroup_owner_cancelled_at_exit_waits_for_children_and_reraises_cancelled(procs):
    # The owner's Cancelled used to be swallowed by the join in __exit__, which went on to
    # ask the unfinished child for its exception(): RuntimeError, and the child orphaned.
    owner, log = _owner_and_child(_go_child_here, owner_body_parks=False)

    def main():
        o = gr.go(owner)
        _until_parked_on(o, "join")  # in __exit__, waiting for the child
        o.cancel()
        with pytest.raises(gr.Cancelled):
            o.join()
        return o.cancelled(), log[0].cancelled()

    assert gr.run(main, procs=procs) == (True, True)
    assert log[1:] == ["child cleaned up", ("owner leaves", True)]


def test_taskgroup_owner_cancelled_in_the_body_cancels_the_children(procs):
    # The children used to run on: only a failure cancelled them, not the owner's Cancelled.
    owner, log = _owner_and_child(_go_child_here, owner_body_parks=True)

    def main():
        o = gr.go(owner)
        _until_parked_on(o, "sleep")
        o.cancel()
        with pytest.raises(gr.Cancelled):
            o.join()
        return o.cancelled(), log[0].cancelled()

    assert gr.run(main, procs=procs) == (True, True)
    assert log[1:] == ["child cleaned up", ("owner leaves", True)]


def _go_child_on_the_other_m(tg, child):
    # conftest's go_elsewhere, for tg.go: this M spins, so only the other M can start it.
    here, ran_on = threading.get_ident(), []

    def pinned():
        ran_on.append(threading.get_ident())
        return child()

    t = tg.go(pinned)
    while not ran_on:  # no park point; sleeping lets the other M take the GIL and t
        time.sleep(0.0002)
    assert ran_on[0] != here
    return t


@pytest.mark.parametrize("owner_body_parks", [False, True], ids=["at-exit", "in-body"])
def test_taskgroup_owner_cancelled_cancels_a_child_on_the_other_m(owner_body_parks):
    # The cancel, the child's cleanup and the owner's wake-up all cross threads.
    owner, log = _owner_and_child(_go_child_on_the_other_m, owner_body_parks)

    def main():
        o = gr.go(owner)
        _until_parked_on(o, "sleep" if owner_body_parks else "join")
        o.cancel()
        with pytest.raises(gr.Cancelled):
            o.join()
        return o.cancelled(), log[0].cancelled()

    assert gr.run(main, procs=2) == (True, True)
    assert log[1:] == ["child cleaned up", ("owner leaves", True)]


def test_taskgroup_owner_cancelled_while_a_child_fails_raises_the_exception_group():
    def child():
        try:
            gr.sleep(1000)
        except gr.Cancelled:
            raise ValueError("failed while cancelled") from None

    def owner():
        with gr.TaskGroup() as tg:
            tg.go(child)
            gr.sleep(1000)

    def main():
        o = gr.go(owner)
        _until_parked_on(o, "sleep")
        o.cancel()
        with pytest.raises(ExceptionGroup) as ei:
            o.join()
        return [type(e) for e in ei.value.exceptions]

    assert gr.run(main, procs=1) == [ValueError]


def test_taskgroup_owner_cancel_reaches_children_started_after_it():
    def main():
        started = []

        def late(tg):
            try:
                gr.sleep(1000)
            except gr.Cancelled:  # by the owner's cancellation, which it outlives
                started.append(tg.go(gr.sleep, 1000))

        with pytest.raises(gr.Cancelled):
            with gr.TaskGroup() as tg:
                tg.go(late, tg)
                gr.sleep(0)  # late starts and parks
                gr.current().cancel()  # pending: delivered at the end of the block
        return started[0].cancelled()

    assert gr.run(main, procs=1)


def test_taskgroup_go_after_the_block_ended_raises():
    # tg.go() after __exit__ used to start a task nobody would wait for.
    def main():
        with gr.TaskGroup() as tg:
            tg.go(int)
        with pytest.raises(RuntimeError, match=r"TaskGroup.go\(\) after the group's block"):
            tg.go(int)
        return gr.num_tasks()  # nothing was started

    assert gr.run(main, procs=1) == 1


def test_taskgroup_go_before_the_block_is_entered_raises():
    def main():
        tg = gr.TaskGroup()
        with pytest.raises(RuntimeError, match=r"TaskGroup.go\(\) before the group was entered"):
            tg.go(int)
        return gr.num_tasks()

    assert gr.run(main, procs=1) == 1


def test_taskgroup_entered_twice_raises():
    def main():
        tg = gr.TaskGroup()
        with tg:
            pass
        with pytest.raises(RuntimeError, match="entered only once"):
            with tg:
                pass
        return True

    assert gr.run(main, procs=1)


def test_taskgroup_waiting_for_a_stuck_child_still_ends_in_deadlock(procs):
    # The owner's wait takes no cancellation: the deadlock's cancel must still end it.
    def main():
        with gr.TaskGroup() as tg:
            tg.go(gr.Chan().recv)

    with pytest.raises(gr.Deadlock):
        gr.run(main, procs=procs)


def test_taskgroup_owner_waiting_at_shutdown_lets_run_return(procs):
    done = []

    def owner():
        try:
            with gr.TaskGroup() as tg:
                t = tg.go(gr.sleep, 1000)
        finally:
            done.append(t.cancelled())

    def main():
        gr.go(owner)
        gr.sleep(0.01)
        return "main done"

    assert gr.run(main, procs=procs) == "main done"
    assert done == [True]


# --------------------------------------------------------------------------- after / Ticker


def test_after_delivers_one_value(procs):
    import time

    def main():
        t0 = time.monotonic()
        ch = gr.after(0.01)
        v = ch.recv()
        assert isinstance(v, float) and v >= t0
        # exactly one value
        return gr.select(gr.Recv(ch), timeout=0.02)

    assert gr.run(main, procs=procs) == (-1, None, False)


def test_after_bad_args():
    def main():
        with pytest.raises((ValueError, TypeError)):
            gr.after(-1)
        with pytest.raises(TypeError):
            gr.after([1])
        return True

    assert gr.run(main, procs=1)


def test_ticker_delivers_and_stops(procs):
    def main():
        tk = gr.Ticker(0.002)
        ticks = [tk.chan.recv() for _ in range(3)]
        tk.stop()
        gr.sleep(0.01)
        # after stop at most one buffered tick remains, then nothing more
        drained = 0
        while gr.select(gr.Recv(tk.chan), default=True)[0] == 0:
            drained += 1
        late = gr.select(gr.Recv(tk.chan), timeout=0.02)
        return ticks, drained, late

    ticks, drained, late = gr.run(main, procs=procs)
    assert ticks == sorted(ticks) and len(set(ticks)) == 3
    assert drained <= 1
    assert late == (-1, None, False)


def test_ticker_bad_interval():
    def main():
        with pytest.raises(ValueError):
            gr.Ticker(0)
        with pytest.raises((ValueError, TypeError)):
            gr.Ticker(-1)
        return True

    assert gr.run(main, procs=1)


def test_ticker_not_stopped_does_not_block_run_exit():
    # main returns while the ticker task sleeps: run() cancels it and returns.
    def main():
        tk = gr.Ticker(0.001)
        tk.chan.recv()
        return "done"

    assert gr.run(main, procs=1) == "done"


# --------------------------------------------------------------------------- deadlock on channels


def test_deadlock_channel_recv_and_send(procs):
    with pytest.raises(gr.Deadlock):
        gr.run(lambda: gr.Chan().recv(), procs=procs)
    with pytest.raises(gr.Deadlock):
        gr.run(lambda: gr.Chan().send(1), procs=procs)

    def main():  # every task parked on a channel
        a, b = gr.Chan(), gr.Chan()
        gr.go(a.recv)
        gr.go(lambda: b.send(1) if False else a.recv())
        b.recv()

    with pytest.raises(gr.Deadlock):
        gr.run(main, procs=procs)


def test_deadlock_mixed_primitives(procs):
    def main():
        mu, ev, wg, ch = gr.Mutex(), gr.Event(), gr.WaitGroup(), gr.Chan()
        mu.lock()
        wg.add()
        gr.go(mu.lock)
        gr.go(ev.wait)
        gr.go(ch.recv)
        gr.go(gr.select, gr.Recv(ch), gr.Send(gr.Chan(), 1))
        wg.wait()

    with pytest.raises(gr.Deadlock):
        gr.run(main, procs=procs)


def test_runtime_usable_after_deadlock():
    with pytest.raises(gr.Deadlock):
        gr.run(lambda: gr.Mutex().lock() or gr.Mutex().lock() or gr.Chan().recv(), procs=1)
    assert gr.run(lambda: 1 + 1, procs=2) == 2


def test_cancelled_lock_waiter_does_not_keep_lock(procs):
    def main():
        mu = gr.Mutex()
        mu.lock()
        t = gr.go(mu.lock)
        gr.sleep(0.01)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        mu.unlock()
        return mu.try_lock()

    assert gr.run(main, procs=procs)


def test_cancelled_pending_writer_releases_readers(procs):
    def main():
        rw = gr.RWMutex()
        rw.rlock()
        w = gr.go(rw.lock)
        gr.sleep(0.01)
        w.cancel()
        with pytest.raises(gr.Cancelled):
            w.join()
        assert rw.try_rlock()  # no writer pending any more
        rw.runlock()
        rw.runlock()
        return rw.try_lock()

    assert gr.run(main, procs=procs)


def test_semaphore_timeouts_do_not_lose_permits():
    def main():
        s = gr.Semaphore(1)
        s.acquire()
        ts = [gr.go(s.acquire, timeout=0.005) for _ in range(10)]
        r = [t.join() for t in ts]
        s.release()
        return r, s.available

    assert gr.run(main, procs=1) == ([False] * 10, 1)


def test_waitgroup_reuse(procs):
    def main():
        wg = gr.WaitGroup()
        for _ in range(3):
            wg.add(5)
            for _ in range(5):
                gr.go(wg.done)
            assert wg.wait()
        return wg.count

    assert gr.run(main, procs=procs) == 0
