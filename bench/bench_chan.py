"""Channel workloads, goroutines against its peers.

Run::

    pytest bench/bench_chan.py --benchmark-only

Groups (each entry's ``per_op_us`` is the mean time per round trip / item / hop):

* ``chan-pingpong``: N unbuffered round trips between two tasks (N=20_000).
  Peers: gevent.queue.Channel, two asyncio.Queue(maxsize=1) (the closest asyncio has
  to a rendezvous), trio memory channels with max_buffer_size=0, threads with
  queue.Queue.
* ``chan-buffered-1x1`` / ``chan-buffered-4x4``: 50_000 items through one channel of
  capacity 128, by 1 producer/1 consumer and 4 producers/4 consumers.
* ``chan-select4``: goroutines only. 4 producers each feed their own channel and one
  consumer ``select``s over the 4 Recv cases (50_000 items). None of the peers has a
  comparable primitive (gevent has no select; asyncio.wait over 4 pending gets and trio
  need a task per channel), so only procs=1 and procs=2 are compared, plus a loop of
  plain ``recv`` on one channel as a reference for the cost select adds.
* ``chan-ring``: the thread-ring benchmark: 503 tasks in a ring of unbuffered channels
  pass a token for 50_000 hops. Peers: gevent, asyncio, trio.

``greenlet-floor`` in the ping-pong and ring groups is no runtime: bare greenlets that
switch straight to each other with the value, no channel and no scheduler. It is what
any greenlet-based runtime pays for the switches alone, so its ratio to gevent bounds
what goroutines can reach there (docs/performance.md).

Under ``--benchmark-disable`` (the CI smoke run) every size is small.  Each round
includes starting and stopping the runtime.
"""

import asyncio
import functools
import queue
import threading

import pytest
from _peers import on_asyncio, on_goroutines, on_uvloop

try:  # bench/conftest.py is importable as "conftest" when bench/ is the rootdir's child
    from conftest import ROUNDS
except ImportError:  # pragma: no cover
    ROUNDS = 5

CAPACITY = 128
RING_TASKS = 503


@pytest.fixture
def sizes(smoke):
    if smoke:
        return {"pingpong": 500, "buffered": 2000, "select": 2000, "ring": 2000}
    return {"pingpong": 20_000, "buffered": 50_000, "select": 50_000, "ring": 50_000}


@pytest.fixture
def measure_ops(benchmark):
    """Time ``fn`` (which does ``ops`` operations) and record µs per operation."""

    def run(fn, *, ops, check=None):
        result = benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
        if check is not None:
            check(result)
        if benchmark.stats:
            benchmark.extra_info["per_op_us"] = benchmark.stats.stats.mean / ops * 1e6
        benchmark.extra_info["ops"] = ops

    return run


# =========================================================================== ping-pong


def gr_pingpong_main(gr, n):
    """main for goroutines: n round trips to an echo task (bench_procs.py reuses it)."""

    def main():
        ping, pong = gr.Chan(), gr.Chan()

        def echo():
            for v in ping:
                pong.send(v)

        gr.go(echo)
        total = 0
        for i in range(n):
            ping.send(i)
            total += pong.recv()
        ping.close()
        return total

    return main


def _gr_pingpong(procs):
    return on_goroutines(procs, gr_pingpong_main)


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
            total += pong.get()
        ping.put(None)
        g.join()
        return total

    return run


def _greenlet_pingpong(n):
    greenlet = pytest.importorskip("greenlet")

    def run():
        main = greenlet.getcurrent()

        def echo(v):
            while v is not None:
                v = main.switch(v)

        g = greenlet.greenlet(echo)
        total = 0
        for i in range(n):
            total += g.switch(i)
        g.switch(None)
        return total

    return run


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
        total += await pong.get()
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
                    total += await pong_r.receive()
        return total

    return lambda: trio.run(main)


def _threads_pingpong(n):
    def run():
        ping, pong = queue.Queue(), queue.Queue()

        def echo():
            while True:
                v = ping.get()
                if v is None:
                    return
                pong.put(v)

        th = threading.Thread(target=echo)
        th.start()
        total = 0
        for i in range(n):
            ping.put(i)
            total += pong.get()
        ping.put(None)
        th.join()
        return total

    return run


PINGPONG = {
    "goroutines-procs1": _gr_pingpong(1),
    "goroutines-procs2": _gr_pingpong(2),
    "gevent": _gevent_pingpong,
    "asyncio": on_asyncio(_aio_pingpong),
    "uvloop": on_uvloop(_aio_pingpong),
    "trio": _trio_pingpong,
    "threads": _threads_pingpong,
    "greenlet-floor": _greenlet_pingpong,
}


@pytest.mark.benchmark(group="chan-pingpong")
@pytest.mark.parametrize("runtime", PINGPONG)
def test_pingpong(runtime, sizes, measure_ops):
    n = sizes["pingpong"]
    expected = n * (n - 1) // 2
    measure_ops(PINGPONG[runtime](n), ops=n, check=lambda r: _assert_eq(r, expected))


def _assert_eq(got, expected):
    assert got == expected, (got, expected)


# =========================================================================== buffered


def _split(n, k):
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _gr_buffered(procs):
    def make_main(gr, n, workers):
        def main():
            ch = gr.Chan(CAPACITY)
            wg = gr.WaitGroup()
            wg.add(workers)

            def producer(count):
                send = ch.send
                for i in range(count):
                    send(i)
                wg.done()

            def consumer():
                total = 0
                for v in ch:
                    total += v
                return total

            cons = [gr.go(consumer) for _ in range(workers)]
            for count in _split(n, workers):
                gr.go(producer, count)
            wg.wait()
            ch.close()
            return sum(t.join() for t in cons)

        return main

    return on_goroutines(procs, make_main)


def _gevent_buffered(n, workers):
    gevent = pytest.importorskip("gevent")
    from gevent.queue import Queue

    def run():
        q = Queue(CAPACITY)

        def producer(count):
            put = q.put
            for i in range(count):
                put(i)

        def consumer():
            total = 0
            get = q.get
            while True:
                v = get()
                if v is None:
                    return total
                total += v

        cons = [gevent.spawn(consumer) for _ in range(workers)]
        prods = [gevent.spawn(producer, c) for c in _split(n, workers)]
        gevent.joinall(prods)
        for _ in range(workers):
            q.put(None)
        gevent.joinall(cons)
        return sum(g.value for g in cons)

    return run


async def _aio_buffered(n, workers):
    q = asyncio.Queue(CAPACITY)

    async def producer(count):
        put = q.put
        for i in range(count):
            await put(i)

    async def consumer():
        total = 0
        get = q.get
        while True:
            v = await get()
            if v is None:
                return total
            total += v

    cons = [asyncio.create_task(consumer()) for _ in range(workers)]
    await asyncio.gather(*(producer(c) for c in _split(n, workers)))
    for _ in range(workers):
        await q.put(None)
    return sum(await asyncio.gather(*cons))


def _trio_buffered(n, workers):
    trio = pytest.importorskip("trio")

    async def main():
        send, recv = trio.open_memory_channel(CAPACITY)
        totals = []

        async def producer(s, count):
            async with s:
                for i in range(count):
                    await s.send(i)

        async def consumer(r):
            total = 0
            async with r:
                async for v in r:
                    total += v
            totals.append(total)

        async with trio.open_nursery() as nursery:
            async with send, recv:
                for _ in range(workers):
                    nursery.start_soon(consumer, recv.clone())
                for c in _split(n, workers):
                    nursery.start_soon(producer, send.clone(), c)
        return sum(totals)

    return lambda: trio.run(main)


def _threads_buffered(n, workers):
    def run():
        q = queue.Queue(CAPACITY)
        totals = [0] * workers

        def producer(count):
            put = q.put
            for i in range(count):
                put(i)

        def consumer(k):
            total = 0
            get = q.get
            while True:
                v = get()
                if v is None:
                    totals[k] = total
                    return
                total += v

        cons = [threading.Thread(target=consumer, args=(k,)) for k in range(workers)]
        prods = [threading.Thread(target=producer, args=(c,)) for c in _split(n, workers)]
        for th in cons + prods:
            th.start()
        for th in prods:
            th.join()
        for _ in range(workers):
            q.put(None)
        for th in cons:
            th.join()
        return sum(totals)

    return run


BUFFERED = {
    "goroutines-procs1": _gr_buffered(1),
    "goroutines-procs2": _gr_buffered(2),
    "gevent": _gevent_buffered,
    "asyncio": on_asyncio(_aio_buffered),
    "uvloop": on_uvloop(_aio_buffered),
    "trio": _trio_buffered,
    "threads": _threads_buffered,
}


def _expected_buffered(n, workers):
    return sum(c * (c - 1) // 2 for c in _split(n, workers))


@pytest.mark.benchmark(group="chan-buffered-1x1")
@pytest.mark.parametrize("runtime", BUFFERED)
def test_buffered_1x1(runtime, sizes, measure_ops):
    n = sizes["buffered"]
    measure_ops(
        BUFFERED[runtime](n, 1), ops=n, check=lambda r: _assert_eq(r, _expected_buffered(n, 1))
    )


@pytest.mark.benchmark(group="chan-buffered-4x4")
@pytest.mark.parametrize("runtime", BUFFERED)
def test_buffered_4x4(runtime, sizes, measure_ops):
    n = sizes["buffered"]
    measure_ops(
        BUFFERED[runtime](n, 4), ops=n, check=lambda r: _assert_eq(r, _expected_buffered(n, 4))
    )


# =========================================================================== select


def _gr_select(procs, use_select=True):
    def make_main(gr, n):
        def main():
            chans = [gr.Chan(CAPACITY) for _ in range(4)]

            def producer(ch, count):
                for i in range(count):
                    ch.send(i)
                ch.close()

            counts = _split(n, 4)
            if not use_select:  # reference: the same items through one channel
                one = gr.Chan(CAPACITY)
                gr.go(producer, one, n)
                return sum(one)
            for ch, count in zip(chans, counts, strict=True):
                gr.go(producer, ch, count)
            cases = [gr.Recv(ch) for ch in chans]
            total, open_ = 0, 4
            select = gr.select
            while open_:
                i, v, ok = select(*cases)
                if ok:
                    total += v
                else:
                    cases[i] = gr.Recv(None)  # closed: never ready again
                    open_ -= 1
            return total

        return main

    return on_goroutines(procs, make_main)


SELECT = {
    "goroutines-procs1": _gr_select(1),
    "goroutines-procs2": _gr_select(2),
    "goroutines-procs1-plain-recv": _gr_select(1, use_select=False),
    "goroutines-procs2-plain-recv": _gr_select(2, use_select=False),
}


@pytest.mark.benchmark(group="chan-select4")
@pytest.mark.parametrize("runtime", SELECT)
def test_select4(runtime, sizes, measure_ops):
    n = sizes["select"]
    expected = (
        _expected_buffered(n, 4) if not runtime.endswith("plain-recv") else n * (n - 1) // 2
    )
    measure_ops(SELECT[runtime](n), ops=n, check=lambda r: _assert_eq(r, expected))


# =========================================================================== ring


def gr_ring_main(gr, hops):
    """main for goroutines: a token passed hops times around RING_TASKS tasks
    (bench_procs.py reuses it)."""

    def main():
        chans = [gr.Chan() for _ in range(RING_TASKS)]
        done = gr.Chan(1)

        def node(k):
            inbox, outbox = chans[k], chans[(k + 1) % RING_TASKS]
            for token in inbox:
                if token == 0:
                    done.send(k)
                    return
                outbox.send(token - 1)

        for k in range(RING_TASKS):
            gr.go(node, k)
        chans[0].send(hops)
        winner = done.recv()
        for ch in chans:
            ch.close()
        return winner

    return main


def _gr_ring(procs):
    return on_goroutines(procs, gr_ring_main)


def _gevent_ring(hops):
    gevent = pytest.importorskip("gevent")
    from gevent.queue import Channel

    def run():
        chans = [Channel() for _ in range(RING_TASKS)]
        done = gevent.event.AsyncResult()

        def node(k):
            inbox, outbox = chans[k], chans[(k + 1) % RING_TASKS]
            while True:
                token = inbox.get()
                if token == 0:
                    done.set(k)
                    return
                outbox.put(token - 1)

        gs = [gevent.spawn(node, k) for k in range(RING_TASKS)]
        chans[0].put(hops)
        winner = done.get()
        gevent.killall(gs)
        return winner

    return run


def _greenlet_ring(hops):
    greenlet = pytest.importorskip("greenlet")

    def run():
        main = greenlet.getcurrent()
        nodes = []

        def node(k):
            token = main.switch()
            while token:
                token = nodes[(k + 1) % RING_TASKS].switch(token - 1)
            main.switch(k)

        nodes += [greenlet.greenlet(functools.partial(node, k)) for k in range(RING_TASKS)]
        for g in nodes:  # started from main: a greenlet started by another nests its depth
            g.switch()
        winner = nodes[0].switch(hops)
        for g in nodes:
            g.throw()  # GreenletExit: ends the parked ones now, not at the next gc
        return winner

    return run


async def _aio_ring(hops):
    chans = [asyncio.Queue(maxsize=1) for _ in range(RING_TASKS)]
    done = asyncio.get_running_loop().create_future()

    async def node(k):
        inbox, outbox = chans[k], chans[(k + 1) % RING_TASKS]
        while True:
            token = await inbox.get()
            if token == 0:
                done.set_result(k)
                return
            await outbox.put(token - 1)

    ts = [asyncio.create_task(node(k)) for k in range(RING_TASKS)]
    await chans[0].put(hops)
    winner = await done
    for t in ts:
        t.cancel()
    await asyncio.gather(*ts, return_exceptions=True)
    return winner


def _trio_ring(hops):
    trio = pytest.importorskip("trio")

    async def main():
        pairs = [trio.open_memory_channel(0) for _ in range(RING_TASKS)]
        result = []

        async def node(k, nursery):
            inbox, outbox = pairs[k][1], pairs[(k + 1) % RING_TASKS][0]
            async for token in inbox:
                if token == 0:
                    result.append(k)
                    nursery.cancel_scope.cancel()
                    return
                await outbox.send(token - 1)

        async with trio.open_nursery() as nursery:
            for k in range(RING_TASKS):
                nursery.start_soon(node, k, nursery)
            await pairs[0][0].send(hops)
        return result[0]

    return lambda: trio.run(main)


RING = {
    "goroutines-procs1": _gr_ring(1),
    "goroutines-procs2": _gr_ring(2),
    "gevent": _gevent_ring,
    "asyncio": on_asyncio(_aio_ring),
    "uvloop": on_uvloop(_aio_ring),
    "trio": _trio_ring,
    "greenlet-floor": _greenlet_ring,
}


@pytest.mark.benchmark(group="chan-ring")
@pytest.mark.parametrize("runtime", RING)
def test_ring(runtime, sizes, measure_ops):
    hops = sizes["ring"]
    # The token starts at `hops` at node 0 and is decremented once per hop.
    expected = hops % RING_TASKS
    measure_ops(RING[runtime](hops), ops=hops, check=lambda r: _assert_eq(r, expected))
