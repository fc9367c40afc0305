"""The run configuration's values as YAML gives them, and the checks of the run-wide and runner
settings (one message per bad value, all collected before anything runs)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_RESERVED_RUN_IDS = {"latest", "index.html"}


class YamlLoader(yaml.SafeLoader):
    """YAML without implicit timestamps: ``as_of: 2025-06-30`` stays text (checked by us)."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def yaml_value(text: str) -> Any:
    """``text`` read as YAML with this project's loader (dates stay text)."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass


class YamlText(str):
    """A value typed on the command line: its type is decided by the parameter's default."""


# -- loading ------------------------------------------------------------------------------------


def check_top_level(top: dict[str, Any], where: str, errors: list[str]) -> dict[str, Any]:
    """Type-check the run-wide parameters and runner settings; values coerced from -p text."""
    out: dict[str, Any] = {}
    for key, value in top.items():
        try:
            out[key] = TOP_CHECKS[key](key, value)
        except (TypeError, ValueError) as exc:
            errors.append(f"{where}: {exc}")
    return out


def text_or(value: Any) -> Any:
    """A ``-p`` value given as text read as YAML; any other value as it is."""
    return yaml_value(value) if isinstance(value, YamlText) else value


def _check_run_id(key: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise TypeError(f"{key!r} expects text, got {type(value).__name__} {value!r}")
    if not _RUN_ID.match(value) or value in _RESERVED_RUN_IDS:
        raise ValueError(
            f"{key!r} must be letters, digits, '.', '_' or '-' (a folder name), got {value!r}"
        )
    return str(value)


def _check_date(key: str, value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise TypeError(f"{key!r} expects a date YYYY-MM-DD, got {type(value).__name__} {value!r}")
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValueError(f"{key!r} expects a date YYYY-MM-DD, got {value!r}") from None


def _check_int(key: str, value: Any, minimum: int = 0) -> int:
    value = text_or(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key!r} expects an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{key!r} must be at least {minimum}, got {value}")
    return int(value)


def _check_keep_runs(key: str, value: Any) -> int | None:
    """``keep_runs``: how many run folders to keep in the reports folder (None: all)."""
    return None if text_or(value) is None else _check_int(key, value, minimum=1)


def _check_seconds(key: str, value: Any, allow_none: bool = True) -> float | None:
    value = text_or(value)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{key!r} expects a number of seconds, got {type(value).__name__} {value!r}"
        )
    if value <= 0:
        raise ValueError(f"{key!r} must be positive, got {value}")
    return value


def _check_timeout(key: str, value: Any) -> float | str | None:
    """``auto`` (a limit per stage from its expected duration), seconds, or null (none)."""
    text = text_or(value)
    if isinstance(text, str) and text.strip().lower() == "auto":
        return "auto"
    try:
        return _check_seconds(key, value)
    except TypeError:
        raise TypeError(
            f"{key!r} expects auto, a number of seconds or null, got {type(text).__name__} {text!r}"
        ) from None


def _check_text(key: str, value: Any, allow_none: bool = False) -> str | None:
    if isinstance(value, YamlText):
        text = str(value)
        return None if allow_none and text.strip().lower() in ("", "none", "null") else text
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{key!r} expects text, got {type(value).__name__} {value!r}")
    return value


def _check_stages(key: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return None if value.strip().lower() in ("", "all") else value.split(",")
    if isinstance(value, list | tuple):
        return [
            f"{v:02d}" if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in value
        ]
    raise TypeError(f"{key!r} expects 'all', '01,02' or a list of stages, got {value!r}")


def _check_memory(key: str, value: Any) -> str | None:
    from cemlib.budget import parse_size

    value = text_or(value)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    try:
        parse_size(value)
    except ValueError as exc:
        raise ValueError(f"{key!r}: {exc}") from None
    return str(value)


def _check_engine(key: str, value: Any) -> str:
    from cemlib.engine import ENGINES

    value = str(text_or(value) or "").strip().lower()
    if value not in ENGINES:
        raise ValueError(f"{key!r} must be one of {', '.join(ENGINES)}, got {value!r}")
    return value


def _check_master(key: str, value: Any) -> str:
    text = _check_text(key, value)
    if not re.match(
        r"^(local(\[(\*|\d+)(,\s*\d+)?\])?|spark://\S+|yarn|k8s://\S+|mesos://\S+)$", text
    ):
        raise ValueError(
            f"{key!r} expects local[*], local[N], spark://host:port, yarn or k8s://..., "
            f"got {text!r}"
        )
    return text


def _check_vocabulary(key: str, value: Any) -> dict[str, str]:
    """``vocabulary``: the business's words for the reports' (a mapping of text to text)."""
    from cemlib.reports.vocabulary import check_vocabulary

    return check_vocabulary(text_or(value), key)


TOP_CHECKS = {
    "run_id": _check_run_id,
    "as_of": _check_date,
    "seed": _check_int,
    "n_people": lambda k, v: _check_int(k, v, minimum=1),
    "warehouse": lambda k, v: _check_text(k, v, allow_none=True),
    "source": _check_text,
    "stages": _check_stages,
    "out": _check_text,
    "notebooks_dir": _check_text,
    "kernel": _check_text,
    "execution_timeout": _check_timeout,
    "start_timeout": lambda k, v: _check_seconds(k, v, allow_none=False),
    "memory_limit": _check_memory,
    "temp_directory": lambda k, v: _check_text(k, v, allow_none=True),
    "engine": _check_engine,
    "spark_master": _check_master,
    "lake": lambda k, v: _check_text(k, v, allow_none=True),
    "keep_runs": _check_keep_runs,
    "vocabulary": lambda k, v: _check_vocabulary(k, v),
}
