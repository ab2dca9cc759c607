# Included by _core.pyx: the execution tracer's Python side. csrc/trace.c records the
# scheduling events in per-thread rings; this part starts and stops a session, names the
# tasks (names are Python's: an index into a table here, carried by the create and end
# events), and collects the rings into a Chrome Trace Event file (goroutines.trace
# builds and renders it).
from libc.stdint cimport int16_t, uint16_t
from libc.stdlib cimport free

import importlib


cdef extern from "trace.h" nogil:
    enum:
        GR_TEV_GO_CREATE
        GR_TEV_GO_END
        GR_TEV_OFFLOAD
        GR_TEV_OFFLOAD_RUN
        GR_TEV_OFFLOAD_DONE
        GR_TEV_NKINDS

    ctypedef struct gr_trace_ev:
        int64_t ts
        uint64_t g
        uint64_t arg
        uint16_t kind
        int16_t m
        uint32_t aux

    ctypedef struct gr_trace_rec:
        gr_trace_ev ev
        uint32_t thread

    bint GR_TRACING()
    int gr_trace_start(uint32_t cap)
    void gr_trace_stop()
    int gr_trace_collect(gr_trace_rec **out, size_t *n, uint64_t *dropped)
    void gr_trace_emit(uint32_t kind, uint64_t g, uint64_t arg, uint32_t aux)
    void GR_TRACE(uint32_t kind, uint64_t g, uint64_t arg, uint32_t aux)


# The event kinds, in trace.h's order (goroutines.trace reads events by these names).
_TRACE_KINDS = ("none", "create", "run", "park", "yield", "unpark", "end", "steal", "global",
                "spin", "spin_end", "m_park", "m_wake", "backoff", "poll", "offload",
                "offload_run", "offload_done", "m_unpark")
assert len(_TRACE_KINDS) == GR_TEV_NKINDS
_WAKE_REASONS = ("", "ready", "timeout", "cancel")
_TRACE_BUFFER = 1 << 16
_TRACE_MAX_BUFFER = 1 << 24
# Distinct task names kept (a program that makes names up per task would grow the table
# without end); past it, tasks are named by id only.
_TRACE_MAX_NAMES = 1 << 16

# Guards the session and the name table's growth; lookups run without it.
_tr_lock = threading.Lock()
_tr_names = ["?"]     # index -> name; 0: unknown
_tr_name_ids = {}     # name -> index
# Task id -> name index, for the tasks a session saw created and not yet end: tasks still
# running when it stops are named from here.
_tr_live = {}
_tr_active = None     # the Trace recording, or None


cdef uint32_t _tr_name(str name) except? 0:
    idx = _tr_name_ids.get(name)
    if idx is None:
        with _tr_lock:
            idx = _tr_name_ids.get(name)
            if idx is None:
                if len(_tr_names) >= _TRACE_MAX_NAMES:
                    return 0
                idx = len(_tr_names)
                _tr_names.append(name)
                _tr_name_ids[name] = idx
    return idx


cdef int _trace_created(Task t) except -1:
    """A task was created while a trace records (_new_task)."""
    cdef uint32_t idx = _tr_name(t.name)
    _tr_live[t.g.id] = idx
    gr_trace_emit(GR_TEV_GO_CREATE, t.g.id, 0, idx)
    return 0


cdef uint32_t _trace_name_of(Task t) noexcept:
    """t's name index, taken while its function is still known (_finish)."""
    try:
        idx = _tr_live.pop(t.g.id, None)
        return _tr_name(t.name) if idx is None else idx
    except BaseException:
        return 0  # the trace only loses the name


def _check_trace_path(path):
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"cannot write the trace to {path!r}: no directory {parent!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write the trace to {path!r}: it is a directory")
    return path


class Trace:
    """An execution trace being recorded; see :func:`trace`.

    After the ``with`` block: ``events`` is the number of events written to ``path``, and
    ``dropped`` how many the per-thread rings overwrote (the oldest first).

    Example::

        with gr.Trace("run.json", buffer=4096) as tr:
            gr.run(lambda: None)
        assert tr.dropped == 0
    """

    def __init__(self, path, *, buffer=_TRACE_BUFFER):
        self.path = _check_trace_path(path)
        if isinstance(buffer, bool) or not isinstance(buffer, int):
            raise TypeError(f"buffer must be an int (events per thread), not {type(buffer).__name__}")
        if not 16 <= buffer <= _TRACE_MAX_BUFFER:
            raise ValueError(f"buffer must be between 16 and {_TRACE_MAX_BUFFER} events per "
                             f"thread, got {buffer}")
        self.buffer = buffer
        self.events = 0
        self.dropped = 0
        self._started = 0
        self._state = "new"

    def __repr__(self):
        return f"<Trace {self.path!r} {self._state}>"

    def __enter__(self):
        global _tr_active
        if self._state != "new":
            raise RuntimeError("a Trace records once: make a new one with goroutines.trace()")
        _check_not_forked()
        with _tr_lock:
            if _tr_active is not None or gr_trace_start(self.buffer) != 0:
                raise RuntimeError("a trace is already recording (one at a time per process)")
            _tr_active = self
            _tr_live.clear()
            self._started = gr_nanotime()
            self._state = "recording"
        cdef M m = _curm()
        if m is not None and m.cur is not None:  # inside a task: name it, it runs already
            _tr_live[m.cur.g.id] = _tr_name(m.cur.name)
        return self

    def __exit__(self, *exc_info):
        global _tr_active
        cdef gr_trace_rec *recs = NULL
        cdef size_t n = 0, i
        cdef uint64_t dropped = 0
        cdef int rc
        with _tr_lock:
            if self._state != "recording":
                raise RuntimeError("this Trace is not recording")
            gr_trace_stop()
            stopped = gr_nanotime()
            _tr_active = None
            self._state = "done"
            live = dict(_tr_live)
            _tr_live.clear()
            names = list(_tr_names)
        with nogil:
            rc = gr_trace_collect(&recs, &n, &dropped)
        if rc != 0:
            raise MemoryError("cannot collect the trace")
        try:
            events = [(recs[i].ev.ts, recs[i].ev.kind, recs[i].ev.m, recs[i].thread,
                       recs[i].ev.g, recs[i].ev.arg, recs[i].ev.aux) for i in range(n)]
        finally:
            free(recs)
        # By its module name: the package's attribute `trace` is the function below.
        tracefmt = importlib.import_module("goroutines.trace")
        doc = tracefmt.chrome_trace(
            events, names=names, live=live, kinds=_TRACE_KINDS, park_reasons=_PARK_REASONS,
            wake_reasons=_WAKE_REASONS, start=self._started, stop=stopped, dropped=dropped,
            buffer=self.buffer)
        self.events = len(doc["traceEvents"])
        self.dropped = dropped
        tracefmt.write_json(doc, self.path)
        return None


def trace(path, *, buffer=_TRACE_BUFFER) -> Trace:
    """Record the scheduler's events into ``path``, a Chrome Trace Event (Perfetto) file.

    Use it as a context manager, inside a task (it records from here to the end of the
    block, on every M) or around ``run()`` (it records the whole run).
    ``run(main, trace=path)`` does the latter. The file is written when the block ends,
    by the thread that leaves it; ``python -m goroutines.trace path`` turns it into an
    HTML timeline. ``buffer`` is the number of events kept per thread: a ring, whose
    oldest events are dropped (counted in ``Trace.dropped``). One trace records at a time.

    Example::

        def main():
            with gr.trace("out.json") as tr:
                gr.go(print, "traced").join()
            print(tr.events, "events,", tr.dropped, "dropped")
        gr.run(main)
    """
    return Trace(path, buffer=buffer)
