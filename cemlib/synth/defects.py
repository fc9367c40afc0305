"""Quality defects: the only invalid values of the world, each recorded in ``truth.defects``.

Every defect kind hits a fixed share (``DefectRates``) of the rows of the tables it applies to;
a row gets at most one defect, and the defect table names the table, the 0-based row position
in the written file, the record id, the column, the kind and the bad value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cemlib.synth.behaviour import Timeline
from cemlib.synth.config import DefectRates
from cemlib.synth.memory import release
from cemlib.synth.text import ts_text

#: which defect kinds hit which (table, column)
PLAN: dict[str, tuple[tuple[str, str], ...]] = {
    "crm_contacts": (
        ("malformed_phone", "phone"),
        ("malformed_email", "email"),
        ("unparseable_date", "birth_date"),
        ("unparseable_date", "registered_at"),
        ("ts_after_as_of", "registered_at"),
        ("ts_before_start", "registered_at"),
    ),
    "online_orders": (
        ("malformed_phone", "phone"),
        ("malformed_email", "email"),
        ("unparseable_date", "ordered_at"),
        ("ts_after_as_of", "ordered_at"),
        ("ts_before_start", "ordered_at"),
    ),
    "pos_receipts": (
        ("duplicate_receipt_id", "receipt_id"),
        ("malformed_phone", "phone"),
        ("unparseable_date", "purchased_at"),
        ("ts_after_as_of", "purchased_at"),
        ("ts_before_start", "purchased_at"),
    ),
    "order_lines": (
        ("nonpositive_quantity", "quantity"),
        ("nonpositive_price", "price"),
        ("orphan_line", "order_id"),
        ("unknown_sku", "sku"),
    ),
    "receipt_lines": (
        ("nonpositive_quantity", "quantity"),
        ("nonpositive_price", "price"),
        ("orphan_line", "receipt_id"),
        ("unknown_sku", "sku"),
    ),
    "web_events": (
        ("malformed_email", "email"),
        ("unparseable_date", "ts"),
        ("ts_after_as_of", "ts"),
        ("ts_before_start", "ts"),
    ),
    "support_tickets": (
        ("malformed_phone", "phone"),
        ("malformed_email", "email"),
        ("unparseable_date", "created_at"),
        ("ts_after_as_of", "created_at"),
        ("ts_before_start", "created_at"),
    ),
}
ID_COLUMN = {
    "crm_contacts": "contact_id",
    "online_orders": "order_id",
    "pos_receipts": "receipt_id",
    "order_lines": "line_id",
    "receipt_lines": "line_id",
    "web_events": "event_id",
    "support_tickets": "ticket_id",
}
_BAD_DATES = np.array(
    [
        "31.02.2024 25:61",
        "2024-13-45 10:00:00",
        "не указано",
        "#VALUE!",
        "0000-00-00 00:00:00",
        "32/13/2023",
        "n/a",
    ]
)
_BAD_BIRTH = np.array(
    ["31.02.1985", "1985-13-45", "не указано", "00.00.0000", "#VALUE!", "19855-01-01"]
)
_PRE_HISTORY = np.array(["1970-01-01 00:00:00", "1900-01-01 00:00:00", "1970-01-01 03:00:00"])
_CYR_LETTERS = np.array(["О", "З", "б", "Ч"])


def malformed_phone(rng: np.random.Generator, values: list[str | None]) -> list[str]:
    """Too few digits, or Cyrillic letters typed for digits: never a valid number."""
    out = []
    for v in values:
        digits = "".join(ch for ch in (v or "") if ch.isdigit()) or "9991234567"
        kind = rng.integers(3)
        if kind == 0:
            out.append(digits[: int(rng.integers(4, 8))])
        elif kind == 1:
            i = int(rng.integers(2, max(3, len(digits) - 2)))
            out.append(digits[:i] + "".join(rng.choice(_CYR_LETTERS, 3)) + digits[i + 3 :])
        else:
            out.append(rng.choice(["нет", "тел. уточнить", "-", "000"]))
    return out


def malformed_email(rng: np.random.Generator, values: list[str | None]) -> list[str]:
    """No ``@``, a space inside, or a doubled ``@``."""
    out = []
    for v in values:
        v = v or "ivanov@mail.ru"
        local, _, domain = v.partition("@")
        kind = rng.integers(3)
        if kind == 0:
            out.append(f"{local}.{domain}")
        elif kind == 1:
            i = int(rng.integers(1, max(2, len(local))))
            out.append(f"{local[:i]} {local[i:]}@{domain}")
        else:
            out.append(f"{local}@@{domain}")
    return out


def _fmt(ts: np.ndarray) -> list[str]:
    return ts_text(ts).to_pylist()


def _count(rate: float, n: int) -> int:
    return 0 if n == 0 else max(1, int(round(rate * n)))


def inject_defects(
    sources: dict[str, pd.DataFrame],
    rng: np.random.Generator,
    rates: DefectRates,
    tl: Timeline,
    keep: dict[str, int] | None = None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Inject the defects into ``sources`` (in place, so no table exists twice) and return the
    tables and the ``defects`` truth table.

    ``keep`` cuts each table to its first rows once the defects are in (the defects of a whole
    world, then the part of it up to ``as_of``: a row keeps its defect in every cut); a
    duplicated receipt stays next to its original.
    """
    out = sources
    records: list[tuple] = []
    for table, plan in PLAN.items():
        df = out[table]
        kept = None if keep is None else keep[table]
        taken = np.zeros(len(df), dtype=bool)
        if table == "pos_receipts":
            df, kept, taken = _duplicate_receipts(df, rng, rates, kept, records)
            out[table] = df
        _value_defects(table, plan, df, rng, rates, tl, taken, records)
        if kept is not None and kept < len(df):
            df = df.iloc[:kept].reset_index(drop=True)
            records = [r for r in records if r[0] != table or r[1] < kept]
        out[table] = df
        release()
    return out, _defect_table(records)


def _duplicate_receipts(df, rng, rates: DefectRates, kept, records: list):
    """Receipts exported twice, each copy next to its original: the table, the rows of it
    kept in the cut, and the rows no other defect may touch (copies and originals)."""
    n = len(df)
    k = _count(rates.duplicate_receipt_id, n)
    src_rows = np.sort(rng.choice(n, size=k, replace=False))
    order = np.concatenate([np.arange(n), src_rows])
    key = np.concatenate([np.arange(n) * 2, src_rows * 2 + 1])
    order = order[np.argsort(key, kind="stable")]
    df = df.iloc[order].reset_index(drop=True)
    if kept is not None:
        kept = int(np.searchsorted(order, kept, side="left"))
    is_copy = np.concatenate([[False], order[1:] == order[:-1]])
    rows = np.flatnonzero(is_copy)
    for r in rows:
        rid = df.at[r, "receipt_id"]
        records.append(("pos_receipts", int(r), rid, "receipt_id", "duplicate_receipt_id", rid))
    taken = is_copy.copy()
    taken[rows - 1] = True  # the original stays clean too
    return df, kept, taken


def _value_defects(table, plan, df, rng, rates: DefectRates, tl: Timeline, taken, records):
    """The value defects of ``plan`` in ``df`` (in place), at most one per row, recorded."""
    n = len(df)
    pending: dict[str, list] = {}
    for kind, column in plan:
        if kind == "duplicate_receipt_id":
            continue
        rate = getattr(rates, kind)
        if kind == "unparseable_date" and table == "crm_contacts":
            rate = rate / 2  # split over the two date columns
        col = df[column]
        eligible = ~taken
        if kind in ("malformed_phone", "malformed_email"):
            eligible &= col.notna().to_numpy()
        cand = np.flatnonzero(eligible)
        k = min(len(cand), _count(rate, n))
        rows = np.sort(rng.choice(cand, size=k, replace=False)) if k else np.empty(0, int)
        if not len(rows):
            continue
        taken[rows] = True
        new = _bad_values(kind, column, col, rows, rng, tl)
        pending.setdefault(column, []).append((rows, new))
        rids = df[ID_COLUMN[table]].iloc[rows].tolist()
        for r, rid, v in zip(rows, rids, new, strict=True):
            records.append((table, int(r), rid, column, kind, str(v)))
    for column, parts in pending.items():
        rows = np.concatenate([r for r, _ in parts])
        vals = [v for _, vs in parts for v in vs]
        order = np.argsort(rows, kind="stable")
        df[column] = _replace(df[column], rows[order], [vals[i] for i in order])


def _bad_values(kind: str, column: str, col: pd.Series, rows, rng, tl: Timeline) -> list:
    """The defective values of ``kind`` written into ``rows`` of ``col``."""
    k = len(rows)
    old = col.iloc[rows].tolist()
    if kind == "malformed_phone":
        return malformed_phone(rng, old)
    if kind == "malformed_email":
        return malformed_email(rng, old)
    if kind == "unparseable_date":
        return list(rng.choice(_BAD_BIRTH if column == "birth_date" else _BAD_DATES, k))
    if kind == "ts_after_as_of":
        days = rng.integers(tl.horizon_days + 30, tl.horizon_days + 3000, k)
        secs = rng.integers(0, 86400, k)
        base = np.datetime64(tl.as_of.date(), "s")
        return _fmt(base + (days * 86400 + secs).astype("timedelta64[s]"))
    if kind == "ts_before_start":
        pre = rng.random(k) < 0.6
        days = rng.integers(400, 20000, k)
        base = np.datetime64(tl.start.date(), "s")
        far = _fmt(base - (days * 86400).astype("timedelta64[s]"))
        return [str(rng.choice(_PRE_HISTORY)) if p else f for p, f in zip(pre, far, strict=True)]
    if kind == "nonpositive_quantity":
        return list(rng.choice([0, -1, -2], k))
    if kind == "nonpositive_price":
        # a negative price (a price of zero is a free item, kept with a warning); the draw
        # that once chose zero for half of them is kept, so the rest of the world is unchanged
        prices = col.iloc[rows].to_numpy()
        rng.random(k)
        return list(-np.abs(prices))
    if kind == "orphan_line":
        prefix = "O" if column == "order_id" else "R"
        return [f"{prefix}9{int(x):010d}" for x in rng.integers(0, 10**10, k)]
    if kind == "unknown_sku":
        return [f"SKU9{int(x):05d}" for x in rng.integers(0, 10**5, k)]
    raise ValueError(kind)  # pragma: no cover


def _defect_table(records: list[tuple]) -> pd.DataFrame:
    """``truth.defects``: one row per injected defect, by table and row."""
    defects = pd.DataFrame(
        records, columns=["table", "source_row", "record_id", "column", "defect", "value"]
    )
    defects = defects.sort_values(["table", "source_row"], kind="stable", ignore_index=True)
    defects["source_row"] = defects["source_row"].astype("int64")
    for c in ("table", "record_id", "column", "defect", "value"):
        defects[c] = defects[c].astype(pd.StringDtype("pyarrow"))
    return defects


def _replace(col: pd.Series, rows: np.ndarray, new: list) -> pd.Series:
    """``col`` with the values at positions ``rows`` (ascending) replaced by ``new``."""
    if isinstance(col.dtype, pd.StringDtype):
        arr = pa.array(col.array)
        chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
        rep = pa.array([str(v) for v in new], type=arr.type)
        out, start, done = [], 0, 0
        for chunk in chunks:  # chunk by chunk: no full copy of a big column at once
            stop = start + len(chunk)
            k = int(np.searchsorted(rows, stop) - np.searchsorted(rows, start))
            if k:
                mask = np.zeros(len(chunk), dtype=bool)
                mask[rows[done : done + k] - start] = True
                chunk = pc.replace_with_mask(chunk, pa.array(mask), rep.slice(done, k))
                done += k
            out.append(chunk)
            start = stop
        res = pa.chunked_array(out, type=arr.type)
        return pd.Series(pd.arrays.ArrowStringArray(res), dtype=col.dtype)
    if isinstance(col.dtype, pd.CategoricalDtype):
        extra = sorted({str(v) for v in new} - set(col.cat.categories))
        out = col.cat.add_categories(extra) if extra else col.copy()
        out.iloc[rows] = [str(v) for v in new]
        return out
    values = col.to_numpy().copy()
    values[rows] = new
    return pd.Series(values.astype(col.dtype), index=col.index)
