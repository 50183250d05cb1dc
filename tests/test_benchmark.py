"""bench/benchmark.py: the command line that times the project's pipeline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "bench" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_project_run_is_the_bench_config_over_the_ingested_tables():
    bench = _benchmark()
    command = bench.project_command(Path("in"), Path("out"))
    assert command[:2] == ["./spark-submit.sh", "jobs/train_als.py"]
    assert command[command.index("--config") + 1] == str(bench.BENCH_CONFIG)
    assert command[command.index("--ingested") + 1] == "in" and command[-2:] == ["--output", "out"]


def _runs(wall: float, fit: float, rmse: float) -> list[dict]:
    stages = {"load": 1.0, "fit als": fit}
    return [{"wall": wall, "cpu_seconds": 2 * wall, "fit": fit, "rmse": rmse, "jvm_peak_mib": 2000.0,
             "python_peak_mib": 300.0, "load": 0.5, "stages": stages}]


def test_the_report_holds_the_measured_tables_and_links_the_notes_by_hand(tmp_path, monkeypatch):
    bench = _benchmark()
    monkeypatch.setattr(bench, "machine", lambda: "a test machine")
    # Notes by hand that must not be pasted into the generated report.
    notes = tmp_path / "bench" / "NOTES.md"
    notes.parent.mkdir()
    notes.write_text("## Notes by hand\n\nA figure measured by hand: 12.345 s.\n")
    monkeypatch.setattr(bench, "NOTES", notes)
    results = {
        "1m": {"project": _runs(27.4, 1.8, 0.6518), "plain": _runs(51.5, 10.9, 0.6663)},
        "25m": {"project": _runs(124.3, 20.5, 0.6489)},
    }
    target = tmp_path / "BENCHMARKS.md"

    text = bench.write_report(results, target, "python bench/benchmark.py --sizes 1m,25m")

    assert target.read_text() == text
    assert "Written by `python bench/benchmark.py --sizes 1m,25m`" in text
    assert "| 25m | 25,000,095 | project | 1 | 124.3 | 249 | 20.5 | 2.05 | 0.6489 | 2000 | 300 | 0.5 |" in text
    assert "- 1m, plain: load 1.0 s, fit als 10.9 s" in text
    assert "![fit time against ratings, log-log](bench/fit_time.png)" in text
    assert (tmp_path / "bench" / "fit_time.png").exists()
    assert "Log-log slope of fit time, project, 1,000,000 -> 25,000,095 ratings: 0.76." in text
    assert "[bench/NOTES.md](bench/NOTES.md)" in text
    assert "Notes by hand" not in text and "12.345" not in text


def test_the_notes_link_is_relative_to_wherever_the_report_is_written(tmp_path):
    bench = _benchmark()
    assert bench.notes_link(bench.ROOT / "BENCHMARKS.md") == "bench/NOTES.md"
    assert bench.notes_link(bench.ROOT / "bench" / "report.md") == "NOTES.md"


def test_the_main_command_is_the_readmes_and_gets_its_own_table(tmp_path, monkeypatch):
    bench = _benchmark()
    assert bench.main_command(Path("src"), Path("out")) == [
        "./spark-submit.sh", "jobs/train_als.py", "--source", "src", "--output", "out"]
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "part.parquet").write_bytes(b"x" * 2**20)
    (out / "metrics.csv").write_bytes(b"y" * 2**19)
    assert bench.folder_mib(out) == 1.5
    monkeypatch.setattr(bench, "machine", lambda: "a test machine")
    monkeypatch.setattr(bench, "NOTES", tmp_path / "NOTES.md")
    main = [{**run, "output_mib": 2.9, "ndcg": 0.0761} for run in _runs(41.2, 4.1, 0.8474)]
    text = bench.write_report({"ml-latest-small": {"project": _runs(22.8, 1.0, 0.87), "main": main}},
                              tmp_path / "BENCHMARKS.md", "python bench/benchmark.py")
    assert "| ml-latest-small | 1 | 41.2 | 82 | 2.9 | 0.8474 | 0.0761 | 2000 | 0.5 |" in text
    assert "Target: 45 s or less, output under 15 MB." in text
    # Not a row of the project-versus-plain table.
    assert "| ml-latest-small | 100,836 | main |" not in text


def test_serving_runs_on_the_newest_saved_model_and_gets_its_own_table(tmp_path, monkeypatch):
    import os

    bench = _benchmark()
    for run, stamp in (("ml-latest-small-main-0", 1), ("ml-latest-small-main-1", 2), ("ml-100k-project-0", 3)):
        (tmp_path / "runs" / run / "model" / "movie_table").mkdir(parents=True)
        os.utime(tmp_path / "runs" / run / "model", (stamp, stamp))
    (tmp_path / "runs" / "ml-latest-small-main-2" / "model").mkdir(parents=True)  # no movie table: not a model to serve
    assert bench.serving_model(tmp_path, "ml-latest-small") == tmp_path / "runs" / "ml-latest-small-main-1" / "model"
    assert bench.serving_model(tmp_path, "25m") is None
    monkeypatch.setattr(bench, "machine", lambda: "a test machine")
    monkeypatch.setattr(bench, "NOTES", tmp_path / "NOTES.md")
    serving = [{"wall": 30.0, "movies": 9742, "rank": 20, "load_s": 0.31, "p50_ms": 6.04, "p95_ms": 9.46,
                "max_ms": 20.1, "command_s": 1.234, "load": 0.5, "fit": None, "rmse": None, "stages": {}}]
    text = bench.write_report({"ml-latest-small": {"project": _runs(22.8, 1.0, 0.87), "serving": serving}},
                              tmp_path / "BENCHMARKS.md", "python bench/benchmark.py")
    assert "| ml-latest-small | 1 | 9,742 | 20 | 0.31 | 6.0 | 9.5 | 20.1 | 20 | 1.23 | 0.5 |" in text
    assert "| ml-latest-small | 100,836 | serving |" not in text and "ml-latest-small, serving" not in text


def test_the_serving_benchmark_prints_latencies_per_person(tmp_path):
    import json
    import subprocess
    import sys

    from tests.serving.test_local import write_tiny_model

    model = write_tiny_model(tmp_path / "model")
    ratings = tmp_path / "one.csv"
    ratings.write_text("user,movie,rating\nme,10,5\nme,20,2\n")
    figures = tmp_path / "serving.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "serving.py"), "--model", str(model), "--people", "30",
         "--command-runs", "1", "--ratings", str(ratings), "--work-dir", str(tmp_path / "work"), "--json", str(figures)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "p50 ms" in done.stdout and "p95 ms" in done.stdout
    given = json.loads(figures.read_text())["given"]
    assert given["people"] == 30 and 0 < given["p50_ms"] <= given["p95_ms"] <= given["max_ms"]
    assert given["command_s"] > 0 and given["movies"] == 8
