"""Lapsed share and risk bands against what happened, on CDNOW and the synthetic world.

For each data set: the inactivity allowance of the 90th percentile of gaps between purchases
(before trial 12) and of :func:`cemlib.churn.survival.inactivity_threshold` (censored
Kaplan-Meier of the time to the next purchase), the share of customers each calls lapsed at
``as_of`` against the truth (synthetic: true dropout dates; CDNOW: no purchase over the 273-day
holdout, a proxy), then the risk bands' shares with each band's share buying over the horizon.

    .venv/bin/python benchmarks/churn_lapsed.py cdnow
    .venv/bin/python benchmarks/churn_lapsed.py synth --people 3000
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import pandas as pd

from cemlib.churn.features import purchase_occasions
from cemlib.churn.models import risk_segment, risk_thresholds_from
from cemlib.churn.survival import inactivity_threshold


def gap_quantile(occ: pd.DataFrame, q: float = 0.9) -> int:
    """The allowance before trial 12: the ``q`` of the gaps between purchases, at least 60."""
    gaps = occ.sort_values(["customer_id", "day"]).groupby("customer_id")["day"].diff()
    return int(max(60, np.ceil(gaps.dt.days.dropna().quantile(q))))


def lapsed_lines(occ: pd.DataFrame, as_of, customers, stopped: np.ndarray, what: str) -> None:
    last = occ.groupby("customer_id")["day"].max().reindex(customers)
    print(f"  {what}: {stopped.mean():.1%}")
    for name, tau in (
        ("90th percentile of gaps", gap_quantile(occ)),
        ("censored Kaplan-Meier", inactivity_threshold(occ, as_of=as_of)),
    ):
        lapsed = ((pd.Timestamp(as_of) - last).dt.days > tau).to_numpy()
        print(f"  {name}: allowance {tau} days, lapsed {lapsed.mean():.1%}")


def band_lines(p: np.ndarray, bought: np.ndarray, horizon: int) -> None:
    seg = risk_segment(p, risk_thresholds_from(p))
    for g in ("high", "medium", "low"):
        k = seg == g
        print(f"  {g:6s} {k.mean():6.1%} of customers, {bought[k].mean():6.1%} bought within "
              f"{horizon} days (mean p {p[k].mean():.3f})")  # fmt: skip


def cdnow() -> None:
    from churn_cdnow import load_cdnow

    from cemlib.churn.scoring import score_transactions

    as_of, end = "1997-09-30", "1998-06-30"
    raw = load_cdnow()
    raw["day"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    occ = raw.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    cal = occ[occ["day"] <= as_of]
    hold = set(occ.loc[(occ["day"] > as_of) & (occ["day"] <= end), "customer_id"])
    customers = pd.Index(cal["customer_id"].unique())
    print(f"CDNOW: {len(customers):,} customers at {as_of}")
    silent = ~customers.isin(hold)
    lapsed_lines(cal, as_of, customers, silent, "no purchase over the 273-day holdout (proxy)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cdnow.csv")
        raw[["customer_id", "date", "amount", "quantity"]].rename(columns={"date": "ts"}).to_csv(
            path, index=False
        )
        s = score_transactions(path, as_of, 273)
    band_lines(s["p_purchase"].to_numpy(), s["customer_id"].isin(hold).to_numpy(), 273)


def synth(people: int, seed: int, as_of: str = "2025-06-30") -> None:
    import cemlib.collect
    import cemlib.quality
    from cemlib.churn import ChurnModel
    from cemlib.marts.transactions import profile_transactions
    from cemlib.warehouse import Warehouse

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "w.duckdb")
        common = {"run_id": "bench", "as_of": as_of, "seed": seed}
        cemlib.collect.run(path, **common, n_people=people, progress=False)
        with Warehouse(path) as wh:
            cemlib.quality.run(wh, **common, progress=False)
            tx = profile_transactions(wh, as_of, key="person")
            people_ = wh.con.execute("SELECT person_id, true_dropout_date FROM truth.people").df()
            fut = wh.con.execute(
                "SELECT DISTINCT CAST(person_id AS VARCHAR) AS c FROM truth.future_orders "
                "WHERE ts > ? AND ts < CAST(? AS DATE) + 366",
                [as_of, as_of],
            ).df()
    occ = purchase_occasions(tx, as_of)
    customers = pd.Index(occ["customer_id"].unique())
    stop = people_.set_index(people_["person_id"].astype(str))["true_dropout_date"]
    stopped = (pd.to_datetime(stop.reindex(customers)) <= pd.Timestamp(as_of)).to_numpy()
    print(f"synthetic world: {people:,} people, {len(customers):,} customers at {as_of}")
    lapsed_lines(occ, as_of, customers, stopped, "truly stopped by as_of")
    s = ChurnModel(horizons=(365,), seed=1).fit(tx, as_of=as_of).predict()
    band_lines(s["p_purchase"].to_numpy(), s["customer_id"].astype(str).isin(fut["c"]).to_numpy(),
               365)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", choices=["cdnow", "synth"])
    ap.add_argument("--people", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    cdnow() if args.data == "cdnow" else synth(args.people, args.seed)


if __name__ == "__main__":
    main()
