"""csrc/topology.c: sysfs range lists, NUMA nodes, affinity restriction, P placement, pinning.

The C file is compiled here with cffi (no dependency on the extension build), and every
sysfs case runs against a fake tree in a temporary directory.
"""

import importlib.util
import os
import re
import tempfile
import threading
from pathlib import Path

import pytest
from ft313 import require
from hypothesis import given, settings, strategies as st

CSRC = Path(__file__).resolve().parent.parent / "csrc"
MAX_CPUS = 1024

CDEF = """
#define GR_MAX_CPUS ...
#define GR_MAX_NODES ...
#define GR_TOPO_PATH_MAX ...
#define GR_TOPO_EMALFORMED ...
#define GR_TOPO_EINVAL ...
typedef struct gr_cpuset { uint64_t bits[...]; } gr_cpuset;
void gr_cpuset_zero(gr_cpuset *s);
void gr_cpuset_add(gr_cpuset *s, int cpu);
int gr_cpuset_has(const gr_cpuset *s, int cpu);
int gr_cpuset_count(const gr_cpuset *s);
int gr_cpuset_nth(const gr_cpuset *s, int n);
void gr_cpuset_and(gr_cpuset *s, const gr_cpuset *other);
int gr_cpuset_parse(const char *text, gr_cpuset *out);
typedef struct gr_topology {
    int nnodes;
    int node_ids[...];
    gr_cpuset node_cpus[...];
    gr_cpuset online;
    char bad_path[...];
} gr_topology;
int gr_topology_read(const char *sysfs_root, gr_topology *out);
void gr_topology_restrict(gr_topology *t, const gr_cpuset *allowed);
int gr_topology_allowed(gr_cpuset *out);
typedef enum { GR_AFFINITY_NONE, GR_AFFINITY_CPU, GR_AFFINITY_NODE } gr_affinity;
int gr_topology_place(const gr_topology *t, gr_affinity policy, int p, gr_cpuset *cpus_out,
                      int *node_out);
int gr_topo_pin_self(const gr_cpuset *cpus);
"""


@pytest.fixture(scope="module")
def mod(tmp_path_factory):
    cffi = require("cffi", "it refuses to build there")
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    name = "_gr_topology_test"
    ffi.set_source(
        name,
        # No -I csrc: csrc/sched.h would shadow the system <sched.h>.
        f'#include "{CSRC / "topology.h"}"',
        sources=[str(CSRC / "topology.c")],
        extra_compile_args=["-std=c11", "-O1"],
    )
    so = ffi.compile(tmpdir=str(tmp_path_factory.mktemp("topology_build")))
    spec = importlib.util.spec_from_file_location(name, so)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lib(mod):
    return mod.lib


@pytest.fixture(scope="module")
def ffi(mod):
    return mod.ffi


# ---- helpers -------------------------------------------------------------------------


def cpuset(ffi, cpus):
    """A gr_cpuset built bit by bit, independently of the C helpers."""
    s = ffi.new("gr_cpuset *")
    for c in cpus:
        s.bits[c // 64] |= 1 << (c % 64)
    return s


def cpus_of(s):
    """The CPU ids of a gr_cpuset (pointer or struct), decoded in Python."""
    return {w * 64 + b for w in range(MAX_CPUS // 64) for b in range(64) if s.bits[w] >> b & 1}


def parse(lib, ffi, text):
    """The parsed set, or None for GR_TOPO_EMALFORMED."""
    out = ffi.new("gr_cpuset *")
    rc = lib.gr_cpuset_parse(text.encode(), out)
    assert rc in (0, lib.GR_TOPO_EMALFORMED)
    return cpus_of(out) if rc == 0 else None


def nodes_of(t):
    return [(t.node_ids[i], cpus_of(t.node_cpus[i])) for i in range(t.nnodes)]


def read(lib, ffi, root):
    t = ffi.new("gr_topology *")
    rc = lib.gr_topology_read(str(root).encode(), t)
    return rc, t


def place(lib, ffi, t, policy, p):
    cpus = ffi.new("gr_cpuset *")
    node = ffi.new("int *")
    rc = lib.gr_topology_place(t, policy, p, cpus, node)
    return rc, cpus_of(cpus), node[0]


def ranges(cpus):
    """Canonical kernel range list for a set."""
    out, run = [], []
    for c in sorted(cpus):
        if run and c != run[-1] + 1:
            out.append(run)
            run = []
        run.append(c)
    if run:
        out.append(run)
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in out)


def make_sysfs(root, online="0-7\n", nodes=None):
    """A fake sysfs tree. online/cpulist values: str, bytes, or None for no file; nodes:
    {id or dir name: cpulist} or None for no node directory."""
    root = Path(root)
    cpu = root / "devices/system/cpu"
    cpu.mkdir(parents=True)
    if online is not None:
        write(cpu / "online", online)
    if nodes is not None:
        nd = root / "devices/system/node"
        nd.mkdir(parents=True)
        # Real trees hold these beside the node dirs; the reader must skip them.
        write(nd / "online", "0\n")
        write(nd / "possible", "0-3\n")
        (nd / "power").mkdir()
        for nid, cpulist in nodes.items():
            d = nd / (nid if isinstance(nid, str) else f"node{nid}")
            d.mkdir()
            write(d / "meminfo", "Node 0 MemTotal: 1 kB\n")
            if cpulist is not None:
                write(d / "cpulist", cpulist)
    return root


def write(path, data):
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)


# ---- range lists -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", set()),
        ("\n", set()),
        (" \t\n", set()),
        ("0", {0}),
        ("0-3,8,10-11\n", {0, 1, 2, 3, 8, 10, 11}),
        ("5-5", {5}),
        ("1023", {1023}),
        ("0-1023", set(range(1024))),
        ("007", {7}),
        ("8,0-2,1", {0, 1, 2, 8}),  # unordered and overlapping is still a set
    ],
)
def test_parse_valid(lib, ffi, text, expected):
    assert parse(lib, ffi, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "garbage", "3-1", "1-", "1-\n", "-1", "+1", ",", "1,", ",1", "1,,2", "1-2-3", "1024",
        "0-1024", "99999999999999999999", "99999999999999999999-1", " 1", "1 2", "1\n2",
        "0x1", "1;2", "1, 2", "\n1", "1\r\n",
    ],
)
def test_parse_malformed(lib, ffi, text):
    out = cpuset(ffi, {42})
    assert lib.gr_cpuset_parse(text.encode(), out) == lib.GR_TOPO_EMALFORMED
    assert cpus_of(out) == {42}  # untouched on error


@st.composite
def cpu_sets(draw):
    """Sets made of runs, so range lists get real ranges, up to the last CPU id."""
    runs = draw(st.lists(st.tuples(st.integers(0, MAX_CPUS - 1), st.integers(1, 40)), max_size=8))
    return {c for start, n in runs for c in range(start, min(start + n, MAX_CPUS))}


@st.composite
def range_list_of(draw, cpus):
    """Any range list for cpus: runs cut at random points, pieces shuffled and repeated."""
    pieces = []
    for run in ranges(cpus).split(",") if cpus else []:
        lo, _, hi = run.partition("-")
        lo, hi = int(lo), int(hi or lo)
        cuts = sorted(draw(st.sets(st.integers(lo + 1, hi), max_size=3))) if hi > lo else []
        for a, b in zip([lo] + cuts, cuts + [hi + 1], strict=True):
            single = b - a == 1 and draw(st.booleans())
            pieces.append(str(a) if single else f"{a}-{b - 1}")
    pieces = draw(st.permutations(pieces))
    if pieces:
        pieces += draw(st.lists(st.sampled_from(pieces), max_size=2))
    return ",".join(pieces) + draw(st.sampled_from(["", "\n", " \n"]))


@given(st.data())
def test_parse_roundtrips_any_grouping(lib, ffi, data):
    cpus = data.draw(cpu_sets())
    text = data.draw(range_list_of(cpus))
    assert parse(lib, ffi, text) == cpus


RANGE_LIST = re.compile(r"(?:[0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*)?[ \t\n]*\Z")


def reference_parse(text):
    if not RANGE_LIST.match(text):
        return None
    out = set()
    body = text.rstrip(" \t\n")
    for part in body.split(",") if body else []:
        lo, _, hi = part.partition("-")
        lo, hi = int(lo), int(hi or lo)
        if hi < lo or hi >= MAX_CPUS:
            return None
        out |= set(range(lo, hi + 1))
    return out


@settings(max_examples=300)
@given(st.text(alphabet="0123456789-, \t\n\rx", max_size=40))
def test_parse_matches_reference_on_any_text(lib, ffi, text):
    assert parse(lib, ffi, text) == reference_parse(text)


@given(cpu_sets(), st.integers(-2, MAX_CPUS + 2))
def test_cpuset_helpers(lib, ffi, cpus, n):
    s = cpuset(ffi, cpus)
    assert lib.gr_cpuset_count(s) == len(cpus)
    assert [lib.gr_cpuset_nth(s, i) for i in range(len(cpus))] == sorted(cpus)
    assert lib.gr_cpuset_nth(s, n) == (sorted(cpus)[n] if 0 <= n < len(cpus) else -1)
    assert lib.gr_cpuset_has(s, n) == (n in cpus)
    built = ffi.new("gr_cpuset *")
    lib.gr_cpuset_zero(built)
    for c in cpus | {n}:
        lib.gr_cpuset_add(built, c)  # out-of-range ids are ignored
    want = cpus | ({n} if 0 <= n < MAX_CPUS else set())
    assert cpus_of(built) == want
    lib.gr_cpuset_and(built, cpuset(ffi, range(0, MAX_CPUS, 2)))
    assert cpus_of(built) == {c for c in want if c % 2 == 0}


# ---- reading sysfs -----------------------------------------------------------------------


def test_two_nodes(lib, ffi, tmp_path):
    root = make_sysfs(tmp_path, "0-7\n", {0: "0-3\n", 1: "4-7\n"})
    rc, t = read(lib, ffi, root)
    assert rc == 0
    assert nodes_of(t) == [(0, {0, 1, 2, 3}), (1, {4, 5, 6, 7})]
    assert cpus_of(t.online) == set(range(8))
    assert ffi.string(t.bad_path) == b""


def test_four_interleaved_nodes_sorted_by_id(lib, ffi, tmp_path):
    nodes = {3: "3,7\n", 1: "1,5\n", 0: "0,4\n", 2: "2,6\n"}
    rc, t = read(lib, ffi, make_sysfs(tmp_path, "0-7\n", nodes))
    assert rc == 0
    assert nodes_of(t) == [(i, {i, i + 4}) for i in range(4)]


def test_sparse_node_ids(lib, ffi, tmp_path):
    rc, t = read(lib, ffi, make_sysfs(tmp_path, "0-3\n", {0: "0-1\n", 2: "2-3\n"}))
    assert (rc, nodes_of(t)) == (0, [(0, {0, 1}), (2, {2, 3})])


def test_offline_cpus_are_dropped(lib, ffi, tmp_path):
    nodes = {0: "0-3\n", 1: "4-7\n", 2: "8-9\n"}
    rc, t = read(lib, ffi, make_sysfs(tmp_path, "0-2,5-6\n", nodes))
    assert rc == 0
    assert nodes_of(t) == [(0, {0, 1, 2}), (1, {5, 6})]  # node 2 has nothing online
    assert cpus_of(t.online) == {0, 1, 2, 5, 6}


def test_memory_only_node_is_dropped(lib, ffi, tmp_path):
    rc, t = read(lib, ffi, make_sysfs(tmp_path, "0-7\n", {0: "0-3\n", 1: "\n", 2: "4-7\n"}))
    assert (rc, nodes_of(t)) == (0, [(0, {0, 1, 2, 3}), (2, {4, 5, 6, 7})])


@pytest.mark.parametrize(
    "nodes",
    [None, {}, {0: None, 1: None}, {0: "\n"}, {0: "8-9\n"}],
    ids=["no-node-dir", "empty-node-dir", "no-cpulist", "cpuless", "all-offline"],
)
def test_no_node_information_falls_back_to_one_node(lib, ffi, tmp_path, nodes):
    rc, t = read(lib, ffi, make_sysfs(tmp_path, "0-5\n", nodes))
    assert (rc, nodes_of(t)) == (0, [(0, set(range(6)))])


def test_missing_online_is_the_union_of_nodes(lib, ffi, tmp_path):
    rc, t = read(lib, ffi, make_sysfs(tmp_path, None, {0: "0-1\n", 1: "4\n"}))
    assert rc == 0
    assert nodes_of(t) == [(0, {0, 1}), (1, {4})]
    assert cpus_of(t.online) == {0, 1, 4}


def test_nothing_known(lib, ffi, tmp_path):
    for root in (tmp_path / "absent", make_sysfs(tmp_path / "bare", None, None)):
        rc, t = read(lib, ffi, root)
        assert (rc, t.nnodes, cpus_of(t.online)) == (0, 0, set())
        lib.gr_topology_restrict(t, cpuset(ffi, {1, 3}))
        assert nodes_of(t) == [(0, {1, 3})]
        assert cpus_of(t.online) == {1, 3}


def test_non_node_entries_are_ignored(lib, ffi, tmp_path):
    nodes = {0: "0-3\n", "node": "garbage", "nodeX": "garbage", "node01": "garbage",
             "node-1": "garbage", "node1x": "garbage", "xnode1": "garbage"}
    rc, t = read(lib, ffi, make_sysfs(tmp_path, "0-3\n", nodes))
    assert (rc, nodes_of(t)) == (0, [(0, {0, 1, 2, 3})])


def test_more_nodes_than_gr_max_nodes_fall_back_to_one_node(lib, ffi, tmp_path):
    n = lib.GR_MAX_NODES + 1
    rc, t = read(lib, ffi, make_sysfs(tmp_path, f"0-{n - 1}\n", {i: f"{i}\n" for i in range(n)}))
    assert (rc, nodes_of(t)) == (0, [(0, set(range(n)))])


def test_exactly_gr_max_nodes(lib, ffi, tmp_path):
    n = lib.GR_MAX_NODES
    rc, t = read(lib, ffi, make_sysfs(tmp_path, f"0-{n - 1}\n", {i: f"{i}\n" for i in range(n)}))
    assert (rc, nodes_of(t)) == (0, [(i, {i}) for i in range(n)])


@pytest.mark.parametrize(
    "where, content",
    [
        ("online", "garbage\n"),
        ("online", b"0-7\n\x00"),
        ("node1", "3-1\n"),
        ("node0", "1-\n"),
        ("node1", "99999999999999999999\n"),
        ("node0", "1024\n"),
        ("node1", "0," * 5000),
    ],
    ids=["garbage", "nul", "reversed", "open-range", "huge", "too-big", "too-long"],
)
def test_malformed_file_is_named(lib, ffi, tmp_path, where, content):
    online, nodes = "0-7\n", {0: "0-3\n", 1: "4-7\n"}
    if where == "online":
        online = content
        bad = tmp_path / "devices/system/cpu/online"
    else:
        nodes[int(where[4:])] = content
        bad = tmp_path / f"devices/system/node/{where}/cpulist"
    rc, t = read(lib, ffi, make_sysfs(tmp_path, online, nodes))
    assert rc == lib.GR_TOPO_EMALFORMED
    assert ffi.string(t.bad_path).decode() == str(bad)
    assert t.nnodes == 0


def test_unreadable_cpulist_counts_as_missing(lib, ffi, tmp_path):
    root = make_sysfs(tmp_path, "0-3\n", {0: None, 1: "2-3\n"})
    (root / "devices/system/node/node0/cpulist").mkdir()  # open succeeds, read fails
    rc, t = read(lib, ffi, root)
    assert (rc, nodes_of(t)) == (0, [(1, {2, 3})])


def test_real_sysfs(lib, ffi):
    rc, t = read(lib, ffi, "/sys")
    assert rc == 0, ffi.string(t.bad_path)
    allowed = ffi.new("gr_cpuset *")
    assert lib.gr_topology_allowed(allowed) == 0
    lib.gr_topology_restrict(t, allowed)
    assert t.nnodes >= 1
    assert set().union(*(c for _, c in nodes_of(t))) <= cpus_of(allowed)


# ---- restriction and placement ---------------------------------------------------------------


def topology(lib, ffi, tmp_path, online, nodes):
    rc, t = read(lib, ffi, make_sysfs(tmp_path, online, nodes))
    assert rc == 0
    return t


def test_restrict_drops_cpus_and_empty_nodes(lib, ffi, tmp_path):
    t = topology(lib, ffi, tmp_path, "0-11\n", {0: "0-3\n", 1: "4-7\n", 2: "8-11\n"})
    lib.gr_topology_restrict(t, cpuset(ffi, {1, 2, 9, 40}))
    assert nodes_of(t) == [(0, {1, 2}), (2, {9})]
    assert cpus_of(t.online) == {1, 2, 9}


def test_restrict_to_cpus_sysfs_does_not_know_keeps_allowed(lib, ffi, tmp_path):
    t = topology(lib, ffi, tmp_path, "0-3\n", {0: "0-3\n"})
    lib.gr_topology_restrict(t, cpuset(ffi, {6, 7}))
    assert nodes_of(t) == [(0, {6, 7})]


def test_restrict_to_nothing(lib, ffi, tmp_path):
    t = topology(lib, ffi, tmp_path, "0-3\n", {0: "0-3\n"})
    lib.gr_topology_restrict(t, cpuset(ffi, set()))
    assert t.nnodes == 0
    assert place(lib, ffi, t, lib.GR_AFFINITY_CPU, 0)[0] == lib.GR_TOPO_EINVAL


def test_place_cpu_fills_node_by_node(lib, ffi, tmp_path):
    t = topology(lib, ffi, tmp_path, "0-7\n", {0: "0-3\n", 1: "4-7\n"})
    got = [place(lib, ffi, t, lib.GR_AFFINITY_CPU, p) for p in range(8)]
    assert got == [(0, {p}, p // 4) for p in range(8)]


def test_place_cpu_wraps_around(lib, ffi, tmp_path):
    t = topology(lib, ffi, tmp_path, "0-7\n", {0: "0,2,4,6\n", 1: "1,3,5,7\n"})
    order = [0, 2, 4, 6, 1, 3, 5, 7]
    got = [place(lib, ffi, t, lib.GR_AFFINITY_CPU, p) for p in range(20)]
    assert got == [(0, {order[p % 8]}, (p % 8) // 4) for p in range(20)]


def test_place_node_gives_node_sets(lib, ffi, tmp_path):
    t = topology(lib, ffi, tmp_path, "0-5\n", {0: "0-2\n", 3: "3-5\n"})
    got = [place(lib, ffi, t, lib.GR_AFFINITY_NODE, p) for p in range(8)]
    n0, n3 = (0, {0, 1, 2}, 0), (0, {3, 4, 5}, 3)
    assert got == [n0, n0, n0, n3, n3, n3, n0, n0]


def test_place_none_is_one_unpinned_group(lib, ffi, tmp_path):
    t = topology(lib, ffi, tmp_path, "0-7\n", {0: "0-3\n", 1: "4-7\n"})
    for p in range(10):
        assert place(lib, ffi, t, lib.GR_AFFINITY_NONE, p) == (0, set(range(8)), -1)


def test_place_rejects_bad_arguments(lib, ffi, tmp_path):
    t = topology(lib, ffi, tmp_path, "0-7\n", {0: "0-3\n", 1: "4-7\n"})
    assert place(lib, ffi, t, lib.GR_AFFINITY_CPU, -1)[0] == lib.GR_TOPO_EINVAL
    assert place(lib, ffi, t, 7, 0)[0] == lib.GR_TOPO_EINVAL
    empty = ffi.new("gr_topology *")
    assert place(lib, ffi, empty, lib.GR_AFFINITY_NONE, 0)[0] == lib.GR_TOPO_EINVAL


MAX_NODES = 64


def model(online, nodes, allowed):
    """What read + restrict should produce, straight from topology.h."""
    listed = set().union(*nodes.values()) if nodes else set()
    on = listed if online is None else online
    ns = sorted((i, s & on) for i, s in (nodes or {}).items() if s & on)
    if not ns or len(ns) > MAX_NODES:
        ns = [(0, on)] if on else []
    ns = [(i, s & allowed) for i, s in ns if s & allowed]
    on &= allowed
    if not ns and allowed:
        ns, on = [(0, set(allowed))], set(allowed)
    return ns, on


@st.composite
def machines(draw):
    universe = sorted(draw(cpu_sets().filter(bool)))
    node_of = draw(st.lists(st.integers(0, 5), min_size=len(universe), max_size=len(universe)))
    nodes = None
    if draw(st.booleans()):
        nodes = {}
        for cpu, n in zip(universe, node_of, strict=True):
            nodes.setdefault(n * 3, set()).add(cpu)
        nodes.update({17: set()} if draw(st.booleans()) else {})  # a memory-only node
    online = draw(st.none() | st.sets(st.sampled_from(universe)))
    allowed = draw(st.sets(st.sampled_from(universe + [MAX_CPUS - 1])))
    return online, nodes, allowed


@settings(max_examples=60, deadline=None)
@given(machines(), st.sampled_from(["CPU", "NODE"]))
def test_read_restrict_place_match_the_model(lib, ffi, machine, policy_name):
    online, nodes, allowed = machine
    with tempfile.TemporaryDirectory() as d:
        root = make_sysfs(
            d,
            None if online is None else ranges(online) + "\n",
            None if nodes is None else {i: ranges(s) + "\n" for i, s in nodes.items()},
        )
        rc, t = read(lib, ffi, root)
    assert rc == 0
    lib.gr_topology_restrict(t, cpuset(ffi, allowed))
    want_nodes, want_online = model(online, nodes, allowed)
    assert nodes_of(t) == want_nodes
    assert cpus_of(t.online) == want_online

    policy = getattr(lib, "GR_AFFINITY_" + policy_name)
    line = [(cpu, i, s) for i, s in want_nodes for cpu in sorted(s)]
    for p in range(2 * len(line) + 1):
        rc, cpus, node = place(lib, ffi, t, policy, p)
        if not line:
            assert rc == lib.GR_TOPO_EINVAL
            break
        cpu, want_node, node_cpus = line[p % len(line)]
        assert (rc, node) == (0, want_node)
        assert cpus == ({cpu} if policy_name == "CPU" else node_cpus)
        assert cpus <= allowed  # never a CPU outside the mask


# ---- the process's affinity and pinning ------------------------------------------------------


def test_allowed_is_sched_getaffinity(lib, ffi):
    out = ffi.new("gr_cpuset *")
    assert lib.gr_topology_allowed(out) == 0
    assert cpus_of(out) == os.sched_getaffinity(0)


def in_thread(fn):
    """Run fn in a fresh thread that restores its own affinity afterwards."""
    result = {}

    def run():
        before = os.sched_getaffinity(0)
        try:
            result["value"] = fn()
        finally:
            os.sched_setaffinity(0, before)
            result["restored"] = os.sched_getaffinity(0) == before

    th = threading.Thread(target=run)
    th.start()
    th.join()
    assert result["restored"]
    return result["value"]


def test_pin_self_pins_only_the_calling_thread(lib, ffi):
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("needs two allowed CPUs")
    target = max(allowed)

    def pin():
        return lib.gr_topo_pin_self(cpuset(ffi, {target})), os.sched_getaffinity(0)

    assert in_thread(pin) == (0, {target})
    assert os.sched_getaffinity(0) == allowed


def test_pin_self_to_nothing_fails_and_changes_nothing(lib, ffi):
    import errno

    def pin():
        before = os.sched_getaffinity(0)
        return lib.gr_topo_pin_self(cpuset(ffi, set())), os.sched_getaffinity(0) == before

    assert in_thread(pin) == (errno.EINVAL, True)


def test_place_then_pin_on_this_machine(lib, ffi):
    rc, t = read(lib, ffi, "/sys")
    assert rc == 0
    allowed = ffi.new("gr_cpuset *")
    assert lib.gr_topology_allowed(allowed) == 0
    lib.gr_topology_restrict(t, allowed)
    for p in range(2 * lib.gr_cpuset_count(allowed)):
        rc, cpus, _ = place(lib, ffi, t, lib.GR_AFFINITY_CPU, p)
        assert rc == 0
        assert in_thread(lambda cpus=cpus: (lib.gr_topo_pin_self(cpuset(ffi, cpus)),
                                  os.sched_getaffinity(0))) == (0, cpus)
