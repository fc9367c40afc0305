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
from cemlib.warehouse import Warehouse, table_columns


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


def _baseline_ctes(history: str, offered: str, k: int) -> str:
    """CTEs ``h``, ``popular``, ``own``, ``filled`` and ``baseline`` (customer_id, rank,
    item_id): personal-then-popular offers for the customers of ``offered`` from the lines of
    ``history``, with the ties of :func:`cemlib.marts.popularity.personal_then_popular`."""
    return f"""h AS (SELECT customer_id, item_id, order_id, ts FROM ({history})
                   WHERE customer_id IS NOT NULL),
        popular AS (
            SELECT item_id, row_number() OVER (ORDER BY count(DISTINCT customer_id) DESC,
                   count(DISTINCT order_id) DESC, item_id) AS r
            FROM h GROUP BY item_id QUALIFY r <= {k}),
        own AS (
            SELECT customer_id, item_id, row_number() OVER (PARTITION BY customer_id
                   ORDER BY count(DISTINCT order_id) DESC, max(ts) DESC, item_id) AS r
            FROM h JOIN {offered} USING (customer_id)
            GROUP BY customer_id, item_id QUALIFY r <= {k}),
        filled AS (
            SELECT customer_id, item_id, r FROM own
            UNION ALL
            SELECT o.customer_id, p.item_id, {k} + p.r FROM {offered} o
            CROSS JOIN popular p ANTI JOIN own w
              ON w.customer_id = o.customer_id AND w.item_id = p.item_id),
        baseline AS (
            SELECT customer_id, row_number() OVER (PARTITION BY customer_id ORDER BY r)
                   AS rank, item_id
            FROM filled QUALIFY rank <= {k})"""


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
            f"WITH {_baseline_ctes(sql, '_monitor_offered', int(k))} "
            "SELECT * FROM baseline ORDER BY customer_id, rank",
            params,
        ).df()
    finally:
        wh.con.unregister("_monitor_offered")


def ranking_sql(recs: str, bought: str, k: int) -> str:
    """A query of customers, hit rate@k and NDCG@k (binary relevance) of the offers ``recs``
    (customer_id, rank, item_id) over the customers of ``bought`` (customer_id, item_id: the
    distinct items each bought in the window)."""
    return f"""WITH n AS (SELECT customer_id, count(*) AS n FROM {bought} GROUP BY 1),
            hits AS (SELECT r.customer_id, sum(1.0 / log2(r.rank + 1.0)) AS dcg
                     FROM {recs} r JOIN {bought} b USING (customer_id, item_id)
                     WHERE r.rank <= {k} GROUP BY 1),
            ideal AS (SELECT i AS m, sum(1.0 / log2(i + 1.0)) OVER (ORDER BY i) AS idcg
                      FROM range(1, {k} + 1) t(i))
        SELECT count(*) AS customers, avg(CAST(hits.dcg IS NOT NULL AS DOUBLE)) AS hitrate,
               avg(coalesce(hits.dcg, 0.0) / ideal.idcg) AS ndcg
        FROM n LEFT JOIN hits USING (customer_id) JOIN ideal ON ideal.m = least(n.n, {k})"""


def grade_offers_sql(
    wh: Warehouse,
    offers: str,
    ids: pd.DataFrame,
    since: str,
    until: str,
    k: int,
    exclude: list[str] | tuple[str, ...] = (),
) -> list[dict]:
    """Hit rate@k and NDCG@k of the offers of the table ``offers`` (profile_id, rank,
    item_id; ``ids`` maps its profile_id to today's customer_id: offers of two merged ids
    become one list, best rank first) and of the personal-then-popular baseline made from the
    purchases up to ``since``, on the items bought in the window: one dict per method. Both
    rankings are made only for the offered customers who bought in the window (the only ones
    the figures average over): the cost follows the window's buyers, not every profile.

    ``exclude``: the entries of the offers' exclusion list (item ids and/or categories): items
    never offered are left out of the items bought (the targets) and of the baseline's history,
    as the offers stage grades (trial 7 M2: a monthly top-up gave the baseline 0.9997)."""
    lines, lp = sales_lines_sql(wh, until)
    history, hp = sales_lines_sql(wh, since)
    entries = [str(e) for e in exclude]
    if entries:
        kept = ", ".join("'" + e.replace("'", "''") + "'" for e in entries)
        allowed = (
            f"WHERE CAST(item_id AS VARCHAR) NOT IN ({kept}) "
            f"AND (category IS NULL OR CAST(category AS VARCHAR) NOT IN ({kept}))"
        )
        lines = f"SELECT * FROM ({lines}) {allowed}"
        history = f"SELECT * FROM ({history}) {allowed}"
    lo, _ = _bounds(since, until)
    k = int(k)

    def scored(recs: str) -> str:
        return f"SELECT * FROM ({ranking_sql(recs, 'bought', k)})"

    wh.con.register("_monitor_ids", ids[["profile_id", "customer_id"]].astype(str))
    try:
        row = wh.con.execute(
            f"""WITH window_items AS (SELECT DISTINCT customer_id, item_id FROM ({lines})
                                      WHERE customer_id IS NOT NULL AND ts >= ?),
                recs0 AS (
                    SELECT i.customer_id, CAST(o.item_id AS VARCHAR) AS item_id, min(o.rank) AS r0
                    FROM {offers} o JOIN _monitor_ids i
                      ON i.profile_id = CAST(o.profile_id AS VARCHAR)
                    WHERE i.customer_id IN (SELECT customer_id FROM window_items)
                    GROUP BY 1, 2),
                recs AS (SELECT customer_id, item_id, row_number() OVER (
                             PARTITION BY customer_id ORDER BY r0, item_id) AS rank FROM recs0),
                offered AS (SELECT DISTINCT customer_id FROM recs),
                bought AS (SELECT w.* FROM window_items w JOIN offered USING (customer_id)),
                {_baseline_ctes(history, "offered", k)}
            SELECT * FROM ({scored("recs")}) m, ({scored("baseline")}) b""",
            [*lp, lo, *hp],
        ).fetchall()[0]
    finally:
        wh.con.unregister("_monitor_ids")
    return [{"customers": int(row[i]), f"hitrate@{k}": row[i + 1], f"ndcg@{k}": row[i + 2]}
            for i in (0, 3)]  # fmt: skip


#: the identifier columns of ``identity.prepared`` (normalized values) and their kinds: a value
#: of ``phone_2`` is a phone as much as one of ``phone``
PREPARED_IDENTIFIERS: dict[str, str] = {
    "phone": "phone", "phone_2": "phone", "email": "email", "email_2": "email",
    "loyalty_card": "loyalty_card", "device_id": "device_id", "national_id": "national_id",
}  # fmt: skip


def unattributed_profiles(wh: Warehouse, since: str, until: str) -> set[str]:
    """The profiles whose identifiers (a phone, e-mail, card, device of one of their records)
    an order or receipt of the window carries that identity attached to no profile: a receipt
    with the family's card, an order held back in a household profile. Whether such a profile's
    person made that purchase cannot be read from the data. Empty without
    ``identity.prepared`` (the normalized identifiers of every record)."""
    if not (wh.has_table("identity", "prepared") and wh.has_table("identity", "map")):
        return set()
    have = set(table_columns(wh.con, "identity", "prepared"))
    cols = [(c, k) for c, k in PREPARED_IDENTIFIERS.items() if c in have]
    if not cols:
        return set()
    lo, _ = _bounds(since, until)
    heads, hp = sales_headers_sql(wh, until)
    values = " UNION ".join(
        f"SELECT '{k}' AS kind, p.\"{c}\" AS v FROM identity.prepared p JOIN un "
        f'ON p.source = un.source AND p.record_id = un.record_id WHERE p."{c}" IS NOT NULL'
        for c, k in cols
    )
    holders = " UNION ".join(
        f"SELECT p.source, p.record_id FROM identity.prepared p "
        f"SEMI JOIN (SELECT v FROM vals WHERE kind = '{k}') x ON p.\"{c}\" = x.v"
        for c, k in cols
    )
    got = wh.con.execute(
        f"""WITH un AS (SELECT substr(order_id, 1, strpos(order_id, ':') - 1) AS source,
                               substr(order_id, strpos(order_id, ':') + 1) AS record_id
                        FROM ({heads}) WHERE customer_id IS NULL AND ts >= ?),
                 vals AS ({values}), h AS ({holders})
            SELECT DISTINCT CAST(m.profile_id AS VARCHAR) AS profile_id FROM identity.map m
            JOIN h ON m.source_table = h.source AND m.record_id = h.record_id
            WHERE m.profile_id IS NOT NULL""",
        [*hp, lo],
    ).fetchnumpy()["profile_id"]
    return {str(v) for v in got}
