"""csrc/trace.c: the tracer's per-thread rings, driven through cffi.

Writers are C loops (t_trace_write) on Python threads: cffi releases the GIL around each
call, so a writer and the collector really run at once. Every event carries g = k,
arg = ~k and aux = the low bits of k, so a torn copy shows, and consecutive k within one
ring show that nothing in the middle went missing.
"""

import threading

import pytest

from csrc_ffi import get

ffi, lib = get()


@pytest.fixture(autouse=True)
def stopped():
    lib.gr_trace_stop()
    yield
    lib.gr_trace_stop()


def collect():
    """(events as (thread, g) pairs, dropped, violations) of the current session."""
    out = ffi.new("gr_trace_rec **")
    n = ffi.new("size_t *")
    dropped = ffi.new("uint64_t *")
    assert lib.gr_trace_collect(out, n, dropped) == 0
    try:
        bad = lib.t_trace_check(out[0], n[0])
        evs = [(out[0][i].thread, out[0][i].ev.g) for i in range(n[0])]
    finally:
        lib.free(out[0])
    return evs, dropped[0], bad


def test_events_round_trip():
    assert lib.gr_trace_start(64) == 0
    lib.gr_trace_emit(3, 7, 9, 2)  # a park of task 7, reason 2
    lib.gr_trace_stop()
    out = ffi.new("gr_trace_rec **")
    n = ffi.new("size_t *")
    dropped = ffi.new("uint64_t *")
    assert lib.gr_trace_collect(out, n, dropped) == 0
    try:
        assert n[0] == 1 and dropped[0] == 0
        ev = out[0][0].ev
        assert (ev.kind, ev.g, ev.arg, ev.aux, ev.m) == (3, 7, 9, 2, -1)  # -1: not an M
        assert ev.ts > 0
    finally:
        lib.free(out[0])


def test_one_session_at_a_time():
    assert lib.gr_trace_start(64) == 0
    assert lib.gr_trace_start(64) == -1
    lib.gr_trace_stop()
    lib.gr_trace_stop()  # idempotent
    assert lib.gr_trace_start(64) == 0


def test_off_records_nothing():
    assert lib.gr_trace_start(64) == 0
    lib.gr_trace_stop()
    lib.t_trace_write(0, 10)  # checks the flag, as the hooks do
    assert collect() == ([], 0, 0)


@pytest.mark.parametrize("cap,n", [(16, 100), (64, 64), (64, 1000), (100, 5000)])
def test_ring_keeps_the_newest_and_counts_the_rest(cap, n):
    assert lib.gr_trace_start(cap) == 0
    lib.t_trace_write(0, n)
    lib.gr_trace_stop()
    evs, dropped, bad = collect()
    size = 1 << (max(cap, 16) - 1).bit_length()  # rounded up to a power of two
    kept = min(n, size)
    assert bad == 0
    assert [g for _, g in evs] == list(range(n - kept, n))
    assert dropped == n - kept


def test_a_new_session_starts_empty():
    assert lib.gr_trace_start(64) == 0
    lib.t_trace_write(0, 10)
    lib.gr_trace_stop()
    assert lib.gr_trace_start(64) == 0
    lib.t_trace_write(100, 3)
    lib.gr_trace_stop()
    evs, dropped, _ = collect()
    assert [g for _, g in evs] == [100, 101, 102] and dropped == 0


def test_rings_of_exited_threads_are_collected():
    assert lib.gr_trace_start(64) == 0
    threads = [threading.Thread(target=lib.t_trace_write, args=(1000 * i, 20)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lib.gr_trace_stop()
    evs, dropped, bad = collect()
    assert bad == 0 and dropped == 0
    per = {}
    for thread, g in evs:
        per.setdefault(thread, []).append(g)
    assert sorted(per.values()) == [list(range(1000 * i, 1000 * i + 20)) for i in range(4)]
    # The next session frees them.
    assert lib.gr_trace_start(64) == 0
    assert collect() == ([], 0, 0)


def test_collect_while_writers_write():
    """Snapshots taken while two threads overwrite their rings at full speed hold only
    intact, consecutive events; the final one accounts for every event exactly once."""
    assert lib.gr_trace_start(256) == 0
    per_writer = 200_000
    writers = [threading.Thread(target=lib.t_trace_write, args=(i << 40, per_writer))
               for i in range(2)]
    for w in writers:
        w.start()
    snapshots = 0
    while any(w.is_alive() for w in writers) or snapshots < 3:
        evs, _, bad = collect()
        assert bad == 0
        snapshots += 1
    for w in writers:
        w.join()
    lib.gr_trace_stop()
    evs, dropped, bad = collect()
    assert bad == 0
    assert len(evs) + dropped == 2 * per_writer
    last = {g >> 40: g for _, g in evs}
    assert sorted(last.values()) == [(i << 40) + per_writer - 1 for i in range(2)]
