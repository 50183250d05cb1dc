"""Custom users: a person's own ratings, checked line by line and matched to movies.

Input: a CSV file with a header naming the columns ``user``, ``movie``,
``rating`` (any order, any case, extra columns ignored). ``user`` is any
label (a file may hold several people), ``movie`` is a MovieLens id (digits
only) or a title matched by :class:`movierec_spark.data.titles.TitleIndex`, and
``rating`` a number on the release's scale. Blank lines and lines starting
with ``#`` are skipped.

Every problem is collected before anything is reported: a missing column,
an empty file, a line with the wrong number of fields, an empty user or
movie, an unknown or ambiguous title (with close matches), an unknown id, a
rating that is not a number or not on the scale, the same movie rated twice
by one user. They come back together in one :class:`CustomRatingsError`
naming each line; nothing is skipped or guessed.

Output of :func:`custom_ratings_frame`::

    user string, user_id int, movie_id int, rating float

with fresh ``user_id`` values from ``first_user_id`` up (one per label, in
order of first appearance), so they cannot collide with the release's users.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.io import read_small_csv
from movierec_spark.data.releases import RatingScale
from movierec_spark.data.titles import TitleIndex

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

COLUMNS = ("user", "movie", "rating")
MAX_ID = 2**31 - 1  # ALS ids are 32-bit integers
_SHOWN_PROBLEMS = 5

CUSTOM_COLUMNS = (C.USER, C.USER_ID, C.MOVIE_ID, C.RATING)


def _custom_ratings_schema():
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField(C.USER, T.StringType(), nullable=False),
            T.StructField(C.USER_ID, T.IntegerType(), nullable=False),
            T.StructField(C.MOVIE_ID, T.IntegerType(), nullable=False),
            T.StructField(C.RATING, T.FloatType(), nullable=False),
        ]
    )


def __getattr__(name: str):
    # CUSTOM_RATINGS (the Spark schema of custom_ratings_frame) is built on
    # first use: checking a ratings file needs no pyspark.
    if name == "CUSTOM_RATINGS":
        return _custom_ratings_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CustomRatingsError(MovieRecError):
    """Every problem found in a custom ratings file; ``problems`` lists them all."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        shown = "; ".join(self.problems[:_SHOWN_PROBLEMS])
        more = len(self.problems) - _SHOWN_PROBLEMS
        tail = f"; and {more} more" if more > 0 else ""
        count = f"{len(self.problems)} problems: " if len(self.problems) > 1 else ""
        super().__init__(f"{source}: {count}{shown}{tail}")


@dataclass(frozen=True)
class CustomRatingLine:
    """One data line as typed: its line number and the three fields."""

    line: int
    user: str
    movie: str
    rating: str


@dataclass(frozen=True)
class CustomRating:
    """One checked rating: which movie the line meant and the rating it gave."""

    line: int
    user: str
    movie: str  # as typed
    movie_id: int
    title: str  # the catalog's "Title (year)", so a person can see what matched
    rating: float


def parse_lines(header: Sequence[str], rows: Iterable[tuple[int, Sequence[str]]],
                source: str) -> tuple[list[CustomRatingLine], list[tuple[int, str]]]:
    """Pick the user, movie and rating fields of each row.

    Returns the good lines and ``(line, problem)`` for each badly shaped
    one; a file-level problem (no header, a missing column, no data) raises.
    """
    names = [name.strip().casefold() for name in header]
    if not names:
        raise CustomRatingsError(
            source, ["the file is empty; write a header line 'user,movie,rating' and one line per rating"]
        )
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise CustomRatingsError(
            source,
            [
                f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} in the header "
                f"(found: {', '.join(h.strip() for h in header)}); the first line must be 'user,movie,rating'"
            ],
        )
    repeated = sorted({n for n in names if names.count(n) > 1 and n in COLUMNS})
    if repeated:
        raise CustomRatingsError(source, [f"column {', '.join(repeated)} appears twice in the header"])
    where = {c: names.index(c) for c in COLUMNS}
    lines, problems = [], []
    for number, fields in rows:
        if len(fields) != len(names):
            hint = " (a title with a comma must be in double quotes: \"Matrix, The\")" if len(fields) > len(names) else ""
            problems.append((number, f"{len(fields)} fields, the header has {len(names)}{hint}"))
            continue
        user, movie, rating = (fields[where[c]].strip() for c in COLUMNS)
        if not user:
            problems.append((number, "empty user"))
        elif not movie:
            problems.append((number, "empty movie"))
        else:
            lines.append(CustomRatingLine(number, user, movie, rating))
    if not lines and not problems:
        raise CustomRatingsError(source, ["the file has a header but no ratings; add lines like 'me,The Matrix,4.5'"])
    return lines, problems


def parse_rating(text: str, scale: RatingScale) -> float:
    """``text`` as a rating on ``scale``; ValueError with the reason otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"rating {text!r} is not a number") from None
    steps = (value - scale.low) / scale.step if math.isfinite(value) else math.nan
    if not (scale.low <= value <= scale.high) or abs(steps - round(steps)) > 1e-6:
        raise ValueError(
            f"rating {text} is not on the scale {scale.low:g} to {scale.high:g} "
            f"in steps of {scale.step:g}"
        )
    return float(value)


def resolve(lines: Sequence[CustomRatingLine], index: TitleIndex, scale: RatingScale, source: str,
            earlier: Sequence[tuple[int, str]] = ()) -> list[CustomRating]:
    """Match every line's movie and check its rating.

    All problems, with the ``earlier`` ones of :func:`parse_lines`, are
    raised together in line order.
    """
    resolved: list[CustomRating] = []
    problems: list[tuple[int, str]] = list(earlier)
    first_line: dict[tuple[str, int], int] = {}
    for entry in lines:
        errors = []
        movie = None
        if entry.movie.isdigit():
            movie = index.movies.get(int(entry.movie))
            if movie is None:
                errors.append(f"movie id {entry.movie} is not in the catalog")
        else:
            match = index.match(entry.movie)
            movie = match.movie
            if movie is None:
                errors.append(match.describe())
        try:
            rating = parse_rating(entry.rating, scale)
        except ValueError as exc:
            errors.append(str(exc))
        if movie is not None:
            key = (entry.user, movie.movie_id)
            if key in first_line:
                errors.append(
                    f"user {entry.user!r} already rated {movie.label} on line {first_line[key]}; keep one line"
                )
            else:
                first_line[key] = entry.line
        if errors:
            problems.extend((entry.line, e) for e in errors)
            continue
        resolved.append(CustomRating(entry.line, entry.user, entry.movie, movie.movie_id, movie.label, rating))
    if problems:
        problems.sort(key=lambda p: p[0])
        raise CustomRatingsError(source, [f"line {line}: {text}" for line, text in problems])
    return resolved


def read_custom_ratings(path: str | Path, index: TitleIndex, scale: RatingScale) -> list[CustomRating]:
    """Read, check and resolve a custom ratings CSV file."""
    header, rows = read_small_csv(path, what="custom ratings file")
    source = f"custom ratings file {path}"
    lines, problems = parse_lines(header, rows, source)
    return resolve(lines, index, scale, source, problems)


def from_pairs(user: str, ratings: Iterable[tuple[int | str, float]], index: TitleIndex,
               scale: RatingScale) -> list[CustomRating]:
    """Ratings given in code or by a widget: ``(movie id or title, rating)`` pairs."""
    lines = [CustomRatingLine(n, user, str(movie), str(rating)) for n, (movie, rating) in enumerate(ratings, 1)]
    if not lines:
        raise CustomRatingsError(f"ratings of {user!r}", ["no ratings; rate at least one movie"])
    return resolve(lines, index, scale, f"ratings of {user!r}")


def user_ids(ratings: Sequence[CustomRating], first_user_id: int) -> dict[str, int]:
    """One fresh id per user label, from ``first_user_id`` up in order of first appearance."""
    ids: dict[str, int] = {}
    for rating in ratings:
        ids.setdefault(rating.user, first_user_id + len(ids))
    if ids and max(ids.values()) > MAX_ID:
        raise MovieRecError(
            f"custom user ids would pass {MAX_ID} (ALS ids are 32-bit); the release's user ids leave no room"
        )
    return ids


def _rating_rows(ratings: Sequence[CustomRating], first_user_id: int) -> list[tuple]:
    ids = user_ids(ratings, first_user_id)
    return [(r.user, ids[r.user], r.movie_id, r.rating) for r in ratings]


def custom_ratings_frame(spark: SparkSession, ratings: Sequence[CustomRating], first_user_id: int) -> DataFrame:
    """The checked ratings as ``user, user_id, movie_id, rating`` with fresh user ids."""
    return spark.createDataFrame(_rating_rows(ratings, first_user_id), _custom_ratings_schema())


def ratings_table(ratings: Sequence[CustomRating], first_user_id: int):
    """The rows of :func:`custom_ratings_frame` as pandas, with its types (``rating`` float32)."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(_rating_rows(ratings, first_user_id), columns=list(CUSTOM_COLUMNS))
    return frame.astype({C.USER_ID: np.int32, C.MOVIE_ID: np.int32, C.RATING: np.float32})


def resolved_table(ratings: Sequence[CustomRating], first_user_id: int):
    """A pandas table of every rating: its line, what was typed, what it matched, the user's id."""
    import pandas as pd

    ids = user_ids(ratings, first_user_id)
    columns = ["line", C.USER, C.USER_ID, "movie", C.MOVIE_ID, "matched_title", C.RATING]
    rows = [(r.line, r.user, ids[r.user], r.movie, r.movie_id, r.title, r.rating) for r in ratings]
    return pd.DataFrame(rows, columns=columns)


def describe(ratings: Sequence[CustomRating]) -> list[str]:
    """One line per rating saying what each typed movie was matched to."""
    out = []
    for r in ratings:
        shown = r.title if r.movie.isdigit() else f"{r.movie!r} -> {r.title}"
        out.append(f"line {r.line}: {r.user}: {shown} [id {r.movie_id}] rated {r.rating:g}")
    return out
