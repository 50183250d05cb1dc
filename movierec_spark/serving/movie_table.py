"""The per-movie side of a model, collected to the driver once: ids, item bias, item factors.

Top-N lists, a custom user's fold-in and "similar movies" all read the same
per-movie numbers: the model's item bias and item factors, often beside the
catalog (titles, rating counts) and the taste features. At MovieLens scale
that is a small table (ml-25m: 62k movies x rank 10 floats, a few MB), so
it is collected in one Spark action and the per-user work runs on it in
numpy: for a handful of custom users that is a fraction of a second, where
the same work as a Spark plan costs ~35 jobs and seconds of planning
(bench/NOTES.md, "Fold-in of a custom user from a saved model"). Paths for
many users (:mod:`movierec_spark.serving.topn_all`) ship the same table to the
executors and run the same functions there.

Input of :func:`collect_movie_table`: a model (``item_bias``, optional
``als``) and ``movies`` (``movie_id`` plus any columns to carry, e.g. the
catalog's). Output: a :class:`MovieTable` whose ``frame`` is::

    movie_id int (ascending, one row per movie), <movies' other columns>,
    item_bias double (0 where the model has none), _item_features array<float> (null: no factors)

with numpy views of the ids, biases and factors.

``train_als.py`` also saves :func:`movie_table_frame` of its model beside
it (``model/movie_table/``, one Parquet file; see
:func:`movierec_spark.serving.personal.save_catalog`), and a model loaded from
there reads that file on the driver instead of running the joins
(:meth:`movierec_spark.serving.personal.CustomRecommender.collect_movie_table`):
a custom user's recommendations from a saved model then run no Spark job
before the output is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable

import numpy as np
import pandas as pd

from movierec_spark import columns as C
from movierec_spark.columns import FEATURES, ITEM_BIAS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ITEM_FEATURES = "_item_features"


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class MovieTable:
    """Per-movie terms on the driver, ordered by movie id."""

    frame: pd.DataFrame
    ids: np.ndarray  # int64, ascending
    item_bias: np.ndarray  # float64
    factors: np.ndarray  # (movies, rank) float64; rank 0 without factors; zero rows where has_factors is False
    has_factors: np.ndarray  # bool
    # What the per-person functions derive from the table alone (e.g. the
    # taste feature counts), computed on first use and kept: a served model
    # answers many people from one table.
    _derived: dict = field(default_factory=dict, repr=False)

    def derived(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per table and ``key``; the table's arrays must not change after."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "MovieTable":
        """A table from ``frame`` (``movie_id``, ``item_bias``, optional ``_item_features``), sorted by id."""
        frame = frame.sort_values(C.MOVIE_ID, kind="stable").reset_index(drop=True)
        ids = frame[C.MOVIE_ID].to_numpy(dtype=np.int64)
        vectors = list(frame[ITEM_FEATURES]) if ITEM_FEATURES in frame.columns else [None] * len(frame)
        has = np.array([v is not None for v in vectors], dtype=bool)
        rank = max((len(v) for v in vectors if v is not None), default=0)
        factors = np.zeros((len(frame), rank), dtype=np.float64)
        if has.any():
            factors[has] = np.stack([np.asarray(v, dtype=np.float64) for v in vectors if v is not None])
        bias = frame[ITEM_BIAS].fillna(0.0).to_numpy(dtype=np.float64)
        return cls(frame, ids, bias, factors, has)

    @property
    def rank(self) -> int:
        return self.factors.shape[1]

    def positions(self, movie_ids) -> np.ndarray:
        """Row of each movie id in the table, -1 for a movie it does not hold."""
        wanted = np.asarray(movie_ids, dtype=np.int64)
        if len(self.ids) == 0:
            return np.full(len(wanted), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        return np.where(self.ids[pos] == wanted, pos, -1)


def movie_table_frame(model, movies: DataFrame) -> DataFrame:
    """``movies`` with the model's item bias and item factors (the table's frame, in Spark; no action).

    ``movies`` must hold one row per ``movie_id``; movies the model does not
    know get bias 0 and no factors, as the model scores them.
    """
    from pyspark.sql import functions as F

    from movierec_spark.models.factors import item_factors

    table = movies.join(model.item_bias.select(C.MOVIE_ID, F.col(ITEM_BIAS)), on=C.MOVIE_ID, how="left")
    if getattr(model, "als", None) is not None:
        table = table.join(item_factors(model).withColumnRenamed(FEATURES, ITEM_FEATURES), on=C.MOVIE_ID, how="left")
    return table


def collect_movie_table(model, movies: DataFrame) -> MovieTable:
    """:func:`movie_table_frame`, collected (one Spark action).

    Sorted on the driver: an ``orderBy`` would add a sampling job.
    """
    return MovieTable.from_frame(movie_table_frame(model, movies).toPandas())
