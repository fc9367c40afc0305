"""Next offers on a synthetic world through the command a user runs: ``cem offers`` on files.

The world is generated, its purchases, browsing and catalogue are written to CSV files keyed by
the true person (``cemlib.offers.world.frames_from_world``), ``cem offers`` runs on them in a
child process, and its ``offers.csv`` is scored on the purchases of the ``--horizon-days`` after
``as_of`` (the world's hidden future) against every baseline of ``cemlib.offers.baselines`` fed
the same history. ``--reorder-share S`` turns on the repeat-heavy setting of the world
(``BehaviourParams.reorder_share``: wholesale-like customers re-ordering their staples on
cycles); 0 is the default world.

    .venv/bin/python benchmarks/offers_synth.py [--people 5000] [--reorder-share 0.6]
        [--horizon-days 60] [--k 10] [--seed 42] [--diagnose]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from cemlib.offers import NextOfferModel, all_baselines, evaluate
from cemlib.offers.data import prepare_transactions
from cemlib.offers.world import frames_from_world
from cemlib.synth import SynthConfig, generate

AS_OF = pd.Timestamp("2025-06-30")


def world_files(folder: Path, people: int, seed: int, reorder_share: float) -> dict:
    """Write ``transactions.csv``, ``events.csv``, ``items.csv``; return the frames."""
    config = SynthConfig()
    if reorder_share:
        config = config.with_rates(reorder_share=reorder_share)
    frames = frames_from_world(generate(people, seed=seed, as_of=AS_OF, config=config))
    for name in ("transactions", "events", "items"):
        frames[name].to_csv(folder / f"{name}.csv", index=False)
    return frames


def cem_offers(folder: Path, k: int, horizon: int, seed: int) -> tuple[pd.DataFrame, float]:
    """Run ``cem offers`` on the files; the offers and the wall seconds."""
    cmd = [
        sys.executable, "-m", "cemlib", "offers", str(folder / "transactions.csv"), "--as-of", str(AS_OF.date()),
        "--events", str(folder / "events.csv"), "--items", str(folder / "items.csv"),
        "--k", str(k), "--horizon-days", str(horizon), "--seed", str(seed),
        "--out", str(folder / "offers.csv"),
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return pd.read_csv(folder / "offers.csv", dtype={"customer_id": str, "item_id": str}), (
        time.perf_counter() - t0
    )


def score(frames: dict, offers: pd.DataFrame, k: int, horizon: int) -> pd.DataFrame:
    """Model (the offers) and every baseline on the purchases of the horizon."""
    history = prepare_transactions(frames["transactions"], as_of=AS_OF)
    fut = frames["future"]
    fut = fut[fut["ts"] < AS_OF + pd.Timedelta(days=horizon + 1)]
    custs = history["customer_id"].unique()
    rows = {"model (cem offers)": evaluate(offers, fut, k=k, history=history, customers=custs)}
    for name, base in all_baselines(history, k, custs).items():
        rows[name] = evaluate(base, fut, k=k, history=history, customers=custs)
    return pd.DataFrame(rows).T


def diagnose(frames: dict, k: int, horizon: int, seed: int) -> None:
    """The same fit in this process: candidate recall of the horizon's purchases (all sources and
    each), the January-style validation NDCG and the features the ranker leans on most."""
    model = NextOfferModel(k=k, horizon_days=horizon, seed=seed)
    model.fit(frames["transactions"], AS_OF, events=frames["events"], items=frames["items"])
    fut = frames["future"]
    fut = fut[fut["ts"] < AS_OF + pd.Timedelta(days=horizon + 1)]
    rec = model.candidate_recall(fut, customers=model.tx_["customer_id"].unique())
    print(
        f"candidate recall of the {horizon} days after as_of: {rec:.3f}; validation recall by "
        "source: "
        + ", ".join(f"{s}={v:.3f}" for s, v in model.candidate_recall_["validation"].items())
    )
    print(f"{model.best_iteration_} trees, validation NDCG@{k} {model.validation_ndcg_:.4f}")
    print(model.importance_.head(10).round(4).to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--people", type=int, default=5000)
    ap.add_argument("--reorder-share", type=float, default=0.0)
    ap.add_argument("--horizon-days", type=int, default=60)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--diagnose", action="store_true", help="also candidate recall and feature importance"
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="offers_synth_") as tmp:
        folder = Path(tmp)
        frames = world_files(folder, args.people, args.seed, args.reorder_share)
        offers, secs = cem_offers(folder, args.k, args.horizon_days, args.seed)
    table = score(frames, offers, args.k, args.horizon_days)
    k = args.k
    print(
        f"\n=== synthetic world, {args.people} people, seed {args.seed}, reorder_share "
        f"{args.reorder_share}: {int(table['customers'].iloc[0])} customers evaluated on the "
        f"{args.horizon_days} days after {AS_OF.date()}; repeat share of their purchases "
        f"{table['repeat_share'].iloc[0]:.3f}; cem offers {secs:.1f} s"
    )
    cols = [c for c in table.columns if c not in ("customers", "repeat_share")]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table[cols].round(4).to_string())
    model = table.index[0]
    best = table.drop(index=model)[f"ndcg@{k}"]
    print(
        f"model NDCG@{k} {table.loc[model, f'ndcg@{k}']:.4f} / best baseline "
        f"({best.idxmax()}) {best.max():.4f} = {table.loc[model, f'ndcg@{k}'] / best.max():.3f}"
    )
    if args.diagnose:
        diagnose(frames, k, args.horizon_days, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
