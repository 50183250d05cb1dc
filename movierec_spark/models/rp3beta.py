"""RP3beta, a random-walk item-to-item top-N model, computed with Spark joins.

RP3beta (Paudel, Christoffel, Bernstein 2017, "Updatable, Accurate, Diverse,
and Scalable Recommendations for Interactive Applications"; one of the
strongest simple baselines in Dacrema et al. 2019) sees the ratings as
interactions, the bipartite graph of users and the movies they rated, and
scores a movie by how likely a walk user -> movie -> user -> movie ends
there. Each step's transition probability (1 / the node's degree) is raised
to ``alpha``, and the end movie's weight is divided by its popularity to the
power ``beta`` so that walks do not end at the most-rated movies just
because every path leads there::

    W[j, i] = n_j^-alpha * sum_{v rated j and i} n_v^-alpha * n_i^-beta      (j != i)

with ``n_j`` the raters of movie ``j`` and ``n_v`` the ratings of user ``v``.
Each movie ``j`` keeps its ``neighbours`` largest weights (ties: lower movie
id first). A user's score for movie ``i`` is the sum of ``W[j, i]`` over the
movies ``j`` they rated (:class:`~movierec_spark.models.item_weights.ItemWeightsModel`, the
scoring EASE uses). The walk's first step, ``n_u^-alpha``, is the same for
every movie of a user and is left out: it does not change their order.

Cost: the co-rating sums come from a self-join of the interactions on the
user, ``sum_v n_v (n_v - 1) / 2`` rows (one direction; the sums are
symmetric and mirrored after aggregating), quadratic in the heaviest users'
activity like item kNN's (movierec_spark.models.knn; ml-latest-small: 30.4
million rows); nothing is collected to the driver.

Schemas: input ratings ``user_id int, movie_id int`` (other columns
ignored); :func:`co_walks` returns ``_source_movie_id int, movie_id int,
_walks double`` (both directions); :func:`rp3beta_weights` and
:attr:`Rp3BetaModel.weights` ``_source_movie_id int, movie_id int, weight
double``; ``predict(pairs)`` returns ``pairs`` plus ``prediction double``
(a score, not a rating).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from movierec_spark import columns as C
from movierec_spark.models.item_weights import SOURCE, WEIGHT, ItemWeightsModel
from movierec_spark.settings import Rp3BetaSettings, parse_section

log = logging.getLogger(__name__)

RP3BETA = "rp3beta"
WALKS = "_walks"
_SHARE = "_walk_share"
_COUNT = "_n"
_RANK = "_rank"


_RP3BETA = Rp3BetaSettings()


@dataclass(frozen=True)
class Rp3BetaParams:
    """``[rp3beta]``: the walk's exponent, the popularity penalty, weights kept per movie
    (defaults and ranges: conf/movierec.toml's, held by movierec_spark.settings)."""

    alpha: float = _RP3BETA.alpha
    beta: float = _RP3BETA.beta
    neighbours: int = _RP3BETA.neighbours

    def validate(self) -> "Rp3BetaParams":
        """``self`` if every value is in range, else a MovieRecError naming the key."""
        parse_section("rp3beta", asdict(self))
        return self

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "Rp3BetaParams":
        """The keys of ``[rp3beta]`` this class knows (others ignored), checked."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in section.items() if k in names}).validate()


def _interactions(ratings: DataFrame) -> DataFrame:
    return ratings.select(C.USER_ID, C.MOVIE_ID).distinct()


def _degree(interactions: DataFrame, key: str, exponent: float, name: str) -> DataFrame:
    """``key, name``: each ``key``'s number of interactions to the power ``-exponent``."""
    count = F.count(F.lit(1)).cast("double")
    return interactions.groupBy(key).agg(F.pow(count, F.lit(-float(exponent))).alias(name))


def co_walks(ratings: DataFrame, alpha: float) -> DataFrame:
    """``_source_movie_id, movie_id, _walks``: ``sum n_v^-alpha`` over the users who rated both.

    Every ordered pair of distinct movies some user rated together, both
    directions (the sum is symmetric: one direction is joined and summed,
    then mirrored).
    """
    seen = _interactions(ratings)
    walkers = seen.join(_degree(seen, C.USER_ID, alpha, _SHARE), on=C.USER_ID, how="inner")
    one_way = (
        walkers.select(C.USER_ID, F.col(C.MOVIE_ID).alias(SOURCE), _SHARE)
        .join(seen, on=C.USER_ID, how="inner")
        .where(F.col(SOURCE) < F.col(C.MOVIE_ID))
        .groupBy(SOURCE, C.MOVIE_ID)
        .agg(F.sum(_SHARE).alias(WALKS))
    )
    mirrored = one_way.select(F.col(C.MOVIE_ID).alias(SOURCE), F.col(SOURCE).alias(C.MOVIE_ID), WALKS)
    return one_way.unionByName(mirrored)


def rp3beta_weights(walks: DataFrame, ratings: DataFrame, params: Rp3BetaParams) -> DataFrame:
    """``_source_movie_id, movie_id, weight``: RP3beta's ``W``, each source movie's ``neighbours`` largest.

    ``walks`` is :func:`co_walks` of the same ``ratings`` with the same
    ``alpha`` (split out so that a search over ``beta`` sums the walks once).
    """
    seen = _interactions(ratings)
    source = _degree(seen, C.MOVIE_ID, params.alpha, "_source_factor").withColumnRenamed(C.MOVIE_ID, SOURCE)
    target = _degree(seen, C.MOVIE_ID, params.beta, "_target_factor")
    order = Window.partitionBy(SOURCE).orderBy(F.col(WEIGHT).desc(), F.col(C.MOVIE_ID).asc())
    return (
        walks.join(source, on=SOURCE, how="inner")
        .join(target, on=C.MOVIE_ID, how="inner")
        .select(SOURCE, C.MOVIE_ID, (F.col(WALKS) * F.col("_source_factor") * F.col("_target_factor")).alias(WEIGHT))
        .withColumn(_RANK, F.row_number().over(order))
        .where(F.col(_RANK) <= params.neighbours)
        .drop(_RANK)
    )


class Rp3BetaModel(ItemWeightsModel):
    """RP3beta weights and the ratings they score (:func:`fit_rp3beta`); ``params``: :class:`Rp3BetaParams`."""

    NAME = RP3BETA
    PARAMS = Rp3BetaParams


def fit_rp3beta(ratings: DataFrame, params: Rp3BetaParams = Rp3BetaParams()) -> Rp3BetaModel:
    """Fit RP3beta on ``ratings`` (``user_id, movie_id``; every rating counts as 1).

    The weights are checkpointed (computed now, lineage cut): every scoring
    joins them, and would otherwise redo the self-join. Needs the session's
    checkpoint folder (movierec_spark.session.set_checkpoint_dir).
    """
    params.validate()
    weights = rp3beta_weights(co_walks(ratings, params.alpha), ratings, params).checkpoint()
    log.info("RP3beta: alpha %g, beta %g, %d neighbours per movie", params.alpha, params.beta, params.neighbours)
    return Rp3BetaModel(weights=weights, seen=ratings.select(C.USER_ID, C.MOVIE_ID), params=params)
