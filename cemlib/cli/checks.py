"""Up-front checks of command-line arguments (output files: :func:`cemlib.io.output_file`).

Every check raises :class:`~cemlib.errors.InputError`, which ``cem`` prints as one line with
exit 2, before any work is done, so a bad path or value never costs minutes of computing nor
leaves a partial file behind."""

from __future__ import annotations

from pathlib import Path

from cemlib.errors import InputError
from cemlib.io import output_folder
from cemlib.io import warehouse_file as _warehouse_file


def output_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a folder to write into (:func:`cemlib.io.output_folder`, the check
    ``cem run`` makes of its reports folder too)."""
    return output_folder(path, flag)


def warehouse_file(path: str | Path | None, flag: str = "--warehouse") -> Path | None:
    """``path`` as a DuckDB file to write (:func:`cemlib.io.warehouse_file`, the check
    ``cem run`` makes of its warehouse too); None passes: the default."""
    if path is None:
        return None
    return _warehouse_file(path, flag)


def positive(value: int | float, flag: str) -> None:
    """InputError unless ``value`` (of option ``flag``) is above zero."""
    if value is None or value <= 0:
        raise InputError(f"{flag} must be a positive number, got {value}")


def non_negative(value: int | float, flag: str) -> None:
    """InputError unless ``value`` (of option ``flag``) is zero or more."""
    if value is None or value < 0:
        raise InputError(f"{flag} must be zero or more, got {value}")


def as_of_date(text: str, flag: str = "--as-of") -> str:
    """``text`` as the ISO date of the last day of known history (``2025-06-30``; the formats
    the collection reads, such as ``30.06.2025``, are accepted too)."""
    import pandas as pd

    from cemlib.normalize import parse_dates

    d = parse_dates(pd.Series([str(text)]))
    if d.isna().iloc[0]:
        raise InputError(f"{flag}: not a date (YYYY-MM-DD): {text!r}")
    return d.iloc[0].date().isoformat()
