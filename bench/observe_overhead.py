"""Overhead of the observability hooks (docs/performance.md, "Observability").

Spawn + join of trivial tasks and unbuffered ping-pong at procs=1, timed in the CPU time of
the thread running them (steadier than wall time on a shared machine), best of 5 runs.
Run it in two environments, one built from main and one from the branch, alternately, and
compare; ``GOROUTINES_WATCHDOG=0.1`` measures with the watchdog on.

    python bench/observe_overhead.py
"""

import time

import goroutines as gr

SPAWN_N = 50_000
PINGPONG_N = 50_000
ROUNDS = 5


def f():
    return None


def spawn():
    ts = [gr.go(f) for _ in range(SPAWN_N)]
    for t in ts:
        t.join()


def pingpong():
    a, b = gr.Chan(), gr.Chan()

    def peer():
        for _ in range(PINGPONG_N):
            b.send(a.recv())

    gr.go(peer)
    for i in range(PINGPONG_N):
        a.send(i)
        b.recv()


def best_ns(main, n):
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.thread_time()
        gr.run(main, procs=1)
        best = min(best, time.thread_time() - t0)
    return best / n * 1e9


if __name__ == "__main__":
    print(f"spawn {best_ns(spawn, SPAWN_N):.0f} ns/task  "
          f"pingpong {best_ns(pingpong, PINGPONG_N):.0f} ns/round trip")
