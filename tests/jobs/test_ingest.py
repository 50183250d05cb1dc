"""jobs/ingest.py end to end: tables, rejects, report, atomic and repeatable output."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import ingest
from movierec_spark import MovieRecError, io
from movierec_spark.data import load
from movierec_spark.data import schemas
from movierec_spark import columns as C
from movierec_spark.data import validate as V
from movierec_spark.config import load_config, merge
from movierec_spark.data.releases import HALF_STARS
from tests.release_files import write_files
from tests.spark_jobs import jobs_while

RATINGS = ["userId,movieId,rating,timestamp", "1,1,4.0,964982703", "1,2,3.5,964981247", "2,1,5.0,964982224"]
MOVIES = ["movieId,title,genres", "1,Toy Story (1995),Animation", '2,"Heat, Again (1995)",Action']


def small_release(folder: Path, extra_ratings=()) -> Path:
    return write_files(folder / "ml-latest-small", {
        "ratings.csv": RATINGS + list(extra_ratings), "movies.csv": MOVIES,
        "tags.csv": ["userId,movieId,tag,timestamp", "1,2,tense,1445714994"],
        "links.csv": ["movieId,imdbId,tmdbId", "1,0114709,862", "2,0113277,"],
    }, newline="\r\n")  # fmt: skip


def config(source: Path | str, output: Path, dataset="ml-latest-small", **data) -> dict:
    return merge(load_config(), {
        "data": {"dataset": dataset, "source": str(source), **data}, "ingest": {"output": str(output)},
    })  # fmt: skip


def report_of(output: Path) -> dict:
    return json.loads((output / io.REPORT_NAME).read_text())


def beside(output: Path) -> list[str]:
    """Whatever a run left next to its output folder (staging, moved-aside copies)."""
    return sorted(p.name for p in output.parent.iterdir() if p.name != output.name)


@pytest.fixture
def job_logging(monkeypatch):
    """Undo the logging set-up main() does, whose handler writes to this test's captured stderr."""
    for name in ("movierec_spark", "jobs", "__main__"):
        logger = logging.getLogger(name)
        for attribute in ("handlers", "level", "propagate"):
            value = getattr(logger, attribute)
            monkeypatch.setattr(logger, attribute, list(value) if attribute == "handlers" else value)


def test_main_writes_tables_rejects_and_report(spark, tmp_path, monkeypatch, capsys, job_logging):
    source = small_release(tmp_path / "src", extra_ratings=["1,9,4.0,964982703", "1,1,7,964982703"])
    output = tmp_path / "out" / "ingested"
    monkeypatch.setattr(spark, "stop", lambda: None)  # run_job stops its session; this one is shared
    argv = ["--dataset", "ml-latest-small", "--source", str(source), "--output", str(output)]
    assert ingest.main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 lines rejected (rating_out_of_scale 1, unknown_movie 1)" in printed
    assert str(output / "rejects") in printed

    assert sorted(p.name for p in output.iterdir()) == [
        "ingest_report.json", "links", "movies", "ratings", "rejects", "tags",
    ]  # fmt: skip
    report = report_of(output)
    assert report["release"] == "ml-latest-small"
    assert report["scale"] == {"low": 0.5, "high": 5.0, "step": 0.5}
    assert report["tables"]["ratings"] == {
        "file": "ratings.csv", "read": 5, "loaded": 3, "rejected": 2,
        "rejected_by_reason": {V.RATING_OUT_OF_SCALE: 1, V.UNKNOWN_MOVIE: 1},
    }  # fmt: skip
    assert report["summary"]["users"] == 2 and report["summary"]["rated_movies"] == 2
    assert beside(output) == []

    # What was written reads back through load_data.
    again = load.load_data(spark, {"ingested_dir": str(output)})
    assert (again.name, again.scale, again.report) == ("ml-latest-small", HALF_STARS, report)
    expected = spark.createDataFrame(
        [(1, 1, 4.0, 964982703), (1, 2, 3.5, 964981247), (2, 1, 5.0, 964982224)], schemas.RATINGS
    )
    assertDataFrameEqual(again.ratings, expected)
    assert sorted((r[C.REASON], r[C.RAW], r[C.SOURCE_FILE]) for r in again.rejects.collect()) == [
        (V.RATING_OUT_OF_SCALE, "1,1,7,964982703", "ratings.csv"),
        (V.UNKNOWN_MOVIE, "1,9,4.0,964982703", "ratings.csv"),
    ]
    assert [r[C.TITLE] for r in again.movies.orderBy(C.MOVIE_ID).collect()] == ["Toy Story", "Heat, Again"]


def test_flag_errors_stop_before_spark(capsys, job_logging):
    assert ingest.main(["--dataset", "ml-999", "--output", "x"]) == 2
    assert "[data] dataset (--dataset) must be one of ml-100k, " in capsys.readouterr().err
    assert ingest.main(["--ingested", "somewhere", "--output", "x"]) == 2
    assert "not --ingested" in capsys.readouterr().err


def test_failed_rerun_leaves_the_earlier_output_intact(spark, tmp_path, monkeypatch):
    source = small_release(tmp_path / "src")
    output = tmp_path / "outputs" / "out"
    assert ingest.run(spark, config(source, output)) == 0
    before = {p.relative_to(output): p.read_bytes() for p in output.rglob("*") if p.is_file()}

    # Fail after the tables are written into staging, while counting.
    def broken_report(loaded):
        raise RuntimeError("disk full while counting")

    monkeypatch.setattr(load, "ingest_report", broken_report)
    small_release(tmp_path / "src", extra_ratings=["3,1,1.0,964982703"])
    with pytest.raises(RuntimeError, match="disk full"):
        ingest.run(spark, config(source, output))
    after = {p.relative_to(output): p.read_bytes() for p in output.rglob("*") if p.is_file()}
    assert after == before
    assert beside(output) == []


def test_second_run_over_the_same_output_replaces_it(spark, tmp_path):
    source = small_release(tmp_path / "src")
    output = tmp_path / "outputs" / "out"
    assert ingest.run(spark, config(source, output)) == 0
    assert report_of(output)["tables"]["ratings"]["loaded"] == 3
    small_release(tmp_path / "src", extra_ratings=["3,1,1.0,964982703", "3,1,2.0,964982704"])
    assert ingest.run(spark, config(source, output)) == 0
    ratings = report_of(output)["tables"]["ratings"]
    assert (ratings["loaded"], ratings["rejected_by_reason"]) == (4, {V.DUPLICATE_PAIR: 1})
    assert load.load_data(spark, {"ingested_dir": str(output)}).ratings.count() == 4
    assert beside(output) == []


def test_output_that_holds_the_source_is_refused(spark, tmp_path):
    source = small_release(tmp_path / "out" / "raw")
    with pytest.raises(MovieRecError, match="contains the release files"):
        ingest.run(spark, config(source, tmp_path / "out"))
    assert (source / "ratings.csv").exists()


def test_ingested_layout_of_a_generator_loads(spark, tmp_path):
    """ratings/, movies/, an empty rejects/ and a report with just release and scale."""
    out = tmp_path / "synthetic"
    fresh = load.load_release(spark, load.get_release("ml-latest-small"), small_release(tmp_path / "src"))
    io.write_table(fresh.ratings, out / "ratings")
    io.write_table(fresh.movies, out / "movies")
    io.write_json(out / io.REPORT_NAME, {"release": "synthetic", "scale": {"low": 0.5, "high": 5, "step": 0.5}})
    loaded = load.load_data(spark, {"ingested_dir": str(out)})
    assert (loaded.name, loaded.scale.values()[-1], loaded.tags, loaded.users) == ("synthetic", 5.0, None, None)
    assert loaded.rejects.count() == 0
    assertDataFrameEqual(loaded.ratings, fresh.ratings)
    shutil.rmtree(out / "movies")
    with pytest.raises(MovieRecError, match="has no movies table"):
        load.load_data(spark, {"ingested_dir": str(out)})
    with pytest.raises(MovieRecError, match="ingest_report.json"):
        load.load_data(spark, {"ingested_dir": str(tmp_path)})


def test_ingested_tables_are_read_with_the_schema_in_their_footers(spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "ingested"
    fresh = load.load_release(spark, load.get_release("ml-latest-small"), small_release(tmp_path / "src"))
    io.write_table(fresh.ratings, out / "ratings")
    io.write_table(fresh.movies, out / "movies")
    io.write_json(out / io.REPORT_NAME, {"release": "ml-latest-small"})
    assert io.written_schema(out / "ratings") == fresh.ratings.schema
    # Opening the tables reads no file footer through Spark: no job.
    loaded, jobs = jobs_while(spark, "open-ingested", lambda: load.load_data(spark, {"ingested_dir": str(out)}))
    assert jobs == []
    assertDataFrameEqual(loaded.ratings, fresh.ratings)
    # A table not written by Spark (no schema in its footer): inferred, as before.
    shutil.rmtree(out / "movies")
    (out / "movies").mkdir()
    pq.write_table(pa.Table.from_pandas(fresh.movies.toPandas(), preserve_index=False), out / "movies" / "part-0.parquet")
    assert io.written_schema(out / "movies") is None
    assertDataFrameEqual(load.load_data(spark, {"ingested_dir": str(out)}).movies, fresh.movies)
    # The schema read from the footer is still checked against the table's.
    shutil.rmtree(out / "ratings")
    io.write_table(fresh.ratings.withColumn(C.RATING, F.col(C.RATING).cast("string")), out / "ratings")
    with pytest.raises(MovieRecError, match="rating is string"):
        load.load_data(spark, {"ingested_dir": str(out)})


# --- the real releases, from folder and zip ---


@pytest.mark.slow
def test_ingest_real_zip_through_the_cache(spark, movielens_dir, tmp_path):
    output = tmp_path / "out"
    cfg = config(movielens_dir / "zips" / "ml-latest-small.zip", output, cache_dir=str(tmp_path / "cache"))
    assert ingest.run(spark, cfg) == 0
    report = report_of(output)
    assert (report["summary"]["ratings"], report["summary"]["users"], report["summary"]["movies"]) == (
        100_836, 610, 9_742,
    )  # fmt: skip
    assert report["summary"]["rows_rejected"] == 0
    assert Path(report["source"]).is_relative_to(tmp_path / "cache")


@pytest.mark.slow
def test_ingest_real_ml_1m_folder_needs_partial(spark, movielens_dir, tmp_path):
    output = tmp_path / "out"
    with pytest.raises(MovieRecError, match=r"ratings\.dat.*--partial"):
        ingest.run(spark, config(movielens_dir / "ml-1m", output, dataset="ml-1m"))
    assert not output.exists()
    cfg = config(movielens_dir / "ml-1m", output, dataset="ml-1m")
    cfg["ingest"]["partial"] = True
    assert ingest.run(spark, cfg) == 0
    report = report_of(output)
    assert report["missing_tables"] == ["ratings"]
    assert (report["tables"]["movies"]["loaded"], report["tables"]["users"]["loaded"]) == (3_883, 6_040)
    assert sorted(p.name for p in output.iterdir()) == ["ingest_report.json", "movies", "rejects", "users"]
    with pytest.raises(MovieRecError, match="--partial"):
        load.load_data(spark, {"ingested_dir": str(output)})
