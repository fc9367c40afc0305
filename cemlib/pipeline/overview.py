"""The top of the run index: each stage's verdict, the stage table with its links, what changed
since the previous run, and the headline figures in plain words (collapsed)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from cemlib.pipeline.result import FAILED, NOT_AVAILABLE, OK, SKIPPED, RunResult, StageStatus
from cemlib.reports import fmt_number, label, load_verdict

BADGE = {OK: "b-ok", FAILED: "b-failed", SKIPPED: "b-skipped", NOT_AVAILABLE: "b-na"}
#: unfinished runs are never "the previous run" of another
_UNFINISHED = frozenset({"interrupted", "running"})
MAX_CHANGES = 10


def e(value: Any) -> str:
    """HTML-escaped text (``None`` -> empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def badge(status: str) -> str:
    """A coloured status chip."""
    return f'<span class="badge {BADGE.get(status, "b-" + status)}">{e(status)}</span>'


def duration(seconds: float | None) -> str:
    """``75`` -> ``1 min 15 s``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_value(value: Any) -> str:
    """A headline figure as a reviewer reads it: ``12,345``, ``0.873``, ``1,234.50``."""
    if value is None or isinstance(value, float) and value != value:
        return "n/a"
    if isinstance(value, float) and abs(value) < 1 and not value.is_integer():
        return f"{value:.3g}" if abs(value) >= 1e-3 else fmt_number(value)
    if isinstance(value, dict | list):
        return (
            ", ".join(f"{label(k)} {format_value(v)}" for k, v in dict(value).items())
            if isinstance(value, dict)
            else ", ".join(map(format_value, value))
        )
    return fmt_number(value)


def stage_link(s: StageStatus) -> str:
    """The stage's name, linked to its reviewer page when there is one."""
    name = f"<strong>{e(s.name)}</strong>"
    return f'<a href="{e(s.html)}">{name}</a>' if s.html else name


def verdicts(run: RunResult) -> list[str]:
    """One card per stage: status, duration and the verdict the stage wrote (if any)."""
    parts = ["<h2>Verdict per stage</h2>"]
    for s in run.stages:
        v = load_verdict(Path(run.run_dir) / f"{s.name}.verdict.json") if run.run_dir else None
        head = (
            f'<div class="stage-head">{stage_link(s)} · {e(s.title)} {badge(s.status)} '
            f'<span class="muted">{e(duration(s.duration))}</span></div>'
        )
        if v is not None and s.status == OK:
            body = v.to_html()
        elif s.status == FAILED:
            body = f'<p class="muted">Failed at {e(s.error_summary)}.</p>'
        elif s.status != OK:
            body = f'<p class="muted">{e(s.reason or s.status)}</p>'
        else:
            body = '<p class="muted">This stage wrote no verdict.</p>'
        parts.append(f'<div class="stage-card">{head}{body}</div>')
    return parts


def stage_table(run: RunResult) -> list[str]:
    """Stage, status, duration and links: the HTML pages first, the notebook secondary."""
    parts = [
        "<h2>Stages</h2><table><tr><th>Stage</th><th>What it does</th><th>Status</th>"
        '<th class="num">Duration</th><th>Reports</th><th>Notes</th></tr>'
    ]
    for s in run.stages:
        links = []
        if s.html:
            links.append(f'<a href="{e(s.html)}">report</a>')
        if s.html_code:
            links.append(f'<a href="{e(s.html_code)}">with code</a>')
        if s.notebook:
            links.append(f'<a class="secondary" href="{e(s.notebook)}">notebook (.ipynb)</a>')
        note = s.error_summary if s.status != OK else ""
        if s.inputs_from_other_runs:
            runs = sorted(set(s.inputs_from_other_runs.values()))
            note = (note + "; " if note else "") + (
                f"read {len(s.inputs_from_other_runs)} table(s) written by run {', '.join(runs)}"
            )
        parts.append(
            f"<tr><td>{stage_link(s)}</td><td>{e(s.title)}</td>"
            f'<td>{badge(s.status)}</td><td class="num">{e(duration(s.duration))}</td>'
            f'<td class="links">{"".join(links)}</td><td>{e(note)}</td></tr>'
        )
    parts.append("</table>")
    return parts


def previous_stage_runs(run: RunResult, runs: list[RunResult]) -> dict[str, RunResult]:
    """Per stage of ``run``: the newest finished run of ``runs`` (newest first), started before
    it, in which that stage ran ok and recorded figures."""
    out: dict[str, RunResult] = {}
    for other in runs:
        if (
            other.run_id == run.run_id
            or other.status in _UNFINISHED
            or (other.started_at or "") >= (run.started_at or "")
        ):
            continue
        for s in other.stages:
            if s.status == OK and s.headlines and s.name not in out:
                out[s.name] = other
    return out


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def changes(run: RunResult, before: dict[str, RunResult]) -> list[tuple[str, str, str, str, str]]:
    """(stage, figure, before, now, earlier run id) of the headline figures that changed since
    each stage's previous run, largest relative change first."""
    found = []
    for s in run.stages:
        if s.name not in before:
            continue
        old = next(o.headlines for o in before[s.name].stages if o.name == s.name)
        for key, now in s.headlines.items():
            was = old.get(key)
            a, b = _numeric(was), _numeric(now)
            if a is None or b is None or a == b:
                continue
            rel = abs(b - a) / abs(a) if a else math.inf
            found.append(
                (
                    rel,
                    s.name,
                    label(key),
                    format_value(was),
                    format_value(now),
                    before[s.name].run_id,
                )
            )
    found.sort(key=lambda t: -t[0])
    return [t[1:] for t in found]


def what_changed(run: RunResult, runs: list[RunResult]) -> list[str]:
    """The headline figures that moved most since each stage's previous run."""
    before = previous_stage_runs(run, runs)
    head = "<h2>What changed since the previous run</h2>"
    if not before:
        return [head, '<p class="muted">No earlier run of these stages in this reports folder.</p>']
    moved = changes(run, before)
    compared = ", ".join(
        f'{e(name)} with <a href="../{e(r.run_id)}/index.html">{e(r.run_id)}</a>'
        for name, r in before.items()
    )
    if not moved:
        return [head, f"<p>No headline figure changed (compared: {compared}).</p>"]
    rows = "".join(
        f'<tr><td>{e(st)}</td><td>{e(k)}</td><td class="num">{e(a)}</td>'
        f'<td class="num">{e(b)}</td><td>{e(rid)}</td></tr>'
        for st, k, a, b, rid in moved[:MAX_CHANGES]
    )
    more = (
        f'<p class="muted">{len(moved) - MAX_CHANGES} more figures changed.</p>'
        if len(moved) > MAX_CHANGES
        else ""
    )
    return [
        head,
        f'<table><tr><th>Stage</th><th>Figure</th><th class="num">Before</th>'
        f'<th class="num">Now</th><th>Earlier run</th></tr>{rows}</table>{more}',
    ]


def headline_details(run: RunResult) -> list[str]:
    """Every headline figure of every stage, in plain words, collapsed."""
    with_figures = [s for s in run.stages if s.headlines]
    if not with_figures:
        return [
            "<h2>Headline figures</h2>",
            '<p class="muted">No stage recorded headline figures.</p>',
        ]
    parts = ["<h2>Headline figures</h2>", '<div class="grid">']
    for s in with_figures:
        rows = "".join(
            f'<tr><td>{e(label(k))}</td><td class="num">{e(format_value(v))}</td></tr>'
            for k, v in s.headlines.items()
        )
        parts.append(
            f"<details><summary>{e(s.name)}: {len(s.headlines)} figures</summary>"
            f"<table>{rows}</table></details>"
        )
    parts.append("</div>")
    return parts
