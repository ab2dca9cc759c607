"""Network servers, goroutines against its peers (loopback TCP, Linux).

Run::

    pytest bench/bench_net.py --benchmark-only        # every server, one run
    python bench/bench_net.py [--duration S] [--rounds N] [--idle N] [echo] [idle] [http]

Every server runs in its own process pinned to one CPU; the load generator runs pinned to
the other (bench/_net.py). The load generator is bench/netload.c, compiled with ``cc -O2``
on first use into build/bench/: epoll, non-blocking sockets, each connection keeps one
message in flight.

Groups:

* ``net-echo``: 100 connections echo 1 KiB messages; ECHO_ROUNDS rounds of COUNT round
  trips after a warm-up round (the script: a warm-up run of 0.5 s, then one of a fixed duration).
  Servers: a trivial C epoll server (``c-echo``, the load generator's ceiling: what the
  kernel alone costs), uvloop and asyncio with protocols and with streams, gevent's
  StreamServer, trio, a thread per connection, and goroutines at procs=1 and procs=2
  (a task per connection on goroutines.socket).
  ``rt_per_s`` is the throughput; ``cpu_us_per_rt`` the server's CPU time (utime+stime
  of all its threads, /proc/PID/stat) per round trip, the figure that the client's
  ceiling cannot hide; ``client_cpu_us_per_rt`` the load generator's. The goroutines
  procs=1 entry also records its ratios to the issue's targets: CPU per round trip ≤1.1x
  uvloop protocols and ≤0.67x gevent, throughput ≥ uvloop streams (reported, never
  asserted).
* ``net-idle``: IDLE=10,000 connections opened and left idle (each did one round trip,
  so its handler is waiting in a read), then one active connection times 1,000
  sequential echoes. ``p50_us``/``p99_us``/``max_us`` are its latencies (target ≤5 ms);
  ``bytes_per_conn`` the server's VmRSS growth per idle connection.
* ``net-http``: ``wrk -t1 -c100`` against a keep-alive hello-world:
  examples/http_server.py, gevent's pywsgi, and the same parsing as the example on an
  asyncio/uvloop Protocol. Skipped where wrk is not installed.

Under ``--benchmark-disable`` (the CI smoke run) every size is small.
"""

import contextlib
import http.client
import signal
import socket
import statistics
import subprocess
import sys

import _net
import pytest

CONNS = 100
SIZE = 1024
# Round trips per round, and rounds per echo server after one warm-up round: about 1 s a
# round for the fast servers, so the ten servers take about a minute.
COUNT = 100_000
ECHO_ROUNDS = 3
IDLE = 10_000
ECHOES = 1_000
HTTP_SECONDS = 3

# The targets for goroutines at procs=1: (name, peer, figure, bound); a ratio
# below the bound meets "≤" targets, above it "≥" ones.
TARGETS = [
    ("cpu_vs_uvloop_protocols", "uvloop-protocols", "cpu_us_per_rt", "<=", 1.1),
    ("cpu_vs_gevent", "gevent", "cpu_us_per_rt", "<=", 0.67),
    ("rt_vs_uvloop_streams", "uvloop-streams", "rt_per_s", ">=", 1.0),
]
_TARGET_SERVER = "goroutines-procs1"


def idle_conns(wanted):
    """``wanted``, or as many as the hard fd limit allows each process (with room to
    spare for the interpreter's own descriptors)."""
    return max(0, min(wanted, _net.nofile_limit() - 200))


def target_ratios(results):
    """The target ratios of goroutines procs=1 against the peers in ``results`` (server ->
    echo figures), for those measured: {name: (ratio, op, bound, met)}. A peer's figure of
    zero (CPU time under one clock tick, in a short smoke run) gives no ratio."""
    ours = results.get(_TARGET_SERVER)
    out = {}
    for name, peer, figure, op, bound in TARGETS:
        if ours is None or not results.get(peer, {}).get(figure):
            continue
        ratio = ours[figure] / results[peer][figure]
        out[name] = (ratio, op, bound, ratio <= bound if op == "<=" else ratio >= bound)
    return out


def _unavailable(server):
    reason = _net.missing(server)
    if reason:
        pytest.skip(reason)
    try:
        _net.netload()
    except _net.Unavailable as exc:
        pytest.skip(str(exc))


# ================================================================================== echo

_ECHO = {}  # server -> figures, for the ratios of the entries that run after it


def _echo_figures(runs):
    rts = sum(r["round_trips"] for r in runs)
    elapsed = sum(r["elapsed"] for r in runs)
    return {
        "rt_per_s": rts / elapsed,
        "cpu_us_per_rt": sum(r["server_cpu"] for r in runs) / rts * 1e6,
        "client_cpu_us_per_rt": sum(r["client_cpu"] for r in runs) / rts * 1e6,
    }


@pytest.mark.benchmark(group="net-echo")
@pytest.mark.parametrize("server", _net.ECHO_SERVERS)
def test_echo(server, smoke, benchmark):
    _unavailable(server)
    count = 2_000 if smoke else COUNT
    runs = []
    with _net.running("echo", server) as (pid, port):

        def round_():
            runs.append(_net.echo(pid, port, conns=CONNS, size=SIZE, count=count))

        benchmark.pedantic(round_, rounds=1 if smoke else ECHO_ROUNDS, warmup_rounds=1)
    assert all(r["round_trips"] >= count for r in runs)
    # The warm-up round (the first, when there are several) does not count.
    figures = _echo_figures(runs[1:] or runs)
    _ECHO[server] = figures
    benchmark.extra_info.update(figures)
    if server == _TARGET_SERVER:
        for name, (ratio, *_rest) in target_ratios(_ECHO).items():
            benchmark.extra_info[name] = ratio


# ================================================================================== idle


@pytest.mark.benchmark(group="net-idle")
@pytest.mark.parametrize("server", _net.IDLE_SERVERS)
def test_idle(server, smoke, benchmark):
    _unavailable(server)
    conns = 200 if smoke else idle_conns(IDLE)
    results = []
    with _net.running("echo", server) as (pid, port):

        def once():
            echoes = 50 if smoke else ECHOES
            results.append(_net.idle(pid, port, conns=conns, size=SIZE, echoes=echoes))

        benchmark.pedantic(once, rounds=1, iterations=1)
    r = results[-1]
    assert r["idle"] == conns
    benchmark.extra_info.update(
        idle=conns,
        bytes_per_conn=r["bytes_per_conn"],
        p50_us=r["p50_us"],
        p99_us=r["p99_us"],
        max_us=r["max_us"],
    )


# ================================================================================== HTTP


@pytest.mark.benchmark(group="net-http")
@pytest.mark.parametrize("server", _net.HTTP_SERVERS)
def test_http(server, smoke, benchmark):
    try:
        _net.wrk_path()
    except _net.Unavailable as exc:
        pytest.skip(str(exc))
    _unavailable(server)
    results = []
    with _net.running("http", server) as (pid, port):

        def once():
            results.append(_net.http(pid, port, duration=1 if smoke else HTTP_SECONDS))

        benchmark.pedantic(once, rounds=1, iterations=1)
    r = results[-1]
    assert r["errors"] == 0, r
    benchmark.extra_info.update(req_per_s=r["req_per_s"], cpu_us_per_req=r["server_cpu_us_per_req"])


def test_http_example_answers():
    """examples/http_server.py keeps a connection alive across requests, drops a body,
    closes on ``Connection: close`` and refuses a malformed request (no wrk needed)."""
    _unavailable("goroutines-procs1")
    with _net.running("http", "goroutines-procs1") as (_pid, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for body in (None, b"x" * 100_000):
                conn.request("POST" if body else "GET", "/", body=body)
                resp = conn.getresponse()
                assert (resp.status, resp.read()) == (200, b"Hello, world!")
                assert not resp.will_close
            conn.request("GET", "/", headers={"Connection": "close"})
            resp = conn.getresponse()
            assert resp.read() == b"Hello, world!" and resp.will_close
        finally:
            conn.close()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"NONSENSE\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 400 ")
            assert sock.recv(1024) == b""


def test_http_example_stops_on_ctrl_c():
    """Ctrl-C (SIGINT) stops examples/http_server.py quietly, with exit status 0."""
    _unavailable("goroutines-procs1")
    argv = [sys.executable, _net.EXAMPLE, "--port", "0", "--procs", "1"]
    proc = subprocess.Popen(
        _net.pinned(_net.SERVER_CPU, argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("listening on http://127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, out, err) == (0, "stopped\n", "")


# ================================================================================ script


def _table(rows, header):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    return "\n".join(lines)


def _skip_reason(server, workload):
    try:
        if workload == "http":
            _net.wrk_path()
        _net.netload()
    except _net.Unavailable as exc:
        return str(exc)
    return _net.missing(server)


def script_echo(duration, rounds):
    """Every echo server runs at once (idle but for the one under load); each round loads
    them in turn, so a slower patch of a shared machine hits every server alike. The
    table gives the median of the rounds, and the spread of the CPU figure."""
    rows, up, runs = [], {}, {}
    with contextlib.ExitStack() as stack:
        for server in _net.ECHO_SERVERS:
            if reason := _skip_reason(server, "echo"):
                rows.append([server, "skipped: " + reason, "", "", "", ""])
                continue
            up[server] = pid, port = stack.enter_context(_net.running("echo", server))
            # Warm-up, as in the pytest entries: a server's first connections can cost
            # more than later ones (asyncio's 256 KiB reads stop mapping memory once glibc
            # has freed a large block, at the first disconnections).
            _net.echo(pid, port, conns=CONNS, size=SIZE, duration=0.5)
        for _ in range(rounds):
            for server, (pid, port) in up.items():
                r = _net.echo(pid, port, conns=CONNS, size=SIZE, warmup=0.2, duration=duration)
                runs.setdefault(server, []).append(_echo_figures([r]))
                print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    results = {
        server: {key: statistics.median(f[key] for f in figures) for key in figures[0]}
        for server, figures in runs.items()
    }
    ours = results.get(_TARGET_SERVER, {}).get("cpu_us_per_rt")
    for server, figures in results.items():
        cpu = [f["cpu_us_per_rt"] for f in runs[server]]
        rows.append(
            [
                server,
                f"{figures['rt_per_s']:,.0f}",
                f"{figures['cpu_us_per_rt']:.2f}",
                f"{min(cpu):.2f}-{max(cpu):.2f}",
                f"{figures['cpu_us_per_rt'] / ours:.2f}x" if ours else "-",
                f"{figures['client_cpu_us_per_rt']:.2f}",
            ]
        )
    print(
        f"echo: {CONNS} connections, {SIZE} B messages; "
        f"median of {rounds} interleaved runs of {duration} s per server"
    )
    header = ["server", "round trips/s", "server CPU us/rt", "(range)", "vs goroutines-procs1"]
    header.append("client CPU us/rt")
    print(_table(rows, header))
    for name, (ratio, op, bound, met) in target_ratios(results).items():
        print(
            f"  {_TARGET_SERVER} {name} = {ratio:.2f} (target {op} {bound}): "
            + ("met" if met else "NOT met")
        )


def script_idle(conns):
    rows = []
    for server in _net.IDLE_SERVERS:
        if reason := _skip_reason(server, "idle"):
            rows.append([server, "skipped: " + reason, "", "", ""])
            continue
        with _net.running("echo", server) as (pid, port):
            r = _net.idle(pid, port, conns=conns, size=SIZE, echoes=ECHOES)
        rows.append(
            [
                server,
                f"{r['bytes_per_conn']:,.0f}",
                f"{r['p50_us']:.0f}",
                f"{r['p99_us']:.0f}",
                f"{r['max_us']:.0f}",
            ]
        )
    print(f"idle: {conns} idle connections, then {ECHOES} echoes on one active connection")
    print(_table(rows, ["server", "bytes/idle conn", "p50 us", "p99 us", "max us"]))


def script_http(duration):
    rows = []
    for server in _net.HTTP_SERVERS:
        if reason := _skip_reason(server, "http"):
            rows.append([server, "skipped: " + reason, "", ""])
            continue
        with _net.running("http", server) as (pid, port):
            r = _net.http(pid, port, duration=duration)
        rows.append(
            [
                server,
                f"{r['req_per_s']:,.0f}",
                f"{r['server_cpu_us_per_req']:.2f}",
                r["latency_avg"],
            ]
        )
    print(f"http: wrk -t1 -c100 -d{duration}s, keep-alive hello-world")
    print(_table(rows, ["server", "requests/s", "server CPU us/req", "wrk avg latency"]))


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Network benchmarks, every server in turn.")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per echo run")
    parser.add_argument("--rounds", type=int, default=3, help="echo runs per server")
    parser.add_argument("--idle", type=int, default=IDLE, help="idle connections")
    parser.add_argument("workloads", nargs="*", help="echo, idle, http (default: all)")
    args = parser.parse_args(argv)
    if unknown := set(args.workloads) - {"echo", "idle", "http"}:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    for workload in args.workloads or ["echo", "idle", "http"]:
        if workload == "echo":
            script_echo(args.duration, args.rounds)
        elif workload == "idle":
            conns = idle_conns(args.idle)
            if conns < args.idle:
                print(f"(the fd limit allows {conns} idle connections, not {args.idle})")
            script_idle(conns)
        else:
            script_http(HTTP_SECONDS)
        print()


if __name__ == "__main__":
    main()
