"""HTML reports of an executed notebook, readable offline.

Two renderings per notebook: one for reviewers without code cells (nbconvert's
``exclude_input``), one with code for data scientists. nbconvert's stock ``lab`` template
loads require.js, MathJax and mermaid from a CDN; reviewers may read the reports offline and
the stage notebooks need none of them, so the template used here drops those scripts. Styles
are inlined and plots are always embedded as base64 PNG (with the alt text that
``cemlib.reports.show`` records), so each HTML file stands alone.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

import nbformat
from jinja2 import DictLoader

_TEMPLATE_NAME = "cem_offline.html.j2"
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block data_javascript -%}
<pre class="cem-omitted">[JavaScript output omitted from the offline report]</pre>
{%- endblock data_javascript -%}
{%- block data_widget_view -%}
{%- if 'text/plain' in output.data -%}<pre>{{ output.data['text/plain'] | escape_html }}</pre>{%- endif -%}
{%- endblock data_widget_view -%}
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


def render_html(
    notebook: str | Path | nbformat.NotebookNode,
    output: str | Path,
    *,
    with_code: bool = False,
    title: str | None = None,
    banner: str | None = None,
    header: str | None = None,
) -> Path:
    """Write ``notebook`` (a path or a node) as a self-contained HTML page to ``output``.

    ``header`` (HTML) is a navigation line above everything (e.g. back to the run index);
    ``banner`` (HTML) a red box under it, e.g. to say that the stage failed.
    """
    nb = (
        nbformat.read(str(notebook), as_version=4) if isinstance(notebook, str | Path) else notebook
    )
    extra = [
        f'<div class="{cls}">{content}</div>'
        for cls, content in (("cem-header", header), ("cem-failure", banner))
        if content
    ]
    if extra:
        nb = copy.deepcopy(nb)
        nb.cells[0:0] = [nbformat.v4.new_markdown_cell(text) for text in extra]
    out = Path(output)
    resources = {"metadata": {"name": title or out.stem}}
    body, _ = _exporter(with_code).from_notebook_node(nb, resources=resources)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(out)
    return out
