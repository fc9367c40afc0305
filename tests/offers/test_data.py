import pandas as pd
import pytest

from cemlib.errors import InputError
from cemlib.offers.data import InputReport, prepare_events, prepare_transactions


def test_rows_after_as_of_are_counted_and_left_out(transactions):
    late = transactions.head(50).assign(ts=pd.Timestamp("2025-07-01 00:00:00"))
    same_day = transactions.head(5).assign(ts=pd.Timestamp("2025-06-30 23:59:59"))
    rep = InputReport()
    out = prepare_transactions(
        pd.concat([transactions, late, same_day]), as_of="2025-06-30", report=rep
    )
    assert rep.after_as_of == 50
    assert rep.rows_used == len(transactions) + 5  # as_of is inclusive of its whole day
    assert out["ts"].max() <= pd.Timestamp("2025-06-30 23:59:59")


def test_missing_column_names_table_and_column(transactions):
    with pytest.raises(InputError, match=r"transactions.*'amount'"):
        prepare_transactions(transactions.drop(columns=["amount"]))


def test_unparseable_date_is_an_input_error(transactions):
    bad = transactions.astype({"ts": str}).copy()
    bad.loc[3, "ts"] = "not a date"
    with pytest.raises(InputError, match=r"'ts'.*not a date"):
        prepare_transactions(bad)


def test_non_numeric_quantity_is_an_input_error(transactions):
    bad = transactions.astype({"quantity": object}).copy()
    bad.loc[0, "quantity"] = "two"
    with pytest.raises(InputError, match="'quantity'"):
        prepare_transactions(bad)


def test_returns_are_counted_and_baskets_by_customer_day(transactions):
    tx = pd.concat([transactions, transactions.head(3).assign(quantity=-1)])
    rep = InputReport()
    out = prepare_transactions(tx, report=rep)
    assert rep.non_positive_quantity == 3
    n_days = transactions.groupby(["customer_id", transactions["ts"].dt.normalize()]).ngroups
    assert out["basket_id"].nunique() == n_days


def test_category_granularity_needs_categories(transactions):
    with pytest.raises(InputError, match="'category'"):
        prepare_transactions(transactions, granularity="category")
    cat = transactions.assign(category=transactions["item_id"].str[:2])
    out = prepare_transactions(cat, granularity="category")
    assert set(out["item_id"]) == set(cat["category"])


def test_events_need_an_item_or_category():
    ev = pd.DataFrame({"customer_id": ["a"], "ts": ["2025-01-01"]})
    with pytest.raises(InputError, match="events"):
        prepare_events(ev)
    ev["sku"] = ["X"]
    ev["event_type"] = ["cart"]
    out = prepare_events(ev, as_of="2025-06-30")
    assert out["item_id"].tolist() == ["X"] and out["weight"].tolist() == [3.0]
