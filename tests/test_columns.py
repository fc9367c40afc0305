"""The one validator of users' tables (:mod:`cemlib.columns`): the same checks and messages for
churn's transactions and subscriptions and offers' transactions."""

from __future__ import annotations

import pandas as pd
import pytest

from cemlib.columns import ID, NUMBER, TIME, TIME_OR_EMPTY, typed_columns
from cemlib.errors import InputError

KINDS = {"customer_id": ID, "ts": TIME, "amount": NUMBER}


def test_types_ids_dates_and_numbers():
    df = pd.DataFrame(
        {
            "customer_id": [1, 2, 2],
            "ts": ["05.03.2024 10:00", "2024-03-20", "2024-03-20T10:00:00+03:00"],
            "amount": ["1 200,50", "99", None],
        }
    )
    out = typed_columns(df, KINDS, source="t.csv")
    assert out["customer_id"].tolist() == ["1", "2", "2"]
    assert out["ts"].tolist() == [
        pd.Timestamp("2024-03-05 10:00"),
        pd.Timestamp("2024-03-20"),
        pd.Timestamp("2024-03-20 10:00"),  # the wall-clock time, the zone dropped
    ]
    assert out["amount"].tolist()[:2] == [1200.5, 99.0] and pd.isna(out["amount"].iloc[2])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame(columns=["customer_id", "ts", "amount"]), "t.csv: no rows"),
        (pd.DataFrame({"customer_id": [1], "ts": ["2024-01-01"]}), "column 'amount': missing"),
        (
            pd.DataFrame({"customer_id": [None], "ts": ["2024-01-01"], "amount": [1]}),
            r"column 'customer_id': 1 row\(s\) without a value",
        ),
        (
            pd.DataFrame({"customer_id": [1, 2], "ts": ["31.02.x", None], "amount": [1, 2]}),
            r"column 'ts': unparseable date '31\.02\.x' \(2 rows\)",
        ),
        (
            pd.DataFrame({"customer_id": [1], "ts": [None], "amount": [1]}),
            r"column 'ts': 1 row\(s\) without a date",
        ),
        (
            pd.DataFrame({"customer_id": [1], "ts": ["2024-01-01"], "amount": ["много"]}),
            r"column 'amount': not a number: 'много' \(1 rows\)",
        ),
    ],
)
def test_one_message_per_defect(frame, message):
    with pytest.raises(InputError, match=message):
        typed_columns(frame, KINDS, source="t.csv")


def test_optional_columns_and_empty_times():
    df = pd.DataFrame({"customer_id": ["a", "b"], "start": ["2024-01-01", "2024-02-01"]})
    df["end"] = ["", "01.03.2024"]
    kinds = {"customer_id": ID, "start": TIME, "end": TIME_OR_EMPTY, "margin": NUMBER}
    out = typed_columns(df, kinds, source="subs.csv", optional=("margin",))
    assert "margin" not in out
    assert pd.isna(out["end"].iloc[0]) and out["end"].iloc[1] == pd.Timestamp("2024-03-01")
    assert typed_columns(df.head(0), kinds, source="s", optional=("margin",), allow_empty=True)


def test_the_three_callers_give_the_same_message():
    from cemlib.churn.features import validate_transactions
    from cemlib.churn.subscriptions import subscription_table
    from cemlib.offers.data import prepare_transactions

    bad = {"customer_id": ["a"], "item_id": ["i"], "quantity": [1], "amount": [1.0]}
    messages = []
    for call, extra in (
        (validate_transactions, {"ts": ["31.02.x"]}),
        (prepare_transactions, {"ts": ["31.02.x"]}),
        (lambda df, source: subscription_table(df, "2025-01-01", source), {"start": ["31.02.x"]}),
    ):
        frame = pd.DataFrame({**bad, **extra, "end": [None]})
        with pytest.raises(InputError) as err:
            call(frame, source="f.csv")
        messages.append(str(err.value).replace("'start'", "'ts'"))
    assert len(set(messages)) == 1, messages
    assert messages[0] == "f.csv, column 'ts': unparseable date '31.02.x' (1 rows)"
