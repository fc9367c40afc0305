"""The evidence of a run's merges and splits: the link behind each change of ``identity.changes``."""

from __future__ import annotations

import pandas as pd

CHANGE_COLUMNS = ("change", "profile_id", "other_profile_id", "records", "evidence")


def _link_text(row) -> str:
    p = row.match_probability
    how = f"p={p:.3f}" if pd.notna(p) else "deterministic"
    refused = f", refused by {row.refused_by}" if isinstance(row.refused_by, str) else ""
    return (
        f"link {row.rule} ({how}{refused}) {row.left_source}:{row.left_record_id} ~ "
        f"{row.right_source}:{row.right_record_id}"
    )


def link_ends(con, register, links, new_sql: str, prev_sql: str) -> pd.DataFrame | None:
    """The links of this run that can explain a change, with each end's cluster (``lc``,
    ``rc``) and previous profile (``lo``, ``ro``; NULL for a record new in this run): accepted
    links inside a cluster between records of different earlier profiles, and links between
    two clusters whose records were one profile. In a fixed order, so the evidence chosen is
    the same run to run."""
    if links is None or not len(links):
        return None
    cols = ["left_source", "left_record_id", "right_source", "right_record_id", "rule",
            "match_probability", "accepted", "refused_by"]  # fmt: skip
    register("_ids_links", links[[c for c in cols if c in links.columns]])
    refused = "l.refused_by" if "refused_by" in links.columns else "NULL AS refused_by"
    return con.execute(
        f"""
        SELECT l.left_source, l.left_record_id, l.right_source, l.right_record_id, l.rule,
               l.match_probability, l.accepted, {refused},
               nl.cluster AS lc, nr.cluster AS rc, pl.old AS lo, pr.old AS ro
          FROM _ids_links l
          JOIN {new_sql} nl ON nl.s = CAST(l.left_source AS VARCHAR)
                           AND nl.r = CAST(l.left_record_id AS VARCHAR)
          JOIN {new_sql} nr ON nr.s = CAST(l.right_source AS VARCHAR)
                           AND nr.r = CAST(l.right_record_id AS VARCHAR)
          LEFT JOIN {prev_sql} pl ON pl.s = nl.s AND pl.r = nl.r
          LEFT JOIN {prev_sql} pr ON pr.s = nr.s AND pr.r = nr.r
         WHERE (nl.cluster = nr.cluster AND l.accepted AND pl.old IS DISTINCT FROM pr.old)
            OR (nl.cluster <> nr.cluster AND pl.old = pr.old)
         ORDER BY l.accepted DESC, 1, 2, 3, 4, 5
        """
    ).df()


def _first_by_pair(ends: pd.DataFrame, a: str, b: str) -> dict[frozenset, object]:
    """The first link per unordered pair ``{a, b}`` (accepted links first)."""
    out: dict[frozenset, object] = {}
    ordered = ends.sort_values("accepted", ascending=False, kind="stable")
    for row in ordered.itertuples():
        out.setdefault(frozenset((getattr(row, a), getattr(row, b))), row)
    return out


def describe_changes(ends, overlap, kept, ids, successor, n_parts, split_from, absent, moved):
    """One row per merge, split part, moved group of records, dormant and retired id, with the
    link behind it."""
    joined: dict[tuple, object] = {}  # (old profile, cluster): an accepted link from its records
    parted: dict[frozenset, object] = {}  # two clusters that were one profile: a link between
    if ends is not None and len(ends):
        inside = ends[(ends["lc"] == ends["rc"]) & ends["accepted"].astype(bool)]
        for end, other in (("lo", "ro"), ("ro", "lo")):
            leaving = inside[inside[end].notna() & (inside[end] != inside[other]).fillna(True)]
            for row in leaving.itertuples():
                joined.setdefault((getattr(row, end), row.lc), row)
        between = ends[ends["lc"] != ends["rc"]]
        parted = _first_by_pair(between, "lc", "rc")

    def text(link, otherwise: str) -> str:
        return _link_text(link) if link is not None else otherwise

    by_old = overlap.groupby("old")["n"].sum()
    by_pair = overlap.set_index(["cluster", "old"])["n"]
    cluster_of = {i: c for c, i in ids.items()}
    rows: list[dict] = []
    for old, into in successor.items():
        kind = "merge" if n_parts[old] == 1 else "split"
        link = joined.get((old, cluster_of[into]))
        rows.append({"change": kind, "profile_id": old, "other_profile_id": into,
                     "records": int(by_old[old]),
                     "evidence": text(link, "joined through other records in this run")})  # fmt: skip
    inverse = {o: c for c, o in kept.items()}
    for new_id, old in split_from.items():
        cluster = cluster_of[new_id]
        link = parted.get(frozenset((cluster, inverse.get(old))))
        rows.append({"change": "split", "profile_id": old, "other_profile_id": new_id,
                     "records": int(by_pair[(cluster, old)]),
                     "evidence": text(link, "its records no longer link to the rest of the profile")})  # fmt: skip
    for row in moved.itertuples():
        link = joined.get((row.old, row.cluster))
        rows.append({"change": "moved", "profile_id": row.old, "other_profile_id": row.final,
                     "records": int(row.n_moved),
                     "evidence": text(link, "now linked to the other profile's records")})  # fmt: skip
    for old, n in absent.items():
        if n:
            rows.append(dormant_row(old, n))
        else:
            rows.append({"change": "retired", "profile_id": old, "other_profile_id": None,
                         "records": 0, "evidence": "none of its records is in this run"})  # fmt: skip
    return change_frame(rows)


def dormant_row(old: str, n: int) -> dict:
    """The ``identity.changes`` row of an id whose ``n`` records are here, attached to none."""
    return {"change": "dormant", "profile_id": old, "other_profile_id": None, "records": int(n),
            "evidence": f"its {n} record(s) are in this run but attached to no profile (or "
            "dated after as_of); the id comes back with them"}  # fmt: skip


def change_frame(rows: list[dict]) -> pd.DataFrame:
    """``identity.changes`` rows (dicts of :data:`CHANGE_COLUMNS`) as a typed frame."""
    out = pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))
    return out.astype(
        {c: "string" for c in CHANGE_COLUMNS if c != "records"} | {"records": "int64"}
    )
