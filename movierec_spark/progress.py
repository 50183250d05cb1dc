"""Console progress for jobs: logging set up once, and timed stages.

A person running a job sees one line as each stage starts and one as it
ends with its wall time; the timings are kept so jobs can report them
(``metrics.json`` records wall time per stage).
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger("movierec_spark")


def configure_logging(verbose: bool = False) -> None:
    """Log ``movierec_spark`` and job messages to stderr, once per process."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    for name in ("movierec_spark", "jobs", "__main__"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    # py4j logs every gateway call at INFO, and a JVM that went away (an
    # interrupted run) at ERROR with a traceback, some of it through the root
    # logger; the driver gets the same news as an exception, which the job
    # reports in one line (cli.run_job).
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    root = logging.getLogger()
    if not root.handlers:  # else someone (pytest) already decides where records go
        fallback = logging.StreamHandler(sys.stderr)
        fallback.setFormatter(handler.formatter)
        fallback.addFilter(_not_py4j)
        root.addHandler(fallback)


def _not_py4j(record: logging.LogRecord) -> bool:
    """False for py4j's own records (it calls ``logging.exception`` on the root logger)."""
    return "py4j" not in record.pathname


class StageTimer:
    """Times named stages; ``seconds`` maps stage name to wall time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        log.info("[%s] started", name)
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            log.info("[%s] failed after %.1f s", name, time.perf_counter() - start)
            raise
        elapsed = time.perf_counter() - start
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        log.info("[%s] done in %.1f s", name, elapsed)
