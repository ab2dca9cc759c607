"""Rate limiting with a Ticker: handle at most one request per tick, as in Go by Example's
"rate limiting", with a bursty variant that lets a few through at once.

Run it::

    python examples/rate_limit.py
"""

import sys
import time

import goroutines as gr

TICK = 0.01


def main() -> None:
    requests = range(1, 6)
    ticker = gr.Ticker(TICK)
    start = time.monotonic()
    for r in requests:
        ticker.chan.recv()  # one request per tick
        print("request", r)
    ticker.stop()
    print(f"5 requests in {time.monotonic() - start:.2f} s", file=sys.stderr)

    # Bursts: a buffered channel of tokens, topped up by a ticker, lets 3 go at once.
    tokens: gr.Chan[float] = gr.Chan(3)
    for _ in range(3):
        tokens.send(0.0)
    refill = gr.Ticker(TICK)

    def top_up() -> None:
        for t in refill.chan:
            tokens.try_send(t)  # full: the burst allowance is already there

    filler = gr.go(top_up)
    for r in range(1, 6):
        tokens.recv()
        print("bursty request", r)
    refill.stop()
    filler.cancel()


if __name__ == "__main__":
    gr.run(main)
