"""Issue 21's serving benchmark: a person's top-N from a saved model, without Spark, per person.

    .venv/bin/python bench/serving.py                          # the README's main command's model (fitted if missing)
    .venv/bin/python bench/serving.py --model output/train_als/model
    .venv/bin/python bench/serving.py --sizes small,25m        # also 25M synthetic ratings: minutes and GBs to fit

Per model it loads :class:`movierec_spark.serving.local.LocalRecommender`
(timed once), generates ``--people`` people (default 1,000) who rate 5 to
50 movies each, and times, person by person, what a request costs: their
ratings checked against the catalog, the fold-in, the top-10 with its
"because you liked" explanations (``LocalRecommender.recommend``). It
prints p50, p95 and the largest latency, and times the
``movierec-recommend`` command for one person as a whole process
(interpreter start, imports, model load, output written), the median of
``--command-runs``.

People: each rates movies drawn by popularity (a movie's chance is its
rating count) among movies with factors, with the rating the model itself
would predict for a random taste (a user bias and factors drawn like the
model's spread), plus noise, rounded to the scale.

Sizes: ``small`` is the model of the README's main command
(``./spark-submit.sh jobs/train_als.py`` on ml-latest-small), fitted into
``--work-dir`` when ``--model`` is not given; ``25m`` generates 25M
synthetic ratings with ``jobs/generate_synthetic.py`` and fits them with
``jobs/train_als.py --solver driver`` (rank 10, 10 iterations), which takes
minutes and several GB. ``--json FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# As movierec-recommend does (movierec_spark/serving/command.py): one BLAS thread per request.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402 - after the BLAS setting

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the library of this checkout

CACHE = Path(os.environ.get("MOVIEREC_CACHE", Path.home() / ".cache" / "movierec-spark")) / "bench" / "serving"
SHARED = Path(os.environ.get("MOVIELENS_DATA", ROOT.parent / "shared" / "data" / "movielens"))
SIZES = ("small", "25m")
# Issue 21's goals, p95 per person in ms.
GOALS_MS = {"small": 20.0, "25m": 100.0}
COMMAND_GOAL_S = 2.0
SYNTHETIC_25M = ("--ratings", "25000095", "--users", "162541", "--movies", "59047", "--seed", "42")


def run(cmd: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=True)


def small_model(work: Path) -> Path:
    """The README's main command's model (default settings), on ml-latest-small."""
    model = work / "small" / "train_als" / "model"
    if not (model / "movie_table").is_dir():
        source = SHARED / "ml-latest-small"
        cmd = ["./spark-submit.sh", "jobs/train_als.py", "--output", str(model.parent)]
        run(cmd + (["--source", str(source)] if source.is_dir() else []), work / "small" / "train.log")
    return model


def synthetic_model(work: Path) -> Path:
    """25M synthetic ratings (ml-25m's shape), fitted by the driver solver with the benchmark's ALS settings."""
    folder = work / "25m"
    ingested, model = folder / "ingested", folder / "train_als" / "model"
    if not (ingested / "ingest_report.json").is_file():
        run(["./spark-submit.sh", "jobs/generate_synthetic.py", *SYNTHETIC_25M, "--output", str(ingested)],
            folder / "generate.log")
    if not (model / "movie_table").is_dir():
        run(["./spark-submit.sh", "jobs/train_als.py", "--config", "conf/bench.toml", "--ingested", str(ingested),
             "--solver", "driver", "--no-top-n-all", "--output", str(model.parent)], folder / "train.log")
    return model


def people(recommender, count: int, seed: int) -> list[list[tuple[int, float]]]:
    """``count`` people, each ``(movie id, rating)`` pairs for 5 to 50 movies (module docstring)."""
    rng = np.random.default_rng(seed)
    movies = recommender.movies
    scale, mean = recommender.model.scale, recommender.model.global_mean
    rows = np.flatnonzero(movies.has_factors)
    weight = movies.frame["num_ratings"].to_numpy()[rows].astype(np.float64) + 1.0
    weight /= weight.sum()
    spread = movies.factors[rows].std(axis=0) if movies.rank else np.zeros(0)
    out = []
    for _ in range(count):
        size = int(rng.integers(5, 51))
        picked = rng.choice(rows, size=min(size, len(rows)), replace=False, p=weight)
        taste = rng.normal(0.0, spread * 3.0) if movies.rank else np.zeros(0)
        score = mean + rng.normal(0.0, 0.4) + movies.item_bias[picked] + movies.factors[picked] @ taste
        score += rng.normal(0.0, 0.5, size=len(picked))
        stars = np.clip(np.round((score - scale.low) / scale.step) * scale.step + scale.low, scale.low, scale.high)
        out.append([(int(movies.ids[r]), float(s)) for r, s in zip(picked, stars)])
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def latencies(model_dir: Path, count: int, seed: int, top_n: int) -> dict:
    from movierec_spark.serving.local import LocalRecommender
    from movierec_spark.settings import RecommendSettings

    started = time.perf_counter()
    recommender = LocalRecommender.load(model_dir, RecommendSettings(top_n=top_n))
    load_s = time.perf_counter() - started
    crowd = people(recommender, count, seed)
    recommender.recommend(recommender.ratings_from_pairs("warm-up", crowd[0]))  # first-call imports
    times, rows, popular = [], 0, 0
    for person in crowd:
        start = time.perf_counter()
        table = recommender.recommend(recommender.ratings_from_pairs("someone", person))
        times.append((time.perf_counter() - start) * 1000)
        rows += len(table)
        popular += int((table["basis"] == "popular").any())
    return {
        "model": str(model_dir), "movies": len(recommender.movies.ids), "rank": recommender.movies.rank,
        "people": count, "load_s": load_s, "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
        "max_ms": max(times), "mean_ms": statistics.fmean(times), "rows": rows, "popular_people": popular,
    }


def command_seconds(model_dir: Path, work: Path, runs: int, ratings: Path) -> float:
    """Median wall time of ``movierec-recommend`` for one person (``ratings``), as a whole process."""
    times = []
    for run_id in range(runs):
        out = work / "command" / f"run-{run_id}"
        cmd = [sys.executable, "-m", "movierec_spark.serving.command", "--model", str(model_dir),
               "--custom-ratings", str(ratings), "--output", str(out), "--min-ratings", "0"]
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode:
            raise SystemExit(f"movierec-recommend failed: {done.stderr.strip()}")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a saved model folder (else --sizes are fitted into --work-dir)")
    parser.add_argument("--sizes", default="small", help=f"comma-separated, of: {', '.join(SIZES)}")
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--command-runs", type=int, default=5, help="runs of movierec-recommend (0: skip)")
    parser.add_argument("--ratings", type=Path, default=ROOT / "bench" / "custom_ratings.csv",
                        help="the one person's ratings for the command (movie ids of every benchmarked release)")
    parser.add_argument("--work-dir", type=Path, default=CACHE)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.model:
        models = {"given": args.model}
    else:
        builders = {"small": small_model, "25m": synthetic_model}
        names = [s.strip() for s in args.sizes.split(",") if s.strip()]
        unknown = [n for n in names if n not in builders]
        if unknown:
            parser.error(f"unknown size(s) {', '.join(unknown)}; use {', '.join(SIZES)}")
        models = {name: builders[name](args.work_dir) for name in names}
    results = {}
    print(f"{'model':<8} {'movies':>7} {'rank':>4} {'load s':>7} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} "
          f"{'goal p95':>8} {'command s':>9}")
    for name, model_dir in models.items():
        figures = latencies(model_dir, args.people, args.seed, args.top_n)
        if args.command_runs:
            figures["command_s"] = command_seconds(model_dir, args.work_dir / name, args.command_runs, args.ratings)
        results[name] = figures
        goal = GOALS_MS.get(name)
        print(f"{name:<8} {figures['movies']:>7} {figures['rank']:>4} {figures['load_s']:>7.2f} "
              f"{figures['p50_ms']:>7.1f} {figures['p95_ms']:>7.1f} {figures['max_ms']:>7.1f} "
              f"{'' if goal is None else f'{goal:.0f}':>8} {figures.get('command_s', float('nan')):>9.2f}")
    print(f"({args.people} people, 5-50 ratings each, top-{args.top_n} with explanations; "
          f"command: one person, whole process, goal {COMMAND_GOAL_S:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
