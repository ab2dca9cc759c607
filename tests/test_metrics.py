"""Metrics: the histograms and live counts in stats(), goroutines.metrics' Prometheus
collector (scraped with generate_latest and over real HTTP on loopback), and
GOROUTINES_SCHEDTRACE's lines."""

import os
import subprocess
import sys
import textwrap
import urllib.request

import pytest

import goroutines as gr

prometheus_client = pytest.importorskip("prometheus_client")
from goroutines import metrics  # noqa: E402


def pingpong(n):
    a, b = gr.Chan(), gr.Chan()

    def peer():
        for _ in range(n):
            b.send(a.recv())

    gr.go(peer)
    for i in range(n):
        a.send(i)
        b.recv()


def check_hist(h):
    assert set(h) == {"count", "sum", "max", "p50", "p99", "buckets"}
    assert sum(h["buckets"]) == h["count"]
    if h["count"]:
        assert 0 <= h["p50"] <= h["p99"]
        assert h["max"] <= 2 * h["p99"] or h["max"] > h["p99"]
        assert h["sum"] >= 0


def test_stats_has_latency_and_wait_histograms(grun, procs):
    def main():
        pingpong(400)
        for _ in range(40):
            gr.sleep(0.0001)
        return gr.stats()

    s = grun(main)
    for p in s["procs"]:
        check_hist(p["latency"])
        for h in p["wait"].values():
            check_hist(h)
    check_hist(s["latency"])
    assert s["latency"]["count"] == sum(p["latency"]["count"] for p in s["procs"])
    assert s["latency"]["count"] > 0  # one wait in 16 is timed: hundreds of waits happened
    assert s["wait"]["sleep"]["count"] > 0
    assert s["wait"]["chan receive"]["count"] + s["wait"]["chan send"]["count"] > 0
    assert set(s["wait"]) >= {"join", "sleep", "chan send", "chan receive", "select", "mutex",
                              "event", "blocking call", "fd read", "fd write"}


def test_stats_live_counts(grun):
    def main():
        ev = gr.Event()
        for _ in range(10):
            gr.go(ev.wait)
        gr.sleep(0.001)
        s = gr.stats()
        ev.set()
        gr.blocking(int)
        return s, gr.stats()

    s, after = grun(main)
    assert sum(p["tasks"] for p in s["procs"]) == s["tasks_live"] == 11
    assert after["offload"]["threads"] >= 1
    assert after["offload"]["in_flight"] == 0
    assert s["fd_waiters"] == 0


def scrape_text(registry):
    return prometheus_client.generate_latest(registry).decode()


def test_collector_via_generate_latest(grun):
    def main():
        registry = prometheus_client.CollectorRegistry()
        metrics.register(registry)
        pingpong(400)
        return scrape_text(registry)

    text = grun(main)
    assert "goroutines_tasks 1.0" in text or "goroutines_tasks 2.0" in text
    assert 'goroutines_executed_total{p="0"}' in text
    assert 'goroutines_sched_latency_seconds_bucket{le="+Inf",p="0"}' in text
    assert 'goroutines_wait_seconds_count{reason="chan receive"}' in text
    assert "goroutines_offload_threads" in text


def test_collector_outside_run_reports_nothing():
    registry = prometheus_client.CollectorRegistry()
    collector = metrics.register(registry)
    assert "goroutines_" not in scrape_text(registry)
    registry.unregister(collector)


def test_real_http_scrape_over_loopback(grun):
    def main():
        registry = prometheus_client.CollectorRegistry()
        metrics.register(registry)
        server, thread = prometheus_client.start_http_server(0, addr="127.0.0.1",
                                                             registry=registry)
        try:
            port = server.server_address[1]
            pingpong(100)
            url = f"http://127.0.0.1:{port}/metrics"
            body = gr.blocking(lambda: urllib.request.urlopen(url, timeout=30).read())
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
        return body.decode()

    body = grun(main)
    assert "goroutines_procs" in body
    assert "goroutines_sched_latency_seconds_count" in body


def test_metrics_without_prometheus_client_is_a_clear_import_error():
    code = textwrap.dedent("""
        import sys
        sys.modules["prometheus_client"] = None
        try:
            import goroutines.metrics
        except ImportError as e:
            print(e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert "pip install prometheus_client" in out.stdout


def test_schedtrace_prints_lines():
    code = textwrap.dedent("""
        import goroutines as gr
        def main():
            for _ in range(30):
                gr.sleep(0.01)
        gr.run(main, procs=2)
    """)
    env = dict(os.environ, GOROUTINES_SCHEDTRACE="20")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("SCHED ")]
    assert lines
    assert "procs=2" in lines[0] and "runqueue=" in lines[0] and lines[0].endswith("]")
    assert len(lines[0].rsplit("[", 1)[1].split()) == 2  # one local queue per P


@pytest.mark.parametrize("value", ["1s", "-5", "0.5"])
def test_bad_schedtrace_env(monkeypatch, value):
    monkeypatch.setenv("GOROUTINES_SCHEDTRACE", value)
    with pytest.raises(ValueError, match="GOROUTINES_SCHEDTRACE must be"):
        gr.run(int)
