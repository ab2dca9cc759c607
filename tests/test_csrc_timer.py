"""csrc/timer.c: the 4-ary timer heap against a Python model (heapq with lazy deletion),
checking after every operation that each G's timer_idx names its slot."""

import heapq

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from csrc_ffi import get

ffi, lib = get()

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# A narrow range forces ties; the extremes check there is no overflow in comparisons.
WHEN = st.one_of(st.integers(-3, 12), st.sampled_from([INT64_MIN, INT64_MAX, 0]))
NOW = st.one_of(st.integers(-4, 14), st.sampled_from([INT64_MIN, INT64_MAX]))


class TimerMachine(RuleBasedStateMachine):
    POOL = 200  # more than the initial capacity (64), so the heap grows

    def __init__(self):
        super().__init__()
        self.base = ffi.gc(lib.t_g_new(self.POOL), lib.t_g_free)
        self.h = ffi.new("gr_timerheap *")
        lib.gr_timerheap_init(self.h)
        self.when = {}  # G index -> deadline: the live timers
        self.heap = []  # heapq of (when, seq, index); entries not in self.when are stale
        self.seq = 0

    def g(self, i):
        return lib.t_g_at(self.base, i)

    def index(self, g):
        return None if g == ffi.NULL else lib.t_g_index(self.base, g)

    def model_min(self):
        while self.heap and self.when.get(self.heap[0][2]) != self.heap[0][0]:
            heapq.heappop(self.heap)  # stale: deleted, or popped and re-added since
        return self.heap[0][0] if self.heap else None

    def model_add(self, i, when):
        self.when[i] = when
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, i))

    @rule(i=st.integers(0, POOL - 1), when=WHEN)
    def add(self, i, when):
        if i in self.when:
            # g must have no timer: remove it first, like gr_timer_arm's callers do
            assert lib.gr_timerheap_del(self.h, self.g(i)) == 1
            del self.when[i]
        assert lib.gr_timerheap_add(self.h, self.g(i), when) == 0
        assert self.g(i).timer_when == when
        self.model_add(i, when)

    @rule(whens=st.lists(WHEN, min_size=1, max_size=80))
    def add_many(self, whens):
        free = [i for i in range(self.POOL) if i not in self.when]
        for i, when in zip(free, whens, strict=False):
            assert lib.gr_timerheap_add(self.h, self.g(i), when) == 0
            self.model_add(i, when)

    @rule(i=st.integers(0, POOL - 1))
    def delete(self, i):
        removed = lib.gr_timerheap_del(self.h, self.g(i))
        assert removed == (1 if i in self.when else 0)
        self.when.pop(i, None)

    @rule(now=NOW)
    def pop_expired(self, now):
        got = self.index(lib.gr_timerheap_pop_expired(self.h, now))
        earliest = self.model_min()
        if earliest is None or earliest > now:
            assert got is None
        else:
            # any of the G's tied for the earliest deadline may come out
            assert got in self.when and self.when[got] == earliest
            del self.when[got]

    @rule(now=NOW)
    def pop_all_expired(self, now):
        while True:
            got = self.index(lib.gr_timerheap_pop_expired(self.h, now))
            if got is None:
                break
            assert self.when[got] == self.model_min() <= now
            del self.when[got]
        earliest = self.model_min()
        assert earliest is None or earliest > now

    @invariant()
    def heap_matches(self):
        h = self.h
        assert h.n == len(self.when)
        assert h.n <= h.cap
        slots = {}
        for k in range(h.n):
            t = h.t[k]
            i = self.index(t.g)
            assert i in self.when, f"slot {k} holds G {i} which has no timer"
            assert i not in slots, f"G {i} in two slots"
            slots[i] = k
            assert t.when == self.when[i]
            assert t.g.timer_idx == k
            if k:
                assert h.t[(k - 1) // 4].when <= t.when, "heap order"
        for i in range(self.POOL):
            if i not in self.when:
                assert self.g(i).timer_idx == -1
        earliest = self.model_min()
        assert lib.gr_timerheap_earliest(h) == (INT64_MAX if earliest is None else earliest)

    def teardown(self):
        lib.gr_timerheap_free(self.h)
        assert self.h.n == 0 and self.h.t == ffi.NULL


TestTimerModel = TimerMachine.TestCase
TestTimerModel.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)


def test_pops_in_deadline_order():
    n = 500
    base = ffi.gc(lib.t_g_new(n), lib.t_g_free)
    h = ffi.new("gr_timerheap *")
    lib.gr_timerheap_init(h)
    whens = [(i * 7919) % 1000 for i in range(n)]
    for i, w in enumerate(whens):
        assert lib.gr_timerheap_add(h, lib.t_g_at(base, i), w) == 0
    assert lib.gr_timerheap_pop_expired(h, -1) == ffi.NULL
    out = []
    while True:
        g = lib.gr_timerheap_pop_expired(h, 10**6)
        if g == ffi.NULL:
            break
        assert g.timer_idx == -1
        out.append(whens[lib.t_g_index(base, g)])
    assert out == sorted(whens)
    assert lib.gr_timerheap_earliest(h) == INT64_MAX
    lib.gr_timerheap_free(h)


def test_delete_without_timer_is_a_no_op():
    base = ffi.gc(lib.t_g_new(2), lib.t_g_free)
    h = ffi.new("gr_timerheap *")
    lib.gr_timerheap_init(h)
    assert lib.gr_timerheap_del(h, lib.t_g_at(base, 0)) == 0
    assert lib.gr_timerheap_add(h, lib.t_g_at(base, 1), 5) == 0
    assert lib.gr_timerheap_del(h, lib.t_g_at(base, 0)) == 0
    assert h.n == 1
    assert lib.gr_timerheap_del(h, lib.t_g_at(base, 1)) == 1
    assert lib.gr_timerheap_del(h, lib.t_g_at(base, 1)) == 0
    assert h.n == 0
    lib.gr_timerheap_free(h)
