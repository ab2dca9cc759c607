"""Dask (and Ray, when installed): goroutines as the per-node layer under a cluster.

One real distributed.LocalCluster for the module: two worker processes with one thread
each, on loopback. Tasks submit work with client.submit and wait with gr.result: a
thousand of them wait at once on a handful of threads. gr.run also runs inside a worker's
task. Exceptions, a cancelled Dask future, a timeout and a cancelled waiting task each give
the exception the stdlib would.
"""

import os
import sys
import time

import pytest

import goroutines as gr

distributed = pytest.importorskip("distributed", reason="Dask's distributed is not installed")
cloudpickle = pytest.importorskip("cloudpickle")


@pytest.fixture(scope="module")
def client():
    # The workers cannot import this test module: its functions travel by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address="127.0.0.1:0")
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def os_threads():
    """Every thread of this process, whether or not Python's threading module knows it
    (the runtime's Ms are C threads)."""
    return len(os.listdir("/proc/self/task"))


def square(i):
    time.sleep(0.001)
    return i * i


class Boom(Exception):
    pass


def fail(msg):
    raise Boom(msg)


def test_fan_out_from_tasks_waits_on_few_threads(client, procs):
    n = 1000 if procs == 2 else 250  # the cluster's own overhead dominates: keep it short
    counts = {}

    def one(i):
        return gr.result(client.submit(square, i, pure=False))

    def main():
        tasks = [gr.go(one, i) for i in range(n)]
        while gr.stats()["parks"] < n // 2:  # most are waiting on the cluster now
            gr.sleep(0.01)
        counts["during"] = os_threads()
        return [t.join() for t in tasks]

    counts["before"] = os_threads()
    assert gr.run(main, procs=procs) == [i * i for i in range(n)]
    # The Ms beyond the first, Dask's callback thread: not one thread per waiting task.
    assert counts["during"] - counts["before"] <= procs + 2


def test_exception_of_a_dask_task(client, procs):
    def main():
        with pytest.raises(Boom, match="on a worker"):
            gr.result(client.submit(fail, "on a worker", pure=False))
        return True

    assert gr.run(main, procs=procs)


def square_or_fail(i):
    if i % 7 == 3:
        raise Boom(f"call {i}")
    return i * i


def test_values_and_errors_mixed_each_waiter_gets_its_own(client, procs):
    # Finished futures are gathered in batches, failed ones one by one: never mixed up.
    def one(i):
        try:
            return gr.result(client.submit(square_or_fail, i, pure=False))
        except Boom as e:
            return str(e)

    def main():
        return [t.join() for t in [gr.go(one, i) for i in range(200)]]

    expected = [f"call {i}" if i % 7 == 3 else i * i for i in range(200)]
    assert gr.run(main, procs=procs) == expected


def test_cancelled_dask_future(client):
    def main():
        f = client.submit(time.sleep, 0.2, pure=False)  # a worker thread cannot be interrupted
        gr.go(client.cancel, f)
        # Dask's own error: the future was cancelled, or its client's loop is closed.
        with pytest.raises((distributed.client.FutureCancelledError, RuntimeError)):
            gr.result(f)
        return True

    assert gr.run(main, procs=2)


def test_timeout_and_cancelled_waiter(client, procs):
    def main():
        f = client.submit(time.sleep, 0.3, pure=False)
        with pytest.raises(TimeoutError):
            gr.result(f, timeout=0.01)
        t = gr.go(gr.result, f)
        gr.sleep(0.01)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        return gr.result(f)  # the future itself went on

    assert gr.run(main, procs=procs) is None


def test_future_of_a_closed_client_raises_not_hangs(client):
    other = distributed.Client(client.scheduler.address)
    f = other.submit(square, 3, pure=False)
    distributed.wait(f)
    other.close()

    def main():
        # Dask's own error: the future was cancelled, or its client's loop is closed.
        with pytest.raises((distributed.client.FutureCancelledError, RuntimeError)):
            gr.result(f)
        return True

    assert gr.run(main, procs=1)


def test_from_a_plain_thread(client):
    assert gr.result(client.submit(square, 7, pure=False)) == 49


def crawl_in_worker(n, procs):
    """A worker's task that runs goroutines: n tasks feeding a channel."""
    import goroutines as gr

    def producer(ch, i):
        gr.sleep(0.01)  # all n wait at once, on this worker's Ms
        ch.send(i * i)

    def main():
        ch = gr.Chan(n)
        for i in range(n):
            gr.go(producer, ch, i)
        return sum(ch.recv() for _ in range(n)), gr.procs()

    return gr.run(main, procs=procs), os.getpid()


def test_run_inside_a_dask_workers_task(client, procs):
    futures = [client.submit(crawl_in_worker, 1000, procs, pure=False) for _ in range(4)]
    results = client.gather(futures)
    total = sum(i * i for i in range(1000))
    assert [r for r, _ in results] == [(total, procs)] * 4
    assert os.getpid() not in {pid for _, pid in results}


def test_gr_result_inside_a_worker_on_nested_futures(client):
    # A worker's task that fans out from goroutines to the cluster again (worker_client).
    def fan_out(k):
        from distributed import worker_client

        import goroutines as gr

        with worker_client() as wc:
            def main():
                tasks = [gr.go(gr.result, wc.submit(square, i, pure=False)) for i in range(k)]
                return sum(t.join() for t in tasks)

            return gr.run(main, procs=1)

    assert client.submit(fan_out, 50, pure=False).result() == sum(i * i for i in range(50))


def test_ray_object_refs():
    ray = pytest.importorskip("ray", reason="Ray is not installed")
    ray.init(num_cpus=1, include_dashboard=False, configure_logging=False,
             _node_ip_address="127.0.0.1")
    try:
        @ray.remote
        def remote_square(i):  # defined here: Ray sends it by value
            return i * i

        @ray.remote
        def remote_fail():
            raise ValueError("on ray")

        def main():
            refs = [remote_square.remote(i) for i in range(20)]
            tasks = [gr.go(gr.result, r.future()) for r in refs]
            with pytest.raises(ValueError, match="on ray"):  # Ray's error subclasses it
                gr.result(remote_fail.remote().future())
            return [t.join() for t in tasks]

        assert gr.run(main, procs=2) == [i * i for i in range(20)]
    finally:
        ray.shutdown()


# gr.wait and gr.as_completed with Dask futures mixed with tasks (issue 10).

def fail_with_key_error(msg):
    raise KeyError(msg)


def test_wait_and_as_completed_on_dask_futures_and_tasks(client, procs):
    def main():
        slow = client.submit(time.sleep, 5, pure=False)
        quick = client.submit(pow, 2, 10, pure=False)
        failing = client.submit(fail_with_key_error, "dask", pure=False)
        t = gr.go(str, "task")
        done, pending = gr.wait([slow, failing, t], return_when=gr.FIRST_EXCEPTION)
        assert failing in done and t in done
        got = list(gr.as_completed([quick, t], timeout=30))
        assert set(got) == {quick, t} and quick.result() == 1024
        with pytest.raises(KeyError):
            failing.result()
        slow.cancel()
        done, pending = gr.wait([slow], timeout=30)
        return done == {slow} and slow.cancelled()

    assert gr.run(main, procs=procs)
