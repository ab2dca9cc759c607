"""A cooperative mirror of the stdlib ``selectors`` module.

``DefaultSelector`` (``EpollSelector``), ``PollSelector`` and ``SelectSelector`` here are
subclasses of the stdlib classes whose ``select()`` parks the calling task instead of
blocking its M; outside a task they behave exactly like the stdlib's. Everything else
(``EVENT_READ``, ``SelectorKey``, ``BaseSelector``...) is the stdlib's. ``gr.patch()``
installs these classes into the stdlib module::

    import goroutines as gr
    from goroutines import selectors

    def serve(listener):
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            for key, events in sel.select(timeout=5.0):   # parks this task
                ...

An ``EpollSelector`` waits on its own epoll fd with ``gr.wait_readable``: that fd is
readable when any registered fd is ready. As with the stdlib, unregister an fd before
closing it.
"""
import selectors as _stdselectors
import time as _time
from select import epoll
from selectors import EVENT_READ, EVENT_WRITE, BaseSelector, SelectorKey

import goroutines.fdselect as _gselect
from goroutines import _core
from goroutines.monkey import _in_task

__all__ = [
    "EVENT_READ",
    "EVENT_WRITE",
    "BaseSelector",
    "DefaultSelector",
    "EpollSelector",
    "PollSelector",
    "SelectSelector",
    "SelectorKey",
]


class SelectSelector(_stdselectors.SelectSelector):
    """``selectors.SelectSelector`` over the cooperative ``select.select``.

    Example::

        sel = selectors.SelectSelector()
    """

    @staticmethod
    def _select(
        rlist: list[int], wlist: list[int], xlist: list[int], timeout: float | None = None
    ) -> tuple[list[int], list[int], list[int]]:
        return _gselect.select(rlist, wlist, xlist, timeout)  # the stdlib's is select.select


class PollSelector(_stdselectors.PollSelector):
    """``selectors.PollSelector`` over cooperative ``select.poll`` objects.

    Example::

        sel = selectors.PollSelector()
    """

    @staticmethod
    def _selector_cls() -> _gselect._Poll:
        return _gselect.poll()  # the stdlib's is select.poll


class EpollSelector(_stdselectors.EpollSelector):
    """``selectors.EpollSelector`` whose ``select()`` parks the calling task.

    Example::

        with selectors.EpollSelector() as sel:
            sel.register(sock, selectors.EVENT_READ, data="conn")
            ready = sel.select(1.0)
    """

    def select(self, timeout: float | None = None) -> list[tuple[SelectorKey, int]]:
        """Return ``[(key, events)]`` for the ready fds, waiting up to ``timeout`` seconds
        (None: no limit; <= 0: do not wait). In a task the wait parks the task."""
        if timeout is not None and timeout <= 0 or not _in_task():
            return super().select(timeout)
        deadline = None if timeout is None else _time.monotonic() + timeout
        ready = super().select(0)
        while not ready and _gselect._wait(self._epoll, deadline):
            ready = super().select(0)
        return ready

    def close(self) -> None:
        """Close the selector and its epoll fd; tasks waiting on it wake with OSError."""
        if not self._epoll.closed:
            _core.notify_closing(self._epoll.fileno())
        super().close()

    @property
    def _epoll(self) -> epoll:
        return self._selector  # type: ignore[attr-defined, no-any-return]  # the stdlib's


DefaultSelector = EpollSelector
