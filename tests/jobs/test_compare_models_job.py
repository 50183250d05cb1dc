"""jobs/compare_models.py: every model side by side, the table as CSV, the top-K lists as Parquet."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from jobs import compare_models as job
from movierec_spark import cli
from movierec_spark.evaluation import metrics as E
from movierec_spark.models import registry as R
from tests.tiny_release import tiny_release

MODELS = "global_mean,bias,als,implicit,ease,popularity"


def _exit_code(argv):
    try:
        return job.main(argv)
    except SystemExit as exc:
        return exc.code


def test_the_default_model_set_is_every_registered_model():
    cfg = cli.build_config(job.build_parser().parse_args([]))
    assert sorted(cfg["compare_models"]["models"]) == sorted(R.MODEL_NAMES)


@pytest.mark.parametrize("argv, message", [
    (["--models", "als,magic"], "magic"),
    (["--models", ","], "--models"),
    (["--k", "0"], "--k"),
])
def test_bad_flags_are_refused_in_one_line(argv, message, capsys):
    assert _exit_code(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_job_writes_the_table_and_each_ranked_models_top_k_lists(spark, tmp_path, monkeypatch, capsys):
    release = tiny_release(spark)
    monkeypatch.setattr("movierec_spark.data.load.load_data", lambda spark, data: release)
    out = tmp_path / "compare"
    args = job.build_parser().parse_args([
        "--output", str(out), "--models", MODELS, "--rank", "2", "--max-iter", "3", "--implicit-rank", "2",
        "--implicit-max-iter", "2", "--k", "3", "--predictions-sample", "4", "--seed", "3",
    ])
    cfg = cli.build_config(args)
    job.validate(cfg)
    assert job.run(spark, cfg) == 0

    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["models"]) == MODELS.split(",")
    table = pd.read_csv(out / "metrics.csv")
    assert list(table["model"]) == MODELS.split(",")
    for name, row in table.set_index("model").iterrows():
        for column in ("rmse", "ndcg@3", "coverage@3"):
            value = metrics["models"][name][column]
            assert (pd.isna(row[column]) if value is None else row[column] == pytest.approx(value)), (name, column)
    # Ranked models (all but the global mean) have their lists; rating-only ones none.
    ranked = sorted(p.name for p in (out / "rankings").iterdir())
    assert ranked == sorted(n for n in MODELS.split(",") if n != "global_mean")
    for name in ranked:
        lists = spark.read.parquet(str(out / "rankings" / name))
        assert lists.columns == ["user_id", "rank", "movie_id", "score"]
        frame = lists.toPandas()
        assert frame.groupby("user_id")["rank"].apply(lambda r: sorted(r) == list(range(1, len(r) + 1))).all()
        assert frame.groupby("user_id").size().max() <= 3
        # Higher score, better rank.
        for _, user in frame.groupby("user_id"):
            scores = list(user.sort_values("rank")["score"])
            assert scores == sorted(scores, reverse=True), name
    # Anyone can recompute a ranking metric from the lists: nDCG of als.
    lists = spark.read.parquet(str(out / "rankings" / "als")).withColumnRenamed("score", "prediction")
    assert not (out / "model").exists() and not (out / "recommendations.csv").exists()
    assert len((out / "predictions_sample.csv").read_text().splitlines()) == 5
    printed = capsys.readouterr().out
    assert "popularity" in printed and "ndcg@3" in printed
    assert E.ranking_metrics(lists, _test_rows(spark, release, cfg), 3)["ndcg@3"] == pytest.approx(
        metrics["models"]["als"]["ndcg@3"], rel=1e-9
    )


def _test_rows(spark, release, cfg):
    """The job's test split again (same seed: the same rows)."""
    from movierec_spark.evaluation.protocol import make_split

    split, _ = make_split(spark, cfg, release)
    return split.test
