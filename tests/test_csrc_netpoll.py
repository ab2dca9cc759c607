"""csrc/netpoll.c: descriptors, the reader/writer slots and their wait protocol, and the
race between a thread that waits and a concurrent poller thread.

The G's here belong to a one-P scheduler that never runs: a readied G lands on its M's
inbox, which the waiting thread watches for (t_np_reader). No test asserts on timing.
"""

import errno
import os
import socket
import tempfile
import threading

import pytest

from csrc_ffi import get

ffi, lib = get()

NEVER = -1
NOW = 0


@pytest.fixture
def np_():
    np_ = lib.t_np_new()
    yield np_
    lib.gr_netpoll_destroy(np_)


@pytest.fixture
def sched():
    s = lib.t_np_sched_new()
    yield s
    lib.t_np_sched_free(s)


@pytest.fixture
def g():
    g = lib.t_g_new(1)
    yield g
    lib.t_g_free(g)


def begin(np_, sched, pd, seq, mode, g, deadline):
    return lib.t_np_begin(np_, sched, pd, seq, mode, g, deadline)


def open_fd(np_, fd):
    seq, err = ffi.new("uint32_t *"), ffi.new("int *")
    pd = lib.gr_netpoll_open(np_, fd, seq, err)
    return pd, seq[0], err[0]


def test_open_registers_once_per_file(np_, pipe):
    r, _ = pipe
    pd, seq, err = open_fd(np_, r)
    assert pd != ffi.NULL and err == 0 and np_.epfd >= 0
    pd2, seq2, _ = open_fd(np_, r)
    assert pd2 == pd and seq2 == seq


def test_open_refuses_what_epoll_cannot_watch(np_):
    pd, _, err = open_fd(np_, 10**6)
    assert pd == ffi.NULL and err == errno.EBADF
    pd, _, err = open_fd(np_, -1)
    assert pd == ffi.NULL and err == errno.EBADF
    with tempfile.TemporaryFile() as f:
        pd, _, err = open_fd(np_, f.fileno())
        assert pd == ffi.NULL and err == errno.EPERM


def test_a_reused_fd_number_gets_a_fresh_descriptor(np_):
    r, w = os.pipe()
    pd, seq, _ = open_fd(np_, r)
    os.close(r)
    os.close(w)
    r2, w2 = os.pipe()
    try:
        assert r2 == r
        pd2, seq2, _ = open_fd(np_, r2)
        # The old descriptor was shut (and recycled): its old seq is stale.
        assert (pd2, seq2) != (pd, seq)
    finally:
        os.close(r2)
        os.close(w2)


def test_pending_readiness_is_consumed_without_parking(np_, sched, g, pipe):
    r, w = pipe
    pd, seq, _ = open_fd(np_, r)
    assert lib.t_np_begin(np_, sched, pd, seq, lib.GR_POLL_READ, g, NOW) == lib.GR_WAIT_TIMEOUT
    os.write(w, b"x")
    assert lib.gr_netpoll_poll(np_) == 0  # nobody waits: the edge is remembered
    assert lib.t_np_begin(np_, sched, pd, seq, lib.GR_POLL_READ, g, NOW) == lib.GR_WAIT_OK
    assert lib.t_np_begin(np_, sched, pd, seq, lib.GR_POLL_READ, g, NOW) == lib.GR_WAIT_TIMEOUT


def test_an_event_readies_the_parked_g(np_, sched, g, pipe):
    r, w = pipe
    pd, seq, _ = open_fd(np_, r)
    lib.gr_netpoll_poll(np_)  # the pipe's initial writability is not ours (read side)
    assert lib.t_np_begin(np_, sched, pd, seq, lib.GR_POLL_READ, g, NEVER) == lib.GR_WAIT_PARK
    assert lib.gr_netpoll_nwait(np_) == 1
    assert lib.gr_netpoll_poll(np_) == 0
    os.write(w, b"x")
    assert lib.gr_netpoll_poll(np_) == 1
    assert lib.t_np_state(g) == 1  # GR_G_RUNNABLE
    assert lib.t_np_finish(np_, sched, pd, lib.GR_POLL_READ, g) == lib.GR_WAIT_OK
    assert lib.gr_netpoll_nwait(np_) == 0


def test_a_second_waiter_in_one_slot_is_busy(np_, sched, pipe):
    r, _ = pipe
    gs = lib.t_g_new(3)
    try:
        pd, seq, _ = open_fd(np_, r)
        lib.gr_netpoll_poll(np_)
        first, second, writer = (lib.t_g_at(gs, i) for i in range(3))
        assert begin(np_, sched, pd, seq, lib.GR_POLL_READ, first, NEVER) == lib.GR_WAIT_PARK
        assert begin(np_, sched, pd, seq, lib.GR_POLL_READ, second, NEVER) == lib.GR_WAIT_BUSY
        # The writer slot is separate; the pipe's read end is never writable.
        assert begin(np_, sched, pd, seq, lib.GR_POLL_WRITE, writer, NOW) == lib.GR_WAIT_TIMEOUT
        lib.gr_netpoll_close(np_, pd, seq)
        assert lib.t_np_finish(np_, sched, pd, lib.GR_POLL_READ, first) == lib.GR_WAIT_CLOSED
    finally:
        lib.t_g_free(gs)


def test_close_wakes_both_waiters_and_makes_the_handle_stale(np_, sched):
    a, b = socket.socketpair()
    gs = lib.t_g_new(2)
    try:
        a.setblocking(False)
        while True:  # fill a's send buffer so that a write waits too
            try:
                a.send(b"x" * 65536)
            except BlockingIOError:
                break
        pd, seq, _ = open_fd(np_, a.fileno())
        lib.gr_netpoll_poll(np_)
        rg, wg = lib.t_g_at(gs, 0), lib.t_g_at(gs, 1)
        assert lib.t_np_begin(np_, sched, pd, seq, lib.GR_POLL_READ, rg, NEVER) == lib.GR_WAIT_PARK
        assert lib.t_np_begin(np_, sched, pd, seq, lib.GR_POLL_WRITE, wg, NEVER) == lib.GR_WAIT_PARK
        assert lib.gr_netpoll_close_fd(np_, a.fileno()) == 1
        assert lib.t_np_state(rg) == 1 and lib.t_np_state(wg) == 1
        assert lib.t_np_finish(np_, sched, pd, lib.GR_POLL_READ, rg) == lib.GR_WAIT_CLOSED
        assert lib.t_np_finish(np_, sched, pd, lib.GR_POLL_WRITE, wg) == lib.GR_WAIT_CLOSED
        # Stale handle: closed at once, and a second close is a no-op.
        assert begin(np_, sched, pd, seq, lib.GR_POLL_READ, rg, NEVER) == lib.GR_WAIT_CLOSED
        assert lib.gr_netpoll_close(np_, pd, seq) == 0
        assert lib.gr_netpoll_close_fd(np_, a.fileno()) == 0
        assert lib.gr_netpoll_nwait(np_) == 0
    finally:
        lib.t_g_free(gs)
        a.close()
        b.close()


def test_a_break_ends_a_blocked_poll(np_, pipe):
    r, _ = pipe
    open_fd(np_, r)
    assert lib.gr_netpoll_try_block(np_) == 1
    assert lib.gr_netpoll_try_block(np_) == 0  # at most one blocked poller
    threading.Timer(0.01, lib.gr_netpoll_break, (np_,)).start()
    assert lib.gr_netpoll_block(np_, 20 * 10**9) == 0  # returns: the break, not the timeout
    lib.gr_netpoll_unblock(np_)
    assert lib.gr_netpoll_try_block(np_) == 1
    lib.gr_netpoll_unblock(np_)


@pytest.mark.parametrize("block", [0, 1], ids=["nonblocking", "blocking"])
def test_no_wakeup_is_lost_between_a_waiter_and_a_concurrent_poller(np_, sched, g, pipe, block):
    # The waiter reads until EAGAIN and waits; the writer trickles bytes; a third thread
    # polls. A lost edge leaves the waiter parked for good: after the join timeout the test
    # closes the descriptor to free it, and fails.
    r, w = pipe
    want = 20_000
    parks = ffi.new("int64_t *")
    got = []
    lib.t_np_stop(0)

    def read():
        got.append(lib.t_np_reader(np_, sched, g, r, want, parks))

    reader = threading.Thread(target=read)
    poller = threading.Thread(target=lib.t_np_poller, args=(np_, block))
    writer = threading.Thread(target=lib.t_np_writer, args=(w, want))
    for t in (reader, poller, writer):
        t.start()
    reader.join(60)
    hung = reader.is_alive()
    if hung:
        lib.gr_netpoll_close_fd(np_, r)
        reader.join()
    lib.t_np_stop(1)
    poller.join()
    writer.join()
    assert not hung, f"lost wake-up after {-got[0] - 1} of {want} bytes"
    assert got == [want]
    assert parks[0] > 0  # the race was exercised
    assert lib.gr_netpoll_nwait(np_) == 0
