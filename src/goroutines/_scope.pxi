# Included by _core.pyx: cancel scopes, trio's rules in Go's park protocol.
#
# A task's open scopes form a chain from its innermost (Task.scope) outwards through
# parent links, as its `with` blocks nest. Each wait of the task (_wait) walks the chain
# from the inside out, stopping after the first shielded scope: a scope found cancelled,
# or with its deadline passed, ends the wait with Cancelled; otherwise the earliest
# deadline seen bounds the wait's own. The Cancelled travels up the `with` blocks until a
# cancelled scope catches it: the nearest expired scope catches first, and an outer one
# that has also expired raises again at the next park point, so an outer deadline always
# applies. Cancelling a scope from elsewhere writes its C state (scope.h) and interrupts
# the owner (wait.h), which looks at its chain again. A TaskGroup opened in a scope takes
# the scope's Cancelled at its owner's wait for the group and cancels the group's tasks.

_SCOPE_NEW, _SCOPE_OPEN, _SCOPE_DONE = 0, 1, 2
# _scope_state's verdict: a scope in the chain is cancelled (other values are deadlines).
cdef int64_t _CHAIN_CANCELLED = -2


@cython.final
cdef class CancelScope:
    """A block of a task that can be cancelled as a unit, as trio's CancelScope.

    Every wait inside the block (channels, select, sleep, join, locks, fd waits,
    ``blocking()``) ends with ``Cancelled`` once the scope is cancelled, by ``cancel()``
    from any task or thread, or by its ``deadline`` (``time.monotonic()`` seconds) passing.
    The scope's ``with`` block catches that Cancelled and the task goes on after it;
    ``cancelled_caught`` tells whether it did. Scopes nest: the nearest cancelled scope
    catches, and an outer scope's cancellation reaches inner blocks unless a scope in
    between has ``shield`` set. Cancelling the whole task (``Task.cancel()``) is never
    caught by a scope. ``done`` is a channel closed when the scope is cancelled or its
    block ends, for Go-style code that selects on it as on a context's Done.

    Example::

        with gr.CancelScope() as scope:
            gr.after_func(0.5, scope.cancel)
            ch.recv()  # gives up after half a second
        if scope.cancelled_caught:
            print("no value in time")
    """

    def __cinit__(self, *, deadline=None, shield=False):
        gr_scope_init(&self.s, _scope_deadline_ns(deadline), _shield_flag(shield))

    @property
    def deadline(self):
        """When the scope cancels itself, in ``time.monotonic()`` seconds, or None for
        never. Settable from any thread, before or while the block runs."""
        cdef int64_t d = gr_scope_deadline(&self.s)
        return None if d == GR_DEADLINE_NEVER else d / 1e9

    @deadline.setter
    def deadline(self, value):
        gr_scope_set_deadline(&self.s, _scope_deadline_ns(value))
        timer = self._done_timer
        if timer is not None:
            (<Timer>timer).reset(_until(gr_scope_deadline(&self.s)))
        self.interrupt_owner()

    @property
    def shield(self) -> bool:
        """While True, cancellations of the scopes around this one do not reach the
        block (its own still do). Settable from any thread."""
        return gr_scope_shielded(&self.s)

    @shield.setter
    def shield(self, value):
        gr_scope_set_shield(&self.s, _shield_flag(value))
        self.interrupt_owner()  # unshielded, an outer cancellation may now apply

    @property
    def cancel_called(self) -> bool:
        """True once ``cancel()`` was called or the deadline has passed."""
        cdef int64_t d = gr_scope_deadline(&self.s)
        return gr_scope_cancelled(&self.s) or (d != GR_DEADLINE_NEVER and d <= gr_nanotime())

    @property
    def done(self) -> Chan:
        """A channel closed once the scope is cancelled (by ``cancel()`` or its deadline)
        or its block has ended, like a Go context's ``Done()``.

        Example::

            with gr.timeout(5) as scope:
                gr.go(poll_until, scope.done)
                work()
        """
        cdef bint arm = False
        with cython.critical_section(self):
            if self._done is None:
                self._done = Chan()
                arm = True
            done = self._done
        if self.cancel_called or self.state == _SCOPE_DONE:
            _close_once(done)
        elif arm and gr_scope_deadline(&self.s) != GR_DEADLINE_NEVER:
            self._done_timer = after_func(_until(gr_scope_deadline(&self.s)), self._on_deadline)
        return done

    def cancel(self) -> None:
        """Cancel the scope: every wait in its block, now or later, ends with Cancelled,
        which the block catches. Idempotent; safe from any thread."""
        gr_scope_cancel(&self.s)
        if self._done is not None:
            _close_once(self._done)
        self.interrupt_owner()

    def _on_deadline(self):
        if self.cancel_called:
            self.cancel()

    cdef int expire(self) except -1:
        """The owner found the deadline passed: the scope is cancelled from now on."""
        gr_scope_cancel(&self.s)
        if self._done is not None:
            _close_once(self._done)

    cdef int interrupt_owner(self) except -1:
        cdef Task owner
        cdef int w
        with cython.critical_section(self):
            owner = self.owner
        if owner is not None:
            w = gr_wake_begin()
            gr_g_interrupt(&owner.g)
            gr_wake_end(w)
        return 0

    def __enter__(self):
        cdef M m = _running("CancelScope")
        cdef Task t = m.cur
        with cython.critical_section(self):
            if self.state != _SCOPE_NEW:
                raise RuntimeError("a CancelScope can be entered only once")
            self.state = _SCOPE_OPEN
            self.owner = t
        self.parent = t.scope
        t.scope = self
        return self

    def __exit__(self, et, ev, tb):
        cdef M m = _curm()
        cdef Task t = m.cur if m is not None else None
        if t is None or t is not self.owner or t.scope is not self:
            raise RuntimeError("a CancelScope must be exited by the task that entered it, "
                               "innermost scope first")
        t.scope = self.parent
        self.parent = None
        with cython.critical_section(self):
            self.owner = None
            self.state = _SCOPE_DONE
        if self._done_timer is not None:
            (<Timer>self._done_timer).stop()
            self._done_timer = None
        if self._done is not None:
            _close_once(self._done)
        if ev is None or not isinstance(ev, Cancelled) or not self.cancel_called:
            return False
        if _cancel_pending(m, t):
            return False  # the whole task is cancelled: no scope may end that
        self.cancelled_caught = True
        cdef int64_t d = gr_scope_deadline(&self.s)
        if self.raises and d != GR_DEADLINE_NEVER and d <= gr_nanotime():
            raise TimeoutError("the block did not finish before its deadline") from ev
        return True

    def __repr__(self):
        state = ("new", "open", "done")[self.state]
        d = self.deadline
        deadline = "" if d is None else f" deadline={d:.6f}"
        cancelled = " cancelled" if self.cancel_called else ""
        return f"<CancelScope {state}{deadline}{cancelled}{' shield' if self.shield else ''}>"


cdef int64_t _scope_deadline_ns(object deadline) except -3:
    if deadline is None:
        return GR_DEADLINE_NEVER
    if not _is_seconds(deadline):
        raise TypeError(f"deadline must be a time.monotonic() value in seconds or None, "
                        f"not {type(deadline).__name__}")
    cdef double d = float(deadline)
    if isnan(d):
        raise ValueError("deadline must not be NaN")
    if d >= _FOREVER_S:
        return GR_DEADLINE_NEVER
    if d <= 0:
        return 1  # long past: 0 would read as "now" to a wait, and -1 as never
    return <int64_t>(d * 1e9)


cdef uint32_t _shield_flag(object shield) except 2:
    if not isinstance(shield, bool):
        raise TypeError(f"shield must be True or False, not {type(shield).__name__}")
    return 1 if shield else 0


cdef double _until(int64_t deadline) noexcept:
    return max(0.0, (deadline - gr_nanotime()) / 1e9)


cdef int _close_once(object ch) except -1:
    """Close ch unless it is closed already (a scope is cancelled and ends: both close)."""
    try:
        (<Chan>ch).close()
    except ChanClosed:
        pass
    return 0


cdef int64_t _scope_state(Task t) except -3:
    """Walk t's scope chain: _CHAIN_CANCELLED if a scope that reaches t is cancelled (the
    first one whose deadline has passed is marked so), else the earliest deadline of those
    scopes, GR_DEADLINE_NEVER for none."""
    cdef CancelScope s = t.scope
    cdef int64_t earliest = GR_DEADLINE_NEVER
    cdef int64_t d
    cdef int64_t now = 0
    while s is not None:
        if gr_scope_cancelled(&s.s):
            return _CHAIN_CANCELLED
        d = gr_scope_deadline(&s.s)
        if d != GR_DEADLINE_NEVER:
            if now == 0:
                now = gr_nanotime()
            if d <= now:
                s.expire()
                return _CHAIN_CANCELLED
            if earliest == GR_DEADLINE_NEVER or d < earliest:
                earliest = d
        if gr_scope_shielded(&s.s):
            break
        s = s.parent
    return earliest


cdef CancelScope _scope_after(object seconds, bint raises, str what):
    cdef double dt = _FOREVER_S if seconds is None else _seconds(seconds, what)
    return _new_scope(GR_DEADLINE_NEVER if dt >= _FOREVER_S
                      else max(1, gr_nanotime() + <int64_t>(dt * 1e9)), raises)


cdef CancelScope _scope_at(object deadline, bint raises):
    return _new_scope(_scope_deadline_ns(deadline), raises)


cdef CancelScope _new_scope(int64_t deadline, bint raises):
    cdef CancelScope s = CancelScope.__new__(CancelScope)
    gr_scope_set_deadline(&s.s, deadline)
    s.raises = raises
    return s


def timeout(seconds) -> CancelScope:
    """A cancel scope that ends its block ``seconds`` from now and raises TimeoutError
    when it did, as ``asyncio.timeout``. Whatever the block waits on is interrupted.
    ``None`` sets no deadline (``scope.deadline`` can set one later).

    Example::

        with gr.timeout(1.0):
            reply = ch.recv()
    """
    return _scope_after(seconds, True, "seconds")


def timeout_at(deadline) -> CancelScope:
    """timeout() with an absolute ``time.monotonic()`` deadline (None: none).

    Example::

        with gr.timeout_at(time.monotonic() + 1.0):
            reply = ch.recv()
    """
    return _scope_at(deadline, True)


def move_on_after(seconds) -> CancelScope:
    """A cancel scope that ends its block ``seconds`` from now without raising; its
    ``cancelled_caught`` tells whether it did, as trio's move_on_after. ``None`` sets no
    deadline.

    Example::

        with gr.move_on_after(0.1) as scope:
            print(ch.recv())
        if scope.cancelled_caught:
            print("no reply in time")
    """
    return _scope_after(seconds, False, "seconds")


def move_on_at(deadline) -> CancelScope:
    """move_on_after() with an absolute ``time.monotonic()`` deadline (None: none).

    Example::

        with gr.move_on_at(time.monotonic() + 0.1):
            reply = ch.recv()
    """
    return _scope_at(deadline, False)
