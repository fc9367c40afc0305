"""Reviewers read the reports in a browser: open them in headless Chromium and check them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cemlib.cli import main
from tests.pipeline.browser import chromium_path

CHROMIUM = chromium_path()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no Chromium found (apt-get install chromium, or set $CHROMIUM); "
        ".ci/run installs it",
    ),
]
playwright = pytest.importorskip("playwright", reason="playwright not installed (dev extra)")


def _pages(reports):
    pages = [reports / "index.html", reports / "latest" / "index.html"]
    for run_dir in sorted(p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()):
        pages += sorted(run_dir.glob("*.html"))
    return pages


def _problems(report):
    return {
        page: found["errors"] + found["broken"]
        for page, found in report.items()
        if found["errors"] or found["broken"]
    }


def test_reports_open_clean_in_chromium(stage_notebooks, tmp_path):
    from tests.pipeline.browser import check_pages

    reports = tmp_path / "reports"
    for run_id in ("b1", "b2"):  # two runs: the all-runs page links both, latest -> b2
        code = main(
            ["run", "--notebooks", str(stage_notebooks), "--out", str(reports),
             "-p", f"run_id={run_id}", "-p", "n_people=50", "--no-progress"]
        )  # fmt: skip
        assert code == 1  # 01_quality fails on purpose: its error page is checked too
    pages = _pages(reports)
    assert len(pages) == 2 + 2 * 5  # index + latest + per run: index, 2 stages x 2 renderings

    report = check_pages(pages, CHROMIUM)
    assert _problems(report) == {}
    by_name = {p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1]: f for p, f in report.items()}
    for run_id in ("b1", "b2"):
        for name in ("00_collect.html", "00_collect.code.html"):
            images = by_name[f"{run_id}/{name}"]["images"]
            assert len(images) == 2, name  # both plots of the throw-away collect notebook
            assert all(i["complete"] and i["width"] > 200 and i["height"] > 100 for i in images)


def test_checker_catches_broken_pages(tmp_path):
    """The checker itself: a script error, a missing file, a dead anchor, an empty image."""
    from tests.pipeline.browser import check_pages

    page = tmp_path / "bad.html"
    page.write_text(
        "<html><body><a href='missing.html'>x</a><a href='#nowhere'>y</a>"
        "<img src='empty.png'><script>undefinedFunction()</script>"
        "<script src='https://cdn.example.org/lib.js'></script></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "empty.png").write_bytes(b"")
    found = check_pages([page], CHROMIUM)[str(page)]
    text = " | ".join(found["errors"] + found["broken"])
    assert "undefinedFunction is not defined" in text
    assert "'missing.html'> missing" in text
    assert "anchor #nowhere not on the page" in text
    assert "external request: https://cdn.example.org/lib.js" in text
    assert found["images"][0]["width"] == 0


@pytest.mark.timeout(900)
def test_full_run_reports_open_clean_in_chromium(full_run):
    """The real stage notebooks' reports: no script errors, no broken links, plots drawn."""
    from tests.pipeline.browser import check_pages

    run, cfg = full_run
    pages = [cfg.reports_path / "index.html", cfg.run_dir / "index.html"]
    pages += [cfg.run_dir / name for s in run.stages for name in (s.html, s.html_code) if name]
    report = check_pages(pages, CHROMIUM)
    assert _problems(report) == {}
    for stage in run.stages:
        if stage.status == "ok" and stage.html:
            images = report[str(cfg.run_dir / stage.html)]["images"]
            assert images, f"{stage.name}: no plot in the report"
            empty = [i["src"] for i in images if not (i["complete"] and i["width"] > 0)]
            assert not empty, f"{stage.name}: empty images {empty}"


ARTIFACTS = Path(
    os.environ.get(
        "CEM_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    )
)


def _reviewer_pages(run, cfg):
    return [cfg.run_dir / "index.html"] + [cfg.run_dir / s.html for s in run.stages if s.html]


@pytest.mark.timeout(900)
def test_full_run_reports_read_in_a_minute(full_run):
    """Each reviewer page of a real run, at 1400x900: no horizontal overflow, no stderr, no
    ``nan``/``e+NN``/``.000000``, no table of more than 20 visible rows, no external script or
    stylesheet, at most 8 screens; each executed notebook free of warnings, raw dicts and server
    paths. Full-page screenshots go to build/test-artifacts/reports/ (gitignored)."""
    from cemlib.pipeline.render import report_problems
    from tests.pipeline.browser import read_pages, reader_problems

    run, cfg = full_run
    assert {s.status for s in run.stages} == {"ok"}, [(s.name, s.error_summary) for s in run.stages]
    pages = _reviewer_pages(run, cfg)
    found = read_pages(pages, CHROMIUM, ARTIFACTS / "reports")
    problems = {p.name: reader_problems(f) for p, f in zip(pages, found.values(), strict=True)}
    for stage in run.stages:
        problems[stage.notebook] = report_problems(cfg.run_dir / stage.notebook)
    assert {k: v for k, v in problems.items() if v} == {}
    assert all((ARTIFACTS / "reports" / f"{p.parent.name}__{p.stem}.png").is_file() for p in pages)
    for stage in run.stages:  # every stage leads with its verdict, and the index shows it
        assert (cfg.run_dir / f"{stage.name}.verdict.json").is_file(), stage.name
        assert 'class="cem-verdict"' in (cfg.run_dir / stage.html).read_text(encoding="utf-8")
    assert (cfg.run_dir / "index.html").read_text(encoding="utf-8").count(
        'class="cem-verdict"'
    ) == len(run.stages)


def test_reader_check_fails_on_each_defect(tmp_path):
    """The reader check itself: each defect of the issue on a page of its own is reported."""
    from tests.pipeline.browser import read_pages, reader_problems

    rows = "".join(f"<tr><td>{i}</td></tr>" for i in range(25))
    collapsed = f"<details><summary>more</summary><table>{rows}</table></details>"
    cases = {
        "overflow": "<div style='width:2000px'>wide</div>",
        "cut": "<div style='overflow-x:auto;width:300px'><table><tr>"
        + "<td>x</td>" * 80
        + "</tr></table></div>",
        "stderr": "<div data-mime-type='application/vnd.jupyter.stderr'>UserWarning</div>",
        "nan": "<p>share nan</p>",
        "sci": "<p>6.762996e+07</p>",
        "decimals": "<p>26783.000000</p>",
        "rows": f"<table>{rows}</table>",
        "script": "<script src='https://cdn.example.org/x.js'></script>",
        "css": "<link rel='stylesheet' href='https://cdn.example.org/x.css'>",
        "long": "<div style='height:8000px'>long</div>",
        "clean": f"<p>1,234 rows; 12.5%</p>{collapsed}<div style='height:7000px'></div>",
    }
    pages = []
    for name, body in cases.items():
        page = tmp_path / f"{name}.html"
        page.write_text(f"<html><body style='margin:0'>{body}</body></html>", encoding="utf-8")
        pages.append(page)
    found = read_pages(pages, CHROMIUM, tmp_path / "shots")
    problems = {Path(p).stem: reader_problems(f) for p, f in found.items()}
    assert problems["clean"] == []
    expected = {
        "overflow": "horizontal overflow", "cut": "horizontal overflow", "stderr": "stderr",
        "nan": "'share nan'", "sci": "e+07", "decimals": ".000000", "rows": "table of 25 rows",
        "script": "external script", "css": "external script or stylesheet", "long": "screens long",
    }  # fmt: skip
    for name, words in expected.items():
        assert any(words in p for p in problems[name]), (name, problems[name])
    assert (tmp_path / "shots" / f"{tmp_path.name}__long.png").is_file()
