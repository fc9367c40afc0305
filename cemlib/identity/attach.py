"""New records that join one existing profile directly, without resolving it again.

Most of a month's new records are receipts, orders, sessions and tickets of known customers:
nameless records whose card, phone, e-mail or device the warehouse already holds on one
profile. Resolving such a record with its profile again changes nothing but the record's
own profile, so an incremental run attaches it directly when a full run could not decide
otherwise:

* the record has no name and no birth date (the model scores named records only, and the
  hub guard counts names and dates);
* every identifier it carries is held, among the earlier records, only by attached records
  of one profile ``P`` (or only by new records of the same group, see below), none of its
  values is guarded (shared, hub, contested) and none would pass the hub guard's record
  count with the new records;
* each pair of its identifiers that the contested-identifier rule compares (phone and
  device, phone and e-mail, device and e-mail) is already seen together on an earlier
  record, so no identifier becomes contested;
* ``P`` shows no household evidence: no refused link (chain guard or constraint) touches
  it, none of its named records carries a shared or hub identifier, and every record of its
  cluster is attached (no held-back or ambiguous member);
* ``P`` is not resolved again by this run anyway (touched by another new record or by a
  deletion): then the record is resolved with it.

New records sharing an identifier with each other form a group; the group joins ``P`` as a
whole or not at all. Everything is decided in DuckDB on ``identity.prepared``,
``identity.map``, ``identity.links`` and ``identity.guarded``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cemlib.frames import fetch_frame
from cemlib.identity.roles import as_string
from cemlib.identity.rules import CONTEXTS, IDENTIFIER_COLUMNS, HubGuard

#: the temporary table of the earlier records holding a new record's identifier (``kind, col,
#: value, source, record_id``, their ``ctx_*`` context columns and ``profile_id``), left for
#: :func:`cemlib.identity.touched.touched_records`; the caller drops it
HOLDERS = "_inc_holders"
#: columns a directly attached record must leave empty (the model's and the hub guard's)
NAME_FIELDS: tuple[str, ...] = ("first_lat", "last_lat", "birth_date")


def _long(new: pd.DataFrame) -> pd.DataFrame:
    """``i, kind, col, value``: every identifier value of the ``new`` records (row ``i``)."""
    parts = []
    for kind, cols in IDENTIFIER_COLUMNS.items():
        for c in cols:
            if c not in new:
                continue
            v = as_string(new[c])
            has = v.notna().to_numpy()
            parts.append(pd.DataFrame({"i": np.flatnonzero(has), "kind": kind, "col": c,
                                       "value": v[has].to_numpy(dtype=object)}))  # fmt: skip
    if not parts:
        return pd.DataFrame({"i": [], "kind": [], "col": [], "value": []})
    return pd.concat(parts, ignore_index=True)


def _pairs(new: pd.DataFrame) -> list[tuple[str, str]]:
    """Column pairs the contested-identifier rule compares (identifier column, context)."""
    out = []
    for (kind, ctx), _strict in CONTEXTS.items():
        for c in IDENTIFIER_COLUMNS[kind]:
            if c in new and ctx in new:
                out.append((c, ctx))
    return out


def _groups(n: int, long: pd.DataFrame) -> np.ndarray:
    """Group of each new record: connected through identifier values they share."""
    if not len(long):
        return np.arange(n)
    vcode = pd.factorize(long["kind"].astype(str) + "\x1f" + long["value"].astype(str))[0]
    rows = long["i"].to_numpy(dtype=np.int64)
    g = coo_matrix((np.ones(len(rows)), (rows, n + vcode)), shape=(n + vcode.max() + 1,) * 2)
    return connected_components(g, directed=False)[1][:n]


def direct_attachments(wh, new: pd.DataFrame, guard: HubGuard | None) -> pd.DataFrame:
    """The ``new`` records (prepared, up to ``as_of``) that may join one earlier profile
    directly: ``i`` (row of ``new``), ``profile_id``, and the evidence link's other end
    (``holder_source, holder_record_id``, ``rule``: the identifier kind). Whether the
    profile is resolved again anyway is decided later (:func:`drop_resolved`)."""
    guard = guard or HubGuard()
    con = wh.con
    n = len(new)
    long = _long(new)
    empty = pd.DataFrame({"i": pd.Series(dtype="int64"), "profile_id": pd.Series(dtype="string"),
                          "holder_source": pd.Series(dtype="string"),
                          "holder_record_id": pd.Series(dtype="string"),
                          "rule": pd.Series(dtype="string")})  # fmt: skip
    if not len(long):
        return empty
    nameless = np.ones(n, dtype=bool)
    for c in NAME_FIELDS:
        if c in new:
            nameless &= new[c].isna().to_numpy()
    group = _groups(n, long)
    bad = ~nameless
    values = long[["kind", "value"]].drop_duplicates().reset_index(drop=True)
    new_count = long.groupby(["kind", "value"], sort=False).size().rename("n_new").reset_index()
    con.register("_att_values", values)
    try:
        ctx_cols = sorted({ctx for (_k, ctx) in CONTEXTS})
        holders = " UNION ALL ".join(
            f"SELECT '{kind}' AS kind, '{c}' AS col, p.\"{c}\" AS value, p.source, p.record_id, "
            + ", ".join(f'p."{x}" AS "ctx_{x}"' for x in ctx_cols)
            + f" FROM identity.prepared p SEMI JOIN (SELECT value FROM _att_values "
            f"WHERE kind = '{kind}') v ON p.\"{c}\" = v.value"
            for kind, cols in IDENTIFIER_COLUMNS.items()
            for c in cols
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {HOLDERS} AS SELECT h.*, "
            "CAST(m.profile_id AS VARCHAR) AS profile_id FROM (" + holders + ") h "
            "LEFT JOIN identity.map m ON m.source_table = h.source AND m.record_id = h.record_id"
        )
        stats = fetch_frame(
            con,
            "SELECT h.kind, h.value, count(*) AS n_old, count(DISTINCT h.profile_id) AS n_prof, "
            "count(*) - count(h.profile_id) AS n_unattached, min(h.profile_id) AS profile_id, "
            "min(h.source || chr(31) || h.record_id) AS holder, "
            f"bool_or(g.value IS NOT NULL) AS guarded FROM {HOLDERS} h "
            "LEFT JOIN (SELECT kind, CAST(value AS VARCHAR) AS value FROM identity.guarded) g "
            "ON g.kind = h.kind AND g.value = h.value GROUP BY h.kind, h.value",
        )
        guarded_new = fetch_frame(
            con,
            "SELECT v.kind, v.value FROM _att_values v SEMI JOIN (SELECT kind, CAST(value AS "
            "VARCHAR) AS value FROM identity.guarded) g ON g.kind = v.kind AND g.value = v.value",
        )
        pair_ok = _pairs_seen(con, new)
    finally:
        con.unregister("_att_values")
    # per value: the earlier profile it leads to, or a reason it cannot attach
    st = values.merge(stats, on=["kind", "value"], how="left").merge(
        new_count, on=["kind", "value"]
    )
    st["n_old"] = st["n_old"].fillna(0).astype(np.int64)
    g_keys = set(zip(guarded_new["kind"].astype(str), guarded_new["value"].astype(str),
                     strict=True))  # fmt: skip
    flagged = np.array([(k, v) in g_keys for k, v in zip(st["kind"], st["value"], strict=True)],
                       dtype=bool)  # fmt: skip
    value_bad = (
        flagged
        | (st["n_prof"].fillna(0).to_numpy() > 1)
        | (st["n_unattached"].fillna(0).to_numpy() > 0)
        | ((st["n_old"] + st["n_new"]).to_numpy() > guard.hub_records)
    )
    st["bad"] = value_bad
    lv = long.merge(st[["kind", "value", "bad", "profile_id", "holder"]], on=["kind", "value"])
    rec_bad = np.zeros(n, dtype=bool)
    np.logical_or.at(rec_bad, lv["i"].to_numpy(dtype=np.int64), lv["bad"].to_numpy(dtype=bool))
    bad |= rec_bad | ~pair_ok
    # one profile per group, every record of the group fit
    known = lv[lv["profile_id"].notna()]
    per_group = pd.DataFrame({"g": group[known["i"].to_numpy(dtype=np.int64)],
                              "p": known["profile_id"].astype(str).to_numpy()})  # fmt: skip
    n_prof = per_group.groupby("g")["p"].nunique()
    g_bad = np.zeros(group.max() + 1, dtype=bool)
    np.logical_or.at(g_bad, group, bad)
    one = np.zeros(group.max() + 1, dtype=bool)
    one[n_prof.index[n_prof.to_numpy() == 1].to_numpy()] = True
    ok_group = one & ~g_bad
    target = per_group.drop_duplicates("g").set_index("g")["p"]
    ok = ok_group[group]
    reasons = {
        "named": int((~nameless).sum()),
        "value_guarded": _count_at(n, lv, flagged, st),
        "value_on_several_profiles": _count_at(n, lv, st["n_prof"].fillna(0).to_numpy() > 1, st),
        "value_on_unattached": _count_at(n, lv, st["n_unattached"].fillna(0).to_numpy() > 0, st),
        "pair_unseen": int((~pair_ok).sum()),
        "group_without_earlier_profile": int((~one[group]).sum()),
        "group_unfit": int((one[group] & g_bad[group]).sum()),
    }
    if not ok.any():
        empty.attrs["reasons"] = reasons
        return empty
    idx = np.flatnonzero(ok)
    pid = target.reindex(group[idx]).to_numpy(dtype=object)
    quiet = _quiet(con, sorted(set(pid)))
    keep = pd.Series(pid, dtype=object).isin(quiet).to_numpy()
    idx, pid = idx[keep], pid[keep]
    # the evidence: the first earlier holder of the record's first identifier held earlier
    ev = known[known["i"].isin(idx)].drop_duplicates("i").set_index("i")
    holder = ev["holder"].reindex(idx).astype(str).str.split("\x1f", n=1, expand=True)
    reasons["profile_not_quiet"] = int((~keep).sum())
    out = pd.DataFrame({
        "i": idx.astype(np.int64),
        "profile_id": pd.array(pid, dtype="string"),
        "holder_source": pd.array(holder[0].to_numpy(dtype=object), dtype="string"),
        "holder_record_id": pd.array(holder[1].to_numpy(dtype=object), dtype="string"),
        "rule": pd.array(ev["kind"].reindex(idx).to_numpy(dtype=object), dtype="string"),
    })  # fmt: skip
    out.attrs["reasons"] = reasons
    return out


def _count_at(n: int, lv: pd.DataFrame, mask: np.ndarray, st: pd.DataFrame | None = None) -> int:
    """New records carrying a value of ``mask`` (per row of ``st``, the value table)."""
    hit = np.zeros(n, dtype=bool)
    keys = st.loc[mask, ["kind", "value"]] if st is not None else mask
    rows = lv.merge(keys, on=["kind", "value"])["i"].to_numpy(dtype=np.int64)
    hit[rows] = True
    return int(hit.sum())


def _pairs_seen(con, new: pd.DataFrame) -> np.ndarray:
    """Per new record: every (identifier, context) pair it carries is seen on an earlier
    record (so no identifier becomes contested by it); looked up among the holders."""
    ok = np.ones(len(new), dtype=bool)
    for c, ctx in _pairs(new):
        a, b = as_string(new[c]), as_string(new[ctx])
        has = (a.notna() & b.notna()).to_numpy()
        if not has.any():
            continue
        frame = pd.DataFrame({"i": np.flatnonzero(has), "a": a[has].to_numpy(dtype=object),
                              "b": b[has].to_numpy(dtype=object)})  # fmt: skip
        con.register("_att_pairs", frame)
        try:
            seen = fetch_frame(
                con,
                f"SELECT f.i FROM _att_pairs f SEMI JOIN {HOLDERS} h ON h.col = '{c}' "
                f'AND h.value = f.a AND h."ctx_{ctx}" = f.b',
            )
        finally:
            con.unregister("_att_pairs")
        miss = np.ones(len(new), dtype=bool)
        miss[~has] = False
        miss[seen["i"].to_numpy(dtype=np.int64)] = False
        ok &= ~miss
    return ok


def _quiet(con, profiles: list[str]) -> set[str]:
    """Of ``profiles``, those without household evidence in the last run: no refused link
    (chain guard or constraint) touches a record of theirs, none of their named records
    carries a shared or hub identifier, and no accepted link joins one of their records to
    a record attached to no profile (a held-back or ambiguous member of the cluster)."""
    if not profiles:
        return set()
    con.register("_att_prof", pd.DataFrame({"profile_id": profiles}))
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _att_rec AS SELECT m.source_table, m.record_id, "
            "CAST(m.profile_id AS VARCHAR) AS profile_id FROM identity.map m "
            "SEMI JOIN _att_prof p ON CAST(m.profile_id AS VARCHAR) = p.profile_id"
        )
        ends = []
        for s, o in (("left", "right"), ("right", "left")):
            ends.append(
                f"SELECT r.profile_id FROM identity.links l JOIN _att_rec r "
                f"ON l.{s}_source = r.source_table AND l.{s}_record_id = r.record_id "
                f"LEFT JOIN identity.map m ON l.{o}_source = m.source_table "
                f"AND l.{o}_record_id = m.record_id "
                f"WHERE (NOT l.accepted AND coalesce(l.refused_by, '') <> 'bridge') "
                f"OR (l.accepted AND m.profile_id IS NULL)"
            )
        shared = " UNION ALL ".join(
            f"SELECT r.profile_id FROM identity.prepared p JOIN _att_rec r "
            f"ON p.source = r.source_table AND p.record_id = r.record_id "
            f"SEMI JOIN (SELECT CAST(value AS VARCHAR) AS value FROM identity.guarded "
            f"WHERE kind = '{kind}' AND status IN ('shared', 'hub')) g ON p.\"{c}\" = g.value "
            f"WHERE p.first_lat IS NOT NULL OR p.last_lat IS NOT NULL"
            for kind, cols in IDENTIFIER_COLUMNS.items()
            for c in cols
        )
        loud = {r[0] for r in con.execute(
            "SELECT DISTINCT profile_id FROM (" + " UNION ALL ".join([*ends, shared]) + ")"
        ).fetchall()}  # fmt: skip
    finally:
        con.unregister("_att_prof")
        con.execute("DROP TABLE IF EXISTS _att_rec")
    return set(profiles) - loud
