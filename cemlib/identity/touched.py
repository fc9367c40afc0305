"""The earlier records a run's new records touch: sharing an identifier (hubs left out) or a
name key, and the profiles one shared identifier further (SQL on ``identity.prepared``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.frames import fetch_frame
from cemlib.identity.roles import PREPARED_COLUMNS, as_string
from cemlib.identity.rules import CONTACT_SOURCE, IDENTIFIER_COLUMNS

#: name keys an earlier record is touched by (the model's blocking keys)
NAME_KEYS: tuple[tuple[str, ...], ...] = (("first_lat", "last_lat"), ("last_lat", "birth_date"))
_HUBS = "SELECT kind, CAST(value AS VARCHAR) AS value FROM identity.guarded WHERE status = 'hub'"


def _holders(values: str) -> str:
    """SQL: ``source, record_id`` of the earlier records holding one of the identifier
    ``values`` (an SQL relation of ``kind, value``), hubs left out."""
    useful = f"SELECT kind, value FROM ({values}) ANTI JOIN ({_HUBS}) h USING (kind, value)"
    return " UNION ".join(
        f"SELECT p.source, p.record_id FROM identity.prepared p SEMI JOIN "
        f"(SELECT value FROM ({useful}) WHERE kind = '{kind}') k ON p.\"{c}\" = k.value"
        for kind, cols in IDENTIFIER_COLUMNS.items()
        for c in cols
    )


def _values_of(records: str) -> str:
    """SQL: the identifier values (``kind, value``) of the earlier records in ``records``."""
    return " UNION ".join(
        f"SELECT '{kind}' AS kind, p.\"{c}\" AS value FROM identity.prepared p SEMI JOIN "
        f"{records} r ON p.source = r.source AND p.record_id = r.record_id "
        f'WHERE p."{c}" IS NOT NULL'
        for kind, cols in IDENTIFIER_COLUMNS.items()
        for c in cols
    )


def _with_profiles(records: str) -> str:
    """SQL: ``records`` and every record of their profiles in the last run."""
    return (
        f"WITH prof AS (SELECT DISTINCT m.profile_id FROM identity.map m JOIN {records} t "
        "ON m.source_table = t.source AND m.record_id = t.record_id "
        "WHERE m.profile_id IS NOT NULL) "
        f"SELECT source, record_id FROM {records} UNION "
        "SELECT m.source_table AS source, m.record_id FROM identity.map m "
        "JOIN prof USING (profile_id)"
    )


def _records_only(records: str) -> str:
    """SQL: ``records`` as they are (no profile added)."""
    return f"SELECT source, record_id FROM {records}"


def touched_records(
    wh,
    new: pd.DataFrame,
    hops: int = 2,
    *,
    name_keys: tuple[tuple[str, ...], ...] | None = None,
    whole_profiles: bool = True,
) -> pd.DataFrame:
    """``source, record_id`` of the earlier records to resolve again with ``new``: those that
    share an identifier (not a hub) or a name key with a new record, and every record of their
    profiles; then, ``hops - 1`` times, the records sharing an identifier with those and their
    profiles (what decides whether an identifier is shared by a family, so whether a nameless
    record may be attached, lies one identifier further).

    ``name_keys`` (default :data:`NAME_KEYS`) and ``whole_profiles`` (False: the records
    reached, not their profiles) are there to measure which part of the set pulls how many
    records (``benchmarks/identity_phases.py --touched-parts``); a run uses the defaults."""
    name_keys = NAME_KEYS if name_keys is None else name_keys
    with_profiles = _with_profiles if whole_profiles else _records_only
    con = wh.con
    keys = []
    for kind, cols in IDENTIFIER_COLUMNS.items():
        for c in cols:
            if c in new:
                v = as_string(new[c]).dropna().unique()
                keys.append(pd.DataFrame({"kind": kind, "value": np.asarray(v, dtype=object)}))
    keyframe = (
        pd.concat(keys, ignore_index=True)
        if keys
        else pd.DataFrame({"kind": pd.Series(dtype=object), "value": pd.Series(dtype=object)})
    )
    con.register("_inc_keys", keyframe.drop_duplicates())
    names = []
    for i, cols in enumerate(name_keys):
        frame = pd.DataFrame({c: as_string(new[c]) for c in cols}).dropna().drop_duplicates()
        names.append(f"_inc_name{i}")
        con.register(names[-1], frame)
    # an event naming a CRM record (``contact_id``) and that record touch each other both ways
    refs = pd.DataFrame(
        {
            "ref": as_string(new["contact_id"]).str.strip()
            if "contact_id" in new
            else pd.Series([], dtype="string"),
        }
    ).dropna()
    crm_new = pd.DataFrame(
        {"rid": as_string(new["record_id"])[as_string(new["source"]).eq(CONTACT_SOURCE)
                                            .fillna(False).to_numpy(dtype=bool)].str.strip()}
    ).dropna()  # fmt: skip
    con.register("_inc_refs", refs.drop_duplicates())
    con.register("_inc_crm", crm_new.drop_duplicates())
    try:
        selects = [_holders("SELECT kind, CAST(value AS VARCHAR) AS value FROM _inc_keys")]
        selects.append(
            "SELECT p.source, p.record_id FROM identity.prepared p SEMI JOIN _inc_refs k "
            f"ON p.source = '{CONTACT_SOURCE}' AND trim(p.record_id) = k.ref"
        )
        if "contact_id" in PREPARED_COLUMNS:
            selects.append(
                "SELECT p.source, p.record_id FROM identity.prepared p SEMI JOIN _inc_crm k "
                "ON trim(p.contact_id) = k.rid"
            )
        for name, cols in zip(names, name_keys, strict=True):
            on = " AND ".join(f'p."{c}" = k."{c}"' for c in cols)
            selects.append(
                f"SELECT p.source, p.record_id FROM identity.prepared p SEMI JOIN {name} k ON {on}"
            )
        con.execute("CREATE OR REPLACE TEMP TABLE _inc_t0 AS " + " UNION ".join(selects))
        con.execute("CREATE OR REPLACE TEMP TABLE _inc_t1 AS " + with_profiles("_inc_t0"))
        for _ in range(hops - 1):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_t0 AS " + _holders(_values_of("_inc_t1"))
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _inc_t0 AS SELECT * FROM _inc_t0 UNION "
                "SELECT * FROM _inc_t1"
            )
            con.execute("CREATE OR REPLACE TEMP TABLE _inc_t1 AS " + with_profiles("_inc_t0"))
        return fetch_frame(con, "SELECT source, record_id FROM _inc_t1")
    finally:
        con.unregister("_inc_keys")
        for name in [*names, "_inc_refs", "_inc_crm"]:
            con.unregister(name)
        con.execute("DROP TABLE IF EXISTS _inc_t0")
        con.execute("DROP TABLE IF EXISTS _inc_t1")


def touched_and_gone(wh, new_in: pd.DataFrame, removed: pd.DataFrame) -> pd.DataFrame:
    """Keys of the earlier records to resolve again: those ``new_in`` touches and the other
    records of profiles that lost a record (``removed``), the removed records left out."""
    con = wh.con
    touched = touched_records(wh, new_in)
    gone = set(zip(removed["source"], removed["record_id"], strict=True))
    if gone:  # the profiles of deleted records are resolved again too
        con.register("_inc_gone", removed)
        extra = fetch_frame(
            con,
            "SELECT m.source_table AS source, m.record_id FROM identity.map m WHERE m.profile_id "
            "IN (SELECT m2.profile_id FROM identity.map m2 JOIN _inc_gone g "
            "ON m2.source_table = g.source AND m2.record_id = g.record_id)",
        )
        con.unregister("_inc_gone")
        touched = pd.concat([touched, extra], ignore_index=True).drop_duplicates()
        key = touched["source"].astype(str) + "|" + touched["record_id"].astype(str)
        gone_keys = {f"{s}|{r}" for s, r in gone}
        touched = touched[~key.isin(gone_keys).to_numpy()]
    return touched
