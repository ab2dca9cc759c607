"""A program that stutters, and how goroutines tells you why (docs/observability.md).

A "service" task answers a request every 10 ms and measures how late each answer is. A
"report" task of the same processor calls time.sleep(0.2) now and then: a blocking call
that holds the thread, so every other task of that processor waits meanwhile.

    python examples/debug_stutter.py          # the watchdog points at the time.sleep line
    python examples/debug_stutter.py --fixed  # the same with gr.blocking(time.sleep, ...)

It runs with ``watchdog=0.1``: any task holding its M 100 ms without yielding is reported
by a HogWarning, with the task's name and where it was. At the end it prints the worst
lateness the service saw.
"""

import argparse
import time

import goroutines as gr


def service(requests, lateness):
    worst = 0.0
    for _ in range(requests):
        due = time.monotonic() + 0.01
        gr.sleep(0.01)
        worst = max(worst, time.monotonic() - due)
    lateness.send(worst)


def report(fixed):
    for _ in range(2):
        gr.sleep(0.05)
        if fixed:
            gr.blocking(time.sleep, 0.2)  # parks this task; the M runs the others
        else:
            time.sleep(0.2)  # holds the M: the service stalls


def main(fixed):
    lateness = gr.Chan(1)
    gr.go(service, 50, lateness, name="service")
    gr.go(report, fixed, name="report").join()
    print(f"service: worst lateness {lateness.recv() * 1000:.0f} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixed", action="store_true", help="offload the blocking call")
    args = ap.parse_args()
    gr.run(main, args.fixed, procs=1, watchdog=0.1)
