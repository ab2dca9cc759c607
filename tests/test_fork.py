"""os.fork() while run() is running: the child either leaves at once (os._exit, exec: what
subprocess and multiprocessing do) or, when the forking task finishes, exits with a message;
every goroutines call in between raises a clear RuntimeError. Never a hang, never a silent
exit. Each case runs in a subprocess whose parent waits for the forked child with a deadline
(and kills it if it hangs), so a regression fails instead of leaving a stray process."""

import subprocess
import sys
import textwrap

import pytest

# on_m(where, fn): run fn in a task on M0 (the thread that called run()) or on M1 (M0
# waits without a park point, so only M1 can start it: conftest's go_elsewhere), return its
# result.
# wait_child(pid, sleep): the child's exit status, or "hung" after killing it.
PRELUDE = textwrap.dedent(
    """
    import atexit, os, sys, threading, time, warnings
    import goroutines as gr

    warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads

    def on_m(where, fn):
        if where == "m0":
            return fn()
        here, ran_on = threading.get_ident(), []
        def pinned():
            ran_on.append(threading.get_ident())
            return fn()
        t = gr.go(pinned)
        while not ran_on:
            time.sleep(0.0002)
        assert ran_on[0] != here
        return t.join()

    def wait_child(pid, sleep=gr.sleep):
        deadline = time.monotonic() + 20
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return "hung"
            sleep(0.01)
    """
)

FORK_IN_A_TASK = textwrap.dedent(
    """
    def forker():
        pid = os.fork()
        if pid == 0:
            return in_child()
        return wait_child(pid)

    def main():
        gr.go(gr.sleep, 0.2)  # another task alive, parked on M0
        return on_m(WHERE, forker)

    print("parent:", gr.run(main, procs=2), flush=True)
    """
)


def run_script(code):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def fork_in_a_task(where, in_child):
    return run_script(PRELUDE + f"WHERE = {where!r}\n" + textwrap.dedent(in_child) + FORK_IN_A_TASK)


WHERE = pytest.mark.parametrize("where", ["m0", "m1"])


@WHERE
def test_forked_child_that_exits_at_once_keeps_working(where):
    proc = fork_in_a_task(
        where,
        """
        def in_child():
            os._exit(7)
        """,
    )
    assert "parent: 7" in proc.stdout
    assert "goroutines:" not in proc.stderr


@WHERE
def test_forked_child_whose_task_returns_exits_with_a_message_not_a_hang_or_silently(where):
    # From M0 the child used to hang in the scheduler (M1 never went idle there); from M1
    # it used to vanish with status 0 once its thread ended, skipping atexit.
    proc = fork_in_a_task(
        where,
        """
        def in_child():
            atexit.register(lambda: print("atexit ran in the child", flush=True))
            return "done"
        """,
    )
    assert "parent: 0" in proc.stdout
    assert "atexit ran in the child" in proc.stdout
    assert "does not survive a fork, so the child exits here with status 0" in proc.stderr
    assert "returned in a process forked while goroutines.run() was running" in proc.stderr


@WHERE
def test_forked_child_whose_task_fails_exits_with_status_1_and_the_traceback(where):
    proc = fork_in_a_task(
        where,
        """
        def in_child():
            raise LookupError("failed-in-the-child")
        """,
    )
    assert "parent: 1" in proc.stdout
    assert "failed in a process forked" in proc.stderr
    assert "LookupError: failed-in-the-child" in proc.stderr


@WHERE
def test_forked_child_sys_exit_keeps_its_status(where):
    proc = fork_in_a_task(
        where,
        """
        def in_child():
            sys.exit(5)
        """,
    )
    assert "parent: 5" in proc.stdout
    assert "raised SystemExit" in proc.stderr


@WHERE
def test_goroutines_calls_in_a_forked_child_raise_a_clear_error(where):
    proc = fork_in_a_task(
        where,
        """
        def in_child():
            calls = [
                lambda: gr.go(int), lambda: gr.sleep(0.01), gr.gosched, gr.num_tasks,
                gr.stats, lambda: gr.Chan().recv(), lambda: gr.Mutex().lock(),
                lambda: gr.blocking(int), lambda: gr.run(int), lambda: gr.TaskGroup().__enter__(),
            ]
            errors = 0
            for call in calls:
                try:
                    call()
                except RuntimeError as e:
                    errors += "process forked while goroutines.run() was running" in str(e)
            os._exit(errors)
        """,
    )
    assert "parent: 10" in proc.stdout


def test_subprocess_and_multiprocessing_fork_from_tasks_keep_working():
    code = PRELUDE + textwrap.dedent(
        """
        import multiprocessing, subprocess

        def square(q, x):
            q.put(x * x)

        def spawn_process():
            cmd = [sys.executable, "-c", "print(6 * 7)"]
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()

        def fork_process():
            ctx = multiprocessing.get_context("fork")
            q = ctx.Queue()
            p = ctx.Process(target=square, args=(q, 7))
            p.start()
            got = gr.blocking(q.get, timeout=20)
            gr.blocking(p.join, 20)
            return got, p.exitcode

        def main():
            return on_m("m0", spawn_process), on_m("m1", spawn_process), on_m("m1", fork_process)

        print(gr.run(main, procs=2))
        """
    )
    proc = run_script(code)
    assert proc.stdout.strip() == "('42', '42', (49, 0))"


def test_fork_inside_a_blocking_call_exits_the_child_with_a_message():
    # The child is the offload thread: without the check it would wait for work for ten
    # seconds, then end silently.
    code = PRELUDE + textwrap.dedent(
        """
        def main():
            pid = gr.blocking(os.fork)
            assert pid != 0, "the child must not get back into a task"
            return wait_child(pid)

        print("parent:", gr.run(main, procs=2))
        """
    )
    proc = run_script(code)
    assert "parent: 0" in proc.stdout
    assert "blocking(fork) returned in a process forked" in proc.stderr


def test_blocking_in_a_child_forked_after_a_run_does_not_hang():
    # The offload pool's threads do not survive a fork, but its idle count did: the child's
    # calls were queued for a thread that no longer existed, and blocking() waited forever.
    code = PRELUDE + textwrap.dedent(
        """
        assert gr.run(lambda: gr.blocking(pow, 2, 3), procs=2) == 8
        pid = os.fork()
        if pid == 0:
            os._exit(gr.run(lambda: gr.blocking(pow, 2, 5), procs=2))
        print("child:", wait_child(pid, time.sleep))
        """
    )
    proc = run_script(code)
    assert "child: 32" in proc.stdout
