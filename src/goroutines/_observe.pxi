# Included by _core.pyx: what the runtime shows of itself. gr.tasks() and gr.dump() (Go's
# goroutine dump), the Deadlock report, the watchdog that reports tasks hogging their M,
# the histograms and live counts of stats(), GOROUTINES_SCHEDTRACE and the dump signal.
# The C side is csrc/observe.h (the live registry, state timestamps, histograms) and
# csrc/watchdog.c; docs/observability.md is the user's guide.
import math
import signal
import time
import warnings

from libc.stdlib cimport malloc, free


cdef extern from "observe.h" nogil:
    enum:
        GR_HIST_BUCKETS
        GR_OBS_REASONS
    ctypedef struct gr_hist:
        pass
    ctypedef struct gr_live:
        gr_lock lock
        gr_g *head
        int64_t n
    ctypedef struct gr_pobs:
        gr_live live
        gr_hist latency
        gr_hist wait[16]
    int64_t gr_coarsetime()

cdef extern from "g.h" nogil:
    enum:
        GR_G_NEW, GR_G_RUNNABLE, GR_G_RUNNING, GR_G_WAITING, GR_G_DONE

cdef extern from *:
    """
    typedef struct gr_g gr_g;
    typedef struct gr_sched gr_sched;
    typedef struct gr_pobs gr_pobs;
    typedef struct gr_hist gr_hist;
    gr_pobs *gr_sched_pobs(gr_sched *s, int p);
    int gr_g_mid(gr_g *g);
    int64_t gr_g_since(gr_g *g);
    uint32_t gr_g_state_of(gr_g *g);
    void gr_hist_read(gr_hist *h, uint64_t *counts, uint64_t *n, uint64_t *sum, uint64_t *max);
    int64_t gr_sched_nexternal(gr_sched *s);
    gr_g *gr_g_live_next(gr_g *g);
    """
    gr_pobs *gr_sched_pobs(gr_sched *s, int p) nogil
    int gr_g_mid(gr_g *g) nogil
    int64_t gr_g_since(gr_g *g) nogil
    uint32_t gr_g_state_of(gr_g *g) nogil
    void gr_hist_read(gr_hist *h, uint64_t *counts, uint64_t *n, uint64_t *sum,
                      uint64_t *mx) nogil
    int64_t gr_sched_nexternal(gr_sched *s) nogil
    gr_g *gr_g_live_next(gr_g *g) nogil

cdef extern from "watchdog.h" nogil:
    ctypedef struct gr_watchdog:
        pass
    ctypedef struct gr_hog:
        int p
        uint64_t gid
        int64_t held_ns
    gr_watchdog *gr_watchdog_new(gr_sched *s, int64_t threshold_ns)
    int gr_watchdog_next(gr_watchdog *w, gr_hog *out)
    int gr_watchdog_ongoing(gr_watchdog *w, const gr_hog *h)
    void gr_watchdog_stop(gr_watchdog *w)
    void gr_watchdog_free(gr_watchdog *w)

cdef extern from "Python.h":
    void Py_IncRef(PyObject *o)
    void Py_DecRef(PyObject *o)

cdef extern from *:
    """
    #if PY_VERSION_HEX < 0x030B0000
    #include <frameobject.h>  /* 3.10: PyFrameObject's fields (f_lasti) */
    #endif

    /* The code object and instruction offset of the Python frame that called go(): its
       line is worked out only when someone asks (PyCode_Addr2Line walks the line table,
       which costs more than the rest of a spawn). Py_None when no Python frame called. */
    static PyObject *gr_caller_code(int *lasti)
    {
        PyFrameObject *f = PyEval_GetFrame();
        if (f == NULL) {
            *lasti = -1;
            Py_INCREF(Py_None);
            return Py_None;
        }
    #if PY_VERSION_HEX >= 0x030B0000
        *lasti = PyFrame_GetLasti(f);
    #else
        *lasti = f->f_lasti * 2;  /* 3.10 counts code units */
    #endif
        return (PyObject *)PyFrame_GetCode(f);
    }

    static int gr_code_line(PyObject *code, int lasti)
    {
        return PyCode_Addr2Line((PyCodeObject *)code, lasti);
    }
    """
    object gr_caller_code(int *lasti)
    int gr_code_line(object code, int lasti)


# Most frames of a stack kept per task (the innermost ones).
cdef int _STACK_LIMIT = 64
# Most tasks the Deadlock message lists one by one; the grouped stacks follow.
cdef int _DEADLOCK_LIST_MAX = 1000
_STATES = {GR_G_NEW: "runnable", GR_G_RUNNABLE: "runnable", GR_G_RUNNING: "running",
           GR_G_WAITING: "parked", GR_G_DONE: "done"}
# Frames in these files are the runtime's own: the "line a task waits on" is the innermost
# frame outside them.
_OWN_DIR = os.path.dirname(os.path.abspath(__file__))


class HogWarning(RuntimeWarning):
    """Issued by the watchdog (``run(..., watchdog=seconds)``) when a task has held its M
    longer than the threshold without yielding: the other tasks of its processor waited
    all that time. ``task_id``, ``task_name``, ``held`` (seconds, when noticed), ``m`` and
    ``stack`` (a ``traceback.StackSummary`` of where the task was) tell which and where.

    Example::

        import warnings
        with warnings.catch_warnings(record=True) as seen:
            gr.run(gr.gosched, watchdog=0.1)
        hogs = [w for w in seen if issubclass(w.category, gr.HogWarning)]
    """

    def __init__(self, message, task_id=0, task_name="", held=0.0, m=0, stack=None):
        super().__init__(message)
        self.task_id = task_id
        self.task_name = task_name
        self.held = held
        self.m = m
        self.stack = stack


class TaskInfo:
    """One task in a snapshot taken by ``tasks()``.

    ``state`` is "running", "runnable" or "parked". ``wait_reason`` says what a
    parked task waits on ("chan receive", "sleep", "join", ...), else None. ``m`` is the M
    (and P: each M owns one) the task is pinned to, None before it first runs. ``seconds``
    is how long a parked task has been parked (to a few milliseconds), None for the others. ``spawned_at`` is ``(filename, line)`` of the go() call when
    the GOROUTINES_SPAWN_SITES=1 environment variable was set at run(), else None (and None
    when no Python code called go()). ``stack`` is a ``traceback.StackSummary``, innermost frame
    last: empty for a task that has not run yet, None where it cannot be read safely (a
    free-threaded build, for a task of another M that may be running meanwhile).

    Example::

        for info in gr.tasks():
            print(info.id, info.name, info.state, info.wait_reason)
    """

    __slots__ = ("task", "id", "name", "state", "wait_reason", "m", "seconds", "spawned_at",
                 "stack")

    def __init__(self, task, id, name, state, wait_reason, m, seconds, spawned_at, stack):
        self.task = task
        self.id = id
        self.name = name
        self.state = state
        self.wait_reason = wait_reason
        self.m = m
        self.seconds = seconds
        self.spawned_at = spawned_at
        self.stack = stack

    @property
    def p(self):
        """The P the task runs on: the same number as its M (an M owns its P for good)."""
        return self.m

    @property
    def waiting_at(self):
        """``(filename, line)`` the task waits on or runs at: its innermost frame outside
        goroutines itself; None without a stack."""
        if not self.stack:
            return None
        for fs in reversed(self.stack):
            if not fs.filename.startswith(_OWN_DIR):
                return (fs.filename, fs.lineno)
        return (self.stack[-1].filename, self.stack[-1].lineno)

    def __repr__(self):
        what = f"{self.state} on {self.wait_reason}" if self.wait_reason else self.state
        if self.seconds is not None:
            what += f" {self.seconds:.3f}s"
        return f"<TaskInfo {self.id} {self.name} {what}>"


# GOROUTINES_SPAWN_SITES=1 (read by run()): go() records where it was called. Off by
# default: it costs about 40 ns a spawn, a tenth of a trivial task's whole cost.
cdef bint _spawn_sites = False


cdef int _resolve_spawn_sites() except -1:
    global _spawn_sites
    env = os.environ.get("GOROUTINES_SPAWN_SITES", "").strip()
    if env not in ("", "0", "1"):
        raise ValueError(f"GOROUTINES_SPAWN_SITES must be 0 or 1, got {env!r}")
    _spawn_sites = env == "1"
    return 0


cdef inline void _note_spawn_site(Task t) noexcept:
    if _spawn_sites:
        _record_spawn_site(t)


cdef void _record_spawn_site(Task t) noexcept:
    cdef int lasti
    try:
        t.spawn_code = gr_caller_code(&lasti)
        t.spawn_lasti = lasti
    except BaseException:
        t.spawn_code = None


cdef object _spawn_site(Task t):
    code = t.spawn_code
    if code is None:
        return None
    return (code.co_filename, gr_code_line(code, t.spawn_lasti))


cdef list _live_tasks(Runtime rt):
    """A strong reference to every live Task, P by P, each under its list's lock: a Task
    on a list is alive (the runtime's reference is dropped only after gr_g_finish unlinks
    it), and the lock is held only to copy pointers and count references."""
    cdef list out = []
    cdef gr_live *l
    cdef gr_g *g
    cdef PyObject **buf
    cdef Py_ssize_t n, i, cap
    cdef int p
    for p in range(rt.nprocs):
        l = &gr_sched_pobs(rt.s, p).live
        cap = 64
        while True:
            buf = <PyObject **>malloc(cap * sizeof(PyObject *))
            if buf == NULL:
                raise MemoryError()
            n = 0
            gr_lock_acquire(&l.lock)
            g = l.head
            while g != NULL and n < cap:
                buf[n] = <PyObject *>g.obj
                Py_IncRef(buf[n])
                n += 1
                g = gr_g_live_next(g)
            gr_lock_release(&l.lock)
            if g == NULL:
                break
            for i in range(n):  # it grew meanwhile: again with room for all
                Py_DecRef(buf[i])
            free(buf)
            cap *= 4
        for i in range(n):
            out.append(<object>buf[i])
            Py_DecRef(buf[i])
        free(buf)
    return out


cdef object _stack_of(Runtime rt, Task t, uint32_t state, bint quiescent, dict frames):
    """The task's suspended (or running) stack, None where reading it is not safe."""
    cdef gr_m *me = gr_m_current()
    cdef int mid = gr_g_mid(&t.g)
    cdef M m
    if state == GR_G_NEW or mid < 0:
        return traceback.StackSummary()
    cdef bint own = me != NULL and me.id == mid
    if not (own or quiescent or _gil_enabled()):
        # Free-threaded: another M may resume the greenlet while its frames are walked.
        return None
    frame = None
    m = rt.ms[mid]
    if own and m.cur is t:
        frame = _current_frame()  # the caller of tasks(): tasks() is a C function
    elif state == GR_G_RUNNING and not own:
        frame = frames.get(m.ident) if m.cur is t else None
    else:
        glet = t.glet
        if glet is not None and own and glet is PyGreenlet_GetCurrent():
            # t parked and its greenlet runs the scheduler meanwhile (the deadlock report
            # is made there): its frames are this greenlet's.
            frame = _current_frame()
        elif glet is not None:
            frame = glet.gr_frame
            if frame is None and glet and not own:
                # Active: the greenlet runs its M's scheduler, so the thread's frames are
                # the task's (the scheduler itself has none).
                frame = frames.get(m.ident)
    if frame is None:
        return traceback.StackSummary()
    stack = traceback.StackSummary.extract(traceback.walk_stack(frame), limit=_STACK_LIMIT,
                                           lookup_lines=False)
    stack.reverse()
    return stack


cdef object _current_frame():
    """The innermost Python frame of this greenlet, None if it has none (a task started
    with a C function, such as gr.sleep)."""
    try:
        return sys._getframe()
    except ValueError:
        return None


cdef list _task_infos(Runtime rt, bint quiescent):
    cdef list out = []
    cdef Task t
    cdef uint32_t state, reason
    cdef int64_t now = gr_coarsetime()
    cdef int mid
    frames = sys._current_frames()
    for t in _live_tasks(rt):
        state = gr_g_state_of(&t.g)
        if state == GR_G_DONE:
            continue
        reason = t.g.park_reason
        mid = gr_g_mid(&t.g)
        out.append(TaskInfo(
            t, t.g.id, t.name, _STATES[state],
            _PARK_REASONS[reason] if state == GR_G_WAITING and reason < len(_PARK_REASONS) and reason else None,
            mid if mid >= 0 else None,
            max(0, now - gr_g_since(&t.g)) / 1e9 if state == GR_G_WAITING else None,
            _spawn_site(t),
            _stack_of(rt, t, state, quiescent, frames)))
    out.sort(key=lambda info: info.id)
    return out


def tasks() -> list:
    """A snapshot of every live task, as ``TaskInfo`` records sorted by id: its name,
    state, wait reason, M, time in that state, where it was spawned and its stack. Safe
    from any thread while run() runs (from a task, a signal handler, another thread).

    Example::

        parked = [i for i in gr.tasks() if i.state == "parked"]
    """
    cdef Runtime rt = _active("tasks")
    return _task_infos(rt, False)


cdef str _fmt_seconds(double s):
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.0f} minutes"


cdef str _format_dump(list infos, str title):
    """Go's goroutine dump, with tasks of identical stack and state grouped together."""
    groups = {}
    for info in infos:
        stack = info.stack
        frames = None if stack is None else tuple((fs.filename, fs.lineno, fs.name) for fs in stack)
        key = (info.name, info.state, info.wait_reason, frames, info.spawned_at)
        groups.setdefault(key, []).append(info)
    lines = [title]
    for key, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[1][0].id)):
        first = members[0]
        what = f"{first.state} on {first.wait_reason}" if first.wait_reason else first.state
        span = ""
        if first.seconds is not None:
            lo = min(i.seconds for i in members)
            hi = max(i.seconds for i in members)
            span = ", " + (_fmt_seconds(hi) if len(members) == 1 or hi - lo < 0.5 else
                           f"{_fmt_seconds(lo)} to {_fmt_seconds(hi)}")
        where = f", M{first.m}" if first.m is not None and len({i.m for i in members}) == 1 else ""
        if len(members) == 1:
            lines.append(f"\ntask {first.id} [{what}{span}{where}]: {first.name}")
        else:
            ids = " ".join(str(i.id) for i in members[:20])
            more = f" (+{len(members) - 20} more)" if len(members) > 20 else ""
            lines.append(f"\n{len(members)} tasks [{what}{span}{where}]: {first.name}"
                         f"\n  ids: {ids}{more}")
        if first.stack is None:
            lines.append("  (stack not readable from here on a free-threaded build)")
        elif not first.stack:
            lines.append("  (not started yet)" if first.m is None else
                         "  (no Python frames: it waits in a C function it was started with)")
        else:
            lines.append("".join(first.stack.format()).rstrip("\n"))
        if first.spawned_at is not None:
            lines.append(f"  spawned at {first.spawned_at[0]}:{first.spawned_at[1]}")
    return "\n".join(lines) + "\n"


def dump(file=None) -> None:
    """Print every live task to ``file`` (default sys.stderr), tasks with the same state and
    stack grouped as Go's goroutine dump groups them: the first thing to look at when a
    program hangs. ``GOROUTINES_DUMP_SIGNAL=SIGUSR1`` makes ``kill -USR1 <pid>`` print it
    from a running program.

    Example::

        gr.dump()
    """
    cdef Runtime rt = _active("dump")
    infos = _task_infos(rt, False)
    text = _format_dump(infos, f"goroutines: {len(infos)} tasks, procs={rt.nprocs}")
    out = sys.stderr if file is None else file
    out.write(text)
    flush = getattr(out, "flush", None)
    if flush is not None:
        flush()


cdef str _deadlock_message(Runtime rt):
    """Go's "all goroutines are asleep - deadlock!": each stuck task with what it waits on
    and the line it waits at, then their grouped stacks. Every M is idle, so every stack
    can be read (quiescent)."""
    infos = [i for i in _task_infos(rt, True) if i.state == "parked"]
    lines = []
    for info in infos[:_DEADLOCK_LIST_MAX]:
        at = info.waiting_at
        line = repr(info.task)
        if at is not None:
            line += f" at {at[0]}:{at[1]}"
        lines.append("  " + line)
    if len(infos) > _DEADLOCK_LIST_MAX:
        lines.append(f"  ... and {len(infos) - _DEADLOCK_LIST_MAX} more")
    return ("all tasks are asleep - deadlock!\n\n" + "\n".join(lines) + "\n\n" +
            _format_dump(infos, "stacks:"))


# ---- helper threads: the watchdog and the schedtrace printer -----------------------------


cdef double _resolve_watchdog(object watchdog) except -1:
    """The watchdog threshold in seconds, 0 for none."""
    if watchdog is None:
        env = os.environ.get("GOROUTINES_WATCHDOG")
        if env is None or not env.strip():
            return 0
        try:
            s = float(env)
        except ValueError:
            s = -1.0
        if not (s >= 0 and math.isfinite(s)):
            raise ValueError("GOROUTINES_WATCHDOG must be a non-negative number of seconds "
                             f"(0: off), got {env!r}")
        return s
    cdef double s2 = _seconds(watchdog, "watchdog")
    if not math.isfinite(s2):
        raise ValueError(f"watchdog must be a finite number of seconds, got {watchdog!r}")
    return s2


cdef double _resolve_schedtrace() except -1:
    """GOROUTINES_SCHEDTRACE's period in seconds (it is given in ms), 0 for none."""
    env = os.environ.get("GOROUTINES_SCHEDTRACE")
    if env is None or not env.strip():
        return 0
    try:
        ms = int(env)
    except ValueError:
        ms = -1
    if ms < 0:
        raise ValueError("GOROUTINES_SCHEDTRACE must be a period in milliseconds (0: off), "
                         f"got {env!r}")
    return ms / 1000.0


cdef object _resolve_dump_signal():
    env = os.environ.get("GOROUTINES_DUMP_SIGNAL")
    if env is None or not env.strip():
        return None
    name = env.strip().upper()
    sig = getattr(signal, name if name.startswith("SIG") else "SIG" + name, None)
    if not isinstance(sig, signal.Signals) or sig in (signal.SIGKILL, signal.SIGSTOP):
        try:
            sig = signal.Signals(int(name))
        except ValueError:
            raise ValueError("GOROUTINES_DUMP_SIGNAL must name a signal that can be caught, "
                             f"such as SIGUSR1, got {env!r}") from None
    return sig


@cython.final
cdef class _Observers:
    """The helper threads of one run: they are the runtime's own, so the deadlock check
    does not count them as outside threads that could wake a task (idents)."""
    cdef Runtime rt
    cdef gr_watchdog *wd
    cdef double threshold
    cdef object stop_event
    cdef list threads
    cdef set idents
    cdef object dump_signal, old_handler

    def __dealloc__(self):
        gr_watchdog_free(self.wd)

    def __cinit__(self):
        self.threads = []
        self.idents = set()
        self.stop_event = threading.Event()

    cdef start(self, double watchdog, double schedtrace, object dump_signal):
        if dump_signal is not None:
            if threading.current_thread() is threading.main_thread():
                self.old_handler = signal.signal(dump_signal, _dump_on_signal)
                self.dump_signal = dump_signal
            else:
                _log.warning("goroutines: GOROUTINES_DUMP_SIGNAL is ignored: run() is not on "
                             "the main thread, where signal handlers are installed")
        if watchdog > 0:
            self.threshold = watchdog
            self.wd = gr_watchdog_new(self.rt.s, <int64_t>(watchdog * 1e9))
            if self.wd == NULL:
                raise MemoryError()
            self._thread(self._watch, "goroutines-watchdog")
        if schedtrace > 0:
            self._thread(lambda: self._schedtrace(schedtrace), "goroutines-schedtrace")

    cdef _thread(self, target, name):
        started = threading.Event()

        def body():
            self.idents.add(threading.get_ident())
            started.set()
            target()

        th = threading.Thread(target=body, name=name, daemon=True)
        th.start()
        started.wait()  # its ident is known before any deadlock check could miss it
        self.threads.append(th)

    cdef stop(self):
        self.stop_event.set()
        if self.wd != NULL:
            gr_watchdog_stop(self.wd)
        for th in self.threads:
            th.join()
        if self.dump_signal is not None:
            signal.signal(self.dump_signal, self.old_handler)
            self.dump_signal = None

    def _watch(self):
        cdef gr_hog hog
        cdef int found
        cdef M m
        while True:
            with nogil:
                found = gr_watchdog_next(self.wd, &hog)
            if not found:
                return
            try:
                m = self.rt.ms[hog.p]
                frame = sys._current_frames().get(m.ident)
                # Without the GIL the M runs on while its frames are read: only the innermost
                # one, which a hog keeps, is taken there (a deeper walk could follow f_back
                # into frames being popped).
                stack = traceback.StackSummary.extract(
                    traceback.walk_stack(frame), limit=_STACK_LIMIT if _gil_enabled() else 1
                ) if frame is not None else None
                if stack is not None:
                    stack.reverse()
                # The frames are the task's only if it still runs: it may have yielded.
                if not gr_watchdog_ongoing(self.wd, &hog):
                    continue
                self._report(hog, m, stack)
            except BaseException as e:  # a report must never take the run down
                _log.error("goroutines: the watchdog failed to report a hog: %r", e)

    cdef _report(self, gr_hog hog, M m, stack):
        name = "?"
        for t in _live_tasks(self.rt):
            if (<Task>t).g.id == hog.gid:
                name = (<Task>t).name
                break
        held = hog.held_ns / 1e9
        msg = (f"goroutines: task {hog.gid} ({name}) has held M{hog.p} for {held:.3f} s "
               f"without yielding (watchdog threshold {self.threshold:g} s); the other tasks "
               f"of its processor wait meanwhile. Offload blocking calls with gr.blocking(), "
               f"or call gr.gosched() in long loops.")
        if stack:
            msg += " It was at:\n" + "".join(stack.format()).rstrip("\n")
        w = HogWarning(msg, hog.gid, name, held, hog.p, stack)
        if stack:
            where = stack[-1]
            warnings.warn_explicit(w, HogWarning, where.filename, where.lineno or 0)
        else:
            warnings.warn(w, stacklevel=1)

    def _schedtrace(self, double period):
        start = time.monotonic()
        while not self.stop_event.wait(period):
            sys.stderr.write(_schedtrace_line(self.rt, time.monotonic() - start) + "\n")
            sys.stderr.flush()


def _dump_on_signal(signum, frame):
    dump()


cdef str _schedtrace_line(Runtime rt, double elapsed):
    """One line like Go's GODEBUG=schedtrace: processors, idle Ms, spinning Ms, live tasks,
    the global queue and [each P's local queue]."""
    cdef gr_pstats_snapshot snap
    cdef int i
    local = []
    for i in range(rt.nprocs):
        gr_sched_pstats(rt.s, i, &snap)
        local.append(str(snap.runq_len))
    return (f"SCHED {elapsed * 1000:.0f}ms: procs={rt.nprocs} idleprocs={gr_sched_nmidle(rt.s)} "
            f"spinning={gr_sched_nmspinning(rt.s)} tasks={gr_sched_live(rt.s)} "
            f"blocking={gr_sched_nexternal(rt.s)} runqueue={gr_sched_globalq_len(rt.s)} "
            f"[{' '.join(local)}]")


# ---- histograms for stats() -------------------------------------------------------------


cdef dict _hist_dict(gr_hist *h):
    """A histogram's counts and summary: bucket i holds durations below 2**i ns (and at
    least 2**(i-1)); p50 and p99 are the upper bounds of the buckets they fall in, in
    seconds, so they are at most 2x high."""
    cdef uint64_t counts[GR_HIST_BUCKETS]
    cdef uint64_t n, total, mx
    gr_hist_read(h, counts, &n, &total, &mx)
    return _hist_from([counts[i] for i in range(GR_HIST_BUCKETS)], total, mx)


cdef dict _hist_from(list counts, uint64_t total, uint64_t mx):
    n = sum(counts)
    return {"count": n, "sum": total / 1e9, "max": mx / 1e9,
            "p50": _quantile(counts, n, 0.5), "p99": _quantile(counts, n, 0.99),
            "buckets": counts}


cdef double _quantile(list counts, uint64_t n, double q):
    if n == 0:
        return 0.0
    cdef double want = q * n
    cdef uint64_t seen = 0
    for i, c in enumerate(counts):
        seen += c
        if seen >= want:
            return (1 << i) / 1e9
    return (1 << (len(counts) - 1)) / 1e9


cdef dict _merge_hists(list hists):
    counts = [0] * GR_HIST_BUCKETS
    total = 0.0
    mx = 0.0
    for h in hists:
        for i, c in enumerate(h["buckets"]):
            counts[i] += c
        total += h["sum"]
        mx = max(mx, h["max"])
    n = sum(counts)
    return {"count": n, "sum": total, "max": mx, "p50": _quantile(counts, n, 0.5),
            "p99": _quantile(counts, n, 0.99), "buckets": counts}


cdef void _observe_pstats(Runtime rt, int p, dict out) noexcept:
    cdef gr_pobs *o = gr_sched_pobs(rt.s, p)
    out["latency"] = _hist_dict(&o.latency)
    out["tasks"] = o.live.n
    waits = {}
    for r in range(1, min(len(_PARK_REASONS), GR_OBS_REASONS)):
        waits[_PARK_REASONS[r]] = _hist_dict(&o.wait[r])
    out["wait"] = waits


cdef dict _observe_totals(Runtime rt, list per):
    pool = _pool
    if pool is not None:
        with pool.lock:
            offload = {"threads": pool.threads, "idle": pool.idle, "queued": pool.backlog}
    else:
        offload = {"threads": 0, "idle": 0, "queued": 0}
    offload["in_flight"] = gr_sched_nexternal(rt.s)
    return {
        "latency": _merge_hists([p["latency"] for p in per]),
        "wait": {r: _merge_hists([p["wait"][r] for p in per]) for r in per[0]["wait"]},
        "from_global": sum(p["from_global"] for p in per),
        "runq_len": sum(p["runq_len"] for p in per),
        "offload": offload,
        "fd_waiters": gr_netpoll_nwait(&_netpoll),
        # The poller is the process's, shared by runs: counts since its first use.
        "polls": gr_netpoll_npolls(&_netpoll),
        "poll_blocks": gr_netpoll_nblocks(&_netpoll),
    }
