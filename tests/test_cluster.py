"""The same ./spark-submit.sh commands on a real standalone cluster, and faults (issue 7).

One master and two 1-core workers run on 127.0.0.1 for the whole module
(``spark_cluster`` fixture, tests/conftest.py) and are stopped afterwards,
also on failure. The data is a few thousand real ratings: users 1..20 of
ml-latest-small. The pipeline runs once on the cluster (ingest, train_als
and recommend, each through ./spark-submit.sh --master spark://...) and
once locally in this process with the same flags and seed; the tests compare:

- executors import movierec_spark from the shipped --py-files zip;
- the cluster's training run is also the fault run: a task failure injected
  by MOVIEREC_FAULTS=fail-task-once, and a worker SIGKILLed while ALS fits.
  Spark retries the task and recomputes what the lost executor held, and
  the job still finishes with the split and metrics of the undisturbed
  local run (to 1e-9): run after run, local or cluster, faults or not, the
  same seed gives the same result;
- recommend.py folds two custom users into the model that disturbed cluster
  run saved and gives the same top-N rows, in the same order, with the same
  scores (to 1e-9) as recommend.py on the local run's model.

Every cluster job costs a JVM start and a few Spark stages on 2 shared
cores, so the module runs four cluster jobs in all (probe, ingest, train,
recommend) and keeps training cheap: only the als model (whose bias
baseline is fitted all the same), one bias pass, no day bias. An
undisturbed cluster training run would tell nothing the local comparison
does not. A driver killed while publishing is tested locally
(tests/test_publish.py): the publish is a rename by the driver process, and
a Python job on a standalone cluster always runs its driver in the
spark-submit process (client mode), so a cluster adds nothing to that test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cluster import ROOT, SUBMIT, run_submit, submit_env, write_tiny_release

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TINY_USERS = 20
# Cheap, and identical for every training run of this module. Two ALS blocks
# each way, so both executors hold ALS state (the one killed loses some).
# Only the als model (its bias baseline is fitted and checkpointed all the
# same), one bias pass and no day bias ([bias] in CHEAP_CONF): the shipped
# split (seeded randomSplit over 16 hash partitions) is kept as it is.
# MLlib's ALS in both runs: "auto" would solve the local run in the driver
# (another random start), and the worker killed mid-fit needs a fit that
# runs on the executors.
TRAIN_ARGS = [
    "--models", "als", "--solver", "mllib", "--rank", "4", "--max-iter", "5", "--checkpoint-interval", "2",
    "--num-user-blocks", "2", "--num-item-blocks", "2", "--seed", "7", "--bias-iterations", "1",
    "--predictions-sample", "0", "--custom-ratings", "", "--k", "5",
]  # fmt: skip
CHEAP_CONF = "[bias]\nday_bias = false\n"
# Two people rating five well-known movies (a title and ids, as users write
# them); recommend.py folds them into the saved model.
CUSTOM_RATINGS = (
    "user,movie,rating\nann,The Matrix,5\nann,296,4.5\nann,588,1\nbob,356,5\nbob,527,4\nbob,2959,1.5\n"
)
RECOMMEND_ARGS = ["--top-n", "5", "--min-ratings", "3"]


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def _job(name: str) -> str:
    return str(ROOT / "jobs" / f"{name}.py")


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def _scores(metrics: dict) -> dict[str, float]:
    """Every evaluation figure of every model, flattened ("als.rmse": ...)."""
    flat = {}
    for model, result in metrics["models"].items():
        for name, value in result.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "seed":
                flat[f"{model}.{name}"] = float(value)
    return flat


def assert_same_results(a: dict, b: dict) -> None:
    """Same split (row counts), same models, same metrics to 1e-9."""
    assert a["split"] == b["split"]
    assert a["counts"] == b["counts"]
    scores_a, scores_b = _scores(a), _scores(b)
    assert scores_a.keys() == scores_b.keys() and {"als.rmse", "als.ndcg@5"} <= scores_a.keys(), scores_a
    for name, value in scores_a.items():
        # Same seed, same data and blocks: only the order of floating-point sums may differ.
        assert value == pytest.approx(scores_b[name], rel=1e-9, abs=1e-9), name


def _start_job(args: list[str], work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    log = work / f"job-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SUBMIT), *args], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    return proc, log


def _wait_for(predicate, proc: subprocess.Popen, log: Path, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"job exited {proc.returncode} before {what}:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cluster-runs")


@pytest.fixture(scope="module")
def tiny_release(movielens_dir, work) -> Path:
    return write_tiny_release(movielens_dir / "ml-latest-small", work / "release", TINY_USERS)


@pytest.fixture(scope="module")
def train_args(work) -> list[str]:
    conf = work / "cheap.toml"
    conf.write_text(CHEAP_CONF)
    return ["--config", str(conf), *TRAIN_ARGS]


@pytest.fixture(scope="module")
def custom_ratings(work) -> Path:
    path = work / "custom_ratings.csv"
    path.write_text(CUSTOM_RATINGS)
    return path


@pytest.fixture(scope="module")
def cluster_ingest(spark_cluster, tiny_release, work) -> Path:
    out = work / "cluster" / "ingest"
    _ok(run_submit([*spark_cluster.submit_args(), _job("ingest"), "--source", str(tiny_release),
                    "--dataset", "ml-latest-small", "--output", str(out)], work))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def cluster_train(spark_cluster, cluster_ingest, train_args, work) -> tuple[Path, str, bool]:
    """train_als on the cluster, with a task failure injected and worker 0
    SIGKILLed once ALS starts fitting: (output, job log, still fitting when killed)."""
    out = work / "cluster" / "train"
    env = submit_env(work, {"MOVIEREC_FAULTS": "fail-task-once"})
    proc, log = _start_job([*spark_cluster.submit_args(), _job("train_als"), "--ingested", str(cluster_ingest),
                            *train_args, "--output", str(out)], work, env)  # fmt: skip
    try:
        _wait_for(lambda: "[fit als] started" in log.read_text(), proc, log, "ALS fit")
        spark_cluster.kill_worker(0)
        fitting_when_killed = "[fit als] done" not in log.read_text()
        assert proc.wait(timeout=600) == 0, log.read_text()[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        spark_cluster.start_worker(0)  # registers while the next job starts; not waited for
    return out, log.read_text(), fitting_when_killed


@pytest.fixture(scope="module")
def local_train(in_process, cluster_ingest, train_args, work) -> Path:
    out = work / "local" / "train"
    assert in_process("train_als", ["--ingested", str(cluster_ingest), *train_args, "--output", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def cluster_recommend(spark_cluster, cluster_train, custom_ratings, work) -> Path:
    """recommend.py on the cluster, from the model the (disturbed) cluster training run saved."""
    out = work / "cluster" / "recommend"
    _ok(run_submit([*spark_cluster.submit_args(), _job("recommend"), "--model", str(cluster_train[0] / "model"),
                    "--custom-ratings", str(custom_ratings), *RECOMMEND_ARGS, "--output", str(out)], work))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def local_recommend(in_process, local_train, custom_ratings, work) -> Path:
    out = work / "local" / "recommend"
    argv = ["--model", str(local_train / "model"), "--custom-ratings", str(custom_ratings), *RECOMMEND_ARGS]
    assert in_process("recommend", [*argv, "--output", str(out)]) == 0
    return out


def test_executors_import_the_library_from_the_shipped_zip(spark_cluster, tmp_path):
    result = _ok(run_submit([*spark_cluster.submit_args(), str(ROOT / "tests" / "cluster_probe.py")], tmp_path))
    assert "WARNING: Using incubator modules" not in result.stderr  # the wrapper drops it
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["master"] == spark_cluster.master_url
    # The driver and every task import the --py-files zip, never the source tree.
    assert re.search(r"movierec_spark-[0-9a-f]{12}\.zip", report["driver"]), report["driver"]
    assert not report["driver"].startswith(str(ROOT / "movierec_spark"))
    work_dirs = {str(spark_cluster.base / f"work{i}") for i in range(spark_cluster.workers)}
    used = set()
    for module_file, cwd, python, column in report["tasks"]:
        assert re.search(r"movierec_spark-[0-9a-f]{12}\.zip/movierec_spark/__init__\.py$", module_file), module_file
        assert not module_file.startswith(str(ROOT)), module_file
        assert column == "user_id"
        used.update(d for d in work_dirs if cwd.startswith(d))
    # Tasks really ran in executors the workers launched, on both workers.
    assert used == work_dirs, (used, work_dirs)


def test_ingest_on_the_cluster_loads_every_line(cluster_ingest, tiny_release):
    lines = (tiny_release / "ml-latest-small" / "ratings.csv").read_bytes().splitlines()
    ratings = json.loads((cluster_ingest / "ingest_report.json").read_text())["tables"]["ratings"]
    assert ratings["read"] == ratings["loaded"] == len(lines) - 1 > 2000
    assert len(list((cluster_ingest / "ratings").glob("*.parquet"))) >= 1


def test_training_on_the_cluster_matches_the_local_run(cluster_train, local_train):
    on_cluster, local = _metrics(cluster_train[0]), _metrics(local_train)
    assert on_cluster["spark"]["master"].startswith("spark://")
    assert local["spark"]["master"].startswith("local")
    assert on_cluster["split"]["method"] == "random"  # the seeded randomSplit
    assert_same_results(on_cluster, local)


def test_a_failed_task_and_a_worker_killed_while_als_fits_change_nothing(cluster_train, local_train):
    out, text, fitting_when_killed = cluster_train
    assert fitting_when_killed, "the fit ended before the worker was killed; nothing was tested"
    assert "injected task failure" in text, text[-4000:]
    assert "lost executor" in text.lower(), text[-4000:]
    assert_same_results(_metrics(out), _metrics(local_train))


def test_recommendations_on_the_cluster_match_the_local_run(cluster_recommend, local_recommend):
    """Same rows in the same order; scores to 1e-9 (only the order of floating-point sums may differ)."""
    import pandas as pd

    on_cluster, local = pd.read_csv(cluster_recommend / "top_n.csv"), pd.read_csv(local_recommend / "top_n.csv")
    assert on_cluster.groupby("user").size().to_dict() == {"ann": 5, "bob": 5}
    rated = {("ann", 2571), ("ann", 296), ("ann", 588), ("bob", 356), ("bob", 527), ("bob", 2959)}
    assert not rated & set(zip(on_cluster.user, on_cluster.movie_id))  # nothing they rated comes back
    pd.testing.assert_frame_equal(on_cluster, local, check_exact=False, rtol=1e-9, atol=1e-9)
    # The Parquet table the executors wrote holds the same rows (int32 ids there, int64 in the CSV).
    keys = ["user", "rank", "movie_id"]
    parquet = pd.read_parquet(cluster_recommend / "top_n")[keys].sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(parquet, on_cluster[keys].sort_values(keys, ignore_index=True), check_dtype=False)
    report, local_report = (json.loads((out / "report.json").read_text()) for out in (cluster_recommend, local_recommend))
    assert report["users"] == local_report["users"] and report["rows"] == local_report["rows"] == 10
