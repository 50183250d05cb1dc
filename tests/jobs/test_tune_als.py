"""jobs/tune_als.py and movierec_spark.models.tune: grids, the top-N Estimator, leaderboards, best.toml."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from jobs import train_als
from jobs import tune_als as job
from movierec_spark import MovieRecError, cli
from movierec_spark.models import registry as R
from movierec_spark.models import tune as T
from movierec_spark.config import load_config
from movierec_spark.data.releases import WHOLE_STARS
from tests.tiny_release import tiny_release


def _exit_code(argv):
    try:
        return job.main(argv)
    except SystemExit as exc:
        return exc.code


# --- refusals before Spark starts ---


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--grid", "rank=10,0"], "--grid rank: [als] rank must be 1 or more, got 0"),
        (["--grid", "reg_param=0.1,abc"], "'abc' is not a number"),
        (["--grid", "reg_param=-1"], "--grid reg_param: [als] reg_param must be 0 or more, got -1.0"),
        (["--grid", "magic=1,2"], "--grid magic: unknown explicit parameter"),
        (["--mode", "implicit", "--grid", "user_damping=5"], "unknown implicit parameter"),
        (["--mode", "implicit", "--grid", "confidence=binary,loud"], "[implicit] confidence must be 'binary' or 'rating', got 'loud'"),
        (["--grid", "rank"], "is not NAME=VALUE"),
        (["--grid", "rank=10,"], "is not NAME=VALUE"),
        (["--method", "cv", "--folds", "1"], "[tune] num_folds (--folds) must be 2 or more, got 1"),
        (["--train-ratio", "1"], "--train-ratio"),
    ],
)
def test_bad_grids_are_refused_in_one_line_before_spark(argv, message, capsys, monkeypatch):
    def no_spark(*args, **kwargs):
        raise AssertionError("Spark was started")

    monkeypatch.setattr("movierec_spark.session.build_session", no_spark)
    assert _exit_code(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_bad_grid_in_a_config_file_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[tune]\nexplicit_rnak = [10]\n")
    assert _exit_code(["--config", str(bad)]) == cli.EXIT_USAGE
    assert "explicit_rnak" in capsys.readouterr().err
    bad.write_text("[tune]\nimplicit_alpha = []\n")
    assert _exit_code(["--config", str(bad), "--mode", "implicit"]) == cli.EXIT_USAGE
    assert "empty" in capsys.readouterr().err


def test_grid_merges_config_lists_flags_and_single_values():
    cfg = load_config()
    cfg["tune"].update(explicit_rank=[10, 20, 10], explicit_reg_param=[0.05], grid=["reg_param=0.2, 0.3"])
    grid = T.grid_from_config(cfg, T.EXPLICIT)
    assert grid["rank"] == [10, 20]  # duplicates dropped, order kept
    assert grid["reg_param"] == [0.2, 0.3]  # the flag replaces the list
    assert grid["max_iter"] == [cfg["als"]["max_iter"]]  # not listed: the [als] value
    assert grid["user_damping"] == [float(cfg["bias"]["user_damping"])]
    assert T.grid_size(grid) == 4
    cfg["tune"]["grid"] = ["confidence=rating,binary"]
    implicit = T.grid_from_config(cfg, T.IMPLICIT)
    assert implicit["confidence"] == ["rating", "binary"] and implicit["alpha"] == cfg["tune"]["implicit_alpha"]


# --- leaderboard ---


def test_leaderboard_sorts_lower_is_better_with_ties_in_grid_order_and_nan_last():
    points = [{"rank": r} for r in (1, 2, 3, 4, 5)]
    rows = T.leaderboard(points, [0.9, 0.8, float("nan"), 0.8, 1.1], "rmse", larger_is_better=False,
                         fit_seconds=[1.0, 2.0, 3.0, None, 5.0])
    assert [r["rank"] for r in rows] == [2, 4, 1, 5, 3]
    assert [r[T.PLACE] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["fit_seconds"] == 2.0 and rows[1]["fit_seconds"] is None
    assert math.isnan(rows[-1]["rmse"])


def test_leaderboard_sorts_higher_is_better_and_keeps_fold_spread():
    points = [{"alpha": a} for a in (1.0, 5.0, 10.0)]
    rows = T.leaderboard(points, [0.30, 0.45, 0.41], "ndcg@10", larger_is_better=True, metric_std=[0.01, 0.02, 0.03])
    assert [r["alpha"] for r in rows] == [5.0, 10.0, 1.0]
    assert [r[T.METRIC_STD] for r in rows] == [0.02, 0.03, 0.01]
    assert [r["grid_index"] for r in rows] == [1, 2, 0]


# --- the top-N Estimator ---


def _ndcg(predicted, relevant, k):
    dcg = sum(1 / math.log2(i + 2) for i, m in enumerate(predicted[:k]) if m in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def test_implicit_estimator_output_matches_hand_computed_top_k_and_ndcg(spark):
    from pyspark.ml.evaluation import RankingEvaluator

    train_rows = [(u, m, 4.0) for u in range(1, 7) for m in range(1, 9) if (u + m) % 3 != 0 and m != u]
    valid_rows = [(1, 1, 5.0), (1, 3, 4.0), (2, 2, 3.0), (4, 4, 5.0), (4, 5, 2.0), (6, 9, 4.0)]
    schema = "user_id int, movie_id int, rating float"
    train = spark.createDataFrame(train_rows, schema)
    valid = spark.createDataFrame(valid_rows, schema)
    k = 3
    est = T.ImplicitALS(scale=WHOLE_STARS, rank=2, maxIter=3, regParam=0.1, alpha=2.0, numBlocks=2, k=k, seed=3)
    model = est.fit(train)
    out = model.transform(valid)
    assert out.schema.simpleString() == "struct<user_id:int,prediction:array<double>,label:array<double>>"
    got = {r["user_id"]: (r["prediction"], r["label"]) for r in out.collect()}

    # By hand: scores from the fitted factors, unseen training movies only, best first, ties by id.
    users = {r["id"]: r["features"] for r in model.recommender.als.userFactors.collect()}
    items = {r["id"]: r["features"] for r in model.recommender.als.itemFactors.collect()}
    seen = {(u, m) for u, m, _ in train_rows}
    expected = {}
    for user in sorted({u for u, _, _ in valid_rows}):
        scores = [(-sum(a * b for a, b in zip(users[user], items[m])), m) for m in sorted(items) if (user, m) not in seen]
        top = [float(m) for _, m in sorted(scores)[:k]]
        relevant = sorted(float(m) for u, m, _ in valid_rows if u == user)
        expected[user] = (top, relevant)
    assert got == expected

    hand = sum(_ndcg(p, set(l), k) for p, l in expected.values()) / len(expected)
    spark_ndcg = RankingEvaluator(metricName="ndcgAtK", k=k).evaluate(out)
    assert spark_ndcg == pytest.approx(hand, abs=1e-12)
    assert 0 < hand < 1  # the example scores some hits and some misses


# --- the job on tiny data ---


def _run(spark, argv, monkeypatch):
    release = tiny_release(spark)
    monkeypatch.setattr("movierec_spark.data.load.load_data", lambda spark, data: release)
    args = job.build_parser().parse_args(argv)
    cfg = cli.build_config(args)
    job.validate(cfg)
    assert job.run(spark, cfg, command="tune_als " + " ".join(argv)) == 0
    return release


def _read(out):
    csv = pd.read_csv(out / "leaderboard.csv")
    return csv, json.loads((out / "tune.json").read_text())


def test_explicit_job_writes_sorted_leaderboard_and_a_best_toml_train_als_reads(spark, tmp_path, monkeypatch, capsys):
    out = tmp_path / "explicit"
    argv = ["--output", str(out), "--grid", "rank=1,2", "--grid", "reg_param=0.05,0.5", "--grid", "max_iter=2",
            "--num-blocks", "2", "--seed", "5", "--test-fraction", "0.3"]
    release = _run(spark, argv, monkeypatch)
    csv, summary = _read(out)

    assert len(csv) == 4 and sorted(zip(csv["rank"], csv["reg_param"])) == [(1, 0.05), (1, 0.5), (2, 0.05), (2, 0.5)]
    assert list(csv["place"]) == [1, 2, 3, 4] and list(csv["rmse"]) == sorted(csv["rmse"])
    assert csv["rmse"].between(0, 4).all() and (csv["fit_seconds"] > 0).all()
    parquet = spark.read.parquet(str(out / "leaderboard")).orderBy("place").toPandas()
    pd.testing.assert_frame_equal(parquet[csv.columns], csv, check_dtype=False)
    assert summary["metric"] == "rmse" and summary["larger_is_better"] is False
    assert summary["fixed"]["numBlocks"] == 2 and "rank" not in summary["fixed"]
    # Tuned on the training part only.
    assert 0 < summary["train_rows"] < release.ratings.count() and summary["split"]["test_fraction"] == 0.3

    best = csv.iloc[0]
    best_toml = out / "best.toml"
    header = best_toml.read_text()
    assert "Command: tune_als --output" in header and "ml-100k" in header and f"{best['rmse']:.6f}" in header
    cfg = cli.build_config(train_als.build_parser().parse_args(["--config", str(best_toml)]))
    als = R.als_params(cfg)
    assert (als.rank, als.max_iter, als.reg_param) == (best["rank"], 2, best["reg_param"])
    assert R.bias_params(cfg).user_damping == best["user_damping"]
    train_als.validate({**cfg, "train_als": {"output": str(tmp_path / "x")}})
    printed = capsys.readouterr().out
    assert "place" in printed and "rmse" in printed and "best.toml" in printed


def test_implicit_job_with_cross_validation_ranks_by_ndcg(spark, tmp_path, monkeypatch):
    out = tmp_path / "implicit"
    argv = ["--output", str(out), "--mode", "implicit", "--method", "cv", "--folds", "2", "--k", "3",
            "--grid", "alpha=0.5,8", "--grid", "reg_param=0.1", "--grid", "rank=2", "--grid", "max_iter=2", "--num-blocks", "2"]
    _run(spark, argv, monkeypatch)
    csv, summary = _read(out)

    assert len(csv) == 2 and sorted(csv["alpha"]) == [0.5, 8.0]
    assert list(csv["ndcg@3"]) == sorted(csv["ndcg@3"], reverse=True) and csv["ndcg@3"].between(0, 1).all()
    assert (csv["fit_seconds"] > 0).all()
    assert "metric_std" in csv and summary["tuner"]["num_folds"] == 2 and summary["larger_is_better"] is True
    cfg = cli.build_config(train_als.build_parser().parse_args(["--config", str(out / "best.toml")]))
    implicit = R.implicit_params(cfg)
    assert (implicit.alpha, implicit.rank, implicit.max_iter) == (csv["alpha"][0], 2, 2)
    assert cfg["implicit"]["confidence"] == "binary"


def test_best_config_maps_grid_names_to_train_als_keys():
    row = {"place": 1, "rank": 20, "max_iter": 15, "reg_param": 0.1, "user_damping": 5.0, "item_damping": 2.0,
           "rmse": 0.9}
    assert T.best_config(T.EXPLICIT, row) == {
        "als": {"rank": 20, "max_iter": 15, "reg_param": 0.1},
        "bias": {"user_damping": 5.0, "item_damping": 2.0},
    }
    with pytest.raises(MovieRecError):
        T.GRID_PARAMS[T.EXPLICIT]["rank"].parse(True, "x")
