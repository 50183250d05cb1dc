"""Splits: every row exactly once, per-user fractions, latest-in-test, determinism."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from movierec_spark import MovieRecError
from movierec_spark.evaluation.split import (
    chronological_split,
    random_split,
    split_ratings,
    stratified_split,
)

SCHEMA = "user_id int, movie_id int, rating float, timestamp long"


def _ratings(spark, per_user=(1, 2, 4, 10, 13)):
    """User u has per_user[u-1] ratings; timestamps are shuffled, two of them tied."""
    rows = []
    for user, n in enumerate(per_user, start=1):
        for i in range(n):
            movie = 100 + (i * 7) % 97
            timestamp = 1000 + ((i * 5) % n) if n > 3 else 1000 + i
            rows.append((user, movie, float(1 + i % 5), timestamp))
    # Shuffled across several partitions, as after a real read.
    return spark.createDataFrame(rows, SCHEMA).repartition(3)


def _keys(df):
    return sorted((r.user_id, r.movie_id) for r in df.select("user_id", "movie_id").collect())


def _assert_partition(ratings, split):
    train, test = _keys(split.train), _keys(split.test)
    assert sorted(train + test) == _keys(ratings)
    assert not set(train) & set(test)


def test_random_split_is_a_partition_and_repeatable(spark):
    ratings = _ratings(spark)
    first = random_split(ratings, 0.3, seed=7)
    assert first.method == "random" and first.pinned.is_cached
    _assert_partition(ratings, first)
    second = random_split(_ratings(spark), 0.3, seed=7)
    assert _keys(first.test) == _keys(second.test)
    assert _keys(random_split(_ratings(spark), 0.3, seed=8).test) != _keys(first.test)
    first.release()
    assert first.pinned is None


def _many(spark, n=4000):
    """n distinct (user, movie) rows, 40 users."""
    return (
        spark.range(n)
        .select((F.col("id") % 40 + 1).cast("int").alias("user_id"), (F.col("id") + 1).cast("int").alias("movie_id"))
        .withColumn("rating", F.lit(3.0).cast("float"))
        .withColumn("timestamp", F.lit(0).cast("long"))
    )


def _reshuffled(df, partitions):
    """``df`` in a new partitioning on every evaluation (as after a lost
    executor recomputes it): hash-partitioned on a Python random number,
    drawn afresh each time (rand() would reuse its seed)."""
    noise = F.udf(lambda _: random.random(), "double").asNondeterministic()
    return df.withColumn("_noise", noise(F.col("movie_id"))).repartition(partitions, "_noise").drop("_noise")


@pytest.mark.parametrize("method", ["random", "hash"])
def test_random_splits_do_not_depend_on_partitioning_or_recomputation(spark, method):
    """What a lost executor does to a split: the input recomputed, in another
    partitioning and row order. Both seeded splits give the same rows; with
    the random split's pinned input released, train and test are evaluated
    separately, each from a differently shuffled input, and still neither
    duplicate nor lose a row."""
    base = _many(spark)
    test_sets = []
    for partitions in (1, 3, 7):
        shuffled = _reshuffled(base, partitions)
        split = split_ratings(shuffled, method, 0.25, 11)
        split.release()
        train, test = _keys(split.train), _keys(split.test)
        assert len(train) + len(test) == 4000 and len(set(train) | set(test)) == 4000, partitions
        test_sets.append(test)
    assert test_sets[0] == test_sets[1] == test_sets[2]
    # A binomial(4000, 0.25) share: sd 27 rows; 5 sd of slack.
    assert abs(len(test_sets[0]) - 1000) < 140, len(test_sets[0])


def test_plain_randomsplit_of_a_reshuffled_input_is_not_a_partition(spark):
    """Why the random split hash-partitions its input: DataFrame.randomSplit
    alone, on an input whose partitions change between evaluations, puts
    rows in both halves or in neither."""
    noisy = _reshuffled(_many(spark), 4)
    train, test = noisy.randomSplit([0.75, 0.25], seed=11)
    keys = _keys(train) + _keys(test)
    assert len(keys) != 4000 or len(set(keys)) != 4000


def _randomsplit_reference(ratings, fraction, seed, partitions):
    """DataFrame.randomSplit itself on the same hash-partitioned, persisted input."""
    pinned = ratings.repartition(partitions, "user_id", "movie_id").persist()
    return pinned.randomSplit([1.0 - fraction, fraction], seed=seed)


@pytest.mark.parametrize(("fraction", "seed", "partitions"), [(0.25, 11, 16), (0.2, 42, 3), (0.7, 5, 1)])
def test_random_split_takes_the_rows_randomsplit_takes(spark, fraction, seed, partitions):
    """One sorted pass draws the same rows as randomSplit's two: ties in
    (user, movie), null timestamps and repeated rows included, so the sort
    order's every column and its nulls-first matter."""
    base = _many(spark, 3000).withColumn(
        "timestamp", F.when(F.col("movie_id") % 7 == 0, F.lit(None)).otherwise(F.col("movie_id") % 13).cast("long")
    ).withColumn("rating", (F.col("movie_id") % 5 + 1).cast("float"))
    # Repeated (user, movie) pairs with another rating, with the same rating
    # and another (or no) timestamp, and exact repeats.
    ratings = base.unionByName(base.where(F.col("movie_id") % 3 == 0).withColumn("rating", F.lit(0.5).cast("float")))
    ratings = ratings.unionByName(
        base.where(F.col("movie_id") % 2 == 1).withColumn(
            "timestamp", F.when(F.col("movie_id") % 4 == 1, F.lit(None)).otherwise(F.lit(99)).cast("long")
        )
    )
    ratings = ratings.unionByName(base.where(F.col("movie_id") % 11 == 0))
    want_train, want_test = _randomsplit_reference(ratings, fraction, seed, partitions)
    split = random_split(ratings, fraction, seed, partitions=partitions)
    for got, want in ((split.train, want_train), (split.test, want_test)):
        assertDataFrameEqual(got, want)
    assert split.train.columns == ratings.columns


def test_random_split_partitions_are_part_of_its_definition(spark):
    ratings = _many(spark, 400)
    eight = _keys(random_split(ratings, 0.5, 1, partitions=8).test)
    assert _keys(random_split(ratings, 0.5, 1, partitions=8).test) == eight
    assert _keys(random_split(ratings, 0.5, 1, partitions=3).test) != eight
    with pytest.raises(MovieRecError, match="partitions must be a whole number"):
        random_split(ratings, 0.5, 1, partitions=0)


def test_stratified_split_gives_each_user_the_same_fraction(spark):
    per_user = (1, 2, 4, 10, 13)
    ratings = _ratings(spark, per_user)
    split = stratified_split(ratings, 0.25, seed=3)
    _assert_partition(ratings, split)
    test_counts = Counter(u for u, _ in _keys(split.test))
    train_counts = Counter(u for u, _ in _keys(split.train))
    for user, n in enumerate(per_user, start=1):
        want = min(int(n * 0.25 + 0.5), n - 1)
        assert test_counts.get(user, 0) == want, user
        assert train_counts[user] >= 1
    again = stratified_split(_ratings(spark, per_user), 0.25, seed=3)
    assert _keys(again.test) == _keys(split.test)
    other = stratified_split(_ratings(spark, per_user), 0.25, seed=4)
    assert _keys(other.test) != _keys(split.test)


def test_chronological_split_puts_each_users_latest_ratings_in_test(spark):
    ratings = _ratings(spark)
    split = chronological_split(ratings, 0.3)
    _assert_partition(ratings, split)
    rows = ratings.collect()
    test = set(_keys(split.test))
    for user in {r.user_id for r in rows}:
        mine = [r for r in rows if r.user_id == user]
        in_test = [r for r in mine if (r.user_id, r.movie_id) in test]
        in_train = [r for r in mine if (r.user_id, r.movie_id) not in test]
        if in_test:
            latest_train = max((r.timestamp, r.movie_id) for r in in_train)
            earliest_test = min((r.timestamp, r.movie_id) for r in in_test)
            assert earliest_test > latest_train, user


def test_split_of_an_empty_table_is_empty(spark):
    empty = spark.createDataFrame([], SCHEMA)
    for method in ("random", "hash", "stratified", "chronological"):
        split = split_ratings(empty, method, 0.2, 1)
        assert split.train.count() == 0 and split.test.count() == 0


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_bad_fractions_and_methods_are_refused(spark, fraction):
    with pytest.raises(MovieRecError, match="between 0 and 1"):
        split_ratings(_ratings(spark), "random", fraction, 1)


def test_unknown_or_incomplete_methods_say_what_to_do(spark):
    with pytest.raises(MovieRecError, match="choose one of"):
        split_ratings(_ratings(spark), "sideways", 0.2, 1)
    with pytest.raises(MovieRecError, match="--train-ratings"):
        split_ratings(_ratings(spark), "predefined", 0.2, 1)
