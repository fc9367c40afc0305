"""Apply a scalar function once per distinct value of a Series (the speed trick of every
normalizer: real columns repeat values, and parsing is the slow part)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def map_unique(
    series: pd.Series, func: Callable[[str], Any], *, dtype: str = "string"
) -> pd.Series:
    """``func`` applied to each distinct non-missing value (as ``str``); missing stays missing.

    ``func`` returns ``None`` for "could not normalize". The result keeps ``series``' index.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    results = np.empty(len(uniques) + 1, dtype=object)
    results[:-1] = [func(str(u)) for u in uniques]
    results[-1] = None
    out = pd.Series(results[codes], index=series.index, name=series.name)  # -1 -> last (None)
    return out.astype(dtype) if dtype else out
