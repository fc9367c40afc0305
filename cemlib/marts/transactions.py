"""Profile-level marts shared by the churn and next-offer stages.

Both stages need "every purchase of every customer" and "what else we know about the customer"
keyed by the resolved profile. These functions build them in DuckDB from the warehouse's
``clean.*`` tables (written by the quality stage) joined to ``identity.map`` (written by the
identity stage) or, when asked with ``key="person"`` for evaluation, to the synthetic ground
truth ``truth.record_person``. A missing input is an error naming the stage that writes it:
nothing falls back to ``staging.*`` or to the truth.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from cemlib.errors import InputError
from cemlib.frames import fetch_objects
from cemlib.warehouse import Warehouse, table_columns

TRANSACTION_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "ts",
    "order_id",
    "item_id",
    "category",
    "quantity",
    "amount",
    "margin",
    "channel",
)

#: the lines' columns that make a line (also) a return: ``is_return`` (goods brought back) and
#: ``returned`` (a sale that came back: both the sale and its return), set by the collection
#: stage (:mod:`cemlib.collect.returns`)
RETURN_FLAGS: tuple[str, ...] = ("is_return", "returned")

# (header table, id column, timestamp column, lines table, channel label)
_SALES = (
    ("online_orders", "order_id", "ordered_at", "order_lines", "online"),
    ("pos_receipts", "receipt_id", "purchased_at", "receipt_lines", "store"),
)


def _columns(wh: Warehouse, schema: str, table: str) -> list[str]:
    return table_columns(wh.con, schema, table)


def source_schema(wh: Warehouse, table: str) -> str | None:
    """``"clean"`` when the quality stage wrote ``clean.<table>``, None when the source does not
    have that table; an :class:`InputError` when there is no ``clean.*`` table at all (the
    quality stage has not run on this warehouse)."""
    if not wh.tables("clean"):
        raise InputError(
            "no clean.* tables: run the quality stage (01_quality) first", source=str(wh.path)
        )
    return "clean" if wh.has_table("clean", table) else None


#: the table and column mapping each record to its customer, by ``key``
_KEYS = {
    "profile": ("identity", "map", "profile_id"),
    "person": ("truth", "record_person", "person_id"),
}


def key_relation(key: str) -> str:
    """SQL relation ``(source_table, record_id, customer_id)`` mapping a source record to its
    customer: the profile (``identity.map``) or, on a synthetic world, the true person."""
    if key not in _KEYS:
        raise ValueError(f"key must be 'profile' or 'person', not {key!r}")
    schema, table, column = _KEYS[key]
    return (
        "(SELECT source_table, CAST(record_id AS VARCHAR) AS record_id, "
        f"CAST({column} AS VARCHAR) AS customer_id FROM {schema}.{table})"
    )


def has_key(wh: Warehouse, key: str) -> bool:
    """Whether the warehouse holds ``key``'s mapping table (:func:`key_relation`)."""
    return wh.has_table(*_KEYS[key][:2])


def _key_join(wh: Warehouse, key: str) -> tuple[str, str]:
    """SQL relation mapping (source_table, record_id) -> customer_id, and its description."""
    relation = key_relation(key)
    if has_key(wh, key):
        return relation, ".".join(_KEYS[key][:2])
    if key == "profile":
        raise InputError(
            "no identity.map: run the identity stage (02_profiles) first (or pass "
            "key='person' on a synthetic world)",
            source=str(wh.path),
        )
    raise InputError("no truth.record_person (not a synthetic world)", source=str(wh.path))


def _as_of_bound(as_of: str | dt.date | None) -> pd.Timestamp | None:
    if as_of is None:
        return None
    return pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)


def profile_transactions(
    wh: Warehouse,
    as_of: str | dt.date | None = None,
    *,
    key: str = "profile",
    truth: bool = False,
    returns: bool = True,
) -> pd.DataFrame:
    """One row per purchased (or returned) line of every online order and till receipt, keyed by customer.

    Columns:

    - ``customer_id`` (str): ``identity.map.profile_id`` (or ``truth.record_person.person_id``
      with ``key="person"`` / ``truth=True``);
    - ``ts`` (timestamp): ``online_orders.ordered_at`` / ``pos_receipts.purchased_at``;
    - ``order_id`` (str): ``"online_orders:<order_id>"`` or ``"pos_receipts:<receipt_id>"``,
      unique across both sources;
    - ``item_id`` (str): the line's ``sku``; ``category`` (str): ``products.category``;
    - ``quantity`` (float, missing -> 1); ``amount`` (float): quantity x line price (the
      product's list price when the line has none);
    - ``margin`` (float): ``products.margin`` read as a rate of the amount when every product
      margin is within [0, 1], else as a money margin per unit;
    - ``channel`` (str): ``online`` or ``store``.

    A return (a line with ``is_return``, or the return of a line ``returned``, docs/own-data.md
    "Returns") is a row with a **negative** quantity, amount and margin, dated as its receipt
    or order (a ``returned`` line: as the sale); ``returns=False`` leaves them out. A return is no
    purchase: :func:`cemlib.churn.features.purchase_occasions` subtracts it from the purchase
    occasion before it, and the offers' history keeps out the items returned and never kept
    (:func:`returned_items`). Sale lines are every other line, ``returned`` ones included.

    Only rows dated on or before ``as_of`` (inclusive, whole day) are returned when it is given.
    Lines whose record has no customer in the map (anonymous till receipts) are left out; their
    number is in ``df.attrs["unmapped_lines"]``. Rows are sorted by customer, time, order, and
    within an order by item, quantity and amount (the same on every run and engine).
    """
    if truth:
        key = "person"
    parts, unmapped = [], 0
    for sql, params in _line_queries(wh, as_of, key, returns=returns):
        # anonymous lines are only counted; the rest comes with one Python string per
        # distinct text value (items, categories, channels repeat on millions of lines)
        unmapped += wh.con.execute(
            f"SELECT count(*) FROM ({sql}) WHERE customer_id IS NULL", params
        ).fetchone()[0]
        parts.append(
            # the lines of one order in a defined order (item, quantity, amount): a join returns
            # them in no set order, and stage 04's item tables break ties by first appearance
            fetch_objects(
                wh.con,
                f"SELECT * FROM ({sql}) WHERE customer_id IS NOT NULL "
                "ORDER BY order_id, item_id, quantity, amount",
                params,
            )
        )
    if not parts:
        raise InputError(
            "no sales tables (online_orders + order_lines or pos_receipts + receipt_lines) "
            "in clean.*",
            source=str(wh.path),
        )
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    del parts
    out = out.sort_values(["customer_id", "ts", "order_id"], kind="stable", ignore_index=True)
    out = out[list(TRANSACTION_COLUMNS)]
    out.attrs["unmapped_lines"] = unmapped
    out.attrs["key"] = key
    return out


def _margin_is_rate(wh: Warehouse, products: str | None, pcols: list[str]) -> bool:
    """Product margins read as a rate of the amount when every one is within [0, 1]."""
    if "margin" not in pcols:
        return True
    mx = wh.con.execute(f"SELECT max(margin), min(margin) FROM {products}.products").fetchone()
    return mx[0] is None or (float(mx[0]) <= 1.0 and float(mx[1]) >= 0.0)


def _sales_lines_sql(
    wh: Warehouse,
    source: tuple[str, str, str, str, str],
    mapping: str,
    products: str | None,
    pcols: list[str],
    margin_is_rate: bool,
    bound: pd.Timestamp | None,
    kind: str = "sale",
) -> tuple[str, list] | None:
    """The SQL (and its parameters) of one sales source's lines keyed by customer (NULL for
    anonymous ones), or None when the source's tables are absent: its sale lines
    (``kind="sale"``), or its returns as negative lines (``kind="return"``, None when the
    lines carry no return column)."""
    header, id_col, ts_col, lines, channel = source
    hs, ls = source_schema(wh, header), source_schema(wh, lines)
    if hs is None or ls is None:
        return None
    hcols, lcols = _columns(wh, hs, header), _columns(wh, ls, lines)
    for need, cols, tab in ((id_col, hcols, header), (ts_col, hcols, header)):
        if need not in cols:
            raise InputError("missing column", source=f"{hs}.{tab}", column=need)
    for need in (id_col, "sku"):
        if need not in lcols:
            raise InputError("missing column", source=f"{ls}.{lines}", column=need)
    qty = "CAST(l.quantity AS DOUBLE)" if "quantity" in lcols else "1.0"
    qty = f"coalesce({qty}, 1.0)"
    price_l = "CAST(l.price AS DOUBLE)" if "price" in lcols else "NULL"
    price_p = "CAST(p.price AS DOUBLE)" if "price" in pcols else "NULL"
    cat = "CAST(p.category AS VARCHAR)" if "category" in pcols else "NULL"
    if "margin" in pcols:
        margin = (
            f"{qty} * coalesce({price_l}, {price_p}) * CAST(p.margin AS DOUBLE)"
            if margin_is_rate
            else f"{qty} * CAST(p.margin AS DOUBLE)"
        )
    else:
        margin = "NULL"
    pjoin = f"LEFT JOIN {products}.products p ON CAST(p.sku AS VARCHAR) = CAST(l.sku AS VARCHAR)"
    if not products:
        pjoin = "LEFT JOIN (SELECT NULL AS sku) p ON FALSE"
    where = f"WHERE h.{ts_col} IS NOT NULL"
    flags = [f"coalesce(CAST(l.{c} AS BOOLEAN), FALSE)" for c in RETURN_FLAGS if c in lcols]
    sign = ""
    if kind == "return":
        if not flags:
            return None
        where += f" AND ({' OR '.join(flags)})"
        sign = "-"
    elif "is_return" in lcols:
        where += " AND NOT coalesce(CAST(l.is_return AS BOOLEAN), FALSE)"
    params: list = []
    if bound is not None:
        where += f" AND CAST(h.{ts_col} AS TIMESTAMP) < ?"
        params.append(bound.to_pydatetime())
    sql = f"""
        SELECT m.customer_id,
               CAST(h.{ts_col} AS TIMESTAMP) AS ts,
               '{header}:' || CAST(h.{id_col} AS VARCHAR) AS order_id,
               CAST(l.sku AS VARCHAR) AS item_id,
               {cat} AS category,
               {sign}{qty} AS quantity,
               {sign}{qty} * coalesce({price_l}, {price_p}) AS amount,
               {sign}({margin}) AS margin,
               '{channel}' AS channel
        FROM {hs}.{header} h
        JOIN {ls}.{lines} l ON CAST(l.{id_col} AS VARCHAR) = CAST(h.{id_col} AS VARCHAR)
        LEFT JOIN {mapping} m
          ON m.source_table = '{header}' AND m.record_id = CAST(h.{id_col} AS VARCHAR)
        {pjoin}
        {where}
    """
    return sql, params


def _line_queries(
    wh: Warehouse, as_of: str | dt.date | None, key: str, *, returns: bool = False
) -> list[tuple[str, list]]:
    """The SQL and parameters of the purchased lines of each sales source present (online
    orders, till receipts), and with ``returns`` their returns as negative lines:
    :func:`profile_transactions` fetches them, the monitor aggregates the sales
    (:func:`sales_lines_sql`)."""
    mapping, _ = _key_join(wh, key)
    bound = _as_of_bound(as_of)
    products = source_schema(wh, "products")
    pcols = _columns(wh, products, "products") if products else []
    rate = _margin_is_rate(wh, products, pcols)
    kinds = ("sale", "return") if returns else ("sale",)
    queries = (
        _sales_lines_sql(wh, s, mapping, products, pcols, rate, bound, kind)
        for s in _SALES
        for kind in kinds
    )
    return [q for q in queries if q is not None]


def unattributed_orders(
    wh: Warehouse,
    start: str | dt.date,
    end: str | dt.date,
    *,
    key: str = "profile",
) -> int:
    """Online orders and till receipts dated from ``start`` to ``end`` (both inclusive, whole
    days) whose record has no customer under ``key`` (an anonymous receipt, a record the
    identity stage left unattached): purchases no customer's history or future can hold."""
    mapping, _ = _key_join(wh, key)
    lo = pd.Timestamp(start).normalize().to_pydatetime()
    hi = _as_of_bound(end).to_pydatetime()
    total = 0
    for header, id_col, ts_col, _lines, _channel in _SALES:
        hs = source_schema(wh, header)
        if hs is None:
            continue
        no_return = (
            " AND NOT coalesce(CAST(h.is_return AS BOOLEAN), FALSE)"
            if "is_return" in _columns(wh, hs, header)
            else ""
        )
        total += int(
            wh.con.execute(
                f"""SELECT count(*) FROM {hs}.{header} h
                    LEFT JOIN {mapping} m
                      ON m.source_table = '{header}' AND m.record_id = CAST(h.{id_col} AS VARCHAR)
                    WHERE m.customer_id IS NULL AND h.{ts_col} IS NOT NULL{no_return}
                      AND CAST(h.{ts_col} AS TIMESTAMP) >= ? AND CAST(h.{ts_col} AS TIMESTAMP) < ?""",
                [lo, hi],
            ).fetchone()[0]
        )
    return total


def sales_lines_sql(
    wh: Warehouse, as_of: str | dt.date | None = None, *, key: str = "profile"
) -> tuple[str, list]:
    """The SQL (and its parameters) of the lines :func:`profile_transactions` returns, for
    aggregating in DuckDB instead of fetching them: the same columns, anonymous lines included
    with ``customer_id`` NULL."""
    parts, params = [], []
    for sql, query_params in _line_queries(wh, as_of, key):
        parts.append(f"({sql})")
        params += query_params
    if not parts:
        raise InputError("no sales tables in clean.*", source=str(wh.path))
    return " UNION ALL ".join(parts), params


def sales_headers_sql(
    wh: Warehouse, as_of: str | dt.date | None = None, *, key: str = "profile"
) -> tuple[str, list]:
    """The SQL (and its parameters) of every dated online order and till receipt of
    ``clean.*`` (``customer_id`` NULL when attached to no customer), ``ts`` and ``order_id``
    as in :func:`profile_transactions` — a purchase whether or not a line of it passed the
    quality checks; a return receipt or order (``is_return``) is none."""
    mapping, _ = _key_join(wh, key)
    bound = _as_of_bound(as_of)
    parts, params = [], []
    for header, id_col, ts_col, _lines, _channel in _SALES:
        hs = source_schema(wh, header)
        if hs is None:
            continue
        where = f"h.{ts_col} IS NOT NULL"
        if "is_return" in _columns(wh, hs, header):  # a return receipt is no purchase
            where += " AND NOT coalesce(CAST(h.is_return AS BOOLEAN), FALSE)"
        if bound is not None:
            where += f" AND CAST(h.{ts_col} AS TIMESTAMP) < ?"
            params.append(bound.to_pydatetime())
        parts.append(
            f"""(SELECT m.customer_id, CAST(h.{ts_col} AS TIMESTAMP) AS ts,
                        '{header}:' || CAST(h.{id_col} AS VARCHAR) AS order_id
                 FROM {hs}.{header} h LEFT JOIN {mapping} m
                   ON m.source_table = '{header}' AND m.record_id = CAST(h.{id_col} AS VARCHAR)
                 WHERE {where})"""
        )
    if not parts:
        raise InputError("no sales tables in clean.*", source=str(wh.path))
    return " UNION ALL ".join(parts), params


def returned_items(transactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split :func:`profile_transactions` (returns as negative rows) into the purchases the
    offers learn from and the items each customer returned and never kept.

    Returns ``(purchases, never_kept)``: ``purchases`` are the sale rows, without those of a
    ``(customer_id, item_id)`` whose returned quantity is at least its bought quantity (a size
    sent back is no purchase, neither in the history nor as a label); ``never_kept`` is those
    pairs (``customer_id, item_id``), which no offer names. A customer who kept some of an item
    (bought two, returned one) keeps its purchases. Without return rows: ``(transactions``,
    an empty frame).
    """
    empty = pd.DataFrame(
        {"customer_id": pd.Series(dtype=object), "item_id": pd.Series(dtype=object)}
    )
    if transactions.empty:
        return transactions, empty
    neg = transactions["quantity"].lt(0) | transactions["amount"].lt(0)
    if not neg.any():
        return transactions, empty
    sales = transactions[~neg.to_numpy()]
    back = transactions[neg.to_numpy()]
    bought = sales.groupby(["customer_id", "item_id"], sort=False)["quantity"].sum()
    sent = back.groupby(["customer_id", "item_id"], sort=False)["quantity"].sum().abs()
    net = sent.sub(bought.reindex(sent.index).fillna(0.0))
    pairs = sent.index[net.to_numpy() >= 0]
    never_kept = pairs.to_frame(index=False)
    key = pd.MultiIndex.from_arrays([sales["customer_id"], sales["item_id"]])
    purchases = sales[~key.isin(pairs)].reset_index(drop=True)
    purchases.attrs = dict(transactions.attrs)
    return purchases, never_kept
