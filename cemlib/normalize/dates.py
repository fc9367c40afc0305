"""Dates and timestamps in the formats Russian exports use, day first.

Accepted: ``2024-03-05``, ``2024-03-05 14:30[:15[.123]]``, ``2024-03-05T14:30:15[Z|+03:00]``,
``05.03.2024``, ``05.03.2024 14:30[:15]``, ``05.03.24``, ``05/03/2024 ...``, ``05-03-2024``.
A time-zone suffix is dropped and the wall-clock time kept. Anything else becomes ``NaT``; the
caller counts those (raw text is kept in the ``raw`` schema).
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
_TZ = re.compile(
    r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|GMT|MSK|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE
)


def _parse_into(parsed: pd.Series, text: pd.Series, todo: pd.Series, formats) -> None:
    """Fill ``parsed`` where ``todo`` by trying each format on what is still unparsed."""
    for fmt in formats:
        if not todo.any():
            break
        attempt = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        hit = attempt.notna()
        if hit.any():
            idx = hit[hit].index
            parsed.loc[idx] = attempt[hit].astype("datetime64[ns]")
            todo.loc[idx] = False


def parse_dates(series: pd.Series, *, formats: tuple[str, ...] = FORMATS) -> pd.Series:
    """A Series of ``datetime64[ns]``; ``NaT`` for missing or unparseable values.

    Datetime input is returned (time zone dropped); text is parsed once per distinct value, each
    format tried vectorized on what is still unparsed.
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
    _parse_into(parsed, text, todo, formats)
    if todo.any():  # a time-zone suffix: drop it, keep the wall-clock time, try again
        stripped = text[todo].str.replace(_TZ, r"\1", regex=True)
        retry = pd.Series(False, index=text.index)
        retry[stripped.index] = stripped.ne(text[todo])
        if retry.any():
            text = text.copy()
            text[retry] = stripped[retry[stripped.index]]
            _parse_into(parsed, text, retry, formats)
    values = np.append(parsed.to_numpy(), np.datetime64("NaT", "ns"))  # code -1 -> NaT
    return pd.Series(values[codes], index=series.index, name=series.name)
