"""Execution traces: the Chrome Trace Event file of ``gr.trace()``, and its HTML picture.

``gr.trace(path)`` (or ``run(main, trace=path)``) records the scheduler's events and
writes them to ``path`` with :func:`chrome_trace`: one track per M (and per offload
thread), a complete ("X") slice per run of a task named after the task, its wait reason
and waker in the slice's args, flow arrows ("s"/"f") from the task that unblocked another
to the woken task's next run, and instant events for steals, global-queue takes, polls and
M parks. Perfetto (ui.perfetto.dev) and chrome://tracing load it as it is.

From the command line, this module turns such a file into one self-contained HTML page
(no network: the script and styles are inline): lanes per M, task slices coloured by
name, wait reasons on hover, and a summary of the busiest tasks, the longest waits and the
steals::

    python -m goroutines.trace out.json -o out.html
"""

from __future__ import annotations

import html
import json
import os
import sys
import types
from collections import defaultdict
from typing import Any

__all__ = ["chrome_trace", "load", "main", "render_html", "summary", "write_json"]

PID = 1
# Tracks of threads that are no M (offload threads, foreign threads) come after the Ms'.
SIDE_TID = 1000


def _us(ns: int) -> float:
    return round(ns / 1000.0, 3)


def chrome_trace(
    events: list[tuple[int, int, int, int, int, int, int]],
    *,
    names: list[str],
    live: dict[int, int],
    kinds: tuple[str, ...],
    park_reasons: tuple[str, ...],
    wake_reasons: tuple[str, ...],
    start: int,
    stop: int,
    dropped: int = 0,
    buffer: int = 0,
) -> dict[str, Any]:
    """Build the Chrome Trace Event document from the raw events the runtime collected.

    ``events`` are ``(ts, kind, m, thread, g, arg, aux)`` tuples (csrc/trace.h), with
    timestamps in gr_nanotime() nanoseconds; ``kinds`` names the kind codes; ``names``
    maps name indexes to task names, and ``live`` the tasks still alive to their index.
    Events outside ``[start, stop]`` are left out.

    Example::

        doc = chrome_trace([], names=["?"], live={}, kinds=("none",), park_reasons=("",),
                           wake_reasons=("",), start=0, stop=1)
        assert doc["traceEvents"][0]["ph"] == "M"
    """
    kind_of = {code: name for code, name in enumerate(kinds)}
    evs = sorted((e for e in events if start <= e[0] <= stop), key=lambda e: e[0])
    name_idx: dict[int, int] = dict(live)
    for _, kind, _, _, g, _, aux in evs:
        if aux and kind_of.get(kind) in ("create", "end"):
            name_idx.setdefault(g, aux)

    def tname(g: int) -> str:
        idx = name_idx.get(g, 0)
        name = names[idx] if 0 < idx < len(names) else "?"
        return f"task {g}" if name == "?" else name

    def reason(table: tuple[str, ...], code: int) -> str:
        return table[code] if 0 <= code < len(table) else f"reason {code}"

    out: list[dict[str, Any]] = []
    labels: dict[int, str] = {}
    offload_threads: dict[int, int] = {}  # thread -> its number among offload threads
    m_of_thread: dict[int, int] = {}  # run()'s caller records main's creation unbound
    for _, kind, m, thread, *_ in evs:
        if kind_of.get(kind) == "offload_run" and m < 0:
            offload_threads.setdefault(thread, len(offload_threads))
        if m >= 0:
            m_of_thread.setdefault(thread, m)

    def track(m: int, thread: int) -> int:
        m = m if m >= 0 else m_of_thread.get(thread, -1)
        tid = m if m >= 0 else SIDE_TID + thread
        if tid not in labels:
            if m >= 0:
                labels[tid] = f"M{m}"
            elif thread in offload_threads:
                labels[tid] = f"offload {offload_threads[thread]}"
            else:
                labels[tid] = f"thread {thread}"
        return tid

    def emit(ph: str, name: str, tid: int, ts: int, cat: str, **extra: Any) -> dict[str, Any]:
        ev = {"ph": ph, "name": name, "cat": cat, "pid": PID, "tid": tid, "ts": _us(ts - start)}
        ev.update(extra)
        out.append(ev)
        return ev

    def instant(name: str, tid: int, ts: int, cat: str, args: dict[str, Any]) -> None:
        emit("i", name, tid, ts, cat, s="t", args=args)

    def slice_(name: str, tid: int, t0: int, t1: int, cat: str, args: dict[str, Any]) -> None:
        emit("X", name, tid, t0, cat, dur=_us(t1 - t0), args=args)
        last_end[tid] = t1

    running: dict[int, tuple[int, int, dict[str, Any]]] = {}  # tid -> (g, since, args)
    since: dict[tuple[str, int], tuple[int, Any]] = {}  # (what, tid) -> (ts, detail)
    parked: dict[int, tuple[int, str]] = {}  # g -> (ts, reason)
    woken: dict[int, tuple[str, str, int]] = {}  # g -> (by, reason, flow id or 0)
    last_end: dict[int, int] = {}  # tid -> when its latest slice ended
    unstarted: set[int] = set()  # created in the trace, not run yet
    flows = 0

    def end_run(tid: int, g: int, ts: int, how: str) -> None:
        run = running.pop(tid, None)
        if run is not None and run[0] == g:
            _, t0, args = run
        else:
            if run is not None:  # the other task's end was dropped: close it here
                slice_(tname(run[0]), tid, run[1], ts, "task", {**run[2], "end": "?"})
            # It ran before the trace started (or its start was dropped by the ring).
            t0 = last_end.get(tid, start)
            args = {"task": g, "start": "before the trace" if tid not in last_end else "?"}
        slice_(tname(g), tid, t0, ts, "task", {**args, "end": how})

    for ts, kind, m, thread, g, arg, aux in evs:
        tid = track(m, thread)
        what = kind_of.get(kind, "?")
        if what == "run":
            if tid in running:
                prev = running[tid][0]
                end_run(tid, prev, ts, "?")
            args: dict[str, Any] = {"task": g}
            if aux or g in unstarted:  # (run()'s main is bound to M0 before its first run)
                args["first run"] = True
            unstarted.discard(g)
            if g in parked:
                pts, why = parked.pop(g)
                args["waited for"] = why
                args["waited_us"] = _us(ts - pts)
            if g in woken:
                by, why, flow = woken.pop(g)
                args["woken by"] = by
                if why != "ready":
                    args["wake"] = why
                if flow:
                    emit("f", "wake", tid, ts, "wake", id=flow, bp="e")
            running[tid] = (g, ts, args)
        elif what in ("park", "yield", "end"):
            how = {"park": "parked: " + reason(park_reasons, aux), "yield": "yield",
                   "end": "finished"}[what]
            end_run(tid, g, ts, how)
            if what == "park":
                parked[g] = (ts, reason(park_reasons, aux))
            elif what == "yield":
                parked[g] = (ts, "yield")
        elif what == "unpark":
            why = reason(wake_reasons, aux)
            flow = 0
            inside = (tid in running and running[tid][0] == arg) or ("offload", tid) in since
            if arg:
                by = f"task {arg} ({tname(arg)}) on {labels[tid]}"
                if inside:
                    flows += 1
                    flow = flows
                    emit("s", "wake", tid, ts, "wake", id=flow)
            elif m >= 0:
                by = f"the scheduler on {labels[tid]} ({why}: a timer, the poller or a cancel)"
            else:
                by = f"{labels[tid]} (outside the runtime)"
            woken[g] = (by, why, flow)
        elif what == "create":
            unstarted.add(g)
            instant("go", tid, ts, "create", {"task": g, "name": tname(g), "by task": arg})
        elif what == "steal":
            instant("steal", tid, ts, "sched", {"from P": aux, "tasks": arg, "runs task": g})
        elif what == "global":
            instant("global queue", tid, ts, "sched", {"tasks": arg, "runs task": g})
        elif what == "poll":
            instant("poll", tid, ts, "sched", {"readied": arg, "blocking": bool(aux)})
        elif what == "m_unpark":
            instant("wake M", tid, ts, "sched", {"M": arg})
        elif what == "backoff":
            instant("backoff", tid, ts, "sched", {"round": aux})
        elif what == "offload":
            instant("blocking()", tid, ts, "offload", {"task": g, "name": tname(g)})
        elif what in ("spin", "m_park", "offload_run"):
            if what == "m_park":
                instant("M park", tid, ts, "sched", {"in poller": bool(aux)})
            since[(what.replace("_run", ""), tid)] = (ts, aux if what != "offload_run" else g)
        elif what in ("spin_end", "m_wake", "offload_done"):
            key = {"spin_end": "spin", "m_wake": "m_park", "offload_done": "offload"}[what]
            began = since.pop((key, tid), None)
            if began is not None:
                t0, detail = began
                if key == "spin":
                    slice_("(spinning)", tid, t0, ts, "sched", {"found work": bool(aux)})
                elif key == "m_park":
                    slice_("(in poller)" if detail else "(idle)", tid, t0, ts, "sched", {})
                else:
                    slice_(f"blocking: {tname(g)}", tid, t0, ts, "offload", {"task": g})

    for tid, (g, t0, args) in list(running.items()):
        slice_(tname(g), tid, t0, stop, "task", {**args, "end": "running at the trace's end"})
    for (key, tid), (t0, detail) in since.items():
        name = {"spin": "(spinning)", "m_park": "(idle)"}.get(key, f"blocking: {tname(detail)}")
        slice_(name, tid, t0, stop, "offload" if key == "offload" else "sched", {})

    meta: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": PID, "tid": 0, "args": {"name": "goroutines"}}
    ]
    for tid in sorted(labels):
        meta.append({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid,
                     "args": {"name": labels[tid]}})
        meta.append({"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid,
                     "args": {"sort_index": tid}})
    return {
        "traceEvents": meta + out,
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "goroutines",
            "dropped": dropped,
            "buffer": buffer,
            "duration_us": _us(stop - start),
            "flows": flows,
        },
    }


def write_json(doc: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a trace document as compact JSON.

    Example::

        write_json({"traceEvents": []}, os.devnull)
    """
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a Chrome Trace Event file (the object form, or a bare array of events).

    Raises OSError if it cannot be read, ValueError if it is no such trace.

    Example::

        doc = load("out.json")
    """
    with open(path, encoding="utf-8") as f:
        try:
            doc = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{os.fspath(path)} is not JSON: {e}") from None
    if isinstance(doc, list):
        doc = {"traceEvents": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        raise ValueError(f"{os.fspath(path)} is not a Chrome trace: no traceEvents list")
    for ev in doc["traceEvents"]:
        if not isinstance(ev, dict) or not isinstance(ev.get("ph"), str):
            raise ValueError(f"{os.fspath(path)} is not a Chrome trace: an event without ph: "
                             f"{str(ev)[:80]}")
    return doc


def _lanes(doc: dict[str, Any]) -> dict[tuple[Any, Any], str]:
    """(pid, tid) -> lane label, from thread_name metadata and the events' own tids."""
    labels: dict[tuple[Any, Any], str] = {}
    for ev in doc["traceEvents"]:
        if ev["ph"] == "M" and ev.get("name") == "thread_name":
            labels[(ev.get("pid"), ev.get("tid"))] = str(ev.get("args", {}).get("name"))
    for ev in doc["traceEvents"]:
        key = (ev.get("pid"), ev.get("tid"))
        if ev["ph"] in ("X", "i", "I") and key not in labels:
            labels[key] = f"thread {ev.get('tid')}"
    return labels


def summary(doc: dict[str, Any], top: int = 10) -> dict[str, Any]:
    """The busiest tasks, the longest waits and the steals of a trace.

    Example::

        s = summary(load("out.json"))
        print(s["busiest"][:3])
    """
    labels = _lanes(doc)
    busy: dict[Any, dict[str, Any]] = {}
    waits = []
    steals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    globals_: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ev in doc["traceEvents"]:
        ph, args = ev["ph"], ev.get("args") or {}
        lane = labels.get((ev.get("pid"), ev.get("tid")), "?")
        if ph == "X" and ev.get("cat") == "task":
            key = args.get("task", ev.get("name"))
            b = busy.setdefault(key, {"task": key, "name": ev.get("name"), "runs": 0,
                                      "busy_us": 0.0, "lanes": set()})
            b["runs"] += 1
            b["busy_us"] += float(ev.get("dur", 0))
            b["lanes"].add(lane)
            if "waited_us" in args:
                waits.append({"task": key, "name": ev.get("name"),
                              "reason": args.get("waited for", "?"),
                              "waited_us": float(args["waited_us"]),
                              "woken_by": args.get("woken by", "?"), "lane": lane})
        elif ph in ("i", "I") and ev.get("name") == "steal":
            steals[lane][0] += 1
            steals[lane][1] += int(args.get("tasks", 1))
        elif ph in ("i", "I") and ev.get("name") == "global queue":
            globals_[lane][0] += 1
            globals_[lane][1] += int(args.get("tasks", 1))
    busiest = sorted(busy.values(), key=lambda b: -b["busy_us"])[:top]
    for b in busiest:
        b["lanes"] = sorted(b["lanes"])
    waits.sort(key=lambda w: -w["waited_us"])
    other = doc.get("otherData") or {}
    return {
        "busiest": busiest,
        "waits": waits[:top],
        "steals": [{"lane": k, "steals": v[0], "tasks": v[1]} for k, v in sorted(steals.items())],
        "global": [{"lane": k, "takes": v[0], "tasks": v[1]} for k, v in sorted(globals_.items())],
        "tasks": len(busy),
        "dropped": other.get("dropped", 0),
    }


_CSS = """
body{font:13px system-ui,sans-serif;margin:12px;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 6px} h2{font-size:15px;margin:18px 0 6px}
#meta{color:#555;margin-bottom:8px} #errors{color:#b00;white-space:pre-wrap}
#timeline{display:flex;border:1px solid #ccc;background:#fff;position:relative}
#lanes{flex:none;width:130px;border-right:1px solid #ccc}
.lane{box-sizing:border-box;padding:0 6px;white-space:nowrap;overflow:hidden;
 border-bottom:1px solid #eee;display:flex;align-items:center;font-weight:600}
#axis-pad{height:22px;border-bottom:1px solid #ccc}
#plot{flex:1;position:relative;min-width:0} canvas{display:block;cursor:crosshair}
#tip{position:fixed;pointer-events:none;background:#222;color:#fff;padding:6px 8px;
 border-radius:4px;font:12px monospace;white-space:pre;display:none;z-index:2;max-width:60ch}
#legend span{display:inline-block;margin:2px 10px 2px 0}
#legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}
table{border-collapse:collapse;margin-bottom:6px} td,th{border:1px solid #ddd;padding:3px 8px;
 text-align:left} th{background:#f0f0f0} td.n{text-align:right;font-variant-numeric:tabular-nums}
.controls{margin:6px 0;color:#555}
"""

_JS = r"""
(function () {
  var data = JSON.parse(document.getElementById("trace-data").textContent);
  var LANE_H = 28, AXIS_H = 22;
  var lanesEl = document.getElementById("lanes"), plot = document.getElementById("plot");
  var canvas = document.getElementById("canvas"), tip = document.getElementById("tip");
  var ctx = canvas.getContext("2d");
  data.lanes.forEach(function (label, i) {
    var d = document.createElement("div");
    d.className = "lane"; d.style.height = LANE_H + "px";
    d.setAttribute("data-lane", i); d.textContent = label;
    lanesEl.appendChild(d);
  });
  // The busiest names get hues spread by the golden angle (always far apart); the rest a
  // hash of the name, so a name keeps its colour wherever it appears.
  var hues = {};
  data.legend.forEach(function (n, i) { hues[n] = (i * 137.508 + 200) % 360; });
  function hue(n) {
    if (n in hues) return hues[n];
    var s = data.names[n], h = 2166136261;
    for (var i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
    return h % 360;
  }
  function colour(sl) {
    if (sl[4] === 1) return "#c8c8c8";
    if (sl[4] === 2) return "#8d6e63";
    return "hsl(" + hue(sl[3]) + ",62%,58%)";
  }
  var byLane = data.lanes.map(function () { return []; });
  data.slices.forEach(function (sl) { byLane[sl[0]].push(sl); });
  byLane.forEach(function (a) { a.sort(function (x, y) { return x[1] - y[1]; }); });
  var full0 = 0, full1 = Math.max(data.end, 1e-3), v0 = full0, v1 = full1, W = 0;
  // page.html#view=FROM,TO (microseconds) opens on that window.
  var m = /view=([0-9.]+),([0-9.]+)/.exec(window.location.hash);
  if (m && +m[2] > +m[1]) { v0 = +m[1]; v1 = +m[2]; }
  var showFlows = document.getElementById("flows");
  function resize() {
    W = plot.clientWidth;
    var dpr = window.devicePixelRatio || 1, H = AXIS_H + LANE_H * data.lanes.length;
    canvas.width = W * dpr; canvas.height = H * dpr;
    canvas.style.width = W + "px"; canvas.style.height = H + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw();
  }
  function x(t) { return (t - v0) / (v1 - v0) * W; }
  function first(a, t) {
    var lo = 0, hi = a.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (a[mid][1] + a[mid][2] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  function niceStep(span) {
    var raw = span / 8, p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m < 2 ? 2 : m < 5 ? 5 : 10) * p;
  }
  function fmt(us) {
    if (Math.abs(us) >= 1e6) return (us / 1e6).toFixed(3) + " s";
    if (Math.abs(us) >= 1e3) return (us / 1e3).toFixed(3) + " ms";
    return us.toFixed(1) + " \u00b5s";
  }
  function draw() {
    var H = AXIS_H + LANE_H * data.lanes.length;
    ctx.clearRect(0, 0, W, H);
    ctx.font = "11px sans-serif"; ctx.textBaseline = "middle";
    var step = niceStep(v1 - v0);
    ctx.fillStyle = "#555"; ctx.strokeStyle = "#eee";
    for (var t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      var tx = x(t);
      ctx.beginPath(); ctx.moveTo(tx, AXIS_H - 4); ctx.lineTo(tx, H); ctx.stroke();
      ctx.fillText(fmt(t), tx + 2, 9);
    }
    for (var li = 0; li < byLane.length; li++) {
      var y = AXIS_H + li * LANE_H, a = byLane[li];
      ctx.fillStyle = li % 2 ? "#fcfcfc" : "#f4f6f8"; ctx.fillRect(0, y, W, LANE_H - 1);
      for (var k = first(a, v0); k < a.length && a[k][1] <= v1; k++) {
        var sl = a[k], sx = x(sl[1]), sw = Math.max(1, sl[2] / (v1 - v0) * W);
        var small = sl[4] === 1;
        ctx.fillStyle = colour(sl);  // a 1 px gap keeps neighbours of one colour apart
        ctx.fillRect(sx, y + (small ? 9 : 3), sw > 3 ? sw - 1 : sw,
                     small ? LANE_H - 19 : LANE_H - 7);
        if (sw > 40 && !small) {
          ctx.save(); ctx.beginPath(); ctx.rect(sx, y, sw, LANE_H); ctx.clip();
          ctx.fillStyle = "#111"; ctx.fillText(data.names[sl[3]], sx + 3, y + LANE_H / 2);
          ctx.restore();
        }
      }
    }
    data.instants.forEach(function (it) {
      if (it[1] < v0 || it[1] > v1) return;
      var ix = x(it[1]), iy = AXIS_H + it[0] * LANE_H;
      ctx.fillStyle = {steal: "#d32f2f", poll: "#1976d2", "M park": "#616161",
                       "global queue": "#f57c00"}[data.names[it[2]]] || "#9e9e9e";
      ctx.beginPath(); ctx.moveTo(ix - 3, iy); ctx.lineTo(ix + 3, iy); ctx.lineTo(ix, iy + 5);
      ctx.fill();
    });
    if (showFlows.checked) {
      ctx.strokeStyle = "rgba(40,40,40,0.55)"; ctx.fillStyle = "rgba(40,40,40,0.55)";
      data.flows.forEach(function (f) {
        if (Math.max(f[1], f[3]) < v0 || Math.min(f[1], f[3]) > v1) return;
        var x0 = x(f[1]), y0 = AXIS_H + f[0] * LANE_H + LANE_H / 2;
        var x1 = x(f[3]), y1 = AXIS_H + f[2] * LANE_H + LANE_H / 2, a;
        ctx.beginPath(); ctx.moveTo(x0, y0);
        if (f[0] === f[2]) {  // on one lane: an arc over the slices in between
          y0 = y1 = y0 - LANE_H / 2 + 3;
          ctx.moveTo(x0, y0);
          ctx.quadraticCurveTo((x0 + x1) / 2, y0 - 10, x1, y1);
          a = Math.atan2(10, x1 - (x0 + x1) / 2);
        } else {
          ctx.lineTo(x1, y1);
          a = Math.atan2(y1 - y0, x1 - x0);
        }
        ctx.stroke();
        ctx.beginPath(); ctx.moveTo(x1, y1);
        ctx.lineTo(x1 - 6 * Math.cos(a - 0.4), y1 - 6 * Math.sin(a - 0.4));
        ctx.lineTo(x1 - 6 * Math.cos(a + 0.4), y1 - 6 * Math.sin(a + 0.4)); ctx.fill();
      });
    }
  }
  function hit(ev) {
    var r = canvas.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
    var li = Math.floor((my - AXIS_H) / LANE_H);
    if (li < 0 || li >= byLane.length) return null;
    var t = v0 + mx / W * (v1 - v0), slop = 3 / W * (v1 - v0), a = byLane[li];
    for (var k = first(a, t - slop); k < a.length && a[k][1] <= t + slop; k++)
      if (a[k][1] - slop <= t && t <= a[k][1] + a[k][2] + slop) return a[k];
    return null;
  }
  canvas.addEventListener("mousemove", function (ev) {
    if (drag) {
      var dt = (ev.clientX - drag.x) / W * (drag.v1 - drag.v0);
      v0 = drag.v0 - dt; v1 = drag.v1 - dt; draw(); return;
    }
    var sl = hit(ev);
    if (!sl) { tip.style.display = "none"; return; }
    tip.textContent = data.names[sl[3]] + "  (" + fmt(sl[2]) + ")\n" + data.tips[sl[5]];
    tip.style.left = (ev.clientX + 14) + "px"; tip.style.top = (ev.clientY + 12) + "px";
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; drag = null; });
  var drag = null;
  canvas.addEventListener("mousedown", function (ev) { drag = {x: ev.clientX, v0: v0, v1: v1}; });
  window.addEventListener("mouseup", function () { drag = null; });
  canvas.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var r = canvas.getBoundingClientRect(), t = v0 + (ev.clientX - r.left) / W * (v1 - v0);
    var f = ev.deltaY > 0 ? 1.25 : 0.8, span = Math.max((v1 - v0) * f, 0.01);
    v0 = t - (t - v0) / (v1 - v0) * span; v1 = v0 + span; draw();
  }, {passive: false});
  canvas.addEventListener("dblclick", function () { v0 = full0; v1 = full1; draw(); });
  showFlows.addEventListener("change", draw);
  var legend = document.getElementById("legend");
  data.legend.forEach(function (n) {
    var s = document.createElement("span"), i = document.createElement("i");
    i.style.background = "hsl(" + hue(n) + ",62%,58%)";
    s.appendChild(i); s.appendChild(document.createTextNode(data.names[n]));
    legend.appendChild(s);
  });
  window.addEventListener("resize", resize);
  resize();
  var st = document.getElementById("status");
  st.setAttribute("data-slices", data.slices.length);
  st.setAttribute("data-lanes", data.lanes.length);
  st.textContent = "rendered " + data.slices.length + " slices in " + data.lanes.length + " lanes";
  if (document.body.getAttribute("data-rendered") !== "error")
    document.body.setAttribute("data-rendered", "ok");
})();
"""

_ONERROR = """
window.onerror = function (msg, src, line, col, err) {
  var e = document.getElementById("errors");
  e.textContent += msg + " (line " + line + ":" + col + ")\\n";
  document.body.setAttribute("data-rendered", "error");
};
"""


def _page_data(doc: dict[str, Any]) -> dict[str, Any]:
    """The compact form the page's script draws: lanes, and slices as arrays."""
    labels = _lanes(doc)
    order = sorted(labels, key=lambda k: (str(k[0]), k[1] if isinstance(k[1], (int, float))
                                          else float("inf"), str(k[1])))
    lane_of = {k: i for i, k in enumerate(order)}
    names: list[str] = []
    name_ids: dict[str, int] = {}
    tips: list[str] = []
    tip_ids: dict[str, int] = {}

    def intern(table: list[str], ids: dict[str, int], s: str) -> int:
        i = ids.get(s)
        if i is None:
            i = ids[s] = len(table)
            table.append(s)
        return i

    slices, instants, flows = [], [], []
    busy: dict[int, float] = defaultdict(float)
    starts: dict[Any, tuple[int, float]] = {}
    end = 0.0
    for ev in doc["traceEvents"]:
        ph = ev["ph"]
        key = (ev.get("pid"), ev.get("tid"))
        if ph == "M" or key not in lane_of:
            continue
        ts = float(ev.get("ts", 0))
        lane = lane_of[key]
        if ph == "X":
            dur = float(ev.get("dur", 0))
            end = max(end, ts + dur)
            cat = ev.get("cat", "")
            kind = 1 if cat == "sched" else 2 if cat == "offload" else 0
            n = intern(names, name_ids, str(ev.get("name", "?")))
            args = ev.get("args") or {}
            tip = "\n".join(f"{k}: {v}" for k, v in args.items())
            slices.append([lane, ts, dur, n, kind, intern(tips, tip_ids, tip)])
            if kind == 0:
                busy[n] += dur
        elif ph in ("i", "I"):
            end = max(end, ts)
            instants.append([lane, ts, intern(names, name_ids, str(ev.get("name", "?")))])
        elif ph == "s":
            starts[ev.get("id")] = (lane, ts)
        elif ph == "f" and ev.get("id") in starts:
            lane0, ts0 = starts.pop(ev.get("id"))
            flows.append([lane0, ts0, lane, ts])
    legend = sorted(busy, key=lambda n: -busy[n])[:16]
    return {"lanes": [labels[k] for k in order], "names": names, "tips": tips,
            "slices": slices, "instants": instants, "flows": flows, "end": end,
            "legend": legend}


def _table(headers: list[str], rows: list[list[Any]], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{v:,.1f}</td>' if isinstance(v, float)
            else f'<td class="n">{v}</td>' if isinstance(v, int)
            else f"<td>{html.escape(str(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    if not rows:
        body.append(f'<tr><td colspan="{len(headers)}">none</td></tr>')
    return f'<table id="{table_id}"><tr>{head}</tr>{"".join(body)}</table>'


def render_html(doc: dict[str, Any], title: str = "goroutines trace") -> str:
    """A self-contained HTML page (inline script and styles, no network) showing the
    trace: a lane per M, slices coloured by task name, details on hover, a summary.

    Example::

        page = render_html(load("out.json"))
    """
    data = _page_data(doc)
    s = summary(doc)
    other = doc.get("otherData") or {}
    busiest = [[b["name"], b["task"], b["runs"], b["busy_us"], ", ".join(b["lanes"])]
               for b in s["busiest"]]
    waits = [[w["name"], w["task"], w["reason"], w["waited_us"], w["woken_by"]]
             for w in s["waits"]]
    steals = [[st["lane"], st["steals"], st["tasks"]] for st in s["steals"]]
    takes = [[g["lane"], g["takes"], g["tasks"]] for g in s["global"]]
    meta = (f"{len(data['lanes'])} lanes, {len(data['slices'])} slices, {s['tasks']} tasks, "
            f"{len(data['flows'])} wake-ups between tasks, "
            f"{float(other.get('duration_us', data['end'])) / 1000:,.3f} ms recorded, "
            f"{s['dropped']} events dropped by the ring")
    # JSON inside <script>: only "</" could end the element early.
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style>
<script>{_ONERROR}</script></head>
<body data-rendered="pending">
<h1>{html.escape(title)}</h1>
<div id="meta">{html.escape(meta)}</div>
<div class="controls">Wheel: zoom &middot; drag: pan &middot; double-click: reset
(<code>#view=FROM,TO</code> in µs opens a window) &middot;
<label><input type="checkbox" id="flows" checked> wake-up arrows</label>
&middot; <span id="status">not rendered</span></div>
<div id="timeline"><div id="lanes"><div id="axis-pad"></div></div>
<div id="plot"><canvas id="canvas"></canvas></div></div>
<div id="legend"></div>
<pre id="errors"></pre>
<div id="tip"></div>
<h2>Busiest tasks</h2>
{_table(["task", "id", "runs", "running (µs)", "lanes"], busiest, "busiest")}
<h2>Longest waits</h2>
{_table(["task", "id", "waited for", "waited (µs)", "woken by"], waits, "waits")}
<h2>Steals</h2>
{_table(["lane", "steals", "tasks stolen"], steals, "steals")}
<h2>Global-queue takes</h2>
{_table(["lane", "takes", "tasks"], takes, "global")}
<script type="application/json" id="trace-data">{payload}</script>
<script>{_JS}</script>
</body></html>
"""


def main(argv: list[str] | None = None) -> int:
    """``python -m goroutines.trace TRACE.json [-o OUT.html] [--title TITLE]``.

    Example::

        main(["out.json", "-o", "out.html"])
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m goroutines.trace",
        description="Turn a goroutines execution trace (gr.trace(), run(trace=...)) into a "
                    "self-contained HTML timeline.",
        allow_abbrev=False)
    parser.add_argument("trace", help="the trace file (Chrome Trace Event JSON)")
    parser.add_argument("-o", "--output", help="the HTML file to write (default: the trace's "
                        "name with .html)")
    parser.add_argument("--title", help="the page's title (default: the trace's file name)")
    args = parser.parse_args(argv)
    try:
        doc = load(args.trace)
    except FileNotFoundError:
        parser.error(f"no such trace file: {args.trace}")
    except (OSError, ValueError) as e:
        parser.error(f"cannot read the trace: {e}")
    out = args.output or os.path.splitext(args.trace)[0] + ".html"
    page = render_html(doc, args.title or os.path.basename(args.trace))
    try:
        with open(out, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as e:
        parser.error(f"cannot write {out}: {e}")
    print(f"wrote {out}")
    return 0


class _CallableModule(types.ModuleType):
    """``goroutines.trace`` is both this module and the ``gr.trace()`` function: importing
    the module makes it the package's ``trace`` attribute, so it forwards calls."""

    def __call__(self, path: str | os.PathLike[str], *, buffer: int = 1 << 16) -> Any:
        from goroutines._core import trace

        return trace(path, buffer=buffer)


if __name__ == "__main__":
    sys.exit(main())
else:
    sys.modules[__name__].__class__ = _CallableModule
