"""Dates and timestamps in the formats Russian exports use, day first.

Accepted: ``2024-03-05``, ``2024-03-05 14:30[:15[.123]]``, ``2024-03-05T14:30:15[Z|+03:00]``,
``05.03.2024``, ``05.03.2024 14:30[:15]``, ``05.03.24``, ``05/03/2024 ...``, ``05-03-2024``.
A time-zone suffix is dropped and the wall-clock time kept. Anything else becomes ``NaT``; the
caller counts those (raw text is kept in the ``raw`` schema).

Day first is the default. A column whose numeric dates show month-first evidence (a second part
above 12, ``06/13/2025``) and no day-first evidence (no first part above 12) is read month first
throughout (:func:`date_order`): a file re-saved by a US-locale Excel is read as written, not
with day and month swapped wherever both are 12 or less.

A two-digit year (``05.03.24``) is read the POSIX way (00-68 as 20xx, 69-99 as 19xx) unless
the caller gives ``not_after``: for a column of dates that cannot lie ahead, such as birth
dates, a two-digit year that would put the date after ``not_after`` (the run's ``as_of``) is
read in the century before: ``18.12.59`` is 1959, not 2059.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%d.%m.%y",
    "%d.%m.%y %H:%M",
    "%d/%m/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%y",
    "%d-%m-%Y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y%m%d",
)
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})[./-](\d{1,2})[./-]\d{2,4}(?:\D|$)")


def date_order(text: pd.Series) -> str:
    """``"month"`` when the numeric dates of ``text`` can only be month first (two or more
    distinct values that are a date only month first, none that is one only day first), else
    ``"day"``. A value that is a date in neither order (``32.13.2025``) does not vote."""
    distinct = pd.Series(text.dropna().unique(), dtype=object).astype(str)
    parts = distinct[_may_be_numeric(distinct)].str.extract(_NUMERIC_DATE).dropna()
    if parts.empty:
        return "day"
    first, second = parts[0].astype(int), parts[1].astype(int)
    only_month = first.between(1, 12) & second.between(13, 31)
    only_day = second.between(1, 12) & first.between(13, 31)
    # two distinct values at least: one slip ("05/13/2025" in a day-first column) is a typo
    return "month" if only_month.sum() >= 2 and not only_day.any() else "day"


#: what an ASCII value must start with to match :data:`_NUMERIC_DATE` (``\s`` and ``\d`` of
#: Python's ``re`` on ASCII text), in RE2 for Arrow
_ASCII_NUMERIC_START = r"^[\t\n\x0b\x0c\r\x1c-\x1f ]*[0-9]{1,2}[./-]"


def _may_be_numeric(values: pd.Series) -> np.ndarray:
    """Which ``values`` (``str``) :data:`_NUMERIC_DATE` may match, found by Arrow in one pass:
    an ASCII value only if it starts as a numeric date does, a value with other characters
    always (Python's ``\\s`` and ``\\d`` take Unicode spaces and digits there). The regular
    expression then runs on these only: ISO timestamps, most of a column, never reach it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(values):
        return np.zeros(0, dtype=bool)
    arr = pa.array(values.to_numpy(dtype=object), type=pa.string())
    keep = pc.or_(
        pc.invert(pc.string_is_ascii(arr)),
        pc.match_substring_regex(arr, _ASCII_NUMERIC_START),
    )
    return keep.to_numpy(zero_copy_only=False)


def _month_first(formats: tuple[str, ...]) -> tuple[str, ...]:
    """The day-first numeric formats with day and month swapped (ISO ones unchanged)."""
    return tuple(
        f.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m") if f.startswith("%d") else f
        for f in formats
    )


_TZ = re.compile(
    r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|GMT|MSK|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE
)


def _parse_into(
    parsed: pd.Series, text: pd.Series, todo: pd.Series, formats, short: pd.Series
) -> None:
    """Fill ``parsed`` where ``todo`` by trying each format on what is still unparsed; mark in
    ``short`` the values read with a two-digit year."""
    for fmt in formats:
        if not todo.any():
            break
        attempt = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        hit = attempt.notna()
        if hit.any():
            idx = hit[hit].index
            parsed.loc[idx] = attempt[hit].astype("datetime64[ns]")
            todo.loc[idx] = False
            if "%y" in fmt:
                short.loc[idx] = True


def parse_dates(
    series: pd.Series,
    *,
    formats: tuple[str, ...] = FORMATS,
    order: str | None = None,
    not_after=None,
) -> pd.Series:
    """A Series of ``datetime64[ns]``; ``NaT`` for missing or unparseable values.

    Datetime input is returned (time zone dropped); text is parsed once per distinct value, each
    format tried vectorized on what is still unparsed. ``order`` (``"day"`` or ``"month"``)
    fixes the order of numeric dates; None reads it from the values (:func:`date_order`).
    ``not_after``: a two-digit year that puts a date after it is read in the century before
    (for dates that cannot lie ahead, e.g. birth dates; None: the POSIX reading).
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        out = series
        if getattr(series.dt, "tz", None) is not None:
            out = series.dt.tz_localize(None)
        return out.astype("datetime64[ns]")
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = pd.Series(uniques, dtype="object").astype(str).str.strip()
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    todo = text.ne("")
    if (order or date_order(text[todo])) == "month":
        formats = _month_first(formats)
    short = pd.Series(False, index=text.index)
    _parse_into(parsed, text, todo, formats, short)
    if todo.any():  # a time-zone suffix: drop it, keep the wall-clock time, try again
        stripped = text[todo].str.replace(_TZ, r"\1", regex=True)
        retry = pd.Series(False, index=text.index)
        retry[stripped.index] = stripped.ne(text[todo])
        if retry.any():
            text = text.copy()
            text[retry] = stripped[retry[stripped.index]]
            _parse_into(parsed, text, retry, formats, short)
    if not_after is not None:
        ahead = short & (parsed > pd.Timestamp(not_after))
        if ahead.any():
            parsed[ahead] = parsed[ahead] - pd.DateOffset(years=100)
    values = np.append(parsed.to_numpy(), np.datetime64("NaT", "ns"))  # code -1 -> NaT
    return pd.Series(values[codes], index=series.index, name=series.name)
