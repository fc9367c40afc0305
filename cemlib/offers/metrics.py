"""Ranking metrics at k for next-offer lists: NDCG, Recall, HitRate and MAP, split into repeat
and new items.

Relevance is binary: an item is relevant when the customer bought it in the evaluation window.
A customer is evaluated when they bought something in the window and are in ``customers``
(normally: everyone with history before the window). The *repeat* figures use as truth only the
items the customer had bought before; the *new* figures only the items never bought before; the
recommended list is the same full top-k list in all three.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS: tuple[str, ...] = ("ndcg", "recall", "hitrate", "map")


def _per_customer(recs: pd.DataFrame, truth: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per-customer metrics; ``recs`` has customer_id, rank (1-based), item_id."""
    n_true = truth.groupby("customer_id").size().rename("n_true")
    top = recs[recs["rank"] <= k][["customer_id", "rank", "item_id"]]
    hits = top.merge(truth.assign(_hit=1), on=["customer_id", "item_id"], how="inner")
    hits = hits.sort_values(["customer_id", "rank"])
    hits["disc"] = 1.0 / np.log2(hits["rank"].to_numpy() + 1.0)
    hits["cum_hits"] = hits.groupby("customer_id").cumcount() + 1
    hits["prec"] = hits["cum_hits"] / hits["rank"]
    agg = hits.groupby("customer_id").agg(
        dcg=("disc", "sum"), n_hit=("_hit", "sum"), ap=("prec", "sum")
    )
    out = pd.DataFrame(index=n_true.index).join(n_true).join(agg).fillna(0.0)
    ideal_n = np.minimum(out["n_true"].to_numpy(), k).astype(int)
    idcg_table = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    out["ndcg"] = out["dcg"] / idcg_table[ideal_n]
    out["recall"] = out["n_hit"] / out["n_true"]
    out["hitrate"] = (out["n_hit"] > 0).astype(float)
    out["map"] = out["ap"] / ideal_n
    return out[list(METRICS)]


def evaluate(
    recs: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    k: int = 10,
    history: pd.DataFrame | None = None,
    customers=None,
) -> dict[str, float]:
    """Mean metrics@k over evaluated customers, overall and split repeat/new.

    ``truth`` holds the (customer_id, item_id) pairs bought in the evaluation window; ``history``
    the pairs bought before it (for the repeat/new split); ``customers`` restricts the evaluated
    customers (default: everyone in ``truth``).
    """
    truth = truth[["customer_id", "item_id"]].drop_duplicates()
    if customers is not None:
        truth = truth[truth["customer_id"].isin(pd.Index(customers))]
    result: dict[str, float] = {"customers": float(truth["customer_id"].nunique())}
    parts = {"": truth}
    if history is not None:
        seen = history[["customer_id", "item_id"]].drop_duplicates().assign(_seen=True)
        flagged = truth.merge(seen, on=["customer_id", "item_id"], how="left")
        is_rep = flagged["_seen"].eq(True).to_numpy()
        parts["repeat_"] = flagged.loc[is_rep, ["customer_id", "item_id"]]
        parts["new_"] = flagged.loc[~is_rep, ["customer_id", "item_id"]]
        result["repeat_share"] = float(is_rep.mean()) if len(is_rep) else float("nan")
    for prefix, part in parts.items():
        if part.empty:
            for m in METRICS:
                result[f"{prefix}{m}@{k}"] = float("nan")
            continue
        per = _per_customer(recs, part, k)
        for m in METRICS:
            result[f"{prefix}{m}@{k}"] = float(per[m].mean())
    return result


def candidate_recall(candidates: pd.DataFrame, truth: pd.DataFrame, customers=None) -> float:
    """Share of the (customer, item) pairs actually bought that were among the candidates."""
    truth = truth[["customer_id", "item_id"]].drop_duplicates()
    if customers is not None:
        truth = truth[truth["customer_id"].isin(pd.Index(customers))]
    if truth.empty:
        return float("nan")
    found = truth.merge(
        candidates[["customer_id", "item_id"]].drop_duplicates(), on=["customer_id", "item_id"]
    )
    return len(found) / len(truth)
