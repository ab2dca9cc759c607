"""Graceful shutdown on SIGTERM: workers run until the process is told to stop, then
finish the job in hand and exit cleanly, as a Go service does with signal.Notify and a
context.

Run it and stop it::

    python examples/graceful_shutdown.py &
    kill -TERM %1

It prints "ready" once it is serving, and "stopped cleanly" on the way out.
"""

import signal

import goroutines as gr


def worker(n: int, stop: gr.Event, jobs: gr.Chan[int]) -> int:
    handled = 0
    while True:
        i, job, ok = gr.select(gr.Recv(stop.chan), gr.Recv(jobs))
        if i == 0 or not ok:
            return handled  # asked to stop: nothing is left half done
        gr.sleep(0.001)  # the job
        handled += 1


def main() -> None:
    sigs = gr.notify(signal.SIGTERM, signal.SIGINT)
    stop = gr.Event()
    jobs: gr.Chan[int] = gr.Chan(10)

    def feed() -> None:
        n = 0
        while not stop.is_set():
            jobs.send(n)
            n += 1

    feeder = gr.go(feed)
    with gr.TaskGroup() as tg:
        workers = [tg.go(worker, n, stop, jobs) for n in range(3)]
        print("ready", flush=True)
        sig = sigs.recv()
        print("got", sig.name, flush=True)
        stop.set()
        feeder.cancel()
    print("workers finished:", all(w.done() for w in workers))
    print("stopped cleanly")


if __name__ == "__main__":
    gr.run(main)
