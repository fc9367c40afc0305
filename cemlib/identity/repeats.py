"""New records that repeat an earlier record's identifying values: the till receipt of a known
loyalty card, the next session of a logged-in device.

Resolution works on signatures (:mod:`cemlib.identity.signatures`): records with equal
identifying values are one node of the graph and share its decisions. A new record whose
signature an earlier record already has therefore joins that record's profile (or stays
unattached with it) in a full run, *unless* the records it adds change a decision that counts
records rather than nodes:

* an identifier's record count crossing the hub limit (``HubGuard.hub_records``);
* which phone, device or e-mail dominates a context (:data:`cemlib.identity.rules.CONTEXTS`,
  weighed by records): safe when the record's context value is seen with one value only
  (and, for the non-strict pairs, that value with one context only).

:func:`repeated_records` finds the new records that are safe: an incremental run gives them
their earlier twin's profile without resolving it again. The others are resolved as new, and
so are the repeats of an unattached record (whether it stays unattached is decided again when
new records change its neighbourhood: at 200,000 people, taking the twin's "unattached" left
9,989 records unattached that a full run attached).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.frames import fetch_frame
from cemlib.identity.golden import golden_records
from cemlib.identity.roles import as_string
from cemlib.identity.rules import CONTEXTS, IDENTIFIER_COLUMNS, IDENTIFIER_FIELDS
from cemlib.identity.signatures import SIGNATURE_COLUMNS
from cemlib.identity.store import read_prepared, stack
from cemlib.identity.touched import touched_and_gone

#: derived name hints a nameless record may still carry (the chain guard compares them)
_HINTS: tuple[str, ...] = ("first_hint", "gender")
_EMPTY = pd.DataFrame(
    {
        "pos": pd.Series(dtype="int64"),
        "twin_source": pd.Series(dtype="string"),
        "twin_record_id": pd.Series(dtype="string"),
        "twin_profile_id": pd.Series(dtype="string"),
    }
)


def _register_new(con, new: pd.DataFrame) -> None:
    """``_rep_new``: every new record's position and signature columns (text as VARCHAR, cast
    as :func:`cemlib.identity.incremental._write_prepared` stores them)."""
    import pyarrow as pa

    cols = [c for c in (*SIGNATURE_COLUMNS, *_HINTS) if c in new]
    frame = pd.DataFrame({c: new[c] for c in cols}, copy=False)
    frame.insert(0, "pos", np.arange(len(new), dtype=np.int64))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    con.register("_rep_arrow", table)
    select = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in cols)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _rep_new AS SELECT pos, {select} FROM _rep_arrow")
    con.unregister("_rep_arrow")


def _twins(con, removed: pd.DataFrame) -> pd.DataFrame:
    """Per new record with an identifier, an earlier record of the same signature still in the
    sources (the smallest key) and its last-run profile id. The earlier records are reduced to
    one per signature before the new records are joined (a device's thousand sessions)."""
    cols = ", ".join(f'"{c}"' for c in SIGNATURE_COLUMNS)
    on = " AND ".join(f'p."{c}" IS NOT DISTINCT FROM s."{c}"' for c in SIGNATURE_COLUMNS)
    on_n = on.replace("p.", "n.")
    has_id = " OR ".join(f'"{c}" IS NOT NULL' for c in IDENTIFIER_FIELDS)
    con.register("_rep_removed", removed[["source", "record_id"]].astype(str))
    try:
        return fetch_frame(
            con,
            f"WITH s AS (SELECT DISTINCT {cols} FROM _rep_new WHERE {has_id}), "
            f"e AS (SELECT {', '.join(f'p.{c}' for c in cols.split(', '))}, "
            "min(p.source || chr(31) || p.record_id) AS twin FROM identity.prepared p "
            f"SEMI JOIN s ON {on} WHERE NOT EXISTS (SELECT 1 FROM _rep_removed r "
            "WHERE r.source = p.source AND r.record_id = p.record_id) GROUP BY ALL), "
            f"t AS (SELECT n.pos, s.twin FROM _rep_new n JOIN e s ON {on_n}) "
            "SELECT t.pos, split_part(t.twin, chr(31), 1) AS twin_source, "
            "split_part(t.twin, chr(31), 2) AS twin_record_id, "
            "CAST(m.profile_id AS VARCHAR) AS twin_profile_id FROM t "
            "LEFT JOIN identity.map m ON m.source_table = split_part(t.twin, chr(31), 1) "
            "AND m.record_id = split_part(t.twin, chr(31), 2) ORDER BY t.pos",
        )
    finally:
        con.unregister("_rep_removed")


def _inside_one_profile(con) -> pd.DataFrame:
    """New records without a twin that carry no name, birth date or name hint and whose
    identifiers are all known, none guarded, and held only by earlier records attached to one
    profile that keeps a nameless record attached (so it has no household evidence): in a
    full run they link to that profile only and change none of its decisions. Same columns
    as :func:`_twins` (the twin: the profile's smallest holder)."""
    nameless = " AND ".join(f'n."{c}" IS NULL' for c in ("first_lat", "last_lat", "birth_date"))
    hinted = " OR ".join(f'n."{c}" IS NOT NULL' for c in _HINTS)
    nv = " UNION ".join(
        f"SELECT n.pos, '{kind}' AS kind, n.\"{c}\" AS value FROM _rep_new n "
        f'WHERE n."{c}" IS NOT NULL AND ({nameless}) AND n.pos NOT IN (SELECT pos FROM _rep_twins)'
        for kind, cols in IDENTIFIER_COLUMNS.items()
        for c in cols
    )
    held = " UNION ALL ".join(
        f"SELECT p.source, p.record_id, '{kind}' AS kind, p.\"{c}\" AS value, "
        "p.first_lat IS NULL AND p.last_lat IS NULL AS nameless FROM identity.prepared p "
        f"SEMI JOIN (SELECT value FROM nv WHERE kind = '{kind}') v ON p.\"{c}\" = v.value"
        for kind, cols in IDENTIFIER_COLUMNS.items()
        for c in cols
    )
    # per identifier value first (its holders' profiles), then per new record
    return fetch_frame(
        con,
        f"WITH nv AS ({nv}), held AS ({held}), "
        "hv AS (SELECT h.kind, h.value, count(DISTINCT m.profile_id) AS n_profiles, "
        "count(*) FILTER (WHERE m.profile_id IS NULL) AS n_na, "
        "min(CAST(m.profile_id AS VARCHAR)) AS profile_id, "
        "min(h.source || chr(31) || h.record_id) AS twin, bool_or(h.nameless) AS nameless "
        "FROM held h LEFT JOIN identity.map m ON m.source_table = h.source "
        "AND m.record_id = h.record_id GROUP BY h.kind, h.value), "
        "h AS (SELECT nv.pos, nv.kind, nv.value, hv.* EXCLUDE (kind, value) FROM nv "
        "JOIN hv USING (kind, value)), "
        "per AS (SELECT pos, count(*) AS n_held, max(n_profiles) AS n_profiles, "
        "sum(n_na) AS n_na, min(profile_id) AS profile_id, max(profile_id) AS last_profile, "
        "min(twin) AS twin FROM h GROUP BY pos), "
        "nvn AS (SELECT pos, count(*) AS n_values FROM nv GROUP BY pos), "
        # a name hint comes from the e-mail: known when a nameless holder of it is in the profile
        f"hinted AS (SELECT pos FROM _rep_new n WHERE {hinted}), "
        "hint_ok AS (SELECT DISTINCT h.pos FROM h JOIN _rep_new n ON n.pos = h.pos "
        "AND h.kind = 'email' AND h.value = n.email WHERE h.nameless), "
        "bad AS (SELECT DISTINCT nv.pos FROM nv JOIN identity.guarded g "
        "ON g.kind = nv.kind AND CAST(g.value AS VARCHAR) = nv.value), "
        "ok AS (SELECT per.* FROM per JOIN nvn USING (pos) WHERE n_held = n_values "
        "AND n_profiles = 1 AND profile_id = last_profile AND n_na = 0 "
        "AND pos NOT IN (SELECT pos FROM bad) AND (pos NOT IN (SELECT pos FROM hinted) "
        "OR pos IN (SELECT pos FROM hint_ok))), "
        "quiet AS (SELECT DISTINCT m.profile_id FROM identity.map m JOIN identity.prepared p "
        "ON p.source = m.source_table AND p.record_id = m.record_id "
        "WHERE m.profile_id IN (SELECT profile_id FROM ok) AND p.first_lat IS NULL "
        "AND p.last_lat IS NULL) "
        "SELECT pos, split_part(twin, chr(31), 1) AS twin_source, "
        "split_part(twin, chr(31), 2) AS twin_record_id, profile_id AS twin_profile_id "
        "FROM ok WHERE profile_id IN (SELECT profile_id FROM quiet) ORDER BY pos",
    )


def _long(table: str, kind: str, *, key: str, among: str = "") -> str:
    """SQL: ``key, value`` of each identifier of ``kind`` held by the rows of ``table`` (with
    ``among``, an SQL relation of ``value``: only those values)."""
    return " UNION ".join(
        f'SELECT {key}, "{c}" AS value FROM {table} WHERE "{c}" IS NOT NULL'
        + (f' AND "{c}" IN (SELECT value FROM {among})' if among else "")
        for c in IDENTIFIER_COLUMNS[kind]
    )


def _crossing_hub_limit(con, hub_records: int) -> set[int]:
    """Positions of repeating new records holding an identifier whose record count crosses
    ``hub_records`` with this run's new records (earlier records <= limit < all)."""
    bad: set[int] = set()
    for kind in IDENTIFIER_COLUMNS:
        rows = con.execute(
            f"WITH nv AS ({_long('_rep_new', kind, key='pos')}), "
            "vals AS (SELECT value, count(*) AS n_new FROM nv GROUP BY value), "
            f"ov AS ({_long('identity.prepared', kind, key='source, record_id', among='vals')}), "
            "old AS (SELECT value, count(*) AS n_old FROM ov GROUP BY value) "
            "SELECT DISTINCT nv.pos FROM nv JOIN vals USING (value) "
            "LEFT JOIN old USING (value) JOIN _rep_twins t ON t.pos = nv.pos "
            "WHERE coalesce(n_old, 0) <= ? AND coalesce(n_old, 0) + n_new > ?",
            [hub_records, hub_records],
        ).fetchall()
        bad.update(r[0] for r in rows)
    return bad


def _pairs(table: str, kind: str, ctx: str, *, key: str = "", by: str = "") -> str:
    """SQL: ``[key,] value, ctx`` of the rows of ``table`` holding an identifier of ``kind``
    (any of its columns) and a ``ctx`` value (with ``by``: only the ``value`` or ``ctx``
    values of the relation ``mine``)."""
    parts = []
    for c in IDENTIFIER_COLUMNS[kind]:
        only = f' AND "{c if by == "value" else ctx}" IN (SELECT {by} FROM mine)' if by else ""
        parts.append(
            f'SELECT {key}"{c}" AS value, "{ctx}" AS ctx FROM {table} '
            f'WHERE "{c}" IS NOT NULL AND "{ctx}" IS NOT NULL{only}'
        )
    return " UNION ALL ".join(parts)


def _contested_contexts(con) -> set[int]:
    """Positions of repeating new records whose context value (its device, e-mail) is seen,
    in earlier or new records, with more than one phone or device (for the non-strict pairs
    also: whose value is seen with more than one context)."""
    bad: set[int] = set()
    for (kind, ctx), strict in CONTEXTS.items():
        mine = f"SELECT * FROM ({_pairs('_rep_new', kind, ctx, key='pos, ')}) SEMI JOIN _rep_twins USING (pos)"
        for by, other in [("ctx", "value")] + ([] if strict else [("value", "ctx")]):
            every = " UNION ALL ".join(
                _pairs(t, kind, ctx, by=by) for t in ("identity.prepared", "_rep_new")
            )
            rows = con.execute(
                f"WITH mine AS ({mine}), many AS (SELECT a.{by} FROM ({every}) a GROUP BY a.{by} "
                f"HAVING count(DISTINCT a.{other}) > 1) "
                f"SELECT DISTINCT pos FROM mine SEMI JOIN many USING ({by})"
            ).fetchall()
            bad.update(r[0] for r in rows)
    return bad


def repeated_records(
    wh, new: pd.DataFrame, removed: pd.DataFrame, *, hub_records: int
) -> pd.DataFrame:
    """The rows of ``new`` (prepared records new since the last run) that repeat an earlier
    record's signature and change no decision (module docstring): ``pos`` (row of ``new``),
    ``twin_source``, ``twin_record_id`` and ``twin_profile_id`` (NA: the twin is unattached).
    Records of ``removed`` (deleted at the source) are no twins."""
    if not len(new):
        return _EMPTY.copy()
    con = wh.con
    _register_new(con, new)
    try:
        twins = _twins(con, removed)
        con.register("_rep_twins", twins[["pos"]])
        try:
            twins = pd.concat([twins, _inside_one_profile(con)], ignore_index=True)
        finally:
            con.unregister("_rep_twins")
        if not len(twins):
            return _EMPTY.copy()
        con.register("_rep_twins", twins[["pos"]])
        try:
            bad = _crossing_hub_limit(con, hub_records) | _contested_contexts(con)
        finally:
            con.unregister("_rep_twins")
    finally:
        con.execute("DROP TABLE IF EXISTS _rep_new")
    # an unattached twin is decided again when its neighbourhood changes: only attached ones
    keep = ~twins["pos"].isin(bad).to_numpy() & twins["twin_profile_id"].notna().to_numpy()
    return twins[keep].reset_index(drop=True)


def split_repeats(wh, new_in, removed, hub_records):
    """``(repeats, to resolve, earlier records to resolve again)``: the new records that repeat
    an earlier record whose profile is kept (:mod:`cemlib.identity.repeats`; with their rows
    of ``new_in`` in ``rows``), the new records to resolve (the others: novel, or repeating a
    record resolved again) and the earlier records they touch."""
    reps = repeated_records(wh, new_in, removed, hub_records=hub_records)
    is_rep = np.zeros(len(new_in), dtype=bool)
    is_rep[reps["pos"].to_numpy()] = True
    touched = touched_and_gone(wh, new_in[~is_rep], removed)
    if not len(touched) and is_rep.all():  # nothing to resolve: resolve the repeats as new
        reps, is_rep = reps.iloc[:0], np.zeros(len(new_in), dtype=bool)
        touched = touched_and_gone(wh, new_in, removed)
    twin = reps["twin_source"] + "|" + reps["twin_record_id"]
    again = twin.isin(set(touched["source"] + "|" + touched["record_id"])).to_numpy()
    is_rep[reps["pos"].to_numpy()[again]] = False  # a repeat goes with its twin
    reps = reps[~again].reset_index(drop=True)
    return reps, new_in[~is_rep].reset_index(drop=True), touched


def profiles_with_repeats(wh, old_profiles, kept_map, reps, rows) -> pd.DataFrame:
    """``old_profiles`` with the golden records of the profiles that got repeats (``rows``: the
    repeating prepared records) made again from all their records."""
    pid = reps["twin_profile_id"]
    got = set(pid.dropna())
    if not got:
        return old_profiles
    theirs = kept_map[kept_map["profile_id"].isin(got).to_numpy()]
    earlier = read_prepared(
        wh, pd.DataFrame({"source": theirs["source_table"], "record_id": theirs["record_id"]})
    )
    by_key = dict(zip(theirs["source_table"] + "|" + theirs["record_id"], theirs["profile_id"],
                      strict=True))  # fmt: skip
    earlier_pid = (as_string(earlier["source"]) + "|" + as_string(earlier["record_id"])).map(by_key)
    records = stack(earlier, rows)
    ids = pd.concat([earlier_pid, pid], ignore_index=True).astype("string")
    fresh = golden_records(records, profile_id=ids)
    rest = old_profiles[~old_profiles["profile_id"].isin(got).to_numpy()]
    return pd.concat([rest, fresh], ignore_index=True)
