"""Interleaved timing of bench_procs.py's workloads at the default procs, procs=1 and
procs=2: `python bench/paired.py [--busy-neighbours] [--rounds N] [workload ...]`.

pytest-benchmark runs all rounds of one entry before the next, so on a shared VM, and
above all beside CPU-bound neighbours, drift between the blocks can exceed the effect being
measured (seen here: the default and procs=2, the same setting on two CPUs, 1.9x apart).
Alternating the settings round by round and comparing medians cancels that drift.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import bench_procs

import goroutines as gr

SETTINGS = {"default": None, "procs1": 1, "procs2": 2}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", help=", ".join(bench_procs.WORKLOADS))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--busy-neighbours", action="store_true")
    args = parser.parse_args()
    unknown = set(args.workloads) - set(bench_procs.WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    busy = []
    if args.busy_neighbours:
        loop = [sys.executable, "-c", "while True: pass"]
        busy = [subprocess.Popen(loop) for _ in range(os.cpu_count() or 1)]
    try:
        header = " ".join(f"{s:>8s}" for s in SETTINGS)
        print(f"{'workload':12s} {header}   (x the best median)")
        for name in args.workloads or bench_procs.WORKLOADS:
            make_main, size, _ = bench_procs.WORKLOADS[name]
            times = {s: [] for s in SETTINGS}
            for r in range(args.rounds):
                order = list(SETTINGS) if r % 2 else list(reversed(SETTINGS))
                for s in order:
                    t0 = time.perf_counter()
                    gr.run(make_main(gr, size), procs=SETTINGS[s])
                    times[s].append(time.perf_counter() - t0)
            med = {s: statistics.median(v) for s, v in times.items()}
            best = min(med.values())
            cells = " ".join(f"{med[s] / best:7.2f}x" for s in SETTINGS)
            print(f"{name:12s} {cells}   best {best * 1e3:.1f} ms")
    finally:
        for p in busy:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
