"""Synthetic MovieLens-shaped ratings at any scale, generated inside Spark.

Output: a ``ratings`` frame with :data:`schemas.RATINGS` (``user_id``,
``movie_id``, ``rating``, ``timestamp``) and a ``movies`` frame with
:data:`schemas.MOVIES` (``movie_id``, ``title``, ``year``, ``genres``), the
tables ``jobs/ingest.py`` writes for a real release. There is no input.

What makes it MovieLens-like, and how each property is guaranteed:

- **Exactly** ``ratings`` rows, ``users`` users (ids 1..U, each with at least
  ``min(20, ratings // users)`` ratings, as GroupLens keeps only users with
  20 or more) and a catalogue of ``movies`` movies (ids 1..M; far-tail movies
  may stay unrated, as in a real catalogue).
- **Power-law user activity.** The user of activity rank ``k`` (0 = most
  active) rates ``n_k = T(k + 1) - T(k)`` movies, where ``T`` is the rounded
  cumulative of a capped Pareto curve scaled so that ``T(U) = ratings``.
  The sum telescopes, so the total is exact with no aggregation at all.
- **Power-law movie popularity, no (user, movie) pair twice.** Movies are
  ranked by popularity ``0..M-1``. A user with ``n`` ratings rates the movie
  of rank ``x`` with chance ``h(x) = min(0.9, c * (x + x0) ** -2)``, ``c``
  set (by bisection, in Spark) so that ``h`` adds up to ``n``: light users
  follow the power law, heavy users rate 90% of the head and spill into the
  tail. The user cuts ``[0, M)`` into ``n`` strata of equal chance, shifted
  by a random phase against the integer grid, and draws one movie in each.
  As ``h <= 0.9`` every stratum is over one movie wide, so it holds at
  least one movie, and strata are disjoint, so no movie is drawn twice:
  no ``distinct``, no shuffle. A user rates at most 90% of the catalogue.
- **Planted taste.** ``rating = mu + b_user + b_movie + p_user . q_movie + noise``
  with Gaussian biases, rank-``rank`` Gaussian factors and Gaussian noise,
  rounded to half stars (some users use whole stars only) and clipped to
  0.5..5. The noise and the rounding set the best RMSE any model can reach,
  and the factor part is what ALS can learn beyond a bias baseline.
- **Timestamps** inside each user's active period between the first and
  last ml-25m rating (January 1995 to November 2019), in sessions: a user
  with ``n`` ratings has ``ceil(n / RATINGS_PER_SESSION)`` sessions at random
  times of the period, each rating falls in one of them at random, within
  ``SESSION_SECONDS`` of its start. MovieLens users rate in bursts (one
  user-day per 16 ratings in ml-latest-small, per 40 in ml-100k); spread
  uniformly, nearly every rating would be a user-day of its own, and the
  user-day bias table would be as large as the ratings.

Every random number is a hash (``xxhash64``) of the seed, a stream number
and the row's identity (user, stratum), never a position in a partition, so
a seed gives the same tables whatever the partitioning. The driver holds
only scalars: memory does not grow with the number of ratings, and the work
is one narrow pass (explode per user, broadcast join of the movie table).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import NamedTuple

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.data.releases import HALF_STARS, RatingScale
from movierec_spark.session import default_parallelism
from movierec_spark.settings import SyntheticSettings, parse_section

log = logging.getLogger(__name__)

# The sizes and seed: conf/movierec.toml's [synthetic] (ml-25m's shape), held by movierec_spark.settings.
_SYNTHETIC = SyntheticSettings()

SCALE: RatingScale = HALF_STARS
RELEASE_NAME = "synthetic"

# Largest share of the catalogue one user may rate. Below 1 so that every
# stratum is wider than one movie with room for rounding (see module doc).
MAX_USER_SHARE = 0.9
# Users' extra ratings beyond the minimum follow a Pareto tail with this
# exponent; with the minimum of 20 it gives ml-25m's median of about 71
# ratings per user and mean of 154.
USER_TAIL_EXPONENT = 1.8
# Movie popularity: a user's chance to rate the movie of popularity rank x
# is min(0.9, c * (x + x0) ** -a). The offset x0 is set so that the median
# user rates the most popular movie with this probability; at ml-25m's
# shape the top movie then has ratings from about half of the users, as
# Forrest Gump has in ml-25m, and the top 10% of movies get over 90% of the
# ratings.
MOVIE_POPULARITY_EXPONENT = 2.0
MEDIAN_USER_TOP_MOVIE_CHANCE = 0.5

# The first and last rating timestamps of ml-25m (UTC seconds).
FIRST_TIMESTAMP = 789_652_009
LAST_TIMESTAMP = 1_574_327_703

GENRES = (
    "Drama", "Comedy", "Thriller", "Romance", "Action", "Horror", "Crime",
    "Documentary", "Adventure", "Sci-Fi", "Mystery", "Fantasy", "Children",
    "Animation", "War", "Musical", "Western", "Film-Noir", "IMAX",
)  # fmt: skip

# Rating sessions (see the module docstring): ml-latest-small has 16.4
# ratings per distinct (user, day), ml-100k 39.8.
RATINGS_PER_SESSION = 16
SESSION_SECONDS = 3 * 3600

# Independent random streams: each use of randomness hashes its own number.
_S_USER_BIAS, _S_HALF_STARS, _S_START, _S_SPAN = 1, 2, 3, 4
_S_PICK, _S_NOISE, _S_TIME = 5, 6, 7
_S_SESSION, _S_IN_SESSION = 14, 15
_S_ITEM_BIAS, _S_YEAR, _S_GENRE = 8, 9, 10
_S_USER_FACTOR, _S_ITEM_FACTOR = 1000, 2000  # plus the dimension
_S_USER_PERM, _S_MOVIE_PERM, _S_PHASE = 11, 12, 13

# Internal column names (never in the output).
_SLOT, _RANK, _N, _PHASE, _J = "_slot", "_rank", "_n", "_phase", "_j"
_KNEE, _REACH, _TOTAL = "_knee", "_reach", "_total"
_UBIAS, _IBIAS, _HALF, _START, _SPAN = "_ubias", "_ibias", "_half", "_start", "_span"
_MOVIE_RANK = "_movie_rank"


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate: sizes, seed, and the planted structure.

    Parameters
    ----------
    ratings, users, movies : int
        Exact number of rating rows, of users (all of whom rate), and of
        movies in the catalogue. Defaults: ml-25m's shape.
    seed : int
        Same seed, same tables.
    rank : int
        Rank of the planted taste factors.
    global_mean, user_bias_sd, movie_bias_sd, factor_sd, noise_sd : float
        ``rating = global_mean + b_user + b_movie + p.q + noise`` before
        rounding; ``factor_sd`` is the standard deviation of ``p.q``.
    half_star_share : float
        Share of users who use half stars; the others round to whole stars.
    min_user_ratings : int
        Ratings every user has at least (lowered to ``ratings // users`` when
        there are too few ratings to give everyone this many).
    """

    ratings: int = _SYNTHETIC.ratings
    users: int = _SYNTHETIC.users
    movies: int = _SYNTHETIC.movies
    seed: int = _SYNTHETIC.seed
    rank: int = 10
    global_mean: float = 3.5
    user_bias_sd: float = 0.35
    movie_bias_sd: float = 0.45
    factor_sd: float = 0.6
    noise_sd: float = 0.5
    half_star_share: float = 0.5
    min_user_ratings: int = 20

    @property
    def max_user_ratings(self) -> int:
        """The most ratings one user may have (90% of the catalogue)."""
        return math.floor(MAX_USER_SHARE * self.movies)

    @property
    def min_ratings_per_user(self) -> int:
        return max(1, min(self.min_user_ratings, self.ratings // max(self.users, 1), self.max_user_ratings))

    @property
    def max_ratings(self) -> int:
        """The most ratings that fit ``users`` users and ``movies`` movies."""
        n_min = max(1, min(self.min_user_ratings, self.max_user_ratings))
        extra_cap = self.max_user_ratings - n_min - 1
        return self.users * n_min + max(0, self.users * extra_cap - 1)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class SyntheticData(NamedTuple):
    ratings: DataFrame  # schemas.RATINGS
    movies: DataFrame  # schemas.MOVIES


def validate_spec(spec: SyntheticSpec) -> None:
    """Raise MovieRecError unless ``spec`` can be generated exactly."""
    parse_section("synthetic", {"ratings": spec.ratings, "users": spec.users, "movies": spec.movies, "seed": spec.seed})
    if spec.ratings < spec.users:
        raise MovieRecError(
            f"--ratings ({spec.ratings:,}) must be at least --users ({spec.users:,}): every user rates something"
        )
    if spec.ratings > spec.max_ratings:
        raise MovieRecError(
            f"{spec.ratings:,} ratings do not fit {spec.users:,} users and {spec.movies:,} movies "
            f"(a user rates at most {MAX_USER_SHARE:.0%} of the movies, so at most {spec.max_ratings:,}); "
            "lower --ratings or raise --users or --movies"
        )
    if not 1 <= spec.rank <= 1000:
        raise MovieRecError(f"rank must be between 1 and 1000, got {spec.rank}")
    if not 0.0 <= spec.half_star_share <= 1.0:
        raise MovieRecError(f"half_star_share must be between 0 and 1, got {spec.half_star_share}")
    for name in ("user_bias_sd", "movie_bias_sd", "factor_sd", "noise_sd"):
        value = getattr(spec, name)
        if not (value >= 0.0 and math.isfinite(value)):
            raise MovieRecError(f"{name} must be a finite number 0 or more, got {value}")


# --- user activity: the capped Pareto curve, solved on the driver (scalars) ---


@dataclass(frozen=True)
class ActivityCurve:
    """Extra ratings per user beyond the minimum, as a density over [0, 1].

    ``e(t) = min(cap, scale * (t ** (-1 / alpha) - 1))`` at activity quantile
    ``t`` (0 = most active); its integral ``I`` over [0, 1] times ``users``
    equals ``extra``, the ratings above everyone's minimum.
    """

    users: int
    n_min: int
    extra: int
    cap: float
    scale: float
    alpha: float

    @property
    def beta(self) -> float:
        return 1.0 - 1.0 / self.alpha

    @property
    def knee(self) -> float:
        """Quantile below which users sit at the cap."""
        if self.scale <= 0.0:
            return 0.0
        return (1.0 + self.cap / self.scale) ** (-self.alpha)

    def integral(self, t: float) -> float:
        """``I(t)``: extra ratings per user of the quantiles below ``t``."""
        if self.scale <= 0.0:
            return 0.0
        knee, beta = self.knee, self.beta
        if t <= knee:
            return self.cap * t
        return self.cap * knee + self.scale * ((t**beta - knee**beta) / beta - (t - knee))

    def integral_column(self, t: Column) -> Column:
        """The same integral as a Spark column (``t`` a double column)."""
        if self.scale <= 0.0:
            return F.lit(0.0)
        knee, beta = self.knee, self.beta
        tail = F.lit(self.cap * knee) + F.lit(self.scale) * (
            (F.pow(t, F.lit(beta)) - F.lit(knee**beta)) / F.lit(beta) - (t - F.lit(knee))
        )
        return F.when(t <= F.lit(knee), F.lit(self.cap) * t).otherwise(tail)


def activity_curve(spec: SyntheticSpec, alpha: float = USER_TAIL_EXPONENT) -> ActivityCurve:
    """Solve the Pareto scale so that the users' extra ratings add up exactly."""
    n_min = spec.min_ratings_per_user
    extra = spec.ratings - n_min * spec.users
    # The +1 of rounding must still fit under the per-user maximum.
    cap = float(spec.max_user_ratings - n_min - 1)
    curve = ActivityCurve(spec.users, n_min, extra, max(cap, 0.0), 0.0, alpha)
    if extra == 0:
        return curve
    target = extra / spec.users
    if cap <= 0.0 or target >= cap:
        raise MovieRecError(f"{spec.ratings:,} ratings do not fit; at most {spec.max_ratings:,}")
    lo, hi = math.log(1e-12), math.log(1e15)
    for _ in range(200):  # bisection on log(scale); I(1) grows with the scale
        mid = 0.5 * (lo + hi)
        if ActivityCurve(spec.users, n_min, extra, cap, math.exp(mid), alpha).integral(1.0) < target:
            lo = mid
        else:
            hi = mid
    return ActivityCurve(spec.users, n_min, extra, cap, math.exp(0.5 * (lo + hi)), alpha)


def _cumulative_ratings(curve: ActivityCurve, k: Column) -> Column:
    """``T(k)``: ratings of the ``k`` most active users; ``T(users)`` is exact."""
    users = curve.users
    t = k.cast("double") / F.lit(float(users))
    total_extra = curve.integral(1.0)
    if total_extra > 0.0:
        share = curve.integral_column(t) / F.lit(total_extra)
        extra = F.least(F.round(F.lit(float(curve.extra)) * share).cast("long"), F.lit(curve.extra))
    else:
        extra = F.lit(0).cast("long")
    extra = F.when(k >= F.lit(users), F.lit(curve.extra)).otherwise(extra)
    return F.lit(curve.n_min).cast("long") * k + extra


# --- deterministic randomness from hashes ---


def _hash(seed: int, stream: int, *keys: Column) -> Column:
    return F.xxhash64(F.lit(seed).cast("long"), F.lit(stream).cast("long"), *keys)


def _uniform(seed: int, stream: int, *keys: Column) -> Column:
    """A double in (0, 1) from the top 53 bits of a hash."""
    bits = F.shiftrightunsigned(_hash(seed, stream, *keys), 11).cast("double")
    return (bits + F.lit(0.5)) / F.lit(float(2**53))


def _normal(seed: int, stream: int, *keys: Column) -> Column:
    """A standard normal (Box-Muller on the two 32-bit halves of one hash)."""
    h = _hash(seed, stream, *keys)
    u1 = (F.shiftrightunsigned(h, 32).cast("double") + F.lit(0.5)) / F.lit(float(2**32))
    u2 = (h.bitwiseAND(F.lit(0xFFFFFFFF)).cast("double") + F.lit(0.5)) / F.lit(float(2**32))
    return F.sqrt(F.lit(-2.0) * F.log(u1)) * F.cos(F.lit(2.0 * math.pi) * u2)


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


def _permutation(n: int, seed: int, stream: int) -> tuple[int, int]:
    """Multiplier and offset of a bijection ``x -> (a * x + c) mod n`` on ``[0, n)``.

    ``a`` is a prime near ``0.618 n`` that does not divide ``n``, hence coprime
    with it, so the map is a permutation that scatters neighbours.
    """
    if n <= 2:
        return 1, seed % n
    a = max(3, int(n * 0.6180339887))
    while not (_is_prime(a) and n % a != 0):
        a += 1
    offset = int.from_bytes(f"{seed}:{stream}".encode(), "little") % n
    return a, offset


def _permute(x: Column, n: int, seed: int, stream: int) -> Column:
    a, offset = _permutation(n, seed, stream)
    return (x.cast("long") * F.lit(a) + F.lit(offset)) % F.lit(n)


def _factor_sd(spec: SyntheticSpec) -> float:
    # p.q is a sum of `rank` products of independent N(0, s^2): var = rank * s^4.
    return (spec.factor_sd**2 / spec.rank) ** 0.25


# --- the tables ---


def default_partitions(spark: SparkSession, spec: SyntheticSpec, rows_per_partition: int = 2_000_000) -> int:
    """About two million ratings per partition, and at least one per core."""
    return max(default_parallelism(spark), math.ceil(spec.ratings / rows_per_partition))


def users_frame(spark: SparkSession, spec: SyntheticSpec, partitions: int) -> DataFrame:
    """One row per user: id, rating count, stratum mixing weight, bias, factors, active period."""
    curve = activity_curve(spec)
    seed = spec.seed
    slot = F.col(_SLOT)
    # The activity rank is a permutation of the id, so every partition of
    # users holds a fair mix of heavy and light users.
    rank = _permute(slot, spec.users, seed, _S_USER_PERM)
    s = _factor_sd(spec)
    start = F.lit(FIRST_TIMESTAMP) + (
        _uniform(seed, _S_START, slot) * F.lit(float(LAST_TIMESTAMP - FIRST_TIMESTAMP))
    ).cast("long")
    return (
        spark.range(0, spec.users, numPartitions=partitions)
        .withColumnRenamed("id", _SLOT)
        .withColumn(_RANK, rank)
        .withColumn(_N, (_cumulative_ratings(curve, F.col(_RANK) + 1) - _cumulative_ratings(curve, F.col(_RANK))).cast("int"))
        .transform(lambda users: _with_popularity_curve(users, spec))
        # Shifts the user's strata against the integer grid (see _ratings_from).
        .withColumn(_PHASE, _uniform(seed, _S_PHASE, slot))
        .withColumn(_UBIAS, F.lit(spec.user_bias_sd) * _normal(seed, _S_USER_BIAS, slot))
        .withColumn(_HALF, _uniform(seed, _S_HALF_STARS, slot) < F.lit(spec.half_star_share))
        .withColumn(_START, start)
        # Most users are active for a short while, a few for years.
        .withColumn(
            _SPAN,
            (F.pow(_uniform(seed, _S_SPAN, slot), F.lit(4.0)) * (F.lit(LAST_TIMESTAMP) - F.col(_START))).cast("long"),
        )
        .select(
            _SLOT, _N, _KNEE, _REACH, _TOTAL, _PHASE, _UBIAS, _HALF, _START, _SPAN,
            *[(F.lit(s) * _normal(seed, _S_USER_FACTOR + d, slot)).alias(f"_p{d}") for d in range(spec.rank)],
        )  # fmt: skip
    )


def movie_features(spark: SparkSession, spec: SyntheticSpec) -> DataFrame:
    """One row per movie: popularity rank, id, bias and taste factors."""
    seed = spec.seed
    movie_rank = F.col(_MOVIE_RANK)
    s = _factor_sd(spec)
    parts = max(1, min(default_parallelism(spark), math.ceil(spec.movies / 100_000)))
    return (
        spark.range(0, spec.movies, numPartitions=parts)
        .withColumnRenamed("id", _MOVIE_RANK)
        .select(
            movie_rank,
            (_permute(movie_rank, spec.movies, seed, _S_MOVIE_PERM) + 1).cast("int").alias(C.MOVIE_ID),
            (F.lit(spec.movie_bias_sd) * _normal(seed, _S_ITEM_BIAS, movie_rank)).alias(_IBIAS),
            *[(F.lit(s) * _normal(seed, _S_ITEM_FACTOR + d, movie_rank)).alias(f"_q{d}") for d in range(spec.rank)],
        )
    )


@dataclass(frozen=True)
class PopularityCurve:
    """Unnormalised movie popularity ``(x + x0) ** -a`` over rank ``x`` in ``[0, M]``.

    A user with ``n`` ratings rates movie ``x`` with chance (density)
    ``h(x) = min(cap, reach * (x + x0) ** -a)``, ``reach`` chosen so that
    ``h`` integrates to ``n``. Below the ``knee`` the chance is capped.
    """

    movies: int
    exponent: float
    offset: float
    cap: float = MAX_USER_SHARE

    def power(self, x: Column | float) -> Column:
        """``V(x) = (x + x0) ** (1 - a)``: the integral of the density, up to a factor."""
        base = x + F.lit(self.offset) if isinstance(x, Column) else F.lit(x + self.offset)
        return F.pow(base, F.lit(1.0 - self.exponent))

    def total(self, knee: Column) -> Column:
        """Ratings of a user whose chance is capped exactly below ``knee``."""
        a, cap = self.exponent, self.cap
        reach = F.lit(cap) * F.pow(knee + F.lit(self.offset), F.lit(a))
        return F.lit(cap) * knee + reach * (self.power(float(self.movies)) - self.power(knee)) / F.lit(1.0 - a)

    def edge(self, s: Column, knee: Column, reach: Column) -> Column:
        """The rank ``x`` where a user's cumulative chance ``H(x)`` reaches ``s``."""
        a, cap, x0 = self.exponent, self.cap, self.offset
        base = self.power(knee) + F.lit(1.0 - a) * (s - F.lit(cap) * knee) / reach
        tail = F.pow(F.greatest(base, F.lit(1e-300)), F.lit(1.0 / (1.0 - a))) - F.lit(x0)
        return F.when(s <= F.lit(cap) * knee, s / F.lit(cap)).otherwise(tail)


def popularity_curve(spec: SyntheticSpec) -> PopularityCurve:
    """The movie popularity of ``spec`` (see MEDIAN_USER_TOP_MOVIE_CHANCE)."""
    a = MOVIE_POPULARITY_EXPONENT
    users = activity_curve(spec)
    median_extra = min(users.cap, users.scale * (0.5 ** (-1.0 / users.alpha) - 1.0))
    median_user = users.n_min + median_extra
    # An uncapped user's chance at rank 0 is about n (a - 1) / x0.
    offset = min(spec.movies / 4.0, (a - 1.0) * median_user / MEDIAN_USER_TOP_MOVIE_CHANCE)
    return PopularityCurve(spec.movies, a, max(offset, 1.0))


def _with_popularity_curve(users: DataFrame, spec: SyntheticSpec) -> DataFrame:
    """Add each user's knee, reach and total chance (``H(M)``, about ``n``).

    Users light enough never to hit the cap get ``knee = 0``; for the others
    the knee is found by bisection (64 halvings of ``[0, M]``, inside Spark).
    """
    curve = popularity_curve(spec)
    a, m = curve.exponent, float(spec.movies)
    n = F.col(_N).cast("double")
    uncapped_total = curve.total(F.lit(0.0))

    def halve(acc: Column, _: Column) -> Column:
        mid = (acc["lo"] + acc["hi"]) / 2.0
        below = curve.total(mid) < n
        return F.struct(F.when(below, mid).otherwise(acc["lo"]).alias("lo"), F.when(below, acc["hi"]).otherwise(mid).alias("hi"))

    search = F.aggregate(
        F.sequence(F.lit(1), F.lit(64)), F.struct(F.lit(0.0).alias("lo"), F.lit(m).alias("hi")), halve
    )
    spread = (curve.power(m) - curve.power(0.0)) / F.lit(1.0 - a)
    return (
        users.withColumn(_KNEE, F.when(n <= uncapped_total, F.lit(0.0)).otherwise(search["hi"]))
        .withColumn(
            _REACH,
            F.when(n <= uncapped_total, n / spread).otherwise(
                F.lit(curve.cap) * F.pow(F.col(_KNEE) + F.lit(curve.offset), F.lit(a))
            ),
        )
        .withColumn(
            _TOTAL,
            F.lit(curve.cap) * F.col(_KNEE)
            + F.col(_REACH) * (curve.power(m) - curve.power(F.col(_KNEE))) / F.lit(1.0 - a),
        )
    )


def _stratum_edge(spec: SyntheticSpec, curve: PopularityCurve, t: Column) -> Column:
    """Where a user's stratum boundary at quantile ``t`` falls in ``[0, M]``; exact at both ends."""
    m = float(spec.movies)
    edge = curve.edge(t * F.col(_TOTAL), F.col(_KNEE), F.col(_REACH))
    edge = F.least(F.greatest(edge, F.lit(0.0)), F.lit(m))
    return F.when(t <= F.lit(0.0), F.lit(0.0)).when(t >= F.lit(1.0), F.lit(m)).otherwise(edge)


def _ratings_from(users: DataFrame, movies: DataFrame, spec: SyntheticSpec) -> DataFrame:
    seed = spec.seed
    slot, j, n = F.col(_SLOT), F.col(_J), F.col(_N)
    # Stratum j holds the integers in [edge(j/n) + phase, edge((j+1)/n) + phase):
    # the strata tile 1..M (M stands for movie 0), each holds at least one
    # integer as it is over one wide, and neighbours share the same edge
    # value so no integer is in two. The random phase per user makes a
    # movie's chance of being picked follow the density rather than where
    # the edges happen to fall against the integer grid.
    phase = F.col(_PHASE)
    curve = popularity_curve(spec)
    lo = F.ceil(_stratum_edge(spec, curve, j.cast("double") / n) + phase)
    hi = F.ceil(_stratum_edge(spec, curve, (j + 1).cast("double") / n) + phase)
    pick = (lo + F.floor(_uniform(seed, _S_PICK, slot, j) * (hi - lo).cast("double")).cast("long")) % F.lit(
        spec.movies
    )
    strata = users.select(
        "*", F.explode(F.sequence(F.lit(0), F.col(_N) - 1)).alias(_J)
    ).withColumn(_MOVIE_RANK, pick)

    taste = sum((F.col(f"_p{d}") * F.col(f"_q{d}") for d in range(spec.rank)), F.lit(0.0))
    raw = (
        F.lit(spec.global_mean)
        + F.col(_UBIAS)
        + F.col(_IBIAS)
        + taste
        + F.lit(spec.noise_sd) * _normal(seed, _S_NOISE, slot, j)
    )
    stars = F.when(F.col(_HALF), F.round(raw * 2.0) / 2.0).otherwise(F.round(raw))
    rating = F.least(F.greatest(stars, F.lit(SCALE.low)), F.lit(SCALE.high))
    sessions = F.ceil(n.cast("double") / F.lit(float(RATINGS_PER_SESSION)))
    session = F.floor(_uniform(seed, _S_SESSION, slot, j) * sessions).cast("long")
    session_start = F.col(_START) + (
        _uniform(seed, _S_TIME, slot, session) * (F.col(_SPAN) + 1).cast("double")
    ).cast("long")
    in_session = (_uniform(seed, _S_IN_SESSION, slot, j) * F.lit(float(SESSION_SECONDS))).cast("long")
    timestamp = F.least(session_start + in_session, F.lit(LAST_TIMESTAMP))
    return strata.join(F.broadcast(movies), on=_MOVIE_RANK, how="inner").select(
        (slot + 1).cast("int").alias(C.USER_ID),
        F.col(C.MOVIE_ID).cast("int").alias(C.MOVIE_ID),
        rating.cast("float").alias(C.RATING),
        timestamp.cast("long").alias(C.TIMESTAMP),
    )


def _movies_from(movies: DataFrame, spec: SyntheticSpec) -> DataFrame:
    seed = spec.seed
    movie_rank = F.col(_MOVIE_RANK)
    genre_list = F.array(*[F.lit(g) for g in GENRES])
    n_genres = len(GENRES)

    def genre_at(index: Column) -> Column:
        # coalesce with a literal: a non-null element, as schemas.MOVIES says.
        return F.coalesce(F.element_at(genre_list, index), F.lit(GENRES[0]))

    def random_genre(stream: int) -> Column:
        return genre_at((_uniform(seed, stream, movie_rank) * n_genres).cast("int") + 1)

    # The main genre is the movie's strongest taste dimension, so genres
    # carry some of the planted structure; one or two more are random.
    factors = [F.col(f"_q{d}") for d in range(spec.rank)]
    strongest = F.greatest(*factors) if len(factors) > 1 else factors[0]
    main = genre_at(F.coalesce(*[F.when(f == strongest, F.lit(d % n_genres + 1)) for d, f in enumerate(factors)]))
    extra = _uniform(seed, _S_GENRE, movie_rank)
    genres = F.array_sort(
        F.array_distinct(
            F.when(extra < 0.25, F.array(main, random_genre(_S_GENRE + 1), random_genre(_S_GENRE + 2)))
            .when(extra < 0.6, F.array(main, random_genre(_S_GENRE + 1)))
            .otherwise(F.array(main))
        )
    )
    # Recent years are more common, as in MovieLens.
    year = F.greatest(
        F.lit(1902), F.lit(2019) - F.floor(-F.log(_uniform(seed, _S_YEAR, movie_rank)) * 14.0).cast("int")
    )
    return movies.select(
        F.col(C.MOVIE_ID),
        F.concat(F.lit("Synthetic Movie "), F.col(C.MOVIE_ID).cast("string")).alias(C.TITLE),
        year.cast("int").alias(C.YEAR),
        genres.alias(C.GENRES),
    )


def generate(spark: SparkSession, spec: SyntheticSpec, partitions: int | None = None) -> SyntheticData:
    """The ratings and movies tables of ``spec`` (lazy: nothing runs yet).

    ``partitions`` is the number of ratings partitions (files when written);
    default: :func:`default_partitions`.

    Examples
    --------
    >>> data = generate(spark, SyntheticSpec(ratings=10_000, users=200, movies=500, seed=1))
    >>> data.ratings.count()
    10000
    """
    validate_spec(spec)
    partitions = partitions or default_partitions(spark, spec)
    features = movie_features(spark, spec)
    users = users_frame(spark, spec, partitions)
    log.info(
        "synthetic: %s ratings, %s users, %s movies, seed %s, %d partitions",
        f"{spec.ratings:,}", f"{spec.users:,}", f"{spec.movies:,}", spec.seed, partitions,
    )  # fmt: skip
    return SyntheticData(_ratings_from(users, features, spec), _movies_from(features, spec))
