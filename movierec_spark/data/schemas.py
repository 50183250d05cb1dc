"""Spark schemas of the tables every stage after loading works on.

Ids are 32-bit integers because MLlib ALS requires ids that fit in an int;
ratings are floats (half stars from ml-10m on), timestamps are seconds since
the epoch as longs.
"""

from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from movierec_spark import columns as C

RATINGS = StructType(
    [
        StructField(C.USER_ID, IntegerType(), nullable=False),
        StructField(C.MOVIE_ID, IntegerType(), nullable=False),
        StructField(C.RATING, FloatType(), nullable=False),
        StructField(C.TIMESTAMP, LongType(), nullable=True),
    ]
)

MOVIES = StructType(
    [
        StructField(C.MOVIE_ID, IntegerType(), nullable=False),
        StructField(C.TITLE, StringType(), nullable=True),
        StructField(C.YEAR, IntegerType(), nullable=True),
        StructField(C.GENRES, ArrayType(StringType(), containsNull=False), nullable=True),
    ]
)

TAGS = StructType(
    [
        StructField(C.USER_ID, IntegerType(), nullable=False),
        StructField(C.MOVIE_ID, IntegerType(), nullable=False),
        StructField(C.TAG, StringType(), nullable=True),
        StructField(C.TIMESTAMP, LongType(), nullable=True),
    ]
)

LINKS = StructType(
    [
        StructField(C.MOVIE_ID, IntegerType(), nullable=False),
        StructField(C.IMDB_ID, StringType(), nullable=True),
        StructField(C.TMDB_ID, IntegerType(), nullable=True),
    ]
)

USERS = StructType(
    [
        StructField(C.USER_ID, IntegerType(), nullable=False),
        StructField(C.GENDER, StringType(), nullable=True),
        StructField(C.AGE, IntegerType(), nullable=True),
        StructField(C.OCCUPATION, StringType(), nullable=True),
        StructField(C.ZIP_CODE, StringType(), nullable=True),
    ]
)

REJECTS = StructType(
    [
        StructField(C.TABLE, StringType(), nullable=False),
        StructField(C.REASON, StringType(), nullable=False),
        StructField(C.RAW, StringType(), nullable=True),
        StructField(C.SOURCE_FILE, StringType(), nullable=True),
    ]
)

# The catalog saved beside a model (movierec_spark.data.catalog.build_catalog).
CATALOG = StructType(
    [
        StructField(C.MOVIE_ID, IntegerType(), nullable=False),
        StructField(C.TITLE, StringType(), nullable=True),
        StructField(C.YEAR, IntegerType(), nullable=True),
        StructField(C.GENRES, ArrayType(StringType(), containsNull=True), nullable=True),
        StructField(C.NUM_RATINGS, IntegerType(), nullable=False),
    ]
)

# A saved model's bias tables (movierec_spark.models.recommender.RecommenderModel).
USER_BIASES = StructType(
    [StructField(C.USER_ID, IntegerType(), nullable=False), StructField("user_bias", DoubleType(), nullable=False)]
)
ITEM_BIASES = StructType(
    [StructField(C.MOVIE_ID, IntegerType(), nullable=False), StructField("item_bias", DoubleType(), nullable=False)]
)
DAY_BIASES = StructType(
    [
        StructField(C.USER_ID, IntegerType(), nullable=False),
        StructField("day", LongType(), nullable=False),
        StructField("day_bias", DoubleType(), nullable=False),
    ]
)

# The factor tables of a saved pyspark.ml ALSModel (its ``userFactors/`` and
# ``itemFactors/`` Parquet folders): read with this schema, they cost no job.
ALS_FACTORS = StructType(
    [
        StructField("id", IntegerType(), nullable=False),
        StructField("features", ArrayType(FloatType(), containsNull=False), nullable=False),
    ]
)

# Raw text lines before parsing: one string per input line.
LINES = StructType([StructField("value", StringType(), nullable=True)])

TABLE_SCHEMAS = {
    "ratings": RATINGS,
    "movies": MOVIES,
    "tags": TAGS,
    "links": LINKS,
    "users": USERS,
    "rejects": REJECTS,
}
