"""The lasting ids of a run: the previous run's ids carried to this run's clusters through the
registry, and every record's last id remembered for the next run."""

from __future__ import annotations

import pandas as pd

from cemlib.identity.registry import assign_ids


def previous_ids_table(wh) -> str | None:
    """Where the records' last ids are: ``identity.record_ids``, or the ``identity.map`` of a
    version without it; None before the first run of the stage."""
    return next(
        (f"identity.{t}" for t in ("record_ids", "map") if wh.has_table("identity", t)), None
    )


def remember_ids(wh, rmap: pd.DataFrame, *, run_id: str, as_of: str) -> int:
    """``identity.record_ids``: every record of this run with its profile id, or, when it is
    attached to no profile now (anonymous, or dated after ``as_of``), the last id it had, so
    that the id comes back with it. Records no longer in the sources are forgotten."""
    con = wh.con
    previous = previous_ids_table(wh)
    con.register("_ids_map", rmap[["source_table", "record_id", "profile_id"]])
    try:
        last = (
            f"LEFT JOIN (SELECT CAST(source_table AS VARCHAR) AS source_table, "
            f"CAST(record_id AS VARCHAR) AS record_id, CAST(profile_id AS VARCHAR) AS last_id "
            f"FROM {previous} WHERE profile_id IS NOT NULL) p USING (source_table, record_id)"
            if previous
            else ""
        )
        last_id = "p.last_id" if previous else "NULL"
        with wh.transaction():
            con.execute(
                "CREATE OR REPLACE TABLE identity._record_ids_next AS "
                "SELECT CAST(n.source_table AS VARCHAR) AS source_table, "
                "CAST(n.record_id AS VARCHAR) AS record_id, "
                f"CAST(coalesce(n.profile_id, {last_id}) AS VARCHAR) AS profile_id, "
                "CAST(? AS VARCHAR) AS _run_id, CAST(? AS DATE) AS _as_of "
                f"FROM _ids_map n {last} WHERE coalesce(n.profile_id, {last_id}) IS NOT NULL",
                [run_id, pd.Timestamp(as_of).date()],
            )
            con.execute("DROP TABLE IF EXISTS identity.record_ids")
            con.execute("ALTER TABLE identity._record_ids_next RENAME TO record_ids")
            n = con.execute("SELECT count(*) FROM identity.record_ids").fetchone()[0]
            con.execute(
                "INSERT INTO meta.table_log VALUES ('identity', 'record_ids', ?, ?, ?, ?)",
                [run_id, pd.Timestamp(as_of).date(), n, pd.Timestamp.now().to_pydatetime()],
            )
    finally:
        con.unregister("_ids_map")
    return n


def carry_ids(wh, result, *, run_id: str, as_of: str) -> None:
    """Give ``result``'s profiles the ids the warehouse's previous run issued (merges keep the
    larger profile's id, splits the larger part's; :func:`cemlib.identity.registry.assign_ids`)
    and set ``result.registry`` / ``result.changes``; the map and the golden records are
    renamed in place."""
    registry = previous_run = None
    previous_map = previous_ids_table(wh)  # joined in DuckDB, never loaded whole
    if previous_map:
        row = wh.con.execute(f"SELECT _run_id FROM {previous_map} LIMIT 1").fetchone()
        previous_run = str(row[0]) if row else None
    if wh.has_table("identity", "registry"):
        registry = wh.read_table("identity", "registry")
    assignment = assign_ids(
        result.map,
        previous_map,
        registry,
        run_id=run_id,
        as_of=as_of,
        links=result.links,
        previous_run_id=previous_run,
        con=wh.con,
    )
    rename = assignment.ids
    if any(k != v for k, v in rename.items()):
        pid = result.map["profile_id"]
        result.map["profile_id"] = pid.map(rename).astype("string").where(pid.notna())
        result.profiles["profile_id"] = result.profiles["profile_id"].map(rename)
    result.registry = assignment.registry
    result.changes = assignment.changes
    result.figures["id_changes"] = assignment.counts
