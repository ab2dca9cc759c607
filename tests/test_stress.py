"""Volume and races: a million tasks in bounded memory, bursts of parking/waking tasks at
two procs (no lost wake-ups), join-timeout races, and a property test checking random task
trees against a sequential evaluation."""

import json
import random
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import goroutines as gr

# ---- a million tasks, bounded memory ------------------------------------------------------------

RSS_SCRIPT = textwrap.dedent(
    """
    import json
    import goroutines as gr

    def vmrss_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    BATCH, BATCHES = 10_000, 100

    def work(i):
        return i

    def main():
        total = 0
        for b in range(BATCHES):
            ts = [gr.go(work, i) for i in range(BATCH)]
            total += sum(t.join() for t in ts)
        return total, gr.stats()["tasks_spawned"], gr.num_tasks()

    out = {}
    for procs in (1, 2):
        gr.run(main, procs=procs)  # warm-up: allocator pools, greenlets, thread stacks
        before = vmrss_kib()
        total, spawned, live = gr.run(main, procs=procs)
        out[procs] = {
            "growth_kib": vmrss_kib() - before,
            "total": total,
            "spawned": spawned,
            "live": live,
        }
    print(json.dumps(out))
    """
)


def test_million_tasks_in_bounded_memory():
    proc = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    expected_total = 100 * sum(range(10_000))
    for procs in ("1", "2"):
        r = out[procs]
        assert r["total"] == expected_total
        assert r["spawned"] == 1_000_001 and r["live"] == 1
        assert r["growth_kib"] < 200 * 1024, r  # MiB-scale growth would mean a leak per task


# ---- bursts at procs=2: every task runs exactly once and finishes -------------------------------


def test_bursts_of_parking_tasks_lose_no_wakeups():
    rounds, burst = 200, 500
    runs = [0] * (rounds * burst)
    fins = [0] * (rounds * burst)

    def task(k, kind, target):
        runs[k] += 1
        if kind == 0:
            gr.sleep(0)
        elif kind == 1:
            gr.gosched()
        elif kind == 2:
            gr.sleep(0.0001)
        elif target is not None:
            target.join()
        fins[k] += 1
        return k

    def main():
        rng = random.Random(20240601)
        for r in range(rounds):
            base = r * burst
            ts = []
            for i in range(burst):
                kind = rng.randrange(4)
                target = ts[rng.randrange(i)] if kind == 3 and i else None
                ts.append(gr.go(task, base + i, kind, target))
            # quiesce
            for i, t in enumerate(ts):
                assert t.join() == base + i
            assert gr.num_tasks() == 1
        return gr.stats()

    s = gr.run(main, procs=2)
    assert runs == [1] * len(runs)
    assert fins == [1] * len(fins)
    assert s["tasks_spawned"] == rounds * burst + 1 and s["tasks_live"] == 1


def test_join_timeout_races_with_finishing_tasks():
    # Timeouts that expire around the moment the target finishes, on another M or not: the
    # joiner gets either TimeoutError (and the task is still joinable) or the result.
    n = 1500

    def target(i, delay):
        gr.sleep(delay)
        return i

    def joiner(t, i, timeout):
        try:
            return ("on time", t.join(timeout=timeout))
        except TimeoutError:
            return ("late", t.join())

    def main():
        rng = random.Random(7)
        pairs = []
        for i in range(n):
            t = gr.go(target, i, rng.choice([0, 0.00005, 0.0002]))
            pairs.append(gr.go(joiner, t, i, rng.choice([0, 0.00005, 0.0002])))
        return [j.join() for j in pairs]

    out = gr.run(main, procs=2)
    assert [v for _, v in out] == list(range(n))


def test_many_joiners_of_one_task_across_ms():
    def main():
        gate = []

        def target():
            while not gate:
                gr.sleep(0.0001)
            return "released"

        t = gr.go(target)
        joiners = [gr.go(t.join) for _ in range(500)]
        gr.sleep(0.001)
        gate.append(True)
        return [j.join() for j in joiners]

    assert gr.run(main, procs=2) == ["released"] * 500


# ---- property: random task trees equal a sequential evaluation -----------------------------------


@dataclass(frozen=True)
class Node:
    value: int
    fails: bool
    kids: tuple  # of (Node, yield_op, join_now)
    reverse: bool  # join the remaining kids last-first


YIELDS = ("none", "sleep0", "gosched")


def nodes():
    leaf = st.builds(Node, st.integers(-50, 50), st.booleans(), st.just(()), st.booleans())
    return st.recursive(
        leaf,
        lambda children: st.builds(
            Node,
            st.integers(-50, 50),
            st.booleans(),
            st.lists(
                st.tuples(children, st.sampled_from(YIELDS), st.booleans()), max_size=4
            ).map(tuple),
            st.booleans(),
        ),
        max_leaves=40,
    )


class Failure(Exception):
    pass


def combine(node, kid_outcomes):
    if node.fails:
        raise Failure(node.value, kid_outcomes)
    return (node.value, kid_outcomes)


def evaluate_sequentially(node):
    return combine(node, tuple(outcome(evaluate_sequentially, kid) for kid, _, _ in node.kids))


def evaluate_as_tasks(node):
    def outcome_of(t):
        return outcome(t.join)

    outcomes = {}
    pending = []
    for i, (kid, yield_op, join_now) in enumerate(node.kids):
        t = gr.go(evaluate_as_tasks, kid)
        if yield_op == "sleep0":
            gr.sleep(0)
        elif yield_op == "gosched":
            gr.gosched()
        if join_now:
            outcomes[i] = outcome_of(t)
        else:
            pending.append((i, t))
    for i, t in reversed(pending) if node.reverse else pending:
        outcomes[i] = outcome_of(t)
    return combine(node, tuple(outcomes[i] for i in range(len(node.kids))))


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Failure as e:
        return ("err", e.args)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=nodes(), nprocs=st.sampled_from([1, 2]))
def test_random_task_trees_match_sequential_evaluation(tree, nprocs):
    expected = outcome(evaluate_sequentially, tree)
    got = gr.run(lambda: outcome(evaluate_as_tasks, tree), procs=nprocs)
    assert got == expected


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=nodes())
def test_random_task_trees_failing_at_the_root_propagate_through_run(tree):
    root = Node(tree.value, True, tree.kids, tree.reverse)
    expected = outcome(evaluate_sequentially, root)
    with pytest.raises(Failure) as ei:
        gr.run(evaluate_as_tasks, root, procs=2)
    assert ("err", ei.value.args) == expected
