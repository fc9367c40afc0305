import datetime as dt
import json

import pandas as pd
import pytest

from cemlib.warehouse import Warehouse

AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def synth_wh(tmp_path_factory):
    from cemlib.collect.stage import collect

    path = tmp_path_factory.mktemp("churn") / "w.duckdb"
    collect("synthetic", warehouse=path, n_people=800, seed=11, as_of=AS_OF, progress=False)
    return path


def test_stage_writes_scores_and_beats_truth_targets(synth_wh):
    from cemlib.churn.stage import headline_figures, run_stage

    with Warehouse(synth_wh) as wh:
        res = run_stage(wh, AS_OF, run_id="t", horizons=(90, 365), key="person", seed=3)
        mart = wh.read_table("marts", "churn_scores")
        stamp = wh.stamp("marts", "churn_scores")
    assert stamp == ("t", dt.date(2025, 6, 30))
    assert len(mart) == res.transactions["customer_id"].nunique() == len(res.scores)
    assert mart["p_purchase"].between(0, 1).all()
    t = res.truth
    assert t["dropout_concordance"] >= 0.75
    assert t["auc"] >= 0.75
    assert abs(t["total_error"]) < 0.3
    assert set(t["calibration"]) == {90, 365}
    assert t["td_concordance"] > 0.65 and 0.0 < t["integrated_brier"] < 0.25
    h = headline_figures(res)
    assert h["customers scored"] == len(mart)
    assert res.transactions["ts"].max() < pd.Timestamp("2025-07-01")


@pytest.mark.slow
def test_notebook_executes(synth_wh, tmp_path):
    import papermill as pm

    from cemlib.config import project_root

    out = tmp_path / "03.ipynb"
    heads = tmp_path / "h.json"
    pm.execute_notebook(
        str(project_root() / "notebooks" / "03_churn.ipynb"),
        str(out),
        parameters={
            "warehouse": str(synth_wh),
            "run_id": "nb",
            "as_of": AS_OF,
            "horizon_days": 180,
            "horizons": [90],
            "use_truth_profiles": True,
            "headlines_path": str(heads),
        },
        kernel_name="python3",
        progress_bar=False,
    )
    figures = json.loads(heads.read_text())
    assert figures["customers scored"] > 100
    assert figures["truth dropout_concordance"] >= 0.75
    text = out.read_text()
    assert "Hazard ratios" in text and "image/png" in text
