"""Profile ids that last across runs: ``identity.registry`` and ``identity.changes``.

Every run clusters the records afresh; a cluster's first id is a hash of its smallest record
key (:func:`cemlib.identity.profile_ids.profile_ids`). Downstream systems hold those ids (a CRM, a
mailing tool, last month's churn list), so a run carries the previous run's ids over instead
of issuing new ones:

* the new clusters are matched to the previous run's profiles by the records they share,
  greedily by the largest overlap (ties: the older profile, then the smaller id);
* an unchanged profile keeps its id; when profiles **merge**, the cluster keeps the id of the
  one it shares most records with (ties: the older) and the others are marked ``merged`` into
  it; when a profile **splits**, the part holding most of its records keeps the id and every
  other part gets a new id with ``split_from``; a cluster sharing no record with the previous
  run is a new person with a new id;
* an old id that no cluster kept is ``merged`` (its records went to one profile) or ``split``
  (to several; ``merged_into`` names the one holding most); an id whose records are all
  still here but attached to no profile (or dated after ``as_of``) is ``dormant`` and comes
  back with them; an id none of whose records is left (deleted at the source) is ``retired``;
* "most records" counts the records of :data:`PRIMARY_SOURCES` (the CRM, whose ids other
  systems hold) first, then all records;
* the previous side of the matching is ``identity.record_ids``: the last id of every record
  of the run, kept for records attached to no profile, so a record that drops out and comes
  back (a backfill with an earlier ``as_of``) gets its id back.

``identity.registry`` holds every id ever issued: ``profile_id, status, merged_into,
split_from, first_run_id, last_run_id, first_seen, last_seen`` — so :func:`resolve_ids` turns
any id a downstream system holds into today's. ``identity.changes`` lists the run's merges,
splits, records moved between two lasting profiles, dormant and retired ids, with the link
that caused each (or why the parts no longer link).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cemlib.identity.changes import change_frame, describe_changes, link_ends

ACTIVE, MERGED, SPLIT, DORMANT, RETIRED = "active", "merged", "split", "dormant", "retired"
#: sources whose record ids downstream systems hold (a CRM): when profiles merge or split, the
#: id goes with the most records of these first, then with the most records of any source
PRIMARY_SOURCES: tuple[str, ...] = ("crm_contacts",)
REGISTRY_COLUMNS = (
    "profile_id",
    "status",
    "merged_into",
    "split_from",
    "first_run_id",
    "last_run_id",
    "first_seen",
    "last_seen",
)
_KEY = ["source_table", "record_id"]


@dataclass
class IdAssignment:
    """The run's ids: ``ids`` maps this run's cluster ids to the lasting ones."""

    ids: dict[str, str]
    registry: pd.DataFrame
    changes: pd.DataFrame
    counts: dict[str, int]


def empty_registry() -> pd.DataFrame:
    """A registry without any id, with the columns and types of ``identity.registry``."""
    return typed_registry(pd.DataFrame({c: pd.Series(dtype=object) for c in REGISTRY_COLUMNS}))


def typed_registry(frame: pd.DataFrame) -> pd.DataFrame:
    """The registry's columns in order, text as ``string`` and the two dates as dates (so a
    column of nothing but NULLs is still text in the warehouse)."""
    out = frame[list(REGISTRY_COLUMNS)].copy()
    for c in REGISTRY_COLUMNS:
        if c in ("first_seen", "last_seen"):
            out[c] = pd.Series(pd.to_datetime(out[c]).dt.date, dtype=object)
        else:
            out[c] = out[c].astype("string")
    return out.reset_index(drop=True)


def _attached(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.loc[frame["profile_id"].notna(), [*_KEY, "profile_id"]]
    return out.astype({c: "string" for c in out.columns})


def _fresh_id(cluster_id: str, taken: set[str], run_id: str) -> str:
    """The cluster's own id unless an id ever issued already holds it (a retired or merged
    profile whose smallest record is this cluster's): then a hash salted with the run id."""
    candidate, n = cluster_id, 0
    while candidate in taken:
        n += 1
        digest = hashlib.blake2b(f"{cluster_id}|{run_id}|{n}".encode(), digest_size=6)
        candidate = "P" + digest.hexdigest()
    return candidate


def _greedy_overlap(counts: pd.DataFrame) -> dict[str, str]:
    """cluster -> old id, each used once, largest overlap first (rows pre-sorted)."""
    kept: dict[str, str] = {}
    used: set[str] = set()
    for cluster, old in zip(counts["cluster"].to_numpy(), counts["old"].to_numpy(), strict=True):
        if cluster not in kept and old not in used:
            kept[cluster] = old
            used.add(old)
    return kept


def assign_ids(
    new_map: pd.DataFrame,
    previous_map: pd.DataFrame | str | None,
    registry: pd.DataFrame | None,
    *,
    run_id: str,
    as_of: str | dt.date,
    links: pd.DataFrame | None = None,
    previous_run_id: str | None = None,
    con=None,
    taken: set[str] | None = None,
) -> IdAssignment:
    """Carry the previous run's profile ids over to this run's clusters (module docstring).

    ``new_map`` and ``previous_map`` are ``source_table, record_id, profile_id`` (NA for an
    unattached record); ``previous_map`` may also name a table of the DuckDB connection
    ``con`` (the stage passes ``"identity.map"`` of the warehouse, so the previous run's
    records are joined in DuckDB, not loaded). ``registry`` is the previous
    ``identity.registry`` (None on the first run, or when only a map of an older version
    exists: its ids are registered first). ``taken``: ids issued besides the registry's (a
    fresh id is none of them).
    """
    import duckdb

    as_of = pd.Timestamp(as_of).date()
    own = con is None
    con = duckdb.connect() if own else con
    registered: list[str] = []

    def register(name: str, frame: pd.DataFrame) -> str:
        con.register(name, frame)
        registered.append(name)
        return name

    try:
        register("_ids_new_all", new_map[[*_KEY, "profile_id"]])
        if isinstance(previous_map, pd.DataFrame):
            prev_table = register("_ids_prev_all", previous_map[[*_KEY, "profile_id"]])
        else:
            prev_table = previous_map
        return _assign(con, register, prev_table, registry, run_id=run_id, as_of=as_of,
                       links=links, previous_run_id=previous_run_id, taken=taken or set())  # fmt: skip
    finally:
        for name in registered:
            con.unregister(name)
        if own:
            con.close()


def _sql_map(table: str, name: str, *, attached: bool = True) -> str:
    where = " WHERE profile_id IS NOT NULL" if attached else ""
    return (
        f"(SELECT CAST(source_table AS VARCHAR) AS s, CAST(record_id AS VARCHAR) AS r, "
        f"CAST(profile_id AS VARCHAR) AS {name} FROM {table}{where})"
    )


def _assign(con, register, prev_table, registry, *, run_id, as_of, links, previous_run_id, taken):
    new_sql = _sql_map("_ids_new_all", "cluster")
    clusters = [
        r[0] for r in con.execute(f"SELECT DISTINCT cluster FROM {new_sql} ORDER BY cluster").fetchall()
    ]  # fmt: skip
    prev_ids = None
    if prev_table is not None and (registry is None or not len(registry)):
        prev_ids = [r[0] for r in con.execute(
            f"SELECT DISTINCT old FROM {_sql_map(prev_table, 'old')} ORDER BY old").fetchall()]  # fmt: skip
    reg = _registry_from(registry, prev_ids, previous_run_id, as_of)
    if prev_table is None or len(reg) == 0:
        ids = {c: _fresh_id(c, taken, run_id) for c in clusters}
        fresh = _rows(ids.values(), status=ACTIVE, run_id=run_id, as_of=as_of)
        counts = {"profiles": len(clusters), "kept": 0, "new": len(clusters), "split_parts": 0,
                  "merged": 0, "split": 0, "records_moved": 0, "dormant": 0,
                  "retired": 0}  # fmt: skip
        return IdAssignment(ids, typed_registry(fresh), change_frame([]), counts)

    prev_sql = _sql_map(prev_table, "old")
    primary = ", ".join("'" + x.replace("'", "''") + "'" for x in PRIMARY_SOURCES) or "NULL"
    overlap = con.execute(
        f"SELECT n.cluster, p.old, count(*) AS n, count(*) FILTER (WHERE s IN ({primary})) "
        f"AS n_primary FROM {new_sql} n JOIN {prev_sql} p USING (s, r) GROUP BY ALL"
    ).df()
    first = reg.set_index("profile_id")["first_seen"]
    overlap["first_seen"] = overlap["old"].map(first)
    overlap = overlap.sort_values(
        ["n_primary", "n", "first_seen", "old", "cluster"],
        ascending=[False, False, True, True, True],
        kind="stable",
    )
    kept = _greedy_overlap(overlap)

    ids, split_from = _name_clusters(clusters, kept, overlap, reg, run_id, taken)
    # old ids no cluster kept: where did their records go?
    used = set(kept.values())
    lost = overlap[~overlap["old"].isin(used)]
    successor = lost.drop_duplicates("old").set_index("old")["cluster"].map(ids)
    n_parts = lost.groupby("old").size()
    absent, unattached = _absent_ids(con, register, prev_sql, overlap, reg)
    dormant = [o for o in absent if unattached.get(o)]
    retired = [o for o in absent if not unattached.get(o)]
    new_ids = [ids[c] for c in clusters if c not in kept]
    registry_out = _next_registry(reg, successor, n_parts, retired, dormant, kept, new_ids,
                                  split_from, run_id=run_id, as_of=as_of)  # fmt: skip

    ends = link_ends(con, register, links, new_sql, prev_sql)
    moved = _moved_records(con, register, ids, new_sql, prev_sql, kept, split_from)
    absent_n = {o: int(unattached.get(o, 0)) for o in absent}
    changes = describe_changes(ends, overlap, kept, ids, successor, n_parts, split_from, absent_n,
                        moved)  # fmt: skip
    merged = {o for o in successor.index if n_parts[o] == 1}
    split = set(split_from.values()) | {o for o in successor.index if n_parts[o] > 1}
    counts = {
        "profiles": len(clusters),
        "kept": len(kept),
        "new": len(new_ids) - len(split_from),
        "split_parts": len(split_from),
        "merged": len(merged),
        "split": len(split),
        "records_moved": int(moved["n_moved"].sum()),
        "dormant": len(dormant),
        "retired": len(retired),
    }
    return IdAssignment(ids, registry_out, changes, counts)


def _name_clusters(clusters, kept, overlap, reg, run_id, taken) -> tuple[dict, dict]:
    """The id of each new cluster (the old id it kept, else a fresh one) and, for a fresh id
    that is a part of an old profile whose id another part kept, that old id."""
    taken = set(reg["profile_id"].astype(str)) | set(taken)
    ids: dict[str, str] = {}
    split_from: dict[str, str] = {}
    best_old = overlap.drop_duplicates("cluster").set_index("cluster")["old"]
    for c in clusters:
        if c in kept:
            ids[c] = kept[c]
            continue
        ids[c] = _fresh_id(c, taken, run_id)
        taken.add(ids[c])
        if c in best_old.index:  # a part of an old profile whose id another part kept
            split_from[ids[c]] = best_old[c]
    return ids, split_from


def _absent_ids(con, register, prev_sql, overlap, reg) -> tuple[list, dict]:
    """Live old ids none of whose records is in a new cluster, and how many of their records
    are still here, attached to no profile (or after as_of)."""
    present_old = set(overlap["old"])
    live_before = reg.loc[reg["status"].isin([ACTIVE, DORMANT]), "profile_id"]
    absent = sorted(set(live_before) - present_old)
    unattached: dict[str, int] = {}
    if absent:  # its records may still be here, attached to no profile (or after as_of)
        register("_ids_absent", pd.DataFrame({"old": pd.Series(absent, dtype=object)}))
        unattached = dict(con.execute(
            f"SELECT p.old, count(*) FROM {prev_sql} p JOIN _ids_absent USING (old) "
            f"JOIN {_sql_map('_ids_new_all', 'cluster', attached=False)} n USING (s, r) "
            "GROUP BY 1"
        ).fetchall())  # fmt: skip
    return absent, unattached


def _next_registry(
    reg, successor, n_parts, retired, dormant, kept, new_ids, split_from, *, run_id, as_of
) -> pd.DataFrame:
    """The registry after this run: old ids merged, split, retired, dormant or kept active,
    and a row per fresh id."""
    reg = reg.set_index("profile_id")
    # set as vectors (a .loc assignment per id cost seconds over a month's merges at scale);
    # an id the registry lacks gets a row, as a .loc assignment of one label would give it
    missing = pd.Index([*successor.index, *retired, *dormant]).unique().difference(reg.index)
    if len(missing):
        reg = reg.reindex(reg.index.append(missing))
    if len(successor):
        olds = list(successor.index)
        single = n_parts.reindex(olds).to_numpy() == 1
        reg.loc[olds, "status"] = np.where(single, MERGED, SPLIT)
        reg.loc[olds, "merged_into"] = successor.to_numpy(dtype=object)
    if retired:
        reg.loc[list(retired), "status"] = RETIRED
    if dormant:
        reg.loc[list(dormant), "status"] = DORMANT
    kept_ids = list(kept.values())
    reg.loc[kept_ids, "status"] = ACTIVE
    reg.loc[kept_ids, "last_run_id"] = run_id
    reg.loc[kept_ids, "last_seen"] = as_of
    fresh = _rows(new_ids, status=ACTIVE, run_id=run_id, as_of=as_of)
    fresh["split_from"] = [split_from.get(i) for i in fresh["profile_id"]]
    parts = [typed_registry(reg.reset_index()), typed_registry(fresh)]
    return typed_registry(pd.concat([p for p in parts if len(p)], ignore_index=True))


def _moved_records(con, register, ids, new_sql, prev_sql, kept, split_from) -> pd.DataFrame:
    """Records that moved from a surviving old profile to another final one (a split part's
    records excepted): old id, final id, cluster, how many."""
    register("_ids_final", pd.DataFrame({"cluster": pd.Series(list(ids), dtype=object),
                                         "final": pd.Series(list(ids.values()), dtype=object)}))  # fmt: skip
    moved = con.execute(
        f"SELECT p.old, f.final, f.cluster, count(*) AS n_moved FROM {new_sql} nw "
        f"JOIN {prev_sql} p USING (s, r) JOIN _ids_final f ON f.cluster = nw.cluster "
        "WHERE p.old <> f.final GROUP BY ALL ORDER BY 1, 2"
    ).df()
    still = set(kept.values())
    moved = moved[moved["old"].isin(still)]
    not_split = [split_from.get(f) != o for o, f in zip(moved["old"], moved["final"], strict=True)]
    return moved.loc[pd.Series(not_split, index=moved.index, dtype=bool)]


def _rows(ids, *, status: str, run_id: str, as_of: dt.date) -> pd.DataFrame:
    ids = list(ids)
    return pd.DataFrame(
        {
            "profile_id": pd.Series(ids, dtype=object),
            "status": status,
            "merged_into": pd.Series([None] * len(ids), dtype=object),
            "split_from": pd.Series([None] * len(ids), dtype=object),
            "first_run_id": run_id,
            "last_run_id": run_id,
            "first_seen": as_of,
            "last_seen": as_of,
        }
    )


def _registry_from(
    registry: pd.DataFrame | None,
    previous_ids: list[str] | None,
    previous_run_id: str | None,
    as_of: dt.date,
) -> pd.DataFrame:
    """The previous registry, or one made from the ids of a previous map written before
    registries existed."""
    if registry is not None and len(registry):
        return typed_registry(registry)
    if not previous_ids:
        return empty_registry()
    return _rows(previous_ids, status=ACTIVE, run_id=previous_run_id or "earlier", as_of=as_of)


def resolve_ids(registry: pd.DataFrame, ids) -> pd.Series:
    """Today's id of each of ``ids`` (following ``merged_into``); NA for an id never issued.

    A retired id resolves to itself (its records are gone; it is not reissued)."""
    into = dict(zip(registry["profile_id"].astype(str), registry["merged_into"], strict=True))
    out = []
    for pid in ids:
        pid = str(pid)
        if pid not in into:
            out.append(pd.NA)
            continue
        seen = {pid}
        while isinstance(into.get(pid), str) and into[pid] not in seen:
            pid = into[pid]
            seen.add(pid)
        out.append(pid)
    return pd.Series(out, index=list(map(str, ids)), dtype="string")


def split_parts(registry: pd.DataFrame, ids) -> dict[str, list[str]]:
    """For each of ``ids``, today's ids of the parts split off it (``split_from``), in any run
    since, each followed through ``merged_into``; parts that have since joined the id's own
    profile again are left out. An id nothing was split off has an empty list.

    A downstream system holding an id whose profile split keeps the larger part under that id;
    the records of the other parts now live under these ids (trial 12: a CRM card's phone
    changed, the old tickets on the old phone went to a new id)."""
    frm = registry["split_from"].astype("string")
    has = frm.notna()
    children: dict[str, list[str]] = {}
    for child, parent in zip(registry.loc[has, "profile_id"].astype(str), frm[has], strict=True):
        children.setdefault(str(parent), []).append(child)
    ids = list(map(str, ids))
    found: dict[str, set[str]] = {}
    for pid in ids:
        found[pid], todo = set(), [pid]
        while todo:  # a part may itself have split since: follow every generation
            for child in children.get(todo.pop(), []):
                if child not in found[pid] and child != pid:
                    found[pid].add(child)
                    todo.append(child)
    every = sorted(set(ids).union(*found.values()))
    now = resolve_ids(registry, every)  # one pass: the registry may hold millions of ids
    out: dict[str, list[str]] = {}
    for pid in ids:
        own = now[pid]
        out[pid] = sorted(
            {str(now[c]) for c in found[pid] if not pd.isna(now[c]) and now[c] != own}
        )
    return out


def resolve_id(wh, old_id: str) -> str | None:
    """Today's profile id for ``old_id`` from the warehouse's ``identity.registry``."""
    if not wh.has_table("identity", "registry"):
        raise KeyError(f"warehouse {wh.path}: no identity.registry (run the profiles stage)")
    registry = wh.sql("SELECT profile_id, merged_into FROM identity.registry")
    value = resolve_ids(registry, [old_id]).iloc[0]
    return None if pd.isna(value) else str(value)
