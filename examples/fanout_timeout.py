"""Fan-out with a timeout: ask several replicas at once and take the first answer, or give
up after a deadline ("Go concurrency patterns: timing out, moving on"). The replicas that
lose are cancelled.

Run it::

    python examples/fanout_timeout.py
"""

import goroutines as gr

# How long each replica takes to answer; the slowest would blow the deadline.
REPLICAS = {"replica-a": 0.05, "replica-b": 0.01, "replica-c": 0.5}


def query(name: str, delay: float) -> str:
    gr.sleep(delay)  # stands in for a network round trip
    return f"answer from {name}"


def first_answer(timeout: float) -> str | None:
    tasks = [gr.go(query, name, delay) for name, delay in REPLICAS.items()]
    try:
        done, _ = gr.wait(tasks, timeout=timeout, return_when=gr.FIRST_COMPLETED)
        return done.pop().result() if done else None
    finally:
        for t in tasks:
            t.cancel()  # the losers stop at their next park point


def main() -> None:
    print(first_answer(timeout=0.2))
    # Too short for anyone: select on the slowest replica's done_chan against a timer.
    slow = gr.go(query, "replica-c", REPLICAS["replica-c"])
    i, _, _ = gr.select(gr.Recv(slow.done_chan), gr.Recv(gr.after(0.005)))
    print("timed out" if i == 1 else slow.result())
    slow.cancel()


if __name__ == "__main__":
    gr.run(main)
