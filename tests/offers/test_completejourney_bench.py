"""The Complete Journey benchmark's reading of the package's tables and the shared protocol's
helpers, on tiny frames built here (never the wheel)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from cemlib.offers.data import InputReport, prepare_transactions

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from offers_completejourney import journey_frame, level_frame  # noqa: E402
from offers_real import Protocol, line_repeat_share, verdict  # noqa: E402


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    ts = pd.to_datetime(
        [
            "2017-01-02 10:00",
            "2017-01-02 10:00",
            "2017-01-02 18:00",
            "2017-02-01 09:30",
            "2017-02-03 12:00",
        ]
    )
    tx = pd.DataFrame(
        {
            "household_id": [1, 1, 1, 2, 2],
            "store_id": 7,
            "basket_id": [100, 100, 101, 200, 201],
            "product_id": [11, 12, 11, 13, 99],
            "quantity": [1, 2, 1, 0, 3],
            "sales_value": [1.5, 4.0, 1.5, 0.0, 2.25],
            "transaction_timestamp": ts,
        }
    )
    products = pd.DataFrame(
        {"product_id": [11, 12, 13], "product_category": ["MILK", "BREAD", "MILK"]}
    )
    return tx, products


def test_journey_frame_keeps_every_line_and_maps_categories():
    tx, products = _tables()
    out = journey_frame(tx, products)
    assert len(out) == 5
    assert out["customer_id"].tolist() == ["1", "1", "1", "2", "2"]
    # product 99 is not in the products table: its category is named, not dropped
    assert out["category"].tolist() == ["MILK", "BREAD", "MILK", "MILK", "(unknown)"]
    assert out["quantity"].sum() == 7.0
    assert out["amount"].sum() == pytest.approx(9.25)


def test_baskets_follow_basket_id_and_zero_quantities_are_counted():
    tx, products = _tables()
    for level, items in (
        ("product", {"11", "12", "99"}),
        ("category", {"MILK", "BREAD", "(unknown)"}),
    ):
        report = InputReport()
        prepared = prepare_transactions(
            level_frame(journey_frame(tx, products), level), report=report
        )
        assert report.rows_in == 5 and report.non_positive_quantity == 1 and report.rows_used == 4
        assert set(prepared["item_id"]) == items
        # household 1 bought twice on one day (baskets 100 and 101): two baskets, not one day
        assert prepared.groupby("customer_id")["basket_id"].nunique().to_dict() == {"1": 2, "2": 1}


def test_line_repeat_share_weighs_lines():
    history = pd.DataFrame({"customer_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]})
    after = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "item_id": ["x", "x", "z", "y", "x"],
            "quantity": [1.0, 2.0, 1.0, 1.0, 0.0],  # the last line (a return) is left out
        }
    )
    # lines: a-x twice (repeat), a-z (new), b-y (new for b): 2 of 4
    assert line_repeat_share(after, history) == pytest.approx(0.5)


def test_verdict_needs_every_seed(capsys):
    proto = Protocol(
        "X", pd.Timestamp("2017-09-30"), pd.Timestamp("2018-01-01"), 92, "Q4", "Q3", 1.05
    )
    verdict(proto, "product", [1.06, 1.07])
    verdict(proto, "product", [1.06, 1.04])
    verdict(Protocol("X", proto.as_of, proto.end, 92, "Q4", "Q3", None), "category", [1.02])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].endswith("over 1 seed(s); no target at this level")
    assert lines[0].endswith("on every seed: MET") and "1.065 mean" in lines[0]
    assert lines[1].endswith("on every seed: NOT MET") and "(min 1.040" in lines[1]
