"""goroutines.socket: the cooperative mirror of the stdlib socket module.

Real loopback sockets throughout: echo servers and clients as tasks at procs 1 and 2,
timeouts in tasks and in plain threads, cancellation and close of a task parked on a
socket, a peer reset mid-sendall, http.client and urllib.request against a server built on
these sockets, makefile round trips, bad input, descriptor leaks over 10,000 connections,
the stdlib's behaviour outside run(), and many idle connections beside an active one.
"""

import errno
import http.client
import http.server
import io
import os
import socket as std_socket
import struct
import sys
import threading
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import goroutines as gr
from goroutines import socket

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

LOCAL = ("127.0.0.1", 0)


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def echo(conn):
    """Echo until the peer closes (the server side of most tests)."""
    with conn:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:  # closed by serve() as the test ends
            pass


def serve(srv, handler):
    """Accept on srv until it is closed, a handler task per connection; then close the
    connections still open (a task cancelled before it started would leave its own)."""
    conns = []
    try:
        while True:
            try:
                conn, addr = srv.accept()
            except OSError:
                return
            conns.append(conn)
            gr.go(handler, conn, addr)
    finally:
        for conn in conns:
            conn.close()


def echo_server(srv):
    serve(srv, lambda conn, addr: echo(conn))


def recv_exactly(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise EOFError("peer closed early")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


# --- the module mirrors the stdlib ---------------------------------------------------------


def test_module_has_every_stdlib_name():
    missing = [name for name in std_socket.__all__ if not hasattr(socket, name)]
    assert missing == []
    assert socket.AF_INET == std_socket.AF_INET
    assert socket.timeout is std_socket.timeout is TimeoutError
    assert socket.error is OSError
    assert issubclass(socket.socket, std_socket.socket)


@pytest.mark.parametrize("mod", [std_socket, socket], ids=["stdlib", "goroutines"])
def test_arguments_are_positional_only_as_in_the_stdlib(mod):
    with mod.socket() as s:
        for call in (lambda: s.settimeout(value=1), lambda: s.setblocking(flag=True),
                     lambda: s.recv(bufsize=1), lambda: s.sendall(data=b"x"),
                     lambda: s.connect(address=("127.0.0.1", 1))):
            with pytest.raises(TypeError):
                call()


def test_new_socket_takes_the_default_timeout():
    before = std_socket.getdefaulttimeout()
    std_socket.setdefaulttimeout(2.5)
    try:
        with socket.socket() as s:
            assert s.gettimeout() == 2.5 and s.timeout == 2.5 and s.getblocking()
    finally:
        std_socket.setdefaulttimeout(before)
    with socket.socket() as s:
        assert s.gettimeout() is None and s.getblocking()
    # as in the stdlib, SOCK_NONBLOCK in the type means timeout 0.0
    for mod in (socket, std_socket):
        with mod.socket(mod.AF_INET, mod.SOCK_STREAM | mod.SOCK_NONBLOCK) as s:
            assert s.gettimeout() == 0.0 and s.type == mod.SOCK_STREAM


def test_settimeout_setblocking_round_trip():
    with socket.socket() as s:
        s.settimeout(3)
        assert s.gettimeout() == 3.0 and isinstance(s.gettimeout(), float)
        s.setblocking(False)
        assert s.gettimeout() == 0.0 and not s.getblocking()
        s.setblocking(True)
        assert s.gettimeout() is None
        # the fd itself stays non-blocking whatever the user's timeout
        assert os.get_blocking(s.fileno()) is False


# --- echo: many tasks, nothing lost or duplicated --------------------------------------------


def test_concurrent_echo_loses_and_duplicates_nothing(grun):
    clients, rounds = 40, 25

    def client(port, cid, seen):
        with socket.create_connection(("127.0.0.1", port)) as conn:
            for r in range(rounds):
                # sizes from 1 byte to ~70 KiB: some need several sends and recvs
                body = bytes([cid % 256]) * (1 + (cid * 997 + r * 7919) % 70000)
                msg = struct.pack("!III", cid, r, len(body)) + body
                conn.sendall(msg)
                back = recv_exactly(conn, len(msg))
                assert back == msg
                seen.append((cid, r))

    def main():
        srv = socket.create_server(LOCAL)
        port = srv.getsockname()[1]
        gr.go(echo_server, srv)
        seen = []
        with gr.TaskGroup() as tg:
            for cid in range(clients):
                tg.go(client, port, cid, seen)
        srv.close()
        return seen

    seen = grun(main)
    assert sorted(seen) == [(c, r) for c in range(clients) for r in range(rounds)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=0, max_size=300_000), max_size=6))
def test_sendall_then_recv_returns_the_same_bytes(chunks):
    def main():
        a, b = socket.socketpair()
        total = sum(map(len, chunks))

        def writer():
            for c in chunks:
                a.sendall(c)
            a.close()

        gr.go(writer)
        got = bytearray()
        while data := b.recv(total + 1 or 1):
            got += data
        b.close()
        return bytes(got)

    assert gr.run(main, procs=1) == b"".join(chunks)


def test_recv_into_recvfrom_into_and_memoryview_sendall(grun):
    def main():
        a, b = socket.socketpair()
        with a, b:
            payload = memoryview(struct.pack("!4i", 1, 2, 3, 4)).cast("i")  # len 4, 16 bytes
            a.sendall(payload)
            buf = bytearray(16)
            n = b.recv_into(buf)
            while n < 16:
                n += b.recv_into(memoryview(buf)[n:])
            a.send(b"xyz")
            buf2 = bytearray(8)
            m, _ = b.recvfrom_into(buf2)
            return bytes(buf), bytes(buf2[:m])

    assert grun(main) == (struct.pack("!4i", 1, 2, 3, 4), b"xyz")


def test_send_fds_and_recv_fds_over_sendmsg_and_recvmsg(grun):
    def main():
        a, b = socket.socketpair()
        r, w = os.pipe()
        t = gr.go(socket.recv_fds, b, 100, 1)  # parks in recvmsg: nothing sent yet
        gr.sleep(0.01)
        socket.send_fds(a, [b"here"], [w])
        msg, fds, _flags, _addr = t.join()
        os.write(fds[0], b"via the passed fd")
        got = os.read(r, 100)
        for fd in (r, w, *fds):
            os.close(fd)
        a.close()
        b.close()
        return msg, got

    assert grun(main) == (b"here", b"via the passed fd")


def test_udp_sendto_recvfrom(grun):
    def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as cli:
            srv.bind(LOCAL)

            def serve():
                data, addr = srv.recvfrom(100)  # parks: nothing sent yet
                srv.sendto(data.upper(), addr)

            t = gr.go(serve)
            gr.sleep(0.01)
            cli.sendto(b"ping", srv.getsockname())
            data, addr = cli.recvfrom(100)
            t.join()
            return data, addr == srv.getsockname()

    assert grun(main) == (b"PING", True)


def test_accept_returns_cooperative_sockets_with_the_default_timeout(grun):
    def main():
        with socket.create_server(LOCAL) as srv:
            srv.settimeout(5)
            with socket.create_connection(srv.getsockname()):
                conn, addr = srv.accept()
                with conn:
                    return type(conn), conn.gettimeout(), addr[0]

    assert grun(main) == (socket.socket, None, "127.0.0.1")


def test_connect_resolves_host_names_in_a_task(grun):
    def main():
        with socket.create_server(LOCAL) as srv:
            port = srv.getsockname()[1]
            with socket.socket() as c:
                c.connect(("localhost", port))
                conn, _ = srv.accept()
                conn.close()
                return c.getpeername()[0]

    assert grun(main) == "127.0.0.1"


def test_getaddrinfo_in_a_task_matches_the_stdlib(grun):
    def main():
        return (
            socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM),
            socket.getaddrinfo("127.0.0.1", "80", type=socket.SOCK_STREAM),
            socket.gethostbyname("localhost"),
        )

    got = grun(main)
    assert got == (
        std_socket.getaddrinfo("localhost", 80, std_socket.AF_INET, std_socket.SOCK_STREAM),
        std_socket.getaddrinfo("127.0.0.1", "80", type=std_socket.SOCK_STREAM),
        std_socket.gethostbyname("localhost"),
    )


def test_getaddrinfo_failure_raises_gaierror(grun):
    def main():
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("no-such-host.invalid", 80)

    grun(main)


def test_dup_and_fromfd_give_cooperative_sockets(grun):
    def main():
        a, b = socket.socketpair()
        a.settimeout(4)
        d = a.dup()
        f = socket.fromfd(b.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
        with a, b, d, f:
            d.sendall(b"via dup")
            got = recv_exactly(f, 7)
            return type(d), d.gettimeout(), type(f), got

    assert grun(main) == (socket.socket, 4.0, socket.socket, b"via dup")


def test_makefile_readline_round_trips(grun):
    lines = [f"line {i}: {'x' * (i * 37 % 5000)}\n" for i in range(200)]

    def serve(conn):
        with conn, conn.makefile("rb") as rf, conn.makefile("wb") as wf:
            for line in rf:
                wf.write(line.upper())
                wf.flush()

    def main():
        srv = socket.create_server(LOCAL)
        gr.go(lambda: serve(srv.accept()[0]))
        got = []
        with socket.create_connection(srv.getsockname()) as c:
            with c.makefile("w", encoding="utf-8") as wf, c.makefile("r", encoding="utf-8") as rf:
                for line in lines:
                    wf.write(line)
                    wf.flush()
                    got.append(rf.readline())
        srv.close()
        return got

    assert grun(main) == [line.upper() for line in lines]


@pytest.mark.parametrize("source", ["file", "bytesio"])
def test_sendfile_sends_the_rest_of_the_file(grun, tmp_path, source):
    """os.sendfile() for a regular file, send() for anything else; both park when the
    peer's buffer is full, and leave the file's position after what they sent."""
    data = os.urandom(3_000_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)

    def main():
        with socket.create_server(LOCAL) as srv:
            a = socket.create_connection(srv.getsockname())
            b, _ = srv.accept()

            def send():
                with a, (open(path, "rb") if source == "file" else io.BytesIO(data)) as f:
                    n = a.sendfile(f, offset=1000, count=2_500_000)
                    return n, f.tell()

            t = gr.go(send)
            got = bytearray()
            with b:
                while chunk := b.recv(65536):
                    got += chunk
            return t.join(), bytes(got)

    (sent, pos), got = grun(main)
    assert sent == 2_500_000 and pos == 2_501_000 and got == data[1000:2_501_000]


def test_two_tasks_reading_one_socket_one_is_busy(grun):
    """One reader slot per socket, as in Go: the second concurrent reader is refused."""

    def main():
        a, b = socket.socketpair()

        def reader():
            try:
                return b.recv(10)
            except gr.BusyResourceError:
                return "busy"

        first = gr.go(reader)
        second = gr.go(reader)
        while not (first.done() or second.done()):  # one is refused, the other parks
            gr.sleep(0.001)
        a.sendall(b"x")
        got = sorted([first.join(), second.join()], key=str)
        a.close()
        b.close()
        return got

    assert grun(main) == [b"x", "busy"]


def test_connect_ex_and_create_connection_options(grun):
    def main():
        with socket.create_server(LOCAL) as srv:
            with socket.socket() as s:
                ok = s.connect_ex(srv.getsockname())
            srv.accept()[0].close()
            with socket.create_connection(
                srv.getsockname(), timeout=2, source_address=("127.0.0.1", 0)
            ) as c:
                conn, addr = srv.accept()
                conn.close()
                return ok, c.gettimeout(), c.getsockname()[1] == addr[1]

    assert grun(main) == (0, 2.0, True)


# --- timeouts --------------------------------------------------------------------------------


def test_recv_timeout_in_a_task(grun):
    def main():
        a, b = socket.socketpair()
        with a, b:
            b.settimeout(0.05)
            with pytest.raises(TimeoutError, match="timed out"):
                b.recv(10)
            with pytest.raises(socket.timeout):  # the same class
                b.recv_into(bytearray(10))
            a.sendall(b"late")  # the socket still works after a timeout
            return b.recv(10)

    assert grun(main) == b"late"


def test_timeout_parks_only_its_task(grun):
    """While one task waits out a timeout, the others on the same M keep running."""

    def main():
        a, b = socket.socketpair()
        b.settimeout(0.2)
        ticks = []

        def ticker():
            for _ in range(5):
                ticks.append(1)
                gr.sleep(0.001)

        gr.go(ticker)
        with pytest.raises(TimeoutError):
            b.recv(1)
        a.close()
        b.close()
        return len(ticks)

    assert grun(main) == 5


def test_accept_timeout(grun):
    def main():
        with socket.create_server(LOCAL) as srv:
            srv.settimeout(0.05)
            with pytest.raises(TimeoutError):
                srv.accept()

    grun(main)


def connect_until_timeout(mod):
    """Connect to a listener that never accepts until its backlog is full and a connect
    times out (Linux drops the SYN then); return what connect() and connect_ex() did."""
    srv = mod.create_server(LOCAL, backlog=1)
    held = []
    try:
        for _ in range(20):
            c = mod.socket()
            c.settimeout(0.1)
            try:
                c.connect(srv.getsockname())
            except TimeoutError as e:
                c.close()
                with mod.socket() as d:
                    d.settimeout(0.1)
                    return str(e), d.connect_ex(srv.getsockname())
            held.append(c)
        return None
    finally:
        for c in held:
            c.close()
        srv.close()


def test_connect_timeout_in_a_task(grun):
    assert grun(connect_until_timeout, socket) == ("timed out", errno.EWOULDBLOCK)


@pytest.mark.parametrize("mod", [std_socket, socket], ids=["stdlib", "goroutines"])
def test_connect_timeout_outside_run(mod):
    assert connect_until_timeout(mod) == ("timed out", errno.EWOULDBLOCK)


def test_sendall_timeout_covers_the_whole_call(grun):
    def main():
        a, b = socket.socketpair()
        with a, b:
            a.settimeout(0.1)
            # the peer never reads: the buffers fill and sendall times out
            with pytest.raises(TimeoutError):
                a.sendall(b"x" * 50_000_000)

    grun(main)


def test_timeout_zero_raises_blocking_io_error(grun):
    def main():
        with socket.create_server(LOCAL) as srv:
            srv.setblocking(False)
            with pytest.raises(BlockingIOError):
                srv.accept()
            a, b = socket.socketpair()
            with a, b:
                b.setblocking(False)
                with pytest.raises(BlockingIOError):
                    b.recv(1)
                a.setblocking(False)
                with pytest.raises(BlockingIOError):
                    a.sendall(b"x" * 50_000_000)

    grun(main)


def test_timeouts_in_a_plain_thread():
    errors = []

    def body():
        a, b = socket.socketpair()
        with a, b:
            b.settimeout(0.05)
            try:
                b.recv(1)
            except TimeoutError as e:
                errors.append(e)
            b.settimeout(0.0)
            try:
                b.recv(1)
            except BlockingIOError as e:
                errors.append(e)

    th = threading.Thread(target=body)
    th.start()
    th.join()
    assert [type(e) for e in errors] == [TimeoutError, BlockingIOError]


# --- cancellation, close, reset ------------------------------------------------------------


def test_cancel_a_task_parked_in_recv(grun):
    def main():
        a, b = socket.socketpair()

        def reader():
            return b.recv(10)

        t = gr.go(reader)
        gr.sleep(0.01)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        # the socket is still usable, then closable
        a.sendall(b"after")
        got = b.recv(10)
        a.close()
        b.close()
        return got, t.cancelled()

    assert grun(main) == (b"after", True)


def errno_after_close(wait, *closing):
    """In a task: start wait() in another task, close `closing` while it waits, and return
    the errno of the OSError it raised (None if it returned)."""

    def waiter():
        try:
            wait()
        except OSError as e:
            return e.errno
        return None

    t = gr.go(waiter)
    gr.sleep(0.01)
    for s in closing:
        s.close()
    return t.join()


def test_close_from_another_task_wakes_the_waiter_with_ebadf(grun):
    def main():
        a, b = socket.socketpair()
        return errno_after_close(lambda: b.recv(10), b, a)

    assert grun(main) == errno.EBADF


def test_close_wakes_a_task_in_wait_readable_on_the_socket(grun):
    """gr.wait_readable(sock) from user code: close() tells the poller about it too."""

    def main():
        a, b = socket.socketpair()
        return errno_after_close(lambda: gr.wait_readable(b), b, a)

    assert grun(main) == errno.EBADF


def test_close_wakes_a_task_parked_in_accept(grun):
    def main():
        srv = socket.create_server(LOCAL)
        return errno_after_close(srv.accept, srv)

    assert grun(main) == errno.EBADF


def test_peer_reset_mid_sendall_raises_oserror(grun):
    def main():
        with socket.create_server(LOCAL) as srv:
            c = socket.create_connection(srv.getsockname())
            conn, _ = srv.accept()

            def reset_soon():
                conn.recv(1000)  # the sender has started
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()  # with linger 0: an RST

            gr.go(reset_soon)
            with c, pytest.raises(OSError) as info:
                c.sendall(b"x" * 200_000_000)
            return info.value.errno

    assert grun(main) in (errno.ECONNRESET, errno.EPIPE)


def test_connect_refused(grun):
    def main():
        with socket.create_server(LOCAL) as srv:
            addr = srv.getsockname()
        # nothing listens there any more
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(addr)
        with socket.socket() as s:
            assert s.connect_ex(addr) == errno.ECONNREFUSED
        with pytest.raises(ExceptionGroup) as info:
            socket.create_connection(addr, all_errors=True)
        return [type(e) for e in info.value.exceptions]

    assert grun(main) == [ConnectionRefusedError]


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("mod", [std_socket, socket], ids=["stdlib", "goroutines"])
@pytest.mark.parametrize(
    "value, exc",
    [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError), (-0.5, ValueError)],
)
def test_bad_timeouts_raise_as_in_the_stdlib(mod, value, exc):
    with mod.socket() as s, pytest.raises(exc):
        s.settimeout(value)


def settimeout_outcome(mod, value):
    with mod.socket() as s:
        try:
            s.settimeout(value)
        except Exception as e:
            return type(e)
        return s.gettimeout()


@given(
    st.one_of(
        st.none(),
        st.floats(),
        st.integers(),
        st.integers(-(2**63) // 10**9 - 2, 2**63 // 10**9 + 2),
        st.floats(9.2e9, 9.3e9),
        st.booleans(),
        st.text(max_size=3),
    )
)
def test_settimeout_accepts_and_rejects_what_the_stdlib_does(value):
    theirs = settimeout_outcome(std_socket, value)
    ours = settimeout_outcome(socket, value)
    assert ours == theirs or (ours != ours and theirs != theirs)


@pytest.mark.parametrize("mod", [std_socket, socket], ids=["stdlib", "goroutines"])
def test_closed_socket_raises_ebadf(mod):
    a, b = mod.socketpair()
    b.close()
    a.close()
    for call in (lambda: a.recv(1), lambda: a.send(b"x"), lambda: a.sendall(b"x"),
                 lambda: a.recv_into(bytearray(1)), lambda: a.settimeout(1)):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF
    srv = mod.create_server(LOCAL)
    srv.close()
    with pytest.raises(OSError) as info:
        srv.accept()
    assert info.value.errno == errno.EBADF


def test_closed_socket_raises_ebadf_in_a_task(grun):
    def main():
        a, b = socket.socketpair()
        a.close()
        b.close()
        with pytest.raises(OSError) as info:
            a.recv(1)
        return info.value.errno

    assert grun(main) == errno.EBADF


@pytest.mark.parametrize("mod", [std_socket, socket], ids=["stdlib", "goroutines"])
def test_fromfd_bad_input(mod):
    with pytest.raises(TypeError):
        mod.fromfd("not an fd", mod.AF_INET, mod.SOCK_STREAM)
    with pytest.raises(TypeError):
        mod.fromfd(io.BytesIO(), mod.AF_INET, mod.SOCK_STREAM)
    with pytest.raises(OSError):
        mod.fromfd(-1, mod.AF_INET, mod.SOCK_STREAM)
    r, w = os.pipe()
    try:
        with pytest.raises(OSError) as info:  # a pipe is not a socket
            mod.fromfd(r, mod.AF_INET, mod.SOCK_STREAM)
        assert info.value.errno == errno.ENOTSOCK
    finally:
        os.close(r)
        os.close(w)


def test_fromfd_of_a_non_socket_closes_its_duplicate():
    r, w = os.pipe()
    before = open_fds()
    try:
        with pytest.raises(OSError):
            socket.fromfd(r, socket.AF_INET, socket.SOCK_STREAM)
        assert open_fds() == before  # the stdlib's leaks it
    finally:
        os.close(r)
        os.close(w)


# --- descriptors ---------------------------------------------------------------------------


def test_ten_thousand_connections_leave_no_fd_behind():
    def main():
        srv = socket.create_server(LOCAL, backlog=128)
        addr = srv.getsockname()

        def acceptor():
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                conn.close()  # the server closes first: TIME_WAIT stays off the client ports

        gr.go(acceptor)
        for _ in range(10_000):
            c = socket.create_connection(addr)
            assert c.recv(1) == b""
            c.close()
        srv.close()

    gr.run(main, procs=1)  # warm up: the first run creates the runtime's own fds
    before = open_fds()
    gr.run(main, procs=1)
    assert open_fds() == before


# --- outside run(): the stdlib's behaviour ---------------------------------------------------


def scenario(mod):
    """The main calls, with what they returned or raised, for comparing two modules."""
    out = []
    srv = mod.create_server(LOCAL)
    addr = srv.getsockname()
    out.append(type(srv).__name__)
    srv.settimeout(0.05)
    try:
        srv.accept()
    except TimeoutError as e:
        out.append(("accept", type(e).__name__, str(e)))
    c = mod.create_connection(addr, timeout=3)
    conn, _ = srv.accept()
    out.append(("timeouts", c.gettimeout(), conn.gettimeout(), c.getblocking()))
    c.sendall(b"hello " * 1000)
    out.append(("recv", len(recv_exactly(conn, 6000))))
    conn.settimeout(0.05)
    try:
        conn.recv(1)
    except TimeoutError as e:
        out.append(("recv", type(e).__name__, str(e)))
    conn.setblocking(False)
    try:
        conn.recv(1)
    except BlockingIOError as e:
        out.append(("nonblocking", e.errno))
    with c.makefile("wb") as wf:
        wf.write(b"a line\n")
    conn.setblocking(True)
    with conn.makefile("rb") as rf:
        out.append(("readline", rf.readline()))
    c.close()
    out.append(("eof", conn.recv(10)))
    conn.close()
    srv.close()
    try:
        mod.create_connection(addr)
    except OSError as e:
        out.append(("refused", type(e).__name__))
    return out


def test_outside_run_calls_behave_like_the_stdlib():
    ours = scenario(socket)
    theirs = scenario(std_socket)
    assert ours[0] == "socket" and ours[1:] == theirs[1:]


def test_plain_thread_calls_behave_like_the_stdlib():
    results = {}

    def body(mod):
        results[mod.__name__] = scenario(mod)

    threads = [threading.Thread(target=body, args=(m,)) for m in (socket, std_socket)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results["goroutines.socket"][1:] == results["socket"][1:]


def test_plain_thread_beside_a_run():
    """A plain thread uses the cooperative sockets while run() serves them in tasks."""

    def main():
        srv = socket.create_server(LOCAL)
        gr.go(echo_server, srv)
        got = []

        def client():
            with socket.create_connection(srv.getsockname()) as c:
                for i in range(50):
                    c.sendall(b"%d\n" % i)
                    got.append(recv_exactly(c, len(b"%d\n" % i)))

        th = threading.Thread(target=client)
        th.start()
        while th.is_alive():
            gr.sleep(0.005)
        srv.close()
        return got

    assert gr.run(main, procs=1) == [b"%d\n" % i for i in range(50)]


# --- the stdlib's clients over these sockets ------------------------------------------------


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def do_GET(self):
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def http_server(srv):
    """BaseHTTPRequestHandler per connection, over the cooperative sockets' makefile."""

    def handle(conn, addr):
        with conn:
            try:
                Hello(conn, addr, None)
            except OSError:  # closed by serve() as the test ends
                pass

    serve(srv, handle)


class Connection(http.client.HTTPConnection):
    """http.client's connection, connecting with goroutines.socket (no patching)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = socket.create_connection


class Handler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(Connection, req)


def test_http_client_against_a_cooperative_server(grun):
    def client(port, n):
        conn = Connection("127.0.0.1", port, timeout=10)
        out = []
        for i in range(n):  # one keep-alive connection
            conn.request("GET", f"/{i}")
            resp = conn.getresponse()
            out.append((resp.status, resp.read()))
        conn.close()
        return out

    def main():
        srv = socket.create_server(LOCAL)
        port = srv.getsockname()[1]
        gr.go(http_server, srv)
        tasks = [gr.go(client, port, 10) for _ in range(8)]
        results = [t.join() for t in tasks]
        srv.close()
        return results

    expected = [(200, f"hello /{i}".encode()) for i in range(10)]
    assert grun(main) == [expected] * 8


def test_urllib_request_against_a_cooperative_server(grun):
    def main():
        srv = socket.create_server(LOCAL)
        port = srv.getsockname()[1]
        gr.go(http_server, srv)
        opener = urllib.request.build_opener(Handler)
        with opener.open(f"http://127.0.0.1:{port}/urllib", timeout=10) as resp:
            got = resp.status, resp.read()
        srv.close()
        return got

    assert grun(main) == (200, b"hello /urllib")


# --- many idle connections -----------------------------------------------------------------


def test_idle_connections_do_not_starve_an_active_client(grun):
    """The issue's opening symptom: 250 idle connections (each with a task parked in
    recv) and a new client still gets its echo."""

    def main():
        srv = socket.create_server(LOCAL, backlog=512)
        addr = srv.getsockname()
        gr.go(echo_server, srv)
        idle = [socket.create_connection(addr) for _ in range(250)]
        for c in idle[:5]:  # the idle connections are served too
            c.sendall(b"?")
            assert c.recv(1) == b"?"
        with socket.create_connection(addr, timeout=10) as active:
            active.sendall(b"ping")
            reply = recv_exactly(active, 4)
        for c in idle:
            c.close()
        srv.close()
        return reply

    assert grun(main) == b"ping"


def test_closing_a_makefile_keeps_the_socket_open_until_both_close(grun):
    def main():
        a, b = socket.socketpair()
        f = b.makefile("rb")
        b.close()  # the file still holds the socket open
        a.sendall(b"still here\n")
        line = f.readline()
        f.close()
        a.close()
        return line, b.fileno()

    assert grun(main) == (b"still here\n", -1)



@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=200_000), min_size=1, max_size=6),
       st.sampled_from([1, 1024, 65536, 1 << 20]))
def test_short_tcp_reads_then_waits_lose_no_data_or_eof(sizes, bufsize):
    # After a short recv on TCP the next recv waits for an edge without trying first
    # (_PollFd.drained): every byte sent in pieces afterwards, and the EOF, must still come.
    def main():
        with socket.create_server(LOCAL) as srv:
            a = socket.create_connection(srv.getsockname())
            b, _ = srv.accept()
            payload = b"".join(bytes([i % 251]) * n for i, n in enumerate(sizes))

            def writer():
                off = 0
                for n in sizes:
                    a.sendall(payload[off:off + n])
                    off += n
                    gr.sleep(0.001)
                a.close()

            gr.go(writer)
            got = bytearray()
            while data := b.recv(bufsize):
                got += data
            b.close()
            return bytes(got) == payload

    assert gr.run(main, procs=1)


def test_a_short_tcp_read_that_stopped_at_the_fin_still_sees_the_eof():
    # The peer's last bytes and its FIN arrive together, reported by one edge; the read
    # that wakes on it stops at the FIN (short), and no edge is left for the EOF. The next
    # recv used to wait for one for good.
    def main():
        with socket.create_server(LOCAL) as srv:
            for _ in range(50):
                a = socket.create_connection(srv.getsockname())
                b, _ = srv.accept()
                th = threading.Thread(target=lambda a=a: (a.sendall(b"x" * 100), a.close()))
                t = gr.go(lambda b=b: (b.recv(4096), b.recv(4096), b.recv(4096)))
                gr.sleep(0.001)  # the reader waits before anything arrives
                th.start()
                got = t.join()
                gr.blocking(th.join)
                b.close()
                assert b"".join(got) == b"x" * 100 and got[-1] == b""
        return True

    assert gr.run(main, procs=1)


def _fill_reads(b, a, blocks, size=1024):
    """a sends `blocks` full buffers; b reads them with recv_into of exactly that size (the
    first full read turns TCP_INQ on)."""
    a.sendall(b"y" * size * blocks)
    buf = bytearray(size)
    got = 0
    while got < size * blocks:
        got += b.recv_into(buf)
    return got


def _watched_pair(srv):
    """A connected pair (a, b) whose b is on the poller (its first recv parked) and has
    TCP_INQ on (its reads filled their buffers)."""
    a = socket.create_connection(srv.getsockname())
    b, _ = srv.accept()
    gr.go(lambda: (gr.sleep(0.001), a.sendall(b"x" * 1024)))
    assert b.recv(1024) == b"x" * 1024
    assert _fill_reads(b, a, 3) == 3 * 1024
    return a, b


def test_full_tcp_reads_with_nothing_left_wait_and_lose_nothing():
    # A read that fills the buffer exactly and leaves nothing queued (TCP_INQ says 0) lets
    # the next recv wait for the edge without a syscall: data that comes later, and the
    # EOF that comes with the last full block, must still arrive.
    def main():
        with socket.create_server(LOCAL) as srv:
            for last_with_fin in (False, True):
                a, b = _watched_pair(srv)
                for _ in range(20):
                    gr.go(lambda a=a: (gr.sleep(0.001), a.sendall(b"z" * 1024)))
                    assert b.recv(1024) == b"z" * 1024  # full, and nothing left again
                if last_with_fin:
                    a.sendall(b"w" * 1024)
                    a.close()
                    assert b.recv(1024) == b"w" * 1024
                else:
                    gr.go(lambda a=a: (gr.sleep(0.001), a.close()))
                assert b.recv(1024) == b""
                b.close()
        return True

    assert gr.run(main, procs=1)


def test_a_full_tcp_read_woken_with_a_reset_still_sees_it():
    # The peer's last full block and its RST come with one edge, which wakes the reader:
    # its full read leaves nothing queued (TCP_INQ says 0), but the edge is spent, so the
    # next recv must try (pd's hup), not wait for an edge that never comes.
    def reset(a):
        gr.sleep(0.001)
        a.setsockopt(std_socket.SOL_SOCKET, std_socket.SO_LINGER, struct.pack("ii", 1, 0))
        a.sendall(b"r" * 1024)
        a.close()

    def main():
        with socket.create_server(LOCAL) as srv:
            for _ in range(20):
                a, b = _watched_pair(srv)
                gr.go(reset, a)
                assert b.recv(1024) == b"r" * 1024
                with pytest.raises(ConnectionResetError):
                    b.recv(1024)
                b.close()
        return True

    assert gr.run(main, procs=1)


def test_recvmsg_after_full_reads_sees_what_the_stdlib_would():
    # TCP_INQ adds a control message to recvmsg(2): turned off before our recvmsg, and
    # before a detach hands the fd to code that may call it.
    def main():
        with socket.create_server(LOCAL) as srv:
            a, b = _watched_pair(srv)
            a.sendall(b"m" * 10)
            first = b.recvmsg(1024, 64)
            _fill_reads(b, a, 2)
            a.sendall(b"n" * 10)
            fd = b.detach()
            with std_socket.socket(fileno=fd) as plain:
                plain.setblocking(True)
                second = plain.recvmsg(1024)
            a.close()
            return first, second

    (data1, anc1, flags1, _), (data2, anc2, flags2, _) = gr.run(main, procs=1)
    assert (data1, anc1, flags1) == (b"m" * 10, [], 0)
    assert (data2, anc2, flags2) == (b"n" * 10, [], 0)


@pytest.mark.parametrize("bufsize", [4096, 1024])  # a short read, a full one (TCP_INQ)
def test_recv_after_wait_readable_spent_the_edge_does_not_hang(bufsize):
    # A recv that drained the socket lets the next one wait for an edge without trying.
    # gr.wait_readable() on the same socket spends that edge first: the recv must read,
    # not wait for an edge that has come and gone.
    def main():
        with socket.create_server(LOCAL) as srv:
            a, b = _watched_pair(srv)
            for i in range(20):
                a.sendall(bytes([i]) * 1024)
                gr.wait_readable(b)
                assert b.recv(bufsize) == bytes([i]) * 1024
            a.close()
            assert b.recv(bufsize) == b""
            b.close()
        return True

    assert gr.run(main, procs=1)
