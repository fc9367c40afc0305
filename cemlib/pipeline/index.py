"""The pages a reviewer opens first: the index of one run and the list of all runs.

Both are plain, self-contained HTML (inline CSS, no scripts, no external resources), so they
read the same from a file share, an e-mail attachment or an offline laptop.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from cemlib.pipeline import overview
from cemlib.pipeline.history import history_section, run_alerts
from cemlib.pipeline.overview import (
    format_value,
    headline_details,
    stage_table,
    verdicts,
    what_changed,
)
from cemlib.pipeline.result import FAILED, NOT_AVAILABLE, RunResult

_e, _badge, _duration, _BADGE = overview.e, overview.badge, overview.duration, overview.BADGE
__all__ = ["format_value", "list_runs", "render_run_index", "render_reports_index"]

_CSS = """
:root { --ok:#1a7f37; --failed:#cf222e; --skipped:#9a6700; --na:#6e7781; --line:#d0d7de; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:#1f2328; background:#fff; margin:0; line-height:1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 1.02em; margin: 18px 0 6px; }
.sub { color:#59636e; margin: 0 0 18px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 0.94em; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background:#f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.narrow { width: auto; min-width: 420px; }
table.facts th { width: 200px; background: none; color:#59636e; font-weight: normal; }
.badge { display:inline-block; padding: 1px 9px; border-radius: 10px; font-size: 0.85em;
         font-weight: 600; color:#fff; white-space: nowrap; }
.b-ok { background: var(--ok); } .b-failed { background: var(--failed); }
.b-skipped { background: var(--skipped); }
.b-na, .b-incomplete, .b-running, .b-interrupted { background: var(--na); }
.alert { border-left: 4px solid var(--failed); background:#fff5f5; padding: 10px 14px; margin: 14px 0; }
.alert code { background:#ffe3e3; }
.note { border-left: 4px solid var(--na); background:#f6f8fa; padding: 10px 14px; margin: 14px 0; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em; }
pre { background:#f6f8fa; padding: 10px 12px; overflow-x: auto; border-radius: 6px; }
a { color:#0969da; text-decoration: none; } a:hover { text-decoration: underline; }
.links a { margin-right: 10px; white-space: nowrap; }
.links a.secondary { color:#59636e; font-size: 0.88em; }
.stage-card { margin: 10px 0 14px; }
.stage-head { font-size: 1.02em; margin-bottom: 4px; }
.cem-verdict { border-left: 5px solid var(--cem-v); background: var(--cem-vb); padding: 8px 14px;
               margin: 4px 0 8px; border-radius: 4px; }
.cem-verdict .cem-v-title { font-weight: 600; margin-bottom: 4px; }
.cem-verdict .cem-v-status { display:inline-block; color:#fff; background: var(--cem-v);
               border-radius: 10px; padding: 0 8px; font-size: 0.8em; margin-right: 8px;
               text-transform: uppercase; }
.cem-verdict .cem-v-figs { display:flex; flex-wrap: wrap; gap: 4px 26px; margin: 4px 0; }
.cem-verdict .cem-v-fig b { display:block; font-size: 1.2em; font-variant-numeric: tabular-nums; }
.cem-verdict .cem-v-fig span { color:#59636e; font-size: 0.86em; }
.cem-verdict p { margin: 3px 0; } .cem-verdict ul { margin: 2px 0 2px 1.1em; padding: 0; }
.muted { color:#59636e; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 6px 24px; }
details summary { cursor: pointer; color:#0969da; margin: 6px 0; }
footer { margin-top: 36px; color:#59636e; font-size: 0.85em; }
"""


def _when(stamp: str | None) -> str:
    """``2026-11-23T05:30:00+00:00`` -> ``2026-11-23 05:30:00 UTC``."""
    if not stamp:
        return ""
    return stamp.replace("T", " ").replace("+00:00", " UTC")


def _page(title: str, body: str, head: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{head}<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # concurrent runs never clash
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# -- one run ------------------------------------------------------------------------------------
def render_run_index(run: RunResult) -> str:
    """HTML of ``reports/<run_id>/index.html``."""
    alerts = run_alerts(run) or []
    flagged = (
        f' <span class="badge b-failed">{len(alerts)} alert{"s" if len(alerts) > 1 else ""}</span>'
        if alerts
        else ""
    )
    parts = [
        f"<h1>cemlib run {_e(run.run_id)} {_badge(run.status)}{flagged}</h1>",
        f'<p class="sub">Customer data checks, identity resolution, churn and next offers '
        f"as of {_e(run.as_of)}: <strong>{_e(run.status)}</strong>"
        + (f" in {_e(_duration(run.duration))}" if run.duration is not None else "")
        + f", {sum(s.status == 'ok' for s in run.stages)} of {len(run.stages)} stages ok"
        + (f", <strong>{len(alerts)} monitor alert(s)</strong>" if alerts else "")
        + '. <a href="../index.html">All runs</a></p>',
    ]
    if alerts:  # every stage ran, but the data moved: the figures below may be wrong
        items = "".join(f"<li>{_e(a.get('message'))}</li>" for a in alerts)
        parts.append(
            f'<div class="alert"><strong>The monitor raised {len(alerts)} alert(s)</strong>: '
            "the stages ran, but the data moved past a threshold, so this run's figures may be "
            f'wrong until it is explained (<a href="05_monitor.html">05 monitor</a>).'
            f"<ul>{items}</ul></div>"
        )
    parts += [f'<div class="alert"><strong>Warning</strong>: {_e(w)}</div>' for w in run.warnings]
    parts += _failures(run)
    parts += _warehouse_notes(run)
    parts += verdicts(run)
    parts += stage_table(run)
    parts += what_changed(run, list_runs(Path(run.run_dir).parent) if run.run_dir else [])
    parts += headline_details(run)
    parts.append('<h2>Run details</h2><table class="facts">')
    parts += [f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in _facts(run)]
    parts.append("</table>")
    parts += _warehouse_tables(run)
    parts += _parameters(run)
    parts.append(
        f"<footer>Written by <code>cem run</code> into the folder {_e(Path(run.run_dir).name)}.</footer>"
    )
    return _page(f"cemlib run {run.run_id}", "\n".join(parts))


def _facts(run: RunResult) -> list[tuple[str, str]]:
    """The rows of the run details table: id, status, dates, source, seed, times, commit."""
    cfg = run.config
    git = run.git or {}
    commit = git.get("commit")
    commit_text = (
        f"<code>{_e(commit[:12])}</code> on {_e(git.get('branch'))}"
        + (' <span class="muted">(uncommitted changes)</span>' if git.get("dirty") else "")
        if commit
        else '<span class="muted">not a git checkout</span>'
    )
    return [
        ("Run id", f"<code>{_e(run.run_id)}</code>"),
        ("Status", _badge(run.status)),
        ("As of (last day of history)", _e(run.as_of)),
        ("Source", _e(cfg.get("source"))),
        ("Synthetic world size", format_value(cfg.get("n_people")) + " people"
         if cfg.get("source") == "synthetic" else '<span class="muted">n/a</span>'),
        ("Seed", _e(cfg.get("seed"))),
        ("Started", _e(_when(run.started_at))),
        ("Finished", _e(_when(run.finished_at) or "still running, or stopped")),
        ("Duration", _e(_duration(run.duration))),
        ("Git commit", commit_text),
    ]  # fmt: skip


def _failures(run: RunResult) -> list[str]:
    """An alert per failed stage (the cell and line), and a note on stages not available."""
    parts = []
    for s in run.stages:
        if s.status == FAILED:
            link = (
                f' <a href="{_e(s.html)}#papermill-error-cell">see the error</a>' if s.html else ""
            )
            src = (
                f" in <code>{_e(s.error.get('source_line'))}</code>"
                if s.error and s.error.get("source_line")
                else ""
            )
            parts.append(
                f'<div class="alert"><strong>Stage {_e(s.name)} failed</strong> at '
                f"{_e(s.error_summary)}{src}.{link}</div>"
            )  # fmt: skip
    missing = [s.name for s in run.stages if s.status == NOT_AVAILABLE]
    if missing:
        parts.append(
            f'<div class="note">Not available in this checkout: {_e(", ".join(missing))} '
            "(notebook not found); the stages depending on them were skipped.</div>"
        )
    return parts


def _unused_parameters(config: dict) -> dict[str, str]:
    """Injected parameters that the run's configuration does not use, with the reason:
    ``n_people`` when the source is a folder of exports, the Spark settings on DuckDB."""
    unused = {}
    if config.get("source", "synthetic") != "synthetic":
        unused["n_people"] = "the size of the synthetic world; the source is a folder"
    if config.get("engine", "duckdb") == "duckdb":
        unused["spark_master"] = unused["lake"] = "settings of the Spark engine"
    return unused


def _parameters(run: RunResult) -> list[str]:
    """The parameters injected into each stage, the run's YAML and the software versions."""
    parts = ["<h2>Parameters</h2>"]
    unused = _unused_parameters(run.config or {})
    if unused:
        by_reason: dict[str, list[str]] = {}
        for name, why in unused.items():
            by_reason.setdefault(why, []).append(f"<code>{_e(name)}</code>")
        listed = "; ".join(f"{' and '.join(n)} ({_e(why)})" for why, n in by_reason.items())
        parts.append(f'<p class="muted">Not shown, as they do not apply to this run: {listed}.</p>')
    for s in run.stages:
        if s.parameters:
            shown = {
                k: v for k, v in s.parameters.items() if k != "headlines_path" and k not in unused
            }
            rows = "".join(
                f"<tr><td><code>{_e(k)}</code></td><td><code>{_e(json.dumps(v, ensure_ascii=False, default=str))}</code></td></tr>"
                for k, v in shown.items()
            )  # fmt: skip
            parts.append(
                f"<details><summary>{_e(s.name)}: {len(shown)} parameters injected</summary>"
                f"<table>{rows}</table></details>"
            )
    parts.append(
        "<details><summary>Run configuration (YAML)</summary>"
        f"<pre>{_e(run.config_yaml)}</pre></details>"
    )
    parts.append('<details><summary>Software versions</summary><table class="narrow">')
    parts += [
        f'<tr><td>{_e(k)}</td><td class="num">{_e(v)}</td></tr>' for k, v in run.versions.items()
    ]
    parts.append("</table></details>")
    return parts


def _warehouse_notes(run: RunResult) -> list[str]:
    """The banner saying whether this run's tables were published to the warehouse."""
    wh = run.warehouse or {}
    name = Path(wh["path"]).name if wh.get("path") else "the warehouse"
    tables = wh.get("tables") or {}
    mine = sum(t.get("run_id") == run.run_id for t in tables.values())
    if wh.get("status") == "published":
        older = len(tables) - mine
        tail = f"; {older} table(s) come from earlier runs (listed below)" if older else ""
        notes = [
            f'<div class="note">This run\'s tables were published to <code>{_e(name)}</code>: '
            f"{mine} of its {len(tables)} tables come from this run{tail}.</div>"
        ]
        stale = wh.get("stale") or {}
        if stale:
            items = "; ".join(f"<code>{_e(t)}</code>: {_e(why)}" for t, why in stale.items())
            notes.append(f'<div class="alert"><strong>Out of date</strong>: {items}.</div>')
        return notes
    if wh.get("status") == "unchanged":
        kept = wh.get("kept")
        tail = (
            f" This run's working copy is kept as <code>{_e(Path(kept).name)}</code> beside it."
            if kept
            else ""
        )
        return [
            f'<div class="alert"><strong>Nothing of this run was published</strong>: '
            f"<code>{_e(name)}</code> holds what the last successful run wrote.{tail}</div>"
        ]
    return []


def _warehouse_tables(run: RunResult) -> list[str]:
    """Which run each table of the warehouse comes from, after this run."""
    tables = (run.warehouse or {}).get("tables") or {}
    if not tables:
        return []
    earlier = ' <span class="muted">(earlier run)</span>'
    rows = "".join(
        f"<tr><td><code>{_e(t)}</code></td><td>{_e(v.get('run_id') or 'unknown')}"
        f"{'' if v.get('run_id') == run.run_id else earlier}"
        f'</td><td class="num">{_e(format_value(v.get("rows")))}</td></tr>'
        for t, v in tables.items()
    )
    return [
        "<h2>Warehouse</h2><details><summary>Which run each of the "
        f"{len(tables)} tables comes from</summary><table><tr><th>Table</th><th>Run</th>"
        f'<th class="num">Rows</th></tr>{rows}</table></details>'
    ]


def write_run_index(run: RunResult, path: str | Path) -> Path:
    """Write the index page of ``run`` to ``path`` in the run's ``vocabulary`` (its prose and
    tables; the parameters, in code, as given); returns the path."""
    from cemlib.reports.vocabulary import reword_html

    words = (run.config or {}).get("vocabulary") or {}
    return _write(Path(path), reword_html(render_run_index(run), words))


# -- all runs -----------------------------------------------------------------------------------
#: run statuses that never become ``reports/latest``
UNFINISHED: frozenset[str] = frozenset({"interrupted", "running"})


def list_runs(reports_dir: str | Path) -> list[RunResult]:
    """Every run under ``reports_dir`` (folders holding ``run.json``), newest first."""
    runs = []
    for path in Path(reports_dir).glob("*/run.json"):
        if path.parent.is_symlink():
            continue
        try:
            runs.append(RunResult.load(path))
        except (ValueError, TypeError, OSError):
            continue  # a foreign or truncated file does not break the listing
    runs.sort(key=lambda r: (r.started_at or "", r.run_id), reverse=True)
    return runs


def render_reports_index(runs: Iterable[RunResult]) -> str:
    """HTML of ``reports/index.html``: one row per run, newest first."""
    runs = list(runs)
    parts = [
        "<h1>cemlib reports</h1>",
        f'<p class="sub">{len(runs)} run(s), newest first.'
        + (' The newest is also at <a href="latest/index.html">latest/</a>.' if runs else "")
        + "</p>",
        "<table><tr><th>Run</th><th>Started</th><th>As of</th><th>Status</th>"
        '<th>Stages</th><th class="num">Duration</th><th>Commit</th></tr>',
    ]
    newest = next((r.run_id for r in runs if r.status not in UNFINISHED), None)
    for r in runs:
        chips = " ".join(
            f'<span class="badge {_BADGE.get(s.status, "b-na")}" title="{_e(s.name)}: {_e(s.status)}">'
            f"{_e(s.key)}</span>"
            for s in r.stages
        )
        commit = (r.git or {}).get("commit")
        latest = ' <span class="muted">(latest)</span>' if r.run_id == newest else ""
        parts.append(
            f'<tr><td><a href="{_e(r.run_id)}/index.html">{_e(r.run_id)}</a>{latest}</td>'
            f"<td>{_e(_when(r.started_at))}</td><td>{_e(r.as_of)}</td><td>{_badge(r.status)}</td>"
            f'<td>{chips}</td><td class="num">{_e(_duration(r.duration))}</td>'
            f"<td><code>{_e(commit[:12] if commit else '')}</code></td></tr>"
        )
    parts.append("</table>")
    if not runs:
        parts.append('<p class="muted">No runs yet: <code>make report</code> makes one.</p>')
    parts += history_section(runs, format_value)
    return _page("cemlib reports", "\n".join(parts))


def point_latest(reports_dir: str | Path, run_id: str, *, use_symlink: bool = True) -> Path:
    """Make ``reports/latest`` point at ``reports/<run_id>``.

    A relative symlink when the file system allows it; otherwise a ``latest/`` folder whose
    ``index.html`` forwards to the run (meta refresh, no script) and whose ``RUN_ID`` names it.
    """
    reports_dir = Path(reports_dir)
    link = reports_dir / "latest"
    if use_symlink:
        tmp = reports_dir / f".latest.{os.getpid()}"
        try:
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            os.symlink(run_id, tmp, target_is_directory=True)
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link)
            os.replace(tmp, link)
            return link
        except OSError:
            if tmp.is_symlink():
                tmp.unlink()
    if link.is_symlink() or link.is_file():
        link.unlink()
    link.mkdir(exist_ok=True)
    target = f"../{run_id}/index.html"
    _write(link / "RUN_ID", run_id + "\n")
    _write(
        link / "index.html",
        _page(
            "cemlib: latest run",
            f'<p>The latest run is <a href="{_e(target)}">{_e(run_id)}</a>.</p>',
            head=f'<meta http-equiv="refresh" content="0; url={_e(target)}">\n',
        ),
    )
    return link


def prune_runs(reports_dir: str | Path, keep: int) -> list[str]:
    """Remove the run folders of ``reports_dir`` past the ``keep`` newest runs; returns the
    removed run ids, oldest last.

    Never removed: a run still running (another job may be writing it) and the newest finished
    run (what ``latest`` points at). Only folders holding a ``run.json`` are considered, so
    nothing else in the reports folder is touched.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    runs = list_runs(reports_dir)
    newest_finished = next((r.run_id for r in runs if r.status not in UNFINISHED), None)
    removed = []
    for r in runs[keep:]:
        if r.status == "running" or r.run_id == newest_finished:
            continue
        shutil.rmtree(Path(reports_dir) / r.run_id)
        removed.append(r.run_id)
    return removed


def write_reports_index(reports_dir: str | Path, *, use_symlink: bool = True) -> Path:
    """Rewrite ``reports/index.html`` and point ``reports/latest`` at the newest run that
    finished (ok or failed): an interrupted or still running run is listed but never latest."""
    reports_dir = Path(reports_dir)
    runs = list_runs(reports_dir)
    path = _write(reports_dir / "index.html", render_reports_index(runs))
    finished = [r for r in runs if r.status not in UNFINISHED]
    if finished:
        point_latest(reports_dir, finished[0].run_id, use_symlink=use_symlink)
    elif (reports_dir / "latest").is_symlink():
        (reports_dir / "latest").unlink()  # every run was removed
    return path
