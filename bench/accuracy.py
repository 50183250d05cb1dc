"""Issue 4's accuracy protocols, run through jobs/compare_models.py's own flags.

    .venv/bin/python bench/accuracy.py [--data ../shared/data/movielens] [--only folds,small,topn]

- ``folds``: ml-100k's five official folds (``--train-ratings uN.base
  --test-ratings uN.test``), mean test RMSE of every rating model;
- ``small``: ml-latest-small, the job's seeded random 80/20 split, test RMSE;
- ``topn``: ml-100k, per-user stratified 75/25 split, nDCG@10 of the top 10
  unseen movies (relevant = the user's test movies), implicit ALS and the
  other ranking models.

Every run is ``./spark-submit.sh jobs/compare_models.py ...`` with the defaults in
conf/movierec.toml; the figures are read back from each run's
metrics.json and printed as a table (and written to ``--output``/accuracy.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATING_MODELS = "global_mean,bias,als,item_knn,user_knn,blend"
RANKING_MODELS = "bias,als,implicit,ease,rp3beta,topn_blend,popularity"


def run_job(args: list[str], output: Path) -> dict:
    """Run compare_models with ``args`` into ``output``; its metrics.json."""
    command = [str(ROOT / "spark-submit.sh"), "jobs/compare_models.py", *args,
               "--predictions-sample", "0", "--output", str(output)]
    print("$ " + " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    return json.loads((output / "metrics.json").read_text())


def folds(data: Path, out: Path) -> dict:
    base = data / "ml-100k"
    per_fold = []
    for n in range(1, 6):
        metrics = run_job(
            ["--dataset", "ml-100k", "--source", str(base), "--models", RATING_MODELS,
             "--train-ratings", str(base / f"u{n}.base"), "--test-ratings", str(base / f"u{n}.test")],
            out / f"u{n}",
        )
        per_fold.append({name: m["rmse"] for name, m in metrics["models"].items()})
    names = list(per_fold[0])
    return {
        "protocol": "ml-100k u1-u5, mean test RMSE",
        "per_fold": per_fold,
        "mean_rmse": {name: statistics.fmean(f[name] for f in per_fold) for name in names},
    }


def small(data: Path, out: Path) -> dict:
    metrics = run_job(
        ["--dataset", "ml-latest-small", "--source", str(data / "ml-latest-small"), "--models", RATING_MODELS],
        out / "small",
    )
    return {
        "protocol": f"ml-latest-small random {metrics['split']['test_fraction']} test, seed {metrics['split']['seed']}, test RMSE",
        "rmse": {name: m["rmse"] for name, m in metrics["models"].items()},
    }


def topn(data: Path, out: Path) -> dict:
    metrics = run_job(
        ["--dataset", "ml-100k", "--source", str(data / "ml-100k"), "--models", RANKING_MODELS,
         "--split", "stratified", "--test-fraction", "0.25", "--k", "10"],
        out / "topn",
    )
    return {
        "protocol": "ml-100k stratified 75/25, seed 42, nDCG@10 of the top 10 unseen movies",
        "ndcg@10": {name: m["ndcg@10"] for name, m in metrics["models"].items()},
    }


PROTOCOLS = {"folds": folds, "small": small, "topn": topn}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="accuracy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "movielens",
                        help="folder holding ml-100k/ and ml-latest-small/")
    parser.add_argument("--only", default=",".join(PROTOCOLS), help="protocols to run, from folds,small,topn")
    parser.add_argument("--output", type=Path, default=ROOT / "output" / "accuracy", help="where the runs write")
    args = parser.parse_args(argv)
    wanted = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(wanted) - set(PROTOCOLS))
    if unknown:
        parser.error(f"unknown protocol(s) {', '.join(unknown)}; choose from {', '.join(PROTOCOLS)}")
    results = {}
    for name in wanted:
        results[name] = PROTOCOLS[name](args.data.resolve(), args.output.resolve())
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "accuracy.json").write_text(json.dumps(results, indent=2) + "\n")
    for name, result in results.items():
        print(f"\n{result['protocol']}:")
        figures = result.get("mean_rmse") or result.get("rmse") or result.get("ndcg@10")
        for model, value in figures.items():
            print(f"  {model:12s} {'-' if value is None else f'{value:.4f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
