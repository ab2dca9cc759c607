"""gather of N trivial tasks, and a bounded parallel map over N items, goroutines against
its peers.

Run::

    pytest bench/bench_gather.py --benchmark-only

N is 100_000, or ``$GOROUTINES_BENCH_N``; under ``--benchmark-disable`` (the CI smoke
run) it is 2000. As in bench_spawn.py, each round includes starting and stopping the
runtime.

- ``gather``: ``gr.gather(*fns)`` (it starts the tasks) against ``asyncio.gather`` of the
  coroutines, ``gevent.joinall`` of spawned greenlets and a trio nursery.
- ``map``: ``gr.map(fn, items, limit=100)`` against asyncio's idiom (a task per item
  holding an ``asyncio.Semaphore(100)``, gathered), ``gevent.pool.Pool(100).imap`` and
  trio with a ``CapacityLimiter(100)``.
"""

import asyncio
import os

import pytest
from _peers import on_asyncio, on_goroutines, on_uvloop

LIMIT = 100


@pytest.fixture
def n(smoke):
    return 2000 if smoke else int(os.environ.get("GOROUTINES_BENCH_N", 100_000))


def f():
    return None


def g(x):
    return x


async def af():
    return None


async def ag(x):
    return x


# --------------------------------------------------------------------------- gather


def _gr_gather(procs):
    def make_main(gr, n):
        return lambda: gr.gather(*[f] * n)

    return on_goroutines(procs, make_main)


async def _asyncio_gather(n):
    await asyncio.gather(*[af() for _ in range(n)])


def _gevent_gather(n):
    gevent = pytest.importorskip("gevent")
    return lambda: gevent.joinall([gevent.spawn(f) for _ in range(n)])


def _trio_gather(n):
    trio = pytest.importorskip("trio")

    async def main():
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(af)

    return lambda: trio.run(main)


GATHER = {
    "goroutines-procs1": _gr_gather(1),
    "goroutines-procs2": _gr_gather(2),
    "gevent": _gevent_gather,
    "asyncio": on_asyncio(_asyncio_gather),
    "uvloop": on_uvloop(_asyncio_gather),
    "trio": _trio_gather,
}


@pytest.mark.benchmark(group="gather")
@pytest.mark.parametrize("runtime", GATHER)
def test_gather(runtime, n, measure):
    measure(GATHER[runtime](n), tasks=n)


# --------------------------------------------------------------------------- map


def _gr_map(procs):
    def make_main(gr, n):
        def main():
            for _ in gr.map(g, range(n), limit=LIMIT):
                pass

        return main

    return on_goroutines(procs, make_main)


async def _asyncio_map(n):
    sem = asyncio.Semaphore(LIMIT)

    async def bounded(x):
        async with sem:
            return await ag(x)

    await asyncio.gather(*[bounded(x) for x in range(n)])


def _gevent_map(n):
    pool = pytest.importorskip("gevent.pool")

    def run():
        for _ in pool.Pool(LIMIT).imap(g, range(n)):
            pass

    return run


def _trio_map(n):
    trio = pytest.importorskip("trio")

    async def main():
        limiter = trio.CapacityLimiter(LIMIT)

        async def bounded(x):
            async with limiter:
                await ag(x)

        async with trio.open_nursery() as nursery:
            for x in range(n):
                nursery.start_soon(bounded, x)

    return lambda: trio.run(main)


MAP = {
    "goroutines-procs1": _gr_map(1),
    "goroutines-procs2": _gr_map(2),
    "gevent": _gevent_map,
    "asyncio": on_asyncio(_asyncio_map),
    "uvloop": on_uvloop(_asyncio_map),
    "trio": _trio_map,
}


@pytest.mark.benchmark(group="map")
@pytest.mark.parametrize("runtime", MAP)
def test_map(runtime, n, measure):
    measure(MAP[runtime](n), tasks=n)
