"""How good are the churn scores: discrimination, calibration and error of counts.

Evaluated against what happened in ``(as_of, as_of + H]``: the time to the first purchase after
``as_of`` (censored at ``H``, the only censoring, so the Brier score needs no IPCW weights), the
number of purchase occasions and the revenue. On the synthetic world also against each person's
true dropout date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifelines.utils import concordance_index
from sklearn.metrics import roc_auc_score

from cemlib.churn.features import purchase_occasions, validate_transactions


def future_outcomes(
    transactions: pd.DataFrame, as_of: pd.Timestamp, horizon: int, customers: pd.Index
) -> pd.DataFrame:
    """Per customer in ``customers``: ``n`` occasions and ``revenue`` in (as_of, as_of + H],
    ``time`` to the first of them (H when none) and ``event``."""
    occ = purchase_occasions(validate_transactions(transactions))
    return outcomes_of_occasions(occ, as_of, horizon, customers)


def outcomes_of_occasions(
    occasions: pd.DataFrame, as_of: pd.Timestamp, horizon: int, customers: pd.Index
) -> pd.DataFrame:
    """:func:`future_outcomes` from purchase occasions already made
    (:func:`~cemlib.churn.features.purchase_occasions`): one pass over the transactions for
    several horizons or sets of customers."""
    as_of = pd.Timestamp(as_of).normalize()
    occ = occasions
    w = occ[(occ["day"] > as_of) & (occ["day"] <= as_of + pd.Timedelta(days=horizon))]
    g = w.groupby("customer_id")
    out = pd.DataFrame(index=pd.Index(customers, name="customer_id"))
    out["n"] = g.size().reindex(out.index).fillna(0).astype(float)
    out["revenue"] = g["amount"].sum().reindex(out.index).fillna(0.0)
    first = (g["day"].min() - as_of).dt.days.reindex(out.index)
    out["event"] = first.notna().astype(int)
    out["time"] = first.fillna(horizon).astype(float)
    return out


def top_share(value: np.ndarray, actual: np.ndarray, share: float) -> float:
    """Share of the ``actual`` total captured by the top ``share`` of customers by ``value``."""
    order = np.argsort(-np.asarray(value), kind="stable")
    k = max(1, int(round(share * len(order))))
    total = float(np.sum(actual))
    return float(np.sum(np.asarray(actual)[order[:k]]) / total) if total > 0 else float("nan")


def _rows(curves, positions) -> np.ndarray:
    """Rows of a curves table: a DataFrame or a :class:`~cemlib.churn.views.SurvivalCurves`
    (which computes only the rows asked for)."""
    if isinstance(curves, pd.DataFrame):
        return curves.to_numpy()[positions]
    return curves.rows(positions)


def time_dependent_concordance(
    curves, time: np.ndarray, event: np.ndarray, max_n: int = 3000, seed: int = 0
) -> float:
    """Antolini's C^td: for comparable pairs (i had its event before j's time), the share where
    i's predicted survival at T_i is lower than j's. ``curves`` columns are days 1..H (a
    DataFrame or a :class:`~cemlib.churn.views.SurvivalCurves`)."""
    rng = np.random.default_rng(seed)
    n = len(time)
    idx = rng.choice(n, max_n, replace=False) if n > max_n else np.arange(n)
    S = _rows(curves, idx)
    T, E = np.asarray(time)[idx], np.asarray(event)[idx]
    cols = np.clip(np.searchsorted(curves.columns.to_numpy(dtype=float), T), 0, S.shape[1] - 1)
    conc = comp = 0.0
    for i in np.flatnonzero(E == 1):
        later = (T[i] < T) | ((T[i] == T) & (E == 0))
        if not later.any():
            continue
        si = S[i, cols[i]]
        sj = S[later, cols[i]]
        comp += later.sum()
        conc += np.sum(si < sj) + 0.5 * np.sum(si == sj)
    return float(conc / comp) if comp else float("nan")


def brier_scores(curves, time: np.ndarray) -> pd.Series:
    """Brier score of the survival curves at each day (administrative censoring at H only);
    ``curves`` a DataFrame or a :class:`~cemlib.churn.views.SurvivalCurves`."""
    t = curves.columns.to_numpy(dtype=float)
    time = np.asarray(time)
    n = len(curves.index)
    total = np.zeros(len(t))
    # block by block: the alive indicator and the squares of all customers at once were three
    # arrays the size of the curves (and lazy curves are computed a block at a time)
    for lo in range(0, n, 20_000):
        S = _rows(curves, slice(lo, lo + 20_000))
        alive = (time[lo : lo + 20_000, None] > t[None, :]).astype(float)
        total += ((alive - S) ** 2).sum(axis=0)
    return pd.Series(total / max(n, 1), index=t)


def calibration_table(p: np.ndarray, observed: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted against observed purchase probability per decile of prediction."""
    df = pd.DataFrame({"p": p, "y": observed})
    df["bin"] = pd.qcut(df["p"].rank(method="first"), bins, labels=False)
    t = df.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
    return t.reset_index(drop=True)


def evaluate_predictions(
    pred: pd.DataFrame,
    transactions: pd.DataFrame,
    as_of: pd.Timestamp,
    horizon: int,
    curves=None,
    outcomes: pd.DataFrame | None = None,
) -> dict[str, float]:
    """AUC of any purchase, RMSE/MAE of counts, totals, top-decile revenue capture, Harrell's
    and time-dependent concordance, integrated Brier score and calibration error (the last
    two need ``curves``: a DataFrame or a :class:`~cemlib.churn.views.SurvivalCurves`).
    ``outcomes``: :func:`future_outcomes` of ``transactions`` over ``horizon``, when already
    computed (``transactions`` is then not read)."""
    p = pred.set_index("customer_id")
    H = int(horizon)
    pcol = f"p_purchase_{H}" if f"p_purchase_{H}" in p else "p_purchase"
    ncol = f"expected_purchases_{H}" if f"expected_purchases_{H}" in p else "expected_purchases"
    vcol = f"clv_{H}" if f"clv_{H}" in p else "clv"
    if outcomes is None:
        fut = future_outcomes(transactions, as_of, H, p.index)
    else:
        fut = outcomes.reindex(p.index)
    y = (fut["n"] > 0).to_numpy()
    n_pred = p[ncol].to_numpy()
    res = {
        "customers": float(len(p)),
        "auc": float(roc_auc_score(y, p[pcol])) if 0 < y.sum() < len(y) else float("nan"),
        "rmse": float(np.sqrt(np.mean((n_pred - fut["n"].to_numpy()) ** 2))),
        "mae": float(np.mean(np.abs(n_pred - fut["n"].to_numpy()))),
        "predicted_total": float(n_pred.sum()),
        "actual_total": float(fut["n"].sum()),
        "top10_revenue_share": top_share(p[vcol].to_numpy(), fut["revenue"].to_numpy(), 0.1),
        "top20_revenue_share": top_share(p[vcol].to_numpy(), fut["revenue"].to_numpy(), 0.2),
        "harrell_c": float(concordance_index(fut["time"], 1.0 - p[pcol], fut["event"])),
    }
    res["total_error"] = res["predicted_total"] / max(res["actual_total"], 1e-9) - 1.0
    cal = calibration_table(p[pcol].to_numpy(), y.astype(float))
    res["calibration_error"] = float(
        np.average(np.abs(cal["predicted"] - cal["observed"]), weights=cal["n"])
    )
    if curves is not None:
        c = curves if curves.index.equals(p.index) else curves.reindex(p.index)
        res["td_concordance"] = time_dependent_concordance(
            c, fut["time"].to_numpy(), fut["event"].to_numpy()
        )
        bs = brier_scores(c, fut["time"].to_numpy())
        res["integrated_brier"] = float(
            np.trapezoid(bs.to_numpy(), bs.index) / (bs.index[-1] - bs.index[0])
        )
    return res


def concordance_vs_dropout(
    pred: pd.DataFrame,
    people: pd.DataFrame,
    as_of: str | pd.Timestamp,
    score: str = "p_purchase",
    alive_only: bool = False,
) -> float:
    """Harrell's C between a score (higher = more likely to stay) and each person's true dropout
    date (no dropout date: censored at the latest date seen). ``alive_only`` restricts to people
    still active at ``as_of`` (the harder question: who of the living leaves first)."""
    as_of = pd.Timestamp(as_of).normalize()
    ppl = people.copy()
    ppl["customer_id"] = ppl["person_id"].astype(str)
    d = pd.to_datetime(ppl["true_dropout_date"])
    m = pred[["customer_id", score]].merge(
        ppl.assign(_d=d)[["customer_id", "_d"]], on="customer_id", how="inner"
    )
    if alive_only:
        m = m[m["_d"].isna() | (m["_d"] > as_of)]
    end = m["_d"].max() if m["_d"].notna().any() else as_of + pd.Timedelta(days=3650)
    life = (m["_d"].fillna(end) - as_of).dt.days.astype(float)
    return float(concordance_index(life, m[score], m["_d"].notna().astype(int)))
