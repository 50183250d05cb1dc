"""Issue 20, item 6: a run stopped mid-write says so in one line and leaves the earlier output intact.

The slow test goes through the real wrapper and JVM, where the stack traces
came from: ``jobs/train_als.py`` on users 1..100 of ml-latest-small, in a
pseudo-terminal, gets Ctrl-C once it starts writing; the terminal signals
every process of the job (spark-submit.sh's JVM ignores it and outlives the
driver, which says its line through it). A plain ``kill`` of the driver
takes the same path (the same handler, with the JVM not signalled at all);
the Spark-free tests below check ``cli.run_job``'s side, SIGTERM and SIGINT,
with a stand-in session.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import termios
import threading
import time
import types

import pytest

from tests.cluster import JVM_NOISE, ROOT, SUBMIT, submit_env, write_tiny_release
from tests.job_logging import keep_logging  # noqa: F401 (a fixture)

LINE = "train_als: interrupted before its output was published; any earlier output is intact"


class _Terminal:
    """A pseudo-terminal whose side the job gets as its controlling terminal; what it shows is kept."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        self.shown = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the last process holding the terminal is gone
                return
            if not chunk:
                return
            self.shown += chunk

    def text(self) -> str:
        return bytes(self.shown).decode(errors="replace").replace("\r\n", "\n")

    def become_controlling(self):  # runs in the child, after setsid
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.slow
def test_ctrl_c_mid_write_says_so_in_one_line_and_keeps_the_earlier_output(movielens_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text('{"earlier": true}\n')
    release = write_tiny_release(movielens_dir / "ml-latest-small", tmp_path / "release", 100)
    terminal = _Terminal()
    proc = subprocess.Popen(
        [str(SUBMIT), "--master", "local[2]", "--conf", "spark.ui.enabled=false", str(ROOT / "jobs" / "train_als.py"),
         "--source", str(release / "ml-latest-small"), "--models", "bias,als", "--custom-ratings", "",
         "--output", str(out)],
        cwd=tmp_path, env=submit_env(tmp_path), stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave,
        start_new_session=True, preexec_fn=terminal.become_controlling,
    )  # fmt: skip
    os.close(terminal.slave)
    try:
        deadline = time.monotonic() + 400
        while "[write] started" not in terminal.text():
            assert proc.poll() is None and time.monotonic() < deadline, terminal.text()[-3000:]
            time.sleep(0.05)
        os.write(terminal.master, b"\x03")  # Ctrl-C: the terminal signals its whole foreground group
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    terminal._reader.join(timeout=10)
    text = terminal.text()
    after = text[text.index("[write] started"):].splitlines()[1:]
    said = [line.removeprefix("^C") for line in after if not line.removeprefix("^C")[:2].isdigit()]
    said = [line for line in said if not JVM_NOISE.match(line)]
    assert code == 130, text[-3000:]
    assert said == [LINE], text[-3000:]
    assert "\tat " not in text and "Traceback" not in text, text[-3000:]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no staging folder left
    assert [p.name for p in out.iterdir()] == ["metrics.json"]
    assert (out / "metrics.json").read_text() == '{"earlier": true}\n'


# --- the same in process, Spark-free: a stand-in session records what the driver asked of it ---


class _FakeContext:
    def __init__(self):
        self.calls = []

    def setLogLevel(self, level):  # noqa: N802 - SparkContext's name
        self.calls.append(("setLogLevel", level))

    def cancelAllJobs(self):  # noqa: N802
        self.calls.append(("cancelAllJobs",))

    def statusTracker(self):  # noqa: N802
        return types.SimpleNamespace(getActiveJobsIds=lambda: [])


def _run(monkeypatch, capsys, body):
    """``cli.run_job`` of a job whose ``run`` is ``body(spark)``: (exit code, stderr lines, context calls, stopped)."""
    from movierec_spark import cli

    context = _FakeContext()
    stopped = []
    spark = types.SimpleNamespace(sparkContext=context, stop=lambda: stopped.append(True))
    monkeypatch.setattr("movierec_spark.session.build_session", lambda name: spark)
    parser = cli.make_parser("job", "test")
    code = cli.run_job("job", parser, lambda session, cfg: body(session), [])
    err = [line for line in capsys.readouterr().err.splitlines() if not line[:2].isdigit()]
    return code, err, context.calls, stopped


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_quiets_and_cancels_spark_then_says_one_line(monkeypatch, capsys, keep_logging, signum):
    def body(spark):
        os.kill(os.getpid(), signum)
        time.sleep(10)  # a long JVM call; the helper's interrupt ends it
        raise AssertionError("not interrupted")

    before = signal.getsignal(signum)
    code, err, calls, stopped = _run(monkeypatch, capsys, body)
    assert (code, err) == (130, ["job: interrupted before its output was published; any earlier output is intact"])
    assert calls == [("setLogLevel", "OFF"), ("cancelAllJobs",)]
    assert stopped == [True]
    assert signal.getsignal(signum) is before


@pytest.mark.parametrize(
    "error",
    [
        "Py4JNetworkError",
        "Job 89 cancelled because SparkContext was shut down",
        "An error occurred while calling o123.count: Answer from Java side is empty",
    ],
)
def test_a_jvm_gone_from_under_the_driver_reads_as_an_interruption(monkeypatch, capsys, keep_logging, error):
    from py4j.protocol import Py4JNetworkError

    def body(spark):
        raise Py4JNetworkError("connection refused") if error == "Py4JNetworkError" else RuntimeError(error)

    code, err, calls, _ = _run(monkeypatch, capsys, body)
    assert (code, err) == (
        130, ["job: Spark stopped; interrupted before its output was published; any earlier output is intact"]
    )
    assert calls == []


def test_a_job_that_fails_on_its_own_is_not_called_interrupted(monkeypatch, capsys, keep_logging):
    def body(spark):
        raise RuntimeError("division by zero somewhere")

    code, err, _, _ = _run(monkeypatch, capsys, body)
    assert (code, err) == (1, ["job: error: RuntimeError: division by zero somewhere (run with --verbose for the stack trace)"])
