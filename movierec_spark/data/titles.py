"""Forgiving, never-guessing title matching against a release's movies table.

People type "the matrix", "Matrix, The (1999)", "Amelie", "Se7en" or
"Das Boot"; MovieLens writes ``Matrix, The``, ``Amelie (Fabuleux destin
d'Amélie Poulain, Le)``, ``Seven (a.k.a. Se7en)``, ``Boot, Das (Boat, The)``
(the year is in its own column). A title resolves to a movie only when a
normalised form of it equals a normalised form of exactly one movie's title;
several equal candidates are an ambiguity, none is an unknown title, and both
come back with close matches to suggest. Nothing is matched by similarity
alone.

Normalisation (:func:`title_key`): Unicode accents stripped, case folded,
``&`` read as "and", apostrophes dropped, every other punctuation mark a
space. A trailing article in any of the languages MovieLens uses
(``, The``, ``, La``, ``, Das``, ``, L'`` ...) moves to the front. Each movie
is known by its whole title, its title without parenthesised parts, and each
parenthesised alternative title (``a.k.a.`` removed).

Matching tiers, first hit wins: (1) exact key, with the article, against
every form of every title; (2) the same with a leading article dropped on
both sides ("Matrix" = "The Matrix"). A year typed as a trailing ``(1999)``
restricts the candidates to that year. A trailing bare year ("Heat 1995") is
tried as a year only when the whole text is no title.

Why the movies table is collected rather than joined in Spark: it is small
next to the ratings (ml-latest-small: 9,742 movies for 100,836 ratings; the
largest releases list under a hundred thousand movies, a few MB of id,
title, year and count), suggestions need difflib, and one index serves many
look-ups (a job's file, every keystroke of the notebook's search). The
ratings table is never collected. Input rows: ``movie_id``, ``title``, ``year`` and, optionally,
``num_ratings`` (orders suggestions and search hits by popularity).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Sequence

# Articles that MovieLens moves to the end of a title ("Boot, Das").
ARTICLES = frozenset(
    """the a an le la les l l' il lo gli i el los las un une una uno der die das den
    dem ein eine de het een o os as det ett et en da""".split()
)
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+?),\s*(?P<article>[^\s,]+)$")
_PARENS = re.compile(r"\(([^()]*)\)")
_AKA = re.compile(r"^\s*(a\.?\s?k\.?\s?a\.?|aka)\s+", re.IGNORECASE)
_YEAR_SUFFIX = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
_BARE_YEAR_SUFFIX = re.compile(r"^(?P<title>.+?)[\s,]+(?P<year>(18|19|20)\d{2})\s*$")
_ELIDED_ARTICLE = re.compile(r"\bl['\u2019]")
_APOSTROPHES = re.compile("['\u2019\u2018`\u00b4]")
_NON_WORD = re.compile(r"[\W_]+")


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def article_first(title: str) -> str:
    """``"Matrix, The"`` -> ``"The Matrix"``; ``"Avventura, L'"`` -> ``"L'Avventura"``."""
    title = title.strip()
    match = _TRAILING_ARTICLE.match(title)
    if not match or match.group("article").casefold() not in ARTICLES:
        return title
    article = match.group("article")
    glue = "" if article.endswith("'") else " "
    return f"{article}{glue}{match.group('body').strip()}"


def title_key(title: str) -> str:
    """The normalised form two titles must share to be the same title."""
    text = _strip_accents(article_first(title)).casefold()
    # An elided article stays a word of its own ("l'avventura" -> "l avventura"),
    # so that loose_key can drop it like any other article.
    text = _ELIDED_ARTICLE.sub("l ", text.replace("&", " and "))
    text = _APOSTROPHES.sub("", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def loose_key(key: str) -> str:
    """``key`` without a leading article ("the matrix" -> "matrix")."""
    words = key.split()
    if len(words) > 1 and words[0] in ARTICLES:
        return " ".join(words[1:])
    return key


def title_forms(title: str) -> list[str]:
    """Every form a movie is known by: whole, without parentheses, each alternative."""
    forms = [title]
    main = " ".join(_PARENS.sub(" ", title).split())
    if main:
        forms.append(main)
    for alternative in _PARENS.findall(title):
        alternative = _AKA.sub("", alternative).strip()
        if alternative:
            forms.append(alternative)
    return forms


def split_year(text: str) -> tuple[str, int | None]:
    """``"Heat (1995)"`` -> ``("Heat", 1995)``; text without a year -> ``(text, None)``."""
    match = _YEAR_SUFFIX.match(text)
    if match and match.group("title").strip():
        return match.group("title").strip(), int(match.group("year"))
    return text.strip(), None


@dataclass(frozen=True)
class Movie:
    movie_id: int
    title: str
    year: int | None
    num_ratings: int | None = None

    @property
    def label(self) -> str:
        """How a person would write it: ``Matrix, The (1999)``."""
        return f"{self.title} ({self.year})" if self.year is not None else self.title


@dataclass(frozen=True)
class TitleMatch:
    """The outcome of one look-up: exactly one of ``movie`` or ``problem`` is set."""

    text: str
    movie: Movie | None = None
    problem: str | None = None  # "unknown", "wrong_year" or "ambiguous"
    candidates: tuple[Movie, ...] = ()  # the ambiguous movies, or close matches

    @property
    def ok(self) -> bool:
        return self.movie is not None

    def describe(self) -> str:
        """One line saying what went wrong and what to write instead."""
        if self.movie is not None:
            return f"{self.text!r} is {self.movie.label} (id {self.movie.movie_id})"
        shown = ", ".join(f"{m.label} (id {m.movie_id})" for m in self.candidates[:5])
        if self.problem == "ambiguous":
            more = f" and {len(self.candidates) - 5} more" if len(self.candidates) > 5 else ""
            fix = "give the movie id" if split_year(self.text)[1] is not None else (
                "add the year, e.g. 'Title (1999)', or give the movie id"
            )
            return f"title {self.text!r} matches {len(self.candidates)} movies: {shown}{more}; {fix}"
        if self.problem == "wrong_year":
            return f"no movie {self.text!r} in that year; did you mean {shown}?"
        if shown:
            return f"unknown title {self.text!r}; did you mean {shown}?"
        return f"unknown title {self.text!r} and nothing close; check the spelling or give the movie id"


@dataclass
class _Lookups:
    """A TitleIndex's tables from normalised title keys to movie ids."""

    exact: dict[str, set[int]] = field(default_factory=dict)
    loose: dict[str, set[int]] = field(default_factory=dict)
    words: dict[str, set[int]] = field(default_factory=dict)
    keys: dict[int, str] = field(default_factory=dict)  # movie_id -> key of its whole title, for search


class TitleIndex:
    """Look-ups from typed titles to movies; built once from the movies table."""

    def __init__(self, movies: Iterable[Movie]):
        self.movies: dict[int, Movie] = {movie.movie_id: movie for movie in movies}

    @cached_property
    def _lookups(self) -> "_Lookups":
        # Built on the first look-up by title: a file that names its movies
        # by id never pays for the title keys (most of the index's cost).
        lookups = _Lookups()
        for movie in self.movies.values():
            title = movie.title or ""
            lookups.keys[movie.movie_id] = title_key(" ".join(title_forms(title)))
            for form in title_forms(title):
                key = title_key(form)
                if not key:
                    continue
                lookups.exact.setdefault(key, set()).add(movie.movie_id)
                lookups.loose.setdefault(loose_key(key), set()).add(movie.movie_id)
                for word in key.split():
                    lookups.words.setdefault(word, set()).add(movie.movie_id)
        return lookups

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence]) -> "TitleIndex":
        """From ``(movie_id, title, year[, num_ratings])`` tuples or Rows."""
        movies = []
        for row in rows:
            count = row[3] if len(row) > 3 else None
            year = row[2]
            movies.append(
                Movie(int(row[0]), row[1] or "", int(year) if year is not None else None,
                      int(count) if count is not None else None)
            )
        return cls(movies)

    @classmethod
    def from_frame(cls, movies_df) -> "TitleIndex":
        """Collect ``movie_id, title, year[, num_ratings]`` of a movies DataFrame."""
        wanted = ["movie_id", "title", "year"]
        if "num_ratings" in movies_df.columns:
            wanted.append("num_ratings")
        return cls.from_rows(movies_df.select(*wanted).collect())

    def __len__(self) -> int:
        return len(self.movies)

    def _popularity(self, movie_id: int) -> tuple:
        movie = self.movies[movie_id]
        return (-(movie.num_ratings or 0), movie.label.casefold(), movie_id)

    def _sorted(self, ids: Iterable[int]) -> tuple[Movie, ...]:
        return tuple(self.movies[i] for i in sorted(set(ids), key=self._popularity))

    def _candidates(self, title: str, year: int | None) -> tuple[set[int], set[int]]:
        """(ids of the first tier that knows the title, same restricted to ``year``)."""
        key = title_key(title)
        for table, lookup in ((self._lookups.exact, key), (self._lookups.loose, loose_key(key))):
            ids = table.get(lookup, set())
            if ids:
                in_year = {i for i in ids if year is None or self.movies[i].year == year}
                return ids, in_year
        return set(), set()

    def match(self, text: str) -> TitleMatch:
        """Resolve typed ``text`` to one movie, or say why it cannot be."""
        text = str(text).strip()
        title, year = split_year(text)
        ids, in_year = self._candidates(title, year)
        if not ids and year is None:
            bare = _BARE_YEAR_SUFFIX.match(text)
            if bare:
                title, year = bare.group("title"), int(bare.group("year"))
                ids, in_year = self._candidates(title, year)
        if len(in_year) == 1:
            return TitleMatch(text, movie=self.movies[next(iter(in_year))])
        if len(in_year) > 1:
            return TitleMatch(text, problem="ambiguous", candidates=self._sorted(in_year))
        if ids:  # the title exists, but not in the year typed
            return TitleMatch(text, problem="wrong_year", candidates=self._sorted(ids))
        return TitleMatch(text, problem="unknown", candidates=self.suggest(text))

    def suggest(self, text: str, limit: int = 5) -> tuple[Movie, ...]:
        """Close matches for ``text``: titles containing its words, then difflib."""
        title, _ = split_year(str(text))
        key = title_key(title)
        words = [w for w in key.split() if w not in ARTICLES] or key.split()
        if not words:
            return ()
        containing = set.intersection(*(self._lookups.words.get(w, set()) for w in words))
        found = list(self._sorted(containing))[:limit]
        if len(found) < limit:
            # difflib on the titles that share a word (or all, if none does) keeps it cheap.
            pool_ids = set().union(*(self._lookups.words.get(w, set()) for w in words)) or set(self.movies)
            pool = {}
            for movie_id in pool_ids:
                pool.setdefault(loose_key(title_key(self.movies[movie_id].title)), []).append(movie_id)
            for close in difflib.get_close_matches(loose_key(key), list(pool), n=limit, cutoff=0.6):
                found.extend(m for m in self._sorted(pool[close]) if m not in found)
        return tuple(found[:limit])

    def search(self, text: str, limit: int = 10) -> list[Movie]:
        """Movies for a search box: every typed word is a prefix of a title word.

        Ordered by number of ratings (most first), then title; empty text finds nothing.
        """
        title, year = split_year(str(text))
        prefixes = title_key(title).split()
        if not prefixes:
            return []
        hits = []
        for movie_id, key in self._lookups.keys.items():
            words = key.split()
            if all(any(w.startswith(p) for w in words) for p in prefixes):
                if year is None or self.movies[movie_id].year == year:
                    hits.append(movie_id)
        return list(self._sorted(hits))[:limit]
