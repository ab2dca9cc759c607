"""Scheduling entry points: gosched(), sleep(), current(), num_tasks(), procs(), stats(),
and work spreading over both Ps."""

import decimal
import fractions
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import goroutines as gr

PER_P_KEYS = {
    "executed", "stolen", "from_global", "steals_local", "steals_remote", "parks", "m_parks",
    "gil_contended", "backoffs", "backoff_steals", "spawned", "finished", "runq_len",
    "tasks",
}
# The histograms of stats() (test_metrics.py checks them).
HIST_KEYS = {"latency", "wait"}
TOP_HIST_KEYS = {"latency", "wait", "offload"}
TOP_KEYS = {
    "procs",
    "tasks_spawned",
    "tasks_live",
    "executed",
    "steals",
    "stolen",
    "parks",
    "global_runq_len",
    "idle_ms",
    "spinning_ms",
    "from_global",
    "runq_len",
    "fd_waiters",
    "polls",
    "poll_blocks",
}


# ---- gosched ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "yield_",
    [gr.gosched, lambda: gr.sleep(0), lambda: gr.sleep(0.0)],
    ids=["gosched", "sleep(0)", "sleep(0.0)"],
)
def test_yield_lets_a_spinning_task_see_progress(grun, yield_):
    # Cooperative scheduling: a task that waits for a flag by yielding must not starve the
    # task that sets it (a hang here means the yield did not let it run).
    def setter(flag):
        flag.append(True)

    def waiter(flag):
        spins = 0
        while not flag:
            yield_()
            spins += 1
        return "saw it"

    def main():
        flag = []
        w = gr.go(waiter, flag)
        s = gr.go(setter, flag)
        s.join()
        return w.join()

    assert grun(main) == "saw it"


def test_gosched_returns_none_and_resumes_the_same_task(grun):
    def main():
        me = gr.current()
        out = []
        for _ in range(100):
            out.append(gr.gosched())
            assert gr.current() is me
        return out

    assert grun(main) == [None] * 100


def test_gosched_interleaves_two_tasks_on_one_p():
    log = []

    def worker(name):
        for _ in range(20):
            log.append(name)
            gr.gosched()

    def main():
        a, b = gr.go(worker, "a"), gr.go(worker, "b")
        a.join()
        b.join()

    gr.run(main, procs=1)
    assert sorted(log) == ["a"] * 20 + ["b"] * 20
    switches = sum(1 for x, y in zip(log, log[1:], strict=False) if x != y)
    # With one P and both runnable, each yield hands the P to the other task.
    assert switches >= 20, log


def test_gosched_in_a_loop_with_many_tasks(grun):
    counts = [0] * 50

    def worker(i):
        for _ in range(20):
            counts[i] += 1
            gr.gosched()
        return i

    def main():
        return [t.join() for t in [gr.go(worker, i) for i in range(50)]]

    assert grun(main) == list(range(50))
    assert counts == [20] * 50


# ---- sleep -------------------------------------------------------------------------------------


def test_sleep_wakes_up(grun):
    def main():
        return [gr.sleep(s) for s in (0.001, 0.002, 0.0001, 1e-9)]

    assert grun(main) == [None] * 4


def test_many_timers_all_fire(grun):
    # A task parked on a timer is woken: every sleeper finishes, none is lost.
    def sleeper(i):
        gr.sleep((i % 10) * 0.0005 + 0.0001)
        return i

    def main():
        ts = [gr.go(sleeper, i) for i in range(300)]
        return [t.join() for t in ts]

    assert grun(main) == list(range(300))


def test_sleeping_main_is_woken_while_others_run(grun):
    def busy(n):
        for _ in range(n):
            gr.gosched()

    def main():
        ts = [gr.go(busy, 50) for _ in range(10)]
        gr.sleep(0.005)
        for t in ts:
            t.join()
        return "woke"

    assert grun(main) == "woke"


def test_timer_across_ms(go_elsewhere):
    def main():
        ts = [go_elsewhere(gr.sleep, 0.002) for _ in range(5)]
        return [t.join() for t in ts]

    assert gr.run(main, procs=2) == [None] * 5


@pytest.mark.parametrize(
    "seconds",
    [0, 0.001, fractions.Fraction(1, 1000), decimal.Decimal("0.001"), 1e-6],
    ids=["int", "float", "Fraction", "Decimal", "tiny"],
)
def test_sleep_accepts_real_numbers(grun, seconds):
    def main():
        return gr.sleep(seconds)

    assert grun(main) is None


@pytest.mark.parametrize("bad", [-1, -0.0001, float("-inf"), -(10**30)], ids=repr)
def test_sleep_negative(grun, bad):
    def main():
        with pytest.raises(ValueError, match=r"seconds must be a non-negative number of seconds"):
            gr.sleep(bad)
        return "ok"

    assert grun(main) == "ok"


def test_sleep_nan(grun):
    def main():
        with pytest.raises(
            ValueError, match=r"seconds must be a non-negative number of seconds, got nan"
        ):
            gr.sleep(float("nan"))
        return "ok"

    assert grun(main) == "ok"


@pytest.mark.parametrize("bad", [None, "0", "0.001", "soon", b"0", [0], {}, object(), 1j], ids=repr)
def test_sleep_non_number(grun, bad):
    def main():
        with pytest.raises(
            TypeError, match=r"seconds must be a number of seconds, not " + type(bad).__name__
        ):
            gr.sleep(bad)
        return "ok"

    assert grun(main) == "ok"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.floats(max_value=-1e-300) | st.integers(max_value=-1))
def test_sleep_rejects_every_negative(bad):
    def main():
        with pytest.raises(ValueError):
            gr.sleep(bad)
        return "ok"

    assert gr.run(main, procs=1) == "ok"


# ---- current -----------------------------------------------------------------------------------


def test_current_is_stable_across_parks(grun):
    def child():
        me = gr.current()
        gr.sleep(0)
        gr.gosched()
        gr.sleep(0.001)
        return me is gr.current(), me

    def main():
        t = gr.go(child)
        same, seen = t.join()
        return same, seen is t

    assert grun(main) == (True, True)


def test_current_in_main(grun):
    def main():
        me = gr.current()
        return isinstance(me, gr.Task), me.done(), me.cancelled(), "running" in repr(me)

    assert grun(main) == (True, False, False, True)


def test_current_differs_per_task(grun):
    def main():
        ts = [gr.go(gr.current) for _ in range(20)]
        seen = [t.join() for t in ts]
        return len({id(x) for x in seen}), gr.current() not in seen

    assert grun(main) == (20, True)


# ---- num_tasks and procs -------------------------------------------------------------------------


def test_num_tasks_counts_live_tasks():
    def main():
        counts = [gr.num_tasks()]
        pending = [gr.go(int) for _ in range(5)]
        counts.append(gr.num_tasks())  # procs=1: none of them has run yet
        for t in pending:
            t.join()
        counts.append(gr.num_tasks())
        sleepers = [gr.go(gr.sleep, 1000) for _ in range(3)]
        gr.sleep(0)
        counts.append(gr.num_tasks())  # parked tasks are alive
        for t in sleepers:
            t.cancel()
            with pytest.raises(gr.Cancelled):
                t.join()
        counts.append(gr.num_tasks())
        return counts

    assert gr.run(main, procs=1) == [1, 6, 1, 4, 1]


def test_num_tasks_at_two_procs(go_elsewhere):
    def main():
        sleepers = [go_elsewhere(gr.sleep, 1000) for _ in range(3)]
        alive = gr.num_tasks()
        for t in sleepers:
            t.cancel()
            with pytest.raises(gr.Cancelled):
                t.join()
        return alive, gr.num_tasks(), gr.stats()["tasks_live"]

    assert gr.run(main, procs=2) == (4, 1, 1)


def test_num_tasks_from_a_child(grun):
    def main():
        return gr.go(gr.num_tasks).join()

    assert grun(main) == 2


def test_procs_from_any_task_and_thread(grun, procs):
    def main():
        box = []
        th = threading.Thread(target=lambda: box.append(gr.procs()))
        th.start()
        th.join()
        return gr.procs(), gr.go(gr.procs).join(), box[0]

    assert grun(main) == (procs, procs, procs)


# ---- stats ---------------------------------------------------------------------------------------


def test_stats_keys_and_types(grun, procs):
    def main():
        return gr.stats()

    s = grun(main)
    assert set(s) == TOP_KEYS | TOP_HIST_KEYS
    assert len(s["procs"]) == procs
    for p in s["procs"]:
        assert set(p) == PER_P_KEYS | HIST_KEYS
        assert all(type(p[k]) is int for k in PER_P_KEYS)
    assert all(type(s[k]) is int for k in TOP_KEYS - {"procs"})
    check_invariants(s, procs)
    assert s["tasks_live"] == 1  # main, which took the snapshot


def check_invariants(s, procs):
    per = s["procs"]
    assert s["executed"] == sum(p["executed"] for p in per)
    assert s["stolen"] == sum(p["stolen"] for p in per)
    assert s["steals"] == sum(p["steals_local"] + p["steals_remote"] for p in per)
    assert s["parks"] == sum(p["parks"] for p in per)
    assert s["stolen"] >= s["steals"]  # a successful steal takes at least one task
    assert s["tasks_spawned"] >= sum(p["spawned"] for p in per)
    assert s["tasks_live"] == s["tasks_spawned"] - sum(p["finished"] for p in per)
    assert 0 <= s["idle_ms"] <= procs and 0 <= s["spinning_ms"] <= procs
    assert all(0 <= p["runq_len"] <= 256 for p in per)
    if procs == 1:
        assert s["steals"] == s["stolen"] == 0


def test_stats_invariants_after_a_workload(grun, procs):
    n = 2000

    def child(i):
        if i % 3 == 0:
            gr.sleep(0.0001)  # a timer park
        return i

    def parent(i):
        return gr.go(child, i).join()  # a join park, unless the child is already done

    def main():
        before = gr.stats()
        results = [t.join() for t in [gr.go(parent, i) for i in range(n)]]
        assert results == list(range(n))
        return before, gr.stats(), gr.num_tasks()

    before, after, live = grun(main)
    for s in (before, after):
        check_invariants(s, procs)
    assert before["tasks_spawned"] == 1 and before["tasks_live"] == 1
    assert after["tasks_spawned"] == 1 + 2 * n
    assert after["tasks_live"] == live == 1
    assert sum(p["finished"] for p in after["procs"]) == 2 * n
    # Every task ran at least once; besides first runs, a task only runs again after a
    # park (nobody yielded), so at quiescence the two balance exactly.
    assert after["executed"] >= after["tasks_spawned"]
    assert after["executed"] == after["tasks_spawned"] + after["parks"]
    assert after["parks"] >= n // 3  # the timer sleeps parked
    for key in ("executed", "stolen", "steals", "parks", "tasks_spawned"):
        assert after[key] >= before[key]


def test_stats_count_yields_as_executions_not_parks():
    def main():
        before = gr.stats()
        for _ in range(10):
            gr.gosched()
        after = gr.stats()
        return before, after

    before, after = gr.run(main, procs=1)
    assert after["executed"] - before["executed"] == 10
    assert after["parks"] == before["parks"]


def test_stats_count_never_run_cancelled_tasks():
    def main():
        ts = [gr.go(int) for _ in range(10)]
        for t in ts:
            t.cancel()
        for t in ts:
            with pytest.raises(gr.Cancelled):
                t.join()
        return gr.stats()

    s = gr.run(main, procs=1)
    check_invariants(s, 1)
    assert s["tasks_spawned"] == 11 and s["tasks_live"] == 1


def test_stats_with_external_spawns(grun, procs):
    def main():
        box = []
        th = threading.Thread(target=lambda: box.extend(gr.go(int) for _ in range(10)))
        th.start()
        th.join()
        for t in box:
            t.join()
        return gr.stats()

    s = grun(main)
    check_invariants(s, procs)
    assert s["tasks_spawned"] == 11 and s["tasks_live"] == 1


def test_work_spreads_to_both_procs():
    # All tasks are spawned by one task (in batches, so they sit in that P's run queue
    # rather than spilling to the global queue): the other P only gets work by stealing.
    # The work releases the GIL (time.sleep), so the thief's GIL waits are short and
    # GIL-aware stealing lets it take work.
    def work():
        time.sleep(0.001)
        return 1

    def main():
        for _ in range(10):
            batch = [gr.go(work) for _ in range(40)]
            assert sum(t.join() for t in batch) == 40
        return gr.stats()

    s = gr.run(main, procs=2)
    check_invariants(s, 2)
    executed = [p["executed"] for p in s["procs"]]
    assert all(e > 0 for e in executed) and s["steals"] > 0, (executed, s["steals"])
