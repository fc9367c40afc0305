"""Column helpers of the synthetic exports: pyarrow-backed text columns, categoricals, export
timestamps, phone digits and delivery addresses as customers type them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cemlib.synth.behaviour import Timeline
from cemlib.synth.noise import TEXT, as_str, by_group, cat, zfill

STR = pd.StringDtype("pyarrow")


def s(arr) -> pd.Series:
    """A pandas ``string[pyarrow]`` series from a pyarrow array or anything array-like."""
    if isinstance(arr, pa.ChunkedArray):
        arr = pa.chunked_array([as_str(c) for c in arr.chunks], type=TEXT)
        return pd.Series(pd.arrays.ArrowStringArray(arr), dtype=STR)
    if isinstance(arr, pa.Array):
        return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([as_str(arr)])), dtype=STR)
    return pd.Series(arr, dtype=STR)


def pick(values, idx) -> pa.Array:
    """``values[idx]`` as a pyarrow string array, without a numpy/object copy of the strings."""
    if isinstance(values, pd.Series):
        values = values.array
    arr = values if isinstance(values, pa.Array) else as_str(pa.array(values))
    return as_str(arr).take(pa.array(np.asarray(idx, dtype=np.int64)))


def coded(categories, codes) -> pd.Categorical:
    """A categorical column (``-1`` = missing): low-cardinality text costs one small int a row."""
    cats = list(categories.astype(str) if isinstance(categories, pd.Series) else categories)
    codes = np.asarray(codes)
    dtype = np.int8 if len(cats) < 127 else np.int16 if len(cats) < 32000 else np.int32
    return pd.Categorical.from_codes(codes.astype(dtype), categories=cats)


def fmt_ts(tl: Timeline, t: np.ndarray) -> pa.Array:
    """Days since start as ``YYYY-MM-DD HH:MM:SS`` text, as exports write them."""
    return ts_text(tl.to_datetime(t))


def ts_text(ts: np.ndarray) -> pa.Array:
    """``datetime64`` values as ``YYYY-MM-DD HH:MM:SS`` text (NaT: null). Arrow's cast of a
    whole-second timestamp writes exactly this, at a thirtieth of ``strftime``'s cost."""
    return pa.array(np.asarray(ts).astype("datetime64[s]")).cast(pa.string())


def date_text(dates: np.ndarray) -> pa.Array:
    """``datetime64`` values as ``YYYY-MM-DD`` text (NaT: null), like :func:`ts_text`."""
    return pa.array(np.asarray(dates).astype("datetime64[D]")).cast(pa.string())


def digits(values: np.ndarray) -> pa.Array:
    """10-digit national numbers (``-1`` = none) as strings, null for none."""
    v = np.asarray(values, dtype=np.int64)
    ok = v >= 0
    return pc.if_else(pa.array(ok), zfill(np.where(ok, v, 0), 10), pa.nulls(len(v), TEXT))


def address_text(people: pd.DataFrame, person: np.ndarray, style: np.ndarray) -> pa.Array:
    """Delivery addresses written the ways customers type them."""
    city = pick(people["city"], person)
    street = pick(people["address_street"], person)
    house = pa.array(people["address_house"].to_numpy()[person].astype(str))
    flat = pa.array(people["address_flat"].to_numpy()[person].astype(str))
    post = pa.array(people["postcode"].to_numpy()[person].astype(str))
    bare_street = pc.replace_substring_regex(street, r"^(ул\.|пр\.|пер\.) ", "")

    def f(k, idx):
        t = pa.array(idx)
        c, st, h, fl, pcode, bs = (
            x.take(t) for x in (city, street, house, flat, post, bare_street)
        )
        return [
            lambda: cat("г. ", c, ", ", st, ", д. ", h, ", кв. ", fl),
            lambda: cat(pcode, ", г. ", c, ", ", st, ", д. ", h, ", кв. ", fl),
            lambda: cat(c, ", ", bs, " ", h, "-", fl),
            lambda: cat(st, ", д.", h, ", кв.", fl),
        ][k]()

    return by_group(style, 4, f)
