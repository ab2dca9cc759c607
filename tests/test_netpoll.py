"""wait_readable / wait_writable / notify_closing: tasks park on the runtime's poller
(csrc/netpoll.h); elsewhere the thread waits in poll(2)."""
import errno
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

import goroutines as gr


def read_all(fd, n):
    """Read n bytes from non-blocking fd, parking on EAGAIN."""
    got = b""
    while len(got) < n:
        try:
            chunk = os.read(fd, n - len(got))
        except BlockingIOError:
            gr.wait_readable(fd)
            continue
        assert chunk, "unexpected EOF"
        got += chunk
    return got


def test_a_task_parks_until_another_task_writes(grun, pipe):
    r, w = pipe

    def main():
        reader = gr.go(read_all, r, 5)
        for b in b"hello":
            gr.sleep(0.002)
            os.write(w, bytes([b]))
        return reader.join()

    assert grun(main) == b"hello"


def test_a_plain_thread_writing_wakes_the_task(grun, pipe):
    r, w = pipe

    def writer():
        for i in range(20):
            time.sleep(0.001)
            os.write(w, b"%02d" % i)

    def main():
        th = threading.Thread(target=writer)
        th.start()
        data = read_all(r, 40)
        th.join()
        return data

    assert grun(main) == b"".join(b"%02d" % i for i in range(20))


def test_a_wait_that_times_out_never_returns_early(grun, pipe):
    r, _ = pipe

    def main():
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="timed out"):
            gr.wait_readable(r, timeout=0.05)
        return time.monotonic() - t0

    assert grun(main) >= 0.05


def test_timeout_zero_checks_without_waiting(grun, pipe):
    r, w = pipe

    def main():
        with pytest.raises(TimeoutError):
            gr.wait_readable(r, timeout=0)
        gr.wait_writable(w, timeout=0)
        os.write(w, b"x")
        gr.wait_readable(r, timeout=0)

    grun(main)


def test_writable_waits_until_the_pipe_drains(grun, pipe):
    r, w = pipe
    os.set_blocking(w, False)

    def fill():
        n = 0
        while True:
            try:
                n += os.write(w, b"x" * 65536)
            except BlockingIOError:
                return n

    def main():
        n = fill()
        with pytest.raises(TimeoutError):
            gr.wait_writable(w, timeout=0.01)

        def drain():
            gr.sleep(0.01)
            return len(read_all(r, n))

        t = gr.go(drain)
        gr.wait_writable(w, timeout=10)
        return t.join() == n

    assert grun(main)


def test_notify_closing_wakes_the_waiter_with_ebadf(grun, pipe):
    r, _ = pipe

    def main():
        def closer():
            gr.sleep(0.01)
            gr.notify_closing(r)

        gr.go(closer)
        with pytest.raises(OSError) as e:
            gr.wait_readable(r)
        return e.value.errno

    assert grun(main) == errno.EBADF


def test_a_closed_and_reused_fd_number_gets_no_stale_wakeup(grun):
    # The fd number of a pipe closed behind the poller's back is reused by a new pipe: a
    # wait on the new one must see only its own readiness.
    def main():
        r1, w1 = os.pipe()
        os.set_blocking(r1, False)
        with pytest.raises(TimeoutError):
            gr.wait_readable(r1, timeout=0.01)  # registers r1
        os.write(w1, b"old")
        os.close(r1)
        os.close(w1)
        r2, w2 = os.pipe()
        assert r2 == r1
        os.set_blocking(r2, False)
        try:
            with pytest.raises(TimeoutError):
                gr.wait_readable(r2, timeout=0.02)
            gr.go(lambda: (gr.sleep(0.01), os.write(w2, b"new")))
            return read_all(r2, 3)
        finally:
            os.close(r2)
            os.close(w2)

    assert grun(main) == b"new"


def test_two_readers_of_one_fd_is_a_busy_error(grun, pipe):
    r, w = pipe

    def main():
        first = gr.go(gr.wait_readable, r)
        gr.sleep(0.01)
        with pytest.raises(gr.BusyResourceError, match="already waiting"):
            gr.wait_readable(r)
        gr.wait_writable(w)  # the other direction is free
        os.write(w, b"x")
        first.join()

    grun(main)


def test_cancelling_a_task_parked_on_an_fd_leaves_the_fd_usable(grun, pipe):
    r, w = pipe

    def main():
        t = gr.go(gr.wait_readable, r)
        gr.sleep(0.01)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        # The reader slot is free again, and readiness still reaches the next waiter.
        t2 = gr.go(read_all, r, 2)
        gr.sleep(0.01)
        os.write(w, b"ok")
        return t2.join()

    assert grun(main) == b"ok"


def test_bad_input_is_a_clear_exception(grun):
    closed = socket.socket()
    closed.close()
    r, w = os.pipe()
    os.close(r)
    os.close(w)

    class BadFileno:
        def fileno(self):
            return "3"

    def check():
        with pytest.raises(ValueError, match="negative"):
            gr.wait_readable(-1)
        with pytest.raises(TypeError, match="fileno"):
            gr.wait_readable(object())
        with pytest.raises(TypeError, match="not an int"):
            gr.wait_readable(BadFileno())
        with pytest.raises(OSError, match="closed") as e:
            gr.wait_readable(closed)
        assert e.value.errno == errno.EBADF
        with pytest.raises(OSError) as e:
            gr.wait_writable(r, timeout=1)
        assert e.value.errno == errno.EBADF
        for bad in (-1, math.nan, float("-inf")):
            with pytest.raises(ValueError, match="non-negative"):
                gr.wait_readable(0, timeout=bad)
        with pytest.raises(TypeError, match="number of seconds"):
            gr.wait_readable(0, timeout="1")
        with pytest.raises(ValueError, match="negative"):
            gr.notify_closing(-5)
        with pytest.raises(OverflowError):
            gr.wait_readable(2**40)

    check()  # outside run(): the same errors
    grun(check)


def test_regular_files_are_always_ready(grun):
    with tempfile.TemporaryFile() as f:
        def main():
            gr.wait_readable(f)
            gr.wait_writable(f.fileno(), timeout=1)

        grun(main)
        main()


def test_outside_a_task_the_thread_waits_in_poll(pipe):
    r, w = pipe
    with pytest.raises(TimeoutError):
        gr.wait_readable(r, timeout=0.01)
    threading.Timer(0.01, os.write, (w, b"x")).start()
    gr.wait_readable(r, timeout=10)
    assert os.read(r, 1) == b"x"


def test_a_plain_thread_during_a_run_waits_in_poll(grun, pipe):
    r, w = pipe
    seen = []

    def thread_body():
        gr.wait_readable(r, timeout=10)
        seen.append(os.read(r, 1))

    def main():
        th = threading.Thread(target=thread_body)
        th.start()
        gr.sleep(0.01)
        os.write(w, b"t")
        gr.blocking(th.join)

    grun(main)
    assert seen == [b"t"]


def test_a_wait_on_an_fd_is_not_a_deadlock(procs):
    # No other thread can wake main: only the child process's output. Without the
    # poller's count of waiters the last idle M would report a deadlock.
    code = textwrap.dedent(f"""
        import os, subprocess, sys
        import goroutines as gr
        def main():
            p = subprocess.Popen([sys.executable, "-c",
                                  "import time; time.sleep(0.3); print('late')"],
                                 stdout=subprocess.PIPE)
            os.set_blocking(p.stdout.fileno(), False)
            gr.wait_readable(p.stdout)
            print(p.stdout.read().decode().strip())
            p.wait()
        gr.run(main, procs={procs})
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["late"]


def test_sleep_wakes_on_time_while_another_task_waits_on_an_fd(grun, pipe):
    # The idle M blocks in the poller: its timeout must still end at the sleeper's timer.
    r, _ = pipe

    def main():
        waiter = gr.go(gr.wait_readable, r)
        t0 = time.monotonic()
        gr.sleep(0.05)
        slept = time.monotonic() - t0
        waiter.cancel()
        return slept

    assert 0.05 <= grun(main) < 5


def test_a_wait_resumes_on_the_m_the_task_started_on(go_elsewhere):
    # Started tasks are pinned: a readiness event found by whichever M polls must reach
    # the owner's inbox.
    def main():
        pairs = [socket.socketpair() for _ in range(20)]
        for a, _ in pairs:
            a.setblocking(False)

        def echo_once(a):
            before = threading.get_ident()
            gr.wait_readable(a)
            a.recv(1)
            return before == threading.get_ident()

        tasks = [go_elsewhere(echo_once, a) for a, _ in pairs[:10]]
        tasks += [gr.go(echo_once, a) for a, _ in pairs[10:]]
        gr.sleep(0.01)
        for _, b in pairs:
            b.send(b"x")
        ok = [t.join() for t in tasks]
        for a, b in pairs:
            a.close()
            b.close()
        return ok

    assert gr.run(main, procs=2) == [True] * 20


def test_many_socket_pairs_lose_and_duplicate_nothing(procs):
    n_pairs, n_msgs = 100, 50

    def pump(a):
        a.setblocking(False)
        seen = []
        buf = b""
        while len(seen) < n_msgs:
            try:
                data = a.recv(4096)
            except BlockingIOError:
                gr.wait_readable(a)
                continue
            buf += data
            while len(buf) >= 4:
                seen.append(int(buf[:4]))
                buf = buf[4:]
        return seen

    def feed(b, i):
        b.setblocking(False)
        for k in range(n_msgs):
            msg = b"%04d" % ((i * n_msgs + k) % 10000)
            while msg:
                try:
                    msg = msg[b.send(msg):]
                except BlockingIOError:
                    gr.wait_writable(b)
            if k % 7 == 0:
                gr.gosched()

    def main():
        pairs = [socket.socketpair() for _ in range(n_pairs)]
        readers = [gr.go(pump, a) for a, _ in pairs]
        for i, (_, b) in enumerate(pairs):
            gr.go(feed, b, i)
        got = [r.join() for r in readers]
        for a, b in pairs:
            a.close()
            b.close()
        return got

    got = gr.run(main, procs=procs)
    for i, seen in enumerate(got):
        assert seen == [(i * n_msgs + k) % 10000 for k in range(n_msgs)]


def test_an_idle_runtime_waiting_on_sockets_uses_no_cpu():
    def main():
        pairs = [socket.socketpair() for _ in range(50)]
        waiters = [gr.go(gr.wait_readable, a) for a, _ in pairs]
        gr.sleep(0.05)
        before = resource.getrusage(resource.RUSAGE_SELF)
        gr.sleep(1.0)
        after = resource.getrusage(resource.RUSAGE_SELF)
        for w in waiters:
            w.cancel()
        for a, b in pairs:
            a.close()
            b.close()
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    # A busy loop would burn ~1 s per M; an idle runtime wakes only for the sleep's timer.
    assert gr.run(main, procs=2) < 0.1


def test_tasks_waiting_on_fds_are_cancelled_when_main_returns(grun, pipe):
    r, _ = pipe
    finished = []

    def waiter():
        try:
            gr.wait_readable(r)
        finally:
            finished.append(True)

    def main():
        for _ in range(3):
            gr.go(waiter)
        gr.sleep(0.01)

    grun(main)
    assert finished == [True] * 3


def test_ctrl_c_interrupts_a_main_waiting_on_an_fd(procs):
    from test_signals import interrupt

    rc, out, err = interrupt(
        """
        import os
        def main():
            r, w = os.pipe()
            print("ready", flush=True)
            try:
                gr.wait_readable(r)
            finally:
                print("main-finally", flush=True)
        """,
        procs,
    )
    assert out == ["main-finally"] and "KeyboardInterrupt" in err


def test_a_child_forked_after_a_run_gets_its_own_poller(pipe):
    r, w = pipe

    def main():
        with pytest.raises(TimeoutError):
            gr.wait_readable(r, timeout=0.01)

    gr.run(main, procs=1)
    pid = os.fork()
    if pid == 0:  # the child: a fresh epoll instance, the same pipe
        code = 1
        try:
            def child():
                gr.go(lambda: (gr.sleep(0.01), os.write(w, b"c")))
                return read_all(r, 1)

            code = 0 if gr.run(child, procs=1) == b"c" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    os.write(w, b"p")
    assert gr.run(lambda: read_all(r, 1), procs=1) == b"p"


def test_poll_handle_waits_and_closes(grun):
    a, b = socket.socketpair()
    a.setblocking(False)
    handle = gr._core._PollFd(a)
    assert handle.fd == a.fileno()

    def main():
        with pytest.raises(TimeoutError):
            handle.wait_readable(0.01)
        gr.go(lambda: (gr.sleep(0.01), b.send(b"x")))
        handle.wait_readable()
        assert a.recv(1) == b"x"

        def close_soon():
            gr.sleep(0.01)
            handle.close()

        gr.go(close_soon)
        with pytest.raises(OSError) as e:
            handle.wait_readable()
        assert e.value.errno == errno.EBADF
        handle.close()  # idempotent
        with pytest.raises(OSError):
            handle.wait_writable()

    try:
        grun(main)
    finally:
        a.close()
        b.close()


def test_stats_count_the_pollers_checks_and_blocking_waits(grun):
    # The live counts name the network poller's work: a task parked on a socket makes
    # the idle M block in the poller, and a busy M checks it without blocking.
    def main():
        before = gr.stats()
        a, b = socket.socketpair()
        with a, b:
            gr.after_func(0.02, b.send, b"x")
            gr.wait_readable(a)
        after = gr.stats()
        return before["polls"], after["polls"], before["poll_blocks"], after["poll_blocks"]

    polls0, polls1, blocks0, blocks1 = grun(main)
    assert polls1 >= polls0 and blocks1 > blocks0
