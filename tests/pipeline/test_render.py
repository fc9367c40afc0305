"""HTML rendering: with and without code, plots embedded, nothing loaded from the network."""

from __future__ import annotations

import base64
import re

import nbformat
import pytest

from cemlib.pipeline import load_config, run_pipeline
from tests.pipeline.conftest import OK_CELLS, PLOT_CELLS, write_notebook

pytestmark = pytest.mark.slow

_PNG = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"')


def test_reports_offline_with_embedded_plot(tmp_path):
    nb_dir = tmp_path / "nb"
    write_notebook(nb_dir / "00_collect.ipynb", OK_CELLS + PLOT_CELLS)
    cfg = load_config(
        None, ["run_id=plot"], notebooks_dir=str(nb_dir), out=str(tmp_path / "r"), stages="00"
    )
    assert run_pipeline(cfg, progress=False).exit_code == 0
    review = (tmp_path / "r/plot/00_collect.html").read_text(encoding="utf-8")
    code = (tmp_path / "r/plot/00_collect.code.html").read_text(encoding="utf-8")

    for page in (review, code):
        # the plot is an embedded PNG of real size
        images = _PNG.findall(page)
        assert len(images) == 2  # plt.show() and cemlib.reports.show(fig)
        for data in images:
            png = base64.b64decode(data)
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
            width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
            assert width > 200 and height > 150
        assert 'alt="Rows by day"' in page
        # no CDN scripts (require.js, MathJax, mermaid) and no external resources at all
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', page)
        assert "cdnjs" not in page and "unpkg" not in page
        assert "Collection" in page
        assert (
            '<a href="index.html">cemlib run plot</a> · as of 2025-06-30 · stage 00_collect' in page
        )

    # reviewers get outputs, not code; data scientists get both
    assert "set_title" not in review and "set_title" in code
    assert "run plot as of 2025-06-30: 60000 rows" in review


def test_report_problems_names_what_no_reviewer_may_meet():
    from cemlib.pipeline.render import report_problems

    nb = nbformat.v4.new_notebook()
    cells = [
        ("import warnings", [nbformat.v4.new_output("stream", name="stderr",
                                                     text="/srv/app/x.py:3: UserWarning: tight\n")]),
        ("h", [nbformat.v4.new_output("execute_result", data={"text/plain": "{'records': 41697}"})]),
        ("t", [nbformat.v4.new_output("display_data", data={
            "text/html": "<td>26783.000000</td><td>nan</td>", "text/plain": "<table>"})]),
        ("p", [nbformat.v4.new_output("stream", name="stdout", text="saved to /home/ann/cem/x\n")]),
        ("ok", [nbformat.v4.new_output("display_data", data={
            "text/html": "<td>26,783</td><td>—</td>", "text/plain": "x"})]),
    ]  # fmt: skip
    for src, outputs in cells:
        cell = nbformat.v4.new_code_cell(src)
        cell.outputs = outputs
        nb.cells.append(cell)
    problems = report_problems(nb)
    assert problems[0].startswith("code cell 1 (stream stderr): stderr '/srv/app/x.py:3")
    assert "code cell 2 (text/plain): raw value printed \"{'records': 41697}\"" in problems
    assert "code cell 3 (text/html): text '.000000'" in problems
    assert "code cell 4 (stream stdout): server path '/home/ann/cem/x'" in problems
    assert not [p for p in problems if p.startswith("code cell 5")]


def test_widget_outputs_leave_no_text_in_the_report(tmp_path):
    """DuckDB draws a progress widget on long queries; offline it would read
    ``FloatProgress(value=0.0, ...)`` in the middle of the report."""
    from cemlib.pipeline.render import render_html

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("wh.sql(...)")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2},
                "text/plain": "FloatProgress(value=0.0, layout=Layout(width='auto'))",
            },
        )
    ]
    nb.cells.append(cell)
    page = render_html(nb, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "FloatProgress" not in page
