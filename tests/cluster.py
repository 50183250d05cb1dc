"""A real Spark standalone cluster on 127.0.0.1 for tests: one master, N workers.

The pip-installed PySpark has no ``sbin/start-*.sh`` scripts, so the daemons
are started directly with ``$SPARK_HOME/bin/spark-class``. Every port is
chosen by the daemons themselves (port 0) and read back from their logs, so
several test runs on one machine never collide. The master's REST submission
server is off; its web UI listens on a random loopback port only because
its ``/json/`` page is how we learn that the workers registered.

Each daemon runs in its own process group (executors and their Python workers
are children of the worker, so they share its group), and on Linux is told to
die with the test process. :meth:`StandaloneCluster.stop` kills every group,
so a failing test leaves nothing behind; :meth:`kill_worker` SIGKILLs one
worker with its executors, which is what losing a machine looks like.

Daemon logs, worker work dirs and scratch space all live under ``base``
(pytest's tmp path), and :meth:`log_tail` shows them when something fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBMIT = ROOT / "spark-submit.sh"

# Known JVM start-up line: Spark's launcher always adds --add-modules=jdk.incubator.vector.
JVM_NOISE = re.compile(r"^WARNING: Using incubator modules: ")

_MASTER_URL = re.compile(r"Starting Spark master at (spark://\S+)")
_MASTER_UI = re.compile(r"Successfully started service 'MasterUI' on port (\d+)")

_DAEMON_LOG4J = """\
rootLogger.level = info
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
"""


def spark_home() -> Path:
    """``$SPARK_HOME`` if set, else the PySpark installed for this Python."""
    env = os.environ.get("SPARK_HOME")
    if env:
        return Path(env)
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGKILL the daemon if the test process dies first."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class StandaloneCluster:
    """A master and ``workers`` workers of ``cores`` cores and ``memory`` each."""

    base: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    executor_memory: str = "640m"
    daemon_memory: str = "256m"
    start_timeout: float = 90.0
    master_url: str = ""
    ui_port: int = 0
    master: Daemon | None = None
    worker_daemons: dict[int, Daemon] = field(default_factory=dict)

    # --- life cycle ---

    def start(self) -> "StandaloneCluster":
        self.base.mkdir(parents=True, exist_ok=True)
        conf = self.base / "daemon-conf"
        conf.mkdir(exist_ok=True)
        (conf / "log4j2.properties").write_text(_DAEMON_LOG4J)
        try:
            self._start_master()
            for index in range(self.workers):
                self.start_worker(index)
            self.wait_for_workers(self.workers)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every daemon (and its executors): TERM, then KILL after a grace period."""
        daemons = list(self.worker_daemons.values()) + ([self.master] if self.master else [])
        for daemon in daemons:
            _kill_group(daemon.proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for daemon in daemons:
            try:
                daemon.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Executors may outlive a TERMed worker for a moment; the group goes.
            _kill_group(daemon.proc, signal.SIGKILL)
            try:
                daemon.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.worker_daemons.clear()
        self.master = None

    def __enter__(self) -> "StandaloneCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- daemons ---

    def _daemon_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(spark_home()),
            SPARK_CONF_DIR=str(self.base / "daemon-conf"),
            SPARK_LOCAL_IP="127.0.0.1",
            SPARK_DAEMON_MEMORY=self.daemon_memory,
            SPARK_LOCAL_DIRS=str(self.base / "scratch"),
            # No fixed-port REST server (6066) beside the random master port.
            SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
            SPARK_WORKER_OPTS="-Dspark.worker.cleanup.enabled=false",
            SPARK_NO_DAEMONIZE="1",
        )
        for key in ("SPARK_MASTER_HOST", "SPARK_MASTER_PORT", "SPARK_WORKER_CORES", "SPARK_WORKER_MEMORY"):
            env.pop(key, None)
        return env

    def _spawn(self, name: str, args: list[str]) -> Daemon:
        log = self.base / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._daemon_env(),
                cwd=self.base,
                preexec_fn=_die_with_parent,
            )
        return Daemon(name, proc, log)

    def _start_master(self) -> None:
        self.master = self._spawn(
            "master",
            ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", "0", "--webui-port", "0"],
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            text = self.master.text()
            url, ui = _MASTER_URL.search(text), _MASTER_UI.search(text)
            if url and ui:
                self.master_url, self.ui_port = url.group(1), int(ui.group(1))
                return
            if not self.master.alive():
                break
            time.sleep(0.3)
        raise RuntimeError(f"Spark master did not start:\n{self.log_tail()}")

    def start_worker(self, index: int) -> None:
        """Start worker ``index`` (again, after :meth:`kill_worker`)."""
        self.worker_daemons[index] = self._spawn(
            f"worker{index}",
            [
                "org.apache.spark.deploy.worker.Worker",
                "--host", "127.0.0.1",
                "--port", "0",
                "--webui-port", "0",
                "--cores", str(self.cores),
                "--memory", self.memory,
                "--work-dir", str(self.base / f"work{index}"),
                self.master_url,
            ],
        )

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker ``index`` with its executors and Python workers."""
        daemon = self.worker_daemons.pop(index)
        _kill_group(daemon.proc, signal.SIGKILL)
        daemon.proc.wait(timeout=30)

    def state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as resp:
            return json.load(resp)

    def wait_for_workers(self, count: int) -> None:
        """Wait (bounded) until ``count`` workers are ALIVE at the master."""
        deadline = time.monotonic() + self.start_timeout
        alive = -1
        while time.monotonic() < deadline:
            try:
                alive = sum(1 for w in self.state()["workers"] if w["state"] == "ALIVE")
            except (OSError, ValueError):
                # Not up yet: refused, or (seen in CI under load) an empty
                # /json/ page from a master still electing itself leader.
                alive = -1
            if alive >= count:
                return
            if self.master is None or not self.master.alive():
                break
            time.sleep(0.5)
        raise RuntimeError(f"{alive} of {count} workers registered:\n{self.log_tail()}")

    def ensure_workers(self) -> None:
        """Restart any worker a test killed, so the next test gets a whole cluster."""
        for index in range(self.workers):
            daemon = self.worker_daemons.get(index)
            if daemon is None or not daemon.alive():
                self.start_worker(index)
        self.wait_for_workers(self.workers)

    # --- submitting jobs ---

    def submit_args(self) -> list[str]:
        """spark-submit options that send a job to this cluster, sized for 2 shared cores."""
        scratch = self.base / "driver-scratch"
        scratch.mkdir(exist_ok=True)
        return [
            "--master", self.master_url,
            "--driver-memory", "1g",
            "--conf", f"spark.executor.memory={self.executor_memory}",
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.driver.host=127.0.0.1",
            "--conf", "spark.driver.bindAddress=127.0.0.1",
            "--conf", f"spark.local.dir={scratch}",
            "--conf", "spark.sql.shuffle.partitions=4",
            "--conf", "spark.default.parallelism=4",
            # Start scheduling only once every worker's executor is up, so
            # work really spreads over both (bounded by the default 30 s).
            "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0",
        ]

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for daemon in ([self.master] if self.master else []) + list(self.worker_daemons.values()):
            tail = daemon.text().splitlines()[-lines:]
            parts.append(f"--- {daemon.name} ({daemon.log})\n" + "\n".join(tail))
        return "\n".join(parts)


def submit_env(base: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for ``./spark-submit.sh`` in tests: loopback, the test's Python."""
    env = dict(os.environ)
    env.update(
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        SPARK_CONF_DIR=str(ROOT / "conf"),
        MOVIEREC_CONF_DIR=str(ROOT / "conf"),
        # Jobs must never reach the network in tests.
        MOVIEREC_CACHE=str(base / "cache"),
    )
    env.pop("PYTHONPATH", None)
    env.update(extra or {})
    return env


def run_submit(
    args: list[str],
    base: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``./spark-submit.sh ARGS`` to completion; its output is returned as text."""
    return subprocess.run(
        [str(SUBMIT), *args],
        cwd=cwd or base,
        env=env or submit_env(base),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


# A java that answers spark-submit.sh's version check and otherwise records that it ran.
_FAKE_JAVA = """#!/bin/sh
if [ "$1" = "-version" ]; then echo 'openjdk version "17.0.1" 2021-10-19' >&2; exit 0; fi
echo "$@" >> "$(dirname "$0")/../ran"
exit 1
"""


def fake_java(java_home: Path) -> Path:
    """A JAVA_HOME whose java only answers ``-version``; ``java_home / "ran"`` appears if anything else ran it."""
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_text(_FAKE_JAVA)
    (java_home / "bin" / "java").chmod(0o755)
    return java_home


def meaningful_stderr(stderr: str) -> list[str]:
    """stderr lines with blank lines and known JVM start-up noise removed."""
    return [line for line in stderr.splitlines() if line.strip() and not JVM_NOISE.match(line)]


def write_tiny_release(release_dir: Path, target: Path, max_user: int) -> Path:
    """A copy of a CSV-layout release (ml-latest-small) keeping the ratings and
    tags of users 1..``max_user`` only; returns the folder that holds it.

    Lines are copied byte for byte (CRLF endings included), so loading them
    exercises the same parser as the full release.
    """
    out = target / release_dir.name
    out.mkdir(parents=True, exist_ok=True)
    for name in ("movies.csv", "links.csv"):
        (out / name).write_bytes((release_dir / name).read_bytes())
    for name in ("ratings.csv", "tags.csv"):
        lines = (release_dir / name).read_bytes().splitlines(keepends=True)
        kept = [lines[0]] + [line for line in lines[1:] if int(line.split(b",", 1)[0]) <= max_user]
        (out / name).write_bytes(b"".join(kept))
    return target
