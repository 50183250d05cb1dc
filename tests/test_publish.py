"""Atomic publishing of output folders, and the test-only fault hooks (no JVM unless stated)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from movierec_spark import faults, io
from movierec_spark.io import publish_dir, recover_output, staged_output

ROOT = Path(__file__).resolve().parents[1]


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-0").write_text(text)
    return folder


def _siblings(final: Path) -> list[str]:
    return sorted(p.name for p in final.parent.iterdir() if p.name != final.name)


@pytest.mark.parametrize("swap", [True, False], ids=["exchange", "two-renames"])
def test_publish_replaces_old_output_and_leaves_nothing_beside_it(tmp_path, monkeypatch, swap):
    if not swap:
        monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    final = _write(tmp_path / "out", "old")
    (final / "only-in-old").write_text("x")
    publish_dir(_write(tmp_path / ".out.staging-x", "new"), final)
    assert (final / "part-0").read_text() == "new"
    assert not (final / "only-in-old").exists()
    assert _siblings(final) == []


def test_exchange_swaps_two_folders_atomically_on_linux(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2(RENAME_EXCHANGE) is Linux-only; other systems use two renames")
    a, b = _write(tmp_path / "a", "A"), _write(tmp_path / "b", "B")
    assert io._exchange(a, b)
    assert (a / "part-0").read_text() == "B" and (b / "part-0").read_text() == "A"


def test_failed_second_rename_puts_the_old_output_back(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    final = _write(tmp_path / "out", "old")
    real_replace = os.replace

    def replace(src, dst):
        if Path(src).name.startswith(".out.staging-"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        publish_dir(_write(tmp_path / ".out.staging-x", "new"), final)
    assert (final / "part-0").read_text() == "old"


def test_recover_restores_a_moved_aside_output_and_drops_dead_runs_leftovers(tmp_path):
    final = tmp_path / "out"
    _write(tmp_path / ".out.previous-abc", "old")  # cut off between the two renames
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    host = io.socket.gethostname()
    _write(tmp_path / f".out.staging-{host}-{dead_pid}-aaaa", "half")
    live = _write(tmp_path / f".out.staging-{host}-{os.getppid()}-bbbb", "writing")  # another live run
    _write(tmp_path / ".out.staging-legacyname", "half")
    unrelated = _write(tmp_path / ".other.staging-x", "not ours")
    recover_output(final)
    assert (final / "part-0").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", live.name, unrelated.name])


def test_staged_output_refuses_an_existing_file(tmp_path):
    target = tmp_path / "out"
    target.write_text("a file")
    with pytest.raises(io.MovieRecError, match="existing file"):
        with staged_output(target):
            pass
    assert target.read_text() == "a file"


_WRITER = """
import sys
from movierec_spark.io import staged_output
with staged_output(sys.argv[1]) as stage:
    (stage / "part-0").write_text(sys.argv[2])
"""


def _writer(final: Path, text: str, faults_dir: Path, env_faults: str = "") -> subprocess.Popen:
    env = dict(os.environ, MOVIEREC_FAULTS=env_faults, MOVIEREC_FAULTS_DIR=str(faults_dir),
               PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(final), text], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def wait_for_marker(faults_dir: Path, point: str, proc: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(faults_dir.glob(f"{point}.*"))
        if found:
            return found[0]
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"exited {proc.returncode} before reaching {point}:\n{err.decode()}")
        time.sleep(0.2)
    raise AssertionError(f"{point} not reached within {timeout} s")


def test_killed_before_publish_keeps_the_old_output_and_the_next_run_succeeds(tmp_path):
    final = _write(tmp_path / "out", "good")
    proc = _writer(final, "new", tmp_path, faults.PAUSE_BEFORE_PUBLISH)
    try:
        wait_for_marker(tmp_path, faults.PAUSE_BEFORE_PUBLISH, proc)
        staged = list(tmp_path.glob(".out.staging-*"))
        assert len(staged) == 1 and (staged[0] / "part-0").read_text() == "new"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (final / "part-0").read_text() == "good"
    rerun = _writer(final, "newer", tmp_path)
    assert rerun.wait(timeout=60) == 0, rerun.stderr.read().decode()
    assert (final / "part-0").read_text() == "newer"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_faults_are_off_unless_named(monkeypatch):
    monkeypatch.delenv(faults.FAULTS_ENV, raising=False)
    sentinel = object()
    assert faults.fail_task_once(sentinel) is sentinel  # the plan is untouched
    assert not faults.active(faults.PAUSE_BEFORE_PUBLISH)
    monkeypatch.setenv(faults.FAULTS_ENV, "pause-before-publish, fail-task-once")
    assert faults.active(faults.FAIL_TASK_ONCE) and faults.active(faults.PAUSE_BEFORE_PUBLISH)
    monkeypatch.setenv(faults.FAULTS_ENV, "fail-tasks-once")
    with pytest.raises(ValueError, match="unknown fault"):
        faults.active(faults.FAIL_TASK_ONCE)


def test_fail_task_once_makes_the_first_attempt_fail(spark, monkeypatch):
    """The shared session allows one attempt per task, so the injected failure surfaces."""
    df = spark.range(0, 20, 1, 2)
    monkeypatch.setenv(faults.FAULTS_ENV, faults.FAIL_TASK_ONCE)
    injected = faults.fail_task_once(df)
    with pytest.raises(Exception, match="injected task failure"):
        injected.count()
    monkeypatch.delenv(faults.FAULTS_ENV)
    assert faults.fail_task_once(df) is df

