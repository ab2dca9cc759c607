"""``gr.patch()`` and ``gr.unpatch()``: make the stdlib's blocking calls cooperative.

``patch()`` replaces attributes of the stdlib ``socket``, ``ssl``, ``time``, ``select`` and
``selectors`` modules with the cooperative versions from ``goroutines.socket``,
``goroutines.ssl``, ``goroutines.fdselect`` and ``goroutines.selectors`` (and a cooperative
``time.sleep`` defined here), so that unmodified code (``http.client``, ``urllib.request``,
``requests``...) parks the calling task where it would block its M. Every replacement runs
the original, unchanged, when it is not called from a task. ``unpatch()`` puts every
original back. See docs/patch.md for the rules (call it first, before importing clients).
"""
import importlib
import math
import operator
import sys
import threading
import time as _stdtime
import warnings
from typing import Any

from goroutines import _core

# goroutines imports this module: what patch() installs is imported when it runs.
__all__ = ["patch", "unpatch", "sleep"]

_std_sleep = _stdtime.sleep
_TIME_T_MAX = 2**63 - 1  # CPython keeps timeouts as int64 nanoseconds (_PyTime_t)
# Its error past that, naming the type as the running CPython does.
_TOO_LARGE = "timestamp too large to convert to C " + (
    "PyTime_t" if sys.version_info >= (3, 13) else "_PyTime_t")
# A float past it: 3.11 gave that its own message; 3.10 says the same as for an int.
_FLOAT_TOO_LARGE = (
    "timestamp out of range for platform time_t" if sys.version_info >= (3, 11) else _TOO_LARGE)

# The stdlib socket names goroutines.socket replaces; each is patched when goroutines.socket
# defines its own (not the stdlib's object re-exported).
_SOCKET_NAMES = (
    "socket",
    "SocketType",
    "create_connection",
    "create_server",
    "socketpair",
    "fromfd",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname_ex",
    "gethostbyaddr",
    "getnameinfo",
    "getfqdn",
)
_SELECTOR_NAMES = ("DefaultSelector", "SelectSelector", "PollSelector", "EpollSelector")

_MISSING = object()
_lock = threading.Lock()
# (owner, attribute) -> the owner's own value before patch() (_MISSING: it had none), in
# patching order; an entry means "patched".
_saved: dict[tuple[object, str], object] = {}


def _in_task() -> bool:
    """True when the caller is a task (the cooperative path), False anywhere else."""
    try:
        return _core.current() is not None
    except RuntimeError:  # not one of the runtime's threads
        return False


def _to_ns(value: Any, unit_ns: int, typeerror: str | None) -> int:
    """``value`` (a float, or an int-like) in ``unit_ns`` units as int64 nanoseconds,
    raising what CPython's _PyTime_FromSecondsObject raises for it; ``typeerror`` replaces
    the message of a TypeError, as the stdlib callers do."""
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("Invalid value NaN (not a number)")
        ns = value * unit_ns
        if not -_TIME_T_MAX <= ns <= _TIME_T_MAX:
            raise OverflowError(_FLOAT_TOO_LARGE)
        return math.ceil(ns) if ns >= 0 else math.floor(ns)  # _PyTime_ROUND_TIMEOUT
    try:
        n = operator.index(value)
    except TypeError:
        if typeerror is None:
            raise
        raise TypeError(typeerror) from None
    if not -_TIME_T_MAX <= n * unit_ns <= _TIME_T_MAX:
        raise OverflowError(_TOO_LARGE)
    return n * unit_ns


def sleep(secs: float) -> None:
    """``time.sleep`` that parks the calling task (other tasks run on its M meanwhile);
    outside a task it is the stdlib's ``time.sleep``. Same arguments and errors.

    Example::

        gr.patch()
        time.sleep(0.5)   # in a task: like gr.sleep(0.5)
    """
    if not _in_task():
        return _std_sleep(secs)
    ns = _to_ns(secs, 10**9, None)
    if ns < 0:
        raise ValueError("sleep length must be non-negative")
    _core.sleep(ns / 1e9)


_Item = tuple[Any, str, Any]  # (owner: a module or class, attribute name, new value)


def _replacements(
    socket: bool, ssl: bool, time: bool, select: bool, selectors: bool
) -> list[_Item]:
    """The ``(owner, attribute, new value)`` triples the flags ask for."""
    items: list[_Item] = []
    if socket:
        stdsocket = importlib.import_module("socket")
        gsocket = importlib.import_module("goroutines.socket")
        # ssl subclasses socket.socket when it is imported: imported after the swap, its
        # SSLSocket would build on the cooperative socket (non-blocking fd) without its
        # wrappers, and raise SSLWantReadError with ssl=False.
        importlib.import_module("ssl")
        for name in _SOCKET_NAMES:
            new = getattr(gsocket, name, _MISSING)
            if new is not _MISSING and new is not getattr(stdsocket, name, _MISSING):
                items.append((stdsocket, name, new))
    if ssl:
        gssl = importlib.import_module("goroutines.ssl")
        stdssl = importlib.import_module("ssl")
        # In place, on the stdlib class: every context then wraps into cooperative sockets,
        # including those made by code that imported ssl.SSLContext before patch().
        items.append((stdssl.SSLContext, "sslsocket_class", gssl.SSLContext.sslsocket_class))
        # ssl imported create_connection from socket (get_server_certificate uses it).
        items.append((stdssl, "create_connection", gssl.create_connection))
    if time:
        items.append((_stdtime, "sleep", sleep))
    if select:
        stdselect = importlib.import_module("select")
        gselect = importlib.import_module("goroutines.fdselect")
        items.append((stdselect, "select", gselect.select))
        items.append((stdselect, "poll", gselect.poll))
    if selectors:
        stdselectors = importlib.import_module("selectors")
        gselectors = importlib.import_module("goroutines.selectors")
        items.extend((stdselectors, n, getattr(gselectors, n)) for n in _SELECTOR_NAMES)
    return items


def _captured(items: list[_Item]) -> list[str]:
    """Modules already imported that hold one of the originals being replaced as a global
    (``from time import sleep``): those keep calling the blocking original."""
    originals = {}
    for owner, name, _new in items:
        if isinstance(owner, type(sys)):
            value = getattr(owner, name, _MISSING)
            originals[id(value)] = (value, f"{owner.__name__}.{name}")
    owners = {owner.__name__ for owner, _n, _v in items if isinstance(owner, type(sys))}
    # The C modules the stdlib ones re-export, and ssl: patched with ssl=True, and its
    # copies of socket names are what the user chose to keep with ssl=False.
    owners |= {"_socket", "_ssl", "ssl"}
    found = []
    for modname, mod in list(sys.modules.items()):
        namespace = getattr(mod, "__dict__", None)
        if (
            not isinstance(namespace, dict)
            or modname in owners
            or modname.split(".")[0] == "goroutines"
        ):
            continue
        for attr, value in list(namespace.items()):
            hit = originals.get(id(value))
            if hit is not None and hit[0] is value:
                found.append(f"{modname}.{attr} is {hit[1]}")
    return found


def patch(
    *,
    socket: bool = True,
    ssl: bool = True,
    time: bool = True,
    select: bool = True,
    selectors: bool = True,
) -> None:
    """Replace the stdlib's blocking socket, ssl, time.sleep, select and selectors calls
    with cooperative ones, so unmodified libraries park the calling task instead of
    blocking its M. Call it first thing in the main module, before importing the libraries
    that use them (a ``warnings.warn`` names those imported earlier that kept an original).

    Idempotent: patching again changes nothing, and a flag set to False leaves that module
    as it is (patched or not). Outside a task every replacement is the original call.
    ``unpatch()`` restores the originals.

    Example::

        import goroutines as gr
        gr.patch()
        import urllib.request   # after patch(), as every client library

        def get(url: str) -> bytes:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.read()

        def main() -> list[bytes]:
            tasks = [gr.go(get, url) for url in urls]   # the requests overlap
            return [t.join() for t in tasks]

        pages = gr.run(main)
    """
    with _lock:
        items = [
            (owner, name, new)
            for owner, name, new in _replacements(socket, ssl, time, select, selectors)
            if (owner, name) not in _saved
        ]
        captured = _captured(items)
        for owner, name, new in items:
            _saved[(owner, name)] = vars(owner).get(name, _MISSING)
            setattr(owner, name, new)
    if captured:
        shown = ", ".join(captured[:8]) + (", ..." if len(captured) > 8 else "")
        warnings.warn(
            "gr.patch() was called after modules that keep the blocking originals were "
            f"imported: {shown}. Call gr.patch() before importing them.",
            RuntimeWarning,
            stacklevel=2,
        )


def unpatch() -> None:
    """Undo every ``patch()``: put back each original stdlib object (the same objects).
    A no-op when nothing is patched.

    Example::

        import time
        gr.patch()
        try:
            gr.run(time.sleep, 0.1)   # the main task parks for 0.1 s
        finally:
            gr.unpatch()
    """
    with _lock:
        for (owner, name), original in reversed(list(_saved.items())):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        _saved.clear()
