"""jobs/train_als.py: flag checks before Spark, outputs, same seed -> same metrics."""

from __future__ import annotations

import json

import pytest

from jobs import train_als as job
from movierec_spark import cli, pipeline
from movierec_spark.evaluation import protocol as P
from movierec_spark.models import blend as B
from movierec_spark.models import registry as R
from movierec_spark.models.recommender import RecommenderModel
from movierec_spark.models.rp3beta import Rp3BetaModel
from movierec_spark.progress import StageTimer
from tests.tiny_release import tiny_release


def _exit_code(argv):
    """The job's exit code; flag errors exit from argparse, the rest return."""
    try:
        return job.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rank", "0"], "--rank"),
        (["--reg-param", "-1"], "--reg-param"),
        (["--solver", "numpy"], "[als] solver (--solver) must be 'auto', 'mllib' or 'driver', got 'numpy'"),
        (["--solver", "driver", "--nonnegative"], "[als] solver 'driver' cannot fit nonnegative factors"),
        (["--test-fraction", "1.5"], "--test-fraction"),
        (["--models", "als,magic"], "magic"),
        (["--topn-normalise", "rank"], "--topn-normalise"),
        (["--train-ratings", "/nonexistent/u1.base", "--test-ratings", "/nonexistent/u1.test"], "does not exist"),
        (["--train-ratings", __file__], "test_ratings_file is empty"),
    ],
)
def test_bad_values_are_refused_in_one_line_before_spark(argv, message, capsys):
    assert _exit_code(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize(
    "text, message",
    [
        ("[als]\nrank = 0\n", "rank"),
        ("[split]\npartitions = 0\n", "[split] partitions"),
        ("[ease]\nreg_param = 0\n", "[ease] reg_param"),
        ("[rp3beta]\nbeta = -1\n", "[rp3beta] beta"),
        ("[topn_blend]\nweights = [1.0]\n", "[topn_blend] weights"),
        ("[topn_blend]\nmembers = [\"als\", \"ease\"]\n", "[topn_blend] members"),
        ("[topn_blend]\nnormalise = \"rank\"\n", "[topn_blend] normalise"),
        ("[blend]\nmembers = [\"als\", \"popularity\"]\n", "[blend] members"),
        ("[blend]\nsupport = \"yes\"\n", "[blend] support"),
        ("[als]\nratings_per_block = -1\n", "[als] ratings_per_block"),
        ("[evaluate]\nwarm_metrics = \"no\"\n", "[evaluate] warm_metrics"),
    ],
)
def test_bad_values_in_a_config_file_are_refused(tmp_path, capsys, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert _exit_code(["--config", str(bad)]) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


def _config(output, custom, models, *extra):
    parser = job.build_parser()
    args = parser.parse_args(
        [
            "--output", str(output), "--models", models,
            "--rank", "2", "--max-iter", "3", "--num-user-blocks", "2", "--num-item-blocks", "2",
            "--implicit-rank", "2", "--implicit-max-iter", "2", "--k", "3", "--top-n", "2",
            "--predictions-sample", "5", "--custom-ratings", str(custom), "--seed", "11", *extra,
        ]
    )
    cfg = cli.build_config(args)
    # A smaller blend than the shipped one (no user kNN or implicit ALS, no
    # refit): the same code paths at half the cost, EASE's scores and the
    # support features among them (15 weights: a 30% validation slice).
    cfg["blend"] = {
        **cfg["blend"], "members": ["bias", "als", "item_knn", "ease"], "refit": False, "support": True,
        "validation_fraction": 0.3,
    }
    job.validate(cfg)
    return cfg


ALL_MODELS = "global_mean,bias,als,blend,implicit,rp3beta,topn_blend"


def test_job_writes_metrics_models_and_recommendations_and_repeats_itself(spark, tmp_path, monkeypatch, capsys):
    release = tiny_release(spark, catalog_movies=13)
    monkeypatch.setattr("movierec_spark.data.load.load_data", lambda spark, data: release)
    custom = tmp_path / "custom.csv"
    custom.write_text("user,movie,rating\nana,1,5\nana,2,1\nbo,3,4\n")

    out = tmp_path / "first"
    cfg = _config(out, custom, ALL_MODELS)
    assert job.run(spark, cfg) == 0
    first = json.loads((out / "metrics.json").read_text())

    assert first["dataset"] == "ml-100k" and first["split"]["seed"] == 11
    counts = first["counts"]
    assert counts["train_rows"] + counts["test_rows"] == release.ratings.count()
    assert list(first["models"]) == ALL_MODELS.split(",")
    als = first["models"]["als"]
    for key in ("rmse", "mae", "r2", "precision@3", "recall@3", "ndcg@3", "map@3", "coverage@3"):
        assert isinstance(als[key], float), key
    assert als["params"]["rank"] == 2 and als["seed"] == 11 and als["params"]["day_bias"] is True
    assert first["models"]["implicit"]["rmse"] is None and first["models"]["global_mean"]["ndcg@3"] is None
    blend = first["models"]["blend"]
    assert isinstance(blend["rmse"], float) and blend["ndcg@3"] is None  # rating model, not ranked
    report = blend["blend"]
    # The blend's members come from [blend] members, whether or not --models lists them.
    members = ("bias", "als", "item_knn", "ease")
    assert set(report["validation_rmse"]) == {*members, "blend"}
    assert report["refit"] is False and report["kept"] == (
        report["validation_rmse"]["blend"] < min(report["validation_rmse"][n] for n in members)
    )
    # Kept: the parameters are the weights; else the best member alone stands in.
    best = min(members, key=lambda n: report["validation_rmse"][n])
    assert blend["params"]["model"] == ("blend" if report["kept"] else "knn" if best == "item_knn" else best)
    assert report["support"] is True and f"ease*{B.USER_SUPPORT}" in report["weights"]
    if report["kept"]:
        assert blend["params"]["members"]["ease"]["model"] == "ease"
        assert B.BlendModel.load(spark, out / "models" / "blend").support is not None
    rmses = {n: m["rmse"] for n, m in first["models"].items() if m["rmse"] is not None}
    assert first["best"]["rmse"] == {"model": min(rmses, key=rmses.get), "value": min(rmses.values())}
    topn = first["models"]["topn_blend"]
    assert topn["rmse"] is None and isinstance(topn["ndcg@3"], float)
    # Its members come from [topn_blend] members, whether or not --models lists them.
    assert topn["params"]["weights"] == {"implicit": 0.5, "ease": 0.5} and topn["params"]["members"]["ease"]["model"] == "ease"
    assert topn["params"]["normalise"] == "max"  # [topn_blend] normalise, shipped
    rp3 = first["models"]["rp3beta"]
    assert rp3["rmse"] is None and isinstance(rp3["ndcg@3"], float) and rp3["params"]["model"] == "rp3beta"
    ndcgs = {n: m["ndcg@3"] for n, m in first["models"].items() if m["ndcg@3"] is not None}
    assert first["best"]["ndcg@3"] == {"model": max(ndcgs, key=ndcgs.get), "value": max(ndcgs.values())}
    assert {"load", "split", "fit blend", "fit als", "evaluate als", "write"} <= set(first["stages"])

    model = RecommenderModel.load(spark, out / "model")
    assert model.params["rank"] == 2 and model.day_bias is not None
    assert (out / "models" / "implicit" / "metadata.json").exists() and not (out / "models" / "als").exists()
    assert (out / "models" / "blend" / "metadata.json").exists()
    assert (out / "models" / "topn_blend" / "ease" / "metadata.json").exists()
    assert Rp3BetaModel.load(spark, out / "models" / "rp3beta").params == R.rp3beta_params(cfg)
    recs = (out / "recommendations.csv").read_text().splitlines()
    header = recs[0].split(",")
    assert header[:4] == ["user", "user_id", "rank", "movie_id"] and len(recs) == 1 + 2 * 2
    assert not any(line.startswith("ana,") and line.split(",")[3] in ("1", "2") for line in recs[1:])
    sample = (out / "predictions_sample.csv").read_text().splitlines()
    # Rating models only: a ranking model's score is not a rating.
    rating_models = [m for m in ALL_MODELS.split(",") if first["models"][m]["rmse"] is not None]
    assert rating_models == ["global_mean", "bias", "als", "blend"]
    assert len(sample) == 6 and sample[0].split(",")[-len(rating_models) - 1:] == ["cold_movie", *rating_models]
    printed = capsys.readouterr().out
    assert "ndcg@3" in printed and "blend" in printed

    # Same seed, same data: same split and same metrics (checked on the cheap models).
    again = tmp_path / "second"
    assert job.run(spark, _config(again, "", "bias,als", "--top-n-all", "--no-warm-metrics")) == 0
    second = json.loads((again / "metrics.json").read_text())
    assert isinstance(first["models"]["als"]["warm"]["rmse"], float) and second["models"]["als"]["warm"] is None
    # --top-n-all: top-2 for every training user (blocked scoring; tests/test_topn_all.py checks the values).
    top = spark.read.parquet(str(again / "top_n_all")).toPandas()
    assert list(top.columns) == ["user_id", "rank", "movie_id", "prediction"] and "top-n all users" in second["stages"]
    assert set(top["user_id"]) <= {r.user_id for r in release.ratings.select("user_id").distinct().collect()}
    assert all(sorted(ranks) == list(range(1, len(ranks) + 1)) and len(ranks) <= 2 for ranks in top.groupby("user_id")["rank"].apply(list))
    # The als model's bias tables are the bias model's: copied, not written twice.
    parts = lambda folder: sorted(p.name for p in folder.glob("part-*"))  # noqa: E731
    for table in ("user_bias", "item_bias"):
        assert parts(again / "model" / table) == parts(again / "models" / "bias" / table) != []
    assert second["counts"] == first["counts"]
    for name in ("bias", "als"):
        a, b = first["models"][name], second["models"][name]
        # Aggregations sum shuffled blocks in arrival order, so floats may
        # differ in their last bits; anything beyond that is a real change.
        for key in ("rmse", "mae", "r2", "ndcg@3", "precision@3"):
            assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), (name, key)


@pytest.mark.parametrize("rows, on_driver", [(None, False), (80_000, True), (P.RATINGS_PER_PARTITION, True),
                                              (P.RATINGS_PER_PARTITION + 1, False)])
def test_top_n_for_all_users_ranks_small_data_on_the_driver(monkeypatch, rows, on_driver):
    from movierec_spark.serving import topn_all

    asked = {}

    class Frame:
        def cache(self):
            return self

        def count(self):
            return 0

    def fake(model, seen, n, **kwargs):
        asked.update(kwargs, n=n)
        return Frame()

    monkeypatch.setattr(topn_all, "top_n_all_users", fake)
    pipeline.top_n_for_all_users({"recommend": {"top_n": 7}}, None, None, rows)
    assert asked == {"n": 7, "on_driver": on_driver}


@pytest.mark.parametrize("per_block, rows, parallelism, blocks", [
    (0, 80_000, 2, (10, 7)),  # off: the counts as given
    (2_000_000, 80_000, 2, (2, 2)),  # small: one block per core
    (2_000_000, 9_000_001, 2, (5, 5)),  # one per 2M ratings, rounded up
    (2_000_000, 20_000_076, 2, (10, 7)),  # ml-25m's training split: the counts as given, the most
    (1_000, 80_000, 3, (10, 7)),
    (2_000_000, 80_000, 16, (10, 7)),  # a cluster's cores, capped by the counts
])
def test_ratings_per_block_sizes_the_als_blocks(per_block, rows, parallelism, blocks):
    parser = job.build_parser()
    cfg = cli.build_config(parser.parse_args(
        ["--output", "unused", "--num-user-blocks", "10", "--num-item-blocks", "7", "--ratings-per-block", str(per_block)]
    ))
    sized = R.ModelFitter(cfg, None, rows, parallelism).sized(R.als_params(cfg))
    assert (sized.num_user_blocks, sized.num_item_blocks) == blocks
    # The row count unknown: unchanged.
    assert R.ModelFitter(cfg, None, None, parallelism).sized(R.als_params(cfg)).num_user_blocks == 10


def test_fitted_als_has_the_sized_blocks(spark):
    from movierec_spark.data.releases import WHOLE_STARS

    ratings = spark.createDataFrame(
        [(u, m, float(1 + (u * m) % 5)) for u in range(1, 9) for m in range(1, 7)], "user_id int, movie_id int, rating float"
    ).cache()
    parser = job.build_parser()
    cfg = cli.build_config(parser.parse_args(
        ["--output", "unused", "--models", "als", "--rank", "2", "--max-iter", "2", "--ratings-per-block", "1000000"]
    ))
    cfg["bias"] = {**cfg["bias"], "day_bias": False}
    job.validate(cfg)
    cores = spark.sparkContext.defaultParallelism
    models = R.fit_models(ratings, ["als"], R.ModelFitter(cfg, WHOLE_STARS, 48, cores), StageTimer())
    blocks = min(cores, 10)  # 48 ratings: one block per core, the shipped 10 at most
    assert models["als"].params["num_user_blocks"] == blocks and models["als"].params["num_item_blocks"] == blocks
    assert models["als"].als.userFactors.rdd.getNumPartitions() == blocks
    assert models["als"].als.itemFactors.rdd.getNumPartitions() == blocks


def test_only_the_ratings_sized_stages_run_with_fewer_shuffle_partitions(spark, tmp_path, monkeypatch):
    release = tiny_release(spark, catalog_movies=13)  # named ml-100k: 100,000 published ratings
    monkeypatch.setattr("movierec_spark.data.load.load_data", lambda spark, data: release)
    parts = P.working_partitions(100_000, spark.sparkContext.defaultParallelism)
    before = spark.conf.get(P.SHUFFLE_PARTITIONS)
    configured = str(parts + 4)
    spark.conf.set(P.SHUFFLE_PARTITIONS, configured)
    seen = {}

    def recording(name, real):
        def call(*args, **kwargs):
            seen.setdefault(name, spark.conf.get(P.SHUFFLE_PARTITIONS))
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(R, "fit_models", recording("fit", R.fit_models))
    monkeypatch.setattr(P, "evaluate_model", recording("evaluate", P.evaluate_model))
    try:
        assert job.run(spark, _config(tmp_path / "out", "", "bias")) == 0
        # Fits on the ratings: sized to them; ranking metrics (users x unseen movies): the configured count.
        assert seen == {"fit": str(parts), "evaluate": configured}
        assert spark.conf.get(P.SHUFFLE_PARTITIONS) == configured
    finally:
        spark.conf.set(P.SHUFFLE_PARTITIONS, before)
