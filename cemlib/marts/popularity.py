"""Popularity baselines shared by the next-offer stage and the monitor.

- global popularity: the k items bought by the most customers, the same list for everyone;
- own most frequent: the customer's own items by number of baskets (ties: most recent first);
- personal-then-popular: own most frequent, then filled with global popularity up to k
  (P-TopFreq and GP-TopFreq of the "Next Basket Recommendation Reality Check").

All take transactions (``customer_id, ts, item_id`` and a basket column, ``basket_id`` unless
``basket`` names another) already cut at ``as_of`` and return ``customer_id, rank, item_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _customers(tx: pd.DataFrame, customers) -> pd.Index:
    return pd.Index(
        pd.unique(tx["customer_id"]) if customers is None else pd.unique(pd.Index(customers))
    )


def popular_items(tx: pd.DataFrame, k: int, *, basket: str = "basket_id") -> list:
    """The ``k`` items with the most distinct buyers (ties: more baskets, then item id)."""
    g = tx.groupby("item_id").agg(n_cust=("customer_id", "nunique"), n_b=(basket, "nunique"))
    g = g.reset_index().sort_values(["n_cust", "n_b", "item_id"], ascending=[False, False, True])
    return g["item_id"].head(k).tolist()


def global_popularity(
    tx: pd.DataFrame, k: int = 10, customers=None, *, basket: str = "basket_id"
) -> pd.DataFrame:
    """The same ``k`` most popular items for every customer."""
    custs = _customers(tx, customers)
    top = popular_items(tx, k, basket=basket)
    return pd.DataFrame(
        {
            "customer_id": np.repeat(custs.to_numpy(), len(top)),
            "rank": np.tile(np.arange(1, len(top) + 1), len(custs)),
            "item_id": np.tile(np.asarray(top, dtype=object), len(custs)),
        }
    )


def own_most_frequent(
    tx: pd.DataFrame, k: int = 10, customers=None, *, basket: str = "basket_id"
) -> pd.DataFrame:
    """Each customer's own items by number of baskets (ties: most recent, then item id)."""
    custs = _customers(tx, customers)
    sub = tx[tx["customer_id"].isin(custs)]
    g = (
        sub.groupby(["customer_id", "item_id"])
        .agg(n_b=(basket, "nunique"), last=("ts", "max"))
        .reset_index()
        .sort_values(
            ["customer_id", "n_b", "last", "item_id"], ascending=[True, False, False, True]
        )
    )
    g["rank"] = g.groupby("customer_id").cumcount() + 1
    return g[g["rank"] <= k][["customer_id", "rank", "item_id"]].reset_index(drop=True)


def then_popular(
    ranked: pd.DataFrame, tx: pd.DataFrame, k: int, customers=None, *, basket: str = "basket_id"
) -> pd.DataFrame:
    """``ranked`` (customer_id, rank, item_id) filled up to ``k`` with global popularity."""
    pop = global_popularity(tx, k, customers, basket=basket)
    pop["rank"] = pop["rank"] + (int(ranked["rank"].max()) if len(ranked) else 0)
    both = pd.concat([ranked, pop], ignore_index=True).sort_values(
        ["customer_id", "rank"], kind="stable"
    )
    both = both.drop_duplicates(["customer_id", "item_id"], keep="first")
    both["rank"] = both.groupby("customer_id").cumcount() + 1
    return both[both["rank"] <= k][["customer_id", "rank", "item_id"]].reset_index(drop=True)


def personal_then_popular(
    tx: pd.DataFrame, k: int = 10, customers=None, *, basket: str = "basket_id"
) -> pd.DataFrame:
    """Own most frequent, then the most popular items not yet offered, up to ``k``."""
    own = own_most_frequent(tx, k, customers, basket=basket)
    return then_popular(own, tx, k, customers, basket=basket)
