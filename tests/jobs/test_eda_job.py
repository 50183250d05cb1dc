"""jobs/eda.py: flags and config checks, and real releases end to end."""

from __future__ import annotations

import base64
import csv
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs import eda
from movierec_spark import MovieRecError
from movierec_spark import cli
from movierec_spark import columns as C
from movierec_spark.eda import explore as X
from movierec_spark.config import load_config
from movierec_spark.eda.report import TABLES

from tests.eda.test_report import assert_real_png


def _cfg(**eda_keys):
    cfg = load_config()
    cfg["eda"].update(eda_keys)
    return cfg


# --- flags and config, no Spark ---


def test_help_and_bad_flags_need_no_spark(capsys):
    with pytest.raises(SystemExit) as done:
        eda.main(["--help"])
    assert done.value.code == 0
    assert "--min-movie-ratings" in capsys.readouterr().out
    assert eda.main(["--damping", "-1"]) == cli.EXIT_USAGE
    assert "[eda] damping (--damping) must be 0 or more, got -1.0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("top_n", 0, r"\[eda\] top_n must be 1 or more, got 0"),
        ("min_user_ratings", 2.5, "min_user_ratings must be a whole number"),
        ("damping", "ten", "damping must be a number, got 'ten'"),
        ("top_shares", [0.1, 1.5], "top_shares must each be above 0 and 1 or less, got 1.5"),
        ("output", "", "pass --output DIR"),
    ],
)
def test_bad_config_values_are_one_line_errors(key, value, message):
    with pytest.raises(MovieRecError, match=message):
        eda.settings(_cfg(**{key: value}))


def test_a_bad_config_file_stops_the_job_before_spark_starts(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[eda]\ntop_n = 0\n")
    assert eda.main(["--config", str(bad), "--output", str(tmp_path / "out")]) == cli.EXIT_USAGE
    assert "[eda] top_n must be 1 or more, got 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_shipped_defaults_are_valid():
    settings = eda.settings(_cfg())
    assert settings.top_shares == [0.01, 0.1, 0.2]
    assert settings.min_user_ratings >= 1 and settings.damping > 0


# --- real data ---


def _read_csv_ratings(path: Path) -> list[tuple[int, int, float]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(fh)
        return [(int(r["userId"]), int(r["movieId"]), float(r["rating"])) for r in rows]


@pytest.mark.slow
def test_ml_latest_small_against_its_files(spark, movielens_dir):
    from movierec_spark.data.load import load_data

    folder = movielens_dir / "ml-latest-small"
    loaded = load_data(spark, {"dataset": "ml-latest-small", "source": str(folder)})
    ratings = loaded.ratings.persist()
    try:
        summary = X.rating_summary(ratings, loaded.movies).collect()[0]
        dist = X.rating_distribution(ratings, loaded.scale).collect()
        never = X.never_rated_movies(ratings, loaded.movies).count()
        users = X.count_quantiles(X.count_histogram(X.user_counts(ratings), "users"), [0.5]).collect()[0]
    finally:
        ratings.unpersist()
    plain = _read_csv_ratings(folder / "ratings.csv")
    # The release's README: 100836 ratings by 610 users of 9742 movies.
    assert (summary[X.RATINGS], summary[X.USERS], summary["catalog_movies"]) == (100_836, 610, 9_742)
    assert summary[X.MOVIES] == len({m for _, m, _ in plain}) == 9_724
    assert never == 9_742 - 9_724
    assert summary["mean"] == pytest.approx(sum(r for *_, r in plain) / len(plain))
    # Half stars: ten values from 0.5 to 5, every rating on the scale.
    counts = Counter(r for *_, r in plain)
    assert [r[C.RATING] for r in dist] == [0.5 * i for i in range(1, 11)]
    assert all(r[X.ON_SCALE] for r in dist)
    assert {r[C.RATING]: r[X.RATINGS] for r in dist} == {v: counts[v] for v in (0.5 * i for i in range(1, 11))}
    per_user = Counter(u for u, _, _ in plain)
    assert users["min"] == min(per_user.values()) == 20  # "each user has rated at least 20 movies"
    assert users["count"] == 610


@pytest.fixture(scope="module")
def ml100k_report(spark, movielens_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eda") / "ml-100k"
    cfg = _cfg(output=str(out), top_n=10)
    cfg["data"].update(dataset="ml-100k", source=str(movielens_dir / "ml-100k"))
    assert eda.run(spark, cfg) == cli.EXIT_OK
    return out


@pytest.mark.slow
def test_ml100k_report_files_exist_and_tables_read_back(ml100k_report):
    out = ml100k_report
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    for name in TABLES:
        assert (out / "tables" / f"{name}.csv").is_file(), name
        table = pq.read_table(out / "tables" / f"{name}.parquet")
        assert table.num_rows == len((out / "tables" / f"{name}.csv").read_text().splitlines()) - 1
    summary = json.loads((out / "summary.json").read_text())
    # ml-100k's README: 100,000 ratings by 943 users of 1,682 movies.
    assert summary["summary"]["ratings"] == 100_000
    assert summary["summary"]["users"] == 943
    assert summary["summary"]["movies"] == summary["summary"]["catalog_movies"] == 1_682
    assert summary["rows"]["most_rated"] == summary["rows"]["best_rated"] == 10


@pytest.mark.slow
def test_ml100k_whole_stars_and_demographics_match_its_files(ml100k_report, movielens_dir):
    tables = ml100k_report / "tables"
    dist = pq.read_table(tables / "rating_distribution.parquet").to_pylist()
    plain = Counter(line.split("\t")[2] for line in (movielens_dir / "ml-100k" / "u.data").read_text().splitlines())
    assert [(r[C.RATING], r[X.RATINGS]) for r in dist] == [(float(k), plain[k]) for k in "12345"]
    users = [line.split("|") for line in (movielens_dir / "ml-100k" / "u.user").read_text().splitlines()]
    gender = {r[X.GROUP]: r[X.USERS] for r in pq.read_table(tables / "users_by_gender.parquet").to_pylist()}
    assert gender == dict(Counter(u[2] for u in users))
    occupations = pq.read_table(tables / "users_by_occupation.parquet").to_pylist()
    assert {r[X.GROUP]: r[X.USERS] for r in occupations} == dict(Counter(u[3] for u in users))
    ages = pq.read_table(tables / "users_by_age.parquet").to_pylist()
    assert sum(r[X.USERS] for r in ages) == 943
    assert ages[0][X.GROUP] == "under 18" and ages[0][X.USERS] == sum(1 for u in users if int(u[1]) < 18)


@pytest.mark.slow
def test_ml100k_html_embeds_every_plot_as_a_real_png(ml100k_report):
    page = (ml100k_report / "report.html").read_text()
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    plots = sorted((ml100k_report / "plots").glob("*.png"))
    assert len(sources) == len(plots) == 9
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert_real_png(base64.b64decode(src.split(",", 1)[1]))
    for png in plots:
        assert_real_png(png.read_bytes())
    md = (ml100k_report / "report.md").read_text()
    assert all(f"(plots/{p.name})" in md for p in plots)
    assert "Star Wars (1977) with 583 ratings" in md
