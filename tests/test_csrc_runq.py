"""csrc/runq.c: a P's ring + runnext, against a Python model, and under real stealing races.

G's are entries of one calloc'd gr_g array and are named by their index in it.
"""

import os
import threading
from collections import Counter, deque

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from csrc_ffi import MODULE, get

ffi, lib = get()

SIZE = lib.GR_RUNQ_SIZE
HALF = SIZE // 2
PINNED = lib.GR_RUNNEXT_PINNED
WRAP_BASES = [0, 1, 2**31, 2**32 - HALF - 3, 2**32 - SIZE, 2**32 - 1]


def new_gs(n):
    return ffi.gc(lib.t_g_new(n), lib.t_g_free)


def new_runq(base=0):
    q = ffi.gc(lib.t_runq_new(), lib.t_runq_free)
    lib.t_runq_set_base(q, base % 2**32)
    return q


def new_globalq():
    return ffi.gc(lib.t_globalq_new(), lib.t_globalq_free)


class Gs:
    """A pool of G's named by index."""

    def __init__(self, n):
        self.base = new_gs(n)
        self.n = n

    def __getitem__(self, i):
        assert 0 <= i < self.n
        return lib.t_g_at(self.base, i)

    def index(self, g):
        """The index of g, or None for NULL."""
        return None if g == ffi.NULL else lib.t_g_index(self.base, g)

    def addr(self, i):
        return int(ffi.cast("uintptr_t", self[i]))


def drain_ring(gs, q):
    out = []
    while True:
        g = lib.gr_runq_pop(q)
        if g == ffi.NULL:
            return out
        out.append(gs.index(g))


def drain_globalq(gs, gq):
    out = []
    n = ffi.new("uint32_t *")
    while True:
        g = lib.gr_globalq_get_batch(gq, 1 << 20, n)
        if g == ffi.NULL:
            return out
        k = 0
        while g != ffi.NULL:
            out.append(gs.index(g))
            g = g.schedlink
            k += 1
        assert k == n[0]


def fill(gs, q, idx):
    for i in idx:
        assert lib.gr_runq_push(q, gs[i]) == 1


# ---- the model-based test --------------------------------------------------------------


class RunqMachine(RuleBasedStateMachine):
    """Owner operations (push, put with overflow, pop, put_next, take_next) plus a thief that
    steals into its own ring, against a deque + runnext model; the overflow goes to a real
    global queue whose contents are checked in order."""

    POOL = 6000

    def __init__(self):
        super().__init__()
        self.gs = Gs(self.POOL)
        self.free = deque(range(self.POOL))
        self.q = new_runq()
        self.thief = new_runq()
        self.gq = new_globalq()
        self.ring = deque()  # model of q's ring
        self.runnext = None  # (index, pinned)
        self.globalq = deque()  # model of gq
        self.took = []  # indices the owner or the thief obtained (back to the pool)

    def fresh(self):
        return self.free.popleft() if self.free else None

    def release(self, i):
        self.free.append(i)

    @initialize(base=st.sampled_from(WRAP_BASES), thief_base=st.sampled_from(WRAP_BASES))
    def start(self, base, thief_base):
        lib.t_runq_set_base(self.q, base)
        lib.t_runq_set_base(self.thief, thief_base)

    def model_put(self, i):
        """gr_runq_put: the tail, or (full ring) the first half + i to the global queue."""
        if len(self.ring) < SIZE:
            self.ring.append(i)
        else:
            moved = [self.ring.popleft() for _ in range(HALF)]
            self.globalq.extend(moved + [i])

    @rule(k=st.integers(1, 300))
    def push(self, k):
        for _ in range(k):
            i = self.fresh()
            if i is None:
                return
            ok = lib.gr_runq_push(self.q, self.gs[i])
            assert ok == (1 if len(self.ring) < SIZE else 0)
            if ok:
                self.ring.append(i)
            else:
                self.release(i)

    @rule(k=st.integers(1, 300))
    def put(self, k):
        for _ in range(k):
            i = self.fresh()
            if i is None:
                return
            before = lib.gr_globalq_len(self.gq)
            lib.gr_runq_put(self.q, self.gs[i], self.gq)
            overflow = len(self.ring) == SIZE
            self.model_put(i)
            assert lib.gr_globalq_len(self.gq) == before + (HALF + 1 if overflow else 0)

    @rule(extra=st.integers(1, 3))
    def put_until_overflow(self, extra):
        """Fill the ring to the brim, then overflow it `extra` times in a row."""
        while len(self.ring) < SIZE and self.free:
            self.put(1)
        for _ in range(extra):
            self.put(1)

    @rule(k=st.integers(1, 300))
    def pop(self, k):
        for _ in range(k):
            got = self.gs.index(lib.gr_runq_pop(self.q))
            want = self.ring.popleft() if self.ring else None
            assert got == want
            if got is None:
                return
            self.release(got)

    @rule(pinned=st.booleans())
    def put_next(self, pinned):
        i = self.fresh()
        if i is None:
            return
        kicked = self.gs.index(lib.gr_runq_put_next(self.q, self.gs[i], int(pinned), self.gq))
        old, self.runnext = self.runnext, (i, pinned)
        if old is None:
            assert kicked is None
        elif old[1]:
            # a pinned G is handed back to the caller, never queued
            assert kicked == old[0]
            self.release(kicked)
        else:
            assert kicked is None
            self.model_put(old[0])

    @rule()
    def take_next(self):
        got = self.gs.index(lib.gr_runq_take_next(self.q))
        want = self.runnext[0] if self.runnext else None
        self.runnext = None
        assert got == want
        if got is not None:
            self.release(got)

    @rule(k=st.integers(0, 300))
    def globalq_get(self, k):
        n = ffi.new("uint32_t *", 12345)
        g = lib.gr_globalq_get_batch(self.gq, k, n)
        want = [self.globalq.popleft() for _ in range(min(k, len(self.globalq)))]
        got = []
        while g != ffi.NULL:
            got.append(self.gs.index(g))
            g = g.schedlink
        assert got == want
        assert n[0] == len(want)
        for i in got:
            self.release(i)

    @rule(steal_next=st.booleans())
    def steal(self, steal_next):
        nstolen = ffi.new("uint32_t *", 12345)
        g = self.gs.index(lib.gr_runq_steal(self.thief, self.q, int(steal_next), nstolen))
        n = len(self.ring) - len(self.ring) // 2
        if n:
            grabbed = [self.ring.popleft() for _ in range(n)]
        elif steal_next and self.runnext and not self.runnext[1]:
            grabbed = [self.runnext[0]]
            self.runnext = None
        else:
            grabbed = []
        assert nstolen[0] == len(grabbed)
        assert g == (grabbed[-1] if grabbed else None)
        # the rest of the batch is published, in order, in the thief's ring
        assert lib.gr_runq_len(self.thief) == max(len(grabbed) - 1, 0)
        assert drain_ring(self.gs, self.thief) == grabbed[:-1]
        for i in grabbed:
            self.release(i)

    @invariant()
    def matches_model(self):
        assert lib.gr_runq_len(self.q) == len(self.ring)
        assert (lib.t_runq_tail(self.q) - lib.t_runq_head(self.q)) % 2**32 == len(self.ring)
        raw = lib.t_runq_runnext(self.q)
        if self.runnext is None:
            assert raw == 0
        else:
            i, pinned = self.runnext
            assert raw == self.gs.addr(i) | (PINNED if pinned else 0)
        stealable = bool(self.ring) or (self.runnext is not None and not self.runnext[1])
        assert bool(lib.gr_runq_stealable(self.q)) == stealable
        assert lib.gr_globalq_len(self.gq) == len(self.globalq)
        assert lib.gr_runq_len(self.thief) == 0

    def teardown(self):
        # Everything still queued comes out exactly as modelled.
        assert drain_ring(self.gs, self.q) == list(self.ring)
        assert drain_globalq(self.gs, self.gq) == list(self.globalq)


TestRunqModel = RunqMachine.TestCase
TestRunqModel.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)


# ---- deterministic steal tests ---------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 7, 8, HALF - 1, HALF, SIZE - 1, SIZE])
@pytest.mark.parametrize("base", [0, 2**32 - 5])
@pytest.mark.parametrize("steal_next", [0, 1])
def test_steal_takes_half_rounded_up(k, base, steal_next):
    gs = Gs(SIZE + 2)
    victim, thief = new_runq(base), new_runq(base + 77)
    fill(gs, victim, range(k))
    # a runnext is never taken while the ring has something
    lib.gr_runq_put_next(victim, gs[SIZE + 1], 0, ffi.NULL)
    nstolen = ffi.new("uint32_t *")
    g = gs.index(lib.gr_runq_steal(thief, victim, steal_next, nstolen))
    n = k - k // 2
    assert nstolen[0] == n
    assert g == n - 1  # the last G of the batch is the one to run
    assert lib.gr_runq_len(thief) == n - 1
    assert drain_ring(gs, thief) == list(range(n - 1))
    assert drain_ring(gs, victim) == list(range(n, k))
    assert gs.index(lib.gr_runq_take_next(victim)) == SIZE + 1


def test_steal_from_empty_ring_without_runnext():
    victim, thief = new_runq(), new_runq()
    nstolen = ffi.new("uint32_t *", 99)
    for steal_next in (0, 1):
        assert lib.gr_runq_steal(thief, victim, steal_next, nstolen) == ffi.NULL
        assert nstolen[0] == 0
    assert lib.gr_runq_len(thief) == 0


def test_steal_runnext_only_on_request():
    gs = Gs(4)
    victim, thief = new_runq(), new_runq()
    assert lib.gr_runq_put_next(victim, gs[2], 0, ffi.NULL) == ffi.NULL
    nstolen = ffi.new("uint32_t *", 99)
    assert lib.gr_runq_steal(thief, victim, 0, nstolen) == ffi.NULL
    assert nstolen[0] == 0
    assert lib.t_runq_runnext(victim) == gs.addr(2)
    assert lib.gr_runq_stealable(victim)

    g = lib.gr_runq_steal(thief, victim, 1, nstolen)
    assert gs.index(g) == 2
    assert nstolen[0] == 1
    assert lib.t_runq_runnext(victim) == 0
    assert lib.gr_runq_len(thief) == 0  # the one G is returned, not queued
    assert not lib.gr_runq_stealable(victim)


def test_pinned_runnext_is_never_stolen():
    gs = Gs(4)
    victim, thief = new_runq(), new_runq()
    lib.gr_runq_put_next(victim, gs[3], 1, ffi.NULL)
    assert not lib.gr_runq_stealable(victim)
    nstolen = ffi.new("uint32_t *", 99)
    for steal_next in (0, 1, 1):
        assert lib.gr_runq_steal(thief, victim, steal_next, nstolen) == ffi.NULL
        assert nstolen[0] == 0
    assert lib.t_runq_runnext(victim) == gs.addr(3) | PINNED
    # the owner still gets it back, untagged
    assert gs.index(lib.gr_runq_take_next(victim)) == 3


def test_pinned_runnext_is_returned_when_displaced():
    gs = Gs(8)
    gq = new_globalq()
    q = new_runq()
    assert lib.gr_runq_put_next(q, gs[0], 1, gq) == ffi.NULL
    # displacing a pinned G hands it back; it is not queued anywhere
    assert gs.index(lib.gr_runq_put_next(q, gs[1], 0, gq)) == 0
    assert lib.gr_runq_len(q) == 0
    # displacing an unpinned G queues it on the ring
    assert lib.gr_runq_put_next(q, gs[2], 1, gq) == ffi.NULL
    assert drain_ring(gs, q) == [1]
    assert gs.index(lib.gr_runq_take_next(q)) == 2
    assert lib.gr_runq_take_next(q) == ffi.NULL
    assert lib.gr_globalq_len(gq) == 0


def test_displaced_runnext_overflows_a_full_ring():
    gs = Gs(SIZE + 4)
    gq = new_globalq()
    q = new_runq(2**32 - 10)
    fill(gs, q, range(SIZE))
    lib.gr_runq_put_next(q, gs[SIZE], 0, gq)
    lib.gr_runq_put_next(q, gs[SIZE + 1], 0, gq)  # kicks SIZE into a full ring
    assert drain_globalq(gs, gq) == list(range(HALF)) + [SIZE]
    assert drain_ring(gs, q) == list(range(HALF, SIZE))
    assert gs.index(lib.gr_runq_take_next(q)) == SIZE + 1


def test_successive_steals_fill_thief_at_its_tail():
    """A thief's ring that has wrapped and been drained is reused from its tail."""
    gs = Gs(1000)
    victim, thief = new_runq(2**32 - 3), new_runq(2**32 - 100)
    nstolen = ffi.new("uint32_t *")
    seen = []
    nxt = 0
    for _ in range(20):
        while lib.gr_runq_len(victim) < 200 and nxt < 1000:
            fill(gs, victim, [nxt])
            nxt += 1
        g = lib.gr_runq_steal(thief, victim, 1, nstolen)
        if g == ffi.NULL:
            break
        batch = drain_ring(gs, thief) + [gs.index(g)]
        assert len(batch) == nstolen[0]
        seen.extend(batch)
    seen.extend(drain_ring(gs, victim))
    assert seen == list(range(nxt))


# ---- concurrency: real thieves -------------------------------------------------------

N = 200_000


def _race(thief_specs, n=N):
    """Run the owner loop against thieves in C, from Python threads (cffi drops the GIL).

    thief_specs: one (second_victim_index or None, stolen_from) per thief, where
    second_victim_index names an earlier thief whose ring this thief also steals from.
    Returns (per-G counts, number of steals, number of overflows to the global queue)."""
    gs = Gs(n)
    gq = new_globalq()
    victim = new_runq(2**32 - 1000)
    thieves = [new_runq(2**32 - 37 * (k + 1)) for k in range(len(thief_specs))]
    race = ffi.gc(lib.t_race_new(victim, gq, gs.base, n, len(thief_specs)), lib.t_race_free)
    outs = [ffi.new("int32_t[]", n) for _ in range(len(thief_specs) + 1)]
    counts = [0] * (len(thief_specs) + 1)
    errors = []

    def thief_main(k, second, stolen_from):
        try:
            v2 = thieves[second] if second is not None else ffi.NULL
            counts[k + 1] = lib.t_thief_loop(race, thieves[k], v2, stolen_from, outs[k + 1], n)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [
        threading.Thread(target=thief_main, args=(k, second, stolen_from), daemon=True)
        for k, (second, stolen_from) in enumerate(thief_specs)
    ]
    for t in threads:
        t.start()
    counts[0] = lib.t_owner_loop(race, outs[0], n)
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "thief did not stop"
    assert not errors
    assert lib.t_race_violations(race) == 0

    seen = Counter()
    for out, k in zip(outs, counts, strict=True):
        seen.update(ffi.unpack(out, k))
    rest = ffi.new("int32_t[]", n)
    for q, g in [(victim, gq)] + [(t, ffi.NULL) for t in thieves]:
        k = lib.t_drain(q, g, gs.base, rest, n)
        seen.update(ffi.unpack(rest, k))
    return seen, lib.t_race_steals(race), lib.t_race_overflows(race)


def _assert_exactly_once(seen, n=N):
    lost = [i for i in range(n) if seen[i] == 0]
    dup = [i for i in range(n) if seen[i] > 1]
    alien = [i for i in seen if not 0 <= i < n]
    assert not lost, f"{len(lost)} G's lost, e.g. {lost[:10]}"
    assert not dup, f"{len(dup)} G's obtained twice or more, e.g. {dup[:10]}"
    assert not alien
    assert sum(seen.values()) == n


@pytest.mark.parametrize("rep", range(3))
def test_race_one_thief(rep):
    seen, steals, overflows = _race([(None, 0)])
    _assert_exactly_once(seen)
    assert steals > 0  # the thieves did run during the owner's loop
    assert overflows > 0


@pytest.mark.parametrize("rep", range(2))
def test_race_two_thieves(rep):
    seen, steals, overflows = _race([(None, 0), (None, 0)])
    _assert_exactly_once(seen)
    assert steals > 0  # the thieves did run during the owner's loop
    assert overflows > 0


@pytest.mark.parametrize("rep", range(2))
def test_race_thief_robbed_by_another_thief(rep):
    """Thief 0 steals from the victim while thief 1 steals from the victim and from thief
    0's ring: thief 0's ring is consumed by its owner and a stealer at once, and a steal
    into it happens while another thief may still hold a stale view of it."""
    seen, steals, overflows = _race([(None, 1), (0, 0)])
    _assert_exactly_once(seen)
    assert steals > 0  # the thieves did run during the owner's loop
    assert overflows > 0


def test_a_steal_into_a_non_empty_ring_throws():
    # GR_ASSERT (throw.h) is compiled into these tests: a broken invariant must end the
    # process at once with what broke, as Go's throw does, not corrupt the ring.
    import subprocess
    import sys
    module = sys.modules[MODULE]
    code = f"""
import sys
sys.path.insert(0, {os.path.dirname(module.__file__)!r})
from {MODULE} import ffi, lib
gs = lib.t_g_new(4)
dst, src = lib.t_runq_new(), lib.t_runq_new()
assert lib.gr_runq_push(dst, lib.t_g_at(gs, 0)) and lib.gr_runq_push(src, lib.t_g_at(gs, 1))
n = ffi.new("uint32_t *")
lib.gr_runq_steal(dst, src, 0, n)
print("no throw")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode < 0 and "no throw" not in out.stdout, out
    assert "goroutines: fatal error: a steal into a non-empty run queue" in out.stderr
