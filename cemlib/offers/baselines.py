"""The baselines that are notoriously hard to beat in next-basket recommendation.

- global popularity: the k items bought by the most customers, the same list for everyone;
- own most frequent: the customer's own items by number of baskets (ties: most recent first);
- personal-then-popular: own most frequent, then filled with global popularity up to k.

All take prepared transactions (``customer_id, ts, item_id, basket_id``) already cut at
``as_of`` and return ``customer_id, rank, item_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BASELINES: tuple[str, ...] = ("global_popularity", "own_most_frequent", "personal_then_popular")


def _customers(tx: pd.DataFrame, customers) -> pd.Index:
    return pd.Index(
        pd.unique(tx["customer_id"]) if customers is None else pd.unique(pd.Index(customers))
    )


def popular_items(tx: pd.DataFrame, k: int) -> list:
    """The ``k`` items with the most distinct buyers (ties: more baskets, then item id)."""
    g = tx.groupby("item_id").agg(n_cust=("customer_id", "nunique"), n_b=("basket_id", "nunique"))
    g = g.reset_index().sort_values(["n_cust", "n_b", "item_id"], ascending=[False, False, True])
    return g["item_id"].head(k).tolist()


def global_popularity(tx: pd.DataFrame, k: int = 10, customers=None) -> pd.DataFrame:
    custs = _customers(tx, customers)
    top = popular_items(tx, k)
    return pd.DataFrame(
        {
            "customer_id": np.repeat(custs.to_numpy(), len(top)),
            "rank": np.tile(np.arange(1, len(top) + 1), len(custs)),
            "item_id": np.tile(np.asarray(top, dtype=object), len(custs)),
        }
    )


def own_most_frequent(tx: pd.DataFrame, k: int = 10, customers=None) -> pd.DataFrame:
    custs = _customers(tx, customers)
    sub = tx[tx["customer_id"].isin(custs)]
    g = (
        sub.groupby(["customer_id", "item_id"])
        .agg(n_b=("basket_id", "nunique"), last=("ts", "max"))
        .reset_index()
        .sort_values(
            ["customer_id", "n_b", "last", "item_id"], ascending=[True, False, False, True]
        )
    )
    g["rank"] = g.groupby("customer_id").cumcount() + 1
    return g[g["rank"] <= k][["customer_id", "rank", "item_id"]].reset_index(drop=True)


def personal_then_popular(tx: pd.DataFrame, k: int = 10, customers=None) -> pd.DataFrame:
    own = own_most_frequent(tx, k, customers)
    pop = global_popularity(tx, k, customers)
    pop["rank"] = pop["rank"] + k  # after every own item
    both = pd.concat([own, pop], ignore_index=True).sort_values(["customer_id", "rank"])
    both = both.drop_duplicates(["customer_id", "item_id"], keep="first")
    both["rank"] = both.groupby("customer_id").cumcount() + 1
    return both[both["rank"] <= k].reset_index(drop=True)


def all_baselines(tx: pd.DataFrame, k: int = 10, customers=None) -> dict[str, pd.DataFrame]:
    return {
        "global_popularity": global_popularity(tx, k, customers),
        "own_most_frequent": own_most_frequent(tx, k, customers),
        "personal_then_popular": personal_then_popular(tx, k, customers),
    }
