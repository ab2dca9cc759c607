"""goroutines.fdselect and goroutines.selectors: cooperative fd waits with the stdlib's answers.

In a task, select()/poll()/selectors park the task (the proof at procs=1: another task makes
the fd ready while the first waits, which it could not do if the wait blocked the M).
Outside a task they are the stdlib calls. Results and errors are compared with the stdlib's
for the same inputs.
"""
import contextlib
import errno
import fcntl
import gc
import os
import select as stdselect
import selectors as stdselectors
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import goroutines as gr
import goroutines._core
import goroutines.fdselect as gselect
import goroutines.selectors as gselectors

SELECTORS = [gselectors.EpollSelector, gselectors.PollSelector, gselectors.SelectSelector]


def open_fds() -> int:
    """The process's open fds, once the runtime's netpoller (an epoll and an eventfd,
    kept for the process's lifetime) exists and garbage cycles are collected."""
    with open("/dev/null") as f:
        gr.run(gselect.select, [], [], [f], 0.001)  # waits, which makes the poller
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def outcome(fn, *args):
    """What calling fn(*args) gives: ("ok", result) or (exception type, message)."""
    try:
        return "ok", fn(*args)
    except Exception as e:  # noqa: BLE001  # compared as data
        return type(e), str(e)


def in_task(fn, *args):
    return gr.run(outcome, fn, *args, procs=1)


class FileLike:
    """An object with a fileno(): select returns the object itself, not its fd."""

    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd

    def __repr__(self):
        return f"FileLike({self.fd})"


# --- cooperation: the wait parks the task -------------------------------------------------


def test_select_parks_until_another_task_writes(procs, pipe):
    r, w = pipe

    def main():
        gr.go(os.write, w, b"x")
        return gselect.select([r], [], [], 10.0)

    assert gr.run(main, procs=procs) == ([r], [], [])


def test_poll_parks_until_another_task_writes(procs, pipe):
    r, w = pipe

    def main():
        p = gselect.poll()
        p.register(r, gselect.POLLIN)
        gr.go(os.write, w, b"x")
        return p.poll(10_000)

    assert gr.run(main, procs=procs) == [(r, gselect.POLLIN)]


@pytest.mark.parametrize("cls", SELECTORS, ids=lambda c: c.__name__)
def test_selector_parks_until_another_task_sends(procs, cls):
    a, b = socket.socketpair()

    def main():
        with cls() as sel:
            sel.register(a, gselectors.EVENT_READ, "data")
            gr.go(b.send, b"x")
            return [(k.fileobj, k.data, ev) for k, ev in sel.select(10.0)]

    with a, b:
        assert gr.run(main, procs=procs) == [(a, "data", gselectors.EVENT_READ)]


def test_poll_follows_registrations_made_between_waits(pipe):
    """register/modify/unregister after the poll object's first wait reach its epoll."""
    r, w = pipe
    r2, w2 = os.pipe()

    def main():
        p = gselect.poll()
        p.register(r, gselect.POLLOUT)  # a read end is never writable
        assert p.poll(1) == []  # the first wait makes the inner epoll
        p.modify(r, gselect.POLLIN)
        p.register(r2, gselect.POLLIN)
        gr.go(os.write, w2, b"x")
        first = p.poll(10_000)
        p.unregister(r2)
        gr.go(os.write, w, b"x")
        return first, p.poll(10_000)

    try:
        assert gr.run(main, procs=1) == ([(r2, gselect.POLLIN)], [(r, gselect.POLLIN)])
    finally:
        os.close(r2)
        os.close(w2)


def test_many_tasks_wait_on_their_own_pipes_at_once():
    """100 tasks parked in select on one M; a writer wakes them in reverse order."""
    pipes = [os.pipe() for _ in range(100)]

    def waiter(r):
        return gselect.select([r], [], [], 10.0)[0] == [r]

    def main():
        tasks = [gr.go(waiter, r) for r, _ in pipes]
        gr.sleep(0)
        for _, w in reversed(pipes):
            os.write(w, b"x")
        return [t.join() for t in tasks]

    try:
        assert gr.run(main, procs=1) == [True] * 100
    finally:
        for fds in pipes:
            for fd in fds:
                os.close(fd)


# --- timeouts -------------------------------------------------------------------------------


def test_timeouts_return_nothing_ready(procs, pipe):
    r, _ = pipe

    def main():
        p = gselect.poll()
        p.register(r)
        with gselectors.DefaultSelector() as sel:
            sel.register(r, gselectors.EVENT_READ)
            return (
                gselect.select([r], [], [], 0.02),
                gselect.select([r], [], [], 0),
                p.poll(20),
                p.poll(0),
                sel.select(0.02),
                sel.select(0),
                sel.select(-1),
            )

    assert gr.run(main, procs=procs) == (([], [], []),) * 2 + ([],) * 5


def test_select_with_no_fds_sleeps_for_the_timeout(procs):
    def main():
        t = gr.go(gselect.select, [], [], [], 0.02)
        return gr.go(lambda: "ran meanwhile").join(), t.join()

    assert gr.run(main, procs=procs) == ("ran meanwhile", ([], [], []))


def test_select_waits_forever_without_timeout(procs, pipe):
    r, w = pipe

    def main():
        t = gr.go(gselect.select, [r], [], [], None)
        gr.sleep(0.02)
        assert not t.done()
        os.write(w, b"x")
        return t.join()

    assert gr.run(main, procs=procs) == ([r], [], [])


def test_negative_poll_timeout_waits_forever(procs, pipe):
    r, w = pipe

    def main():
        p = gselect.poll()
        p.register(r, gselect.POLLIN)
        t = gr.go(p.poll, -5)
        gr.sleep(0.02)
        assert not t.done()
        os.write(w, b"x")
        return t.join()

    assert gr.run(main, procs=procs) == [(r, gselect.POLLIN)]


# --- cancellation, closing, leaks ------------------------------------------------------------


def test_cancelled_select_raises_and_leaks_no_fd(procs, pipe):
    r, _ = pipe
    before = open_fds()

    def main():
        p = gselect.poll()
        p.register(r)
        tasks = [
            gr.go(gselect.select, [r], [], [], None),
            gr.go(p.poll),
        ]
        gr.sleep(0.02)
        for t in tasks:
            t.cancel()
        out = []
        for t in tasks:
            with pytest.raises(gr.Cancelled):
                t.join()
            out.append(t.cancelled())
        del p
        return out

    assert gr.run(main, procs=procs) == [True, True]
    assert open_fds() == before


def test_select_leaks_no_fd_over_many_waits(pipe):
    r, w = pipe
    before = open_fds()

    def main():
        for _ in range(300):
            gr.go(os.write, w, b"x")
            assert gselect.select([r], [], [], 10.0) == ([r], [], [])
            os.read(r, 1)

    gr.run(main, procs=1)
    assert open_fds() == before


def test_closing_a_selector_wakes_its_waiter_with_ebadf(procs, pipe):
    r, _ = pipe

    def main():
        sel = gselectors.DefaultSelector()
        sel.register(r, gselectors.EVENT_READ)
        t = gr.go(sel.select)
        gr.sleep(0.02)
        sel.close()
        with pytest.raises(OSError) as info:
            t.join()
        return info.value.errno

    assert gr.run(main, procs=procs) == errno.EBADF


def test_poll_from_two_tasks_at_once_is_refused_like_the_stdlib(pipe):
    r, w = pipe

    def main():
        p = gselect.poll()
        p.register(r, gselect.POLLIN)
        t = gr.go(p.poll, 10_000)
        gr.sleep(0.01)
        with pytest.raises(RuntimeError, match="concurrent poll"):
            p.poll(0)
        os.write(w, b"x")
        first = t.join()
        return first, p.poll(0)  # usable again once the first poll returned

    assert gr.run(main, procs=1) == ([(r, gselect.POLLIN)], [(r, gselect.POLLIN)])


def test_a_second_task_waiting_on_one_selector_is_refused(pipe):
    """One epoll fd, one reader slot in the netpoller: as with sockets, serialise waiters."""
    r, w = pipe

    def main():
        with gselectors.DefaultSelector() as sel:
            sel.register(r, gselectors.EVENT_READ)
            t = gr.go(sel.select, 10.0)
            gr.sleep(0.01)
            with pytest.raises(gr.BusyResourceError):
                sel.select(10.0)
            os.write(w, b"x")
            return [key.fd for key, _ in t.join()]

    assert gr.run(main, procs=1) == [r]


# --- special fds -----------------------------------------------------------------------------


def test_regular_files_are_ready_at_once(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"data")
    with open(path, "rb+") as f:

        def main():
            p = gselect.poll()
            p.register(f)
            return (
                gselect.select([f], [f], [], 10.0),
                gselect.select([], [], [f], 0.01),  # a file has no exceptional condition
                p.poll(10_000),
            )

        expected = (stdselect.select([f], [f], [], 0), ([], [], []), [(f.fileno(), 5)])
        assert gr.run(main, procs=1) == expected


def test_sockets_readiness_follows_the_peer(procs):
    a, b = socket.socketpair()

    def main():
        writable = gselect.select([a], [a], [], 10.0)
        gr.go(b.sendall, b"ping")
        readable = gselect.select([a], [], [], 10.0)
        b.shutdown(socket.SHUT_WR)
        a.recv(4)
        at_eof = gselect.select([a], [], [], 10.0)
        return writable, readable, at_eof

    with a, b:
        assert gr.run(main, procs=procs) == (([], [a], []), ([a], [], []), ([a], [], []))


def test_poll_reports_pollnval_for_a_closed_fd(pipe):
    r, w = pipe

    def main():
        p = gselect.poll()
        p.register(r)
        os.close(r)
        return p.poll(10_000)

    assert gr.run(main, procs=1) == [(r, gselect.POLLNVAL)]


# --- bad input: the stdlib's errors ---------------------------------------------------------


class BadFileno:
    def fileno(self):
        return "3"


class NegativeFileno:
    def fileno(self):
        return -1


def closed_fd():
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    return r


def gen_of(*items):
    return (i for i in items)


BAD_SELECT_ARGS = {
    "negative timeout": lambda r: ([r], [], [], -1),
    "tiny negative timeout": lambda r: ([r], [], [], -1e-10),
    "nan timeout": lambda r: ([r], [], [], float("nan")),
    "str timeout": lambda r: ([r], [], [], "1"),
    "huge float timeout": lambda r: ([r], [], [], 1e30),
    "huge int timeout": lambda r: ([r], [], [], 2**70),
    "not a sequence": lambda r: (1, [], [], 0),
    "no fileno": lambda r: ([object()], [], [], 0),
    "fileno not int": lambda r: ([BadFileno()], [], [], 0),
    "negative fileno": lambda r: ([NegativeFileno()], [], [], 0),
    "negative fd": lambda r: ([], [-3], [], 0),
    "huge fd": lambda r: ([2**40], [], [], 0),
    "beyond FD_SETSIZE": lambda r: ([5000], [], [], 0),
    "closed fd": lambda r: ([], [], [closed_fd()], 0),
    "timeout checked before fds": lambda r: ([object()], [], [], -1),
}


@pytest.mark.parametrize("make", BAD_SELECT_ARGS.values(), ids=BAD_SELECT_ARGS.keys())
def test_select_bad_input_raises_the_stdlib_error(pipe, make):
    r, _ = pipe
    expected = outcome(stdselect.select, *make(r))
    assert expected[0] != "ok"
    assert in_task(gselect.select, *make(r)) == expected
    assert outcome(gselect.select, *make(r)) == expected  # outside a task: the stdlib's


def test_select_accepts_what_the_stdlib_accepts(pipe):
    """Iterables, int subclasses as timeouts, objects with fileno(), duplicates."""
    r, w = pipe
    os.write(w, b"x")
    obj = FileLike(r)
    args = (gen_of(r, obj, r), (w,), [], True)
    expected = stdselect.select(gen_of(r, obj, r), (w,), [], True)
    assert expected == ([r, obj, r], [w], [])
    assert in_task(gselect.select, *args) == ("ok", expected)


BAD_POLL_TIMEOUTS = {
    "str": "1",
    "nan": float("nan"),
    "huge float": 1e30,
    "beyond INT_MAX ms": 2**31,
    "huge int": 2**70,
}


@pytest.mark.parametrize("timeout", BAD_POLL_TIMEOUTS.values(), ids=BAD_POLL_TIMEOUTS.keys())
def test_poll_bad_timeout_raises_the_stdlib_error(pipe, timeout):
    r, _ = pipe

    def poll_with(make_poll):
        p = make_poll()
        p.register(r)
        return p.poll(timeout)

    expected = outcome(poll_with, stdselect.poll)
    assert expected[0] != "ok"
    assert in_task(poll_with, gselect.poll) == expected


def poll_registration_errors(make_poll, r):
    p = make_poll()
    return [
        outcome(p.register, object()),
        outcome(p.register, -1),
        outcome(p.register, r, 2**20),
        outcome(p.register, r, -1),
        outcome(p.modify, r, gselect.POLLIN),
        outcome(p.unregister, r),
        outcome(p.register, FileLike(r), gselect.POLLIN),
        outcome(p.register, r, gselect.POLLOUT),  # again: replaces the mask
        outcome(p.modify, FileLike(r), gselect.POLLIN),
        outcome(p.unregister, FileLike(r)),
        outcome(p.unregister, r),
    ]


def test_poll_registration_errors_are_the_stdlib_ones(pipe):
    r, _ = pipe
    expected = poll_registration_errors(stdselect.poll, r)
    assert in_task(poll_registration_errors, gselect.poll, r) == ("ok", expected)


def test_selector_bad_input_raises_the_stdlib_error(pipe):
    r, _ = pipe
    not_a_file = object()

    def errors(cls):
        with cls() as sel:
            return [
                outcome(sel.register, not_a_file, gselectors.EVENT_READ),
                outcome(sel.register, r, 0),
                outcome(sel.unregister, r),
                outcome(sel.select, "1"),
                outcome(sel.register, closed_fd(), gselectors.EVENT_READ),
            ]

    for ours, stdlib in zip(SELECTORS, [stdselectors.EpollSelector, stdselectors.PollSelector,
                                        stdselectors.SelectSelector], strict=True):
        expected = errors(stdlib)
        assert in_task(errors, ours) == ("ok", expected)


# --- equivalence with the stdlib (hypothesis) -----------------------------------------------

# One pipe per entry, in a state that decides the readiness of its ends:
#   empty: r not readable, w writable;  data: r readable;  eof: w closed, r readable (EOF);
#   full: w not writable (and r readable);  broken: r closed, w writable (EPIPE).
KINDS = ["empty", "data", "eof", "full", "broken"]


class Pipes:
    def __init__(self, kinds):
        self.ends = []  # the fds and FileLike objects select gets to see
        self.fds = []
        for kind in kinds:
            r, w = os.pipe()
            self.fds += [r, w]
            if kind in ("data", "full"):
                os.write(w, b"x")
            if kind == "full":
                fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
                os.set_blocking(w, False)
                with contextlib.suppress(BlockingIOError):
                    while True:
                        os.write(w, b"x" * 4096)
            if kind == "eof":
                self.close(w)
            if kind == "broken":
                self.close(r)
            self.ends += [fd for fd in (r, w) if fd in self.fds]
        self.ends += [FileLike(fd) for fd in self.ends]

    def close(self, fd):
        os.close(fd)
        self.fds.remove(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for fd in self.fds:
            os.close(fd)


scenarios = st.lists(st.sampled_from(KINDS), min_size=1, max_size=5).flatmap(
    lambda kinds: st.tuples(
        st.just(kinds),
        st.lists(st.integers(0, 4 * len(kinds) - 1), max_size=6),
        st.lists(st.integers(0, 4 * len(kinds) - 1), max_size=6),
        st.lists(st.integers(0, 4 * len(kinds) - 1), max_size=3),
    )
)
hsettings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pick(ends, indices):
    return [ends[i % len(ends)] for i in indices]


@hsettings
@given(scenarios)
def test_select_answers_like_the_stdlib(scenario):
    kinds, ri, wi, xi = scenario
    with Pipes(kinds) as pipes:
        lists = [pick(pipes.ends, ix) for ix in (ri, wi, xi)]
        expected = stdselect.select(*lists, 0)
        # With nothing ready the task waits out the (short) timeout and answers the same.
        assert in_task(gselect.select, *lists, 0.005 if not any(expected) else 10.0) == (
            "ok",
            expected,
        )


@hsettings
@given(scenarios, st.lists(st.sampled_from([1, 2, 4, 5, 7, 0x40, 0x3f]), max_size=6))
def test_poll_answers_like_the_stdlib(scenario, masks):
    kinds, ri, _, _ = scenario

    def answer(make_poll, timeout):
        p = make_poll()
        for obj, mask in zip(pick(pipes.ends, ri), masks, strict=False):
            p.register(obj, mask)
        return p.poll(timeout)

    with Pipes(kinds) as pipes:
        expected = answer(stdselect.poll, 0)
        got = in_task(answer, gselect.poll, 5 if not expected else 10_000)
        assert got == ("ok", expected)


def wait_select(reads):
    return gselect.select(reads, [], [], 10.0)[0]


def wait_poll(reads):
    p = gselect.poll()
    for fd in reads:
        p.register(fd, gselect.POLLIN)
    return [fd for fd, _ in p.poll(10_000)]


def wait_selector(cls):
    def wait(reads):
        with cls() as sel:
            for fd in reads:
                sel.register(fd, gselectors.EVENT_READ)
            return [key.fd for key, _ in sel.select(10.0)]

    wait.__name__ = f"wait_{cls.__name__}"
    return wait


WAITS = [wait_select, wait_poll] + [wait_selector(cls) for cls in SELECTORS]


@pytest.mark.parametrize("wait", WAITS, ids=lambda w: w.__name__[5:])
@hsettings
@given(kinds=st.integers(1, 6), written=st.lists(st.integers(0, 5), min_size=1, max_size=6))
def test_readiness_arriving_during_the_wait_is_reported(wait, kinds, written):
    """The task parks on pipes that are not ready; another task then makes a random subset
    of them ready, all at once (procs=1, and os.write does not park). The answer is exactly
    that subset: what the stdlib reports for the state after the writes."""
    with Pipes(["empty"] * kinds) as pipes:
        reads, writes = pipes.fds[0::2], pipes.fds[1::2]
        chosen = sorted({i % kinds for i in written})

        def main():
            def writer():
                for i in chosen:
                    os.write(writes[i], b"x")

            gr.go(writer)
            return wait(reads)

        got = gr.run(main, procs=1)
        expected = sorted(reads[i] for i in chosen)
        assert sorted(got) == sorted(stdselect.select(reads, [], [], 0)[0]) == expected


# --- outside a task: the stdlib calls ---------------------------------------------------------


def test_plain_threads_get_the_stdlib_behaviour_during_a_run(pipe):
    r, w = pipe
    results = []

    def thread():
        results.append(gselect.select([r], [], [], 0.01))
        p = gselect.poll()
        p.register(r)
        results.append(p.poll(10))
        with gselectors.DefaultSelector() as sel:
            sel.register(r, gselectors.EVENT_READ)
            results.append(sel.select(0.01))
        os.write(w, b"x")
        results.append(gselect.select([r], [], [], None))

    def main():
        th = threading.Thread(target=thread)
        th.start()
        gr.blocking(th.join)

    gr.run(main, procs=1)
    assert results == [([], [], []), [], [], ([r], [], [])]


def test_outside_run_the_stdlib_answers(pipe):
    r, w = pipe
    os.write(w, b"x")
    p = gselect.poll()
    p.register(r, gselect.POLLIN)
    assert gselect.select([r], [w], [], None) == stdselect.select([r], [w], [], None)
    assert p.poll() == [(r, gselect.POLLIN)]


# --- the module mirrors the stdlib's, and stays the channel select when called ----------------


def test_mirror_exports_every_stdlib_name():
    for name in dir(stdselect):
        if not name.startswith("_"):
            assert name in gselect.__all__
            if name not in ("select", "poll"):
                assert getattr(gselect, name) is getattr(stdselect, name)
    assert gselectors.DefaultSelector is gselectors.EpollSelector
    for cls in SELECTORS:
        assert issubclass(cls, getattr(stdselectors, cls.__name__))


def test_gr_select_stays_the_channel_select_when_the_fd_mirror_is_imported():
    # The mirror of the stdlib's select module was once goroutines.select: importing it
    # rebound the package attribute, the channel select, to the module.
    assert gr.select is goroutines._core.select

    def main():
        ch = gr.Chan(1)
        ch.send("v")
        return gr.select(gr.Recv(ch)), gr.select(gr.Recv(ch), default=True)

    assert gr.run(main, procs=1) == ((0, "v", True), (-1, None, False))
