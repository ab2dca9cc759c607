"""Waiting on the world: goroutines' interop against what asyncio offers for the same.

Run::

    pytest bench/bench_interop.py --benchmark-only

Groups (``per_op_us`` is the mean time per waited future or call):

* ``interop-wait``: N futures of a ``ThreadPoolExecutor(2)`` (each ``abs(i)``), with one
  waiter each, all waiting at once (N=20_000). goroutines: a task per future in
  ``gr.result(f)``; asyncio and uvloop: ``gather`` over ``asyncio.wrap_future(f)``. The
  pool's own cost is in every entry alike.
* ``interop-executor``: N trivial calls submitted from a plain thread, then every result
  waited for (N=20_000): ``gr.Executor`` against ``ThreadPoolExecutor(2)``.
* ``interop-to-async``: N concurrent calls from asyncio code, each parking for 1 ms
  (N=2_000): ``await gr.to_async(gr.sleep, 0.001)`` against
  ``await asyncio.to_thread(time.sleep, 0.001)``.

* ``interop-dask-fanout``: on a LocalCluster (two worker processes, one thread each), N
  calls of 2 ms (N=1_000) submitted and waited for one by one, all at once: from a
  goroutines task each (``gr.result``), from a thread each, and the sync baseline
  ``client.gather(client.map(...))``. ``threads_added`` is the peak of OS threads the
  waiting added to this process.
* ``interop-dask-in-worker``: four Dask tasks, each making K concurrent 20 ms waits (a
  stand-in for remote calls, K=500) inside the worker: goroutines (``gr.run`` in the task)
  against a ``ThreadPoolExecutor(32)``.

Under ``--benchmark-disable`` (the CI smoke run) every size is small.
"""

import asyncio
import concurrent.futures as cf
import os
import sys
import threading
import time

import pytest
from _peers import on_asyncio, on_uvloop

try:  # bench/conftest.py is importable as "conftest" when bench/ is the rootdir's child
    from conftest import ROUNDS
except ImportError:  # pragma: no cover
    ROUNDS = 5


@pytest.fixture
def sizes(smoke):
    if smoke:
        return {"wait": 500, "executor": 500, "to_async": 100}
    return {"wait": 20_000, "executor": 20_000, "to_async": 2_000}


@pytest.fixture
def measure_ops(benchmark):
    def run(fn, *, ops, check):
        check(benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1))
        if benchmark.stats:
            benchmark.extra_info["per_op_us"] = benchmark.stats.stats.mean / ops * 1e6
        benchmark.extra_info["ops"] = ops

    return run


@pytest.fixture(scope="module")
def pool():
    with cf.ThreadPoolExecutor(2) as pool:
        yield pool


# =========================================================================== wait


def _gr_wait(procs):
    def factory(pool, n):
        gr = pytest.importorskip("goroutines")

        def main():
            tasks = [gr.go(gr.result, pool.submit(abs, -i)) for i in range(n)]
            return sum(t.join() for t in tasks)

        return lambda: gr.run(main, procs=procs)

    return factory


async def _aio_wait(pool, n):
    futures = [asyncio.wrap_future(pool.submit(abs, -i)) for i in range(n)]
    return sum(await asyncio.gather(*futures))


WAIT = {
    "goroutines procs=1": _gr_wait(1),
    "goroutines procs=2": _gr_wait(2),
    "asyncio": on_asyncio(_aio_wait),
    "uvloop": on_uvloop(_aio_wait),
}


@pytest.mark.benchmark(group="interop-wait")
@pytest.mark.parametrize("entry", list(WAIT))
def test_wait(entry, pool, sizes, measure_ops):
    n = sizes["wait"]
    measure_ops(WAIT[entry](pool, n), ops=n, check=lambda got: got == sum(range(n)))


# ======================================================================= executor


def _gr_executor(procs):
    def factory(n):
        gr = pytest.importorskip("goroutines")

        def run():
            with gr.Executor(procs=procs) as ex:
                futures = [ex.submit(abs, -i) for i in range(n)]
                return sum(f.result() for f in futures)

        return run

    return factory


def _thread_pool(n):
    def run():
        with cf.ThreadPoolExecutor(2) as ex:
            futures = [ex.submit(abs, -i) for i in range(n)]
            return sum(f.result() for f in futures)

    return run


EXECUTOR = {
    "goroutines Executor procs=1": _gr_executor(1),
    "goroutines Executor procs=2": _gr_executor(2),
    "ThreadPoolExecutor(2)": _thread_pool,
}


@pytest.mark.benchmark(group="interop-executor")
@pytest.mark.parametrize("entry", list(EXECUTOR))
def test_executor(entry, sizes, measure_ops):
    n = sizes["executor"]
    measure_ops(EXECUTOR[entry](n), ops=n, check=lambda got: got == sum(range(n)))


# ======================================================================= to_async


async def _gr_to_async(n):
    import goroutines as gr

    with gr.Executor() as ex:
        # An open Executor holds the background runtime from its first call on: one
        # runtime for the whole round, not one per burst of to_async calls.
        await asyncio.wrap_future(ex.submit(int))
        await asyncio.gather(*(gr.to_async(gr.sleep, 0.001) for _ in range(n)))
    return n


async def _to_thread(n):
    await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.001) for _ in range(n)))
    return n


TO_ASYNC = {
    "goroutines to_async": on_asyncio(_gr_to_async),
    "goroutines to_async (uvloop)": on_uvloop(_gr_to_async),
    "asyncio.to_thread": on_asyncio(_to_thread),
    "asyncio.to_thread (uvloop)": on_uvloop(_to_thread),
}


@pytest.mark.benchmark(group="interop-to-async")
@pytest.mark.parametrize("entry", list(TO_ASYNC))
def test_to_async(entry, sizes, measure_ops):
    n = sizes["to_async"]
    measure_ops(TO_ASYNC[entry](n), ops=n, check=lambda got: got == n)


# =========================================================================== Dask
#
# One LocalCluster for the module (two worker processes, one thread each, on loopback).
# Its start (~2 s) is not timed. Fewer rounds than elsewhere: each is seconds long.

DASK_ROUNDS = 3


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cloudpickle = pytest.importorskip("cloudpickle")
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)  # the workers cannot import bench/
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address="127.0.0.1:0")
    client = distributed.Client(cluster)
    client.submit(abs, 1).result()  # warm: the workers are connected
    try:
        yield client
    finally:
        client.close()
        cluster.close()
        cloudpickle.unregister_pickle_by_value(module)


@pytest.fixture
def dask_sizes(smoke):
    return {"fanout": 20, "crawl": 20} if smoke else {"fanout": 1000, "crawl": 500}


def os_threads():
    return len(os.listdir("/proc/self/task"))


class PeakThreads:
    """The most OS threads this process had while the block ran (sampled every 2 ms),
    less the threads it had before (the sampler's own thread is in neither)."""

    def __enter__(self):
        self.before = os_threads()
        self.peak = self.before
        self.stop = threading.Event()
        self.sampler = threading.Thread(target=self._sample)
        self.sampler.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.002):
            self.peak = max(self.peak, os_threads() - 1)

    def __exit__(self, *exc):
        self.stop.set()
        self.sampler.join()
        self.added = self.peak - self.before


def cluster_work(i):
    time.sleep(0.002)  # a short piece of work on a worker
    return i


def _fanout_goroutines(client, n):
    import goroutines as gr

    def one(i):
        return gr.result(client.submit(cluster_work, i, pure=False))

    def main():
        return sum(t.join() for t in [gr.go(one, i) for i in range(n)])

    return gr.run(main, procs=2)


def _fanout_threads(client, n):
    def one(i):
        return client.submit(cluster_work, i, pure=False).result()

    with cf.ThreadPoolExecutor(n) as pool:  # one thread per waiting call
        return sum(pool.map(one, range(n)))


def _fanout_gather(client, n):
    return sum(client.gather(client.map(cluster_work, range(n), pure=False)))


FANOUT = {
    "goroutines: a task per call, gr.result": _fanout_goroutines,
    "threads: one per call, Future.result": _fanout_threads,
    "sync: client.map + client.gather": _fanout_gather,
}


@pytest.mark.benchmark(group="interop-dask-fanout")
@pytest.mark.parametrize("entry", list(FANOUT))
def test_dask_fanout(entry, dask_client, dask_sizes, benchmark):
    n = dask_sizes["fanout"]
    peaks = []

    def round_():
        with PeakThreads() as p:
            got = FANOUT[entry](dask_client, n)
        peaks.append(p.added)
        return got

    got = benchmark.pedantic(round_, rounds=DASK_ROUNDS, iterations=1)
    assert got == sum(range(n))
    if benchmark.stats:
        benchmark.extra_info["per_call_us"] = benchmark.stats.stats.mean / n * 1e6
    benchmark.extra_info["threads_added"] = max(peaks)
    benchmark.extra_info["calls"] = n


def crawl(k, mode):
    """A worker's task: k calls that each wait 20 ms on something remote (a stand-in for
    an HTTP request), run concurrently in the worker."""
    if mode == "goroutines":
        import goroutines as gr

        def main():
            tasks = [gr.go(gr.sleep, 0.02) for _ in range(k)]
            for t in tasks:
                t.join()
            return k

        return gr.run(main, procs=1)
    with cf.ThreadPoolExecutor(32) as pool:
        return len(list(pool.map(time.sleep, [0.02] * k)))


CRAWL = {
    "goroutines in each worker": "goroutines",
    "ThreadPoolExecutor(32) in each worker": "threads",
}


@pytest.mark.benchmark(group="interop-dask-in-worker")
@pytest.mark.parametrize("entry", list(CRAWL))
def test_dask_in_worker(entry, dask_client, dask_sizes, benchmark):
    k = dask_sizes["crawl"]

    def round_():
        futures = [dask_client.submit(crawl, k, CRAWL[entry], pure=False) for _ in range(4)]
        return sum(dask_client.gather(futures))

    assert benchmark.pedantic(round_, rounds=DASK_ROUNDS, iterations=1) == 4 * k
    benchmark.extra_info["calls"] = 4 * k
