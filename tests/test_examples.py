"""The programs in examples/ (the user guide, docs/guide.md, is built from them), each
run as a subprocess, as a user would, and its output checked."""

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args, procs=None):
    env = None
    if procs is not None:
        env = dict(os.environ, GOROUTINES_PROCS=str(procs))
    p = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def test_worker_pool(procs):
    out = run_example("worker_pool.py", procs=procs)
    assert out == [f"{n} -> {n * n}" for n in range(1, 10)]


def test_pipeline(procs):
    out = run_example("pipeline.py", procs=procs)
    fourth = [n**4 for n in range(1, 6)]
    assert out == [str(n) for n in fourth] + [f"total {sum(fourth)}"]


def test_fanout_timeout(procs):
    assert run_example("fanout_timeout.py", procs=procs) == ["answer from replica-b", "timed out"]


def test_rate_limit(procs):
    out = run_example("rate_limit.py", procs=procs)
    assert out == [f"request {r}" for r in range(1, 6)] + [
        f"bursty request {r}" for r in range(1, 6)
    ]


def test_map_files(procs, tmp_path):
    expected = []
    for i in range(12):
        path = tmp_path / "sub" / f"f{i:02d}" if i % 2 else tmp_path / f"f{i:02d}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes([i]) * (1000 * i))
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        rel = str(path.relative_to(tmp_path))
        expected.append(f"{rel} {hashlib.sha256(path.read_bytes()).hexdigest()[:12]}")
    out = run_example("map_files.py", str(tmp_path), procs=procs)
    assert out == sorted(expected) + ["12 files"]


def test_map_files_demo_tree():
    out = run_example("map_files.py")
    assert len(out) == 21 and out[-1] == "20 files"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown(procs, sig):
    env = dict(os.environ, GOROUTINES_PROCS=str(procs))
    p = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "graceful_shutdown.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert out.splitlines() == [f"got {sig.name}", "workers finished: True", "stopped cleanly"]
