"""What makes a custom user's fold-in fast: the saved largest user id, the driver-side solve, the factors-only load, the saved movie table."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pyspark.ml.recommendation import ALSModel
from pyspark.testing import assertDataFrameEqual

from movierec_spark import MovieRecError
from movierec_spark.serving.foldin import FOLDED_USERS, fold_in, fold_in_local
from movierec_spark import columns as C
from movierec_spark.io import MOVIE_TABLE, read_catalog, write_movie_table
from movierec_spark.models.recommender import KIND_EXPLICIT, RecommenderModel, SavedFactors
from movierec_spark.serving.movie_table import collect_movie_table, movie_table_frame
from movierec_spark.serving.personal import CustomRecommender, RecommendSettings, movies_with_features, save_catalog
from movierec_spark.data.releases import WHOLE_STARS
from movierec_spark.serving.tables import to_arrow
from tests.spark_jobs import jobs_while
from tests.tiny_models import saved_trained_model, tiny_catalog, tiny_model


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


# --- loading a saved model's factor tables without ALSModel.load ---


def test_factors_only_load_runs_no_job_and_recommends_like_the_whole_model(spark, tmp_path_factory):
    path = saved_trained_model(spark, tmp_path_factory)
    whole, whole_jobs = jobs_while(spark, "load-whole", lambda: RecommenderModel.load(spark, path))
    light, light_jobs = jobs_while(
        spark, "load-factors", lambda: RecommenderModel.load(spark, path, factors_only=True)
    )
    assert isinstance(whole.als, ALSModel) and whole_jobs  # ALSModel.load runs jobs: what is saved
    assert isinstance(light.als, SavedFactors) and light_jobs == []
    assertDataFrameEqual(light.als.itemFactors, whole.als.itemFactors, rtol=0, atol=0)
    assertDataFrameEqual(light.als.userFactors, whole.als.userFactors, rtol=0, atol=0)
    pairs = spark.createDataFrame([(1, 1), (2, 8), (3, 15), (99, 2)], "user_id int, movie_id int")
    assertDataFrameEqual(light.predict(pairs), whole.predict(pairs), rtol=0, atol=0)

    catalog = read_catalog(spark, path)
    tables = []
    for model in (whole, light):
        recommender = CustomRecommender(spark, model, catalog)
        rated = recommender.ratings_frame(recommender.ratings_from_pairs("me", [(1, 5.0), (4, 4.5), (9, 1.0)]))
        movies = recommender.collect_movie_table()
        tables.append(recommender.top_n(rated, recommender.fold_in(rated, movies), movies, n=5, min_ratings=0))
    assert len(tables[0]) == 5
    pd.testing.assert_frame_equal(tables[1], tables[0])


def test_a_model_missing_its_factors_is_a_clear_error(spark, tmp_path_factory, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(saved_trained_model(spark, tmp_path_factory), copy)
    shutil.rmtree(copy / "als" / "itemFactors")
    with pytest.raises(MovieRecError, match="itemFactors is missing.*retrain"):
        RecommenderModel.load(spark, copy, factors_only=True)
    with pytest.raises(MovieRecError, match="itemFactors is missing"):
        CustomRecommender.load(spark, copy, RecommendSettings())


def test_a_factors_only_model_is_not_saved_again(spark, tmp_path_factory, tmp_path):
    light = RecommenderModel.load(spark, saved_trained_model(spark, tmp_path_factory), factors_only=True)
    with pytest.raises(MovieRecError, match="factors_only"):
        light.save(tmp_path / "again")
    assert not (tmp_path / "again").exists()


# --- the movie table saved beside a model ---


def test_a_saved_movie_table_is_read_without_a_job_and_equals_the_collected_one(spark, tmp_path_factory):
    path = saved_trained_model(spark, tmp_path_factory)
    assert (path / MOVIE_TABLE).is_dir()
    loaded = CustomRecommender.load(spark, path, RecommendSettings())
    saved, jobs = jobs_while(spark, "saved-movie-table", loaded.collect_movie_table)
    assert jobs == []
    collected = CustomRecommender(spark, loaded.model, loaded.catalog).collect_movie_table()  # Spark's joins
    assert saved.rank == collected.rank == 3 and len(saved.ids) == len(collected.ids) > 0
    pd.testing.assert_frame_equal(saved.frame, collected.frame)
    np.testing.assert_array_equal(saved.factors, collected.factors)
    np.testing.assert_array_equal(saved.item_bias, collected.item_bias)
    np.testing.assert_array_equal(saved.has_factors, collected.has_factors)


def test_a_movie_table_already_collected_is_saved_from_the_driver_as_spark_writes_it(spark, tmp_path_factory, tmp_path):
    path = saved_trained_model(spark, tmp_path_factory)  # its movie table written by Spark's joins
    loaded = CustomRecommender.load(spark, path, RecommendSettings())
    collected = CustomRecommender(spark, loaded.model, loaded.catalog).collect_movie_table()
    _, jobs = jobs_while(spark, "movie-table-from-driver",
                         lambda: write_movie_table(to_arrow(collected.frame, movie_table_schema(loaded)), tmp_path))
    assert jobs == []
    spark_written, driver_written = pq.read_table(path / MOVIE_TABLE), pq.read_table(tmp_path / MOVIE_TABLE)
    assert column_types(driver_written) == column_types(spark_written)
    key = [(C.MOVIE_ID, "ascending")]
    expected = spark_written.sort_by(key).to_pydict()
    assert driver_written.sort_by(key).to_pydict() == expected
    # save_catalog takes that route when handed the table: the catalog's write is its only job
    _, handed = jobs_while(spark, "save-handed", lambda: save_catalog(
        loaded.model, loaded.catalog, tmp_path / "handed", collected))
    _, joined = jobs_while(spark, "save-joined", lambda: save_catalog(loaded.model, loaded.catalog, tmp_path / "joined"))
    assert 0 < len(handed) < len(joined)
    for folder in ("handed", "joined"):
        assert pq.read_table(tmp_path / folder / MOVIE_TABLE).sort_by(key).to_pydict() == expected


def movie_table_schema(loaded):
    return movie_table_frame(loaded.model, movies_with_features(loaded.catalog)).schema


def column_types(table):
    """Names and types, nullability aside (the catalog read back from Parquet is nullable)."""
    return [(f.name, str(f.type).replace(" not null", "")) for f in table.schema]


def test_a_model_without_a_saved_movie_table_collects_it(spark, tmp_path_factory, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(saved_trained_model(spark, tmp_path_factory), copy)
    shutil.rmtree(copy / MOVIE_TABLE)
    loaded = CustomRecommender.load(spark, copy, RecommendSettings())
    table, jobs = jobs_while(spark, "collected-movie-table", loaded.collect_movie_table)
    assert jobs and table.rank == 3


def test_a_saved_movie_table_lacking_a_column_is_a_clear_error(spark, tmp_path_factory, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(saved_trained_model(spark, tmp_path_factory), copy)
    table = pq.read_table(copy / MOVIE_TABLE)
    shutil.rmtree(copy / MOVIE_TABLE)
    (copy / MOVIE_TABLE).mkdir()
    pq.write_table(table.drop_columns(["item_bias"]), copy / MOVIE_TABLE / "part-0.parquet")
    with pytest.raises(MovieRecError, match="movie_table lacks column.*item_bias.*retrain"):
        CustomRecommender.load(spark, copy, RecommendSettings()).collect_movie_table()
