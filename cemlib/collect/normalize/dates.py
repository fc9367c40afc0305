"""Dates and timestamps in the formats Russian exports use, day first.

Accepted: ``2024-03-05``, ``2024-03-05 14:30[:15[.123]]``, ``2024-03-05T14:30:15[Z|+03:00]``,
``05.03.2024``, ``05.03.2024 14:30[:15]``, ``05.03.24``, ``05/03/2024 ...``, ``05-03-2024``.
A time-zone suffix is dropped and the wall-clock time kept. Anything else becomes ``NaT``; the
caller counts those (raw text is kept in the ``raw`` schema).
"""

from __future__ import annotations

import re

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
    text = text.str.replace(_TZ, r"\1", regex=True)
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    todo = text.ne("")
    for fmt in formats:
        if not todo.any():
            break
        attempt = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        hit = attempt.notna()
        if hit.any():
            parsed.loc[hit[hit].index] = attempt[hit].astype("datetime64[ns]")
            todo.loc[hit[hit].index] = False
    values = parsed.to_numpy()
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]", name=series.name)
    known = codes >= 0
    out.iloc[known.nonzero()[0]] = values[codes[known]]
    return out
