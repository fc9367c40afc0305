"""Yes/no flags (consent columns) as exports write them: ``1/0``, ``true/false``, ``да/нет``,
``Y/N``, ``+/-``. Anything else becomes NA (counted by the caller, never guessed)."""

from __future__ import annotations

import pandas as pd

TRUE = frozenset({"1", "1.0", "true", "t", "yes", "y", "да", "д", "истина", "+", "on", "v"})
FALSE = frozenset({"0", "0.0", "false", "f", "no", "n", "нет", "н", "ложь", "-", "off"})


def _flag(text: str) -> bool | None:
    value = text.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    return None


def parse_bools(series: pd.Series) -> pd.Series:
    """A Series of pandas ``boolean`` (NA for missing or unrecognized values)."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")
    from cemlib.normalize.unique import map_unique

    return map_unique(series, _flag, dtype="boolean")
