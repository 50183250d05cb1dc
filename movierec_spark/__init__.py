"""movierec-spark: MovieLens top-N recommendations with Spark MLlib ALS.

Importing this package starts no Spark session and touches no file; the
stages of the data's journey live in their own modules (load, validate,
explore, split, fit, evaluate, recommend) and jobs in ``jobs/`` wire them up.
"""

__version__ = "0.1.0"


class MovieRecError(Exception):
    """An error the user can fix: bad input, a bad flag, a missing file.

    Jobs print its message as one line and exit non-zero, without a stack
    trace; the message should say what to do.
    """
