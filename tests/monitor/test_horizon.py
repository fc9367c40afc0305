"""M3 (trial 6): a 30-day forecast graded after 7 days is scaled to the 7 days, and says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cemlib.monitor.forecasts import grade_churn, p_within, window_share
from cemlib.monitor.report import summary_markdown, verdict_of
from cemlib.monitor.result import MonitorResult
from tests.monitor.test_grading import _sales_warehouse


def test_share_and_probability_follow_a_constant_hazard():
    assert window_share(7, 30) == pytest.approx(7 / 30)
    assert window_share(31, 30) == pytest.approx(31 / 30)
    assert window_share(30, 30) == 1.0 and window_share(7, None) == 1.0
    p = np.array([0.0, 0.5, 0.75, 1.0])
    # S(7) = S(30) ** (7/30): half survive 30 days -> 0.5 ** (7/30) survive 7
    assert p_within(p, 7 / 30) == pytest.approx(
        [0.0, 1 - 0.5 ** (7 / 30), 1 - 0.25 ** (7 / 30), 1.0]
    )
    # two 15-day halves of a 30-day horizon compose back to it
    half = p_within(p, 0.5)
    assert 1 - (1 - half) ** 2 == pytest.approx(p)


@pytest.fixture
def graded(tmp_path):
    """Four customers forecast for 30 days on 2025-06-30, graded on 2025-07-07: a and b bought
    (a twice, on two days; b once), c and d did not; purchases before or after the window
    do not count."""
    ts = pd.to_datetime(["2025-07-01 10:00", "2025-07-05 12:00", "2025-07-07 23:00",
                         "2025-06-30 09:00", "2025-07-08 08:00"])  # fmt: skip
    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "c", "d"], "ts": ts,
                       "order_id": [f"o{i}" for i in range(5)], "item_id": "x",
                       "amount": [10.0, 20.0, 30.0, 40.0, 50.0]})  # fmt: skip
    forecast = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"], "p_purchase": [0.9, 0.6, 0.3, 0.1],
        "expected_purchases": [3.0, 1.5, 0.9, 0.6], "expected_revenue": [60.0, 30.0, 18.0, 12.0],
        "risk_segment": "low", "historic_value": 1.0, "clv": 1.0, "horizon_days": 30,
    })  # fmt: skip
    wh = _sales_warehouse(tmp_path / "w.duckdb", tx)
    week = grade_churn(wh, forecast, "2025-06-30", "2025-07-07")
    month = grade_churn(wh, forecast, "2025-06-30", "2025-07-30")
    wh.close()
    return week, month, forecast


def test_seven_days_of_a_thirty_day_forecast_are_graded_on_seven_thirtieths(graded):
    (c, cal, per), _, forecast = graded
    assert (c["elapsed days"], c["forecast horizon days"]) == (7, 30)
    assert c["expectation scaled to the elapsed days"] == pytest.approx(7 / 30)
    assert c["expected purchases over the horizon"] == pytest.approx(6.0)
    assert c["expected purchases"] == pytest.approx(6.0 * 7 / 30)
    assert c["expected revenue"] == pytest.approx(120.0 * 7 / 30)
    assert (c["realized purchases"], c["realized revenue"], c["buyers"]) == (3.0, 60.0, 2)
    want = 1 - (1 - forecast["p_purchase"].to_numpy()) ** (7 / 30)
    assert c["mean predicted p"] == pytest.approx(want.mean())
    y = np.array([1.0, 1.0, 0.0, 0.0])
    assert c["brier"] == pytest.approx(((want - y) ** 2).mean())
    assert c["auc"] == 1.0  # ranks unchanged by the scaling
    assert per["p_purchase"].to_numpy() == pytest.approx(want)


def test_a_whole_horizon_is_not_scaled(graded):
    _, (c, _, _), forecast = graded
    assert c["elapsed days"] == 30 and c["expectation scaled to the elapsed days"] == 1.0
    assert c["expected purchases"] == c["expected purchases over the horizon"] == 6.0
    assert c["mean predicted p"] == pytest.approx(forecast["p_purchase"].mean())
    assert c["realized purchases"] == 4.0  # the purchase of 2025-07-08 is inside now


def test_the_verdict_and_summary_say_the_window_is_part_of_the_horizon(graded):
    (c, _, _), (whole, _, _), _ = graded
    res = MonitorResult("night2", "2025-07-07", "night1", "2025-06-30", churn=c)
    v = verdict_of(res)
    assert v["figures"]["realized / expected purchases (7 of 30 days)"] == f"{3 / 1.4:.0%}"
    assert v["caveats"][0].startswith(
        "the 30-day forecast is graded on the 7 days elapsed (a part of its horizon): its "
        "expected purchases and revenue are scaled by 7/30 (of 6 purchases over the horizon)"
    )
    assert "The 30-day forecast is graded on the 7 days elapsed" in summary_markdown(res)
    full = verdict_of(MonitorResult("m", "2025-07-30", "night1", "2025-06-30", churn=whole))
    assert full["figures"]["realized / expected purchases"] == f"{4 / 6:.0%}"
    assert not any("graded on the" in x for x in full["caveats"])
