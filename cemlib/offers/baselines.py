"""The baselines that are notoriously hard to beat in next-basket recommendation.

- global popularity, own most frequent, personal-then-popular (P-TopFreq / GP-TopFreq):
  :mod:`cemlib.marts.popularity`, shared with the monitor;
- TIFU-KNN: time-decayed personal frequency blended with the nearest customers'
  (:mod:`cemlib.offers.tifu`), filled with global popularity;
- repurchase cycle: the customer's repeat items by when they are due again (last purchase plus
  the customer's mean gap for the item), then own most frequent, then popular.

All take prepared transactions (``customer_id, ts, item_id, basket_id``) already cut at
``as_of`` and return ``customer_id, rank, item_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.marts.popularity import (
    _customers,
    global_popularity,
    own_most_frequent,
    personal_then_popular,
    popular_items,
    then_popular,
)
from cemlib.offers.tifu import Tifu, TifuParams, user_vectors

BASELINES: tuple[str, ...] = (
    "global_popularity",
    "own_most_frequent",
    "personal_then_popular",
    "tifu_knn",
    "repurchase_cycle",
)

__all__ = [
    "BASELINES",
    "all_baselines",
    "global_popularity",
    "own_most_frequent",
    "personal_then_popular",
    "popular_items",
    "repurchase_cycle",
    "tifu_knn",
]


def tifu_knn(
    tx: pd.DataFrame, k: int = 10, customers=None, params: TifuParams | None = None
) -> pd.DataFrame:
    """TIFU-KNN (:mod:`cemlib.offers.tifu`, the paper's Ta-Feng settings by default)."""
    custs = _customers(tx, customers)
    cust_codes, c = np.unique(tx["customer_id"].to_numpy(), return_inverse=True)
    items, i = np.unique(tx["item_id"].to_numpy(), return_inverse=True)
    d = (tx["ts"].dt.normalize() - pd.Timestamp("1970-01-01")).dt.days.to_numpy()
    prm = params or TifuParams()
    U = user_vectors(c, tx["basket_id"].to_numpy(), i, d, len(cust_codes), len(items), prm)
    pos = pd.Index(cust_codes).get_indexer(custs)
    s = Tifu(U, prm).scores(pos[pos >= 0], top=k)
    s = s[s["tifu_rank"] <= k]
    ranked = pd.DataFrame(
        {
            "customer_id": cust_codes[s["c"].to_numpy()],
            "rank": s["tifu_rank"].to_numpy(),
            "item_id": items[s["i"].to_numpy()],
        }
    )
    return then_popular(ranked, tx, k, custs)


def repurchase_cycle(tx: pd.DataFrame, k: int = 10, customers=None) -> pd.DataFrame:
    """Own items bought in 2+ baskets, due first: by ``max(last + mean gap - as_of, 0)`` (ties:
    more baskets); repeat items overdue by more than two gaps, then the customer's other items
    by frequency, then popular items follow."""
    custs = _customers(tx, customers)
    sub = tx[tx["customer_id"].isin(custs)]
    days = (sub["ts"].dt.normalize() - pd.Timestamp("1970-01-01")).dt.days
    # "now" is the history's last day, whichever customers are ranked
    last_day = tx["ts"].max() if len(tx) else None
    g = (
        sub.assign(d=days)
        .groupby(["customer_id", "item_id"])
        .agg(n_b=("basket_id", "nunique"), first=("d", "min"), last=("d", "max"))
        .reset_index()
    )
    T = (pd.Timestamp(last_day).normalize() - pd.Timestamp("1970-01-01")).days if len(days) else 0
    gap = (g["last"] - g["first"]) / (g["n_b"] - 1).where(g["n_b"] > 1)
    since = T - g["last"]
    cyclic = gap.notna() & (gap > 0) & (since <= 2 * gap)
    g["group"] = np.where(cyclic, 0, 1)
    g["due_in"] = np.where(cyclic, np.maximum(g["last"] + gap.fillna(0) - T, 0), 0.0)
    g = g.sort_values(
        ["customer_id", "group", "due_in", "n_b", "last", "item_id"],
        ascending=[True, True, True, False, False, True],
    )
    g["rank"] = g.groupby("customer_id").cumcount() + 1
    return then_popular(g[g["rank"] <= k][["customer_id", "rank", "item_id"]], tx, k, custs)


def all_baselines(tx: pd.DataFrame, k: int = 10, customers=None) -> dict[str, pd.DataFrame]:
    """Every baseline of :data:`BASELINES` on the same history and customers."""
    return {
        "global_popularity": global_popularity(tx, k, customers),
        "own_most_frequent": own_most_frequent(tx, k, customers),
        "personal_then_popular": personal_then_popular(tx, k, customers),
        "tifu_knn": tifu_knn(tx, k, customers),
        "repurchase_cycle": repurchase_cycle(tx, k, customers),
    }
