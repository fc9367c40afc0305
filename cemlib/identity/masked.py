"""Attach-only matching of records whose only contact is a masked phone (trial 9, H2).

A marketplace shows its buyer as ``+7 (***) ***-87-48``, a first name and a pick-up point. The
masked phone is no phone (:func:`cemlib.normalize.masked_phone_tail` keeps its visible last
digits in the prepared column ``phone_tail``, the whole phone stays NA), so such an order
links to nothing. Here it is *attached*, after the resolution, to the one existing profile
that agrees with it on a **partial key**:

* the visible last digits equal the last digits of a whole phone of the profile, and
* the first name (its Latin key, so Саша and Александр are one name) is a first name of the
  profile, and
* at least one **second field** agrees: the place (the record's ``city``, or the city its
  ``address`` names after ``г.``/``город``: a pick-up point), the birth date or the last name,
  whichever the record carries (:data:`SECOND_FIELDS`; chosen from the roles the table has).

It is attached only when the key is unambiguous:

* exactly one profile agrees on digits, first name and a second field, and every other
  profile with those digits and that first name is *excluded* by the second fields (it has
  values for them and none agrees); a profile that cannot be told apart (no value for any
  of the record's second fields) makes the key ambiguous, and nothing is attached;
* the key says enough by itself: the one profile found is the wrong one when the buyer has no
  profile and a namesake shows the digits by chance. Among the ``n`` profiles of that first
  name and second value, ``lam = (n - 1) / 10**k`` are expected to show ``k`` digits by
  chance; the share ``a`` of buyers without a profile is read from the data (the masked
  records whose digits and first name name no profile at all). The record is attached only
  where ``a * lam / (a * lam + 1 - a)`` is at most ``max_chance`` (0.01, the resolver's 99%
  target precision): four digits in a city are enough, two digits rarely are.

Only records whose profile holds nothing else (their own singleton, or none) are attached, to
one profile: a masked record never joins two profiles, never bridges, never merges, and is never
used as a phone. Each attach leaves one link (rule :data:`RULE`, the fields that agreed) in
``identity.links`` and ``cem identity --links``, from the masked record to the profile's record
whose phone ends in the digits shown, so that it can be audited; the profile's golden record
counts the attached record as it counts a record merged by a rule (``identity.profiles`` and
``cem identity --profiles``), never its masked phone as a phone.
Profiles are those of the resolution as it stands; records whose profile is NA and
records that are themselves masked-only do not make keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cemlib.warehouse import table_columns

#: the fields compared beside the digits and the first name, those the record has
SECOND_FIELDS: tuple[str, ...] = ("place", "birth_date", "last_lat")
#: identifiers that make a record more than a masked phone (then it is resolved as usual)
_WHOLE_IDS: tuple[str, ...] = (
    "phone", "phone_2", "email", "email_2", "loyalty_card", "device_id", "national_id",
    "contact_id",
)  # fmt: skip
#: a settlement named in a normalized address (``пвз г москва ул новая 67``)
_CITY_WORD = r"(?:^| )(?:г|гор|город) "
#: the default of ``max_chance``: the resolver's target precision of 99%
MAX_CHANCE = 0.01


def masked_only(records: pd.DataFrame) -> np.ndarray:
    """Records whose only contact is a masked phone with visible last digits."""
    if "phone_tail" not in records:
        return np.zeros(len(records), dtype=bool)
    out = records["phone_tail"].notna().to_numpy(dtype=bool)
    for c in _WHOLE_IDS:
        if c in records:
            out &= records[c].isna().to_numpy(dtype=bool)
    return out


def _text(records: pd.DataFrame, col: str) -> pd.Series:
    if col not in records:
        return pd.Series(pd.NA, index=records.index, dtype="string")
    return records[col].astype("string")


def _places(records: pd.DataFrame, known: list[str]) -> pd.DataFrame:
    """``row, place``: a record's city and the known city its address names (after ``г``)."""
    rows = np.arange(len(records))
    city = _text(records, "city").to_numpy(dtype=object, na_value=None)
    parts = [pd.DataFrame({"row": rows, "place": city})]
    address = _text(records, "address")
    if known and address.notna().any():
        alternatives = "|".join(re.escape(c) for c in sorted(known, key=len, reverse=True))
        found = address.str.extract(f"{_CITY_WORD}({alternatives})(?: |$)", expand=False)
        parts.append(pd.DataFrame({"row": rows, "place": found.to_numpy(dtype=object)}))
    out = pd.concat(parts, ignore_index=True)
    return out[out["place"].notna()].drop_duplicates()


def _field_values(records: pd.DataFrame, field: str, known: list[str]) -> pd.DataFrame:
    """``row, value`` of one second field (a record may have two places)."""
    if field == "place":
        return _places(records, known).rename(columns={"place": "value"})
    v = _text(records, field)
    keep = v.notna().to_numpy(dtype=bool)
    return pd.DataFrame({"row": np.flatnonzero(keep), "value": v[keep].to_numpy(dtype=object)})


def attach_masked(
    records: pd.DataFrame, profile_id, *, max_chance: float = MAX_CHANCE
) -> tuple[pd.Series, dict]:
    """The profile each masked-only record attaches to (NA where none), and the figures.

    ``records``: prepared records (:data:`~cemlib.identity.roles.PREPARED_COLUMNS`; those
    absent count as empty); ``profile_id``: each record's profile as resolved (NA when it has
    none). Returns a ``string`` Series aligned with ``records`` (a profile id only for the
    masked-only records attached) and ``{"masked_only", "attached", "ambiguous",
    "no_candidate", "key_too_weak"}`` counts of the masked-only records that could be
    attached (their profile held no other record). :func:`attach_masked_links` also gives the
    link each attach makes."""
    attached, figures, _ = attach_masked_links(records, profile_id, max_chance=max_chance)
    return attached, figures


#: the columns of a link (those of :meth:`IdentityResolver.link_table` and ``identity.links``)
LINK_COLUMNS: tuple[str, ...] = (
    "left_source", "left_record_id", "right_source", "right_record_id", "rule", "match_weight",
    "match_probability", "agreeing", "disagreeing", "accepted", "refused_by",
)  # fmt: skip
#: the rule name of an attach in the links
RULE = "masked_phone_tail"
#: a second field's name in a link's ``agreeing`` (the prepared column it compares)
_AGREEING_NAME = {"place": "place", "birth_date": "birth_date", "last_lat": "last_name"}


def _empty_links() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="string") for c in LINK_COLUMNS})
    for c in ("match_weight", "match_probability"):
        out[c] = out[c].astype(float)
    out["accepted"] = out["accepted"].astype(bool)
    return out


def _witnesses(records: pd.DataFrame, chosen: pd.DataFrame, owner: np.ndarray, o_pid):
    """Per attached record (``chosen``: ``row, pid, k, tail, first``), the row of the
    profile's record whose whole phone ends in the digits shown (one with the same first
    name first, then the first in the records' order): the other end of its link."""
    o_rows = np.flatnonzero(owner & pd.Series(o_pid).isin(set(chosen["pid"])).to_numpy())
    first = _text(records, "first_lat").to_numpy(dtype=object)
    parts = []
    for c in ("phone", "phone_2"):
        v = _text(records, c).to_numpy(dtype=object)[o_rows]
        keep = pd.notna(v)
        parts.append(pd.DataFrame({"w": o_rows[keep], "pid": o_pid[o_rows[keep]],
                                   "phone": v[keep]}))  # fmt: skip
    own = pd.concat(parts, ignore_index=True)
    pairs = chosen[["row", "pid", "k", "tail", "first"]].merge(own, on="pid")
    ends = [
        p[-int(k) :] == t for p, k, t in zip(pairs["phone"], pairs["k"], pairs["tail"], strict=True)
    ]
    pairs = pairs[np.asarray(ends, dtype=bool)]
    theirs = pd.Series(first[pairs["w"].to_numpy()], dtype="string")
    same = theirs.eq(pairs["first"].astype("string").reset_index(drop=True)).fillna(False)
    pairs = pairs.assign(other=~same.to_numpy(dtype=bool))
    pairs = pairs.sort_values(["row", "other", "w"]).drop_duplicates("row")
    # every attached record has one: its candidate profile was found through such a phone
    return pairs.set_index("row")["w"].reindex(chosen["row"]).to_numpy(dtype=np.int64)


def attach_masked_links(
    records: pd.DataFrame, profile_id, *, max_chance: float = MAX_CHANCE
) -> tuple[pd.Series, dict, pd.DataFrame]:
    """:func:`attach_masked` and the link each attach makes, like a rule's link
    (:data:`LINK_COLUMNS`): the masked record (left) to the profile's record whose whole phone
    ends in the digits shown (right), rule :data:`RULE`, ``agreeing`` the fields that agreed
    (``phone_tail,first_name`` and ``place``, ``birth_date`` or ``last_name``),
    ``match_probability`` one minus the chance that the profile is not the buyer's (the
    guard's ``a * lam / (a * lam + 1 - a)``), accepted. ``records`` must carry ``source`` and
    ``record_id``."""
    n = len(records)
    records = records.reset_index(drop=True)
    pid = pd.Series(pd.array(np.asarray(profile_id, dtype=object), dtype="string"))
    out = pd.Series(pd.NA, index=range(n), dtype="string")
    links = _empty_links()
    masked = masked_only(records)
    figures = {"masked_only": int(masked.sum()), "attached": 0, "ambiguous": 0,
               "no_candidate": 0, "key_too_weak": 0, "share_without_profile": None}  # fmt: skip
    if not masked.any():
        return out, figures, links
    # a masked record may move only when its profile holds nothing else
    size = pid.map(pid.value_counts()).fillna(1).to_numpy()
    movable = masked & (size <= 1)
    # profiles: records with a profile that are not masked-only
    owner = pid.notna().to_numpy(dtype=bool) & ~masked
    first = _text(records, "first_lat")
    tail = _text(records, "phone_tail")
    m_rows = np.flatnonzero(movable & first.notna().to_numpy(dtype=bool))
    figures["no_candidate"] = int(movable.sum()) - len(m_rows)
    if not len(m_rows):
        return out, figures, links
    m = pd.DataFrame(
        {
            "row": m_rows,
            "tail": tail.to_numpy(dtype=object)[m_rows],
            "first": first.to_numpy(dtype=object)[m_rows],
        }  # fmt: skip
    )
    m["k"] = m["tail"].str.len()
    # profiles' whole phones cut to each length shown
    o_rows = np.flatnonzero(owner)
    o_pid = pid.to_numpy(dtype=object)
    phones = []
    for c in ("phone", "phone_2"):
        v = _text(records, c).to_numpy(dtype=object)[o_rows]
        keep = pd.notna(v)
        phones.append(pd.DataFrame({"pid": o_pid[o_rows][keep], "phone": v[keep]}))
    phones = pd.concat(phones, ignore_index=True).drop_duplicates()
    cut = []
    for k in sorted(m["k"].unique()):
        cut.append(phones.assign(k=k, tail=phones["phone"].str[-int(k) :]))
    cut = pd.concat(cut, ignore_index=True)[["pid", "k", "tail"]].drop_duplicates()
    names = pd.DataFrame(
        {"pid": o_pid[o_rows], "first": first.to_numpy(dtype=object)[o_rows]}
    ).dropna().drop_duplicates()  # fmt: skip
    # candidates: profiles with the digits and the first name
    cand = m.merge(cut, on=["k", "tail"]).merge(names, on=["pid", "first"])
    # the second fields: the record's values against its candidates' (and its namesakes')
    known = sorted(set(_text(records, "city").dropna().unique()))
    in_cand = pd.Series(o_pid[o_rows]).isin(cand["pid"].unique()).to_numpy(dtype=bool)
    involved = np.union1d(m_rows, o_rows[in_cand])
    sub = records.iloc[involved].reset_index(drop=True)
    cand["agree"] = False
    cand["known"] = False
    for field in SECOND_FIELDS:
        vals = _field_values(sub, field, known)
        vals["row"] = involved[vals["row"].to_numpy()]
        rec_vals = vals[np.isin(vals["row"], m_rows)]
        prof_vals = vals[owner[vals["row"].to_numpy()]].assign(pid=lambda d: o_pid[d["row"]])
        has_rec = cand["row"].isin(rec_vals["row"])
        has_prof = cand["pid"].isin(prof_vals["pid"])
        hit = cand.merge(rec_vals, on="row").merge(prof_vals[["pid", "value"]], on=["pid", "value"])
        hit = hit[["row", "pid"]].drop_duplicates()
        key = pd.MultiIndex.from_frame(cand[["row", "pid"]])
        agree = key.isin(pd.MultiIndex.from_frame(hit)) if len(hit) else np.zeros(len(cand), bool)
        cand["agree"] |= agree
        cand["known"] |= (has_rec & has_prof).to_numpy()
        cand[f"v_{field}"] = agree
    n_agree = cand.groupby("row")["agree"].sum()
    unknown = (~cand["known"]).groupby(cand["row"]).sum()
    ok_rows = n_agree.index[(n_agree == 1).to_numpy() & (unknown.reindex(n_agree.index) == 0)]
    chosen = cand[cand["row"].isin(ok_rows) & cand["agree"]]
    figures["no_candidate"] += len(m) - cand["row"].nunique()
    figures["ambiguous"] = int(cand["row"].nunique() - len(chosen))
    # the key must say enough by itself: a unique profile is the wrong one when the buyer has
    # no profile and a namesake of the same place (birth date, last name) shows the digits by
    # chance: lam = (n - 1) / 10**k namesakes expected to, among the n of that first name and
    # value. The share of buyers without a profile, a, is read from the data: the masked
    # records whose digits and first name name no profile at all. Attached only where
    # a * lam / (a * lam + 1 - a), the chance the profile is not the buyer's, <= max_chance.
    weak = np.zeros(len(chosen), dtype=bool)
    wrong = np.zeros(len(chosen))
    absent = 1.0 - cand["row"].nunique() / max(len(m), 1)
    figures["share_without_profile"] = round(absent, 4)
    if len(chosen):
        names_used = set(chosen["first"])
        near = owner & first.isin(names_used).fillna(False).to_numpy(dtype=bool)
        crowd = _crowds(records, near, o_pid, known)
        lam = np.full(len(chosen), np.inf)
        for field in SECOND_FIELDS:
            sel = chosen[f"v_{field}"].to_numpy(dtype=bool)
            if not sel.any() or field not in crowd:
                continue
            vals = _field_values(records.iloc[chosen["row"].to_numpy()[sel]], field, known)
            rows_sel = chosen["row"].to_numpy()[sel]
            vals["row"] = rows_sel[vals["row"].to_numpy()]
            sizes = vals.assign(first=first.to_numpy(dtype=object)[vals["row"]]).merge(
                crowd[field], on=["first", "value"], how="left"
            )
            n_min = sizes.groupby("row")["n"].min().reindex(rows_sel).fillna(1).to_numpy()
            k = chosen["k"].to_numpy()[sel].astype(float)
            lam[sel] = np.minimum(lam[sel], (n_min - 1) / 10.0**k)
        wrong = absent * lam / np.maximum(absent * lam + 1.0 - absent, 1e-12)
        weak = ~(wrong <= max_chance)
    figures["key_too_weak"] = int(weak.sum())
    chosen = chosen[~weak].assign(wrong=wrong[~weak])
    figures["attached"] = len(chosen)
    out.iloc[chosen["row"].to_numpy()] = chosen["pid"].to_numpy()
    if len(chosen):
        links = _attach_links(records, chosen, owner, pid.to_numpy(dtype=object))
    return out, figures, links


def _attach_links(records, chosen, owner, o_pid) -> pd.DataFrame:
    """The links of the attached records (``chosen``), see :func:`attach_masked_links`."""
    rows = chosen["row"].to_numpy()
    wit = _witnesses(records, chosen, owner, o_pid)
    src = _text(records, "source").to_numpy(dtype=object)
    rid = _text(records, "record_id").to_numpy(dtype=object)
    agreeing = np.full(len(chosen), "phone_tail,first_name", dtype=object)
    for field in SECOND_FIELDS:
        hit = chosen[f"v_{field}"].to_numpy(dtype=bool)
        agreeing[hit] = agreeing[hit] + "," + _AGREEING_NAME[field]
    return pd.DataFrame(
        {
            "left_source": pd.array(src[rows], dtype="string"),
            "left_record_id": pd.array(rid[rows], dtype="string"),
            "right_source": pd.array(src[wit], dtype="string"),
            "right_record_id": pd.array(rid[wit], dtype="string"),
            "rule": pd.array([RULE] * len(rows), dtype="string"),
            "match_weight": np.full(len(rows), np.nan),
            "match_probability": 1.0 - chosen["wrong"].to_numpy(dtype=float),
            "agreeing": pd.array(agreeing, dtype="string"),
            "disagreeing": pd.array([""] * len(rows), dtype="string"),
            "accepted": np.ones(len(rows), dtype=bool),
            "refused_by": pd.array([pd.NA] * len(rows), dtype="string"),
        }
    )


def _crowds(records, owner, o_pid, known) -> dict[str, pd.DataFrame]:
    """Per second field: ``first, value, n``: profiles with that first name and value."""
    o_rows = np.flatnonzero(owner)
    sub = records.iloc[o_rows].reset_index(drop=True)
    first = _text(sub, "first_lat").to_numpy(dtype=object)
    out = {}
    for field in SECOND_FIELDS:
        vals = _field_values(sub, field, known)
        if not len(vals):
            continue
        vals = vals.assign(first=first[vals["row"]], pid=o_pid[o_rows][vals["row"]])
        vals = vals.dropna(subset=["first"]).drop_duplicates(["pid", "first", "value"])
        out[field] = vals.groupby(["first", "value"]).size().rename("n").reset_index()
    return out


#: the prepared columns the partial key reads
_KEY_COLUMNS: tuple[str, ...] = (
    *_WHOLE_IDS, "phone_tail", "first_lat", "last_lat", "birth_date", "city", "address",
)  # fmt: skip


@dataclass
class WarehouseAttach:
    """What :func:`attach_masked_warehouse` did: the figures of :func:`attach_masked`, the
    ``identity.map`` rows it wrote (``source_table, record_id, profile_id``), the
    ``identity.links`` rows it wrote (rule :data:`RULE`) and the golden records it wrote again
    (those of the profiles that gained or lost a masked record)."""

    figures: dict
    rows: pd.DataFrame | None = None
    links: pd.DataFrame | None = None
    profiles: pd.DataFrame | None = None


def attach_masked_warehouse(
    wh, *, max_chance: float = MAX_CHANCE, run_id: str | None = None, as_of: str | None = None
) -> WarehouseAttach:
    """The partial key over the whole warehouse once the stage has written ``identity.map``
    (a full or an incremental run alike: every masked-only record is judged again against
    every profile as it now stands, so both modes attach the same records): the masked-only
    records' rows of ``identity.map`` get the profile their key names, or NA. Reads
    ``identity.prepared`` (only the masked records and the profiles of their first names).

    Every attach leaves its link in ``identity.links`` (rule :data:`RULE`, see
    :func:`attach_masked_links`; the earlier runs' rows of the rule are replaced), and the
    golden records of the profiles that gained or lost a masked record are computed again
    from their records (:func:`~cemlib.identity.golden.golden_records`): the attached order
    counts in ``n_records``, ``sources`` and ``first_seen``/``last_seen`` as a record merged
    by a rule does, and gives a surviving value (an address, a city) only where no other
    record of the profile has one (:func:`golden_weak_fills`); its masked phone is never a
    phone. ``run_id``/``as_of`` stamp the rows written (``_run_id``, ``_as_of``)."""
    con = wh.con
    if not wh.has_table("identity", "prepared") or not wh.has_table("identity", "map"):
        return WarehouseAttach({})
    have = set(table_columns(con, "identity", "prepared"))
    if "phone_tail" not in have:
        return WarehouseAttach({})
    # no masked phone at all (most warehouses): nothing to judge, and no join of the prepared
    # records with the map (21 million rows at a million people)
    if not con.execute(
        "SELECT 1 FROM identity.prepared WHERE phone_tail IS NOT NULL LIMIT 1"
    ).fetchone():
        return WarehouseAttach({"masked_only": 0, "attached": 0})
    cols = ", ".join(f'CAST(p."{c}" AS VARCHAR) AS "{c}"' for c in _KEY_COLUMNS if c in have)
    # a masked record the resolution itself linked (a model link on its name and address)
    # keeps the profile it has; the others are judged here, again on every run (equi-joins on
    # each side of the links: an OR inside a correlated EXISTS was a nested loop); the links
    # of earlier attaches (rule RULE) are not the resolution's
    has_links = wh.has_table("identity", "links")
    linked_cte = "ml AS (SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS record_id WHERE FALSE)"
    if has_links:
        linked_cte = (
            "ml AS (SELECT DISTINCT l.left_source AS source, l.left_record_id AS record_id "
            f"FROM identity.links l WHERE l.accepted AND l.rule IS DISTINCT FROM '{RULE}' "
            "UNION SELECT DISTINCT l.right_source, l.right_record_id FROM identity.links l "
            f"WHERE l.accepted AND l.rule IS DISTINCT FROM '{RULE}')"
        )
    query = f"""
        WITH r AS (
            SELECT p.source, p.record_id, m.profile_id, {cols}
            FROM identity.prepared p
            JOIN identity.map m ON m.source_table = p.source AND m.record_id = p.record_id
        ),
        f AS (SELECT DISTINCT first_lat FROM r WHERE phone_tail IS NOT NULL),
        pf AS (
            SELECT DISTINCT profile_id FROM r
            WHERE profile_id IS NOT NULL AND first_lat IN (SELECT first_lat FROM f)
        ),
        {linked_cte}
        SELECT r.*, (r.phone_tail IS NOT NULL AND ml.record_id IS NOT NULL) AS _linked
        FROM r LEFT JOIN ml ON ml.source = r.source AND ml.record_id = r.record_id
        WHERE r.phone_tail IS NOT NULL OR r.profile_id IN (SELECT profile_id FROM pf)
        ORDER BY r.source, r.record_id
    """
    from cemlib.frames import fetch_frame

    records = fetch_frame(con, query)
    if not len(records) or records["phone_tail"].isna().all():
        return WarehouseAttach({"masked_only": 0, "attached": 0})
    masked = masked_only(records) & ~records["_linked"].fillna(False).to_numpy(dtype=bool)
    # a masked record judged again: its earlier attachment is not a profile of its own
    before = records["profile_id"].astype("string")
    pid = before.where(~masked)
    attached, figures, links = attach_masked_links(records, pid, max_chance=max_chance)
    rows = pd.DataFrame(
        {
            "source_table": records["source"].astype("string")[masked].to_numpy(),
            "record_id": records["record_id"].astype("string")[masked].to_numpy(),
            "profile_id": attached[masked].to_numpy(),
        }
    )
    # golden records written again: every profile holding an attached record (also those an
    # earlier run attached, so a warehouse whose golden records predate this pass is set
    # right) and every profile a masked record leaves
    old, new = before[masked].to_numpy(dtype=object), attached[masked].to_numpy(dtype=object)
    changed = sorted({p for p in np.concatenate([old, new]) if pd.notna(p)})
    stamp = {"_run_id": run_id, "_as_of": as_of}
    con.register("_masked_attach", rows)
    try:
        con.execute(
            "UPDATE identity.map m SET profile_id = a.profile_id FROM _masked_attach a "
            "WHERE m.source_table = a.source_table AND m.record_id = a.record_id"
        )
    finally:
        con.unregister("_masked_attach")
    if has_links:
        _write_links(con, links, stamp)
    profiles = _write_golden(wh, changed, stamp)
    return WarehouseAttach(figures, rows, links, profiles)


def _stamped(con, frame: pd.DataFrame, schema_table: str, stamp: dict) -> dict[str, str]:
    """Per column of ``schema_table``: the expression of ``frame`` (registered as ``_mk``) cast to the columns of ``schema_table``
    that it has, ``_run_id``/``_as_of`` from ``stamp`` (kept as they were when None)."""
    schema, table = schema_table.split(".")
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchall()
    )
    out = {}
    for c, t in types.items():
        if c in stamp and stamp[c] is not None:
            out[c] = f"CAST('{stamp[c]}' AS {t})"
        elif c in frame.columns:
            if t.strip('"') == "NULL":  # a column of no type (empty or all NULL when written)
                if not frame[c].notna().any():
                    out[c] = "NULL"
                    continue
                t = _sql_type(frame[c])
                con.execute(f'ALTER TABLE {schema}.{table} ALTER COLUMN "{c}" TYPE {t}')
            out[c] = f'CAST(_mk."{c}" AS {t})'
    return out


def _sql_type(values: pd.Series) -> str:
    """The DuckDB type of a column of a frame written here (a golden record's or a link's)."""
    if pd.api.types.is_bool_dtype(values):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(values):
        return "BIGINT"
    if pd.api.types.is_float_dtype(values):
        return "DOUBLE"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "TIMESTAMP_NS"
    first = values.dropna().iloc[0]
    return "VARCHAR[]" if isinstance(first, (list, tuple, np.ndarray)) else "VARCHAR"


def _write_links(con, links: pd.DataFrame, stamp: dict) -> None:
    """Replace the links of earlier attaches by this run's (:data:`RULE`)."""
    con.execute(f"DELETE FROM identity.links WHERE rule = '{RULE}'")
    if not len(links):
        return
    cols = _stamped(con, links, "identity.links", stamp)
    con.register("_mk", links)
    try:
        names = ", ".join(f'"{c}"' for c in cols)
        con.execute(
            f"INSERT INTO identity.links ({names}) SELECT {', '.join(cols.values())} FROM _mk"
        )
    finally:
        con.unregister("_mk")


def golden_weak_fills(records: pd.DataFrame, profile_id, weak: np.ndarray) -> pd.DataFrame:
    """Golden records in which the ``weak`` records (attached by the partial key) count in
    ``n_records``, ``sources`` and ``first_seen``/``last_seen`` like any record, but give a
    surviving value (name, birth date, city, address, ...) only where no other record of the
    profile has one: a marketplace order's pick-up point never replaces the address a
    customer registered, and fills the gap when there is none."""
    from cemlib.identity.golden import SURVIVING, golden_records

    weak = np.asarray(weak, dtype=bool)
    full = golden_records(records, profile_id=profile_id)
    if not weak.any():
        return full
    cols = [c for c in SURVIVING if c in records]
    strong = records.copy(deep=False)
    for c in cols:
        strong[c] = records[c].where(~weak)
    golden = golden_records(strong, profile_id=profile_id)
    for c in cols:
        golden[c] = golden[c].where(golden[c].notna(), full[c])
    return golden


def attached_records(recs: pd.DataFrame, links: pd.DataFrame | None) -> np.ndarray:
    """Which of ``recs`` (``source``, ``record_id``) are the masked ends (``left_source``,
    ``left_record_id``) of attach ``links`` (:data:`RULE`; None or empty: none)."""
    if links is None or not len(links) or not len(recs):
        return np.zeros(len(recs), dtype=bool)
    ends = pd.MultiIndex.from_arrays(
        [links["left_source"].astype(str), links["left_record_id"].astype(str)]
    )
    here = pd.MultiIndex.from_arrays([recs["source"].astype(str), recs["record_id"].astype(str)])
    return here.isin(ends)


def _attached_mask(wh, recs: pd.DataFrame) -> np.ndarray:
    """Which of ``recs`` the partial key attached (their ``identity.links`` rows of rule
    :data:`RULE`)."""
    links = None
    if len(recs) and wh.has_table("identity", "links"):
        links = wh.sql(
            f"SELECT DISTINCT left_source, left_record_id FROM identity.links WHERE rule = '{RULE}'"
        )
    return attached_records(recs, links)


def _write_golden(wh, changed: list, stamp: dict) -> pd.DataFrame | None:
    """The golden records of the ``changed`` profiles, computed again from their records
    (``identity.prepared`` through ``identity.map``) and written over their rows of
    ``identity.profiles`` (in place: the table keeps its order)."""
    if not changed or not wh.has_table("identity", "profiles"):
        return None
    from cemlib.frames import fetch_frame

    con = wh.con
    ids = pd.DataFrame({"profile_id": pd.array(changed, dtype="string")})
    con.register("_mk_ids", ids)
    try:
        recs = fetch_frame(
            con,
            "SELECT p.* EXCLUDE (_run_id, _as_of), m.profile_id AS _pid FROM identity.prepared p "
            "JOIN identity.map m ON m.source_table = p.source AND m.record_id = p.record_id "
            "SEMI JOIN _mk_ids i ON m.profile_id = i.profile_id ORDER BY p.source, p.record_id",
        )
    finally:
        con.unregister("_mk_ids")
    attached = _attached_mask(wh, recs)
    golden = golden_weak_fills(recs, recs["_pid"], attached)
    golden["sources"] = golden["sources"].map(lambda v: list(v))
    cols = _stamped(con, golden, "identity.profiles", stamp)
    cols.pop("profile_id", None)
    con.register("_mk", golden)
    try:
        sets = ", ".join(f'"{c}" = {v}' for c, v in cols.items())
        con.execute(
            f"UPDATE identity.profiles SET {sets} FROM _mk "
            "WHERE identity.profiles.profile_id = _mk.profile_id"
        )
    finally:
        con.unregister("_mk")
    return golden
