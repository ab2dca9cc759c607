"""csrc/ctimer.c: the channel and function timers against a Python model, and the
stop/reset race against firing on real threads."""

import threading

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from csrc_ffi import get

ffi, lib = get()

INT64_MAX = 2**63 - 1
K = 8  # timers: 0..K/2-1 feed a channel, K/2..K-1 are function timers
CHAN_TIMERS = range(K // 2)
# Deadlines are unique per timer (when % K == index, periods multiples of K), so the model
# knows which timer the heap must fire next.
SLOT = st.integers(1, 40)
PERIOD = st.sampled_from([0, 0, K, 3 * K])


class CtimerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.h = ffi.gc(lib.t_ctimers_new(), lib.t_ctimers_free)
        self.ts = ffi.gc(lib.t_ctimer_new(K), lib.t_ctimer_free)
        self.chans = [ffi.gc(lib.gr_chan_new(1), lib.gr_chan_free) for _ in CHAN_TIMERS]
        for i in range(K):
            chan = self.chans[i] if i in CHAN_TIMERS else ffi.NULL
            lib.gr_ctimer_init(self.ts + i, chan, ffi.cast("void *", i + 1))
        lib.gr_ctimers_open(self.h)
        self.open = True
        self.gen = 0
        # The model: raw deadline, period, generation, blocked count; buffered value.
        self.when = [0] * K
        self.period = [0] * K
        self.tgen = [0] * K
        self.blocked = [0] * K
        self.buffered = [None] * K
        self.seq = 100

    # ---- model helpers
    def pending(self, i):
        return self.when[i] != 0 and self.tgen[i] == self.gen

    def in_heap(self, i):
        return self.pending(i) and (i not in CHAN_TIMERS or self.blocked[i] > 0)

    def earliest(self):
        return min((self.when[i] for i in range(K) if self.in_heap(i)), default=INT64_MAX)

    def value(self):
        self.seq += 1
        return self.seq

    def after_fire(self, i, now):
        if self.period[i]:
            w, p = self.when[i], self.period[i]
            self.when[i] = w + ((now - w) // p + 1) * p
        else:
            self.when[i] = 0

    def expect_fire(self, i, now, rc, elem):
        if i not in CHAN_TIMERS:
            assert rc == lib.GR_CTIMER_FUNC
        elif self.buffered[i] is None:
            assert rc == lib.GR_CTIMER_SENT
            self.buffered[i] = elem
        else:
            assert rc == lib.GR_CTIMER_DROPPED
        self.after_fire(i, now)

    # ---- rules
    @rule(i=st.integers(0, K - 1), slot=SLOT, period=PERIOD)
    def reset(self, i, slot, period):
        when = slot * K + i
        period = period if i in CHAN_TIMERS else 0
        stale = ffi.new("void **")
        before = self.earliest()
        rc = lib.gr_ctimer_reset(self.h, self.ts + i, when, period, stale)
        if not self.open:
            assert rc == lib.GR_CTIMER_ECLOSED and stale[0] == ffi.NULL
            return
        had = self.buffered[i]
        assert bool(rc & lib.GR_CTIMER_ACTIVE) == (self.pending(i) or had is not None)
        assert int(ffi.cast("intptr_t", stale[0])) == (had or 0)
        self.buffered[i] = None
        self.when[i], self.period[i], self.tgen[i] = when, period, self.gen
        assert bool(rc & lib.GR_CTIMER_KICK) == (self.in_heap(i) and when < before)

    @rule(i=st.integers(0, K - 1))
    def stop(self, i):
        stale = ffi.new("void **")
        had = self.buffered[i]
        active = lib.gr_ctimer_stop(self.h, self.ts + i, stale)
        assert active == (self.pending(i) or had is not None)
        assert int(ffi.cast("intptr_t", stale[0])) == (had or 0)
        self.buffered[i] = None
        self.when[i] = 0

    @rule(i=st.sampled_from(CHAN_TIMERS))
    def block(self, i):
        assert lib.gr_ctimer_block(self.h, self.ts + i) == 0
        self.blocked[i] += 1

    @precondition(lambda self: any(self.blocked))
    @rule(data=st.data())
    def unblock(self, data):
        i = data.draw(st.sampled_from([i for i in CHAN_TIMERS if self.blocked[i]]))
        lib.gr_ctimer_unblock(self.h, self.ts + i)
        self.blocked[i] -= 1

    @rule(i=st.sampled_from(CHAN_TIMERS))
    def receive(self, i):
        got = lib.gr_chan_take_buffered(self.chans[i])
        assert int(ffi.cast("intptr_t", got)) == (self.buffered[i] or 0)
        self.buffered[i] = None

    @rule(now=st.integers(0, 45 * K))
    def fire(self, now):
        elem = self.value()
        func = ffi.new("gr_ctimer **")
        rc = lib.gr_ctimers_fire(self.h, now, ffi.cast("void *", elem), func)
        due = [i for i in range(K) if self.in_heap(i) and self.when[i] <= now]
        if not due:
            assert rc == lib.GR_CTIMER_NONE
            return
        i = min(due, key=lambda k: self.when[k])
        if rc == lib.GR_CTIMER_FUNC:
            assert func[0] == self.ts + i
        self.expect_fire(i, now, rc, elem)

    @rule(i=st.integers(0, K - 1), now=st.integers(0, 45 * K))
    def run_lazily(self, i, now):
        elem = self.value()
        rc = lib.gr_ctimer_run(self.h, self.ts + i, now, ffi.cast("void *", elem))
        if i not in CHAN_TIMERS or not self.pending(i) or self.when[i] > now:
            assert rc == lib.GR_CTIMER_NONE
            return
        self.expect_fire(i, now, rc, elem)

    @rule(i=st.integers(0, K - 1))
    def forget(self, i):
        lib.gr_ctimer_forget(self.h, self.ts + i)
        self.when[i] = 0
        self.blocked[i] = 0

    @precondition(lambda self: self.open)
    @rule()
    def close(self):
        expected = {i for i in range(K) if self.in_heap(i)}
        lib.gr_ctimers_close(self.h)
        dropped = set()
        while (t := lib.gr_ctimers_drop(self.h)) != ffi.NULL:
            dropped.add(t - self.ts)
        assert dropped == expected
        for i in dropped:
            self.when[i] = 0
        self.open = False
        self.gen += 1

    @precondition(lambda self: not self.open)
    @rule()
    def reopen(self):
        lib.gr_ctimers_open(self.h)
        self.open = True

    # ---- invariants
    @invariant()
    def heap_matches_model(self):
        assert lib.gr_ctimers_earliest(self.h) == self.earliest()
        assert self.h.n == sum(self.in_heap(i) for i in range(K))
        for i in range(K):
            assert (self.ts[i].idx >= 0) == self.in_heap(i), i
            assert lib.gr_ctimer_when(self.ts + i) == self.when[i]
            assert self.ts[i].blocked == self.blocked[i]


TestCtimerMachine = CtimerMachine.TestCase
TestCtimerMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def test_ctimer_ticker_skips_missed_ticks():
    h = ffi.gc(lib.t_ctimers_new(), lib.t_ctimers_free)
    t = ffi.gc(lib.t_ctimer_new(1), lib.t_ctimer_free)
    c = ffi.gc(lib.gr_chan_new(1), lib.gr_chan_free)
    lib.gr_ctimer_init(t, c, ffi.NULL)
    lib.gr_ctimers_open(h)
    stale = ffi.new("void **")
    assert lib.gr_ctimer_reset(h, t, 100, 10, stale) & lib.GR_CTIMER_KICK == 0  # not in the heap
    assert lib.gr_ctimer_run(h, t, 99, ffi.cast("void *", 1)) == lib.GR_CTIMER_NONE
    # 3.5 periods late: one value, and the next tick is the first one after now.
    assert lib.gr_ctimer_run(h, t, 135, ffi.cast("void *", 1)) == lib.GR_CTIMER_SENT
    assert lib.gr_ctimer_when(t) == 140
    assert lib.gr_ctimer_run(h, t, 140, ffi.cast("void *", 2)) == lib.GR_CTIMER_DROPPED
    assert lib.gr_ctimer_when(t) == 150
    assert lib.gr_chan_len(c) == 1


def test_ctimer_ticker_period_does_not_overflow():
    h = ffi.gc(lib.t_ctimers_new(), lib.t_ctimers_free)
    t = ffi.gc(lib.t_ctimer_new(1), lib.t_ctimer_free)
    c = ffi.gc(lib.gr_chan_new(1), lib.gr_chan_free)
    lib.gr_ctimer_init(t, c, ffi.NULL)
    lib.gr_ctimers_open(h)
    stale = ffi.new("void **")
    lib.gr_ctimer_reset(h, t, 10, INT64_MAX - 5, stale)
    assert lib.gr_ctimer_run(h, t, 20, ffi.cast("void *", 1)) == lib.GR_CTIMER_SENT
    assert lib.gr_ctimer_when(t) == INT64_MAX  # never again, rather than wrapping around


def test_ctimer_send_on_closed_channel_is_dropped():
    h = ffi.gc(lib.t_ctimers_new(), lib.t_ctimers_free)
    t = ffi.gc(lib.t_ctimer_new(1), lib.t_ctimer_free)
    c = ffi.gc(lib.gr_chan_new(1), lib.gr_chan_free)
    lib.gr_ctimer_init(t, c, ffi.NULL)
    lib.gr_ctimers_open(h)
    stale = ffi.new("void **")
    lib.gr_ctimer_reset(h, t, 10, 0, stale)
    assert lib.gr_chan_close(c) == 0
    assert lib.gr_ctimer_run(h, t, 10, ffi.cast("void *", 1)) == lib.GR_CTIMER_DROPPED
    assert lib.gr_ctimer_when(t) == 0


def _race(lazy):
    h = ffi.gc(lib.t_ctimers_new(), lib.t_ctimers_free)
    t = ffi.gc(lib.t_ctimer_new(1), lib.t_ctimer_free)
    c = ffi.gc(lib.gr_chan_new(1), lib.gr_chan_free)
    lib.gr_ctimer_init(t, c, ffi.NULL)
    lib.gr_ctimers_open(h)
    if not lazy:
        assert lib.gr_ctimer_block(h, t) == 0  # a receiver waits: the timer is in the heap
    lib.t_ct_race_reset()
    n = 20_000
    out = {}
    fire = threading.Thread(target=lambda: out.setdefault("sent", lib.t_ct_fire_loop(h, lazy, t)))
    recv = threading.Thread(target=lambda: out.setdefault("got", lib.t_ct_recv_loop(c)))
    fire.start()
    recv.start()
    active = lib.t_ct_arm_loop(h, t, n)
    lib.t_ct_race_stop()
    fire.join()
    recv.join()
    # Every arm ended exactly once: received, or revoked by the reset/stop after it.
    assert out["got"] + active == n
    assert out["sent"] == out["got"] + lib.t_ct_race_stale()
    assert lib.t_ct_race_dropped() == 0
    assert lib.gr_ctimers_earliest(h) == INT64_MAX
    return out["got"]


def test_ctimer_reset_stop_race_with_heap_fire_loses_and_duplicates_nothing():
    _race(lazy=False)


def test_ctimer_reset_stop_race_with_lazy_run_loses_and_duplicates_nothing():
    _race(lazy=True)
