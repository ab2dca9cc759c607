"""The watchdog: run(..., watchdog=s) or GOROUTINES_WATCHDOG reports a task that holds its
M past the threshold (a pure-Python loop, time.sleep) once per incident with a HogWarning
naming the task and where it was; quiet for tasks that park; every bad value refused."""

import math
import os
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

import goroutines as gr

# Hogs run 20x the threshold: the watchdog looks every quarter threshold, so it cannot
# miss one however loaded the machine is (no timing is asserted, only that it reported).
THRESHOLD = 0.02
HOG = 20 * THRESHOLD
# Tests that expect no report use a threshold no OS descheduling of a busy M reaches even
# on a loaded machine: a report there would be a false alarm, not a hog.
QUIET = 0.25


def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def hogs_of(caught):
    return [w.message for w in caught if issubclass(w.category, gr.HogWarning)]


def run_catching(main, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = gr.run(main, **kwargs)
    return result, hogs_of(caught)


def test_hog_warning_is_a_runtime_warning():
    assert issubclass(gr.HogWarning, RuntimeWarning)


@pytest.mark.parametrize("how", ["loop", "time.sleep"])
def test_a_hog_is_reported_once_with_its_name_and_stack(procs, how):
    def hog():
        if how == "loop":
            spin(HOG)
        else:
            time.sleep(HOG)

    def main():
        gr.go(hog, name="the-hog").join()

    _, hogs = run_catching(main, procs=procs, watchdog=THRESHOLD)
    mine = [h for h in hogs if h.task_name == "the-hog"]
    assert len(mine) == 1  # one incident, one report
    w = mine[0]
    assert w.held >= THRESHOLD
    assert "the-hog" in str(w) and "without yielding" in str(w)
    assert any(fs.name in ("hog", "spin") for fs in w.stack)
    assert w.m in range(procs)


def test_two_incidents_of_one_task_are_two_reports(procs):
    def hog():
        spin(HOG)
        gr.gosched()  # the incident ends here; the next run of the task is a new one
        spin(HOG)

    def main():
        gr.go(hog, name="twice").join()

    _, hogs = run_catching(main, procs=procs, watchdog=THRESHOLD)
    assert len([h for h in hogs if h.task_name == "twice"]) == 2


def test_tasks_that_park_are_not_reported(procs):
    def main():
        ch = gr.Chan()

        def peer():
            for _ in ch:
                pass

        gr.go(peer)
        end = time.monotonic() + 2 * QUIET
        while time.monotonic() < end:
            ch.send(1)  # parks or hands off: the M switches tasks all the time
        ch.close()
        gr.sleep(2 * QUIET)  # idle Ms are not hogs either

    _, hogs = run_catching(main, procs=procs, watchdog=QUIET)
    assert hogs == []


def test_off_by_default(procs, monkeypatch):
    monkeypatch.delenv("GOROUTINES_WATCHDOG", raising=False)
    _, hogs = run_catching(lambda: spin(HOG), procs=procs)
    assert hogs == []


def test_env_turns_it_on_and_zero_turns_it_off(monkeypatch):
    monkeypatch.setenv("GOROUTINES_WATCHDOG", str(THRESHOLD))
    _, hogs = run_catching(lambda: spin(HOG), procs=1)
    assert len(hogs) == 1
    _, hogs = run_catching(lambda: spin(HOG), procs=1, watchdog=0)  # the argument wins
    assert hogs == []


def test_watchdog_thread_does_not_hide_a_deadlock(grun):
    with pytest.raises(gr.Deadlock):
        grun(lambda: gr.Chan().recv(), watchdog=THRESHOLD)


def test_warning_points_at_the_hogging_line(tmp_path):
    script = tmp_path / "hogger.py"
    script.write_text(textwrap.dedent(f"""
        import time, goroutines as gr
        def hog():
            time.sleep({HOG})
        gr.run(hog, watchdog={THRESHOLD})
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"{script}:4: HogWarning: goroutines: task 1 (hog) has held M0" in out.stderr
    assert "time.sleep(" in out.stderr


@pytest.mark.parametrize("bad, exc, match", [
    (-1, ValueError, "non-negative"),
    (math.nan, ValueError, "non-negative"),
    (math.inf, ValueError, "finite"),
    ("0.1", TypeError, "watchdog must be a number"),
    (True, TypeError, "watchdog must be a number"),
])
def test_bad_watchdog_values(bad, exc, match):
    with pytest.raises(exc, match=match):
        gr.run(int, watchdog=bad)


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "inf"])
def test_bad_watchdog_env(monkeypatch, value):
    monkeypatch.setenv("GOROUTINES_WATCHDOG", value)
    with pytest.raises(ValueError, match="GOROUTINES_WATCHDOG must be"):
        gr.run(int)


def test_run_refused_for_bad_values_leaves_no_thread_behind(monkeypatch):
    import threading
    before = threading.active_count()
    monkeypatch.setenv("GOROUTINES_WATCHDOG", "x")
    with pytest.raises(ValueError):
        gr.run(int)
    assert threading.active_count() == before
    assert os.environ["GOROUTINES_WATCHDOG"] == "x"


def test_the_watchdog_still_runs_when_the_run_is_traced(tmp_path):
    # run(trace=...) re-entered run() without its watchdog argument.
    def main():
        gr.go(time.sleep, HOG, name="traced-hog").join()

    _, hogs = run_catching(main, procs=1, watchdog=THRESHOLD, trace=str(tmp_path / "t.json"))
    assert [h.task_name for h in hogs] == ["traced-hog"]
