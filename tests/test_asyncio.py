"""asyncio both ways: gr.aio(coro) runs a coroutine on the shared background event loop
while the task parks; ``await gr.to_async(fn, ...)`` runs fn as a goroutines task.

Covers values and exceptions, many coroutines or calls at once, a real asyncio server and
client on loopback, cancellation in both directions (the other side is cancelled, and aio
waits for the coroutine's cleanup), use from plain threads, the two nested, and bad input.
"""

import asyncio
import contextvars
import gc
import importlib.util
import threading
import warnings

import pytest
from test_executor import EndingRun

import goroutines as gr
from goroutines import _interop


@pytest.fixture(autouse=True)
def no_background_left():
    yield
    _interop._background.join()
    assert _interop._background.users == 0


class Boom(Exception):
    pass


async def double(x):
    await asyncio.sleep(0.01)
    return x * 2


async def fail():
    await asyncio.sleep(0)
    raise Boom("from a coroutine")


# --- aio ------------------------------------------------------------------------------------


def test_aio_returns_and_raises(procs):
    def main():
        assert gr.aio(double(21)) == 42
        with pytest.raises(Boom, match="from a coroutine"):
            gr.aio(fail())
        return True

    assert gr.run(main, procs=procs)


def test_aio_many_at_once_park_their_tasks(procs):
    def main():
        tasks = [gr.go(gr.aio, double(i)) for i in range(200)]
        return [t.join() for t in tasks]

    assert gr.run(main, procs=procs) == [2 * i for i in range(200)]


def test_aio_uses_uvloop_when_installed():
    async def loop_type():
        return type(asyncio.get_running_loop()).__module__

    module = gr.aio(loop_type())
    expected = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    assert module.split(".")[0] == expected


def test_aio_with_an_asyncio_server_and_client_on_loopback(procs):
    async def serve():
        async def echo(reader, writer):
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        return await asyncio.start_server(echo, "127.0.0.1", 0)

    async def ask(port, line):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(line)
        answer = await reader.readline()
        writer.close()
        await writer.wait_closed()
        return answer

    async def close(server):
        server.close()
        await server.wait_closed()

    def main():
        server = gr.aio(serve())
        port = server.sockets[0].getsockname()[1]
        try:
            tasks = [gr.go(gr.aio, ask(port, b"hi %d\n" % i)) for i in range(20)]
            return sorted(t.join() for t in tasks)
        finally:
            gr.aio(close(server))

    assert gr.run(main, procs=procs) == sorted(b"HI %d\n" % i for i in range(20))


def test_cancelling_the_task_cancels_the_coroutine_and_waits_for_it(procs):
    log = []

    async def slow():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.02)  # cleanup that takes a while
            log.append("cleaned up")
            raise

    def waiter():
        try:
            gr.aio(slow())
        finally:
            log.append("task saw it")

    def main():
        t = gr.go(waiter)
        gr.sleep(0.05)
        assert "parked on future" in repr(t)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        return log

    assert gr.run(main, procs=procs) == ["cleaned up", "task saw it"]


def test_cancelled_task_does_not_start_the_coroutine():
    started = []

    async def record():
        started.append(1)

    def main():
        gr.current().cancel()
        c = record()
        with pytest.raises(gr.Cancelled):
            gr.aio(c)
        return True

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the coroutine is closed, not left unawaited
        assert gr.run(main, procs=1)
        gc.collect()
    assert started == []


def test_a_deadlock_is_still_reported_after_aio():
    # The shared loop's thread lives on, but it is the runtime's: not a thread outside
    # that could still wake a task, which would put the report off for good.
    assert gr.aio(double(1)) == 2

    def main():
        gr.Chan().recv()

    with pytest.raises(gr.Deadlock):
        gr.run(main, procs=1)


def test_a_task_waiting_on_aio_is_no_deadlock(procs):
    def main():
        return gr.aio(double(5))  # every task parked, the loop's thread will wake this one

    assert gr.run(main, procs=procs) == 10


def test_aio_from_plain_threads():
    out = []

    def thread(i):
        out.append(gr.aio(double(i)))

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(out) == [2 * i for i in range(8)]


def test_aio_bad_input():
    with pytest.raises(TypeError, match=r"call double, aio\(double\(...\)\)"):
        gr.aio(double)
    with pytest.raises(TypeError, match="coroutine object, not int"):
        gr.aio(42)
    fut = asyncio.new_event_loop()
    try:
        with pytest.raises(TypeError, match="not _UnixSelectorEventLoop|coroutine object"):
            gr.aio(fut.create_future())
    finally:
        fut.close()


def test_aio_on_a_thread_running_a_loop_is_an_error():
    async def main():
        c = double(1)
        with pytest.raises(RuntimeError, match="await the coroutine instead"):
            gr.aio(c)
        return True

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert asyncio.run(main())
        gc.collect()


# --- to_async -------------------------------------------------------------------------------


def test_to_async_runs_a_task_and_awaits_it(procs):
    def work(x):
        gr.sleep(0.01)  # parks, as in any task
        return gr.current() is not None, x * 2

    async def main():
        with gr.Executor(procs=procs):  # keeps the background runtime at this procs
            return await gr.to_async(work, 21)

    assert asyncio.run(main()) == (True, 42)


def test_to_async_sees_the_coroutines_context_variables():
    # As asyncio.to_thread: the call runs in a copy of the awaiting coroutine's context.
    var = contextvars.ContextVar("var", default="unset")

    async def main():
        var.set("set by the coroutine")
        return await gr.to_async(var.get)

    assert asyncio.run(main()) == "set by the coroutine"
    assert var.get() == "unset"


def test_to_async_exception():
    def bad():
        raise Boom("from a task")

    async def main():
        with pytest.raises(Boom, match="from a task"):
            await gr.to_async(bad)
        return True

    assert asyncio.run(main())


def test_to_async_many_at_once():
    async def main():
        return await asyncio.gather(*(gr.to_async(lambda i=i: (gr.sleep(0.02), i)[1])
                                      for i in range(300)))

    assert asyncio.run(main()) == list(range(300))


def test_cancelling_the_awaiting_coroutine_cancels_the_task():
    seen = threading.Event()

    def work():
        try:
            gr.sleep(10)
        except gr.Cancelled:
            seen.set()
            raise

    async def main():
        t = asyncio.ensure_future(gr.to_async(work))
        await asyncio.sleep(0.05)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        return True

    assert asyncio.run(main())
    assert seen.wait(5)


def test_to_async_inside_a_run_goes_to_that_run(procs):
    async def coro():
        return await gr.to_async(gr.procs)

    def main():
        return gr.aio(coro())

    assert gr.run(main, procs=procs) == procs


def test_a_run_can_start_right_after_to_async():
    async def main():
        return await gr.to_async(pow, 2, 5)

    for _ in range(3):
        assert asyncio.run(main()) == 32
        assert gr.run(lambda: "runs", procs=1) == "runs"


def test_to_async_bad_input():
    async def coro():
        return 1

    async def main():
        with pytest.raises(TypeError, match="async function"):
            await gr.to_async(coro)
        with pytest.raises(TypeError, match="callable"):
            await gr.to_async(None)
        return True

    assert asyncio.run(main())


def test_to_async_gives_up_on_a_run_that_does_not_end(procs, monkeypatch):
    # A run of the user's held ending (main returned; its offloaded call waits): to_async
    # waits for it a while, then says why the call did not run.
    monkeypatch.setattr(_interop, "_OTHER_RUN_WAIT", 0.2)
    run = EndingRun(procs)
    try:
        with pytest.raises(RuntimeError, match=r"to_async: the running goroutines.run\(\) "
                                               r"did not end within 0.2 s"):
            asyncio.run(gr.to_async(pow, 2, 3))
    finally:
        run.release()
    assert asyncio.run(gr.to_async(pow, 2, 3)) == 8
