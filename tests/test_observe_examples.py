"""The debugging examples of docs/observability.md run and show what the guide says they
show: the Deadlock report of debug_hang.py, its dump, the watchdog's report in
debug_stutter.py (and none once fixed), and debug_imbalance.py's per-P table."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args, env=None):
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, **(env or {})))


@pytest.mark.parametrize("procs", ["1", "2"])
def test_debug_hang_reports_the_deadlock(procs):
    out = run_example("debug_hang.py", "--procs", procs)
    assert out.returncode == 1
    err = out.stderr
    assert "Deadlock: all tasks are asleep - deadlock!" in err
    assert "squarer parked on chan send> at " in err
    assert "main parked on waitgroup> at " in err
    assert "results.send(n * n)" in err and "wg.wait()" in err


def test_debug_hang_alive_dumps_the_tasks():
    out = run_example("debug_hang.py", "--alive", "0.3", "--procs", "1")
    assert out.returncode == 3
    assert out.stdout.startswith("goroutines: ")
    assert "3 tasks [parked on chan send" in out.stdout
    assert "[parked on waitgroup" in out.stdout


def test_debug_stutter_names_the_blocking_call():
    out = run_example("debug_stutter.py")
    assert out.returncode == 0, out.stderr
    assert "HogWarning: goroutines: task" in out.stderr
    assert "(report) has held M0" in out.stderr
    assert "time.sleep(0.2)" in out.stderr
    assert "service: worst lateness" in out.stdout


def test_debug_stutter_fixed_is_quiet():
    out = run_example("debug_stutter.py", "--fixed")
    assert out.returncode == 0, out.stderr
    assert "HogWarning" not in out.stderr


@pytest.mark.parametrize("fixed", [[], ["--fixed"]])
def test_debug_imbalance_prints_per_p_counts(fixed):
    out = run_example("debug_imbalance.py", "--rounds", "3", *fixed,
                      env={"GOROUTINES_SCHEDTRACE": "20"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["P0", "P1"]
    assert "latency p50" in lines[0]
