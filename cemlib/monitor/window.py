"""The purchases of the grading window, aggregated in DuckDB.

Grading needs, per profile of today's ``identity.map``, the purchase occasions and revenue
dated after the previous ``as_of`` and on or before this one, the items bought in that window,
and the personal-then-popular baseline made from the purchases before it. All are aggregates
over the sales headers and lines (:func:`cemlib.marts.sales_headers_sql`,
:func:`cemlib.marts.sales_lines_sql`, the lines stage 03 and 04 read), so the monitor fetches one row per profile or per offer, never one per purchased line:
its cost grows with the number of profiles, not with the length of their histories.
"""

from __future__ import annotations

import pandas as pd

from cemlib.marts import sales_headers_sql, sales_lines_sql
from cemlib.warehouse import Warehouse


def _bounds(since: str, until: str) -> tuple:
    lo = pd.Timestamp(since).normalize() + pd.Timedelta(days=1)
    hi = pd.Timestamp(until).normalize() + pd.Timedelta(days=1)
    return lo.to_pydatetime(), hi.to_pydatetime()


def last_purchase(wh: Warehouse, until: str) -> pd.Timestamp | None:
    """The latest purchase dated on or before ``until`` (None without any)."""
    sql, params = sales_headers_sql(wh, until)
    value = wh.con.execute(f"SELECT max(ts) FROM ({sql})", params).fetchone()[0]
    return None if value is None else pd.Timestamp(value)


def window_outcomes(wh: Warehouse, since: str, until: str) -> pd.DataFrame:
    """Per profile: purchase occasions (customer-days with an order or receipt, whether or not
    a line of it passed the quality checks) and revenue (of the lines that did) dated after
    ``since`` and on or before ``until`` (index ``customer_id``; purchases of no profile left
    out)."""
    lo, _ = _bounds(since, until)
    heads, hp = sales_headers_sql(wh, until)
    lines, lp = sales_lines_sql(wh, until)
    out = wh.con.execute(
        f"""WITH d AS (SELECT customer_id, count(DISTINCT CAST(ts AS DATE)) AS purchases
                       FROM ({heads}) WHERE customer_id IS NOT NULL AND ts >= ? GROUP BY 1),
                 r AS (SELECT customer_id, sum(amount) AS revenue
                       FROM ({lines}) WHERE customer_id IS NOT NULL AND ts >= ? GROUP BY 1)
            SELECT customer_id, purchases, coalesce(revenue, 0.0) AS revenue
            FROM d LEFT JOIN r USING (customer_id)""",
        [*hp, lo, *lp, lo],
    ).df()
    out["customer_id"] = out["customer_id"].astype(str)
    return out.set_index("customer_id").astype({"purchases": float, "revenue": float})


def window_items(wh: Warehouse, since: str, until: str, customers: pd.Index) -> pd.DataFrame:
    """The distinct (customer_id, item_id) bought in the window by ``customers``."""
    sql, params = sales_lines_sql(wh, until)
    lo, _ = _bounds(since, until)
    wh.con.register("_monitor_customers", pd.DataFrame({"customer_id": customers.astype(str)}))
    try:
        return wh.con.execute(
            f"""SELECT DISTINCT s.customer_id, s.item_id FROM ({sql}) s
                JOIN _monitor_customers c USING (customer_id) WHERE s.ts >= ?""",
            [*params, lo],
        ).df()
    finally:
        wh.con.unregister("_monitor_customers")


def baseline_offers_sql(wh: Warehouse, since: str, customers: pd.Index, k: int) -> pd.DataFrame:
    """Personal-then-popular offers for ``customers`` from the purchases dated on or before
    ``since``, computed in DuckDB with the ties of
    :func:`cemlib.marts.popularity.personal_then_popular`: own items by baskets (then most
    recent, then item id), filled with the items most customers bought (then most baskets,
    then item id). Columns customer_id, rank, item_id."""
    sql, params = sales_lines_sql(wh, since)
    wh.con.register("_monitor_offered", pd.DataFrame({"customer_id": customers.astype(str)}))
    try:
        return wh.con.execute(
            f"""WITH h AS (SELECT customer_id, item_id, order_id, ts FROM ({sql})
                           WHERE customer_id IS NOT NULL),
                popular AS (
                    SELECT item_id, row_number() OVER (ORDER BY count(DISTINCT customer_id) DESC,
                           count(DISTINCT order_id) DESC, item_id) AS r
                    FROM h GROUP BY item_id QUALIFY r <= {int(k)}),
                own AS (
                    SELECT customer_id, item_id, row_number() OVER (PARTITION BY customer_id
                           ORDER BY count(DISTINCT order_id) DESC, max(ts) DESC, item_id) AS r
                    FROM h JOIN _monitor_offered USING (customer_id)
                    GROUP BY customer_id, item_id QUALIFY r <= {int(k)}),
                filled AS (
                    SELECT customer_id, item_id, r FROM own
                    UNION ALL
                    SELECT o.customer_id, p.item_id, {int(k)} + p.r FROM _monitor_offered o
                    CROSS JOIN popular p ANTI JOIN own w
                      ON w.customer_id = o.customer_id AND w.item_id = p.item_id)
                SELECT customer_id, row_number() OVER (PARTITION BY customer_id ORDER BY r)
                       AS rank, item_id
                FROM filled QUALIFY rank <= {int(k)} ORDER BY customer_id, rank""",
            params,
        ).df()
    finally:
        wh.con.unregister("_monitor_offered")
