"""Profile-level marts shared by the churn and next-offer stages.

Both stages need "every purchase of every customer" and "what else we know about the customer"
keyed by the resolved profile. These functions build them in DuckDB from the warehouse:
``clean.*`` tables when the quality stage has run (else ``staging.*``), joined to
``identity.map`` (or, for tests and evaluation, to the synthetic ground truth
``truth.record_person``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from cemlib.errors import InputError
from cemlib.frames import fetch_objects
from cemlib.normalize.places import city_name
from cemlib.warehouse import Warehouse

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

# (header table, id column, timestamp column, lines table, channel label)
_SALES = (
    ("online_orders", "order_id", "ordered_at", "order_lines", "online"),
    ("pos_receipts", "receipt_id", "purchased_at", "receipt_lines", "store"),
)


def _columns(wh: Warehouse, schema: str, table: str) -> list[str]:
    rows = wh.con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def source_schema(wh: Warehouse, table: str) -> str | None:
    """``clean`` when the quality stage wrote ``table``, else ``staging``, else None."""
    for schema in ("clean", "staging"):
        if wh.has_table(schema, table):
            return schema
    return None


def customer_key(wh: Warehouse, use_truth_profiles: bool = False) -> str:
    """``"profile"`` (resolved by the identity stage) when ``identity.map`` exists and the truth
    is not asked for; ``"person"`` (the synthetic truth's mapping) otherwise."""
    if use_truth_profiles or not wh.has_table("identity", "map"):
        return "person"
    return "profile"


def _key_join(wh: Warehouse, key: str) -> tuple[str, str]:
    """SQL relation mapping (source_table, record_id) -> customer_id, and its description."""
    if key == "profile":
        if not wh.has_table("identity", "map"):
            raise InputError(
                "no identity.map: run the identity stage first (or pass key='person' on a "
                "synthetic world)",
                source=str(wh.path),
            )
        return (
            "(SELECT source_table, CAST(record_id AS VARCHAR) AS record_id, "
            "CAST(profile_id AS VARCHAR) AS customer_id FROM identity.map)",
            "identity.map",
        )
    if key == "person":
        if not wh.has_table("truth", "record_person"):
            raise InputError("no truth.record_person (not a synthetic world)", source=str(wh.path))
        return (
            "(SELECT source_table, CAST(record_id AS VARCHAR) AS record_id, "
            "CAST(person_id AS VARCHAR) AS customer_id FROM truth.record_person)",
            "truth.record_person",
        )
    raise ValueError(f"key must be 'profile' or 'person', not {key!r}")


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
) -> pd.DataFrame:
    """One row per purchased line of every online order and till receipt, keyed by customer.

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

    Only rows dated on or before ``as_of`` (inclusive, whole day) are returned when it is given.
    Lines whose record has no customer in the map (anonymous till receipts) are left out; their
    number is in ``df.attrs["unmapped_lines"]``. Rows are sorted by customer, time, order.
    """
    if truth:
        key = "person"
    mapping, _ = _key_join(wh, key)
    bound = _as_of_bound(as_of)
    products = source_schema(wh, "products")
    pcols = _columns(wh, products, "products") if products else []
    margin_is_rate = True
    if "margin" in pcols:
        mx = wh.con.execute(f"SELECT max(margin), min(margin) FROM {products}.products").fetchone()
        margin_is_rate = mx[0] is None or (float(mx[0]) <= 1.0 and float(mx[1]) >= 0.0)
    parts, unmapped = [], 0
    for header, id_col, ts_col, lines, channel in _SALES:
        hs, ls = source_schema(wh, header), source_schema(wh, lines)
        if hs is None or ls is None:
            continue
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
        pjoin = (
            f"LEFT JOIN {products}.products p ON CAST(p.sku AS VARCHAR) = CAST(l.sku AS VARCHAR)"
        )
        if not products:
            pjoin = "LEFT JOIN (SELECT NULL AS sku) p ON FALSE"
        where = f"WHERE h.{ts_col} IS NOT NULL"
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
                   {qty} AS quantity,
                   {qty} * coalesce({price_l}, {price_p}) AS amount,
                   {margin} AS margin,
                   '{channel}' AS channel
            FROM {hs}.{header} h
            JOIN {ls}.{lines} l ON CAST(l.{id_col} AS VARCHAR) = CAST(h.{id_col} AS VARCHAR)
            LEFT JOIN {mapping} m
              ON m.source_table = '{header}' AND m.record_id = CAST(h.{id_col} AS VARCHAR)
            {pjoin}
            {where}
        """
        # anonymous lines are only counted; the rest comes with one Python string per
        # distinct text value (items, categories, channels repeat on millions of lines)
        unmapped += wh.con.execute(
            f"SELECT count(*) FROM ({sql}) WHERE customer_id IS NULL", params
        ).fetchone()[0]
        parts.append(
            fetch_objects(wh.con, f"SELECT * FROM ({sql}) WHERE customer_id IS NOT NULL", params)
        )
    if not parts:
        raise InputError(
            "no sales tables (online_orders + order_lines or pos_receipts + receipt_lines) "
            "in clean.* or staging.*",
            source=str(wh.path),
        )
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    del parts
    out = out.sort_values(["customer_id", "ts", "order_id"], kind="stable", ignore_index=True)
    out = out[list(TRANSACTION_COLUMNS)]
    out.attrs["unmapped_lines"] = unmapped
    out.attrs["key"] = key
    return out


def _mapped(wh: Warehouse, table: str, id_col: str, mapping: str, select: str, where: str) -> str:
    schema = source_schema(wh, table)
    return f"""
        SELECT m.customer_id, {select}
        FROM {schema}.{table} t
        JOIN {mapping} m
          ON m.source_table = '{table}' AND m.record_id = CAST(t.{id_col} AS VARCHAR)
        {where}
    """


def profile_covariates(
    wh: Warehouse,
    as_of: str | dt.date,
    *,
    key: str = "profile",
    truth: bool = False,
) -> pd.DataFrame:
    """Customer-level covariates known on ``as_of`` (inclusive), one row per customer.

    Columns (missing sources give zeros / NA, never an error):

    - ``customer_id``;
    - ``n_tickets`` support tickets raised, ``mean_csat`` their mean satisfaction (NA when none
      rated), ``low_csat_tickets`` tickets rated 1-2;
    - ``web_events``, ``web_days`` (distinct active days), ``web_events_90d`` events in the
      last 90 days;
    - ``loyalty_member`` 1 when a CRM contact of the customer carries a loyalty card or a till
      receipt was scanned with one, else 0;
    - ``online_share`` share of the customer's orders placed online (NA without orders);
    - ``region`` most frequent CRM ``city`` (or ``region``) of the customer, named without its
      settlement type (``г. Москва`` -> ``Москва``), ``"unknown"`` if none.
    """
    if truth:
        key = "person"
    mapping, _ = _key_join(wh, key)
    bound = _as_of_bound(as_of).to_pydatetime()
    start90 = bound - dt.timedelta(days=90)
    con = wh.con
    frames: list[pd.DataFrame] = []

    if source_schema(wh, "support_tickets"):
        cols = _columns(wh, source_schema(wh, "support_tickets"), "support_tickets")
        csat = "CAST(t.csat AS DOUBLE)" if "csat" in cols else "NULL"
        ts = "CAST(t.created_at AS TIMESTAMP)" if "created_at" in cols else None
        where = f"WHERE {ts} < ?" if ts else ""
        inner = _mapped(wh, "support_tickets", "ticket_id", mapping, f"{csat} AS csat", where)
        frames.append(
            con.execute(
                f"SELECT customer_id, count(*) AS n_tickets, avg(csat) AS mean_csat, "
                f"count(*) FILTER (WHERE csat <= 2) AS low_csat_tickets FROM ({inner}) "
                "GROUP BY customer_id",
                [bound] if ts else [],
            ).df()
        )
    if source_schema(wh, "web_events"):
        inner = _mapped(
            wh,
            "web_events",
            "event_id",
            mapping,
            "CAST(t.ts AS TIMESTAMP) AS ts",
            "WHERE CAST(t.ts AS TIMESTAMP) < ?",
        )
        frames.append(
            con.execute(
                f"SELECT customer_id, count(*) AS web_events, "
                f"count(DISTINCT CAST(ts AS DATE)) AS web_days, "
                f"count(*) FILTER (WHERE ts >= ?) AS web_events_90d FROM ({inner}) "
                "GROUP BY customer_id",
                [start90, bound],
            ).df()
        )
    loyalty_parts, region = [], None
    crm = source_schema(wh, "crm_contacts")
    if crm:
        cols = _columns(wh, crm, "crm_contacts")
        reg_col = "city" if "city" in cols else ("region" if "region" in cols else None)
        where = "WHERE CAST(t.registered_at AS TIMESTAMP) < ?" if "registered_at" in cols else ""
        params = [bound] if where else []
        sel = []
        if "loyalty_card" in cols:
            sel.append(
                "CASE WHEN nullif(trim(CAST(t.loyalty_card AS VARCHAR)), '') IS NOT NULL "
                "THEN 1 ELSE 0 END AS loyal"
            )
        else:
            sel.append("0 AS loyal")
        sel.append(f"CAST(t.{reg_col} AS VARCHAR) AS region" if reg_col else "NULL AS region")
        inner = _mapped(wh, "crm_contacts", "contact_id", mapping, ", ".join(sel), where)
        # "г. Москва" and "Москва" are one region: each distinct spelling is named once
        names = pd.DataFrame({"raw": pd.Series(dtype=object)})
        if reg_col:
            names = con.execute(
                f"SELECT DISTINCT CAST({reg_col} AS VARCHAR) AS raw FROM {crm}.crm_contacts "
                f"WHERE {reg_col} IS NOT NULL"
            ).df()
        names["name"] = city_name(names["raw"]).astype(object)
        con.register("_region_names", names)
        try:
            crm_df = con.execute(
                f"SELECT c.customer_id, max(c.loyal) AS loyal, mode(n.name) AS region "
                f"FROM ({inner}) c LEFT JOIN _region_names n ON n.raw = c.region "
                "GROUP BY c.customer_id",
                params,
            ).df()
        finally:
            con.unregister("_region_names")
        loyalty_parts.append(crm_df[["customer_id", "loyal"]])
        region = crm_df[["customer_id", "region"]]
    pos = source_schema(wh, "pos_receipts")
    if pos and "loyalty_card" in _columns(wh, pos, "pos_receipts"):
        inner = _mapped(
            wh,
            "pos_receipts",
            "receipt_id",
            mapping,
            "CASE WHEN nullif(trim(CAST(t.loyalty_card AS VARCHAR)), '') IS NOT NULL "
            "THEN 1 ELSE 0 END AS loyal",
            "WHERE CAST(t.purchased_at AS TIMESTAMP) < ?",
        )
        loyalty_parts.append(
            con.execute(
                f"SELECT customer_id, max(loyal) AS loyal FROM ({inner}) GROUP BY customer_id",
                [bound],
            ).df()
        )
    chan = []
    for header, id_col, ts_col, _lines, channel in _SALES:
        if source_schema(wh, header):
            inner = _mapped(
                wh,
                header,
                id_col,
                mapping,
                f"'{channel}' AS channel",
                f"WHERE CAST(t.{ts_col} AS TIMESTAMP) < ?",
            )
            chan.append(
                con.execute(
                    f"SELECT customer_id, count(*) AS n FROM ({inner}) GROUP BY customer_id",
                    [bound],
                )
                .df()
                .assign(channel=channel)
            )

    ids: set = set()
    for f in [*frames, *loyalty_parts, *chan] + ([region] if region is not None else []):
        ids.update(f["customer_id"].tolist())
    out = pd.DataFrame({"customer_id": sorted(ids, key=str)})
    for f in frames:
        out = out.merge(f, on="customer_id", how="left")
    for col in ("n_tickets", "low_csat_tickets", "web_events", "web_days", "web_events_90d"):
        out[col] = out[col].fillna(0).astype("int64") if col in out else 0
    if "mean_csat" not in out:
        out["mean_csat"] = float("nan")
    if loyalty_parts:
        loyal = pd.concat(loyalty_parts).groupby("customer_id")["loyal"].max()
        out["loyalty_member"] = out["customer_id"].map(loyal).fillna(0).astype("int64")
    else:
        out["loyalty_member"] = 0
    if chan:
        c = pd.concat(chan).pivot_table(
            index="customer_id", columns="channel", values="n", aggfunc="sum", fill_value=0
        )
        online = c["online"] if "online" in c.columns else 0.0
        share = online / c.sum(axis=1)
        out["online_share"] = out["customer_id"].map(share).astype(float)
    else:
        out["online_share"] = float("nan")
    if region is not None:
        out["region"] = out["customer_id"].map(region.set_index("customer_id")["region"])
    else:
        out["region"] = None
    out["region"] = out["region"].fillna("unknown").astype(str)
    cols = [
        "customer_id",
        "n_tickets",
        "mean_csat",
        "low_csat_tickets",
        "web_events",
        "web_days",
        "web_events_90d",
        "loyalty_member",
        "online_share",
        "region",
    ]
    return out[cols]


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
        total += int(
            wh.con.execute(
                f"""SELECT count(*) FROM {hs}.{header} h
                    LEFT JOIN {mapping} m
                      ON m.source_table = '{header}' AND m.record_id = CAST(h.{id_col} AS VARCHAR)
                    WHERE m.customer_id IS NULL AND h.{ts_col} IS NOT NULL
                      AND CAST(h.{ts_col} AS TIMESTAMP) >= ? AND CAST(h.{ts_col} AS TIMESTAMP) < ?""",
                [lo, hi],
            ).fetchone()[0]
        )
    return total
