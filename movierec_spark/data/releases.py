"""The MovieLens releases this project reads, keyed by release name.

One row per release says where its archive lives, which folder it unpacks
to, which file holds which table, how the files are encoded and separated,
the release's rating scale, and the archive's published size and SHA-256
(``../shared/data/movielens/CHECKSUMS.md`` lists where they come from).
Everything that differs between releases is data here, not code elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from movierec_spark import MovieRecError

# Where GroupLens publishes the archives; MOVIEREC_MOVIELENS_URL overrides it
# (mirrors, tests against a local server).
DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens/"
BASE_URL_ENV = "MOVIEREC_MOVIELENS_URL"

# Layouts: how the files of a release are written.
LAYOUT_100K = "ml-100k"  # u.data (tab), u.item / u.user (pipe), latin-1 items
LAYOUT_DAT = "dat"  # '::'-separated .dat files, no header (ml-1m, ml-10m)
LAYOUT_CSV = "csv"  # RFC 4180 CSV with a header row (ml-20m and later)


@dataclass(frozen=True)
class RatingScale:
    """Allowed ratings: ``low`` to ``high`` inclusive, in steps of ``step``."""

    low: float
    high: float
    step: float

    def values(self) -> list[float]:
        n = int(round((self.high - self.low) / self.step))
        return [round(self.low + i * self.step, 4) for i in range(n + 1)]


WHOLE_STARS = RatingScale(1.0, 5.0, 1.0)
HALF_STARS = RatingScale(0.5, 5.0, 0.5)


@dataclass(frozen=True)
class Release:
    """How one MovieLens release is packaged and written."""

    name: str
    layout: str
    folder: str  # top-level folder inside the archive
    files: Mapping[str, str]  # table name -> file name inside ``folder``
    encoding: str
    scale: RatingScale
    archive_sha256: str | None = None
    archive_size: int | None = None
    published_ratings: int | None = None  # from the release's README
    published_users: int | None = None  # ditto: users who rated, movies in the movies file
    published_movies: int | None = None
    notes: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def archive(self) -> str:
        return f"{self.name}.zip"

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(self.files)


_CSV_FILES = {
    "ratings": "ratings.csv",
    "movies": "movies.csv",
    "tags": "tags.csv",
    "links": "links.csv",
}

RELEASES: dict[str, Release] = {
    r.name: r
    for r in [
        Release(
            name="ml-100k",
            layout=LAYOUT_100K,
            folder="ml-100k",
            files={"ratings": "u.data", "movies": "u.item", "users": "u.user"},
            encoding="ISO-8859-1",
            scale=WHOLE_STARS,
            archive_sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            archive_size=4_924_029,
            published_ratings=100_000,
            published_users=943,
            published_movies=1_682,
            extra={"genres": "u.genre", "occupations": "u.occupation"},
        ),
        Release(
            name="ml-1m",
            layout=LAYOUT_DAT,
            folder="ml-1m",
            files={"ratings": "ratings.dat", "movies": "movies.dat", "users": "users.dat"},
            encoding="ISO-8859-1",
            scale=WHOLE_STARS,
            archive_sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            archive_size=5_917_549,
            published_ratings=1_000_209,
            published_users=6_040,
            published_movies=3_883,
        ),
        Release(
            name="ml-10m",
            layout=LAYOUT_DAT,
            folder="ml-10M100K",
            files={"ratings": "ratings.dat", "movies": "movies.dat", "tags": "tags.dat"},
            encoding="UTF-8",
            scale=HALF_STARS,
            published_ratings=10_000_054,
            published_users=71_567,
            published_movies=10_681,
            notes="GroupLens publishes no checksum that this project could record.",
        ),
        Release(
            name="ml-20m",
            layout=LAYOUT_CSV,
            folder="ml-20m",
            files=_CSV_FILES,
            encoding="UTF-8",
            scale=HALF_STARS,
            archive_sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            archive_size=198_702_078,
            published_ratings=20_000_263,
            published_users=138_493,
            published_movies=27_278,
        ),
        Release(
            name="ml-25m",
            layout=LAYOUT_CSV,
            folder="ml-25m",
            files=_CSV_FILES,
            encoding="UTF-8",
            scale=HALF_STARS,
            archive_sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            archive_size=261_978_986,
            published_ratings=25_000_095,
            published_users=162_541,
            published_movies=62_423,
        ),
        Release(
            name="ml-32m",
            layout=LAYOUT_CSV,
            folder="ml-32m",
            files=_CSV_FILES,
            encoding="UTF-8",
            scale=HALF_STARS,
            published_ratings=32_000_204,
            published_users=200_948,
            published_movies=87_585,
            notes="GroupLens publishes only an MD5 beside the zip (ml-32m.zip.md5).",
        ),
        Release(
            name="ml-latest",
            layout=LAYOUT_CSV,
            folder="ml-latest",
            files=_CSV_FILES,
            encoding="UTF-8",
            scale=HALF_STARS,
            notes="Regenerated by GroupLens over time, so no fixed checksum can hold.",
        ),
        Release(
            name="ml-latest-small",
            layout=LAYOUT_CSV,
            folder="ml-latest-small",
            files=_CSV_FILES,
            encoding="UTF-8",
            scale=HALF_STARS,
            # The September 2018 edition; ml-latest-small is regenerated rarely.
            archive_sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            archive_size=978_202,
            published_ratings=100_836,
            published_users=610,
            published_movies=9_742,
        ),
    ]
}

DEFAULT_RELEASE = "ml-latest-small"


def get_release(name: str) -> Release:
    """Look a release up by name, with an error that lists the known ones."""
    try:
        return RELEASES[name]
    except KeyError:
        known = ", ".join(RELEASES)
        raise MovieRecError(f"unknown MovieLens release {name!r}; known releases: {known}") from None
