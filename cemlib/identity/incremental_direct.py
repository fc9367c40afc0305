"""New records that join one existing profile without resolving it again.

A month's new records are mostly the orders, receipts, sessions and tickets of people already
known, each carrying the phone, e-mail, card or device the person's earlier records carry.
Resolving the whole profile again for each of them (reading, preparing, scoring and
clustering every record of it) is most of an incremental run. A new record *joins directly*
the one profile its identifiers reach when nothing it carries can change a decision of the
last run, checked against what the warehouse keeps of that profile (``identity.prepared`` of
the identifiers' holders, ``identity.guarded``, ``identity.links``, ``identity.map``):

* every identifier it carries is held by earlier records, all attached to that one profile,
  and none is guarded (hub, shared or contested in the last run);
* it adds no fact: an earlier holder carries the same first name, last name, birth date,
  patronymic, gender and typed first name (so the cluster constraints, two full birth dates,
  two patronymics, two first names, and the chain guard see nothing new), and on each
  identifier its first name and birth date are among the holders' (the hub guard's counts of
  names and birth dates stay as they were, and so does its record count, the holders and the
  new carriers staying within ``hub_records``);
* it moves no dominant identifier: the holders of its phone carry its device and e-mail (or
  none), the holders of its device and e-mail carry its one phone and its device (or none);
  a second phone or e-mail, a reference to a CRM record, or a CRM record itself is resolved;
* a nameless record (whose attachment depends on household evidence) only joins a profile
  that shows none: no link of it refused by a constraint, guard or contact pin, no named
  record of it carrying a shared or hub identifier;
* no namesake outside the profile, earlier or new, can be linked to it by the saved model
  (the upper bound of :func:`~cemlib.identity.touched.reachable_partners`), checked in the
  touched set's scoring pass (:func:`~cemlib.identity.touched.touched_records`);
* the profile is not resolved again anyway (touched by another new record).

Everything else is resolved as before. A record joining directly keeps the profile's id; the
profile's golden record is computed again from its stored prepared records and the new ones
(no resolution), and each new record gets one deterministic link per identifier to an earlier
holder (the link a full run's star over that identifier would give it, up to which holder is
the star's centre).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.frames import fetch_frame
from cemlib.identity.roles import PREPARED_COLUMNS, as_string
from cemlib.identity.rules import CONTACT_SOURCE, IDENTIFIER_COLUMNS

#: the facts a joining record must share with one earlier holder (NULLs equal): what the
#: cluster constraints and the chain guard read of a record
FACTS: tuple[str, ...] = (
    "first_lat", "last_lat", "birth_date", "middle_lat", "gender", "first_name", "first_hint"
)  # fmt: skip
_CTX = ("phone", "phone_2", "email", "email_2", "device_id")
#: the temporary table of the earlier holders of every value a new record carries (``kind,
#: value, source, record_id``, their facts and profile), shared with the touched set's pass
NEW_HOLDERS = "_inc_new_holders"


def _strings(frame: pd.DataFrame, cols) -> dict:
    return {
        c: (
            as_string(frame[c]).array
            if c in frame
            else pd.array([pd.NA] * len(frame), dtype="string")
        )
        for c in cols
    }


def direct_candidates(
    wh,
    new: pd.DataFrame,
    *,
    hub_records: int,
    household_statuses: tuple[str, ...] = ("shared", "hub"),
) -> pd.DataFrame:
    """``i`` (row of ``new``, prepared records new since the last run) and ``profile_id`` (the
    last run's id) of the new records that may join that one profile directly (the module's
    checks, all but the namesakes' and the touched profiles', which the touched set's pass
    makes). SQL over ``identity.prepared``, ``map``, ``guarded`` and ``links``."""
    con = wh.con
    con.execute(f"DROP TABLE IF EXISTS {NEW_HOLDERS}")
    empty = pd.DataFrame({"i": pd.Series(dtype="int64"), "profile_id": pd.Series(dtype=object)})
    if not len(new):
        return empty
    cols = [c for c in PREPARED_COLUMNS if c in new]
    rec = pd.DataFrame({"i": np.arange(len(new), dtype=np.int64), **_strings(new, [*FACTS, *_CTX])})
    named = (new["first_lat"].notna() | new["last_lat"].notna()).to_numpy(dtype=bool)
    eligible = ~as_string(new["source"]).eq(CONTACT_SOURCE).fillna(False).to_numpy(dtype=bool)
    if "contact_id" in cols:
        eligible &= new["contact_id"].isna().to_numpy(dtype=bool)
    for c in ("phone_2", "email_2"):  # one phone and one e-mail: no dominant one to move
        if c in cols:
            eligible &= new[c].isna().to_numpy(dtype=bool)
    rec["named"] = named
    ids = []
    for kind, kcols in IDENTIFIER_COLUMNS.items():
        for c in kcols:
            if c not in cols:
                continue
            v = as_string(new[c])
            has = v.notna().to_numpy(dtype=bool) & eligible
            ids.append(pd.DataFrame({"i": np.flatnonzero(has).astype(np.int64), "kind": kind,
                                     "value": np.asarray(v[has], dtype=object)}))  # fmt: skip
    ids = pd.concat(ids, ignore_index=True).drop_duplicates(ignore_index=True) if ids else None
    if ids is None or not len(ids):
        return empty
    # every new record carrying an identifier counts towards its holders (the hub guard's n)
    all_ids = []
    for kind, kcols in IDENTIFIER_COLUMNS.items():
        for c in kcols:
            if c in cols:
                v = as_string(new[c]).dropna()
                all_ids.append(pd.DataFrame({"kind": kind, "value": np.asarray(v, dtype=object),
                                             "i": v.index.to_numpy(dtype=np.int64)}))  # fmt: skip
    carriers = (pd.concat(all_ids, ignore_index=True).drop_duplicates()
                .groupby(["kind", "value"], sort=False).size().rename("n_new").reset_index())  # fmt: skip
    con.register("_d_rec", rec)
    con.register("_d_ids", ids)
    con.register("_d_carriers", carriers)
    hcols = ", ".join(f'p."{c}" AS "h_{c}"' for c in (*FACTS, *_CTX) if c in PREPARED_COLUMNS)
    # the earlier holders of each distinct value, keys only (one join per identifier column)
    holders = " UNION ALL ".join(
        f"SELECT d.kind, d.value, p.source, p.record_id, {hcols} FROM "
        f"(SELECT kind, value FROM _d_carriers WHERE kind = '{kind}') d "
        f'JOIN identity.prepared p ON p."{c}" = d.value'
        for kind, kcols in IDENTIFIER_COLUMNS.items()
        for c in kcols
        if c in PREPARED_COLUMNS
    )
    same = " AND ".join(f'h."h_{c}" IS NOT DISTINCT FROM r."{c}"' for c in FACTS)

    # a contested identifier links only in the contexts where it is the dominant one
    # (rules.CONTEXTS): the record's value must already be strictly dominant among the
    # holders of its context value (so one more record of it moves no other value), counted
    # as +1 for a holder carrying it and -1 for one carrying another value
    def lead(ctx_kind: str, c: str, *hc: str) -> tuple[str, str]:
        """SQL per holder of the record's ``ctx_kind`` value: carries the record's ``c``
        (1/0), carries another value of it (1/0); NULL for other holders."""
        on = f"d.kind = '{ctx_kind}' AND r.\"{c}\" IS NOT NULL"
        has = " OR ".join(f'h."h_{x}" = r."{c}"' for x in hc)
        other = " OR ".join(f'(h."h_{x}" IS NOT NULL AND h."h_{x}" <> r."{c}")' for x in hc)
        return (f"CASE WHEN {on} THEN CAST(({has}) IS TRUE AS INTEGER) END",
                f"CASE WHEN {on} THEN CAST(({other}) IS TRUE AS INTEGER) END")  # fmt: skip

    leads = {
        # (phone, device) strict: the device's phones; (device, email) strict: the e-mail's
        # devices; (phone, email) not strict: the e-mail's phones and the phone's e-mails
        "phone_in_device": lead("device_id", "phone", "phone", "phone_2"),
        "device_in_email": lead("email", "device_id", "device_id"),
        "phone_in_email": lead("email", "phone", "phone", "phone_2"),
        "email_of_phone": lead("phone", "email", "email"),
    }
    ctx = ", ".join(f"({v}) AS {k}_v, ({o}) AS {k}_o" for k, (v, o) in leads.items())
    ctx_ok = " AND ".join(
        f"(coalesce(sum(h.{k}_o), 0) = 0 OR sum(h.{k}_v) > sum(h.{k}_o))" for k in leads
    )
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _inc_new_holders AS SELECT h.*, "
            "CAST(m.profile_id AS VARCHAR) AS profile_id "
            f"FROM ({holders}) h LEFT JOIN identity.map m "
            "ON m.source_table = h.source AND m.record_id = h.record_id"
        )
        # per value: its holders, their profiles, whether the last run guarded it
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _d_val AS SELECT h.kind, h.value, "
            "count(*) AS n_h, count(*) - count(h.profile_id) AS n_loose, "
            "min(h.profile_id) AS p_min, max(h.profile_id) AS p_max, "
            "any_value(c.n_new) AS n_new, bool_or(g.kind IS NOT NULL) AS guarded "
            "FROM _inc_new_holders h LEFT JOIN _d_carriers c ON c.kind = h.kind AND c.value = h.value "
            "LEFT JOIN (SELECT DISTINCT kind, CAST(value AS VARCHAR) AS value "
            "FROM identity.guarded) g ON g.kind = h.kind AND g.value = h.value "
            "GROUP BY h.kind, h.value"
        )
        # the records whose every value is held, by one profile's attached records only,
        # unguarded, within the hub guard's record count
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _d_pre AS SELECT d.i, min(v.p_min) AS profile_id "
            "FROM _d_ids d LEFT JOIN _d_val v ON v.kind = d.kind AND v.value = d.value "
            "GROUP BY d.i HAVING bool_and(v.n_h IS NOT NULL AND v.n_loose = 0 "
            f"AND v.p_min = v.p_max AND NOT v.guarded AND v.n_h + v.n_new <= {int(hub_records)}) "
            "AND min(v.p_min) = max(v.p_max)"
        )
        # their holders' facts: per identifier of a record, what the checks read
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _d_h AS SELECT d.i, d.kind, d.value, "
            f"({same}) AS same_facts, {ctx}, "
            "(r.first_lat IS NULL OR h.h_first_lat = r.first_lat) AS name_ok, "
            "(r.birth_date IS NULL OR h.h_birth_date = r.birth_date) AS dob_ok "
            "FROM (SELECT * FROM _d_ids SEMI JOIN _d_pre USING (i)) d "
            "JOIN _inc_new_holders h ON h.kind = d.kind AND h.value = d.value JOIN _d_rec r ON r.i = d.i"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _d_v AS SELECT h.i, "
            "coalesce(bool_or(h.same_facts), FALSE) AS same_facts, "
            f"coalesce({ctx_ok}, FALSE) AS ctx_ok, "
            "coalesce(bool_or(h.name_ok), FALSE) AS name_ok, "
            "coalesce(bool_or(h.dob_ok), FALSE) AS dob_ok "
            "FROM _d_h h GROUP BY h.i, h.kind, h.value"
        )
        cand = fetch_frame(
            con,
            "SELECT p.i, p.profile_id FROM _d_pre p JOIN (SELECT i FROM _d_v GROUP BY i HAVING "
            "bool_and(ctx_ok AND name_ok AND dob_ok) AND bool_or(same_facts)) v USING (i) "
            "ORDER BY p.i",
        )
        if not len(cand):
            return empty
        nameless = cand[~named[cand["i"].to_numpy()]]
        if len(nameless):  # only into a profile without household evidence
            con.register("_d_p", pd.DataFrame({"profile_id": nameless["profile_id"].unique()}))
            evident = _household_evidence(con, household_statuses)
            con.unregister("_d_p")
            bad = ~named[cand["i"].to_numpy()] & cand["profile_id"].isin(evident).to_numpy()
            cand = cand[~bad]
        return cand.reset_index(drop=True).astype({"i": "int64"})
    finally:
        for name in ("_d_rec", "_d_ids", "_d_carriers"):
            con.unregister(name)
        # _inc_new_holders (every earlier holder of a value a new record carries) is kept for
        # the touched set's pass (touched._touched), which drops it
        for name in ("_d_val", "_d_pre", "_d_h", "_d_v"):
            con.execute(f"DROP TABLE IF EXISTS {name}")


def _household_evidence(con, statuses: tuple[str, ...]) -> set:
    """The ids among ``_d_p`` of profiles showing household evidence in the last run: a link
    touching one of their records not accepted (other than a name-only bridge), or a named
    record carrying an identifier the hub guard found shared (``statuses``)."""
    st = ", ".join("'" + s + "'" for s in statuses) or "NULL"
    ids = [c for cols in IDENTIFIER_COLUMNS.values() for c in cols if c in PREPARED_COLUMNS]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _d_mine AS SELECT m.source_table, m.record_id, "
        "CAST(m.profile_id AS VARCHAR) AS profile_id FROM identity.map m SEMI JOIN _d_p d "
        "ON CAST(m.profile_id AS VARCHAR) = d.profile_id"
    )
    try:
        # the refused links are few: their ends first, then their profiles
        refused = (
            "SELECT r.profile_id FROM (SELECT left_source AS s, left_record_id AS r FROM "
            "identity.links WHERE NOT accepted AND coalesce(refused_by, '') <> 'bridge' UNION "
            "SELECT right_source, right_record_id FROM identity.links WHERE NOT accepted AND "
            "coalesce(refused_by, '') <> 'bridge') e JOIN _d_mine r "
            "ON r.source_table = e.s AND r.record_id = e.r"
        )
        named = (
            f"SELECT r.profile_id, {', '.join('p.' + chr(34) + c + chr(34) for c in ids)} "
            "FROM _d_mine r JOIN identity.prepared p ON p.source = r.source_table "
            "AND p.record_id = r.record_id WHERE p.first_lat IS NOT NULL OR p.last_lat IS NOT NULL"
        )
        con.execute("CREATE OR REPLACE TEMP TABLE _d_named AS " + named)
        shared = " UNION ".join(
            f"SELECT n.profile_id FROM _d_named n SEMI JOIN (SELECT CAST(value AS VARCHAR) AS v "
            f"FROM identity.guarded WHERE kind = '{kind}' AND status IN ({st})) g "
            f'ON n."{c}" = g.v'
            for kind, kcols in IDENTIFIER_COLUMNS.items()
            for c in kcols
            if c in ids
        )
        return {r[0] for r in con.execute(refused + " UNION " + shared).fetchall()}
    finally:
        con.execute("DROP TABLE IF EXISTS _d_mine")
        con.execute("DROP TABLE IF EXISTS _d_named")


def joined_parts(wh, joined: pd.DataFrame, profile_ids) -> tuple:
    """For the new records joining a kept profile directly (``joined``, prepared, each with
    its profile's id in ``profile_ids``): their ``identity.map`` rows, the golden records of
    those profiles computed again from their stored prepared records and the new ones
    (:func:`~cemlib.identity.golden.golden_records`; no resolution), and one link per
    identifier of each new record to an earlier holder (the smallest key), as a full run's
    star over a unique identifier gives it."""
    from cemlib.identity.golden import SURVIVING, golden_records
    from cemlib.identity.roles import STRING
    from cemlib.identity.rules import IDENTIFIER_FIELDS

    con = wh.con
    pids = pd.array(np.asarray(profile_ids, dtype=object), dtype="string")
    jmap = pd.DataFrame({"source_table": as_string(joined["source"]).array,
                         "record_id": as_string(joined["record_id"]).array,
                         "profile_id": pids})  # fmt: skip
    link_cols = ["left_source", "left_record_id", "right_source", "right_record_id", "rule",
                 "match_weight", "match_probability", "agreeing", "disagreeing", "accepted",
                 "refused_by"]  # fmt: skip
    if not len(joined):
        return (
            jmap,
            pd.DataFrame({"profile_id": pd.Series(dtype=object)}),
            pd.DataFrame(columns=link_cols),
        )
    prof = pd.DataFrame({"profile_id": pd.unique(np.asarray(profile_ids, dtype=object))})
    # only what the golden record and the links read, in one query sorted by key
    cols = list(dict.fromkeys(
        c for c in ("source", "record_id", "updated_at", *SURVIVING, "phone", "phone_2",
                    "email", "email_2", *IDENTIFIER_FIELDS) if c in PREPARED_COLUMNS))  # fmt: skip
    con.register("_j_prof", prof)
    try:
        old = fetch_frame(
            con,
            f"SELECT {', '.join('p.' + chr(34) + c + chr(34) for c in cols)}, "
            "CAST(m.profile_id AS VARCHAR) AS profile_id FROM identity.map m "
            "JOIN identity.prepared p ON p.source = m.source_table AND p.record_id = m.record_id "
            "SEMI JOIN _j_prof j ON CAST(m.profile_id AS VARCHAR) = j.profile_id "
            "ORDER BY p.source, p.record_id",
        )
    finally:
        con.unregister("_j_prof")
    old_pid = old["profile_id"].to_numpy(dtype=object)
    both = {}
    for c in cols:
        if c == "updated_at":
            both[c] = pd.concat([pd.to_datetime(old[c]), pd.to_datetime(joined[c])],
                                ignore_index=True).astype("datetime64[ns]")  # fmt: skip
        else:
            both[c] = pd.concat([as_string(old[c]), as_string(joined[c])], ignore_index=True)
    both = pd.DataFrame(both)
    golden = golden_records(
        both, profile_id=pd.Series(np.concatenate([old_pid, np.asarray(pids, dtype=object)]))
    )
    for c in SURVIVING:  # typed as a resolution's golden records are
        if c in golden:
            golden[c] = golden[c].astype(STRING)
    # one link per identifier of a joined record, to the smallest earlier holder
    ids = _identifier_values(joined, "i").drop_duplicates(["i", "kind", "value"])
    # every earlier holder is a record of the profile (direct_candidates): the smallest key
    # among the profile's stored records (read sorted by key) carrying the value
    long = _identifier_values(old, "row")
    first = long.groupby(["kind", "value"], sort=False)["row"].min().reset_index()
    star = (ids.merge(first, on=["kind", "value"]).groupby(["i", "kind"], sort=True)["row"]
            .min().reset_index())  # fmt: skip
    rows = star["row"].to_numpy(dtype=np.int64)
    star["source"] = as_string(old["source"]).array.take(rows)
    star["record_id"] = as_string(old["record_id"]).array.take(rows)
    i = star["i"].to_numpy(dtype=np.int64)
    links = pd.DataFrame(
        {
            "left_source": as_string(star["source"]).array,
            "left_record_id": as_string(star["record_id"]).array,
            "right_source": as_string(joined["source"]).array.take(i),
            "right_record_id": as_string(joined["record_id"]).array.take(i),
            "rule": star["kind"].astype(object).to_numpy(),
            "match_weight": np.nan,
            "match_probability": np.nan,
            "agreeing": star["kind"].astype(object).to_numpy(),
            "disagreeing": "",
            "accepted": True,
            "refused_by": pd.Series([None] * len(star), dtype=object).to_numpy(),
        }
    )
    return jmap, golden, links


def _identifier_values(frame: pd.DataFrame, position: str) -> pd.DataFrame:
    """Every identifier value of ``frame``'s records, long: ``position`` (the record's row in
    ``frame``), ``kind`` and ``value``, for the columns of :data:`IDENTIFIER_COLUMNS` it has."""
    parts = []
    for kind, kcols in IDENTIFIER_COLUMNS.items():
        for c in kcols:
            if c in frame:
                v = as_string(frame[c])
                has = v.notna().to_numpy(dtype=bool)
                parts.append(pd.DataFrame({
                    position: np.flatnonzero(has).astype(np.int64), "kind": kind,
                    "value": np.asarray(v[has], dtype=object)}))  # fmt: skip
    if not parts:
        return pd.DataFrame({position: np.array([], dtype=np.int64), "kind": [], "value": []})
    return pd.concat(parts, ignore_index=True)
