"""Loading every MovieLens layout from small files written here, and every reject reason.

Each test writes a tiny release in the exact bytes of its layout (encoding,
separators, CRLF or LF), loads it, and checks the typed tables and the
rejects against answers worked out by hand.
"""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from movierec_spark import MovieRecError
from movierec_spark.data import schemas
from movierec_spark import columns as C
from movierec_spark.data import validate as V
from movierec_spark.data.load import (
    ML100K_GENRES,
    ingest_report,
    load_data,
    load_ratings_file,
    load_release,
)
from movierec_spark.data.releases import get_release
from tests.release_files import parsed_once, write_files


def rejects_by_raw(loaded) -> dict[tuple[str, str], str]:
    """{(table, raw line): reason} of every reject, asserting raw lines are unique."""
    rows = loaded.rejects.collect()
    found = {(r[C.TABLE], r[C.RAW]): r[C.REASON] for r in rows}
    assert len(found) == len(rows), "two rejects share a raw line; the test data should not"
    return found


def flags(*genres: str) -> str:
    return "|".join("1" if g in genres else "0" for g in ML100K_GENRES)


# --- csv layout (ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small) ---

CSV_MOVIES = [
    "movieId,title,genres",
    "1,Toy Story (1995),Adventure|Animation|Children",
    '2,"American President, The (1995)",Comedy|Drama|Romance',
    '3,"11\'09""01 - September 11 (2002)",Drama',
    "4,Black Mirror,(no genres listed)",
    "5,Stranger Things (2016-),Drama",
    "6,From Dusk Till Dawn 2 (1999) ,Horror",
]
CSV_RATINGS = [
    "userId,movieId,rating,timestamp",
    "1,1,4.0,964982703",
    "1,2,3.5,964981247",
    "2,1,5,964982224",
    "2,3,0.5,964982931",
]


@pytest.fixture(scope="module")
def csv_release(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv") / "ml-latest-small"
    # ratings and tags with CRLF (as GroupLens ships them), movies and links with LF.
    write_files(folder, {"ratings.csv": CSV_RATINGS, "tags.csv": [
        "userId,movieId,tag,timestamp", '1,2,"funny, sad",1445714994', "2,1,pixar,1445714995",
    ]}, newline="\r\n")  # fmt: skip
    write_files(folder, {"movies.csv": CSV_MOVIES, "links.csv": [
        "movieId,imdbId,tmdbId", "1,0114709,862", "2,0112346,",
    ]})  # fmt: skip
    with parsed_once(load_release(spark, get_release("ml-latest-small"), folder)) as loaded:
        yield loaded


def test_csv_movies_quoted_titles_years_and_genres(spark, csv_release):
    expected = spark.createDataFrame(
        [
            (1, "Toy Story", 1995, ["Adventure", "Animation", "Children"]),
            (2, "American President, The", 1995, ["Comedy", "Drama", "Romance"]),
            (3, "11'09\"01 - September 11", 2002, ["Drama"]),
            (4, "Black Mirror", None, []),
            (5, "Stranger Things", 2016, ["Drama"]),
            (6, "From Dusk Till Dawn 2", 1999, ["Horror"]),
        ],
        schemas.MOVIES,
    )
    assertDataFrameEqual(csv_release.movies, expected)


def test_csv_ratings_tags_links_with_crlf_and_lf(spark, csv_release):
    ratings = spark.createDataFrame(
        [(1, 1, 4.0, 964982703), (1, 2, 3.5, 964981247), (2, 1, 5.0, 964982224), (2, 3, 0.5, 964982931)],
        schemas.RATINGS,
    )
    assertDataFrameEqual(csv_release.ratings, ratings)
    tags = spark.createDataFrame([(1, 2, "funny, sad", 1445714994), (2, 1, "pixar", 1445714995)], schemas.TAGS)
    assertDataFrameEqual(csv_release.tags, tags)
    links = spark.createDataFrame([(1, "0114709", 862), (2, "0112346", None)], schemas.LINKS)
    assertDataFrameEqual(csv_release.links, links)
    assert csv_release.users is None
    assert csv_release.rejects.count() == 0
    assert csv_release.scale.values() == [0.5 * k for k in range(1, 11)]


def test_csv_report_counts_every_line(csv_release):
    report = ingest_report(csv_release)
    assert report["summary"] == {
        "ratings": 4, "users": 2, "movies": 6, "rated_movies": 3, "rows_read": 14, "rows_rejected": 0,
    }  # fmt: skip
    assert {t: c["read"] for t, c in report["tables"].items()} == {
        "ratings": len(CSV_RATINGS) - 1, "movies": len(CSV_MOVIES) - 1, "tags": 2, "links": 2,
    }  # fmt: skip


# --- every reject reason, in the csv layout ---

BAD_RATINGS = {
    "x,1,4.0,964982703": V.UNPARSEABLE,  # user id not a number
    "1,1,four,964982703": V.UNPARSEABLE,
    "1,1,3.5d,964982703": V.UNPARSEABLE,  # Java would read 3.5d; MovieLens never writes it
    "1,1,,964982703": V.UNPARSEABLE,  # empty rating
    "1,1,4.0,1.5e9": V.UNPARSEABLE,
    '1,"2,4.0,964982703': V.UNPARSEABLE,  # unbalanced quote
    "1,1,4.0": V.WRONG_FIELD_COUNT,
    "1,1,4.0,964982703,9": V.WRONG_FIELD_COUNT,
    '1,"1,2",4.0': V.WRONG_FIELD_COUNT,  # three fields once the quoted comma is read right
    "0,1,4.0,964982703": V.BAD_ID,
    "-3,1,4.0,964982703": V.BAD_ID,
    "3000000000,1,4.0,964982703": V.BAD_ID,  # does not fit in an int
    "1,99999999999999999999999,4.0,964982703": V.BAD_ID,  # not even in a long
    "1,1,3.7,964982703": V.RATING_OUT_OF_SCALE,
    "1,1,7,964982703": V.RATING_OUT_OF_SCALE,
    "1,1,0,964982703": V.RATING_OUT_OF_SCALE,
    "1,1,NaN,964982703": V.UNPARSEABLE,
    "1,1,4.0,-5": V.BAD_VALUE,  # negative timestamp
    "1,42,4.0,964982703": V.UNKNOWN_MOVIE,
    "5,1,2.0,964900000": V.DUPLICATE_PAIR,  # older than 5,1,3.0 below: the latest is kept
    "6,2,1.0,964982703": V.DUPLICATE_PAIR,  # same time as 6,2,0.5: the smaller raw line is kept
    "   ": V.BLANK_LINE,
}
GOOD_RATINGS = ["1,1,4.0,964982703", "5,1,3.0,964982703", "6,2,0.5,964982703"]
# "6,2,0.5,..." < "6,2,1.0,..." as strings, so the 0.5 rating is the one kept.


@pytest.fixture(scope="module")
def damaged_csv(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("damaged") / "ml-latest-small"
    ratings = ["userId,movieId,rating,timestamp"] + GOOD_RATINGS + list(BAD_RATINGS)
    movies = ["movieId,title,genres", "1,Toy Story (1995),Animation", "2,Heat (1995),Action",
              "2,Heat again (1995),Action", "abc,Broken (1990),Drama", "7,,Drama",
              "3000000000,Too Big (1990),Drama"]  # fmt: skip
    links = ["movieId,imdbId,tmdbId", "1,0114709,862", "1,0114709,863", "42,0000001,1", "2,tt0113277,949",
             "2,0113277,0"]  # fmt: skip
    tags = ["userId,movieId,tag,timestamp", "1,1,,1445714994", "1,42,lost,1445714994", "1,2,ok,1445714994"]
    write_files(folder, {"ratings.csv": ratings, "movies.csv": movies, "links.csv": links, "tags.csv": tags})
    # One line whose bytes are not UTF-8.
    with (folder / "ratings.csv").open("ab") as fh:
        fh.write(b"1,2,\xff4.0,964982703\n")
    with parsed_once(load_release(spark, get_release("ml-latest-small"), folder)) as loaded:
        yield loaded


def test_every_reason_is_given_to_the_right_line(damaged_csv):
    found = rejects_by_raw(damaged_csv)
    expected = {("ratings", raw): reason for raw, reason in BAD_RATINGS.items()}
    expected[("ratings", "1,2,\ufffd4.0,964982703")] = V.BAD_ENCODING
    expected.update({
        ("movies", "2,Heat again (1995),Action"): V.DUPLICATE_ID,  # "2,Heat (1995)..." sorts first
        ("movies", "abc,Broken (1990),Drama"): V.UNPARSEABLE,
        ("movies", "7,,Drama"): V.UNPARSEABLE,
        ("movies", "3000000000,Too Big (1990),Drama"): V.BAD_ID,
        ("links", "1,0114709,863"): V.DUPLICATE_ID,
        ("links", "42,0000001,1"): V.UNKNOWN_MOVIE,
        ("links", "2,tt0113277,949"): V.UNPARSEABLE,
        ("links", "2,0113277,0"): V.BAD_ID,
        ("tags", "1,1,,1445714994"): V.UNPARSEABLE,
        ("tags", "1,42,lost,1445714994"): V.UNKNOWN_MOVIE,
    })  # fmt: skip
    assert found == expected
    assert {r[C.SOURCE_FILE] for r in damaged_csv.rejects.collect()} == {
        "ratings.csv", "movies.csv", "links.csv", "tags.csv",
    }  # fmt: skip


def test_kept_rows_follow_the_documented_duplicate_rules(spark, damaged_csv):
    expected = spark.createDataFrame(
        [(1, 1, 4.0, 964982703), (5, 1, 3.0, 964982703), (6, 2, 0.5, 964982703)], schemas.RATINGS
    )
    assertDataFrameEqual(damaged_csv.ratings, expected)
    assert [r[C.TITLE] for r in damaged_csv.movies.orderBy(C.MOVIE_ID).collect()] == ["Toy Story", "Heat"]


def test_rows_read_equal_rows_loaded_plus_rejected(damaged_csv):
    report = ingest_report(damaged_csv)
    ratings = report["tables"]["ratings"]
    # Every line after the header: the good ones, the bad ones and the undecodable one.
    assert ratings["read"] == len(GOOD_RATINGS) + len(BAD_RATINGS) + 1
    assert ratings["loaded"] == len(GOOD_RATINGS)
    for counts in report["tables"].values():
        assert counts["read"] == counts["loaded"] + counts["rejected"]
        assert counts["rejected"] == sum(counts["rejected_by_reason"].values())
    assert report["tables"]["ratings"]["rejected_by_reason"][V.RATING_OUT_OF_SCALE] == 3
    assert report["summary"]["rows_rejected"] == damaged_csv.rejects.count()


def test_wrong_header_names_the_file(spark, tmp_path):
    folder = write_files(tmp_path / "ml-latest-small", {
        "ratings.csv": ["user,movie,rating,timestamp", "1,1,4.0,1"], "movies.csv": CSV_MOVIES,
        "tags.csv": ["userId,movieId,tag,timestamp"], "links.csv": ["movieId,imdbId,tmdbId"],
    })  # fmt: skip
    with pytest.raises(MovieRecError, match=r"ratings\.csv has header 'user,movie,rating,timestamp'"):
        load_release(spark, get_release("ml-latest-small"), folder)
    (folder / "ratings.csv").write_bytes(b"")
    with pytest.raises(MovieRecError, match="the file is empty"):
        load_release(spark, get_release("ml-latest-small"), folder)


def test_missing_file_is_an_error_unless_partial(spark, tmp_path):
    folder = write_files(tmp_path / "ml-latest-small", {
        "ratings.csv": CSV_RATINGS, "movies.csv": CSV_MOVIES, "links.csv": ["movieId,imdbId,tmdbId"],
    })  # fmt: skip
    with pytest.raises(MovieRecError, match=r"has no tags\.csv.*--partial"):
        load_release(spark, get_release("ml-latest-small"), folder)
    loaded = load_release(spark, get_release("ml-latest-small"), folder, partial=True)
    assert loaded.missing == ("tags",) and loaded.tags is None
    assert set(loaded.tables()) == {"ratings", "movies", "links"}


# --- ml-100k layout ---


@pytest.fixture(scope="module")
def ml100k(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("m100k") / "ml-100k"
    write_files(folder, {
        "u.data": ["196\t242\t3\t881250949", "186\t302\t3\t891717742", "22\t242\t1\t878887116",
                   "22\t302\t4.5\t878887116", "22\t242\t2\t878887000", "196\t999\t5\t881250949"],
        "u.item": [
            f"242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|{flags('Comedy')}",
            f"302|L.A. Confidential (1997)|01-Jan-1997||http://x|{flags('Crime', 'Film-Noir', 'Mystery', 'Thriller')}",
            f"303|Nénette et Boni (1996)|01-Jan-1996||http://x|{flags('Drama')}",
            f"267|unknown||||{flags('unknown')}",
            f"1493|Land Before Time III: The Time of the Great Giving (1995) (V)|01-Jan-1995||x|{flags('Animation')}",
            f"400|Bad Flag (1990)|01-Jan-1990||x|{flags('Drama').replace('1', '2')}",
        ],
        "u.user": ["196|49|M|writer|55105", "186|39|F|executive|00000", "22|25|X|writer|40206",
                   "23|30|M|astronaut|40206", "24|0|M|writer|40206"],
    }, encoding="latin-1")  # fmt: skip
    with parsed_once(load_release(spark, get_release("ml-100k"), folder)) as loaded:
        yield loaded


def test_ml100k_latin1_items_genre_flags_and_users(spark, ml100k):
    movies = spark.createDataFrame(
        [
            (242, "Kolya", 1996, ["Comedy"]),
            (302, "L.A. Confidential", 1997, ["Crime", "Film-Noir", "Mystery", "Thriller"]),
            (303, "Nénette et Boni", 1996, ["Drama"]),
            (267, "unknown", None, []),
            (1493, "Land Before Time III: The Time of the Great Giving (V)", 1995, ["Animation"]),
        ],
        schemas.MOVIES,
    )
    assertDataFrameEqual(ml100k.movies, movies)
    ratings = spark.createDataFrame(
        [(196, 242, 3.0, 881250949), (186, 302, 3.0, 891717742), (22, 242, 1.0, 878887116)], schemas.RATINGS
    )
    assertDataFrameEqual(ml100k.ratings, ratings)
    users = spark.createDataFrame(
        [(196, "M", 49, "writer", "55105"), (186, "F", 39, "executive", "00000")], schemas.USERS
    )
    assertDataFrameEqual(ml100k.users, users)
    assert rejects_by_raw(ml100k) == {
        ("ratings", "22\t302\t4.5\t878887116"): V.RATING_OUT_OF_SCALE,  # whole stars only
        ("ratings", "22\t242\t2\t878887000"): V.DUPLICATE_PAIR,
        ("ratings", "196\t999\t5\t881250949"): V.UNKNOWN_MOVIE,
        ("movies", f"400|Bad Flag (1990)|01-Jan-1990||x|{flags('Drama').replace('1', '2')}"): V.BAD_VALUE,
        ("users", "22|25|X|writer|40206"): V.BAD_VALUE,
        ("users", "23|30|M|astronaut|40206"): V.BAD_VALUE,
        ("users", "24|0|M|writer|40206"): V.BAD_VALUE,
    }


def test_ratings_file_in_the_release_format(spark, ml100k, tmp_path):
    """Predefined splits (u1.base, ua.test) read with the release's ratings format."""
    path = write_files(tmp_path, {"u1.test": ["1\t2\t5\t874965758", "1\t3\t9\t874965758"]}) / "u1.test"
    ratings, rejects = load_ratings_file(spark, get_release("ml-100k"), path)
    assertDataFrameEqual(ratings, spark.createDataFrame([(1, 2, 5.0, 874965758)], schemas.RATINGS))
    assert [(r[C.REASON], r[C.SOURCE_FILE]) for r in rejects.collect()] == [(V.RATING_OUT_OF_SCALE, "u1.test")]


# --- dat layout: ml-1m (latin-1) and ml-10m (UTF-8, half stars, tags) ---


def test_ml1m_latin1_dat_with_users(spark, tmp_path):
    folder = write_files(tmp_path / "ml-1m", {
        "movies.dat": ["1::Toy Story (1995)::Animation|Children's|Comedy",
                       "3::Grumpier Old Men (1995)::Comedy|Romance",
                       "1366::Léon: The Professional (1994)::Crime|Drama"],
        "ratings.dat": ["1::1193::5::978300760", "1::1::5::978824268", "1::1366::3::978300000",
                        "2::3::3.5::978300000", "2::1"],
        "users.dat": ["1::F::1::10::48067", "2::M::56::16::70072", "3::M::19::15::55117",
                      "4::M::25::21::55117"],
    }, encoding="latin-1")  # fmt: skip
    with parsed_once(load_release(spark, get_release("ml-1m"), folder)) as loaded:
        check_ml1m(spark, loaded)


def check_ml1m(spark, loaded):
    movies = spark.createDataFrame(
        [
            (1, "Toy Story", 1995, ["Animation", "Children's", "Comedy"]),
            (3, "Grumpier Old Men", 1995, ["Comedy", "Romance"]),
            (1366, "Léon: The Professional", 1994, ["Crime", "Drama"]),
        ],
        schemas.MOVIES,
    )
    assertDataFrameEqual(loaded.movies, movies)
    assertDataFrameEqual(
        loaded.ratings,
        spark.createDataFrame([(1, 1, 5.0, 978824268), (1, 1366, 3.0, 978300000)], schemas.RATINGS),
    )
    assertDataFrameEqual(
        loaded.users,
        spark.createDataFrame(
            [(1, "F", 1, "K-12 student", "48067"), (2, "M", 56, "self-employed", "70072")], schemas.USERS
        ),
    )
    assert rejects_by_raw(loaded) == {
        ("ratings", "1::1193::5::978300760"): V.UNKNOWN_MOVIE,
        ("ratings", "2::3::3.5::978300000"): V.RATING_OUT_OF_SCALE,
        ("ratings", "2::1"): V.WRONG_FIELD_COUNT,
        ("users", "3::M::19::15::55117"): V.BAD_VALUE,  # 19 is no age group
        ("users", "4::M::25::21::55117"): V.BAD_VALUE,  # occupation codes end at 20
    }


def test_ml10m_utf8_dat_half_stars_and_tags_with_crlf(spark, tmp_path):
    folder = write_files(tmp_path / "parent" / "ml-10M100K", {
        "movies.dat": ["1::Toy Story (1995)::Adventure|Animation", "5::Père Noël (1982)::(no genres listed)"],
        "ratings.dat": ["1::1::4.5::838985046", "1::5::0.5::838983525", "2::5::5::838983000"],
        "tags.dat": ["15::1::excellent! :: really::1215184630", "15::5::Christmas::1215184631"],
    }, newline="\r\n")  # fmt: skip
    # A parent folder works as the source: the release folder inside it is found.
    with parsed_once(load_data(spark, {"dataset": "ml-10m", "source": str(folder.parent)})) as loaded:
        check_ml10m(spark, loaded)


def check_ml10m(spark, loaded):
    assertDataFrameEqual(
        loaded.movies,
        spark.createDataFrame(
            [(1, "Toy Story", 1995, ["Adventure", "Animation"]), (5, "Père Noël", 1982, [])], schemas.MOVIES
        ),
    )
    assertDataFrameEqual(
        loaded.ratings,
        spark.createDataFrame(
            [(1, 1, 4.5, 838985046), (1, 5, 0.5, 838983525), (2, 5, 5.0, 838983000)], schemas.RATINGS
        ),
    )
    assertDataFrameEqual(loaded.tags, spark.createDataFrame([(15, 5, "Christmas", 1215184631)], schemas.TAGS))
    assert rejects_by_raw(loaded) == {("tags", "15::1::excellent! :: really::1215184630"): V.WRONG_FIELD_COUNT}
