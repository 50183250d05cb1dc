"""Where a release's files come from: a folder, a GroupLens zip, or a download.

:func:`resolve_source` turns a release plus a source into the local folder
that holds the release's files (every file named in ``release.files``):

- a folder: the release folder itself, or a parent folder holding
  ``release.folder`` (or a folder named after the release);
- a zip: checked, then unpacked safely into ``<cache>/<release>/``; an
  earlier unpack of the same archive (same SHA-256) is reused;
- nothing: ``<base URL>/<release>.zip`` is downloaded into
  ``<cache>/archives/``, verified against the size and SHA-256 recorded in
  :mod:`movierec_spark.data.releases`, and unpacked as above. A later call finds
  the verified unpack and makes no request.

Rules every download and unpack keeps:

- Only ``https`` URLs, except for a mirror named by the caller or by
  ``$MOVIEREC_MOVIELENS_URL`` (``http`` or ``https``); redirects may not
  leave those schemes.
- A download streams into a uniquely named ``*.part`` file beside its
  destination and is checked (size, then SHA-256) before it is renamed into
  place; on any failure the part file is removed, so a complete-looking
  archive in the cache is always a verified one.
- Releases for which GroupLens publishes no checksum we could record
  (ml-10m, ml-32m, ml-latest) are downloaded only with an explicit opt-in
  (``allow_unverified=True``, ``[data] allow_unverified_download``,
  ``--allow-unverified-download`` or ``MOVIEREC_ALLOW_UNVERIFIED=1``). The
  SHA-256 that arrived is logged and recorded beside the archive, so later
  runs re-check the cached copy against it.
- An unpack refuses entries with absolute paths, drive letters, ``..``
  components, symlinks or device files, entries that resolve outside the
  target, duplicate entries, and archives whose uncompressed size or
  compression ratio marks them as zip bombs. It writes into a staging folder
  beside the target and renames it into place, so a failed unpack never
  leaves a half folder.

Like :mod:`movierec_spark.io`, this module is an edge of the library that
touches disk (and the network); it reads no table. Nothing happens at import.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator, Mapping

from movierec_spark import MovieRecError, __version__
from movierec_spark.io import staged_output
from movierec_spark.data.releases import BASE_URL_ENV, DEFAULT_BASE_URL, RELEASES, Release

try:  # POSIX: serialise concurrent runs that prepare the same release
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

CACHE_ENV = "MOVIEREC_CACHE"
ALLOW_UNVERIFIED_ENV = "MOVIEREC_ALLOW_UNVERIFIED"
DEFAULT_CACHE_DIR = "~/.cache/movierec-spark"
ARCHIVES_DIR = "archives"
# Written into <cache>/<release>/ last, so its presence means a complete unpack.
MARKER_NAME = ".movierec-unpacked.json"
# Beside an archive that has no published checksum: the SHA-256 that arrived.
SHA256_SUFFIX = ".sha256"

# The largest release (ml-latest) unpacks to about 1.5 GB; four times the
# compressed size covers every MovieLens file with a wide margin.
MAX_UNPACKED_BYTES = 8 * 2**30
MAX_COMPRESSION_RATIO = 100
# Ratio checks only bite on entries big enough to matter.
_RATIO_MIN_BYTES = 2**20
# A download of unknown size stops here (ml-latest.zip is about 350 MB).
MAX_DOWNLOAD_BYTES = 4 * 2**30

CHUNK_BYTES = 256 * 2**10
TIMEOUT_SECONDS = 30.0
PROGRESS_SECONDS = 5.0
# A *.part file untouched this long belongs to a run that died.
_STALE_PART_SECONDS = 3600.0

_TRUE = {"1", "true", "yes", "on"}


# --- settings ----------------------------------------------------------------


def resolve_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$MOVIEREC_CACHE``, else ``~/.cache/movierec-spark``.

    An empty string counts as not given (the shipped config leaves
    ``[data] cache_dir`` empty so that the environment variable can apply).
    """
    chosen = cache_dir if cache_dir not in (None, "") else os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
    return Path(chosen).expanduser().absolute()


def allow_unverified_from_env() -> bool:
    return os.environ.get(ALLOW_UNVERIFIED_ENV, "").strip().lower() in _TRUE


def archive_url(release: Release, base_url: str | None = None) -> str:
    """The URL of ``release``'s zip under ``base_url`` (else ``$MOVIEREC_MOVIELENS_URL``, else GroupLens).

    GroupLens itself is reached over https only; a mirror may be http or
    https. Any other scheme is refused.
    """
    mirror = base_url or os.environ.get(BASE_URL_ENV) or None
    base = mirror or DEFAULT_BASE_URL
    scheme = urllib.parse.urlsplit(base).scheme.lower()
    allowed = ("https", "http") if mirror else ("https",)
    if scheme not in allowed or not urllib.parse.urlsplit(base).netloc:
        where = f"${BASE_URL_ENV}" if mirror and not base_url else "the base URL"
        raise MovieRecError(
            f"{where} must be an https:// (or, for a mirror, http://) URL with a host, got {base!r}; "
            "to use a local copy pass it with --source PATH"
        )
    parts = urllib.parse.urlsplit(base)
    if parts.username is not None or parts.password is not None:
        where = f"${BASE_URL_ENV}" if mirror and not base_url else "the base URL"
        # Never echo it: the URL holds a secret, and it would land in logs and errors.
        raise MovieRecError(
            f"{where} ({parts.scheme}://...@{parts.hostname}) carries a user name or password; URLs are "
            "logged, so credentials must not be in them: use a mirror that needs none, or download the "
            "zip yourself and pass it with --source PATH"
        )
    return base.rstrip("/") + "/" + urllib.parse.quote(release.archive)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- resolving a source --------------------------------------------------------


def resolve_source(
    release: Release,
    source: str | Path | None,
    cache_dir: str | Path | None = None,
    base_url: str | None = None,
    *,
    allow_unverified: bool | None = None,
) -> Path:
    """The local folder that holds ``release``'s files.

    Parameters
    ----------
    release : Release
        The release to find (``releases.get_release(name)``).
    source : str, Path or None
        An unpacked folder (the release folder or a parent of it), the
        release's GroupLens zip, or ``None`` to download it.
    cache_dir : str, Path or None
        Where zips are unpacked and downloads kept; see :func:`resolve_cache_dir`.
    base_url : str or None
        A mirror to download from instead of GroupLens
        (default ``$MOVIEREC_MOVIELENS_URL``, else GroupLens over https).
    allow_unverified : bool or None
        Download releases that have no recorded checksum. ``None`` reads
        ``$MOVIEREC_ALLOW_UNVERIFIED``.

    Returns
    -------
    Path
        An absolute folder in which every file of ``release.files`` exists.

    Raises
    ------
    MovieRecError
        A missing or incomplete folder, a damaged or foreign zip, an unsafe
        zip entry, a failed or unverifiable download; the message says what
        to do.

    Examples
    --------
    >>> rel = get_release("ml-100k")
    >>> resolve_source(rel, "../shared/data/movielens")  # doctest: +SKIP
    PosixPath('/work/shared/data/movielens/ml-100k')
    """
    if allow_unverified is None:
        allow_unverified = allow_unverified_from_env()
    if source not in (None, ""):
        path = _local_source(str(source))
        if path.is_dir():
            return find_release_folder(release, path)
        if not zipfile.is_zipfile(path):
            raise MovieRecError(
                f"source {path} is neither a folder nor a zip archive (or the zip is truncated or damaged); "
                f"give the {release.name} folder or its GroupLens zip {release.archive}"
            )
        cache = _writable_cache(cache_dir)
        with _release_lock(cache, release):
            return _from_zip(release, path, cache)
    cache = _writable_cache(cache_dir)
    with _release_lock(cache, release):
        return _from_download(release, cache, base_url, allow_unverified)


def _local_source(text: str) -> Path:
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise MovieRecError(
            f"source {text!r} is a URL; --source takes a local folder or zip. To download, omit --source "
            f"(${BASE_URL_ENV} sets a mirror)"
        )
    path = Path(text).expanduser().absolute()
    if not path.exists():
        raise MovieRecError(f"source {path} does not exist; give the release's unpacked folder or its GroupLens zip")
    return path


def _missing_files(release: Release, folder: Path) -> list[str]:
    return [name for name in release.files.values() if not (folder / name).is_file()]


def find_release_folder(release: Release, folder: str | Path) -> Path:
    """``folder`` itself, or its child named ``release.folder`` / ``release.name``, holding every release file."""
    folder = Path(folder).expanduser().absolute()
    candidates = [folder] + [folder / child for child in dict.fromkeys((release.folder, release.name))]
    for candidate in candidates:
        if candidate.is_dir() and not _missing_files(release, candidate):
            unreadable = [n for n in release.files.values() if not os.access(candidate / n, os.R_OK)]
            if unreadable:
                raise MovieRecError(f"cannot read {', '.join(unreadable)} in {candidate}; check its permissions")
            return candidate
    # Name the folder that looks most like the release in the message.
    closest = next((c for c in candidates[1:] if c.is_dir()), folder)
    missing = _missing_files(release, closest)
    needed = ", ".join(release.files.values())
    raise MovieRecError(
        f"{closest} is not a complete {release.name} folder: missing {', '.join(missing)} "
        f"(it needs {needed}); point --source at a complete copy, its parent folder, or the zip {release.archive}"
    )


# --- zip sources -------------------------------------------------------------------


def _unpacked_dir(cache: Path, release: Release) -> Path:
    return cache / release.name


def _read_marker(root: Path) -> dict[str, Any]:
    try:
        marker = json.loads((root / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _reusable(root: Path, release: Release, marker: Mapping[str, Any], sha256: str | None) -> bool:
    return (
        bool(sha256)
        and marker.get("archive_sha256") == sha256
        and not _missing_files(release, root / release.folder)
    )


def _stat_key(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"archive_path": str(path), "archive_size": st.st_size, "archive_mtime_ns": st.st_mtime_ns}


def _from_zip(release: Release, archive: Path, cache: Path) -> Path:
    root = _unpacked_dir(cache, release)
    marker = _read_marker(root)
    key = _stat_key(archive)
    # Same file, same size and mtime: reuse without hashing it again.
    if all(marker.get(k) == v for k, v in key.items()) and _reusable(root, release, marker, marker.get("archive_sha256")):
        log.info("using %s (unpacked earlier from %s)", root / release.folder, archive)
        return root / release.folder
    sha256 = sha256_file(archive)
    if _reusable(root, release, marker, sha256):
        log.info("using %s (unpacked earlier from an identical archive)", root / release.folder)
        _write_marker(root, {**marker, **key})
        return root / release.folder
    if release.archive_sha256 and sha256 != release.archive_sha256:
        log.warning(
            "%s is not the published %s (SHA-256 %s, published %s): a re-packed copy or another edition; using it as given",
            archive, release.archive, sha256, release.archive_sha256,
        )
    unpack_release(release, archive, root, {**key, "archive_sha256": sha256, "origin": "source"})
    return root / release.folder


def _write_marker(root: Path, marker: Mapping[str, Any]) -> None:
    tmp = root / f"{MARKER_NAME}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(json.dumps(dict(marker), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, root / MARKER_NAME)


def unpack_release(release: Release, archive: Path, root: Path, marker: Mapping[str, Any]) -> Path:
    """Unpack ``archive`` safely into ``root`` (replacing an older unpack) and return ``root/release.folder``.

    The archive must hold every release file under ``release.folder/``;
    ``marker`` (the archive's identity) is written last, inside the staging
    folder, so ``root`` is published complete or not at all.
    """
    with _open_zip(archive) as zf:
        infos = check_zip_entries(zf, archive)
        check_release_layout(release, archive, infos)
        with staged_output(root) as staging:
            extract_entries(zf, infos, archive, staging)
            _write_marker(staging, {"release": release.name, **marker, "unpacked_unix": int(time.time())})
    log.info("unpacked %s into %s", archive.name, root)
    return root / release.folder


# --- safe unzip -----------------------------------------------------------------------


@contextlib.contextmanager
def _open_zip(archive: Path) -> Iterator[zipfile.ZipFile]:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise MovieRecError(f"{archive} is not a readable zip archive ({exc}); download it again") from None
    with zf:
        yield zf


def _entry_parts(name: str, archive: Path) -> list[str]:
    """The path components of a zip entry, or MovieRecError if it could land outside the target."""
    def refuse(why: str) -> MovieRecError:
        return MovieRecError(f"{archive} has an unsafe entry {name!r} ({why}); refusing to unpack it")

    if "\x00" in name:
        raise refuse("a NUL byte in its name")
    # Zip names use '/', but a '\\' is a separator on Windows: treat both as one.
    normalised = name.replace("\\", "/")
    if normalised.startswith("/"):
        raise refuse("an absolute path")
    if re.match(r"^[A-Za-z]:", normalised):
        raise refuse("a drive letter")
    parts = [p for p in normalised.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise refuse("a '..' component")
    if not parts:
        raise refuse("an empty path")
    return parts


def check_zip_entries(
    zf: zipfile.ZipFile,
    archive: Path,
    *,
    max_bytes: int = MAX_UNPACKED_BYTES,
    max_ratio: float = MAX_COMPRESSION_RATIO,
) -> list[zipfile.ZipInfo]:
    """Every entry of ``zf`` if all are safe to unpack; else a MovieRecError naming the first bad one."""
    infos = zf.infolist()
    seen: set[tuple[str, ...]] = set()
    total = 0
    for info in infos:
        parts = tuple(_entry_parts(info.filename, archive))
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise MovieRecError(f"{archive} has a symlink entry {info.filename!r}; refusing to unpack it")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise MovieRecError(f"{archive} has a special-file entry {info.filename!r}; refusing to unpack it")
        if info.flag_bits & 0x1:
            raise MovieRecError(f"{archive} has an encrypted entry {info.filename!r}; MovieLens zips are not encrypted")
        if parts in seen and not info.is_dir():
            raise MovieRecError(f"{archive} has the entry {info.filename!r} twice; refusing to unpack it")
        seen.add(parts)
        total += info.file_size
        if info.file_size > _RATIO_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            raise MovieRecError(
                f"{archive}: entry {info.filename!r} expands {info.file_size / max(info.compress_size, 1):,.0f}-fold "
                f"(limit {max_ratio:,.0f}); this looks like a zip bomb, refusing to unpack it"
            )
    if total > max_bytes:
        raise MovieRecError(
            f"{archive} would unpack to {total / 2**30:,.2f} GiB, more than the {max_bytes / 2**30:,.2f} GiB limit; "
            "refusing to unpack it (is it really a MovieLens release?)"
        )
    return infos


def check_release_layout(release: Release, archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    """MovieRecError unless the zip holds every file of ``release`` under ``release.folder/``."""
    names = {"/".join(_entry_parts(i.filename, archive)) for i in infos if not i.is_dir()}
    missing = [f"{release.folder}/{f}" for f in release.files.values() if f"{release.folder}/{f}" not in names]
    if not missing:
        return
    matches = [
        r.name for r in RELEASES.values() if all(f"{r.folder}/{f}" in names for f in r.files.values())
    ]
    tops = sorted({n.split("/")[0] for n in names})[:5]
    hint = f"it looks like {' or '.join(matches)}: use --dataset {matches[0]}" if matches else (
        f"its top-level entries are {', '.join(tops) or 'none'}"
    )
    raise MovieRecError(
        f"{archive} is not the {release.name} layout: it lacks {', '.join(missing)}; {hint}"
    )


def extract_entries(
    zf: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    archive: Path,
    target: Path,
    *,
    max_bytes: int = MAX_UNPACKED_BYTES,
) -> None:
    """Write checked entries under ``target`` (an empty folder), counting every byte.

    Files get default permissions whatever the zip says; a size that
    exceeds the entry's header or the total limit, a bad CRC or a damaged
    stream is a MovieRecError. The caller removes ``target`` on failure.
    """
    real_target = os.path.realpath(target)
    written = 0
    try:
        for info in infos:
            dest = Path(real_target, *_entry_parts(info.filename, archive))
            if os.path.commonpath([real_target, os.path.realpath(dest)]) != real_target:
                raise MovieRecError(f"{archive} entry {info.filename!r} resolves outside {target}; refusing to unpack it")
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            entry_bytes = 0
            with zf.open(info) as src, dest.open("xb") as out:
                for block in iter(lambda: src.read(CHUNK_BYTES), b""):
                    entry_bytes += len(block)
                    written += len(block)
                    if entry_bytes > info.file_size or written > max_bytes:
                        raise MovieRecError(
                            f"{archive} entry {info.filename!r} holds more data than its header says; refusing it"
                        )
                    out.write(block)
    except FileExistsError:
        raise MovieRecError(
            f"{archive} has the entry {info.filename!r} twice (or a file and a folder of one name); refusing to unpack it"
        ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise MovieRecError(f"{archive} is damaged ({info.filename}: {exc}); download or copy it again") from None
    except OSError as exc:
        raise MovieRecError(f"could not unpack {archive} into {target.parent}: {exc}") from None


# --- downloads ---------------------------------------------------------------------


def _offline_help(release: Release, url: str) -> str:
    return (
        f"download {url} by hand (or copy {release.archive} from a machine that has it) and pass it with "
        f"--source PATH/{release.archive}, or set ${BASE_URL_ENV} to a reachable mirror"
    )


def _from_download(release: Release, cache: Path, base_url: str | None, allow_unverified: bool) -> Path:
    root = _unpacked_dir(cache, release)
    archive = cache / ARCHIVES_DIR / release.archive
    expected = release.archive_sha256 or _recorded_sha256(archive)
    if _reusable(root, release, _read_marker(root), expected):
        log.info("using %s (downloaded and verified earlier)", root / release.folder)
        return root / release.folder
    sha256 = _verified_cached_archive(release, archive, expected)
    if sha256 is None:
        url = archive_url(release, base_url)
        sha256 = download_archive(release, url, archive, allow_unverified=allow_unverified)
    unpack_release(release, archive, root, {**_stat_key(archive), "archive_sha256": sha256, "origin": "download"})
    return root / release.folder


def _recorded_sha256(archive: Path) -> str | None:
    try:
        text = archive.with_name(archive.name + SHA256_SUFFIX).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    digest = text.split()[0].lower() if text.split() else ""
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def _verified_cached_archive(release: Release, archive: Path, expected: str | None) -> str | None:
    """The SHA-256 of a cached archive that still matches ``expected``; None (and the file removed) otherwise."""
    if not archive.is_file():
        return None
    if expected:
        sha256 = sha256_file(archive)
        if sha256 == expected:
            return sha256
        log.warning("cached %s is damaged (SHA-256 %s, expected %s); downloading it again", archive, sha256, expected)
    else:
        log.warning("cached %s has no recorded checksum; downloading it again", archive)
    archive.unlink(missing_ok=True)
    archive.with_name(archive.name + SHA256_SUFFIX).unlink(missing_ok=True)
    return None


class _SchemeKeepingRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to the schemes the first URL was allowed (never https -> http)."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__()
        self.allowed = allowed

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib hook
        scheme = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme.lower()
        if scheme not in self.allowed:
            raise MovieRecError(
                f"{req.full_url} redirects to {newurl!r}; refusing to follow it to a {scheme or 'relative'}:// URL"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open_url(url: str):
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    allowed = ("https",) if scheme == "https" else ("http", "https")
    opener = urllib.request.build_opener(_SchemeKeepingRedirects(allowed))
    request = urllib.request.Request(url, headers={"User-Agent": f"movierec-spark/{__version__}"})
    return opener.open(request, timeout=TIMEOUT_SECONDS)


def _content_length(response) -> int | None:
    try:
        value = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


class _Progress:
    """Logs a download every 10% or every few seconds: bytes, percent, MB/s."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label = label
        self.total = total
        self.start = self.last = time.monotonic()
        self.tenths = 0

    def update(self, done: int) -> None:
        now = time.monotonic()
        tenths = done * 10 // self.total if self.total else 0
        if tenths > self.tenths or now - self.last >= PROGRESS_SECONDS:
            self.tenths = max(tenths, self.tenths)
            self.last = now
            self.log(done, now)

    def log(self, done: int, now: float | None = None) -> None:
        elapsed = max((now or time.monotonic()) - self.start, 1e-6)
        of = f" of {self.total / 1e6:,.1f} MB ({100 * done / self.total:.0f}%)" if self.total else ""
        log.info("downloading %s: %s MB%s, %.1f MB/s", self.label, f"{done / 1e6:,.1f}", of, done / 1e6 / elapsed)


def _remove_stale_parts(final: Path) -> None:
    for part in final.parent.glob(f"{final.name}.*.part"):
        with contextlib.suppress(OSError):
            if time.time() - part.stat().st_mtime > _STALE_PART_SECONDS:
                part.unlink()


def download_archive(release: Release, url: str, final: Path, *, allow_unverified: bool = False) -> str:
    """Download ``url`` to ``final``, verified; return its SHA-256.

    The bytes stream into ``final``'s folder as a ``*.part`` file, which is
    renamed to ``final`` only after its size and SHA-256 match the release
    table; on any failure it is removed. A release with no recorded
    checksum is downloaded only if ``allow_unverified``; its SHA-256 is then
    logged and written to ``final.sha256``.
    """
    expected_sha = release.archive_sha256
    if expected_sha is None and not allow_unverified:
        raise MovieRecError(
            f"{release.name} has no published checksum, so its download cannot be verified; "
            f"opt in with --allow-unverified-download (or {ALLOW_UNVERIFIED_ENV}=1), "
            f"or download {url} yourself and pass it with --source PATH"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(final)
    part = final.with_name(f"{final.name}.{uuid.uuid4().hex[:12]}.part")
    log.info("downloading %s from %s", release.archive, url)
    if urllib.parse.urlsplit(url).scheme.lower() == "http":
        log.warning(
            "%s is plain http (a mirror): %s",
            url,
            "the archive's checksum is still verified" if expected_sha else "nothing protects this unverified download in transit",
        )
    try:
        got, sha256 = _stream(release, url, part)
        if expected_sha and sha256 != expected_sha:
            raise MovieRecError(
                f"{url} failed verification: SHA-256 expected {expected_sha}, got {sha256}; "
                f"the download is damaged or not the published {release.archive}: try again, or {_offline_help(release, url)}"
            )
        if expected_sha is None:
            log.warning(
                "%s has no published checksum: downloaded %s bytes with SHA-256 %s; compare it with a trusted copy",
                release.archive, f"{got:,}", sha256,
            )
            # Recorded before the archive appears, so a cached archive always has one.
            final.with_name(final.name + SHA256_SUFFIX).write_text(f"{sha256}  {release.archive}\n", encoding="ascii")
        os.replace(part, final)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    log.info("downloaded %s (%s bytes, SHA-256 %s)", final, f"{got:,}", sha256)
    return sha256


def _stream(release: Release, url: str, part: Path) -> tuple[int, str]:
    """Copy ``url`` into ``part``; return (bytes, SHA-256) after checking the size."""
    digest = hashlib.sha256()
    got = 0
    try:
        with _open_url(url) as response:
            announced = _content_length(response)
            if release.archive_size is not None and announced is not None and announced != release.archive_size:
                raise MovieRecError(
                    f"{url} announces {announced:,} bytes but the published {release.archive} has "
                    f"{release.archive_size:,}; refusing it: {_offline_help(release, url)}"
                )
            expected_size = release.archive_size if release.archive_size is not None else announced
            limit = expected_size if expected_size is not None else MAX_DOWNLOAD_BYTES
            progress = _Progress(release.archive, expected_size)
            with part.open("xb") as out:
                while block := response.read(CHUNK_BYTES):
                    got += len(block)
                    if got > limit:
                        raise MovieRecError(f"{url} sent more than the expected {limit:,} bytes; refusing it")
                    digest.update(block)
                    out.write(block)
                    progress.update(got)
                out.flush()
                os.fsync(out.fileno())
    except MovieRecError:
        raise
    except urllib.error.HTTPError as exc:
        raise MovieRecError(
            f"{url} answered HTTP {exc.code} {exc.reason}; {_offline_help(release, url)}"
        ) from None
    except urllib.error.URLError as exc:
        raise MovieRecError(f"cannot reach {url} ({exc.reason}); you may be offline: {_offline_help(release, url)}") from None
    except (TimeoutError, ConnectionError, OSError) as exc:
        # OSError from the local file is a disk problem, not the network's.
        if isinstance(exc, (TimeoutError, ConnectionError)) or not exc.filename:
            raise MovieRecError(f"download of {url} failed ({exc}); try again, or {_offline_help(release, url)}") from None
        raise MovieRecError(f"cannot write {exc.filename}: {exc.strerror}; free space or set --cache-dir") from None
    except Exception as exc:  # http.client.HTTPException and friends
        raise MovieRecError(f"download of {url} failed ({type(exc).__name__}: {exc}); {_offline_help(release, url)}") from None
    if expected_size is not None and got != expected_size:
        raise MovieRecError(
            f"download of {url} was cut off: expected {expected_size:,} bytes, got {got:,}; "
            f"try again, or {_offline_help(release, url)}"
        )
    return got, digest.hexdigest()


# --- cache housekeeping ------------------------------------------------------------


def _writable_cache(cache_dir: str | Path | None) -> Path:
    cache = resolve_cache_dir(cache_dir)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MovieRecError(
            f"cannot create the download cache {cache} ({exc.strerror}); set --cache-dir or ${CACHE_ENV} to a writable folder"
        ) from None
    if not os.access(cache, os.W_OK | os.X_OK):
        raise MovieRecError(f"the download cache {cache} is not writable; set --cache-dir or ${CACHE_ENV} to a writable folder")
    return cache


@contextlib.contextmanager
def _release_lock(cache: Path, release: Release) -> Iterator[None]:
    """Let one process at a time download or unpack a release into ``cache``; the others then reuse it."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with (cache / f".{release.name}.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another run that is preparing %s in %s", release.name, cache)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
