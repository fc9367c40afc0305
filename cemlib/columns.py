"""The one validator of users' tables (transactions, subscriptions, events, items): ids, dates
and numbers checked and typed the same way, with the same messages, by every command.

Dates are read by :func:`cemlib.normalize.parse_dates` (ISO and the day-first Russian export
formats; a time zone is dropped, the wall-clock time kept), numbers by
:func:`cemlib.normalize.parse_amounts` (decimal commas, thousands groups, currency signs). A bad
column raises :class:`~cemlib.errors.InputError` naming the file and the column.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from cemlib.errors import InputError
from cemlib.normalize import parse_amounts, parse_dates

#: kinds of column :func:`typed_columns` checks
ID = "id"  # text, never empty
TIME = "time"  # a date or timestamp, never empty
TIME_OR_EMPTY = "time or empty"  # a date or timestamp, empty allowed (NaT)
NUMBER = "number"  # a number, empty allowed (NaN)
KINDS = (ID, TIME, TIME_OR_EMPTY, NUMBER)


def shared_strings(values: pd.Series) -> pd.Series:
    """``values`` as Python strings (object), one string object per distinct value.

    The same text as ``values.astype(str)`` (missing values stay missing), but each distinct id
    is converted once and shared by its rows: a few bytes per row instead of a string object per
    row, whatever the input holds (objects, Arrow strings, categories).
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = pd.Index(uniques).astype(str).to_numpy(dtype=object)
    out = np.empty(len(values), dtype=object)
    ok = codes >= 0
    out[ok] = texts[codes[ok]]
    out[~ok] = pd.NA
    return pd.Series(out, index=values.index, dtype=object)


def require_columns(df: pd.DataFrame, columns: Collection[str], source: str) -> None:
    """InputError naming the first of ``columns`` that ``df`` lacks."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a DataFrame, got {type(df).__name__}", source=source)
    for col in columns:
        if col not in df.columns:
            raise InputError(
                f"missing column (have: {', '.join(map(str, df.columns))})",
                source=source,
                column=col,
            )


def _ids(values: pd.Series, source: str, column: str) -> pd.Series:
    if values.isna().any():
        n = int(values.isna().sum())
        raise InputError(f"{n} row(s) without a value", source=source, column=column)
    return shared_strings(values)


def _times(values: pd.Series, source: str, column: str, *, empty_ok: bool) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(values):
        text = values.astype("string").str.strip()
        values = text.mask(text == "") if empty_ok else values
    parsed = parse_dates(values)
    bad = parsed.isna() & values.notna()
    if bad.any():
        n = int(bad.sum()) if empty_ok else int(parsed.isna().sum())
        raise InputError(
            f"unparseable date {values[bad].iloc[0]!r} ({n} rows)", source=source, column=column
        )
    if not empty_ok and parsed.isna().any():
        n = int(parsed.isna().sum())
        raise InputError(f"{n} row(s) without a date", source=source, column=column)
    return parsed


def _numbers(values: pd.Series, source: str, column: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values
    num = parse_amounts(values)
    blank = values.isna() | (values.astype("string").str.strip() == "").fillna(True)
    bad = num.isna() & ~blank
    if bad.any():
        raise InputError(
            f"not a number: {values[bad].iloc[0]!r} ({int(bad.sum())} rows)",
            source=source,
            column=column,
        )
    return num


def typed_columns(
    df: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    source: str,
    optional: Collection[str] = (),
    allow_empty: bool = False,
) -> dict[str, pd.Series]:
    """The columns of ``kinds`` (``{column: ID | TIME | TIME_OR_EMPTY | NUMBER}``) checked and
    typed: ids as text (:func:`shared_strings`), times as ``datetime64[ns]`` without a time
    zone, numbers as float (numeric input kept as it is).

    ``df`` must have every column of ``kinds`` not in ``optional`` (absent optional columns are
    left out of the result) and, unless ``allow_empty``, at least one row. Raises
    :class:`~cemlib.errors.InputError` naming ``source`` and the column: ``no rows``,
    ``missing column``, ``N row(s) without a value`` (id), ``unparseable date 'x' (N rows)``,
    ``N row(s) without a date``, ``not a number: 'x' (N rows)``.
    """
    if df is None or (len(df) == 0 and not allow_empty):
        raise InputError("no rows", source=source)
    require_columns(df, [c for c in kinds if c not in optional], source)
    out: dict[str, pd.Series] = {}
    for col, kind in kinds.items():
        if col not in df.columns:
            continue
        values = df[col]
        if kind == ID:
            out[col] = _ids(values, source, col)
        elif kind in (TIME, TIME_OR_EMPTY):
            out[col] = _times(values, source, col, empty_ok=kind == TIME_OR_EMPTY)
        elif kind == NUMBER:
            out[col] = _numbers(values, source, col)
        else:
            raise ValueError(f"unknown column kind {kind!r}; expected one of {KINDS}")
    return out
