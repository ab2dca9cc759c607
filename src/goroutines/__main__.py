"""python -m goroutines: a short demo of the runtime on its defaults.

Spawns a million tasks, runs a fan-out/fan-in over a channel, and prints the cost per task
and what each P executed and stole. ``--tasks`` (or GOROUTINES_DEMO_N) changes the task
count, ``--procs`` (or GOROUTINES_PROCS) the number of processors.
"""
import argparse
import os
import sys
import time

import goroutines as gr


def spawn_million(n: int) -> float:
    t0 = time.perf_counter()
    wg = gr.WaitGroup()
    wg.add(n)
    for _ in range(n):
        gr.go(wg.done)
    wg.wait()
    return time.perf_counter() - t0


def fan_out_fan_in(workers: int, items: int) -> int:
    jobs: gr.Chan[int] = gr.Chan(128)
    results: gr.Chan[int] = gr.Chan(128)

    def worker() -> None:
        for x in jobs:
            results.send(x * x)

    def feed() -> None:
        for x in range(items):
            jobs.send(x)
        jobs.close()

    for _ in range(workers):
        gr.go(worker)
    gr.go(feed)
    return sum(results.recv() for _ in range(items))


def main(n: int) -> None:
    print(f"goroutines demo: {gr.procs()} procs, {n:,} tasks")
    dt = spawn_million(n)
    print(f"spawn + finish: {dt:.2f} s, {dt / n * 1e9:.0f} ns per task")
    items = max(n // 10, 1)
    t0 = time.perf_counter()
    total = fan_out_fan_in(8, items)
    dt = time.perf_counter() - t0
    assert total == sum(x * x for x in range(items))
    print(
        f"fan-out/fan-in: 8 workers, {items:,} items over channels, "
        f"{dt / items * 1e9:.0f} ns per item"
    )
    st = gr.stats()
    for i, p in enumerate(st["procs"]):
        print(
            f"  P{i}: executed {p['executed']:>9,}  stolen {p['stolen']:>7,}"
            f"  parks {p['parks']:>7,}"
        )
    print(f"  steals {st['steals']:,}, global run queue {st['global_runq_len']}")


def positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m goroutines",
        description="A demo of the goroutines runtime: a million tasks, then a fan-out/fan-in.",
    )
    parser.add_argument(
        "--tasks", type=positive, default=None, help="tasks to spawn (default 1,000,000)"
    )
    parser.add_argument(
        "--procs", type=positive, default=None, help="processors (default: one per CPU)"
    )
    args = parser.parse_args(argv)
    n = args.tasks
    if n is None:
        try:
            n = positive(os.environ.get("GOROUTINES_DEMO_N", "1000000"))
        except argparse.ArgumentTypeError as e:
            parser.error(f"GOROUTINES_DEMO_N: {e}")
    try:
        gr.run(main, n, procs=args.procs)
    except ValueError as e:  # a bad GOROUTINES_PROCS
        parser.error(str(e))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's final flush of
        # stdout from raising again (the recipe of the signal module's docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
