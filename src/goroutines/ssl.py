"""Cooperative TLS: a mirror of the stdlib :mod:`ssl` module over :mod:`goroutines.socket`.

Every name of the stdlib module is here. ``SSLContext.wrap_socket`` returns an ``SSLSocket``
whose handshake, reads, writes and ``unwrap()`` park the task while OpenSSL waits for the
network (SSLWantReadError / SSLWantWriteError), with the socket's timeout covering each
call, as the stdlib's does. Outside a task they block the thread, as the stdlib's do::

    import goroutines as gr
    from goroutines import socket, ssl

    def fetch(host):
        ctx = ssl.create_default_context()
        with socket.create_connection((host, 443), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(b"HEAD / HTTP/1.0\\r\\nHost: " + host.encode() + b"\\r\\n\\r\\n")
                return tls.recv(4096)

Use contexts made here (``ssl.SSLContext``, ``ssl.create_default_context()``): a stdlib
context wraps a socket into a stdlib ``SSLSocket``, which blocks the M.
"""

import ssl as _std
from ssl import *  # noqa: F403
from time import monotonic as _monotonic
from types import FunctionType as _FunctionType

from goroutines import socket as _gsocket

# The stdlib's names: the public ones by the star import (visible to type checkers), and
# the private ones too, since the functions rebound below run in this module's namespace,
# where SSLContext and create_connection are the cooperative ones.
globals().update((_k, _v) for _k, _v in vars(_std).items() if _k.startswith("_") and
                 not _k.startswith("__"))

_WANT = (_std.SSLWantReadError, _std.SSLWantWriteError)
socket = _gsocket.socket
create_connection = _gsocket.create_connection


def _tls(method):
    """Wrap a stdlib SSLSocket method: one try; on SSLWant* park until the fd is ready and
    retry, within the socket's timeout."""

    def call(self, *args):
        try:
            return method(self, *args)
        except _WANT as e:
            if self._timeout == 0.0:
                raise
            want = e
        timeout = self._timeout
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            self._wait(type(want) is _std.SSLWantWriteError, deadline)
            try:
                return method(self, *args)
            except _WANT as e:
                want = e

    call.__name__ = call.__qualname__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class SSLSocket(_std.SSLSocket, _gsocket.socket):  # type: ignore[no-redef]
    """A stdlib ``ssl.SSLSocket`` over a cooperative socket; made by
    ``SSLContext.wrap_socket`` (there is no public constructor, as in the stdlib).

    Example::

        tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                              server_hostname="localhost")
    """

    read = _tls(_std.SSLSocket.read)
    write = _tls(_std.SSLSocket.write)
    send = _tls(_std.SSLSocket.send)
    unwrap = _tls(_std.SSLSocket.unwrap)

    @classmethod
    def _create(cls, sock, server_side=False, do_handshake_on_connect=True, **kwargs):
        # The stdlib's, with the handshake done here: its cleanup catches only OSError and
        # ValueError, and a task cancelled mid-handshake (gr.Cancelled) would leave the new
        # socket, which no caller ever gets, open.
        self = super()._create(
            sock, server_side=server_side, do_handshake_on_connect=False, **kwargs
        )
        self.do_handshake_on_connect = do_handshake_on_connect
        if do_handshake_on_connect and self._connected:
            try:
                if self._timeout == 0.0:
                    raise ValueError(
                        "do_handshake_on_connect should not be specified for non-blocking "
                        "sockets"
                    )
                self.do_handshake()
            except BaseException:
                self.close()
                raise
        return self

    def do_handshake(self, block=False):
        """Perform the TLS handshake, parking while it waits for the peer. ``block=True``
        waits even when the socket is non-blocking (timeout 0.0), as the stdlib's."""
        self._check_connected()
        timeout = self._timeout
        if block and timeout == 0.0:
            timeout = None
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            try:
                self._sslobj.do_handshake()
                return
            except _WANT as e:
                if timeout == 0.0:
                    raise
                self._wait(type(e) is _std.SSLWantWriteError, deadline)


class SSLContext(_std.SSLContext):  # type: ignore[no-redef]
    """The stdlib's ``ssl.SSLContext``, whose ``wrap_socket`` makes cooperative sockets.

    Example::

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain("cert.pem", "key.pem")
    """

    sslsocket_class = SSLSocket


def _rebind(fn):
    """The stdlib function ``fn`` with this module's globals: the same code, making the
    cooperative SSLContext and connections."""
    new = _FunctionType(fn.__code__, globals(), fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__doc__ = fn.__doc__
    new.__qualname__ = fn.__qualname__
    return new


create_default_context = _rebind(_std.create_default_context)
_create_unverified_context = _rebind(_std._create_unverified_context)
_create_default_https_context = create_default_context
_create_stdlib_context = _create_unverified_context
get_server_certificate = _rebind(_std.get_server_certificate)
if hasattr(_std, "wrap_socket"):  # Python < 3.12
    wrap_socket = _rebind(_std.wrap_socket)
