"""Taste match: how well a movie's genres and decade fit the movies a person liked.

Why it exists: a biased ALS model predicts *ratings*, and the movies with
the highest predicted rating for almost anyone are the acclaimed ones (The
Godfather, Dr. Strangelove). For a new user who rated a dozen horror films
4-5 stars, the damped user bias absorbs most of that and the residual
factors learned from 610 users barely separate genres, so the top-10 by
predicted rating holds no horror film at all (measured on ml-latest-small,
``tests/test_personas.py``: 0 of 10; an animation fan got no animated film,
a 1950s fan 5 films from 1940-1969; with ``content_weight = 1``: 8, 8, 8). Which
movies a person chose to rate says what they want more of; the ratings
model ignores it. So top-N lists rank by

    predicted rating + content_weight * match

where ``match`` (0 to 1) is the cosine between the movie's features (its
genres plus its decade, e.g. ``Horror``, ``decade 1950``) and the person's
profile: for each feature, the share of their liked movies having it. The
predicted rating shown is the model's, untouched; ``content_weight = 0``
ranks by it alone. A classic content-based + collaborative hybrid for users
with few ratings.

Inputs: the catalog (``movie_id``, ``year``, ``genres``) for
:func:`movie_features` (a Spark column per movie, collected with the rest of
the per-movie table, :mod:`movierec_spark.serving.movie_table`); then, on that
table, :func:`taste_match` takes each movie's feature list and each user's
liked movies (rows of the table) and returns the users x movies matrix of
``match`` values. Its callers (:func:`movierec_spark.serving.tables.top_n_table`)
add ``content_weight * match`` to the ranking score only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from movierec_spark import columns as C

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

FEATURES = "_content_features"
MATCH = "match"


def content_features() -> Column:
    """A movie's genres plus ``"decade 1950"`` (no decade without a year), from ``genres`` and ``year``."""
    from pyspark.sql import functions as F

    genres = F.coalesce(F.col(C.GENRES), F.array().cast("array<string>"))
    decade = F.concat(F.lit("decade "), (F.floor(F.col(C.YEAR) / 10) * 10).cast("int").cast("string"))
    return F.when(F.col(C.YEAR).isNull(), genres).otherwise(F.array_union(genres, F.array(decade)))


def movie_features(catalog: DataFrame) -> DataFrame:
    """``movie_id, _content_features`` (:func:`content_features`)."""
    return catalog.select(C.MOVIE_ID, content_features().alias(FEATURES))


def feature_counts(features: Sequence) -> np.ndarray:
    """Each movie's (row's) count of each feature: a movies x features matrix, features in order of appearance."""
    vocabulary: dict[str, int] = {}
    for listed in features:
        for feature in listed if listed is not None else ():
            vocabulary.setdefault(feature, len(vocabulary))
    counts = np.zeros((len(features), len(vocabulary)), dtype=np.float64)
    for row, listed in enumerate(features):
        for feature in listed if listed is not None else ():
            counts[row, vocabulary[feature]] += 1.0
    return counts


def taste_match(features: Sequence, liked: Sequence[np.ndarray], columns: np.ndarray | None = None,
                counts: np.ndarray | None = None, scored: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``match`` of each user (row) with each movie (column): a users x movies matrix.

    ``features``: each movie's feature list (None: none); ``liked``: per
    user, the rows of ``features`` of the movies they liked (a repeat counts
    once); ``columns``: the rows to score (default: all). A user's profile
    is, per feature, the share of their liked movies having it; ``match``
    is the cosine of a movie's feature counts and that profile, 0 when
    either is empty. ``counts`` (:func:`feature_counts` of ``features``)
    and ``scored`` (``counts[columns]`` and its rows' lengths) may be
    passed by a caller that keeps them.
    """
    if counts is None:
        counts = feature_counts(features)
    profiles = np.zeros((len(liked), counts.shape[1]), dtype=np.float64)
    for user, rows in enumerate(liked):
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if len(rows):
            profiles[user] = counts[rows].sum(axis=0) / len(rows)
    norms = np.sqrt((profiles * profiles).sum(axis=1))
    if scored is None:
        chosen = counts if columns is None else counts[columns]
        scored = (chosen, np.sqrt(chosen.sum(axis=1)))
    chosen, sizes = scored
    denominator = norms[:, None] * sizes[None, :]
    totals = profiles @ chosen.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, totals / denominator, 0.0)
