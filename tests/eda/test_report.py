"""Report rendering: formatting, plots as real PNGs, self-contained HTML (no Spark)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread

from movierec_spark import columns as C
from movierec_spark.eda import explore as X
from movierec_spark.eda import report as R
from movierec_spark.io import write_small_table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_real_png(data: bytes) -> None:
    """A decodable PNG that is not one flat colour."""
    assert data.startswith(PNG_SIGNATURE)
    pixels = imread(io.BytesIO(data), format="png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(np.var(pixels[..., :3])) > 1e-3


def _frames(with_users: bool = True) -> dict[str, pd.DataFrame]:
    """A small, consistent set of aggregates shaped like explore's outputs."""
    movies = pd.DataFrame(
        {
            C.RANK: [1, 2, 3],
            C.MOVIE_ID: [10, 11, 12],
            C.TITLE: ["Alpha | Omega", None, "A title long enough to be cut short somewhere in the middle"],
            C.YEAR: [1999.0, np.nan, 2004.0],
            X.RATINGS: [30, 20, 10],
            X.MEAN_RATING: [4.5, 4.0, 3.0],
            X.DAMPED_MEAN: [4.2, 3.9, 3.4],
        }
    )
    frames = {
        "summary": pd.DataFrame(
            [{X.RATINGS: 60, X.USERS: 5, X.MOVIES: 3, "catalog_movies": 4, "density": 0.8, "mean": 3.9,
              "stddev": 0.7, "min": 1.0, "median": 4.0, "max": 5.0,
              "first_rated": pd.Timestamp("2001-02-03", tz="UTC"), "last_rated": pd.Timestamp("2003-04-05", tz="UTC")}]
        ),
        "nulls": pd.DataFrame({C.TABLE: ["ratings", "movies"], X.COLUMN: [C.RATING, C.YEAR], X.ROWS: [60, 4],
                               X.NULLS: [0, 1], X.NULL_SHARE: [0.0, 0.25]}),
        "rejects": pd.DataFrame({C.TABLE: ["ratings"], C.REASON: ["rating_out_of_scale"], X.ROWS: [2]}),
        "duplicates": pd.DataFrame({C.USER_ID: [1], C.MOVIE_ID: [10], X.COPIES: [2], "min_rating": [3.0], "max_rating": [5.0]}),
        "never_rated": pd.DataFrame({C.MOVIE_ID: [13], C.TITLE: ["Nobody"], C.YEAR: [2010], C.GENRES: [["Drama"]]}),
        "rated_but_missing": pd.DataFrame({C.MOVIE_ID: pd.Series([], dtype="int32"), X.RATINGS: pd.Series([], dtype="int64"),
                                           X.USERS: pd.Series([], dtype="int64")}),
        "support": pd.DataFrame({X.ENTITY: ["users", "movies", "ratings"], X.TOTAL: [5, 3, 60], X.REMOVED: [1, 1, 12],
                                 X.KEPT: [4, 2, 48], X.REMOVED_SHARE: [0.2, 1 / 3, 0.2]}),
        "rating_distribution": pd.DataFrame({C.RATING: [1.0, 2.0, 3.0, 3.5, 4.0, 5.0], X.ON_SCALE: [True, True, True, False, True, True],
                                             X.RATINGS: [5, 5, 10, 1, 20, 19], X.SHARE: [5 / 60, 5 / 60, 10 / 60, 1 / 60, 20 / 60, 19 / 60]}),
        "count_quantiles": pd.DataFrame([{X.ENTITY: e, "count": n, "min": 2, "p10": 2.0, "p25": 5.0, "median": 10.5, "p75": 15.0,
                                          "p90": 20.0, "p99": 30.0, "max": 30, "mean": 12.0} for e, n in (("users", 5), ("movies", 3))]),
        "count_histogram": pd.DataFrame({X.ENTITY: ["users"] * 4 + ["movies"] * 3, X.PER_ENTITY: [2, 5, 15, 38, 10, 20, 30],
                                         X.ENTITIES: [1, 1, 2, 1, 1, 1, 1]}),
        "top_shares": pd.DataFrame({X.ENTITY: ["movies", "users"], X.TOP_SHARE: [0.1, 0.1], X.ENTITIES: [1, 1],
                                    X.RATINGS: [30, 38], X.RATING_SHARE: [0.5, 38 / 60]}),
        "lorenz": pd.DataFrame({X.ENTITY: ["movies"] * 4 + ["users"] * 3, X.ENTITY_SHARE: [0, 1 / 3, 2 / 3, 1, 0, 0.6, 1],
                                X.RATING_SHARE: [0, 1 / 6, 0.5, 1, 0, 0.3, 1]}),
        "gini": pd.DataFrame({X.ENTITY: ["movies", "users"], X.GINI: [0.22, 0.4]}),
        "most_rated": movies,
        "best_rated": movies,
        "genres": pd.DataFrame({X.GENRE: ["Drama", "Comedy", X.NO_GENRE], X.MOVIES: [2, 1, 1], X.RATINGS: [40, 20, 0],
                                X.MEAN_RATING: [4.1, 3.5, np.nan]}),
        "release_years": pd.DataFrame({C.YEAR: [np.nan, 1999.0, 2004.0], X.MOVIES: [1, 1, 1], X.RATINGS: [20, 30, 10],
                                       X.MEAN_RATING: [4.0, 4.5, 3.0]}),
        "ratings_by_month": pd.DataFrame({X.PERIOD: [None, dt.date(2001, 2, 1), dt.date(2002, 6, 1), dt.date(2003, 4, 1)],
                                          X.RATINGS: [1, 20, 30, 9], X.USERS: [1, 3, 4, 2],
                                          X.MEAN_RATING: [3.0, 3.5, 4.2, 3.9], X.STDDEV_RATING: [np.nan, 1.0, 0.5, 0.7]}),
        "ratings_by_year": pd.DataFrame({X.PERIOD: [None, dt.date(2001, 1, 1), dt.date(2002, 1, 1), dt.date(2003, 1, 1)],
                                         X.RATINGS: [1, 20, 30, 9], X.USERS: [1, 3, 4, 2],
                                         X.MEAN_RATING: [3.0, 3.5, 4.2, 3.9], X.STDDEV_RATING: [np.nan, 1.0, 0.5, 0.7]}),
    }
    if with_users:
        def demo(groups, users):
            total = sum(users)
            return pd.DataFrame({X.GROUP: groups, X.USERS: users, X.USER_SHARE: [u / total for u in users],
                                 X.RATINGS: [u * 10 for u in users], X.MEAN_RATING: [3.5 + 0.1 * i for i in range(len(users))]})
        frames["users_by_gender"] = demo(["M", "F"], [3, 2])
        frames["users_by_age"] = demo(["under 18", "25-34", "56+"], [1, 3, 1])
        frames["users_by_occupation"] = demo(["student", "writer", X.UNKNOWN], [2, 2, 1])
    return frames


def _facts(**overrides) -> R.ReportFacts:
    values = dict(dataset="ml-test", source="/data/ml-test", scale_values=[1.0, 2.0, 3.0, 4.0, 5.0],
                  min_user_ratings=3, min_movie_ratings=15, damping=10.0,
                  listing_rows={"duplicates": 1, "never_rated": 25, "rated_but_missing": 0}, has_users=True)
    values.update(overrides)
    return R.ReportFacts(**values)


# --- formatting ---


def test_number_formats_a_person_reads():
    assert R.fmt_int(1234567) == "1,234,567"
    assert R.fmt_int(None) == R.fmt_int(float("nan")) == "–"
    assert R.fmt_pct(0.4239) == "42.4%"
    assert R.fmt_pct(0.0004) == "<0.1%"
    assert R.fmt_pct(0.0) == "0.0%"
    assert R.fmt_density(0.06304) == "6.3%"
    assert R.fmt_density(0.0000521) == "0.00521%"
    assert (R.fmt_quantile(65.0), R.fmt_quantile(64.5), R.fmt_quantile(1234.0)) == ("65", "64.5", "1,234")


def test_display_frame_formats_by_column_meaning():
    frame = pd.DataFrame({C.YEAR: [1995.0, np.nan], X.RATINGS: [12345, 7], X.SHARE: [0.5, 0.25],
                          X.MEAN_RATING: [3.14159, np.nan], C.GENRES: [["A", "B"], []], X.ON_SCALE: [True, False]})
    shown = R.display_frame(frame)
    assert list(shown.columns) == ["year", "ratings", "share", "mean rating", "genres", "on scale"]
    assert shown.iloc[0].tolist() == ["1995", "12,345", "50.0%", "3.142", "A, B", "yes"]
    assert shown.iloc[1].tolist() == ["–", "7", "25.0%", "–", "", "no"]


def test_markdown_table_escapes_pipes_and_right_aligns_numbers():
    table = R.markdown_table(pd.DataFrame({"title": ["a|b", "c"], "n": ["1,000", "2"]}))
    lines = table.splitlines()
    assert lines[1] == "| --- | ---: |"
    assert lines[2] == "| a\\|b | 1,000 |"


def test_titles_get_their_year_and_are_cut_with_an_ellipsis():
    assert R._short_title("Star Wars", 1977.0) == "Star Wars (1977)"
    assert R._short_title(None, None) == "(unknown title)"
    cut = R._short_title("x" * 100, 2001, width=20)
    assert len(cut) == 20 and cut.endswith("… (2001)")


# --- plots ---


def test_every_plot_is_a_real_png_with_data_and_without():
    frames = _frames()
    empty = {name: frame.iloc[0:0] for name, frame in frames.items()}
    for data in (frames, empty):
        for png in (
            R.plot_rating_distribution(data["rating_distribution"], "ml-test"),
            R.plot_count_histograms(data["count_histogram"]),
            R.plot_lorenz(data["lorenz"], data["gini"]),
            R.plot_top_movies(data["best_rated"], X.DAMPED_MEAN, "Best", "damped mean"),
            R.plot_genres(data["genres"]),
            R.plot_release_years(data["release_years"]),
            R.plot_time(data["ratings_by_month"]),
            R.plot_demographics(data),
        ):
            assert_real_png(png)


def test_a_blank_image_is_caught_by_the_png_check():
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    Figure(figsize=(3, 3)).savefig(buf, format="png", facecolor="white")
    with pytest.raises(AssertionError):
        assert_real_png(buf.getvalue())


# --- the report ---


def test_html_report_is_self_contained_and_embeds_every_plot():
    report = R.build_report(_frames(), _facts())
    page = R.render_html(report)
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(sources) == len(report.plots) == 9
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert_real_png(base64.b64decode(src.split(",", 1)[1]))
    # Nothing fetched from elsewhere: no external scripts, styles or links.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page and "<link" not in page
    # Text from the data is escaped, never markup.
    assert "Alpha | Omega" in page and "<td>Alpha" not in page.replace('class=""', "").replace('class="text"', "")


def test_report_text_carries_the_key_numbers():
    report = R.build_report(_frames(), _facts())
    md = R.render_markdown(report)
    for plot in report.plots:
        assert f"](plots/{plot.name}.png)" in md
    assert "| ratings | 60 |" in md and "| matrix density | 80% |" in md
    assert "2 rows were rejected at ingest" in md
    assert "1 (user, movie) pair is rated more than once (below)." in md
    assert "25 movies in the catalogue have no rating (the first 10 below; all in tables/never_rated.csv)." in md
    assert "Every rated movie is in the movies table." in md
    assert "1 ratings are off the scale" not in md and "1 rating is off the scale" in md
    assert "remove 1 users (20.0%)" not in md and "remove 1 user (20.0%), 1 movie (33.3%) and 12 ratings (20.0%)" in md
    assert "the top 10% (1 movie) get 50.0%" in md
    assert "The median user rated 10.5 movies (least 2, most 30)" in md
    assert "(sum of the movie's ratings + 10 × global mean) / (its ratings + 10)" in md
    assert "Users by gender: M 60.0%, F 40.0%." in md


def test_report_without_demographics_or_ratings_still_renders():
    no_users = R.build_report(_frames(with_users=False), _facts(has_users=False))
    assert "ml-test has no user demographics" in R.render_markdown(no_users)
    assert len(no_users.plots) == 8
    empty = {name: frame.iloc[0:0] for name, frame in _frames().items()}
    report = R.build_report(empty, _facts(listing_rows={}))
    page = R.render_html(report)
    assert page.count("data:image/png;base64,") == len(report.plots)
    assert "No row was rejected at ingest" in page


def test_console_summary_names_counts_density_and_top_movies():
    text = R.console_summary(_frames(), _facts())
    assert "ratings 60" in text and "matrix density 80%" in text
    assert "1. Alpha | Omega (1999): 30 ratings" in text
    assert "rejected rows 2" in text and "never rated 25" in text


def test_small_tables_are_written_as_parquet_and_csv(tmp_path):
    table = pa.table({C.MOVIE_ID: pa.array([1, 2], pa.int32()), C.GENRES: [["Drama", "War"], []],
                      C.YEAR: pa.array([1999, None], pa.int32())})
    written = write_small_table(table, tmp_path / "tables", "never_rated")
    assert [p.name for p in written] == ["never_rated.parquet", "never_rated.csv"]
    assert pq.read_table(written[0]).equals(table)
    assert written[1].read_text().splitlines() == ['"movie_id","genres","year"', '1,"Drama|War",1999', '2,"",']
