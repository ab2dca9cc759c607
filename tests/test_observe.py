"""Seeing the tasks: go(name=), Task.name and repr, gr.tasks() (state, wait reason, M,
time in state, spawn site, stack), gr.dump() and its grouping, the Deadlock report, the
dump signal, and every error path of their inputs."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import goroutines as gr


def here():
    return sys._getframe(1).f_lineno


# ---- names and reprs -------------------------------------------------------------------------


def test_name_defaults_to_the_qualified_name(grun):
    def worker():
        return gr.current().name

    def main():
        return gr.go(worker).join(), gr.current().name

    assert grun(main) == (worker.__qualname__, main.__qualname__)


def test_name_is_reserved_and_other_kwargs_go_to_fn(grun):
    def f(a, *, b, title=None):
        return a, b, title

    def main():
        t = gr.go(f, 1, b=2, title="x", name="adder")
        return t.name, t.join(), repr(t)

    name, result, rep = grun(main)
    assert name == "adder"
    assert result == (1, 2, "x")
    assert rep == f"<Task {rep.split()[1]} adder done>"


def test_name_survives_failure_and_shows_in_the_never_retrieved_report(grun):
    def boom():
        raise ValueError("x")

    def main():
        t = gr.go(boom, name="exploder")
        with pytest.raises(ValueError):
            t.join()
        return t.name, repr(t)

    name, rep = grun(main)
    assert name == "exploder"
    assert "exploder failed: ValueError('x')" in rep


@pytest.mark.parametrize("bad", [1, b"x", ["n"], object()])
def test_name_must_be_a_str(grun, bad):
    def main():
        with pytest.raises(TypeError, match="name must be a str"):
            gr.go(int, name=bad)
        return gr.num_tasks()

    assert grun(main) == 1  # nothing was started


def test_taskgroup_go_takes_a_name(grun):
    def main():
        with gr.TaskGroup() as tg:
            named = tg.go(gr.sleep, 0, name="napper")
            plain = tg.go(abs, -1)
        return named.name, plain.name

    assert grun(main) == ("napper", "abs")


def test_repr_states():
    def main():
        ch = gr.Chan()
        parked = gr.go(ch.recv, name="waiter")
        fresh = gr.go(int, name="fresh")
        before = repr(fresh)
        gr.sleep(0.001)
        states = (before, repr(parked), repr(gr.current()))
        ch.send(1)
        parked.join()
        return states + (repr(parked),)

    # procs=1: on two, the other M could run "fresh" before its repr is taken.
    before, parked, running, done = gr.run(main, procs=1)
    assert before.endswith(" fresh pending>")  # runnable, never run
    assert parked.endswith(" waiter parked on chan receive>")
    assert running.endswith(" running>")
    assert done.endswith(" waiter done>")


# ---- tasks() -------------------------------------------------------------------------------


def blocked_on(ch):
    ch.recv()


def test_tasks_lists_every_live_task(grun, monkeypatch):
    monkeypatch.setenv("GOROUTINES_SPAWN_SITES", "1")
    def main():
        ch = gr.Chan()
        line = here() + 1
        ws = [gr.go(blocked_on, ch, name=f"w{i}") for i in range(5)]
        sleeper = gr.go(gr.sleep, 60, name="sleeper")
        gr.sleep(0.01)
        infos = {i.id: i for i in gr.tasks()}
        for _ in ws:
            ch.send(None)
        sleeper.cancel()
        return infos, [w.id for w in ws], sleeper.id, gr.current().id, line

    infos, ws, sleeper, me, line = grun(main)
    assert set(infos) == {*ws, sleeper, me}
    for i, tid in enumerate(ws):
        info = infos[tid]
        assert (info.name, info.state, info.wait_reason) == (f"w{i}", "parked", "chan receive")
        assert info.m is not None and info.p == info.m
        assert info.seconds >= 0
        assert info.spawned_at == (__file__, line)
        # Without a GIL, a task parked on another M has its stack withheld (it could resume
        # meanwhile); at procs=2 a worker may have been stolen there.
        if info.stack is not None or sys._is_gil_enabled():
            assert info.stack[-1].name == "blocked_on"
            assert info.waiting_at == (__file__, blocked_on.__code__.co_firstlineno + 1)
        assert info.task.id == tid
    assert infos[sleeper].wait_reason == "sleep"
    mine = infos[me]
    assert (mine.state, mine.wait_reason) == ("running", None)
    assert mine.stack[-1].name == "main"
    assert mine.spawned_at is None  # run() started it, not Python code calling go()


def test_tasks_shows_runnable_never_run_tasks(grun):
    def main():
        t = gr.go(int, name="later")
        info = next(i for i in gr.tasks() if i.id == t.id)
        return info.state, info.m, list(info.stack)

    # procs=2: the other M may already have taken it; then it has run (and finished).
    state, m, stack = grun(main)
    assert state in ("runnable", "running")
    if state == "runnable":
        assert m is None and stack == []


def test_tasks_time_in_state_grows(grun):
    def main():
        t = gr.go(gr.sleep, 60)
        gr.sleep(0.001)
        first = next(i for i in gr.tasks() if i.id == t.id).seconds
        gr.sleep(0.05)
        second = next(i for i in gr.tasks() if i.id == t.id).seconds
        t.cancel()
        return first, second

    first, second = grun(main)
    assert second > first


def test_tasks_from_another_thread(grun):
    seen = []

    def watcher():
        while not seen:
            try:
                infos = gr.tasks()
            except RuntimeError:
                continue  # run() has not started yet
            if any(i.name == "target" and i.state == "parked" for i in infos):
                seen.append(infos)
            time.sleep(0.001)

    def main():
        ev = gr.Event()
        gr.go(ev.wait, name="target")
        th = threading.Thread(target=watcher)
        th.start()
        gr.blocking(th.join)
        ev.set()

    grun(main)
    (infos,) = seen
    target = next(i for i in infos if i.name == "target")
    assert target.wait_reason == "event"
    assert target.stack is not None or not sys._is_gil_enabled()


def test_tasks_sees_tasks_of_both_ms(go_elsewhere):
    def main():
        ev = gr.Event()
        remote = go_elsewhere(ev.wait)
        local = gr.go(ev.wait)
        gr.sleep(0.001)
        infos = {i.id: i for i in gr.tasks()}
        ev.set()
        return infos[remote.id], infos[local.id], infos[gr.current().id]

    remote, local, me = gr.run(main, procs=2)
    assert remote.m != me.m  # local may run on either M (stealing is eager without a GIL)
    assert local.m in (0, 1)
    assert remote.wait_reason == local.wait_reason == "event"


def test_tasks_of_many_tasks_counts_each_once(grun):
    n = 3000

    def main():
        ch = gr.Chan()
        for _ in range(n):
            gr.go(ch.recv)
        gr.sleep(0.01)
        infos = gr.tasks()
        ch.close()
        return [i.id for i in infos]

    ids = grun(main)
    assert len(ids) == len(set(ids)) == n + 1


def test_spawn_sites_are_off_by_default(grun, monkeypatch):
    monkeypatch.delenv("GOROUTINES_SPAWN_SITES", raising=False)

    def main():
        t = gr.go(gr.sleep, 60)
        info = next(i for i in gr.tasks() if i.id == t.id)
        t.cancel()
        return info.spawned_at

    assert grun(main) is None


@pytest.mark.parametrize("value", ["yes", "2", "true"])
def test_bad_spawn_sites_env(monkeypatch, value):
    monkeypatch.setenv("GOROUTINES_SPAWN_SITES", value)
    with pytest.raises(ValueError, match="GOROUTINES_SPAWN_SITES must be 0 or 1"):
        gr.run(int)


def test_tasks_and_dump_outside_run():
    for fn in (gr.tasks, gr.dump):
        with pytest.raises(RuntimeError, match=r"must be called under goroutines.run\(\)"):
            fn()


# ---- dump() --------------------------------------------------------------------------------


def test_dump_groups_identical_stacks(grun, monkeypatch):
    monkeypatch.setenv("GOROUTINES_SPAWN_SITES", "1")
    def main():
        ch = gr.Chan()
        for _ in range(4):
            gr.go(blocked_on, ch, name="worker")
        gr.go(gr.sleep, 60, name="alone")
        gr.sleep(0.01)
        out = io.StringIO()
        gr.dump(out)
        ch.close()
        for t in gr.tasks():
            if t.name == "alone":
                t.task.cancel()
        return out.getvalue()

    text = grun(main)
    assert text.startswith("goroutines: 6 tasks")
    if "4 tasks [parked on chan receive" not in text:  # procs=2: the workers may be split
        assert text.count("tasks [parked on chan receive") + text.count(
            "[parked on chan receive") >= 1
    assert "in blocked_on" in text and "ch.recv()" in text
    assert "task " in text and "alone" in text
    assert "spawned at " + __file__ in text


def test_dump_defaults_to_stderr(grun, capfd):
    grun(lambda: gr.dump())
    assert "goroutines: 1 tasks" in capfd.readouterr().err


def test_dump_signal_prints_the_dump():
    code = textwrap.dedent("""
        import os, signal, goroutines as gr
        def stuck(ch):
            ch.recv()
        def main():
            ch = gr.Chan()
            gr.go(stuck, ch, name="stuck-one")
            gr.sleep(0.01)
            os.kill(os.getpid(), signal.SIGUSR1)
            gr.sleep(0.05)
            ch.close()
        gr.run(main)
    """)
    env = dict(os.environ, GOROUTINES_DUMP_SIGNAL="SIGUSR1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "stuck-one" in out.stderr and "parked on chan receive" in out.stderr
    # the handler is gone after the run: the default action would kill the process
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


@pytest.mark.parametrize("value", ["SIGNOPE", "banana", "SIGKILL", "-3"])
def test_bad_dump_signal_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("GOROUTINES_DUMP_SIGNAL", value)
    with pytest.raises(ValueError, match="GOROUTINES_DUMP_SIGNAL must name a signal"):
        gr.run(int)


@pytest.mark.parametrize("value", ["SIGUSR2", "usr2", str(int(signal.SIGUSR2))])
def test_dump_signal_spellings(monkeypatch, value):
    monkeypatch.setenv("GOROUTINES_DUMP_SIGNAL", value)

    def main():
        return signal.getsignal(signal.SIGUSR2) is not signal.SIG_DFL

    assert gr.run(main)
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL


# ---- the Deadlock report -------------------------------------------------------------------


def test_deadlock_names_each_stuck_task_its_reason_and_line(grun):
    lines = {}

    def consumer(ch):
        lines["consumer"] = here() + 1
        ch.recv()

    def main():
        ch = gr.Chan()
        mu = gr.Mutex()
        mu.lock()
        t = gr.go(consumer, ch, name="consumer")
        gr.go(mu.lock, name="locker")
        lines["main"] = here() + 1
        t.join()

    with pytest.raises(gr.Deadlock) as ei:
        grun(main)
    msg = str(ei.value)
    assert msg.startswith("all tasks are asleep - deadlock!\n")
    assert f"consumer parked on chan receive> at {__file__}:{lines['consumer']}" in msg
    assert f"{main.__qualname__} parked on join> at {__file__}:{lines['main']}" in msg
    assert "locker parked on mutex>" in msg
    assert "stacks:" in msg and "in consumer" in msg


def test_deadlock_report_groups_many_identical_tasks(grun):
    def main():
        ch = gr.Chan()
        for _ in range(50):
            gr.go(blocked_on, ch)
        ch.recv()

    with pytest.raises(gr.Deadlock) as ei:
        grun(main)
    msg = str(ei.value)
    assert msg.count("parked on chan receive>") == 51
    stacks = msg.split("stacks:", 1)[1]
    assert "tasks [parked on chan receive" in stacks
    assert stacks.count("in blocked_on") <= 2  # one group per M at most
