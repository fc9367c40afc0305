"""The protocol shared by the next-offer benchmarks on real logs (``offers_tafeng.py``,
``offers_completejourney.py``): fit :class:`~cemlib.offers.NextOfferModel` on the history to
``as_of``, recommend, and grade it against every baseline on the (customer, item) pairs bought
after ``as_of``, split into repeat and explore items as the "Next Basket Recommendation Reality
Check" reports them; the seed spread; the candidate recall of the explore pairs."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cemlib.offers import NextOfferModel, all_baselines, candidate_recall, evaluate


@dataclass
class Protocol:
    """One benchmark's setting: the data set's name, ``as_of`` (last day of history), the end
    of the evaluation window (exclusive), the model's ``horizon`` (days), the evaluation and
    validation periods' names, and the target: ``target`` x the ``target_of`` baseline's NDCG@k
    (``"best"``: the best baseline; ``target`` None: none at this level)."""

    name: str
    as_of: pd.Timestamp
    end: pd.Timestamp
    horizon: int
    period: str
    validation: str
    target: float | None
    target_of: str = "best"


def parser(doc: str | None, levels: list[str]) -> argparse.ArgumentParser:
    """The options every real-log benchmark takes: ``--levels`` (of ``levels``, all by
    default), ``--k``, ``--seed``, ``--more-seeds``; a script adds its own."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--levels", nargs="+", default=list(levels), choices=list(levels))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--more-seeds", nargs="*", type=int, default=[], help="refit with these seeds too"
    )
    return ap


def run_level(
    tx: pd.DataFrame,
    level: str,
    proto: Protocol,
    k: int,
    seed: int,
    more_seeds=(),
    options: dict | None = None,
) -> pd.DataFrame:
    """The model (``options``: extra :class:`NextOfferModel` arguments) and every baseline on
    ``tx`` (``customer_id, ts, item_id, quantity, amount, category``); the printed figures, and
    the table."""
    options = options or {}
    hist = tx[tx["ts"] < proto.as_of + pd.Timedelta(days=1)]
    after = tx[(tx["ts"] >= proto.as_of + pd.Timedelta(days=1)) & (tx["ts"] < proto.end)]
    customers = pd.Index(hist["customer_id"].unique())
    truth = after[after["customer_id"].isin(customers)][["customer_id", "item_id"]]
    truth = truth.drop_duplicates()

    t0, c0 = time.perf_counter(), time.process_time()
    model = NextOfferModel(k=k, horizon_days=proto.horizon, seed=seed, **options).fit(
        tx, proto.as_of
    )  # rows after as_of ignored
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    recs = model.recommend(explain=True)
    score_s, score_cpu = time.perf_counter() - t0, time.process_time() - c0
    rule = getattr(model, "owned_rule_", None)
    if rule is not None:  # owned items not offered (cemlib.offers.owned)
        print(
            f"owned items: {model.owned_held_} candidates held back (bar {rule.bar:.4f}: the "
            f"{k}-th best seller's chance in {proto.horizon} days; items below it "
            f"{int((rule.p_again < rule.bar).sum())} of {int((rule.p_again >= 0).sum())} owned)"
        )
    cands = model.candidate_frame()
    rec = candidate_recall(cands, truth)
    new_recall = explore_recall(cands, truth, model.tx_)

    history = model.tx_
    rows = {"model": evaluate(recs, truth, k=k, history=history)}
    c0 = time.process_time()
    for name, base in all_baselines(history, k, customers).items():
        rows[name] = evaluate(base, truth, k=k, history=history)
    base_cpu = time.process_time() - c0
    table = pd.DataFrame(rows).T
    print(
        f"\n=== {proto.name}, {level} level: {history['item_id'].nunique()} items, "
        f"{len(customers)} customers with history, {int(table['customers'].iloc[0])} evaluated "
        f"on {proto.period}"
    )
    print(
        f"train windows: {model.windows_}; best iteration {model.best_iteration_}, "
        f"{proto.validation} validation NDCG@{k} {model.validation_ndcg_:.4f} (by start, the "
        "validation window and the one before (_back, trained on the validation window): "
        + ", ".join(f"{n} {v:.4f}" for n, v in model.validation_by_start_.items())
        + f"; start: {'prior' if model.prior_.coef_.any() else 'plain'})"
    )
    print(
        f"candidate recall on {proto.period} (all sources): {rec:.3f}; candidates/customer "
        f"{len(cands) / max(1, cands['customer_id'].nunique()):.0f}; {proto.validation} recall "
        "by source: "
        + ", ".join(f"{s}={v:.3f}" for s, v in model.candidate_recall_["validation"].items())
    )
    print(
        f"candidate recall of {proto.period}'s explore pairs (never bought before): "
        + ", ".join(f"{s}={v:.0f}" if s == "n" else f"{s}={v:.3f}" for s, v in new_recall.items())
    )
    print(
        f"repeat share of the {proto.period} (customer, item) pairs: "
        f"{table['repeat_share'].iloc[0]:.3f}; of its purchase lines: "
        f"{line_repeat_share(after[after['customer_id'].isin(customers)], history):.3f}"
    )
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        for part, label in (("", "all items"), ("repeat_", "repeat"), ("new_", "explore")):
            cols = [f"{part}{m}@{k}" for m in ("ndcg", "recall", "hitrate", "map")]
            print(f"-- {label}")
            print(table[cols].round(4).to_string())
    base = table.drop(index="model")[f"ndcg@{k}"]
    ndcg = table.loc["model", f"ndcg@{k}"]
    print(
        f"model NDCG@{k} / best baseline ({base.idxmax()}) = {ndcg / base.max():.3f}; "
        f"/ personal_then_popular = {ndcg / base['personal_then_popular']:.3f}"
    )
    print(
        f"training seconds {train_s:.1f} (CPU {train_cpu:.1f}), scoring seconds {score_s:.1f} "
        f"(CPU {score_cpu:.1f}) ({len(recs)} offers incl. SHAP reasons); the five baselines "
        f"CPU {base_cpu:.1f} s"
    )
    print("example:", recs.iloc[0].to_dict())
    lifts = [ndcg / reference(table, proto, k)]
    if more_seeds:
        lifts = seed_spread(tx, proto, truth, table, k, [seed, *more_seeds], options)
    verdict(proto, level, lifts)
    return table


def reference(table: pd.DataFrame, proto: Protocol, k: int) -> float:
    """The NDCG@k the target is a multiple of (the best baseline's or a named one's)."""
    base = table.drop(index="model")[f"ndcg@{k}"]
    return float(base.max() if proto.target_of == "best" else base[proto.target_of])


def verdict(proto: Protocol, level: str, lifts: list[float]) -> None:
    """One line: the lift over the target's reference on every seed against the target."""
    lifts = np.asarray(lifts)
    of = "the best baseline" if proto.target_of == "best" else proto.target_of
    if proto.target is None:
        against = "no target at this level"
    else:
        met = "MET" if lifts.min() >= proto.target else "NOT MET"
        against = f"target >= {proto.target} on every seed: {met}"
    print(
        f"verdict ({proto.name}, {level}): model NDCG@10 / {of} = {lifts.mean():.3f} mean "
        f"(min {lifts.min():.3f}, max {lifts.max():.3f}) over {len(lifts)} seed(s); {against}"
    )


def line_repeat_share(after: pd.DataFrame, history: pd.DataFrame) -> float:
    """Share of the purchase lines (quantity > 0) of ``after`` whose item the customer had
    bought in ``history``: re-buys weighed by how often they happen."""
    lines = after.loc[after["quantity"] > 0, ["customer_id", "item_id"]]
    seen = history[["customer_id", "item_id"]].drop_duplicates().assign(_seen=True)
    flagged = lines.merge(seen, on=["customer_id", "item_id"], how="left")
    return float(flagged["_seen"].eq(True).mean()) if len(flagged) else float("nan")


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


def seed_spread(
    tx, proto: Protocol, truth, table: pd.DataFrame, k: int, seeds: list[int], options
) -> list[float]:
    """The model refitted with other seeds (bagging and feature sampling change): its NDCG@k
    and lift over the target's reference for each seed, and their mean; the lifts."""
    ref = reference(table, proto, k)
    ndcg = {seeds[0]: table.loc["model", f"ndcg@{k}"]}
    for s in seeds[1:]:
        c0 = time.process_time()
        model = NextOfferModel(k=k, horizon_days=proto.horizon, seed=s, **options)
        model.fit(tx, proto.as_of)
        res = evaluate(model.recommend(explain=False), truth, k=k, history=model.tx_)
        ndcg[s] = res[f"ndcg@{k}"]
        print(
            f"seed {s}: {model.best_iteration_} trees, start "
            + ("prior" if model.prior_.coef_.any() else "plain")
            + ", validation "
            + ", ".join(f"{n} {v:.4f}" for n, v in model.validation_by_start_.items())
            + f", NDCG@{k} {ndcg[s]:.4f}, lift {ndcg[s] / ref:.3f} (repeat "
            f"{res[f'repeat_ndcg@{k}']:.4f}, explore {res[f'new_ndcg@{k}']:.4f}); "
            f"CPU {time.process_time() - c0:.0f} s",
            flush=True,
        )
    vals = np.array(list(ndcg.values()))
    print(
        f"over seeds {seeds}: NDCG@{k} mean {vals.mean():.4f} (min {vals.min():.4f}, max "
        f"{vals.max():.4f}); lift mean {vals.mean() / ref:.3f} (min {vals.min() / ref:.3f}, "
        f"max {vals.max() / ref:.3f})"
    )
    return list(vals / ref)
