"""One local SparkSession for the whole test run, and paths to real data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
# Real MovieLens files live beside the repository, never inside it.
MOVIELENS_DIR = Path(os.environ.get("MOVIELENS_DATA", ROOT.parent / "shared" / "data" / "movielens"))

JAVA_HELP = (
    "Java 17+ is needed to run Spark: install it (Debian/Ubuntu: "
    "sudo apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17) "
    "and put it on PATH or set JAVA_HOME"
)


def _require_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        pytest.exit(f"Java not found. {JAVA_HELP}", returncode=3)
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    try:
        major = int(out.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        major = 0
    if major < 17:
        pytest.exit(f"Java at {java} is too old ({out.splitlines()[0] if out else '?'}). {JAVA_HELP}", returncode=3)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A local[2] session with the project's conf/, UI off, temp dirs under pytest's."""
    _require_java()
    tmp = tmp_path_factory.mktemp("spark")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["SPARK_CONF_DIR"] = str(CONF_DIR)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("movierec-tests")
        .config("spark.ui.enabled", "false")
        # Several pytest runs may share a 2-core CI machine; keep each JVM modest.
        .config("spark.driver.memory", "2g")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.local.dir", str(tmp / "local"))
        .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
        .getOrCreate()
    )
    session.sparkContext.setCheckpointDir(str(tmp / "checkpoints"))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    """The shared real MovieLens files; skipped where they are absent.

    CI sets MOVIEREC_REQUIRE_SHARED_DATA=1 so that absence fails instead.
    """
    if not (MOVIELENS_DIR / "ml-latest-small" / "ratings.csv").exists():
        message = f"real MovieLens files not found under {MOVIELENS_DIR} (set MOVIELENS_DATA)"
        if os.environ.get("MOVIEREC_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return MOVIELENS_DIR


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """A real standalone cluster on 127.0.0.1: a master and two 1-core, 1g workers.

    Module-scoped: started by the first cluster test of a module and stopped
    after its last one, also when tests fail. Tests that kill a worker call
    ``ensure_workers()`` afterwards.
    """
    _require_java()
    from tests.cluster import StandaloneCluster

    cluster = StandaloneCluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    """A real Spark Connect server on 127.0.0.1 (tests/connect.py), for a module; stopped also when tests fail."""
    _require_java()
    from tests.connect import ConnectServer

    server = ConnectServer(tmp_path_factory.mktemp("connect"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def in_process(spark):
    """Run a job's main(argv) on the test session (local[2]): the local run."""
    import importlib
    import logging

    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in ("movierec_spark", "jobs", "__main__")}  # fmt: skip
    stop = spark.stop
    spark.stop = lambda: None  # run_job stops its session; this one is shared
    import movierec_spark.session as session

    build = session.build_session
    session.build_session = lambda _name: spark

    def run(job: str, argv: list[str]) -> int:
        return importlib.import_module(f"jobs.{job}").main(argv)

    try:
        yield run
    finally:
        session.build_session = build
        spark.stop = stop
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate
