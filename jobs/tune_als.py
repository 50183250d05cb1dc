"""Search ALS hyper-parameters with Spark ML tuning on the training split only.

    ./spark-submit.sh jobs/tune_als.py [--mode explicit|implicit] [--grid NAME=V1,V2 ...] [--method tvs|cv] ...

Loads the release and splits it exactly as jobs/train_als.py does (same
data and split flags), then tunes on the TRAINING part only -- the test
part is never read, so train_als.py's test metrics stay honest. Each grid
point is scored by TrainValidationSplit (default) or CrossValidator on
random slices of the training ratings:

    explicit  movierec_spark.models.fit.BiasedALS (biases + ALS on residuals),
              RMSE (lower is better)
    implicit  movierec_spark.models.tune.ImplicitALS (ALS with implicitPrefs),
              nDCG@K of each validation user's top-K unseen movies
              (higher is better)

The grid comes from [tune] <mode>_<name> lists in conf/movierec.toml and
--grid flags (names: explicit rank, max_iter, reg_param, user_damping,
item_damping; implicit rank, max_iter, reg_param, alpha, confidence);
parameters not in the grid keep their [als] / [bias] / [implicit] values.
Writes to --output DIR:

    leaderboard.csv   one row per grid point, best first: place, parameters,
                      metric (mean over folds with cv, and metric_std),
                      mean fit seconds
    leaderboard/      the same as Parquet
    best.toml         the best parameters under the keys train_als.py reads:
                      train_als.py --config DIR/best.toml
    tune.json         everything: dataset, split, grid, method, leaderboard,
                      best, command, wall time per stage
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import sys
import time
from typing import Any

from movierec_spark import MovieRecError, cli
from movierec_spark import columns as C
from movierec_spark.config import Config

try:
    from jobs import train_als
except ImportError:  # run as a script (spark-submit): jobs/ itself is on sys.path
    import train_als  # type: ignore[no-redef]

log = logging.getLogger("jobs.tune_als")

PROG = "tune_als"


class _SetSeeds(argparse.Action):
    """``--seed N`` sets every seed: the split's, the models' and the tuner's."""

    config_keys = ("als.seed", "tune.seed", "split.seed")  # named in errors (cli.config_flags)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, "als.seed", values)
        setattr(namespace, "tune.seed", values)
        if getattr(namespace, "split.seed", None) is None:
            setattr(namespace, "split.seed", values)


def _grid_entry(text: str) -> str:
    from movierec_spark.models.tune import parse_grid_flag

    try:
        parse_grid_flag(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    from movierec_spark.models.tune import METHODS, MODES

    parser = cli.make_parser(PROG, __doc__.split("\n\n")[0])
    cli.add_data_flags(parser)
    train_als.add_split_flags(parser)

    tune = parser.add_argument_group("tuning (on the training split only; the test split is never read)")
    cli.add_flag(tune, "--mode", "tune.mode", choices=MODES,
                 help="explicit: biased ALS scored by RMSE; implicit: top-N ALS scored by nDCG@K")
    cli.add_flag(tune, "--grid", "tune.grid", type=_grid_entry, action="append", metavar="NAME=V1,V2",
                 help="values to try for one parameter (repeatable); replaces [tune] <mode>_NAME")
    cli.add_flag(tune, "--method", "tune.method", choices=METHODS,
                 help="tvs: TrainValidationSplit; cv: CrossValidator")
    cli.add_flag(tune, "--train-ratio", "tune.train_ratio", type=cli.number,
                 help="tvs: share of the training ratings each grid point is fitted on")
    cli.add_flag(tune, "--folds", "tune.num_folds", type=cli.whole_number, help="cv: number of folds (2 or more)")
    cli.add_flag(tune, "--parallelism", "tune.parallelism", type=cli.whole_number,
                 help="grid points fitted at the same time")
    cli.add_flag(tune, "--k", "evaluate.k", type=cli.whole_number, help="implicit: K of nDCG@K")
    tune.add_argument("--seed", type=train_als._int, action=_SetSeeds, metavar="N",
                      help="set every seed (split, models, tuner); --split-seed overrides the split's")
    cli.add_flag(tune, "--num-blocks", "als.num_user_blocks", type=cli.whole_number, metavar="N",
                 help="ALS user and item blocks")
    cli.add_flag(tune, "--checkpoint-dir", "als.checkpoint_dir", metavar="DIR",
                 help="Spark checkpoint folder (a shared filesystem on a cluster); empty: a temporary folder")
    cli.add_flag(tune, "--output", "tune.output", metavar="DIR", help="output folder")
    return parser


# --- validation before Spark starts ---


def tune_section(cfg: Config) -> dict[str, Any]:
    return dict(cfg.get("tune", {}))


def validate(cfg: Config) -> None:
    """What the settings cannot know, before any JVM starts: the --grid entries, the paths."""
    from movierec_spark.models.tune import grid_from_config, grid_size

    train_als.validate_data_and_split(cfg)
    tune = tune_section(cfg)
    mode = tune.get("mode", "explicit")
    grid = grid_from_config(cfg, mode)
    if not tune.get("output"):
        raise MovieRecError("no output folder: pass --output DIR")
    from movierec_spark import io
    io.check_output_dir(tune["output"])
    log.info("%s grid: %d point(s) %s", mode, grid_size(grid), grid)


# --- the job ---


def make_estimator(cfg: Config, mode: str, scale):
    """The Estimator for ``mode`` with the fixed (non-grid) settings from config."""
    from movierec_spark.models.tune import IMPLICIT, ImplicitALS, TimedBiasedALS

    if mode == IMPLICIT:
        p = train_als.implicit_params(cfg)
        est = ImplicitALS(
            scale=scale, rank=p.rank, maxIter=p.max_iter, regParam=float(p.reg_param), alpha=float(p.alpha),
            confidence=cfg.get("implicit", {}).get("confidence", "binary"), numBlocks=p.num_user_blocks,
            checkpointInterval=p.checkpoint_interval, seed=p.seed, k=int(cfg["evaluate"]["k"]),
        )
    else:
        p = train_als.als_params(cfg)
        b = train_als.bias_params(cfg)
        est = TimedBiasedALS(
            scale=scale, rank=p.rank, maxIter=p.max_iter, regParam=float(p.reg_param), nonnegative=p.nonnegative,
            solver=p.solver,
            numBlocks=p.num_user_blocks, checkpointInterval=p.checkpoint_interval, seed=p.seed,
            userDamping=float(b.user_damping), itemDamping=float(b.item_damping), biasIterations=b.bias_iterations,
            dayBias=b.day_bias, dayDamping=float(b.day_damping),
        )
    est.fit_log = []
    return est


def fixed_params(estimator, mode: str) -> dict[str, Any]:
    """The estimator's settings that the grid does not vary (blocks, seed, ...)."""
    from movierec_spark.models.tune import GRID_PARAMS

    varied = {p.estimator_param for p in GRID_PARAMS[mode].values()}
    return {p.name: v for p, v in estimator.extractParamMap().items() if p.name not in varied}


def make_evaluator(mode: str, k: int):
    """The evaluator and the leaderboard's name for its metric."""
    from pyspark.ml.evaluation import RankingEvaluator, RegressionEvaluator

    from movierec_spark.models.tune import IMPLICIT

    if mode == IMPLICIT:
        return RankingEvaluator(metricName="ndcgAtK", k=k), f"ndcg@{k}"
    return RegressionEvaluator(metricName="rmse", labelCol=C.RATING, predictionCol=C.PREDICTION), "rmse"


def make_tuner(cfg: Config, estimator, maps, evaluator):
    from pyspark.ml.tuning import CrossValidator, TrainValidationSplit

    from movierec_spark.models.tune import CV

    tune = tune_section(cfg)
    common = dict(
        estimator=estimator, estimatorParamMaps=maps, evaluator=evaluator,
        parallelism=int(tune["parallelism"]), seed=int(tune["seed"]), collectSubModels=False,
    )
    if tune["method"] == CV:
        return CrossValidator(numFolds=int(tune["num_folds"]), **common)
    return TrainValidationSplit(trainRatio=float(tune["train_ratio"]), **common)


def format_leaderboard(rows: list[dict[str, Any]]) -> str:
    """The leaderboard as a fixed-width text table."""
    if not rows:
        return "(empty)"
    columns = [c for c in rows[0] if c != "grid_index"]

    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
        return str(value)

    table = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in table]
    return "\n".join(lines)


def best_toml_header(summary: dict[str, Any], metric_name: str, best: dict[str, Any], command: str) -> str:
    split = summary["split"]
    split_text = ", ".join(f"{k}={v}" for k, v in split.items() if v not in (None, ""))
    return "\n".join([
        f"Best {summary['mode']} ALS parameters found by jobs/tune_als.py ({summary['method']}).",
        f"Dataset: {summary['dataset']} ({summary['source']})",
        f"Split: {split_text}; tuned on the {summary['train_rows']} training ratings only",
        f"Validation {metric_name} = {best[metric_name]:.6f} (best of {len(summary['leaderboard'])} grid points)",
        f"Command: {command}",
        "Use: ./spark-submit.sh jobs/train_als.py --config THIS_FILE (with the same data and split flags)",
    ])


def run(spark, cfg: Config, command: str = "") -> int:
    import pandas as pd

    from movierec_spark import io
    from movierec_spark.config import dumps_config
    from movierec_spark.progress import StageTimer
    from movierec_spark.models.tune import (
        CV, METRIC_STD, best_config, grid_from_config, leaderboard, mean_fit_seconds, param_maps, point_of,
    )

    started = time.perf_counter()
    timer = StageTimer()
    tune = tune_section(cfg)
    mode = tune["mode"]
    output = io.check_output_dir(tune["output"])
    checkpoint_dir, tmp_checkpoints = train_als._checkpoint_dir(spark, cfg)
    k = int(cfg["evaluate"]["k"])
    grid = grid_from_config(cfg, mode)
    try:
        with timer.stage("load"):
            loaded = train_als.load_release(spark, cfg)
        with timer.stage("split"):
            split, rejected = train_als.make_split(spark, cfg, loaded)
            # Only the training part: the test part is never read here.
            # Timestamps stay for the user-day bias ([bias] day_bias).
            keep = [c for c in (C.USER_ID, C.MOVIE_ID, C.RATING, C.TIMESTAMP) if c in split.train.columns]
            train = split.train.select(*keep).cache()
            train_rows = train.count()
            split.release()
            if train_rows == 0:
                raise MovieRecError("the split left no training ratings; use a smaller test fraction or more data")
            log.info("tuning on %d training ratings", train_rows)
        estimator = make_estimator(cfg, mode, loaded.scale)
        evaluator, metric_name = make_evaluator(mode, k)
        maps = param_maps(estimator, grid, mode)
        tuner = make_tuner(cfg, estimator, maps, evaluator)
        with timer.stage(f"tune {mode} ({len(maps)} grid points, {tune['method']})"):
            fitted = tuner.fit(train)
        if tune["method"] == CV:
            metrics, std = list(fitted.avgMetrics), list(fitted.stdMetrics)
        else:
            metrics, std = list(fitted.validationMetrics), None
        points = [point_of(m, mode) for m in maps]
        seconds = [mean_fit_seconds(estimator.fit_log, p) for p in points]
        rows = leaderboard(points, metrics, metric_name, evaluator.isLargerBetter(), std, seconds)
        best = rows[0]
        best_cfg = best_config(mode, best)
        summary = {
            "mode": mode,
            "method": tune["method"],
            "dataset": loaded.name,
            "source": cfg["data"].get("ingested_dir") or cfg["data"].get("source"),
            "split": split.describe(),
            "train_rows": train_rows,
            **({"rejected": rejected} if rejected else {}),
            "tuner": {
                "train_ratio": tune["train_ratio"] if tune["method"] != CV else None,
                "num_folds": tune["num_folds"] if tune["method"] == CV else None,
                "parallelism": tune["parallelism"],
                "seed": tune["seed"],
            },
            "metric": metric_name,
            "larger_is_better": evaluator.isLargerBetter(),
            "k": k if mode == "implicit" else None,
            "grid": grid,
            "fixed": fixed_params(estimator, mode),
            "leaderboard": rows,
            "best": best_cfg,
            "best_metric": best[metric_name],
            "command": command,
            "checkpoint_dir": checkpoint_dir,
            "spark": {"version": spark.version, "master": spark.sparkContext.master},
        }
        table = pd.DataFrame(rows)
        if METRIC_STD in table and std is None:
            table = table.drop(columns=[METRIC_STD])
        with timer.stage("write"), io.staged_output(output) as staging:
            io.write_csv(staging / "leaderboard.csv", table)
            io.write_table(spark.createDataFrame(table), staging / "leaderboard")
            io.write_text(staging / "best.toml", dumps_config(best_cfg, best_toml_header(summary, metric_name, best, command)))
            summary["stages"] = dict(timer.seconds)
            summary["wall_seconds"] = time.perf_counter() - started
            io.write_json(staging / "tune.json", summary)
        train.unpersist()
    finally:
        if tmp_checkpoints:
            shutil.rmtree(tmp_checkpoints, ignore_errors=True)

    print(f"\n{mode} ALS, {metric_name} on validation slices of {train_rows} training ratings "
          f"({tune['method']}), written to {output}:")
    print(format_leaderboard(rows))
    print(f"\nBest parameters: {output / 'best.toml'}  (train_als.py --config {output / 'best.toml'})")
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["./spark-submit.sh", "jobs/tune_als.py", *args])
    return cli.run_job(PROG, build_parser(), lambda spark, cfg: run(spark, cfg, command), argv, validate)


if __name__ == "__main__":
    sys.exit(main())
