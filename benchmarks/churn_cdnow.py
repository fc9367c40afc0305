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
    daily = raw.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
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
    from cemlib.cli.churn import score_transactions

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


if __name__ == "__main__":
    main()
