"""Ingest a MovieLens release into Parquet tables, accounting for every line.

    ./spark-submit.sh jobs/ingest.py --dataset ml-100k --source ../shared/data/movielens --output output/ingest

writes under ``--output DIR``:

    ratings/ movies/          Parquet, schemas.RATINGS / schemas.MOVIES
    tags/ links/ users/       where the release has them
    rejects/                  every line not loaded: table, reason, raw, source_file
    ingest_report.json        per table rows read / loaded / rejected (by reason),
                              distinct users and movies, the rating scale

Rows read = rows loaded + rows rejected for every table. The output is
published atomically: a run that fails part-way leaves an earlier output in
DIR intact, and running again over the same DIR replaces it safely. A run
with rejects still succeeds; it says how many and where they are.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from movierec_spark import MovieRecError, cli, io
from movierec_spark.config import Config
from movierec_spark.progress import StageTimer
from movierec_spark.data.releases import get_release

PROG = "ingest"
log = logging.getLogger(__name__)


def build_parser():
    parser = cli.make_parser(PROG, "Load a MovieLens release into Parquet tables plus rejects and a report.")
    cli.add_data_flags(parser)
    group = parser.add_argument_group("ingest")
    cli.add_flag(group, "--output", "ingest.output", metavar="DIR", help="output folder (replaced atomically)")
    group.add_argument(
        "--partial",
        dest="ingest.partial",
        action="store_const",
        const=True,
        default=None,
        help="ingest the tables whose files are present when a release folder is incomplete "
        "(e.g. ml-1m without ratings.dat); the report lists the missing ones (config: [ingest] partial)",
    )
    return parser


def validate(cfg: Config) -> None:
    """What the settings cannot know, before any JVM starts: a release to read, the paths."""
    data = cfg.get("data", {})
    if data.get("ingested_dir"):
        raise MovieRecError("ingest reads a release (--dataset, --source), not --ingested output")
    if not cfg.get("ingest", {}).get("output"):
        raise MovieRecError("no output folder: pass --output DIR")
    io.check_job_paths(data, cfg["ingest"]["output"])


def _refuse_overlap(source: Path, output: Path) -> None:
    """Publishing replaces ``output`` as a whole: it must not hold the files being read."""
    source, output = source.resolve(), output.resolve()
    if source == output or output in source.parents:
        raise MovieRecError(
            f"--output {output} contains the release files being read ({source}); choose another output folder"
        )


def run(spark, cfg: Config) -> int:
    """Ingest ``cfg["data"]``'s release into ``cfg["ingest"]["output"]``; returns an exit code."""
    from pyspark import StorageLevel

    from movierec_spark.data import load

    validate(cfg)
    data_cfg, ingest_cfg = cfg["data"], cfg.get("ingest", {})
    partial = bool(ingest_cfg.get("partial"))
    output = io.check_output_dir(ingest_cfg["output"]).absolute()
    io.check_spark_writes_reach(spark, output)
    release = get_release(data_cfg.get("dataset"))
    timer = StageTimer()
    with timer.stage("find source"):
        folder = load.resolve_release_folder(release, data_cfg, partial=partial)
    _refuse_overlap(folder, output)
    log.info("ingesting %s from %s into %s", release.name, folder, output)
    loaded = load.load_release(spark, release, folder, partial=partial)
    # Parse each file once: the tables, the rejects and the counts all read these.
    checked = [df.persist(StorageLevel.MEMORY_AND_DISK) for df in loaded.checked.values()]
    try:
        # Counted first: an empty ratings table is refused before anything is written.
        with timer.stage("count"):
            report = load.ingest_report(loaded)
        _refuse_no_ratings(report)
        with io.staged_output(output) as stage:
            with timer.stage("write tables"):
                for name, table in loaded.tables().items():
                    io.write_table(table, stage / name)
                io.write_table(loaded.rejects.coalesce(1), stage / "rejects")
            report.update(
                output=str(output),
                created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                seconds={k: round(v, 3) for k, v in timer.seconds.items()},
            )
            io.write_json(stage / io.REPORT_NAME, report)
    finally:
        for df in checked:
            df.unpersist()
    _warn_about(report)
    print(summary_text(report, output))
    return cli.EXIT_OK


def _refuse_no_ratings(report: dict[str, Any]) -> None:
    """An empty ratings table is a broken release, not an output to publish."""
    ratings = report["tables"].get("ratings")
    if ratings is not None and not ratings["loaded"]:
        reasons = ", ".join(f"{k} {v}" for k, v in ratings["rejected_by_reason"].items())
        raise MovieRecError(
            f"no ratings loaded from {ratings['file']}: {ratings['read']} lines read"
            + (f", all rejected ({reasons})" if reasons else "")
            + "; give a release whose ratings file has ratings"
        )


def _warn_about(report: dict[str, Any]) -> None:
    for table, counts in report["tables"].items():
        if counts["read"] and not counts["loaded"]:
            reasons = ", ".join(counts["rejected_by_reason"])
            log.warning(
                "every line of %s was rejected (%s): is --dataset %s right for this source?",
                counts["file"], reasons, report["release"],
            )  # fmt: skip
    if report["missing_tables"]:
        log.warning("not ingested (files absent): %s", ", ".join(report["missing_tables"]))


def summary_text(report: dict[str, Any], output: Path) -> str:
    """The table a person reads at the end of a run."""
    lines = [f"{report['release']} -> {output}", f"{'table':<9}{'read':>12}{'loaded':>12}{'rejected':>12}"]
    for table, counts in report["tables"].items():
        lines.append(f"{table:<9}{counts['read']:>12,}{counts['loaded']:>12,}{counts['rejected']:>12,}")
    s = report["summary"]
    lines.append(
        f"{s['ratings']:,} ratings by {s['users']:,} users of {s['rated_movies']:,} movies "
        f"({s['movies']:,} in the movies table)"
    )
    rejected = s["rows_rejected"]
    if rejected:
        reasons: dict[str, int] = {}
        for counts in report["tables"].values():
            for reason, n in counts["rejected_by_reason"].items():
                reasons[reason] = reasons.get(reason, 0) + n
        detail = ", ".join(f"{r} {n:,}" for r, n in reasons.items())
        lines.append(f"{rejected:,} lines rejected ({detail}): see {output / 'rejects'} and {io.REPORT_NAME}")
    else:
        lines.append("no lines rejected")
    if report["missing_tables"]:
        lines.append(f"not ingested (files absent): {', '.join(report['missing_tables'])}")
    return "\n".join(lines)


def main(argv=None) -> int:
    return cli.run_job(PROG, build_parser(), run, argv, validate)


if __name__ == "__main__":
    sys.exit(main())
