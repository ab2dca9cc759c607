"""Where the work ran: per-processor counts and GOROUTINES_SCHEDTRACE
(docs/observability.md).

Eight workers hash a buffer (hashlib releases the GIL, so two Ms could run them in
parallel) while a chatty ping-pong runs beside them. At the end it prints, per P, how many
task runs it made, how many tasks it stole and took from the global queue, and its
scheduling latency; GOROUTINES_SCHEDTRACE=100 shows the queues every 100 ms.

    GOROUTINES_SCHEDTRACE=100 python examples/debug_imbalance.py          # all on P0
    GOROUTINES_SCHEDTRACE=100 python examples/debug_imbalance.py --fixed  # hashing offloaded

The hashers start on P0 and a started task stays on its M, so P1 sits idle and the
ping-pong waits behind eight hashers (P0's latency p99). With --fixed the hashing goes to
the offload pool with gr.blocking(): P0 only schedules, and its latency drops.
"""

import argparse
import hashlib

import goroutines as gr


def hasher(data, rounds, fixed):
    for _ in range(rounds):
        if fixed:
            gr.blocking(hashlib.sha256, data)
        else:
            hashlib.sha256(data).digest()
            gr.gosched()


def pingpong(n):
    a, b = gr.Chan(), gr.Chan()

    def peer():
        for v in a:
            b.send(v)

    gr.go(peer, name="pong")
    for i in range(n):
        a.send(i)
        b.recv()
    a.close()


def main(rounds, fixed):
    data = bytes(1 << 20)
    tasks = [gr.go(hasher, data, rounds, fixed, name="hasher") for _ in range(8)]
    gr.go(pingpong, 2000, name="ping").join()
    for t in tasks:
        t.join()
    s = gr.stats()
    for i, p in enumerate(s["procs"]):
        lat = p["latency"]
        print(f"P{i}: runs {p['executed']:6d}  stolen {p['stolen']:3d}  "
              f"from global {p['from_global']:3d}  latency p50 {lat['p50'] * 1e6:.1f} us  "
              f"p99 {lat['p99'] * 1e6:.1f} us")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--fixed", action="store_true", help="offload the hashing")
    args = ap.parse_args()
    gr.run(main, args.rounds, args.fixed, procs=2)
