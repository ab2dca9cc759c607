"""Spawn + join of N trivial tasks, goroutines against its peers.

Run::

    pytest bench/bench_spawn.py --benchmark-only

N is 100_000, or ``$GOROUTINES_BENCH_N``; under ``--benchmark-disable`` (the
CI smoke run) it is 2000.  Each round includes starting and stopping the
runtime (``gr.run``, ``asyncio.run``, the thread pool, ...), so the reported
``per_task_us`` slightly overstates the pure per-task cost at small N.
"""

import asyncio
import concurrent.futures
import os

import pytest
from _peers import on_asyncio, on_goroutines, on_uvloop


@pytest.fixture
def n(smoke):
    return 2000 if smoke else int(os.environ.get("GOROUTINES_BENCH_N", 100_000))


def f():
    return None


async def af():
    return None


def _goroutines(procs):
    def make_main(gr, n):
        def main():
            ts = [gr.go(f) for _ in range(n)]
            for t in ts:
                t.join()

        return main

    return on_goroutines(procs, make_main)


def _gevent(n):
    gevent = pytest.importorskip("gevent")
    return lambda: gevent.joinall([gevent.spawn(f) for _ in range(n)])


async def _gather(n):
    ts = [asyncio.create_task(af()) for _ in range(n)]
    await asyncio.gather(*ts)


def _trio(n):
    trio = pytest.importorskip("trio")

    async def main():
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(af)

    return lambda: trio.run(main)


def _threads(n):
    def run():
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(f) for _ in range(n)]
            for future in futures:
                future.result()

    return run


# Each maps N to a zero-argument callable that spawns and joins N tasks.
WORKLOADS = {
    "goroutines-procs1": _goroutines(1),
    "goroutines-procs2": _goroutines(2),
    "gevent": _gevent,
    "asyncio": on_asyncio(_gather),
    "uvloop": on_uvloop(_gather),
    "trio": _trio,
    "threads": _threads,
}


@pytest.mark.benchmark(group="spawn")
@pytest.mark.parametrize("runtime", WORKLOADS)
def test_spawn(runtime, n, measure):
    measure(WORKLOADS[runtime](n), tasks=n)
