"""A cooperative mirror of the stdlib ``select`` module.

Inside a task, ``select()`` and the objects ``poll()`` returns park the task instead of
blocking its M (the OS thread that runs it and other tasks). Everywhere else (outside
``run()``, in a plain thread) they are the stdlib functions, with exactly their behaviour.
Every other name (``epoll``, ``error``, the ``POLL*``/``EPOLL*`` constants) is the stdlib's;
``epoll.poll`` still blocks the M: use ``selectors.DefaultSelector`` from
``goroutines.selectors`` for a cooperative epoll. ``gr.patch()`` installs ``select`` and
``poll`` into the stdlib module::

    import goroutines as gr
    from goroutines import fdselect as select

    def main():
        r, w = os.pipe()
        gr.go(os.write, w, b"x")
        return select.select([r], [], [], 1.0)   # parks until the pipe is readable

    gr.run(main)

How a task waits: the answer always comes from the stdlib call with timeout 0, so results,
their order and the errors are the stdlib's. When nothing is ready, the fds are registered
in an epoll instance, and the task waits on that epoll's own fd (readable when any of them
is ready) with ``gr.wait_readable``; then it asks again.

It is named ``fdselect`` because ``goroutines.select`` is the channel select.
"""
from __future__ import annotations

import errno as _errno
import math as _math
import select as _stdselect
import time as _time
from collections.abc import Callable, Iterable
from select import (  # the mirror: every other public name of the stdlib module
    EPOLL_CLOEXEC,
    EPOLLERR,
    EPOLLET,
    EPOLLEXCLUSIVE,
    EPOLLHUP,
    EPOLLIN,
    EPOLLMSG,
    EPOLLONESHOT,
    EPOLLOUT,
    EPOLLPRI,
    EPOLLRDBAND,
    EPOLLRDHUP,
    EPOLLRDNORM,
    EPOLLWRBAND,
    EPOLLWRNORM,
    PIPE_BUF,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLMSG,
    POLLNVAL,
    POLLOUT,
    POLLPRI,
    POLLRDBAND,
    POLLRDHUP,
    POLLRDNORM,
    POLLWRBAND,
    POLLWRNORM,
    epoll,
    error,
)
from typing import Any

from goroutines import _core
from goroutines.monkey import _in_task, _to_ns

__all__ = [
    "EPOLL_CLOEXEC",
    "EPOLLERR",
    "EPOLLET",
    "EPOLLEXCLUSIVE",
    "EPOLLHUP",
    "EPOLLIN",
    "EPOLLMSG",
    "EPOLLONESHOT",
    "EPOLLOUT",
    "EPOLLPRI",
    "EPOLLRDBAND",
    "EPOLLRDHUP",
    "EPOLLRDNORM",
    "EPOLLWRBAND",
    "EPOLLWRNORM",
    "PIPE_BUF",
    "POLLERR",
    "POLLHUP",
    "POLLIN",
    "POLLMSG",
    "POLLNVAL",
    "POLLOUT",
    "POLLPRI",
    "POLLRDBAND",
    "POLLRDHUP",
    "POLLRDNORM",
    "POLLWRBAND",
    "POLLWRNORM",
    "epoll",
    "error",
    "poll",
    "select",
]

# The stdlib functions, captured before gr.patch() can replace them in the stdlib module.
_std_select = _stdselect.select
_std_poll: Callable[[], Any] = _stdselect.poll  # a function (typeshed: a class)
_std_epoll = _stdselect.epoll

_INT_MAX = 2**31 - 1
# poll(2) event bits that epoll(7) shares (same values): the mask of the inner epoll.
_EPOLL_BITS = (
    EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND
    | EPOLLMSG | EPOLLRDHUP
)


def _fd_of(obj: Any) -> int:
    """The fd of an object the stdlib call already accepted (an int or has fileno())."""
    return obj if isinstance(obj, int) else obj.fileno()


def _wait(ep: epoll, deadline: float | None) -> bool:
    """Park until ``ep`` reports an event (True) or ``deadline`` (monotonic) passes (False)."""
    if deadline is None:
        _core.wait_readable(ep.fileno())
        return True
    remaining = deadline - _time.monotonic()
    if remaining <= 0:
        return False
    try:
        _core.wait_readable(ep.fileno(), remaining)
    except TimeoutError:
        return False
    return True


def _close_epoll(ep: epoll) -> None:
    """Close an epoll the netpoller may have registered: tell it first, so the registration
    does not outlive the fd (a later fd with the same number is a new registration)."""
    if not ep.closed:
        _core.notify_closing(ep.fileno())
        ep.close()


def select(
    rlist: Iterable[Any], wlist: Iterable[Any], xlist: Iterable[Any], timeout: float | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """``select.select`` that parks the calling task until an fd is ready or ``timeout``
    (seconds, None for no limit) passes; outside a task it is the stdlib function.

    Returns the stdlib's three lists (the ready objects, in argument order) and raises
    its errors (OSError EBADF for a closed fd, ValueError for a negative timeout or an fd
    beyond FD_SETSIZE, TypeError for objects that are not fds).

    Example::

        readable, _, _ = select.select([sock_a, sock_b], [], [], 5.0)
    """
    if not _in_task():
        return _std_select(rlist, wlist, xlist, timeout)
    deadline = None
    if timeout is not None:
        ns = _to_ns(timeout, 10**9, "timeout must be a float or None")
        if ns < 0:
            raise ValueError("timeout must be non-negative")
        deadline = _time.monotonic() + ns / 1e9
    try:  # PySequence_Fast: one pass over each iterable, the stdlib's message
        lists: tuple[list[Any], list[Any], list[Any]] = (list(rlist), list(wlist), list(xlist))
    except TypeError:
        raise TypeError("arguments 1-3 must be sequences") from None
    ready: tuple[list[Any], list[Any], list[Any]] = _std_select(*lists, 0)
    if any(ready) or deadline is not None and deadline <= _time.monotonic():
        return ready
    masks: dict[int, int] = {}
    for objs, bit in zip(lists, (EPOLLIN, EPOLLOUT, EPOLLPRI), strict=True):
        for obj in objs:
            fd = _fd_of(obj)
            masks[fd] = masks.get(fd, 0) | bit
    ep = _std_epoll()
    try:
        for fd, mask in masks.items():
            try:
                ep.register(fd, mask)
            except OSError as e:
                # A regular file (EPERM) is ready at once; an fd that is not open (EBADF:
                # beyond the fd table, which select ignores, or closed since) gets the
                # stdlib's answer when select is asked again.
                if e.errno not in (_errno.EPERM, _errno.EBADF):
                    raise
        while not any(ready):
            if not _wait(ep, deadline):
                return [], [], []
            ready = _std_select(*lists, 0)
        return ready
    finally:
        _close_epoll(ep)


def _poll_timeout_ns(timeout: float | None) -> int | None:
    """A ``poll.poll`` timeout (milliseconds; None or negative: no limit) in nanoseconds."""
    if timeout is None:
        return None
    ns = _to_ns(timeout, 10**6, "timeout must be an integer or None")
    if _math.ceil(ns / 10**6) > _INT_MAX:
        raise OverflowError("timeout is too large")
    return None if ns < 0 else ns


class _Poll:
    """A cooperative ``select.poll`` object (see ``poll()``)."""

    __slots__ = ("_poll", "_masks", "_ep", "_unwatched", "_polling")

    def __init__(self) -> None:
        self._ep: epoll | None = None  # the inner epoll waiting tasks park on, made lazily
        self._poll: _stdselect.poll = _std_poll()  # the answer; validates registrations
        self._masks: dict[int, int] = {}
        self._unwatched: set[int] = set()  # fds the epoll refused, retried on each wait
        self._polling = False

    def register(self, fd: Any, eventmask: int = POLLIN | POLLPRI | POLLOUT) -> None:
        """``poll.register``: watch ``fd`` (an int or an object with fileno()) for
        ``eventmask``; registering it again replaces its mask."""
        self._poll.register(fd, eventmask)
        self._set(_fd_of(fd), eventmask)

    def modify(self, fd: Any, eventmask: int) -> None:
        """``poll.modify``: change the mask of a registered fd (FileNotFoundError if it
        is not registered)."""
        self._poll.modify(fd, eventmask)
        self._set(_fd_of(fd), eventmask)

    def unregister(self, fd: Any) -> None:
        """``poll.unregister``: stop watching ``fd`` (KeyError if it is not registered)."""
        self._poll.unregister(fd)
        fd = _fd_of(fd)
        del self._masks[fd]
        self._unwatched.discard(fd)
        if self._ep is not None:
            try:
                self._ep.unregister(fd)
            except OSError:  # never watched (refused), or closed since: epoll dropped it
                pass

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        """``poll.poll``: the ``(fd, events)`` pairs that are ready, waiting up to
        ``timeout`` milliseconds (None or negative: no limit); in a task it parks."""
        if not _in_task():
            return self._poll.poll(timeout)
        ns = _poll_timeout_ns(timeout)
        if self._polling:  # what the stdlib object raises when two threads poll it
            raise RuntimeError("concurrent poll() invocation")
        self._polling = True
        try:
            ready = self._poll.poll(0)
            if ready or ns == 0:
                return ready
            deadline = None if ns is None else _time.monotonic() + ns / 1e9
            if self._ep is None:
                self._ep = _std_epoll()
                self._unwatched.update(self._masks)
            while not ready:
                for fd in list(self._unwatched):
                    self._watch(self._ep, fd)
                if not _wait(self._ep, deadline):
                    return []
                ready = self._poll.poll(0)
            return ready
        finally:
            self._polling = False

    def _set(self, fd: int, eventmask: int) -> None:
        self._masks[fd] = eventmask
        if self._ep is not None:
            self._watch(self._ep, fd)

    def _watch(self, ep: epoll, fd: int) -> None:
        """Mirror fd's registration into the inner epoll, or leave it in _unwatched when
        epoll refuses it: a closed fd (poll reports POLLNVAL at once) or a regular file
        (always ready), so neither needs the epoll to end a wait."""
        mask = self._masks[fd] & _EPOLL_BITS
        try:
            try:
                ep.modify(fd, mask)
            except FileNotFoundError:
                ep.register(fd, mask)
        except OSError as e:
            if e.errno not in (_errno.EBADF, _errno.EPERM):
                raise
            self._unwatched.add(fd)
        else:
            self._unwatched.discard(fd)

    def __del__(self) -> None:
        if self._ep is not None:
            _close_epoll(self._ep)


def poll() -> _Poll:
    """``select.poll()``: a polling object whose ``poll()`` parks the calling task (it
    blocks like the stdlib's outside a task). Results and errors are the stdlib's.

    Example::

        p = select.poll()
        p.register(sock, select.POLLIN)
        events = p.poll(1000)   # milliseconds
    """
    return _Poll()
