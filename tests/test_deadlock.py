"""Deadlock detection: when every task is parked and nothing can wake any of them, run()
raises Deadlock (promptly, not by hanging) naming the parked tasks."""

import threading
import time

import pytest

import goroutines as gr

PREFIX = "all tasks are asleep - deadlock!"


def test_deadlock_is_a_runtime_error():
    assert issubclass(gr.Deadlock, RuntimeError)


@pytest.mark.parametrize("forever", [float("inf"), 1e12], ids=["inf", "1e12"])
def test_lonely_main_sleeping_forever(grun, forever):
    ids = []

    def main():
        ids.append(gr.current().id)
        gr.sleep(forever)

    with pytest.raises(gr.Deadlock) as ei:
        grun(main)
    msg = str(ei.value)
    assert msg.startswith(PREFIX)
    assert f"<Task {ids[0]} {main.__qualname__} parked on sleep>" in msg


def test_main_joining_a_task_that_sleeps_forever(grun):
    seen = {}

    def child():
        seen["child"] = gr.current().id
        gr.sleep(float("inf"))

    def main():
        seen["main"] = gr.current().id
        gr.go(child).join()

    with pytest.raises(gr.Deadlock) as ei:
        grun(main)
    msg = str(ei.value)
    assert f"<Task {seen['child']} {child.__qualname__} parked on sleep>" in msg
    assert f"<Task {seen['main']} {main.__qualname__} parked on join>" in msg


def test_join_cycle(grun):
    handles = {}
    both = gr.Event()  # a and b may run on the other M before main has both handles

    def a():
        both.wait()
        handles["b"].join()

    def b():
        both.wait()
        handles["a"].join()

    def main():
        handles["a"] = gr.go(a)
        handles["b"] = gr.go(b)
        both.set()
        handles["a"].join()

    with pytest.raises(gr.Deadlock) as ei:
        grun(main)
    msg = str(ei.value)
    for name, fn in (("a", a), ("b", b)):
        assert f"<Task {handles[name].id} {fn.__qualname__} parked on join>" in msg
    assert f"{main.__qualname__} parked on join>" in msg


def test_deadlock_names_every_parked_task(grun):
    n = 200

    def main():
        root = gr.go(gr.sleep, float("inf"))
        waiters = [gr.go(root.join) for _ in range(n)]
        gr.sleep(0)
        root.join()
        return waiters

    with pytest.raises(gr.Deadlock) as ei:
        grun(main)
    msg = str(ei.value)
    assert msg.count("parked on join>") == n + 1  # the waiters and main
    assert msg.count("parked on sleep>") == 1


def test_deadlock_with_parked_tasks_on_both_ms(go_elsewhere):
    def main():
        remote = go_elsewhere(gr.sleep, float("inf"))
        local = gr.go(gr.sleep, float("inf"))
        gr.sleep(0)
        return remote.join(), local

    with pytest.raises(gr.Deadlock) as ei:
        gr.run(main, procs=2)
    assert str(ei.value).count("parked on sleep>") == 2


def test_deadlock_after_timers_have_fired(grun):
    def child():
        gr.sleep(0.001)  # a timer that fires: no deadlock yet
        gr.sleep(float("inf"))

    def main():
        gr.go(child).join()

    with pytest.raises(gr.Deadlock):
        grun(main)


def test_deadlock_runs_finally_blocks_and_cancels(grun):
    log = []
    handles = []

    def child():
        try:
            gr.sleep(float("inf"))
        finally:
            log.append("child finally")

    def main():
        t = gr.go(child)
        handles.append(t)
        try:
            t.join()
        finally:
            log.append("main finally")

    with pytest.raises(gr.Deadlock):
        grun(main)
    assert sorted(log) == ["child finally", "main finally"]
    assert handles[0].cancelled()


def test_run_after_a_deadlock_works(grun):
    with pytest.raises(gr.Deadlock):
        grun(lambda: gr.sleep(float("inf")))
    assert grun(lambda: gr.go(pow, 2, 4).join()) == 16


# ---- no false alarms -----------------------------------------------------------------------------


def test_pending_timer_is_not_a_deadlock(grun):
    def child():
        gr.sleep(0.01)
        return "woke"

    def main():
        return gr.go(child).join()

    assert grun(main) == "woke"


def test_join_with_timeout_is_not_a_deadlock(grun):
    def main():
        t = gr.go(gr.sleep, float("inf"))
        with pytest.raises(TimeoutError):
            t.join(timeout=0.005)
        t.cancel()
        return "no deadlock"

    assert grun(main) == "no deadlock"


def test_main_returning_with_forever_sleepers_is_not_a_deadlock(grun):
    def main():
        for _ in range(10):
            gr.go(gr.sleep, float("inf"))
        gr.sleep(0.001)
        return "clean"

    assert grun(main) == "clean"


def test_sleeping_chain_is_not_a_deadlock(grun):
    # Everyone is parked most of the time, but a timer is always armed somewhere.
    def link(depth):
        gr.sleep(0.0005)
        if depth:
            return gr.go(link, depth - 1).join() + 1
        return 0

    def main():
        return gr.go(link, 20).join()

    assert grun(main) == 20


def _later(fn, delay=0.3):
    th = threading.Thread(target=lambda: (time.sleep(delay), fn()))
    th.start()
    return th


@pytest.mark.parametrize("waker", ["event-set", "close", "cancel", "go", "mutex-unlock"])
def test_a_wait_a_plain_thread_will_end_is_not_a_false_deadlock(grun, waker):
    # run() used to raise Deadlock within 0.05-0.16 s although a threading.Thread was
    # about to wake main: a thread outside the runtime can still act.
    def main():
        if waker == "event-set":
            ev = gr.Event()
            th = _later(ev.set)
            ev.wait()
        elif waker == "close":
            ch = gr.Chan()
            th = _later(ch.close)
            assert list(ch) == []
        elif waker == "cancel":
            t = gr.go(gr.sleep, 1e9)
            t_forever = gr.go(lambda: t.join())
            th = _later(t.cancel)
            with pytest.raises(gr.Cancelled):
                t_forever.join()
        elif waker == "go":
            ch = gr.Chan(1)
            th = _later(lambda: gr.go(ch.send, "hi"))
            assert ch.recv() == "hi"
        else:
            mu = gr.Mutex()
            mu.lock()
            th = _later(mu.unlock)
            mu.lock()
        th.join()
        return "woken"

    assert grun(main) == "woken"


def test_a_deadlock_is_still_reported_once_the_outside_thread_has_ended(grun):
    def main():
        _later(lambda: None, delay=0.2)
        gr.Event().wait()

    t0 = time.monotonic()
    with pytest.raises(gr.Deadlock):
        grun(main)
    assert time.monotonic() - t0 >= 0.2
