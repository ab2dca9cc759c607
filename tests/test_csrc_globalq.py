"""csrc/globalq.c: the global run queue, batch put/get against a deque model."""

import threading
from collections import Counter, deque

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from csrc_ffi import get

ffi, lib = get()


def new_gs(n):
    return ffi.gc(lib.t_g_new(n), lib.t_g_free)


def new_globalq():
    return ffi.gc(lib.t_globalq_new(), lib.t_globalq_free)


def chain(base, idx):
    """Link base[idx...] through schedlink (the last one's link left as garbage, which
    put_batch must overwrite). Returns (head, tail)."""
    gs = [lib.t_g_at(base, i) for i in idx]
    for a, b in zip(gs, gs[1:], strict=False):
        a.schedlink = b
    gs[-1].schedlink = lib.t_g_at(base, 0)  # not NULL: put_batch must terminate the chain
    return gs[0], gs[-1]


def walk(base, g):
    out = []
    while g != ffi.NULL:
        out.append(lib.t_g_index(base, g))
        g = g.schedlink
        assert len(out) < 100_000, "schedlink cycle"
    return out


class GlobalqMachine(RuleBasedStateMachine):
    POOL = 3000

    def __init__(self):
        super().__init__()
        self.base = new_gs(self.POOL)
        self.free = deque(range(self.POOL))
        self.q = new_globalq()
        self.model = deque()

    def take(self, k):
        return [self.free.popleft() for _ in range(min(k, len(self.free)))]

    @rule(k=st.integers(1, 20))
    def put(self, k):
        for i in self.take(k):
            g = lib.t_g_at(self.base, i)
            g.schedlink = lib.t_g_at(self.base, 1)  # garbage: put must overwrite it
            lib.gr_globalq_put(self.q, g)
            self.model.append(i)

    @rule(k=st.integers(1, 300))
    def put_batch(self, k):
        idx = self.take(k)
        if not idx:
            return
        head, tail = chain(self.base, idx)
        lib.gr_globalq_put_batch(self.q, head, tail, len(idx))
        self.model.extend(idx)

    @rule(k=st.integers(0, 400))
    def get_batch(self, k):
        n = ffi.new("uint32_t *", 777)
        g = lib.gr_globalq_get_batch(self.q, k, n)
        want = [self.model.popleft() for _ in range(min(k, len(self.model)))]
        got = walk(self.base, g)
        assert got == want
        assert n[0] == len(want)
        if not want:
            assert g == ffi.NULL
        self.free.extend(got)

    @invariant()
    def length(self):
        assert lib.gr_globalq_len(self.q) == len(self.model)

    def teardown(self):
        n = ffi.new("uint32_t *")
        rest = walk(self.base, lib.gr_globalq_get_batch(self.q, 2**32 - 1, n))
        assert rest == list(self.model)
        assert lib.gr_globalq_len(self.q) == 0
        assert lib.gr_globalq_get_batch(self.q, 10, n) == ffi.NULL and n[0] == 0


TestGlobalqModel = GlobalqMachine.TestCase
TestGlobalqModel.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)


def test_empty_and_zero_max():
    gs = new_gs(4)
    q = new_globalq()
    n = ffi.new("uint32_t *", 5)
    assert lib.gr_globalq_get_batch(q, 5, n) == ffi.NULL and n[0] == 0
    lib.gr_globalq_put(q, lib.t_g_at(gs, 2))
    n[0] = 5
    assert lib.gr_globalq_get_batch(q, 0, n) == ffi.NULL and n[0] == 0
    assert lib.gr_globalq_len(q) == 1
    assert walk(gs, lib.gr_globalq_get_batch(q, 5, n)) == [2] and n[0] == 1
    # emptied to the last G: the queue must accept a new tail afterwards
    lib.gr_globalq_put(q, lib.t_g_at(gs, 3))
    lib.gr_globalq_put(q, lib.t_g_at(gs, 1))
    assert walk(gs, lib.gr_globalq_get_batch(q, 5, n)) == [3, 1] and n[0] == 2


def test_concurrent_producers_and_consumers():
    """Python threads (the GIL is released in every call) put and get at once; each G
    comes out exactly once and each producer's G's come out in its order."""
    per, producers = 3000, 2
    gs = new_gs(per * producers)
    q = new_globalq()
    got = [[] for _ in range(2)]
    done = threading.Event()

    def produce(p):
        i = 0
        while i < per:
            k = min(1 + i % 7, per - i)
            idx = [p * per + j for j in range(i, i + k)]
            head, tail = chain(gs, idx)
            lib.gr_globalq_put_batch(q, head, tail, k)
            i += k

    def consume(c):
        n = ffi.new("uint32_t *")
        while True:
            finished = done.is_set()
            g = lib.gr_globalq_get_batch(q, 5, n)
            out = walk(gs, g)
            assert len(out) == n[0]
            got[c].extend(out)
            if finished and not out:
                return

    ps = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    cs = [threading.Thread(target=consume, args=(c,)) for c in range(2)]
    for t in ps + cs:
        t.start()
    for t in ps:
        t.join()
    done.set()
    for t in cs:
        t.join()
    seen = Counter(got[0] + got[1])
    assert sorted(seen) == list(range(per * producers))
    assert set(seen.values()) == {1}
    for c in range(2):
        for p in range(producers):
            mine = [i for i in got[c] if i // per == p]
            assert mine == sorted(mine)
    assert lib.gr_globalq_len(q) == 0
