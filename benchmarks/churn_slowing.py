"""A slowing world for ``cem churn``: customers whose purchase rate falls before they stop.

Written apart from :mod:`cemlib.synth` (nothing read or imported from it), on its own
assumptions, so the churn stage is not graded on the world it was tuned on. A grocery chain:

* base rates of three kinds: weekly (mean gap ~7 days), monthly (~30) and rare (~90), each
  customer's own rate spread around its kind's (log-normal, sd 0.35); customers join over the
  first 60 % of the history;
* ``steady`` (50 %): a constant rate, and a small constant hazard of leaving for good
  (~12 % a year: the BG/NBD-type noise);
* ``slowing`` (30 %): at a day drawn over the whole history and the year after ``as_of`` (an
  ongoing process: some slow down before the backtest's cut, some in the last quarter, some
  later) the rate falls to a share ``f`` (0.08..0.4) of the base, in a step (half of them) or
  gradually (an exponential decay with a half-life of 20..60 days); 30..120 days later they stop
  with a probability that grows as ``f`` shrinks (deeper slowdowns stop more often), else keep
  the low rate;
* ``seasonal`` (20 %): the rate times ``1 + 0.6 sin(...)`` with a yearly period and a phase of
  their own;
* purchases: one Bernoulli draw per customer-day with ``1 - exp(-rate)``; amounts log-normal
  around a customer mean.

The truth per customer: the group, ``slowed`` (the rate at ``as_of`` below half the base and not
yet stopped: the trial's "falling but still recent" households), and the purchases in the 90
and 180 days after ``as_of``.

``slowing_world(n, seed)`` returns (transactions, truth). The benchmark writes the transactions
to a CSV, runs ``cem churn`` on it (the path a user takes), and prints, for the stage, for the
naive recent-rate ratio (purchases in the last 90 days over the count the customer's long-run
rate before them expects) and for BG/NBD (lifetimes): the AUC of any purchase in the 180 days
after ``as_of`` over every customer, the total error of the 180-day counts, and the AUC on the
slowed group::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/churn_slowing.py --customers 3000 --seed 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

START = pd.Timestamp("2023-01-01")
AS_OF = pd.Timestamp("2025-06-30")
FUTURE_DAYS = 365
KINDS = {"weekly": (0.35, 7.0), "monthly": (0.40, 30.0), "rare": (0.25, 90.0)}
GROUPS = {"steady": 0.5, "slowing": 0.3, "seasonal": 0.2}


def _rates(n: int, rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame]:
    """The daily purchase rate of every customer on every day (n x days), and the customers."""
    days = (AS_OF - START).days + 1 + FUTURE_DAYS
    t = np.arange(days, dtype=float)[None, :]
    as_of_day = (AS_OF - START).days
    kind = rng.choice(list(KINDS), n, p=[p for p, _ in KINDS.values()])
    gap = np.array([KINDS[k][1] for k in kind]) * np.exp(rng.normal(0, 0.35, n))
    base = (1.0 / gap)[:, None]
    group = rng.choice(list(GROUPS), n, p=list(GROUPS.values()))
    join = rng.uniform(0, 0.6 * as_of_day, n)[:, None]
    rate = np.where(t >= join, base, 0.0)
    # steady and seasonal customers may leave for good at a constant hazard (~12 % a year)
    leave = join + rng.exponential(365.0 / 0.13, (n, 1))
    # slowing: onset over the history after joining and the year after as_of
    onset = rng.uniform(join[:, 0] + 60, days, n)[:, None]
    floor = rng.uniform(0.08, 0.4, n)[:, None]
    step = rng.random(n)[:, None] < 0.5
    half_life = rng.uniform(20, 60, n)[:, None]
    since = np.maximum(t - onset, 0.0)
    decay = np.where(step, floor, floor + (1 - floor) * 0.5 ** (since / half_life))
    slow_factor = np.where(t >= onset, decay, 1.0)
    stops = rng.random(n)[:, None] < np.clip(1.2 - 2.0 * floor, 0.0, 1.0)
    stop_at = np.where(stops, onset + rng.uniform(30, 120, n)[:, None], np.inf)
    is_slow = (group == "slowing")[:, None]
    is_seasonal = (group == "seasonal")[:, None]
    phase = rng.uniform(0, 365, n)[:, None]
    season = 1.0 + 0.6 * np.sin(2 * np.pi * (t - phase) / 365.0)
    rate = np.where(is_slow, rate * slow_factor, rate)
    rate = np.where(is_seasonal, rate * season, rate)
    end = np.where(is_slow, stop_at, leave)
    rate = np.where(t < end, rate, 0.0)
    at = slice(as_of_day, as_of_day + 1)
    slowed = is_slow[:, 0] & (onset[:, 0] <= as_of_day) & (end[:, 0] > as_of_day)
    slowed &= slow_factor[:, at][:, 0] < 0.5
    people = pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "kind": kind,
            "group": group,
            "slowed": slowed,
            "alive_at_as_of": end[:, 0] > as_of_day,
        }
    )
    return rate, people


def slowing_world(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transactions (customer_id, ts, amount; the year after ``AS_OF`` included) and the truth
    per customer (kind, group, slowed, n_90, n_180, bought_180)."""
    rng = np.random.default_rng(seed)
    rate, people = _rates(n, rng)
    buy = rng.random(rate.shape) < 1.0 - np.exp(-rate)
    who, day = np.nonzero(buy)
    mean_amount = np.exp(rng.normal(np.log(25.0), 0.5, n))
    amount = mean_amount[who] * np.exp(rng.normal(0, 0.4, len(who)))
    tx = pd.DataFrame(
        {
            "customer_id": people["customer_id"].to_numpy()[who],
            "ts": START + pd.to_timedelta(day, unit="D") + pd.Timedelta(hours=12),
            "amount": amount.round(2),
        }
    )
    as_of_day = (AS_OF - START).days
    truth = people.set_index("customer_id")
    for h in (90, 180):
        inside = (day > as_of_day) & (day <= as_of_day + h)
        truth[f"n_{h}"] = np.bincount(who[inside], minlength=n).astype(float)
    truth["bought_180"] = truth["n_180"] > 0
    last = pd.Series(day[day <= as_of_day], index=who[day <= as_of_day]).groupby(level=0).max()
    truth["recency_days"] = (as_of_day - last.reindex(np.arange(n))).to_numpy()
    return tx, truth


def naive_ratio(tx: pd.DataFrame, as_of: pd.Timestamp = AS_OF, days: int = 90) -> pd.Series:
    """Purchases in the last ``days`` over the count the customer's rate before them expects
    (the trial's naive score: higher = buying as usual)."""
    d = tx[tx["ts"] < as_of + pd.Timedelta(days=1)].copy()
    d["day"] = d["ts"].dt.normalize()
    d = d.drop_duplicates(["customer_id", "day"])
    cut = as_of - pd.Timedelta(days=days)
    g = d.groupby("customer_id")
    first = g["day"].min()
    recent = d[d["day"] > cut].groupby("customer_id").size().reindex(first.index).fillna(0)
    before = d[d["day"] <= cut].groupby("customer_id").size().reindex(first.index).fillna(0)
    span = (cut - first).dt.days.clip(lower=1)
    expected = np.where(before > 0, before / span * days, np.nan)
    return pd.Series((recent + 0.5) / (np.nan_to_num(expected, nan=recent) + 0.5), first.index)


def bgnbd_figures(tx: pd.DataFrame, as_of: pd.Timestamp = AS_OF, h: int = 180) -> pd.Series:
    """BG/NBD (lifetimes) expected purchases in ``h`` days per customer, fitted up to
    ``as_of``."""
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    d = tx[tx["ts"] < as_of + pd.Timedelta(days=1)]
    s = summary_data_from_transaction_data(d, "customer_id", "ts", observation_period_end=as_of)
    bg = BetaGeoFitter(penalizer_coef=0.001).fit(s["frequency"], s["recency"], s["T"])
    return bg.conditional_expected_number_of_purchases_up_to_time(
        h, s["frequency"], s["recency"], s["T"]
    )


def score_table(truth: pd.DataFrame, scores: dict[str, pd.Series], counts: dict) -> pd.DataFrame:
    """AUC (any purchase in 180 days) over everyone, over the slowed group and over the
    customers who bought in the 30 days before ``as_of`` (recency says little there), and the
    total error of the 180-day counts over everyone and over the slowed group, per method."""
    rows = []
    slow = truth["slowed"]
    recent = truth["recency_days"] <= 30
    for name, s in scores.items():
        s = s.reindex(truth.index)
        ok = s.notna()
        y = truth["bought_180"]
        row = {
            "method": name,
            "auc": roc_auc_score(y[ok], s[ok]),
            "auc_slowed": roc_auc_score(y[ok & slow], s[ok & slow]),
            "auc_recent": roc_auc_score(y[ok & recent], s[ok & recent]),
        }
        if name in counts:
            c = counts[name].reindex(truth.index)
            row["total_error"] = c.sum() / truth["n_180"].sum() - 1.0
            row["total_error_slowed"] = c[slow].sum() / truth.loc[slow, "n_180"].sum() - 1.0
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    tx, truth = slowing_world(args.customers, args.seed)
    seen = tx[tx["ts"] < AS_OF + pd.Timedelta(days=1)]["customer_id"].unique()
    truth = truth.loc[np.sort(seen)]
    print(f"customers {len(truth)} (groups {truth['group'].value_counts().to_dict()}), slowed "
          f"at as_of {int(truth['slowed'].sum())}, bought in 180 d "
          f"{truth['bought_180'].mean():.3f} (slowed {truth.loc[truth.slowed, 'bought_180'].mean():.3f})")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        src, out = os.path.join(tmp, "tx.csv"), os.path.join(tmp, "scores.csv")
        tx.to_csv(src, index=False)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "cemlib", "churn", src, "--as-of", str(AS_OF.date()),
             "--horizon-days", "180", "--out", out],
            check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        sc = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    bg = bgnbd_figures(tx)
    scores = {
        "cem churn": sc["p_purchase"],
        "naive recent-rate ratio": naive_ratio(tx),
        "BG/NBD (lifetimes)": bg,
    }
    counts = {"cem churn": sc["expected_purchases"], "BG/NBD (lifetimes)": bg}
    table = score_table(truth, scores, counts)
    print(f"cem churn {seconds:.1f} s")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
