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


def demo(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "goroutines", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_takes_tasks_and_procs_options():
    out = demo("--tasks", "5000", "--procs", "2")
    assert out.returncode == 0, out.stderr
    assert "2 procs, 5,000 tasks" in out.stdout


def test_demo_help_describes_the_options_and_runs_nothing():
    out = demo("--help")
    assert out.returncode == 0
    assert "--tasks" in out.stdout and "--procs" in out.stdout
    assert "spawn + finish" not in out.stdout


def test_a_typo_in_a_demo_argument_is_an_error_not_ignored():
    # It used to run the whole demo and ignore the argument.
    out = demo("--prcs", "2")
    assert out.returncode == 2 and "unrecognized arguments: --prcs" in out.stderr
    assert out.stdout == ""


def test_demo_rejects_bad_numbers_with_a_message_not_a_traceback():
    for args, env, message in [
        (("--tasks", "many"), {}, "not a whole number"),
        (("--procs", "0"), {}, "must be at least 1"),
        ((), {"GOROUTINES_PROCS": "two"}, "GOROUTINES_PROCS must be a positive integer"),
        ((), {"GOROUTINES_DEMO_N": "-5"}, "GOROUTINES_DEMO_N: must be at least 1"),
    ]:
        out = demo(*args, **env)
        assert out.returncode == 2 and message in out.stderr, (args, env, out.stderr)
        assert "Traceback" not in out.stderr


def test_demo_piped_into_a_reader_that_stops_early_exits_quietly():
    # `python -m goroutines | head -2` ended in a BrokenPipeError traceback.
    demo_proc = subprocess.Popen(
        [sys.executable, "-m", "goroutines", "--tasks", "20000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo_proc.stdout.readline().startswith("goroutines demo:")
    demo_proc.stdout.close()  # the reader goes away
    err = demo_proc.stderr.read()
    assert demo_proc.wait(timeout=60) in (0, 1)
    assert "Traceback" not in err, err
