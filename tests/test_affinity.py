"""gr.topology() and run(affinity=...): NUMA nodes from sysfs and pinning each M's thread.

topology() is restricted to os.sched_getaffinity(0), so the fake sysfs trees below always
put the CPUs this process may use (on the test machine: 0 and 1) into them and assert on
the node -> CPU mapping left after the restriction. Pinning is checked from inside tasks
with os.sched_getaffinity(0), which on Linux reports the calling thread's mask.
"""

import os
import threading
import time

import pytest

import goroutines as gr

ALLOWED = sorted(os.sched_getaffinity(0))
C0 = ALLOWED[0]
C1 = ALLOWED[1] if len(ALLOWED) > 1 else None
needs_two = pytest.mark.skipif(C1 is None, reason="needs two allowed CPUs")


def make_sysfs(root, nodes=None, online=None, extra=None):
    """A fake sysfs tree: ``nodes`` {id: cpulist text}, ``online`` text (None: no file)."""
    cpu = root / "devices" / "system" / "cpu"
    cpu.mkdir(parents=True, exist_ok=True)
    if online is not None:
        (cpu / "online").write_text(online)
    if nodes is not None:
        node = root / "devices" / "system" / "node"
        node.mkdir(parents=True, exist_ok=True)
        for nid, text in nodes.items():
            d = node / f"node{nid}"
            d.mkdir()
            if text is not None:
                (d / "cpulist").write_text(text)
    for rel, text in (extra or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    """Build a fake tree and point GOROUTINES_SYSFS_ROOT at it."""

    def build(**kw):
        root = make_sysfs(tmp_path / "sys", **kw)
        monkeypatch.setenv("GOROUTINES_SYSFS_ROOT", str(root))
        return root

    return build


@pytest.fixture
def restore_affinity():
    saved = os.sched_getaffinity(0)
    yield saved
    os.sched_setaffinity(0, saved)


def cpulist(cpus):
    return ",".join(str(c) for c in cpus) + "\n"


# --- topology() on the real machine -------------------------------------------------------


def test_real_topology_covers_allowed_cpus(monkeypatch):
    monkeypatch.delenv("GOROUTINES_SYSFS_ROOT", raising=False)
    topo = gr.topology()
    assert topo
    assert all(isinstance(n, int) and n >= 0 for n in topo)
    cpus = [c for cs in topo.values() for c in cs]
    assert len(cpus) == len(set(cpus)), "a CPU in two nodes"
    assert set(cpus) == set(ALLOWED)
    for cs in topo.values():
        assert cs and cs == sorted(cs)


def test_empty_env_means_sys(monkeypatch):
    monkeypatch.setenv("GOROUTINES_SYSFS_ROOT", "")
    assert {c for cs in gr.topology().values() for c in cs} == set(ALLOWED)


def test_topology_works_outside_and_inside_run():
    inside = gr.run(gr.topology, procs=1)
    assert inside == gr.topology()


# --- topology() on fake trees ----------------------------------------------------------------


@needs_two
def test_two_nodes_of_four(sysfs):
    # node0 = {C0, 4, 5, 6}, node1 = {C1, 7, 8, 9}: one allowed CPU left in each.
    sysfs(
        online="0-15\n",
        nodes={0: cpulist([C0, 10, 11, 12]), 1: cpulist([C1, 13, 14, 15])},
    )
    assert gr.topology() == {0: [C0], 1: [C1]}


@needs_two
def test_two_nodes_both_cpus_on_one(sysfs):
    sysfs(online="0-7\n", nodes={0: cpulist([C0, C1, 100, 101]), 1: "200-203\n"})
    # node1 has no allowed CPU and is dropped.
    assert gr.topology() == {0: [C0, C1]}


@needs_two
def test_four_nodes(sysfs):
    sysfs(
        online="0-300\n",
        nodes={0: cpulist([C0, 100]), 1: "101-102\n", 2: cpulist([C1, 103]), 3: "104\n"},
    )
    assert gr.topology() == {0: [C0], 2: [C1]}


@needs_two
def test_sparse_node_ids(sysfs):
    sysfs(online="0-300\n", nodes={3: cpulist([C1]), 7: cpulist([C0])})
    assert gr.topology() == {3: [C1], 7: [C0]}


@needs_two
def test_offline_cpu_dropped(sysfs):
    # C0 is listed by node0 but offline: node0 vanishes.
    sysfs(online=cpulist([C1]), nodes={0: cpulist([C0]), 1: cpulist([C1])})
    assert gr.topology() == {1: [C1]}


@needs_two
def test_no_online_file_uses_union_of_nodes(sysfs):
    sysfs(online=None, nodes={0: cpulist([C0]), 1: cpulist([C1])})
    assert gr.topology() == {0: [C0], 1: [C1]}


@needs_two
def test_cpu_in_no_node_is_dropped(sysfs):
    sysfs(online=cpulist([C0, C1]), nodes={0: cpulist([C1])})
    assert gr.topology() == {0: [C1]}


@needs_two
def test_memory_only_node_dropped(sysfs):
    sysfs(online="0-300\n", nodes={0: cpulist([C0, C1]), 1: "\n"})
    assert gr.topology() == {0: [C0, C1]}


@needs_two
def test_node_without_cpulist_file(sysfs):
    sysfs(online="0-300\n", nodes={0: cpulist([C0]), 1: None, 2: cpulist([C1])})
    assert gr.topology() == {0: [C0], 2: [C1]}


def test_no_listed_cpu_allowed_falls_back_to_single_node(sysfs):
    sysfs(online="500-507\n", nodes={0: "500-503\n", 1: "504-507\n"})
    assert gr.topology() == {0: ALLOWED}


def test_no_node_dir_is_single_node(sysfs):
    sysfs(online=cpulist(ALLOWED), nodes=None)
    assert gr.topology() == {0: ALLOWED}


def test_empty_tree_is_single_node_of_allowed(sysfs):
    sysfs()
    assert gr.topology() == {0: ALLOWED}


def test_missing_root_is_single_node_of_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("GOROUTINES_SYSFS_ROOT", str(tmp_path / "does-not-exist"))
    assert gr.topology() == {0: ALLOWED}


@needs_two
def test_range_syntax_and_trailing_blanks(sysfs):
    lo, hi = min(C0, C1), max(C0, C1)
    sysfs(online=f"{lo}-{hi + 10}  \n", nodes={0: f"{lo}-{hi}\t\n"})
    assert gr.topology() == {0: [c for c in ALLOWED if lo <= c <= hi]}


@needs_two
def test_restricted_to_thread_affinity(sysfs, restore_affinity):
    sysfs(online="0-300\n", nodes={0: cpulist([C0]), 1: cpulist([C1])})
    os.sched_setaffinity(0, {C1})
    assert gr.topology() == {1: [C1]}


@pytest.mark.parametrize(
    "where, text",
    [
        ("node", "garbage\n"),
        ("node", "3-1\n"),
        ("node", "1-\n"),
        ("node", "0,,1\n"),
        ("node", "99999999\n"),
        ("online", "zero\n"),
        ("online", "-1\n"),
    ],
)
def test_malformed_file_names_it(sysfs, where, text):
    if where == "node":
        root = sysfs(online=cpulist(ALLOWED), nodes={0: cpulist(ALLOWED), 1: text})
        bad = root / "devices" / "system" / "node" / "node1" / "cpulist"
    else:
        root = sysfs(online=text, nodes={0: cpulist(ALLOWED)})
        bad = root / "devices" / "system" / "cpu" / "online"
    with pytest.raises(ValueError) as info:
        gr.topology()
    assert str(bad) in str(info.value)


def test_malformed_sysfs_fails_run_with_affinity(sysfs):
    sysfs(online="what\n", nodes={0: cpulist(ALLOWED)})
    with pytest.raises(ValueError, match="online"):
        gr.run(lambda: None, procs=1, affinity="cpu")


@pytest.mark.parametrize("where", ["node", "online"])
def test_malformed_sysfs_does_not_fail_a_run_without_affinity(sysfs, where):
    # run() read the topology on every call, so a malformed tree failed plain runs that
    # never use it; only affinity needs sysfs.
    if where == "node":
        sysfs(online=cpulist(ALLOWED), nodes={0: cpulist(ALLOWED), 1: "garbage\n"})
    else:
        sysfs(online="what\n", nodes={0: cpulist(ALLOWED)})
    with pytest.raises(ValueError, match="malformed"):
        gr.topology()
    assert gr.run(lambda: gr.go(gr.procs).join(), procs=2) == 2
    assert gr.run(gr.procs, procs=1) == 1


# --- run(affinity=...) -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["CPU", "numa", "", 1, True])
def test_unknown_affinity_is_value_error(bad):
    ran = []
    with pytest.raises(ValueError):
        gr.run(ran.append, 1, procs=1, affinity=bad)
    assert ran == []
    # The runtime is still usable.
    assert gr.run(lambda: 5, procs=1) == 5


def record_masks(procs, affinity):
    """Record (thread ident, thread mask) on every M. main and procs - 1 tasks each record,
    spin without a park point until all have recorded (so no M can run two of them), and
    record again: a mask that changed shows as two. Returns {ident: set of masks}, caller
    ident."""
    by_thread = {}
    lock = threading.Lock()
    stop = []

    def rec():
        mask = frozenset(os.sched_getaffinity(0))
        with lock:
            by_thread.setdefault(threading.get_ident(), set()).add(mask)

    def hold():
        rec()
        while len(by_thread) < procs and not stop:
            pass
        rec()

    def main():
        holders = [gr.go(hold) for _ in range(procs - 1)]
        try:
            hold()
        finally:
            stop.append(True)  # main stopped by the guard must not leave the holders spinning
        for t in holders:
            t.join()

    gr.run(main, procs=procs, affinity=affinity)
    assert len(by_thread) == procs, by_thread
    return by_thread, threading.get_ident()


def test_affinity_none_leaves_threads_unpinned(restore_affinity):
    by_thread, _ = record_masks(2, None)
    for masks in by_thread.values():
        assert masks == {frozenset(restore_affinity)}


@needs_two
def test_affinity_cpu_pins_each_m_to_one_cpu(restore_affinity):
    by_thread, _ = record_masks(2, "cpu")
    for masks in by_thread.values():
        assert len(masks) == 1, "a thread's mask changed during the run"
        (mask,) = masks
        assert len(mask) == 1 and mask <= set(ALLOWED)
    # Two Ms, two CPUs: each M has its own.
    seen = {m for ms in by_thread.values() for m in ms}
    assert seen == {frozenset([C0]), frozenset([C1])}


@needs_two
def test_affinity_cpu_m0_gets_first_cpu(restore_affinity):
    """P0 (whose M is the caller's thread) takes the first CPU of the first node."""
    by_thread, caller = record_masks(2, "cpu")
    assert by_thread[caller] == {frozenset([C0])}


@needs_two
def test_affinity_cpu_more_procs_than_cpus(restore_affinity):
    by_thread, _ = record_masks(3, "cpu")
    for masks in by_thread.values():
        assert len(masks) == 1
        (mask,) = masks
        assert len(mask) == 1 and mask <= set(ALLOWED)


@needs_two
def test_affinity_cpu_fills_node_by_node(sysfs, restore_affinity):
    """With C1 on node0 and C0 on node1, P0 gets C1 (node0 first) and P1 gets C0."""
    sysfs(online="0-300\n", nodes={0: cpulist([C1]), 1: cpulist([C0])})
    by_thread, caller = record_masks(2, "cpu")
    assert by_thread[caller] == {frozenset([C1])}
    others = [ms for ident, ms in by_thread.items() if ident != caller]
    assert others == [{frozenset([C0])}]


def test_affinity_node_single_node_pins_to_all_allowed(restore_affinity):
    by_thread, _ = record_masks(2, "node")
    for masks in by_thread.values():
        assert masks == {frozenset(ALLOWED)}


@needs_two
def test_affinity_node_two_fake_nodes(sysfs, restore_affinity):
    sysfs(online="0-300\n", nodes={0: cpulist([C0]), 1: cpulist([C1])})
    by_thread, caller = record_masks(2, "node")
    for masks in by_thread.values():
        assert len(masks) == 1
        (mask,) = masks
        assert mask in (frozenset([C0]), frozenset([C1]))
    assert by_thread[caller] == {frozenset([C0])}
    assert {m for ms in by_thread.values() for m in ms} == {frozenset([C0]), frozenset([C1])}


@needs_two
def test_affinity_respects_confined_caller(restore_affinity):
    """A caller confined to one CPU: every M is pinned inside that set, and the caller's
    mask is the confined one again afterwards."""
    os.sched_setaffinity(0, {C1})
    by_thread, _ = record_masks(2, "cpu")
    for masks in by_thread.values():
        assert masks == {frozenset([C1])}
    assert os.sched_getaffinity(0) == {C1}


@pytest.mark.parametrize("affinity", ["cpu", "node"])
def test_caller_affinity_restored(affinity, restore_affinity):
    before = os.sched_getaffinity(0)
    gr.run(lambda: os.sched_getaffinity(0), procs=2, affinity=affinity)
    assert os.sched_getaffinity(0) == before


@pytest.mark.parametrize("affinity", ["cpu", "node"])
def test_caller_affinity_restored_after_exception(affinity, restore_affinity):
    before = os.sched_getaffinity(0)

    def main():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        gr.run(main, procs=2, affinity=affinity)
    assert os.sched_getaffinity(0) == before


@needs_two
def test_caller_affinity_restored_after_deadlock(restore_affinity):
    before = os.sched_getaffinity(0)
    with pytest.raises(gr.Deadlock):
        gr.run(lambda: gr.Chan().recv(), procs=2, affinity="cpu")
    assert os.sched_getaffinity(0) == before


def test_offload_threads_not_pinned(restore_affinity):
    """Offload pool threads are not Ms: whatever M submitted the call, its pinning must not
    confine the pool thread to one CPU... unless it was created from a pinned thread, which
    inherits the mask. Only check that the call sees a subset of the allowed CPUs."""

    def main():
        return gr.blocking(os.sched_getaffinity, 0)

    mask = gr.run(main, procs=2, affinity="cpu")
    assert mask and mask <= set(ALLOWED)


# --- stats() --------------------------------------------------------------------------------------


def test_stats_shape(procs):
    def main():
        for t in [gr.go(gr.sleep, 0) for _ in range(100)]:
            t.join()
        return gr.stats()

    s = gr.run(main, procs=procs)
    assert len(s["procs"]) == procs
    for p in s["procs"]:
        for key in ("executed", "stolen", "steals_local", "steals_remote", "parks", "m_parks"):
            assert type(p[key]) is int, key
    assert sum(p["executed"] for p in s["procs"]) >= 100
    assert s["steals"] == sum(p["steals_local"] + p["steals_remote"] for p in s["procs"])
    assert 0 <= s["idle_ms"] <= procs
    assert 0 <= s["spinning_ms"] <= procs


def test_stats_outside_run_is_error():
    with pytest.raises(RuntimeError):
        gr.stats()


@needs_two
def test_work_is_shared_at_two_procs():
    """Many GIL-releasing tasks spawned from one task at procs=2: the other P runs some of
    them (by stealing or through the global queue), and the steal counters are consistent."""

    def work():
        time.sleep(0.0005)

    def main():
        ts = [gr.go(work) for _ in range(400)]
        for t in ts:
            t.join()
        return gr.stats()

    s = gr.run(main, procs=2)
    assert all(p["executed"] > 0 for p in s["procs"]), s
    # Every successful steal moves at least one task.
    assert s["stolen"] >= s["steals"]
