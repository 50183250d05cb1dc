"""Whether an ALS rank fits the memory Spark was given, decided before any data is loaded.

A fit of rank ``r`` over ``U`` users and ``M`` movies holds, in either
solver (the driver's compiled one, :mod:`movierec_spark.models.driver_als`,
or MLlib's blocks):

- the factor matrices, ``(U + M) x r`` numbers, in double precision, and
- one ``r x r`` normal-equation matrix per row being solved, in double
  precision, one per core solving at the same time,

so at least ``8 r (U + M) + 8 r^2 cores`` bytes. That is a floor, not a
budget: the ratings, Spark's cached tables and Python's copies come on
top. A rank whose floor is above the memory limit cannot fit and is refused
in one line with both figures; one below it may still fail for other
reasons. The limit is ``spark.driver.memory`` (spark-submit's
``--driver-memory``, else ``conf/spark-defaults.conf``, else Spark's 1g).

``U`` and ``M`` are the counts the release's README publishes
(:mod:`movierec_spark.data.releases`), or the ingest report's with
``--ingested``; where neither is known only the normal equations count.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from movierec_spark import MovieRecError
from movierec_spark.config import Config

DOUBLE = 8
DEFAULT_DRIVER_MEMORY = "1g"  # Spark's own default
# Spark's size strings: a number and a binary unit; a bare number is MiB for *.memory.
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgtp]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 2**20, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
# The config sections whose rank an ALS fit uses, with their flags.
RANKS = {"als": "--rank", "implicit": "--implicit-rank"}


def memory_bytes(text: str) -> int:
    """``"4g"`` -> 4 GiB in bytes, as Spark reads ``spark.driver.memory`` (a bare number is MiB)."""
    found = _SIZE.match(str(text))
    if not found:
        raise MovieRecError(f"spark.driver.memory {text!r} is not a size such as 4g or 512m")
    return int(found.group(1)) * _UNITS[found.group(2).lower()]


def estimate_bytes(rank: int, users: int, movies: int, cores: int) -> tuple[int, int]:
    """``(factor matrices, normal equations)``: the bytes a rank-``rank`` fit holds at least."""
    return DOUBLE * rank * (users + movies), DOUBLE * rank * rank * max(1, cores)


def readable(size: int) -> str:
    """Bytes as a person reads them: ``1.5 GiB``, ``320 MiB``."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}" if size < 10 * factor else f"{size / factor:,.0f} {unit}"
    return f"{size / 2**10:.0f} KiB"


def release_size(data: dict[str, Any]) -> tuple[int, int] | None:
    """``(users, movies)`` of the data a run will load, without loading it (None: unknown)."""
    from movierec_spark import io
    from movierec_spark.data.releases import RELEASES

    ingested = data.get("ingested_dir")
    if ingested:
        report = Path(str(ingested)).expanduser() / io.REPORT_NAME
        if "://" in str(ingested) or not report.is_file():
            return None
        summary = (io.read_json(report) or {}).get("summary") or {}
        users, movies = summary.get("users"), summary.get("movies")
        return (users, movies) if isinstance(users, int) and isinstance(movies, int) else None
    release = RELEASES.get(str(data.get("dataset", "")))
    if release is None or release.published_users is None or release.published_movies is None:
        return None
    return release.published_users, release.published_movies


def check_rank(setting: str, rank: int, size: tuple[int, int] | None, cores: int, driver_memory: str) -> None:
    """Refuse, in one line naming ``setting``, a ``rank`` whose floor (see above) exceeds ``driver_memory``.

    ``size`` is ``(users, movies)`` (:func:`release_size`; None: unknown, the equations alone).
    """
    users, movies = size or (0, 0)
    factors, equations = estimate_bytes(rank, users, movies, cores)
    if factors + equations <= memory_bytes(driver_memory):
        return
    held = f"{readable(factors)} of factors for {users:,} users and {movies:,} movies and " if size else ""
    raise MovieRecError(
        f"{setting} {rank} needs at least {readable(factors + equations)} "
        f"({held}{readable(equations)} of {rank} x {rank} normal equations on {cores} "
        f"core{'s' if cores != 1 else ''}), more than spark.driver.memory {driver_memory}; "
        "lower the rank or raise --driver-memory"
    )


def check_ranks(cfg: Config, sections: list[str], cores: int, driver_memory: str) -> None:
    """:func:`check_rank` for the ``rank`` of each config section in ``sections`` (``als``, ``implicit``)."""
    size = release_size(cfg.get("data", {}))
    for name in sections:
        rank = int(cfg.get(name, {}).get("rank", 0))
        check_rank(f"[{name}] rank ({RANKS[name]})", rank, size, cores, driver_memory)
