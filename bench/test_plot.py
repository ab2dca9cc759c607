"""bench/plot.py: which panels a pytest-benchmark JSON gives, the figures on them, the
PNGs it writes, and its errors on input that is not such a JSON."""

import json

import plot
import pytest


def _bench(group, params, mean, **extra):
    name = "test_x[" + "-".join(params.values()) + "]"
    return {
        "group": group,
        "name": name,
        "params": params,
        "stats": {"mean": mean},
        "extra_info": extra,
    }


RUN = {
    "datetime": "2026-11-27T19:00:00",
    "machine_info": {
        "python_implementation": "CPython",
        "python_version": "3.11.7",
        "cpu": {"count": 2},
    },
    "benchmarks": [
        _bench("chan-pingpong", {"runtime": "gevent"}, 0.090, per_op_us=4.5),
        _bench("chan-pingpong", {"runtime": "goroutines-procs1"}, 0.013, per_op_us=0.65),
        _bench("chan-pingpong", {"runtime": "goroutines-procs2"}, 0.014, per_op_us=0.70),
        _bench("chan-pingpong", {"runtime": "threads"}, 1.1, per_op_us=55.0),
        _bench("memory-parked", {"runtime": "asyncio"}, 2.0, bytes_per_task=968),
        _bench("memory-parked", {"runtime": "goroutines"}, 2.0, bytes_per_task=6879),
        _bench("memory-churn", {}, 3.0, rss_growth_mib=5.8),
        _bench("net-echo", {"server": "uvloop"}, 1.0, cpu_us_per_rt=5.0, rt_per_s=180_000.0),
        _bench("net-echo", {"server": "goroutines-procs1"}, 1.0, cpu_us_per_rt=5.5,
               rt_per_s=170_000.0, vs_uvloop=1.1),
        _bench("net-http", {"server": "goroutines-procs1"}, 3.0, req_per_s=150_000.0,
               cpu_us_per_req=6.7),
        _bench("net-http", {"server": "uvloop"}, 3.0, req_per_s=160_000.0, cpu_us_per_req=6.0),
        _bench("procs-ring", {"workload": "ring", "setting": "goroutines-default"}, 0.021),
        _bench("procs-ring", {"workload": "ring", "setting": "goroutines-procs1"}, 0.020),
    ],
}


@pytest.fixture
def run_json(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(RUN))
    return path


def test_a_panel_per_timed_group_and_per_headline_figure(run_json):
    areas = plot.panels(plot.load(run_json))
    assert list(areas) == ["chan", "memory", "net", "procs"]  # memory-churn: one entry
    assert [p.axis.split(";")[0] for p in areas["net"]] == [
        "server CPU per round trip (µs)",
        "requests per second",
        "server CPU per request (µs)",
    ]


def test_time_bars_are_multiples_of_the_fastest_goroutines_entry_best_first(run_json):
    (panel,) = plot.panels(plot.load(run_json))["chan"]
    assert panel.labels == ["goroutines-procs1", "goroutines-procs2", "gevent", "threads"]
    assert panel.values == pytest.approx([1.0, 14 / 13, 90 / 13, 1100 / 13])
    assert panel.notes[2] == "6.92x   4.5 µs/op"
    assert panel.notes[3] == "84.6x   55.0 µs/op"


def test_figure_bars_carry_their_unit_and_ratio_to_goroutines(run_json):
    memory = plot.panels(plot.load(run_json))["memory"][0]
    assert memory.labels == ["asyncio", "goroutines"]
    assert memory.notes == ["968 B   0.14x", "6,879 B   1.00x"]
    throughput = plot.panels(plot.load(run_json))["net"][1]
    assert throughput.labels == ["uvloop", "goroutines-procs1"]  # higher is better: first
    assert throughput.notes == ["160,000 req/s   1.07x", "150,000 req/s   1.00x"]


def test_labels_are_the_parameters_that_vary_in_the_group(run_json):
    (panel,) = plot.panels(plot.load(run_json))["procs"]
    assert panel.labels == ["goroutines-procs1", "goroutines-default"]


def test_writes_one_png_per_area(run_json, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    out = tmp_path / "img"
    assert plot.main([str(out), "--json", str(run_json)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["bench-chan.png", "bench-memory.png", "bench-net.png", "bench-procs.png"]
    assert capsys.readouterr().out.split() == [str(out / n) for n in names]
    height, width, _ = imread(out / "bench-net.png").shape
    assert width >= 800 and height >= 200


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not a pytest-benchmark JSON file"),
        ('{"no": "benchmarks"}', "not a pytest-benchmark JSON file"),
        ('{"benchmarks": []}', "no group with timings"),
    ],
)
def test_input_that_is_not_a_benchmark_run_is_a_usage_error(tmp_path, capsys, content, message):
    path = tmp_path / "run.json"
    path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        plot.main([str(tmp_path / "img"), "--json", str(path)])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "img").exists()


def test_a_missing_file_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        plot.main([str(tmp_path / "img"), "--json", str(tmp_path / "absent.json")])
    assert exc.value.code == 2
    assert "absent.json" in capsys.readouterr().err


TINY = '''
import pytest

@pytest.mark.benchmark(group="tiny")
@pytest.mark.parametrize("runtime", ["goroutines", "peer"])
def test_tiny(benchmark, runtime):
    benchmark.pedantic(sum, args=(range(10 if runtime == "goroutines" else 1000),), rounds=3)
'''


def test_without_json_it_runs_the_benchmarks_it_is_given_then_draws(
    tmp_path, monkeypatch, capsys
):
    pytest.importorskip("matplotlib")
    bench = tmp_path / "bench_tiny.py"
    bench.write_text(TINY)
    monkeypatch.setattr(plot, "RUN_JSON", tmp_path / "run.json")
    assert plot.main([str(tmp_path / "img"), "--", str(bench), "-q", "-p", "no:randomly"]) == 0
    (panel,) = plot.panels(plot.load(tmp_path / "run.json"))["tiny"]
    assert panel.labels == ["goroutines", "peer"]
    assert capsys.readouterr().out.splitlines()[-1] == str(tmp_path / "img" / "bench-tiny.png")


def test_a_failing_benchmark_run_draws_nothing(tmp_path, monkeypatch, capsys):
    bench = tmp_path / "bench_fails.py"
    bench.write_text("def test_fails(benchmark):\n    benchmark(lambda: 1 / 0)\n")
    monkeypatch.setattr(plot, "RUN_JSON", tmp_path / "run.json")
    with pytest.raises(SystemExit) as exc:
        plot.main([str(tmp_path / "img"), "--", str(bench), "-q"])
    assert exc.value.code == 1
    assert "no chart was drawn" in capsys.readouterr().err
    assert not (tmp_path / "img").exists()
