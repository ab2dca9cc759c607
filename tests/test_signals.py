"""Ctrl-C: one SIGINT cancels every task, runs their finally blocks and raises
KeyboardInterrupt from run(). Each case runs in a subprocess that prints "ready" once it
is in the state under test; the test then sends SIGINT and reads what ran."""
import contextlib
import ctypes
import functools
import operator
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import goroutines as gr


def sigint(argv, env=None, ready=True):
    """Start argv, wait for its "ready" line (or, with ready=False, 0.3 s), send SIGINT and
    return (returncode, stdout lines, stderr)."""
    p = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        if ready:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
            time.sleep(0.1)
        else:
            time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return p.returncode, out.split(), err


def interrupt(body, procs):
    code = "import goroutines as gr\n" + textwrap.dedent(body) + f"\ngr.run(main, procs={procs})\n"
    return sigint([sys.executable, "-c", code])


def test_ctrl_c_stops_a_main_that_only_runs_c_callable_tasks(procs):
    # Tasks whose bodies are C callables kept the main thread's M busy without running
    # its bytecode at procs=2: SIGINT was never handled (main ran on another thread).
    rc, out, err = interrupt(
        """
        def main():
            print("ready", flush=True)
            try:
                while True:
                    gr.go(int).join()
            finally:
                print("main-finally", flush=True)
        """,
        procs,
    )
    assert rc == -signal.SIGINT and out == ["main-finally"] and "KeyboardInterrupt" in err


def test_one_ctrl_c_runs_mains_finally_while_main_sleeps(procs):
    rc, out, err = interrupt(
        """
        def main():
            for _ in range(10):
                gr.go(gr.sleep, 100)
            print("ready", flush=True)
            try:
                gr.sleep(100)
            finally:
                print("main-finally", flush=True)
        """,
        procs,
    )
    assert rc == -signal.SIGINT and out == ["main-finally"] and "KeyboardInterrupt" in err


def test_ctrl_c_cancels_a_task_that_never_parks_on_the_other_m():
    # A task looping without a park point on M1 used to keep run() from returning after
    # Ctrl-C: it never saw the cancellation. Now it gets Cancelled at its next bytecode.
    rc, out, err = interrupt(
        """
        import os, threading, time
        def hog(started):
            started.append(threading.get_ident())
            try:
                while True:
                    pass
            finally:
                os.write(1, b"hog-finally\\n")  # one write: the two finallys may race
        def main():
            started = []
            gr.go(hog, started)
            while not started:
                time.sleep(0.001)
            assert started[0] != threading.get_ident()
            print("ready", flush=True)
            try:
                gr.sleep(100)
            finally:
                os.write(1, b"main-finally\\n")
        """,
        2,
    )
    assert rc == -signal.SIGINT and "KeyboardInterrupt" in err
    assert sorted(out) == ["hog-finally", "main-finally"]


def test_ctrl_c_stops_the_demo(procs):
    env = {**os.environ, "GOROUTINES_PROCS": str(procs)}
    rc, _, err = sigint([sys.executable, "-m", "goroutines"], env=env, ready=False)
    # Either it was interrupted (the shell's 128 + SIGINT), or it had already finished.
    assert rc in (0, 128 + signal.SIGINT), err
    assert rc == 0 or err.strip() == "interrupted"


def test_ctrl_c_abandons_a_blocking_call_in_flight(procs):
    # SIGINT used to wait for gr.blocking(time.sleep, 8) to return (procs=1), or the first
    # was swallowed and the second skipped main's finally (procs=2).
    rc, out, err = interrupt(
        """
        import time
        def main():
            print("ready", flush=True)
            try:
                gr.blocking(time.sleep, 8)
            finally:
                print("main-finally", flush=True)
        """,
        procs,
    )
    assert rc == -signal.SIGINT and out == ["main-finally"] and "KeyboardInterrupt" in err


class _Boom(Exception):
    pass


def _raise_boom(signum, frame):
    raise _Boom


def _kill_then(wait):
    """Send SIGUSR1 to this process, then call wait() with no bytecode in between, so
    that nothing but the wait itself can notice the handler's flag: map() calls each
    function from C, and libc's kill() (unlike os.kill) does not run the handler."""
    kill = functools.partial(ctypes.CDLL(None, use_errno=True).kill, os.getpid(), signal.SIGUSR1)
    return list(map(operator.methodcaller("__call__"), [kill, wait]))


@pytest.fixture
def boom_on_sigusr1():
    old = signal.signal(signal.SIGUSR1, _raise_boom)
    yield
    signal.signal(signal.SIGUSR1, old)


@contextlib.contextmanager
def _ended_by_the_signal(end, seconds=10):
    """Expect _Boom from the block. `end` ends the wait if it still waits after `seconds`
    (the caller then sees that it was called: the signal did not end the wait)."""
    guard = threading.Timer(seconds, end)
    guard.start()
    try:
        with pytest.raises(_Boom):
            yield
    finally:
        guard.cancel()


def test_a_signal_just_before_a_thread_blocks_in_recv_is_not_lost(boom_on_sigusr1):
    # The handler's flag was set before the recv slept; the sleep used to wait it out
    # (a Ctrl-C in a plain thread's recv waited for good).
    ch = gr.Chan()
    with _ended_by_the_signal(ch.close):
        _kill_then(ch.recv)
    assert not ch.closed


def test_a_signal_just_before_a_thread_waits_for_an_fd_is_not_lost(boom_on_sigusr1):
    r, w = os.pipe()
    try:
        with _ended_by_the_signal(lambda: os.write(w, b"x")):
            _kill_then(functools.partial(gr.wait_readable, r))
        assert select.select([r], [], [], 0)[0] == []
    finally:
        os.close(r)
        os.close(w)


def test_a_signal_just_before_main_parks_is_not_lost(boom_on_sigusr1):
    # main parks right after the handler's flag is set; M0 then finds no work and used to
    # sleep until something else woke it before it looked at the flag.
    ch = gr.Chan()

    def main():
        _kill_then(ch.recv)

    with _ended_by_the_signal(ch.close):
        gr.run(main, procs=1)
    assert not ch.closed


def test_ctrl_c_abandons_a_result_or_aio_wait_in_flight(procs):
    # The coroutine shrugs off its cancellation for 8 s: an aborted run does not wait.
    for wait in ("gr.result(concurrent.futures.Future())", "gr.aio(stubborn())"):
        rc, out, err = interrupt(
            f"""
            import asyncio, concurrent.futures
            async def stubborn():
                try:
                    await asyncio.sleep(8)
                except asyncio.CancelledError:
                    await asyncio.sleep(8)
            def main():
                print("ready", flush=True)
                try:
                    {wait}
                finally:
                    print("main-finally", flush=True)
            """,
            procs,
        )
        assert rc == -signal.SIGINT and out == ["main-finally"] and "KeyboardInterrupt" in err


def test_ctrl_c_in_a_thread_waiting_on_aio_cancels_the_coroutine():
    rc, out, err = sigint([sys.executable, "-c", textwrap.dedent(
        """
        import asyncio, time
        import goroutines as gr
        cancelled = []
        async def slow():
            try:
                print("ready", flush=True)
                await asyncio.sleep(8)
            except asyncio.CancelledError:
                cancelled.append(1)
                raise
        try:
            gr.aio(slow())
        except KeyboardInterrupt:
            deadline = time.monotonic() + 5
            while not cancelled and time.monotonic() < deadline:
                time.sleep(0.01)
            print("cancelled" if cancelled else "still-running", flush=True)
        """
    )])
    assert rc == 0 and out == ["cancelled"], err
