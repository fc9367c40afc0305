"""CDNOW benchmark of ``cem churn`` against BG/NBD and Pareto/NBD (+ Gamma-Gamma).

The whole CDNOW_master file shipped with ``lifetimes`` (23,570 customers, 1997-01..1998-06,
same-day purchases aggregated) goes through the same code path as ``cem churn`` with
``as_of = 1997-09-30`` and a 273-day horizon, so the stage's own date handling keeps the holdout
(1997-10-01..1998-06-30) out. The peers are fitted on the calibration period only. Printed for
each: ROC AUC of any holdout purchase, RMSE/MAE of holdout purchase counts, predicted vs actual
total, share of holdout revenue captured by the top 10% / 20% by predicted CLV, seconds.

``--inner`` is the backtest *inside* the calibration period, on which design choices are made:
the file truncated to 1997-09-30, ``as_of = 1997-06-30``, evaluated on 1997-07-01..1997-09-30
(92 days), peers fitted to 1997-06-30; same code path, same figures. The real holdout is only
for confirming a choice once.

    .venv/bin/python benchmarks/churn_cdnow.py            # the real 273-day holdout
    .venv/bin/python benchmarks/churn_cdnow.py --inner    # the inner backtest (design window)
    .venv/bin/python benchmarks/churn_cdnow.py --inner 1997-05-31   # other inner cut-offs
    .venv/bin/python benchmarks/churn_cdnow.py --ceiling  # + what the purchase history allows

``--ceiling`` is analysis, not a forecast: LightGBM boosters are cross-validated (5 folds, 3
seeds) on the evaluated window's *own* revenue, from the purchase-history features any model of
this file could use, and their out-of-fold top-10% share is printed. Trained on 80% of the very
outcomes they are scored on, they bound what a ranking from these features can capture. A
bootstrap of customers gives the spread of cemlib's own top-10% share.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

AS_OF = "1997-09-30"
HOLDOUT_END = "1998-06-30"
# the inner backtest: the same split moved back one quarter, inside the calibration period
INNER_AS_OF = "1997-06-30"
INNER_END = "1997-09-30"


def load_cdnow() -> pd.DataFrame:
    import lifetimes  # benchmark only: it silences FutureWarnings process-wide

    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    df = pd.read_csv(
        path,
        sep=r"\s+",
        header=0,
        names=["customer_id", "date", "quantity", "amount"],
        dtype={"customer_id": str, "date": str},
    )
    return df


def figures(name, score, count, clv, actual_n, actual_rev, seconds) -> dict:
    from cemlib.churn.evaluate import top_share

    return {
        "model": name,
        "auc": roc_auc_score(actual_n > 0, score),
        "rmse": float(np.sqrt(np.mean((count - actual_n) ** 2))),
        "mae": float(np.mean(np.abs(count - actual_n))),
        "predicted_total": float(count.sum()),
        "actual_total": float(actual_n.sum()),
        "total_error_%": 100 * (float(count.sum()) / float(actual_n.sum()) - 1),
        "top10_revenue": top_share(clv, actual_rev, 0.10),
        "top20_revenue": top_share(clv, actual_rev, 0.20),
        "seconds": seconds,
    }


def history_features(daily: pd.DataFrame, as_of: str, customers: pd.Index) -> pd.DataFrame:
    """Per-customer purchase-history features up to ``as_of`` (customer-days with amount and
    quantity): counts, spend, recency, age, gaps and recent windows."""
    a = pd.Timestamp(as_of)
    cal = daily[daily["day"] <= a].sort_values(["customer_id", "day"])
    cal = cal.assign(gap=cal.groupby("customer_id")["day"].diff().dt.days)
    g = cal.groupby("customer_id")
    f = {
        "n": g.size(),
        "revenue": g["amount"].sum(),
        "mean": g["amount"].mean(),
        "max": g["amount"].max(),
        "min": g["amount"].min(),
        "first": g["amount"].first(),
        "last": g["amount"].last(),
        "quantity": g["quantity"].sum(),
        "max_quantity": g["quantity"].max(),
        "recency": (a - g["day"].max()).dt.days,
        "age": (a - g["day"].min()).dt.days,
        "gap_mean": g["gap"].mean(),
        "gap_min": g["gap"].min(),
        "gap_max": g["gap"].max(),
        "gap_last": g["gap"].last(),
    }
    for days in (30, 90, 180):
        w = cal[cal["day"] > a - pd.Timedelta(days=days)].groupby("customer_id")
        f[f"n_{days}"] = w.size()
        f[f"revenue_{days}"] = w["amount"].sum()
    return pd.DataFrame(f).reindex(customers)


TWEEDIE = {"objective": "tweedie", "tweedie_variance_power": 1.5}
CEILING_MODELS = {
    "Tweedie 1.5, 15 leaves": {**TWEEDIE, "num_leaves": 15, "min_data_in_leaf": 100},
    "Tweedie 1.5, 4 leaves": {**TWEEDIE, "num_leaves": 4, "min_data_in_leaf": 500},
    "Poisson, 7 leaves": {"objective": "poisson", "num_leaves": 7, "min_data_in_leaf": 200},
    "Huber (alpha 50), 15 leaves": {
        "objective": "huber",
        "alpha": 50.0,
        "num_leaves": 15,
        "min_data_in_leaf": 100,
    },
}


def ceiling(features: pd.DataFrame, actual_rev: np.ndarray, clv: np.ndarray) -> None:
    """Print the top-10% share of boosters cross-validated on the window's own revenue, and a
    bootstrap interval of cemlib's share (see the module docstring)."""
    import lightgbm as lgb

    from cemlib.churn.evaluate import top_share

    print("\nCeiling (analysis only: boosters trained on 80% of the evaluated window's revenue)")
    for name, params in CEILING_MODELS.items():
        shares = []
        for seed in range(3):
            fold = np.random.default_rng(seed).integers(0, 5, len(features))
            oof = np.zeros(len(features))
            for k in range(5):
                train = fold != k
                booster = lgb.train(
                    {
                        **params,
                        "learning_rate": 0.03,
                        "seed": seed,
                        "num_threads": 2,
                        "verbose": -1,
                    },
                    lgb.Dataset(features[train], actual_rev[train]),
                    400,
                )
                oof[~train] = booster.predict(features[~train])
            shares.append(top_share(oof, actual_rev, 0.10))
        print(
            f"  {name:<28} top-10% {np.mean(shares):.4f} "
            f"(seeds {', '.join(f'{x:.4f}' for x in shares)})"
        )
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(1000):
        i = rng.integers(0, len(clv), len(clv))
        boot.append(top_share(clv[i], actual_rev[i], 0.10))
    lo, hi = np.quantile(boot, [0.025, 0.975])
    print(
        f"  cemlib churn                 top-10% {top_share(clv, actual_rev, 0.10):.4f}, "
        f"bootstrap of customers: sd {np.std(boot):.4f}, 95% interval {lo:.4f}..{hi:.4f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-peers", action="store_true", help="only run cemlib")
    ap.add_argument(
        "--inner",
        nargs="?",
        const=INNER_AS_OF,
        metavar="AS_OF",
        help="inner backtest: file cut at 1997-09-30, as_of 1997-06-30 (or AS_OF), holdout to "
        "1997-09-30",
    )
    ap.add_argument(
        "--ceiling",
        action="store_true",
        help="also print what boosters cross-validated on the evaluated window's own revenue "
        "capture (analysis only) and a bootstrap interval of cemlib's top-10%% share",
    )
    args = ap.parse_args()
    as_of, end = (args.inner, INNER_END) if args.inner else (AS_OF, HOLDOUT_END)
    if args.inner and not pd.Timestamp("1997-03-31") < pd.Timestamp(as_of) < pd.Timestamp(end):
        ap.error(f"--inner AS_OF must lie between 1997-03-31 and {end}")
    horizon = (pd.Timestamp(end) - pd.Timestamp(as_of)).days
    raw = load_cdnow()
    # holdout outcomes per customer (occasions = customer-days), for scoring only
    raw["day"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    # the inner mode sees a file that ends where the real calibration period ends
    raw = raw[raw["day"] <= end].reset_index(drop=True)
    daily = raw.groupby(["customer_id", "day"], as_index=False)[["amount", "quantity"]].sum()
    hold = daily[(daily["day"] > as_of) & (daily["day"] <= end)]
    customers = pd.Index(sorted(daily["customer_id"].unique()), name="customer_id")
    actual_n = hold.groupby("customer_id").size().reindex(customers).fillna(0).to_numpy()
    actual_rev = hold.groupby("customer_id")["amount"].sum().reindex(customers).fillna(0).to_numpy()
    print(
        f"CDNOW{' inner backtest' if args.inner else ''}: as_of {as_of}, {horizon}-day holdout "
        f"to {end}; {len(customers)} customers, {len(daily)} purchase days, "
        f"{int((daily['day'] <= as_of).sum())} in calibration, {len(hold)} in holdout"
    )
    rows = []

    # cemlib, through the cem churn code path: the WHOLE file, as_of does the split
    from cemlib.churn.scoring import score_transactions

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cdnow_transactions.csv")
        raw[["customer_id", "date", "amount", "quantity"]].rename(columns={"date": "ts"}).to_csv(
            path, index=False
        )
        t0 = time.perf_counter()
        scores = score_transactions(path, as_of, horizon).set_index("customer_id")
        sec = time.perf_counter() - t0
    s = scores.reindex(customers)
    model = scores.attrs["model"]
    rows.append(
        figures(
            "cemlib churn",
            s["p_purchase"].to_numpy(),
            s["expected_purchases"].to_numpy(),
            s["clv"].to_numpy(),
            actual_n,
            actual_rev,
            sec,
        )
    )
    print(
        f"cemlib: probability model {model.prob_model_.family_} AFT "
        f"(CV concordance {model.prob_model_.cv_concordance_}), backtest window "
        f"{model.backtest_days_} days"
    )

    if not args.skip_peers:
        from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
        from lifetimes.utils import summary_data_from_transaction_data

        cal = daily[daily["day"] <= as_of]
        rfm = summary_data_from_transaction_data(
            cal, "customer_id", "day", monetary_value_col="amount", observation_period_end=as_of
        ).reindex(customers)
        for name, cls, kw in (
            ("BG/NBD", BetaGeoFitter, {"penalizer_coef": 0.0}),
            ("Pareto/NBD", ParetoNBDFitter, {"penalizer_coef": 0.0}),
        ):
            t0 = time.perf_counter()
            m = cls(**kw).fit(rfm["frequency"], rfm["recency"], rfm["T"])
            count = m.conditional_expected_number_of_purchases_up_to_time(
                horizon, rfm["frequency"], rfm["recency"], rfm["T"]
            ).to_numpy()
            rep = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
            gg = GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
            spend = gg.conditional_expected_average_profit(
                rfm["frequency"], rfm["monetary_value"]
            ).to_numpy()
            sec = time.perf_counter() - t0
            rows.append(figures(name, count, count, count * spend, actual_n, actual_rev, sec))

    table = pd.DataFrame(rows).set_index("model")
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format
    ):
        print(table)
    if args.ceiling:
        ceiling(history_features(daily, as_of, customers), actual_rev, s["clv"].to_numpy())


if __name__ == "__main__":
    main()
