"""Profile ids that last across runs: ``identity.registry`` and ``identity.changes``.

Every run clusters the records afresh; a cluster's first id is a hash of its smallest record
key (:func:`cemlib.identity.resolve.profile_ids`). Downstream systems hold those ids (a CRM, a
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
  (to several; ``merged_into`` names the one holding most), and an id none of whose records
  is left (deleted at the source) is ``retired``.

``identity.registry`` holds every id ever issued: ``profile_id, status, merged_into,
split_from, first_run_id, last_run_id, first_seen, last_seen`` — so :func:`resolve_ids` turns
any id a downstream system holds into today's. ``identity.changes`` lists the run's merges,
splits and retirements with the link that caused each (or why the parts no longer link).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import pandas as pd

ACTIVE, MERGED, SPLIT, RETIRED = "active", "merged", "split", "retired"
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
CHANGE_COLUMNS = ("change", "profile_id", "other_profile_id", "records", "evidence")
_KEY = ["source_table", "record_id"]


@dataclass
class IdAssignment:
    """The run's ids: ``ids`` maps this run's cluster ids to the lasting ones."""

    ids: dict[str, str]
    registry: pd.DataFrame
    changes: pd.DataFrame
    counts: dict[str, int]


def empty_registry() -> pd.DataFrame:
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
    previous_map: pd.DataFrame | None,
    registry: pd.DataFrame | None,
    *,
    run_id: str,
    as_of: str | dt.date,
    links: pd.DataFrame | None = None,
    previous_run_id: str | None = None,
) -> IdAssignment:
    """Carry the previous run's profile ids over to this run's clusters (module docstring).

    ``new_map`` and ``previous_map`` are ``source_table, record_id, profile_id`` (NA for an
    unattached record); ``registry`` is the previous ``identity.registry`` (None on the first
    run, or when only a map of an older version exists: its ids are registered first).
    """
    as_of = pd.Timestamp(as_of).date()
    new = _attached(new_map)
    clusters = pd.unique(new["profile_id"].to_numpy(dtype=object))
    reg = _registry_from(registry, previous_map, previous_run_id, as_of)
    if previous_map is None or len(reg) == 0:
        ids = {c: c for c in clusters}
        fresh = _rows(clusters, status=ACTIVE, run_id=run_id, as_of=as_of)
        counts = {"profiles": len(clusters), "kept": 0, "new": len(clusters), "split_parts": 0,
                  "merged": 0, "split": 0, "retired": 0}  # fmt: skip
        return IdAssignment(ids, typed_registry(fresh), _changes([]), counts)

    prev = _attached(previous_map).rename(columns={"profile_id": "old"})
    both = new.merge(prev, on=_KEY, how="inner").rename(columns={"profile_id": "cluster"})
    overlap = both.groupby(["cluster", "old"], observed=True).size().rename("n").reset_index()
    first = reg.set_index("profile_id")["first_seen"]
    overlap["first_seen"] = overlap["old"].map(first)
    overlap = overlap.sort_values(
        ["n", "first_seen", "old", "cluster"], ascending=[False, True, True, True], kind="stable"
    )
    kept = _greedy_overlap(overlap)

    taken = set(reg["profile_id"].astype(str))
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

    # old ids no cluster kept: where did their records go?
    used = set(kept.values())
    lost = overlap[~overlap["old"].isin(used)]
    successor = lost.drop_duplicates("old").set_index("old")["cluster"].map(ids)
    n_parts = lost.groupby("old").size()
    present_old = set(overlap["old"])
    active_before = reg.loc[reg["status"] == ACTIVE, "profile_id"]
    retired = sorted(set(active_before) - present_old)
    # a retired profile's records may still be here, attached to no profile (anonymous now)
    gone = prev[prev["old"].isin(retired)]
    still = gone.merge(new_map[_KEY].astype("string"), on=_KEY, how="inner")
    unattached = still.groupby("old").size().to_dict()

    reg = reg.set_index("profile_id")
    for old, into in successor.items():
        reg.loc[old, ["status", "merged_into"]] = [MERGED if n_parts[old] == 1 else SPLIT, into]
    for old in retired:
        reg.loc[old, "status"] = RETIRED
    kept_ids = list(kept.values())
    reg.loc[kept_ids, "status"] = ACTIVE
    reg.loc[kept_ids, "last_run_id"] = run_id
    reg.loc[kept_ids, "last_seen"] = as_of
    new_ids = [ids[c] for c in clusters if c not in kept]
    fresh = _rows(new_ids, status=ACTIVE, run_id=run_id, as_of=as_of)
    fresh["split_from"] = [split_from.get(i) for i in fresh["profile_id"]]
    parts = [typed_registry(reg.reset_index()), typed_registry(fresh)]
    registry_out = typed_registry(pd.concat([p for p in parts if len(p)], ignore_index=True))

    changes = _describe(new, prev, overlap, kept, ids, successor, n_parts, split_from,
                        {o: unattached.get(o, 0) for o in retired}, links)  # fmt: skip
    merged = {o for o in successor.index if n_parts[o] == 1}
    split = set(split_from.values()) | {o for o in successor.index if n_parts[o] > 1}
    counts = {
        "profiles": len(clusters),
        "kept": len(kept),
        "new": len(new_ids) - len(split_from),
        "split_parts": len(split_from),
        "merged": len(merged),
        "split": len(split),
        "retired": len(retired),
    }
    return IdAssignment(ids, registry_out, changes, counts)


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
    previous_map: pd.DataFrame | None,
    previous_run_id: str | None,
    as_of: dt.date,
) -> pd.DataFrame:
    """The previous registry, or one made from a previous map written before registries."""
    if registry is not None and len(registry):
        return typed_registry(registry)
    if previous_map is None:
        return empty_registry()
    ids = pd.unique(_attached(previous_map)["profile_id"].to_numpy(dtype=object))
    return _rows(ids, status=ACTIVE, run_id=previous_run_id or "earlier", as_of=as_of)


def _changes(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))
    return out.astype(
        {c: "string" for c in CHANGE_COLUMNS if c != "records"} | {"records": "int64"}
    )


def _link_text(row) -> str:
    p = row.match_probability
    how = f"p={p:.3f}" if pd.notna(p) else "deterministic"
    refused = f", refused by {row.refused_by}" if isinstance(row.refused_by, str) else ""
    return (
        f"link {row.rule} ({how}{refused}) {row.left_source}:{row.left_record_id} ~ "
        f"{row.right_source}:{row.right_record_id}"
    )


def _link_ends(
    links: pd.DataFrame | None, new: pd.DataFrame, prev: pd.DataFrame
) -> pd.DataFrame | None:
    """The links of this run with each end's cluster (``lc``, ``rc``) and its previous
    profile (``lo``, ``ro``; NA for a record new in this run)."""
    if links is None or not len(links):
        return None
    cols = ("left_source", "left_record_id", "right_source", "right_record_id")
    out = links.astype({c: "string" for c in cols})
    for end, a, b in (("l", cols[0], cols[1]), ("r", cols[2], cols[3])):
        out = out.merge(
            new.rename(columns={"source_table": a, "record_id": b, "profile_id": f"{end}c"}),
            on=[a, b], how="inner",
        ).merge(
            prev.rename(columns={"source_table": a, "record_id": b, "old": f"{end}o"}),
            on=[a, b], how="left",
        )  # fmt: skip
    return out


def _first_by_pair(ends: pd.DataFrame, a: str, b: str) -> dict[frozenset, object]:
    """The first link per unordered pair ``{a, b}`` (accepted links first)."""
    out: dict[frozenset, object] = {}
    ordered = ends.sort_values("accepted", ascending=False, kind="stable")
    for row in ordered.itertuples():
        out.setdefault(frozenset((getattr(row, a), getattr(row, b))), row)
    return out


def _describe(new, prev, overlap, kept, ids, successor, n_parts, split_from, retired, links):
    """One row per merge, split part and retirement, with the link behind it."""
    ends = _link_ends(links, new, prev)
    joined: dict[object, object] = {}  # old profile -> an accepted link from it into its cluster
    parted: dict[frozenset, object] = {}  # two clusters that were one profile: a link between
    if ends is not None and len(ends):
        inside = ends[(ends["lc"] == ends["rc"]) & ends["accepted"].astype(bool)]
        for end, other in (("lo", "ro"), ("ro", "lo")):
            leaving = inside[inside[end].notna() & (inside[end] != inside[other]).fillna(True)]
            for row in leaving.itertuples():
                joined.setdefault(getattr(row, end), row)
        between = ends[ends["lc"] != ends["rc"]]
        parted = _first_by_pair(between.sort_values("accepted", kind="stable"), "lc", "rc")

    by_old = overlap.groupby("old")["n"].sum()
    by_pair = overlap.set_index(["cluster", "old"])["n"]
    cluster_of = {i: c for c, i in ids.items()}
    rows: list[dict] = []
    for old, into in successor.items():
        kind = "merge" if n_parts[old] == 1 else "split"
        link = joined.get(old)
        rows.append({"change": kind, "profile_id": old, "other_profile_id": into,
                     "records": int(by_old[old]),
                     "evidence": _link_text(link) if link is not None
                     else "joined through other records in this run"})  # fmt: skip
    inverse = {o: c for c, o in kept.items()}
    for new_id, old in split_from.items():
        cluster = cluster_of[new_id]
        link = parted.get(frozenset((cluster, inverse.get(old))))
        rows.append({"change": "split", "profile_id": old, "other_profile_id": new_id,
                     "records": int(by_pair[(cluster, old)]),
                     "evidence": _link_text(link) if link is not None
                     else "its records no longer link to the rest of the profile"})  # fmt: skip
    for old, n in retired.items():
        why = (
            f"its {n} record(s) are in this run but attached to no profile"
            if n
            else "none of its records is in this run"
        )
        rows.append({"change": "retired", "profile_id": old, "other_profile_id": None,
                     "records": n, "evidence": why})  # fmt: skip
    return _changes(rows)


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


def resolve_id(wh, old_id: str) -> str | None:
    """Today's profile id for ``old_id`` from the warehouse's ``identity.registry``."""
    if not wh.has_table("identity", "registry"):
        raise KeyError(f"warehouse {wh.path}: no identity.registry (run the profiles stage)")
    registry = wh.sql("SELECT profile_id, merged_into FROM identity.registry")
    value = resolve_ids(registry, [old_id]).iloc[0]
    return None if pd.isna(value) else str(value)
