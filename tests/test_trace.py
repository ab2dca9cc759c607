"""The execution tracer: gr.trace(), run(trace=...), the Chrome Trace Event file and
``python -m goroutines.trace``'s HTML page, rendered in a real headless Chromium."""

import importlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

import pytest

import goroutines as gr

tracefmt = importlib.import_module("goroutines.trace")


def load(path):
    with open(path) as f:
        return json.load(f)


def task_slices(doc):
    return [e for e in doc["traceEvents"] if e["ph"] == "X" and e["cat"] == "task"]


def lanes(doc):
    return {e["tid"]: e["args"]["name"] for e in doc["traceEvents"]
            if e["ph"] == "M" and e["name"] == "thread_name"}


def check_well_formed(doc):
    """What Perfetto and chrome://tracing need: known phases, numeric times, slices on
    one track that never overlap, and every flow's ends on task slices."""
    assert isinstance(doc["traceEvents"], list)
    by_tid = defaultdict(list)
    for e in doc["traceEvents"]:
        assert e["ph"] in ("M", "X", "i", "s", "f"), e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0, e
        if e["ph"] == "X":
            assert e["dur"] >= 0, e
            by_tid[e["tid"]].append(e)
    for tid, xs in by_tid.items():
        xs.sort(key=lambda e: e["ts"])
        for a, b in zip(xs, xs[1:], strict=False):
            assert a["ts"] + a["dur"] <= b["ts"] + 0.002, (tid, a, b)  # rounding to ns
    starts = {e["id"]: e for e in doc["traceEvents"] if e["ph"] == "s"}
    ends = {e["id"]: e for e in doc["traceEvents"] if e["ph"] == "f"}
    assert set(ends) <= set(starts)
    for fid, f in ends.items():
        s = starts[fid]
        assert any(x["ts"] - 0.002 <= s["ts"] <= x["ts"] + x["dur"] + 0.002
                   for x in by_tid[s["tid"]]), ("flow start outside any slice", s)
        assert f["bp"] == "e"
        assert any(abs(x["ts"] - f["ts"]) < 0.002 for x in by_tid[f["tid"]]), f


# ---- what gets recorded ---------------------------------------------------------------


def test_every_task_is_created_started_and_ended_once(procs, tmp_path):
    out = tmp_path / "t.json"

    def leaf(i):
        gr.sleep(0.001 if i % 2 else 0)
        return i

    def main():
        return sum(t.join() for t in [gr.go(leaf, i) for i in range(20)])

    assert gr.run(main, procs=procs, trace=out) == sum(range(20))
    doc = load(out)
    check_well_formed(doc)
    creates = Counter(e["args"]["task"] for e in doc["traceEvents"] if e.get("cat") == "create")
    firsts = Counter(e["args"]["task"] for e in task_slices(doc) if e["args"].get("first run"))
    ends = Counter(e["args"]["task"] for e in task_slices(doc)
                   if e["args"]["end"] == "finished")
    assert len(creates) == 21  # main and its 20 tasks
    assert creates == firsts == ends
    assert set(creates.values()) == {1}
    names = {e["args"]["task"]: e["name"] for e in task_slices(doc)}
    assert sorted(Counter(names.values()).items()) == [
        ("test_every_task_is_created_started_and_ended_once.<locals>.leaf", 20),
        ("test_every_task_is_created_started_and_ended_once.<locals>.main", 1)]
    assert set(lanes(doc).values()) >= {"M0"}


def test_park_reasons_and_wakers(procs, tmp_path):
    out = tmp_path / "t.json"

    def main():
        ch, mu, ev, wg = gr.Chan(), gr.Mutex(), gr.Event(), gr.WaitGroup()
        wg.add(1)

        def receiver():
            ch.recv()
            with mu:
                pass
            ev.wait()
            wg.done()

        r = gr.go(receiver)
        gr.sleep(0.002)
        mu.lock()
        ch.send(1)  # the receiver wakes, then parks on the mutex
        gr.sleep(0.002)
        mu.unlock()
        gr.sleep(0.002)
        ev.set()
        wg.wait()
        r.join()
        gr.blocking(time.sleep, 0.001)

    gr.run(main, procs=procs, trace=out)
    doc = load(out)
    check_well_formed(doc)
    ends = Counter(e["args"]["end"] for e in task_slices(doc))
    for reason in ("chan receive", "mutex", "event", "sleep", "waitgroup", "blocking call"):
        assert ends["parked: " + reason] >= 1, (reason, ends)
    waited = {e["args"]["waited for"] for e in task_slices(doc) if "waited for" in e["args"]}
    assert {"chan receive", "mutex", "event", "sleep", "blocking call"} <= waited
    wakers = [e["args"]["woken by"] for e in task_slices(doc)
              if e["args"].get("waited for") == "mutex"]
    # main unlocked it
    assert wakers and all("(test_park_reasons_and_wakers.<locals>.main) on M" in w for w in wakers)
    # The offloaded call has its own lane, and its slice wakes main.
    offload = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["cat"] == "offload"]
    assert [e["name"] for e in offload] == ["blocking: test_park_reasons_and_wakers.<locals>.main"]
    assert lanes(doc)[offload[0]["tid"]].startswith("offload")
    flows_from_offload = [e for e in doc["traceEvents"]
                          if e["ph"] == "s" and e["tid"] == offload[0]["tid"]]
    assert len(flows_from_offload) == 1


def test_flows_go_from_the_waker_to_the_woken_across_ms(tmp_path, go_elsewhere):
    out = tmp_path / "t.json"

    def main():
        ping, pong = gr.Chan(), gr.Chan()

        def echo():
            for v in ping:
                pong.send(v)

        t = go_elsewhere(echo)  # on M1, while main stays on M0
        for i in range(50):
            ping.send(i)
            assert pong.recv() == i
        ping.close()
        t.join()

    gr.run(main, procs=2, trace=out)
    doc = load(out)
    check_well_formed(doc)
    by_id = defaultdict(dict)
    for e in doc["traceEvents"]:
        if e["ph"] in ("s", "f"):
            by_id[e["id"]][e["ph"]] = e
    cross = [p for p in by_id.values() if p["s"]["tid"] != p["f"]["tid"]]
    assert len(cross) >= 50  # every message crosses: M0 -> M1 and back
    slices = task_slices(doc)
    echo_lane = {e["tid"] for e in slices if e["name"].endswith("pinned")}  # echo
    main_lane = {e["tid"] for e in slices if e["name"].endswith("main")}
    assert len(echo_lane) == len(main_lane) == 1 and echo_lane != main_lane
    woken_by = Counter(e["args"]["woken by"].split(" on ")[0] for e in slices
                       if e["name"].endswith("pinned") and "woken by" in e["args"])
    assert woken_by.most_common(1)[0][0].endswith(
        " (test_flows_go_from_the_waker_to_the_woken_across_ms.<locals>.main)")


def test_ring_bound_drops_the_oldest_and_counts_them(tmp_path):
    out = tmp_path / "t.json"

    def main():
        for _ in range(500):
            gr.gosched()

    with gr.trace(out, buffer=16) as tr:
        gr.run(main, procs=1)
    doc = load(out)
    check_well_formed(doc)
    assert tr.dropped > 900  # 500 yields and runs, 16 kept per thread
    assert doc["otherData"]["dropped"] == tr.dropped
    assert tr.events == len(doc["traceEvents"])
    # What is kept is the newest: main's end.
    assert task_slices(doc)[-1]["args"]["end"] == "finished"


def test_trace_inside_a_task_records_only_the_block(procs, tmp_path):
    out = tmp_path / "t.json"

    def before():
        return 1

    def during():
        gr.sleep(0.001)
        return 2

    def main():
        gr.go(before).join()
        with gr.trace(out) as tr:
            gr.go(during).join()
        gr.go(before).join()
        return tr

    tr = gr.run(main, procs=procs)
    assert tr.events > 0 and tr.dropped == 0
    doc = load(out)
    check_well_formed(doc)
    names = {e["name"] for e in task_slices(doc)}
    assert names == {"test_trace_inside_a_task_records_only_the_block.<locals>.main",
                     "test_trace_inside_a_task_records_only_the_block.<locals>.during"}
    first = task_slices(doc)[0]
    assert first["args"].get("start") == "before the trace"


def test_trace_around_runs_records_each(tmp_path):
    out = tmp_path / "t.json"

    def one():
        return gr.go(abs, -1).join()

    with gr.trace(str(out)):
        assert gr.run(one, procs=1) == 1
        assert gr.run(one, procs=2) == 1
    doc = load(out)
    check_well_formed(doc)
    assert Counter(e["name"] for e in task_slices(doc) if e["args"]["end"] == "finished") == {
        "test_trace_around_runs_records_each.<locals>.one": 2, "abs": 2}


def test_run_trace_is_written_when_main_raises(tmp_path):
    out = tmp_path / "t.json"

    def main():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        gr.run(main, procs=1, trace=out)
    doc = load(out)
    assert [e["args"]["end"] for e in task_slices(doc)] == ["finished"]


def test_trace_after_importing_the_cli_module(tmp_path):
    import goroutines.trace  # noqa: F401  (makes the module the package's attribute)

    with gr.trace(tmp_path / "t.json") as tr:
        gr.run(lambda: None, procs=1)
    assert isinstance(tr, gr.Trace) and tr.events > 0


def test_nothing_is_recorded_once_stopped(tmp_path):
    with gr.trace(tmp_path / "a.json"):
        pass
    gr.run(lambda: gr.go(abs, 1).join(), procs=1)
    with gr.trace(tmp_path / "b.json") as tr:
        pass
    assert task_slices(load(tmp_path / "b.json")) == [] and tr.dropped == 0


# ---- bad input -------------------------------------------------------------------------


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError):
        gr.trace(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="buffer must be an int"):
        gr.trace(tmp_path / "t.json", buffer=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="buffer must be an int"):
        gr.trace(tmp_path / "t.json", buffer=True)
    with pytest.raises(ValueError, match="buffer must be between 16"):
        gr.trace(tmp_path / "t.json", buffer=8)
    with pytest.raises(FileNotFoundError, match="no directory"):
        gr.trace(tmp_path / "missing" / "t.json")
    with pytest.raises(IsADirectoryError):
        gr.trace(tmp_path)
    with pytest.raises(FileNotFoundError):
        gr.run(lambda: None, procs=1, trace=tmp_path / "missing" / "t.json")


def test_one_trace_at_a_time(tmp_path):
    with gr.trace(tmp_path / "a.json") as tr:
        with pytest.raises(RuntimeError, match="already recording"):
            with gr.trace(tmp_path / "b.json"):
                pass
        with pytest.raises(RuntimeError, match="already recording"):
            gr.run(lambda: None, procs=1, trace=tmp_path / "c.json")
        with pytest.raises(RuntimeError, match="already recording"):
            threading_error = []

            def other():
                try:
                    with gr.trace(tmp_path / "d.json"):
                        pass
                except RuntimeError as e:
                    threading_error.append(e)

            th = threading.Thread(target=other)
            th.start()
            th.join()
            raise threading_error[0]
    with pytest.raises(RuntimeError, match="records once"):
        with tr:
            pass
    with pytest.raises(RuntimeError, match="not recording"):
        gr.trace(tmp_path / "e.json").__exit__(None, None, None)
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "c.json").exists()


# ---- the HTML page and the command line ---------------------------------------------------


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "goroutines.trace", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A trace of a small pipeline at procs=2, and its HTML page."""
    d = tmp_path_factory.mktemp("trace")

    def main():
        jobs, results = gr.Chan(4), gr.Chan(4)

        def produce():
            for i in range(40):
                jobs.send(i)
            jobs.close()

        def work():
            for i in jobs:
                gr.sleep(0.0002)
                results.send(i * i)

        gr.go(produce)
        workers = [gr.go(work) for _ in range(3)]
        total = sum(results.recv() for _ in range(40))
        for w in workers:
            w.join()
        gr.blocking(time.sleep, 0.001)
        return total

    gr.run(main, procs=2, trace=d / "pipeline.json")
    proc = cli(d / "pipeline.json", "-o", d / "pipeline.html")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {d / 'pipeline.html'}"
    return d


def test_html_is_self_contained(sample):
    page = (sample / "pipeline.html").read_text()
    assert "<script src" not in page and "<link" not in page
    assert "http://" not in page and "https://" not in page
    for table in ("busiest", "waits", "steals", "global"):
        assert f'id="{table}"' in page
    assert "pipeline.json" in page  # the default title


def test_summary_of_the_pipeline(sample):
    s = tracefmt.summary(tracefmt.load(sample / "pipeline.json"))
    names = {b["name"].rsplit(".", 1)[-1] for b in s["busiest"]}
    assert {"main", "work", "produce"} <= names
    assert s["waits"] and s["waits"] == sorted(s["waits"], key=lambda w: -w["waited_us"])
    assert {w["reason"] for w in s["waits"]} & {"chan receive", "chan send", "sleep"}
    assert s["dropped"] == 0


def test_default_output_name(sample, tmp_path):
    src = tmp_path / "copy.json"
    shutil.copy(sample / "pipeline.json", src)
    proc = cli(src)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "copy.html").exists()


@pytest.mark.parametrize("content,message", [
    (None, "no such trace file"),
    ("{not json", "is not JSON"),
    ('{"events": []}', "no traceEvents list"),
    ('{"traceEvents": [{"name": "x"}]}', "an event without ph"),
    ("[1, 2]", "an event without ph"),
])
def test_cli_rejects_bad_traces(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    proc = cli(path)
    assert proc.returncode == 2
    assert message in proc.stderr and "usage:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "bad.html").exists()


def test_cli_rejects_bad_usage(sample, tmp_path):
    proc = cli(sample / "pipeline.json", "--outptu", tmp_path / "x.html")
    assert proc.returncode == 2 and "unrecognized arguments: --outptu" in proc.stderr
    proc = cli(sample / "pipeline.json", "--out", tmp_path / "x.html")  # no abbreviations
    assert proc.returncode == 2 and "--out" in proc.stderr
    proc = cli()
    assert proc.returncode == 2 and "the following arguments are required: trace" in proc.stderr
    proc = cli(sample / "pipeline.json", "-o", tmp_path / "missing" / "x.html")
    assert proc.returncode == 2 and "cannot write" in proc.stderr
    assert "Traceback" not in proc.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")


def chromium(*args):
    # Not under the sanitizer run's preloaded runtime (.ci/sanitize): Chromium is no part
    # of what it checks, and crawls with it.
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.endswith("SAN_OPTIONS")}
    return subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
         "--enable-logging=stderr", "--v=0", *args],
        capture_output=True, text=True, timeout=25, env=env)


@needs_chromium
def test_page_renders_in_chromium(sample):
    page = sample / "pipeline.html"
    proc = chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    dom = proc.stdout
    assert 'data-rendered="ok"' in dom, (dom[-2000:], proc.stderr[-2000:])
    assert '<pre id="errors"></pre>' in dom  # window.onerror wrote nothing
    # The console: Chromium logs the page's console messages and uncaught errors.
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    doc = tracefmt.load(sample / "pipeline.json")
    n_slices = sum(1 for e in doc["traceEvents"] if e["ph"] == "X")
    assert f'data-slices="{n_slices}"' in dom
    lane_names = sorted(set(lanes(doc).values()))
    for name in lane_names:
        assert f'data-lane="{lane_names.index(name)}"' in dom
        assert f">{name}</div>" in dom
    assert {"M0", "M1"} <= set(lane_names)


HOVER_PROBE = """<script>
(function () {
  // Sweep the pointer along every lane, as a user would, and keep what the tooltip says.
  var c = document.getElementById("canvas"), r = c.getBoundingClientRect();
  var seen = [], lanes = document.querySelectorAll(".lane");
  for (var li = 0; li < lanes.length; li++) {
    var y = r.top + 22 + li * 28 + 14;
    for (var x = r.left + 1; x < r.right; x += 2) {
      c.dispatchEvent(new MouseEvent("mousemove", {clientX: x, clientY: y, bubbles: true}));
      var tip = document.getElementById("tip");
      if (tip.style.display === "block" && seen.indexOf(tip.textContent) < 0)
        seen.push(tip.textContent);
    }
  }
  var out = document.createElement("pre");
  out.id = "hover"; out.textContent = seen.join("\\n----\\n");
  document.body.appendChild(out);
})();
</script>"""


@needs_chromium
def test_hover_shows_wait_reasons(sample, tmp_path):
    page = (sample / "pipeline.html").read_text().replace("</body>", HOVER_PROBE + "</body>")
    path = tmp_path / "hover.html"
    path.write_text(page)
    dom = chromium("--virtual-time-budget=5000", "--window-size=1400,900", "--dump-dom",
                   path.as_uri()).stdout
    assert 'data-rendered="ok"' in dom
    hover = dom.split('<pre id="hover">', 1)[1].split("</pre>", 1)[0]
    assert "task: " in hover and "end: parked: chan " in hover
    assert "waited for: chan " in hover and "woken by: task " in hover


@needs_chromium
def test_page_reports_script_errors(tmp_path):
    """The check above would see a broken page: an exception marks the DOM."""
    page = tracefmt.render_html({"traceEvents": []}).replace(
        'JSON.parse(document.getElementById("trace-data").textContent)', "undefinedName.x")
    path = tmp_path / "broken.html"
    path.write_text(page)
    proc = chromium("--virtual-time-budget=5000", "--dump-dom", path.as_uri())
    assert 'data-rendered="error"' in proc.stdout and "undefinedName" in proc.stdout
    assert any("CONSOLE" in line and "undefinedName" in line for line in proc.stderr.splitlines())


@needs_chromium
def test_empty_trace_renders(tmp_path):
    path = tmp_path / "empty.json"
    with gr.trace(path):
        pass
    assert cli(path).returncode == 0
    dom = chromium("--virtual-time-budget=5000", "--dump-dom",
                   (tmp_path / "empty.html").as_uri()).stdout
    assert 'data-rendered="ok"' in dom and 'data-slices="0"' in dom


def test_cli_entry_point_runs_without_the_runtime(sample, tmp_path):
    """The converter needs no running runtime, and main() returns 0."""
    assert tracefmt.main([str(sample / "pipeline.json"), "-o", str(tmp_path / "m.html")]) == 0
    assert os.path.getsize(tmp_path / "m.html") > 1000
