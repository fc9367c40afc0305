"""Candidate generation: the items worth scoring for each customer.

Most of what a customer buys next is neither in their own history nor in the global top list, so
candidates come from several sources, each a flag in the result:

- ``repeat``   the customer's own items (most frequent, then most recent);
- ``cooc``     items bought in the same basket as the customer's recent items;
- ``after``    items bought in the basket that followed the customer's last items ("bought after");
- ``browse``   items browsed recently, and the best sellers of categories browsed recently;
- ``category`` the best sellers of now in the categories the customer buys, which they never
               bought (most of what a grocery customer buys next month is new to them, and it
               mostly lies in the categories they already buy);
- ``segment``  what is popular now among customers of the same segment;
- ``trend``    popular now, rising fastest, and popular in the same season a year before;
- ``popular``  the overall best sellers (also the fallback that guarantees k offers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from cemlib.offers.snapshot import Snapshot

SOURCES: tuple[str, ...] = (
    "repeat",
    "cooc",
    "after",
    "browse",
    "category",
    "segment",
    "trend",
    "popular",
)


@dataclass
class CandidateConfig:
    """How many candidates each source contributes per customer."""

    n_repeat: int = 60
    n_cooc: int = 40
    n_after: int = 25
    n_browse: int = 20
    n_browse_categories: int = 3
    n_per_browsed_category: int = 5
    # the category source (off by default: on Ta-Feng products it lowered NDCG@10, see
    # docs/benchmarks.md): the customer's categories searched, the items new to them in each
    n_categories: int = 0
    n_per_category: int = 8
    n_segment: int = 20
    n_trend: int = 15
    n_season: int = 10
    n_popular: int = 20
    anchors: int = 15  # recent items of the customer used as co-purchase anchors

    def as_dict(self) -> dict[str, int]:
        """The settings as a plain dict (the model's figures)."""
        return asdict(self)


def build_candidates(snap: Snapshot, customers_table: str, cfg: CandidateConfig) -> str:
    """Create the candidate table of the customers in ``customers_table`` (column ``c``).

    Returns the table name; its rows are distinct (c, i) with one 0/1 flag per source plus the
    co-purchase and bought-after scores and their strongest anchor item.
    """
    p, T = snap.p, snap.T
    q = customers_table
    parts = [
        f"""SELECT c, i, 'repeat' AS src FROM {p}ci JOIN {q} USING (c)
        QUALIFY row_number() OVER (PARTITION BY c ORDER BY n_b DESC, last_d DESC, i) <= {cfg.n_repeat}""",
        f"SELECT c, j AS i, 'cooc' AS src FROM {p}cand_cooc QUALIFY row_number() OVER "
        f"(PARTITION BY c ORDER BY cooc_sum DESC, j) <= {cfg.n_cooc}",
        f"SELECT c, j AS i, 'after' AS src FROM {p}cand_after QUALIFY row_number() OVER "
        f"(PARTITION BY c ORDER BY after_sum DESC, j) <= {cfg.n_after}",
        f"""SELECT q.c, s.i, 'segment' AS src FROM {q} q JOIN {p}seg USING (c)
        JOIN {p}segpop s USING (seg) WHERE s.seg_rank <= {cfg.n_segment}""",
        f"""SELECT q.c, it.i, 'trend' AS src FROM {q} q CROSS JOIN (
            SELECT i FROM {p}it WHERE recent_rank <= {cfg.n_trend}
            UNION SELECT i FROM (SELECT i FROM {p}it WHERE n_recent >= 10
                 ORDER BY (n_recent + 1.0) / (n_prev + 1.0) DESC, i LIMIT {cfg.n_trend})
            UNION SELECT i FROM (SELECT i FROM {p}it WHERE n_season > 0
                 ORDER BY n_season DESC, i LIMIT {cfg.n_season})) it""",
        f"""SELECT q.c, it.i, 'popular' AS src FROM {q} q CROSS JOIN
        (SELECT i FROM {p}it WHERE pop_rank <= {cfg.n_popular}) it""",
    ]
    if cfg.n_categories > 0:
        parts.append(_category_part(snap, q, cfg))
    ex = snap.store.execute
    ex(
        f"""CREATE OR REPLACE TEMP TABLE {p}anchor AS
        SELECT c, i, n_b FROM {p}ci JOIN {q} USING (c)
        QUALIFY row_number() OVER (PARTITION BY c ORDER BY last_d DESC, n_b DESC, i) <= {cfg.anchors}"""
    )
    ex(
        f"""CREATE OR REPLACE TEMP TABLE {p}cand_cooc AS
        SELECT a.c, n.j, sum(n.s) AS cooc_sum, max(n.s) AS cooc_max, first(n.a ORDER BY n.s DESC, n.a) AS cooc_anchor
        FROM {p}anchor a JOIN {p}cooc n ON n.a = a.i GROUP BY a.c, n.j"""
    )
    ex(
        f"""CREATE OR REPLACE TEMP TABLE {p}cand_after AS
        WITH last AS (
          SELECT ci.c, ci.i FROM {p}ci ci JOIN {p}cu cu USING (c) JOIN {q} USING (c)
          WHERE ci.last_d >= cu.last_d - 14)
        SELECT l.c, n.j, sum(n.s) AS after_sum, max(n.s) AS after_max, first(n.a ORDER BY n.s DESC, n.a) AS after_anchor
        FROM last l JOIN {p}after n ON n.a = l.i GROUP BY l.c, n.j"""
    )
    if snap.store.has_events:
        parts.append(
            f"""SELECT c, i, 'browse' AS src FROM {p}bri JOIN {q} USING (c)
            QUALIFY row_number() OVER (PARTITION BY c ORDER BY w30 DESC, last_d DESC, i) <= {cfg.n_browse}"""
        )
        parts.append(
            f"""SELECT b.c, it.i, 'browse' AS src FROM (
                SELECT c, cat FROM {p}brc JOIN {q} USING (c)
                QUALIFY row_number() OVER (PARTITION BY c ORDER BY w30 DESC, last_d DESC, cat)
                        <= {cfg.n_browse_categories}) b
            JOIN (SELECT i, cat FROM {p}it QUALIFY row_number() OVER
                  (PARTITION BY cat ORDER BY n_recent DESC, n_cust DESC, i) <= {cfg.n_per_browsed_category}) it
            USING (cat)"""
        )
    union = "\nUNION ALL\n".join(f"({part})" for part in parts)
    flags = ", ".join(f"max(CASE WHEN src = '{s}' THEN 1 ELSE 0 END) AS src_{s}" for s in SOURCES)
    name = f"{p}cand"
    ex(
        f"""CREATE OR REPLACE TEMP TABLE {name} AS
        WITH u AS ({union}), f AS (SELECT c, i, {flags} FROM u GROUP BY c, i)
        SELECT f.*, co.cooc_sum, co.cooc_max, co.cooc_anchor,
               af.after_sum, af.after_max, af.after_anchor
        FROM f LEFT JOIN {p}cand_cooc co ON co.c = f.c AND co.j = f.i
               LEFT JOIN {p}cand_after af ON af.c = f.c AND af.j = f.i"""
    )
    del T
    return name


def _category_part(snap: Snapshot, q: str, cfg: CandidateConfig) -> str:
    """The ``category`` source: per customer the ``n_per_category`` best sellers of now, new to
    them, in each of their ``n_categories`` most bought categories."""
    p = snap.p
    return f"""SELECT t.c, r.i, 'category' AS src FROM (
            SELECT c, cat FROM {p}cc JOIN {q} USING (c)
            QUALIFY row_number() OVER (PARTITION BY c ORDER BY n_b DESC, last_d DESC, cat)
                    <= {cfg.n_categories}) t
        JOIN {item_extras(snap)} r ON r.cat = t.cat
        ANTI JOIN {p}ci ci ON ci.c = t.c AND ci.i = r.i
        QUALIFY row_number() OVER (PARTITION BY t.c, t.cat ORDER BY r.cat_rank)
                <= {cfg.n_per_category}"""


def item_extras(snap: Snapshot) -> str:
    """The snapshot's table ``itx`` (built once): per item its category's buyers' share who buy
    it (``cat_share``), its rank in its category by sales now (``cat_rank``) and the day it was
    first sold (``first_d``). Dropped by :func:`drop_extras`."""
    p = snap.p
    snap.store.execute(
        f"""CREATE TEMP TABLE IF NOT EXISTS {p}itx AS
        WITH cb AS (SELECT cat, count(*) AS n_cust FROM {p}cc GROUP BY cat),
        f AS (SELECT i, min(d) AS first_d FROM {p}h GROUP BY i)
        SELECT it.i, it.cat, it.n_cust / cb.n_cust AS cat_share, f.first_d,
               row_number() OVER (PARTITION BY it.cat ORDER BY it.n_recent DESC, it.n_cust DESC, it.i)
                 AS cat_rank
        FROM {p}it it JOIN f USING (i) LEFT JOIN cb USING (cat)"""
    )
    return f"{p}itx"


def drop_extras(snap: Snapshot) -> None:
    """Drop the tables this module adds to a snapshot (:func:`item_extras`)."""
    snap.store.execute(f"DROP TABLE IF EXISTS {snap.p}itx")


def source_recall(cand: pd.DataFrame, labels: pd.DataFrame) -> dict[str, float]:
    """Share of the bought (c, i) pairs found by all candidates and by each source whose flag
    ``cand`` holds."""
    if labels.empty:
        return {}
    m = labels.merge(cand, on=["c", "i"], how="left")
    out = {"all": float(m["src_repeat"].notna().mean())}
    for s in SOURCES:
        if f"src_{s}" in m:  # the category flag is a feature only with its source on
            out[s] = float(m[f"src_{s}"].fillna(0).eq(1).mean())
    return out
