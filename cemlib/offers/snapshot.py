"""A snapshot of purchase and browsing history at one cutoff day, held in DuckDB.

The next-offer model sees the world through snapshots: the training window is a snapshot at
``as_of - 2W`` labelled with the purchases of the following ``W`` days, the validation window a
snapshot at ``as_of - W`` labelled with the next ``W`` days, and scoring a snapshot at ``as_of``.
Each snapshot only reads rows dated on or before its cutoff, so the same code builds all three
and nothing leaks from the label window.

Aggregates are computed in an in-memory DuckDB database (vectorised, spills to disk, fast on
millions of lines) over integer codes of customers and items (:class:`Encoded`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

EPOCH = pd.Timestamp("1970-01-01")


@dataclass
class Encoded:
    """Integer codes of the customers, items and categories of one prepared data set."""

    customers: pd.Index
    items: pd.Index
    categories: pd.Index
    segments: pd.Index | None
    item_category: np.ndarray  # category code per item code (-1: unknown)


def day_number(ts) -> int:
    """Days since the store's epoch of the day of ``ts`` (integer day keys in SQL)."""
    return int((pd.Timestamp(ts).normalize() - EPOCH).days)


def encode(
    tx: pd.DataFrame, events: pd.DataFrame | None = None, items: pd.DataFrame | None = None
) -> tuple[Encoded, pd.DataFrame, pd.DataFrame | None]:
    """Integer-coded copies of the prepared transactions and events, and their code books."""
    customers = pd.Index(pd.unique(tx["customer_id"]))
    item_values = [tx["item_id"]]
    if events is not None:
        item_values.append(events["item_id"].dropna().astype(str))
    items_idx = pd.Index(pd.unique(pd.concat(item_values, ignore_index=True)))
    cat_values = [tx["category"].dropna().astype(str)]
    if events is not None:
        cat_values.append(events["category"].dropna().astype(str))
    if items is not None and "category" in items.columns:
        cat_values.append(items["category"].dropna().astype(str))
    categories = pd.Index(pd.unique(pd.concat(cat_values, ignore_index=True)))
    item_cat = np.full(len(items_idx), -1, dtype=np.int64)
    pairs = tx[["item_id", "category"]].dropna().drop_duplicates("item_id", keep="last")
    if items is not None and "category" in items.columns:
        extra = items[["item_id", "category"]].dropna()
        pairs = pd.concat([extra, pairs]).drop_duplicates("item_id", keep="last")
    pos = items_idx.get_indexer(pairs["item_id"].astype(str))
    ok = pos >= 0
    item_cat[pos[ok]] = categories.get_indexer(pairs["category"].astype(str))[ok]
    segments = None
    codes = pd.DataFrame(
        {
            "c": customers.get_indexer(tx["customer_id"]).astype(np.int64),
            "i": items_idx.get_indexer(tx["item_id"]).astype(np.int64),
            "d": ((tx["ts"].dt.normalize() - EPOCH).dt.days).astype(np.int64),
            "b": tx["basket_id"].astype(np.int64),
            "q": tx["quantity"].astype(np.float64),
            "amt": tx["amount"].astype(np.float64),
        }
    )
    codes["cat"] = item_cat[codes["i"].to_numpy()]
    if "segment" in tx.columns and tx["segment"].notna().any():
        seg_per_customer = tx.drop_duplicates("customer_id", keep="last").set_index("customer_id")[
            "segment"
        ]
        segments = pd.Index(pd.unique(seg_per_customer.dropna().astype(str)))
        seg_codes = segments.get_indexer(seg_per_customer.reindex(customers).astype(str))
        codes["seg"] = seg_codes[codes["c"].to_numpy()]
    ev_codes = None
    if events is not None and len(events):
        ev_c = customers.get_indexer(events["customer_id"])
        known = ev_c >= 0  # browsing of people who never bought cannot be scored here
        ev = events[known]
        ev_codes = pd.DataFrame(
            {
                "c": ev_c[known].astype(np.int64),
                "i": items_idx.get_indexer(ev["item_id"].fillna("\x00").astype(str)).astype(
                    np.int64
                ),
                "cat": categories.get_indexer(ev["category"].fillna("\x00").astype(str)).astype(
                    np.int64
                ),
                "d": ((ev["ts"].dt.normalize() - EPOCH).dt.days).astype(np.int64),
                "w": ev["weight"].astype(np.float64),
            }
        )
        miss_cat = (ev_codes["cat"] < 0) & (ev_codes["i"] >= 0)
        ev_codes.loc[miss_cat, "cat"] = item_cat[ev_codes.loc[miss_cat, "i"].to_numpy()]
    enc = Encoded(customers, items_idx, categories, segments, item_cat)
    return enc, codes, ev_codes


def _spill_root(folder: str | None) -> str | None:
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
    return folder


class Store:
    """The DuckDB database holding the coded transactions (``tx``) and events (``ev``)."""

    def __init__(
        self,
        codes: pd.DataFrame,
        ev_codes: pd.DataFrame | None,
        customer_extra: pd.DataFrame | None = None,
        *,
        threads: int = 2,
        memory_limit: str | None = None,
    ):
        from cemlib.budget import duckdb_memory_limit, temp_directory

        # None: the stage's share of cem run's memory_limit, at most 3GB
        memory_limit = memory_limit or duckdb_memory_limit(cap="3GB")
        self._tmp = tempfile.TemporaryDirectory(
            prefix="cem_offers_", dir=_spill_root(temp_directory())
        )
        self.con = duckdb.connect(":memory:")
        self.con.execute(f"SET threads TO {int(threads)}")
        # bounded memory: larger intermediate results spill to a temporary folder
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute(f"SET temp_directory = '{self._tmp.name}'")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.register("_codes", codes)
        # one row per (basket, item): quantities of repeated lines are summed
        seg = "any_value(seg)" if "seg" in codes.columns else "-1"
        self.con.execute(
            "CREATE TABLE bi AS SELECT c, b, i, min(d) AS d, sum(q) AS q, sum(amt) AS amt, "
            f"any_value(cat) AS cat, {seg} AS seg FROM _codes GROUP BY c, b, i"
        )
        self.con.unregister("_codes")
        self.has_events = ev_codes is not None and len(ev_codes) > 0
        if self.has_events:
            self.con.register("_ev", ev_codes)
            self.con.execute("CREATE TABLE ev AS SELECT * FROM _ev")
            self.con.unregister("_ev")
        self.has_extra = customer_extra is not None and len(customer_extra) > 0
        self.extra_columns: list[str] = []
        if self.has_extra:
            self.con.register("_extra", customer_extra)
            self.con.execute("CREATE TABLE extra AS SELECT * FROM _extra")
            self.con.unregister("_extra")
            self.extra_columns = [c for c in customer_extra.columns if c != "c"]
        self.has_segments = "seg" in codes.columns

    def close(self) -> None:
        """Close the DuckDB connection and remove its temporary folder."""
        self.con.close()
        self._tmp.cleanup()

    def sql(self, query: str) -> pd.DataFrame:
        """The result of ``query`` as a DataFrame."""
        return self.con.execute(query).df()

    def execute(self, query: str) -> None:
        """Run ``query`` for its effect."""
        self.con.execute(query)


@dataclass
class Windows:
    """Lengths (days) of the look-back windows used by candidates and features."""

    recent: int = 28  # "popular now" and trend windows
    browse: int = 30  # browsing considered
    co_purchase: int = 365  # baskets used for co-purchase and bought-after statistics
    max_basket: int = 40  # larger baskets are skipped in pair statistics (quadratic)


class Snapshot:
    """Aggregates of the history up to ``cutoff`` (day number, inclusive) in ``store``.

    Tables (prefixed ``s<cutoff>_``): ``ci`` customer x item, ``cc`` customer x category,
    ``cu`` customer, ``it`` item, ``cooc`` item-to-item co-purchase neighbours, ``after``
    bought-next neighbours, ``seg`` customer segment, ``segpop`` segment popularity, and
    browsing aggregates ``bri``/``brc`` when events exist.
    """

    def __init__(
        self,
        store: Store,
        cutoff: int,
        *,
        horizon: int,
        windows: Windows | None = None,
        neighbours: int = 20,
    ):
        self.store = store
        self.T = int(cutoff)
        self.W = int(horizon)
        self.win = windows or Windows()
        self.k_nb = int(neighbours)
        self.p = f"s{self.T}_"
        self._build()

    def t(self, name: str) -> str:
        """The name of this snapshot's table ``name`` (prefixed, so snapshots share a store)."""
        return self.p + name

    def _build(self) -> None:
        # the history up to the cutoff as a view: a filter on ``bi``, not a copy of it
        self.store.execute(
            f"CREATE OR REPLACE TEMP VIEW {self.p}h AS SELECT * FROM bi WHERE d <= {self.T}"
        )
        self._customer_tables()
        self._item_table()
        self._pair_tables()
        self._segment_tables()
        if self.store.has_events:
            self._browse_tables()

    def _customer_tables(self) -> None:
        """``ci`` customer x item, ``cu`` customer, ``cc`` customer x category."""
        T, p = self.T, self.p
        ex = self.store.execute
        ex(
            f"""CREATE OR REPLACE TEMP TABLE {p}ci AS
            SELECT c, i, any_value(cat) AS cat, count(*) AS n_b, sum(q) AS qty, sum(amt) AS amt,
                   max(d) AS last_d, min(d) AS first_d,
                   count(*) FILTER (WHERE d > {T - 30}) AS n_b30,
                   count(*) FILTER (WHERE d > {T - 90}) AS n_b90
            FROM {p}h GROUP BY c, i"""
        )
        ex(
            f"""CREATE OR REPLACE TEMP TABLE {p}cu AS
            SELECT c, count(DISTINCT b) AS n_baskets, count(DISTINCT d) AS n_days,
                   max(d) AS last_d, min(d) AS first_d, count(DISTINCT i) AS n_items,
                   sum(amt) AS spend, sum(amt) / nullif(sum(q), 0) AS unit_price,
                   count(DISTINCT b) FILTER (WHERE d > {T - 30}) AS n_b30
            FROM {p}h GROUP BY c"""
        )
        ex(
            f"""CREATE OR REPLACE TEMP TABLE {p}cc AS
            SELECT c, cat, count(DISTINCT b) AS n_b, max(d) AS last_d,
                   count(DISTINCT b) FILTER (WHERE d > {T - 30}) AS n_b30
            FROM {p}h WHERE cat >= 0 GROUP BY c, cat"""
        )
        self._repeat_tables()

    def _repeat_tables(self) -> None:
        """``rs``: per customer, the repeat share of their purchases (``sum(n_b - 1) / sum(n_b)``
        over their items): through it the trees decide how much to lean on the repeat features."""
        self.store.execute(
            f"""CREATE OR REPLACE TEMP TABLE {self.p}rs AS
            SELECT c, sum(n_b - 1) / sum(n_b) AS repeat_share FROM {self.p}ci GROUP BY c"""
        )

    def _item_table(self) -> None:
        """``it``: popularity overall, now, before, in season; repeat rate, price; ranks."""
        T, W, p, w = self.T, self.W, self.p, self.win
        ex = self.store.execute
        season_lo, season_hi = T - 365, T - 365 + W
        ex(
            f"""CREATE OR REPLACE TEMP TABLE {p}it AS
            WITH a AS (
              SELECT i, any_value(cat) AS cat, count(DISTINCT c) AS n_cust, count(*) AS n_b,
                     count(*) FILTER (WHERE d > {T - w.recent}) AS n_recent,
                     count(*) FILTER (WHERE d > {T - 2 * w.recent} AND d <= {T - w.recent})
                       AS n_prev,
                     count(*) FILTER (WHERE d > {season_lo} AND d <= {season_hi}) AS n_season,
                     sum(amt) / nullif(sum(q), 0) AS price
              FROM {p}h GROUP BY i),
            r AS (SELECT i, avg(CASE WHEN n_b >= 2 THEN 1.0 ELSE 0.0 END) AS repeat_rate
                  FROM {p}ci GROUP BY i)
            SELECT a.*, r.repeat_rate,
                   row_number() OVER (ORDER BY n_cust DESC, i) AS pop_rank,
                   row_number() OVER (ORDER BY n_recent DESC, n_cust DESC, i) AS recent_rank
            FROM a JOIN r USING (i)"""
        )

    def _pair_tables(self) -> None:
        """``cooc`` co-purchase and ``after`` bought-next neighbours of each item."""
        T, p, w = self.T, self.p, self.win
        ex = self.store.execute
        # co-purchase: items in the same basket, smoothed cosine, top neighbours per item
        ex(
            f"""CREATE OR REPLACE TEMP TABLE {p}cooc AS
            WITH bb AS (
              SELECT b, i FROM {p}h WHERE d > {T - w.co_purchase} AND b IN (
                SELECT b FROM {p}h WHERE d > {T - w.co_purchase}
                GROUP BY b HAVING count(*) BETWEEN 2 AND {w.max_basket})),
            pairs AS (
              SELECT x.i AS a, y.i AS j, count(*) AS n_ab
              FROM bb x JOIN bb y ON x.b = y.b AND x.i <> y.i GROUP BY 1, 2 HAVING count(*) >= 2),
            s AS (
              SELECT a, j, n_ab, n_ab / sqrt((ia.n_b + 5.0) * (ij.n_b + 5.0)) AS s
              FROM pairs JOIN {p}it ia ON ia.i = a JOIN {p}it ij ON ij.i = j)
            SELECT * FROM s QUALIFY row_number() OVER (PARTITION BY a ORDER BY s DESC, j) <= {self.k_nb}"""
        )
        # bought after: items of a customer's next basket (another day) following an item
        ex(
            f"""CREATE OR REPLACE TEMP TABLE {p}after AS
            WITH days AS (
              SELECT c, d, dense_rank() OVER (PARTITION BY c ORDER BY d) AS k
              FROM (SELECT DISTINCT c, d FROM {p}h WHERE d > {T - w.co_purchase})),
            seq AS (
              SELECT h.c, h.i, days.k FROM {p}h h JOIN days USING (c, d)
              WHERE h.d > {T - w.co_purchase}),
            pairs AS (
              SELECT x.i AS a, y.i AS j, count(DISTINCT x.c) AS n_ab
              FROM seq x JOIN seq y ON x.c = y.c AND y.k = x.k + 1 AND x.i <> y.i
              GROUP BY 1, 2 HAVING count(DISTINCT x.c) >= 2),
            s AS (
              SELECT a, j, n_ab, n_ab / sqrt((ia.n_cust + 5.0) * (ij.n_cust + 5.0)) AS s
              FROM pairs JOIN {p}it ia ON ia.i = a JOIN {p}it ij ON ij.i = j)
            SELECT * FROM s QUALIFY row_number() OVER (PARTITION BY a ORDER BY s DESC, j) <= {self.k_nb}"""
        )

    def _segment_tables(self) -> None:
        """``seg`` each customer's segment and ``segpop`` what is popular in each segment now."""
        T, p, w = self.T, self.p, self.win
        ex = self.store.execute
        # segment: given segment column, else the customer's dominant category
        if self.store.has_segments:
            ex(
                f"CREATE OR REPLACE TEMP TABLE {p}seg AS "
                f"SELECT c, any_value(seg) AS seg FROM {p}h GROUP BY c"
            )
        else:
            ex(
                f"""CREATE OR REPLACE TEMP TABLE {p}seg AS
                SELECT c, cat AS seg FROM {p}cc
                QUALIFY row_number() OVER (PARTITION BY c ORDER BY n_b DESC, last_d DESC, cat) = 1"""
            )
        ex(
            f"""CREATE OR REPLACE TEMP TABLE {p}segpop AS
            WITH n AS (SELECT seg, count(*) AS seg_size FROM {p}seg GROUP BY seg),
            r AS (SELECT s.seg, h.i, count(DISTINCT h.c) AS n_c
                  FROM {p}h h JOIN {p}seg s USING (c) WHERE h.d > {T - 2 * w.recent}
                  GROUP BY 1, 2)
            SELECT r.seg, r.i, r.n_c, r.n_c / n.seg_size AS share,
                   row_number() OVER (PARTITION BY r.seg ORDER BY r.n_c DESC, r.i) AS seg_rank
            FROM r JOIN n USING (seg)"""
        )

    def _browse_tables(self) -> None:
        """``bri`` / ``brc``: browsing of items and categories in the browse window."""
        T, p, w = self.T, self.p, self.win
        ex = self.store.execute
        lo = T - w.browse
        ex(
            f"""CREATE OR REPLACE TEMP TABLE {p}bri AS
            SELECT c, i, sum(w) AS w30, sum(w) FILTER (WHERE d > {T - 7}) AS w7,
                   max(d) AS last_d
            FROM ev WHERE d <= {T} AND d > {lo} AND i >= 0 GROUP BY c, i"""
        )
        ex(
            f"""CREATE OR REPLACE TEMP TABLE {p}brc AS
            SELECT c, cat, sum(w) AS w30, sum(w) FILTER (WHERE d > {T - 7}) AS w7,
                   max(d) AS last_d
            FROM ev WHERE d <= {T} AND d > {lo} AND cat >= 0 GROUP BY c, cat"""
        )

    def customers_with_history(self) -> np.ndarray:
        """Customer keys with a purchase before the snapshot's cut, sorted."""
        return self.store.sql(f"SELECT c FROM {self.p}cu ORDER BY c")["c"].to_numpy()

    def labels(self) -> pd.DataFrame:
        """(c, i) pairs bought in the label window ``(cutoff, cutoff + horizon]``."""
        return self.store.sql(
            f"SELECT DISTINCT c, i FROM bi WHERE d > {self.T} AND d <= {self.T + self.W}"
        )

    def drop(self) -> None:
        """Drop this snapshot's tables and views from the store."""
        self.store.execute(f"DROP VIEW IF EXISTS {self.p}h")
        for name in (
            *("ci", "rs", "cu", "cc", "it", "cooc", "after", "seg", "segpop", "bri", "brc"),
            *("q", "anchor", "cand_cooc", "cand_after", "cand"),  # of the last candidate chunk
        ):
            self.store.execute(f"DROP TABLE IF EXISTS {self.p}{name}")
