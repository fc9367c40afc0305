"""``reports/latest`` points at the newest run that finished, never at an interrupted one."""

from __future__ import annotations

from cemlib.pipeline.index import write_reports_index
from cemlib.pipeline.result import RunResult


def _store(reports, run_id: str, started: str, status: str) -> None:
    run = RunResult(
        run_id=run_id,
        as_of="2025-06-30",
        status=status,
        started_at=started,
        finished_at=started,
        duration=1.0,
        run_dir=str(reports / run_id),
        config={},
        config_yaml="",
        git={},
        versions={},
        stages=[],
    )
    (reports / run_id).mkdir(parents=True)
    (reports / run_id / "run.json").write_text(run.to_json(), encoding="utf-8")
    (reports / run_id / "index.html").write_text(run_id, encoding="utf-8")


def test_latest_skips_an_interrupted_run(tmp_path):
    reports = tmp_path / "reports"
    _store(reports, "a", "2026-11-21T01:00:00+00:00", "ok")
    _store(reports, "b", "2026-11-22T01:00:00+00:00", "interrupted")
    write_reports_index(reports)
    assert (reports / "latest").resolve().name == "a"
    page = (reports / "index.html").read_text(encoding="utf-8")
    assert 'href="a/index.html">a</a> <span class="muted">(latest)</span>' in page
    assert 'href="b/index.html">b</a></td>' in page
