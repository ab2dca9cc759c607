"""What a free-threaded CPython buys: pure-Python work fanned out over two Ms.

Run it with the interpreter to measure (the free-threaded one .ci/freethreaded builds is
in build/ft-venv):

    build/ft-venv/bin/python bench/freethreaded.py [--repeat 5]

The fan-out is bench_procs.py's pure-python workload: 200 tasks of sum(i * i for i in
range(20000)), at procs=1, at procs=2, and as 200 calls on ThreadPoolExecutor(2). The chatty
workloads of bench_procs.py (ping-pong, spawn, the split pair) follow at procs=1 and 2. Each
line is the best of --repeat runs.
"""
import argparse
import sys
import sysconfig
import time
from concurrent.futures import ThreadPoolExecutor

from bench_chan import gr_pingpong_main
from bench_procs import _pure_python, _spawn, _split_pair

import goroutines as gr

FANOUT = 200


def _work():
    return sum(i * i for i in range(20000))


def _threads():
    with ThreadPoolExecutor(2) as pool:
        return [f.result() for f in [pool.submit(_work) for _ in range(FANOUT)]]


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"{sys.executable}: Python {sys.version.split()[0]}, "
          f"{'free-threaded' if sysconfig.get_config_var('Py_GIL_DISABLED') else 'GIL'} build, "
          f"GIL {'enabled' if gil else 'disabled'}; best of {args.repeat}")

    fan1 = best(lambda: gr.run(_pure_python(gr, FANOUT), procs=1), args.repeat)
    fan2 = best(lambda: gr.run(_pure_python(gr, FANOUT), procs=2), args.repeat)
    pool = best(_threads, args.repeat)
    print(f"fan-out of {FANOUT} pure-Python tasks:")
    print(f"  procs=1                {fan1 * 1e3:8.1f} ms")
    print(f"  procs=2                {fan2 * 1e3:8.1f} ms   {fan1 / fan2:.2f}x procs=1")
    print(f"  ThreadPoolExecutor(2)  {pool * 1e3:8.1f} ms   procs=2 is {pool / fan2:.2f}x as fast")

    for name, make, n in [("ping-pong", gr_pingpong_main, 20000),
                          ("spawn", _spawn, 100000),
                          ("split pair", _split_pair, 20000)]:
        t1 = best(lambda make=make, n=n: gr.run(make(gr, n), procs=1), args.repeat)
        t2 = best(lambda make=make, n=n: gr.run(make(gr, n), procs=2), args.repeat)
        print(f"{name} (n={n}): procs=1 {t1 * 1e3:.1f} ms ({t1 / n * 1e6:.2f} us/op), "
              f"procs=2 {t2 * 1e3:.1f} ms ({t2 / n * 1e6:.2f} us/op), {t1 / t2:.2f}x")


if __name__ == "__main__":
    main()
