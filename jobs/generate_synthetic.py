"""Write synthetic MovieLens-shaped tables in the layout jobs/ingest.py writes.

    ./spark-submit.sh jobs/generate_synthetic.py --output data/synthetic-25m
    ./spark-submit.sh jobs/generate_synthetic.py --ratings 1000000 --users 6500 \\
        --movies 3700 --seed 7 --output data/synthetic-1m

Output folder (published atomically; an earlier good output survives a
failed run):

    DIR/ratings/            Parquet, schemas.RATINGS
    DIR/movies/             Parquet, schemas.MOVIES
    DIR/rejects/            Parquet, schemas.REJECTS (empty: nothing is parsed)
    DIR/ingest_report.json  as jobs/ingest.py writes it (release "synthetic",
                            rating scale, summary and per-table counts), plus
                            the generator's parameters and stage timings

Defaults (conf/movierec.toml [synthetic]) are ml-25m's shape. Read the
result with ``--ingested DIR`` in any data job.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

from movierec_spark import MovieRecError, cli, io
from movierec_spark import columns as C
from movierec_spark.data import schemas
from movierec_spark.config import Config
from movierec_spark.progress import StageTimer
from movierec_spark.settings import SyntheticSettings
from movierec_spark.data.synthetic import RELEASE_NAME, SCALE, SyntheticSpec, generate, validate_spec

PROG = "generate_synthetic.py"
# The version of jobs/ingest.py's report layout this job writes.
REPORT_FORMAT_VERSION = 1
log = logging.getLogger(__name__)


def spec_from_config(cfg: Config) -> SyntheticSpec:
    section = SyntheticSettings.from_config(cfg.get("synthetic", {}))
    return SyntheticSpec(ratings=section.ratings, users=section.users, movies=section.movies, seed=section.seed)


def validate(cfg: Config) -> None:
    if not cfg.get("synthetic", {}).get("output_dir"):
        raise MovieRecError("say where to write the tables: --output DIR")
    io.check_output_dir(cfg["synthetic"]["output_dir"])
    validate_spec(spec_from_config(cfg))


def report(spec: SyntheticSpec, rows: dict[str, int], rated_movies: int, output: Path, seconds: dict[str, float]) -> dict:
    """The report jobs/ingest.py writes, for generated tables (nothing read, nothing rejected)."""
    tables = {
        table: {"file": None, "read": rows[table], "loaded": rows[table], "rejected": 0, "rejected_by_reason": {}}
        for table in ("ratings", "movies")
    }
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "release": RELEASE_NAME,
        "scale": {"low": SCALE.low, "high": SCALE.high, "step": SCALE.step},
        "source": f"{PROG} --ratings {spec.ratings} --users {spec.users} --movies {spec.movies} --seed {spec.seed}",
        "summary": {
            "ratings": rows["ratings"],
            "users": spec.users,  # every user rates at least once, by construction
            "movies": rows["movies"],
            "rated_movies": rated_movies,
            "rows_read": rows["ratings"] + rows["movies"],
            "rows_rejected": 0,
        },
        "tables": tables,
        "missing_tables": [],
        "synthetic": spec.as_dict(),
        "output": str(output),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": {name: round(value, 3) for name, value in seconds.items()},
    }


def run(spark, cfg: Config) -> int:
    validate(cfg)
    spec = spec_from_config(cfg)
    section = cfg["synthetic"]
    output = io.check_output_dir(section["output_dir"]).absolute()
    io.check_spark_writes_reach(spark, output)
    partitions = int(section.get("partitions", 0)) or None
    timer = StageTimer()
    with io.staged_output(output) as stage:
        data = generate(spark, spec, partitions)
        with timer.stage("ratings"):
            io.write_table(data.ratings, stage / "ratings")
        with timer.stage("movies"):
            io.write_table(data.movies.coalesce(1), stage / "movies")
            io.write_table(spark.createDataFrame([], schemas.REJECTS).coalesce(1), stage / "rejects")
        with timer.stage("check"):
            # Parquet footers hold row counts, so this reads almost nothing;
            # it guards the generator's exactness on every run.
            rows = {table: spark.read.parquet(str(stage / table)).count() for table in ("ratings", "movies")}
            if rows["ratings"] != spec.ratings or rows["movies"] != spec.movies:
                raise RuntimeError(f"generated {rows} rows, expected {spec.ratings} ratings and {spec.movies} movies")
            rated = spark.read.parquet(str(stage / "ratings")).select(C.MOVIE_ID).distinct().count()
        io.write_json(stage / io.REPORT_NAME, report(spec, rows, rated, output, timer.seconds))
    log.info(
        "wrote %s ratings by %s users of %s movies (%s rated) to %s",
        f"{spec.ratings:,}", f"{spec.users:,}", f"{spec.movies:,}", f"{rated:,}", output,
    )  # fmt: skip
    return cli.EXIT_OK


def main(argv=None) -> int:
    parser = cli.make_parser(PROG, "Write synthetic MovieLens-shaped Parquet tables (ml-25m's shape by default).")
    cli.add_flag(parser, "--ratings", "synthetic.ratings", type=cli.whole_number, help="exact number of ratings")
    cli.add_flag(parser, "--users", "synthetic.users", type=cli.whole_number, help="number of users, all of whom rate")
    cli.add_flag(parser, "--movies", "synthetic.movies", type=cli.whole_number, help="movies in the catalogue")
    cli.add_flag(parser, "--seed", "synthetic.seed", type=cli.whole_number, help="same seed, same tables")
    cli.add_flag(
        parser, "--partitions", "synthetic.partitions", type=cli.whole_number,
        help="ratings files to write; 0: one per 2 million ratings, at least one per core",
    )  # fmt: skip
    cli.add_flag(parser, "--output", "synthetic.output_dir", metavar="DIR", help="folder to write (replaced atomically)")
    return cli.run_job(PROG, parser, run, argv, validate)


if __name__ == "__main__":
    sys.exit(main())
