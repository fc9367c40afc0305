"""``scoring.fill``: short lists padded with the popular items they do not hold."""

import numpy as np
import pandas as pd

from cemlib.offers.scoring import fill


def _padded_one_by_one(top, customers, pop, k):
    """The padding as the loop over the short customers wrote it (the reference)."""
    rows = []
    for c in customers:
        have = top.loc[top["c"] == c, "i"].tolist()
        extra = [i for i in pop if i not in have][: max(0, k - len(have))]
        rows += [(c, i, len(have) + j + 1) for j, i in enumerate(extra)]
    return rows


def test_fill_pads_each_short_list_with_the_first_popular_items_it_lacks():
    rng = np.random.default_rng(5)
    n_items, k = 40, 12
    customers = np.arange(300, dtype=np.int64)
    parts = []
    for c in customers:  # 0 to 20 scored candidates each: some lists short, some full
        items = rng.choice(n_items, size=int(rng.integers(0, 21)), replace=False)
        ranked = pd.DataFrame({"c": c, "i": items, "score": -np.arange(len(items), dtype=float)})
        parts.append(ranked.head(k).assign(rank=np.arange(1, min(k, len(items)) + 1)))
    top = pd.concat(parts, ignore_index=True)
    top["f1"] = np.float32(1.0)
    for col in ("cat", "cooc_anchor", "after_anchor", "seg"):
        top[col] = 7
    pop = rng.permutation(n_items)[:15]  # the best sellers, in their order
    category = np.arange(n_items) % 4
    out = fill(top, customers, pop, k, ["f1"], category)
    pad = out[out["f1"].isna()]
    want = _padded_one_by_one(top, customers, pop, k)
    assert len(want) > 300  # many short lists, padded
    got = list(zip(pad["c"], pad["i"], pad["rank"], strict=True))
    assert got == want
    assert (pad["score"] == top["score"].min() - 1).all()
    assert (pad["cat"].to_numpy() == category[pad["i"].to_numpy()]).all()
    assert (pad[["cooc_anchor", "after_anchor", "seg"]] == -1).all().all()
    # every row kept, sorted by customer and rank, no item twice in a list
    assert len(out) == len(top) + len(want)
    assert out.equals(out.sort_values(["c", "rank"]).reset_index(drop=True))
    assert not out.duplicated(["c", "i"]).any()
    assert (out.groupby("c").size() == k).all()  # 15 best sellers: enough for every list
