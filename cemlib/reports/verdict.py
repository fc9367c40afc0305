"""The verdict at the top of every stage page, and the same block on the run index.

A verdict is a status (``ok``, ``warning``, ``failed``), three to five key figures already
formatted with their units, the comparison that matters (the model against the best baseline,
this run against the previous one) and the caveats in plain words. ``verdict(...)`` displays it
in the notebook and writes it beside the stage's headline figures as
``<stage>.verdict.json``, which the run index reads.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cemlib.reports.tables import fmt_cell

STATUSES = ("ok", "warning", "failed")
_COLOURS = {"ok": ("#1a7f37", "#f0fff4"), "warning": ("#9a6700", "#fff8e5"),
            "failed": ("#cf222e", "#fff5f5")}  # fmt: skip

CSS = """<style>
.cem-verdict { border-left: 5px solid var(--cem-v); background: var(--cem-vb); padding: 10px 16px;
               margin: 0.4em 0 1.2em; border-radius: 4px; }
.cem-verdict .cem-v-title { font-weight: 700; font-size: 1.08em; margin-bottom: 6px; }
.cem-verdict .cem-v-status { display: inline-block; color: #fff; background: var(--cem-v);
                             border-radius: 10px; padding: 0 9px; font-size: 0.85em;
                             margin-right: 8px; text-transform: uppercase; }
.cem-verdict .cem-v-figs { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 6px 0; }
.cem-verdict .cem-v-fig b { display: block; font-size: 1.35em; font-variant-numeric: tabular-nums; }
.cem-verdict .cem-v-fig span { color: #59636e; font-size: 0.88em; }
.cem-verdict p { margin: 4px 0; }
.cem-verdict ul { margin: 4px 0 2px 1.1em; padding: 0; }
</style>"""


@dataclass
class Verdict:
    """What a reviewer needs from one stage in ten seconds."""

    status: str
    title: str
    figures: dict[str, str] = field(default_factory=dict)
    comparison: str = ""
    caveats: list[str] = field(default_factory=list)

    def to_html(self) -> str:
        """The block as self-contained HTML (the page's CSS is :data:`CSS`)."""
        line, back = _COLOURS.get(self.status, _COLOURS["warning"])
        figs = "".join(
            f'<div class="cem-v-fig"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>'
            for k, v in self.figures.items()
        )
        parts = [
            f'<div class="cem-verdict" style="--cem-v:{line};--cem-vb:{back}">',
            f'<div class="cem-v-title"><span class="cem-v-status">{html.escape(self.status)}'
            f"</span>{html.escape(self.title)}</div>",
            f'<div class="cem-v-figs">{figs}</div>' if figs else "",
            f"<p>{html.escape(self.comparison)}</p>" if self.comparison else "",
        ]
        if self.caveats:
            items = "".join(f"<li>{html.escape(c)}</li>" for c in self.caveats)
            parts.append(f"<p><strong>Caveats</strong></p><ul>{items}</ul>")
        parts.append("</div>")
        return "".join(parts)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """A verdict from the dict of a ``*.verdict.json`` (unknown keys ignored)."""
        known = {
            k: data[k] for k in ("status", "title", "figures", "comparison", "caveats") if k in data
        }
        return cls(**known)


def verdict_path(headlines_path: str | Path | None) -> Path | None:
    """``reports/<run>/<stage>.headlines.json`` -> ``reports/<run>/<stage>.verdict.json``."""
    if not headlines_path:
        return None
    p = Path(headlines_path)
    stem = p.name[: -len(".headlines.json")] if p.name.endswith(".headlines.json") else p.stem
    return p.with_name(f"{stem}.verdict.json")


def make_verdict(
    status: str,
    title: str,
    figures: Mapping[str, Any],
    comparison: str = "",
    caveats: Sequence[str] = (),
) -> Verdict:
    """A :class:`Verdict`; figure values that are not text are formatted in the house style."""
    if status not in STATUSES:
        raise ValueError(f"verdict status must be one of {STATUSES}, not {status!r}")
    figs = {str(k): v if isinstance(v, str) else fmt_cell(v) for k, v in figures.items()}
    return Verdict(status, title, figs, comparison, [c for c in caveats if c])


def verdict(
    status: str,
    title: str,
    figures: Mapping[str, Any],
    comparison: str = "",
    caveats: Sequence[str] = (),
    *,
    headlines_path: str | Path | None = None,
) -> Verdict:
    """Display the verdict block and save it for the run index (beside ``headlines_path``)."""
    from IPython.display import HTML, display

    v = make_verdict(status, title, figures, comparison, caveats)
    path = verdict_path(headlines_path)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(v), ensure_ascii=False, indent=2), encoding="utf-8")
    display(HTML(CSS + v.to_html()))
    return v


def load_verdict(path: str | Path | None) -> Verdict | None:
    """The verdict saved at ``path``, or ``None`` when there is none or it is unreadable."""
    if not path or not Path(path).is_file():
        return None
    try:
        return Verdict.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return None
