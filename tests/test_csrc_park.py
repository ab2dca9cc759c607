"""csrc/park.c (an M's wake-up token), csrc/idle.c (the idle-M set) and csrc/lock.c.

Parks run in C from Python threads: cffi releases the GIL around each call, so a parked
thread really sleeps in futex_wait while another thread unparks it. No test asserts on
timing: a timeout is only ever a bound that turns a lost wake-up into a failure rather
than a hang.
"""

import signal
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from csrc_ffi import get

ffi, lib = get()

LONG = 20 * 10**9  # a lost wake-up fails the test after this rather than hanging it
MS = 10**6


def new_park():
    return ffi.gc(lib.t_park_new(), lib.t_park_free)


class Parker(threading.Thread):
    """A thread that calls gr_park_wait once (without the GIL) and keeps the result."""

    def __init__(self, p, timeout_ns=LONG):
        super().__init__(daemon=True)
        self.p, self.timeout_ns, self.rc = p, timeout_ns, None

    def run(self):
        self.rc = lib.gr_park_wait(self.p, self.timeout_ns)


def wait_parked(p, t):
    """Until t sleeps on p (state PARKED), or t already returned."""
    while lib.t_park_state(p) != lib.GR_PARK_PARKED and t.is_alive():
        time.sleep(0.001)


# ---- park ----------------------------------------------------------------------------


def test_unpark_before_park_is_a_token():
    p = new_park()
    lib.gr_park_unpark(p)
    assert lib.t_park_state(p) == lib.GR_PARK_NOTIFIED
    assert lib.gr_park_wait(p, LONG) == lib.GR_PARK_WOKEN
    assert lib.t_park_state(p) == lib.GR_PARK_EMPTY
    # the token is consumed: the next park waits (and times out)
    assert lib.gr_park_wait(p, 1 * MS) == lib.GR_PARK_TIMEOUT
    assert lib.t_park_state(p) == lib.GR_PARK_EMPTY


def test_unparks_do_not_accumulate():
    p = new_park()
    for _ in range(3):
        lib.gr_park_unpark(p)
    assert lib.gr_park_wait(p, LONG) == lib.GR_PARK_WOKEN
    assert lib.gr_park_wait(p, 0) == lib.GR_PARK_TIMEOUT


@pytest.mark.parametrize("timeout_ns", [0, 1, 2 * MS])
def test_park_times_out(timeout_ns):
    p = new_park()
    t0 = lib.gr_nanotime()
    assert lib.gr_park_wait(p, timeout_ns) == lib.GR_PARK_TIMEOUT
    assert lib.gr_nanotime() - t0 >= timeout_ns  # never early (monotonic clock)
    assert lib.t_park_state(p) == lib.GR_PARK_EMPTY
    # a token left after a timeout still works
    lib.gr_park_unpark(p)
    assert lib.gr_park_wait(p, LONG) == lib.GR_PARK_WOKEN


@pytest.mark.parametrize("timeout_ns", [-1, LONG, 2**63 - 1])
def test_unpark_wakes_a_parked_thread(timeout_ns):
    p = new_park()
    t = Parker(p, timeout_ns)
    t.start()
    wait_parked(p, t)
    assert t.is_alive(), f"park returned {t.rc} before anyone unparked it"
    lib.gr_park_unpark(p)
    t.join(60)
    assert not t.is_alive()
    assert t.rc == lib.GR_PARK_WOKEN
    assert lib.t_park_state(p) == lib.GR_PARK_EMPTY


def test_signal_interrupts_a_park():
    # Python installs its handlers without SA_RESTART, so futex_wait returns EINTR.
    old = signal.signal(signal.SIGUSR1, lambda *a: None)
    try:
        p = new_park()
        t = Parker(p)
        t.start()
        wait_parked(p, t)
        # The signal may land just before the futex call; keep sending until the park
        # returns.
        while t.is_alive():
            signal.pthread_kill(t.ident, signal.SIGUSR1)
            t.join(0.05)
        assert t.rc == lib.GR_PARK_INTR
        assert lib.t_park_state(p) == lib.GR_PARK_EMPTY
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_ping_pong_loses_no_wakeup():
    """Two threads hand a turn back and forth 20000 times, each parking until it is its
    turn; a lost wake-up shows as a park that times out with the turn not come."""
    n = 20_000
    pa, pb = new_park(), new_park()
    lib.t_pingpong_reset()
    rc = [None, None]

    def side(k, mine, peer):
        rc[k] = lib.t_park_pingpong(mine, peer, k, n, 10 * 10**9)

    ts = [
        threading.Thread(target=side, args=(0, pa, pb), daemon=True),
        threading.Thread(target=side, args=(1, pb, pa), daemon=True),
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
        assert not t.is_alive()
    assert rc == [0, 0]


# ---- idle ----------------------------------------------------------------------------


def new_idle(n):
    return ffi.gc(lib.t_idle_new(n), lib.t_idle_free)


def test_idle_push_remove_pop():
    s = new_idle(4)
    lib.t_idle_lock(s)
    try:
        assert lib.gr_idle_pop_locked(s) == -1
        for m in (0, 2, 1):
            lib.gr_idle_push_locked(s, m)
        assert lib.t_idle_nmidle(s) == 3 and s.n == 3
        lib.gr_idle_push_locked(s, 2)  # already idle: no change
        assert lib.t_idle_nmidle(s) == 3 and s.n == 3
        assert lib.gr_idle_remove_locked(s, 2) == 1
        assert lib.gr_idle_remove_locked(s, 2) == 0
        assert lib.gr_idle_remove_locked(s, 3) == 0
        assert lib.t_idle_nmidle(s) == 2
        assert lib.gr_idle_pop_locked(s) == 1  # a stack: last in, first out
        assert lib.gr_idle_pop_locked(s) == 0
        assert lib.gr_idle_pop_locked(s) == -1
        assert lib.t_idle_nmidle(s) == 0 and s.n == 0
        lib.gr_idle_push_locked(s, 3)  # popped M's can come back
        assert lib.t_idle_nmidle(s) == 1 and s.in_set[3] == 1
    finally:
        lib.t_idle_unlock(s)


OPS = st.lists(
    st.tuples(st.sampled_from(["push", "remove", "pop"]), st.integers(0, 7)), max_size=60
)


@settings(max_examples=100, deadline=None)
@given(ops=OPS)
def test_idle_model(ops):
    s = new_idle(8)
    model = []  # stack of M ids
    lib.t_idle_lock(s)
    try:
        for op, m in ops:
            if op == "push":
                lib.gr_idle_push_locked(s, m)
                if m not in model:
                    model.append(m)
            elif op == "remove":
                assert lib.gr_idle_remove_locked(s, m) == (1 if m in model else 0)
                if m in model:
                    model.remove(m)
            else:
                top = s.stack[s.n - 1] if s.n else -1
                got = lib.gr_idle_pop_locked(s)
                # a stack: the top comes out (remove_locked may have reordered the rest)
                assert got == top
                if model:
                    assert got in model
                    model.remove(got)
                else:
                    assert got == -1
            assert lib.t_idle_nmidle(s) == len(model) == s.n
            assert sorted(s.stack[k] for k in range(s.n)) == sorted(model)
            assert [m for m in range(8) if s.in_set[m]] == sorted(model)
    finally:
        lib.t_idle_unlock(s)


def test_idle_pop_order_without_removes():
    s = new_idle(6)
    lib.t_idle_lock(s)
    try:
        for m in (4, 1, 5, 0):
            lib.gr_idle_push_locked(s, m)
        assert [lib.gr_idle_pop_locked(s) for _ in range(5)] == [0, 5, 1, 4, -1]
    finally:
        lib.t_idle_unlock(s)


# ---- lock ----------------------------------------------------------------------------


def test_lock_mutual_exclusion():
    """Two threads increment a plain counter 200000 times each under a gr_lock, holding it
    across sched_yield now and then so that the contended (futex) path is taken."""
    iters = 200_000
    lock = ffi.gc(lib.t_lock_new(), lib.t_lock_free)
    lib.t_lock_counter_reset()
    ts = [
        threading.Thread(target=lib.t_lock_hammer, args=(lock, iters), daemon=True)
        for _ in range(2)
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
        assert not t.is_alive()
    assert lib.t_lock_counter() == 2 * iters
