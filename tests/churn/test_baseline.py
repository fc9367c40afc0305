"""The naive baselines the churn model is shown beside: recency and last period repeats."""

import numpy as np
import pandas as pd

from cemlib.churn.baseline import baseline_metrics, baseline_scores, metric_table


def _tx():
    rows = [
        ("a", "2025-01-05", 100), ("a", "2025-02-10", 100), ("a", "2025-03-20", 100),  # before cut
        ("a", "2025-05-01", 100), ("a", "2025-06-01", 100),  # in the window: 2
        ("b", "2025-03-25", 50), ("b", "2025-06-10", 50),  # recent, 1 in the window
        ("c", "2024-10-01", 80),  # lapsed long ago, nothing in the window
        ("d", "2024-12-01", 80), ("d", "2025-01-15", 80),  # nothing in the window
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).assign(
        ts=lambda d: pd.to_datetime(d["ts"])
    )


def test_baseline_scores_see_only_the_history_up_to_the_cut():
    scores = baseline_scores(_tx(), pd.Timestamp("2025-03-31"), 90)
    assert scores.loc["a", "days_since_last"] == 11  # 2025-03-20 -> 03-31
    assert scores.loc["b", "days_since_last"] == 6
    assert scores.loc["a", "last_period_purchases"] == 3  # Jan 5 .. Mar 20 within 90 days
    assert scores.loc["c", "last_period_purchases"] == 0
    assert set(scores.index) == {"a", "b", "c", "d"}


def test_baseline_metrics_on_the_held_out_window():
    m = baseline_metrics(_tx(), "2025-06-29", 90)  # window (2025-03-31, 2025-06-29]
    recency = m.loc["recency (days since the last purchase)"]
    assert recency["auc"] == 1.0  # a and b bought most recently and are the buyers
    repeat = m.loc["last period repeats"]
    assert repeat["actual_total"] == 3 and repeat["predicted_total"] == 5  # a 3 + b 1 + d 1
    assert np.isclose(repeat["total_error"], 5 / 3 - 1)
    table = metric_table({"auc": 0.9, "predicted_total": 3.0, "actual_total": 3.0}, m)
    assert list(table["predictor"]) == ["model", *m.index]
    assert table.loc[0, "auc"] == 0.9 and np.isnan(table.loc[1, "rmse"])


def test_verdict_names_the_baseline_and_the_caveats_in_words():
    from types import SimpleNamespace

    from cemlib.churn.report import risk_table, verdict_of

    scores = pd.DataFrame({
        "risk_segment": ["low", "high", "medium", "high"], "p_purchase": [0.9, 0.1, 0.5, 0.2],
        "expected_purchases": [3.0, 0.2, 1.0, 0.3], "expected_revenue": [3000.0, 50.0, 900.0, 60.0],
        "expected_margin": [600.0, 10.0, 180.0, 12.0], "clv": [2500.0, 40.0, 800.0, 50.0],
    })  # fmt: skip
    truth = {"evaluation": "holdout", "auc": 0.803, "total_error": -0.065,
             "predicted_total": 935.0, "actual_total": 1000.0,
             "person_future_total_error": -0.3154}  # fmt: skip
    base = pd.DataFrame({"auc": [0.800, 0.76]}, index=["recency", "last period repeats"])
    v = verdict_of(SimpleNamespace(scores=scores, truth=truth), 365, base)
    assert v["figures"]["high risk: least likely to buy in the next 365 days"] == "2 (50%)"
    assert v["figures"]["expected revenue, next 365 days"] == "4,010 ₽"
    assert v["comparison"] == (
        "On the held-out year: AUC 0.803 against 0.800 for the best naive baseline (recency)."
    )
    # +0.003 is within twice the standard error (0.01 without one): not OK, not "better"
    # a 180-day horizon's held-out window is no year (trial 9)
    v180 = verdict_of(SimpleNamespace(scores=scores, truth=truth), 180, base)
    assert v180["comparison"].startswith("On the held-out 180 days: AUC 0.803")
    assert v["status"] == "warning"
    assert any(
        c.startswith("the model does not rank who buys again better than recency on this history")
        and "within twice the AUC's standard error of 0.005" in c
        for c in v["caveats"]
    )
    # with the held-out AUC's standard error 0.001, +0.003 is a real margin
    sure = verdict_of(
        SimpleNamespace(scores=scores, truth={**truth, "holdout_auc_se": 0.001}), 365, base
    )
    assert not any("recency" in c for c in sure["caveats"])
    assert any("forecast is 32% short of them" in c for c in v["caveats"])
    assert not any("under-predicts" in c for c in v["caveats"])  # -6.5% is within 10%
    assert list(risk_table(scores)["risk"]) == ["high", "medium", "low"]
    # a model that loses to the baseline says what to rank a contact list by
    worse = verdict_of(SimpleNamespace(scores=scores, truth={**truth, "auc": 0.614}), 365, base)
    assert worse["status"] == "warning"
    assert worse["caveats"][0].startswith(
        "the model ranks who buys again worse than recency on this history "
        "(AUC 0.614 against 0.800): for a contact list, rank by that"
    )
