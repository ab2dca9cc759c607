"""Paired procs=1 / procs=2 timing of the pure-Python fan-out (issue 4's "no more than 10%
slower" check): `python bench/paired.py [rounds]`.

pytest-benchmark runs all rounds of one entry before the next, so on a shared VM drift
between the two blocks can exceed the effect being measured (seen here: 0.97x to 1.22x
for the same code). Alternating the two settings round by round and comparing medians
cancels that drift.
"""
import statistics
import sys
import time

import goroutines as gr

TASKS = 200
WORK = 20000


def work():
    return sum(i * i for i in range(WORK))


def fan_out():
    for t in [gr.go(work) for _ in range(TASKS)]:
        t.join()


def main(rounds):
    times = {1: [], 2: []}
    for r in range(rounds):
        for procs in (1, 2) if r % 2 else (2, 1):
            t0 = time.perf_counter()
            gr.run(fan_out, procs=procs)
            times[procs].append(time.perf_counter() - t0)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"pure-Python fan-out, {TASKS} tasks, {rounds} alternating rounds")
    print(f"median procs=1 {one * 1e3:.1f} ms, procs=2 {two * 1e3:.1f} ms: ratio {two / one:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
