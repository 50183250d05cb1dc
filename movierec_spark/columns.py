"""Column names used everywhere, so a rename happens in one place.

MovieLens spells its columns ``userId``/``movieId``; they become snake_case
once, at the I/O boundary, and every stage after that uses these constants.
"""

USER_ID = "user_id"
MOVIE_ID = "movie_id"
RATING = "rating"
TIMESTAMP = "timestamp"

TITLE = "title"
YEAR = "year"
GENRES = "genres"

TAG = "tag"
IMDB_ID = "imdb_id"
TMDB_ID = "tmdb_id"

GENDER = "gender"
AGE = "age"
OCCUPATION = "occupation"
ZIP_CODE = "zip_code"

PREDICTION = "prediction"
RANK = "rank"

# A model's terms: biases and ALS factor vectors.
USER_BIAS = "user_bias"
ITEM_BIAS = "item_bias"
FEATURES = "features"

# Rejects table: one row per input line that was not loaded.
TABLE = "table"
REASON = "reason"
RAW = "raw"
SOURCE_FILE = "source_file"

# Custom users and their top-N tables.
USER = "user"  # the label a person gave a custom user in their ratings file
NUM_RATINGS = "num_ratings"  # how many training ratings a movie has
SIMILAR_MOVIE_ID = "similar_movie_id"
SIMILARITY = "similarity"
BECAUSE_MOVIE_ID = "because_movie_id"
BECAUSE_YOU_LIKED = "because_you_liked"
BASIS = "basis"  # how a top-N list was made: "personal" (fold-in) or "popular" (no usable ratings)
