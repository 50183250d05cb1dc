"""Train/test splits of a ratings table.

Input: ratings with at least ``user_id``, ``movie_id``, ``rating`` (and
``timestamp`` for the chronological split). Output: a :class:`Split` whose
``train`` and ``test`` frames keep the input's columns and together hold
every input row exactly once.

Methods
-------
``random`` (the default)
    ``DataFrame.randomSplit``'s rows with a seed, made deterministic. The
    input is first hash-partitioned on (user, movie) into a fixed number of
    partitions (``partitions``, 16 by default). Spark's randomSplit sorts
    each partition before it samples it with a generator seeded by the seed
    and the partition's index, so a row's half depends on which partition
    holds it and on the other rows there; :func:`random_split` makes the
    same draws in one sorted pass and persists the rows with their half.
    Hash partitioning fixes both from the rows alone: a re-evaluated split (a lost executor, an
    evicted cached block, a retried task), another cluster or another file
    layout gives the same halves, and no row can be in both or in neither.
    Same rows, seed and ``partitions``: same split.
``hash``
    Each row goes to test when a seeded hash of (seed, user, movie) falls in
    the first ``test_fraction`` of the hash's range: decided per row, from
    the row alone, with no shuffle and no persist. Deterministic whatever
    the partitioning; a different seed gives an independent choice. Its
    test share is ``test_fraction`` up to sampling noise, as with
    ``random``.
``stratified``
    Per user: the same fraction of each user's ratings goes to test
    (``round(n * fraction)``, at least one rating kept in train). Which
    ratings is decided by a seeded hash of (user, movie), so the result does
    not depend on partitioning and needs no persist.
``chronological``
    Per user: the user's latest ratings go to test (ties in time broken by
    movie id), the same count as ``stratified``.
``predefined``
    Train and test given as two ratings tables (ml-100k's ``u1.base`` /
    ``u1.test`` ...); see :func:`predefined_split`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from movierec_spark import MovieRecError
from movierec_spark import columns as C

log = logging.getLogger(__name__)

RANDOM = "random"
HASH = "hash"
STRATIFIED = "stratified"
CHRONOLOGICAL = "chronological"
PREDEFINED = "predefined"
METHODS = (RANDOM, HASH, STRATIFIED, CHRONOLOGICAL, PREDEFINED)

# Partitions the random split samples; part of what fixes its result.
SPLIT_PARTITIONS = 16

# Resolution of the hash split: fractions are honoured to 1e-6.
_HASH_BUCKETS = 1_000_000

_N = "_n_user"
_POS = "_pos_in_user"
_IN_TEST = "_in_test"


@dataclass
class Split:
    """Training and test ratings plus how they were made."""

    train: DataFrame
    test: DataFrame
    method: str
    test_fraction: float | None = None
    seed: int | None = None
    # The persisted input both halves are drawn from (random split only).
    pinned: DataFrame | None = None

    def describe(self) -> dict:
        return {"method": self.method, "test_fraction": self.test_fraction, "seed": self.seed}

    def release(self) -> None:
        """Unpersist the pinned input; call once ``train`` and ``test`` are cached or written."""
        if self.pinned is not None:
            self.pinned.unpersist()
            self.pinned = None


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise MovieRecError(f"test fraction must be between 0 and 1 (exclusive), got {test_fraction}")


def hash_bucket(seed: int):
    """A row's bucket in ``[0, _HASH_BUCKETS)`` from a seeded hash of (user, movie).

    Only the row's own ids and the seed go in, so the bucket is the same on
    every evaluation, partition and executor.
    """
    return F.pmod(F.xxhash64(F.lit(seed), F.col(C.USER_ID), F.col(C.MOVIE_ID)), F.lit(_HASH_BUCKETS))


def random_split(
    ratings: DataFrame, test_fraction: float, seed: int, partitions: int = SPLIT_PARTITIONS
) -> Split:
    """Seeded ``DataFrame.randomSplit``: about ``test_fraction`` of the rows go to test.

    Deterministic (see the module docstring): the input is hash-partitioned
    on (user_id, movie_id) into ``partitions`` partitions, each partition is
    sorted and every row draws its half, and that is persisted (memory,
    spilling to disk) before train and test are filtered from it.
    :meth:`Split.release` frees it.

    The rows are exactly those of ``randomSplit([1 - f, f], seed)`` on the
    hash-partitioned input (tests/test_split.py compares them), in one pass
    instead of two: randomSplit sorts each partition once per half and
    samples it with a generator seeded by ``seed`` plus the partition's
    index, one draw per row in sorted order, keeping the draws in
    ``[lower, upper)`` of the half's share; ``rand(seed)`` over the same
    sorted partitions makes the same draws (the timings: bench/NOTES.md).

    Examples
    --------
    >>> split = random_split(ratings, 0.2, seed=42)        # doctest: +SKIP
    >>> split.train.count() + split.test.count() == ratings.count()  # doctest: +SKIP
    True
    """
    _check_fraction(test_fraction)
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise MovieRecError(f"[split] partitions must be a whole number of 1 or more, got {partitions!r}")
    # randomSplit's bounds: the weights over their sum, added up (the same
    # floating-point steps, so the same bounds).
    weights = [1.0 - test_fraction, test_fraction]
    total = sum(weights)
    train_upper = weights[0] / total
    test_upper = train_upper + weights[1] / total
    # randomSplit sorts by every column whose type can be ordered, ascending
    # (nulls first), before drawing; a ratings table's columns all can.
    order = [F.col(f.name).asc() for f in ratings.schema.fields if not isinstance(f.dataType, T.MapType)]
    draw = F.rand(seed)
    # Null: the draw fell in neither half (randomSplit's bounds can end a
    # rounding step short of 1), as with randomSplit.
    in_test = F.when(draw < F.lit(train_upper), F.lit(False)).when(draw < F.lit(test_upper), F.lit(True))
    pinned = (
        ratings.repartition(partitions, C.USER_ID, C.MOVIE_ID)
        .sortWithinPartitions(*order)
        .withColumn(_IN_TEST, in_test)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    columns = ratings.columns
    train = pinned.where(~F.col(_IN_TEST)).select(*columns)
    test = pinned.where(F.col(_IN_TEST)).select(*columns)
    return Split(train, test, RANDOM, test_fraction, seed, pinned)


def hash_split(ratings: DataFrame, test_fraction: float, seed: int) -> Split:
    """Seeded hash split: a row is in test when its :func:`hash_bucket` is below ``test_fraction``."""
    _check_fraction(test_fraction)
    in_test = hash_bucket(seed) < F.lit(int(round(test_fraction * _HASH_BUCKETS)))
    return Split(ratings.where(~in_test), ratings.where(in_test), HASH, test_fraction, seed)


def _seeded_order(seed: int):
    """A pseudo-random but reproducible order of a user's ratings."""
    return F.xxhash64(F.lit(seed), F.col(C.USER_ID), F.col(C.MOVIE_ID))


def _per_user_split(ratings: DataFrame, test_fraction: float, order: list) -> tuple[DataFrame, DataFrame]:
    """Rows ranked first by ``order`` within each user go to test."""
    by_user = Window.partitionBy(C.USER_ID)
    ranked = (
        ratings.withColumn(_N, F.count(F.lit(1)).over(by_user))
        .withColumn(_POS, F.row_number().over(Window.partitionBy(C.USER_ID).orderBy(*order)))
    )
    # round half up; a user's last rating always stays in train so the user
    # is known to the model.
    n_test = F.least(F.floor(F.col(_N) * F.lit(test_fraction) + F.lit(0.5)), F.col(_N) - F.lit(1))
    is_test = F.col(_POS) <= n_test
    columns = ratings.columns
    return ranked.filter(~is_test).select(*columns), ranked.filter(is_test).select(*columns)


def stratified_split(ratings: DataFrame, test_fraction: float, seed: int) -> Split:
    """Each user keeps ``test_fraction`` of their ratings in test (seeded choice)."""
    _check_fraction(test_fraction)
    order = [_seeded_order(seed), F.col(C.MOVIE_ID)]
    train, test = _per_user_split(ratings, test_fraction, order)
    return Split(train, test, STRATIFIED, test_fraction, seed)


def chronological_split(ratings: DataFrame, test_fraction: float) -> Split:
    """Each user's latest ``test_fraction`` of ratings go to test."""
    _check_fraction(test_fraction)
    if C.TIMESTAMP not in ratings.columns:
        raise MovieRecError("a chronological split needs a timestamp column; use --split random or hash")
    order = [F.col(C.TIMESTAMP).desc_nulls_last(), F.col(C.MOVIE_ID).desc()]
    train, test = _per_user_split(ratings, test_fraction, order)
    return Split(train, test, CHRONOLOGICAL, test_fraction, None)


def predefined_split(train: DataFrame, test: DataFrame) -> Split:
    """Train and test read from the release's own split files."""
    return Split(train, test, PREDEFINED, None, None)


def split_ratings(
    ratings: DataFrame, method: str, test_fraction: float, seed: int, partitions: int = SPLIT_PARTITIONS
) -> Split:
    """Dispatch on ``method`` (one of random, hash, stratified, chronological)."""
    if method == RANDOM:
        return random_split(ratings, test_fraction, seed, partitions)
    if method == HASH:
        return hash_split(ratings, test_fraction, seed)
    if method == STRATIFIED:
        return stratified_split(ratings, test_fraction, seed)
    if method == CHRONOLOGICAL:
        return chronological_split(ratings, test_fraction)
    if method == PREDEFINED:
        raise MovieRecError("--split predefined needs --train-ratings PATH and --test-ratings PATH")
    raise MovieRecError(f"unknown split method {method!r}; choose one of {', '.join(METHODS)}")
