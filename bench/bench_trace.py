"""What the execution tracer costs on ping-pong (bench_chan.py's workload).

Run::

    pytest bench/bench_trace.py --benchmark-only     # beside each other, pytest-benchmark
    python bench/bench_trace.py --rounds 15          # interleaved, the figures in the docs

Group ``trace-pingpong`` (N unbuffered round trips between two tasks, N=20_000, at procs=1
and procs=2), each entry's ``per_op_us`` the mean time per round trip of the loop alone:

* ``off``: no trace recording (the hooks cost one predicted branch each).
* ``on``: the loop inside ``gr.trace()`` with the default ring (65,536 events per thread);
  the round's time includes writing the JSON file at the end, ``per_op_us`` does not.

The script form alternates off and on round by round (as paired.py does: drift on a
shared machine cancels) and prints the medians of the loop time and their ratio. Run it
under a build without the tracer's hooks to measure what ``off`` costs against none.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import pytest

try:  # bench/conftest.py is importable as "conftest" when bench/ is the rootdir's child
    from conftest import ROUNDS
except ImportError:  # pragma: no cover
    ROUNDS = 5


def pingpong_main(gr, n, trace_path=None):
    """main: n round trips to an echo task; returns the loop's (wall, CPU) seconds, the CPU
    time of the calling thread: at procs=1 both tasks run there, and CPU time does not
    count the time the OS gives to a neighbour on a shared machine."""

    def main():
        ping, pong = gr.Chan(), gr.Chan()

        def echo():
            for v in ping:
                pong.send(v)

        gr.go(echo)

        def loop():
            t0, c0 = time.perf_counter(), time.thread_time()
            for i in range(n):
                ping.send(i)
                pong.recv()
            return time.perf_counter() - t0, time.thread_time() - c0

        if trace_path is None:
            elapsed = loop()
        else:
            with gr.trace(trace_path):
                elapsed = loop()
        ping.close()
        return elapsed

    return main


@pytest.fixture
def trace_file():
    fd, path = tempfile.mkstemp(suffix=".json", prefix="bench_trace_")
    os.close(fd)
    yield path
    os.unlink(path)


@pytest.mark.benchmark(group="trace-pingpong")
@pytest.mark.parametrize("procs", [1, 2], ids=lambda p: f"procs{p}")
@pytest.mark.parametrize("mode", ["off", "on"])
def test_trace_pingpong(benchmark, smoke, trace_file, mode, procs):
    gr = pytest.importorskip("goroutines")
    n = 500 if smoke else 20_000
    main = pingpong_main(gr, n, trace_file if mode == "on" else None)
    loops = []
    benchmark.pedantic(lambda: loops.append(gr.run(main, procs=procs)), rounds=ROUNDS,
                       iterations=1, warmup_rounds=1)
    benchmark.extra_info["per_op_us"] = statistics.mean(w for w, _ in loops) / n * 1e6
    if mode == "on":
        assert os.path.getsize(trace_file) > 0


def run_paired(n, rounds, procs):
    import goroutines as gr

    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    times = {"off": [], "on": []}
    try:
        for r in range(rounds):
            for mode in (("off", "on") if r % 2 else ("on", "off")):
                main = pingpong_main(gr, n, path if mode == "on" else None)
                times[mode].append(gr.run(main, procs=procs))
    finally:
        os.unlink(path)
    return {(mode, clock): statistics.median(t[i] for t in v) / n * 1e6
            for mode, v in times.items() for i, clock in enumerate(("wall", "cpu"))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("-n", type=int, default=20_000, help="round trips per round")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    print(f"ping-pong, {args.n} round trips, median of {args.rounds} interleaved rounds")
    print(f"{'procs':>5s} {'clock':>5s} {'off µs/rt':>10s} {'on µs/rt':>10s} {'on/off':>7s}")
    for procs in args.procs:
        med = run_paired(args.n, args.rounds, procs)
        for clock in ("wall", "cpu"):
            off, on = med["off", clock], med["on", clock]
            print(f"{procs:5d} {clock:>5s} {off:10.3f} {on:10.3f} {on / off:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
