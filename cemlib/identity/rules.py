"""Deterministic links on strong identifiers, with a guard against hub identifiers.

A phone, email key, loyalty card, device id or national id shared by records is a merge key,
unless it is a *hub*: seen with too many distinct first names or birth dates (a family phone, a
shop's own number typed at the till, ``test@test.ru``). Identifiers seen with a few names are
*shared*: they still link records whose names and birth dates agree, never on their own.
Identifiers seen with more names, dates or records than the hub thresholds link nothing. A
phone or device seen with several emails (or devices / phones) is *contested*: it links only
the records of its dominant email, device or phone (by record count) and those without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np
import pandas as pd

from cemlib.identity.dates import date_groups, fold_dob, greedy_groups

IDENTIFIER_COLUMNS: dict[str, tuple[str, ...]] = {
    "phone": ("phone", "phone_2"),
    "email": ("email", "email_2"),
    "loyalty_card": ("loyalty_card",),
    "device_id": ("device_id",),
    "national_id": ("national_id",),
}
#: every prepared column that holds a strong identifier
IDENTIFIER_FIELDS: tuple[str, ...] = tuple(c for cols in IDENTIFIER_COLUMNS.values() for c in cols)
PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "test@test.ru",
        "test@test.com",
        "test@mail.ru",
        "noemail@mail.ru",
        "no@email.ru",
        "none@none.ru",
        "a@a.ru",
        "+70000000000",
        "+79999999999",
        "+79000000000",
        "+71111111111",
        "0",
        "000000",
        "none",
        "null",
        "unknown",
    }
)
NAME_SIMILARITY = 0.75
#: identifiers whose records must agree on another identifier (a family member's phone typed
#: on an order placed from the buyer's own account and device)
#: (identifier, context) -> strict. A record's identifier link is kept when the identifier is
#: the dominant one of the record's context value (its email's usual phone); when not strict,
#: also when the context is the identifier's dominant one (a second phone used with the email).
CONTEXTS: dict[tuple[str, str], bool] = {
    ("phone", "device_id"): True,
    ("phone", "email"): False,
    ("device_id", "email"): True,
}


@dataclass(frozen=True)
class HubGuard:
    """Thresholds deciding when an identifier may not merge records on its own.

    ``max_names``/``max_birth_dates``: more distinct first names / birth dates than this make
    the identifier *shared* (links only records that agree on name and date);
    ``hub_names``/``hub_birth_dates``/``hub_records``: more than this make it a *hub* (no links).
    """

    max_names: int = 1
    max_birth_dates: int = 1
    hub_names: int = 3
    hub_birth_dates: int = 3
    hub_records: int = 500


def names_similar(a: str, b: str) -> bool:
    """Same first name up to a typo (on the Latin key)."""
    if a == b:
        return True
    if a[:1] != b[:1]:
        return False
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= NAME_SIMILARITY


def _name_groups(names: list[str]) -> list[int]:
    """Greedy grouping of first-name keys that are equal up to a typo; group index per name."""
    return greedy_groups(names, names_similar)


def identifier_table(prepared: pd.DataFrame, *, people: bool = True) -> pd.DataFrame:
    """Long table (rid, kind, value, key, first_lat, last_lat, dob, w) of every strong
    identifier; ``key`` numbers the distinct (kind, value) pairs (values sorted within a kind,
    kinds in :data:`IDENTIFIER_COLUMNS` order) and ``w`` is the number of source records a
    prepared row stands for (``_weight``, default 1). ``people=False``: without the holder's
    ``first_lat, last_lat, dob`` (folding the birth dates is most of the table's cost)."""
    cols = ["rid", "kind", "value", "key", "first_lat", "last_lat", "dob", "w"]
    if not people:
        cols = ["rid", "kind", "value", "key", "w"]
    weight = prepared["_weight"].to_numpy() if "_weight" in prepared else None
    parts, offset = [], 0
    for kind, kind_cols in IDENTIFIER_COLUMNS.items():
        rids, values = [], []
        for col in kind_cols:
            if col not in prepared:
                continue
            v = prepared[col]
            mask = v.notna().to_numpy()
            if mask.any():
                rids.append(np.flatnonzero(mask))
                values.append(v[mask].astype("string"))
        if not rids:
            continue
        rid = np.concatenate(rids)
        value = pd.concat(values, ignore_index=True)
        codes, uniques = pd.factorize(value, sort=True)
        part = pd.DataFrame({"rid": rid, "key": codes.astype(np.int64) + offset})
        part = part.drop_duplicates(["rid", "key"])
        part["kind"] = kind
        part["value"] = uniques.take(part["key"].to_numpy() - offset)
        offset += len(uniques)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=cols)
    long = pd.concat(parts, ignore_index=True)
    rid = long["rid"].to_numpy()
    if people:
        long["first_lat"] = prepared["first_lat"].array.take(rid)
        long["last_lat"] = prepared["last_lat"].array.take(rid)
        long["dob"] = fold_dob(prepared["birth_date"]).array.take(rid)
    long["w"] = weight[rid] if weight is not None else 1
    return long[cols]


def _distinct_per_key(key: np.ndarray, codes: np.ndarray, n_keys: int) -> np.ndarray:
    """Number of distinct non-negative ``codes`` per key."""
    ok = codes >= 0
    base = int(codes.max(initial=0)) + 1
    pairs = np.unique(key[ok] * base + codes[ok])
    return np.bincount(pairs // base, minlength=n_keys)


def _runs(sorted_keys: np.ndarray):
    """``(start, stop)`` of each run of equal values in ``sorted_keys``."""
    cuts = np.flatnonzero(np.diff(sorted_keys)) + 1
    return zip(np.r_[0, cuts], np.r_[cuts, len(sorted_keys)], strict=True)


def _fuzzy_name_count(first: np.ndarray, last: np.ndarray) -> int:
    """Distinct first names up to a typo; a first name equal to another record's last name is
    a swapped name, not a person."""
    seen: dict = {}
    for i, name in enumerate(first.tolist()):
        seen.setdefault(name, i)
    names = list(seen)
    lasts = {x for x in last[list(seen.values())].tolist() if x is not None}
    names = [n for n in names if n not in lasts] or names[:1]
    return len(set(_name_groups(names))) if len(names) <= 50 else len(names)


def _dominant(value: np.ndarray, ctx: np.ndarray, w: np.ndarray, by: str) -> pd.Series:
    """For each ``by`` ("ctx" or "value") code, the other code with the largest weight (ties:
    the smaller code, i.e. the smaller string: codes are sorted)."""
    other = "value" if by == "ctx" else "ctx"
    df = pd.DataFrame({"value": value, "ctx": ctx, "w": w})
    sums = df.groupby(["value", "ctx"], sort=False)["w"].sum().reset_index()
    order = np.lexsort((sums[other].to_numpy(), -sums["w"].to_numpy(), sums[by].to_numpy()))
    best = sums.iloc[order].drop_duplicates(by)
    return pd.Series(best[other].to_numpy(), index=best[by].to_numpy())


def deterministic_links(
    prepared: pd.DataFrame,
    guard: HubGuard | None = None,
    known: pd.DataFrame | None = None,
    former: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Links ``(rid_l, rid_r, rule)`` from shared strong identifiers, and the guarded identifiers.

    The guarded table has one row per guarded identifier: kind, value, status
    (``shared``/``hub``/``contested``), n_records, n_names, n_birth_dates.

    ``known`` (a guarded table, e.g. the last run's ``identity.guarded``): identifiers whose
    status and counts are taken from it instead of counted on ``prepared``, which may hold
    only some of their records (an incremental run: an identifier no new record carries has
    the holders, so the status, it had in the last run). Such an identifier is listed even on
    one record here; a ``contested`` one links as a unique one does (its dominant e-mail,
    device or phone found among the records here) and is listed as contested.

    ``former`` (``rid, kind, value, until``, with ``earliest``: per row of ``prepared`` the
    date of its earliest record): identifiers a record held in an earlier run and no longer
    holds (:func:`~cemlib.identity.store.record_former_identifiers`). Each is an identifier of
    its own whose holders are that record and the records holding the value that are dated up
    to ``until`` (a number given to someone else later does not pull the new holder in),
    guarded like any other (a household's former phone links only within a name); it is never
    listed in the guarded table, and its links carry the kind's rule.
    """
    guard = guard or HubGuard()
    long = identifier_table(prepared)
    empty_links = pd.DataFrame(
        {"rid_l": pd.Series(dtype="int64"), "rid_r": pd.Series(dtype="int64"), "rule": []}
    )
    if long.empty:
        return empty_links, _empty_guarded()
    n_current = int(long["key"].max()) + 1
    if former is not None and len(former):
        long = pd.concat([long, _former_table(long, prepared, former, n_current)],
                         ignore_index=True)  # fmt: skip
    stats, keep = _identifier_stats(long, guard)
    is_former = np.arange(len(stats)) >= n_current
    was_contested = np.zeros(len(stats), dtype=bool)
    if known is not None and len(known):
        keep, was_contested = _apply_known(stats, keep, known, skip=is_former)
    status = stats["status"].to_numpy()
    long = long[keep[long["key"].to_numpy()]]
    key = long["key"].to_numpy()
    unique_links, contested = _unique_links(long[status[key] == "unique"], prepared, len(stats))
    links = [unique_links]
    # shared identifiers: links only inside a (first name, birth date) subgroup
    sh = long[(status[key] == "shared") & long["first_lat"].notna().to_numpy()]
    if len(sh):
        links.append(_shared_links(sh))
    out = pd.concat(links, ignore_index=True)
    out = out[out["rid_l"] != out["rid_r"]].astype({"rid_l": "int64", "rid_r": "int64"})
    out = out.drop_duplicates(["rid_l", "rid_r", "rule"]).reset_index(drop=True)
    contested |= was_contested
    stats["status"] = np.where(contested & (status == "unique"), "contested", status)
    guarded = stats[keep & (stats["status"].to_numpy() != "unique") & ~is_former][
        ["kind", "value", "status", "n_records", "n_names", "n_birth_dates"]
    ].reset_index(drop=True)
    return out, guarded


def _former_table(long: pd.DataFrame, prepared: pd.DataFrame, former: pd.DataFrame,
                  offset: int) -> pd.DataFrame:  # fmt: skip
    """Rows of :func:`identifier_table`'s form for the ``former`` identifiers (see
    :func:`deterministic_links`): per former value of a row, that row and the other rows
    holding the value whose earliest record is dated up to ``until``, under a key of their
    own numbered from ``offset`` (only those with another holder)."""
    f = former.reset_index(drop=True)
    f = pd.DataFrame({"owner": f["rid"].to_numpy(dtype=np.int64),
                      "kind": f["kind"].astype(str).to_numpy(dtype=object),
                      "value": f["value"].astype(str).to_numpy(dtype=object),
                      "until": pd.to_datetime(f["until"]).to_numpy(dtype="datetime64[ns]"),
                      "fkey": np.arange(len(f))})  # fmt: skip
    held = long.assign(kind=long["kind"].astype(str), value=long["value"].astype(str))
    held = held.merge(f, on=["kind", "value"], how="inner")
    earliest = pd.to_datetime(prepared["_earliest"]).to_numpy(dtype="datetime64[ns]")
    cut = held["until"].to_numpy() + np.timedelta64(1, "D")
    before = earliest[held["rid"].to_numpy()] < cut  # NaT: not known to be before
    held = held[before & (held["rid"].to_numpy() != held["owner"].to_numpy())]
    f = f[f["fkey"].isin(held["fkey"])]
    if not len(f):
        return long.iloc[:0]
    rid = f["owner"].to_numpy()
    owners = pd.DataFrame({"rid": rid, "kind": f["kind"].to_numpy(),
                           "value": f["value"].to_numpy(), "fkey": f["fkey"].to_numpy()})  # fmt: skip
    if "first_lat" in long:
        owners["first_lat"] = prepared["first_lat"].array.take(rid)
        owners["last_lat"] = prepared["last_lat"].array.take(rid)
        owners["dob"] = fold_dob(prepared["birth_date"]).array.take(rid)
    owners["w"] = prepared["_weight"].to_numpy()[rid] if "_weight" in prepared else 1
    rows = pd.concat([owners, held[owners.columns]], ignore_index=True)
    rows["key"] = pd.factorize(rows["fkey"], sort=True)[0].astype(np.int64) + offset
    rows = rows.drop_duplicates(["rid", "key"])
    rows["value"] = rows["value"].astype("string")
    return rows[long.columns].reset_index(drop=True)


def _apply_known(
    stats: pd.DataFrame, keep: np.ndarray, known: pd.DataFrame, skip: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``stats`` (:func:`_identifier_stats`) with the status and counts of the identifiers in
    ``known`` (``contested`` ones as ``unique``: they link by dominance); returns the keep mask
    with them added and which were contested. ``skip``: identifiers left as counted here (a
    record's former identifiers: their holders are chosen by date, not the last run's)."""
    index = pd.MultiIndex.from_arrays([stats["kind"].astype(str), stats["value"].astype(str)])
    k = known.assign(kind=known["kind"].astype(str), value=known["value"].astype(str))
    k = k.drop_duplicates(["kind", "value"]).set_index(["kind", "value"])
    at = k.index.get_indexer(index)
    hit = at >= 0
    if skip is not None:
        hit &= ~skip
    if not hit.any():
        return keep, np.zeros(len(stats), dtype=bool)
    rows = at[hit]
    for col in ("n_records", "n_names", "n_birth_dates"):
        stats.loc[hit, col] = k[col].to_numpy()[rows].astype(np.int64)
    known_status = k["status"].astype(str).to_numpy()[rows]
    was_contested = np.zeros(len(stats), dtype=bool)
    was_contested[hit] = known_status == "contested"
    stats.loc[hit, "status"] = np.where(known_status == "contested", "unique", known_status)
    return keep | hit, was_contested


def _rows_by_key(key: np.ndarray, multi: np.ndarray, codes: np.ndarray) -> tuple:
    """The rows with a value (``codes >= 0``) of the identifiers in ``multi``, sorted by
    identifier, and their identifier keys (for :func:`_runs`)."""
    rows = np.flatnonzero(multi[key] & (codes >= 0))
    rows = rows[np.argsort(key[rows], kind="stable")]
    return rows, key[rows]


def _identifier_stats(long: pd.DataFrame, guard: HubGuard) -> tuple[pd.DataFrame, np.ndarray]:
    """Per identifier (integer key): kind, value, records, distinct nodes, first names (fuzzy)
    and birth dates, and its ``status`` (``hub``, ``shared`` or ``unique``); with the mask of
    identifiers worth keeping (on two or more distinct records, or a hub)."""
    key = long["key"].to_numpy()
    n_keys = int(key.max()) + 1
    first_codes = pd.factorize(long["first_lat"])[0]
    dob_codes = pd.factorize(long["dob"])[0]
    first_at = np.unique(key, return_index=True)[1]
    stats = pd.DataFrame(
        {
            "kind": long["kind"].to_numpy()[first_at],
            "value": long["value"].array.take(first_at),
            "n_records": np.bincount(key, weights=long["w"].to_numpy(), minlength=n_keys),
            "n_nodes": np.bincount(key, minlength=n_keys),
            "n_name_keys": _distinct_per_key(key, first_codes, n_keys),
            "n_birth_dates": _distinct_per_key(key, dob_codes, n_keys),
        }
    )
    stats["n_records"] = stats["n_records"].astype(np.int64)
    placeholder = stats["value"].str.lower().isin(PLACEHOLDERS).to_numpy(dtype=bool)
    # identifiers on one distinct record can link nothing, but a hub stays listed (the shop's
    # number on a thousand otherwise identical receipts)
    keep = (
        (stats["n_nodes"].to_numpy() > 1)
        | (stats["n_records"].to_numpy() > guard.hub_records)
        | placeholder
    )
    n_names = stats["n_name_keys"].to_numpy().copy()
    # fuzzy count of distinct first names where the exact count says more than one
    multi = keep & (n_names > 1)
    if multi.any():
        rows, k_rows = _rows_by_key(key, multi, first_codes)
        firsts = long["first_lat"].to_numpy(dtype=object)[rows]
        lasts = long["last_lat"].astype(object).where(long["last_lat"].notna(), None)
        lasts = lasts.to_numpy()[rows]
        for a, b in _runs(k_rows):
            n_names[k_rows[a]] = _fuzzy_name_count(firsts[a:b], lasts[a:b])
    stats["n_names"] = n_names.astype(int)
    # birth dates likewise: one person's date typed with a slipped digit is one date
    n_dobs = stats["n_birth_dates"].to_numpy().copy()
    multi = keep & (n_dobs > 1)
    if multi.any():
        rows, k_rows = _rows_by_key(key, multi, dob_codes)
        dobs = long["dob"].to_numpy(dtype=object)[rows]
        for a, b in _runs(k_rows):
            distinct = list(dict.fromkeys(dobs[a:b].tolist()))
            n_dobs[k_rows[a]] = (
                len(set(date_groups(distinct))) if len(distinct) <= 50 else len(distinct)
            )
    stats["n_birth_dates"] = n_dobs.astype(int)
    hub = (
        (n_names > guard.hub_names)
        | (stats["n_birth_dates"].to_numpy() > guard.hub_birth_dates)
        | (stats["n_records"].to_numpy() > guard.hub_records)
        | placeholder
    )
    shared = ~hub & (
        (n_names > guard.max_names) | (stats["n_birth_dates"].to_numpy() > guard.max_birth_dates)
    )
    stats["status"] = np.where(hub, "hub", np.where(shared, "shared", "unique"))
    return stats, keep


def _unique_links(
    uni: pd.DataFrame, prepared: pd.DataFrame, n_keys: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Unique identifiers: star links to the smallest record; a phone or device seen with
    several emails links only the records of its dominant email (and those without one).
    Returns the links and which identifiers were found contested."""
    contested = np.zeros(n_keys, dtype=bool)
    drop = np.zeros(len(uni), dtype=bool)
    for (kind, ctx_col), strict in CONTEXTS.items():
        if ctx_col not in prepared:
            continue
        ctx_codes = pd.factorize(prepared[ctx_col], sort=True)[0]
        rows = np.flatnonzero((uni["kind"].to_numpy() == kind) & ~drop)
        ctx = ctx_codes[uni["rid"].to_numpy()[rows]]
        rows, ctx = rows[ctx >= 0], ctx[ctx >= 0]
        if not len(rows):
            continue
        value = uni["key"].to_numpy()[rows]
        w = uni["w"].to_numpy()[rows]
        ok = _dominant(value, ctx, w, by="ctx").reindex(ctx).to_numpy() == value
        if not strict:
            ok |= _dominant(value, ctx, w, by="value").reindex(value).to_numpy() == ctx
        drop[rows[~ok]] = True
        contested[value[~ok]] = True
    uni = uni[~drop]
    anchor = uni.groupby("key", sort=False)["rid"].transform("min")
    return pd.DataFrame({"rid_l": anchor, "rid_r": uni["rid"], "rule": uni["kind"]}), contested


def _dob_group_of(sh: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Per record, the first of its group's birth dates equal to its own up to a typo (None
    without a date); groups are formed within each ``keys`` group."""
    out = pd.Series(None, index=sh.index, dtype=object)
    dated = sh[sh["dob"].notna()]
    out[dated.index] = dated["dob"].to_numpy(dtype=object)
    several = dated.groupby(keys, sort=False)["dob"].transform("nunique").to_numpy() > 1
    for _, g in dated[several].groupby(keys, sort=False)["dob"]:
        distinct = list(dict.fromkeys(g.tolist()))
        if len(distinct) > 50:
            continue
        group = dict(zip(distinct, date_groups(distinct), strict=True))
        first = {}
        for d in distinct:
            first.setdefault(group[d], d)
        out[g.index] = [first[group[d]] for d in g.tolist()]
    return out


def _shared_links(sh: pd.DataFrame) -> pd.DataFrame:
    """Shared identifiers (a family's phone or card): star links inside each group of records
    with similar first names, and with the same birth date where the group holds several."""
    sh = sh.iloc[np.argsort(sh["key"].to_numpy(), kind="stable")].copy()
    k_sh = sh["key"].to_numpy()
    firsts = sh["first_lat"].to_numpy(dtype=object)
    gid = np.empty(len(sh), dtype=np.int64)
    for a, b in _runs(k_sh):
        gid[a:b] = _name_groups(firsts[a:b].tolist())
    sh["name_group"] = gid
    sh = sh.sort_index()  # back to record order: link order decides merge order on ties
    keys = ["key", "name_group"]
    # several dates under one name (up to a slipped digit): link only records with the same
    # date; a record without a date cannot say which
    sh["dob_group"] = _dob_group_of(sh, keys)
    n_dobs = sh.groupby(keys, sort=False)["dob_group"].transform("nunique")
    sh["dob_key"] = np.where(n_dobs > 1, sh["dob_group"].fillna("?"), "*")
    sh = sh[sh["dob_key"] != "?"]
    anchor = sh.groupby([*keys, "dob_key"], sort=False)["rid"].transform("min")
    return pd.DataFrame({"rid_l": anchor, "rid_r": sh["rid"], "rule": sh["kind"] + "+name"})


def _empty_guarded() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["kind", "value", "status", "n_records", "n_names", "n_birth_dates"]
    )


#: the rule of an event naming its ``crm_contacts`` record (``contact_id``): a foreign key, not
#: an identifier shared between records, so the hub and household guards do not weigh it
CONTACT_RULE = "contact_id"
#: the source table whose record ids an event's ``contact_id`` names
CONTACT_SOURCE = "crm_contacts"


def contact_links(
    prepared: pd.DataFrame, codes: np.ndarray | None = None
) -> tuple[pd.DataFrame, np.ndarray, dict[str, int]]:
    """Links ``(rid_l, rid_r, rule)`` from each event naming a CRM record to that record.

    ``prepared`` holds records (``source``, ``record_id``, ``contact_id``); ``codes`` the node
    of each record (:func:`~cemlib.identity.signatures.record_signatures`; default: a node per
    record). A link joins the node of the ``crm_contacts`` record whose id the event's
    ``contact_id`` equals (trimmed) to the event's node. Returns the links between nodes, per
    record the node of its contact (-1: no reference, or one that names no CRM record, which
    is ignored) and the counts ``with_contact_id``, ``matched`` and ``unmatched`` (records).
    """
    n = len(prepared)
    codes = np.arange(n) if codes is None else np.asarray(codes)
    target = np.full(n, -1, dtype=np.int64)
    empty = pd.DataFrame(
        {"rid_l": pd.Series(dtype="int64"), "rid_r": pd.Series(dtype="int64"), "rule": []}
    )
    if "contact_id" not in prepared or not prepared["contact_id"].notna().any():
        return empty, target, {"with_contact_id": 0, "matched": 0, "unmatched": 0}
    source = prepared["source"].astype("string")
    ref = prepared["contact_id"].astype("string").str.strip()
    crm = source.eq(CONTACT_SOURCE).fillna(False).to_numpy(dtype=bool)
    is_event = (ref.notna() & (ref != "")).fillna(False).to_numpy(dtype=bool) & ~crm
    crm_ids = prepared["record_id"].astype("string").str.strip()[crm]
    # an id repeated in crm_contacts (quarantined by the quality stage) names its first record
    node_of_id = pd.Series(codes[crm], index=crm_ids.to_numpy()).groupby(level=0).first()
    rows = np.flatnonzero(is_event)
    found = node_of_id.reindex(ref.to_numpy()[rows]).to_numpy()
    hit = ~pd.isna(found)
    target[rows[hit]] = found[hit].astype(np.int64)
    links = pd.DataFrame({"rid_l": target[rows[hit]], "rid_r": codes[rows[hit]].astype(np.int64)})
    links = links.drop_duplicates().reset_index(drop=True)
    links["rule"] = CONTACT_RULE
    counts = {
        "with_contact_id": int(len(rows)),
        "matched": int(hit.sum()),
        "unmatched": int((~hit).sum()),
    }
    return links, target, counts
