"""After the stages: publish the run's working copy of the warehouse (or keep it), and say
which run each table of the warehouse now comes from and which are out of date."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cemlib.lock import open_elsewhere
from cemlib.pipeline.isolation import PUBLISHED, UNCHANGED, WorkingCopy
from cemlib.pipeline.result import OK, RunResult, now_utc
from cemlib.pipeline.stages import STAGES, Stage, matching_tables
from cemlib.warehouse import Warehouse


def runs_of(tables: dict[str, str], limit: int = 6) -> str:
    """``identity.map (run a); clean.* (8 tables), raw.crm_contacts (run b)``: a schema whose
    tables all come from one run is named once."""
    by_run: dict[str, list[str]] = {}
    for t, r in sorted(tables.items()):
        by_run.setdefault(r, []).append(t)
    parts = []
    for r, names in by_run.items():
        schemas: dict[str, list[str]] = {}
        for t in names:
            schemas.setdefault(t.split(".", 1)[0], []).append(t)
        shown = [
            ts[0] if len(ts) == 1 else f"{s}.* ({len(ts)} tables)" for s, ts in schemas.items()
        ]
        text = ", ".join(shown[:limit])
        if len(shown) > limit:
            text += f" and {len(shown) - limit} more"
        parts.append(f"{text} (run {r})")
    return "; ".join(parts)


def _register_run(path: Path, run: RunResult) -> None:
    """Add the run to ``meta.runs`` of the working copy before it is published: the
    warehouse's own record of the runs whose tables it holds (the previous one of a scheduled
    job is the last row)."""
    stages = ",".join(s.name for s in run.stages if s.status == OK)
    with Warehouse(path) as wh:
        wh.con.execute(
            "CREATE TABLE IF NOT EXISTS meta.runs (run_id VARCHAR, as_of DATE, "
            "started_at VARCHAR, published_at VARCHAR, stages VARCHAR, run_dir VARCHAR)"
        )
        wh.con.execute(
            "INSERT INTO meta.runs VALUES (?, ?, ?, ?, ?, ?)",
            [run.run_id, run.as_of, run.started_at, now_utc(), stages, run.run_dir],
        )


def stale_outputs(
    tables: dict[str, dict], run_id: str, ran: set[str], stages: Sequence[Stage] = STAGES
) -> dict[str, str]:
    """Tables of stages this run did not run that were computed from inputs this run
    replaced: ``{"marts.next_offers": "reads identity.map, rewritten by this run: run
    04_next_offer"}``. They are still the last successful run's, but no longer match."""
    fresh = {t for t, v in tables.items() if v.get("run_id") == run_id}
    out: dict[str, str] = {}
    for stage in stages:
        if stage.key in ran:
            continue
        rewritten = sorted({t for e in stage.reads for t in matching_tables(e, fresh)})
        if not rewritten:
            continue
        for entry in stage.writes:
            for t in matching_tables(entry, tables):
                if tables[t].get("run_id") != run_id:
                    shown = ", ".join(rewritten[:2]) + (" ..." if len(rewritten) > 2 else "")
                    out[t] = f"reads {shown}, rewritten by this run: run {stage.name}"
    return out


def settle_warehouse(run: RunResult, copy: WorkingCopy, say, *, publish_it: bool) -> bool:
    """Publish the working copy (every stage that ran was ok) or leave the warehouse as it was,
    and record in ``run.warehouse`` which run each table of the warehouse now comes from.

    ``False`` when a run that should publish could not: another process opened the warehouse
    during the run (replacing the file under it would lose its writes); the copy is kept."""
    holder = open_elsewhere(copy.warehouse) if publish_it else None
    if holder:
        kept = copy.discard(keep=True)
        run.warehouse = {"path": str(copy.warehouse), "status": UNCHANGED, "kept": str(kept),
                         "tables": {}, "open_elsewhere": holder}  # fmt: skip
        say(
            f"warehouse {copy.warehouse}: not published: {holder} opened it during the run "
            "(replacing the file would leave it on the old, deleted one); this run's tables are "
            f"kept in {kept}: close it there and run again"
        )
        return False
    if publish_it:
        if copy.path.is_file():
            _register_run(copy.path, run)
        copy.publish()
        status, kept = PUBLISHED, None
    else:
        kept = copy.discard(keep=True)
        status = UNCHANGED
    tables: dict[str, dict] = {}
    if copy.warehouse.is_file():
        with Warehouse(copy.warehouse, read_only=True) as wh:
            tables = wh.provenance()
    run.warehouse = {
        "path": str(copy.warehouse),
        "status": status,
        "kept": str(kept) if kept else None,
        "tables": tables,
    }
    mine = sum(t["run_id"] == run.run_id for t in tables.values())
    if status == PUBLISHED:
        say(
            f"warehouse {copy.warehouse}: published, {mine} of {len(tables)} table(s) from this run"
        )
        if copy.removed_failed is not None:
            say(f"  removed {copy.removed_failed.name}: the copy of an earlier failed run")
        older = {t: str(v["run_id"]) for t, v in tables.items() if v["run_id"] != run.run_id}
        if older:
            say(f"  from earlier runs: {runs_of(older)}")
        stale = stale_outputs(tables, run.run_id, {s.key for s in run.stages if s.status == OK})
        if stale:
            run.warehouse["stale"] = stale
            names = ", ".join(f"{t} ({why})" for t, why in stale.items())
            say(f"  out of date: {names}")
    else:
        where = f"; this run's working copy is kept as {kept} until a run publishes" if kept else ""
        say(f"warehouse {copy.warehouse}: unchanged (the run did not succeed){where}")
    return True
