"""The shipped example ratings (conf/custom_ratings.csv) work on every release: no Spark.

The default run folds in its example user on whichever release it loads,
so the example may only name titles (ids differ between ml-100k and the
others) that every release has, with whole stars (valid on both scales).
The movies files are parsed here in plain Python with the loader's own
title pattern, so a title the loader would split differently fails here.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from movierec_spark.data import load
from movierec_spark.data.releases import RELEASES, WHOLE_STARS
from movierec_spark.data.titles import Movie, TitleIndex
from movierec_spark.serving.custom import CustomRatingsError, read_custom_ratings
from tests.conftest import CONF_DIR

EXAMPLE = CONF_DIR / "custom_ratings.csv"
_TITLE_YEAR = re.compile(load._TITLE_YEAR)


def _movie(movie_id: str, raw_title: str) -> Movie:
    """One movie as the loader reads it: the title without its year, and the year."""
    found = _TITLE_YEAR.match(raw_title)
    if not found or not found.group(1):
        return Movie(int(movie_id), raw_title, None)
    title = " ".join(part for part in (found.group(1), found.group(3)) if part)
    return Movie(int(movie_id), title, int(found.group(2)))


def _movies(folder: Path, release: str) -> list[Movie]:
    if release == "ml-latest-small":
        with open(folder / "movies.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))[1:]
    else:
        separator = "|" if release == "ml-100k" else "::"
        name = RELEASES[release].files["movies"]
        with open(folder / name, encoding=RELEASES[release].encoding) as f:
            rows = [line.rstrip("\n").split(separator) for line in f if line.strip()]
    return [_movie(row[0], row[1]) for row in rows]


@pytest.mark.parametrize("release", ["ml-100k", "ml-1m", "ml-latest-small"])
def test_example_matches_every_release_without_error(movielens_dir, release):
    index = TitleIndex(_movies(movielens_dir / release, release))
    ratings = read_custom_ratings(EXAMPLE, index, RELEASES[release].scale)
    assert len(ratings) == 12
    assert {r.user for r in ratings} == {"example"}
    # Whole stars only, so the example is on ml-100k's and ml-1m's scale too.
    assert all(r.rating == int(r.rating) and 1 <= r.rating <= 5 for r in ratings)
    # No ids: they name different movies in ml-100k.
    assert not any(r.movie.isdigit() for r in ratings)


def test_example_titles_are_the_same_movies_on_every_release(movielens_dir):
    years = {}
    for release in ("ml-100k", "ml-1m", "ml-latest-small"):
        index = TitleIndex(_movies(movielens_dir / release, release))
        ratings = read_custom_ratings(EXAMPLE, index, RELEASES[release].scale)
        years[release] = [(r.movie, index.movies[r.movie_id].year) for r in ratings]
    assert years["ml-100k"] == years["ml-1m"] == years["ml-latest-small"]


def test_a_file_the_user_names_stays_strict(tmp_path, movielens_dir):
    """Half stars and ids are fine in a user's file on ml-latest-small, refused on ml-100k."""
    index = TitleIndex(_movies(movielens_dir / "ml-100k", "ml-100k"))
    mine = tmp_path / "mine.csv"
    mine.write_text("user,movie,rating\nme,Toy Story,4.5\nme,Star Wars: Episode V - The Empire Strikes Back,5\n")
    with pytest.raises(CustomRatingsError) as caught:
        read_custom_ratings(mine, index, WHOLE_STARS)
    assert str(caught.value) == (
        f"custom ratings file {mine}: 2 problems: "
        "line 2: rating 4.5 is not on the scale 1 to 5 in steps of 1; "
        "line 3: unknown title 'Star Wars: Episode V - The Empire Strikes Back'; "
        "did you mean Empire Strikes Back, The (1980) (id 172)?"
    )
