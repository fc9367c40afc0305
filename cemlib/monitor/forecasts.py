"""The previous run's forecasts graded against what happened since.

The previous run's churn scores and next offers are keyed by its profile ids; the ids last
across runs (``identity.registry``), so an id that was merged or split since is followed to
the profile that holds it now. Only purchases dated after the previous ``as_of`` and on or
before this one count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from cemlib.monitor.window import grade_offers_sql, unattributed_profiles, window_outcomes
from cemlib.warehouse import Warehouse

#: the forecast columns a run keeps for the next run to grade (``monitor.churn_forecast``)
CHURN_FORECAST = ("customer_id", "p_purchase", "expected_purchases", "expected_revenue",
                  "risk_segment", "historic_value", "clv", "horizon_days")  # fmt: skip


def churn_forecast(scores: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """This run's churn forecast for the schedule's period: the ``p_purchase_<h>`` /
    ``expected_*_<h>`` columns of ``marts.churn_scores`` for ``h = horizon_days`` (else the
    nearest horizon it holds, named in ``horizon_days``), the risk segment and historic value."""
    held = sorted(int(c.rsplit("_", 1)[1]) for c in scores.columns
                  if c.startswith("p_purchase_") and c.rsplit("_", 1)[1].isdigit())  # fmt: skip
    h = min(held, key=lambda x: (abs(x - horizon_days), x)) if held else None
    out = pd.DataFrame({"customer_id": scores["customer_id"].astype(str)})
    for name in ("p_purchase", "expected_purchases", "expected_revenue"):
        col = f"{name}_{h}" if h is not None and f"{name}_{h}" in scores else name
        out[name] = scores[col].astype(float).to_numpy()
    out["risk_segment"] = scores["risk_segment"].astype(str).to_numpy()
    out["historic_value"] = (scores["mean_amount"] * scores["n_purchases"]).astype(float).to_numpy()
    out["clv"] = scores["clv"].astype(float).to_numpy()
    out["horizon_days"] = int(h if h is not None else scores.get("horizon_days", [0])[0])
    return out[list(CHURN_FORECAST)]


def current_ids(wh: Warehouse, ids: pd.Series) -> pd.Series:
    """Each profile id of an earlier run as it is now: ids merged or split since are followed
    through ``identity.registry``'s ``merged_into`` (an id not in the registry stays)."""
    ids = ids.astype(str)
    if not wh.has_table("identity", "registry"):
        return ids
    reg = wh.sql(
        "SELECT CAST(profile_id AS VARCHAR) AS p, CAST(merged_into AS VARCHAR) AS m "
        "FROM identity.registry WHERE merged_into IS NOT NULL AND status IN ('merged', 'split')"
    )
    step = pd.Series(reg["m"].to_numpy(), index=reg["p"].to_numpy())
    if step.empty:
        return ids
    out = ids.map(step).fillna(ids)
    for _ in range(20):  # chains of merges over many runs
        nxt = out.map(step).fillna(out)
        if nxt.equals(out):
            break
        out = nxt
    return out


def calibration_bins(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Predicted against observed share of buyers in deciles of the predicted probability."""
    frame = pd.DataFrame({"p": p, "y": y})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), n_bins, labels=False)
    g = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
    return g.reset_index()


def grade_churn(
    wh: Warehouse, forecast: pd.DataFrame, since: str, until: str
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Grade the previous run's ``forecast`` (:data:`CHURN_FORECAST`) on the purchases dated
    after ``since`` and on or before ``until``, keyed by today's profile ids: AUC of
    "purchased again", Brier score, realized against expected purchases and revenue.

    When the elapsed days differ from the forecast's horizon (a nightly run grading a 30-day
    forecast after one day), the forecast is scaled to the elapsed days before it is compared:
    expected purchases and revenue by ``elapsed / horizon`` (:func:`window_share`), the
    probability of a purchase by :func:`p_within`; ``expectation scaled to the elapsed days``
    holds the factor (1.0: not scaled) and the unscaled totals are kept beside.

    A customer with no purchase on their profile in the window, but whose phone, e-mail, card or
    device an order or receipt of the window carries that identity attached to no profile
    (:func:`~cemlib.monitor.window.unattributed_profiles`: the family's card at the till), has
    an outcome the data cannot tell: they are left out of the AUC, Brier score and calibration
    (counted in ``customers left out: outcome unknown``; the AUC counting them as not bought is
    ``auc, unknown counted as not bought``). The realized and expected totals are over every
    customer. Returns (figures, calibration bins, per-customer outcomes with ``graded``)."""
    f = forecast.copy()
    elapsed = (pd.Timestamp(until) - pd.Timestamp(since)).days
    horizon = int(f["horizon_days"].iloc[0]) if len(f) else None
    share = window_share(elapsed, horizon)
    horizon_expected = (float(f["expected_purchases"].sum()), float(f["expected_revenue"].sum()))
    if share != 1.0:  # the forecast of `horizon` days graded on the `elapsed` days there are
        f["p_purchase"] = p_within(f["p_purchase"].to_numpy(dtype=float), share)
        f[["expected_purchases", "expected_revenue"]] *= share
    f["current_id"] = current_ids(wh, f["customer_id"]).to_numpy()
    got = window_outcomes(wh, since, until)
    # a profile merged into another since: the purchases of the merged profile are counted once
    per = f.join(got, on="current_id")
    per[["purchases", "revenue"]] = per[["purchases", "revenue"]].fillna(0.0)
    shared = per.duplicated("current_id", keep=False)
    per["bought"] = (per["purchases"] > 0).astype(float)
    unknown = per["current_id"].astype(str).isin(unattributed_profiles(wh, since, until))
    per["graded"] = ~(unknown & (per["bought"] == 0)).to_numpy()
    g = per["graded"].to_numpy()
    y_all, p_all = per["bought"].to_numpy(), per["p_purchase"].to_numpy()
    y, p = y_all[g], p_all[g]
    first = ~per.duplicated("current_id")
    figures = {
        "customers graded": int(g.sum()),
        "customers left out: outcome unknown": int((~g).sum()),
        "elapsed days": int(elapsed),
        "forecast horizon days": horizon,
        "expectation scaled to the elapsed days": share,
        "expected purchases over the horizon": horizon_expected[0],
        "expected revenue over the horizon": horizon_expected[1],
        "buyers": int(y.sum()),
        "auc": _auc(y, p),
        "auc, unknown counted as not bought": _auc(y_all, p_all),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "mean predicted p": float(p.mean()) if len(p) else float("nan"),
        "observed share buying": float(y.mean()) if len(y) else float("nan"),
        "expected purchases": float(per["expected_purchases"].sum()),
        "realized purchases": float(per.loc[first, "purchases"].sum()),
        "expected revenue": float(per["expected_revenue"].sum()),
        "realized revenue": float(per.loc[first, "revenue"].sum()),
        "ids followed to another profile": int((per["current_id"] != per["customer_id"]).sum()),
        "ids sharing a profile now": int(shared.sum()),
    }
    cal = calibration_bins(p, y) if len(y) >= 10 else pd.DataFrame()
    return figures, cal, per[["customer_id", "current_id", "p_purchase", "bought", "graded",
                              "purchases", "revenue"]]  # fmt: skip


def window_share(elapsed: int, horizon: int | None) -> float:
    """The part of a ``horizon``-day forecast that ``elapsed`` days can grade: ``elapsed /
    horizon`` (1.0 when they are equal or the horizon is unknown). A nightly schedule grades a
    30-day forecast after 1 day (1/30), a monthly one after 31 (31/30)."""
    return float(elapsed) / horizon if horizon and elapsed > 0 and elapsed != horizon else 1.0


def p_within(p_horizon: np.ndarray, share: float) -> np.ndarray:
    """P(a purchase within ``share`` of the horizon) from P(a purchase within the horizon),
    with a constant purchase hazard inside the horizon (the survival curve ``S(t) =
    S(h) ** (t / h)``): ``1 - (1 - p) ** share``. Monotone in ``p``, so the AUC is unchanged;
    the Brier score, calibration and mean predicted ``p`` compare like with like."""
    return 1.0 - np.power(np.clip(1.0 - p_horizon, 0.0, 1.0), share)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def grade_offers(
    wh: Warehouse, offers: str, since: str, until: str, k: int = 10, exclude=()
) -> pd.DataFrame:
    """Hit rate@k and NDCG@k of the previous run's offers (the table ``offers``: profile_id,
    rank, item_id) on the items bought since, beside the personal-then-popular baseline made
    at that time (from purchases up to ``since`` only). One row per method. ``exclude``: the
    exclusion entries those offers were made with, left out of the targets and the baseline."""
    ids = wh.sql(f"SELECT DISTINCT CAST(profile_id AS VARCHAR) AS profile_id FROM {offers}")
    ids["customer_id"] = current_ids(wh, ids["profile_id"]).to_numpy()
    model, base = grade_offers_sql(wh, offers, ids, since, until, k, exclude)
    return pd.DataFrame([
        {"method": "next offers (previous run)", **model},
        {"method": "baseline: personal then popular", **base},
    ])  # fmt: skip
