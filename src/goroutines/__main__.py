"""python -m goroutines: a short demo of the runtime on its defaults.

Spawns a million tasks, runs a fan-out/fan-in over a channel, and prints the cost per task
and what each P executed and stole. GOROUTINES_DEMO_N changes the task count.
"""
import os
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


def main() -> None:
    n = int(os.environ.get("GOROUTINES_DEMO_N", "1000000"))
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


if __name__ == "__main__":
    gr.run(main)
