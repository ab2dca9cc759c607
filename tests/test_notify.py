"""gr.notify: signals delivered on channels (Go's signal.Notify), tested with real signals
sent to this process; Ctrl-C keeps its behaviour unless SIGINT is notified."""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import goroutines as gr


def test_signal_arrives_on_the_channel(grun):
    def main():
        sigs = gr.notify(signal.SIGUSR1)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            return sigs.recv(timeout=10)
        finally:
            gr.stop_notify(sigs)

    assert grun(main) is signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


def test_any_task_can_select_on_it(grun):
    def main():
        sigs = gr.notify(signal.SIGUSR1, signal.SIGUSR2)
        try:
            waiter = gr.go(gr.select, gr.Recv(sigs), gr.Recv(gr.Chan()))
            gr.sleep(0.001)
            os.kill(os.getpid(), signal.SIGUSR2)
            return waiter.join()
        finally:
            gr.stop_notify(sigs)

    assert grun(main) == (0, signal.SIGUSR2, True)


def test_two_channels_and_stop_restores_the_previous_handler(grun):
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda s, f: seen.append(s))

    def main():
        a = gr.notify(signal.SIGUSR1)
        b = gr.Chan(4)
        assert gr.notify(signal.SIGUSR1, chan=b) is b
        os.kill(os.getpid(), signal.SIGUSR1)
        assert a.recv(timeout=10) == b.recv(timeout=10) == signal.SIGUSR1
        gr.stop_notify(a)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert b.recv(timeout=10) == signal.SIGUSR1
        gr.stop_notify(b)
        os.kill(os.getpid(), signal.SIGUSR1)
        gr.sleep(0.001)

    try:
        grun(main)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert seen == [signal.SIGUSR1]


def test_a_full_channel_drops_the_signal(grun):
    def main():
        sigs = gr.notify(signal.SIGUSR1)
        try:
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGUSR1)
                gr.sleep(0.001)
            assert sigs.recv(timeout=10) == signal.SIGUSR1
            return sigs.try_recv()
        finally:
            gr.stop_notify(sigs)

    assert grun(main) == (None, False)


def test_bad_arguments(grun):
    def main():
        with pytest.raises(TypeError, match="at least one"):
            gr.notify()
        with pytest.raises(ValueError, match="SIGKILL"):
            gr.notify(signal.SIGKILL)
        with pytest.raises(ValueError):
            gr.notify(100000)
        with pytest.raises(TypeError):
            gr.notify("SIGTERM")
        with pytest.raises(TypeError, match="Chan"):
            gr.notify(signal.SIGUSR1, chan=[])
        with pytest.raises(TypeError, match="Chan"):
            gr.stop_notify(None)
        gr.stop_notify(gr.Chan())  # never notified: nothing to do

    grun(main)


def test_a_task_on_another_m_installs_through_the_main_threads_m(go_elsewhere):
    # Python installs handlers only on the main thread; a task on M1 has them installed
    # by a task spawned onto M0, the M of run()'s (main) thread, and joins it.
    def elsewhere(installed, sent):
        assert threading.current_thread() is not threading.main_thread()
        sigs = gr.notify(signal.SIGUSR1)
        try:
            installed.close()
            sent.recv()
            return sigs.recv(timeout=10)
        finally:
            gr.stop_notify(sigs)

    def main():
        installed, sent = gr.Chan(), gr.Chan(1)
        t = go_elsewhere(elsewhere, installed, sent)
        for _ in installed:
            pass
        # Sent by the main thread itself, which runs the handler at its next bytecode: a
        # signal that another thread takes while M0 sleeps waits for M0 to wake (a
        # limit of the runtime's signal handling, not of notify).
        os.kill(os.getpid(), signal.SIGUSR1)
        sent.send(None)
        return t.join()

    assert gr.run(main, procs=2) is signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


def test_a_run_started_off_the_main_thread_says_why():
    out = []

    def main():
        try:
            gr.notify(signal.SIGUSR1)
        except RuntimeError as e:
            out.append(str(e))

    th = threading.Thread(target=gr.run, args=(main,))
    th.start()
    th.join()
    assert "run() started on the main" in out[0]


def test_off_the_main_thread_it_says_why(grun):
    def main():
        out = []

        def body():
            try:
                gr.notify(signal.SIGUSR1)
            except RuntimeError as e:
                out.append(str(e))

        th = threading.Thread(target=body)
        th.start()
        gr.blocking(th.join)
        return out

    [msg] = grun(main)
    assert "main thread" in msg


def _child(body):
    code = "import goroutines as gr, os, signal\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_sigint_in_the_set_does_not_stop_the_run():
    p = _child(
        """
        def main():
            sigs = gr.notify(signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            print("got", sigs.recv(timeout=10).name, flush=True)
            return "still running"
        print(gr.run(main))
        """
    )
    assert p.returncode == 0 and p.stdout.split() == ["got", "SIGINT", "still", "running"]


def test_ctrl_c_unchanged_when_sigint_is_not_in_the_set():
    p = _child(
        """
        def main():
            gr.notify(signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
            gr.sleep(10)
        gr.run(main)
        """
    )
    assert p.returncode != 0 and "KeyboardInterrupt" in p.stderr


def test_the_end_of_run_restores_the_handlers(grun):
    def main():
        gr.notify(signal.SIGUSR1, signal.SIGINT)

    grun(main)
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
