"""`python -m goroutines`: the demo runs to completion and reports the per-task cost and
what each P did."""

import os
import re
import subprocess
import sys


def test_demo_runs_and_reports_each_p(procs):
    env = {**os.environ, "GOROUTINES_DEMO_N": "20000", "GOROUTINES_PROCS": str(procs)}
    proc = subprocess.run(
        [sys.executable, "-m", "goroutines"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"per[ -]task", out, re.IGNORECASE), out
    assert "20,000" in out or "20000" in out, out  # it honoured GOROUTINES_DEMO_N
    for i in range(procs):
        assert re.search(rf"\bP{i}\b", out), f"no line for P{i}:\n{out}"
    assert not re.search(rf"\bP{procs}\b", out), out
    assert "Traceback" not in proc.stderr
