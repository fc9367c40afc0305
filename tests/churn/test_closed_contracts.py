"""Stage 03 with closed contracts (trial 11 M2/M3): customers whose every CRM record closed by
``as_of`` have already left; they are left out of the scores and the risk list and counted
apart, and the page says what its AUC measures (a purchase, not a contract's end)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from cemlib.churn.models import risk_segment, risk_thresholds_from
from cemlib.churn.report import verdict_of
from cemlib.churn.stage import without_closed
from tests.offers.test_closed_contracts import AS_OF, _warehouse


def test_closed_customers_are_not_scored_as_at_risk(tmp_path):
    wh, _ = _warehouse(tmp_path)
    with wh:
        mapped = wh.read_table("identity", "map").set_index("record_id")["profile_id"]
        a, b, c, z = (str(mapped[x]) for x in ("A1", "B1", "C1", "C2"))
        scores = pd.DataFrame(
            {
                "customer_id": [a, b, c, z],
                "risk_segment": ["high", "high", "low", "high"],
                "p_purchase": [0.1, 0.2, 0.9, 0.1],
                "expected_purchases": [0.1, 0.3, 2.0, 0.1],
                "expected_revenue": [10.0, 30.0, 200.0, 10.0],
            }
        )
        kept, gone = without_closed(wh, scores, AS_OF, "profile")
        # cut-offs chosen from the scores: chosen again from the customers kept
        model = SimpleNamespace(risk_thresholds=None, risk_thresholds_=(0.15, 0.5))
        again, _ = without_closed(wh, scores, AS_OF, "profile", model=model)
    assert model.risk_thresholds_ == risk_thresholds_from(np.array([0.2, 0.9]))
    assert list(again["risk_segment"]) == list(
        risk_segment(np.array([0.2, 0.9]), model.risk_thresholds_)
    )
    # A and Z left (Z's contract closed on as_of itself); C closes after as_of: still scored
    assert gone == 2 and list(kept["customer_id"]) == [b, c]
    result = SimpleNamespace(scores=kept, truth={"auc": 0.97}, already_closed=gone)
    v = verdict_of(result, 180)
    assert v["figures"]["already closed (not scored)"] == "2"
    assert v["figures"]["high risk: least likely to buy in the next 180 days"] == "1 (50%)"
    said = " ".join(v["caveats"])
    assert "2 customers whose every contract closed" in said
    assert "not whose contract ends" in said


def test_without_closed_at_the_scores_are_untouched(tmp_path):
    from cemlib.warehouse import Warehouse

    scores = pd.DataFrame(
        {"customer_id": ["x"], "risk_segment": ["high"], "expected_purchases": [0.1],
         "expected_revenue": [1.0]}
    )  # fmt: skip
    with Warehouse(tmp_path / "w.duckdb") as wh:
        kept, gone = without_closed(wh, scores, AS_OF, "profile")
    assert gone is None and kept is scores
    v = verdict_of(SimpleNamespace(scores=kept, truth={}, already_closed=gone), 180)
    assert "already closed (not scored)" not in v["figures"]
    assert not any("contract closed" in c for c in v["caveats"])
