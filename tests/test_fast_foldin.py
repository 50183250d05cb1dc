"""What makes a custom user's fold-in fast: the saved largest user id and the driver-side solve."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
from pyspark.testing import assertDataFrameEqual

from movierec_spark.foldin import FOLDED_USERS, fold_in, fold_in_local
from movierec_spark.model import KIND_EXPLICIT, RecommenderModel
from movierec_spark.movie_table import collect_movie_table
from movierec_spark.personal import CustomRecommender
from movierec_spark.releases import WHOLE_STARS
from tests.tiny_models import tiny_catalog, tiny_model


def _model(spark, factor_user_ids=()):
    als = None
    if factor_user_ids:
        factors = spark.createDataFrame([(u, [0.1]) for u in factor_user_ids], "id int, features array<float>")
        als = SimpleNamespace(userFactors=factors)
    return RecommenderModel(
        global_mean=3.0,
        user_bias=spark.createDataFrame([(1, 0.5), (7, -1.0)], "user_id int, user_bias double"),
        item_bias=spark.createDataFrame([(10, 1.0)], "movie_id int, item_bias double"),
        als=als,
        scale=WHOLE_STARS,
        kind=KIND_EXPLICIT,
    )


def test_largest_user_id_covers_biases_and_factors(spark):
    assert _model(spark).max_user_id() == 7
    assert _model(spark, factor_user_ids=[3, 9]).max_user_id() == 9


def test_a_saved_model_records_its_largest_user_id_and_a_loaded_one_reads_it(spark, tmp_path):
    path = tmp_path / "model"
    _model(spark).save(path)
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["max_user_id"] == 7
    # A recorded value that differs from the tables shows the metadata is what is read.
    meta["max_user_id"] = 1000
    (path / "metadata.json").write_text(json.dumps(meta))
    loaded = RecommenderModel.load(spark, path)
    assert CustomRecommender(spark, loaded, tiny_catalog(spark)).next_user_id() == 1001


def test_a_model_saved_without_the_key_computes_it(spark, tmp_path):
    path = tmp_path / "model"
    _model(spark).save(path)
    meta = json.loads((path / "metadata.json").read_text())
    del meta["max_user_id"]
    (path / "metadata.json").write_text(json.dumps(meta))
    assert RecommenderModel.load(spark, path).max_user_id() == 7


def test_driver_fold_in_solves_like_the_grouped_spark_path(spark):
    rows = [(100, 10, 5.0), (100, 20, 2.0), (100, 50, 4.0), (101, 30, 4.0), (102, 50, 1.0)]
    ratings = spark.createDataFrame(rows, "user_id int, movie_id int, rating float")
    model = tiny_model(spark)
    movies = collect_movie_table(model, tiny_catalog(spark))
    local = fold_in_local(model, movies, pd.DataFrame(rows, columns=["user_id", "movie_id", "rating"]))
    grouped = fold_in(model, ratings).users
    assert list(local.columns) == grouped.columns
    assertDataFrameEqual(spark.createDataFrame(local, FOLDED_USERS), grouped, rtol=1e-9)
    assert len(local) == 3 and local.features[2] is None  # one row per user, user 102 (no factors) included


def test_driver_fold_in_of_no_ratings_is_an_empty_table(spark):
    model = tiny_model(spark)
    movies = collect_movie_table(model, tiny_catalog(spark))
    empty = pd.DataFrame({"user_id": [], "movie_id": [], "rating": []})
    assert list(fold_in_local(model, movies, empty).columns) == FOLDED_USERS.names
    assert fold_in_local(model, movies, empty).empty
