"""HTML reports of an executed notebook, readable offline.

Two renderings per notebook: one for reviewers without code cells (nbconvert's
``exclude_input``), one with code for data scientists. nbconvert's stock ``lab`` template
loads require.js, MathJax and mermaid from a CDN; reviewers may read the reports offline and
the stage notebooks need none of them, so the template used here drops those scripts, and
widget outputs (DuckDB's progress bar on a long query) whose only offline form would be
``FloatProgress(value=0.0, ...)``. Styles
are inlined and plots are always embedded as base64 PNG (with the alt text that
``cemlib.reports.show`` records), so each HTML file stands alone.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from pathlib import Path

import nbformat
from jinja2 import DictLoader

from cemlib.reports.vocabulary import reword_html, reword_notebook

_TEMPLATE_NAME = "cem_offline.html.j2"
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block data_javascript -%}
<pre class="cem-omitted">[JavaScript output omitted from the offline report]</pre>
{%- endblock data_javascript -%}
{%- block data_widget_view -%}{%- endblock data_widget_view -%}
{%- block data_png scoped -%}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
{%- set alt = output | get_metadata('alt', 'image/png') -%}
{%- if alt %} alt="{{ alt | escape_html }}"{% endif -%}
{%- set width = output | get_metadata('width', 'image/png') -%}
{%- if width is not none %} width="{{ width | escape_html }}"{% endif -%}
{%- set height = output | get_metadata('height', 'image/png') -%}
{%- if height is not none %} height="{{ height | escape_html }}"{% endif -%}
>
</div>
{%- endblock data_png -%}
{%- block extra_css -%}
<style type="text/css">
  body.jp-Notebook { max-width: 1180px; margin: 0 auto; padding: 1.5em 2em; }
  .jp-RenderedImage img { max-width: 100%; height: auto; }
  .cem-omitted { color: #777; font-style: italic; }
  .cem-header { color: #59636e; font-size: 0.92em; border-bottom: 1px solid #d0d7de;
                padding-bottom: 0.4em; }
  .cem-failure { border-left: 4px solid #cf222e; background: #fff5f5; padding: 0.6em 1em;
                 margin: 0.5em 0 1em; font-size: 1.05em; }
</style>
{%- endblock extra_css -%}
"""


def _exporter(with_code: bool):
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        embed_images=True,
        exclude_input=not with_code,
        exclude_input_prompt=not with_code,
        exclude_output_prompt=not with_code,
    )
    exporter.template_file = _TEMPLATE_NAME
    exporter.log.setLevel(logging.ERROR)  # "alternative text is missing" on every plot
    return exporter


_WIDGET = "application/vnd.jupyter.widget-view+json"


def _without_widgets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without widget outputs: offline, with no widget state saved, nbconvert falls back
    to their text form (``FloatProgress(value=0.0, ...)``, DuckDB's progress bar)."""
    for cell in nb.cells:
        if cell.get("outputs"):
            cell.outputs = [o for o in cell.outputs if _WIDGET not in (o.get("data") or {})]
    nb.metadata.pop("widgets", None)  # their saved state, of no use without them
    return nb


def render_html(
    notebook: str | Path | nbformat.NotebookNode,
    output: str | Path,
    *,
    with_code: bool = False,
    title: str | None = None,
    banner: str | None = None,
    header: str | None = None,
    vocabulary: dict[str, str] | None = None,
) -> Path:
    """Write ``notebook`` (a path or a node) as a self-contained HTML page to ``output``.

    ``header`` (HTML) is a navigation line above everything (e.g. back to the run index);
    ``banner`` (HTML) a red box under it, e.g. to say that the stage failed. ``vocabulary``
    rewords the notebook's prose and outputs (:mod:`cemlib.reports.vocabulary`).
    """
    nb = (
        nbformat.read(str(notebook), as_version=4) if isinstance(notebook, str | Path) else notebook
    )
    extra = [
        f'<div class="{cls}">{reword_html(content, vocabulary)}</div>'
        for cls, content in (("cem-header", header), ("cem-failure", banner))
        if content
    ]
    nb = _without_widgets(copy.deepcopy(nb))
    if vocabulary:
        nb = reword_notebook(nb, vocabulary)
    if extra:
        nb.cells[0:0] = [nbformat.v4.new_markdown_cell(text) for text in extra]
    out = Path(output)
    resources = {"metadata": {"name": title or out.stem}}
    body, _ = _exporter(with_code).from_notebook_node(nb, resources=resources)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(out)
    return out


#: what no reviewer page may show: scientific notation, "nan", pandas' six decimals
BAD_TEXT = re.compile(r"e\+\d\d|\bnan\b|\.000000")
#: a path of the machine that ran the report (a server's layout, a user's home)
SERVER_PATH = re.compile(r"(?<![\w.])/(?:home|root|tmp|work|usr|opt|var|srv|Users)/[\w.\-/]+")
_RAW_REPR = re.compile(r"^\s*[\[{(]['\"\w]")


def _output_texts(output) -> list[tuple[str, str]]:
    """(what, text) of one output: stream text, plain text, HTML."""
    if output.get("output_type") == "stream":
        return [(f"stream {output.get('name')}", output.get("text", ""))]
    data = output.get("data") or {}
    return [
        (mime, data[mime]) for mime in ("text/plain", "text/html", "text/markdown") if mime in data
    ]


def report_problems(notebook: str | Path | nbformat.NotebookNode) -> list[str]:
    """What a reviewer must not meet in an executed notebook's outputs, one line each: stderr
    (warnings), a raw dict or list printed, a server path, ``nan`` / ``e+NN`` / ``.000000``.
    The stage tests fail on any of them."""
    nb = (
        nbformat.read(str(notebook), as_version=4) if isinstance(notebook, str | Path) else notebook
    )
    problems = []
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code_cells, start=1):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                continue  # a failed stage has its own banner
            data = out.get("data") or {}
            for what, text in _output_texts(out):
                text = "".join(text) if isinstance(text, list) else str(text)
                where = f"code cell {i} ({what})"
                if what == "stream stderr" and text.strip():
                    problems.append(f"{where}: stderr {text.strip()[:100]!r}")
                    continue
                if what == "text/plain" and set(data) <= {"text/plain"} and _RAW_REPR.match(text):
                    problems.append(f"{where}: raw value printed {text.strip()[:80]!r}")
                if what == "text/plain" and "image/png" in data:
                    continue  # the repr under a plot, never shown
                if what == "text/html" or set(data) <= {"text/plain"} or what == "text/markdown":
                    plain = re.sub(r"<[^>]+>|data:image/[^\"']+", " ", text)
                    for pattern, kind in ((SERVER_PATH, "server path"), (BAD_TEXT, "text")):
                        hit = pattern.search(plain)
                        if hit:
                            problems.append(f"{where}: {kind} {hit.group(0)[:80]!r}")
    return problems
