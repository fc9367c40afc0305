"""Data drift between runs: the PSI itself, and the alerts a monthly run raises on files with
one injected drift (a table halved, a column shifted) and none on the same files unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cemlib.collect import collect
from cemlib.monitor import Thresholds, psi, psi_band, run_stage
from cemlib.quality import QualityStage
from cemlib.warehouse import Warehouse


def test_psi_of_identical_shares_is_zero_and_grows_with_the_shift():
    e = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(e, e) == 0.0
    a = np.array([0.1, 0.2, 0.3, 0.4])
    expected = float(np.sum((a - e) * np.log(a / e)))
    assert psi(e, a) == pytest.approx(expected)
    assert psi(e, np.array([0.0, 0.0, 0.5, 0.5])) > psi(e, a) > 0.1
    assert [psi_band(x) for x in (0.05, 0.1, 0.2, 0.25, 0.3)] == [
        "stable", "moderate", "moderate", "moderate", "significant"
    ]  # fmt: skip


def _month(folder, warehouse, as_of: str, run_id: str):
    """Collection, quality and the monitor of one monthly run on ``folder``."""
    with Warehouse(warehouse) as wh:
        collect(source=folder, warehouse=wh, run_id=run_id, as_of=as_of, progress=False)
        QualityStage(progress=False).run(wh, run_id=run_id, as_of=as_of)
        return run_stage(wh, as_of, run_id=run_id, thresholds=Thresholds())


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """One world written twice: as generated, and with web_events halved and the order line
    prices doubled (a unit or currency change); a first month (April) run on the clean files."""
    from cemlib.synth import generate

    base = tmp_path_factory.mktemp("drift")
    world = generate(n_people=400, seed=7, as_of="2025-06-30")
    world.write(base / "clean")
    world.sources["web_events"] = world.sources["web_events"].iloc[::2]
    lines = world.sources["order_lines"]
    world.sources["order_lines"] = lines.assign(price=lines["price"] * 2.0)
    world.write(base / "drifted")
    first = _month(base / "clean", base / "april.duckdb", "2025-04-30", "april")
    return base, first


@pytest.mark.slow
def test_monthly_run_on_unchanged_files_raises_no_alert(months):
    base, first = months
    assert first.previous_run_id is None and len(first.alerts) == 0
    shutil.copyfile(base / "april.duckdb", base / "may.duckdb")
    res = _month(base / "clean", base / "may.duckdb", "2025-05-31", "may")
    assert (res.previous_run_id, res.previous_as_of) == ("april", "2025-04-30")
    tables = res.data["tables"].set_index("table_name")
    # a month more of history, the same files: a few per cent more rows, no shift
    grown = tables["rows_until_as_of"] / tables["rows_until_as_of_prev"] - 1
    assert grown["online_orders"] > 0 and grown.max() < 0.1
    assert res.data["drift"]["psi"].max() < 0.1
    assert len(res.alerts) == 0, res.alerts["message"].tolist()


@pytest.mark.slow
def test_monthly_run_on_drifted_files_raises_the_matching_alerts(months):
    base, _ = months
    shutil.copyfile(base / "april.duckdb", base / "may_drifted.duckdb")
    res = _month(base / "drifted", base / "may_drifted.duckdb", "2025-05-31", "may")
    found = set(zip(res.alerts["subject"], res.alerts["figure"], strict=True))
    assert found == {("web_events", "rows change"), ("order_lines.price", "psi")}
    rows = res.alerts.set_index("figure").loc["rows change", "value"]
    assert rows == pytest.approx(-0.5, abs=0.03)
    drift = res.data["drift"].set_index(["table_name", "column_name"])
    assert drift.loc[("order_lines", "price"), "band"] == "significant"
    assert drift.loc[("order_lines", "quantity"), "psi"] < 0.1  # only the shifted column moved
    with Warehouse(base / "may_drifted.duckdb", read_only=True) as wh:
        stored = wh.read_table("monitor", "alerts")
    pd.testing.assert_frame_equal(stored, res.alerts, check_dtype=False)
    # the forecast grade of a month whose data raised alerts is said to be possibly biased
    from cemlib.monitor import report

    assert len(report.data_alerts(res)) == 2
    assert ("may be biased" in report.summary_markdown(res)) == bool(res.churn)


@pytest.mark.slow
def test_an_export_that_did_not_arrive_raises_a_rows_alert(months):
    # the till's two files are missing from May's export: 0 rows now, not a table left out
    base, _ = months
    missing = base / "missing"
    shutil.copytree(base / "clean", missing)
    for name in ("pos_receipts", "receipt_lines"):
        for path in missing.glob(f"{name}.*"):
            path.unlink()
    shutil.copyfile(base / "april.duckdb", base / "may_missing.duckdb")
    res = _month(missing, base / "may_missing.duckdb", "2025-05-31", "may")
    rows = res.alerts[res.alerts["figure"] == "rows change"].set_index("subject")
    assert sorted(rows.index) == ["pos_receipts", "receipt_lines"]
    assert (rows["value"] == -1.0).all()
    assert rows["message"].str.contains("not in this run's source").all()
    tables = res.data["tables"].set_index("table_name")
    assert tables.loc["pos_receipts", "rows_until_as_of_prev"] > 0


@pytest.mark.slow
def test_notebook_lists_the_alerts_first_and_writes_monitor_json(months, tmp_path):
    import json

    import nbformat
    import papermill as pm

    base, _ = months
    shutil.copyfile(base / "april.duckdb", tmp_path / "cem.duckdb")
    with Warehouse(tmp_path / "cem.duckdb") as wh:
        collect(source=base / "drifted", warehouse=wh, run_id="may", as_of="2025-05-31",
                progress=False)  # fmt: skip
        QualityStage(progress=False).run(wh, run_id="may", as_of="2025-05-31")
    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "05_monitor.ipynb"
    pm.execute_notebook(
        str(notebook), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
        parameters={"warehouse": str(tmp_path / "cem.duckdb"), "run_id": "may",
                    "as_of": "2025-05-31", "headlines_path": str(tmp_path / "h.json"),
                    "alert_psi": 0.2},
        cwd=str(notebook.parent),
    )  # fmt: skip
    doc = json.loads((tmp_path / "monitor.json").read_text(encoding="utf-8"))
    assert (doc["previous_run_id"], doc["previous_as_of"]) == ("april", "2025-04-30")
    assert doc["thresholds"]["psi"] == 0.2
    assert {(a["subject"], a["figure"]) for a in doc["alerts"]} == {
        ("web_events", "rows change"), ("order_lines.price", "psi")
    }  # fmt: skip
    heads = json.loads((tmp_path / "h.json").read_text(encoding="utf-8"))
    assert heads["alerts"] == 2 and heads["previous run"] == "april"
    nb = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    shown = [o["data"].get("text/markdown", "") for c in nb.cells if c.cell_type == "code"
             for o in c.get("outputs", []) if o.get("output_type") == "display_data"]  # fmt: skip
    first_alert = next(i for i, t in enumerate(shown) if "web_events:" in t)
    assert first_alert <= 2  # right after the verdict and the summary
    verdict = [o["data"].get("text/html", "") for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []) if o.get("output_type") == "display_data"][0]  # fmt: skip
    # the page opens with the verdict, which names the alerts
    assert "cem-verdict" in verdict and "2 alert(s)" in verdict and "web_events" in verdict


def test_a_grade_made_while_the_data_raised_alerts_is_flagged():
    from cemlib.monitor import report
    from cemlib.monitor.alerts import alert_frame
    from cemlib.monitor.result import MonitorResult

    churn = {"auc": 0.737, "customers graded": 5000, "elapsed days": 31,
             "realized purchases": 790.0, "expected purchases": 1000.0}  # fmt: skip
    clean = MonitorResult("m3", "2025-05-31", previous_run_id="m2", previous_as_of="2025-04-30",
                          churn=churn)  # fmt: skip
    assert "may be biased" not in report.summary_markdown(clean)
    alerts = alert_frame([{"section": "data", "subject": "pos_receipts.phone",
                           "figure": "null share", "value": 1.0, "threshold": 0.2,
                           "message": "pos_receipts.phone empty in 100% of rows"}])  # fmt: skip
    flagged = MonitorResult("m3", "2025-05-31", previous_run_id="m2",
                            previous_as_of="2025-04-30", churn=churn, alerts=alerts)  # fmt: skip
    assert "**This grade may be biased**: the data raised 1 alert(s)" in report.summary_markdown(
        flagged
    )
    assert report.verdict_of(flagged)["caveats"][0].startswith("the forecast grade may be biased")
