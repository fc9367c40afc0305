"""The run index and the list of all runs: content, order, the ``latest`` pointer."""

from __future__ import annotations

import re
from pathlib import Path

from cemlib.pipeline.index import (
    format_value,
    list_runs,
    prune_runs,
    render_run_index,
    write_reports_index,
    write_run_index,
)
from cemlib.pipeline.result import RunResult, StageStatus


def _run(run_id: str, started: str, status: str = "ok", **headlines) -> RunResult:
    return RunResult(
        run_id=run_id,
        as_of="2025-06-30",
        status=status,
        started_at=started,
        finished_at=started,
        duration=75.0,
        run_dir=f"/x/{run_id}",
        config={"source": "synthetic", "n_people": 400, "seed": 42},
        config_yaml="as_of: '2025-06-30'\nseed: 42\n",
        git={"commit": "0123456789abcdef0123", "branch": "main", "dirty": True},
        versions={"python": "3.11.2", "papermill": "2.7.0"},
        stages=[
            StageStatus(
                "00", "00_collect", "Collection", "ok", duration=12.5,
                notebook="00_collect.ipynb", html="00_collect.html",
                html_code="00_collect.code.html", headlines=headlines,
                parameters={"run_id": run_id, "headlines_path": "/secret/path.json"},
            ),
            StageStatus("01", "01_quality", "Quality", status,
                        error={"kind": "exception", "code_cell": 3, "execution_count": 4,
                               "ename": "KeyError", "evalue": "'phone'",
                               "source_line": "df['phone']"} if status == "failed" else None),
        ],
    )  # fmt: skip


def _store(reports: Path, run: RunResult) -> None:
    (reports / run.run_id).mkdir(parents=True)
    (reports / run.run_id / "run.json").write_text(run.to_json(), encoding="utf-8")
    write_run_index(run, reports / run.run_id / "index.html")


def test_run_index_shows_figures_status_commit_and_failure():
    run = _run(
        "r1", "2026-11-23T05:30:00+00:00", "failed", **{"rows in": 20345, "precision": 0.98765}
    )
    page = render_run_index(run)
    assert "<title>cemlib run r1</title>" in page
    assert '<td>rows in</td><td class="num">20,345</td>' in page
    assert '<td>precision</td><td class="num">0.988</td>' in page
    assert "<code>0123456789ab</code> on main" in page and "uncommitted changes" in page
    assert (
        "Stage 01_quality failed</strong> at code cell 3 (In [4]): KeyError: &#x27;phone&#x27;"
        in page
    )
    assert "<code>df[&#x27;phone&#x27;]</code>" in page  # escaped, not raw HTML
    assert (
        '<a href="00_collect.html">report</a><a href="00_collect.code.html">with code</a>' in page
    )
    assert "/secret/path.json" not in page  # the runner's own plumbing is not shown
    assert "1 min 15 s" in page
    # self-contained: no scripts, no external resources
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_format_value():
    assert [format_value(v) for v in (1234567, 0.123456, 2.5, 12345.6, 3.0, None, True, "x")] == [
        "1,234,567", "0.123", "2.50", "12,346", "3", "n/a", "yes", "x"
    ]  # fmt: skip


def test_reports_index_newest_first_and_latest_symlink(tmp_path):
    reports = tmp_path / "reports"
    for run in (
        _run("20261121-010000", "2026-11-21T01:00:00+00:00"),
        _run("20261123-010000", "2026-11-23T01:00:00+00:00", "failed"),
        _run("20261122-010000", "2026-11-22T01:00:00+00:00"),
    ):
        _store(reports, run)
    (reports / "stray").mkdir()
    (reports / "stray" / "run.json").write_text("{not json", encoding="utf-8")

    write_reports_index(reports)
    assert [r.run_id for r in list_runs(reports)] == [
        "20261123-010000",
        "20261122-010000",
        "20261121-010000",
    ]
    page = (reports / "index.html").read_text(encoding="utf-8")
    ids = re.findall(r'<a href="(\d{8}-\d{6})/index.html">', page)
    assert ids == ["20261123-010000", "20261122-010000", "20261121-010000"]
    assert "3 run(s), newest first" in page
    latest = reports / "latest"
    assert latest.is_symlink() and latest.resolve() == (reports / "20261123-010000").resolve()
    assert (latest / "index.html").is_file()

    # a newer run moves the pointer; the symlink itself is not listed as a run
    _store(reports, _run("20261124-010000", "2026-11-24T01:00:00+00:00"))
    write_reports_index(reports)
    assert latest.resolve().name == "20261124-010000"
    assert len(list_runs(reports)) == 4


def test_latest_fallback_without_symlinks(tmp_path):
    reports = tmp_path / "reports"
    _store(reports, _run("a", "2026-11-21T01:00:00+00:00"))
    _store(reports, _run("b", "2026-11-22T01:00:00+00:00"))
    write_reports_index(reports, use_symlink=False)
    latest = reports / "latest"
    assert latest.is_dir() and not latest.is_symlink()
    assert (latest / "RUN_ID").read_text().strip() == "b"
    forward = (latest / "index.html").read_text(encoding="utf-8")
    assert '<meta http-equiv="refresh" content="0; url=../b/index.html">' in forward
    # back on a file system with symlinks: the folder is replaced by the link
    write_reports_index(reports)
    assert latest.is_symlink() and latest.resolve().name == "b"


def test_cli_reindex_after_deleting_a_run(tmp_path, capsys):
    import shutil

    from cemlib.cli import main

    reports = tmp_path / "reports"
    _store(reports, _run("old", "2026-11-21T01:00:00+00:00"))
    _store(reports, _run("new", "2026-11-22T01:00:00+00:00"))
    write_reports_index(reports)
    shutil.rmtree(reports / "new")  # a reviewer prunes a run by hand
    assert main(["run", "--out", str(reports), "--reindex"]) == 0
    assert "1 run(s) listed" in capsys.readouterr().out
    assert (reports / "latest").resolve().name == "old"
    assert "new/index.html" not in (reports / "index.html").read_text(encoding="utf-8")


def test_run_index_leads_with_verdicts_and_what_changed(tmp_path):
    import json

    from cemlib.reports import make_verdict

    reports = tmp_path / "reports"
    old = _run("r1", "2026-11-23T05:30:00+00:00", **{"rows in": 20000, "share valid": 0.5})
    new = _run("r2", "2026-11-24T05:30:00+00:00", **{"rows in": 21000, "share valid": 0.5})
    for run in (old, new):
        run.run_dir = str(reports / run.run_id)
        _store(reports, run)
    v = make_verdict("warning", "20,000 rows collected", {"rows": 20000, "share": "50.0%"},
                     "as before", ["one caveat <b>escaped</b>"])  # fmt: skip
    (reports / "r2" / "00_collect.verdict.json").write_text(
        json.dumps(v.__dict__), encoding="utf-8"
    )
    page = render_run_index(new)
    assert page.index("Verdict per stage") < page.index("<h2>Stages</h2>")
    assert "20,000 rows collected" in page and "<b>20,000</b><span>rows</span>" in page
    assert "one caveat &lt;b&gt;escaped&lt;/b&gt;" in page
    assert "This stage wrote no verdict" not in page.split("01_quality")[0]
    changed = page[page.index("What changed") :]
    assert re.search(
        r"rows in</td><td class=\"num\">20,000</td><td class=\"num\">21,000</td>", changed
    )
    assert "share valid" not in changed.split("</table>")[0]  # unchanged figures are left out
    assert '<a class="secondary" href="00_collect.ipynb">notebook (.ipynb)</a>' in page
    assert str(tmp_path) not in page  # no server path


def test_prune_keeps_the_newest_runs_a_running_one_and_the_latest_finished(tmp_path):
    reports = tmp_path / "reports"
    statuses = ["interrupted", "running", "ok", "failed", "ok", "ok"]  # newest first
    for n, status in enumerate(statuses):
        _store(reports, _run(f"r{6 - n}", f"2026-11-2{8 - n}T05:30:00+00:00", status))
    (reports / "notes").mkdir()  # not a run folder: never touched
    (reports / "notes" / "read.me").write_text("x", encoding="utf-8")

    removed = prune_runs(reports, keep=1)

    # r6 (newest, interrupted) kept by count, r5 still running, r4 the newest finished run
    assert removed == ["r3", "r2", "r1"]
    assert sorted(r.run_id for r in list_runs(reports)) == ["r4", "r5", "r6"]
    assert (reports / "notes" / "read.me").is_file()
    write_reports_index(reports)
    assert (reports / "latest").resolve() == (reports / "r4").resolve()
    assert prune_runs(reports, keep=3) == []


def test_parameters_that_do_not_apply_are_left_out_of_the_index():
    run = _run("r1", "2026-11-23T05:30:00+00:00")
    run.config = {"source": "/data/exports", "engine": "duckdb"}
    run.stages[0].parameters.update(n_people=20000, lake="/x/lake", spark_master="local[*]")
    page = render_run_index(run)
    assert "<code>n_people</code> (the size of the synthetic world; the source is a folder)" in page
    assert "<code>spark_master</code> and <code>lake</code> (settings of the Spark engine)" in page
    assert "<td><code>lake</code></td>" not in page and "<td><code>n_people</code></td>" not in page
    run.config = {"source": "synthetic", "engine": "spark"}
    page = render_run_index(run)
    assert "<td><code>n_people</code></td><td><code>20000</code></td>" in page
    assert "do not apply" not in page


def test_a_run_with_monitor_alerts_says_so_at_the_top(tmp_path):
    import json

    run = _run("r1", "2026-11-23T05:30:00+00:00")
    run.run_dir = str(tmp_path)
    assert "monitor alert" not in render_run_index(run)
    alerts = [{"message": "pos_receipts.amount shifted: PSI 8.72 (alert above 0.25)"},
              {"message": "pos_receipts.phone empty in 100% of rows"}]  # fmt: skip
    (tmp_path / "monitor.json").write_text(json.dumps({"alerts": alerts}), encoding="utf-8")
    page = render_run_index(run)
    assert '<span class="badge b-failed">2 alerts</span>' in page
    assert "<strong>2 monitor alert(s)</strong>" in page
    assert "<li>pos_receipts.amount shifted: PSI 8.72 (alert above 0.25)</li>" in page
    assert page.index("The monitor raised 2 alert(s)") < page.index("Headline figures")
