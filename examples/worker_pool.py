"""A worker pool: a fixed number of tasks take jobs from one channel and send results on
another, as in Go's "worker pools" example. Closing the jobs channel ends the workers'
loops; a WaitGroup tells when the last one is done, and then the results are closed.

Run it::

    python examples/worker_pool.py
"""

import goroutines as gr

WORKERS = 3
JOBS = 9


def worker(jobs: gr.Chan[int], results: gr.Chan[tuple[int, int]], wg: gr.WaitGroup) -> None:
    try:
        for n in jobs:  # ends when jobs is closed and drained
            gr.sleep(0.001)  # stands in for real work that waits (I/O, a lock, ...)
            results.send((n, n * n))
    finally:
        wg.done()


def main() -> None:
    jobs: gr.Chan[int] = gr.Chan(JOBS)
    results: gr.Chan[tuple[int, int]] = gr.Chan(JOBS)
    wg = gr.WaitGroup()
    for _ in range(WORKERS):
        wg.add()
        gr.go(worker, jobs, results, wg)
    for n in range(1, JOBS + 1):
        jobs.send(n)
    jobs.close()

    def closer() -> None:
        wg.wait()
        results.close()

    gr.go(closer)
    squares = dict(results)  # receives until closed
    for n in sorted(squares):
        print(f"{n} -> {squares[n]}")


if __name__ == "__main__":
    gr.run(main)
