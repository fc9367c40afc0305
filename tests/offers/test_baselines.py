import numpy as np
import pandas as pd
import pytest

from cemlib.offers.baselines import (
    global_popularity,
    own_most_frequent,
    personal_then_popular,
    popular_items,
    repurchase_cycle,
    tifu_knn,
)
from cemlib.offers.data import prepare_transactions
from cemlib.offers.tifu import Tifu, TifuParams, user_vectors

from .conftest import AS_OF


def _tx():
    rows = [
        ("a", "2025-01-01", "x"),
        ("a", "2025-01-02", "x"),
        ("a", "2025-01-03", "y"),
        ("b", "2025-01-01", "y"),
        ("c", "2025-01-01", "y"),
        ("c", "2025-01-02", "z"),
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "ts", "item_id"]).assign(quantity=1, amount=1.0)
    return prepare_transactions(df)


def test_popularity_counts_distinct_buyers():
    tx = _tx()
    assert popular_items(tx, 3) == ["y", "x", "z"]
    g = global_popularity(tx, 2)
    assert len(g) == 3 * 2 and set(g[g["rank"] == 1]["item_id"]) == {"y"}


def test_own_most_frequent_and_fill():
    tx = _tx()
    own = own_most_frequent(tx, 3)
    assert own[own["customer_id"] == "a"]["item_id"].tolist() == ["x", "y"]
    ptp = personal_then_popular(tx, 3)
    a = ptp[ptp["customer_id"] == "a"].sort_values("rank")
    assert a["item_id"].tolist() == ["x", "y", "z"]  # own first, then popular not yet offered
    assert ptp.groupby("customer_id").size().eq(3).all()
    assert not ptp.duplicated(["customer_id", "item_id"]).any()


def _lines(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "ts", "item_id"]).assign(quantity=1, amount=1.0)
    return prepare_transactions(df)


def test_tifu_vectors_decay_within_and_across_groups():
    # 4 baskets in 2 groups of 2: weights r_b^(pos from group end) / 2 * r_g^(groups from last) / 2
    c = np.zeros(5, dtype=np.int64)
    b = np.array([0, 1, 2, 3, 3])
    i = np.array([0, 0, 1, 1, 2])
    d = np.array([1, 2, 3, 4, 4])
    prm = TifuParams(groups=2, within_decay=0.5, group_decay=0.25)
    U = user_vectors(c, b, i, d, 1, 3, prm).toarray()[0]
    # item 0: baskets 0 and 1 (old group): (0.5 + 1) / 2 * 0.25 / 2; item 1: basket 2 (0.5)
    # and basket 3 (1) of the last group, each / 2 / 2; item 2: basket 3 only
    assert pytest.approx([1.5 / 2 * 0.25 / 2, 1.5 / 4, 1 / 4]) == U


def test_tifu_neighbours_exclude_the_customer_and_blend():
    U = user_vectors(
        np.array([0, 1, 1, 2]), np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2]),
        np.array([1, 1, 1, 1]), 3, 3, TifuParams(groups=1),
    )  # fmt: skip
    t = Tifu(U, TifuParams(groups=1, neighbours=1, alpha=0.5))
    nb = t.neighbour_matrix(np.array([0]))[0]
    assert nb == pytest.approx(U[1].toarray()[0])  # the closest other customer, not itself
    s = t.scores(np.array([0]), top=5).set_index("i")
    assert s.loc[0, "tifu"] == pytest.approx(0.5 * 1 + 0.5 * 1)
    assert s.loc[1, "tifu"] == pytest.approx(0.5 * 1) and 2 not in s.index


def test_tifu_knn_baseline_fills_k_and_ranks_recent_repeats_first():
    rows = [("a", f"2025-01-{d:02d}", "old") for d in (1, 2, 3)]
    rows += [("a", f"2025-02-{d:02d}", "new") for d in (1, 2)]
    rows += [("b", "2025-01-05", "old"), ("b", "2025-01-06", "z"), ("c", "2025-01-07", "z")]
    tx = _lines(rows)
    rec = tifu_knn(tx, 3, params=TifuParams(neighbours=1, alpha=0.9))
    a = rec[rec["customer_id"] == "a"].sort_values("rank")["item_id"].tolist()
    assert a[:2] == ["new", "old"]  # two recent purchases outweigh three older ones
    assert rec.groupby("customer_id").size().eq(3).all()
    assert not rec.duplicated(["customer_id", "item_id"]).any()


def test_repurchase_cycle_puts_due_items_first():
    # "w" every 7 days, last 7 days ago: due now; "m" every 30 days, last 2 days ago: later;
    # "x" every 2 days but not for 60 days: lapsed, after the cyclic items
    rows = [("a", d, "w") for d in ("2025-03-01", "2025-03-08", "2025-03-15", "2025-03-22")]
    rows += [("a", d, "m") for d in ("2025-01-27", "2025-02-26", "2025-03-27")]
    rows += [("a", d, "x") for d in ("2025-01-24", "2025-01-26", "2025-01-28")]
    rows += [("b", "2025-03-29", "y")]
    tx = _lines(rows)
    rec = repurchase_cycle(tx, 4)
    assert rec[rec["customer_id"] == "a"].sort_values("rank")["item_id"].tolist() == [
        "w", "m", "x", "y",
    ]  # fmt: skip


def test_baselines_of_a_subset_of_customers_equal_their_rows_with_everyone_ranked(transactions):
    """The stage ranks only the graded customers: each customer's list must not depend on who
    else is ranked (TIFU-KNN's pool and the popular fill come from the whole history)."""
    from cemlib.offers.baselines import all_baselines
    from cemlib.offers.stage import metric_table

    tx = prepare_transactions(transactions, as_of=AS_OF)
    custs = pd.unique(tx["customer_id"])
    some = custs[::3]
    # the subset leaves out whoever bought on the last day: "now" must stay the history's
    last = tx.loc[tx["ts"].dt.normalize() == tx["ts"].max().normalize(), "customer_id"]
    some = some[~pd.Index(some).isin(last)]
    assert len(some) > 50
    every = all_baselines(tx, 10, custs)
    part = all_baselines(tx, 10, some)
    for name in every:
        want = every[name][every[name]["customer_id"].isin(some)].reset_index(drop=True)
        got = part[name].sort_values(["customer_id", "rank"]).reset_index(drop=True)
        want = want.sort_values(["customer_id", "rank"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=name)
    # and the metric table (baselines graded on the customers with a purchase in the truth)
    truth = tx[tx["customer_id"].isin(custs[::2])].groupby("customer_id").head(2)
    recs = every["own_most_frequent"]
    table = metric_table(recs, truth[["customer_id", "item_id"]], tx, custs, 10)
    assert table.loc["tifu_knn", "customers"] == truth["customer_id"].nunique()
    assert 0 < table.loc["tifu_knn", "ndcg@10"] <= 1
