"""Trial 10 H2: the recent pace (purchases of the last few typical gaps against the count the
customer's own earlier rate expects) tells a slowing customer from a steady one of the same
recency, sees nothing after ``as_of``, and reaches the blend."""

import numpy as np
import pandas as pd

from cemlib.churn.features import (
    customer_features,
    purchase_occasions,
    recent_window,
    validate_transactions,
)

AS_OF = pd.Timestamp("2025-06-30")


def _rows(customer: str, days: list[pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": customer, "ts": days, "amount": 10.0})


def _pair_and_others() -> pd.DataFrame:
    """``slow``: weekly for a year, monthly in the last quarter, last purchase 3 days before
    as_of; ``steady``: weekly throughout, last purchase 3 days before as_of too; 60 weekly
    and monthly buyers around them (the typical gap the window is chosen from)."""
    last = AS_OF - pd.Timedelta(days=3)
    steady = list(pd.date_range(end=last, periods=65, freq="7D"))
    quarter = [last - pd.Timedelta(days=d) for d in (0, 30, 60)]
    slow = [d for d in steady if d < last - pd.Timedelta(days=90)] + quarter
    parts = [_rows("slow", slow), _rows("steady", steady)]
    rng = np.random.default_rng(0)
    for i in range(60):
        gap = 7 if i % 2 else 30
        end = AS_OF - pd.Timedelta(days=int(rng.integers(0, gap)))
        parts.append(
            _rows(f"o{i}", list(pd.date_range(end=end, periods=400 // gap, freq=f"{gap}D")))
        )
    return validate_transactions(pd.concat(parts, ignore_index=True))


def test_window_is_chosen_from_the_typical_gap():
    tx = _pair_and_others()
    occ = purchase_occasions(tx, AS_OF)
    # half the customers buy weekly, half monthly (and two weekly-ish): the median mean gap
    # is between, three of it is the window
    w = recent_window(occ, AS_OF)
    assert w % 3 == 0 and 21 <= w <= 90
    # a world of monthly buyers only: a longer window
    monthly = occ[occ["customer_id"].str.startswith("o")]
    monthly = monthly[monthly["customer_id"].str[1:].astype(int) % 2 == 0]
    assert recent_window(monthly, AS_OF) == 90


def test_slowing_customer_has_a_lower_pace_than_a_steady_one_of_the_same_recency():
    tx = _pair_and_others()
    f = customer_features(purchase_occasions(tx, AS_OF), AS_OF)
    assert f.loc["slow", "recency_days"] == f.loc["steady", "recency_days"] == 3
    # the steady weekly buyer buys as before: pace about 0
    assert abs(f.loc["steady", "recent_pace"]) < 0.15
    # the slowing one bought about a third as often as before in the window
    assert f.loc["slow", "recent_pace"] < np.log(0.6)
    assert f.loc["slow", "recent_pace"] < f.loc["steady", "recent_pace"] - 0.5


def test_a_purchase_after_as_of_changes_no_feature():
    tx = _pair_and_others()
    before = customer_features(purchase_occasions(tx, AS_OF), AS_OF)
    later = pd.DataFrame(
        {
            "customer_id": ["slow", "steady", "o1", "new"],
            "ts": [AS_OF + pd.Timedelta(days=d, hours=1) for d in (1, 2, 5, 3)],
            "amount": 99.0,
        }
    )
    both = validate_transactions(pd.concat([tx, later], ignore_index=True))
    after = customer_features(purchase_occasions(both, AS_OF), AS_OF)
    pd.testing.assert_frame_equal(before, after)
    assert recent_window(purchase_occasions(both), AS_OF) == recent_window(
        purchase_occasions(tx), AS_OF
    )


def test_customer_without_an_earlier_rate_has_pace_zero():
    tx = _pair_and_others()
    fresh = _rows("fresh", [AS_OF - pd.Timedelta(days=d) for d in (10, 5)])
    once = _rows("once", [AS_OF - pd.Timedelta(days=300), AS_OF - pd.Timedelta(days=1)])
    tx = validate_transactions(pd.concat([tx, fresh, once], ignore_index=True))
    f = customer_features(purchase_occasions(tx, AS_OF), AS_OF)
    assert f.loc["fresh", "recent_pace"] == 0.0
    assert f.loc["once", "recent_pace"] == 0.0
