"""jobs/recommend.py and jobs/similar.py on a small saved model, called in-process."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from jobs import recommend, similar
from movierec_spark import MovieRecError, cli
from movierec_spark.serving.custom import CustomRatingsError
from movierec_spark.serving.tables import SIMILAR_SCHEMA, TOP_N_SCHEMA
from tests.spark_jobs import jobs_while
from tests.tiny_models import saved_trained_model


@pytest.fixture(scope="module")
def model_dir(spark, tmp_path_factory):
    return saved_trained_model(spark, tmp_path_factory)


def _config(job, argv):
    return cli.build_config(job.build_parser().parse_args(argv))


def _ratings_file(tmp_path, text):
    path = tmp_path / "mine.csv"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = "user,movie,rating\nann,The Matrix,5\nann,Alien,4.5\nann,Notting Hill,1\nbob,9,5\nbob,amelie,4.5\n"


def test_recommend_writes_parquet_csv_report_and_prints(spark, tmp_path, model_dir, capsys):
    out = tmp_path / "out"
    cfg = _config(recommend, ["--model", str(model_dir), "--custom-ratings", str(_ratings_file(tmp_path, GOOD)),
                              "--output", str(out), "--top-n", "3", "--min-ratings", "10"])
    recommend.validate(cfg)
    # From a model saved with its movie table: no Spark job at all, the output written on the driver.
    code, jobs = jobs_while(spark, "recommend", lambda: recommend.run(spark, cfg))
    assert code == cli.EXIT_OK and jobs == []
    written = spark.read.parquet(str(out / "top_n"))
    assert [(f.name, f.dataType) for f in written.schema] == [(f.name, f.dataType) for f in TOP_N_SCHEMA]
    parquet = written.toPandas()
    csv = pd.read_csv(out / "top_n.csv")
    assert len(parquet) == len(csv) == 6
    assert list(csv.columns) == list(parquet.columns)
    assert csv.groupby("user").size().to_dict() == {"ann": 3, "bob": 3}
    assert not {("ann", 1), ("ann", 2), ("ann", 9), ("bob", 9), ("bob", 10)} & set(zip(csv.user, csv.movie_id))
    assert (csv.num_ratings >= 10).all() and all("|" in g or g.isalpha() for g in csv.genres)
    lines = pd.read_csv(out / "custom_ratings.csv")
    assert list(lines.line) == [2, 3, 4, 5, 6]
    assert lines.matched_title.tolist()[0] == "Matrix, The (1999)"
    assert lines.user_id.min() > 40  # fresh ids above the model's 40 users
    report = json.loads((out / "report.json").read_text())
    assert report["ratings"] == 5 and set(report["users"]) == {"ann", "bob"} and "fold in" in report["stages"]
    printed = capsys.readouterr().out
    assert "Top 3 for ann" in printed and "Top 3 for bob" in printed and "because you liked" in printed


def test_a_bad_ratings_file_names_its_lines_and_keeps_the_earlier_output(spark, tmp_path, model_dir):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier run")
    bad = _ratings_file(tmp_path, "user,movie,rating\nann,Heat,4\nann,Matrx,4\nann,Alien,6\n")
    cfg = _config(recommend, ["--model", str(model_dir), "--custom-ratings", str(bad), "--output", str(out)])
    with pytest.raises(CustomRatingsError) as caught:
        recommend.run(spark, cfg)
    problems = caught.value.problems
    assert problems[0].startswith("line 2: title 'Heat' matches 2 movies") and "Heat (1972)" in problems[0]
    assert problems[1].startswith("line 3: unknown title 'Matrx'; did you mean Matrix, The (1999)")
    assert problems[2].startswith("line 4: rating 6 is not on the scale")
    assert (out / "keep.txt").read_text() == "earlier run"


def test_flags_are_checked_before_spark_starts(tmp_path, model_dir, capsys):
    # Each of these fails in validate(), before run_job would start (and stop) a session.
    ratings = _ratings_file(tmp_path, GOOD)
    assert recommend.main(["--model", str(tmp_path), "--custom-ratings", str(ratings)]) == cli.EXIT_USAGE
    assert "not a saved model" in capsys.readouterr().err
    assert recommend.main(["--model", str(model_dir), "--custom-ratings", str(tmp_path / "no.csv")]) == cli.EXIT_USAGE
    assert "no.csv does not exist" in capsys.readouterr().err
    assert recommend.main(["--top-n", "0"]) == cli.EXIT_USAGE
    assert "[recommend] top_n (--top-n) must be 1 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        similar.main(["--help"])
    assert caught.value.code == 0 and "--movie" in capsys.readouterr().out
    assert similar.main(["--model", str(model_dir)]) == cli.EXIT_USAGE
    assert "pass --movie" in capsys.readouterr().err


def test_similar_lists_neighbours_by_title_and_writes_them(spark, tmp_path, model_dir, capsys):
    out = tmp_path / "similar"
    cfg = _config(similar, ["--model", str(model_dir), "--movie", "the matrix", "--top-n", "4",
                            "--min-ratings", "10", "--output", str(out)])
    similar.validate(cfg)
    assert similar.run(spark, cfg) == cli.EXIT_OK
    written = spark.read.parquet(str(out / "similar"))
    assert [(f.name, f.dataType) for f in written.schema] == [(f.name, f.dataType) for f in SIMILAR_SCHEMA]
    table = pd.read_csv(out / "similar.csv")
    pd.testing.assert_series_equal(written.toPandas().similar_movie_id, table.similar_movie_id, check_dtype=False)
    assert len(table) == 4 and 1 not in set(table.similar_movie_id) and set(table.movie_id) == {1}
    assert list(table.similarity) == sorted(table.similarity, reverse=True)
    assert (table.num_ratings >= 10).all()
    printed = capsys.readouterr().out
    assert printed.startswith("Movies most like Matrix, The (1999) (id 1)")
    # The action/sci-fi taste of the tiny data: its neighbours are action movies.
    assert set(table.similar_movie_id) <= {2, 3, 4, 5, 6, 7}


def test_similar_refuses_an_ambiguous_title(spark, model_dir):
    cfg = _config(similar, ["--model", str(model_dir), "--movie", "Heat"])
    with pytest.raises(MovieRecError, match="matches 2 movies"):
        similar.run(spark, cfg)


# --- the path without Spark (movierec_spark.serving.local) against the Spark path ---


def _no_session(monkeypatch):
    def refuse(*_):
        raise AssertionError("a session was built")

    monkeypatch.setattr("movierec_spark.session.build_session", refuse)


def _tables(out):
    return pd.read_parquet(out / "top_n"), json.loads((out / "report.json").read_text())


def test_recommend_serves_a_local_model_without_spark_and_writes_what_the_spark_path_writes(
        spark, tmp_path, model_dir, monkeypatch):
    ratings = str(_ratings_file(tmp_path, GOOD))
    argv = ["--model", str(model_dir), "--custom-ratings", ratings, "--top-n", "4", "--min-ratings", "10"]
    _no_session(monkeypatch)  # main() serves a local model folder without one
    assert recommend.main([*argv, "--output", str(tmp_path / "local")]) == cli.EXIT_OK
    assert recommend.run(spark, _config(recommend, [*argv, "--output", str(tmp_path / "spark")])) == cli.EXIT_OK
    local, local_report = _tables(tmp_path / "local")
    on_spark, spark_report = _tables(tmp_path / "spark")
    assert (local_report["served"], spark_report["served"]) == ("local", "spark")
    assert len(local) == 8 and set(local.basis) == {"personal"}
    pd.testing.assert_frame_equal(local, on_spark)
    assert (tmp_path / "local" / "top_n.csv").read_text() == (tmp_path / "spark" / "top_n.csv").read_text()


def test_local_top_n_agrees_with_the_spark_fold_in(spark, tmp_path, model_dir):
    """Same order and predictions within 1e-6 as fold_in (applyInPandas) + predict + top_n_unseen in Spark."""
    from pyspark.sql import functions as F

    from movierec_spark.io import read_catalog
    from movierec_spark.models.recommender import RecommenderModel
    from movierec_spark.serving.foldin import fold_in
    from movierec_spark.serving.local import LocalRecommender
    from movierec_spark.serving.recommend import top_n_unseen
    from movierec_spark.settings import RecommendSettings

    local = LocalRecommender.load(model_dir, RecommendSettings(top_n=5, min_ratings=10, content_weight=0.0))
    ratings = local.read_ratings(_ratings_file(tmp_path, GOOD))
    rated = local.ratings_frame(ratings)
    mine = local.top_n(rated, local.fold_in(rated))

    model = RecommenderModel.load(spark, model_dir, factors_only=True)
    custom_df = spark.createDataFrame(rated)
    candidates = read_catalog(spark, model_dir).filter(F.col("num_ratings") >= 10)
    theirs = top_n_unseen(fold_in(model, custom_df), custom_df, candidates, custom_df, 5).toPandas()
    theirs = theirs.sort_values(["user_id", "rank"]).reset_index(drop=True)
    assert list(zip(mine.user_id, mine["rank"], mine.movie_id)) == list(zip(theirs.user_id, theirs["rank"], theirs.movie_id))
    np.testing.assert_allclose(mine.prediction, theirs.prediction, rtol=0, atol=1e-6)


def test_similar_serves_a_local_model_without_spark_like_the_spark_path(spark, tmp_path, model_dir, monkeypatch):
    argv = ["--model", str(model_dir), "--movie", "the matrix", "--top-n", "4", "--min-ratings", "10"]
    _no_session(monkeypatch)
    assert similar.main([*argv, "--output", str(tmp_path / "local")]) == cli.EXIT_OK
    assert similar.run(spark, _config(similar, [*argv, "--output", str(tmp_path / "spark")])) == cli.EXIT_OK
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local" / "similar"),
                                  pd.read_parquet(tmp_path / "spark" / "similar"))


def test_many_people_fold_in_on_the_executors_to_the_same_table(spark, tmp_path, model_dir, monkeypatch):
    from movierec_spark.serving import local

    ratings = str(_ratings_file(tmp_path, GOOD))
    argv = ["--model", str(model_dir), "--custom-ratings", ratings, "--top-n", "4", "--min-ratings", "10"]
    assert recommend.run(spark, _config(recommend, [*argv, "--output", str(tmp_path / "driver")])) == cli.EXIT_OK
    monkeypatch.setattr(local, "LOCAL_MAX_USERS", 1)
    code, jobs = jobs_while(spark, "many", lambda: recommend.run(
        spark, _config(recommend, [*argv, "--output", str(tmp_path / "executors")])))
    assert code == cli.EXIT_OK and jobs  # the grouped fold-in is a Spark job
    pd.testing.assert_frame_equal(_tables(tmp_path / "executors")[0], _tables(tmp_path / "driver")[0], rtol=1e-9)
