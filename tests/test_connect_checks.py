"""Issue 22, Spark-free: what a Spark Connect run refuses, in one line, before any work.

A stand-in Connect session (a class that says it lives in
``pyspark.sql.connect``, as the real one does) answers ``conf.get`` and
writes probes as a server on this machine, or on another one, would.
tests/test_connect.py runs the jobs through a real server.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from movierec_spark import MovieRecError, io, session
from movierec_spark.config import absolute_paths
from tests.cluster import ROOT, submit_env


class _Writer:
    def __init__(self, lands: bool):
        self.lands = lands

    def text(self, path: str) -> None:
        if self.lands:  # a server sharing this filesystem
            Path(path).mkdir(parents=True)
            (Path(path) / "_SUCCESS").write_text("")


class _Frame:
    def __init__(self, lands: bool):
        self.write = _Writer(lands)

    def coalesce(self, n):
        return self


class FakeConnectSession:
    __module__ = "pyspark.sql.connect.session"

    def __init__(self, conf: dict[str, str] | None = None, lands: bool = True):
        values = dict(conf or {})
        self.conf = type("Conf", (), {"get": staticmethod(lambda key, default=None: values.get(key, default))})()
        self.lands = lands

    def createDataFrame(self, rows, schema):  # noqa: N802 - Spark's name
        return _Frame(self.lands)


def test_the_stand_in_passes_for_a_connect_session_and_a_classic_one_does_not(spark):
    assert session.is_connect(FakeConnectSession())
    assert not session.is_connect(spark)


def test_a_connect_server_without_a_checkpoint_directory_is_refused_naming_the_setting():
    with pytest.raises(MovieRecError) as caught:
        with session.checkpoint_dir(FakeConnectSession()):
            pass
    assert str(caught.value) == (
        "the Spark Connect server has no checkpoint directory, which model fits need (long ALS fits overflow "
        "the stack without one): start it with --conf spark.checkpoint.dir=DIR, a folder its executors share")


def test_under_connect_the_servers_checkpoint_directory_is_the_one_and_another_is_refused():
    server = FakeConnectSession({"spark.checkpoint.dir": "/shared/checkpoints"})
    with session.checkpoint_dir(server) as where:
        assert where == "/shared/checkpoints"
    with session.checkpoint_dir(server, "/shared/checkpoints") as where:
        assert where == "/shared/checkpoints"
    with pytest.raises(MovieRecError, match=r"\[als\] checkpoint_dir \(--checkpoint-dir\) /elsewhere cannot be set"):
        with session.checkpoint_dir(server, "/elsewhere"):
            pass


def test_connect_answers_master_cores_and_settings_from_the_servers_conf():
    server = FakeConnectSession({"spark.master": "yarn", "spark.default.parallelism": "48",
                                 "spark.driver.memory": "16g"})  # fmt: skip
    assert session.master(server) == "yarn"
    assert session.default_parallelism(server) == 48
    assert session.setting(server, "spark.driver.memory", "1g") == "16g"
    assert session.setting(server, "spark.executor.memory", "1g") == "1g"


def test_an_output_folder_the_servers_writes_reach_passes_and_the_probe_goes(tmp_path):
    io.check_spark_writes_reach(FakeConnectSession(lands=True), tmp_path / "new" / "out")
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_the_server_cannot_reach_is_refused_before_any_work(tmp_path):
    with pytest.raises(MovieRecError) as caught:
        io.check_spark_writes_reach(FakeConnectSession(lands=False), tmp_path / "out")
    message = str(caught.value)
    assert message.startswith(f"output folder {tmp_path / 'out'}: the Spark Connect server writes to its own "
                              f"filesystem, and its test write to {tmp_path}/.movierec-probe-")  # fmt: skip
    assert message.endswith("did not appear here; give a folder this machine and the server share")


def test_an_output_uri_is_refused_under_connect_and_nothing_is_probed_for_a_classic_session(spark, tmp_path):
    with pytest.raises(MovieRecError, match="under Spark Connect the output must be a folder this machine and the "
                                            "server share"):  # fmt: skip
        io.check_spark_writes_reach(FakeConnectSession(), "s3a://bucket/out")
    io.check_spark_writes_reach(spark, tmp_path / "out")  # classic: nothing to check, nothing written
    assert list(tmp_path.iterdir()) == []


def test_relative_paths_are_made_absolute_for_a_server_with_another_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = {
        "data": {"source": "release/ml-latest-small", "ingested_dir": "ingest", "cache_dir": "", "dataset": "ml-1m"},
        "train_als": {"output": "out/train"},
        "split": {"train_ratings_file": "/abs/u1.base", "test_ratings_file": "hdfs://nn/u1.test"},
        "recommend": {"model": "~/model", "top_n": 10},
    }
    out = absolute_paths(cfg)
    assert out["data"] == {"source": str(tmp_path / "release/ml-latest-small"), "ingested_dir": str(tmp_path / "ingest"),
                           "cache_dir": "", "dataset": "ml-1m"}  # fmt: skip
    assert out["train_als"] == {"output": str(tmp_path / "out/train")}
    assert out["split"] == cfg["split"]
    assert out["recommend"] == {"model": str(Path.home() / "model"), "top_n": 10}


@pytest.mark.parametrize(
    "args, line",
    [
        (["--master", "local[2]", "--remote", "sc://127.0.0.1:15002"],
         "spark-submit.sh: error: --master and --remote both given: a Spark Connect server has its own master"),
        (["--remote", "http://127.0.0.1:15002"],
         "spark-submit.sh: error: --remote must be a Spark Connect URL, sc://HOST:PORT, got 'http://127.0.0.1:15002'"),
        (["--remote", "sc://127.0.0.1:15002", "--driver-memory", "8g"],
         "spark-submit.sh: error: --driver-memory does not apply to a Spark Connect client (--remote): the server "
         "has its own; only --conf settings of the session travel"),
        (["--remote", "sc://127.0.0.1:15002", "--py-files", "extra.zip"],
         "spark-submit.sh: error: --py-files does not apply to a Spark Connect client; the server takes the library "
         "as an artifact"),
    ],
)
def test_the_wrapper_refuses_a_bad_remote_in_one_line(tmp_path, args, line):
    result = subprocess.run([str(ROOT / "spark-submit.sh"), *args, str(ROOT / "jobs" / "eda.py"), "--help"],
                            env=submit_env(tmp_path), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (result.returncode, result.stderr.strip()) == (2, line)
