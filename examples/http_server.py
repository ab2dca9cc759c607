"""A minimal keep-alive HTTP/1.1 server on goroutines.socket: one task per connection,
as Go's net/http has one goroutine per connection, written as plain blocking code.

Run it, then ask it something::

    python examples/http_server.py [--port 8080] [--procs N]
    curl http://127.0.0.1:8080/

Every request gets ``Hello, world!``. Connections stay open (HTTP/1.1 keep-alive) until
the client closes them or sends ``Connection: close``; HTTP/1.0 clients get one answer
per connection unless they send ``Connection: keep-alive``. A body announced by
Content-Length is read and dropped; a chunked body or a malformed request gets a 400 and
the connection is closed. Ctrl-C stops the server.
"""

import argparse

import goroutines as gr
from goroutines import socket

HELLO = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
LAST_HELLO = HELLO.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 64 * 1024  # a longer request head is refused rather than buffered
CHUNK = 64 * 1024


def parse_head(head: bytes) -> tuple[bool, int]:
    """The (keep_alive, content_length) of a request head without its blank line.

    Raises ValueError for a request this server does not understand. Example::

        parse_head(b"GET / HTTP/1.1\\r\\nHost: x")  # (True, 0)
    """
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise ValueError(f"bad request line: {lines[0]!r}")
    keep_alive = parts[2] == b"HTTP/1.1"
    length = 0
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise ValueError(f"bad header line: {line!r}")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
            if length < 0:
                raise ValueError("negative Content-Length")
        elif name == b"connection":
            keep_alive = value == b"keep-alive" or (keep_alive and value != b"close")
        elif name == b"transfer-encoding":
            raise ValueError("chunked bodies are not supported")
    return keep_alive, length


def serve(conn: socket.socket) -> None:
    """Answer the requests of one connection until the client closes it or asks to."""
    buf = b""
    with conn:
        # Like Go: the answer leaves at once instead of waiting for the client's ACK.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        conn.sendall(BAD_REQUEST)
                        return
                    data = conn.recv(CHUNK)
                    if not data:
                        return
                    buf += data
                    continue
                try:
                    keep_alive, length = parse_head(buf[:end])
                except ValueError:
                    conn.sendall(BAD_REQUEST)
                    return
                buf = buf[end + 4 :]
                # Drop the body: what is buffered first, then straight from the socket.
                dropped = min(length, len(buf))
                buf, length = buf[dropped:], length - dropped
                while length:
                    data = conn.recv(min(length, CHUNK))
                    if not data:
                        return
                    length -= len(data)
                if not keep_alive:
                    conn.sendall(LAST_HELLO)
                    return
                conn.sendall(HELLO)
        except OSError:
            return  # the client reset the connection: nothing left to answer


def main(port: int) -> None:
    """Accept connections forever, each served by its own task."""
    server = socket.create_server(("127.0.0.1", port), backlog=4096)
    with server:
        print(f"listening on http://127.0.0.1:{server.getsockname()[1]}", flush=True)
        while True:
            conn, _ = server.accept()
            gr.go(serve, conn)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--procs", type=int, default=None, help="processors (default: CPUs)")
    args = parser.parse_args()
    try:
        gr.run(main, args.port, procs=args.procs)
    except KeyboardInterrupt:
        print("stopped")
