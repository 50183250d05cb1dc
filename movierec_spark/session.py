"""Building the SparkSession a job runs in, classic or Spark Connect, and what jobs ask of it.

Master, memory and cores come from spark-submit and ``conf/spark-defaults.conf``,
never from here; this module names the application, points Spark at a
checkpoint directory, which ALS needs so that long fits do not die of
``StackOverflowError`` on their lineage, and answers the few questions jobs
ask of the session (master, cores, a setting) the same way whether it is a
classic session, with a SparkContext and a JVM in this process, or a Spark
Connect client (``--remote sc://HOST:PORT`` or ``SPARK_REMOTE``), which has
neither: nothing else in the library touches ``sparkContext``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pyspark.sql import SparkSession

from movierec_spark import MovieRecError

log = logging.getLogger(__name__)

# The package zip spark-submit.sh ships with --py-files; a Connect server
# gets it as an artifact instead, for the Python code it runs (UDFs).
PACKAGE_ENV = "MOVIEREC_PACKAGE"
# Where a Connect server keeps checkpoints: set when the server starts.
CHECKPOINT_CONF = "spark.checkpoint.dir"


def build_session(app_name: str) -> SparkSession:
    """The job's session; settings come from spark-submit and conf/."""
    spark = SparkSession.builder.appName(app_name).getOrCreate()
    if is_connect(spark):
        package = os.environ.get(PACKAGE_ENV)
        if package:
            spark.addArtifacts(package, pyfile=True)
        log.info("Spark Connect %s (Spark %s, server master %s)", os.environ.get("SPARK_REMOTE", ""),
                 spark.version, master(spark))
    else:
        log.debug("Spark %s, master %s", spark.version, master(spark))
    return spark


def is_connect(spark) -> bool:
    """Whether ``spark`` is a Spark Connect client: no SparkContext and no JVM in this process."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def master(spark) -> str:
    """The master the session's Spark runs on (under Connect, the server's)."""
    if is_connect(spark):
        return spark.conf.get("spark.master", None) or "unknown"
    return spark.sparkContext.master


def setting(spark, key: str, default: str | None = None) -> str | None:
    """A Spark setting as the session's Spark sees it (under Connect, the server's)."""
    if is_connect(spark):
        return spark.conf.get(key, None) or default
    return spark.sparkContext.getConf().get(key, default)


_parallelism: dict[int, int] = {}


def default_parallelism(spark) -> int:
    """The cores Spark spreads work over (``local[N]``: N); asked of a Connect server once."""
    if not is_connect(spark):
        return spark.sparkContext.defaultParallelism
    if id(spark) not in _parallelism:
        from pyspark.sql import functions as F

        configured = setting(spark, "spark.default.parallelism")
        # spark.range without a partition count is split over the default parallelism.
        _parallelism[id(spark)] = int(configured) if configured else 1 + spark.range(0, 1 << 16).select(
            F.spark_partition_id().alias("part")).agg(F.max("part")).first()[0]
    return _parallelism[id(spark)]


def cancel_all(spark) -> None:
    """Stop everything the session runs, quietly, and wait (at most 15 s) for Spark to end it."""
    if is_connect(spark):
        spark.interruptAll()
        return
    context = spark.sparkContext
    context.setLogLevel("OFF")
    context.cancelAllJobs()
    for _ in range(150):
        if not context.statusTracker().getActiveJobsIds():
            break
        time.sleep(0.1)


def cut_plan(df):
    """Under Spark Connect, ``df`` computed on the server behind a short plan; a classic ``df`` as it is.

    A Connect client builds every query's whole plan as nested protobuf,
    whose decoder stops at a depth of 100: a frame that chains several
    models' predictions gets there. A local checkpoint on the server cuts
    the plan; a classic session has no such limit.
    """
    return df.localCheckpoint(eager=True) if is_connect(df.sparkSession) else df


def materialize(df):
    """``df`` computed now and kept for reuse (classic: cached and counted; Connect: :func:`cut_plan`)."""
    if is_connect(df.sparkSession):
        return cut_plan(df)
    df = df.cache()
    df.count()
    return df


# --- checkpoints ---


def set_checkpoint_dir(spark: SparkSession, path: str | Path) -> str:
    """Point Spark's RDD checkpoints at ``path`` and return it as a string.

    On a cluster this must be a shared filesystem (HDFS, an object store);
    a local path only works for ``local[*]`` masters. A Connect client
    cannot set it: the server's ``spark.checkpoint.dir`` holds.
    """
    location = str(path)
    spark.sparkContext.setCheckpointDir(location)
    return location


def current_checkpoint_dir(spark) -> str | None:
    """Where the session checkpoints now, if anywhere."""
    if is_connect(spark):
        return setting(spark, CHECKPOINT_CONF)
    return spark.sparkContext.getCheckpointDir()


@contextmanager
def checkpoint_dir(spark: SparkSession, wanted: str | Path | None = None) -> Iterator[str]:
    """The folder a job checkpoints to, for the length of the ``with`` block.

    ``wanted`` (``[als] checkpoint_dir``) when given, else the session's own,
    else a temporary folder that is removed afterwards. Under Spark Connect
    the server's ``spark.checkpoint.dir`` is the only one there can be: a
    server without one, or a different ``wanted``, is refused in one line.
    """
    if is_connect(spark):
        server = current_checkpoint_dir(spark)
        if not server:
            raise MovieRecError(
                "the Spark Connect server has no checkpoint directory, which model fits need (long ALS fits "
                f"overflow the stack without one): start it with --conf {CHECKPOINT_CONF}=DIR, a folder its "
                "executors share")
        if wanted and str(wanted) != server:
            raise MovieRecError(
                f"[als] checkpoint_dir (--checkpoint-dir) {wanted} cannot be set from a Spark Connect client; "
                f"the server checkpoints to {server}: leave the setting empty")
        log.info("Spark Connect: checkpoints go to the server's %s", server)
        yield server
        return
    if wanted:
        yield set_checkpoint_dir(spark, wanted)
        return
    existing = current_checkpoint_dir(spark)
    if existing:
        yield existing
        return
    tmp = tempfile.mkdtemp(prefix="movierec-checkpoints-")
    try:
        yield set_checkpoint_dir(spark, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
