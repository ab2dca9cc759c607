"""Bar charts of the benchmarks: pytest-benchmark's JSON in, one PNG per area out.

Run (the command docs/performance.md's charts come from)::

    python bench/plot.py docs/img

It runs ``python -m pytest bench --benchmark-only --benchmark-json=build/bench.json``
(about 5 minutes on 2 cores), then draws. ``python bench/plot.py OUT -- PYTEST_ARGS``
runs those instead of the whole of bench/ (``-- bench/bench_chan.py``), and
``--json FILE`` draws a run made before without running anything.

Needs matplotlib (``pip install ".[plot]"``). An area is what a group's name starts with
(``chan-pingpong`` is in ``chan``): ``bench-chan.png`` holds one panel per channel
workload, and so on. Each panel puts goroutines (blue) beside every peer (grey), the
best at the top.

Where time is the point, a bar is an entry's mean time relative to goroutines' best
entry (as the summary of bench/conftest.py counts it), and its label gives the time per
operation or per task. Where a benchmark reports the figure that matters in
``extra_info`` (bytes per parked task, server CPU per round trip, requests per second),
the bar is that figure, labelled with its multiple of goroutines'. An axis whose bars
span more than 20 times is logarithmic. Groups with a single runtime, nothing to compare
(the RSS churn of a million tasks, the per-P counts of the imbalance probe), are left
out; so are groups that did not run.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUN_JSON = BENCH.parent / "build" / "bench.json"  # where a run's JSON is kept
BASELINE = "goroutines"  # entries whose label starts with this are goroutines'
LOG_SPREAD = 20  # bars spanning more than this factor get a log axis

# docs/design.md's goal for the default procs: within this factor of the best setting.
PROCS_GOAL = 1.25

GOROUTINES_COLOR = "#1f6fb4"
PEER_COLOR = "#9a9a9a"


@dataclass(frozen=True)
class Metric:
    """An ``extra_info`` figure charted instead of the time."""

    key: str
    label: str  # the axis label, with its unit
    unit: str  # after each bar's figure
    higher_is_better: bool = False


# The panels of groups whose point is (also) an extra_info figure: TIME is the time panel,
# left out where the benchmark's own timing is a probe's whole process or a fixed-length
# load run.
TIME = Metric("", "", "")
METRICS = {
    "interop-dask-fanout": [
        TIME,
        Metric("threads_added", "OS threads the waiting added (peak)", "threads"),
    ],
    "memory-parked": [Metric("bytes_per_task", "bytes per parked task (RSS growth)", "B")],
    # Throughput is left out: the one load generator's CPU caps it (docs/performance.md).
    "net-echo": [Metric("cpu_us_per_rt", "server CPU per round trip (µs)", "µs")],
    "net-idle": [
        Metric("bytes_per_conn", "bytes per idle connection (RSS growth)", "B"),
        Metric("p99_us", "the active client's echo, 99th percentile (µs)", "µs"),
    ],
    "net-http": [
        Metric("req_per_s", "requests per second", "req/s", higher_is_better=True),
        Metric("cpu_us_per_req", "server CPU per request (µs)", "µs"),
    ],
}
SKIP = {"memory-churn", "cores-imbalance"}
# The extra_info keys of a time per unit of work, and their units.
PER_UNIT = {"per_op_us": "µs/op", "per_task_us": "µs/task", "per_call_us": "µs/call"}

# Panel titles: what each group runs (the bench files' docstrings say more).
TITLES = {
    "spawn": "spawn + join, 100k trivial tasks",
    "chan-pingpong": "unbuffered ping-pong, 20k round trips",
    "chan-buffered-1x1": "buffered channel, 1 sender x 1 receiver, 50k items",
    "chan-buffered-4x4": "buffered channel, 4 senders x 4 receivers, 50k items",
    "chan-select4": "select over 4 channels, one ready (vs a plain receive)",
    "chan-ring": "thread ring, 503 tasks, 50k hops",
    "timer-timeout-ready": "receive under a 30 s timeout, value already there",
    "timer-timeout-pingpong": "receive under a 30 s timeout from an echo task",
    "cores-sha256": "sha256 fan-out, 400 x 1 MiB (releases the GIL)",
    "cores-pure-python": "pure-Python fan-out, 200 CPU-bound tasks",
    "memory-parked": "memory per parked task, 50k tasks",
    "net-echo": "echo, 100 connections, 1 KiB messages",
    "net-idle": "10,000 idle connections beside one active client",
    "net-http": "keep-alive HTTP hello-world, wrk -c100",
    "interop-wait": "20k futures of a thread pool, a waiter each",
    "interop-executor": "20k trivial calls through an executor",
    "interop-to-async": "2k concurrent calls from asyncio code, 1 ms each",
    "interop-dask-fanout": "Dask: 1,000 calls of 2 ms, waited one by one",
    "interop-dask-in-worker": "Dask: 4 tasks, each making 500 concurrent 20 ms waits",
    "procs-split-pair": "split pair: sender started while main runs Python",
    "procs-pingpong": "unbuffered ping-pong",
    "procs-ring": "thread ring, 503 tasks",
    "procs-spawn": "spawn + join",
    "procs-sha256": "sha256 fan-out, 200 x 1 MiB",
    "procs-pure-python": "pure-Python fan-out, 200 tasks",
}
AREA_TITLES = {
    "spawn": "Spawning tasks",
    "chan": "Channels",
    "timer": "Timeouts",
    "cores": "Using both cores",
    "memory": "Memory",
    "net": "Network (loopback)",
    "procs": "The default procs against procs=1 and procs=2",
    "interop": "Waiting on the world (interop)",
}


@dataclass
class Entry:
    label: str
    mean: float  # seconds per round
    extra: dict


@dataclass
class Panel:
    title: str
    labels: list[str]
    values: list[float]  # the bar lengths
    notes: list[str]  # the text beside each bar
    axis: str
    ratio_axis: bool  # the bars are multiples (ticks read 1x, 10x), not figures


def load(path: Path) -> dict[str, list[Entry]]:
    """The run's entries by group, each labelled by the parameters that vary in it."""
    data = json.loads(path.read_text())
    groups: dict[str, list[dict]] = {}
    for bench in data["benchmarks"]:
        groups.setdefault(bench["group"] or bench["name"], []).append(bench)
    out = {}
    for group, benches in groups.items():
        keys = [
            k
            for k in (benches[0].get("params") or {})
            if len({str((b.get("params") or {}).get(k)) for b in benches}) > 1
        ]
        out[group] = [
            Entry(
                label="-".join(str(b["params"][k]) for k in keys) if keys else b["name"],
                mean=b["stats"]["mean"],
                extra=b.get("extra_info") or {},
            )
            for b in benches
        ]
    return out


def format_number(value: float) -> str:
    """Three significant figures, thousands separated."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_ratio(ratio: float) -> str:
    """A multiple, to two decimals where they tell something."""
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x" if ratio < 100 else f"{ratio:,.0f}x"


def format_time(entry: Entry) -> str:
    """An entry's time in the unit its benchmark reports: per operation, task or call, or
    else per round."""
    for key, unit in PER_UNIT.items():
        if key in entry.extra:
            return f"{format_number(entry.extra[key])} {unit}"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if entry.mean >= scale:
            return f"{format_number(entry.mean / scale)} {unit}/round"
    return f"{format_number(entry.mean / 1e-9)} ns/round"


def baseline(entries: list[Entry], value, best=min) -> float | None:
    """goroutines' figure: the best of its entries (as bench/conftest.py's summary)."""
    ours = [value(e) for e in entries if e.label.startswith(BASELINE)]
    return best(ours) if ours else None


def time_panel(group: str, entries: list[Entry]) -> Panel:
    ref = baseline(entries, lambda e: e.mean)
    what = "goroutines' best"
    if all(e.label.startswith(BASELINE) for e in entries):
        what = "the best entry"  # settings of goroutines against each other
    if ref is None:
        ref, what = min(e.mean for e in entries), "the best entry"
    ordered = sorted(entries, key=lambda e: e.mean)
    return Panel(
        title=TITLES.get(group, group),
        labels=[e.label for e in ordered],
        values=[e.mean / ref for e in ordered],
        notes=[f"{format_ratio(e.mean / ref)}   {format_time(e)}" for e in ordered],
        axis=f"time relative to {what} (lower is faster)",
        ratio_axis=True,
    )


def metric_panel(group: str, entries: list[Entry], metric: Metric) -> Panel | None:
    having = [e for e in entries if isinstance(e.extra.get(metric.key), int | float)]
    if not having:
        return None
    ordered = sorted(having, key=lambda e: e.extra[metric.key], reverse=metric.higher_is_better)
    ref = baseline(
        ordered, lambda e: e.extra[metric.key], best=max if metric.higher_is_better else min
    )

    def note(e: Entry) -> str:
        value = e.extra[metric.key]
        ratio = f"   {format_ratio(value / ref)}" if ref else ""
        return f"{format_number(value)} {metric.unit}{ratio}"

    better = "higher is better" if metric.higher_is_better else "lower is better"
    return Panel(
        title=TITLES.get(group, group),
        labels=[e.label for e in ordered],
        values=[e.extra[metric.key] for e in ordered],
        notes=[note(e) for e in ordered],
        axis=f"{metric.label}; {better}",
        ratio_axis=False,
    )


def panels(groups: dict[str, list[Entry]]) -> dict[str, list[Panel]]:
    """The panels of each area, in the order the groups ran."""
    areas: dict[str, list[Panel]] = {}
    for group, entries in groups.items():
        if group in SKIP or len(entries) < 2:
            continue
        if group in METRICS:
            made = [
                time_panel(group, entries) if m is TIME else metric_panel(group, entries, m)
                for m in METRICS[group]
            ]
        else:
            made = [time_panel(group, entries)]
        area = group.split("-", 1)[0]
        areas.setdefault(area, []).extend(p for p in made if p is not None)
    return {area: ps for area, ps in areas.items() if ps}


def draw(area: str, area_panels: list[Panel], out: Path, subtitle: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    ncols = 1 if len(area_panels) == 1 else 2
    nrows = math.ceil(len(area_panels) / ncols)
    bars = [max(len(p.labels), 2) for p in area_panels]
    rows = [max(bars[i : i + ncols]) for i in range(0, len(bars), ncols)]
    height = 1.0 + sum(0.32 * r + 1.1 for r in rows)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(13 if ncols == 2 else 8.5, height),
        gridspec_kw={"height_ratios": rows},
        squeeze=False,
        layout="constrained",
    )
    for ax, panel in zip(axes.flat, area_panels, strict=False):
        y = list(range(len(panel.labels)))
        ours = [lb.startswith(BASELINE) for lb in panel.labels]
        ax.barh(y, panel.values, color=[GOROUTINES_COLOR if o else PEER_COLOR for o in ours])
        ax.set_yticks(y, panel.labels, fontsize=10)
        for tick, o in zip(ax.get_yticklabels(), ours, strict=True):
            tick.set_fontweight("bold" if o else "normal")
        ax.invert_yaxis()  # the best at the top
        lo, hi = min(panel.values), max(panel.values)
        # The bars take the left 60% of the axis; their labels go in the rest.
        if lo > 0 and hi / lo > LOG_SPREAD:
            ax.set_xscale("log")
            left = lo / 2
            ax.set_xlim(left, left * (hi / left) ** (1 / 0.6))
            ax.set_xlabel(textwrap.fill(panel.axis + ", log scale", 66), fontsize=10)
        else:
            ax.set_xlim(0, hi / 0.6)
            ax.set_xlabel(textwrap.fill(panel.axis, 66), fontsize=10)
        suffix = "x" if panel.ratio_axis else ""
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos, s=suffix: f"{v:,g}{s}"))
        if area == "procs":
            ax.axvline(PROCS_GOAL, color="#c0392b", linestyle="--", linewidth=1, zorder=1)
        for yi, (value, note) in enumerate(zip(panel.values, panel.notes, strict=True)):
            ax.annotate(
                note,
                (value, yi),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
                # Opaque, so that the goal line of the procs panels passes behind it.
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
            )
        ax.set_title(textwrap.fill(panel.title, 40), fontsize=11, loc="left")
        ax.tick_params(axis="x", labelsize=9)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for ax in axes.flat[len(area_panels) :]:
        ax.set_visible(False)
    title = f"{AREA_TITLES.get(area, area)}  ({subtitle})"
    if area == "procs":
        title += f"\ndashed: the goal, the default within {PROCS_GOAL}x of the best setting"
    fig.suptitle(title, fontsize=12)
    path = out / f"bench-{area}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def subtitle(path: Path) -> str:
    """The run's date, Python and CPU count, from the JSON's machine_info."""
    data = json.loads(path.read_text())
    info = data.get("machine_info", {})
    parts = [data.get("datetime", "")[:10]]
    if info.get("python_implementation") and info.get("python_version"):
        parts.append(f"{info['python_implementation']} {info['python_version']}")
    cpu = info.get("cpu", {})
    if cpu.get("count"):
        parts.append(f"{cpu['count']} CPUs")
    return ", ".join(p for p in parts if p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the directory for the PNGs")
    parser.add_argument(
        "--json", type=Path, help="draw this --benchmark-json file instead of running bench/"
    )
    parser.add_argument(
        "pytest_args", nargs="*", help="after --: what pytest runs (default: bench)"
    )
    args = parser.parse_args(argv)
    path = args.json
    if path is None:
        path = RUN_JSON
        path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pytest", *(args.pytest_args or [str(BENCH)])]
        command += ["--benchmark-only", f"--benchmark-json={path}"]
        print("running:", " ".join(command), flush=True)
        code = subprocess.run(command, cwd=BENCH.parent).returncode
        if code != 0:
            parser.exit(
                code,
                f"plot.py: pytest exited with {code}; no chart was drawn"
                f" (--json {path} draws what ran)\n",
            )
    try:
        areas = panels(load(path))
    except (OSError, ValueError, KeyError) as exc:
        parser.error(f"{path}: not a pytest-benchmark JSON file ({exc})")
    if not areas:
        parser.error(f"{path}: no group with timings (was it run with --benchmark-only?)")
    args.out.mkdir(parents=True, exist_ok=True)
    sub = subtitle(path)
    for area, area_panels in areas.items():
        print(draw(area, area_panels, args.out, sub))
    return 0


if __name__ == "__main__":
    sys.exit(main())
