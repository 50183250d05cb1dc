"""The tuning protocol: a grid search of ALS parameters on the training split alone.

Loads the release and splits it exactly as the training pipeline does
(same flags, same seed: the same split), then fits every grid point
(:mod:`movierec_spark.models.tune`) on slices of the training part with
``TrainValidationSplit`` or ``CrossValidator``; the test part is never
read. Publishes ``leaderboard.csv``, ``leaderboard/`` (Parquet),
``tune.json`` and ``best.toml`` (the best point under the keys
``jobs/train_als.py --config`` reads) to ``[tune] output``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from movierec_spark import MovieRecError, session
from movierec_spark import columns as C
from movierec_spark.config import Config
from movierec_spark.models import registry as R

log = logging.getLogger(__name__)


@dataclass
class TuneResult:
    """The leaderboard rows (best first), the run's summary (``tune.json``) and the output folder."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    output: Path


def make_estimator(cfg: Config, mode: str, scale):
    """The Estimator for ``mode`` with the fixed (non-grid) settings from config."""
    from movierec_spark.models.tune import IMPLICIT, ImplicitALS, TimedBiasedALS

    if mode == IMPLICIT:
        p = R.implicit_params(cfg)
        est = ImplicitALS(
            scale=scale, rank=p.rank, maxIter=p.max_iter, regParam=float(p.reg_param), alpha=float(p.alpha),
            confidence=cfg.get("implicit", {}).get("confidence", "binary"), numBlocks=p.num_user_blocks,
            checkpointInterval=p.checkpoint_interval, seed=p.seed, k=int(cfg["evaluate"]["k"]),
        )
    else:
        p = R.als_params(cfg)
        b = R.bias_params(cfg)
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

    tune = dict(cfg.get("tune", {}))
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


def check_grid_memory(spark: SparkSession, cfg: Config, mode: str, grid: dict[str, list[Any]]) -> None:
    """Refuse, before loading anything, a grid whose largest rank cannot fit ``spark.driver.memory``."""
    from movierec_spark.models import als_memory

    if not grid.get("rank"):
        return
    limit = session.setting(spark, "spark.driver.memory", als_memory.DEFAULT_DRIVER_MEMORY)
    size = als_memory.release_size(cfg.get("data", {}))
    als_memory.check_rank(f"[tune] {mode}_rank (--grid rank=...)", max(int(r) for r in grid["rank"]), size,
                          session.default_parallelism(spark), limit)


def run_tuning(spark: SparkSession, cfg: Config, command: str = "") -> TuneResult:
    """Search the grid of ``[tune]`` on the training split and publish the leaderboard and ``best.toml``."""
    import pandas as pd

    from movierec_spark import io
    from movierec_spark.config import dumps_config
    from movierec_spark.data.load import load_data
    from movierec_spark.evaluation.protocol import make_split
    from movierec_spark.progress import StageTimer
    from movierec_spark.session import checkpoint_dir
    from movierec_spark.models.tune import (
        CV, METRIC_STD, best_config, grid_from_config, leaderboard, mean_fit_seconds, param_maps, point_of,
    )

    started = time.perf_counter()
    timer = StageTimer()
    tune = dict(cfg.get("tune", {}))
    mode = tune["mode"]
    output = io.check_output_dir(tune["output"])
    io.check_spark_writes_reach(spark, output)
    k = int(cfg["evaluate"]["k"])
    grid = grid_from_config(cfg, mode)
    check_grid_memory(spark, cfg, mode, grid)
    with checkpoint_dir(spark, cfg.get("als", {}).get("checkpoint_dir")) as checkpoints:
        with timer.stage("load"):
            loaded = load_data(spark, cfg["data"])
        with timer.stage("split"):
            split, rejected = make_split(spark, cfg, loaded)
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
            "checkpoint_dir": checkpoints,
            "spark": {"version": spark.version, "master": session.master(spark)},
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

    return TuneResult(rows, summary, output)
