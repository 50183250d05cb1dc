"""Job configuration: ``conf/movierec.toml`` defaults, overlaid by files and flags.

A configuration is a two-level mapping ``{section: {key: value}}``. Jobs load
the shipped defaults, overlay any ``--config FILE`` (for example the best
parameters that ``jobs/tune_als.py`` writes), then overlay the flags a person
typed. Relative paths in keys ending in ``_file`` or ``_dir`` resolve against
the folder of the file that set them, so a config file can travel with the
files it names.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Mapping

from movierec_spark import MovieRecError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONF_DIR_ENV = "MOVIEREC_CONF_DIR"
DEFAULTS_NAME = "movierec.toml"

Config = dict[str, dict[str, Any]]


def conf_dir() -> Path:
    """The project's ``conf/`` folder (``$MOVIEREC_CONF_DIR`` overrides it)."""
    env = os.environ.get(CONF_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "conf"


def _resolve_paths(section: Mapping[str, Any], base: Path) -> dict[str, Any]:
    out = {}
    for key, value in section.items():
        if isinstance(value, str) and value and key.endswith(("_file", "_dir")):
            path = Path(value).expanduser()
            value = str(path if path.is_absolute() else base / path)
        out[key] = value
    return out


# Keys naming a path besides those ending in _file or _dir.
PATH_KEYS = ("output", "source", "model")


def absolute_paths(cfg: Config) -> Config:
    """``cfg`` with every relative local path made absolute against this process's working folder.

    A Spark Connect server resolves a relative path against its own working
    folder; the same path made absolute here means what the person typed.
    """
    out: Config = {}
    for section, values in cfg.items():
        out[section] = {}
        for key, value in values.items():
            if (isinstance(value, str) and value and "://" not in value
                    and (key in PATH_KEYS or key.endswith(("_file", "_dir")))):
                value = str(Path(value).expanduser().absolute())
            out[section][key] = value
    return out


def read_config_file(path: str | Path) -> Config:
    """Read one TOML config file; an unreadable or invalid file is a MovieRecError."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise MovieRecError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise MovieRecError(f"config file {path} is a folder, not a file; give the TOML file's path") from None
    except tomllib.TOMLDecodeError as exc:
        raise MovieRecError(f"config file {path} is not valid TOML: {exc}") from None
    config: Config = {}
    for section, values in raw.items():
        if not isinstance(values, dict):
            raise MovieRecError(
                f"config file {path}: top-level key {section!r} must be a [section] table"
            )
        config[section] = _resolve_paths(values, path.resolve().parent)
    return config


def merge(base: Config, overlay: Mapping[str, Mapping[str, Any]]) -> Config:
    """A new config: ``base`` with every key of ``overlay`` set over it.

    ``None`` values in the overlay are skipped, so unset flags keep defaults.
    """
    merged = copy.deepcopy(base)
    for section, values in overlay.items():
        target = merged.setdefault(section, {})
        for key, value in values.items():
            if value is not None:
                target[key] = value
    return merged


def load_config(*extra_files: str | Path | None) -> Config:
    """The shipped defaults overlaid by each of ``extra_files`` in order."""
    config = read_config_file(conf_dir() / DEFAULTS_NAME)
    for path in extra_files:
        if path:
            config = merge(config, read_config_file(path))
    return config


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write non-finite float {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {type(value).__name__} to TOML")


def dumps_config(config: Mapping[str, Mapping[str, Any]], header: str = "") -> str:
    """Render a two-level config as TOML (the subset this project reads)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for section, values in config.items():
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"
