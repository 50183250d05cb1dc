"""Write synthetic MovieLens-shaped tables in the layout jobs/ingest.py writes.

    ./spark-submit.sh jobs/generate_synthetic.py --output data/synthetic-25m
    ./spark-submit.sh jobs/generate_synthetic.py --ratings 1000000 --users 6500 \\
        --movies 3700 --seed 7 --output data/synthetic-1m

Output folder (published atomically; an earlier good output survives a
failed run):

    DIR/ratings/            Parquet, schemas.RATINGS
    DIR/movies/             Parquet, schemas.MOVIES
    DIR/rejects/            Parquet, schemas.REJECTS (empty: nothing is parsed)
    DIR/ingest_report.json  release name, rating scale, row counts, the
                            generator's parameters and stage timings

Defaults (conf/movierec.toml [synthetic]) are ml-25m's shape. Read the
result with ``--ingested DIR`` in any data job.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from movierec_spark import MovieRecError, cli
from movierec_spark import schemas
from movierec_spark.config import Config
from movierec_spark.io import staged_output, write_json
from movierec_spark.progress import StageTimer
from movierec_spark.synthetic import RELEASE_NAME, SCALE, SyntheticSpec, generate, validate_spec

PROG = "generate_synthetic.py"
REPORT_NAME = "ingest_report.json"
log = logging.getLogger(__name__)


def spec_from_config(cfg: Config) -> SyntheticSpec:
    section = cfg.get("synthetic", {})
    return SyntheticSpec(
        ratings=int(section.get("ratings", SyntheticSpec.ratings)),
        users=int(section.get("users", SyntheticSpec.users)),
        movies=int(section.get("movies", SyntheticSpec.movies)),
        seed=int(section.get("seed", SyntheticSpec.seed)),
    )


def validate(cfg: Config) -> None:
    if not cfg.get("synthetic", {}).get("output_dir"):
        raise MovieRecError("say where to write the tables: --output DIR")
    validate_spec(spec_from_config(cfg))


def report(spec: SyntheticSpec, rows: dict[str, int], seconds: dict[str, float]) -> dict:
    return {
        "release": RELEASE_NAME,
        "scale": {"low": SCALE.low, "high": SCALE.high, "step": SCALE.step},
        "counts": rows,
        "synthetic": spec.as_dict(),
        "seconds": {name: round(value, 3) for name, value in seconds.items()},
    }


def run(spark, cfg: Config) -> int:
    spec = spec_from_config(cfg)
    section = cfg["synthetic"]
    partitions = int(section.get("partitions", 0)) or None
    timer = StageTimer()
    with staged_output(section["output_dir"]) as staging:
        data = generate(spark, spec, partitions)
        with timer.stage("ratings"):
            data.ratings.write.parquet(str(staging / "ratings"))
        with timer.stage("movies"):
            data.movies.coalesce(1).write.parquet(str(staging / "movies"))
            spark.createDataFrame([], schemas.REJECTS).coalesce(1).write.parquet(str(staging / "rejects"))
        with timer.stage("check"):
            # Parquet footers hold row counts: a cheap guard on exactness.
            rows = {
                table: spark.read.parquet(str(staging / table)).count()
                for table in ("ratings", "movies", "rejects")
            }
            if rows["ratings"] != spec.ratings or rows["movies"] != spec.movies:
                raise RuntimeError(f"generated {rows} rows, expected {spec.ratings} ratings and {spec.movies} movies")
        write_json(staging / REPORT_NAME, report(spec, rows, timer.seconds))
    log.info("wrote %s ratings of %s users on %s movies to %s",
             f"{spec.ratings:,}", f"{spec.users:,}", f"{spec.movies:,}", Path(section["output_dir"]))  # fmt: skip
    return cli.EXIT_OK


def main(argv=None) -> int:
    parser = cli.make_parser(PROG, "Write synthetic MovieLens-shaped Parquet tables (ml-25m's shape by default).")
    cli.add_flag(parser, "--ratings", "synthetic.ratings", type=cli.positive_int, help="exact number of ratings")
    cli.add_flag(parser, "--users", "synthetic.users", type=cli.positive_int, help="number of users, all of whom rate")
    cli.add_flag(parser, "--movies", "synthetic.movies", type=cli.positive_int, help="movies in the catalogue")
    cli.add_flag(parser, "--seed", "synthetic.seed", type=int, help="same seed, same tables")
    cli.add_flag(
        parser, "--partitions", "synthetic.partitions", type=cli.non_negative_int,
        help="ratings files to write; 0: one per 2 million ratings, at least one per core",
    )  # fmt: skip
    cli.add_flag(parser, "--output", "synthetic.output_dir", metavar="DIR", help="folder to write (replaced atomically)")
    return cli.run_job(PROG, parser, run, argv, validate)


if __name__ == "__main__":
    sys.exit(main())
