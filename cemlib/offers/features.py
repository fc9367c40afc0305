"""Features of each (customer, candidate item) pair, computed from one :class:`Snapshot`.

Groups: the customer's purchases of the item (counts, recency, repeat cycle) and of its category;
item popularity overall, now, trending and seasonal; co-purchase and bought-after strength;
browsing of the item and its category; price against the customer's usual spend; segment
popularity; the customer's activity; churn risk and CLV from the churn stage when given.
Missing values (never bought, never browsed) stay NaN: LightGBM learns their own branch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.offers.candidates import SOURCES, item_extras
from cemlib.offers.snapshot import Snapshot

BASE_FEATURES: tuple[str, ...] = (
    *(f"src_{s}" for s in SOURCES if s != "category"),
    "ci_n_b",
    "ci_qty",
    "ci_days_since",
    "ci_n_b30",
    "ci_n_b90",
    "ci_share",
    "ci_gap",
    "ci_due",
    "cc_n_b",
    "cc_days_since",
    "cc_n_b30",
    "cc_share",
    "it_n_cust",
    "it_n_recent",
    "it_trend",
    "it_repeat_rate",
    "it_season",
    "it_pop_rank",
    "it_recent_rank",
    "cooc_sum",
    "cooc_max",
    "after_sum",
    "after_max",
    "seg_share",
    "seg_rank",
    "price_ratio",
    "cu_n_baskets",
    "cu_days_since",
    "cu_n_items",
    "cu_tenure",
    "cu_n_b30",
    "cu_spend",
    "cu_repeat_share",
)
#: with the ``category`` candidate source (``CandidateConfig.n_categories > 0``): its flag, the
#: share of the category's buyers who buy the item, its rank in the category by sales now, the
#: customer's share of baskets with the category times that share, and the item's age in days
CATEGORY_FEATURES: tuple[str, ...] = (
    "src_category",
    "it_cat_share",
    "it_cat_rank",
    "cat_affinity",
    "it_age",
)
BROWSE_FEATURES: tuple[str, ...] = (
    "br_item_7d",
    "br_item_30d",
    "br_item_days_since",
    "br_cat_7d",
    "br_cat_30d",
    "br_cat_days_since",
)


def feature_names(snap: Snapshot, category: bool = False) -> list[str]:
    """The ranker's feature columns for ``snap``: the base ones, the category-source ones when
    ``category``, the browsing ones when the shop has web events."""
    names = list(BASE_FEATURES)
    if category:
        names += list(CATEGORY_FEATURES)
    if snap.store.has_events:
        names += list(BROWSE_FEATURES)
    names += [f"cx_{c}" for c in snap.store.extra_columns]
    return names


def build_features(
    snap: Snapshot, cand_table: str, category: bool = False, *, ordered: bool = True
) -> pd.DataFrame:
    """One row per candidate: ``c, i, cat, cooc_anchor, after_anchor``, the features, ``seg``
    (:data:`CATEGORY_FEATURES` too when ``category``), ordered by ``c, i``; ``ordered=False``:
    in DuckDB's order, which may change from run to run (scoring: every row is scored alone and
    the top ``k`` is sorted on its own, so the sort is saved)."""
    p, T = snap.p, snap.T
    cat_cols, cat_join = "", ""
    if category:
        cat_cols = f"""
            ix.cat_share AS it_cat_share, ix.cat_rank AS it_cat_rank,
            coalesce(cc.n_b, 0) / cu.n_baskets * ix.cat_share AS cat_affinity,
            {T} - ix.first_d AS it_age,"""
        cat_join = f"LEFT JOIN {item_extras(snap)} ix ON ix.i = k.i"
    browse_cols, browse_joins = "", ""
    if snap.store.has_events:
        browse_cols = f""",
            bri.w7 AS br_item_7d, bri.w30 AS br_item_30d, {T} - bri.last_d AS br_item_days_since,
            brc.w7 AS br_cat_7d, brc.w30 AS br_cat_30d, {T} - brc.last_d AS br_cat_days_since"""
        browse_joins = f"""
            LEFT JOIN {p}bri bri ON bri.c = k.c AND bri.i = k.i
            LEFT JOIN {p}brc brc ON brc.c = k.c AND brc.cat = it.cat"""
    extra_cols, extra_join = "", ""
    if snap.store.extra_columns:
        extra_cols = "," + ", ".join(f'x."{c}" AS "cx_{c}"' for c in snap.store.extra_columns)
        extra_join = "LEFT JOIN extra x ON x.c = k.c"
    flags = ", ".join(f"k.src_{s}" for s in SOURCES)
    names = feature_names(snap, category)
    # features leave DuckDB as 4-byte floats (NULL -> NaN): no float64 copy of the frame
    floats = ", ".join(f'CAST("{n}" AS FLOAT) AS "{n}"' for n in names)
    query = f"""
        SELECT c, i, coalesce(cat, -1) AS cat, coalesce(cooc_anchor, -1) AS cooc_anchor,
               coalesce(after_anchor, -1) AS after_anchor, {floats}, seg
        FROM (
        SELECT k.c, k.i, it.cat, k.cooc_anchor, k.after_anchor, {flags},
            coalesce(ci.n_b, 0) AS ci_n_b, coalesce(ci.qty, 0) AS ci_qty,
            {T} - ci.last_d AS ci_days_since,
            coalesce(ci.n_b30, 0) AS ci_n_b30, coalesce(ci.n_b90, 0) AS ci_n_b90,
            coalesce(ci.n_b, 0) / cu.n_baskets AS ci_share,
            (ci.last_d - ci.first_d) / nullif(ci.n_b - 1, 0) AS ci_gap,
            ({T} - ci.last_d) / nullif((ci.last_d - ci.first_d) / nullif(ci.n_b - 1, 0), 0) AS ci_due,
            coalesce(cc.n_b, 0) AS cc_n_b, {T} - cc.last_d AS cc_days_since,
            coalesce(cc.n_b30, 0) AS cc_n_b30, coalesce(cc.n_b, 0) / cu.n_baskets AS cc_share,
            {cat_cols}
            coalesce(it.n_cust, 0) AS it_n_cust, coalesce(it.n_recent, 0) AS it_n_recent,
            (coalesce(it.n_recent, 0) + 1.0) / (coalesce(it.n_prev, 0) + 1.0) AS it_trend,
            it.repeat_rate AS it_repeat_rate, coalesce(it.n_season, 0) AS it_season,
            it.pop_rank AS it_pop_rank, it.recent_rank AS it_recent_rank,
            coalesce(k.cooc_sum, 0) AS cooc_sum, coalesce(k.cooc_max, 0) AS cooc_max,
            coalesce(k.after_sum, 0) AS after_sum, coalesce(k.after_max, 0) AS after_max,
            coalesce(sp.share, 0) AS seg_share, sp.seg_rank AS seg_rank,
            ln(it.price / nullif(cu.unit_price, 0)) AS price_ratio,
            cu.n_baskets AS cu_n_baskets, {T} - cu.last_d AS cu_days_since,
            cu.n_items AS cu_n_items, {T} - cu.first_d AS cu_tenure, cu.n_b30 AS cu_n_b30,
            cu.spend AS cu_spend, rs.repeat_share AS cu_repeat_share
            {browse_cols} {extra_cols}, coalesce(sg.seg, -1) AS seg
        FROM {cand_table} k
            JOIN {p}cu cu ON cu.c = k.c
            LEFT JOIN {p}it it ON it.i = k.i
            {cat_join}
            LEFT JOIN {p}ci ci ON ci.c = k.c AND ci.i = k.i
            LEFT JOIN {p}rs rs ON rs.c = k.c
            LEFT JOIN {p}cc cc ON cc.c = k.c AND cc.cat = it.cat
            LEFT JOIN {p}seg sg ON sg.c = k.c
            LEFT JOIN {p}segpop sp ON sp.seg = sg.seg AND sp.i = k.i
            {browse_joins} {extra_join})
        {"ORDER BY c, i" if ordered else ""}"""
    df = snap.store.sql(query)
    for col in ("c", "i", "cat", "cooc_anchor", "after_anchor", "seg"):
        df[col] = df[col].astype(np.int64, copy=False)
    for col in names:  # all-NULL columns come back as object
        if df[col].dtype != np.float32:
            df[col] = df[col].astype(np.float32)
    return df
