"""The servers of bench/bench_net.py, one per process::

    python bench/_netservers.py echo:NAME|http:NAME

bench/_net.py starts each pinned to one CPU with a raised RLIMIT_NOFILE. Each listens on
127.0.0.1 on a port the kernel picks, prints ``listening on 127.0.0.1:PORT`` as its first
and only line of stdout, and serves until it is killed.

Echo servers (``ECHO``) answer every read with the same bytes; HTTP servers (``HTTP``)
answer every request with ``Hello, world!`` on a keep-alive HTTP/1.1 connection. The
goroutines HTTP server is examples/http_server.py itself, started by bench/_net.py.

Every echo handler reads at most SIZE bytes at a time into one buffer per connection
where the API allows it, so the idle-memory figures compare like with like.
"""

import socket
import sys

SIZE = 1024
BACKLOG = 4096
HOST = "127.0.0.1"


def announce(port):
    print(f"listening on {HOST}:{port}", flush=True)


def nodelay(sock):
    # As asyncio, uvloop, trio and Go do by default: no Nagle delay on a split echo.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# ================================================================================= echo


def blocking_echo(conn):
    """The echo handler as plain blocking code: a task per connection (goroutines) and a
    thread per connection run the same function."""
    buf = bytearray(SIZE)
    view = memoryview(buf)
    with conn:
        nodelay(conn)
        try:
            while n := conn.recv_into(buf):
                conn.sendall(view[:n])
        except OSError:
            pass  # the load generator went away mid-message


def echo_goroutines(procs):
    import goroutines as gr
    from goroutines import socket as gsocket

    def main():
        srv = gsocket.create_server((HOST, 0), backlog=BACKLOG)
        announce(srv.getsockname()[1])
        while True:
            conn, _ = srv.accept()
            gr.go(blocking_echo, conn)

    gr.run(main, procs=procs)


def echo_gevent():
    from gevent.server import StreamServer

    def handle(conn, _addr):
        buf = bytearray(SIZE)
        view = memoryview(buf)
        nodelay(conn)
        try:
            while n := conn.recv_into(buf):
                conn.sendall(view[:n])
        except OSError:
            pass

    server = StreamServer((HOST, 0), handle, backlog=BACKLOG)
    server.start()
    announce(server.server_port)
    server.serve_forever()


async def _echo_streams():
    import asyncio

    async def handle(reader, writer):
        try:
            while data := await reader.read(SIZE):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0, backlog=BACKLOG)
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


async def _echo_protocols():
    import asyncio

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, HOST, 0, backlog=BACKLOG)
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def echo_trio():
    import trio

    async def handle(stream):
        try:
            while data := await stream.receive_some(SIZE):
                await stream.send_all(data)
        except trio.BrokenResourceError:
            pass

    async def main():
        listeners = await trio.open_tcp_listeners(0, host=HOST, backlog=BACKLOG)
        announce(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(handle, listeners)

    trio.run(main)


def echo_threads():
    import threading

    srv = socket.create_server((HOST, 0), backlog=BACKLOG)
    announce(srv.getsockname()[1])
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=blocking_echo, args=(conn,), daemon=True).start()


# ================================================================================= HTTP

HELLO = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
LAST_HELLO = HELLO.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")


def http_gevent_pywsgi():
    from gevent.pywsgi import WSGIServer

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return [b"Hello, world!"]

    class Server(WSGIServer):
        # pywsgi writes the headers and the body in two sends: without TCP_NODELAY, Nagle
        # holds the body for the client's delayed ACK (40 ms per request here).
        def handle(self, sock, address):
            nodelay(sock)
            super().handle(sock, address)

    server = Server((HOST, 0), app, log=None, backlog=BACKLOG)
    server.start()
    announce(server.server_port)
    server.serve_forever()


async def _http_protocols():
    """The asyncio counterpart of examples/http_server.py: the same parsing (requests
    without a body, keep-alive unless the client asks to close), on a Protocol."""
    import asyncio

    class Http(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.buf = b""

        def data_received(self, data):
            self.buf += data
            while (end := self.buf.find(b"\r\n\r\n")) >= 0:
                head, self.buf = self.buf[:end], self.buf[end + 4 :]
                lines = head.split(b"\r\n")
                version = lines[0].rsplit(b" ", 1)[-1]
                close = version != b"HTTP/1.1"
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"connection":
                        close = value.strip().lower() != b"keep-alive"
                if close:
                    self.transport.write(LAST_HELLO)
                    self.transport.close()
                    return
                self.transport.write(HELLO)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, HOST, 0, backlog=BACKLOG)
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def _asyncio(make_coro):
    import asyncio

    return lambda: asyncio.run(make_coro())


def _uvloop(make_coro):
    def run():
        import uvloop

        uvloop.run(make_coro())

    return run


ECHO = {
    "goroutines-procs1": lambda: echo_goroutines(1),
    "goroutines-procs2": lambda: echo_goroutines(2),
    "gevent": echo_gevent,
    "asyncio-streams": _asyncio(_echo_streams),
    "asyncio-protocols": _asyncio(_echo_protocols),
    "uvloop-streams": _uvloop(_echo_streams),
    "uvloop-protocols": _uvloop(_echo_protocols),
    "trio": echo_trio,
    "threads": echo_threads,
}

HTTP = {
    "gevent-pywsgi": http_gevent_pywsgi,
    "asyncio-protocols": _asyncio(_http_protocols),
    "uvloop-protocols": _uvloop(_http_protocols),
}


def main(kind):
    table, _, name = kind.partition(":")
    {"echo": ECHO, "http": HTTP}[table][name]()


if __name__ == "__main__":
    main(sys.argv[1])
