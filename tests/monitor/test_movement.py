"""Risk movement between two runs and previous profile ids followed to today's."""

from __future__ import annotations

import pandas as pd

from cemlib.identity.changes import change_frame
from cemlib.monitor.forecasts import current_ids
from cemlib.monitor.movement import profile_changes, risk_movement
from cemlib.warehouse import Warehouse


def test_ids_merged_or_split_since_are_followed_through_the_registry(tmp_path):
    registry = pd.DataFrame({
        "profile_id": ["a", "b", "c", "d"], "status": ["merged", "merged", "active", "split"],
        "merged_into": ["b", "c", None, "c"],
    })  # fmt: skip
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.write_table("identity", "registry", registry, run_id="r", as_of="2025-05-31")
        got = current_ids(wh, pd.Series(["a", "b", "c", "d", "e"]))
    assert got.tolist() == ["c", "c", "c", "c", "e"]  # a -> b -> c; e never registered


def test_transitions_value_at_risk_and_who_became_high_risk():
    before = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"], "risk_segment": ["low", "medium", "high", "medium"],
        "historic_value": [10.0, 50.0, 7.0, 30.0], "p_purchase": [0.9, 0.5, 0.1, 0.5],
    })  # fmt: skip
    now = pd.DataFrame({
        "customer_id": ["a", "b", "c", "x"], "risk_segment": ["high", "high", "low", "high"],
        "historic_value": [12.0, 55.0, 9.0, 99.0], "p_purchase": [0.2, 0.1, 0.8, 0.1],
    })  # fmt: skip
    table, figures, top = risk_movement(before, now, before["customer_id"])
    t = table.set_index("before")
    assert (t.loc["low", "high"], t.loc["medium", "high"], t.loc["high", "low"]) == (1, 1, 1)
    assert int(t.to_numpy().sum()) == figures["customers in both runs"] == 3  # d left, x new
    assert (figures["moved to a higher risk"], figures["moved to a lower risk"]) == (2, 1)
    assert figures["value at risk now"] == 12.0 + 55.0 + 99.0
    assert figures["value at risk before"] == 7.0
    assert top["customer_id"].tolist() == ["b", "a"]  # by historic spend now
    # the forecast's horizon goes into the name (trial 4, L1: a 30-day probability beside a
    # segment from the 365-day one read as "probability of a purchase")
    _, _, top30 = risk_movement(before, now.assign(horizon_days=30), before["customer_id"])
    assert "p_purchase_30" in top30.columns and "p_purchase" not in top30.columns


def test_profile_changes_count_the_ids_identity_changed_this_run(tmp_path):
    """Trial 4 (H3): identity wrote 19 ``merge`` rows, the monitor looked for ``merged`` and said
    0 merged ids and < 0.1% of ids changed; a split id has a row per part."""
    registry = pd.DataFrame({
        "profile_id": ["a", "b", "c", "d", "e", "f"],
        "status": ["merged", "active", "split", "active", "active", "retired"],
        "first_run_id": ["r1", "r1", "r1", "r2", "r2", "r1"],
    })  # fmt: skip
    changes = change_frame([
        {"change": "merge", "profile_id": "a", "other_profile_id": "b", "records": 3,
         "evidence": "e-mail"},
        {"change": "split", "profile_id": "c", "other_profile_id": "d", "records": 2,
         "evidence": "x"},
        {"change": "split", "profile_id": "c", "other_profile_id": "e", "records": 1,
         "evidence": "x"},
        {"change": "moved", "profile_id": "b", "other_profile_id": "d", "records": 4,
         "evidence": "x"},
        {"change": "retired", "profile_id": "f", "other_profile_id": None, "records": 0,
         "evidence": "x"},
    ])  # fmt: skip
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.write_table("identity", "registry", registry, run_id="r2", as_of="2025-06-30")
        wh.write_table("identity", "changes", changes, run_id="r2", as_of="2025-06-30")
        got = profile_changes(wh, "r2", previous_active=4)
    assert {k: got[k] for k in ("merged ids", "split ids", "moved records", "retired ids")} == {
        "merged ids": 1, "split ids": 1, "moved records": 4, "retired ids": 1,
    }  # fmt: skip
    assert got["new profiles"] == 2 and got["profiles"] == 3
    assert got["share of ids changed"] == 3 / 4
