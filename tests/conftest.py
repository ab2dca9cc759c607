"""Shared fixtures for the goroutines runtime tests.

``procs``: every test that takes it runs once on one processor and once on two (the one
           place that says so: a test needing one count calls run(..., procs=n) itself).
``grun``:  ``grun(fn, *args, **kwargs)`` is ``goroutines.run`` at that ``procs``.
``guard``: turns a hang into a failure; autouse, so every test has it.
``pipe``:  a pipe (read end non-blocking), closed afterwards unless the test did.
``go_elsewhere``: at procs=2, from a task, ``go_elsewhere(fn, *args)`` starts a task that
           is guaranteed to run on the other M (cross-thread wake-ups, joins, cancels).

The guard arms SIGALRM: its handler raises ``Hung``, a SystemExit, which the runtime
treats like Ctrl-C (it aborts the run, cancels every task and run() re-raises it) and which
pytest reports as an ordinary failure. A hang the signal cannot break (a task spinning
without a park point on another M) is caught by faulthandler later, which dumps every
thread's stack and exits the process.
"""

import faulthandler
import os
import signal
import threading
import time

import pytest

import goroutines as gr

GUARD_SECONDS = 30

# Modules whose tests leave another library's threads alive for the rest of the process
# (Dask's client keeps its event loop and offload threads). While a thread outside the
# runtime lives, no deadlock is reported (design.md), so these run after every other test.
RUN_LAST = ("test_dask.py",)

# A background job of a non-interactive shell (`.ci/sanitize asan &`) starts with SIGINT
# ignored, and its children inherit that: Python then installs no KeyboardInterrupt
# handler in them, and the Ctrl-C tests' subprocesses would never see their SIGINT.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name in RUN_LAST)  # stable: the order is kept


class Hung(SystemExit):
    """The test was still running when the guard's alarm went off."""


@pytest.fixture(params=[1, 2], ids=lambda n: f"procs{n}")
def procs(request):
    return request.param


@pytest.fixture
def grun(procs):
    def run(fn, *args, **kwargs):
        return gr.run(fn, *args, procs=procs, **kwargs)

    return run


@pytest.fixture(autouse=True)
def guard():
    def on_alarm(signum, frame):
        raise Hung(f"still running after {GUARD_SECONDS} s: hung (lost wake-up or deadlock?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(GUARD_SECONDS)
    faulthandler.dump_traceback_later(3 * GUARD_SECONDS, exit=True)
    try:
        yield
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def foreign_thread_errors():
    """``foreign_thread_errors(*calls)`` runs each call on a plain thread (not an M) and
    returns the messages of the RuntimeErrors they raised."""

    def run(*calls):
        errors = []

        def other():
            for call in calls:
                try:
                    call()
                except RuntimeError as e:
                    errors.append(str(e))

        th = threading.Thread(target=other)
        th.start()
        th.join()
        return errors

    return run


@pytest.fixture
def go_elsewhere():
    def start(fn, *args, **kwargs):
        here = threading.get_ident()
        ran_on = []

        def pinned():
            ran_on.append(threading.get_ident())
            return fn(*args, **kwargs)

        t = gr.go(pinned)
        # Wait without a park point, so only another M can start t; time.sleep releases
        # the GIL, so that M's GIL-aware stealing sees it free and takes t at once.
        while not ran_on:
            time.sleep(0.0002)
        assert ran_on[0] != here
        return t

    return start


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass
