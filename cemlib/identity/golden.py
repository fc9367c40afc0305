"""Golden records by survivorship: one row per profile that keeps every phone and email.

For each attribute the surviving value is the most frequent non-empty value of the profile's
records; ties go to the most recent record, then to the source with the highest priority, then
to the smallest value. Everything runs on integer codes (profiles, values, sources), so a
million-person world's twenty million records take seconds, not a Python call per profile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cemlib.identity.roles import STRING, concat_categoricals
from cemlib.marts.closed import closed_since

DEFAULT_SOURCE_PRIORITY: tuple[str, ...] = (
    "crm_contacts",
    "online_orders",
    "support_tickets",
    "pos_receipts",
    "web_events",
)
SURVIVING: tuple[str, ...] = (
    "first_name",
    "last_name",
    "middle_name",
    "birth_date",
    "city",
    "address",
    "postcode",
    "region",
    "loyalty_card",
)
_NAT = np.iinfo(np.int64).min  # NaT as int64: older than any timestamp


def _value_stats(
    profile: np.ndarray, value: np.ndarray, ts: np.ndarray, prio: np.ndarray
) -> pd.DataFrame:
    """Per distinct (profile, value code): records ``n``, latest ``ts``, best ``prio``."""
    df = pd.DataFrame({"p": profile, "v": value, "ts": ts, "prio": prio})
    return df.groupby(["p", "v"], sort=False).agg(
        n=("prio", "size"), ts=("ts", "max"), prio=("prio", "min")
    )


def _survivor(stats: pd.DataFrame, n_profiles: int) -> np.ndarray:
    """Winning value code per profile (-1 when the profile has no value): most records, then
    most recent, then best source priority, then the smallest value (codes are sorted)."""
    p = stats.index.get_level_values("p").to_numpy()
    v = stats.index.get_level_values("v").to_numpy()
    newest = -np.maximum(stats["ts"].to_numpy(), _NAT + 1)  # NaT (int64 min) cannot be negated
    order = np.lexsort((v, stats["prio"].to_numpy(), newest, -stats["n"].to_numpy(), p))
    p, v = p[order], v[order]
    first = np.ones(len(p), dtype=bool)
    first[1:] = p[1:] != p[:-1]
    out = np.full(n_profiles, -1, dtype=np.int64)
    out[p[first]] = v[first]
    return out


def _lists(profile: np.ndarray, value: np.ndarray, uniques: np.ndarray, n_profiles: int) -> list:
    """Every distinct value per profile, most frequent first (ties: smallest value first)."""
    key = pd.DataFrame({"p": profile, "v": value}).value_counts(sort=False)
    p = key.index.get_level_values("p").to_numpy()
    v = key.index.get_level_values("v").to_numpy()
    order = np.lexsort((v, -key.to_numpy(), p))
    p, vals = p[order], uniques[v[order]]
    bounds = np.searchsorted(p, np.arange(n_profiles + 1))
    return [vals[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def golden_records(
    records: pd.DataFrame,
    *,
    source_priority: tuple[str, ...] = DEFAULT_SOURCE_PRIORITY,
    profile_id: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """``records`` = prepared records plus ``profile_id`` (NA rows skipped) -> golden records.

    ``profile_id`` (one per record) may be given instead of the column, so that a caller
    does not add a column to (and copy) a large frame. Columns: profile_id, n_records, sources,
    first_seen, last_seen, the surviving attributes, ``phones`` and ``emails`` (every distinct
    value, most frequent first).
    """
    pid = pd.Series(records["profile_id"] if profile_id is None else profile_id)
    idx = np.flatnonzero(pid.notna().to_numpy())
    profile, pids = pd.factorize(pid.iloc[idx], sort=True)
    n = len(pids)
    src_codes, src_names = pd.factorize(records["source"].iloc[idx], sort=True)
    rank = {s: i for i, s in enumerate(source_priority)}
    prio = np.array([rank.get(s, len(rank)) for s in src_names], dtype=np.int16)[src_codes]
    stamp = pd.to_datetime(records["updated_at"].iloc[idx], errors="coerce")
    ts = stamp.to_numpy(dtype="datetime64[ns]").view(np.int64)
    valid = ts != _NAT
    out = pd.DataFrame(index=pd.Index(np.asarray(pids, dtype=object), name="profile_id"))
    out["n_records"] = np.bincount(profile, minlength=n)
    # sources: a bit per source (sorted names), one list per distinct combination
    mask = np.zeros(n, dtype=np.int64)
    for i in range(len(src_names)):
        mask |= (np.bincount(profile[src_codes == i], minlength=n) > 0).astype(np.int64) << i
    combos = {m: [s for i, s in enumerate(src_names) if m >> i & 1] for m in np.unique(mask)}
    out["sources"] = [list(combos[m]) for m in mask]
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n, _NAT, dtype=np.int64)
    np.minimum.at(first, profile[valid], ts[valid])
    np.maximum.at(last, profile[valid], ts[valid])
    seen = np.bincount(profile[valid], minlength=n) > 0
    out["first_seen"] = pd.to_datetime(np.where(seen, first, _NAT))
    out["last_seen"] = pd.to_datetime(np.where(seen, last, _NAT))
    for col in SURVIVING:
        if col not in records:
            out[col] = pd.NA
            continue
        codes, uniques = pd.factorize(records[col].iloc[idx], sort=True)
        has = codes >= 0
        if not has.any():
            out[col] = pd.NA
            continue
        stats = _value_stats(profile[has], codes[has], ts[has], prio[has])
        win = _survivor(stats, n)
        values = pd.Series(np.asarray(uniques, dtype=object)).reindex(win).to_numpy()
        dtype = records[col].dtype
        out[col] = pd.array(
            values, dtype=STRING if isinstance(dtype, pd.CategoricalDtype) else dtype
        )
    for kind, cols in (("phones", ("phone", "phone_2")), ("emails", ("email", "email_2"))):
        present = [c for c in cols if c in records]
        if not present:
            out[kind] = [[] for _ in range(n)]
            continue
        parts = [records[c].iloc[idx] for c in present]
        if any(isinstance(v.dtype, pd.CategoricalDtype) for v in parts):
            both = concat_categoricals([v.array for v in parts])
            codes, uniques = both.codes.astype(np.int64), both.categories
        else:
            both = pd.concat(parts, ignore_index=True)
            codes, uniques = pd.factorize(both, sort=True)
        prof = np.tile(profile, len(present))
        has = codes >= 0
        out[kind] = _lists(prof[has], codes[has], np.asarray(uniques, dtype=object), n)
    return out.reset_index()


def write_closed_at(wh, as_of) -> int | None:
    """Column ``closed_at`` of ``identity.profiles``: when a profile whose every CRM record
    closed by ``as_of`` (a customer who left) closed its last one, NULL for the others (open,
    or without a CRM record). Set over the whole table after each run (full or incremental),
    with the definition of :func:`cemlib.marts.closed.crm_closure`; the number of closed
    profiles, or None (the column dropped) when ``crm_contacts`` has no ``closed_at``."""
    if not wh.has_table("identity", "profiles"):
        return None
    closed = closed_since(wh, as_of)
    con = wh.con
    if closed is None:
        con.execute("ALTER TABLE identity.profiles DROP COLUMN IF EXISTS closed_at")
        return None
    con.execute("ALTER TABLE identity.profiles ADD COLUMN IF NOT EXISTS closed_at TIMESTAMP")
    con.register("_closed_profiles", closed)
    try:
        con.execute(
            "UPDATE identity.profiles SET closed_at = c.closed_at FROM ("
            "  SELECT p.profile_id, k.closed_at FROM identity.profiles p"
            "  LEFT JOIN _closed_profiles k ON CAST(p.profile_id AS VARCHAR) = k.customer_id) c "
            "WHERE identity.profiles.profile_id = c.profile_id "
            "AND identity.profiles.closed_at IS DISTINCT FROM c.closed_at"
        )
    finally:
        con.unregister("_closed_profiles")
    return len(closed)
