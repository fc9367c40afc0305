"""Customer-level covariates known on ``as_of``, keyed like the transactions mart.

Support tickets, web activity, loyalty membership, the online share of orders and the region,
each aggregated in DuckDB from the ``clean.*`` tables (written by the quality stage) joined to the
customer key of :mod:`cemlib.marts.transactions`.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from cemlib.marts.transactions import (
    _SALES,
    _as_of_bound,
    _columns,
    _key_join,
    source_schema,
)
from cemlib.normalize.places import city_name
from cemlib.warehouse import Warehouse


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
    frames = [
        f
        for f in (_ticket_covariates(wh, mapping, bound), _web_covariates(wh, mapping, bound))
        if f is not None
    ]
    loyalty_parts, region = [], None
    crm = _crm_covariates(wh, mapping, bound)
    if crm is not None:
        loyalty_parts.append(crm[["customer_id", "loyal"]])
        region = crm[["customer_id", "region"]]
    pos = _till_loyalty(wh, mapping, bound)
    if pos is not None:
        loyalty_parts.append(pos)
    chan = _channel_counts(wh, mapping, bound)
    return _assemble_covariates(frames, loyalty_parts, chan, region)


def _ticket_covariates(wh: Warehouse, mapping: str, bound: dt.datetime) -> pd.DataFrame | None:
    """Tickets raised, their mean satisfaction and the tickets rated 1-2, per customer."""
    schema = source_schema(wh, "support_tickets")
    if not schema:
        return None
    cols = _columns(wh, schema, "support_tickets")
    csat = "CAST(t.csat AS DOUBLE)" if "csat" in cols else "NULL"
    ts = "CAST(t.created_at AS TIMESTAMP)" if "created_at" in cols else None
    where = f"WHERE {ts} < ?" if ts else ""
    inner = _mapped(wh, "support_tickets", "ticket_id", mapping, f"{csat} AS csat", where)
    return wh.con.execute(
        f"SELECT customer_id, count(*) AS n_tickets, avg(csat) AS mean_csat, "
        f"count(*) FILTER (WHERE csat <= 2) AS low_csat_tickets FROM ({inner}) "
        "GROUP BY customer_id",
        [bound] if ts else [],
    ).df()


def _web_covariates(wh: Warehouse, mapping: str, bound: dt.datetime) -> pd.DataFrame | None:
    """Web events, distinct active days and the events of the last 90 days, per customer."""
    if not source_schema(wh, "web_events"):
        return None
    inner = _mapped(
        wh,
        "web_events",
        "event_id",
        mapping,
        "CAST(t.ts AS TIMESTAMP) AS ts",
        "WHERE CAST(t.ts AS TIMESTAMP) < ?",
    )
    return wh.con.execute(
        f"SELECT customer_id, count(*) AS web_events, "
        f"count(DISTINCT CAST(ts AS DATE)) AS web_days, "
        f"count(*) FILTER (WHERE ts >= ?) AS web_events_90d FROM ({inner}) "
        "GROUP BY customer_id",
        [bound - dt.timedelta(days=90), bound],
    ).df()


_LOYAL = (
    "CASE WHEN nullif(trim(CAST(t.loyalty_card AS VARCHAR)), '') IS NOT NULL "
    "THEN 1 ELSE 0 END AS loyal"
)


def _crm_covariates(wh: Warehouse, mapping: str, bound: dt.datetime) -> pd.DataFrame | None:
    """``loyal`` (a CRM contact with a loyalty card) and the most frequent region, per
    customer."""
    crm = source_schema(wh, "crm_contacts")
    if not crm:
        return None
    con = wh.con
    cols = _columns(wh, crm, "crm_contacts")
    reg_col = "city" if "city" in cols else ("region" if "region" in cols else None)
    where = "WHERE CAST(t.registered_at AS TIMESTAMP) < ?" if "registered_at" in cols else ""
    params = [bound] if where else []
    sel = [_LOYAL if "loyalty_card" in cols else "0 AS loyal"]
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
        # the most frequent region, a tie to the first name: DuckDB's mode() takes whichever
        # tied value its threads meet first, and a region moved between runs moved the AFT
        # fit's region coefficients and with them every churn score (issue 13, par03b)
        return con.execute(
            f"WITH c AS (SELECT c.customer_id, c.loyal, n.name FROM ({inner}) c "
            "LEFT JOIN _region_names n ON n.raw = c.region), "
            "k AS (SELECT customer_id, name, count(*) AS n FROM c WHERE name IS NOT NULL "
            "GROUP BY customer_id, name), "
            "r AS (SELECT customer_id, first(name ORDER BY n DESC, name) AS region FROM k "
            "GROUP BY customer_id) "
            "SELECT l.customer_id, l.loyal, r.region FROM "
            "(SELECT customer_id, max(loyal) AS loyal FROM c GROUP BY customer_id) l "
            "LEFT JOIN r USING (customer_id)",
            params,
        ).df()
    finally:
        con.unregister("_region_names")


def _till_loyalty(wh: Warehouse, mapping: str, bound: dt.datetime) -> pd.DataFrame | None:
    """``loyal`` per customer: a till receipt scanned with a loyalty card."""
    pos = source_schema(wh, "pos_receipts")
    if not pos or "loyalty_card" not in _columns(wh, pos, "pos_receipts"):
        return None
    inner = _mapped(
        wh,
        "pos_receipts",
        "receipt_id",
        mapping,
        _LOYAL,
        "WHERE CAST(t.purchased_at AS TIMESTAMP) < ?",
    )
    return wh.con.execute(
        f"SELECT customer_id, max(loyal) AS loyal FROM ({inner}) GROUP BY customer_id",
        [bound],
    ).df()


def _channel_counts(wh: Warehouse, mapping: str, bound: dt.datetime) -> list[pd.DataFrame]:
    """Orders per customer and channel (one frame per sales source)."""
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
                wh.con.execute(
                    f"SELECT customer_id, count(*) AS n FROM ({inner}) GROUP BY customer_id",
                    [bound],
                )
                .df()
                .assign(channel=channel)
            )
    return chan


_COVARIATE_COLUMNS = [
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


def _assemble_covariates(
    frames: list[pd.DataFrame],
    loyalty_parts: list[pd.DataFrame],
    chan: list[pd.DataFrame],
    region: pd.DataFrame | None,
) -> pd.DataFrame:
    """One row per customer seen in any part, with zeros / NA / ``"unknown"`` where a part
    has nothing for them."""
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
    return out[_COVARIATE_COLUMNS]
