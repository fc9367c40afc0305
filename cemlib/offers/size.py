"""How many trees the refit grows: the fewest the validation customers cannot tell from the
early-stopped best (the one-standard-error rule).

Early stopping keeps the iteration with the highest mean validation NDCG, however small its
lead (at 200,000 people the best was the round cap itself, 300 trees), while every tree costs
its share of the refit on both windows, of scoring every candidate and of the reasons. The refit instead takes
the smallest size whose per-query NDCG is within one standard error of the best's (the paired
difference over the validation customers, :func:`cemlib.offers.start.paired_z`).

Opt-in (``NextOfferModel(forest_size="smallest")``): it cut no data set it was measured on.
At 200,000 people every smaller size was significantly worse (z 2.1 at 290 trees, 7.2 at 270:
the round cap binds there, more trees would rank better), and it cost 15 CPU s; on the
20,000-person stage, The Complete Journey and Ta-Feng it kept the early-stopped best too.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from cemlib.offers.forest import compile_forest
from cemlib.offers.start import paired_z, query_ndcg
from cemlib.offers.training import WindowData

#: the forest sizes :func:`smallest_forest` compares: every this many trees, and the best
SIZE_STEP = 10


def smallest_forest(
    booster: lgb.Booster,
    valid: WindowData,
    names: list[str],
    init: np.ndarray,
    best: int,
    k: int = 10,
) -> tuple[int, dict]:
    """The fewest trees (every :data:`SIZE_STEP`, up to ``best``) whose validation NDCG@k is
    within one standard error of the best iteration's: the one-standard-error rule, on the
    paired per-query difference (:func:`cemlib.offers.start.paired_z` ``< 1``). Past that size
    the trees are a gain the validation customers cannot tell from noise, while each tree costs
    its share of the refit, of scoring every candidate and of the reasons. ``init``: the
    validation rows' starting scores. Returns the size and its evidence (``z`` of each size)."""
    forest = compile_forest(booster) if best > SIZE_STEP else None
    if forest is None or forest.leaf.shape[0] != best:
        return best, {}
    X = valid.frame[names].to_numpy(np.float32)
    labels = valid.frame["label"].to_numpy()
    sizes = [*range(SIZE_STEP, best, SIZE_STEP), best]
    scores, done, per = np.asarray(init, dtype=np.float64).copy(), 0, {}
    for m in sizes:  # cumulative: each tree is scored once
        scores = scores + forest.trees(done, m).predict(X, num_threads=1)
        done, per[m] = m, query_ndcg(scores, labels, valid.groups, k)
    z = {m: paired_z(per[m], per[best]) for m in sizes}
    chosen = min(m for m in sizes if z[m] < 1.0)
    return chosen, {"z": z, "ndcg": {m: float(v.mean()) for m, v in per.items()}}
