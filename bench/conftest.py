"""Shared pytest-benchmark helpers for the goroutines benchmark suite.

Run the whole suite (every runtime side by side, in one process)::

    pytest bench --benchmark-only

CI smoke run (each workload runs once, at a small size)::

    pytest bench --benchmark-disable

Every workload is one parametrized case of a test whose ``benchmark`` mark
names its group, so goroutines and its peers (gevent, asyncio, uvloop, trio,
threads) land in the same pytest-benchmark table.  Peers that cannot be
imported are skipped with ``pytest.importorskip``.

On top of pytest-benchmark's own tables, a summary prints each group's mean
times as ratios (to the fastest peer and to goroutines), because ratios stay
meaningful when absolute times drift on a shared machine, together with
whatever each test stored in ``benchmark.extra_info`` (µs per task, bytes per
task, ...).  Under ``--benchmark-disable`` there are no timings, so only the
extra_info columns are shown.
"""

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

# Rounds per timed workload: enough for a stable mean, few enough that the
# whole suite stays around two minutes.
ROUNDS = 5

# Entries whose label starts with this are the reference for "vs goroutines".
BASELINE = "goroutines"


@dataclass
class _Result:
    group: str
    label: str
    mean: float | None  # seconds; None under --benchmark-disable
    extra_info: dict


_RESULTS = pytest.StashKey[list]()


def pytest_addoption(parser):
    parser.addoption(
        "--busy-neighbours",
        action="store_true",
        help="run one busy-loop process per CPU beside the benchmarks (a loaded machine)",
    )


def pytest_configure(config):
    config.stash[_RESULTS] = []


@pytest.fixture(scope="session", autouse=True)
def busy_neighbours(request):
    """With --busy-neighbours: one CPU-bound process per CPU for the whole run."""
    if not request.config.getoption("busy_neighbours"):
        yield
        return
    loop = "while True: pass"
    procs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.hookimpl(hookwrapper=True)  # old-style wrapper: works on pytest 7
def pytest_runtest_makereport(item, call):
    # pytest-benchmark only keeps fixtures that produced timings, which drops
    # everything under --benchmark-disable; keep our own record of every
    # passed benchmark so extra_info (e.g. bytes per task) still reaches the
    # summary in the smoke run.
    report = (yield).get_result()
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    if call.when == "call" and report.passed and fixture is not None:
        callspec = getattr(item, "callspec", None)
        item.config.stash[_RESULTS].append(
            _Result(
                group=fixture.group or item.name,
                label=callspec.id if callspec else item.name,
                mean=fixture.stats.stats.mean if fixture.stats else None,
                extra_info=dict(fixture.extra_info),
            )
        )


@pytest.fixture
def smoke(request):
    """True under --benchmark-disable: run each workload once, at a small size."""
    return request.config.getoption("benchmark_disable")


@pytest.fixture
def measure(benchmark):
    """Time ``fn`` (which runs ``tasks`` tasks) and record µs per task."""

    def run(fn, *, tasks):
        benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
        if benchmark.stats:
            benchmark.extra_info["per_task_us"] = benchmark.stats.stats.mean / tasks * 1e6

    return run


def _format_seconds(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3f} {unit}"
    return f"{seconds / 1e-9:.1f} ns"


def _format_value(value):
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(value, reference):
    return f"{value / reference:.2f}x" if value is not None and reference else "-"


def _group_rows(results):
    timed = [r.mean for r in results if r.mean is not None]
    fastest = min(timed, default=None)
    baseline = [r for r in results if r.label.startswith(BASELINE) and r.mean is not None]
    reference = min(baseline, key=lambda r: r.mean, default=None)
    extra_keys = list(dict.fromkeys(key for r in results for key in r.extra_info))

    header = ["entry"]
    if timed:
        header += ["mean", "vs fastest", "vs " + (reference.label if reference else BASELINE)]
    header += extra_keys

    rows = [header]
    for r in sorted(results, key=lambda r: (r.mean is None, r.mean or 0.0, r.label)):
        row = [r.label]
        if timed:
            row += [
                _format_seconds(r.mean) if r.mean is not None else "-",
                _ratio(r.mean, fastest),
                _ratio(r.mean, reference.mean if reference else None),
            ]
        row += [_format_value(r.extra_info[k]) if k in r.extra_info else "-" for k in extra_keys]
        rows.append(row)
    return rows


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter, config):
    groups = {}
    for result in config.stash[_RESULTS]:
        # Nothing worth a row: a timing-only benchmark under --benchmark-disable.
        if result.mean is not None or result.extra_info:
            groups.setdefault(result.group, []).append(result)
    if not groups:
        return

    terminalreporter.write_sep("-", "goroutines benchmark summary (ratios of mean time)")
    for group, results in groups.items():
        rows = _group_rows(results)
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        terminalreporter.write_line(f"group {group!r}:")
        for row in rows:
            cells = [row[0].ljust(widths[0])]
            cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            terminalreporter.write_line("  " + "  ".join(cells))
