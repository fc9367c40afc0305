"""The forward simulation's peak memory and CPU with one worker and two: ``SpellView.predict``
over two chunks of the same size, each ``customers x paths`` paths (the warehouse's customers at
``as_of``, their state twice, ``--paths`` paths each: 15,606 customers x 300 = 4.7 M paths per
chunk on the 20,000-person world, as many as a 50,000-customer chunk at 100 paths).

    .venv/bin/python benchmarks/churn_simulation_peak.py WAREHOUSE --workers 1
    .venv/bin/python benchmarks/churn_simulation_peak.py WAREHOUSE --workers 2

Prints the process's resident memory before the predict, its peak during it (``VmHWM`` reset
before the call through ``/proc/self/clear_refs``; Linux), the CPU seconds and the sum of the
simulated counts (the same with one worker and two). Run each in its own process.
"""

from __future__ import annotations

import argparse
import gc
import time

import pandas as pd

from cemlib.churn import ChurnModel
from cemlib.marts import profile_covariates, profile_transactions
from cemlib.warehouse import Warehouse


def _status(field: str) -> float:
    """``field`` of /proc/self/status in GiB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        kb = next(line for line in fh if line.startswith(field)).split()[1]
    return int(kb) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("warehouse")
    ap.add_argument("--as-of", default="2025-06-30")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--paths", type=int, default=300)
    args = ap.parse_args()
    with Warehouse(args.warehouse, read_only=True) as wh:
        tx = profile_transactions(wh, args.as_of)
        cov = profile_covariates(wh, args.as_of).drop(columns=["web_events"])
    model = ChurnModel(
        horizons=(30, 90, 180, 365), seed=42, calibrate=False, workers=args.workers,
        family_choice={"weibull": 1.0},
    ).fit(tx, args.as_of, cov)  # fmt: skip
    spell = model.spell_
    n = len(spell.state_)
    spell.state_ = pd.concat([spell.state_, spell.state_])
    spell.n_sims = args.paths
    del tx, cov
    gc.collect()
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")  # the high-water mark from here
    c0 = time.process_time()
    out = spell.predict([30, 90, 180, 365], chunk=n)
    peak = _status("VmHWM")
    print(
        f"workers {args.workers}: 2 chunks x {n * args.paths:,} paths; RSS before {before:.2f} "
        f"GiB, peak during predict {peak:.2f} GiB (+{peak - before:.2f}), CPU "
        f"{time.process_time() - c0:.1f} s, sum count_365 {out['count_365'].sum():.2f}"
    )


if __name__ == "__main__":
    main()
