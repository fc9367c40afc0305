"""The history of a reports folder on its index page: each headline figure across the runs as a
small inline chart, and the alerts of the latest run (from its ``monitor.json``).

Plain inline SVG (no script, no external resource), like the rest of the index.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from cemlib.pipeline.result import RunResult

_W, _H = 150, 34


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def figure_series(runs: list[RunResult]) -> dict[tuple[str, str], list[tuple[str, float]]]:
    """``(stage, figure) -> [(run_id, value), ...]`` oldest first, for every numeric headline
    figure that at least two runs recorded."""
    series: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for run in sorted(runs, key=lambda r: (r.started_at or "", r.run_id)):
        for stage in run.stages:
            for name, value in (stage.headlines or {}).items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                if isinstance(value, float) and not math.isfinite(value):
                    continue
                series.setdefault((stage.name, name), []).append((run.run_id, float(value)))
    return {k: v for k, v in series.items() if len(v) >= 2}


def sparkline(values: list[float]) -> str:
    """An inline SVG line of ``values`` (the last point marked)."""
    lo, hi = min(values), max(values)
    step = (_W - 8) / max(len(values) - 1, 1)
    if hi == lo:  # a figure that did not move: a level line at mid height
        pts = [(4 + i * step, _H / 2) for i in range(len(values))]
    else:
        pts = [
            (4 + i * step, _H - 4 - (v - lo) / (hi - lo) * (_H - 8)) for i, v in enumerate(values)
        ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    x, y = pts[-1]
    return (
        f'<svg width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img">'
        f'<polyline fill="none" stroke="#2f6db5" stroke-width="1.5" points="{path}"/>'
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#2f6db5"/></svg>'
    )


def run_alerts(run: RunResult) -> list[dict] | None:
    """The monitor's alerts of ``run`` (its ``monitor.json``); None when it wrote none or the
    file cannot be read."""
    if not run.run_dir:
        return None
    try:
        text = (Path(run.run_dir) / "monitor.json").read_text(encoding="utf-8")
        return json.loads(text).get("alerts") or []
    except (ValueError, OSError):
        return None


def latest_alerts(runs: list[RunResult]) -> tuple[str | None, list[dict]]:
    """(run id, alerts) of the newest finished run that wrote a ``monitor.json``."""
    for run in runs:  # newest first
        if run.status in ("running", "interrupted"):
            continue
        alerts = run_alerts(run)
        if alerts is not None:
            return run.run_id, alerts
    return None, []


def history_section(runs: list[RunResult], format_value=str) -> list[str]:
    """HTML parts of the history: the latest alerts first, then one chart per figure."""
    parts: list[str] = []
    run_id, alerts = latest_alerts(runs)
    if alerts:
        items = "".join(f"<li>{_e(a.get('message'))}</li>" for a in alerts)
        parts.append(
            f'<div class="alert"><strong>{len(alerts)} alert(s) in run {_e(run_id)}</strong>'
            f"<ul>{items}</ul></div>"
        )
    elif run_id:
        parts.append(f'<div class="note">No alerts in run {_e(run_id)}.</div>')
    series = figure_series(runs)
    if not series:
        return parts
    parts.append("<h2>History of the headline figures</h2><table><tr><th>Stage</th>"
                 '<th>Figure</th><th>Across runs, oldest to newest</th><th class="num">Latest'
                 "</th></tr>")  # fmt: skip
    for (stage, name), points in series.items():
        values = [v for _, v in points]
        title = ", ".join(f"{r}: {format_value(v)}" for r, v in points)
        parts.append(
            f'<tr><td>{_e(stage)}</td><td>{_e(name)}</td><td title="{_e(title)}">'
            f'{sparkline(values)}</td><td class="num">{_e(format_value(values[-1]))}</td></tr>'
        )
    parts.append("</table>")
    return parts
