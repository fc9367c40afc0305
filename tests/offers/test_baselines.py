import pandas as pd

from cemlib.offers.baselines import (
    global_popularity,
    own_most_frequent,
    personal_then_popular,
    popular_items,
)
from cemlib.offers.data import prepare_transactions


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
