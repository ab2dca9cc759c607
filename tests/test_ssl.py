"""goroutines.ssl: cooperative TLS over goroutines.socket.

A throwaway CA (trustme) signs the certificates; servers and clients are tasks on loopback
at procs 1 and 2: echo, SNI, unwrap, explicit handshakes, timeouts, certificate checks,
http.client over TLS, and a client in a plain thread.
"""

import errno
import http.client
import os
import ssl as std_ssl
import threading

import pytest
from ft313 import require
from test_socket import errno_after_close, recv_exactly

import goroutines as gr
from goroutines import socket, ssl

trustme = require("trustme", "its cryptography ships only abi3 wheels")

LOCAL = ("127.0.0.1", 0)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ctx(ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def client_ctx(ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def tls_echo_server(srv, ctx, errors=None):
    """Accept TCP on srv until it is closed; a task per connection shakes hands and echoes."""

    def serve(conn):
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                while data := tls.recv(65536):
                    tls.sendall(data)
        except (OSError, EOFError) as e:
            if errors is not None:
                errors.append(e)

    conns = []
    try:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conns.append(conn)
            gr.go(serve, conn)
    finally:
        for conn in conns:  # a task cancelled before it started would leave its own
            conn.close()


def test_module_mirrors_the_stdlib(client_ctx):
    public = [n for n in dir(std_ssl) if not n.startswith("_")]
    assert [n for n in public if not hasattr(ssl, n)] == []
    assert ssl.SSLError is std_ssl.SSLError
    assert ssl.CERT_REQUIRED == std_ssl.CERT_REQUIRED
    assert issubclass(ssl.SSLSocket, std_ssl.SSLSocket)
    assert issubclass(ssl.SSLSocket, socket.socket)
    assert type(client_ctx) is ssl.SSLContext
    assert client_ctx.check_hostname and client_ctx.verify_mode == ssl.CERT_REQUIRED
    assert type(ssl._create_default_https_context()) is ssl.SSLContext


def test_tls_echo_many_clients(grun, server_ctx, client_ctx):
    clients, rounds = 12, 10

    def client(port, cid):
        raw = socket.create_connection(("127.0.0.1", port))
        with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert type(tls) is ssl.SSLSocket
            out = []
            for r in range(rounds):
                msg = b"%d:%d:" % (cid, r) + b"z" * ((cid * 7919 + r * 104729) % 50000)
                tls.sendall(msg)
                out.append(recv_exactly(tls, len(msg)) == msg)
            return out

    def main():
        srv = socket.create_server(LOCAL)
        gr.go(tls_echo_server, srv, server_ctx)
        port = srv.getsockname()[1]
        tasks = [gr.go(client, port, c) for c in range(clients)]
        results = [t.join() for t in tasks]
        srv.close()
        return results

    assert grun(main) == [[True] * rounds] * clients


def test_listening_tls_socket_accepts_tls_sockets(grun, server_ctx, client_ctx):
    def main():
        srv = server_ctx.wrap_socket(socket.create_server(LOCAL), server_side=True)
        port = srv.getsockname()[1]

        def serve():
            conn, _ = srv.accept()  # the handshake runs in accept
            with conn:
                conn.sendall(conn.recv(100).upper())
                return type(conn), conn.server_side

        t = gr.go(serve)
        with client_ctx.wrap_socket(socket.socket(), server_hostname="localhost") as c:
            c.connect(("127.0.0.1", port))  # connect, then the handshake
            c.sendall(b"hello")
            got = c.recv(100)
        srv.close()
        return got, t.join()

    assert grun(main) == (b"HELLO", (ssl.SSLSocket, True))


def test_sni_reaches_the_servername_callback(grun, ca, client_ctx):
    seen = []
    alt_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("alt.test").configure_cert(alt_ctx)
    default_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(default_ctx)

    def pick(sslobj, name, ctx):
        seen.append(name)
        if name == "alt.test":
            sslobj.context = alt_ctx  # the certificate for that name

    default_ctx.sni_callback = pick

    def main():
        srv = socket.create_server(LOCAL)
        gr.go(tls_echo_server, srv, default_ctx)
        out = []
        for name in ("localhost", "alt.test"):
            raw = socket.create_connection(srv.getsockname())
            with client_ctx.wrap_socket(raw, server_hostname=name) as tls:
                out.append((tls.server_hostname, tls.getpeercert()["subjectAltName"]))
        srv.close()
        return out

    assert grun(main) == [
        ("localhost", (("DNS", "localhost"),)),
        ("alt.test", (("DNS", "alt.test"),)),
    ]
    assert seen == ["localhost", "alt.test"]


def test_unwrap_returns_to_plaintext(grun, server_ctx, client_ctx):
    def serve(srv):
        conn, _ = srv.accept()
        tls = server_ctx.wrap_socket(conn, server_side=True)
        assert tls.recv(100) == b"secret"
        plain = tls.unwrap()  # waits for the client's close_notify
        with plain:
            assert plain.recv(100) == b"clear"
            plain.sendall(b"clear back")

    def main():
        srv = socket.create_server(LOCAL)
        t = gr.go(serve, srv)
        raw = socket.create_connection(srv.getsockname())
        tls = client_ctx.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"secret")
        plain = tls.unwrap()
        with plain:
            plain.sendall(b"clear")
            got = plain.recv(100)
        t.join()
        srv.close()
        return got, plain is tls

    assert grun(main) == (b"clear back", True)


def test_explicit_handshake(grun, server_ctx, client_ctx):
    def main():
        srv = socket.create_server(LOCAL)
        gr.go(tls_echo_server, srv, server_ctx)
        raw = socket.create_connection(srv.getsockname())
        tls = client_ctx.wrap_socket(
            raw, server_hostname="localhost", do_handshake_on_connect=False
        )
        with tls:
            assert tls.version() is None  # no handshake yet
            tls.do_handshake()
            tls.sendall(b"after handshake")
            got = tls.recv(100), tls.version()
        srv.close()
        return got

    got, version = grun(main)
    assert got == b"after handshake" and version.startswith("TLS")


def test_handshake_timeout(grun, client_ctx):
    """A server that accepts TCP but never speaks TLS: the handshake times out."""

    def main():
        srv = socket.create_server(LOCAL)
        held = []
        gr.go(lambda: held.append(srv.accept()[0]))
        raw = socket.create_connection(srv.getsockname(), timeout=0.1)
        with pytest.raises(TimeoutError):
            client_ctx.wrap_socket(raw, server_hostname="localhost")
        raw.close()
        for conn in held:
            conn.close()
        srv.close()

    grun(main)


def test_read_timeout_and_non_blocking(grun, server_ctx, client_ctx):
    def main():
        srv = socket.create_server(LOCAL)
        gr.go(tls_echo_server, srv, server_ctx)
        raw = socket.create_connection(srv.getsockname())
        with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.settimeout(0.05)
            with pytest.raises(TimeoutError):
                tls.recv(10)
            tls.setblocking(False)
            with pytest.raises(ssl.SSLWantReadError):
                tls.recv(10)
            tls.settimeout(5)
            tls.sendall(b"still fine")
            got = recv_exactly(tls, 10)
        srv.close()
        return got

    assert grun(main) == b"still fine"


def test_wrong_hostname_fails_verification(grun, server_ctx, client_ctx):
    def main():
        srv = socket.create_server(LOCAL)
        server_errors = []
        gr.go(tls_echo_server, srv, server_ctx, server_errors)
        raw = socket.create_connection(srv.getsockname())
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            client_ctx.wrap_socket(raw, server_hostname="wrong.example")
        raw.close()
        srv.close()
        return info.value.verify_message

    assert "mismatch" in grun(main).lower()


def test_untrusted_ca_fails_verification(grun, server_ctx):
    def main():
        srv = socket.create_server(LOCAL)
        gr.go(tls_echo_server, srv, server_ctx, [])
        ctx = ssl.create_default_context(cadata=trustme.CA().cert_pem.bytes().decode())
        raw = socket.create_connection(srv.getsockname())
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="localhost")
        raw.close()
        srv.close()

    grun(main)


def test_close_wakes_a_task_parked_in_a_tls_read(grun, server_ctx, client_ctx):
    def main():
        srv = socket.create_server(LOCAL)
        gr.go(tls_echo_server, srv, server_ctx)
        tls = client_ctx.wrap_socket(
            socket.create_connection(srv.getsockname()), server_hostname="localhost"
        )

        return errno_after_close(lambda: tls.recv(10), tls, srv)

    assert grun(main) == errno.EBADF


def test_cancel_a_task_parked_in_a_handshake(grun, client_ctx):
    def main():
        srv = socket.create_server(LOCAL)
        held = []
        gr.go(lambda: held.append(srv.accept()[0]))
        raw = socket.create_connection(srv.getsockname())
        while not held:
            gr.sleep(0.001)
        before = len(os.listdir("/proc/self/fd"))

        def handshake():
            return client_ctx.wrap_socket(raw, server_hostname="localhost")

        t = gr.go(handshake)
        gr.sleep(0.01)
        t.cancel()
        with pytest.raises(gr.Cancelled):
            t.join()
        # the TLS socket that took over raw's fd, which no one got, was closed
        closed = len(os.listdir("/proc/self/fd")) == before - 1
        raw.close()
        for conn in held:
            conn.close()
        srv.close()
        return t.cancelled(), closed

    assert grun(main) == (True, True)


def test_https_with_http_client(grun, server_ctx, client_ctx):
    def serve(srv):
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with server_ctx.wrap_socket(conn, server_side=True) as tls, tls.makefile("rb") as rf:
                while rf.readline() not in (b"\r\n", b""):
                    pass
                tls.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
                )

    def main():
        srv = socket.create_server(LOCAL)
        gr.go(serve, srv)
        conn = http.client.HTTPSConnection(
            "localhost", srv.getsockname()[1], context=client_ctx, timeout=10
        )
        conn._create_connection = socket.create_connection  # cooperative, without patching
        conn.request("GET", "/")
        resp = conn.getresponse()
        got = resp.status, resp.read()
        conn.close()
        srv.close()
        return got

    assert grun(main) == (200, b"hello")


def test_get_server_certificate(grun, ca, server_ctx):
    def main():
        srv = socket.create_server(LOCAL)
        gr.go(tls_echo_server, srv, server_ctx, [])
        pem = ssl.get_server_certificate(srv.getsockname(), timeout=10)
        srv.close()
        return pem

    pem = grun(main)
    assert pem.startswith("-----BEGIN CERTIFICATE-----")


def test_plain_thread_client_against_a_task_server(server_ctx, client_ctx):
    def main():
        srv = socket.create_server(LOCAL)
        gr.go(tls_echo_server, srv, server_ctx)
        got = []

        def client():
            raw = socket.create_connection(srv.getsockname(), timeout=10)
            with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                for i in range(20):
                    msg = b"msg %d" % i
                    tls.sendall(msg)
                    got.append(recv_exactly(tls, len(msg)))

        th = threading.Thread(target=client)
        th.start()
        while th.is_alive():
            gr.sleep(0.005)
        srv.close()
        return got

    assert gr.run(main, procs=1) == [b"msg %d" % i for i in range(20)]


def test_outside_run_tls_behaves_like_the_stdlib(server_ctx, client_ctx):
    """No run() at all: a server thread and a client, both on goroutines.ssl."""
    srv = socket.create_server(LOCAL)
    done = threading.Event()

    def serve():
        conn, _ = srv.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(tls.recv(100)[::-1])
            done.wait(10)

    th = threading.Thread(target=serve)
    th.start()
    raw = socket.create_connection(srv.getsockname(), timeout=10)
    with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"abc")
        got = tls.recv(100)
        tls.settimeout(0.05)
        with pytest.raises(TimeoutError):
            tls.recv(100)  # the server sent one reply and waits
    done.set()
    th.join()
    srv.close()
    assert got == b"cba"
