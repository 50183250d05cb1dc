"""Data-quality and exploration aggregates: one function per question.

Every function takes the loaded tables (``schemas.RATINGS``, ``MOVIES``,
``USERS``, ``REJECTS``) and returns a *small* DataFrame: one row per column,
reason, rating value, genre, year, month, quantile or top-N movie, never one
row per rating. All the work happens in Spark, so the same code runs on
ml-latest-small on a laptop and on ml-32m on a cluster; only these small
results are meant to go to pandas (through Arrow) for plots and tables.
Nothing here calls an action or caches; the job decides what to cache.

Definitions used throughout
---------------------------
* Quantiles (the median too) are exact, Spark's ``percentile``: linear
  interpolation between the two nearest ranks, ``numpy.quantile``'s default.
  Count quantiles come from :func:`count_histogram` (value, frequency), and
  the median rating from ratings' few distinct values, so exactness costs
  nothing even on ml-32m.
* The damped (Bayesian) mean of a movie with ratings ``r_1..r_n`` is
  ``(sum(r) + m * mu) / (n + m)``: the movie starts with ``m`` pseudo-ratings
  at the global mean ``mu`` and its own ratings pull it away as they
  accumulate. With ``m = 10`` a single 5-star rating on ml-latest-small
  (``mu`` about 3.5) gives about 3.64, far below a movie rated 4.3 by 300
  people (about 4.27).
* Long-tail figures count rated movies (movies with at least one rating);
  movies never rated are reported separately by :func:`never_rated_movies`.
* Months and years are calendar periods of the rating timestamp (seconds
  since the epoch) in the session time zone, which ``conf/spark-defaults.conf``
  sets to UTC.

Output schemas (column: type)
-----------------------------
* :func:`nulls_per_column`: table, column: string; rows, nulls: long;
  null_share: double (null when the table is empty). Null or NaN counts as
  missing in float columns.
* :func:`rejects_by_reason`: table, reason: string; rows: long.
* :func:`duplicate_pairs`: user_id, movie_id: int; copies: long;
  min_rating, max_rating: float.
* :func:`never_rated_movies`: the MOVIES columns.
* :func:`rated_but_missing_movies`: movie_id: int; ratings, users: long.
* :func:`support_filter`: entity: string (users, movies, ratings);
  total, removed, kept: long; removed_share: double.
* :func:`rating_distribution`: rating: double; on_scale: boolean;
  ratings: long; share: double.
* :func:`rating_summary`: one row of ratings, users, movies, catalog_movies:
  long; density, mean, stddev, min, median, max: double; first_rated,
  last_rated: timestamp.
* :func:`count_quantiles`: entity: string; count, min: long; p10, p25,
  median, p75, p90, p99: double; max: long; mean: double. It, :func:`top_shares`,
  :func:`lorenz_points` and :func:`gini` take the output of
  :func:`count_histogram` (one or several entities stacked) and give a
  result per entity, users first.
* :func:`count_histogram`: entity: string; per_entity: long (ratings per
  user or movie); entities: long.
* :func:`top_shares`: entity: string; top_share: double; entities,
  ratings: long; rating_share: double.
* :func:`lorenz_points`: entity: string; entity_share, rating_share:
  double, ascending.
* :func:`gini`: one row, entity: string; gini: double.
* :func:`movie_stats` (one row per rated movie, not small), and its top-N
  cuts :func:`most_rated` / :func:`best_rated` (plus rank: int, first):
  movie_id: int; title: string; year: int; ratings: long; mean_rating,
  damped_mean: double.
* :func:`genre_stats`: genre: string; movies, ratings: long; mean_rating:
  double.
* :func:`ratings_by_release_year`: year: int (null: unknown); movies,
  ratings: long; mean_rating: double.
* :func:`ratings_by_period`: period: date (first day of the year or month;
  null: no timestamp); ratings, users: long; mean_rating, stddev_rating:
  double.
* :func:`demographic_breakdown`: group: string; users: long; user_share:
  double; ratings: long; mean_rating: double.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, FloatType

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.data.releases import RatingScale

log = logging.getLogger(__name__)

# Output column names that are not table columns.
ROWS = "rows"
NULLS = "nulls"
NULL_SHARE = "null_share"
COLUMN = "column"
COPIES = "copies"
RATINGS = "ratings"
USERS = "users"
MOVIES = "movies"
ENTITY = "entity"
TOTAL = "total"
REMOVED = "removed"
KEPT = "kept"
REMOVED_SHARE = "removed_share"
ON_SCALE = "on_scale"
SHARE = "share"
MEAN_RATING = "mean_rating"
STDDEV_RATING = "stddev_rating"
DAMPED_MEAN = "damped_mean"
PER_ENTITY = "per_entity"
ENTITIES = "entities"
TOP_SHARE = "top_share"
ENTITY_SHARE = "entity_share"
RATING_SHARE = "rating_share"
GENRE = "genre"
PERIOD = "period"
GROUP = "group"
USER_SHARE = "user_share"
GINI = "gini"

NO_GENRE = "(no genres listed)"
UNKNOWN = "(unknown)"

DEFAULT_QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90, 0.99)
DEFAULT_TOP_SHARES = (0.01, 0.10, 0.20)

# Lower bounds of the age groups ml-1m codes its users in; ml-100k's exact
# ages are binned into the same groups so the two releases read alike.
AGE_GROUPS = ((1, "under 18"), (18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-49"), (50, "50-55"), (56, "56+"))

# Floating tolerance before rounding share * total up (0.07 * 100 is 7.000000000000001).
_EPS = 1e-9


def _running_totals(
    small: DataFrame, order: str, weights: Sequence[str], by: Sequence[str] = (), descending: bool = False
) -> DataFrame:
    """``small`` plus ``cum_<w>`` (running total in ``order``) and ``total_<w>`` per weight.

    Totals run separately within each group of the ``by`` columns. ``small``
    holds each ``order`` value once per group and is already tiny (distinct
    rating values, distinct per-movie counts: hundreds to a few thousand rows
    even on ml-32m). The running total is a self-join on ``order``, which
    keeps the work spread over the cluster; a window without a partition key
    would move it to one partition and make Spark warn about it.
    """
    other = small.select(
        *[F.col(b).alias(f"_by_{b}") for b in by],
        F.col(order).alias("_o"),
        *[F.col(w).alias(f"_o_{w}") for w in weights],
    )
    before = F.col("_o") >= F.col(order) if descending else F.col("_o") <= F.col(order)
    for b in by:
        before = before & (F.col(f"_by_{b}") == F.col(b))
    running = (
        small.join(other, on=before, how="inner")
        .groupBy(*small.columns)
        .agg(*[F.sum(f"_o_{w}").alias(f"cum_{w}") for w in weights])
    )
    totals = small.groupBy(*by).agg(*[F.sum(w).alias(f"total_{w}") for w in weights])
    return running.join(totals, on=list(by), how="inner") if by else running.crossJoin(totals)


def _is_missing(df: DataFrame, name: str) -> Column:
    missing = F.col(name).isNull()
    if isinstance(df.schema[name].dataType, (FloatType, DoubleType)):
        missing = missing | F.isnan(F.col(name))
    return missing


# --- missing and bad data ---


def nulls_per_column(df: DataFrame, table: str) -> DataFrame:
    """Rows and missing values per column of ``df``, in one pass."""
    names = df.columns
    if not names:
        raise MovieRecError(f"table {table!r} has no columns")
    aggs = [F.count(F.lit(1)).alias(ROWS)] + [
        F.sum(F.when(_is_missing(df, name), 1).otherwise(0)).cast("long").alias(f"n{i}")
        for i, name in enumerate(names)
    ]
    wide = df.agg(*aggs)
    long = wide.select(
        F.col(ROWS),
        F.explode(
            F.array(
                *[
                    F.struct(F.lit(name).alias(COLUMN), F.coalesce(F.col(f"n{i}"), F.lit(0)).alias(NULLS))
                    for i, name in enumerate(names)
                ]
            )
        ).alias("c"),
    )
    return long.select(
        F.lit(table).alias(C.TABLE),
        F.col(f"c.{COLUMN}").alias(COLUMN),
        F.col(ROWS),
        F.col(f"c.{NULLS}").alias(NULLS),
        F.when(F.col(ROWS) > 0, F.col(f"c.{NULLS}") / F.col(ROWS)).alias(NULL_SHARE),
    )


def rejects_by_reason(rejects: DataFrame) -> DataFrame:
    """Rows rejected at ingest, per table and reason, most frequent first."""
    return (
        rejects.groupBy(C.TABLE, C.REASON)
        .agg(F.count(F.lit(1)).alias(ROWS))
        .orderBy(F.col(ROWS).desc(), F.col(C.TABLE), F.col(C.REASON))
    )


def duplicate_pairs(ratings: DataFrame) -> DataFrame:
    """(user, movie) pairs rated more than once, with the ratings' range."""
    return (
        ratings.groupBy(C.USER_ID, C.MOVIE_ID)
        .agg(
            F.count(F.lit(1)).alias(COPIES),
            F.min(C.RATING).alias("min_rating"),
            F.max(C.RATING).alias("max_rating"),
        )
        .filter(F.col(COPIES) > 1)
        .orderBy(F.col(COPIES).desc(), F.col(C.USER_ID), F.col(C.MOVIE_ID))
    )


def never_rated_movies(ratings: DataFrame, movies: DataFrame) -> DataFrame:
    """Movies in the catalogue that nobody rated."""
    rated = ratings.select(C.MOVIE_ID).distinct()
    return movies.join(rated, on=C.MOVIE_ID, how="left_anti").orderBy(C.MOVIE_ID)


def rated_but_missing_movies(ratings: DataFrame, movies: DataFrame) -> DataFrame:
    """Movie ids that have ratings but no row in the movies table."""
    return (
        ratings.join(movies.select(C.MOVIE_ID), on=C.MOVIE_ID, how="left_anti")
        .groupBy(C.MOVIE_ID)
        .agg(F.count(F.lit(1)).alias(RATINGS), F.countDistinct(C.USER_ID).alias(USERS))
        .orderBy(F.col(RATINGS).desc(), F.col(C.MOVIE_ID))
    )


def user_counts(ratings: DataFrame) -> DataFrame:
    """Ratings per user: user_id, ratings. One row per user (not small)."""
    return ratings.groupBy(C.USER_ID).agg(F.count(F.lit(1)).alias(RATINGS))


def movie_counts(ratings: DataFrame) -> DataFrame:
    """Ratings and mean rating per movie: movie_id, ratings, rating_sum, mean_rating."""
    return ratings.groupBy(C.MOVIE_ID).agg(
        F.count(F.lit(1)).alias(RATINGS),
        F.sum(C.RATING).cast("double").alias("rating_sum"),
        F.avg(C.RATING).alias(MEAN_RATING),
    )


def support_filter(ratings: DataFrame, min_user_ratings: int, min_movie_ratings: int) -> DataFrame:
    """What dropping users and movies below a minimum number of ratings removes.

    One pass, as a filter before training would do it: a user (movie) is
    below support when it has fewer than ``min_user_ratings``
    (``min_movie_ratings``) ratings in ``ratings``; a rating is removed when
    its user or its movie is below support. (Removing ratings lowers other
    counts, so repeating the filter could remove more; one pass is what the
    thresholds mean here.)
    """
    if min_user_ratings < 0 or min_movie_ratings < 0:
        raise MovieRecError("minimum support thresholds must be 0 or more")
    users = user_counts(ratings).withColumn("user_low", F.col(RATINGS) < min_user_ratings)
    movies = movie_counts(ratings).select(
        C.MOVIE_ID, (F.col(RATINGS) < min_movie_ratings).alias("movie_low")
    )
    flagged = (
        ratings.select(C.USER_ID, C.MOVIE_ID)
        .join(users.select(C.USER_ID, "user_low"), on=C.USER_ID, how="left")
        .join(movies, on=C.MOVIE_ID, how="left")
    )

    user_row = users.agg(
        F.lit(USERS).alias(ENTITY),
        F.count(F.lit(1)).alias(TOTAL),
        F.sum(F.col("user_low").cast("long")).alias(REMOVED),
    )
    movie_row = movies.agg(
        F.lit(MOVIES).alias(ENTITY),
        F.count(F.lit(1)).alias(TOTAL),
        F.sum(F.col("movie_low").cast("long")).alias(REMOVED),
    )
    rating_row = flagged.agg(
        F.lit(RATINGS).alias(ENTITY),
        F.count(F.lit(1)).alias(TOTAL),
        F.sum((F.col("user_low") | F.col("movie_low")).cast("long")).alias(REMOVED),
    )
    rows = user_row.unionByName(movie_row).unionByName(rating_row)
    removed = F.coalesce(F.col(REMOVED), F.lit(0)).cast("long")
    return rows.select(
        F.col(ENTITY),
        F.col(TOTAL).cast("long").alias(TOTAL),
        removed.alias(REMOVED),
        (F.col(TOTAL) - removed).cast("long").alias(KEPT),
        F.when(F.col(TOTAL) > 0, removed / F.col(TOTAL)).alias(REMOVED_SHARE),
    )


# --- ratings ---


def _one_row(df: DataFrame, *columns: Column) -> DataFrame:
    """A one-row DataFrame of literal columns, in ``df``'s session."""
    return df.sparkSession.range(1).select(*columns)


def _literal_column(df: DataFrame, name: str, values: Sequence[float]) -> DataFrame:
    """One double column ``name`` holding ``values``, one per row."""
    return _one_row(df, F.explode(F.array(*[F.lit(float(v)) for v in values])).alias(name))


def _rating_key(column: str = C.RATING) -> Column:
    # Ratings are floats; rounding to 4 places makes 3.5f and 3.5 the same key.
    return F.round(F.col(column).cast("double"), 4)


def _valid_ratings(ratings: DataFrame) -> DataFrame:
    return ratings.filter(F.col(C.RATING).isNotNull() & ~F.isnan(F.col(C.RATING)))


def rating_distribution(ratings: DataFrame, scale: RatingScale) -> DataFrame:
    """Ratings per value of the release's scale, zeros included.

    Values found in the data but not on the scale (a 3.5 in a whole-star
    release) appear too, with ``on_scale`` false. Null and NaN ratings are
    left out here; :func:`nulls_per_column` counts them.
    """
    allowed = _literal_column(ratings, C.RATING, scale.values()).withColumn(ON_SCALE, F.lit(True))
    counts = (
        _valid_ratings(ratings)
        .groupBy(_rating_key().alias(C.RATING))
        .agg(F.count(F.lit(1)).alias(RATINGS))
    )
    joined = allowed.join(counts, on=C.RATING, how="full_outer").select(
        F.col(C.RATING),
        F.coalesce(F.col(ON_SCALE), F.lit(False)).alias(ON_SCALE),
        F.coalesce(F.col(RATINGS), F.lit(0)).cast("long").alias(RATINGS),
    )
    total = joined.agg(F.sum(RATINGS).alias("_total"))
    return (
        joined.crossJoin(total)
        .select(C.RATING, ON_SCALE, RATINGS, F.when(F.col("_total") > 0, F.col(RATINGS) / F.col("_total")).alias(SHARE))
        .orderBy(C.RATING)
    )


def rating_summary(ratings: DataFrame, movies: DataFrame | None = None) -> DataFrame:
    """One row of headline figures about the ratings.

    ``density`` is ratings / (users x rated movies), the filled share of the
    user-movie matrix ALS factorises (duplicate pairs, if any, count twice;
    :func:`duplicate_pairs` lists them). ``median`` is exact (see the module
    docstring); ``stddev`` is the sample standard deviation.
    """
    valid = _valid_ratings(ratings).select(F.col(C.RATING).cast("double").alias(C.RATING))
    stats = ratings.agg(
        F.count(F.lit(1)).alias(RATINGS),
        F.countDistinct(C.USER_ID).alias(USERS),
        F.countDistinct(C.MOVIE_ID).alias(MOVIES),
        F.timestamp_seconds(F.min(C.TIMESTAMP)).alias("first_rated"),
        F.timestamp_seconds(F.max(C.TIMESTAMP)).alias("last_rated"),
    )
    moments = valid.agg(
        F.avg(C.RATING).alias("mean"),
        F.stddev_samp(C.RATING).alias("stddev"),
        F.min(C.RATING).alias("min"),
        F.percentile(C.RATING, 0.5).alias("median"),
        F.max(C.RATING).alias("max"),
    )
    if movies is not None:
        catalog = movies.agg(F.countDistinct(C.MOVIE_ID).alias("catalog_movies"))
    else:
        catalog = _one_row(ratings, F.lit(None).cast("long").alias("catalog_movies"))
    row = stats.crossJoin(moments).crossJoin(catalog)
    cells = F.col(USERS).cast("double") * F.col(MOVIES).cast("double")
    return row.select(
        F.col(RATINGS),
        F.col(USERS),
        F.col(MOVIES),
        F.col("catalog_movies"),
        F.when(cells > 0, F.col(RATINGS) / cells).alias("density"),
        "mean",
        "stddev",
        "min",
        "median",
        "max",
        "first_rated",
        "last_rated",
    )


def _quantile_name(q: float) -> str:
    if q == 0.5:
        return "median"
    return "p" + f"{q * 100:g}".replace(".", "_")


def count_histogram(counts: DataFrame, entity: str) -> DataFrame:
    """How many users (movies) have each number of ratings.

    ``counts`` is :func:`user_counts` or :func:`movie_counts`; ``entity``
    labels the rows ("users", "movies"), so histograms of both can be stacked
    with ``unionByName`` and every function below handles each entity
    separately. One row per distinct count keeps it small on any release; it
    is what quantiles, top shares and Lorenz curves are computed from, so a
    job can cache it once.
    """
    return (
        counts.groupBy(F.col(RATINGS).cast("long").alias(PER_ENTITY))
        .agg(F.count(F.lit(1)).alias(ENTITIES))
        .select(F.lit(entity).alias(ENTITY), PER_ENTITY, ENTITIES)
        .orderBy(PER_ENTITY)
    )


def count_quantiles(hist: DataFrame, probs: Sequence[float] = DEFAULT_QUANTILES) -> DataFrame:
    """Per entity of :func:`count_histogram`: exact quantiles of ratings each, count, min, max, mean."""
    names = [_quantile_name(q) for q in probs]
    if len(set(names)) != len(names):
        raise MovieRecError(f"quantiles {list(probs)} repeat a value")
    for q in probs:
        if not 0.0 <= q <= 1.0:
            raise MovieRecError(f"quantile {q} is outside [0, 1]")
    quantiles = F.percentile(F.col(PER_ENTITY), [float(q) for q in probs], F.col(ENTITIES))
    stats = hist.groupBy(ENTITY).agg(
        F.sum(ENTITIES).alias("count"),
        F.min(PER_ENTITY).alias("min"),
        quantiles.alias("_q"),
        F.max(PER_ENTITY).alias("max"),
        (F.sum(F.col(PER_ENTITY) * F.col(ENTITIES)) / F.sum(ENTITIES)).alias("mean"),
    )
    return stats.select(
        ENTITY,
        "count",
        "min",
        *[F.col("_q")[i].alias(name) for i, name in enumerate(names)],
        "max",
        "mean",
    ).orderBy(F.col(ENTITY).desc())


# --- long tail ---


def _cumulative_histogram(hist: DataFrame, descending: bool) -> DataFrame:
    """Histogram rows plus their ratings and running totals of entities and ratings."""
    with_ratings = hist.withColumn(RATINGS, F.col(PER_ENTITY) * F.col(ENTITIES))
    return _running_totals(with_ratings, PER_ENTITY, [ENTITIES, RATINGS], by=[ENTITY], descending=descending)


def top_shares(hist: DataFrame, shares: Sequence[float] = DEFAULT_TOP_SHARES) -> DataFrame:
    """Share of all ratings that go to the top ``share`` of users (movies).

    The top ``share`` is the ``ceil(share * n)`` most-rated entities (at least
    one); entities tied on their count are interchangeable, so the figure is
    exact whatever the tie-break.
    """
    for p in shares:
        if not 0.0 < p <= 1.0:
            raise MovieRecError(f"top share {p} must be in (0, 1]")
    cum = _cumulative_histogram(hist, descending=True)
    wanted = _literal_column(hist, TOP_SHARE, shares)
    k = F.greatest(F.lit(1), F.ceil(F.col(TOP_SHARE) * F.col("total_entities") - F.lit(_EPS))).cast("long")
    before_entities = F.col("cum_entities") - F.col(ENTITIES)
    before_ratings = F.col("cum_ratings") - F.col(RATINGS)
    top_ratings = before_ratings + (F.col("_k") - before_entities) * F.col(PER_ENTITY)
    return (
        cum.crossJoin(wanted)
        .withColumn("_k", k)
        .filter((before_entities < F.col("_k")) & (F.col("_k") <= F.col("cum_entities")))
        .select(
            ENTITY,
            TOP_SHARE,
            F.col("_k").alias(ENTITIES),
            top_ratings.cast("long").alias(RATINGS),
            (top_ratings / F.col("total_ratings")).alias(RATING_SHARE),
        )
        .orderBy(F.col(ENTITY).desc(), TOP_SHARE)
    )


def lorenz_points(hist: DataFrame) -> DataFrame:
    """Points of the Lorenz curve of ratings over users (movies).

    Entities sorted from least to most rated; each point is (share of
    entities so far, share of ratings they hold), starting at (0, 0) and
    ending at (1, 1). Between points the curve is a straight line (entities
    in one segment have equal counts), so these points draw it exactly.
    """
    cum = _cumulative_histogram(hist, descending=False)
    points = cum.select(
        ENTITY,
        (F.col("cum_entities") / F.col("total_entities")).alias(ENTITY_SHARE),
        (F.col("cum_ratings") / F.col("total_ratings")).alias(RATING_SHARE),
    )
    # An origin for each entity that has points: an empty input gives no curve.
    origin = hist.select(ENTITY).distinct().select(
        ENTITY, F.lit(0.0).alias(ENTITY_SHARE), F.lit(0.0).alias(RATING_SHARE)
    )
    return origin.unionByName(points).orderBy(F.col(ENTITY).desc(), ENTITY_SHARE)


def gini(hist: DataFrame) -> DataFrame:
    """Gini coefficient of ratings over users (movies): 0 equal, near 1 concentrated.

    One minus twice the area under the Lorenz curve, computed exactly by the
    trapezoid rule on :func:`lorenz_points` (the curve is piecewise linear).
    """
    cum = _cumulative_histogram(hist, descending=False)
    # One segment per histogram row: from the point before it to its own.
    width = F.col(ENTITIES) / F.col("total_entities")
    height_sum = (2 * F.col("cum_ratings") - F.col(RATINGS)) / F.col("total_ratings")
    return (
        cum.groupBy(ENTITY)
        .agg((F.lit(1.0) - F.sum(width * height_sum)).alias(GINI))
        .orderBy(F.col(ENTITY).desc())
    )


# --- movies ---


def movie_stats(ratings: DataFrame, movies: DataFrame, damping: float) -> DataFrame:
    """One row per rated movie: movie_id, title, year, ratings, mean_rating, damped_mean.

    ``damped_mean`` shrinks the movie's mean towards the global mean by
    ``damping`` pseudo-ratings (see the module docstring). Movies missing
    from ``movies`` keep their figures with a null title. Not small: feed it
    to :func:`most_rated` / :func:`best_rated`.
    """
    if not damping >= 0.0 or math.isinf(damping):
        raise MovieRecError(f"damping must be a finite number 0 or more, got {damping}")
    valid = _valid_ratings(ratings)
    global_mean = valid.agg(F.avg(C.RATING).alias("_mu"))
    per_movie = movie_counts(valid).crossJoin(global_mean)
    damped = (F.col("rating_sum") + F.lit(float(damping)) * F.col("_mu")) / (
        F.col(RATINGS) + F.lit(float(damping))
    )
    return per_movie.join(movies.select(C.MOVIE_ID, C.TITLE, C.YEAR), on=C.MOVIE_ID, how="left").select(
        C.MOVIE_ID,
        C.TITLE,
        C.YEAR,
        F.col(RATINGS).cast("long").alias(RATINGS),
        MEAN_RATING,
        damped.alias(DAMPED_MEAN),
    )


def _ranked(stats: DataFrame, n: int, score: str) -> DataFrame:
    """The ``n`` rows of highest ``score`` (ties: lower movie id first), ranked from 1."""
    if n < 1:
        raise MovieRecError(f"top-N size must be 1 or more, got {n}")
    top = stats.orderBy(F.col(score).desc(), F.col(C.MOVIE_ID).asc()).limit(n)
    # rank = 1 + rows ahead of this one; a self-join of the n survivors.
    ahead = top.select(F.col(score).alias("_s"), F.col(C.MOVIE_ID).alias("_m"))
    is_ahead = (F.col("_s") > F.col(score)) | ((F.col("_s") == F.col(score)) & (F.col("_m") < F.col(C.MOVIE_ID)))
    ranked = (
        top.join(ahead, on=is_ahead, how="left")
        .groupBy(*stats.columns)
        .agg((F.count("_m") + 1).cast("int").alias(C.RANK))
    )
    return ranked.select(C.RANK, *stats.columns).orderBy(C.RANK)


def most_rated(stats: DataFrame, n: int) -> DataFrame:
    """The ``n`` movies with most ratings (ties: lower movie id first)."""
    return _ranked(stats, n, RATINGS)


def best_rated(stats: DataFrame, n: int, min_ratings: int = 1) -> DataFrame:
    """The ``n`` movies with the highest damped mean (ties: lower movie id first).

    ``min_ratings`` optionally drops movies with fewer ratings first; the
    damping alone already keeps one-rating movies off the top.
    """
    eligible = stats.filter(F.col(RATINGS) >= min_ratings)
    return _ranked(eligible, n, DAMPED_MEAN)


def genre_stats(ratings: DataFrame, movies: DataFrame) -> DataFrame:
    """Per genre of the catalogue: movies, ratings and mean rating.

    A movie counts once in each of its genres; one without genres (null or
    empty list) counts under "(no genres listed)". ``movies`` counts every
    movie in the catalogue, rated or not; ratings of movies missing from the
    catalogue have no genre and are left out (see
    :func:`rated_but_missing_movies`). The mean is over ratings, so popular
    movies weigh more.
    """
    per_movie = movie_counts(_valid_ratings(ratings))
    exploded = movies.select(
        C.MOVIE_ID, F.explode_outer(C.GENRES).alias(GENRE)
    ).withColumn(GENRE, F.coalesce(F.col(GENRE), F.lit(NO_GENRE)))
    joined = exploded.join(per_movie, on=C.MOVIE_ID, how="left")
    n_ratings = F.coalesce(F.sum(RATINGS), F.lit(0)).cast("long")
    return (
        joined.groupBy(GENRE)
        .agg(
            F.countDistinct(C.MOVIE_ID).alias(MOVIES),
            n_ratings.alias(RATINGS),
            (F.sum("rating_sum") / F.sum(RATINGS)).alias(MEAN_RATING),
        )
        .orderBy(F.col(RATINGS).desc(), F.col(GENRE))
    )


def ratings_by_release_year(ratings: DataFrame, movies: DataFrame) -> DataFrame:
    """Rated movies, ratings and mean rating per release year (null: unknown)."""
    per_movie = movie_counts(_valid_ratings(ratings))
    joined = per_movie.join(movies.select(C.MOVIE_ID, C.YEAR), on=C.MOVIE_ID, how="left")
    return (
        joined.groupBy(C.YEAR)
        .agg(
            F.count(F.lit(1)).alias(MOVIES),
            F.sum(RATINGS).cast("long").alias(RATINGS),
            (F.sum("rating_sum") / F.sum(RATINGS)).alias(MEAN_RATING),
        )
        .orderBy(F.col(C.YEAR).asc_nulls_first())
    )


# --- time ---

PERIODS = ("year", "month")


def ratings_by_period(ratings: DataFrame, unit: str = "month") -> DataFrame:
    """Ratings, active users and mean rating per calendar year or month.

    ``period`` is the first day of the year or month; ratings without a
    timestamp fall in one row with a null period.
    """
    if unit not in PERIODS:
        raise MovieRecError(f"period must be one of {', '.join(PERIODS)}, got {unit!r}")
    day = F.to_date(F.timestamp_seconds(F.col(C.TIMESTAMP)))
    return (
        _valid_ratings(ratings)
        .groupBy(F.trunc(day, unit).alias(PERIOD))
        .agg(
            F.count(F.lit(1)).alias(RATINGS),
            F.countDistinct(C.USER_ID).alias(USERS),
            F.avg(C.RATING).alias(MEAN_RATING),
            F.stddev_samp(C.RATING).alias(STDDEV_RATING),
        )
        .orderBy(F.col(PERIOD).asc_nulls_first())
    )


# --- users ---

DEMOGRAPHICS = (C.GENDER, C.AGE, C.OCCUPATION)


def _age_group() -> tuple[Column, Column]:
    """(label, sort key) of the age group a user's age falls in."""
    label = F.lit(UNKNOWN)
    key = F.lit(len(AGE_GROUPS))
    for i, (low, name) in enumerate(AGE_GROUPS):
        hit = F.col(C.AGE) >= low
        label = F.when(hit, F.lit(name)).otherwise(label)
        key = F.when(hit, F.lit(i)).otherwise(key)
    # Ages below the first bound (0, negative) are not ages.
    below = F.col(C.AGE).isNull() | (F.col(C.AGE) < AGE_GROUPS[0][0])
    return F.when(below, F.lit(UNKNOWN)).otherwise(label), F.when(below, F.lit(len(AGE_GROUPS))).otherwise(key)


def demographic_breakdown(users: DataFrame, ratings: DataFrame, column: str) -> DataFrame:
    """Users, their ratings and mean rating per gender, age group or occupation.

    Ages are binned into ml-1m's groups (under 18, 18-24, ..., 56+), which
    also fit ml-100k's exact ages; missing values form an "(unknown)" group.
    Users without ratings count as users with 0 ratings. Age groups come out
    youngest first; other breakdowns largest first.
    """
    if column not in DEMOGRAPHICS:
        raise MovieRecError(f"demographic column must be one of {', '.join(DEMOGRAPHICS)}, got {column!r}")
    per_user = _valid_ratings(ratings).groupBy(C.USER_ID).agg(
        F.count(F.lit(1)).alias(RATINGS), F.sum(C.RATING).cast("double").alias("rating_sum")
    )
    if column == C.AGE:
        label, key = _age_group()
    else:
        label = F.coalesce(F.col(column).cast("string"), F.lit(UNKNOWN))
        key = F.lit(0)
    grouped = (
        users.select(C.USER_ID, label.alias(GROUP), key.alias("_key"))
        .join(per_user, on=C.USER_ID, how="left")
        .groupBy(GROUP, "_key")
        .agg(
            F.count(F.lit(1)).alias(USERS),
            F.coalesce(F.sum(RATINGS), F.lit(0)).cast("long").alias(RATINGS),
            (F.sum("rating_sum") / F.sum(RATINGS)).alias(MEAN_RATING),
        )
    )
    total_users = grouped.agg(F.sum(USERS).alias("_total"))
    order = [F.col("_key")] if column == C.AGE else [F.col(USERS).desc(), F.col(GROUP)]
    return (
        grouped.crossJoin(total_users)
        .withColumn(USER_SHARE, F.col(USERS) / F.col("_total"))
        .orderBy(*order)
        .select(GROUP, USERS, USER_SHARE, RATINGS, MEAN_RATING)
    )
