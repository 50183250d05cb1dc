"""Data-quality and exploration report for one MovieLens release.

Reads a release (``--dataset NAME --source PATH``) or the Parquet tables
``jobs/ingest.py`` wrote (``--ingested DIR``), computes every aggregate of
:mod:`movierec_spark.eda.explore` in Spark, collects only those small results
(through Arrow) and writes, atomically, to ``--output DIR``::

    report.html           one self-contained page: plots embedded, tables, captions
    report.md             the same report in Markdown, linking plots/*.png
    plots/<name>.png      the plots (matplotlib)
    tables/<name>.parquet every aggregate, with Spark's column types
    tables/<name>.csv     the same table for a spreadsheet
    summary.json          headline figures, settings, rows per table, timings

and prints a short summary (counts, density, top movies) to the console.

    ./spark-submit.sh jobs/eda.py --dataset ml-100k --source ../shared/data/movielens/ml-100k --output out/eda-ml-100k
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Sequence

from movierec_spark import MovieRecError
from movierec_spark import cli, io
from movierec_spark.config import Config
from movierec_spark.settings import EdaSettings

PROG = "eda.py"
log = logging.getLogger("jobs.eda")

def settings(cfg: Config) -> EdaSettings:
    """The [eda] section (movierec_spark.settings checks its values), its paths checked.

    ``top_shares`` sorted, each share once.
    """
    eda = EdaSettings.from_config(cfg.get("eda", {}))
    if not eda.output.strip():
        raise MovieRecError("no output folder: pass --output DIR (config: [eda] output)")
    io.check_job_paths(cfg.get("data"), eda.output)
    return eda.model_copy(update={"top_shares": sorted(set(eda.top_shares))})


def build_parser():
    parser = cli.make_parser(
        PROG,
        "Data-quality and exploration report of a MovieLens release: tables (Parquet, CSV), "
        "plots, report.html and report.md.",
    )
    cli.add_data_flags(parser)
    cli.add_flag(parser, "--output", "eda.output", metavar="DIR", help="folder the report is written to")
    group = parser.add_argument_group("report")
    cli.add_flag(
        group,
        "--min-user-ratings",
        "eda.min_user_ratings",
        metavar="N",
        type=cli.whole_number,
        help="minimum support: users with fewer ratings are reported as below it",
    )
    cli.add_flag(
        group,
        "--min-movie-ratings",
        "eda.min_movie_ratings",
        metavar="N",
        type=cli.whole_number,
        help="minimum support: movies with fewer ratings are reported as below it",
    )
    cli.add_flag(
        group,
        "--damping",
        "eda.damping",
        metavar="M",
        type=cli.number,
        help="pseudo-ratings at the global mean in each movie's damped mean (best-rated list)",
    )
    cli.add_flag(group, "--top-n", "eda.top_n", metavar="N", type=cli.whole_number, help="movies in the most- and best-rated lists")
    return parser


def run(spark: Any, cfg: Config) -> int:
    from movierec_spark.data.load import load_data
    from movierec_spark.eda.release_report import explore_release

    eda = settings(cfg)
    io.check_spark_writes_reach(spark, eda.output)
    loaded = load_data(spark, cfg.get("data", {}))
    explore_release(spark, loaded, eda)
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_job(PROG, build_parser(), run, argv, validate=settings)


if __name__ == "__main__":
    sys.exit(main())
