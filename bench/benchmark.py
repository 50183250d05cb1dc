"""Issue 6's benchmark: this project's pipeline against plain Spark ALS, same data.

    .venv/bin/python bench/benchmark.py                       # every size
    .venv/bin/python bench/benchmark.py --sizes ml-100k,1m --runs 3

Per size it prepares the data once (real releases are ingested with
jobs/ingest.py; synthetic sets are generated with jobs/generate_synthetic.py
and exported to ratings.csv for the plain reference), then per run times

- the project: ``./spark-submit.sh jobs/train_als.py --ingested DIR`` with
  ALS rank 10, 10 iterations, stage times from its metrics.json (up to 2M
  ratings spark-submit.sh runs its JVM with the C1 JIT only, as for any
  short local run: movierec_spark/launch.py);
- the plain reference: ``bench/plain_als.py`` through Spark's own
  spark-submit with no spark-defaults.conf (Spark's defaults), reading the
  ratings as text, same ALS parameters;
- on ml-latest-small, the README's main command as a user runs it
  (``./spark-submit.sh jobs/train_als.py``, default settings, the release's
  folder as ``--source`` in place of the download cache): wall time with
  the JVM's start, and the size of the output folder;
- *serving* (issue 21): ``bench/serving.py`` on the model a run above saved
  (the main command's on ml-latest-small, the project's elsewhere): 1,000
  generated people folded in and ranked without Spark, p50/p95 latency per
  person, and ``movierec-recommend`` for one person as a whole process.

It samples /proc while each run lasts for the peak resident memory of the
JVM (driver and executors share it in local mode) and of the Python
workers, prints a table of medians over the runs and writes BENCHMARKS.md
with a log-log plot of fit time against ratings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MOVIELENS_DATA", ROOT.parent / "shared" / "data" / "movielens"))
CACHE = Path(os.environ.get("MOVIEREC_CACHE", Path.home() / ".cache" / "movierec-spark")) / "bench"

PIPELINES = ("project", "plain", "main", "serving")
# The README's main command runs on this release alone.
MAIN_SIZE = "ml-latest-small"

# name -> (kind, ratings, users, movies); synthetic sizes keep ml-25m's ratios.
SIZES = {
    "ml-latest-small": ("real", 100_836, 610, 9_742),
    "ml-100k": ("real", 100_000, 943, 1_682),
    "1m": ("synthetic", 1_000_000, 6_502, 2_362),
    "10m": ("synthetic", 10_000_000, 65_017, 23_619),
    "25m": ("synthetic", 25_000_095, 162_541, 59_047),
}
RANK, MAX_ITER, REG_PARAM = 10, 10, 0.1
# The pipeline the issue times (biased ALS only, no accuracy extras).
BENCH_CONFIG = ROOT / "conf" / "bench.toml"
# Issue 21's goals: p95 latency per person, ms (a model of the main command's size, and of 25M ratings).
SERVING_GOALS_MS = {"ml-latest-small": 20.0, "25m": 100.0}
SHORT_RUN_RATINGS = 2_000_000  # sizes below this get --runs repeats
# Hand-written measurements (levers, top-N, fold-in): the report links to
# them and never copies them, so BENCHMARKS.md holds only what this script
# measured and can be rewritten from results.json at any time.
NOTES = ROOT / "bench" / "NOTES.md"


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# --- peak memory from /proc ---


def _children(pid: int) -> list[int]:
    # Every thread's children: the JVM starts Python workers from other threads than its main one.
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def _status(pid: int) -> tuple[str, int]:
    """(command name, resident kB) of a process; ('', 0) once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "", 0
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return fields.get("Name", "").strip(), int(fields.get("VmRSS", "0 kB").split()[0])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakMemory(threading.Thread):
    """Samples a process tree every 0.5 s: peak JVM RSS, peak summed Python-worker RSS, CPU seconds.

    CPU seconds (the last sample of each process, summed) say how much work a
    run did whatever else the shared machine was doing; wall time does not.
    """

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.jvm_kb, self.python_kb = pid, 0, 0
        self.cpu: dict[int, float] = {}
        self.done = threading.Event()

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())

    def run(self) -> None:
        while not self.done.is_set():
            jvm = py = 0
            for p in _tree(self.pid):
                name, rss = _status(p)
                self.cpu[p] = max(self.cpu.get(p, 0.0), _cpu_seconds(p))
                if name == "java":
                    jvm = max(jvm, rss)
                elif name.startswith("python"):
                    py += rss
            self.jvm_kb, self.python_kb = max(self.jvm_kb, jvm), max(self.python_kb, py)
            self.done.wait(0.5)


def timed(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    """Run ``cmd`` (output to ``log``); wall seconds and peak memory in MiB."""
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        peak = PeakMemory(proc.pid)
        peak.start()
        code = proc.wait()
        peak.done.set()
        peak.join()
    if code != 0:
        raise SystemExit(f"benchmark: {' '.join(cmd)} failed ({code}); see {log}")
    return {
        "wall": time.perf_counter() - started,
        "jvm_peak_mib": peak.jvm_kb / 1024,
        "python_peak_mib": peak.python_kb / 1024,
        "cpu_seconds": peak.cpu_seconds,
    }


# --- data ---


def prepare(name: str, work: Path, ingest: bool) -> tuple[Path, Path, dict]:
    """(ingested folder for the project, ratings text for the plain script, timings)."""
    kind, ratings, users, movies = SIZES[name]
    folder = work / "data" / name
    folder.mkdir(parents=True, exist_ok=True)
    ingested = folder / "ingested"
    prep: dict = {}
    if kind == "real":
        source = SHARED / name
        text = source / ("u.data" if name == "ml-100k" else "ratings.csv")
        if ingest and not (ingested / "ingest_report.json").exists():
            prep["ingest"] = timed(
                ["./spark-submit.sh", "jobs/ingest.py", "--dataset", name, "--source", str(source), "--output", str(ingested)],
                folder / "ingest.log",
            )
        return ingested, text, prep
    report = ingested / "ingest_report.json"
    if not report.exists() or json.loads(report.read_text())["summary"]["ratings"] != ratings:
        prep["generate"] = timed(
            ["./spark-submit.sh", "jobs/generate_synthetic.py", "--ratings", str(ratings), "--users", str(users),
             "--movies", str(movies), "--seed", "42", "--output", str(ingested)],
            folder / "generate.log",
        )  # fmt: skip
    text = folder / "ratings.csv"
    if not text.exists():
        export_csv(ingested / "ratings", text)
    return ingested, text, prep


def export_csv(parquet_dir: Path, target: Path) -> None:
    """Write the ratings as MovieLens ratings.csv, one row group at a time (bounded memory)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    tmp = target.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(b"userId,movieId,rating,timestamp\n")
        for part in sorted(parquet_dir.glob("*.parquet")):
            pf = pq.ParquetFile(part)
            for i in range(pf.num_row_groups):
                table = pf.read_row_group(i)
                pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False))
    tmp.replace(target)


# --- the two pipelines ---


def project_command(ingested: Path, out: Path) -> list[str]:
    """The project's run (spark-submit.sh picks the JIT for the data's size: movierec_spark/launch.py)."""
    return ["./spark-submit.sh", "jobs/train_als.py", "--config", str(BENCH_CONFIG), "--ingested", str(ingested),
            "--rank", str(RANK), "--max-iter", str(MAX_ITER), "--reg-param", str(REG_PARAM), "--output", str(out)]  # fmt: skip


def run_project(ingested: Path, out: Path, log: Path) -> dict:
    cmd = project_command(ingested, out)
    measured = timed(cmd, log)
    metrics = json.loads((out / "metrics.json").read_text())
    models = metrics.get("models", {})
    als = next((v for k, v in models.items() if "als" in k and "implicit" not in k), {})
    fit = next((v for k, v in metrics["stages"].items() if k.startswith("fit") and "als" in k), None)
    return {**measured, "stages": metrics["stages"], "fit": fit, "rmse": als.get("rmse")}


def main_command(source: Path, out: Path) -> list[str]:
    """The README's main command, default settings, reading ``source`` instead of the download cache."""
    return ["./spark-submit.sh", "jobs/train_als.py", "--source", str(source), "--output", str(out)]


def folder_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def run_main(source: Path, out: Path, log: Path) -> dict:
    measured = timed(main_command(source, out), log)
    metrics = json.loads((out / "metrics.json").read_text())
    als = metrics["models"]["als"]
    return {**measured, "stages": metrics["stages"], "fit": metrics["stages"].get("fit als"), "rmse": als["rmse"],
            "ndcg": als.get(f"ndcg@{metrics['k']}"), "output_mib": folder_mib(out)}


def serving_model(work: Path, name: str) -> Path | None:
    """The newest saved model of size ``name`` a main or project run left, with its movie table."""
    found = [m for m in (work / "runs").glob(f"{name}-*/model") if (m / "movie_table").is_dir()]
    return max(found, key=lambda m: m.stat().st_mtime) if found else None


def run_serving(model: Path, out: Path, log: Path) -> dict:
    """bench/serving.py on ``model``: latency per person without Spark, and the command's wall time."""
    figures = out / "serving.json"
    out.mkdir(parents=True, exist_ok=True)
    measured = timed([python(), "bench/serving.py", "--model", str(model), "--json", str(figures),
                      "--work-dir", str(out)], log)
    return {**measured, **json.loads(figures.read_text())["given"], "fit": None, "rmse": None, "stages": {}}


def run_plain(text: Path, out: Path, log: Path, driver_memory: str) -> dict:
    spark_home = subprocess.run(
        [python(), "-c", "import findspark; print(findspark.find())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    empty_conf = out.parent / "plain-conf"
    empty_conf.mkdir(parents=True, exist_ok=True)
    metrics_file = out.parent / f"{out.name}.json"
    cmd = [f"{spark_home}/bin/spark-submit", "--master", "local[*]", "--driver-memory", driver_memory,
           "bench/plain_als.py", "--ratings", str(text), "--custom", str(ROOT / "bench" / "custom_ratings.csv"),
           "--rank", str(RANK), "--max-iter", str(MAX_ITER), "--reg-param", str(REG_PARAM),
           "--output", str(out), "--metrics", str(metrics_file)]  # fmt: skip
    env = {"SPARK_CONF_DIR": str(empty_conf), "PYSPARK_PYTHON": python(), "SPARK_LOCAL_IP": "127.0.0.1"}
    measured = timed(cmd, log, env)
    metrics = json.loads(metrics_file.read_text())
    return {**measured, "stages": metrics["seconds"], "fit": metrics["seconds"]["fit"], "rmse": metrics["rmse"]}


def driver_memory() -> str:
    for line in (ROOT / "conf" / "spark-defaults.conf").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "spark.driver.memory":
            return parts[1]
    return "1g"


# --- report ---


def median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())  # fmt: skip
    mem_kb = int(next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")))
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    return (f"{os.cpu_count()} cores ({cpu}), {mem_kb / 2**20:.0f} GiB RAM, {platform.system()} "
            f"{platform.release()}, {java}, Python {platform.python_version()}")  # fmt: skip


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def write_report(results: dict, target: Path, command: str) -> str:
    rows = ["| size | ratings | pipeline | runs | wall s | CPU s | fit s | s/iter | RMSE | JVM peak MiB | Python peak MiB | load |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    stage_rows = []
    main_rows = []
    serving_rows = []
    for name, by_pipeline in results.items():
        for pipeline, runs in by_pipeline.items():
            if pipeline == "serving":
                goal = SERVING_GOALS_MS.get(name)
                serving_rows.append(
                    f"| {name} | {len(runs)} | {runs[-1]['movies']:,} | {runs[-1]['rank']} "
                    f"| {fmt(median(runs, 'load_s'), '.2f')} | {fmt(median(runs, 'p50_ms'))} "
                    f"| {fmt(median(runs, 'p95_ms'))} | {fmt(median(runs, 'max_ms'))} "
                    f"| {fmt(goal, '.0f')} | {fmt(median(runs, 'command_s'), '.2f')} | {fmt(median(runs, 'load'))} |"
                )
                continue
            if pipeline == "main":
                main_rows.append(
                    f"| {name} | {len(runs)} | {fmt(median(runs, 'wall'))} | {fmt(median(runs, 'cpu_seconds'), '.0f')} "
                    f"| {fmt(median(runs, 'output_mib'), '.1f')} | {fmt(median(runs, 'rmse'), '.4f')} "
                    f"| {fmt(median(runs, 'ndcg'), '.4f')} | {fmt(median(runs, 'jvm_peak_mib'), '.0f')} "
                    f"| {fmt(median(runs, 'load'))} |"
                )
            fit = median(runs, "fit")
            stages = {k: statistics.median(r["stages"][k] for r in runs if k in r["stages"]) for k in runs[0]["stages"]}
            stage_rows.append(f"- {name}, {pipeline}: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
            if pipeline == "main":
                continue
            rows.append(
                f"| {name} | {SIZES[name][1]:,} | {pipeline} | {len(runs)} | {fmt(median(runs, 'wall'))} "
                f"| {fmt(median(runs, 'cpu_seconds'), '.0f')} | {fmt(fit)} "
                f"| {fmt(fit / MAX_ITER if fit else None, '.2f')} | {fmt(median(runs, 'rmse'), '.4f')} "
                f"| {fmt(median(runs, 'jvm_peak_mib'), '.0f')} | {fmt(median(runs, 'python_peak_mib'), '.0f')} "
                f"| {fmt(median(runs, 'load'))} |"
            )
    plot = plot_fit_times(results, target.parent / "bench" / "fit_time.png")
    text = "\n".join([
        "# Benchmarks",
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {machine()}.",
        "*load* is the 1-minute load average as each run started (median over the runs): the machine is"
        " shared, and figures taken at a load above its core count are slowed by other work.",
        "",
        f"ALS rank {RANK}, {MAX_ITER} iterations, regParam {REG_PARAM}; medians over the runs. *project* is "
        "`jobs/train_als.py` from the ingested Parquet tables (up to 2M ratings spark-submit.sh gives it the C1-only "
        "JIT, `-XX:TieredStopAtLevel=1`, as every short local run: movierec_spark/launch.py); *plain* is `bench/plain_als.py` (Spark's ALS "
        "example, Spark's default configuration, ratings parsed from text). Peak memory is the resident size "
        "of the JVM (driver and executors share it in local mode) and of all Python processes together; "
        "*CPU s* is the CPU time of the whole process tree (2 cores: a quiet machine's wall time is at least half of it).",
        "",
        *rows,
        "",
        *main_section(main_rows),
        *serving_section(serving_rows),
        "Wall time per stage (medians):",
        "",
        *stage_rows,
        "",
        f"![fit time against ratings, log-log]({plot.relative_to(target.parent)})" if plot else "",
        "",
        *slope_lines(results),
        f"What was measured beyond this table, how, and against which targets: [bench/NOTES.md]({notes_link(target)}).",
        "",
    ])  # fmt: skip
    target.write_text(text)
    return text


def main_section(rows: list[str]) -> list[str]:
    """The README's main command: its own table (target: 45 s with the JVM's start, output under 15 MB)."""
    if not rows:
        return []
    return [
        "The README's main command, `./spark-submit.sh jobs/train_als.py` with its default settings (biased "
        "ALS, RMSE/MAE/R2 and ranking metrics at 10, the example user's top 10, the saved model), reading the "
        "release's folder with `--source` in place of the download cache; wall time includes the JVM's start. "
        "Target: 45 s or less, output under 15 MB.",
        "",
        "| release | runs | wall s | CPU s | output MB | RMSE | nDCG@10 | JVM peak MiB | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ]


def serving_section(rows: list[str]) -> list[str]:
    """Issue 21's serving figures: a person's top-N from a saved model, without Spark."""
    if not rows:
        return []
    return [
        "A person's recommendations from a saved model without Spark (`bench/serving.py`: "
        "`movierec_spark.serving.local`, pyarrow and numpy, no JVM), on the model a run above saved: 1,000 "
        "generated people with 5 to 50 ratings each, fold-in + top-10 + explanations timed per person; "
        "*command s* is `movierec-recommend` for one person as a whole process (goal: under 2 s).",
        "",
        "| size | runs | movies | rank | model load s | p50 ms | p95 ms | max ms | goal p95 ms | command s | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ]


def notes_link(target: Path) -> str:
    """bench/NOTES.md relative to the report's folder, for a Markdown link."""
    return Path(os.path.relpath(NOTES, target.resolve().parent)).as_posix()


def slope_lines(results: dict) -> list[str]:
    """Log-log slope of fit time against ratings between the smallest and largest synthetic size."""
    import math

    lines = []
    for pipeline in ("project", "plain"):
        points = sorted(
            (SIZES[name][1], median(by[pipeline], "fit"))
            for name, by in results.items()
            if SIZES[name][0] == "synthetic" and by.get(pipeline) and median(by[pipeline], "fit")
        )
        if len(points) >= 2:
            (x0, y0), (x1, y1) = points[0], points[-1]
            slope = math.log(y1 / y0) / math.log(x1 / x0)
            lines.append(f"Log-log slope of fit time, {pipeline}, {x0:,} -> {x1:,} ratings: {slope:.2f}.")
    return [*lines, ""] if lines else []


def plot_fit_times(results: dict, target: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for pipeline in ("project", "plain"):
        points = sorted(
            (SIZES[name][1], median(by[pipeline], "fit")) for name, by in results.items() if by.get(pipeline)
        )
        points = [(x, y) for x, y in points if y]
        if points:
            ax.plot(*zip(*points), marker="o", label=pipeline)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set(xscale="log", yscale="log", xlabel="ratings", ylabel="ALS fit seconds", title="ALS fit time (rank 10, 10 iterations)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated, of: {', '.join(SIZES)}")
    parser.add_argument("--runs", type=int, default=3, help="runs per pipeline for sizes under 2M ratings (else 1)")
    parser.add_argument("--pipelines", default=",".join(PIPELINES),
                        help="comma-separated, of: project, plain, main, serving (default: all; main on "
                             "ml-latest-small only; serving on the model main or project saved)")
    parser.add_argument("--work-dir", type=Path, default=CACHE, help="generated data and run outputs")
    parser.add_argument("--report", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--fresh", action="store_true", help="forget the results of earlier runs in --work-dir")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from --work-dir's results.json")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {', '.join(unknown)}; choose from {', '.join(SIZES)}")
    if args.report_only:
        results = json.loads((args.work_dir / "results.json").read_text())
        print(write_report(results, args.report, "python bench/benchmark.py --report-only"))
        return 0
    # Serving measures the model a run of this iteration saved: it goes last.
    pipelines = sorted((p.strip() for p in args.pipelines.split(",") if p.strip()), key=lambda p: p == "serving")
    if not pipelines or any(p not in PIPELINES for p in pipelines):
        parser.error(f"--pipelines takes a comma-separated list of {', '.join(PIPELINES)}, got {args.pipelines!r}")
    if "project" in pipelines and not (ROOT / "jobs" / "train_als.py").exists():
        parser.error("jobs/train_als.py is not in this checkout; run with --pipelines plain")
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    # Sizes measured before and not re-run now stay in the report.
    results_file = work / "results.json"
    results: dict = json.loads(results_file.read_text()) if results_file.exists() and not args.fresh else {}
    for name in sizes:
        ingested, text, prep = prepare(name, work, ingest="project" in pipelines)
        runs = args.runs if SIZES[name][1] < SHORT_RUN_RATINGS else 1
        results[name] = {**results.get(name, {}), **{p: [] for p in pipelines}}
        for i in range(runs):
            for pipeline in pipelines:
                load = os.getloadavg()[0]
                out = work / "runs" / f"{name}-{pipeline}-{i}"
                shutil.rmtree(out, ignore_errors=True)
                log = work / "runs" / f"{name}-{pipeline}-{i}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                if pipeline == "serving":
                    model = serving_model(work, name)
                    if model is None:
                        print(f"{name} serving: no saved model of this size yet (run main or project first)")
                        continue
                    result = run_serving(model, out, log)
                elif pipeline == "main":
                    if name != MAIN_SIZE:
                        continue
                    result = run_main(SHARED / name, out, log)
                elif pipeline == "project":
                    result = run_project(ingested, out, log)
                else:
                    result = run_plain(text, out, log, driver_memory())
                results[name][pipeline].append({**result, "load": load})
                print(f"{name} {pipeline} run {i + 1}/{runs}: wall {result['wall']:.1f} s, fit "
                      f"{fmt(result['fit'])} s, RMSE {fmt(result['rmse'], '.4f')}", flush=True)  # fmt: skip
    results = {name: {p: runs for p, runs in results[name].items() if runs} for name in SIZES if name in results}
    results_file.write_text(json.dumps(results, indent=2))
    command = "python bench/benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(write_report(results, args.report, command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
