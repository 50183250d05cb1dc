"""What every job shares: flags that map onto config keys, and the run loop.

A job declares its flags with :func:`add_flag`, whose ``key`` names the config
entry the flag overrides (``"als.rank"``); unset flags leave the config value
alone. :func:`run_job` then parses arguments, loads the config, configures
logging, builds the session, calls ``run(spark, cfg)`` inside
``try/finally: spark.stop()``, and turns errors a user can fix into one line
on stderr and a non-zero exit code.
"""

from __future__ import annotations

import _thread
import argparse
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Sequence

from movierec_spark import MovieRecError
from movierec_spark.config import Config, absolute_paths, load_config, merge
from movierec_spark.progress import configure_logging
from movierec_spark.settings import parse_settings

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1  # the job failed for a reason a user cannot fix by a flag
EXIT_USAGE = 2  # bad flags or input: the message says what to change
EXIT_INTERRUPTED = 130


# --- flag value types: text to a number; the range is the setting's (movierec_spark.settings) ---


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


# --- parser ---


# The parsed namespace's "section.key" -> flag typed for it (see config_flags).
FLAGS_TYPED = "_config_flags"


class _OneLineErrors(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, without the usage block,
    and records which flags set which config keys.

    A long usage block wraps over several lines and buries the one line that
    says what is wrong; ``--help`` shows the usage to anyone who wants it.
    """

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        namespace, extras = super().parse_known_args(argv, namespace)
        setattr(namespace, FLAGS_TYPED, config_flags(self, argv))
        return namespace, extras


def config_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> dict[str, str]:
    """``"section.key" -> flag`` for every config key a flag in ``argv`` set.

    A flag's own key first (``--split-seed`` sets ``split.seed``), then the
    keys of flags that fill several (an action's ``config_keys``: ``--seed``
    sets every seed its own flag did not), so that an error names the flag
    a person typed.
    """
    typed = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
    own: dict[str, str] = {}
    filled: dict[str, str] = {}
    for action in parser._actions:
        flag = next((option for option in action.option_strings if option in typed), None)
        if flag is None:
            continue
        if "." in action.dest:
            own[action.dest] = flag
        for key in getattr(action, "config_keys", ()):
            filled.setdefault(key, flag)
    return {**filled, **own}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the flags' help (a config key's is in its own text); the description and epilog as written."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def make_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with the flags every job has (``--config``, ``--verbose``)."""
    parser = _OneLineErrors(
        prog=prog,
        description=description,
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file overriding conf/movierec.toml (e.g. the best.toml tune_als.py writes)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and stack traces")
    return parser


def add_flag(parser: argparse.ArgumentParser | Any, flag: str, key: str, **kwargs: Any) -> None:
    """Add ``flag`` overriding config entry ``key`` ("section.name").

    The default is taken from the config at run time, so help says where it
    comes from instead of repeating a number that could go stale.
    """
    section, _, name = key.partition(".")
    if not name:
        raise ValueError(f"config key {key!r} must be 'section.name'")
    kwargs.setdefault("metavar", name.upper())
    help_text = kwargs.pop("help", "")
    shipped = _shipped_default(section, name)
    shown = "" if shipped in (None, "", []) else f", shipped {shipped!r}".replace("%", "%%")
    kwargs["help"] = f"{help_text} (config: [{section}] {name}{shown})".strip()
    parser.add_argument(flag, dest=key, default=None, **kwargs)


def _shipped_default(section: str, name: str) -> Any:
    """The default of config key ``[section] name`` (movierec_spark.settings), None when it has none."""
    from movierec_spark.settings import SECTIONS

    field = SECTIONS[section].model_fields.get(name) if section in SECTIONS else None
    return None if field is None else field.default


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that say where ratings come from; shared by every data job."""
    group = parser.add_argument_group("data")
    add_flag(group, "--dataset", "data.dataset", metavar="NAME", help="MovieLens release name")
    add_flag(
        group,
        "--source",
        "data.source",
        metavar="PATH",
        help="the release's GroupLens zip or unpacked folder; omitted: download into the cache",
    )
    add_flag(
        group,
        "--ingested",
        "data.ingested_dir",
        metavar="DIR",
        help="read the Parquet tables jobs/ingest.py wrote instead of a release",
    )
    add_flag(
        group,
        "--cache-dir",
        "data.cache_dir",
        metavar="DIR",
        help="download cache (empty: $MOVIEREC_CACHE, else ~/.cache/movierec-spark)",
    )
    add_flag(
        group,
        "--allow-unverified-download",
        "data.allow_unverified_download",
        action="store_const",
        const=True,
        metavar=None,
        help="download a release that has no published checksum (ml-10m, ml-32m, ml-latest)",
    )


def overrides_from_args(args: argparse.Namespace) -> Config:
    """Config entries set by flags (dests of the form 'section.name')."""
    overrides: Config = {}
    for dest, value in vars(args).items():
        if "." in dest and value is not None:
            section, _, name = dest.partition(".")
            overrides.setdefault(section, {})[name] = value
    return overrides


def build_config(args: argparse.Namespace) -> Config:
    """Shipped defaults, then ``--config``, then the flags; every key checked.

    :func:`movierec_spark.settings.parse_settings` refuses an unknown
    section or key and a value of the wrong type or out of range, in one
    line naming the key (and the flag, when a flag set it), before any JVM
    starts.
    """
    cfg = merge(load_config(args.config), overrides_from_args(args))
    parse_settings(cfg, getattr(args, FLAGS_TYPED, None))
    return cfg


# --- running ---


def print_result(text: str, output: str | Path | None = None) -> None:
    """Print a job's result (a formatted table), then the folder it was published to, if any."""
    print(text)
    if output:
        print(f"\nWritten to {output}")


# Every output is published whole at the end (io.staged_output), so a run
# stopped before then has replaced nothing.
INTERRUPTED = "interrupted before its output was published; any earlier output is intact"
# What py4j and Spark raise in the driver when the JVM under it stopped
# (Ctrl-C reaches both processes; spark-submit's JVM can be killed alone).
_SPARK_GONE = (
    "SparkContext was shut down",
    "SparkContext has been shutdown",
    "stopped SparkContext",
    "Answer from Java side is empty",
    "Error while sending or receiving",
    "Error while receiving",
)


@contextmanager
def _interrupts_unwind(spark, prog: str):
    """Ctrl-C (SIGINT) and a plain ``kill`` (SIGTERM) unwind the run: one line said, staging removed, Spark stopped.

    The first signal turns Spark's logging off, cancels its jobs and waits
    for them to end, from a helper thread, while the driver's current JVM
    call finishes (a cancelled job ends it): cutting that call short would
    interrupt JVM threads mid-write, each printing a stack trace. The helper
    then interrupts the driver, unless the cancelled call already ended the
    run; a second signal from outside raises at once, a third exits. (py4j
    pins one JVM connection to each Python thread, so the helper's calls do
    not wait on the driver's.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    state = {"signalled": False, "unwinding": False}
    helpers: list[threading.Thread] = []

    def quiet_cancel_and_interrupt():
        from movierec_spark.session import cancel_all

        try:
            cancel_all(spark)
        except Exception:  # noqa: BLE001 - the JVM may be gone already
            pass
        if not state["unwinding"]:
            _thread.interrupt_main(signal.SIGINT)

    def interrupt(signum, frame):
        if state["unwinding"]:
            # A third signal while Spark winds down: leave now. (The JVM
            # spark-submit.sh started ignores Ctrl-C and ends with the driver.)
            print(f"{prog}: {INTERRUPTED}", file=sys.stderr, flush=True)
            os._exit(EXIT_INTERRUPTED)
        if state["signalled"]:
            state["unwinding"] = True
            raise KeyboardInterrupt(signal.Signals(signum).name)
        state["signalled"] = True
        helpers.append(threading.Thread(target=quiet_cancel_and_interrupt, name="movierec-interrupt", daemon=True))
        helpers[0].start()

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except KeyboardInterrupt:
        state["unwinding"] = True
        raise
    except Exception:
        if not state["signalled"]:
            raise
        state["unwinding"] = True  # a call that failed because its job was cancelled
        raise KeyboardInterrupt("cancelled") from None
    finally:
        state["unwinding"] = True
        for helper in helpers:
            helper.join(timeout=20)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def spark_went_away(exc: BaseException) -> bool:
    """Whether ``exc`` says the JVM under the driver stopped (rather than the job failing)."""
    # Only a process that imported py4j (started Spark) can have met its errors.
    py4j_errors = sys.modules.get("py4j.protocol")
    if isinstance(exc, ConnectionError) or (py4j_errors is not None and isinstance(exc, py4j_errors.Py4JNetworkError)):
        return True
    return any(marker in str(exc) for marker in _SPARK_GONE)


def _stop_quietly(spark) -> None:
    """``spark.stop()``; a JVM that is already gone is not a second error."""
    try:
        spark.stop()
    except Exception:  # noqa: BLE001 - the run's own outcome is what gets reported
        log.debug("stopping Spark failed", exc_info=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# Set by spark-submit.sh when it starts the JVM ignoring Ctrl-C: a terminal
# sends it to every process of the job, and a JVM that exited first would
# take the driver's last line with it (the driver's output reaches the
# terminal through the JVM).
DRIVER_TAKES_CTRL_C = "MOVIEREC_DRIVER_TAKES_CTRL_C"


def _take_back_ctrl_c() -> None:
    """Ctrl-C raises KeyboardInterrupt in a driver started ignoring it by spark-submit.sh."""
    if (
        os.environ.get(DRIVER_TAKES_CTRL_C) == "1"
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_job(
    prog: str,
    parser: argparse.ArgumentParser,
    run: Callable[[Any, Config], int | None] | None,
    argv: Sequence[str] | None = None,
    validate: Callable[[Config], None] | None = None,
    run_local: Callable[[Config], int | None] | None = None,
) -> int:
    """Parse, configure, run ``run(spark, cfg)`` and return an exit code.

    Before any JVM starts, :func:`build_config` checks every key against
    :mod:`movierec_spark.settings`, then ``validate`` makes the job's own
    checks (paths exist, the output folder can be written), so a bad value
    costs no Spark start-up. ``run_local(cfg)``, when given, goes next: it
    returns an exit code when it did the job without Spark (no session is
    built), or None to leave it to ``run``; a command that never needs
    Spark passes ``run=None``.
    """
    _take_back_ctrl_c()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        cfg = build_config(args)
        if validate is not None:
            validate(cfg)
        if run_local is not None:
            code = run_local(cfg)
            if code is not None or run is None:
                return code or EXIT_OK
        # Imported here so that --help and flag errors need no JVM.
        from movierec_spark.session import build_session, is_connect

        spark = build_session(prog)
        if is_connect(spark):
            cfg = absolute_paths(cfg)
        try:
            with _interrupts_unwind(spark, prog):
                return run(spark, cfg) or EXIT_OK
        finally:
            _stop_quietly(spark)
    except MovieRecError as exc:
        if args.verbose:
            log.exception("%s failed", prog)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.debug("%s interrupted", prog, exc_info=True)
        print(f"{prog}: {INTERRUPTED}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - last line of defence for users
        if spark_went_away(exc):
            log.debug("%s: Spark stopped under the job", prog, exc_info=True)
            print(f"{prog}: Spark stopped; {INTERRUPTED}", file=sys.stderr)
            return EXIT_INTERRUPTED
        # Only a process that imported pyspark can have met its errors.
        spark_errors = sys.modules.get("pyspark.errors")
        if spark_errors is not None and isinstance(exc, spark_errors.AnalysisException):
            print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        log.debug("%s failed", prog, exc_info=True)
        hint = "" if args.verbose else " (run with --verbose for the stack trace)"
        print(f"{prog}: error: {type(exc).__name__}: {_one_line(exc)}{hint}", file=sys.stderr)
        return EXIT_ERROR


# --- the flags of the training jobs (train_als, compare_models; tune_als shares the split's) ---


class _SetSeeds(argparse.Action):
    """``--seed N`` sets every seed: the split's (unless ``--split-seed`` set it) and the models'."""

    config_keys = ("als.seed", "split.seed")  # named in errors (config_flags)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, "als.seed", values)
        if getattr(namespace, "split.seed", None) is None:
            setattr(namespace, "split.seed", values)


def add_seed_flag(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument(
        "--seed", type=whole_number, action=_SetSeeds, metavar="N",
        help="set every seed (split and models); --split-seed overrides the split's",
    )


def add_split_flags(parser: argparse.ArgumentParser) -> None:
    """The ``[split]`` flags."""
    from movierec_spark.evaluation.split import METHODS

    split = parser.add_argument_group("split")
    add_flag(split, "--split", "split.method", choices=METHODS, help="how to split ratings into train and test")
    add_flag(split, "--test-fraction", "split.test_fraction", type=number, help="share of ratings in test")
    add_flag(split, "--split-seed", "split.seed", type=whole_number, help="seed of the random / stratified split")
    add_flag(
        split, "--train-ratings", "split.train_ratings_file", metavar="PATH",
        help="predefined split: training ratings in the release's format (e.g. ml-100k u1.base); implies --split predefined",
    )
    add_flag(
        split, "--test-ratings", "split.test_ratings_file", metavar="PATH",
        help="predefined split: test ratings in the release's format (e.g. ml-100k u1.test)",
    )


def comma_list(text: str) -> list[str]:
    """``A,B`` as a list; the names are checked with the rest of the settings."""
    return [name.strip() for name in text.split(",") if name.strip()]


def add_model_flags(parser: argparse.ArgumentParser, section: str) -> None:
    """``--models`` (``[<section>] models``), ``--seed`` and the settings of the biases and both ALS models.

    The help ends with every registered model, what it is and its config section.
    """
    from movierec_spark.models.registry import MODEL_NAMES, REGISTRY

    width = max(len(name) for name in REGISTRY)
    parser.epilog = "models (--models):\n" + "\n".join(
        f"  {spec.name.ljust(width)}  {spec.summary}" + (f" [{spec.section}]" if spec.section else "")
        for spec in REGISTRY.values()
    )

    model = parser.add_argument_group("models")
    add_seed_flag(model)
    add_flag(model, "--models", f"{section}.models", type=comma_list, metavar="A,B",
             help=f"models to fit, from {','.join(MODEL_NAMES)}")
    add_flag(model, "--rank", "als.rank", type=whole_number, help="ALS rank (latent factors)")
    add_flag(model, "--max-iter", "als.max_iter", type=whole_number, help="ALS iterations")
    add_flag(model, "--reg-param", "als.reg_param", type=number, help="ALS regularisation")
    add_flag(model, "--nonnegative", "als.nonnegative", action=argparse.BooleanOptionalAction,
             metavar=None, help="constrain ALS factors to be non-negative")
    add_flag(model, "--solver", "als.solver", metavar="auto|mllib|driver",
             help="who solves explicit ALS: mllib (Spark's distributed ALS), driver (the same equations "
                  "in the driver process), auto (driver on a local master, mllib on a cluster)")
    add_flag(model, "--num-user-blocks", "als.num_user_blocks", type=whole_number, help="ALS user blocks")
    add_flag(model, "--num-item-blocks", "als.num_item_blocks", type=whole_number, help="ALS item blocks")
    add_flag(model, "--ratings-per-block", "als.ratings_per_block", type=whole_number, metavar="N",
             help="size the ALS blocks to the training ratings: one per N, at least one per core, "
                  "at most --num-user/item-blocks; 0: the block counts as given")
    add_flag(model, "--checkpoint-interval", "als.checkpoint_interval", type=whole_number,
             help="checkpoint ALS every N iterations")
    add_flag(model, "--checkpoint-dir", "als.checkpoint_dir", metavar="DIR",
             help="Spark checkpoint folder (a shared filesystem on a cluster); empty: a temporary folder")
    add_flag(model, "--user-damping", "bias.user_damping", type=number,
             help="pseudo-count shrinking user biases to 0")
    add_flag(model, "--item-damping", "bias.item_damping", type=number,
             help="pseudo-count shrinking movie biases to 0")
    add_flag(model, "--bias-iterations", "bias.bias_iterations", type=whole_number,
             help="alternating passes fitting movie then user biases")

    implicit = parser.add_argument_group("top-N mode (ALS with implicitPrefs)")
    add_flag(implicit, "--implicit-rank", "implicit.rank", type=whole_number, help="rank")
    add_flag(implicit, "--implicit-max-iter", "implicit.max_iter", type=whole_number, help="iterations")
    add_flag(implicit, "--implicit-reg-param", "implicit.reg_param", type=number, help="regularisation")
    add_flag(implicit, "--alpha", "implicit.alpha", type=number,
             help="confidence growth per unit of preference")
    add_flag(implicit, "--confidence", "implicit.confidence", choices=("binary", "rating"),
             help="preference of a rating: 1 (binary) or the rating itself")
    add_flag(implicit, "--topn-normalise", "topn_blend.normalise", choices=("none", "max", "zscore", "rrf"),
             help="topn_blend: rescale each member's scores per user before adding them")


def add_evaluation_flags(parser: argparse.ArgumentParser, section: str) -> argparse._ArgumentGroup:
    """The ``[evaluate]`` flags and ``--output`` (``[<section>] output``); returns their group."""
    evaluate = parser.add_argument_group("evaluation and output")
    add_flag(evaluate, "--k", "evaluate.k", type=whole_number, help="K of the ranking metrics")
    add_flag(evaluate, "--predictions-sample", "evaluate.predictions_sample", type=whole_number,
             help="test rows written to predictions_sample.csv")
    add_flag(evaluate, "--ranking-metrics", "evaluate.ranking_metrics", action=argparse.BooleanOptionalAction,
             metavar=None, help="compute precision/recall/ndcg/map/coverage@K (a top-K per test user)")
    add_flag(evaluate, "--warm-metrics", "evaluate.warm_metrics", action=argparse.BooleanOptionalAction,
             metavar=None, help="also compute RMSE/MAE/R2 over the test rows whose user and movie are in training")
    add_flag(evaluate, "--output", f"{section}.output", metavar="DIR", help="output folder")
    return evaluate
