"""Cooperative sockets: a drop-in mirror of the stdlib :mod:`socket` module.

Every name of the stdlib module is here (constants, exceptions, functions); ``socket`` is a
subclass of ``socket.socket`` whose blocking calls park the calling task on the runtime's
netpoller instead of blocking its M, so one M serves thousands of connections. Outside a
task (no ``run()``, a plain thread) the same calls block the thread as the stdlib's do, with
the same timeouts and exceptions::

    import goroutines as gr
    from goroutines import socket

    def echo(conn):
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def main():
        with socket.create_server(("127.0.0.1", 8000)) as srv:
            while True:
                conn, _ = srv.accept()
                gr.go(echo, conn)

How: the fd is always non-blocking; the timeout the user sets is kept here, and a call that
gets EAGAIN waits on the fd's ``_PollFd`` (readiness is a hint, so it retries in a loop)
until a deadline that covers the whole call, as CPython's does. One task at a time may wait
to read and one to write on a socket (``BusyResourceError`` otherwise), as in Go.
"""

# The stdlib's names (its __all__) come with the star import; those that block are
# redefined below.
import _socket
import errno as _errno
import io as _io
import os as _os
import socket as _std
import sys
from math import ceil as _ceil, floor as _floor
from operator import index as _index
from socket import *  # noqa: F403
from time import monotonic as _monotonic

from goroutines import _core
from goroutines._core import (
    _PollFd,
    blocking as _blocking,
    current as _current,
    notify_closing as _notify_closing,
)

__all__ = list(_std.__all__)

if sys.version_info >= (3, 11):
    _ExceptionGroup = ExceptionGroup  # noqa: F405  # a builtin
else:
    from exceptiongroup import ExceptionGroup as _ExceptionGroup  # type: ignore[import-not-found]

_GLOBAL_DEFAULT_TIMEOUT = _std._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]
# The stdlib's class and functions as they are now: gr.patch() may later replace the
# module's names with these cooperative ones, which must not then call themselves.
_StdSocket = _std.socket
_std_create_server = _std.create_server
_std_getaddrinfo = _std.getaddrinfo
_std_socketpair = _std.socketpair
_GiveupOnSendfile = _std._GiveupOnSendfile  # type: ignore[attr-defined]
_C = _socket.socket  # the C methods, called unbound: no attribute lookup on the hot path
_c_accept = _C._accept  # type: ignore[attr-defined]
_c_connect = _C.connect
_c_close = _C.close
_c_gettimeout = _C.gettimeout
_c_settimeout = _C.settimeout
_c_family = _C.family.__get__
_c_type = _C.type.__get__
_c_proto = _C.proto.__get__
_NS_LIMIT = 2**63  # CPython keeps timeouts in int64 nanoseconds
# Its error for a timeout past that, which names the type as the running CPython does.
_TOO_LARGE = "timestamp too large to convert to C " + (
    "PyTime_t" if sys.version_info >= (3, 13) else "_PyTime_t")
_CONNECTING = (_errno.EINPROGRESS, _errno.EALREADY, _errno.EINTR)


def _parse_timeout(value):
    """A timeout as the stdlib's settimeout() takes it, with its exceptions and its rounding
    (up, to whole nanoseconds in an int64): None, or seconds >= 0 as a float."""
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:
            raise ValueError("Invalid value NaN (not a number)")
        ns = value * 1e9
        if not -_NS_LIMIT <= ns < _NS_LIMIT:
            raise OverflowError(_TOO_LARGE)
        ns = _ceil(ns) if ns >= 0 else _floor(ns)  # away from zero, as CPython's timeouts
    else:
        ns = _index(value) * 10**9  # TypeError for a non-number, as in the stdlib
        if not -_NS_LIMIT <= ns < _NS_LIMIT:
            raise OverflowError(_TOO_LARGE)
    if ns < 0:
        raise ValueError("Timeout value out of range")
    return float(ns // 10**9) if ns % 10**9 == 0 else float(ns) / 1e9


def _in_task():
    try:
        return _current() is not None
    except RuntimeError:  # not on one of the runtime's threads
        return False


def _cooperative(method, writing):
    """Wrap the C socket method: one try, and on EAGAIN park until ready and retry."""

    def call(self, *args):
        try:
            return method(self, *args)
        except BlockingIOError:
            if self._timeout == 0.0:
                raise
            return self._retry(method, writing, args)

    call.__name__ = call.__qualname__ = method.__name__
    call.__doc__ = method.__doc__
    return call


def _without_inq(call):
    """Turn TCP_INQ off first (csrc/sockio.h): recvmsg would see its control messages."""

    def recv(self, *args):
        (self._pfd or self._poller()).no_inq()
        return call(self, *args)

    recv.__name__ = recv.__qualname__ = call.__name__
    recv.__doc__ = call.__doc__
    return recv


class socket(_StdSocket):  # type: ignore[no-redef]
    """A ``socket.socket`` whose blocking calls park the task (see the module's docstring).

    Example::

        from goroutines import socket

        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
    """

    __slots__ = ["_timeout", "_pfd"]  # a list, as the stdlib class's

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None:
            # Born non-blocking: no fcntl() calls; the user's timeout is the default one,
            # as the stdlib's socket starts with.
            if type == -1:
                type = _std.SOCK_STREAM
            _StdSocket.__init__(self, family, type | _std.SOCK_NONBLOCK, proto)
            self._timeout = 0.0 if type & _std.SOCK_NONBLOCK else _std.getdefaulttimeout()
        else:
            _StdSocket.__init__(self, family, type, proto, fileno)
            self._timeout = _c_gettimeout(self)
            _c_settimeout(self, 0.0)
        self._pfd = None

    # --- timeouts: the user's, kept here; the fd itself stays non-blocking -------------

    def settimeout(self, value, /):
        """Set the timeout of blocking calls: None (block), 0.0 (non-blocking) or seconds."""
        value = _parse_timeout(value)
        if self.fileno() == -1:
            raise OSError(_errno.EBADF, "Bad file descriptor")
        self._timeout = value

    def gettimeout(self):
        """The timeout in seconds (float), or None when blocking without one."""
        return self._timeout

    def setblocking(self, flag, /):
        """``setblocking(True)`` is ``settimeout(None)``, ``setblocking(False)`` is 0.0."""
        self.settimeout(None if flag else 0.0)

    def getblocking(self):
        """True unless the timeout is 0.0."""
        return self._timeout != 0.0

    timeout = property(gettimeout, doc="The timeout, as gettimeout() returns it.")

    # --- waiting -----------------------------------------------------------------------

    def _wait(self, writing, deadline):
        """Park (or block, off the runtime) until the fd is probably ready; TimeoutError
        once ``deadline`` (a monotonic time; None for none) has passed."""
        pfd = self._pfd or self._poller()
        if deadline is None:
            left = None
        else:
            left = deadline - _monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
        if writing:
            pfd.wait_writable(left)
        else:
            pfd.wait_readable(left)

    def _retry(self, method, writing, args):
        timeout = self._timeout
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            self._wait(writing, deadline)
            try:
                return method(self, *args)
            except BlockingIOError:
                pass  # readiness was a hint: wait again

    # --- I/O ---------------------------------------------------------------------------

    # The hot path: the syscall and the park are one C call (_PollFd's I/O methods).

    def _poller(self):
        fd = self.fileno()
        if fd == -1:
            raise OSError(_errno.EBADF, "Bad file descriptor")
        pfd = self._pfd = _PollFd(fd)
        pfd.tcp = (_c_family(self) in (_std.AF_INET, _std.AF_INET6)
                   and _c_type(self) & 0xF == _std.SOCK_STREAM)  # the type without its flags
        return pfd

    recv = _core._sock_recv
    recv_into = _core._sock_recv_into  # type: ignore[assignment]
    send = _core._sock_send
    sendall = _core._sock_sendall

    recvfrom = _cooperative(_C.recvfrom, False)
    recvfrom_into = _cooperative(_C.recvfrom_into, False)
    sendto = _cooperative(_C.sendto, True)
    if hasattr(_C, "recvmsg"):
        recvmsg = _without_inq(_cooperative(_C.recvmsg, False))
        recvmsg_into = _without_inq(_cooperative(_C.recvmsg_into, False))
        sendmsg = _cooperative(_C.sendmsg, True)

    def accept(self):
        """Wait for a connection; return ``(conn, address)``, ``conn`` a cooperative socket
        with the default timeout (as the stdlib's accept())."""
        try:
            fd, addr = _c_accept(self)
        except BlockingIOError:
            if self._timeout == 0.0:
                raise
            fd, addr = self._retry(_c_accept, False, ())
        return socket(_c_family(self), _c_type(self), _c_proto(self), fd), addr

    def connect(self, address, /):
        """Connect to ``address``, parking until the connection is made (or fails)."""
        if _in_task():
            address = _resolve(address, _c_family(self))
        try:
            _c_connect(self, address)
            return
        except BlockingIOError as e:
            if self._timeout == 0.0 or e.errno != _errno.EINPROGRESS:
                raise
        timeout = self._timeout
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            self._wait(True, deadline)
            err = self.getsockopt(_std.SOL_SOCKET, _std.SO_ERROR)
            if err in _CONNECTING:
                continue
            if err:
                raise OSError(err, _os.strerror(err))
            try:
                self.getpeername()
                return
            except OSError as e:  # a spurious wake-up: not connected yet
                if e.errno != _errno.ENOTCONN:
                    raise

    def connect_ex(self, address, /):
        """Like connect(), but return an errno instead of raising OSError (0 on success;
        EWOULDBLOCK on a timeout, as the stdlib's); address errors still raise."""
        try:
            self.connect(address)
        except _std.gaierror:
            raise
        except TimeoutError:
            return _errno.EWOULDBLOCK
        except OSError as e:
            if e.errno is None:
                raise
            return e.errno
        return 0

    def _sendfile_use_sendfile(self, file, offset=0, count=None):
        # The stdlib's sendfile() calls this first (and falls back to send() on
        # _GiveupOnSendfile): its os.sendfile() loop, parking where it polls, with the
        # timeout covering the whole call as for sendall().
        self._check_sendfile_params(file, offset, count)
        try:
            fileno = file.fileno()
            fsize = _os.fstat(fileno).st_size
        except (AttributeError, _io.UnsupportedOperation, OSError) as err:
            raise _GiveupOnSendfile(err) from None  # not a regular file
        if not fsize:
            return 0
        timeout = self._timeout
        if timeout == 0.0:
            raise ValueError("non-blocking sockets are not supported")
        deadline = None if timeout is None else _monotonic() + timeout
        sockno = self.fileno()
        blocksize = min(count or fsize, 2**30)
        total = 0
        try:
            while True:
                if count:
                    blocksize = count - total
                    if blocksize <= 0:
                        break
                try:
                    sent = _os.sendfile(sockno, fileno, offset, blocksize)
                except BlockingIOError:
                    self._wait(True, deadline)
                    continue
                except OSError as err:
                    if total == 0:  # e.g. a file sendfile() cannot map: use send()
                        raise _GiveupOnSendfile(err) from None
                    raise
                if sent == 0:
                    break  # EOF
                offset += sent
                total += sent
            return total
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset)

    # --- closing -----------------------------------------------------------------------

    def _drop_poller(self):
        pfd = self._pfd
        if pfd is not None:
            self._pfd = None
            pfd.close()  # a task parked on the fd wakes with OSError(EBADF)
        else:
            fd = self.fileno()
            if fd != -1:
                _notify_closing(fd)  # gr.wait_readable(sock) callers

    def _real_close(self):
        self._drop_poller()
        _c_close(self)

    def detach(self):
        """Close the socket object without closing the fd, and return the fd (which stays
        non-blocking). Tasks waiting on it wake with OSError(EBADF)."""
        if self._pfd is not None:
            self._pfd.no_inq()  # whoever reads the fd next may call recvmsg
        self._drop_poller()
        return _StdSocket.detach(self)


def _resolve(address, family):
    """An (host, port, ...) address with its host name resolved off the M (connect()
    would resolve it in C, blocking the M); numeric hosts pass through."""
    if family not in (_std.AF_INET, _std.AF_INET6) or type(address) is not tuple:
        return address
    host = address[0]
    if not isinstance(host, str) or host in ("", "<broadcast>"):  # special to CPython
        return address
    sockaddr = getaddrinfo(host, address[1], family, _std.SOCK_STREAM)[0][4]
    return (sockaddr[0], *address[1:])


def _adopt(std_sock):
    """A cooperative socket that takes over the fd of a stdlib one."""
    family, type_, proto = std_sock.family, std_sock.type, std_sock.proto
    fd = std_sock.detach()
    try:
        return socket(family, type_, proto, fd)
    except BaseException:
        _os.close(fd)
        raise


def socketpair(family=None, type=_std.SOCK_STREAM, proto=0):  # type: ignore[no-redef]
    """A pair of connected cooperative sockets (AF_UNIX by default), as the stdlib's.

    Example::

        a, b = socket.socketpair()
    """
    a, b = _std_socketpair(family, type, proto)
    return _adopt(a), _adopt(b)


def fromfd(fd, family, type, proto=0):  # type: ignore[no-redef]
    """A cooperative socket on a duplicate of ``fd``, as the stdlib's fromfd().

    Example::

        s = socket.fromfd(conn.fileno(), socket.AF_INET, socket.SOCK_STREAM)
    """
    nfd = _std.dup(fd)
    try:
        return socket(family, type, proto, nfd)
    except BaseException:
        _os.close(nfd)
        raise


def create_server(  # type: ignore[no-redef]
    address, *, family=_std.AF_INET, backlog=None, reuse_port=False, dualstack_ipv6=False
):
    """A listening cooperative socket bound to ``address``, as the stdlib's.

    Example::

        srv = socket.create_server(("127.0.0.1", 0))
        port = srv.getsockname()[1]
    """
    return _adopt(
        _std_create_server(
            address, family=family, backlog=backlog, reuse_port=reuse_port,
            dualstack_ipv6=dualstack_ipv6,
        )
    )


def create_connection(  # type: ignore[no-redef]
    address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None, *, all_errors=False
):
    """Connect to ``(host, port)`` (each address the name resolves to, in turn) and return
    the cooperative socket, as the stdlib's create_connection().

    Example::

        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"ping")
    """
    host, port = address
    errors = []
    for af, socktype, proto, _canonname, sockaddr in getaddrinfo(host, port, 0,
                                                                 _std.SOCK_STREAM):
        sock = socket(af, socktype, proto)
        try:
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            if not all_errors:
                errors.clear()
            errors.append(exc)
        except BaseException:
            sock.close()
            raise
    if not errors:
        raise OSError("getaddrinfo returns an empty list")
    try:
        if not all_errors:
            raise errors[0]
        raise _ExceptionGroup("create_connection failed", errors)
    finally:
        errors.clear()  # break the cycle traceback -> frame -> errors -> exception


def _offloaded(fn):
    """``fn`` run on the offload pool when called from a task (it may block on DNS)."""

    def call(*args, **kwargs):
        if _in_task():
            return _blocking(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    call.__name__ = call.__qualname__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # type: ignore[no-redef]
    """The stdlib's getaddrinfo(); in a task a name lookup runs on the offload pool (numeric
    addresses are resolved at once).

    Example::

        infos = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    """
    if _in_task():
        try:
            return _std_getaddrinfo(host, port, family, type, proto, flags | _std.AI_NUMERICHOST)
        except _std.gaierror:
            return _blocking(_std_getaddrinfo, host, port, family, type, proto, flags)
    return _std_getaddrinfo(host, port, family, type, proto, flags)


gethostbyname = _offloaded(_std.gethostbyname)
gethostbyname_ex = _offloaded(_std.gethostbyname_ex)
gethostbyaddr = _offloaded(_std.gethostbyaddr)
getnameinfo = _offloaded(_std.getnameinfo)
getfqdn = _offloaded(_std.getfqdn)
