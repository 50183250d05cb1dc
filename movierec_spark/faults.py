"""Test-only fault injection: inert unless ``MOVIEREC_FAULTS`` names a fault.

The fault tests (tests/test_faults.py, tests/test_cluster.py) prove that a
job survives failures and never loses a good output. Some failures cannot be
timed from outside, so the code offers a few named points where a test can
make things go wrong on purpose. Normal runs never set the variable, and then
every function here is a no-op that leaves the query plan untouched.

``MOVIEREC_FAULTS`` is a comma-separated list of:

``pause-before-publish``
    :func:`movierec_spark.io.staged_output` has written everything into its
    staging folder and is about to move it into place. The process writes
    ``<point>.<pid>`` into ``$MOVIEREC_FAULTS_DIR`` (default: the current
    folder) and sleeps, so a test can SIGKILL the driver at that moment.
``fail-task-once``
    :func:`fail_task_once` makes the first attempt of every task that
    computes partition 0 of its DataFrame raise; Spark's retry (the second
    attempt) succeeds. Needs ``spark.task.maxFailures`` >= 2: a cluster's
    default is 4, a local master needs ``local[N,F]`` with F >= 2.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

FAULTS_ENV = "MOVIEREC_FAULTS"
FAULTS_DIR_ENV = "MOVIEREC_FAULTS_DIR"
PAUSE_BEFORE_PUBLISH = "pause-before-publish"
FAIL_TASK_ONCE = "fail-task-once"
KNOWN = (PAUSE_BEFORE_PUBLISH, FAIL_TASK_ONCE)

# A paused process that nobody kills carries on after this long, so a broken
# test cannot hang CI forever.
PAUSE_SECONDS = 300.0


def active(point: str) -> bool:
    """Whether ``point`` is listed in ``$MOVIEREC_FAULTS``."""
    listed = {p.strip() for p in os.environ.get(FAULTS_ENV, "").split(",") if p.strip()}
    unknown = listed.difference(KNOWN)
    if unknown:
        raise ValueError(f"{FAULTS_ENV} names unknown fault(s) {sorted(unknown)}; known: {KNOWN}")
    return point in listed


def pause(point: str) -> None:
    """If ``point`` is active: announce it in a marker file and sleep (bounded)."""
    if not active(point):
        return
    marker = Path(os.environ.get(FAULTS_DIR_ENV, ".")) / f"{point}.{os.getpid()}"
    log.warning("fault injection: paused at %s (marker %s)", point, marker)
    marker.write_text(str(os.getpid()))
    time.sleep(PAUSE_SECONDS)


def fail_task_once(df: "DataFrame") -> "DataFrame":
    """``df`` unchanged, or (with ``fail-task-once`` active) failing each first attempt of partition 0.

    The decision is made on the driver when the plan is built, so with the
    fault off the plan is exactly ``df``'s.
    """
    if not active(FAIL_TASK_ONCE):
        return df
    log.warning("fault injection: the first attempt of partition 0's tasks will fail")

    def fail_first_attempt(batches):
        from pyspark import TaskContext

        context = TaskContext.get()
        if context.partitionId() == 0 and context.attemptNumber() == 0:
            raise RuntimeError(f"injected task failure ({FAULTS_ENV}={FAIL_TASK_ONCE})")
        yield from batches

    return df.mapInArrow(fail_first_attempt, df.schema)
