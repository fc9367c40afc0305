"""Input frames of the next-offer stage: transactions, browsing events and the item catalogue.

Everything is checked and typed here so the rest of the package can rely on clean columns.
Bad input raises :class:`cemlib.errors.InputError` naming the table and the column; rows dated
after ``as_of`` are not an error, they are counted and left out (no leakage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cemlib.columns import ID, NUMBER, TIME, require_columns, shared_strings, typed_columns
from cemlib.errors import InputError
from cemlib.io import read_file

#: the columns of a transactions input and how :func:`cemlib.columns.typed_columns` checks them
TRANSACTION_KINDS = {
    "customer_id": ID,
    "ts": TIME,
    "item_id": ID,
    "quantity": NUMBER,
    "amount": NUMBER,
}
TRANSACTION_COLUMNS: tuple[str, ...] = tuple(TRANSACTION_KINDS)
EVENT_KINDS = {"customer_id": ID, "ts": TIME}
ITEM_KINDS = {"item_id": ID, "price": NUMBER}
EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "click": 1.0, "search": 0.5, "cart": 3.0}
GRANULARITIES: tuple[str, ...] = ("item", "sku", "group", "category")


@dataclass
class InputReport:
    """Row accounting of one prepared input: nothing is dropped without being counted."""

    rows_in: int = 0
    rows_used: int = 0
    after_as_of: int = 0
    non_positive_quantity: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (the stage's figures)."""
        return {
            "rows_in": self.rows_in,
            "rows_used": self.rows_used,
            "after_as_of": self.after_as_of,
            "non_positive_quantity": self.non_positive_quantity,
        }


def read_table(path: str | Path, *, name: str) -> pd.DataFrame:
    """Read a CSV or Parquet file through the one reader (:func:`cemlib.io.read_file`: UTF-8 or
    cp1251, sniffed delimiter, values kept exactly as text, NUL bytes included) and refuse NUL
    bytes in values; the frame's ``attrs["source"]`` is the path, so later errors name the file
    rather than ``name``."""
    df = read_file(path, what=f"the {name} file")
    _refuse_nul(df, df.attrs["source"])
    return df


def _refuse_nul(df: pd.DataFrame, source: str) -> None:
    """A NUL byte in a value is an error: pandas' hashing would cut the value at it (so
    ``SKU100046\\0X`` and ``SKU100046`` would become one item)."""
    for col in df.columns:
        s = df[col]
        if not (isinstance(s.dtype, pd.StringDtype) or s.dtype == object):
            continue
        hit = s.astype("string").str.contains("\0", regex=False).fillna(False)
        if hit.any():
            row = int(hit.to_numpy().argmax()) + 2  # 1-based, after the header line
            raise InputError(
                f"{int(hit.sum())} value(s) hold a NUL byte (first at line {row}); remove the "
                "NUL bytes (a value is never cut short)",
                source=source,
                column=str(col),
            )


def _float(values: pd.Series) -> pd.Series:
    """A number column as float64, empty as 0."""
    return values.fillna(0.0).astype("float64")


def _text_codes(values: pd.Series) -> np.ndarray:
    """Integer codes of ``values.astype(str)`` (equal texts, equal codes) without a string per row."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = pd.Index(uniques).astype(str)
    return pd.factorize(texts)[0][codes].astype(np.int64)


def _as_of_end(as_of) -> pd.Timestamp:
    """Exclusive upper bound of the day ``as_of`` (inclusive semantics)."""
    try:
        return pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    except (ValueError, TypeError):
        raise InputError(f"as_of {as_of!r} is not a date") from None


def prepare_items(items: pd.DataFrame | None, *, source: str = "items") -> pd.DataFrame | None:
    """The item catalogue: ``item_id`` plus optional ``name``, ``category``, ``price`` and the
    product ``group`` and ``size`` (the sizes of one model: :mod:`cemlib.offers.groups`)."""
    source = (items.attrs.get("source") if items is not None else None) or source
    if items is None:
        return None
    items = items.rename(columns={"sku": "item_id"}) if "item_id" not in items else items
    typed = typed_columns(items, ITEM_KINDS, source=source, optional=("price",), allow_empty=True)
    out = pd.DataFrame({"item_id": typed["item_id"]})
    for col in ("name", "category"):
        if col in items.columns:
            out[col] = items[col].astype("string")
    for col in ("group", "size"):  # an empty value: no group (no size)
        if col in items.columns:
            text = items[col].astype("string").str.strip()
            out[col] = text.mask(text == "")
    if "price" in typed:
        out["price"] = _float(typed["price"])
    out = out.drop_duplicates("item_id", keep="last").reset_index(drop=True)
    out.attrs["source"] = source  # a later error names the file
    return out


def prepare_transactions(
    df: pd.DataFrame,
    *,
    as_of=None,
    items: pd.DataFrame | None = None,
    granularity: str = "item",
    source: str = "transactions",
    report: InputReport | None = None,
) -> pd.DataFrame:
    """Typed transactions ``customer_id, ts, item_id, quantity, amount, basket_id, category``.

    Rows after ``as_of`` (inclusive day) are counted in ``report`` and left out; rows with
    quantity <= 0 (returns, corrections) are counted and left out of the purchase signals. At
    ``granularity="category"`` the ``item_id`` becomes the item's category (from a
    ``category`` column or the ``items`` catalogue); at ``"group"`` the item's product group
    (the catalogue's ``group``: the model whose sizes the items are; an item without one is a
    group of its own).
    """
    source = (df.attrs.get("source") if df is not None else None) or source
    if granularity not in GRANULARITIES:
        raise InputError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    report = report if report is not None else InputReport()
    report.rows_in = len(df) if isinstance(df, pd.DataFrame) else 0
    typed = typed_columns(df, TRANSACTION_KINDS, source=source)
    typed["quantity"], typed["amount"] = _float(typed["quantity"]), _float(typed["amount"])
    out = pd.DataFrame(typed)
    if "order_id" in df.columns and df["order_id"].notna().all():
        # only the basket key needs it: integer codes, no string per row
        out["order_id"] = _text_codes(df["order_id"])
    if "category" in df.columns:
        out["category"] = shared_strings(df["category"]).to_numpy()
    if "segment" in df.columns:
        out["segment"] = shared_strings(df["segment"]).to_numpy()
    if as_of is not None:
        keep = out["ts"] < _as_of_end(as_of)
        report.after_as_of = int((~keep).sum())
        out = out[keep]
    positive = out["quantity"] > 0
    report.non_positive_quantity = int((~positive).sum())
    out = out[positive]
    if items is not None and "category" in items.columns:
        cat = out["item_id"].map(items.set_index("item_id")["category"])
        out["category"] = cat.fillna(out["category"]) if "category" in out else cat
    if granularity == "category":
        if "category" not in out.columns or out["category"].isna().any():
            n = len(out) if "category" not in out.columns else int(out["category"].isna().sum())
            raise InputError(
                f"granularity 'category' needs a category for every item ({n} row(s) without)",
                source=source,
                column="category",
            )
        out["item_id"] = out["category"].astype(str)
    if granularity == "group":
        out["item_id"] = item_groups(out["item_id"], items, source=source)
    if "category" not in out.columns:
        out["category"] = pd.NA
    if out.empty:
        raise InputError(
            f"no purchases on or before as_of {as_of} ({report.after_as_of} later row(s), "
            f"{report.non_positive_quantity} with quantity <= 0)",
            source=source,
        )
    # basket: (customer, order) or (customer, day), numbered in order of first appearance
    cust = pd.factorize(out["customer_id"])[0].astype(np.int64)
    if "order_id" in out.columns:
        second = out["order_id"].to_numpy(np.int64)
    else:
        second = out["ts"].to_numpy("datetime64[D]").astype(np.int64)
        second = second - second.min()
    key = cust * (int(second.max()) + 1) + second
    out["basket_id"] = pd.factorize(key)[0].astype(np.int64)
    out = out.drop(columns=[c for c in ("order_id",) if c in out.columns])
    report.rows_used = len(out)
    return out.reset_index(drop=True)


def prepare_events(
    events: pd.DataFrame | None,
    *,
    as_of=None,
    items: pd.DataFrame | None = None,
    granularity: str = "item",
    source: str = "events",
    report: InputReport | None = None,
) -> pd.DataFrame | None:
    """Browsing events ``customer_id, ts, item_id, category, weight`` dated up to ``as_of``.

    Needs ``customer_id``, ``ts`` and at least one of ``item_id``/``sku``/``category``;
    ``event_type`` (view, click, search, cart) sets the weight (cart counts three views).
    """
    source = (events.attrs.get("source") if events is not None else None) or source
    if events is None:
        return None
    if "item_id" not in events.columns and "sku" in events.columns:
        events = events.rename(columns={"sku": "item_id"})
    require_columns(events, ("customer_id", "ts"), source)
    if "item_id" not in events.columns and "category" not in events.columns:
        raise InputError(
            "needs an item_id (or sku) or a category column", source=source, column="item_id"
        )
    report = report if report is not None else InputReport()
    report.rows_in = len(events)
    out = pd.DataFrame(typed_columns(events, EVENT_KINDS, source=source, allow_empty=True))
    item = (
        events["item_id"] if "item_id" in events.columns else pd.Series(pd.NA, index=events.index)
    )
    out["item_id"] = shared_strings(item).to_numpy()
    cat = (
        events["category"] if "category" in events.columns else pd.Series(pd.NA, index=events.index)
    )
    out["category"] = shared_strings(cat).to_numpy()
    if items is not None and "category" in items.columns:
        mapped = out["item_id"].map(items.set_index("item_id")["category"])
        out["category"] = out["category"].fillna(mapped)
    if "event_type" in events.columns:
        codes, kinds = pd.factorize(events["event_type"], use_na_sentinel=False)
        per_kind = pd.Index(kinds).astype(str).str.lower().map(EVENT_WEIGHTS)
        out["weight"] = per_kind.to_numpy(np.float64, na_value=1.0)[codes]
    else:
        out["weight"] = EVENT_WEIGHTS["view"]
    if as_of is not None:
        keep = out["ts"] < _as_of_end(as_of)
        report.after_as_of = int((~keep).sum())
        out = out[keep]
    if granularity == "category":
        out["item_id"] = out["category"]
    if granularity == "group":
        known = out["item_id"].notna()
        out.loc[known, "item_id"] = item_groups(out.loc[known, "item_id"], items, source=source)
    report.rows_used = len(out)
    return out.reset_index(drop=True)


def item_groups(item_ids: pd.Series, items: pd.DataFrame | None, *, source: str) -> pd.Series:
    """The product group of each item id (``items.group``; an item without one, or not in the
    catalogue, is a group of its own), each distinct id mapped once. Without a ``group``
    column in the catalogue an input error naming it."""
    if items is None or "group" not in items.columns:
        raise InputError(
            "granularity 'group' needs a catalogue with a group column (the model whose sizes "
            "the items are)",
            source=source if items is None else (items.attrs.get("source") or "items"),
            column="group",
        )
    book = items.dropna(subset=["group"]).drop_duplicates("item_id", keep="last")
    book = book.set_index(book["item_id"].astype(str))["group"].astype(str)
    codes, uniques = pd.factorize(item_ids.astype(str))
    ids = pd.Index(uniques)
    mapped = pd.Series(ids, index=ids).map(book).fillna(pd.Series(ids, index=ids))
    return pd.Series(mapped.to_numpy(dtype=object)[codes], index=item_ids.index, dtype=object)


def group_catalogue(items: pd.DataFrame) -> pd.DataFrame:
    """The catalogue of the product groups (:func:`prepare_items` rows with ``group``):
    ``item_id`` the group, the ``name``, ``category`` and ``price`` of its first item (by item
    id); items without a group stay items of their own."""
    out = items.sort_values("item_id", kind="stable")
    out = out.assign(item_id=item_groups(out["item_id"], out, source="items"))
    out = out.drop_duplicates("item_id", keep="first")
    return out.drop(columns=[c for c in ("group", "size") if c in out.columns]).reset_index(
        drop=True
    )
