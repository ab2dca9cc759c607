"""Process plumbing for bench/bench_net.py: the C load generator, server processes pinned
to one CPU, and the three workloads (echo, idle connections, HTTP with wrk).

Every server runs in its own process on SERVER_CPU; the load generator (bench/netload.c,
or wrk) on CLIENT_CPU. Servers listen on a port the kernel picks and print it; every
process started here is killed on the way out, whatever happened.
"""

import contextlib
import hashlib
import importlib
import json
import os
import re
import resource
import selectors
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SERVERS = BENCH / "_netservers.py"
EXAMPLE = ROOT / "examples" / "http_server.py"
NETLOAD_SRC = BENCH / "netload.c"

_ALLOWED = sorted(os.sched_getaffinity(0))
SERVER_CPU = _ALLOWED[0]
CLIENT_CPU = _ALLOWED[1] if len(_ALLOWED) > 1 else _ALLOWED[0]

ECHO_SERVERS = [
    "c-echo",
    "uvloop-protocols",
    "asyncio-protocols",
    "uvloop-streams",
    "asyncio-streams",
    "gevent",
    "trio",
    "threads",
    "goroutines-procs1",
    "goroutines-procs2",
]
IDLE_SERVERS = ["uvloop-protocols", "asyncio-streams", "gevent", "goroutines-procs1"]
HTTP_SERVERS = ["uvloop-protocols", "asyncio-protocols", "gevent-pywsgi", "goroutines-procs1"]

# The module each server needs, for a clear skip where it is missing.
_NEEDS = {"gevent": "gevent", "uvloop": "uvloop", "trio": "trio", "goroutines": "goroutines.socket"}


class Unavailable(Exception):
    """This machine lacks what a workload needs (a compiler, wrk, a peer library)."""


def missing(server):
    """Why ``server`` cannot run here, or None if it can."""
    for prefix, module in _NEEDS.items():
        if server.startswith(prefix):
            try:
                importlib.import_module(module)
            except ImportError as exc:
                return f"{module} is not importable: {exc}"
    return None


def netload():
    """The load generator binary, compiled once per version of netload.c (cached in
    build/bench/)."""
    source = NETLOAD_SRC.read_bytes()
    out = ROOT / "build" / "bench" / f"netload-{hashlib.sha1(source).hexdigest()[:12]}"
    if out.exists():
        return out
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise Unavailable("no C compiler (cc) to build bench/netload.c")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    subprocess.run([cc, "-O2", "-o", str(tmp), str(NETLOAD_SRC)], check=True)
    tmp.replace(out)  # atomic: a concurrent run sees the whole binary or none
    return out


# Runs a command pinned to one CPU with the fd limit raised to the hard one: a wrapper that
# execs the command, because preexec_fn is unsafe in a process that may have threads. It
# also undoes an ignored SIGINT (a shell's background job), which exec would keep.
_PIN = """
import os, resource, signal, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
signal.signal(signal.SIGINT, signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
os.execv(sys.argv[2], sys.argv[2:])
"""


def pinned(cpu, argv):
    """``argv`` run pinned to ``cpu``, with RLIMIT_NOFILE raised to its hard limit and the
    default SIGINT action."""
    return [sys.executable, "-c", _PIN, str(cpu), *map(str, argv)]


def nofile_limit():
    """The hard RLIMIT_NOFILE: the most descriptors a server or client process can open."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def proc_cpu(pid):
    """utime+stime of process ``pid`` (all threads) in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_argv(workload, server):
    if server == "c-echo":
        return [str(netload()), "server"]
    if workload == "http" and server.startswith("goroutines-procs"):
        procs = server.removeprefix("goroutines-procs")
        return [sys.executable, str(EXAMPLE), "--port", "0", "--procs", procs]
    return [sys.executable, str(SERVERS), f"{workload}:{server}"]


@contextlib.contextmanager
def running(workload, server, timeout=30.0):
    """Start ``server`` for ``workload`` ("echo" or "http") pinned to SERVER_CPU; yield
    (pid, port); kill it on the way out."""
    reason = missing(server)
    if reason:
        raise Unavailable(reason)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            pinned(SERVER_CPU, _server_argv(workload, server)),
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
        )
        try:
            port = _read_port(proc, timeout)
            if port is None:
                errors.seek(0)
                tail = errors.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"{server} did not start (exit {proc.poll()}):\n{tail}")
            yield proc.pid, port
            if proc.poll() is not None:
                errors.seek(0)
                tail = errors.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"{server} died during the run:\n{tail}")
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()


def _read_port(proc, timeout):
    """The port from the server's first line (``... HOST:PORT``), or None."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return None
    m = re.search(rb":(\d+)\s*$", proc.stdout.readline())
    return int(m.group(1)) if m else None


def _run_client(argv, timeout):
    out = subprocess.run(
        pinned(CLIENT_CPU, argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"netload {argv[1]} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def echo(pid, port, *, conns=100, size=1024, warmup=0.0, duration=0.0, count=0):
    """One load-generator run against the echo server (pid, port): ``conns`` connections,
    each with one ``size``-byte message in flight, measured for ``count`` round trips (or
    ``duration`` seconds) after ``warmup`` seconds. Returns a dict with round_trips,
    elapsed, rt_per_s, server_cpu_us_per_rt, client_cpu_us_per_rt."""
    argv = [str(netload()), "echo", port, conns, size, warmup, duration, count, pid]
    r = _run_client(argv, timeout=120 + warmup + duration)
    rts = r["round_trips"]
    return {
        **r,
        "rt_per_s": rts / r["elapsed"],
        "server_cpu_us_per_rt": r["server_cpu"] / rts * 1e6,
        "client_cpu_us_per_rt": r["client_cpu"] / rts * 1e6,
    }


def idle(pid, port, *, conns, size=1024, echoes=1000):
    """Open ``conns`` idle connections to the echo server (pid, port), then time
    ``echoes`` round trips of one active connection. Returns a dict with idle, p50_us,
    p99_us, max_us, open_s and bytes_per_conn (the server's VmRSS growth / conns)."""
    argv = [str(netload()), "idle", port, conns, size, echoes, pid]
    r = _run_client(argv, timeout=300)
    growth = (r["rss_after_kb"] - r["rss_before_kb"]) * 1024
    return {**r, "bytes_per_conn": growth / conns if conns else 0.0}


def wrk_path():
    """The wrk binary, or Unavailable with the reason."""
    path = shutil.which("wrk")
    if path is None:
        raise Unavailable("wrk is not installed (Debian: apt-get install wrk)")
    return path


def http(pid, port, *, duration=3, conns=100):
    """One wrk run (1 thread, ``conns`` keep-alive connections, ``duration`` whole seconds)
    against the HTTP server (pid, port). Returns a dict with requests, req_per_s,
    server_cpu_us_per_req, latency_avg and errors (non-2xx answers and socket errors)."""
    argv = [wrk_path(), "-t1", f"-c{conns}", f"-d{duration}s", f"http://127.0.0.1:{port}/"]
    cpu0 = proc_cpu(pid)
    out = subprocess.run(
        pinned(CLIENT_CPU, argv),
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    cpu = proc_cpu(pid) - cpu0
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = re.search(r"Latency\s+(\S+)", out)
    return {
        "requests": requests,
        "req_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "server_cpu_us_per_req": cpu / requests * 1e6 if requests else float("nan"),
        "latency_avg": latency.group(1) if latency else "-",
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
    }
