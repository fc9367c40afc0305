"""Ranker variants on Ta-Feng over many seeds, fast: the LightGBM part only, on saved frames.

A product-level ``offers_tafeng.py`` fit costs ~100 CPU s per seed, most of it snapshots,
candidates and features, and single seeds differ by ±0.03 in lift — more than most changes
tried. This script builds once (cached in ``benchmarks/_data/variants_<level>/``) the training
and validation windows with every candidate labelled (the category source on) and the scoring
frame of February's customers at 2001-01-31, then for each seed samples the negatives, trains
(early stopping on January), refits on both windows and scores, ~25 CPU s per seed. Without
``--categories`` the category source's rows and features are left out, i.e. the default model.
The seeds draw their samples in another order than ``NextOfferModel.fit``: per-seed figures
differ from ``offers_tafeng.py``'s, their spread and mean are what compare.

``--prior``: ``choose`` the model's rule (:mod:`cemlib.offers.start`, a paired test on the
January customers), ``mean`` the higher January mean (the rule before issue 20's third
attempt), ``yes`` / ``no`` always / never the prior; ``all`` trains both starts per seed, saves
them (``runs_<seed>.pkl``) and prints what every rule of ``offers_start_rules.py`` picks and
the February lift that follows (``--backward``: also both starts trained on January and
early-stopped on December, a second window of evidence).

    .venv/bin/python benchmarks/offers_variants.py [--level product] [--seeds 42 1 2 3 4 5]
        [--prior choose|mean|yes|no|all] [--backward] [--categories] [--validation-negatives 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import cemlib.offers.training as training
from cemlib.offers import CandidateConfig, NextOfferModel, all_baselines, evaluate, start
from cemlib.offers.features import CATEGORY_FEATURES
from cemlib.offers.scoring import TIE_BREAK as TIE_COLS
from cemlib.offers.scoring import top_k
from cemlib.offers.snapshot import Snapshot, day_number

sys.path.insert(0, str(Path(__file__).resolve().parent))
import offers_start_rules as rules  # noqa: E402
from offers_tafeng import DATA, load_tafeng  # noqa: E402

AS_OF = pd.Timestamp("2001-01-31")


class _Stop(Exception):
    pass


def build(level: str, folder: Path) -> None:
    """Save the labelled windows (every candidate), the scoring frame and the truth."""
    raw = load_tafeng()
    tx = raw.rename(columns={"product" if level == "product" else "subclass": "item_id"})
    tx["category"] = raw["subclass"]
    tx = tx[["customer_id", "ts", "item_id", "quantity", "amount", "category"]]
    feb = tx[(tx["ts"] > AS_OF) & (tx["ts"] < pd.Timestamp("2001-03-01"))]
    customers = pd.Index(tx.loc[tx["ts"] <= AS_OF, "customer_id"].unique())
    truth = feb[feb["customer_id"].isin(customers)][["customer_id", "item_id"]].drop_duplicates()
    saved = {}

    def stash(train, valid, names, *args):
        saved.update(train=train.frame, valid=valid.frame, names=names)
        raise _Stop

    model = NextOfferModel(
        horizon_days=31,
        candidates=CandidateConfig(n_categories=5),
        train_negatives=0,
        validation_negatives=0,
    )
    original, start.train_from_chosen_start = start.train_from_chosen_start, stash
    try:
        model.fit(tx, AS_OF)
    except _Stop:
        pass
    finally:
        start.train_from_chosen_start = original
    snap = Snapshot(model.store_, day_number(AS_OF), horizon=31)
    want = model.enc_.customers.get_indexer(pd.Index(truth["customer_id"].unique()))
    score = model._frame(snap, np.sort(want[want >= 0]), "scoring")
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("train", saved["train"]), ("valid", saved["valid"]), ("score", score)):
        frame.to_parquet(folder / f"{name}.parquet")
    pd.DataFrame({"name": saved["names"]}).to_parquet(folder / "names.parquet")
    pd.DataFrame({"customer_id": model.enc_.customers}).to_parquet(folder / "customers.parquet")
    pd.DataFrame({"item_id": model.enc_.items}).to_parquet(folder / "items.parquet")
    truth.to_parquet(folder / "truth.parquet")
    model.tx_[["customer_id", "item_id"]].drop_duplicates().to_parquet(folder / "history.parquet")
    best = max(
        evaluate(b, truth)["ndcg@10"] for b in all_baselines(model.tx_, 10, customers).values()
    )
    pd.DataFrame({"best_baseline": [best]}).to_parquet(folder / "best.parquet")


def _window(frame: pd.DataFrame) -> training.WindowData:
    frame = frame[frame.groupby("c")["label"].transform("max") > 0].reset_index(drop=True)
    groups = frame.groupby("c", sort=True).size().to_numpy()
    return training.WindowData(AS_OF, frame, groups)


def _load(folder: Path, categories: bool):
    names = pd.read_parquet(folder / "names.parquet")["name"].tolist()
    frames = {k: pd.read_parquet(folder / f"{k}.parquet") for k in ("train", "valid", "score")}
    if not categories:  # the default model: no category rows, no category features
        names = [n for n in names if n not in CATEGORY_FEATURES]
        for k, f in frames.items():
            other = [c for c in f.columns if c.startswith("src_") and c != "src_category"]
            frames[k] = f[f[other].sum(axis=1) > 0].reset_index(drop=True)
    return names, frames


def higher_mean_start(
    train: training.WindowData,
    valid: training.WindowData,
    names: list[str],
    params: dict,
    rounds: int,
    patience: int,
) -> tuple[training.Prior, tuple, dict[str, float]]:
    """``--prior mean``, the rule before issue 20's third attempt (once
    ``cemlib.offers.training.train_with_or_without_prior``): early-stopped LambdaRank from zero
    and from the :class:`~cemlib.offers.training.Prior`, the one with the higher validation NDCG
    wins (ties: no prior). Leaves the winner's ``_prior`` column on the windows; returns the
    prior (zero when plain won), ``train_early_stopped``'s result and both NDCGs."""
    best, seen = None, {}
    datasets = training.window_datasets(train, valid, names)
    for use in (False, True):
        prior = training.Prior().fit(train.frame, use=use)
        for w in (train, valid):
            w.frame["_prior"] = prior(w.frame)
        result = training.train_early_stopped(
            train, valid, names, params, rounds, patience, datasets
        )
        seen["prior" if use else "plain"] = result[2]
        if best is None or result[2] > best[1][2]:
            best = (prior, result)
    prior, result = best
    for w in (train, valid):
        w.frame["_prior"] = prior(w.frame)
    return prior, result, seen


def run_seed(
    seed: int, names, frames, prior_mode: str, v_neg: int
) -> tuple[pd.DataFrame, int, dict]:
    """Sample, train, refit and score with one seed: the top 10 per customer, the trees and the
    validation NDCG of each start."""
    rng = np.random.default_rng(seed)
    train = training.sampled_window(_window(frames["train"]), rng, 40)
    valid = training.sampled_window(_window(frames["valid"]), rng, v_neg)
    params = training.lgb_params(train, valid, None, seed)
    if prior_mode in ("choose", "mean"):  # the paired rule (the model's) / the higher mean
        choose = start.train_from_chosen_start
        if prior_mode == "mean":
            choose = higher_mean_start
        prior, result, seen = choose(train, valid, names, params, 300, 30)
    else:
        prior = training.Prior().fit(train.frame, use=prior_mode == "yes")
        for w in (train, valid):
            w.frame["_prior"] = prior(w.frame)
        result = training.train_early_stopped(train, valid, names, params, 300, 30)
        seen = {prior_mode: result[2]}
    fit_valid = training.sampled_window(valid, rng, 40) if v_neg == 0 else valid
    booster = training.refit(train, fit_valid, names, params, result[1])
    score = frames["score"].copy()
    score["score"] = booster.predict(score[names].to_numpy(np.float32)) + prior(score)
    return top_k(score, 10), result[1], seen


def _start(train, valid, names, params, use: bool, score: pd.DataFrame | None):
    """One start early-stopped on ``valid``: trees, validation NDCG per query and its scores,
    and (``score`` given) the refitted ranker's scores of ``score``."""
    prior = training.Prior().fit(train.frame, use=use)
    for w in (train, valid):
        w.frame["_prior"] = prior(w.frame)
    booster, best, _, _ = training.train_early_stopped(train, valid, names, params, 300, 30)
    X = valid.frame[names].to_numpy(np.float32)
    v = booster.predict(X, num_iteration=best) + valid.frame["_prior"].to_numpy()
    out = {"trees": best, "q": start.query_ndcg(v, valid.frame["label"], valid.groups), "v": v}
    if score is not None:
        booster = training.refit(train, valid, names, params, best)
        out["s"] = booster.predict(score[names].to_numpy(np.float32)) + prior(score)
    return out


def _samples(seed: int, frames):
    """One seed's sampled training and validation windows and LightGBM parameters (the draws
    of ``run_seed``)."""
    rng = np.random.default_rng(seed)
    train = training.sampled_window(_window(frames["train"]), rng, 40)
    valid = training.sampled_window(_window(frames["valid"]), rng, 40)
    return train, valid, training.lgb_params(train, valid, None, seed)


def collect(seed: int, names, frames, backward: bool) -> dict:
    """Both starts with one seed's samples (the same draws as ``run_seed``): per-query January
    NDCG, trees, February scores; ``backward`` also both starts trained on January's sample
    and early-stopped on December's (a second window of evidence)."""
    train, valid, params = _samples(seed, frames)
    out = {}
    for use in (False, True):
        key = "prior" if use else "plain"
        out[key] = _start(train, valid, names, params, use, frames["score"])
        if backward:
            out["back_" + key] = _start(valid, train, names, params, use, None)
    out["valid_label"], out["valid_groups"] = valid.frame["label"].to_numpy(), valid.groups
    return out


def collect_backward(seed: int, names, frames) -> dict:
    """Only ``collect``'s December evidence (both starts trained on January's sample)."""
    train, valid, params = _samples(seed, frames)
    out = {}
    for use in (False, True):
        r = _start(valid, train, names, params, use, None)
        r.pop("v")
        out["back_prior" if use else "back_plain"] = r
    return out


BLEND = np.round(np.linspace(0, 1, 5), 2)  # weight of the prior start's standardized scores


def blended(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """``(1 - w)`` x plain + ``w`` x prior-started scores, each divided by its spread."""
    return (1 - w) * a / (a.std() or 1.0) + w * b / (b.std() or 1.0)


def collect_all(args, folder, names, frames, lift_of) -> None:
    """``--prior all``: both starts per seed saved to ``runs_<seed>.npz``, every rule printed."""
    for seed in args.seeds:
        path = folder / f"runs_{seed}.pkl"
        if path.exists():
            if args.backward and "back_plain" not in (r := pd.read_pickle(path)):
                r.update(collect_backward(seed, names, frames))
                pd.to_pickle(r, path)
                print(f"seed {seed}: December evidence added", flush=True)
            continue
        c0 = time.process_time()
        r = collect(seed, names, frames, args.backward)
        score = frames["score"][["c", "i", *TIE_COLS]].copy()
        lab, grp = r["valid_label"], r["valid_groups"]
        r["blend_valid"], r["blend_feb"] = [], []
        for w in BLEND:
            v = blended(r["plain"]["v"], r["prior"]["v"], w)
            r["blend_valid"].append(start.query_ndcg(v, lab, grp).mean())
            score["score"] = blended(r["plain"]["s"], r["prior"]["s"], w)
            r["blend_feb"].append(lift_of(top_k(score, 10)))
        for key in ("plain", "prior", "back_plain", "back_prior"):
            if key in r:
                r[key].pop("s", None)
                r[key].pop("v", None)
        pd.to_pickle(r, path)
        print(f"seed {seed} collected, {time.process_time() - c0:.0f} CPU s", flush=True)
    rules.report(folder, args.seeds, BLEND)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--level", default="product", choices=["subclass", "product"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2, 3, 4, 5])
    ap.add_argument("--prior", default="choose", choices=["choose", "mean", "yes", "no", "all"])
    ap.add_argument("--backward", action="store_true", help="with --prior all: also Jan->Dec")
    ap.add_argument("--categories", action="store_true", help="with the category source")
    ap.add_argument("--validation-negatives", type=int, default=40)
    args = ap.parse_args(argv)
    folder = DATA / f"variants_{args.level}"
    if not (folder / "best.parquet").exists():
        build(args.level, folder)
    names, frames = _load(folder, args.categories)
    customers = pd.read_parquet(folder / "customers.parquet")["customer_id"].to_numpy()
    items = pd.read_parquet(folder / "items.parquet")["item_id"].to_numpy()
    truth, history = (
        pd.read_parquet(folder / "truth.parquet"),
        pd.read_parquet(folder / "history.parquet"),
    )
    best = float(pd.read_parquet(folder / "best.parquet")["best_baseline"].iloc[0])

    def lift_of(top: pd.DataFrame) -> float:
        recs = pd.DataFrame(
            {"customer_id": customers[top["c"]], "rank": top["rank"], "item_id": items[top["i"]]}
        )
        return evaluate(recs, truth, k=10)["ndcg@10"] / best

    if args.prior == "all":
        collect_all(args, folder, names, frames, lift_of)
        return 0
    lifts = []
    for seed in args.seeds:
        c0 = time.process_time()
        top, trees, seen = run_seed(seed, names, frames, args.prior, args.validation_negatives)
        recs = pd.DataFrame(
            {"customer_id": customers[top["c"]], "rank": top["rank"], "item_id": items[top["i"]]}
        )
        r = evaluate(recs, truth, k=10, history=history)
        lifts.append(r["ndcg@10"] / best)
        print(
            f"seed {seed}: {trees} trees, January NDCG@10 "
            + ", ".join(f"{k} {v:.4f}" for k, v in seen.items())
            + f"; February NDCG@10 {r['ndcg@10']:.4f}, lift {lifts[-1]:.3f} (repeat "
            f"{r['repeat_ndcg@10']:.4f}, explore {r['new_ndcg@10']:.4f}); {time.process_time() - c0:.0f} CPU s",
            flush=True,
        )
    lifts = np.array(lifts)
    print(
        f"{args.level}, prior {args.prior}, categories {args.categories}, validation negatives "
        f"{args.validation_negatives}: lift over the best baseline ({best:.4f}) mean {lifts.mean():.3f} "
        f"(min {lifts.min():.3f}, max {lifts.max():.3f}) over seeds {args.seeds}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
