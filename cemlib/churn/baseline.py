"""The naive baselines a churn model has to beat, scored on the model's own held-out window.

* **recency**: the more recently a customer bought, the likelier they buy again (the ranking
  behind every RFM segmentation); it ranks but predicts no count.
* **last period repeats**: each customer buys in the next ``H`` days as often as in the last
  ``H`` days before the cut; its share who bought is its probability.

Both see only the history up to ``as_of - H``, like the model's held-out refit, and are graded
on the same customers' own purchases in ``(as_of - H, as_of]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from cemlib.churn.evaluate import future_outcomes, top_share
from cemlib.churn.features import purchase_occasions, validate_transactions


def baseline_scores(transactions: pd.DataFrame, cut: pd.Timestamp, horizon: int) -> pd.DataFrame:
    """Per customer with a purchase on or before ``cut``: days since the last purchase, the
    purchases in the ``horizon`` days up to ``cut`` and the revenue of those days."""
    occ = purchase_occasions(validate_transactions(transactions), cut)  # returns known at cut
    g = occ.groupby("customer_id")
    out = pd.DataFrame({"days_since_last": (cut - g["day"].max()).dt.days.astype(float)})
    recent = occ[occ["day"] > cut - pd.Timedelta(days=horizon)].groupby("customer_id")
    out["last_period_purchases"] = recent.size().reindex(out.index).fillna(0).astype(float)
    out["last_period_revenue"] = recent["amount"].sum().reindex(out.index).fillna(0.0)
    return out


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def baseline_metrics(transactions: pd.DataFrame, as_of, horizon: int) -> pd.DataFrame:
    """AUC, count errors, totals and top-decile revenue capture of the two baselines on the
    held-out window ``(as_of - horizon, as_of]`` (rows: baseline; empty when too short)."""
    as_of = pd.Timestamp(as_of).normalize()
    cut = as_of - pd.Timedelta(days=int(horizon))
    tx = transactions[transactions["ts"] < as_of + pd.Timedelta(days=1)]
    base = baseline_scores(tx, cut, int(horizon))
    if base.empty:
        return pd.DataFrame()
    fut = future_outcomes(tx, cut, int(horizon), base.index)
    y = (fut["n"] > 0).to_numpy()
    actual_total = float(fut["n"].sum())
    recency = -base["days_since_last"].to_numpy()
    repeat = base["last_period_purchases"].to_numpy()
    rows = {
        "recency (days since the last purchase)": {
            "auc": _auc(y, recency),
            "top10_revenue_share": top_share(recency, fut["revenue"].to_numpy(), 0.1),
        },
        "last period repeats": {
            "auc": _auc(y, repeat),
            "rmse": float(np.sqrt(np.mean((repeat - fut["n"].to_numpy()) ** 2))),
            "mae": float(np.mean(np.abs(repeat - fut["n"].to_numpy()))),
            "predicted_total": float(repeat.sum()),
            "actual_total": actual_total,
            "total_error": float(repeat.sum()) / max(actual_total, 1e-9) - 1.0,
            "top10_revenue_share": top_share(
                base["last_period_revenue"].to_numpy(), fut["revenue"].to_numpy(), 0.1
            ),
        },
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def metric_table(truth: dict, baselines: pd.DataFrame) -> pd.DataFrame:
    """The model's held-out figures beside the baselines', one row each, same columns."""
    cols = ["auc", "rmse", "mae", "predicted_total", "actual_total", "total_error",
            "top10_revenue_share"]  # fmt: skip
    model = {c: truth.get(c, np.nan) for c in cols}
    table = pd.concat([pd.DataFrame([model], index=["model"]), baselines.reindex(columns=cols)])
    table.index.name = "predictor"
    return table.reset_index()


def graded_against_recency(
    forecast: pd.DataFrame, transactions: pd.DataFrame, since, until
) -> dict | None:
    """An earlier run's forecast graded against recency on the purchases realized since:
    ``forecast`` (``customer_id``, ``p_purchase``: what the monitor keeps,
    ``monitor.churn_forecast``) made at ``since``; each customer's days since the last purchase
    at ``since`` and whether they bought in ``(since, until]`` come from ``transactions``.

    Returns the forecast's as_of, customers, buyers, the AUC of the forecast and of recency on
    the same customers, and the standard error of their difference (paired bootstrap, 200
    seeded draws); None when nobody or everybody bought (no AUC)."""
    since, until = pd.Timestamp(since).normalize(), pd.Timestamp(until).normalize()
    tx = transactions[transactions["ts"] < until + pd.Timedelta(days=1)]
    base = baseline_scores(tx, since, 1)
    f = forecast.assign(customer_id=forecast["customer_id"].astype(str))
    f = f[f["customer_id"].isin(base.index)].drop_duplicates("customer_id")
    if f.empty:
        return None
    fut = future_outcomes(tx, since, int((until - since).days), pd.Index(f["customer_id"]))
    y = (fut["n"] > 0).to_numpy()
    p = f["p_purchase"].to_numpy(dtype=float)
    recency = -base.loc[f["customer_id"], "days_since_last"].to_numpy()
    if not 0 < y.sum() < len(y):
        return None
    model, naive = _auc(y, p), _auc(y, recency)
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(200):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            diffs.append(_auc(y[i], p[i]) - _auc(y[i], recency[i]))
    return {
        "forecast as_of": str(since.date()),
        "customers": int(len(y)),
        "buyers": int(y.sum()),
        "auc": model,
        "recency auc": naive,
        "margin se": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("nan"),
    }
