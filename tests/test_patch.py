"""gr.patch() / gr.unpatch(): unmodified stdlib and third-party clients run cooperatively.

The proof of cooperation is a server that answers no request until N of them are in
flight at once (a threading.Barrier in its handler): N tasks at procs=1 can only get their
answers if each one's blocking socket call parked it and let the next task connect. If the
calls blocked the M, the barrier would break (its timeout) and the server answer 503.
"""
import contextlib
import http.client
import http.server
import os
import select
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import warnings

import pytest
import requests
import trustme

import goroutines as gr
import goroutines.fdselect as gselect
import goroutines.selectors as gselectors
import goroutines.socket as gsocket
import goroutines.ssl as gssl

N = 20  # requests in flight at once

PATCHED = [
    (socket, "socket"),
    (socket, "create_connection"),
    (socket, "create_server"),
    (socket, "socketpair"),
    (socket, "fromfd"),
    (socket, "getaddrinfo"),
    (socket, "gethostbyname"),
    (socket, "getnameinfo"),
    (ssl.SSLContext, "sslsocket_class"),
    (ssl, "create_connection"),
    (time, "sleep"),
    (select, "select"),
    (select, "poll"),
    (selectors, "DefaultSelector"),
    (selectors, "SelectSelector"),
    (selectors, "PollSelector"),
    (selectors, "EpollSelector"),
]


def snapshot():
    return {(owner, name): vars(owner).get(name) for owner, name in PATCHED}


ORIGINALS = snapshot()


@pytest.fixture
def patched():
    """gr.patch() for one test; unpatched whatever happens. The warning about modules
    imported first (pytest's own, here) has its own test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gr.patch()
    try:
        yield
    finally:
        gr.unpatch()
    assert snapshot() == ORIGINALS


class BarrierHandler(http.server.BaseHTTPRequestHandler):
    """Answers 200 once ``server.barrier`` has all its parties in flight, 503 if it broke."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        try:
            self.server.barrier.wait()
            status, body = 200, b"hello " + self.path.encode()
        except threading.BrokenBarrierError:
            status, body = 503, b"not concurrent"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    """Its server_close() ends every connection and joins every handler thread: a live
    thread would hold off the runtime's deadlock reports in later tests."""

    request_queue_size = 4 * N
    daemon_threads = False  # joined by server_close() (ThreadingMixIn.block_on_close)

    def get_request(self):
        conn, addr = super().get_request()
        self.conns.append(conn)
        return conn, addr

    def server_close(self):
        for conn in self.conns:  # a keep-alive connection a client left to the GC
            with contextlib.suppress(OSError):  # closed by its handler already
                conn.shutdown(socket.SHUT_RDWR)
        super().server_close()


@contextlib.contextmanager
def serving(parties, context=None, barrier_timeout=10.0):
    """A stdlib HTTP(S) server in plain threads (a thread per connection)."""
    server = Server(("127.0.0.1", 0), BarrierHandler)
    server.conns = []
    server.barrier = threading.Barrier(parties, timeout=barrier_timeout)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"{'https' if context else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def fan_out(fetch, base, procs):
    """N tasks, each fetching base/i with fetch(url) -> (status, body)."""

    def main():
        tasks = [gr.go(fetch, f"{base}/{i}") for i in range(N)]
        return [t.join() for t in tasks]

    return gr.run(main, procs=procs)


def expected(n=N):
    return [(200, f"hello /{i}".encode()) for i in range(n)]


def fetch_http_client(url):
    host, port = url.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", "/" + url.rsplit("/", 1)[1])
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def fetch_urllib(url):
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, resp.read()


def fetch_requests(url):
    resp = requests.get(url, timeout=30)
    return resp.status_code, resp.content


# --- unmodified clients, many tasks, one M ---------------------------------------------------


@pytest.mark.parametrize(
    "fetch", [fetch_http_client, fetch_urllib, fetch_requests], ids=lambda f: f.__name__[6:]
)
def test_clients_run_concurrently_in_tasks(patched, procs, fetch):
    with serving(N) as base:
        assert fan_out(fetch, base, procs) == expected()


def test_host_names_resolve_off_the_m(patched, procs):
    """"localhost" goes through getaddrinfo, which a task runs on the offload pool."""
    with serving(N) as base:
        assert fan_out(fetch_urllib, base.replace("127.0.0.1", "localhost"), procs) == expected()


def test_requests_session_shared_by_tasks(patched, procs):
    with serving(N) as base, requests.Session() as session:
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=N))

        def fetch(url):
            resp = session.get(url, timeout=30)
            return resp.status_code, resp.content

        assert fan_out(fetch, base, procs) == expected()


@pytest.fixture(scope="module")
def tls():
    """A throwaway CA, a server context for 127.0.0.1, and a CA bundle file for clients."""
    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    with ca.cert_pem.tempfile() as cafile:
        yield server_ctx, cafile


def test_https_clients_run_concurrently_in_tasks(patched, procs, tls):
    """TLS through contexts the clients make themselves from the stdlib ssl module."""
    server_ctx, cafile = tls

    def fetch(url):
        if url.endswith(("0", "2", "4", "6", "8")):
            resp = requests.get(url, timeout=30, verify=cafile)
            return resp.status_code, resp.content
        ctx = ssl.create_default_context(cafile=cafile)
        with urllib.request.urlopen(url, timeout=30, context=ctx) as resp:
            return resp.status, resp.read()

    with serving(N, server_ctx) as base:
        assert fan_out(fetch, base, procs) == expected()


class TaskBarrierHandler(http.server.BaseHTTPRequestHandler):
    """The stdlib handler run in a task on a patched socket: answers once all N requests
    are in (a task-level barrier: a counter and a gr.Event)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        state = self.server
        state.arrived += 1
        if state.arrived == N:
            state.all_in.set()
        status = 200 if state.all_in.wait(10) else 503
        body = b"hello " + self.path.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_stdlib_server_and_clients_all_in_tasks(patched, procs):
    """http.server's handler serving each connection in a task, requests' clients in
    other tasks, one run: every socket call of both sides parks."""

    class State:
        arrived = 0
        all_in = gr.Event()

    def serve(listener):
        while True:
            conn, addr = listener.accept()
            gr.go(handle, conn, addr)

    def handle(conn, addr):
        with conn:
            TaskBarrierHandler(conn, addr, State)

    def main():
        listener = socket.create_server(("127.0.0.1", 0), backlog=N)
        server = gr.go(serve, listener)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        tasks = [gr.go(fetch_requests, f"{base}/{i}") for i in range(N)]
        results = [t.join() for t in tasks]
        server.cancel()
        listener.close()
        return results

    assert gr.run(main, procs=procs) == expected()


def test_unpatched_clients_block_the_m():
    """The control experiment: the same fan-out without patch() at procs=1 cannot get two
    requests in flight, so the server's barrier (2 parties, short timeout) breaks."""
    with serving(2, barrier_timeout=0.2) as base:

        def main():
            tasks = [gr.go(fetch_http_client, f"{base}/{i}") for i in range(2)]
            return [t.join()[0] for t in tasks]

        assert gr.run(main, procs=1) == [503, 503]


# --- what patch() replaces --------------------------------------------------------------------


def test_patch_installs_the_cooperative_objects(patched):
    assert socket.socket is gsocket.socket
    assert socket.create_connection is gsocket.create_connection
    assert socket.getaddrinfo is gsocket.getaddrinfo
    assert ssl.SSLContext.sslsocket_class is gssl.SSLContext.sslsocket_class
    assert ssl.create_connection is gssl.create_connection
    assert select.select is gselect.select and select.poll is gselect.poll
    assert selectors.DefaultSelector is gselectors.DefaultSelector
    assert time.sleep is not ORIGINALS[(time, "sleep")]
    for owner, name in PATCHED:
        assert vars(owner)[name] is not ORIGINALS[(owner, name)], (owner, name)


def test_patch_twice_then_unpatch_restores_the_originals():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gr.patch()
        first = snapshot()
        gr.patch()
        assert snapshot() == first
    gr.unpatch()
    assert snapshot() == ORIGINALS
    gr.unpatch()  # nothing patched: a no-op
    assert snapshot() == ORIGINALS


def test_flags_choose_what_is_patched():
    warnings.simplefilter("ignore", RuntimeWarning)  # pytest's modules imported first
    try:
        gr.patch(socket=False, ssl=False, select=False, selectors=False)
        now = snapshot()
        changed = {key for key in now if now[key] is not ORIGINALS[key]}
        assert changed == {(time, "sleep")}
        gr.patch(socket=False, ssl=False, time=False, selectors=False)  # adds select
        now = snapshot()
        changed = {key for key in now if now[key] is not ORIGINALS[key]}
        assert changed == {(time, "sleep"), (select, "select"), (select, "poll")}
    finally:
        gr.unpatch()
    assert snapshot() == ORIGINALS


def test_patch_rejects_positional_flags():
    with pytest.raises(TypeError):
        gr.patch(True)  # type: ignore[misc]
    assert snapshot() == ORIGINALS


def test_patch_warns_about_modules_that_kept_an_original(tmp_path, monkeypatch):
    (tmp_path / "early_sleeper.py").write_text("from time import sleep\nfrom select import poll\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import early_sleeper  # noqa: F401  # imported before patch(): keeps the originals

    try:
        with pytest.warns(RuntimeWarning, match="before importing them") as record:
            gr.patch(socket=False, ssl=False, selectors=False)
        message = str(record[0].message)
        assert "early_sleeper.sleep is time.sleep" in message
        assert "early_sleeper.poll is select.poll" in message
        assert record[0].filename == __file__  # points at the caller of patch()
    finally:
        gr.unpatch()
        del sys.modules["early_sleeper"]


def test_no_warning_when_patch_comes_first():
    """The documented order, in a fresh interpreter: patch() first, clients after."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "import goroutines as gr; gr.patch()\n"
        "import requests, urllib.request, http.client, ssl, socket, time\n"
        "assert socket.socket.__module__ == 'goroutines.socket'\n"
        "assert time.sleep.__module__ == 'goroutines.monkey'\n"
    )
    assert run_python(code) == ""


def run_python(code):
    """Run code in a fresh interpreter (nothing imported yet); its stdout, or the error."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_tls_without_ssl_patching_blocks_but_works():
    """patch(ssl=False), ssl imported after it: TLS still works, through the stdlib's
    SSLSocket (which blocks the M). patch() imports ssl before it swaps socket.socket, so
    ssl's SSLSocket never builds on the cooperative socket without its wrappers."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "import goroutines as gr; gr.patch(ssl=False)\n"
        "import socket, ssl, threading, trustme\n"
        "ca = trustme.CA()\n"
        "server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
        "ca.issue_cert('localhost').configure_cert(server_ctx)\n"
        "client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
        "ca.configure_trust(client_ctx)\n"
        "a, b = socket.socketpair()\n"
        "def serve():\n"
        "    with server_ctx.wrap_socket(b, server_side=True) as s:\n"
        "        s.sendall(s.recv(10).upper())\n"
        "th = threading.Thread(target=serve); th.start()\n"
        "def main():\n"
        "    with client_ctx.wrap_socket(a, server_hostname='localhost') as c:\n"
        "        assert type(c) is ssl.SSLSocket\n"
        "        c.sendall(b'ping')\n"
        "        return c.recv(10)\n"
        "print(gr.run(main))\n"
        "th.join()\n"
    )
    assert run_python(code) == "b'PING'\n"


# --- time.sleep ---------------------------------------------------------------------------------


def test_time_sleep_parks_the_task(patched):
    log = []

    def other():
        log.append("other ran")

    def sleeper():
        gr.go(other)
        time.sleep(0.05)  # at procs=1, other runs only if this parks
        log.append("sleeper woke")

    gr.run(sleeper, procs=1)
    assert log == ["other ran", "sleeper woke"]


def test_time_sleep_zero_yields(patched):
    log = []

    def main():
        gr.go(log.append, "other")
        time.sleep(0)
        log.append("main")

    gr.run(main, procs=1)
    assert log == ["other", "main"]


def test_time_sleep_in_a_plain_thread_sleeps_the_thread(patched):
    elapsed = []

    def thread():
        t0 = time.monotonic()
        time.sleep(0.05)
        elapsed.append(time.monotonic() - t0)

    def main():
        th = threading.Thread(target=thread)
        th.start()
        gr.blocking(th.join)

    gr.run(main, procs=1)
    thread()  # and outside run()
    assert len(elapsed) == 2 and min(elapsed) >= 0.05


def test_offload_threads_run_the_originals(patched):
    """gr.blocking() runs its call on a pool thread, not a task: the patched names block
    that thread as the stdlib's do, and the task parks meanwhile."""
    r, w = os.pipe()

    def main():
        gr.go(os.write, w, b"x")
        gr.blocking(time.sleep, 0.01)
        return gr.blocking(select.select, [r], [], [], 10.0)

    try:
        assert gr.run(main, procs=1) == ([r], [], [])
    finally:
        os.close(r)
        os.close(w)


BAD_SLEEPS = [-1, -1e-10, float("nan"), float("inf"), 1e300, 2**80, "1", None, 1j]


@pytest.mark.parametrize("secs", BAD_SLEEPS, ids=repr)
def test_time_sleep_bad_input_raises_the_stdlib_error(patched, secs):
    original = ORIGINALS[(time, "sleep")]

    def outcome(fn):
        try:
            fn(secs)
        except Exception as e:  # noqa: BLE001  # compared as data
            return type(e), str(e)
        return "ok"

    expected = outcome(original)
    assert expected != "ok"
    assert gr.run(outcome, time.sleep, procs=1) == expected
    assert outcome(time.sleep) == expected


def test_time_sleep_accepts_what_the_stdlib_accepts(patched):
    class Index:
        def __index__(self):
            return 0

    def main():
        for secs in (0, 0.0, 0.001, True, False, Index()):
            time.sleep(secs)
        return "done"

    assert gr.run(main, procs=1) == "done"


# --- select and selectors through the stdlib names ---------------------------------------------


def test_patched_select_and_selectors_park(patched, procs):
    r, w = os.pipe()

    def main():
        gr.go(os.write, w, b"x")
        first = select.select([r], [], [], 10.0)
        os.read(r, 1)
        with selectors.DefaultSelector() as sel:
            sel.register(r, selectors.EVENT_READ)
            gr.go(os.write, w, b"x")
            second = [key.fd for key, _ in sel.select(10.0)]
        p = select.poll()
        p.register(r, select.POLLIN)
        return first, second, p.poll(10_000)

    try:
        assert gr.run(main, procs=procs) == (([r], [], []), [r], [(r, select.POLLIN)])
    finally:
        os.close(r)
        os.close(w)


def test_socket_calls_in_plain_threads_are_unchanged(patched):
    """A stdlib-style blocking server in a thread and a client in a task, both through the
    patched names: the thread's calls block it (the stdlib's behaviour)."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())

    th = threading.Thread(target=serve)
    th.start()

    def main():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(b"ping")
            return c.recv(100)

    try:
        assert gr.run(main, procs=1) == b"PING"
    finally:
        th.join()
        srv.close()


def test_unpatch_leaves_made_objects_working():
    """Sockets made while patched keep working after unpatch() (they are cooperative
    sockets; outside a task they behave as the stdlib's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gr.patch()
    try:
        a, b = socket.socketpair()
    finally:
        gr.unpatch()
    with a, b:
        assert isinstance(a, gsocket.socket)
        a.sendall(b"x")
        assert b.recv(1) == b"x"
