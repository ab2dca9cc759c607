"""Cancel scopes, timeout() and move_on_after() (issue 9): trio's rules on goroutines' one
park protocol. Every kind of wait is interrupted; scopes nest; a race between a
cancellation and an operation completing delivers exactly one of them."""

import asyncio
import concurrent.futures
import random
import socket
import threading
import time

import pytest

import goroutines as gr

PROCS = [1, 2]
SHORT = 0.02


def _waits():
    """One blocking call of each kind, each of which would wait for ever."""

    def chan_recv():
        gr.Chan().recv()

    def chan_send():
        gr.Chan().send(1)

    def select():
        gr.select(gr.Recv(gr.Chan()), gr.Send(gr.Chan(), 1))

    def sleep():
        gr.sleep(3600)

    def join():
        gr.go(gr.Chan().recv).join()

    def mutex():
        mu = gr.Mutex()
        mu.lock()
        mu.lock()

    def rwmutex():
        rw = gr.RWMutex()
        rw.lock()
        rw.rlock()

    def semaphore():
        gr.Semaphore(0).acquire()

    def event():
        gr.Event().wait()

    def waitgroup():
        wg = gr.WaitGroup()
        wg.add(1)
        wg.wait()

    def fd_read():
        a, b = socket.socketpair()
        with a, b:
            gr.wait_readable(a)

    def blocking():
        gr.blocking(time.sleep, 0.3)

    def future():
        gr.result(concurrent.futures.Future())

    def coroutine():
        gr.aio(asyncio.sleep(3600))

    return [chan_recv, chan_send, select, sleep, join, mutex, rwmutex, semaphore, event,
            waitgroup, fd_read, blocking, future, coroutine]


WAITS = _waits()


@pytest.mark.parametrize("procs", PROCS)
@pytest.mark.parametrize("wait", WAITS, ids=[w.__name__ for w in WAITS])
def test_move_on_after_interrupts_every_kind_of_wait(wait, procs):
    def main():
        with gr.move_on_after(SHORT) as scope:
            wait()
            return "not interrupted"
        return scope.cancelled_caught

    assert gr.run(main, procs=procs) is True


@pytest.mark.parametrize("procs", PROCS)
@pytest.mark.parametrize("wait", WAITS, ids=[w.__name__ for w in WAITS])
def test_cancel_from_another_task_interrupts_every_kind_of_wait(wait, procs):
    def main():
        scope = gr.CancelScope()

        def waiter():
            with scope:
                wait()
            return scope.cancelled_caught

        t = gr.go(waiter)
        gr.sleep(SHORT)
        scope.cancel()
        return t.join()

    assert gr.run(main, procs=procs) is True


def test_timeout_raises_timeout_error_from_the_cancellation():
    def main():
        with pytest.raises(TimeoutError) as info:
            with gr.timeout(SHORT):
                gr.Chan().recv()
        return info.value.__cause__

    assert isinstance(gr.run(main), gr.Cancelled)


def test_timeout_that_does_not_expire_changes_nothing():
    def main():
        ch = gr.Chan(1)
        ch.send("v")
        with gr.timeout(60) as scope:
            v = ch.recv()
        return v, scope.cancelled_caught, scope.cancel_called

    assert gr.run(main) == ("v", False, False)


def test_timeout_cancelled_by_hand_is_caught_without_timeout_error():
    def main():
        with gr.timeout(60) as scope:
            gr.after_func(SHORT, scope.cancel)
            gr.sleep(60)
        return scope.cancelled_caught

    assert gr.run(main) is True


def test_timeout_at_and_move_on_at_take_monotonic_deadlines():
    def main():
        with gr.move_on_at(time.monotonic() + SHORT) as a:
            gr.sleep(60)
        with pytest.raises(TimeoutError):
            with gr.timeout_at(time.monotonic() - 1):
                gr.sleep(60)
        return a.cancelled_caught

    assert gr.run(main) is True


def test_a_waits_own_shorter_timeout_still_raises_its_timeout_error():
    def main():
        with gr.move_on_after(60) as scope:
            with pytest.raises(TimeoutError):
                gr.Chan().recv(timeout=SHORT)
        return scope.cancel_called

    assert gr.run(main) is False


def test_sleep_shorter_than_the_scope_just_sleeps():
    def main():
        with gr.move_on_after(60) as scope:
            gr.sleep(SHORT)
        return scope.cancelled_caught

    assert gr.run(main) is False


def test_a_cancelled_scope_raises_at_a_park_point_even_when_the_operation_is_ready():
    def main():
        ch = gr.Chan(1)
        ch.send(1)
        with gr.CancelScope() as scope:
            scope.cancel()
            ch.recv()
        return scope.cancelled_caught, len(ch)

    assert gr.run(main) == (True, 1)  # the value stays in the channel


def test_a_scope_cancelled_before_it_is_entered_cancels_its_first_wait():
    def main():
        scope = gr.CancelScope()
        scope.cancel()
        with scope:
            gr.sleep(60)
        return scope.cancelled_caught

    assert gr.run(main) is True


def test_code_without_a_park_point_runs_to_the_end_of_the_block():
    def main():
        done = []
        with gr.CancelScope() as scope:
            scope.cancel()
            done.append(sum(range(100)))
        return done, scope.cancelled_caught

    assert gr.run(main) == ([4950], False)


@pytest.mark.parametrize("procs", PROCS)
def test_cancel_from_a_plain_thread(procs):
    def main():
        with gr.CancelScope() as scope:
            threading.Timer(SHORT, scope.cancel).start()
            gr.Event().wait()
        return scope.cancelled_caught

    assert gr.run(main, procs=procs) is True


@pytest.mark.parametrize("procs", PROCS)
def test_nested_the_nearest_expired_scope_catches(procs):
    def main():
        with gr.move_on_after(60) as outer:
            with gr.move_on_after(SHORT) as inner:
                gr.sleep(60)
            after_inner = True
        return inner.cancelled_caught, after_inner, outer.cancelled_caught

    assert gr.run(main, procs=procs) == (True, True, False)


@pytest.mark.parametrize("procs", PROCS)
def test_nested_an_outer_deadline_always_applies(procs):
    def main():
        reached = []
        with gr.move_on_after(SHORT) as outer:
            with gr.move_on_after(60) as inner:
                gr.sleep(60)
            reached.append("after inner")
        return inner.cancelled_caught, outer.cancelled_caught, reached

    assert gr.run(main, procs=procs) == (False, True, [])


def test_both_expired_inner_catches_then_outer_raises_at_the_next_park_point():
    def main():
        steps = []
        with gr.move_on_after(SHORT) as outer:
            with gr.move_on_after(SHORT / 2) as inner:
                gr.sleep(60)
            steps.append("between")
            gr.sleep(60)
            steps.append("never")
        return inner.cancelled_caught, outer.cancelled_caught, steps

    assert gr.run(main) == (True, True, ["between"])


def test_shield_keeps_an_outer_cancellation_out_until_it_ends():
    def main():
        steps = []
        with gr.move_on_after(SHORT) as outer:
            with gr.CancelScope(shield=True) as shielded:
                gr.sleep(SHORT * 3)
                steps.append("shielded sleep finished")
            gr.sleep(60)
        return steps, shielded.cancelled_caught, outer.cancelled_caught

    assert gr.run(main) == (["shielded sleep finished"], False, True)


def test_a_shielded_scopes_own_cancellation_still_applies():
    def main():
        with gr.CancelScope(shield=True) as scope:
            gr.after_func(SHORT, scope.cancel)
            gr.sleep(60)
        return scope.cancelled_caught

    assert gr.run(main) is True


def test_dropping_the_shield_lets_the_outer_cancellation_in_at_once():
    def main():
        with gr.CancelScope() as outer:
            with gr.CancelScope(shield=True) as inner:
                outer.cancel()
                gr.after_func(SHORT, setattr, inner, "shield", False)
                gr.sleep(60)
        return outer.cancelled_caught, inner.cancelled_caught

    assert gr.run(main) == (True, False)


@pytest.mark.parametrize("procs", PROCS)
def test_moving_the_deadline_earlier_wakes_the_waiter(procs):
    def main():
        scope = gr.CancelScope(deadline=time.monotonic() + 3600)

        def waiter():
            with scope:
                gr.Chan().recv()
            return scope.cancelled_caught

        t = gr.go(waiter)
        gr.sleep(SHORT)
        scope.deadline = time.monotonic()
        return t.join(timeout=30)

    assert gr.run(main, procs=procs) is True


def test_moving_the_deadline_later_keeps_the_wait_going():
    def main():
        ch = gr.Chan()
        with gr.move_on_after(SHORT) as scope:
            scope.deadline = time.monotonic() + 60
            gr.after_func(SHORT * 3, ch.send, "late")
            v = ch.recv()
        return v, scope.cancelled_caught, scope.deadline is not None

    assert gr.run(main) == ("late", False, True)


def test_timeout_none_sets_no_deadline_as_asyncio_timeout_does():
    def main():
        with gr.timeout(None) as scope:
            gr.sleep(SHORT)  # no deadline: a plain sleep
            scope.deadline = time.monotonic() + SHORT
            gr.sleep(60)

    with pytest.raises(TimeoutError):
        gr.run(main)
    assert gr.move_on_after(None).deadline is None


def test_removing_the_deadline():
    def main():
        with gr.move_on_after(SHORT) as scope:
            scope.deadline = None
            gr.sleep(SHORT * 3)
        return scope.cancelled_caught, scope.deadline

    assert gr.run(main) == (False, None)


def test_task_cancel_is_never_caught_by_a_scope():
    def victim(scope, started):
        with scope:
            started.set()
            gr.sleep(60)
        return "scope swallowed the task's cancel"

    def main():
        scope, started = gr.CancelScope(), gr.Event()
        t = gr.go(victim, scope, started)
        started.wait()
        scope.cancel()  # both, before the victim runs again
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        return t.cancelled()

    assert gr.run(main) is True


@pytest.mark.parametrize("procs", PROCS)
def test_a_task_group_in_a_scope_is_cancelled_with_it(procs):
    def main():
        with gr.move_on_after(SHORT) as scope:
            with gr.TaskGroup() as tg:
                tasks = [tg.go(gr.sleep, 3600) for _ in range(10)]
        return scope.cancelled_caught, [t.cancelled() for t in tasks]

    assert gr.run(main, procs=procs) == (True, [True] * 10)


@pytest.mark.parametrize("procs", PROCS)
def test_a_task_group_body_interrupted_by_its_scope_cancels_the_children(procs):
    def main():
        with gr.CancelScope() as scope:
            with gr.TaskGroup() as tg:
                tasks = [tg.go(gr.Chan().recv) for _ in range(5)]
                gr.after_func(SHORT, scope.cancel)
                gr.Chan().recv()  # the body itself waits
        return scope.cancelled_caught, [t.cancelled() for t in tasks]

    assert gr.run(main, procs=procs) == (True, [True] * 5)


@pytest.mark.parametrize("procs", PROCS)
def test_done_closes_on_cancel_and_can_be_selected(procs):
    def watcher(done, out):
        i, _, ok = gr.select(gr.Recv(done), gr.Recv(gr.Chan()))
        out.send((i, ok))

    def main():
        out = gr.Chan(1)
        with gr.CancelScope() as scope:
            gr.go(watcher, scope.done, out)
            gr.sleep(SHORT)
            scope.cancel()
            gr.sleep(60)
        return out.recv(), scope.cancelled_caught

    assert gr.run(main, procs=procs) == ((0, False), True)


def test_done_closes_at_the_deadline_without_the_owner_waiting():
    def main():
        with gr.move_on_after(SHORT) as scope:
            done = scope.done
            t = gr.go(lambda: list(done))
            while not t.done():  # busy: the owner never parks before the deadline
                gr.gosched()
        return done.closed

    assert gr.run(main) is True


def test_done_closes_when_the_block_ends():
    def main():
        with gr.CancelScope() as scope:
            done = scope.done
        return done.closed, scope.cancel_called

    assert gr.run(main) == (True, False)


def test_done_of_a_cancelled_scope_is_closed_at_once():
    def main():
        scope = gr.CancelScope()
        scope.cancel()
        return scope.done.closed

    assert gr.run(main) is True


@pytest.mark.parametrize("procs", PROCS)
def test_blocking_interrupted_by_a_scope_drops_the_result(procs):
    def call(finished):
        time.sleep(SHORT * 5)
        finished.set()
        return "dropped"

    def main():
        finished = threading.Event()
        with gr.move_on_after(SHORT) as scope:
            gr.blocking(call, finished)
        early = finished.is_set()
        gr.blocking(finished.wait, 10)
        return scope.cancelled_caught, early

    assert gr.run(main, procs=procs) == (True, False)


@pytest.mark.parametrize("procs", PROCS)
def test_aio_interrupted_by_a_scope_cancels_the_coroutine_and_waits_for_it(procs):
    # Unlike a blocking() call, a coroutine can be cancelled: the scope's cancellation
    # reaches it, and the task waits for its cleanup, as with a task's cancel().
    log = []

    async def slow():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(SHORT * 2)  # cleanup that takes a while
            log.append("cleaned up")
            raise

    def main():
        with gr.move_on_after(SHORT) as scope:
            gr.aio(slow())
        log.append("block ended")
        return scope.cancelled_caught

    assert gr.run(main, procs=procs) is True
    assert log == ["cleaned up", "block ended"]


@pytest.mark.parametrize("procs", [2])
def test_exactly_once_value_or_cancellation_under_races(procs):
    """Senders and receivers on unbuffered channels, each operation in a scope with a
    random short deadline, and cancellers cancelling scopes at random: every value a send
    completed is received exactly once, and no value whose send was cancelled is."""
    rounds = 300
    rng = random.Random(1234)
    delays = [rng.uniform(0, 0.002) for _ in range(rounds * 4)]

    def sender(ch, sent, base):
        for i in range(rounds):
            v = base + i
            with gr.move_on_after(delays[i]) as scope:
                if i % 3 == 0:
                    gr.after_func(delays[-i], scope.cancel)
                elif i % 10 == 1:
                    scope.cancel()  # certain: some sends never happen
                ch.send(v)
                sent.append(v)
            if i % 7 == 0:
                gr.gosched()

    def receiver(ch, got, stop):
        while True:
            with gr.move_on_after(delays[len(got) % len(delays)]):
                i, v, ok = gr.select(gr.Recv(ch), gr.Recv(stop))
                if i == 1:
                    return
                got.append(v)
            gr.sleep(delays[-len(got)] / 4)  # slower than the senders: their deadlines pass

    def main():
        ch, stop = gr.Chan(), gr.Chan()
        sent, got = [], []
        senders = [gr.go(sender, ch, sent, k * 1_000_000) for k in range(4)]
        receivers = [gr.go(receiver, ch, got, stop) for _ in range(2)]
        for t in senders:
            t.join()
        stop.close()
        for t in receivers:
            t.join()
        return sent, got

    sent, got = gr.run(main, procs=procs)
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(sent)
    assert 0 < len(sent) < rounds * 4  # both outcomes happened


# ---------------------------------------------------------------------------- bad input

def test_scope_outside_a_task_is_refused():
    with pytest.raises(RuntimeError, match="from a task"):
        with gr.CancelScope():
            pass
    with pytest.raises(RuntimeError, match="from a task"):
        with gr.timeout(1):
            pass


def test_a_scope_is_entered_once():
    def main():
        scope = gr.CancelScope()
        with scope:
            pass
        with pytest.raises(RuntimeError, match="only once"):
            with scope:
                pass
        return True

    assert gr.run(main)


def test_a_scope_exited_out_of_order_is_refused():
    def main():
        outer, inner = gr.CancelScope(), gr.CancelScope()
        outer.__enter__()
        inner.__enter__()
        with pytest.raises(RuntimeError, match="innermost scope first"):
            outer.__exit__(None, None, None)
        inner.__exit__(None, None, None)
        outer.__exit__(None, None, None)
        return True

    assert gr.run(main)


def test_a_scope_exited_by_another_task_is_refused():
    def main():
        scope = gr.CancelScope()
        scope.__enter__()
        t = gr.go(scope.__exit__, None, None, None)
        with pytest.raises(RuntimeError, match="task that entered it"):
            t.join()
        scope.__exit__(None, None, None)
        return True

    assert gr.run(main)


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"deadline": "soon"}, TypeError, "time.monotonic"),
    ({"deadline": True}, TypeError, "time.monotonic"),
    ({"deadline": float("nan")}, ValueError, "NaN"),
    ({"shield": 1}, TypeError, "True or False"),
])
def test_cancel_scope_arguments_are_checked(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        gr.CancelScope(**kwargs)


def test_cancel_scope_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        gr.CancelScope(1.0)  # type: ignore[misc]


@pytest.mark.parametrize("fn", [gr.timeout, gr.move_on_after])
def test_relative_scopes_check_their_seconds(fn):
    with pytest.raises(ValueError, match="non-negative"):
        fn(-1)
    with pytest.raises(TypeError, match="number of seconds"):
        fn("1")


def test_setting_bad_deadline_or_shield_is_refused():
    scope = gr.CancelScope()
    with pytest.raises(TypeError):
        scope.deadline = "later"
    with pytest.raises(TypeError):
        scope.shield = None
    assert scope.deadline is None and scope.shield is False


def test_repr_and_properties():
    scope = gr.CancelScope(deadline=123.5, shield=True)
    assert scope.deadline == 123.5 and scope.shield is True
    assert scope.cancel_called  # 123.5 s after boot is long past
    assert repr(scope) == "<CancelScope new deadline=123.500000 cancelled shield>"
    assert repr(gr.CancelScope()) == "<CancelScope new>"
    big = gr.CancelScope(deadline=float("inf"))
    assert big.deadline is None
