"""The model container: fallbacks for cold start, clipping, save/load."""

from __future__ import annotations

import json

import pytest
from pyspark.ml.recommendation import ALS

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.models.recommender import KIND_EXPLICIT, RecommenderModel
from movierec_spark.data.releases import WHOLE_STARS
from tests.spark_jobs import jobs_while


def _bias_model(spark, als=None):
    return RecommenderModel(
        global_mean=3.5,
        user_bias=spark.createDataFrame([(1, 0.5), (2, -1.0)], "user_id int, user_bias double"),
        item_bias=spark.createDataFrame([(10, 1.0), (20, -0.25)], "movie_id int, item_bias double"),
        als=als,
        scale=WHOLE_STARS,
        kind=KIND_EXPLICIT,
        params={"rank": 2},
    )


def test_bias_model_predicts_with_fallbacks_and_clips(spark):
    pairs = spark.createDataFrame(
        [(1, 10), (2, 20), (1, 99), (99, 20), (99, 99)], "user_id int, movie_id int"
    )
    got = {(r.user_id, r.movie_id): r.prediction for r in _bias_model(spark).predict(pairs).collect()}
    assert got == {
        (1, 10): 5.0,  # 3.5 + 0.5 + 1.0, clipped at the top of the scale
        (2, 20): 2.25,
        (1, 99): 4.0,  # unseen movie: mean + user bias
        (99, 20): 3.25,  # unseen user: mean + item bias
        (99, 99): 3.5,
    }


def test_factor_model_round_trips_and_keeps_cold_rows(spark, tmp_path):
    residuals = spark.createDataFrame(
        [(1, 10, 0.5), (1, 20, -0.5), (2, 10, -0.2), (2, 20, 0.3)],
        "user_id int, movie_id int, rating float",
    )
    als = ALS(
        rank=2, maxIter=3, regParam=0.1, seed=1, userCol=C.USER_ID, itemCol=C.MOVIE_ID,
        ratingCol=C.RATING, coldStartStrategy="nan",
    ).fit(residuals)
    model = _bias_model(spark, als)
    pairs = spark.createDataFrame([(1, 20), (2, 10), (3, 10)], "user_id int, movie_id int")
    before = sorted(model.predict(pairs).collect())
    assert len(before) == 3 and all(1.0 <= r.prediction <= 5.0 for r in before)
    model.save(tmp_path / "model")
    loaded = RecommenderModel.load(spark, tmp_path / "model")
    after = sorted(loaded.predict(pairs).collect())
    assert [r.prediction for r in after] == pytest.approx([r.prediction for r in before])
    assert loaded.params == {"rank": 2} and loaded.scale == WHOLE_STARS


def test_loading_something_that_is_not_a_model_says_so(spark, tmp_path):
    with pytest.raises(MovieRecError, match="not a movierec model"):
        RecommenderModel.load(spark, tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(MovieRecError, match="format 99"):
        RecommenderModel.load(spark, tmp_path)


def test_tables_shared_by_two_models_are_written_once_and_copied(spark, tmp_path):
    from movierec_spark import io

    baseline = _bias_model(spark)
    # A second model on the same bias tables (as a biased ALS model holds its
    # baseline's), and one with a user bias table of its own.
    sharing = RecommenderModel(**{**baseline.__dict__, "params": {"rank": 3}})
    own = spark.createDataFrame([(1, 0.5), (2, -1.0)], "user_id int, user_bias double")
    other = RecommenderModel(**{**baseline.__dict__, "user_bias": own})
    for model in (baseline, sharing, other):
        model.max_user_id()  # remembered: metadata.json then runs no job
    saved = io.SavedTables()
    _, first = jobs_while(spark, "save-baseline", lambda: baseline.save(tmp_path / "bias", saved))
    _, copied = jobs_while(spark, "save-sharing", lambda: sharing.save(tmp_path / "als", saved))
    _, written = jobs_while(spark, "save-other", lambda: other.save(tmp_path / "other", saved))

    assert len(first) >= 2 and copied == [] and len(written) >= 1
    parts = lambda folder: sorted(p.name for p in folder.glob("part-*"))  # noqa: E731
    # Copies: the very files written first (a new write names its part files anew).
    for table in ("user_bias", "item_bias"):
        assert parts(tmp_path / "als" / table) == parts(tmp_path / "bias" / table) != []
    assert parts(tmp_path / "other" / "user_bias") != parts(tmp_path / "bias" / "user_bias")
    assert parts(tmp_path / "other" / "item_bias") == parts(tmp_path / "bias" / "item_bias")
    loaded = RecommenderModel.load(spark, tmp_path / "als")
    assert sorted(loaded.user_bias.collect()) == sorted(baseline.user_bias.collect())
    assert sorted(loaded.item_bias.collect()) == sorted(baseline.item_bias.collect())
    assert loaded.params == {"rank": 3}
