"""Reading and writing files: the one library module that touches disk.

Outputs are published atomically: a job writes everything into a staging
folder beside the destination and only then moves it into place, so a run
that fails part-way (or is killed) never leaves a half-written table where a
good one was. The previous output is moved aside, never deleted first, and
removed only once the new one is in place.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from movierec_spark import MovieRecError

log = logging.getLogger(__name__)

_STAGING = ".staging-"
_PREVIOUS = ".previous-"


def _sidecar(final: Path, kind: str) -> Path:
    return final.parent / f".{final.name}{kind}{uuid.uuid4().hex[:12]}"


def recover_output(final: str | Path) -> None:
    """Undo a publish that was cut off between its two renames.

    If ``final`` is missing but a moved-aside previous version exists, put
    the newest one back; stale staging folders of dead runs are removed.
    """
    final = Path(final)
    parent = final.parent
    if not parent.is_dir():
        return
    previous = sorted(
        parent.glob(f".{final.name}{_PREVIOUS}*"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    if previous and not final.exists():
        log.warning("restoring %s from %s (an earlier run was cut off while publishing)", final, previous[0])
        os.replace(previous[0], final)
        previous = previous[1:]
    for stale in previous + list(parent.glob(f".{final.name}{_STAGING}*")):
        shutil.rmtree(stale, ignore_errors=True)


def publish_dir(staging: Path, final: Path) -> None:
    """Move ``staging`` to ``final``, replacing an older ``final`` safely."""
    previous = None
    if final.exists():
        previous = _sidecar(final, _PREVIOUS)
        os.replace(final, previous)
    os.replace(staging, final)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def check_output_dir(final: str | Path) -> Path:
    """Refuse an output path that exists as a file; return it as a Path."""
    final = Path(final).expanduser()
    if final.exists() and not final.is_dir():
        raise MovieRecError(f"output path {final} is an existing file; give a folder path")
    return final


@contextmanager
def staged_output(final: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder that becomes ``final`` on success.

    On an exception the staging folder is removed and ``final`` is untouched.
    Works for local paths (on a cluster: a filesystem every node mounts).
    """
    final = check_output_dir(final).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_output(final)
    staging = _sidecar(final, _STAGING)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish_dir(staging, final)
    log.info("wrote %s", final)


def write_json(path: str | Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON, atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MovieRecError(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise MovieRecError(f"{path} is not valid JSON: {exc}") from None
