"""Building the SparkSession a job runs in.

Master, memory and cores come from spark-submit and ``conf/spark-defaults.conf``,
never from here; this module only names the application and points Spark at
a checkpoint directory, which ALS needs so that long fits do not die of
``StackOverflowError`` on their lineage.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def build_session(app_name: str) -> SparkSession:
    """The job's session; settings come from spark-submit and conf/."""
    spark = SparkSession.builder.appName(app_name).getOrCreate()
    log.debug("Spark %s, master %s", spark.version, spark.sparkContext.master)
    return spark


def set_checkpoint_dir(spark: SparkSession, path: str | Path) -> str:
    """Point Spark's RDD checkpoints at ``path`` and return it as a string.

    On a cluster this must be a shared filesystem (HDFS, an object store);
    a local path only works for ``local[*]`` masters.
    """
    location = str(path)
    spark.sparkContext.setCheckpointDir(location)
    return location


@contextmanager
def checkpoint_dir(spark: SparkSession, wanted: str | Path | None = None) -> Iterator[str]:
    """The folder a job checkpoints to, for the length of the ``with`` block.

    ``wanted`` (``[als] checkpoint_dir``) when given, else the session's own,
    else a temporary folder that is removed afterwards.
    """
    if wanted:
        yield set_checkpoint_dir(spark, wanted)
        return
    existing = spark.sparkContext.getCheckpointDir()
    if existing:
        yield existing
        return
    tmp = tempfile.mkdtemp(prefix="movierec-checkpoints-")
    try:
        yield set_checkpoint_dir(spark, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
