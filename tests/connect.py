"""A real Spark Connect server on 127.0.0.1 for tests, from the installed PySpark.

PySpark's pip package ships ``sbin/start-connect-server.sh`` and the Connect
jar. The server runs in the foreground (``--wait``) in its own process group,
is told to die with the test process (Linux), listens on a port it picks
itself (read back from its log, so parallel runs never collide), and runs
``local[2]`` with the project's ``spark-defaults.conf`` (the Spark settings
a classic ``./spark-submit.sh`` run gets) and a checkpoint directory under
``base``.
:meth:`ConnectServer.stop` kills its group, also when a test failed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.cluster import _DAEMON_LOG4J, ROOT, _die_with_parent, _kill_group, spark_home

_STARTED = re.compile(r"Spark Connect server started at: 127\.0\.0\.1:(\d+)")
# The cluster daemons' logging, quieter, but for the line that names the port.
_LOG4J = _DAEMON_LOG4J.replace("rootLogger.level = info", "rootLogger.level = warn") + """\
logger.connect.name = org.apache.spark.sql.connect.service.SparkConnectServer
logger.connect.level = info
"""


@dataclass
class ConnectServer:
    base: Path
    start_timeout: float = 120.0
    proc: subprocess.Popen | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    @property
    def checkpoints(self) -> Path:
        return self.base / "checkpoints"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def start(self) -> "ConnectServer":
        self.base.mkdir(parents=True, exist_ok=True)
        workdir = self.base / "server-cwd"  # not the jobs' folder: relative paths must not work by luck
        workdir.mkdir(exist_ok=True)
        conf = self.base / "conf"
        conf.mkdir(exist_ok=True)
        shutil.copy(ROOT / "conf" / "spark-defaults.conf", conf)
        (conf / "log4j2.properties").write_text(_LOG4J)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SPARK_REMOTE", "PYSPARK_"))},
            "SPARK_HOME": str(spark_home()),
            "SPARK_CONF_DIR": str(conf),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(self.base / "logs"),
            "SPARK_PID_DIR": str(self.base / "pids"),
            "PYSPARK_PYTHON": sys.executable,
        }
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(spark_home() / "sbin" / "start-connect-server.sh"), "--wait",
                 "--master", "local[2]",
                 "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
                 "--conf", "spark.connect.grpc.binding.port=0",
                 "--conf", f"spark.checkpoint.dir={self.checkpoints}",
                 "--conf", "spark.ui.enabled=false",
                 "--conf", f"spark.local.dir={self.base / 'scratch'}"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline:
                found = _STARTED.search(self.log.read_text(errors="replace"))
                if found:
                    self.port = int(found.group(1))
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.3)
            raise RuntimeError(f"Spark Connect server did not start:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is None:
            return
        _kill_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(timeout=20)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> "ConnectServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
