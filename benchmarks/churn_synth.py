"""Churn stage on the synthetic world: accuracy against the truth and time, for ``--people N``.

Generates a world, runs the collect and quality stages into a temporary warehouse, then the
churn stage keyed by the true person (so identity quality does not enter), each through its
``cemlib.<stage>.run``, and prints the figures against the future purchases and the true
dropout dates.

    .venv/bin/python benchmarks/churn_synth.py --people 10000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import cemlib.churn
import cemlib.collect
import cemlib.quality
from cemlib.warehouse import Warehouse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--as-of", default="2025-06-30")
    ap.add_argument("--horizon-days", type=int, default=365)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "w.duckdb")
        t0 = time.perf_counter()
        common = {"run_id": "bench", "as_of": args.as_of, "seed": args.seed}
        cemlib.collect.run(path, **common, n_people=args.people, progress=False)
        with Warehouse(path) as wh:
            cemlib.quality.run(wh, **common, progress=False)
        t_collect = time.perf_counter() - t0
        horizons = tuple(sorted({h for h in (90, 180) if h < args.horizon_days}
                                | {args.horizon_days}))  # fmt: skip
        with Warehouse(path) as wh:
            t0 = time.perf_counter()
            res = cemlib.churn.run(wh, **common, horizons=horizons, use_truth_profiles=True).detail
            t_stage = time.perf_counter() - t0
    t = res.truth
    print(f"people {args.people}, customers scored {len(res.scores)}, "
          f"transaction lines {len(res.transactions)}")  # fmt: skip
    print(f"collect + quality {t_collect:.1f} s, churn stage {t_stage:.1f} s "
          f"(model {res.model.prob_model_.family_} AFT, CV C {res.model.prob_model_.cv_concordance_})")  # fmt: skip
    for k in ("auc", "harrell_c", "rmse", "mae", "predicted_total", "actual_total", "total_error",
              "calibration_error", "top10_revenue_share", "top20_revenue_share",
              "dropout_concordance", "dropout_concordance_alive"):  # fmt: skip
        print(f"  {k:28s} {t[k]:.4f}")
    if res.cox is not None:
        print("Cox PH violations:", res.cox.violations_, "-> strata", res.cox.strata_)


if __name__ == "__main__":
    main()
