"""Regression tests, each named after the failure it guards against."""
import os
import subprocess
import sys
import textwrap

import pytest

import goroutines as gr


def test_many_parked_tasks_do_not_accumulate_recursion_depth():
    # Each new worker greenlet used to start on top of the recursion depth of the parked
    # task that needed it; 20k parked tasks then hit RecursionError (and a crash) at exit.
    code = textwrap.dedent(
        """
        import goroutines as gr
        def main():
            for _ in range(30000):
                gr.go(gr.sleep, 1000)
            gr.sleep(0.05)
            return gr.num_tasks()
        print(gr.run(main, procs=1))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RecursionError" not in out.stderr
    assert out.stdout.strip() == "30001"


def test_many_cancelled_tasks_free_without_a_recursive_greenlet_chain():
    # A suspended greenlet kept the greenlet it had switched to; once that one died, its
    # parent link chained dead greenlets together, and freeing 50k of them at once
    # recursed once per greenlet in green_dealloc (a segfault).
    code = textwrap.dedent(
        """
        import goroutines as gr
        def main():
            ts = [gr.go(gr.sleep, 1000) for _ in range(50000)]
            gr.sleep(0.3)
            return ts
        ts = gr.run(main, procs=1)
        assert all(t.cancelled() for t in ts)
        del ts
        print("freed")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "freed"


def test_idle_runtime_does_not_spin():
    # Ms out of work spin briefly (GR_SPIN_NS) before parking; an idle runtime must still
    # park and cost next to no CPU, however long it stays idle.
    code = textwrap.dedent(
        """
        import resource
        import goroutines as gr
        def main():
            for _ in range(4):
                gr.go(gr.sleep, 1.0)
            gr.sleep(1.0)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        gr.run(main, procs=2)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        print(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout) < 0.25  # CPU seconds over one idle second: a spin would be ~1-2


def test_a_channel_wake_up_uses_runnext_because_the_core_is_linked_once():
    # csrc used to be linked into four extension modules; _sync's copy of the thread-local
    # current M was never bound, so every channel wake-up took the cross-thread inbox path
    # and the woken receiver ran after everything already queued (x2 x0 x1 recv).
    import goroutines as gr

    def main():
        order = []
        ch = gr.Chan()
        receiver = gr.go(lambda: order.append(("recv", ch.recv())))
        gr.gosched()  # the receiver parks on the channel
        others = [gr.go(order.append, f"x{i}") for i in range(3)]
        ch.send(1)
        receiver.join()
        for t in others:
            t.join()
        return order

    order = gr.run(main, procs=1)
    assert order[0] == ("recv", 1), order
    assert sorted(order[1:]) == ["x0", "x1", "x2"]


def test_main_runs_on_the_thread_that_called_run(procs):
    # At procs > 1 another M could steal main before the calling thread took it, and then
    # signal.signal() inside main raised "only works in main thread".
    import signal
    import threading

    import goroutines as gr

    def main():
        previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, previous)
        return threading.current_thread() is threading.main_thread()

    for _ in range(20):
        assert gr.run(main, procs=procs)


def test_go_from_a_plain_thread_while_run_shuts_down_does_not_crash_or_lose_tasks(procs):
    # go() from a thread outside the runtime raced with run() freeing the scheduler: a
    # segfault in gr_g_init within 0.03 s. Now a spawn is either queued before shutdown
    # (and run or cancelled) or refused with RuntimeError.
    code = textwrap.dedent(
        f"""
        import gc, sys, threading
        import goroutines as gr
        stop = False
        accepted, refused = [], []

        class Cycle:
            # A collection inside go() runs this Python finalizer, where CPython may hand
            # the GIL to run()'s thread: that widens the race window from a few
            # instructions to a whole thread switch.
            def __init__(self):
                self.me = self
            def __del__(self):
                sum(range(50))

        def spam():
            while not stop:
                Cycle()
                try:
                    accepted.append(gr.go(int))
                except RuntimeError as e:
                    refused.append(str(e))
        gc.set_threshold(1)
        sys.setswitchinterval(1e-6)
        th = threading.Thread(target=spam)
        th.start()
        for _ in range(100):
            gr.run(gr.sleep, 0.002, procs={procs})  # idle: the spammer gets the GIL
        stop = True
        th.join()
        assert accepted and refused
        assert all(t.done() for t in accepted)
        assert all(t.cancelled() or t.result() == 0 for t in accepted)
        assert all(m.startswith("go() must be called under goroutines.run()") for m in refused)
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_joiners_of_a_task_wake_in_the_order_they_joined():
    # gr_g_finish collected the claimed joiners on a stack, so they ran last-in first-out.
    import goroutines as gr

    def main():
        joined, woken = [], []
        ev = gr.Event()
        target = gr.go(ev.wait)

        def joiner(i):
            joined.append(i)
            target.join()
            woken.append(i)

        joiners = [gr.go(joiner, i) for i in range(5)]
        gr.sleep(0.01)  # every joiner parks on target
        ev.set()
        for t in joiners:
            t.join()
        return joined, woken

    joined, woken = gr.run(main, procs=1)
    assert woken == joined and sorted(joined) == [0, 1, 2, 3, 4]


# ---- RWMutex: a cancelled writer left its "waiting" count behind ----------------------------


def test_rwmutex_cancelled_writer_does_not_block_readers_forever(procs):
    # rlock; a writer queues; the writer is cancelled; the last reader leaves before the
    # writer runs again. runlock skipped the cancelled writer's waiter without taking back
    # the waiting-writer count, and the writer, finding itself unlinked, did not either:
    # every later rlock() waited forever (Deadlock) and try_rlock() returned False.
    import goroutines as gr

    def main():
        rw = gr.RWMutex()
        rw.rlock()
        w = gr.go(rw.lock)
        while "parked on rwmutex write" not in repr(w):
            gr.sleep(0.001)
        w.cancel()
        rw.runlock()  # at procs=1 the cancelled writer has not run again yet
        with pytest.raises(gr.Cancelled):
            w.join()
        assert rw.try_rlock()
        rw.runlock()
        rw.rlock()
        rw.runlock()
        assert rw.try_lock()
        rw.unlock()
        return True

    assert gr.run(main, procs=procs)


@pytest.mark.parametrize("kind", ["mutex", "semaphore", "rwmutex"])
def test_random_cancellation_never_wedges_a_sync_primitive(procs, kind):
    # A few tasks take and release the primitive in a loop while main cancels them at
    # random moments, queued or holding, and replaces each. RWMutex was left with a
    # phantom waiting writer (see above) within milliseconds; every primitive must end
    # free, with no task hung.
    import random

    import goroutines as gr

    rng = random.Random(f"{kind}-{procs}")

    def main():
        mu, sem, rw = gr.Mutex(), gr.Semaphore(2), gr.RWMutex()

        def hold():
            for _ in range(rng.randrange(4)):
                gr.gosched()

        def worker():
            while True:
                if kind == "mutex":
                    mu.lock()
                    try:
                        hold()
                    finally:
                        mu.unlock()
                elif kind == "semaphore":
                    if sem.acquire(timeout=rng.choice([None, 0, 0.0005])):
                        try:
                            hold()
                        finally:
                            sem.release()
                elif rng.random() < 0.3:
                    rw.lock()
                    try:
                        hold()
                    finally:
                        rw.unlock()
                else:
                    rw.rlock()
                    try:
                        hold()
                    finally:
                        rw.runlock()
                gr.gosched()

        tasks = [gr.go(worker) for _ in range(6)]
        replaced = []
        for _ in range(400):
            i = rng.randrange(len(tasks))
            tasks[i].cancel()
            replaced.append(tasks[i])
            tasks[i] = gr.go(worker)
            for _ in range(rng.randrange(4)):
                gr.gosched()
        for t in tasks:
            t.cancel()
        # Every task, the replaced ones too: a cancelled task may still be on its way out
        # on another M (releasing what it holds), which a free-threaded build shows.
        for t in tasks + replaced:
            with pytest.raises(gr.Cancelled):
                t.join()
        free = [mu.try_lock(), sem.available == 2, rw.try_lock()]
        rw.unlock()
        return free + [rw.try_rlock()]

    assert gr.run(main, procs=procs) == [True] * 4


# ---- WaitGroup counter overflow -------------------------------------------------------------


def test_waitgroup_add_overflow_raises_and_leaves_the_counter_unchanged():
    # add(2**62) twice wrapped the int64 counter and reported a "negative" counter.
    import goroutines as gr

    wg = gr.WaitGroup()
    wg.add(2**62)
    with pytest.raises(OverflowError, match="overflow"):
        wg.add(2**62)
    assert wg.count == 2**62
    for n in (2**63, 2**64, 2**63 - 1):  # past int64_t, or just past the top
        with pytest.raises(OverflowError, match="overflow"):
            wg.add(n)
    for n in (-(2**62) - 1, -(2**63), -(2**64)):
        with pytest.raises(ValueError, match="negative WaitGroup counter"):
            wg.add(n)
    assert wg.count == 2**62
    wg.add(-(2**62))
    assert wg.count == 0
    wg.add(2**63 - 1)  # the top itself is fine
    assert wg.count == 2**63 - 1


# ---- code the scheduler runs outside any task -----------------------------------------------


def _park_attempts(gr, ch, mu, other):
    """Call every park entry point; what each one raised (RuntimeError expected)."""
    calls = {
        "sleep": lambda: gr.sleep(0.01),
        "sleep(0)": lambda: gr.sleep(0),
        "gosched": gr.gosched,
        "send": lambda: ch.send(1),
        "recv": ch.recv,
        "select": lambda: gr.select(gr.Recv(ch)),
        "lock": mu.lock,
        "semaphore": gr.Semaphore(0).acquire,
        "waitgroup": lambda: (lambda wg: (wg.add(), wg.wait()))(gr.WaitGroup()),
        "event": gr.Event().wait,
        "rlock": gr.RWMutex().rlock,
        "join": other.join,
        "blocking": lambda: gr.blocking(int),
    }
    out = {}
    for name, call in calls.items():
        try:
            call()
            out[name] = "returned"
        except RuntimeError as e:
            out[name] = "RuntimeError" if "must be called from a task" in str(e) else repr(e)
        except BaseException as e:
            out[name] = repr(e)
    return out


def test_signal_handler_run_by_the_scheduler_sees_no_current_task():
    # The handler runs when the idle M's futex wait is interrupted, between tasks: it saw
    # the parked main task as current(), and a sleep() there parked main from the
    # scheduler's own greenlet and hung the M for good.
    import signal
    import threading

    import goroutines as gr

    seen = {}

    def main():
        ch, mu = gr.Chan(), gr.Mutex()
        mu.lock()
        other = gr.go(gr.sleep, 1000)

        def handler(signum, frame):
            seen["current"] = gr.current()
            seen.update(_park_attempts(gr, ch, mu, other))

        previous = signal.signal(signal.SIGUSR1, handler)
        try:
            me = threading.get_ident()
            threading.Timer(0.05, signal.pthread_kill, (me, signal.SIGUSR1)).start()
            while "current" not in seen:
                gr.sleep(0.2)
        finally:
            signal.signal(signal.SIGUSR1, previous)
        other.cancel()
        return gr.current()

    main_task = gr.run(main, procs=1)
    assert main_task is not None
    assert seen.pop("current") is None
    assert seen == dict.fromkeys(seen, "RuntimeError") and len(seen) == 13


def test_finalizer_run_by_the_scheduler_sees_no_current_task():
    # A finalizer that runs as the scheduler drops a finished task's arguments is outside
    # any task: current() is None there and a blocking call raises RuntimeError. One M:
    # with two, the task may finish on the other one, and a free-threaded build then runs
    # the finalizer on the thread that made the object (biased reference counting hands
    # the last decref back to it), inside whichever task runs there.
    import goroutines as gr

    seen = {}

    class Finalized:
        def __del__(self):
            seen["current"] = gr.current()
            seen.update(_park_attempts(gr, gr.Chan(), gr.Mutex(), gr.go(int)))

    def main():
        gr.go(len, (Finalized(),)).join()
        return True

    assert gr.run(main, procs=1)
    assert seen.pop("current") is None
    assert seen == dict.fromkeys(seen, "RuntimeError") and len(seen) == 13


# ---- a task that swallows Cancelled ---------------------------------------------------------


def test_task_swallowing_cancelled_in_a_loop_is_abandoned_at_shutdown(procs):
    # `while True: try: sleep() except Cancelled: pass` made run() spin at 100% CPU forever
    # at shutdown. Cancellation is re-delivered at every park point, each delivery yields,
    # and after the grace period the task is reported and abandoned so that run() returns.
    code = textwrap.dedent(
        f"""
        import time
        import goroutines as gr

        caught = []

        def swallower():
            while True:
                try:
                    gr.sleep(1)
                except gr.Cancelled:
                    caught.append(1)

        def polite():
            try:
                gr.sleep(1000)
            finally:
                caught.append("polite finally")

        def main():
            t = gr.go(swallower)
            p = gr.go(polite)
            gr.sleep(0.01)
            t.cancel()  # re-delivered, and yielding: main still gets to run at procs=1
            gr.sleep(0.01)
            return t, p

        t0 = time.monotonic()
        t, p = gr.run(main, procs={procs})
        print(t.done(), t.cancelled(), p.cancelled(), "polite finally" in caught,
              caught.count(1) > 10, round(time.monotonic() - t0))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True", "True", "True", "True", "1"]
    assert "swallower" in out.stderr and "abandoning it" in out.stderr


def test_cancellation_is_redelivered_at_every_park_point(grun):
    # A cancelled task stays cancelled (trio's rule): catching Cancelled does not clear it.
    import goroutines as gr

    def victim():
        caught = 0
        for park in (lambda: gr.sleep(1000), gr.gosched, gr.Event().wait, gr.Chan().recv):
            try:
                park()
            except gr.Cancelled:
                caught += 1
        return caught

    def main():
        t = gr.go(victim)
        gr.sleep(0.01)
        t.cancel()
        return t.join(), t.cancelled()

    assert grun(main) == (4, False)


def test_a_thread_spawning_in_a_loop_cannot_hold_shutdown_hostage():
    # M0 may exit only once the global queue is empty, and the queue used to close to
    # outside spawns only after the Ms had exited: a thread calling go() in a loop kept it
    # filled, and about one run in a hundred took 2-13 s to return. Now shutdown refuses
    # them. The same amplifiers as the crash test above make the race likely.
    code = textwrap.dedent(
        """
        import gc, sys, threading, time
        import goroutines as gr
        stop = False

        class Cycle:
            def __init__(self):
                self.me = self
            def __del__(self):
                sum(range(50))

        accepted = []  # kept alive: each collection has more to walk, and lasts longer

        def spam():
            while not stop:
                Cycle()
                try:
                    accepted.append(gr.go(int))
                except RuntimeError:
                    pass
        gc.set_threshold(1)
        sys.setswitchinterval(1e-6)
        th = threading.Thread(target=spam)
        th.start()
        worst = 0.0
        for _ in range(150):
            t0 = time.perf_counter()
            gr.run(gr.sleep, 0.002, procs=2)
            worst = max(worst, time.perf_counter() - t0)
        stop = True
        th.join()
        print(worst)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # A bound far above a run's few milliseconds: it catches the livelock, nothing finer.
    assert float(out.stdout) < 1.5, out.stdout


def _run_child(code, env=None):
    """Run code in a fresh interpreter: a crash there is a failure here, not the end of
    the suite. Returns its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.parametrize("procs", [1, 2])
def test_a_task_parked_inside_a_critical_section_does_not_corrupt_the_threads_lock_chain(procs):
    # Free-threaded builds: list(ch) holds the new list's critical section while ch's
    # iterator parks. The switch to another greenlet left the thread's chain of critical
    # sections pointing into the parked task's stack, which the next greenlets overwrote:
    # "PyMutex_Unlock: unlocking mutex that is not locked", or a segfault.
    out = _run_child(
        f"""
        import goroutines as gr
        def main():
            chans = [gr.Chan(k % 3) for k in range(8)]
            readers = [gr.go(list, ch) for ch in chans]
            for k in range(2000):
                chans[k % 8].send(k)
            for ch in chans:
                ch.close()
            return [t.join() for t in readers]
        lists = gr.run(main, procs={procs})
        print(lists == [list(range(k, 2000, 8)) for k in range(8)])
        """
    )
    assert out.strip() == "True"


def test_an_object_lock_is_free_while_the_task_holding_it_is_parked(procs):
    # The other half of the same fix: a critical section is let go across the switch, as
    # across a thread's detach, so another task can use the list meanwhile (before, the
    # process aborted here).
    out = _run_child(
        f"""
        import goroutines as gr
        lst = ["before"]
        def main():
            ch = gr.Chan()
            inside = gr.Event()
            def items():
                inside.set()
                yield from ch  # parks inside lst.extend, which holds lst's critical section
            t = gr.go(lst.extend, items())
            inside.wait()
            lst.append("meanwhile")
            for v in (1, 2):
                ch.send(v)
            ch.close()
            t.join()
        gr.run(main, procs={procs})
        print(lst)
        """
    )
    assert out.strip() == "['before', 'meanwhile', 1, 2]"


@pytest.mark.parametrize("procs", [1, 2])
def test_run_waits_for_the_offload_thread_still_waking_its_task(procs):
    # Free-threaded builds: blocking()'s thread readies the task, then unparks the task's
    # M. In between, the task could finish, run() return and free the scheduler: the
    # unpark read freed memory (a segfault in gr_ready's m_unpark). glibc's
    # MALLOC_PERTURB_ and the allocations between runs make such a read crash at once.
    out = _run_child(
        f"""
        import os
        import goroutines as gr
        n = 0
        for _ in range(3000):
            n += gr.run(gr.blocking, abs, -1, procs={procs})
            junk = [os.urandom(64).hex() for _ in range(20)]
        print(n)
        """,
        env={**os.environ, "MALLOC_PERTURB_": "165"},
    )
    assert out.strip() == "3000"


@pytest.mark.parametrize("procs", [1, 2])
def test_a_thread_that_wakes_a_task_and_exits_is_not_taken_for_a_deadlock(procs):
    # The scheduler's deadlock verdict was made before on_deadlock looked for threads
    # outside the runtime; a thread that set the Event and exited in between was missed,
    # and run() raised Deadlock with main already woken (free-threaded builds, ~1 run in
    # 10000).
    out = _run_child(
        f"""
        import threading
        import goroutines as gr
        n = 0
        for _ in range(3000):
            ev = gr.Event()
            th = threading.Thread(target=ev.set)
            def main():
                th.start()
                return ev.wait()
            n += gr.run(main, procs={procs})
            th.join()
        print(n)
        """
    )
    assert out.strip() == "3000"


def test_deadlock_is_still_reported_once_aio_has_started_its_event_loop():
    # aio()'s shared event loop thread lives as long as the process, and counted as a
    # thread outside the runtime that could still wake a task: every later deadlock was
    # put off for ever, and run() hung instead of raising Deadlock.
    out = _run_child(
        """
        import asyncio
        import goroutines as gr
        gr.run(gr.aio, asyncio.sleep(0))
        try:
            gr.run(gr.Chan().recv)
        except gr.Deadlock:
            print("deadlock")
        """
    )
    assert out.strip() == "deadlock"


class _Refused(Exception):
    pass


class _NoClass:
    """isinstance() against an ABC reads __class__, which raises here, as a signal
    handler's exception (Ctrl-C's) would inside numbers.Real's __instancecheck__."""

    @property
    def __class__(self):
        raise _Refused


@pytest.mark.parametrize("call", [
    lambda: gr.Chan().recv(timeout=_NoClass()),
    lambda: gr.CancelScope(deadline=_NoClass()),
    lambda: gr.wait_readable(0, timeout=_NoClass()),
], ids=["recv-timeout", "scope-deadline", "wait-readable-timeout"])
def test_an_exception_inside_the_seconds_check_is_raised_not_left_set(call):
    # Cython unrolled isinstance(x, (numbers.Real, Decimal)) into calls whose error it
    # ignored: the exception stayed set behind a True, and surfaced later as SystemError.
    with pytest.raises(_Refused):
        call()
