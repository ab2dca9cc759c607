"""Prometheus metrics of the running goroutines runtime.

``register()`` adds a collector to a ``prometheus_client`` registry, so the runtime can be
scraped like any Go service: the live tasks and queues, the Ms' states, the scheduler's
counters, the offload pool, and the histograms of scheduling latency (ready to running)
and of the time spent in each wait reason. Outside ``run()`` the collector reports nothing.

``prometheus_client`` is an optional dependency (``pip install prometheus_client``); it is
imported only when this module is.

Example::

    import prometheus_client
    from goroutines import metrics

    def main():
        metrics.register()
        prometheus_client.start_http_server(9100)
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

try:
    from prometheus_client import REGISTRY
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector, CollectorRegistry
except ImportError:  # tests/test_metrics.py hides the package to check the message
    raise ImportError(
        "goroutines.metrics needs prometheus_client: pip install prometheus_client"
    ) from None

from goroutines import _core

__all__ = ["GoroutinesCollector", "register"]

# Per-P counters exported as counters: (stats key, metric suffix, help).
_P_COUNTERS = (
    ("executed", "executed", "Times a task was handed to the P's M (first runs and resumes)."),
    ("spawned", "spawned", "Tasks spawned on the P."),
    ("finished", "finished", "Tasks that finished on the P."),
    ("stolen", "stolen", "Tasks the P took from other Ps."),
    ("from_global", "global_takes", "Tasks the P took from the global queue."),
    ("parks", "task_parks", "Times a task parked on the P."),
    ("m_parks", "m_parks", "Times the P's M slept."),
)


def _histogram(name: str, doc: str, label: str | None, hists: dict[str, dict[str, Any]]) -> Metric:
    fam = HistogramMetricFamily(name, doc, labels=[label] if label else None)
    for value, h in hists.items():
        buckets = []
        total = 0
        for i, count in enumerate(h["buckets"]):
            total += count
            bound = "+Inf" if i == len(h["buckets"]) - 1 else repr((1 << i) / 1e9)
            buckets.append((bound, total))
        fam.add_metric([value] if label else [], buckets, h["sum"])
    return fam


class GoroutinesCollector(Collector):
    """A ``prometheus_client`` collector reading ``goroutines.stats()`` at each scrape.

    Example::

        prometheus_client.REGISTRY.register(GoroutinesCollector())
    """

    def collect(self) -> Iterator[Metric]:
        try:
            st = _core.stats()
        except RuntimeError:  # no run() in progress: nothing to report
            return
        yield from self._gauges(st)
        per = st["procs"]
        for key, suffix, doc in _P_COUNTERS:
            c = CounterMetricFamily(f"goroutines_{suffix}", doc, labels=["p"])
            for i, p in enumerate(per):
                c.add_metric([str(i)], p[key])
            yield c
        yield _histogram(
            "goroutines_sched_latency_seconds",
            "Time from ready to running, sampled one wait in 16.",
            "p",
            {str(i): p["latency"] for i, p in enumerate(per)},
        )
        yield _histogram(
            "goroutines_wait_seconds",
            "Time parked tasks waited, per wait reason, sampled one wait in 16.",
            "reason",
            st["wait"],
        )

    def _gauges(self, st: dict[str, Any]) -> Iterator[Metric]:
        def gauge(name: str, doc: str, value: float) -> Metric:
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], value)
            return g

        yield gauge("goroutines_procs", "Processors (Ms) of the run.", len(st["procs"]))
        yield gauge("goroutines_tasks", "Live tasks.", st["tasks_live"])
        yield gauge("goroutines_idle_ms", "Ms parked for want of work.", st["idle_ms"])
        yield gauge("goroutines_spinning_ms", "Ms searching for work.", st["spinning_ms"])
        yield gauge("goroutines_global_runq", "Tasks on the global queue.", st["global_runq_len"])
        yield gauge("goroutines_fd_waiters", "Tasks parked on a file descriptor.", st["fd_waiters"])
        polls = CounterMetricFamily("goroutines_netpoll_polls",
                                    "Network poller checks, without and with blocking.",
                                    labels=["kind"])
        polls.add_metric(["poll"], st["polls"])
        polls.add_metric(["block"], st["poll_blocks"])
        yield polls
        off = st["offload"]
        yield gauge("goroutines_offload_threads", "Threads of the blocking() pool.", off["threads"])
        yield gauge("goroutines_offload_queued", "blocking() calls waiting for a thread.",
                    off["queued"])
        yield gauge("goroutines_offload_in_flight", "blocking() calls not yet returned.",
                    off["in_flight"])
        runq = GaugeMetricFamily("goroutines_runq", "Tasks on each P's local run queue.",
                                 labels=["p"])
        for i, p in enumerate(st["procs"]):
            runq.add_metric([str(i)], p["runq_len"])
        yield runq


def register(registry: CollectorRegistry | None = None) -> GoroutinesCollector:
    """Register a ``GoroutinesCollector`` with ``registry`` (default: prometheus_client's
    global REGISTRY) and return it; ``registry.unregister(collector)`` undoes it.

    Example::

        collector = metrics.register()
    """
    collector = GoroutinesCollector()
    (REGISTRY if registry is None else registry).register(collector)
    return collector
