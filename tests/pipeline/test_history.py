"""The history on the reports index: a chart per headline figure, the latest alerts."""

from __future__ import annotations

import json
import re

from cemlib.cli.run import _alert_exit
from cemlib.pipeline.history import figure_series, history_section, sparkline
from cemlib.pipeline.index import render_reports_index
from cemlib.pipeline.result import RunResult, StageStatus


def _run(tmp_path, run_id: str, started: str, auc: float, alerts: list | None) -> RunResult:
    run_dir = tmp_path / run_id
    run_dir.mkdir()
    if alerts is not None:
        (run_dir / "monitor.json").write_text(json.dumps({"alerts": alerts}), encoding="utf-8")
    return RunResult(
        run_id=run_id, as_of="2025-06-30", status="ok", started_at=started, finished_at=started,
        duration=1.0, run_dir=str(run_dir), config={}, config_yaml="", git={}, versions={},
        stages=[StageStatus("05", "05_monitor", "Monitor", "ok",
                            headlines={"graded churn auc": auc, "previous run": "x",
                                       "only once": 1.0 if run_id == "b" else "n/a"})],
    )  # fmt: skip


def test_history_charts_each_figure_recorded_by_two_runs_and_shows_latest_alerts(tmp_path):
    alert = {"message": "web_events: 1,000 rows up to as_of, -50% against 2,000"}
    runs = [  # newest first, as list_runs returns them
        _run(tmp_path, "c", "2026-01-03T00:00:00+00:00", 0.79, [alert]),
        _run(tmp_path, "b", "2026-01-02T00:00:00+00:00", 0.81, []),
        _run(tmp_path, "a", "2026-01-01T00:00:00+00:00", 0.80, None),
    ]
    series = figure_series(runs)
    assert list(series) == [("05_monitor", "graded churn auc")]  # text and one-run figures: no
    assert series[("05_monitor", "graded churn auc")] == [("a", 0.8), ("b", 0.81), ("c", 0.79)]
    page = render_reports_index(runs)
    assert "1 alert(s) in run c" in page and "-50% against 2,000" in page
    assert page.count("<svg") == 1 and 'title="a: 0.8, b: 0.81, c: 0.79"' in page
    svg = sparkline([0.8, 0.81, 0.79])
    ys = [float(y) for y in re.findall(r",([\d.]+)", svg.split('points="')[1].split('"')[0])]
    assert ys[1] < ys[0] < ys[2]  # the highest value is drawn highest
    quiet = history_section(runs[1:])
    assert any("No alerts in run b" in p for p in quiet)


def test_fail_on_alert_exit_code(tmp_path, capsys):
    path = tmp_path / "monitor.json"
    assert _alert_exit(path) == 0  # the monitor did not run
    path.write_text(json.dumps({"alerts": []}), encoding="utf-8")
    assert _alert_exit(path) == 0
    path.write_text(json.dumps({"alerts": [{"message": "order_lines.price: shifted"}]}))
    assert _alert_exit(path) == 3
    assert "alert: order_lines.price: shifted" in capsys.readouterr().out
