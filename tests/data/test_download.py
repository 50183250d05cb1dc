"""Sources, the download cache and safe unzip, against a local HTTP server (no Spark).

The server is a thread on 127.0.0.1 that serves the real GroupLens
ml-latest-small.zip and zips the tests build, and can lie: cut a response
short, send other bytes, redirect. It counts requests, so cache hits can be
shown to make none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import logging
import os
import socket
import stat
import threading
import time
import zipfile
from pathlib import Path

import pytest

from movierec_spark import MovieRecError, cli
from movierec_spark.data import download as dl
from movierec_spark.data.releases import BASE_URL_ENV, get_release
from movierec_spark.data.load import resolve_release_folder

SMALL = get_release("ml-latest-small")


# --- a local server that can misbehave -------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[str, object]] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server hook
        self.requests.append(self.path)
        kind, payload = self.routes.get(self.path, ("missing", b""))
        if kind == "missing":
            self.send_error(404)
        elif kind == "redirect":
            self.send_response(302)
            self.send_header("Location", payload)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif kind == "cut":  # announce everything, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.close_connection = True
        elif kind == "slow":  # answers after a pause, so concurrent callers overlap
            time.sleep(0.5)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        elif kind == "no-length":  # no Content-Length, stream closes early
            self.send_response(200)
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = True
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server():
    """A bounded HTTP server thread on 127.0.0.1, stopped at the end of the test."""
    handler = type("Handler", (_Handler,), {"routes": {}, "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.routes = handler.routes
    httpd.requests = handler.requests
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


@pytest.fixture
def real_zip(movielens_dir) -> Path:
    path = movielens_dir / "zips" / "ml-latest-small.zip"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in (BASE_URL_ENV, dl.CACHE_ENV, dl.ALLOW_UNVERIFIED_ENV):
        monkeypatch.delenv(name, raising=False)


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _zip_bytes(entries: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def _tiny_release_zip(folder="ml-latest-small", text=b"userId,movieId,rating,timestamp\n1,2,3.5,4\n", extra=None):
    entries = {f"{folder}/{name}": text for name in SMALL.files.values()}
    entries.update(extra or {})
    return _zip_bytes(entries)


# --- downloads -----------------------------------------------------------------------


@pytest.mark.slow
def test_download_verifies_unpacks_and_second_call_makes_no_request(server, real_zip, tmp_path, caplog):
    server.routes["/ml-latest-small.zip"] = ("ok", real_zip.read_bytes())
    caplog.set_level(logging.INFO, logger="movierec_spark")

    folder = dl.resolve_source(SMALL, None, tmp_path / "cache", base_url=server.base_url)

    assert folder == tmp_path / "cache" / "ml-latest-small" / "ml-latest-small"
    for name in SMALL.files.values():
        assert (folder / name).stat().st_size == (real_zip.parent.parent / "ml-latest-small" / name).stat().st_size
    archive = tmp_path / "cache" / "archives" / "ml-latest-small.zip"
    assert dl.sha256_file(archive) == SMALL.archive_sha256
    assert not list(archive.parent.glob("*.part"))
    assert server.requests == ["/ml-latest-small.zip"]
    assert any("downloading ml-latest-small.zip:" in r.message and "100%" in r.message for r in caplog.records)

    again = dl.resolve_source(SMALL, None, tmp_path / "cache", base_url=server.base_url)
    assert again == folder
    assert server.requests == ["/ml-latest-small.zip"]  # served from the cache


@pytest.mark.slow
def test_checksum_mismatch_is_refused_and_leaves_nothing(server, real_zip, tmp_path):
    tampered = bytearray(real_zip.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF  # same size, different bytes
    server.routes["/ml-latest-small.zip"] = ("ok", bytes(tampered))

    with pytest.raises(MovieRecError, match=f"SHA-256 expected {SMALL.archive_sha256}, got [0-9a-f]{{64}}"):
        dl.resolve_source(SMALL, None, tmp_path / "cache", base_url=server.base_url)
    leftovers = _files_under(tmp_path / "cache")
    assert not any(name.startswith(("archives/ml-latest", "ml-latest-small")) for name in leftovers), leftovers


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cut", "no-length"])
def test_truncated_download_is_refused_and_leaves_nothing(server, real_zip, tmp_path, kind):
    data = real_zip.read_bytes()
    server.routes["/ml-latest-small.zip"] = (kind, data if kind == "cut" else data[:1000])

    got = "489,101" if kind == "cut" else "1,000"
    with pytest.raises(MovieRecError, match=f"cut off: expected 978,202 bytes, got {got};"):
        dl.resolve_source(SMALL, None, tmp_path / "cache", base_url=server.base_url)
    assert not (tmp_path / "cache" / "archives" / "ml-latest-small.zip").exists()
    assert not list((tmp_path / "cache" / "archives").glob("*.part"))
    assert not (tmp_path / "cache" / "ml-latest-small").exists()


def test_wrong_announced_size_is_refused_before_reading(server, tmp_path):
    server.routes["/ml-latest-small.zip"] = ("ok", b"x" * 10)
    with pytest.raises(MovieRecError, match="announces 10 bytes but the published ml-latest-small.zip has 978,202"):
        dl.resolve_source(SMALL, None, tmp_path / "cache", base_url=server.base_url)
    assert not list((tmp_path / "cache" / "archives").iterdir())


@pytest.mark.slow
def test_damaged_cached_archive_is_downloaded_again(server, real_zip, tmp_path):
    server.routes["/ml-latest-small.zip"] = ("ok", real_zip.read_bytes())
    archive = tmp_path / "cache" / "archives" / "ml-latest-small.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"not the archive")

    dl.resolve_source(SMALL, None, tmp_path / "cache", base_url=server.base_url)

    assert server.requests == ["/ml-latest-small.zip"]
    assert dl.sha256_file(archive) == SMALL.archive_sha256


def test_release_without_checksum_needs_opt_in_and_logs_sha(server, tmp_path, monkeypatch, caplog):
    unverified = dataclasses.replace(SMALL, archive_sha256=None, archive_size=None)
    payload = _tiny_release_zip()
    server.routes["/ml-latest-small.zip"] = ("ok", payload)
    cache = tmp_path / "cache"

    with pytest.raises(MovieRecError, match="no published checksum.*--allow-unverified-download"):
        dl.resolve_source(unverified, None, cache, base_url=server.base_url)
    assert server.requests == []  # refused before any request

    caplog.set_level(logging.INFO, logger="movierec_spark")
    monkeypatch.setenv(dl.ALLOW_UNVERIFIED_ENV, "1")
    folder = dl.resolve_source(unverified, None, cache, base_url=server.base_url)

    digest = hashlib.sha256(payload).hexdigest()
    assert (folder / "ratings.csv").exists()
    assert any(digest in r.message and r.levelno == logging.WARNING for r in caplog.records)
    assert (cache / "archives" / "ml-latest-small.zip.sha256").read_text().split()[0] == digest

    # Later runs trust what was recorded, with or without the opt-in, and make no request.
    monkeypatch.delenv(dl.ALLOW_UNVERIFIED_ENV)
    assert dl.resolve_source(unverified, None, cache, base_url=server.base_url) == folder
    assert len(server.requests) == 1


def _pinned(payload: bytes):
    """ml-latest-small as if GroupLens had published ``payload``."""
    return dataclasses.replace(SMALL, archive_sha256=hashlib.sha256(payload).hexdigest(), archive_size=len(payload))


def test_incomplete_unpack_is_redone_from_the_cached_archive(server, tmp_path):
    payload = _tiny_release_zip()
    release = _pinned(payload)
    server.routes["/ml-latest-small.zip"] = ("ok", payload)
    folder = dl.resolve_source(release, None, tmp_path / "cache", base_url=server.base_url)
    (folder / "movies.csv").unlink()

    assert dl.resolve_source(release, None, tmp_path / "cache", base_url=server.base_url) == folder
    assert (folder / "movies.csv").exists()
    assert len(server.requests) == 1


def test_stale_part_files_of_dead_runs_are_removed(server, tmp_path):
    payload = _tiny_release_zip()
    server.routes["/ml-latest-small.zip"] = ("ok", payload)
    archives = tmp_path / "cache" / "archives"
    archives.mkdir(parents=True)
    stale, fresh = archives / "ml-latest-small.zip.dead.part", archives / "ml-latest-small.zip.live.part"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))

    dl.resolve_source(_pinned(payload), None, tmp_path / "cache", base_url=server.base_url)
    assert not stale.exists()
    assert fresh.exists()  # may belong to a download still running


def test_concurrent_runs_download_once(server, tmp_path):
    payload = _tiny_release_zip()
    release = _pinned(payload)
    server.routes["/ml-latest-small.zip"] = ("slow", payload)
    results, errors = [], []

    def run():
        try:
            results.append(dl.resolve_source(release, None, tmp_path / "cache", base_url=server.base_url))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(results) == 2 and results[0] == results[1]
    assert len(server.requests) == 1


@pytest.mark.parametrize("base", ["ftp://mirror.example/movielens/", "file:///tmp/", "movielens/", "https://"])
def test_other_schemes_are_refused(base, tmp_path):
    with pytest.raises(MovieRecError, match="must be an https://"):
        dl.resolve_source(SMALL, None, tmp_path / "cache", base_url=base)


def test_grouplens_default_is_https_and_env_sets_a_mirror(monkeypatch):
    assert dl.archive_url(SMALL).startswith("https://files.grouplens.org/")
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:9/mirror")
    assert dl.archive_url(SMALL) == "http://127.0.0.1:9/mirror/ml-latest-small.zip"
    monkeypatch.setenv(BASE_URL_ENV, "gopher://127.0.0.1/")
    with pytest.raises(MovieRecError, match=f"\\${BASE_URL_ENV} must be"):
        dl.archive_url(SMALL)


def test_redirect_to_another_scheme_is_refused(server, tmp_path):
    server.routes["/ml-latest-small.zip"] = ("redirect", "ftp://elsewhere.example/ml-latest-small.zip")
    with pytest.raises(MovieRecError, match="refusing to follow it to a ftp:// URL"):
        dl.resolve_source(SMALL, None, tmp_path / "cache", base_url=server.base_url)
    assert not list((tmp_path / "cache" / "archives").iterdir())


def test_offline_error_says_how_to_use_a_local_copy(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(MovieRecError) as info:
        dl.resolve_source(SMALL, None, tmp_path / "cache", base_url=url)
    message = str(info.value)
    assert "\n" not in message
    assert f"cannot reach {url}ml-latest-small.zip" in message
    assert "--source PATH/ml-latest-small.zip" in message
    assert not list((tmp_path / "cache" / "archives").iterdir())


def test_http_error_names_the_status(server, tmp_path):
    with pytest.raises(MovieRecError, match="answered HTTP 404.*--source"):
        dl.resolve_source(SMALL, None, tmp_path / "cache", base_url=server.base_url)


# --- zip sources ------------------------------------------------------------------------


@pytest.mark.slow
def test_real_zip_source_unpacks_once_and_is_reused(real_zip, tmp_path):
    cache = tmp_path / "cache"
    folder = dl.resolve_source(SMALL, str(real_zip), cache)
    assert folder == cache / "ml-latest-small" / "ml-latest-small"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in (real_zip.parent.parent / "ml-latest-small").iterdir()
    )
    sentinel = folder / "kept.txt"  # a re-unpack would replace the folder
    sentinel.write_text("x")
    assert dl.resolve_source(SMALL, real_zip, cache) == folder
    assert sentinel.exists()


def test_changed_zip_is_unpacked_again(tmp_path):
    source = tmp_path / "mine.zip"
    source.write_bytes(_tiny_release_zip(text=b"first\n"))
    folder = dl.resolve_source(SMALL, source, tmp_path / "cache")
    assert (folder / "ratings.csv").read_bytes() == b"first\n"

    source.write_bytes(_tiny_release_zip(text=b"second edition\n"))
    folder = dl.resolve_source(SMALL, source, tmp_path / "cache")
    assert (folder / "ratings.csv").read_bytes() == b"second edition\n"
    assert not [p for p in (tmp_path / "cache").iterdir() if ".staging-" in p.name or ".previous-" in p.name]


@pytest.mark.parametrize(
    "entry, reason",
    [
        ("../evil.txt", "'..' component"),
        ("ml-latest-small/../../evil.txt", "'..' component"),
        ("..\\evil.txt", "'..' component"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:/evil.txt", "drive letter"),
    ],
)
def test_unsafe_entries_are_refused_and_nothing_is_written(tmp_path, entry, reason):
    root = tmp_path / "sandbox"
    cache = root / "cache"
    source = tmp_path / "evil.zip"
    source.write_bytes(_tiny_release_zip(extra={entry: b"pwned"}))
    with pytest.raises(MovieRecError, match=f"unsafe entry .*{reason}"):
        dl.resolve_source(SMALL, source, cache)
    assert not any("evil" in p for p in _files_under(tmp_path) if p != "evil.zip")
    assert not Path("/tmp/evil.txt").exists() or Path("/tmp/evil.txt").read_bytes() != b"pwned"
    assert not (cache / "ml-latest-small").exists()
    assert _files_under(cache) <= {".ml-latest-small.lock"}


def test_symlink_entry_is_refused(tmp_path):
    source = tmp_path / "link.zip"
    source.write_bytes(
        _zip_bytes(
            {f"ml-latest-small/{n}": b"a\n" for n in SMALL.files.values()},
            symlinks={"ml-latest-small/passwd": "/etc/passwd"},
        )
    )
    with pytest.raises(MovieRecError, match="symlink entry 'ml-latest-small/passwd'"):
        dl.resolve_source(SMALL, source, tmp_path / "cache")
    assert not (tmp_path / "cache" / "ml-latest-small").exists()


def test_zip_bomb_is_refused(tmp_path):
    source = tmp_path / "bomb.zip"
    source.write_bytes(_tiny_release_zip(extra={"ml-latest-small/zeros.bin": bytes(20 * 2**20)}))
    with pytest.raises(MovieRecError, match=r"expands [\d,]+-fold \(limit 100\).*zip bomb"):
        dl.resolve_source(SMALL, source, tmp_path / "cache")
    with zipfile.ZipFile(io.BytesIO(_tiny_release_zip())) as zf:
        with pytest.raises(MovieRecError, match="more than the 0.00 GiB limit"):
            dl.check_zip_entries(zf, Path("small.zip"), max_bytes=10)


@pytest.mark.slow
def test_damaged_member_fails_the_unpack_and_leaves_no_folder(real_zip, tmp_path):
    damaged = bytearray(real_zip.read_bytes())
    with zipfile.ZipFile(real_zip) as zf:
        info = zf.getinfo("ml-latest-small/ratings.csv")
    # Flip a byte in the middle of ratings.csv's compressed data (its local header is 30 + name bytes).
    damaged[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
    source = tmp_path / "ml-latest-small.zip"
    source.write_bytes(bytes(damaged))
    with pytest.raises(MovieRecError, match="is damaged"):
        dl.resolve_source(SMALL, source, tmp_path / "cache")
    assert _files_under(tmp_path / "cache") <= {".ml-latest-small.lock"}


@pytest.mark.slow
def test_truncated_or_foreign_files_are_not_zips(real_zip, tmp_path):
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(real_zip.read_bytes()[:500_000])
    with pytest.raises(MovieRecError, match="neither a folder nor a zip archive"):
        dl.resolve_source(SMALL, truncated, tmp_path / "cache")


def test_zip_of_another_release_names_it(tmp_path):
    other = get_release("ml-100k")
    source = tmp_path / "ml-100k.zip"
    source.write_bytes(_zip_bytes({f"ml-100k/{n}": b"1\t2\t3\t4\n" for n in other.files.values()}))
    with pytest.raises(MovieRecError, match="not the ml-latest-small layout: it lacks ml-latest-small/ratings.csv.*--dataset ml-100k"):
        dl.resolve_source(SMALL, source, tmp_path / "cache")
    source.write_bytes(_zip_bytes({"stuff/readme.txt": b"hi"}))
    with pytest.raises(MovieRecError, match="top-level entries are stuff"):
        dl.resolve_source(SMALL, source, tmp_path / "cache")


# --- folder sources ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ml-latest-small", "ml-100k"])
def test_real_release_folders_and_their_parent(movielens_dir, name, tmp_path):
    release = get_release(name)
    expected = (movielens_dir / name).absolute()
    assert dl.resolve_source(release, str(movielens_dir / name), tmp_path / "cache") == expected
    assert dl.resolve_source(release, movielens_dir, tmp_path / "cache") == expected
    assert not (tmp_path / "cache").exists()  # folders are read in place


@pytest.mark.slow
def test_incomplete_folder_names_the_missing_files(movielens_dir, tmp_path):
    # The shared ml-1m copy really lacks ratings.dat.
    with pytest.raises(MovieRecError, match=r"ml-1m is not a complete ml-1m folder: missing ratings\.dat"):
        dl.resolve_source(get_release("ml-1m"), movielens_dir, tmp_path / "cache")
    partial = tmp_path / "mine"
    partial.mkdir()
    (partial / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(MovieRecError, match=f"{partial} is not a complete ml-latest-small folder: missing movies.csv, tags.csv, links.csv"):
        dl.resolve_source(SMALL, partial, tmp_path / "cache")


def test_missing_source_and_url_source_are_clear(tmp_path):
    with pytest.raises(MovieRecError, match="does not exist"):
        dl.resolve_source(SMALL, tmp_path / "nope", tmp_path / "cache")
    with pytest.raises(MovieRecError, match="is a URL; --source takes a local folder or zip"):
        dl.resolve_source(SMALL, "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip", tmp_path)


# --- settings ------------------------------------------------------------------------


def test_cache_dir_argument_then_env_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dl.resolve_cache_dir(None) == tmp_path / "home" / ".cache" / "movierec-spark"
    assert dl.resolve_cache_dir("") == tmp_path / "home" / ".cache" / "movierec-spark"
    monkeypatch.setenv(dl.CACHE_ENV, "~/elsewhere")
    assert dl.resolve_cache_dir("") == tmp_path / "home" / "elsewhere"
    assert dl.resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"


def _data_config(argv):
    parser = cli.make_parser("job", "test")
    cli.add_data_flags(parser)
    return cli.build_config(parser.parse_args(argv))["data"]


@pytest.mark.slow
def test_configured_source_reads_the_data_section(movielens_dir, tmp_path):
    cfg = _data_config(["--dataset", "ml-100k", "--source", str(movielens_dir), "--cache-dir", str(tmp_path)])
    assert resolve_release_folder(get_release("ml-100k"), cfg) == (movielens_dir / "ml-100k").absolute()


def test_unverified_flag_reaches_the_download(server, tmp_path, monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, server.base_url)
    monkeypatch.setenv(dl.CACHE_ENV, str(tmp_path / "cache"))
    latest = get_release("ml-latest")
    server.routes["/ml-latest.zip"] = ("ok", _zip_bytes({f"ml-latest/{n}": b"x\n" for n in latest.files.values()}))

    with pytest.raises(MovieRecError, match="ml-latest has no published checksum"):
        resolve_release_folder(latest, _data_config(["--dataset", "ml-latest"]))
    folder = resolve_release_folder(latest, _data_config(["--dataset", "ml-latest", "--allow-unverified-download"]))
    assert folder == tmp_path / "cache" / "ml-latest" / "ml-latest"
    assert server.requests == ["/ml-latest.zip"]
