"""A pipeline of stages joined by channels. Each stage ranges over its input and closes
its output when the input is closed and drained, so closing the first channel shuts the
whole pipeline down in order, as in Go's pipelines ("generator, square, print").

Run it::

    python examples/pipeline.py
"""

from collections.abc import Iterable

import goroutines as gr


def generate(numbers: Iterable[int]) -> gr.Chan[int]:
    out: gr.Chan[int] = gr.Chan()

    def produce() -> None:
        try:
            for n in numbers:
                out.send(n)
        finally:
            out.close()  # however it ends, the next stage sees the end

    gr.go(produce)
    return out


def square(inp: gr.Chan[int]) -> gr.Chan[int]:
    out: gr.Chan[int] = gr.Chan()

    def stage() -> None:
        try:
            for n in inp:
                out.send(n * n)
        finally:
            out.close()

    gr.go(stage)
    return out


def main() -> None:
    total = 0
    for n in square(square(generate(range(1, 6)))):
        print(n)
        total += n
    print("total", total)


if __name__ == "__main__":
    gr.run(main)
