"""gr.wait and gr.as_completed with Dask futures mixed with tasks, on a real (in-process)
distributed.LocalCluster."""

import time

import pytest

import goroutines as gr

distributed = pytest.importorskip("distributed", reason="Dask's distributed is not installed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def fail(msg):
    raise KeyError(msg)


def test_wait_and_as_completed_on_dask_futures_and_tasks(client, procs):
    def main():
        slow = client.submit(time.sleep, 5, pure=False)
        quick = client.submit(pow, 2, 10, pure=False)
        failing = client.submit(fail, "dask", pure=False)
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
