"""A program that hangs, and how goroutines tells you why (docs/observability.md).

A three-stage pipeline: a producer feeds numbers to squarers, which send their results to
a collector. The bug: the collector stops after the first ten results, so the squarers
block on their sends, the producer blocks on its own, and main waits for the squarers
forever.

    python examples/debug_hang.py            # run() raises Deadlock: who waits on what, where
    python examples/debug_hang.py --alive 2  # a heartbeat keeps the runtime busy, so there
                                             # is no deadlock, only a hang: after 2 s the
                                             # program prints gr.dump() and exits

With ``GOROUTINES_DUMP_SIGNAL=SIGUSR1`` set, ``kill -USR1 <pid>`` prints the same dump from
the hung program at any time.
"""

import argparse
import sys

import goroutines as gr


def producer(numbers):
    for n in range(100):
        numbers.send(n)
    numbers.close()


def squarer(numbers, results, wg):
    try:
        for n in numbers:
            results.send(n * n)  # blocks once the collector stops reading
    finally:
        wg.done()


def collector(results, total):
    s = 0
    for _ in range(10):  # the bug: it should read until results is closed
        s += results.recv()
    total.send(s)


def heartbeat(seconds):
    # Keeps a timer armed, as a server's periodic job would: no deadlock can be declared.
    ticker = gr.Ticker(0.05)
    for _ in range(int(seconds / 0.05)):
        ticker.chan.recv()
    ticker.stop()
    gr.dump(sys.stdout)
    sys.stdout.flush()
    raise SystemExit(3)


def main(alive):
    numbers, results, total = gr.Chan(), gr.Chan(), gr.Chan(1)
    wg = gr.WaitGroup()
    gr.go(producer, numbers, name="producer")
    for _ in range(3):
        wg.add(1)
        gr.go(squarer, numbers, results, wg, name="squarer")
    gr.go(collector, results, total, name="collector")
    if alive:
        gr.go(heartbeat, alive, name="heartbeat")
    wg.wait()  # waits forever: the squarers never finish
    results.close()
    return total.recv()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alive", type=float, default=0,
                    help="keep a heartbeat running; dump the tasks after this many seconds")
    ap.add_argument("--procs", type=int, default=None)
    args = ap.parse_args()
    print(gr.run(main, args.alive, procs=args.procs))
