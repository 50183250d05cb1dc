"""Writing tiny MovieLens release files, byte for byte, for tests."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


def write_files(folder: Path, files: dict[str, list[str] | bytes], *, encoding="utf-8", newline="\n") -> Path:
    """Write each file as lines joined by ``newline`` (or as raw bytes) and return ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content if isinstance(content, bytes) else "".join(line + newline for line in content).encode(encoding)
        (folder / name).write_bytes(data)
    return folder


@contextmanager
def parsed_once(loaded):
    """Persist a LoadedRelease's checked frames while a test asks several questions of it."""
    for df in loaded.checked.values():
        df.persist()
    try:
        yield loaded
    finally:
        for df in loaded.checked.values():
            df.unpersist()
