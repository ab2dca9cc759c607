"""Timeouts that do not fire, goroutines against its peers.

Run::

    pytest bench/bench_timer.py --benchmark-only

Groups (each entry's ``per_op_us`` is the mean time per receive; ``peak_kib`` is the
tracemalloc peak of one extra, untimed round):

* ``timer-timeout-ready``: N receives of a value that is already there, each under a
  30 s timeout (N=100_000). goroutines: ``select(Recv(ch), Recv(after(30)))``, as in Go;
  ``select(Recv(ch), timeout=30)`` is the reference without a timer channel. Peers:
  ``asyncio.wait_for(q.get(), 30)``, trio's ``move_on_after(30)``, gevent's
  ``Timeout(30)``.
* ``timer-timeout-pingpong``: N round trips to an echo task, the receive of each reply
  under a 30 s timeout (N=20_000): the receiver parks each time, so the timer is armed
  and disarmed for real.

Under ``--benchmark-disable`` (the CI smoke run) every size is small. Each round includes
starting and stopping the runtime.
"""

import asyncio
import tracemalloc

import pytest
from _peers import on_asyncio, on_goroutines, on_uvloop

try:  # bench/conftest.py is importable as "conftest" when bench/ is the rootdir's child
    from conftest import ROUNDS
except ImportError:  # pragma: no cover
    ROUNDS = 5

TIMEOUT = 30


@pytest.fixture
def sizes(smoke):
    if smoke:
        return {"ready": 2000, "pingpong": 500}
    return {"ready": 100_000, "pingpong": 20_000}


@pytest.fixture
def measure_ops(benchmark):
    """Time ``fn`` (which does ``ops`` operations), record µs per operation and the
    tracemalloc peak of one more run."""

    def run(fn, *, ops, check):
        result = benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
        check(result)
        if benchmark.stats:
            benchmark.extra_info["per_op_us"] = benchmark.stats.stats.mean / ops * 1e6
        tracemalloc.start()
        try:
            check(fn())
            benchmark.extra_info["peak_kib"] = tracemalloc.get_traced_memory()[1] / 1024
        finally:
            tracemalloc.stop()
        benchmark.extra_info["ops"] = ops

    return run


def _check(expected):
    def check(got):
        assert got == expected, (got, expected)

    return check


# =========================================================================== ready


def _gr_ready(procs, use_after=True):
    def make_main(gr, n):
        def main():
            ch = gr.Chan(1)
            select, Recv, after = gr.select, gr.Recv, gr.after
            total = 0
            for i in range(n):
                ch.send(i)
                if use_after:
                    k, v, ok = select(Recv(ch), Recv(after(TIMEOUT)))
                else:
                    k, v, ok = select(Recv(ch), timeout=TIMEOUT)
                total += v
            return total

        return main

    return on_goroutines(procs, make_main)


async def _aio_ready(n):
    q = asyncio.Queue(1)
    total = 0
    for i in range(n):
        q.put_nowait(i)
        total += await asyncio.wait_for(q.get(), TIMEOUT)
    return total


def _trio_ready(n):
    trio = pytest.importorskip("trio")

    async def main():
        send, recv = trio.open_memory_channel(1)
        total = 0
        for i in range(n):
            send.send_nowait(i)
            with trio.move_on_after(TIMEOUT):
                total += await recv.receive()
        return total

    return lambda: trio.run(main)


def _gevent_ready(n):
    gevent = pytest.importorskip("gevent")
    from gevent.queue import Queue

    def run():
        q = Queue(1)
        total = 0
        for i in range(n):
            q.put(i)
            with gevent.Timeout(TIMEOUT):
                total += q.get()
        return total

    return run


READY = {
    "goroutines-procs1": _gr_ready(1),
    "goroutines-procs2": _gr_ready(2),
    "goroutines-procs1-select-timeout": _gr_ready(1, use_after=False),
    "gevent": _gevent_ready,
    "asyncio": on_asyncio(_aio_ready),
    "uvloop": on_uvloop(_aio_ready),
    "trio": _trio_ready,
}


@pytest.mark.benchmark(group="timer-timeout-ready")
@pytest.mark.parametrize("runtime", READY)
def test_timeout_ready(runtime, sizes, measure_ops):
    n = sizes["ready"]
    measure_ops(READY[runtime](n), ops=n, check=_check(n * (n - 1) // 2))


# =========================================================================== ping-pong


def _gr_pingpong(procs, use_after=True):
    def make_main(gr, n):
        def main():
            ping, pong = gr.Chan(), gr.Chan()
            select, Recv, after = gr.select, gr.Recv, gr.after

            def echo():
                for v in ping:
                    pong.send(v)

            gr.go(echo)
            total = 0
            for i in range(n):
                ping.send(i)
                if use_after:
                    k, v, ok = select(Recv(pong), Recv(after(TIMEOUT)))
                else:
                    k, v, ok = select(Recv(pong), timeout=TIMEOUT)
                total += v
            ping.close()
            return total

        return main

    return on_goroutines(procs, make_main)


async def _aio_pingpong(n):
    ping, pong = asyncio.Queue(maxsize=1), asyncio.Queue(maxsize=1)

    async def echo():
        while True:
            v = await ping.get()
            if v is None:
                return
            await pong.put(v)

    t = asyncio.create_task(echo())
    total = 0
    for i in range(n):
        await ping.put(i)
        total += await asyncio.wait_for(pong.get(), TIMEOUT)
    await ping.put(None)
    await t
    return total


def _trio_pingpong(n):
    trio = pytest.importorskip("trio")

    async def main():
        ping_s, ping_r = trio.open_memory_channel(0)
        pong_s, pong_r = trio.open_memory_channel(0)
        total = 0

        async def echo():
            async with ping_r, pong_s:
                async for v in ping_r:
                    await pong_s.send(v)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            async with ping_s:
                for i in range(n):
                    await ping_s.send(i)
                    with trio.move_on_after(TIMEOUT):
                        total += await pong_r.receive()
        return total

    return lambda: trio.run(main)


def _gevent_pingpong(n):
    gevent = pytest.importorskip("gevent")
    from gevent.queue import Channel

    def run():
        ping, pong = Channel(), Channel()

        def echo():
            while True:
                v = ping.get()
                if v is None:
                    return
                pong.put(v)

        g = gevent.spawn(echo)
        total = 0
        for i in range(n):
            ping.put(i)
            with gevent.Timeout(TIMEOUT):
                total += pong.get()
        ping.put(None)
        g.join()
        return total

    return run


PINGPONG = {
    "goroutines-procs1": _gr_pingpong(1),
    "goroutines-procs2": _gr_pingpong(2),
    "goroutines-procs1-select-timeout": _gr_pingpong(1, use_after=False),
    "gevent": _gevent_pingpong,
    "asyncio": on_asyncio(_aio_pingpong),
    "uvloop": on_uvloop(_aio_pingpong),
    "trio": _trio_pingpong,
}


@pytest.mark.benchmark(group="timer-timeout-pingpong")
@pytest.mark.parametrize("runtime", PINGPONG)
def test_timeout_pingpong(runtime, sizes, measure_ops):
    n = sizes["pingpong"]
    measure_ops(PINGPONG[runtime](n), ops=n, check=_check(n * (n - 1) // 2))
