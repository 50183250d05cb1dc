"""The real MovieLens releases in ../shared/data/movielens load with their published counts."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.data.load import ML100K_GENRES, ML100K_OCCUPATIONS, ingest_report, load_data
from tests.release_files import parsed_once

pytestmark = pytest.mark.slow


def _report(loaded):
    with parsed_once(loaded):
        return ingest_report(loaded)


def test_ml_latest_small_folder(spark, movielens_dir):
    loaded = load_data(spark, {"dataset": "ml-latest-small", "source": str(movielens_dir)})
    report = _report(loaded)
    # Published in the release's README.txt and ../shared/data/movielens/README.md.
    assert report["summary"] == {
        "ratings": 100_836, "users": 610, "movies": 9_742, "rated_movies": 9_724,
        "rows_read": 100_836 + 9_742 + 3_683 + 9_742, "rows_rejected": 0,
    }  # fmt: skip
    assert report["tables"]["tags"]["loaded"] == 3_683
    assert loaded.links.filter(F.col(C.TMDB_ID).isNull()).count() == 8  # empty tmdbId: null, not rejected


def test_ml_100k_folder(spark, movielens_dir):
    loaded = load_data(spark, {"dataset": "ml-100k", "source": str(movielens_dir / "ml-100k")})
    report = _report(loaded)
    assert report["summary"] == {
        "ratings": 100_000, "users": 943, "movies": 1_682, "rated_movies": 1_682,
        "rows_read": 100_000 + 1_682 + 943, "rows_rejected": 0,
    }  # fmt: skip
    assert report["tables"]["users"]["loaded"] == 943
    assert loaded.scale.values() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_ml_1m_folder_lacks_ratings_and_loads_partially(spark, movielens_dir):
    with pytest.raises(MovieRecError, match=r"ratings\.dat"):
        load_data(spark, {"dataset": "ml-1m", "source": str(movielens_dir)})
    loaded = load_data(spark, {"dataset": "ml-1m", "source": str(movielens_dir)}, partial=True)
    report = _report(loaded)
    assert loaded.missing == ("ratings",)
    assert {t: (c["read"], c["loaded"]) for t, c in report["tables"].items()} == {
        "movies": (3_883, 3_883), "users": (6_040, 6_040),
    }  # fmt: skip
    assert report["missing_tables"] == ["ratings"]


def test_ml_100k_names_in_code_match_its_files(movielens_dir):
    genre_lines = (movielens_dir / "ml-100k" / "u.genre").read_text(encoding="latin-1").split("\n")
    genres = [line.split("|") for line in genre_lines if line.strip()]
    assert tuple(name for name, _ in sorted(genres, key=lambda g: int(g[1]))) == ML100K_GENRES
    occupations = (movielens_dir / "ml-100k" / "u.occupation").read_text(encoding="latin-1").split()
    assert tuple(occupations) == ML100K_OCCUPATIONS
