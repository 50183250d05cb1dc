"""Long ALS fits survive their lineage (issue 7): maxIter 100 without StackOverflowError.

train_als's main(argv) runs in this process on the test session (local[2]),
on 1,355 real ratings (users 1..12 of ml-latest-small): each ALS iteration
adds to the lineage, and without checkpoints 100 of them overflow the JVM's
stack when the factors are finally computed.
"""

from __future__ import annotations

import json
import logging

import pytest

from jobs import train_als
from tests.cluster import write_tiny_release

pytestmark = pytest.mark.slow


@pytest.fixture
def job_session(spark, monkeypatch):
    monkeypatch.setattr("movierec_spark.session.build_session", lambda _name: spark)
    monkeypatch.setattr(spark, "stop", lambda: None)  # shared session
    for name in ("movierec_spark", "jobs", "__main__"):  # undo main()'s logging set-up afterwards
        logger = logging.getLogger(name)
        for attribute in ("handlers", "level", "propagate"):
            value = getattr(logger, attribute)
            monkeypatch.setattr(logger, attribute, list(value) if attribute == "handlers" else value)
    return spark


def test_one_hundred_als_iterations_finish_without_stack_overflow(movielens_dir, tmp_path, job_session, capsys):
    release = write_tiny_release(movielens_dir / "ml-latest-small", tmp_path / "release", 12)
    out = tmp_path / "out"
    code = train_als.main([
        "--source", str(release), "--dataset", "ml-latest-small", "--models", "als",
        "--max-iter", "100", "--rank", "4", "--num-user-blocks", "2", "--num-item-blocks", "2",
        "--custom-ratings", "", "--predictions-sample", "0", "--k", "5", "--output", str(out),
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err[-4000:]
    assert "StackOverflowError" not in err
    metrics = json.loads((out / "metrics.json").read_text())
    als = metrics["models"]["als"]
    assert als["params"]["max_iter"] == 100
    assert metrics["checkpoint_dir"]  # what keeps the lineage short
    assert 0 < als["rmse"] < 2
