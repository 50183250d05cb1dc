"""Predefined split files (issue 20, item 3): a file none of whose lines loads is named, with its reasons.

A file of the wrong kind (a movies file, another release's ratings, a
split of movies the release does not have) is refused by ``make_split``,
before any model is fitted, in one line saying which file, how many lines
and why; a file with some bad lines loads the rest and logs the rejects.
"""

from __future__ import annotations

import logging

import pytest

from jobs import train_als
from movierec_spark import MovieRecError, cli
from movierec_spark.evaluation import protocol as P
from tests.job_logging import keep_logging  # noqa: F401 (a fixture)
from tests.release_files import write_files
from tests.tiny_release import tiny_release

GOOD_TEST = ["1\t1\t4\t881250949", "2\t3\t5\t881250950", "3\t2\t1\t881250951"]


def _cfg(train, test):
    return {"split": {"method": "predefined", "train_ratings_file": str(train), "test_ratings_file": str(test)}}


@pytest.fixture(scope="module")
def release(spark):
    return tiny_release(spark)  # named ml-100k: tab-separated ratings of movies 1 to 12, whole stars


@pytest.mark.parametrize(
    "lines, reasons",
    [
        # ml-100k's u.item passed as --train-ratings
        (["1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0",
          "2|GoldenEye (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?GoldenEye|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0"],
         "wrong_field_count 2"),
        # ml-latest-small's ratings.csv (comma-separated, a header) for an ml-100k release
        (["userId,movieId,rating,timestamp", "1,1,4.0,964982703", "1,3,4.0,964981247", "1,6,4.0,964982224"],
         "wrong_field_count 4"),
        # a split of another release: no movie the release has, and a rating off its scale
        (["1\t500\t4\t881250949", "2\t600\t5\t881250950", "3\t700\t2\t881250951", "4\t2\t4.5\t881250952"],
         "unknown_movie 3, rating_out_of_scale 1"),
    ],
)
def test_a_split_file_with_every_line_rejected_is_named_with_its_reasons(spark, release, tmp_path, lines, reasons):
    folder = write_files(tmp_path, {"train.txt": lines, "u1.test": GOOD_TEST})
    train = folder / "train.txt"
    with pytest.raises(MovieRecError) as caught:
        P.make_split(spark, _cfg(train, folder / "u1.test"), release)
    assert str(caught.value) == (
        f"--train-ratings file {train}: all {len(lines)} lines were rejected ({reasons}); "
        "is it a ratings file of ml-100k?"
    )


def test_the_test_file_is_named_as_such(spark, release, tmp_path):
    folder = write_files(tmp_path, {"u1.base": GOOD_TEST, "movies.dat": ["1::Toy Story (1995)::Animation"]})
    with pytest.raises(MovieRecError) as caught:
        P.make_split(spark, _cfg(folder / "u1.base", folder / "movies.dat"), release)
    assert str(caught.value) == (
        f"--test-ratings file {folder / 'movies.dat'}: all 1 lines were rejected (wrong_field_count 1); "
        "is it a ratings file of ml-100k?"
    )


def test_some_rejected_lines_are_counted_and_logged(spark, release, tmp_path, caplog):
    folder = write_files(tmp_path, {"u1.base": [*GOOD_TEST, "4\t999\t3\t881250952", "5\t1\t9\t881250953"],
                                    "u1.test": GOOD_TEST})
    with caplog.at_level(logging.WARNING, logger="movierec_spark.evaluation.protocol"):
        split, rejected = P.make_split(spark, _cfg(folder / "u1.base", folder / "u1.test"), release)
    assert rejected == {"train_file_rejects": 2, "test_file_rejects": 0}
    assert split.train.count() == 3
    assert caplog.messages == [
        f"--train-ratings file {folder / 'u1.base'}: 2 of 5 lines rejected (rating_out_of_scale 1, unknown_movie 1)",
        "  rejected (unknown_movie): 4\t999\t3\t881250952",
        "  rejected (rating_out_of_scale): 5\t1\t9\t881250953",
    ]


def test_the_job_stops_before_any_fit(spark, movielens_dir, tmp_path, monkeypatch, capsys, keep_logging):
    """jobs/train_als.py on ml-100k with its movies file as --train-ratings: exit 2, one line, no fit, no output."""
    monkeypatch.setattr("movierec_spark.session.build_session", lambda name: spark)
    monkeypatch.setattr(spark, "stop", lambda: None)

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was fitted")

    monkeypatch.setattr("movierec_spark.models.registry.fit_models", no_fit)
    ml100k = movielens_dir / "ml-100k"
    out = tmp_path / "out"
    code = train_als.main([
        "--dataset", "ml-100k", "--source", str(ml100k), "--train-ratings", str(ml100k / "u.item"),
        "--test-ratings", str(ml100k / "u1.test"), "--custom-ratings", "", "--output", str(out),
    ])  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if not line[:2].isdigit()]
    assert code == cli.EXIT_USAGE
    assert err == [
        f"train_als: error: --train-ratings file {ml100k / 'u.item'}: all 1,682 lines were rejected "
        "(wrong_field_count 1,682); is it a ratings file of ml-100k?"
    ]
    assert not out.exists()
