"""Stage 03 (``cemlib.churn.run``, what the notebook calls) on a copy of a warehouse, in CPU
seconds: the whole stage and its parts (reading the marts, the main fit, the held-out refit,
the forward simulation, the AFT fits, the booster, the BG/NBD, the survival curves, the
evaluations), the peak resident memory of the process, and the figures the report shows
(held-out AUC, total error, the AFT family...). Writes ``OUT.duckdb`` (the copy),
``OUT.scores.parquet`` (``marts.churn_scores``, to compare runs) and ``OUT.json`` (the figures).

    .venv/bin/python benchmarks/churn_stage_cpu.py WAREHOUSE OUT [--as-of 2025-06-30] [--workers N]

The warehouse is one that ``cem run`` has taken through stage 02, e.g.
``benchmarks/pipeline_scale.py --people 200000 --dir /tmp/s03/run --stages 00,01,02 --keep``.
The stage is called as ``notebooks/03_churn.ipynb`` calls it (horizons 30, 90, 180 and 365
days, 10 % discount, keyed by profile); the CPU clock is ``time.process_time()`` (all
threads), so the figures hold on a loaded machine where wall time does not. ``main thread`` is
the CPU of the thread that runs the stage (``time.thread_time()``): with a second worker the
parts beside it (:mod:`cemlib.churn.beside`) are off it, and it is the stage's critical path
on a machine with a free core; the load average at the start and the end says whether there
was one. ``--workers`` is the stage's ``workers`` (default: as the stage decides).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time

import numpy as np

import cemlib.churn
from cemlib.churn import dropout, gaps, models, stage, supervised, survival, views
from cemlib.warehouse import Warehouse

CLOCK: dict[str, list[float]] = {}


def timed(name, fn):
    """``fn`` with its CPU and wall seconds added to ``CLOCK[name]`` (nested calls count in
    both their own line and their caller's)."""

    def wrap(*a, **k):
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            c = CLOCK.setdefault(name, [0.0, 0.0, 0])
            c[0] += time.process_time() - c0
            c[1] += time.perf_counter() - w0
            c[2] += 1

    return wrap


def instrument() -> None:
    stage.profile_transactions = timed("read transactions", stage.profile_transactions)
    stage.profile_covariates = timed("read covariates", stage.profile_covariates)
    stage.holdout_evaluation = timed("holdout_evaluation", stage.holdout_evaluation)
    stage.evaluate_against_truth = timed("evaluate_against_truth", stage.evaluate_against_truth)
    stage.evaluate_predictions = timed("evaluate_predictions", stage.evaluate_predictions)
    M = models.ChurnModel
    M.fit = timed("ChurnModel.fit", M.fit)
    M._fit_blend = timed("  blend backtest (in fit)", M._fit_blend)
    M.predict = timed("ChurnModel.predict", M.predict)
    views.SpellView.survival_curves = timed("survival_curves", views.SpellView.survival_curves)
    gaps.GapModel.fit = timed("GapModel.fit (lifelines AFT)", gaps.GapModel.fit)
    gaps.GapModel.simulate = timed("GapModel.simulate", gaps.GapModel.simulate)
    supervised.CountBooster.fit = timed("CountBooster.fit", supervised.CountBooster.fit)
    dropout.BGNBD.fit = timed("BGNBD.fit", dropout.BGNBD.fit)
    survival.CoxExplainer.fit = timed("CoxExplainer.fit", survival.CoxExplainer.fit)


FIGURES = (
    "customers", "auc", "harrell_c", "td_concordance", "integrated_brier", "rmse", "mae",
    "predicted_total", "actual_total", "total_error", "calibration_error",
    "top10_revenue_share", "holdout_customers", "holdout_customers_of", "holdout_auc_se",
    "person_future_auc", "person_future_total_error", "dropout_concordance",
)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("warehouse")
    ap.add_argument("out")
    ap.add_argument("--as-of", default="2025-06-30")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    work = args.out + ".duckdb"
    shutil.copy(args.warehouse, work)
    instrument()
    load0 = os.getloadavg()[0]
    c0, w0, t0 = time.process_time(), time.perf_counter(), time.thread_time()
    extra = {} if args.workers is None else {"workers": args.workers}
    with Warehouse(work) as wh:
        res = cemlib.churn.run(
            wh, run_id="bench", as_of=args.as_of, seed=args.seed, horizons=(30, 90, 180, 365),
            annual_discount=0.1, **extra,
        )  # fmt: skip
        scores = wh.sql("SELECT * FROM marts.churn_scores ORDER BY customer_id")
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    main_cpu, load1 = time.thread_time() - t0, os.getloadavg()[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    detail = res.detail
    m = detail.model
    print(
        f"TOTAL cpu {cpu:.1f} s (main thread {main_cpu:.1f}) wall {wall:.1f} s maxrss "
        f"{peak:.2f} GiB load {load0:.1f}->{load1:.1f}; "
        f"{len(detail.scores):,} customers, {len(detail.transactions):,} lines"
    )
    for k, (c, w, n) in CLOCK.items():
        print(f"  {k:34s} cpu {c:7.1f}  wall {w:7.1f}  calls {n}")
    print(f"family {m.prob_model_.family_} (CV C {m.prob_model_.cv_concordance_})")
    t = detail.truth
    figs = {k: float(t[k]) for k in FIGURES if k in t}
    for k, v in figs.items():
        print(f"  {k:28s} {v:.4f}")
    print("headlines", json.dumps(res.headlines, default=str))
    print(
        "scores: sum p_purchase {:.2f}, sum expected_purchases {:.1f}, sum clv {:.0f}".format(
            scores["p_purchase"].sum(), scores["expected_purchases"].sum(), scores["clv"].sum()
        )
    )
    scores.to_parquet(args.out + ".scores.parquet")
    out = {
        "cpu_seconds": round(cpu, 1),
        "main_thread_cpu_seconds": round(main_cpu, 1),
        "load": [round(load0, 1), round(load1, 1)],
        "wall_seconds": round(wall, 1),
        "maxrss_gib": round(peak, 2),
        "parts": {k: round(v[0], 1) for k, v in CLOCK.items()},
        "family": m.prob_model_.family_,
        "figures": figs,
        "expected_purchases": float(np.sum(scores["expected_purchases"])),
    }
    with open(args.out + ".json", "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
