"""Scale of the next-offer model: training and scoring seconds and peak memory on a synthetic world.

    .venv/bin/python benchmarks/offers_scale.py --people 100000 [--k 10] [--horizon-days 60]

The world is generated first and saved to a temporary folder; the model then runs in a child
process so that its peak resident memory (``ru_maxrss``) is measured without the generator's.
Figures are printed with a linear extrapolation to 1,000,000 people (target there: training +
scoring under 15 minutes and 12 GiB on a 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(folder: Path, k: int, horizon: int) -> None:
    import pandas as pd

    from cemlib.offers import NextOfferModel

    tx = pd.read_parquet(folder / "transactions.parquet")
    events = pd.read_parquet(folder / "events.parquet")
    items = pd.read_parquet(folder / "items.parquet")
    t0 = time.perf_counter()
    model = NextOfferModel(k=k, horizon_days=horizon, progress=True)
    model.fit(tx, "2025-06-30", events=events, items=items)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recs = model.recommend()
    score_s = time.perf_counter() - t0
    out = {
        "fit_seconds": fit_s,
        "score_seconds": score_s,
        "lines": len(tx),
        "events": len(events),
        "customers": int(recs["customer_id"].nunique()),
        "offers": len(recs),
        "train_rows": model.windows_["train"]["rows"],
        "validation_rows": model.windows_["validation"]["rows"],
        "best_iteration": model.best_iteration_,
        "queries": max(model.windows_["train"]["queries"], model.windows_["validation"]["queries"]),
        "max_train_customers": model.max_train_customers,
        "chunk_size": model.chunk_size,
    }
    print("RESULT " + json.dumps(out), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--people", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--horizon-days", type=int, default=60)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(Path(args.worker), args.k, args.horizon_days)
        return 0

    from cemlib.offers.world import frames_from_world
    from cemlib.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        frames = frames_from_world(generate(args.people, seed=args.seed))
        for name in ("transactions", "events", "items"):
            frames[name].to_parquet(Path(tmp) / f"{name}.parquet")
        gen_s = time.perf_counter() - t0
        del frames
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                tmp,
                "--k",
                str(args.k),
                "--horizon-days",
                str(args.horizon_days),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
    res = json.loads(
        next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:]
    )
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    total = res["fit_seconds"] + res["score_seconds"]
    scale = 1_000_000 / args.people
    print(
        f"people {args.people:,}: {res['lines']:,} purchase lines, {res['events']:,} identified web events "
        f"(world generated and saved in {gen_s:.0f} s)"
    )
    print(
        f"training {res['fit_seconds']:.1f} s (train rows {res['train_rows']:,}, validation rows "
        f"{res['validation_rows']:,}, {res['best_iteration']} trees), scoring {res['score_seconds']:.1f} s "
        f"({res['offers']:,} offers with SHAP reasons for {res['customers']:,} customers)"
    )
    print(f"peak memory of the model process {peak_gib:.2f} GiB")
    # training rows grow with the people only until a window holds max_train_customers queries
    train_scale = min(scale, max(1.0, res["max_train_customers"] / max(res["queries"], 1)))
    est = (res["fit_seconds"] * train_scale + res["score_seconds"] * scale) / 60
    print(
        f"linear extrapolation to 1,000,000 people: {total * scale / 60:.1f} min (target < 15); "
        f"with training capped at {res['max_train_customers']:,} queries per window "
        f"({res['queries']:,} now): {est:.1f} min; memory {peak_gib * scale:.1f} GiB linear "
        f"upper bound (target < 12; scoring runs in chunks of {res['chunk_size']:,} customers)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
