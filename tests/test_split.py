"""Splits: every row exactly once, per-user fractions, latest-in-test, determinism."""

from __future__ import annotations

from collections import Counter

import pytest
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark.split import (
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
    _assert_partition(ratings, first)
    assert not ratings.is_cached  # deterministic by construction: nothing pinned
    second = random_split(_ratings(spark), 0.3, seed=7)
    assert _keys(first.test) == _keys(second.test)
    assert _keys(random_split(_ratings(spark), 0.3, seed=8).test) != _keys(first.test)


def _many(spark, n=4000):
    """n distinct (user, movie) rows, 40 users."""
    return (
        spark.range(n)
        .select((F.col("id") % 40 + 1).cast("int").alias("user_id"), (F.col("id") + 1).cast("int").alias("movie_id"))
        .withColumn("rating", F.lit(3.0).cast("float"))
        .withColumn("timestamp", F.lit(0).cast("long"))
    )


def test_random_split_does_not_depend_on_partitioning_or_recomputation(spark):
    """What a lost executor does to a split: the input recomputed, in another
    partitioning and row order. The hash split gives the same rows; the
    halves, evaluated separately from differently shuffled inputs, still
    neither duplicate nor lose a row."""
    base = _many(spark)
    test_sets = []
    for partitions in (1, 3, 7):
        # rand() without a seed: a new order on every evaluation.
        shuffled = base.repartition(partitions).orderBy(F.rand())
        split = random_split(shuffled, 0.25, seed=11)
        train, test = _keys(split.train), _keys(split.test)
        assert len(train) + len(test) == 4000 and len(set(train) | set(test)) == 4000, partitions
        test_sets.append(test)
    assert test_sets[0] == test_sets[1] == test_sets[2]
    # A binomial(4000, 0.25) share: sd 27 rows; 5 sd of slack.
    assert abs(len(test_sets[0]) - 1000) < 140, len(test_sets[0])


def test_randomsplit_of_a_nondeterministic_input_neither_duplicates_nor_loses(spark):
    # The randomSplit method: without its persist, train and test would be
    # computed from two different orders of this input.
    noisy = _many(spark, 400).orderBy(F.rand())
    split = split_ratings(noisy, "randomsplit", 0.5, 1)
    assert split.method == "randomsplit"
    train, test = _keys(split.train), _keys(split.test)
    assert len(train) + len(test) == 400 and len(set(train) | set(test)) == 400
    noisy.unpersist()


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
    for method in ("random", "randomsplit", "stratified", "chronological"):
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
