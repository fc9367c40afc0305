"""Reviewers read the reports in a browser: open them in headless Chromium and check them."""

from __future__ import annotations

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
