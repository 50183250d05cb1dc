"""The jobs on Spark Connect (issue 22): a real local server, the same commands, the classic results.

A Spark Connect server from the installed PySpark runs on 127.0.0.1 for the
whole module (``connect_server``, tests/conftest.py; stopped afterwards, also
on failure), with its own working folder and a checkpoint directory. The data
is the ratings of users 1..40 of ml-latest-small. Through
``./spark-submit.sh --remote sc://...`` (eda through ``SPARK_REMOTE``), with
paths relative to the jobs' folder, run: ingest, eda, train_als (the bias and
als models, the example ratings folded in) and recommend and similar, both
on Spark (a copy of the model without its movie table, so the Spark path
serves it; recommend's file holds two people and 1,001 more, over
``LOCAL_MAX_USERS``, so they fold in on the server's executors). train_als runs once more in this process, on
the classic test session, with the same flags and ``--solver mllib``; the
tests compare.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.cluster import ROOT, fake_java, meaningful_stderr, run_submit, submit_env, write_tiny_release

pytestmark = [pytest.mark.connect, pytest.mark.slow]

TINY_USERS = 40
TRAIN_ARGS = [
    "--models", "bias,als", "--rank", "4", "--max-iter", "6", "--checkpoint-interval", "2", "--seed", "7",
    "--k", "5", "--predictions-sample", "0", "--custom-ratings", "custom.csv",
]  # fmt: skip
CUSTOM_RATINGS = "user,movie,rating\nann,The Matrix,5\nann,296,4.5\nann,588,1\nbob,356,5\nbob,527,4\nbob,2959,1.5\n"
MOVIE = "Forrest Gump (1994)"
# Users 1..40 rate few movies each: a low guard, so the tables have rows to compare.
RECOMMEND_ARGS = ["--top-n", "5", "--min-ratings", "2"]


def _job(name: str) -> str:
    return str(ROOT / "jobs" / f"{name}.py")


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory, movielens_dir) -> Path:
    work = tmp_path_factory.mktemp("connect-runs")
    write_tiny_release(movielens_dir / "ml-latest-small", work / "release", TINY_USERS)
    (work / "custom.csv").write_text(CUSTOM_RATINGS)
    many = [f"p{u},{m},{1 + (u + m) % 5}" for u in range(1001) for m in (296, 356, 527)]
    (work / "many.csv").write_text(CUSTOM_RATINGS + "\n".join(many) + "\n")
    return work


def _start(args: list[str], work: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(ROOT / "spark-submit.sh"), *args], cwd=work, env=env or submit_env(work),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def _finished(proc: subprocess.Popen, timeout: float = 600) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return _ok(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))


@pytest.fixture(scope="module")
def runs(connect_server, work, in_process) -> dict[str, subprocess.CompletedProcess]:
    """Every job once through the server, paths relative to ``work``: name -> finished process.

    Jobs that do not need each other's output run side by side (the server
    serves several sessions), and the classic run of :func:`classic` runs
    in this process meanwhile: most of each job is waiting.
    """
    remote = ["--remote", connect_server.url]
    done = {}
    done["ingest"] = _ok(run_submit([*remote, _job("ingest"), "--source", "release/ml-latest-small",
                                     "--dataset", "ml-latest-small", "--output", "ingest"], work))  # fmt: skip
    env = submit_env(work, {"SPARK_REMOTE": connect_server.url})
    eda = _start([_job("eda"), "--ingested", "ingest", "--output", "eda"], work, env=env)
    train = _start([*remote, _job("train_als"), "--ingested", "ingest", *TRAIN_ARGS, "--output", "train"], work)
    _classic_runs(in_process, work)
    done["eda"], done["train_als"] = _finished(eda), _finished(train)
    # Without its movie table the model is served by Spark, not by serving.local.
    shutil.copytree(work / "train" / "model", work / "model-in-spark")
    shutil.rmtree(work / "model-in-spark" / "movie_table")
    recommend = _start([*remote, _job("recommend"), "--model", "model-in-spark", *RECOMMEND_ARGS,
                        "--custom-ratings", "many.csv", "--output", "recommend"], work)  # fmt: skip
    similar = _start([*remote, _job("similar"), "--model", "model-in-spark", "--movie", MOVIE, *RECOMMEND_ARGS,
                      "--output", "similar"], work)  # fmt: skip
    done["recommend"], done["similar"] = _finished(recommend), _finished(similar)
    return done


@pytest.fixture(scope="module")
def classic(runs, work) -> Path:
    """The classic run's outputs (made by :func:`runs`, while the Connect jobs ran)."""
    return work / "classic"


def _classic_runs(in_process, work: Path) -> None:
    """train_als, recommend and similar in this process on the classic session, same flags, MLlib's solver."""
    out = work / "classic"
    argv = ["--ingested", str(work / "ingest"), *[a if a != "custom.csv" else str(work / a) for a in TRAIN_ARGS]]
    assert in_process("train_als", [*argv, "--solver", "mllib", "--output", str(out / "train")]) == 0
    assert in_process("recommend", ["--model", str(out / "train" / "model"), *RECOMMEND_ARGS, "--custom-ratings",
                                    str(work / "custom.csv"), "--output", str(out / "recommend")]) == 0  # fmt: skip
    assert in_process("similar", ["--model", str(out / "train" / "model"), "--movie", MOVIE, *RECOMMEND_ARGS,
                                  "--output", str(out / "similar")]) == 0  # fmt: skip


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_the_client_starts_no_jvm_and_the_library_reaches_the_servers_python_as_an_artifact(connect_server, tmp_path):
    java_home = fake_java(tmp_path / "java")
    env = submit_env(tmp_path, {"JAVA_HOME": str(java_home), "PATH": f"{java_home / 'bin'}:{os.environ['PATH']}"})
    result = _ok(run_submit(["--remote", connect_server.url, "--conf", "spark.sql.shuffle.partitions=5",
                             str(ROOT / "tests" / "cluster_probe.py")], tmp_path, env=env))  # fmt: skip
    assert not (java_home / "ran").exists()  # a Connect client is Python alone
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["master"] == "local[2]"  # the server's
    # --conf and spark-defaults.conf's spark.sql.* settings reach the session.
    assert (report["shuffle_partitions"], report["time_zone"]) == ("5", "UTC")
    for module_file, cwd, python, column in report["tasks"]:
        # The session's copy of the package zip, not the source tree the server's Python could also import.
        assert "/userFiles-" in module_file and module_file.endswith(".zip/movierec_spark/__init__.py"), module_file
        assert column == "user_id"


def test_every_job_runs_through_the_server_and_says_nothing_else(runs, connect_server):
    for name, result in runs.items():
        said = [line for line in meaningful_stderr(result.stderr) if not line[:2].isdigit()]
        assert said == [], (name, said)
        assert "Traceback" not in result.stderr and "\tat " not in result.stderr, name
    # Each job logged where it ran (the log goes to stderr).
    for name in ("ingest", "eda", "train_als", "recommend", "similar"):
        assert f"Spark Connect {connect_server.url} (Spark 4.3.0, server master local[2])" in runs[name].stderr, name


def test_training_through_connect_matches_a_classic_run(runs, classic, work):
    connect, local = _metrics(work / "train"), _metrics(classic / "train")
    assert connect["split"] == local["split"] and connect["counts"] == local["counts"]
    assert set(connect["models"]) == set(local["models"]) == {"bias", "als"}
    compared = 0
    for model, result in local["models"].items():
        for name, value in result.items():
            if isinstance(value, float):
                assert connect["models"][model][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (model, name)
                compared += 1
    assert compared >= 10


def test_connect_fits_als_with_mllib_and_says_so(runs, work):
    assert "Spark Connect: ALS fits with MLlib's solver (the driver solver needs a classic session)" in (
        runs["train_als"].stderr)
    assert _metrics(work / "train")["models"]["als"]["params"]["solver"] == "mllib"


def test_checkpoints_go_to_the_servers_folder(runs, connect_server, work):
    assert _metrics(work / "train")["checkpoint_dir"] == str(connect_server.checkpoints)
    assert any(connect_server.checkpoints.iterdir())  # ALS checkpointed there (interval 2, 6 iterations)


def test_outputs_land_whole_in_the_folders_named_relative_to_the_jobs_folder(runs, connect_server, work):
    assert (work / "ingest" / "ratings").is_dir() and (work / "eda" / "report.html").is_file()
    assert {"metrics.json", "model", "recommendations", "recommendations.csv"} <= {
        p.name for p in (work / "train").iterdir()}
    for name in ("recommend", "similar"):
        assert (work / name / f"{'similar' if name == 'similar' else 'top_n'}.csv").is_file(), name
    assert not [p.name for p in work.iterdir() if ".staging-" in p.name or ".movierec-probe-" in p.name]
    assert list((connect_server.base / "server-cwd").iterdir()) == []  # nothing resolved against the server's cwd


def test_recommend_and_similar_on_spark_through_connect_match_the_classic_model(runs, classic, work):
    for name, table, key in (("recommend", "top_n.csv", ["user", "rank"]), ("similar", "similar.csv", ["rank"])):
        connect = pd.read_csv(work / name / table)
        connect = connect[connect["user"].isin(["ann", "bob"])] if name == "recommend" else connect
        connect = connect.sort_values(key, ignore_index=True)
        local = pd.read_csv(classic / name / table).sort_values(key, ignore_index=True)
        assert len(connect) >= 5 and list(connect.columns) == list(local.columns), name
        movie = "similar_movie_id" if name == "similar" else "movie_id"
        assert connect[movie].tolist() == local[movie].tolist(), name
        score = "similarity" if name == "similar" else "prediction"
        assert connect[score].to_numpy() == pytest.approx(local[score].to_numpy(), abs=1e-6), name


def test_recommend_served_on_spark_and_many_people_fold_in_on_the_servers_executors(runs, work):
    assert json.loads((work / "recommend" / "report.json").read_text())["served"] == "spark"
    top = pd.read_csv(work / "recommend" / "top_n.csv")
    assert top["user"].nunique() == 1003 and (top.groupby("user").size() >= 1).all()
