"""Memory cost of tasks, goroutines against its peers.

Run::

    pytest bench/bench_memory.py --benchmark-only

``test_parked_task_memory``: resident memory per parked task, from the RSS
growth while K=50_000 tasks (2000 under ``--benchmark-disable``) are all
blocked.  Threads are capped at 2000 (default stack size), since the figure is
per task anyway.  Task handles are kept where the API returns them, as a real
program would; that adds 8 bytes per task.

``test_churn_rss``: peak and final RSS growth while one million goroutines
tasks (20_000 under ``--benchmark-disable``) are spawned in batches of 10_000
that each finish at once.  At most one batch is alive at a time, so growth far
beyond one batch's worth means finished tasks are not being freed.

Each measurement runs in a fresh interpreter (this file run as a script) so
the figures do not depend on what pytest and earlier tests left allocated.
Linux only: RSS comes from /proc/self/statm.
"""

import json
import os
import subprocess
import sys

import pytest

STATM = "/proc/self/statm"
MAX_THREADS = 2000
CHURN_BATCH = 10_000

pytestmark = pytest.mark.skipif(not os.path.exists(STATM), reason="needs Linux /proc/self/statm")


def rss():
    """Current resident set size in bytes."""
    with open(STATM) as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- Probes: run in the child interpreter, each returns a JSON-able dict. ---
# The baseline RSS is read once the runtime is up, so only the tasks count.


def _per_task(tasks, before):
    return {"tasks": tasks, "bytes_per_task": round((rss() - before) / tasks)}


def probe_goroutines(k):
    import goroutines as gr

    result = {}
    started = []

    def parked():
        # Not a counter: `n += 1` is not atomic if tasks hop OS threads.
        started.append(None)
        gr.sleep(1000)

    def main():
        before = rss()
        ts = [gr.go(parked) for _ in range(k)]
        # A sleeping main gives no ordering guarantee against fresh tasks (in
        # Go a woken goroutine may run first), so wait until each has run.
        while len(started) < k:
            gr.sleep(0.001)
        started.clear()
        result.update(_per_task(len(ts), before))
        # Returning from main ends the run; the runtime cancels the sleepers.

    gr.run(main, procs=1)
    return result


def probe_gevent(k):
    import gevent

    before = rss()
    gs = [gevent.spawn(gevent.sleep, 1000) for _ in range(k)]
    gevent.sleep(0)  # runs every spawned greenlet up to its sleep
    return _per_task(len(gs), before)


def _asyncio_parked(run, k):
    import asyncio

    async def main():
        event = asyncio.Event()
        before = rss()
        ts = [asyncio.create_task(event.wait()) for _ in range(k)]
        await asyncio.sleep(0)  # runs every new task up to its wait
        result = _per_task(len(ts), before)
        # Wake them rather than let the runner cancel them: each waiter leaves
        # Event's deque via remove(), quadratic in the runner's cancel order
        # but constant-time in wake-up (FIFO) order.
        event.set()
        await asyncio.gather(*ts)
        return result

    return run(main())


def probe_asyncio(k):
    import asyncio

    return _asyncio_parked(asyncio.run, k)


def probe_uvloop(k):
    import uvloop

    return _asyncio_parked(uvloop.run, k)


def probe_trio(k):
    import trio
    import trio.testing

    async def main():
        event = trio.Event()
        async with trio.open_nursery() as nursery:
            before = rss()
            for _ in range(k):
                nursery.start_soon(event.wait)
            await trio.testing.wait_all_tasks_blocked()
            result = _per_task(k, before)
            nursery.cancel_scope.cancel()
        return result

    return trio.run(main)


def probe_threads(k):
    import threading

    event = threading.Event()
    before = rss()
    threads = [threading.Thread(target=event.wait) for _ in range(min(k, MAX_THREADS))]
    for thread in threads:
        thread.start()
    result = _per_task(len(threads), before)
    event.set()
    for thread in threads:
        thread.join()
    return result


def probe_goroutines_churn(k):
    import goroutines as gr

    result = {}

    def f():
        return None

    def main():
        before = peak = rss()
        for start in range(0, k, CHURN_BATCH):
            ts = [gr.go(f) for _ in range(min(CHURN_BATCH, k - start))]
            # Sampled while the whole batch is alive: the batch's high point.
            peak = max(peak, rss())
            for t in ts:
                t.join()
        result.update(
            tasks=k,
            peak_rss_growth_mib=(peak - before) / 2**20,
            final_rss_growth_mib=(rss() - before) / 2**20,
        )

    gr.run(main, procs=1)
    return result


PROBES = {
    "goroutines": probe_goroutines,
    "gevent": probe_gevent,
    "asyncio": probe_asyncio,
    "uvloop": probe_uvloop,
    "trio": probe_trio,
    "threads": probe_threads,
    "goroutines_churn": probe_goroutines_churn,
}


# --- Tests: run in pytest, each probe in its own interpreter. ---


def run_probe(probe, k):
    # Give the child the same import path as this process, so it measures the
    # goroutines that pytest imported (e.g. from src/ via the ini `pythonpath`).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    child = subprocess.run(
        # faulthandler: a runtime that crashes still leaves a traceback.
        [sys.executable, "-X", "faulthandler", __file__, probe, str(k)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if child.returncode != 0:
        # Only the tail: a runtime that fails per task can print megabytes.
        pytest.fail(
            f"probe {probe} exited with {child.returncode}, stderr tail:\n{child.stderr[-4000:]}"
        )
    return json.loads(child.stdout.splitlines()[-1])


# Runtime -> importorskip arguments for what its probe needs.
PARKED = {
    "goroutines": ("goroutines",),
    "gevent": ("gevent",),
    "asyncio": ("asyncio",),
    "uvloop": ("uvloop", "0.18"),  # uvloop.run
    "trio": ("trio",),
    "threads": ("threading",),
}


@pytest.mark.benchmark(group="memory-parked")
@pytest.mark.parametrize("runtime", PARKED)
def test_parked_task_memory(runtime, benchmark, smoke):
    pytest.importorskip(*PARKED[runtime])
    k = 2000 if smoke else 50_000
    benchmark.extra_info.update(
        benchmark.pedantic(run_probe, args=(runtime, k), rounds=1, iterations=1)
    )


@pytest.mark.benchmark(group="memory-churn")
def test_churn_rss(benchmark, smoke):
    pytest.importorskip("goroutines")
    k = 20_000 if smoke else 1_000_000
    benchmark.extra_info.update(
        benchmark.pedantic(run_probe, args=("goroutines_churn", k), rounds=1, iterations=1)
    )


if __name__ == "__main__":
    probe_name, tasks = sys.argv[1], int(sys.argv[2])
    print(json.dumps(PROBES[probe_name](tasks)))
