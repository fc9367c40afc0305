"""M2 (trial 6): a scheduled run whose as_of lags its exports says so loudly."""

from __future__ import annotations

import json

import pandas as pd

from cemlib.collect import collect
from cemlib.collect.report import headlines
from cemlib.pipeline.index import render_run_index
from cemlib.pipeline.result import RunResult, StageStatus
from cemlib.pipeline.staleness import late_data_warning


def _orders(folder, days: pd.DatetimeIndex) -> None:
    """Three orders a day on ``days`` (online_orders and their lines)."""
    at = [d + pd.Timedelta(hours=h) for d in days for h in (9, 13, 18)]
    ids = [f"O{i}" for i in range(len(at))]
    folder.mkdir()
    pd.DataFrame({"order_id": ids, "ordered_at": [t.strftime("%Y-%m-%d %H:%M") for t in at],
                  "email": [f"c{i % 40}@shop.ru" for i in range(len(at))]}).to_csv(
        folder / "online_orders.csv", index=False)  # fmt: skip
    pd.DataFrame({"line_id": [f"L{i}" for i in range(len(at))], "order_id": ids, "sku": "S1",
                  "quantity": 1, "price": 10}).to_csv(folder / "order_lines.csv", index=False)  # fmt: skip


def _figures(tmp_path, last_day: str, as_of: str = "2025-06-30") -> dict:
    folder = tmp_path / f"exports-{last_day}"
    _orders(folder, pd.date_range("2025-05-01", last_day, freq="D"))
    res = collect(folder, tmp_path / f"{last_day}.duckdb", as_of=as_of, progress=False)
    return headlines(res)


def test_a_week_of_rows_after_as_of_is_a_warning_naming_rows_and_days(tmp_path):
    h = _figures(tmp_path, "2025-07-07")  # night 2's exports, as_of left at night 1
    assert h["rows dated after as_of"] == 7 * 3
    assert h["days with rows after as_of"] == 7
    text = late_data_warning(h, "2025-06-30")
    total = h["rows loaded"]
    assert text.startswith("as_of 2025-06-30 is behind the data: 21 rows")
    assert (
        f"({100 * 21 / total:.2f}% of {total:,}) after it, on 7 of the 31 days that follow it"
        in text
    )


def test_an_export_taken_the_morning_after_as_of_is_not_a_warning(tmp_path):
    h = _figures(tmp_path, "2025-07-01")  # the nightly cron at 02:30: one day after as_of
    assert h["rows dated after as_of"] == 3 and h["days with rows after as_of"] == 1
    assert late_data_warning(h, "2025-06-30") is None
    current = _figures(tmp_path, "2025-06-30")
    assert current["rows dated after as_of"] == 0 and current["days with rows after as_of"] == 0
    assert late_data_warning(current, "2025-06-30") is None


def test_stray_dates_after_as_of_are_not_the_data_going_on():
    """The synthetic world's clock-skewed web events (8,200 rows on 2,782 days, from 19 months
    after as_of) are not a lagging as_of; a week of full days is, a week of one row a day is
    not when a day holds a hundred."""
    from cemlib.collect.stage import days_continuing

    as_of = pd.Timestamp("2025-06-30")
    before = pd.Series(pd.date_range("2025-05-01", as_of, freq="D").repeat(100))
    skewed = pd.Series(pd.date_range("2027-01-30", periods=2782, freq="D"))
    assert days_continuing(pd.concat([before, skewed]), as_of) == 0
    week = pd.Series(pd.date_range("2025-07-01", periods=7, freq="D").repeat(100))
    assert days_continuing(pd.concat([before, week]), as_of) == 7
    trickle = pd.Series(pd.date_range("2025-07-01", periods=7, freq="D"))
    assert days_continuing(pd.concat([before, trickle]), as_of) == 0
    # a small table (one ticket every few days) counts every day that holds one
    sparse = pd.Series(pd.date_range("2025-05-01", as_of, freq="3D"))
    assert days_continuing(pd.concat([sparse, trickle]), as_of) == 7


def test_the_run_page_and_run_json_carry_the_warning(tmp_path):
    warning = late_data_warning(
        {"rows dated after as_of": 1634, "days with rows after as_of": 7, "rows loaded": 387128},
        "2025-06-30",
    )
    assert "1,634 rows (0.42% of 387,128) after it, on 7 of the 31 days that follow it" in warning
    run = RunResult(run_id="r1", as_of="2025-06-30", status="ok", started_at="2026-01-01T00:00:00",
                    finished_at=None, duration=1.0, run_dir=str(tmp_path / "r1"), config={},
                    config_yaml="", git={}, versions={},
                    stages=[StageStatus("00", "00_collect", "Collect", "ok")],
                    warnings=[warning])  # fmt: skip
    page = render_run_index(run)
    assert '<div class="alert"><strong>Warning</strong>: as_of 2025-06-30 is behind' in page
    again = RunResult.from_dict(json.loads(run.to_json()))
    assert again.warnings == [warning]
    old = {k: v for k, v in json.loads(run.to_json()).items() if k != "warnings"}
    assert RunResult.from_dict(old).warnings == []  # run.json of earlier runs still loads


def test_cem_run_says_it_after_collect_and_in_its_summary_line(tmp_path):
    """The wiring: a 00 notebook that collects a week-late folder (real collect, real
    headlines) makes the runner print the warning and keep it in run.json."""
    import io

    from cemlib.pipeline import load_config, run_pipeline
    from tests.pipeline.conftest import write_notebook

    folder = tmp_path / "exports"
    _orders(folder, pd.date_range("2025-05-01", "2025-07-07", freq="D"))
    cells = [
        "from cemlib.collect import collect\nfrom cemlib.collect.report import headlines\n"
        "from cemlib.reports import save_headlines",
        f"res = collect({str(folder)!r}, warehouse, as_of=as_of, progress=False)\n"
        "save_headlines(headlines_path, headlines(res))",
    ]
    nb_dir = tmp_path / "notebooks"
    write_notebook(nb_dir / "00_collect.ipynb", cells)
    cfg = load_config(
        None, ["run_id=late", f"warehouse={tmp_path / 'w.duckdb'}"], notebooks_dir=str(nb_dir),
        out=str(tmp_path / "reports"), stages="00",
    )  # fmt: skip
    out = io.StringIO()
    run = run_pipeline(cfg, progress=False, stream=out)
    lines = out.getvalue().splitlines()
    assert run.exit_code == 0 and run.stages[0].status == "ok"
    assert run.warnings == [late_data_warning(run.stages[0].headlines, "2025-06-30")]
    assert (
        "21 rows" in run.warnings[0]
        and "after it, on 7 of the 31 days that follow it" in run.warnings[0]
    )
    assert lines[-1].startswith("cem run late: ok (1 ok) in ")
    assert lines[-1].endswith(f"; WARNING: {run.warnings[0]}")
    assert any(x.strip() == f"WARNING: {run.warnings[0]}" for x in lines[1:-1])
    saved = RunResult.load(cfg.run_dir / "run.json")
    assert saved.warnings == run.warnings
    assert "behind the data" in (cfg.run_dir / "index.html").read_text(encoding="utf-8")


def test_fail_on_alert_exits_3_on_a_stale_as_of_and_0_on_a_current_one(tmp_path, capsys):
    """`cem run --fail-on-alert`: the scheduler that pages on alerts pages on a stale as_of."""
    from cemlib.cli import main as cem_main
    from tests.pipeline.conftest import write_notebook

    folder = tmp_path / "exports"
    _orders(folder, pd.date_range("2025-05-01", "2025-07-07", freq="D"))
    cells = [
        "from cemlib.collect import collect\nfrom cemlib.collect.report import headlines\n"
        "from cemlib.reports import save_headlines",
        f"res = collect({str(folder)!r}, warehouse, as_of=as_of, progress=False)\n"
        "save_headlines(headlines_path, headlines(res))",
    ]
    nb_dir = tmp_path / "notebooks"
    write_notebook(nb_dir / "00_collect.ipynb", cells)
    base = ["run", "--notebooks", str(nb_dir), "--out", str(tmp_path / "reports"), "--stages",
            "00", "--fail-on-alert", "-p", f"warehouse={tmp_path / 'w.duckdb'}"]  # fmt: skip
    assert cem_main([*base, "-p", "run_id=stale"]) == 3
    out = capsys.readouterr().out
    assert (
        "1 warning(s): exit 3 (--fail-on-alert)" in out
        and "after it, on 7 of the 31 days that follow it" in out
    )
    assert cem_main([*base, "-p", "run_id=current", "-p", "as_of=2025-07-07"]) == 0
    out = capsys.readouterr().out
    assert "WARNING" not in out and "exit 3" not in out
