import pandas as pd
import pytest

from cemlib.churn.features import (
    customer_features,
    purchase_occasions,
    validate_transactions,
)
from cemlib.errors import InputError


def test_missing_column_and_bad_values_are_input_errors():
    with pytest.raises(InputError, match="'amount'"):
        validate_transactions(pd.DataFrame({"customer_id": [1], "ts": ["2024-01-01"]}), "t.csv")
    with pytest.raises(InputError, match=r"t.csv, column 'ts': unparseable date '31\.02\.x'"):
        validate_transactions(
            pd.DataFrame(
                {"customer_id": [1, 2], "ts": ["01.02.2024", "31.02.x"], "amount": [1, 2]}
            ),
            "t.csv",
        )
    with pytest.raises(InputError, match="column 'amount': not a number"):
        validate_transactions(
            pd.DataFrame({"customer_id": [1], "ts": ["2024-01-01"], "amount": ["много"]})
        )
    with pytest.raises(InputError, match="no rows"):
        validate_transactions(pd.DataFrame(columns=["customer_id", "ts", "amount"]))


def test_russian_formats_and_same_day_aggregation():
    df = validate_transactions(
        pd.DataFrame(
            {
                "customer_id": ["a", "a", "a", "b"],
                "ts": ["05.03.2024 10:00", "05.03.2024 18:30", "2024-03-20", "01.04.2024"],
                "amount": ["1 200,50", "99,50", "100", "10"],
            }
        )
    )
    assert df["amount"].tolist() == [1200.5, 99.5, 100.0, 10.0]
    occ = purchase_occasions(df, as_of="2024-03-31")
    assert len(occ) == 2  # two days of a; b is after as_of
    assert occ["amount"].tolist() == [1300.0, 100.0]
    f = customer_features(occ, "2024-03-31").loc["a"]
    assert (f.n_purchases, f.recency_days, f.age_days, f.mean_gap) == (2, 11, 26, 15)


def test_as_of_is_inclusive_whole_day():
    df = validate_transactions(
        pd.DataFrame(
            {
                "customer_id": ["a", "a"],
                "ts": ["2024-03-31 23:59:59", "2024-04-01 00:00:00"],
                "amount": [1.0, 2.0],
            }
        )
    )
    occ = purchase_occasions(df, as_of="2024-03-31")
    assert occ["amount"].tolist() == [1.0]
