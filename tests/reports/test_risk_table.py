"""03's "Risk and value" table without margin data (trial 8 L3)."""

import pandas as pd

from cemlib.churn.report import NO_MARGIN, risk_table
from cemlib.reports.tables import table_html


def _scores(margin):
    return pd.DataFrame(
        {
            "risk_segment": ["high", "low", "low", "medium"],
            "p_purchase": [0.2, 0.9, 0.8, 0.5],
            "expected_purchases": [0.5, 3.0, 2.0, 1.0],
            "expected_revenue": [100.0, 900.0, 600.0, 300.0],
            "expected_margin": margin,
            "clv": [90.0, 800.0, 500.0, 250.0],
        }
    )


def test_no_margin_in_the_data_says_so_instead_of_zero():
    t = risk_table(_scores([0.0, 0.0, None, 0.0]))
    assert t["risk"].tolist() == ["high", "medium", "low"]
    assert t["expected margin, ₽"].tolist() == [NO_MARGIN] * 3
    assert t["expected revenue, ₽"].tolist() == [100.0, 300.0, 1500.0]
    html = table_html(t, rub=["expected revenue, ₽", "discounted CLV, ₽"])
    assert html.count("no margin data") == 3


def test_a_margin_is_summed_per_segment():
    t = risk_table(_scores([10.0, 200.0, 150.0, 0.0]))
    assert t["expected margin, ₽"].tolist() == [10.0, 0.0, 350.0]
    assert t["customers"].tolist() == [1, 1, 2]
