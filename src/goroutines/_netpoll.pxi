# Waiting for file descriptors (included into _core.pyx): the Python half of csrc/netpoll.h.
#
# In a task a wait parks on the process's poller (one epoll instance, every fd registered
# once, edge-triggered); anywhere else (outside run(), a plain thread, code the scheduler
# runs between tasks) it blocks the calling thread in poll(2) without the GIL. Readiness is
# a hint in both cases: callers make the non-blocking call first and wait on EAGAIN.
from libc.errno cimport errno, EINTR, EBADF, EPERM, EAGAIN
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_WRITABLE, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING

cdef extern from "<sys/socket.h>" nogil:
    ssize_t c_recv "recv"(int fd, void *buf, size_t n, int flags)
    ssize_t c_send "send"(int fd, const void *buf, size_t n, int flags)
    enum:
        MSG_DONTWAIT

cdef extern from "Python.h":
    int _PyBytes_Resize(PyObject **bytes, Py_ssize_t size) except -1

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd *fds, unsigned long nfds, int timeout)
    enum:
        POLLIN
        POLLOUT
        POLLNVAL

cdef extern from "netpoll.h" nogil:
    enum:
        GR_POLL_READ
        GR_POLL_WRITE

cdef extern from "sockio.h" nogil:
    int gr_tcp_inq(int fd, int on)
    ssize_t gr_recv_inq(int fd, void *buf, size_t n, int flags, int *inq)

# One poller per process, shared by the runs: a socket may outlive the run that first
# waited on it. Its epoll instance is made on the first wait of a task.
cdef gr_netpoll _netpoll
gr_netpoll_init(&_netpoll)


class BusyResourceError(RuntimeError):
    """Another task is already waiting to read from (or write to) the same file descriptor.

    Each fd has one reader slot and one writer slot, as in Go's poller and trio; tasks
    that share a socket in one direction must take turns (a Mutex, or one task per
    direction).

    Example::

        try:
            gr.wait_readable(sock)
        except gr.BusyResourceError:
            ...  # another task is reading this socket
    """


cdef int _fileno(object fileobj) except -1:
    """The fd of an int or an object with fileno(), checked as select.select checks it."""
    cdef object fd
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        meth = getattr(fileobj, "fileno", None)
        if meth is None:
            raise TypeError(f"expected a file descriptor (an int) or an object with a fileno() "
                            f"method, not {type(fileobj).__name__}")
        fd = meth()
        if not isinstance(fd, int):
            raise TypeError(f"fileno() returned {type(fd).__name__}, not an int")
        if fd == -1:  # what socket.fileno() says once the socket is closed
            raise OSError(EBADF, f"{type(fileobj).__name__} is closed (its fileno() is -1)")
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    if fd > 0x7fffffff:
        raise OverflowError(f"file descriptor {fd} is too large")
    return fd


cdef int _poll_thread(int fd, int mode, int64_t deadline) except -1:
    """Wait for fd in poll(2), holding the thread (not a task) without the GIL."""
    cdef pollfd p
    cdef int rc, ms
    cdef int64_t left
    p.fd = fd
    p.events = POLLIN if mode == GR_POLL_READ else POLLOUT
    while True:
        ms = -1
        if deadline >= 0:
            left = deadline - gr_nanotime()
            # Rounded up: poll's milliseconds must not wake before the deadline.
            ms = 0 if left <= 0 else <int>min((left + 999_999) // 1_000_000, 0x7fffffff)
        # Before every sleep, the first included: a signal whose handler ran since the
        # caller's last bytecode would not interrupt the poll.
        PyErr_CheckSignals()
        with nogil:
            rc = poll(&p, 1, ms)
        if rc < 0:
            if errno != EINTR:
                raise OSError(errno, os.strerror(errno))
        elif rc == 0:
            if deadline >= 0 and gr_nanotime() >= deadline:
                raise TimeoutError("timed out")
        elif p.revents & POLLNVAL:
            raise OSError(EBADF, f"file descriptor {fd} is not open")
        else:
            return 0  # ready, or an error/hang-up the caller's next call will report


@cython.final
cdef class _PollFd:
    """One fd's registration with the poller, kept by a socket for its whole life.

    Internal: goroutines.socket and goroutines.ssl wait through it, without the fd lookup
    of wait_readable(). Outside a task its waits block the thread in poll(2).
    """
    cdef gr_pollfd *pd
    cdef uint32_t seq
    cdef uint32_t gen         # the poller generation pd belongs to (a forked child's is new)
    cdef bint always_ready    # epoll cannot watch it (a regular file): never wait
    cdef bint closed
    cdef readonly int fd
    # A TCP socket whose last recv drained the queue: the next recv waits for an edge
    # first instead of spending a syscall on EAGAIN (every arrival after it is an edge;
    # nginx does the same), unless an edge came meanwhile (pd's read edge count moved
    # from drained_at), which another wait on the fd may have spent. A short read drained
    # it: Linux's TCP recv copies from every queued segment until the buffer is full. A
    # full one did if TCP_INQ says nothing is left (sockio.h); it is turned on at the
    # first full read. Except where the read stopped at the peer's FIN or an error: then
    # the EOF is already there, and its edge may be spent (an fd whose hang-up was
    # reported never counts as drained). Not for AF_UNIX, whose recv can stop short at a
    # message boundary with more queued.
    cdef public bint tcp
    cdef bint drained
    cdef uint32_t drained_at
    cdef int inq             # TCP_INQ: 0 not tried yet, 1 on, -1 unavailable or turned off

    def __cinit__(self, fileobj):
        self.fd = _fileno(fileobj)

    cdef int register(self) except -1:
        cdef int err = 0
        self.pd = gr_netpoll_open(&_netpoll, self.fd, &self.seq, &err)
        self.gen = _netpoll.gen
        if self.pd == NULL:
            if err != EPERM:
                raise OSError(err, os.strerror(err))
            self.always_ready = True
        return 0

    def wait_readable(self, timeout=None) -> None:
        """Wait until the fd is probably readable (see goroutines.wait_readable)."""
        self.wait(GR_POLL_READ, _deadline(timeout, "timeout"))

    def wait_writable(self, timeout=None) -> None:
        """Wait until the fd is probably writable (see goroutines.wait_writable)."""
        self.wait(GR_POLL_WRITE, _deadline(timeout, "timeout"))

    cdef int wait(self, int mode, int64_t deadline) except -1:
        if self.closed:
            raise OSError(EBADF, f"file descriptor {self.fd} was closed")
        cdef M m = _curm()
        if m is None or m.cur is None or deadline == 0:
            return _poll_thread(self.fd, mode, deadline)
        if self.pd == NULL and not self.always_ready or self.gen != _netpoll.gen:
            self.register()
        if self.always_ready:
            return 0
        return _fd_park(m, self.pd, self.seq, self.fd, mode, deadline)

    def close(self) -> None:
        """The fd is about to be closed: wake its waiters with OSError(EBADF). Idempotent."""
        cdef int w
        if not self.closed:
            self.closed = True
            if self.pd != NULL and self.gen == _netpoll.gen:
                w = gr_wake_begin()  # its waiters may be tasks: a wake from this thread
                gr_netpoll_close(&_netpoll, self.pd, self.seq)
                gr_wake_end(w)

    def no_inq(self) -> None:
        """Turn TCP_INQ off for good before the fd is read by other means than recv and
        recv_into (recvmsg, or a detached fd), which would see its control messages."""
        if self.inq != -1 and self.tcp:  # 0 too: another handle of the socket may have set it
            gr_tcp_inq(self.fd, 0)
        self.inq = -1

    # ---- socket I/O: the hot path of goroutines.socket --------------------------------
    # One non-blocking syscall, with the GIL held (it never blocks, and releasing and
    # taking the GIL back costs more than the call), and a park on EAGAIN, without the
    # BlockingIOError the stdlib's methods would raise and catch every time. `timeout` is
    # the socket's: None (wait as long as it takes), 0.0 (BlockingIOError, as the
    # stdlib's non-blocking sockets), or seconds for the whole call (TimeoutError).

    cdef Py_ssize_t c_recv_into(self, buffer, Py_ssize_t nbytes, int flags,
                                object timeout) except -1:
        cdef Py_buffer view
        cdef int64_t deadline = -2
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE)
        try:
            if nbytes == 0:
                nbytes = view.len
            elif nbytes > view.len:
                raise ValueError("buffer too small for requested bytes")
            return self.io(GR_POLL_READ, view.buf, nbytes, flags, timeout, &deadline)
        finally:
            PyBuffer_Release(&view)

    cdef object c_recv(self, Py_ssize_t bufsize, int flags, object timeout):
        cdef int64_t deadline = -2
        cdef Py_ssize_t n
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        cdef object b = PyBytes_FromStringAndSize(NULL, bufsize)
        n = self.io(GR_POLL_READ, PyBytes_AS_STRING(b), bufsize, flags, timeout, &deadline)
        if n == bufsize:
            return b
        cdef PyObject *p = <PyObject *>b
        Py_INCREF(b)   # the reference _PyBytes_Resize may replace
        b = None       # ... and now the only one, as it requires
        _PyBytes_Resize(&p, n)
        b = <object>p  # a new reference to the resized object
        Py_DECREF(b)   # drop the one taken above (moved into p)
        return b

    cdef Py_ssize_t c_send(self, data, int flags, object timeout) except -1:
        cdef Py_buffer view
        cdef int64_t deadline = -2
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self.io(GR_POLL_WRITE, view.buf, view.len, flags, timeout, &deadline)
        finally:
            PyBuffer_Release(&view)

    cdef int c_sendall(self, data, int flags, object timeout) except -1:
        cdef Py_buffer view
        cdef int64_t deadline = -2
        cdef Py_ssize_t done = 0
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            while done < view.len:
                done += self.io(GR_POLL_WRITE, <char *>view.buf + done, view.len - done, flags,
                                timeout, &deadline)
        finally:
            PyBuffer_Release(&view)
        return 0

    cdef Py_ssize_t io(self, int mode, void *buf, Py_ssize_t n, int flags, object timeout,
                       int64_t *deadline) except -1:
        """One recv or send, parking while the fd is not ready. *deadline starts at -2 and
        is set at the first wait (-1: none), so that a call made of several (sendall)
        shares one."""
        cdef ssize_t got
        cdef int err, left
        cdef bint watched
        cdef uint32_t edges = 0
        if mode == GR_POLL_READ and self.drained:
            self.drained = False
            if (self.gen == _netpoll.gen and gr_pollfd_redges(self.pd) == self.drained_at
                    and self.start_wait(timeout, deadline, EAGAIN)):
                self.wait(mode, deadline[0])
        while True:
            if self.closed:
                raise OSError(EBADF, "Bad file descriptor")
            if mode == GR_POLL_READ:
                watched = self.tcp and self.pd != NULL and self.gen == _netpoll.gen
                if watched:
                    edges = gr_pollfd_redges(self.pd)
                if self.inq == 1:
                    got = gr_recv_inq(self.fd, buf, <size_t>n, flags | MSG_DONTWAIT, &left)
                else:
                    got = c_recv(self.fd, buf, <size_t>n, flags | MSG_DONTWAIT)
                    left = 0 if got < n else -1
                    if got == n and self.tcp and self.inq == 0:
                        self.inq = 1 if gr_tcp_inq(self.fd, 1) == 0 else -1
                if watched and got > 0 and left == 0 and not gr_pollfd_hup(self.pd):
                    self.drained = True
                    self.drained_at = edges
            else:
                got = c_send(self.fd, buf, <size_t>n, flags | MSG_DONTWAIT)
            if got >= 0:
                return got
            err = errno
            if err == EINTR:
                PyErr_CheckSignals()
                continue
            if err != EAGAIN:  # EWOULDBLOCK on Linux
                raise OSError(err, os.strerror(err))
            if not self.start_wait(timeout, deadline, err):
                raise BlockingIOError(err, os.strerror(err))
            self.wait(mode, deadline[0])

    cdef bint start_wait(self, object timeout, int64_t *deadline, int err) except -1:
        """False for a non-blocking socket (timeout 0.0); else set *deadline at the first
        wait of the call."""
        if deadline[0] == -2:
            if timeout is not None and timeout == 0.0:
                return False
            deadline[0] = _deadline(timeout, "timeout")
            if deadline[0] == 0:  # a timeout too small to count (not 0.0): already due
                deadline[0] = 1
        return True


# goroutines.socket.socket's hot methods, defined here so that a call is one C function:
# a Python method in between would cost a frame per call (about a tenth of an echo server's
# CPU per round trip). `sock` is that socket: its _pfd (made by its _poller()) and its
# _timeout.

cdef inline _PollFd _sock_poller(sock):
    cdef object p = sock._pfd
    if p is None:
        p = sock._poller()
    return <_PollFd>p


def _sock_recv(sock, Py_ssize_t bufsize, int flags=0, /):
    """Receive up to ``bufsize`` bytes, parking the task until some arrive."""
    return _sock_poller(sock).c_recv(bufsize, flags, sock._timeout)


def _sock_recv_into(sock, buffer, Py_ssize_t nbytes=0, int flags=0, /):
    """Receive into ``buffer``, parking the task until some bytes arrive."""
    return _sock_poller(sock).c_recv_into(buffer, nbytes, flags, sock._timeout)


def _sock_send(sock, data, int flags=0, /):
    """Send ``data`` (some of it), parking the task until the socket has room."""
    return _sock_poller(sock).c_send(data, flags, sock._timeout)


def _sock_sendall(sock, data, int flags=0, /):
    """Send all of ``data``; the timeout covers the whole call, as in the stdlib. On an
    error the peer may have received part of it."""
    _sock_poller(sock).c_sendall(data, flags, sock._timeout)


cdef int _fd_park(M m, gr_pollfd *pd, uint32_t seq, int fd, int mode, int64_t deadline) except -1:
    cdef gr_waitop op
    _op(&op, GR_OP_FDREAD if mode == GR_POLL_READ else GR_OP_FDWRITE, pd)
    op.seq = seq
    op.netpoll = &_netpoll
    cdef int rc = _wait(m, m.cur, &op, deadline,
                        PARK_FD_READ if mode == GR_POLL_READ else PARK_FD_WRITE)
    if rc == GR_WAIT_OK:
        return 0
    if rc == GR_WAIT_TIMEOUT:
        raise TimeoutError("timed out")
    what = "reading" if mode == GR_POLL_READ else "writing"
    if rc == GR_WAIT_BUSY:
        raise BusyResourceError(f"another task is already waiting for file descriptor {fd} "
                                f"to be ready for {what}")
    raise OSError(EBADF, f"file descriptor {fd} was closed while a task waited on it for {what}")


cdef int _wait_fd(object fileobj, int mode, object timeout) except -1:
    """A one-off handle: it registers fd (or finds its registration) only if a task waits."""
    cdef _PollFd p = _PollFd(fileobj)
    return p.wait(mode, _deadline(timeout, "timeout"))


def wait_readable(fileobj, timeout=None) -> None:
    """Wait until ``fileobj`` (an fd, or an object with ``fileno()``) is probably readable.

    In a task the task parks on the runtime's network poller; elsewhere (outside run(),
    in a plain thread) the thread blocks in poll(2). Readiness is a hint: do the
    non-blocking call, and wait again if it says EAGAIN. Raises TimeoutError after
    ``timeout`` seconds (None: no limit; 0: check without waiting), OSError(EBADF) if the
    fd is not open or notify_closing() is called for it meanwhile, and BusyResourceError
    if another task already waits to read it. Regular files are always ready.

    Example::

        r, w = os.pipe()
        os.set_blocking(r, False)
        gr.wait_readable(r, timeout=5)
        data = os.read(r, 4096)
    """
    _wait_fd(fileobj, GR_POLL_READ, timeout)


def wait_writable(fileobj, timeout=None) -> None:
    """Wait until ``fileobj`` is probably writable; the rest is as for wait_readable().

    Example::

        gr.wait_writable(sock, timeout=5)
        n = sock.send(payload)
    """
    _wait_fd(fileobj, GR_POLL_WRITE, timeout)


def notify_closing(fileobj) -> None:
    """Tell the poller that ``fileobj`` (an fd or an object with ``fileno()``) is about to
    be closed: tasks waiting on it wake with OSError(EBADF), and its registration is
    dropped. Call it before closing an fd that tasks may wait on (goroutines.socket does
    it in close()). A no-op for an fd never waited on.

    Example::

        gr.notify_closing(fd)
        os.close(fd)
    """
    cdef int fd = _fileno(fileobj)
    cdef int w = gr_wake_begin()  # its waiters may be tasks: a wake from this thread
    gr_netpoll_close_fd(&_netpoll, fd)
    gr_wake_end(w)
