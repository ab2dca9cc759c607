"""Chan and Task are generic at run time as in the stubs, so that annotations such as
``Chan[int]`` evaluate (on 3.10 no annotation is lazy without a __future__ import)."""

import types

import pytest

import goroutines as gr


@pytest.mark.parametrize("cls", [gr.Chan, gr.Task])
def test_subscript_gives_a_generic_alias(cls):
    alias = cls[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is cls
    assert alias.__args__ == (int,)


def test_annotation_with_chan_and_task_evaluates():
    def worker(jobs: gr.Chan[int], done: gr.Task[None]) -> gr.Chan[str]: ...

    assert worker.__annotations__ == {
        "jobs": gr.Chan[int],
        "done": gr.Task[None],
        "return": gr.Chan[str],
    }


def test_subscripted_chan_constructs_a_chan(grun):
    def main():
        ch = gr.Chan[int](1)
        ch.send(7)
        return type(ch), ch.capacity, ch.recv()

    assert grun(main) == (gr.Chan, 1, 7)
