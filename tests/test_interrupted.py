"""Issue 20, item 6: a run stopped mid-write says so in one line and leaves the earlier output intact.

Through the real wrapper and JVM (a signal's path cannot be faked in
process): ``jobs/train_als.py`` on ml-latest-small is stopped once it starts
writing, by a plain ``kill`` of the Python driver. (Ctrl-C, which a terminal
sends to the JVM too, is not covered: the JVM exits first, and the driver's
line, which reaches the terminal through it, is lost.) The run costs a JVM
start and a fit, hence ``slow``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cluster import JVM_NOISE, ROOT, SUBMIT, submit_env

LINE = "train_als: interrupted before its output was published; any earlier output is intact"


def _driver_pid(submit_pid: int) -> int | None:
    """The job's Python process, a child of spark-submit's JVM."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == submit_pid and any(arg.endswith(b"jobs/train_als.py") for arg in cmdline):
            return int(entry.name)
    return None


@pytest.mark.slow
def test_a_driver_killed_mid_write_says_so_in_one_line_and_keeps_the_earlier_output(movielens_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text('{"earlier": true}\n')
    log = tmp_path / "job.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(SUBMIT), "--master", "local[2]", "--conf", "spark.ui.enabled=false", str(ROOT / "jobs" / "train_als.py"),
             "--source", str(movielens_dir / "ml-latest-small"), "--models", "bias,als", "--custom-ratings", "",
             "--output", str(out)],
            cwd=tmp_path, env=submit_env(tmp_path), stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        while "[write] started" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        driver = _driver_pid(proc.pid)
        assert driver is not None, "no Python driver under spark-submit"
        os.kill(driver, signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    text = log.read_text()
    after = text[text.index("[write] started"):].splitlines()[1:]
    said = [line for line in after if not line[:2].isdigit() and not JVM_NOISE.match(line)]
    assert code != 0, text[-3000:]
    assert said == [LINE], text[-3000:]
    assert "\tat " not in text and "Traceback" not in text, text[-3000:]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    assert [p.name for p in out.iterdir()] == ["metrics.json"]
    assert (out / "metrics.json").read_text() == '{"earlier": true}\n'
