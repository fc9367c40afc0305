"""Money and other numbers as Russian exports write them: ``1 234,50 руб.``, ``1.234,50``,
``1,234.50``, ``-12,5``, ``₽ 99``; unparseable text becomes NaN (count it, do not guess)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from cemlib.normalize.unique import map_unique

_CURRENCY = re.compile(r"(?i)(руб(?:лей|ля|ль)?\.?|р\.|₽|rub\.?|rur\.?|коп\.?)")
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009']+")
_GROUPED = re.compile(r"^\d{1,3}(?: \d{3})+$")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$", re.IGNORECASE)


def parse_amount(text: str) -> float | None:
    """One amount as float, or ``None`` when the text is not a number."""
    value = _SPACES.sub("", _CURRENCY.sub("", str(text)))
    if not value:
        return None
    negative = value.startswith("(") and value.endswith(")")
    if negative:
        value = value[1:-1]
    sign = ""
    if value[:1] in "+-":
        sign, value = value[:1], value[1:]
    thousands = None
    if "," in value and "." in value:
        # the separator that comes last is the decimal one, the other groups thousands
        thousands = "." if value.rfind(",") > value.rfind(".") else ","
    elif value.count(",") > 1 or value.count(".") > 1:
        thousands = "," if value.count(",") > 1 else "."
    if thousands:
        decimal = "." if thousands == "," else ","
        whole, _, frac = value.partition(decimal)
        if not _GROUPED.match(whole.replace(thousands, " ")):
            return None
        value = whole.replace(thousands, "") + ("." + frac if frac or decimal in value else "")
    elif value.count(",") == 1:
        value = value.replace(",", ".")
    value = sign + value
    if not _NUMBER.match(value):
        return None
    number = float(value)
    return -number if negative else number


def parse_amounts(series: pd.Series) -> pd.Series:
    """A Series of amounts as ``float64`` (NaN for missing or unparseable values).

    Numeric input is returned as float unchanged; text is parsed once per distinct value.
    """
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    out = map_unique(series, parse_amount, dtype="")
    return pd.Series(
        np.asarray(out.where(out.notna(), np.nan), dtype="float64"),
        index=series.index,
        name=series.name,
    )
