"""JVM options ``spark-submit.sh`` adds for a job, chosen from the job's arguments before the JVM starts.

A short local run spends most of its time in code that runs a few times
(query planning, code generation, job set-up), and the C2 JIT compiler's
work on it costs a 2-core machine about as much CPU as the job itself; a
long run needs C2's code. So a job on a local master whose data holds at
most :data:`QUICK_JVM_RATINGS` ratings runs its JVM with the C1 compiler
only (``-XX:TieredStopAtLevel=1``). The measurements behind the threshold:
docs/performance.md and bench/NOTES.md.

The number of ratings comes from what the arguments name, with no JVM and
no Spark: ``--ingested DIR`` (its ``ingest_report.json``), ``--ratings N``
(synthetic data), else the release (``--dataset``, or ``[data] dataset``
of the config, ``--config FILE`` included) and its published count. Jobs
that read no ratings (recommend, similar) are short runs.

    python -m movierec_spark.launch jobs/train_als.py --dataset ml-25m   # prints the options, one per line
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

QUICK_JVM_RATINGS = 2_000_000
QUICK_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1",)


def _flag(args: Sequence[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``args`` (the last one given), else None."""
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def ratings_named(args: Sequence[str]) -> int | None:
    """How many ratings the job's arguments name, or None when that cannot be known without reading the data."""
    from movierec_spark.config import load_config
    from movierec_spark.data.releases import RELEASES

    synthetic = _flag(args, "--ratings")
    if synthetic is not None:
        return int(synthetic) if synthetic.isdigit() else None
    try:
        data = load_config(_flag(args, "--config")).get("data", {})
    except Exception:  # noqa: BLE001 - the job itself reports a bad config file
        return None
    ingested = _flag(args, "--ingested") or data.get("ingested_dir")
    if ingested:
        try:
            report = json.loads((Path(ingested).expanduser() / "ingest_report.json").read_text())
            return int(report["summary"]["ratings"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    release = RELEASES.get(_flag(args, "--dataset") or data.get("dataset", ""))
    return release.published_ratings if release is not None else None


def jvm_options(job: str, args: Sequence[str]) -> list[str]:
    """The driver JVM options for running ``job`` with ``args`` on a local master."""
    if Path(job).stem in ("recommend", "similar"):
        return list(QUICK_JVM_OPTIONS)
    ratings = ratings_named(args)
    return list(QUICK_JVM_OPTIONS) if ratings is not None and ratings <= QUICK_JVM_RATINGS else []


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m movierec_spark.launch JOB [job arguments]", file=sys.stderr)
        return 2
    for option in jvm_options(argv[0], argv[1:]):
        print(option)
    return 0


if __name__ == "__main__":
    sys.exit(main())
