"""The baselines that are notoriously hard to beat in next-basket recommendation.

- global popularity: the k items bought by the most customers, the same list for everyone;
- own most frequent: the customer's own items by number of baskets (ties: most recent first);
- personal-then-popular: own most frequent, then filled with global popularity up to k
  (P-TopFreq and GP-TopFreq of the "Next Basket Recommendation Reality Check");
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

from cemlib.offers.tifu import Tifu, TifuParams, user_vectors

BASELINES: tuple[str, ...] = (
    "global_popularity",
    "own_most_frequent",
    "personal_then_popular",
    "tifu_knn",
    "repurchase_cycle",
)


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


def _then_popular(ranked: pd.DataFrame, tx: pd.DataFrame, k: int, customers) -> pd.DataFrame:
    """``ranked`` (customer_id, rank, item_id) filled up to ``k`` with global popularity."""
    pop = global_popularity(tx, k, customers)
    pop["rank"] = pop["rank"] + ranked["rank"].max() if len(ranked) else pop["rank"]
    both = pd.concat([ranked, pop], ignore_index=True).sort_values(
        ["customer_id", "rank"], kind="stable"
    )
    both = both.drop_duplicates(["customer_id", "item_id"], keep="first")
    both["rank"] = both.groupby("customer_id").cumcount() + 1
    return both[both["rank"] <= k][["customer_id", "rank", "item_id"]].reset_index(drop=True)


def tifu_knn(
    tx: pd.DataFrame, k: int = 10, customers=None, params: TifuParams | None = None
) -> pd.DataFrame:
    """TIFU-KNN (:mod:`cemlib.offers.tifu`, the paper's Ta-Feng settings by default)."""
    custs = _customers(tx, customers)
    cust_codes, c = np.unique(tx["customer_id"].to_numpy(), return_inverse=True)
    items, i = np.unique(tx["item_id"].to_numpy(), return_inverse=True)
    d = (tx["ts"].dt.normalize() - pd.Timestamp("1970-01-01")).dt.days.to_numpy()
    U = user_vectors(
        c, tx["basket_id"].to_numpy(), i, d, len(cust_codes), len(items), params or TifuParams()
    )
    pos = pd.Index(cust_codes).get_indexer(custs)
    s = Tifu(U, params or TifuParams()).scores(pos[pos >= 0], top=k)
    s = s[s["tifu_rank"] <= k]
    ranked = pd.DataFrame(
        {
            "customer_id": cust_codes[s["c"].to_numpy()],
            "rank": s["tifu_rank"].to_numpy(),
            "item_id": items[s["i"].to_numpy()],
        }
    )
    return _then_popular(ranked, tx, k, custs)


def repurchase_cycle(tx: pd.DataFrame, k: int = 10, customers=None) -> pd.DataFrame:
    """Own items bought in 2+ baskets, due first: by ``max(last + mean gap - as_of, 0)`` (ties:
    more baskets); repeat items overdue by more than two gaps, then the customer's other items
    by frequency, then popular items follow."""
    custs = _customers(tx, customers)
    sub = tx[tx["customer_id"].isin(custs)]
    days = (sub["ts"].dt.normalize() - pd.Timestamp("1970-01-01")).dt.days
    g = (
        sub.assign(d=days)
        .groupby(["customer_id", "item_id"])
        .agg(n_b=("basket_id", "nunique"), first=("d", "min"), last=("d", "max"))
        .reset_index()
    )
    T = int(days.max()) if len(days) else 0
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
    return _then_popular(g[g["rank"] <= k][["customer_id", "rank", "item_id"]], tx, k, custs)


def all_baselines(tx: pd.DataFrame, k: int = 10, customers=None) -> dict[str, pd.DataFrame]:
    return {
        "global_popularity": global_popularity(tx, k, customers),
        "own_most_frequent": own_most_frequent(tx, k, customers),
        "personal_then_popular": personal_then_popular(tx, k, customers),
        "tifu_knn": tifu_knn(tx, k, customers),
        "repurchase_cycle": repurchase_cycle(tx, k, customers),
    }
