"""Runners shared by the benchmark files: one coroutine workload, run under asyncio or
under uvloop."""
import asyncio

import pytest


def on_asyncio(make_coro):
    """A workload factory: ``factory(*args)`` returns a callable running
    ``make_coro(*args)`` under ``asyncio.run``."""
    return lambda *args: (lambda: asyncio.run(make_coro(*args)))


def on_uvloop(make_coro):
    """The same under uvloop. uvloop.run (0.18+) builds its loop directly instead of
    installing uvloop's event-loop policy, so the plain-asyncio entries keep theirs."""

    def factory(*args):
        uvloop = pytest.importorskip("uvloop", minversion="0.18")
        return lambda: uvloop.run(make_coro(*args))

    return factory


def on_goroutines(procs, make_main):
    """A workload factory: ``factory(*args)`` returns a callable running the task
    ``make_main(gr, *args)`` returns under ``goroutines.run`` with ``procs``."""

    def factory(*args):
        gr = pytest.importorskip("goroutines")
        main = make_main(gr, *args)
        return lambda: gr.run(main, procs=procs)

    return factory
