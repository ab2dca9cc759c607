"""Defaults never collapse: every workload at the default procs, at procs=1 and at procs=2.

Run::

    pytest bench/bench_procs.py --benchmark-only
    pytest bench/bench_procs.py --benchmark-only --busy-neighbours   # one busy loop per CPU

Each group is one workload; its "vs fastest" column is how much slower each setting is
than the best one. The goal (docs/design.md, "Choosing the default procs"): the default
entry within 1.25x of the fastest, on a quiet machine and beside CPU-bound neighbours, and
GIL-releasing work still about 2x faster at procs=2 than at procs=1.

Groups:

``procs-split-pair``
    main starts a sender, then runs 20 ms of Python before it receives the sender's
    messages on an unbuffered channel. Without GIL-aware stealing the other M started the
    sender meanwhile, and every message then crossed Ms (a GIL hand-off each).
``procs-pingpong``, ``procs-ring``, ``procs-spawn``
    the chatty workloads of bench_chan.py and bench_spawn.py.
``procs-sha256``, ``procs-pure-python``
    fan-outs of GIL-releasing work (hashlib over 1 MiB) and of pure-Python work.
"""
import hashlib
import time

import pytest
from _peers import on_goroutines
from bench_chan import gr_pingpong_main, gr_ring_main

SETTINGS = {"goroutines-default": None, "goroutines-procs1": 1, "goroutines-procs2": 2}
MIB = 1 << 20


def _split_pair(gr, n):
    def main():
        ch = gr.Chan()

        def sender():
            for i in range(n):
                ch.send(i)

        gr.go(sender)
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            pass
        return sum(ch.recv() for _ in range(n))

    return main


def _spawn(gr, n):
    def main():
        for _ in range(n // 100):
            for t in [gr.go(abs, -1) for _ in range(100)]:
                t.join()

    return main


_BLOB = bytes(range(256)) * (MIB // 256)


def _sha256(gr, n):
    def main():
        return [t.join() for t in [gr.go(lambda: hashlib.sha256(_BLOB).digest()) for _ in range(n)]]

    return main


def _pure_python(gr, n):
    def main():
        tasks = [gr.go(lambda: sum(i * i for i in range(20000))) for _ in range(n)]
        return [t.join() for t in tasks]

    return main


# workload: (make_main, size, smoke size)
WORKLOADS = {
    "split-pair": (_split_pair, 20000, 200),
    "pingpong": (gr_pingpong_main, 20000, 200),
    "ring": (gr_ring_main, 20000, 200),
    "spawn": (_spawn, 100000, 1000),
    "sha256": (_sha256, 200, 4),
    "pure-python": (_pure_python, 200, 4),
}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("workload", WORKLOADS)
def test_procs(workload, setting, smoke, measure, benchmark):
    benchmark.group = f"procs-{workload}"
    make_main, size, smoke_size = WORKLOADS[workload]
    n = smoke_size if smoke else size
    measure(on_goroutines(SETTINGS[setting], make_main)(n), tasks=n)
