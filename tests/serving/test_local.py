"""The serving path without Spark: a saved model folder read with pyarrow, checked by hand and in a process without pyspark.

No test here starts a JVM: the model folder is written with pyarrow from
the numbers of tests/tiny_models.py. Agreement with the Spark path on a
really fitted model is in tests/jobs/test_custom_jobs.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.serving.local import LocalRecommender
from movierec_spark.serving.tables import BASIS_POPULAR, TOP_N_ARROW, TOP_N_COLUMNS
from movierec_spark.settings import RecommendSettings
from tests.cluster import fake_java
from tests.tiny_models import CATALOG, GLOBAL_MEAN, ITEM_BIAS, ITEM_FACTORS

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"model": "als", "reg_param": 0.1, "user_damping": 1.0, "nonnegative": False}


def write_tiny_model(folder: Path) -> Path:
    """tests/tiny_models.py's model as train_als.py saves it: metadata.json and movie_table/ (no Spark)."""
    folder.mkdir(parents=True)
    meta = {"format_version": 1, "kind": "explicit", "global_mean": GLOBAL_MEAN,
            "scale": {"low": 0.5, "high": 5.0, "step": 0.5}, "has_factors": True, "has_day_bias": False,
            "params": PARAMS, "max_user_id": 1}
    (folder / "metadata.json").write_text(json.dumps(meta))
    ids = sorted(CATALOG)
    features = [list(CATALOG[i][2]) + ([] if CATALOG[i][1] is None else [f"decade {CATALOG[i][1] // 10 * 10}"])
                for i in ids]
    table = pa.table({
        C.MOVIE_ID: pa.array(ids, pa.int32()),
        C.TITLE: [CATALOG[i][0] for i in ids],
        C.YEAR: pa.array([CATALOG[i][1] for i in ids], pa.int32()),
        C.GENRES: [CATALOG[i][2] for i in ids],
        C.NUM_RATINGS: pa.array([CATALOG[i][3] for i in ids], pa.int32()),
        "_content_features": features,
        C.ITEM_BIAS: pa.array([ITEM_BIAS.get(i) for i in ids], pa.float64()),
        "_item_features": pa.array([ITEM_FACTORS.get(i) for i in ids], pa.list_(pa.float32())),
    })
    (folder / "movie_table").mkdir()
    pq.write_table(table, folder / "movie_table" / "part-00000.parquet")
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("local") / "model")


def _recommender(model_dir, **settings):
    values = {"min_ratings": 20, "content_weight": 0.0, "liked_rating": 4.0, "top_n": 3, **settings}
    return LocalRecommender.load(model_dir, RecommendSettings(**values))


def test_fold_in_and_ranking_are_the_hand_solve(model_dir):
    """dee rates 10: 5, 40: 4, 20: 1; b_u and p_u solved by hand, every unseen popular movie scored."""
    rec = _recommender(model_dir)
    table = rec.recommend(rec.ratings_from_pairs("dee", [("The Matrix", 5), ("Alien", 4), ("Heat", 1)]))
    assert tuple(table.columns) == TOP_N_COLUMNS
    residual = np.array([5 - 3 - 0.5, 4 - 3 - 1.0, 1 - 3 + 0.5])
    bias = residual.sum() / (3 + 1.0)
    q = np.array([ITEM_FACTORS[10], ITEM_FACTORS[40], ITEM_FACTORS[20]])
    p = np.linalg.solve(q.T @ q + 0.1 * 3 * np.eye(2), q.T @ (residual - bias))
    scores = {m: GLOBAL_MEAN + bias + ITEM_BIAS[m] + p @ np.array(ITEM_FACTORS.get(m, [0.0, 0.0])) for m in (50, 70, 80)}
    expected = sorted(scores, key=lambda m: (-scores[m], m))
    assert list(table.movie_id) == expected
    np.testing.assert_allclose(table.prediction, [min(5.0, max(0.5, scores[m])) for m in expected], atol=1e-6)
    assert set(table.basis) == {"personal"} and (table.user_id == 2).all()
    assert table.because_you_liked.iloc[0] == "Matrix, The (1999)"  # 70 is nearer 10 than 40


def test_ratings_all_alike_give_the_popular_list(model_dir):
    rec = _recommender(model_dir)
    table = rec.recommend(rec.ratings_from_pairs("ann", [(10, 5), (40, 5)]))
    # Most liked unseen movies with 20+ ratings: 3 + b_i; no Action/Sci-Fi/Horror movie is left to prefer.
    assert list(table.movie_id) == [70, 80, 50]
    np.testing.assert_allclose(table.prediction, [3.3, 3.3, 3.25])
    assert set(table.basis) == {BASIS_POPULAR}


def test_popular_list_keeps_to_the_genres_liked(model_dir):
    rec = _recommender(model_dir, min_ratings=0, top_n=1)
    table = rec.recommend(rec.ratings_from_pairs("bo", [("Twin A", 4), ("Twin B", 4)]))
    assert list(table.movie_id) == [60]  # the one other Comedy, though 40 is better liked
    assert list(table.basis) == [BASIS_POPULAR]


def test_no_ratings_or_none_the_model_knows_give_the_popular_list(model_dir):
    rec = _recommender(model_dir)
    nothing = rec.recommend([], user="me")
    assert list(nothing.movie_id) == [40, 10, 70] and list(nothing.user) == ["me"] * 3
    assert nothing.because_you_liked.isna().all() and set(nothing.basis) == {BASIS_POPULAR}
    unknown = rec.recommend(rec.ratings_from_pairs("cy", [("No Factors", 4), ("Nobody Rated", 2)]))
    assert list(unknown.movie_id) == [40, 10, 70] and set(unknown.basis) == {BASIS_POPULAR}


def test_similar_movies_by_cosine(model_dir):
    rec = _recommender(model_dir)
    movie, table = rec.similar("matrix")
    assert movie.movie_id == 10 and 10 not in set(table.similar_movie_id)
    assert list(table.similarity) == sorted(table.similarity, reverse=True)
    assert table.similarity.iloc[0] == pytest.approx(1 / np.sqrt(2))


def test_a_folder_without_movie_table_is_refused(tmp_path, model_dir):
    import shutil

    older = tmp_path / "older"
    shutil.copytree(model_dir, older)
    shutil.rmtree(older / "movie_table")
    with pytest.raises(MovieRecError, match="no movie_table"):
        LocalRecommender.load(older, RecommendSettings())


def test_arrow_schemas_are_the_spark_schemas():
    from pyspark.sql.pandas.types import to_arrow_schema

    from movierec_spark.serving import tables

    assert to_arrow_schema(tables.TOP_N_SCHEMA) == TOP_N_ARROW
    assert to_arrow_schema(tables.SIMILAR_SCHEMA) == tables.SIMILAR_ARROW


NO_PYSPARK = """
import sys
sys.modules["pyspark"] = None  # any import of pyspark fails
from movierec_spark.serving.command import main
code = main(sys.argv[1:])
from movierec_spark.serving.local import LocalRecommender
LocalRecommender.load(sys.argv[2]).similar("The Matrix")
assert not [m for m in sys.modules if m.startswith("pyspark") and sys.modules[m] is not None]
sys.exit(code)
"""


def test_the_command_runs_with_pyspark_unimportable_and_no_java(tmp_path, model_dir):
    ratings = tmp_path / "mine.csv"
    ratings.write_text("user,movie,rating\nme,The Matrix,5\nme,Heat (1995),1\nme,Alien,4\n")
    out = tmp_path / "out"
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", NO_PYSPARK, "--model", str(model_dir), "--custom-ratings", str(ratings),
         "--output", str(out), "--top-n", "3", "--min-ratings", "20"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Top 3 for me" in done.stdout
    written = pq.read_table(out / "top_n")
    assert written.schema.remove_metadata() == TOP_N_ARROW
    assert written.num_rows == 3
    report = json.loads((out / "report.json").read_text())
    assert report["served"] == "local" and report["users"] == {"me": 2}


def test_jobs_leave_many_people_and_a_folder_without_movie_table_to_spark(tmp_path, model_dir, monkeypatch):
    import shutil

    from jobs import recommend, similar
    from movierec_spark import cli
    from movierec_spark.serving import local

    ratings = tmp_path / "many.csv"
    ratings.write_text("user,movie,rating\nann,10,5\nbob,20,4\n")
    argv = ["--model", str(model_dir), "--custom-ratings", str(ratings), "--output", str(tmp_path / "out")]
    cfg = cli.build_config(recommend.build_parser().parse_args(argv))
    monkeypatch.setattr(local, "LOCAL_MAX_USERS", 1)
    assert recommend.run_local(cfg) is None
    older = tmp_path / "older"
    shutil.copytree(model_dir, older)
    shutil.rmtree(older / "movie_table")
    cfg = cli.build_config(similar.build_parser().parse_args(["--model", str(older), "--movie", "10"]))
    assert similar.run_local(cfg) is None


def test_many_people_are_ranked_in_blocks_with_the_same_result(model_dir, monkeypatch):
    import pandas as pd

    from movierec_spark.serving import tables

    rec = _recommender(model_dir)
    pairs = {"ann": [(10, 5), (20, 1)], "bob": [(30, 4.5), (70, 1)], "cy": [(20, 3)]}
    ratings = [r for user, mine in pairs.items() for r in rec.ratings_from_pairs(user, mine)]
    whole = rec.recommend(ratings, user="dot")
    monkeypatch.setattr(tables, "USERS_PER_BLOCK", 1)
    pd.testing.assert_frame_equal(rec.recommend(ratings, user="dot"), whole)
    assert list(whole.groupby("user", sort=False).size().index) == ["ann", "bob", "cy", "dot"]


def test_the_console_script_is_the_command_without_spark():
    import importlib

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["movierec-recommend"].partition(":")
    from movierec_spark.serving import command

    assert getattr(importlib.import_module(module), name) is command.main


def test_an_implicit_model_folds_in_against_the_gram_of_all_its_item_factors(tmp_path, model_dir):
    import shutil

    from movierec_spark.serving.foldin import FoldInSettings, solve_user

    folder = tmp_path / "implicit"
    shutil.copytree(model_dir, folder)
    meta = json.loads((folder / "metadata.json").read_text())
    meta.update(kind="implicit", params={"model": "implicit", "reg_param": 0.1, "alpha": 2.0, "confidence": "binary"})
    (folder / "metadata.json").write_text(json.dumps(meta))
    items = folder / "als" / "itemFactors"
    items.mkdir(parents=True)
    ids = sorted(ITEM_FACTORS)
    pq.write_table(pa.table({"id": pa.array(ids, pa.int32()),
                             "features": pa.array([ITEM_FACTORS[i] for i in ids], pa.list_(pa.float32()))}),
                   items / "part-00000.parquet")
    rec = _recommender(folder)
    q = np.array([ITEM_FACTORS[i] for i in ids])
    np.testing.assert_allclose(rec.gram, q.T @ q)
    rated = rec.ratings_frame(rec.ratings_from_pairs("imp", [(10, 5), (40, 3)]))
    users = rec.fold_in(rated)
    rows = np.array([ITEM_FACTORS[10], ITEM_FACTORS[40]])
    _, expected = solve_user(np.array([5.0, 3.0]), np.zeros(2), rows, FoldInSettings.of(rec.model), q.T @ q)
    np.testing.assert_allclose(users.features[0], expected)
    assert len(rec.recommend(rec.ratings_from_pairs("imp", [(10, 5), (40, 3)]))) == 3


@pytest.mark.parametrize("job, args, shown", [
    ("recommend", ["--custom-ratings", "{ratings}", "--top-n", "3", "--output", "{out}"], "Top 3 for me"),
    ("similar", ["--movie", "The Matrix", "--output", "{out}"], "Movies most like Matrix, The (1999)"),
])
def test_the_wrapper_serves_a_local_model_without_starting_a_jvm(tmp_path, model_dir, job, args, shown):
    java_home = fake_java(tmp_path / "java")
    ratings = tmp_path / "mine.csv"
    ratings.write_text("user,movie,rating\nme,The Matrix,5\nme,Heat (1995),1\nme,Alien,4\n")
    argv = [a.format(ratings=ratings, out=tmp_path / "out") for a in args]
    env = {**os.environ, "JAVA_HOME": str(java_home), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    env.pop("SPARK_HOME", None)
    done = subprocess.run([str(ROOT / "spark-submit.sh"), str(ROOT / "jobs" / f"{job}.py"), "--model", str(model_dir),
                           "--min-ratings", "20", *argv], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert shown in done.stdout
    assert not (java_home / "ran").exists(), (java_home / "ran").read_text()
    assert (tmp_path / "out").is_dir()


def test_named_genres_choose_the_popular_list_and_leave_a_personal_one_alone(model_dir):
    rec = _recommender(model_dir, min_ratings=0, top_n=1, genres=["crime"])
    table = rec.recommend(rec.ratings_from_pairs("bo", [("Twin A", 4), ("Twin B", 4)]))
    assert list(table.movie_id) == [20] and list(table.basis) == [BASIS_POPULAR]  # Heat, not the liked Comedy
    personal = rec.ratings_from_pairs("cy", [(10, 5), (40, 1)])
    plain = _recommender(model_dir, min_ratings=0, top_n=1)
    assert rec.recommend(personal).equals(plain.recommend(personal))


def test_an_unknown_genre_is_refused_with_the_closest_and_the_models_genres(model_dir):
    rec = _recommender(model_dir, genres=["Comdy"])
    with pytest.raises(MovieRecError) as caught:
        rec.recommend(rec.ratings_from_pairs("bo", [("Twin A", 4)]))
    assert str(caught.value) == ("unknown genre 'Comdy' (did you mean Comedy?); "
                                 "the model's genres: Action, Comedy, Crime, Drama, Horror, Sci-Fi")


def test_the_command_takes_genres(tmp_path, model_dir, capsys):
    from movierec_spark.serving import command

    ratings = tmp_path / "mine.csv"
    ratings.write_text("user,movie,rating\nbo,Twin A,4\nbo,Twin B,4\n")
    out = tmp_path / "out"
    assert command.main(["--model", str(model_dir), "--custom-ratings", str(ratings), "--output", str(out),
                         "--top-n", "2", "--min-ratings", "0", "--genres", "Crime,Drama"]) == 0  # fmt: skip
    assert sorted(pq.read_table(out / "top_n").column("movie_id").to_pylist()) == [20, 30]  # the Crime and the Drama
    assert command.main(["--model", str(model_dir), "--custom-ratings", str(ratings), "--output", str(out),
                         "--genres", "Westerns"]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "movierec-recommend: error: unknown genre 'Westerns'; the model's genres: Action, Comedy, Crime, Drama, "
        "Horror, Sci-Fi")
    assert sorted(pq.read_table(out / "top_n").column("movie_id").to_pylist()) == [20, 30]  # the earlier output stays
