"""The lasting ids of a run: the previous run's ids carried to this run's clusters through the
registry, and every record's last id remembered for the next run."""

from __future__ import annotations

import pandas as pd

from cemlib.frames import fetch_frame
from cemlib.identity.changes import change_frame, dormant_row
from cemlib.identity.registry import ACTIVE, DORMANT, assign_ids, typed_registry


def previous_ids_table(wh) -> str | None:
    """Where the records' last ids are: ``identity.record_ids``, or the ``identity.map`` of a
    version without it; None before the first run of the stage."""
    return next(
        (f"identity.{t}" for t in ("record_ids", "map") if wh.has_table("identity", t)), None
    )


def record_ids_query(previous: str | None) -> str:
    """The SELECT of ``identity.record_ids`` over the registered ``_ids_map`` (two parameters:
    run id, ``as_of``): each record's profile id, or the last id ``previous`` (the table of the
    last run's record ids, or None) gave it when it is attached to none now."""
    last = (
        f"LEFT JOIN (SELECT CAST(source_table AS VARCHAR) AS source_table, "
        f"CAST(record_id AS VARCHAR) AS record_id, CAST(profile_id AS VARCHAR) AS last_id "
        f"FROM {previous} WHERE profile_id IS NOT NULL) p USING (source_table, record_id)"
        if previous
        else ""
    )
    last_id = "p.last_id" if previous else "NULL"
    return (
        "SELECT CAST(n.source_table AS VARCHAR) AS source_table, "
        "CAST(n.record_id AS VARCHAR) AS record_id, "
        f"CAST(coalesce(n.profile_id, {last_id}) AS VARCHAR) AS profile_id, "
        "CAST(? AS VARCHAR) AS _run_id, CAST(? AS DATE) AS _as_of "
        f"FROM _ids_map n {last} WHERE coalesce(n.profile_id, {last_id}) IS NOT NULL"
    )


def remember_ids(wh, rmap: pd.DataFrame, *, run_id: str, as_of: str) -> int:
    """``identity.record_ids``: every record of this run with its profile id, or, when it is
    attached to no profile now (anonymous, or dated after ``as_of``), the last id it had, so
    that the id comes back with it. Records no longer in the sources are forgotten."""
    con = wh.con
    previous = previous_ids_table(wh)
    con.register("_ids_map", rmap[["source_table", "record_id", "profile_id"]])
    try:
        with wh.transaction():
            con.execute(
                f"CREATE OR REPLACE TABLE identity._record_ids_next AS {record_ids_query(previous)}",
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


def carry_ids(wh, result, *, run_id: str, as_of: str, scope: dict | None = None) -> None:
    """Give ``result``'s profiles the ids the warehouse's previous run issued (merges keep the
    larger profile's id, splits the larger part's; :func:`cemlib.identity.registry.assign_ids`)
    and set ``result.registry`` / ``result.changes``; the map and the golden records are
    renamed in place. ``scope`` (an incremental run, :func:`carry_scoped`): only the profiles
    resolved again are matched; the others keep their ids."""
    if scope is not None and wh.has_table("identity", "registry"):
        return carry_scoped(wh, result, run_id=run_id, as_of=as_of, scope=scope)
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


def carry_scoped(wh, result, *, run_id: str, as_of: str, scope: dict) -> None:
    """:func:`carry_ids` for an incremental run: ``scope["rows"]`` (a slice of ``result.map``)
    are the records resolved again, ``scope["links"]`` (a slice of ``result.links``) their
    links, ``scope["gone"]`` the records deleted at the source and ``scope["kept_ids"]`` the
    profiles kept as they were. Only the re-resolved records' clusters are matched to their
    previous ids (through the registry, as in a full run); a kept profile keeps its id, and its
    registry row is seen in this run. A record's last id naming a kept profile (it was left
    unattached since) is not matched: the kept profile holds that id."""
    con, kept_ids = wh.con, scope["kept_ids"]
    sub = result.map.iloc[scope["rows"]]
    keys = pd.concat([sub[["source_table", "record_id"]],
                      scope["gone"].rename(columns={"source": "source_table"})[["source_table", "record_id"]]],
                     ignore_index=True).astype(str)  # fmt: skip
    con.register("_carry_keys", keys)
    con.register("_carry_kept", pd.DataFrame({"profile_id": sorted(map(str, kept_ids))}))
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _carry_prev AS SELECT p.source_table, p.record_id, "
            f"p.profile_id FROM {previous_ids_table(wh)} p SEMI JOIN _carry_keys k "
            "ON CAST(p.source_table AS VARCHAR) = k.source_table "
            "AND CAST(p.record_id AS VARCHAR) = k.record_id "
            "WHERE CAST(p.profile_id AS VARCHAR) NOT IN (SELECT profile_id FROM _carry_kept)"
        )
        registry = wh.read_table("identity", "registry")
        in_scope = {r[0] for r in con.execute("SELECT DISTINCT CAST(profile_id AS VARCHAR) "
                                               "FROM _carry_prev").fetchall()}  # fmt: skip
        mine = registry["profile_id"].astype(str).isin(in_scope).to_numpy()
        row = next(iter(con.execute("SELECT _run_id FROM identity.map LIMIT 1").fetchall()), None)
        assignment = assign_ids(
            sub, "_carry_prev", registry[mine], run_id=run_id, as_of=as_of,
            links=result.links.iloc[scope["links"]], previous_run_id=str(row[0]) if row else None,
            con=con, taken=set(registry["profile_id"].astype(str)),
        )  # fmt: skip
        rest = _seen_again(registry[~mine], run_id=run_id, as_of=as_of)
        dormant = rest.loc[rest["status"] == DORMANT, "profile_id"].astype(str).tolist()
        waiting = _records_of(con, previous_ids_table(wh), dormant)
    finally:
        con.unregister("_carry_keys")
        con.unregister("_carry_kept")
        con.execute("DROP TABLE IF EXISTS _carry_prev")
    rename = {k: v for k, v in assignment.ids.items() if k != v}
    if rename:
        pid, rows = result.map["profile_id"], scope["rows"]
        # the kept rows as they are, the resolved ones renamed: pieces put together, not
        # assigned into a copy (a positional assignment of millions of strings cost seconds)
        parts = [pid.iloc[: rows.start], _renamed(pid.iloc[rows], rename), pid.iloc[rows.stop :]]
        result.map["profile_id"] = pd.concat(
            [p.astype("string") for p in parts], ignore_index=True
        ).set_axis(result.map.index)
        result.profiles["profile_id"] = _renamed(result.profiles["profile_id"], rename).astype(
            result.profiles["profile_id"].dtype
        )
    parts = [typed_registry(p) for p in (assignment.registry, rest) if len(p)]
    result.registry = typed_registry(pd.concat(parts, ignore_index=True)) if parts else rest
    extra = change_frame([dormant_row(o, n) for o, n in waiting.items() if n])
    result.changes = pd.concat([assignment.changes, extra], ignore_index=True)
    counts = dict(assignment.counts)
    n_kept = int((rest["status"] == ACTIVE).sum())
    counts["profiles"] += n_kept
    counts["kept"] += n_kept
    counts["dormant"] += len(extra)
    result.figures["id_changes"] = counts


def carry_in_place(wh, result, *, run_id: str, as_of: str, scope: dict) -> dict:
    """:func:`carry_scoped` for an incremental run that writes in place: ``result.map``,
    ``result.links`` and ``result.profiles`` hold the re-resolved records (``scope["rows"]``),
    their links and golden records only; ``scope["gone_ids"]`` are the last run's ids of the
    profiles they replace. The kept profiles are never loaded: a kept id is one of
    ``identity.profiles`` not replaced, and only the registry rows of the ids in scope are
    read. Renames the map and golden records in place, sets ``result.registry`` (the registry
    rows this run rewrites) and ``result.changes``, and returns the ids whose registry rows
    are replaced (``replaced``) and those left as they were but seen again (the others)."""
    con = wh.con
    sub = result.map.iloc[scope["rows"]]
    keys = pd.concat([sub[["source_table", "record_id"]],
                      scope["gone"].rename(columns={"source": "source_table"})[["source_table", "record_id"]]],
                     ignore_index=True).astype(str)  # fmt: skip
    previous = previous_ids_table(wh)
    con.register("_carry_keys", keys)
    con.register("_carry_gone", pd.DataFrame({"profile_id": pd.Series(sorted(scope["gone_ids"]),
                                                                      dtype=object)}))  # fmt: skip
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _carry_kept AS SELECT CAST(p.profile_id AS VARCHAR) "
            "AS profile_id FROM identity.profiles p ANTI JOIN _carry_gone g "
            "ON CAST(p.profile_id AS VARCHAR) = g.profile_id"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _carry_prev AS SELECT p.source_table, p.record_id, "
            f"p.profile_id FROM {previous} p SEMI JOIN _carry_keys k "
            "ON CAST(p.source_table AS VARCHAR) = k.source_table "
            "AND CAST(p.record_id AS VARCHAR) = k.record_id "
            "WHERE CAST(p.profile_id AS VARCHAR) NOT IN (SELECT profile_id FROM _carry_kept)"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _carry_scope AS SELECT DISTINCT "
            "CAST(profile_id AS VARCHAR) AS profile_id FROM _carry_prev"
        )
        mine = fetch_frame(
            con,
            "SELECT * EXCLUDE (_run_id, _as_of) FROM identity.registry r SEMI JOIN _carry_scope s "
            "ON CAST(r.profile_id AS VARCHAR) = s.profile_id",
        )
        taken = set(con.execute("SELECT CAST(profile_id AS VARCHAR) AS profile_id FROM identity.registry")
                    .fetchnumpy()["profile_id"].tolist())  # fmt: skip
        row = next(iter(con.execute("SELECT _run_id FROM identity.map LIMIT 1").fetchall()), None)
        assignment = assign_ids(
            sub, "_carry_prev", mine, run_id=run_id, as_of=as_of,
            links=result.links.iloc[scope["links"]], previous_run_id=str(row[0]) if row else None,
            con=con, taken=taken,
        )  # fmt: skip
        rest = (
            "FROM identity.registry r ANTI JOIN _carry_scope s "
            "ON CAST(r.profile_id AS VARCHAR) = s.profile_id WHERE r.status = "
        )
        n_kept = con.execute(f"SELECT count(*) {rest}'{ACTIVE}'").fetchall()[0][0]
        dormant = [r[0] for r in con.execute(
            f"SELECT CAST(r.profile_id AS VARCHAR) {rest}'{DORMANT}' ORDER BY 1").fetchall()]  # fmt: skip
        waiting = _records_of(con, previous, dormant)
    finally:
        con.unregister("_carry_keys")
        con.unregister("_carry_gone")
        for t in ("_carry_prev", "_carry_kept", "_carry_scope"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    rename = {k: v for k, v in assignment.ids.items() if k != v}
    if rename:
        result.map["profile_id"] = _renamed(result.map["profile_id"], rename)
        result.profiles["profile_id"] = _renamed(result.profiles["profile_id"], rename).astype(
            result.profiles["profile_id"].dtype
        )
    result.registry = typed_registry(assignment.registry)
    extra = change_frame([dormant_row(o, n) for o, n in waiting.items() if n])
    result.changes = pd.concat([assignment.changes, extra], ignore_index=True)
    counts = dict(assignment.counts)
    counts["profiles"] += int(n_kept)
    counts["kept"] += int(n_kept)
    counts["dormant"] += len(extra)
    result.figures["id_changes"] = counts
    return {"replaced": result.registry["profile_id"].astype(str).tolist(),
            "in_scope": sorted(map(str, mine["profile_id"]))}  # fmt: skip


def _renamed(ids: pd.Series, rename: dict) -> pd.Series:
    """``ids`` with those in ``rename`` replaced (the others, and NA, as they are), looked up
    as one vector (a Python call per row cost seconds over the millions of a resolved part)."""
    ids = ids.astype("string")
    new = ids.map(pd.Series(rename, dtype="string"))
    return new.where(new.notna(), ids).astype("string")


def _seen_again(registry: pd.DataFrame, *, run_id: str, as_of: str) -> pd.DataFrame:
    """Registry rows of profiles kept as they were: the active ones seen in this run."""
    out = typed_registry(registry)
    active = (out["status"] == ACTIVE).to_numpy()
    out.loc[active, "last_run_id"] = run_id
    out.loc[active, "last_seen"] = pd.Timestamp(as_of).date()
    return out


def _records_of(con, table: str, ids: list[str]) -> dict[str, int]:
    """Records per id of ``ids`` in the last run's ids ``table``."""
    if not ids:
        return {}
    con.register("_carry_dormant", pd.DataFrame({"profile_id": ids}))
    try:
        return dict(con.execute(
            f"SELECT CAST(profile_id AS VARCHAR), count(*) FROM {table} "
            "WHERE CAST(profile_id AS VARCHAR) IN (SELECT profile_id FROM _carry_dormant) GROUP BY 1"
        ).fetchall())  # fmt: skip
    finally:
        con.unregister("_carry_dormant")
