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
their earlier twin's profile without resolving it again. The others are resolved as new.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.frames import fetch_frame
from cemlib.identity.rules import CONTEXTS, IDENTIFIER_COLUMNS, IDENTIFIER_FIELDS
from cemlib.identity.signatures import SIGNATURE_COLUMNS

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
    sources (the smallest key) and its last-run profile id."""
    on = " AND ".join(f'p."{c}" IS NOT DISTINCT FROM n."{c}"' for c in SIGNATURE_COLUMNS)
    has_id = " OR ".join(f'n."{c}" IS NOT NULL' for c in IDENTIFIER_FIELDS)
    con.register("_rep_removed", removed[["source", "record_id"]].astype(str))
    try:
        return fetch_frame(
            con,
            "WITH t AS (SELECT n.pos, min(p.source || chr(31) || p.record_id) AS twin "
            f"FROM _rep_new n JOIN identity.prepared p ON {on} WHERE {has_id} "
            "AND NOT EXISTS (SELECT 1 FROM _rep_removed r WHERE r.source = p.source "
            "AND r.record_id = p.record_id) GROUP BY n.pos) "
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
    return fetch_frame(
        con,
        f"WITH nv AS ({nv}), held AS ({held}), "
        "h AS (SELECT nv.pos, nv.kind, nv.value, held.source, held.record_id, held.nameless, "
        "CAST(m.profile_id AS VARCHAR) AS profile_id FROM nv JOIN held USING (kind, value) "
        "LEFT JOIN identity.map m ON m.source_table = held.source AND m.record_id = held.record_id), "
        "per AS (SELECT pos, count(DISTINCT (kind, value)) AS n_held, "
        "count(DISTINCT profile_id) AS n_profiles, count(*) FILTER (WHERE profile_id IS NULL) AS n_na, "
        "min(profile_id) AS profile_id, min(source || chr(31) || record_id) AS twin FROM h GROUP BY pos), "
        "nvn AS (SELECT pos, count(*) AS n_values FROM nv GROUP BY pos), "
        # a name hint comes from the e-mail: known when a nameless holder of it is in the profile
        f"hinted AS (SELECT pos FROM _rep_new n WHERE {hinted}), "
        "hint_ok AS (SELECT DISTINCT h.pos FROM h JOIN _rep_new n ON n.pos = h.pos "
        "AND h.kind = 'email' AND h.value = n.email WHERE h.nameless), "
        "bad AS (SELECT DISTINCT nv.pos FROM nv JOIN identity.guarded g "
        "ON g.kind = nv.kind AND CAST(g.value AS VARCHAR) = nv.value), "
        "ok AS (SELECT per.* FROM per JOIN nvn USING (pos) WHERE n_held = n_values AND n_profiles = 1 "
        "AND n_na = 0 AND pos NOT IN (SELECT pos FROM bad) AND (pos NOT IN (SELECT pos FROM hinted) "
        "OR pos IN (SELECT pos FROM hint_ok))), "
        "quiet AS (SELECT DISTINCT m.profile_id FROM identity.map m JOIN identity.prepared p "
        "ON p.source = m.source_table AND p.record_id = m.record_id "
        "WHERE m.profile_id IN (SELECT profile_id FROM ok) AND p.first_lat IS NULL AND p.last_lat IS NULL) "
        "SELECT pos, split_part(twin, chr(31), 1) AS twin_source, "
        "split_part(twin, chr(31), 2) AS twin_record_id, profile_id AS twin_profile_id "
        "FROM ok WHERE profile_id IN (SELECT profile_id FROM quiet) ORDER BY pos",
    )


def _long(table: str, kind: str, *, key: str) -> str:
    """SQL: ``key, value`` of each identifier of ``kind`` held by the rows of ``table``."""
    return " UNION ".join(
        f'SELECT {key}, "{c}" AS value FROM {table} WHERE "{c}" IS NOT NULL'
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
            f"ov AS ({_long('identity.prepared', kind, key='source, record_id')}), "
            "old AS (SELECT o.value, count(*) AS n_old FROM ov o SEMI JOIN vals v "
            "ON o.value = v.value GROUP BY o.value) "
            "SELECT DISTINCT nv.pos FROM nv JOIN vals USING (value) "
            "LEFT JOIN old USING (value) JOIN _rep_twins t ON t.pos = nv.pos "
            "WHERE coalesce(n_old, 0) <= ? AND coalesce(n_old, 0) + n_new > ?",
            [hub_records, hub_records],
        ).fetchall()
        bad.update(r[0] for r in rows)
    return bad


def _pairs(table: str, kind: str, ctx: str, *, key: str = "") -> str:
    """SQL: ``[key,] value, ctx`` of the rows of ``table`` holding an identifier of ``kind``
    (any of its columns) and a ``ctx`` value."""
    return " UNION ALL ".join(
        f'SELECT {key}"{c}" AS value, "{ctx}" AS ctx FROM {table} '
        f'WHERE "{c}" IS NOT NULL AND "{ctx}" IS NOT NULL'
        for c in IDENTIFIER_COLUMNS[kind]
    )


def _contested_contexts(con) -> set[int]:
    """Positions of repeating new records whose context value (its device, e-mail) is seen,
    in earlier or new records, with more than one phone or device (for the non-strict pairs
    also: whose value is seen with more than one context)."""
    bad: set[int] = set()
    for (kind, ctx), strict in CONTEXTS.items():
        mine = f"SELECT * FROM ({_pairs('_rep_new', kind, ctx, key='pos, ')}) SEMI JOIN _rep_twins USING (pos)"
        every = (
            f"{_pairs('identity.prepared', kind, ctx)} UNION ALL {_pairs('_rep_new', kind, ctx)}"
        )
        for by, other in [("ctx", "value")] + ([] if strict else [("value", "ctx")]):
            rows = con.execute(
                f"WITH mine AS ({mine}), many AS (SELECT a.{by} FROM ({every}) a "
                f"SEMI JOIN mine m ON a.{by} = m.{by} GROUP BY a.{by} "
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
    keep = ~twins["pos"].isin(bad).to_numpy()
    return twins[keep].reset_index(drop=True)
