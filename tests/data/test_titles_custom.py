"""Title matching and custom-ratings checking: pure Python, no Spark."""

from __future__ import annotations

import pytest

from movierec_spark import MovieRecError
from movierec_spark.serving.custom import (
    CustomRatingsError,
    from_pairs,
    parse_rating,
    read_custom_ratings,
    user_ids,
)
from movierec_spark.data.releases import HALF_STARS, WHOLE_STARS
from movierec_spark.data.titles import Movie, TitleIndex, article_first, title_key

# A catalog with the traps real MovieLens titles hold: trailing articles in
# several languages, alternative titles in parentheses, remakes sharing a
# title, two ids with the same title and year, accents, "&".
MOVIES = [
    Movie(2571, "Matrix, The", 1999, 278),
    Movie(6365, "Matrix Reloaded, The", 2003, 80),
    Movie(47, "Seven (a.k.a. Se7en)", 1995, 203),
    Movie(293, "Léon: The Professional (a.k.a. The Professional) (Léon)", 1994, 133),
    Movie(1233, "Boot, Das (Boat, The)", 1981, 40),
    Movie(8195, "Avventura, L' (Adventure, The)", 1960, 2),
    Movie(4973, "Amelie (Fabuleux destin d'Amélie Poulain, Le)", 2001, 120),
    Movie(2288, "Thing, The", 1982, 50),
    Movie(90345, "Thing, The", 2011, 10),
    Movie(34048, "War of the Worlds", 2005, 30),
    Movie(64997, "War of the Worlds", 2005, 2),
    Movie(1411, "Hamlet", 1996, 20),
    Movie(1941, "Hamlet", 1948, 5),
    Movie(4896, "Harry Potter and the Sorcerer's Stone (a.k.a. Harry Potter and the Philosopher's Stone)", 2001, 107),
    Movie(73, "Misérables, Les", 1995, 3),
    Movie(6, "Heat", 1995, 102),
    Movie(300, "300", 2007, 80),
    Movie(999, "Moonlight", None, 5),
]


@pytest.fixture(scope="module")
def index():
    return TitleIndex(MOVIES)


@pytest.mark.parametrize(
    "typed, movie_id",
    [
        ("The Matrix", 2571),
        ("matrix", 2571),
        ("MATRIX, THE (1999)", 2571),
        ("the matrix   ", 2571),
        ("Se7en", 47),
        ("seven", 47),
        ("Leon", 293),
        ("Léon: the professional", 293),
        ("Das Boot", 1233),
        ("The Boat", 1233),
        ("L'Avventura", 8195),
        ("Avventura", 8195),
        ("Amélie", 4973),
        ("Amelie", 4973),
        ("Le fabuleux destin d'Amelie Poulain", 4973),
        ("The Thing (2011)", 90345),
        ("Thing (1982)", 2288),
        ("Hamlet (1948)", 1941),
        ("Harry Potter & the Sorcerers Stone", 4896),
        ("Harry Potter and the Philosopher's Stone", 4896),
        ("Les Miserables", 73),
        ("Heat 1995", 6),
        ("300 (2007)", 300),
        ("Moonlight", 999),
    ],
)
def test_titles_match_forgivingly(index, typed, movie_id):
    match = index.match(typed)
    assert match.ok, match.describe()
    assert match.movie.movie_id == movie_id


@pytest.mark.parametrize(
    "typed, problem, listed",
    [
        ("The Thing", "ambiguous", {2288, 90345}),
        ("Hamlet", "ambiguous", {1411, 1941}),
        ("War of the Worlds (2005)", "ambiguous", {34048, 64997}),
        ("The Matrix (1998)", "wrong_year", {2571}),
        ("Matrx", "unknown", {2571}),
        ("Matrix Reloded", "unknown", {6365}),
        ("Harry Potter", "unknown", {4896}),
    ],
)
def test_ambiguous_and_unknown_titles_come_with_candidates(index, typed, problem, listed):
    match = index.match(typed)
    assert not match.ok and match.problem == problem
    assert listed <= {m.movie_id for m in match.candidates}
    text = match.describe()
    assert repr(typed) in text
    assert all(str(i) in text for i in listed)


def test_ambiguity_says_how_to_resolve_it(index):
    assert "add the year" in index.match("Hamlet").describe()
    assert "give the movie id" in index.match("War of the Worlds (2005)").describe()
    assert "nothing close" in index.match("qwxzzv").describe()


def test_article_and_key_normalisation():
    assert article_first("Matrix, The") == "The Matrix"
    assert article_first("Avventura, L'") == "L'Avventura"
    assert article_first("Boot, Das") == "Das Boot"
    assert article_first("Crouching Tiger, Hidden Dragon") == "Crouching Tiger, Hidden Dragon"
    assert title_key("Léon: The Professional") == "leon the professional"
    assert title_key("Harry Potter & the Sorcerer's Stone") == title_key("harry potter and the sorcerers stone")


def test_search_finds_prefixes_most_rated_first(index):
    assert [m.movie_id for m in index.search("matr")] == [2571, 6365]
    assert [m.movie_id for m in index.search("the thing")] == [2288, 90345]
    assert [m.movie_id for m in index.search("thing (2011)")] == [90345]
    assert index.search("   ") == []


# --- custom ratings files ---


def _write(tmp_path, text, name="ratings.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_with_ids_titles_comments_and_bom(tmp_path, index):
    path = tmp_path / "r.csv"
    path.write_bytes(
        "\ufeffUser, Movie ,Rating,note\n"
        "# a comment line\n"
        "ann,2571,5,\n"
        "\n"
        'ann,"Matrix Reloaded, The",2.5,meh\n'
        "bob,Se7en,4,\n".encode("utf-8")
    )
    got = read_custom_ratings(path, index, HALF_STARS)
    assert [(r.line, r.user, r.movie_id, r.rating) for r in got] == [
        (3, "ann", 2571, 5.0),
        (5, "ann", 6365, 2.5),
        (6, "bob", 47, 4.0),
    ]
    assert got[1].title == "Matrix Reloaded, The (2003)"
    assert user_ids(got, 611) == {"ann": 611, "bob": 612}


def test_every_problem_is_reported_with_its_line(tmp_path, index):
    path = _write(
        tmp_path,
        "user,movie,rating\n"
        "ann,Matrx,4\n"  # 2 unknown title
        "ann,Hamlet,4\n"  # 3 ambiguous
        "ann,Heat,7\n"  # 4 off the scale
        "ann,Seven,3.7\n"  # 5 not a half step
        "ann,Se7en,4\n"  # 6 the movie of line 5 again
        "ann,seven,4\n"  # 7 and again
        "ann,123456,4\n"  # 8 unknown id
        "ann,Leon,four\n"  # 9 not a number
        ",Heat,4\n"  # 10 empty user
        "ann,Matrix, The,4\n",  # 11 unquoted comma
    )
    with pytest.raises(CustomRatingsError) as caught:
        read_custom_ratings(path, index, HALF_STARS)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [f"line {n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11)]
    assert "Matrix, The (1999)" in problems[0]
    assert "Hamlet (1996)" in problems[1] and "Hamlet (1948)" in problems[1]
    assert "0.5 to 5" in problems[2] and "0.5" in problems[3]
    assert "already rated Seven (a.k.a. Se7en) (1995) on line 5" in problems[4]
    assert "on line 5" in problems[5]
    assert "123456" in problems[6] and "'four' is not a number" in problems[7]
    assert problems[8] == "line 10: empty user"
    assert "4 fields" in problems[9] and "double quotes" in problems[9]
    message = str(caught.value)
    assert "\n" not in message and "10 problems" in message and "and 5 more" in message


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "empty"),
        ("# only a comment\n\n", "empty"),
        ("user,movie,rating\n", "no ratings"),
        ("user,film,rating\nann,Heat,4\n", "missing column movie"),
        ("name,title,stars\n", "missing columns user, movie, rating"),
        ("user,movie,rating,movie\nann,Heat,4,x\n", "appears twice"),
    ],
)
def test_file_level_problems(tmp_path, index, text, expected):
    with pytest.raises(CustomRatingsError, match=expected):
        read_custom_ratings(_write(tmp_path, text), index, HALF_STARS)


def test_unreadable_files_are_user_errors(tmp_path, index):
    with pytest.raises(MovieRecError, match="does not exist"):
        read_custom_ratings(tmp_path / "missing.csv", index, HALF_STARS)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("user,movie,rating\nann,Amélie,4\n".encode("latin-1"))
    with pytest.raises(MovieRecError, match="not UTF-8"):
        read_custom_ratings(latin1, index, HALF_STARS)


def test_rating_scale_of_the_release():
    assert parse_rating("4.5", HALF_STARS) == 4.5
    assert parse_rating("5", WHOLE_STARS) == 5.0
    for bad, scale in (("4.5", WHOLE_STARS), ("0", HALF_STARS), ("5.5", HALF_STARS), ("nan", HALF_STARS),
                       ("inf", HALF_STARS), ("", HALF_STARS)):
        with pytest.raises(ValueError):
            parse_rating(bad, scale)


def test_pairs_from_code_are_checked_the_same_way(index):
    got = from_pairs("me", [(2571, 5), ("Heat", 4.5)], index, HALF_STARS)
    assert [(r.movie_id, r.rating) for r in got] == [(2571, 5.0), (6, 4.5)]
    with pytest.raises(CustomRatingsError, match="no ratings"):
        from_pairs("me", [], index, HALF_STARS)
    with pytest.raises(CustomRatingsError, match="already rated"):
        from_pairs("me", [("Heat", 4), (6, 5)], index, HALF_STARS)


def test_ids_must_stay_32_bit(index):
    got = from_pairs("me", [(6, 4)], index, HALF_STARS)
    with pytest.raises(MovieRecError, match="32-bit"):
        user_ids(got, 2**31)
