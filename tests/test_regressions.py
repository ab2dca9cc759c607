"""Regression tests, each named after the failure it guards against."""
import subprocess
import sys
import textwrap


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
